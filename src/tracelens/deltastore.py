"""The trace store as Delta Lake tables: the layout of every new store, in a local directory or at a URL
(``s3://``, ``gs://``, ``az://``, ``file://``); ``tracelens.storeopen`` decides which class opens a store.

Layout (every table a Delta Lake table, readable by delta-rs, polars ``scan_delta``, Spark, and by pyarrow
and DuckDB through ``deltalake.DeltaTable(...).to_pyarrow_dataset()``)::

    URL/
      STORE.json                     marker: {"format": "delta", "schema_version": N, ...}
      traces/        _delta_log/ + date=YYYY-MM-DD/*.parquet   one row per LLM call, by the call's UTC day
      quarantine/    _delta_log/ + date=YYYY-MM-DD/*.parquet   records that could not be stored, by ingest day
      otlp_events/   _delta_log/ + date=YYYY-MM-DD/*.parquet   GenAI events from OTLP log records, by ingest day
      _tracelens/secrets/NAME        per-store random secrets (the redaction salt)

``DeltaStore`` offers the methods the ingest, drift/weekly and read paths use on ``tracelens.store.Store``, with
the same signatures and results: ``commit_batch``, ``stored_ids``, ``scan``, ``dates``, ``row_counts``,
``count``, ``get``, ``ids_matching``, ``not_found``, ``secret``, ``rewrite_partition``. The embedding vector
cache and topic cluster models live here too (``tracelens.embed.vectors``, ``tracelens.cluster``)::

      embeddings/<model-slug>/       _delta_log/ + *.parquet   text_hash, vector (float16 bytes); MERGE on text_hash
      embeddings/<model-slug>/_complete.json                   which trace files are fully embedded (a cache)
      clusters/CURRENT.json                                    {embedding model id: cluster model id}
      clusters/<id>/model.json, centroids.npy                  written once, before CURRENT.json names them
      clusters/<id>/assignments/     _delta_log/ + *.parquet   text_hash, cluster_id, distance; MERGE on text_hash

through ``side_table``, ``create_side_table``, ``insert_absent`` (insert-if-absent, same conflict retries as
the trace tables) and ``get_object``/``put_object`` (``tracelens.storeobjects``: plain files in a local
directory, obstore at a URL). A store in a local directory also keeps what is not a table beside them (eval
suites, canary sets, the model catalog override, the collect spool; replays and eval results are Delta tables
through ``tracelens.appendtables``): ``local_root`` is that directory, None at a bucket URL, where the commands
that need it say so in one line.

Commits. Object storage has no rename and no lock; a Delta table's version ``N`` exists once its log entry
``_delta_log/N.json`` is created, and that creation is a put-if-absent (S3 ``If-None-Match``, GCS and Azure
preconditions, ``link`` on a local disk): of two writers only one creates version ``N``. Data files are written
first under fresh random names; a writer killed before its log entry leaves files no version refers to, which
readers never see (``vacuum`` deletes them once older than the retention). So every commit to one table is
all or nothing, and a reader that loads a version sees exactly the commits up to it.

No duplicates under concurrency. Plain Delta appends never conflict, so rows are not appended: each table's
new rows go in through a MERGE on its key (``trace_id``, ``quarantine_id``, ``event_id``) that inserts only
rows whose key is absent. The classification (new, duplicate, conflict) is computed against the snapshot the
MERGE reads; if another writer committed to the table since that snapshot, delta-rs' conflict check refuses
the commit ("a concurrent transaction added new data": a MERGE reads the whole table, so any concurrent add
conflicts), and the batch is classified again against the new snapshot and retried (bounded, with jittered
backoff). Two processes ingesting overlapping inputs therefore store each ``trace_id`` once; a second
content under a known id is quarantined with the same reason text as the local store.

One batch, three tables. Delta commits are per table, so a batch is committed in this order, each step
idempotent: (1) new log events (MERGE on ``event_id``); (2) new traces, already joined with the events stored
for their spans and those of the batch (MERGE on ``trace_id``); (3) quarantine rows, computed once step 2 is
final (MERGE on ``quarantine_id``, a hash of the record and reason); (4) the join pass: the stored rows of
every span the batch touched (its span rows and the spans of its events) are re-derived with all the events
stored for them *now*, and the rows whose ``content_hash`` changed are updated (MERGE update). A process killed
between steps leaves a prefix of the batch committed, each table consistent; ingesting the same input again
finds the committed part as duplicates and commits the rest (events already stored are still joined, since
step 4 starts from the batch's spans, not from its new events). A reader in between sees events waiting for
their span, or traces whose quarantined siblings are not yet listed: states the local store also passes
through between batches, never half of a table's commit.

Joins across concurrent writers. Writer A commits events of span S (step 1) then reads the stored rows (step
4); writer B commits the row of S (step 2) then reads the stored events (step 4). Storage is linearizable, so
either B's read comes after A's commit (B joins A's events) or A's read comes after B's commit (A re-derives
B's row): whichever order, the stored row ends joined, as in the local store.

Failures are one line: opening a URL runs ``tracelens.objstore.preflight`` (writers check they may write),
and delta-rs or object-store errors become ``StoreError`` with ``objstore.explain``'s wording.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import os
import random
import time
from collections.abc import Callable, Iterable
from pathlib import Path, PurePosixPath

import polars as pl
import pyarrow as pa

from tracelens import __version__, objstore
from tracelens.schema import EVENTS_SCHEMA, QUARANTINE_SCHEMA, SCHEMA_VERSION, TRACE_SCHEMA
from tracelens.store import BatchOutcome
from tracelens.storefiles import (
    EVENTS,
    MARKER,
    TABLES,
    StoreError,
    TraceLookup,
    _polars_schema,
    as_utc,
    make_quarantine_row,
    one_line,
    split_by_day,
)
from tracelens.storeobjects import objects_for

log = logging.getLogger(__name__)

FORMAT = "delta"
SCHEMAS = {"traces": TRACE_SCHEMA, "quarantine": QUARANTINE_SCHEMA, EVENTS: EVENTS_SCHEMA}
KEYS = {"traces": "trace_id", "quarantine": "quarantine_id", EVENTS: "event_id"}
SECRETS = "_tracelens/secrets"
MAX_ATTEMPTS = 60  # commits retried on conflict; each retry re-reads the table, so writers always progress


def with_date(schema: pa.Schema) -> pa.Schema:
    """A table's Arrow schema plus its ``date`` partition column."""
    return schema.append(pa.field("date", pa.date32()))




class DeltaStore(TraceLookup):
    """A tracelens store of Delta Lake tables at ``url``; ``create`` makes it when absent.

    ``write``: the caller will commit (the preflight checks write permission; ``create`` implies it).
    """

    format = FORMAT

    def __init__(self, url: str | os.PathLike, create: bool = False, write: bool = False):
        if not objstore.is_url(url):  # a local directory
            url = Path(os.path.abspath(os.fspath(url))).as_uri()
        try:
            self.loc = objstore.parse(str(url))
            self.opts = objstore.preflight(self.loc, write=create or write)
        except objstore.ObjectStoreError as e:
            raise StoreError(str(e)) from None
        self.url = self.loc.url
        self.objects = objects_for(self.loc, self.opts)
        self._index_frames: dict[str, pl.DataFrame] = {}  # traces file -> (trace_id, content_hash)
        self._tables: dict[str, object] = {}
        if self.loc.family == "file":
            self._check_local_dir(create)
        info = self._read_marker()
        if info is None:
            if not create:
                raise StoreError(f"no tracelens store at {self.url} (run `tracelens ingest --store {self.url}` first)")
            self._create()
        else:
            self._check_marker(info)

    @property
    def local_root(self) -> Path | None:
        """The store's directory when it is on a local disk, where the files that are not tables live (eval
        suites, canary sets, the model catalog override, the collect spool); None at a bucket URL."""
        return Path(self.loc.local_path) if self.loc.family == "file" else None

    @property
    def root(self) -> Path | str:
        """The store's directory on a local disk, else its URL."""
        return self.local_root or self.url

    def __repr__(self) -> str:
        return f"DeltaStore({self.url!r})"

    # ------------------------------------------------------------------ marker, tables, secrets

    def _check_local_dir(self, create: bool) -> None:
        path = self.loc.local_path
        if os.path.isdir(path) and not os.path.exists(os.path.join(path, MARKER)) and os.listdir(path) and create:
            raise StoreError(f"{path} exists and is not a tracelens store (no {MARKER}); refusing to write into it")

    def _get(self, key: str) -> bytes | None:
        return self.objects.get(key)

    def _put_if_absent(self, key: str, data: bytes) -> bool:
        """Create ``key`` unless it exists; True when this call created it (first writer wins)."""
        return self.objects.put_if_absent(key, data)

    def _read_marker(self) -> dict | None:
        raw = self._get(MARKER)
        if raw is None:
            return None
        try:
            info = json.loads(raw)
            if not isinstance(info, dict):
                raise ValueError("not an object")
        except ValueError as e:
            raise StoreError(f"{self.url}/{MARKER} is damaged ({e})") from None
        return info

    def _check_marker(self, info: dict) -> None:
        if info.get("format") != FORMAT:
            raise StoreError(f"{self.url} holds a local-layout tracelens store, not a Delta Lake one: open it by its "
                             f"path, or copy it with `tracelens store migrate {self.loc.local_path or self.url} NEW_URL`")
        if info.get("schema_version", 0) > SCHEMA_VERSION:
            raise StoreError(f"store {self.url} has schema version {info.get('schema_version')}, newer than this "
                             f"tracelens ({SCHEMA_VERSION}); upgrade tracelens")

    def _create(self) -> None:
        # the tables first, the marker last: a store with a marker has its tables (a creator killed in between
        # leaves tables without a marker, which the next creator adopts: creating a table is idempotent)
        for table in TABLES:
            self._create_table(table)
        marker = {"tracelens_store": 1, "format": FORMAT, "schema_version": SCHEMA_VERSION,
                  "created_at": dt.datetime.now(dt.UTC).isoformat(), "created_by": f"tracelens {__version__}"}
        if not self._put_if_absent(MARKER, json.dumps(marker, indent=2).encode()):
            info = self._read_marker()
            if info is not None:
                self._check_marker(info)

    def _create_table(self, table: str) -> None:
        from deltalake import DeltaTable

        for attempt in range(5):
            try:
                DeltaTable.create(self.table_url(table), with_date(SCHEMAS[table]), mode="ignore",
                                  partition_by=["date"], storage_options=self.opts)
                return
            except Exception as e:  # two creators raced for version 0: the loser finds the table there
                if attempt == 4:
                    raise self._error(e, f"creating table {table}") from None
                time.sleep(0.05 * (attempt + 1))

    def secret(self, name: str, nbytes: int = 32) -> bytes:
        """A random per-store secret (created on first use), e.g. the redaction salt; concurrent writers agree."""
        key = f"{SECRETS}/{name}"
        value = self._get(key)
        if value is None:
            self._put_if_absent(key, os.urandom(nbytes))  # first writer wins; a loser reads the winner's bytes
            value = self._get(key)
            if value is None:
                raise StoreError(f"{self.url}: the secret {name} could not be read back after it was written")
        return value

    # ------------------------------------------------------------------ tables

    def table_url(self, table: str) -> str:
        """The URL of ``table``'s Delta table."""
        return self.loc.child(table)

    def _snapshot(self, path: str):
        """The latest snapshot of the Delta table at ``path`` (loaded once, then brought up to date); delta-rs'
        errors pass through."""
        from deltalake import DeltaTable

        dt_ = self._tables.get(path)
        if dt_ is None:
            dt_ = DeltaTable(self.table_url(path), storage_options=self.opts)
            self._tables[path] = dt_
        else:
            dt_.update_incremental()
        return dt_

    def table(self, table: str):
        """The latest snapshot of ``table`` (a ``deltalake.DeltaTable``)."""
        try:
            return self._snapshot(table)
        except Exception as e:
            raise self._error(e, f"reading table {table}") from None

    def _error(self, e: BaseException, doing: str) -> StoreError:
        if isinstance(e, StoreError):
            return e
        if type(e).__name__ == "TableNotFoundError":
            return StoreError(f"{self.url}: {doing}: the Delta table is missing ({one_line(e)})")
        return StoreError(f"{doing}: {objstore.explain(self.loc, e)}")

    def _actions(self, table: str) -> pa.Table:
        t = pa.table(self.table(table).get_add_actions(flatten=True))
        return t.select(["path", "num_records", "partition.date"])

    def dates(self, table: str = "traces") -> list[dt.date]:
        """The days ``table`` has rows for, in order."""
        acts = self._actions(table)
        days = {_as_date(d) for d, n in zip(acts.column("partition.date").to_pylist(),
                                            acts.column("num_records").to_pylist(), strict=True)
                if n is None or n > 0}  # a file written without statistics counts as holding rows
        return sorted(d for d in days if d is not None)

    def row_counts(self, table: str = "traces", since: dt.date | None = None,
                   until: dt.date | None = None) -> dict[PurePosixPath, int]:
        """Rows per data file of ``table`` (paths relative to the table, ``date=.../part-...``), one snapshot."""
        acts = self._actions(table)
        out = {}
        for p, n, d in zip(*(acts.column(c).to_pylist() for c in ("path", "num_records", "partition.date")), strict=True):
            day = _as_date(d)
            if (since and day and day < since) or (until and day and day > until):
                continue
            out[PurePosixPath(p)] = int(n or 0)
        return out

    def data_files(self, table: str = "traces", since: dt.date | None = None,
                   until: dt.date | None = None) -> dict[str, int]:
        """The data files of ``table``'s latest snapshot with rows of days [since, until] -> size in bytes, as
        local paths (a store on a local disk) or URLs. A snapshot's files are immutable and stay readable until
        ``vacuum`` removes them (after the retention, 7 days by default)."""
        t = pa.table(self.table(table).get_add_actions(flatten=True))
        base = self.local_root if self.local_root is not None else None
        out = {}
        for p, size, d in zip(*(t.column(c).to_pylist() for c in ("path", "size_bytes", "partition.date")),
                              strict=True):
            day = _as_date(d)
            if (since and day and day < since) or (until and day and day > until):
                continue
            out[str(base / table / p) if base is not None else self.loc.child(table, p)] = int(size or 0)
        return out

    def count(self, table: str = "traces") -> int:
        """Rows of ``table``, from the Delta log (no data is read)."""
        return sum(self.row_counts(table).values())

    def scan(self, table: str = "traces", since: dt.date | dt.datetime | None = None,
             until: dt.date | dt.datetime | None = None) -> pl.LazyFrame:
        """Lazy frame over ``table`` with its ``date`` column, as ``Store.scan`` (same columns and dtypes).

        Only partitions in [since, until] are read; the snapshot is the table's latest version when the frame
        is collected (one version per collect: never half a commit).
        """
        if table not in SCHEMAS:
            raise StoreError(f"{self.url}: no table {table!r} to scan (the trace tables: {', '.join(SCHEMAS)})")
        since_d = since.date() if isinstance(since, dt.datetime) else since
        until_d = until.date() if isinstance(until, dt.datetime) else until
        from polars.io.plugins import register_io_source

        full = pl.Schema({**_polars_schema(table, SCHEMAS[table]), "date": pl.Date})

        def read(with_columns, predicate, n_rows, batch_size):
            lf = self._lazy(table, since_d, until_d, full)
            if with_columns is not None:
                lf = lf.select(with_columns)
            if predicate is not None:
                lf = lf.filter(predicate)
            if n_rows is not None:
                lf = lf.head(n_rows)
            try:
                df = lf.collect()
            except Exception as e:
                raise self._error(e, f"reading table {table}") from None
            yield df

        lf = register_io_source(read, schema=full)
        if table == "traces":
            if isinstance(since, dt.datetime):
                lf = lf.filter(pl.col("timestamp") >= as_utc(since))
            if isinstance(until, dt.datetime):
                lf = lf.filter(pl.col("timestamp") < as_utc(until))
        return lf

    def _lazy(self, table: str, since: dt.date | None, until: dt.date | None, full: pl.Schema) -> pl.LazyFrame:
        """The rows of the latest snapshot of ``table`` in [since, until], cast to the store's schema."""
        snap = self.table(table)
        if not len(snap.get_add_actions(flatten=True)):
            return pl.LazyFrame(schema=full)
        lf = pl.scan_delta(snap, storage_options=self.opts or None)
        if since:
            lf = lf.filter(pl.col("date") >= since)
        if until:
            lf = lf.filter(pl.col("date") <= until)
        # columns in the store's order and types (Delta keeps strings as utf8, polars may read views)
        return lf.select([pl.col(n).cast(t) if n in lf.collect_schema() else pl.lit(None, t).alias(n)
                          for n, t in full.items()])

    def _index(self, snap) -> pl.DataFrame:
        """trace_id -> content_hash of every row of the traces snapshot ``snap`` (read once per data file)."""
        ds = snap.to_pyarrow_dataset()
        frames = {}
        for frag in ds.get_fragments():
            f = self._index_frames.get(frag.path)
            if f is None:
                t = frag.to_table(columns=["trace_id", "content_hash"])
                f = pl.from_arrow(t).select(pl.col("trace_id").cast(pl.String), pl.col("content_hash").cast(pl.String))
                self._index_frames[frag.path] = f
            frames[frag.path] = f
        self._index_frames = frames  # files removed by a later version leave the cache with their rows
        if not frames:
            return pl.DataFrame(schema={"trace_id": pl.String, "content_hash": pl.String})
        return pl.concat(list(frames.values()), rechunk=False)

    def stored_ids(self, trace_ids: Iterable[str]) -> set[str]:
        """Which of ``trace_ids`` the store holds a row for."""
        index = self._index(self.table("traces"))
        return set(index.filter(pl.col("trace_id").is_in(list(trace_ids)))["trace_id"].to_list())

    # ------------------------------------------------------------------ commits

    def _merge_insert(self, table: str, rows: pa.Table, snap=None) -> int:
        """Insert the rows of ``rows`` whose key ``table`` does not hold, in one commit; rows inserted.

        Raises ``deltalake.exceptions.CommitFailedError`` when another writer committed to ``table`` since the
        snapshot (``snap``, or the latest): the caller classifies again and retries.
        """
        key = KEYS[table]
        snap = snap if snap is not None else self.table(table)
        m = (snap.merge(rows, f"t.{key} = s.{key}", source_alias="s", target_alias="t")
             .when_not_matched_insert_all().execute())
        return int(m.get("num_target_rows_inserted", rows.num_rows))

    def _retrying(self, what: str, step: Callable[[], object]):
        """Run ``step`` until it commits without a conflict (it re-reads the snapshot each time)."""
        from deltalake.exceptions import CommitFailedError

        for attempt in range(MAX_ATTEMPTS):
            try:
                return step()
            except CommitFailedError as e:
                if attempt == MAX_ATTEMPTS - 1:
                    raise StoreError(f"{self.url}: {what}: still conflicting after {MAX_ATTEMPTS} attempts "
                                     f"({one_line(e)})") from None
                time.sleep(random.uniform(0.01, 0.05 * min(attempt + 1, 10)))
            except StoreError:
                raise
            except Exception as e:
                raise self._error(e, what) from None

    def _dated(self, table: str, rows: pa.Table, day: dt.date | None = None) -> pa.Table:
        """``rows`` in the table's schema plus ``date``: the ingest ``day``, or each trace's UTC day."""
        schema = SCHEMAS[table]
        rows = rows.select(schema.names).cast(schema)
        if day is not None:
            return rows.append_column("date", pa.array([day] * rows.num_rows, pa.date32()))
        parts = [t.append_column("date", pa.array([d] * t.num_rows, pa.date32())) for d, t in split_by_day(rows)]
        return pa.concat_tables(parts) if parts else rows.append_column("date", pa.array([], pa.date32()))

    def _events_for(self, keys: set[str], batch_events: pa.Table | None) -> dict[str, list[dict]]:
        """Stored log events of the spans ``keys`` plus those of ``batch_events`` (not yet stored), per span key."""
        out: dict[str, list[dict]] = {}
        if not keys:
            return out
        wanted = list(keys)
        stored = (self.scan(EVENTS).drop("date")
                  .filter(pl.concat_str([pl.lit("otel:"), pl.col("trace_id"), pl.lit(":"), pl.col("span_id")])
                          .is_in(wanted)).collect())
        frames = [stored]
        if batch_events is not None and batch_events.num_rows:
            new = pl.from_arrow(batch_events.select(EVENTS_SCHEMA.names).cast(EVENTS_SCHEMA))
            frames.append(new.filter(~pl.col("event_id").is_in(stored["event_id"].implode())))
        df = pl.concat(frames, how="vertical_relaxed").unique("event_id", keep="first", maintain_order=True)
        df = df.with_columns(pl.concat_str([pl.lit("otel:"), pl.col("trace_id"), pl.lit(":"), pl.col("span_id")])
                             .alias("_key"))
        for r in df.filter(pl.col("_key").is_in(wanted)).iter_rows(named=True):
            out.setdefault(r.pop("_key"), []).append(r)
        return out

    def commit_batch(self, traces: pa.Table, quarantine: pa.Table | None = None,
                     same_call: Callable[[dict, dict], bool] | None = None, events: pa.Table | None = None,
                     rejoin: Callable[[pa.Table, dict[str, list[dict]]], pa.Table] | None = None) -> BatchOutcome:
        """Store new traces, quarantine rows and log events; classify duplicates and conflicts (as ``Store``).

        Steps and their crash and concurrency argument: see the module docstring.
        """
        today = dt.datetime.now(dt.UTC).date()
        ev_new = ev_dup = 0
        batch_keys = {t for t in traces.column("trace_id").to_pylist() if t and t.startswith("otel:")} if rejoin else set()
        event_keys: set[str] = set()
        if events is not None and events.num_rows:
            ek = pl.from_arrow(events.select(["event_id", "trace_id", "span_id"]))
            event_keys = set(ek.select(pl.concat_str([pl.lit("otel:"), pl.col("trace_id"), pl.lit(":"),
                                                      pl.col("span_id")])).to_series().to_list())
            dedup = events.filter(pl.from_arrow(events.select(["event_id"]))["event_id"].is_first_distinct().to_arrow())
            ev_new = self._retrying("committing log events",
                                    lambda: self._merge_insert(EVENTS, self._dated(EVENTS, dedup, today)))
            ev_dup = events.num_rows - ev_new
        # (2) traces: joined with the events stored for their spans (the batch's are stored by now)
        if rejoin is not None and traces.num_rows and batch_keys:
            by_key = self._events_for(batch_keys, None)
            if by_key:
                traces = rejoin(traces, by_key)
        state: dict = {}
        self._retrying("committing traces", lambda: self._commit_traces(traces, same_call, state))
        stored, duplicates, conflicts = state["stored"], state["duplicates"], state["conflicts"]
        # (3) quarantine, once the classification is final
        q_rows = quarantine.to_pylist() if quarantine is not None and quarantine.num_rows else []
        for row, reason in conflicts:
            r = traces.slice(row, 1).to_pylist()[0]
            q_rows.append(make_quarantine_row(
                r["source_format"], r["source_file"], r["source_locator"], reason,
                r.get("response_raw") and json.dumps({"request": r.get("request_raw"), "response": r.get("response_raw")})
                or json.dumps({k: str(v) for k, v in r.items()})))
        if q_rows:
            seen: set[str] = set()
            fresh = [r for r in q_rows if not (r["quarantine_id"] in seen or seen.add(r["quarantine_id"]))]
            qt = self._dated("quarantine", pa.Table.from_pylist(fresh, schema=QUARANTINE_SCHEMA), today)
            self._retrying("committing quarantine rows", lambda: self._merge_insert("quarantine", qt))
        # (4) the join pass over every span the batch touched
        joined = self._join_pass(batch_keys | event_keys, rejoin) if rejoin is not None else 0
        return BatchOutcome(stored=stored, duplicates=duplicates, quarantined=len(q_rows), conflicts=len(conflicts),
                            events=ev_new, event_duplicates=ev_dup, joined=joined)

    def _commit_traces(self, traces: pa.Table, same_call, state: dict) -> None:
        """Classify ``traces`` against the latest snapshot and insert the new rows in one commit (may conflict)."""
        snap = self.table("traces")
        state.update(stored=0, duplicates=0, conflicts=[])
        if not traces.num_rows:
            return
        index = self._index(snap)
        ids = pl.from_arrow(traces.select(["trace_id", "content_hash"])).with_row_index("_row")
        old = (index.filter(pl.col("trace_id").is_in(ids["trace_id"].implode()))
               .unique("trace_id", keep="first").rename({"content_hash": "_old"}))
        first = ids.unique("trace_id", keep="first").select("trace_id", pl.col("content_hash").alias("_first_ch"),
                                                           pl.col("_row").alias("_first_row"))
        cls = (ids.join(old, on="trace_id", how="left").join(first, on="trace_id", how="left")
               .with_columns(pl.when(pl.col("_old").is_not_null()).then(pl.col("_old"))
                             .when(pl.col("_row") != pl.col("_first_row")).then(pl.col("_first_ch"))
                             .otherwise(None).alias("_ref"),
                             pl.col("_old").is_not_null().alias("_stored_before"))
               .sort("_row"))
        keep = cls["_ref"].is_null()
        dup = ~keep & (cls["_ref"] == cls["content_hash"])
        duplicates = int(dup.sum())
        clashes = list(cls.filter(~keep & ~dup).select("_row", "trace_id", "_stored_before").iter_rows())
        agreed = self._same_calls(traces, clashes, same_call) if same_call is not None and clashes else set()
        conflicts = [(row, f"duplicate trace_id {tid} with different content{'' if before else ' (same batch)'}")
                     for row, tid, before in clashes if row not in agreed]
        new = traces if keep.all() else traces.filter(keep.to_arrow())
        if new.num_rows:
            self._merge_insert("traces", self._dated("traces", new), snap)
        state.update(stored=new.num_rows, duplicates=duplicates + len(agreed), conflicts=conflicts)

    def _same_calls(self, traces: pa.Table, clashes: list[tuple], same_call) -> set[int]:
        """Rows of ``traces`` that clash with a stored row by content_hash but that ``same_call`` accepts."""
        wanted = {tid: row for row, tid, before in clashes if before}
        if not wanted:
            return set()
        stored = self.scan().filter(pl.col("trace_id").is_in(list(wanted))).unique("trace_id", keep="first").collect()
        rows = pl.from_arrow(traces.take(list(wanted.values())).select(TRACE_SCHEMA.names).cast(TRACE_SCHEMA))
        new_by_id = {r["trace_id"]: r for r in rows.iter_rows(named=True)}
        agreed = set()
        for old in stored.drop("date", strict=False).iter_rows(named=True):
            new = new_by_id.get(old["trace_id"])
            if new is not None and same_call(old, new):
                agreed.add(wanted[old["trace_id"]])
        return agreed

    def _join_pass(self, keys: set[str], rejoin) -> int:
        """Re-derive the stored rows of the spans ``keys`` with every event stored for them; rows changed."""
        if not keys:
            return 0
        state = {"changed": 0}

        def step():
            snap = self.table("traces")
            index = self._index(snap)
            present = set(index.filter(pl.col("trace_id").is_in(list(keys)))["trace_id"].to_list())
            state["changed"] = 0
            if not present:
                return
            by_key = self._events_for(present, None)
            if not by_key:
                return
            old = (self.scan().filter(pl.col("trace_id").is_in(list(by_key))).drop("date").collect()
                   .to_arrow().cast(TRACE_SCHEMA))
            new = rejoin(old, by_key)
            changed = pl.from_arrow(old.select(["content_hash"])).to_series() != \
                pl.from_arrow(new.select(["content_hash"])).to_series()
            if not changed.any():
                return
            upd = self._dated("traces", new.filter(changed.to_arrow()))
            (snap.merge(upd, "t.trace_id = s.trace_id", source_alias="s", target_alias="t")
             .when_matched_update_all().execute())
            state["changed"] = int(changed.sum())

        self._retrying("joining log events to stored traces", step)
        return state["changed"]

    def rewrite_partition(self, day: dt.date, transform) -> int:
        """Replace one day of ``traces`` by ``transform(df) -> df`` in one commit (retried on conflict); rows."""
        state = {"rows": 0}

        def step():
            snap = self.table("traces")
            state["rows"] = 0
            if day not in self.dates():
                return
            full = pl.Schema({**_polars_schema("traces", TRACE_SCHEMA), "date": pl.Date})
            lf = pl.scan_delta(snap, storage_options=self.opts or None).filter(pl.col("date") == day)
            df = lf.select([pl.col(n).cast(t) for n, t in full.items()]).collect().drop("date")
            tbl = transform(df).to_arrow().select(TRACE_SCHEMA.names).cast(TRACE_SCHEMA)
            tbl = tbl.append_column("date", pa.array([day] * tbl.num_rows, pa.date32()))
            from deltalake import write_deltalake

            write_deltalake(snap, tbl, mode="overwrite", predicate=f"date = '{day.isoformat()}'",
                            storage_options=self.opts)
            state["rows"] = tbl.num_rows

        self._retrying(f"rewriting traces of {day}", step)
        return state["rows"]

    # ------------------------------------------------------------------ side data: vectors, topic clusters

    def get_object(self, key: str) -> bytes | None:
        """The bytes of the object ``key`` (relative to the store URL), None when absent."""
        return self.objects.get(key)

    def put_object(self, key: str, data: bytes) -> None:
        """Write (or replace) the object ``key``: a reader gets the old or the new bytes whole."""
        self.objects.put(key, data)

    def put_object_if_absent(self, key: str, data: bytes) -> bool:
        """Create the object ``key`` unless it exists; True when this call created it (first writer wins)."""
        return self.objects.put_if_absent(key, data)

    def list_dirs(self, prefix: str) -> list[str]:
        """The names of the "directories" directly below ``prefix`` (common key prefixes), sorted."""
        return self.objects.list_dirs(prefix)

    def side_tables(self) -> list[str]:
        """Paths of the side tables that exist: each model's vectors, each cluster model's assignments."""
        out = [f"embeddings/{slug}" for slug in self.list_dirs("embeddings")]
        out += [f"clusters/{cid}/assignments" for cid in self.list_dirs("clusters")
                if "assignments" in self.list_dirs(f"clusters/{cid}")]
        return out

    def side_table(self, path: str):
        """The latest snapshot of the Delta table at ``path`` below the store (not one of ``TABLES``: vectors,
        cluster assignments), or None when it does not exist yet."""
        from deltalake.exceptions import TableNotFoundError

        try:
            return self._snapshot(path)
        except TableNotFoundError:
            return None
        except Exception as e:
            raise self._error(e, f"reading table {path}") from None

    def create_side_table(self, path: str, schema: pa.Schema, description: str):
        """Create the Delta table at ``path`` unless it exists (concurrent creators agree); its latest snapshot.
        ``description`` is the table's metadata description (JSON of what its rows mean, e.g. the model id)."""
        from deltalake import DeltaTable

        for attempt in range(5):
            try:
                DeltaTable.create(self.table_url(path), schema, mode="ignore", description=description,
                                  storage_options=self.opts)
                break
            except Exception as e:  # two creators raced for version 0: the loser finds the table there
                if attempt == 4:
                    raise self._error(e, f"creating table {path}") from None
                time.sleep(0.05 * (attempt + 1))
        snap = self.side_table(path)
        if snap is None:
            raise StoreError(f"{self.url}: table {path} could not be read back after it was created")
        return snap

    def insert_absent(self, path: str, rows: pa.Table, key: str) -> int:
        """Insert the rows of ``rows`` whose ``key`` the side table ``path`` does not hold, in one commit
        (a MERGE, retried on conflict as the trace commits are); rows inserted. The table must exist."""
        if not rows.num_rows:
            return 0

        def step():
            snap = self.side_table(path)
            if snap is None:
                raise StoreError(f"{self.url}: table {path} is missing")
            m = (snap.merge(rows, f"t.{key} = s.{key}", source_alias="s", target_alias="t")
                 .when_not_matched_insert_all().execute())
            return int(m.get("num_target_rows_inserted", rows.num_rows))

        return self._retrying(f"writing to {path}", step)

    def vacuum(self, retention_hours: int | None = None, dry_run: bool = False) -> dict[str, list[str]]:
        """Delete data files no version since ``retention_hours`` (default: the table's, 7 days) refers to:
        files of removed rows and those a killed writer left, in every table (side tables included: vectors,
        cluster assignments). Returns the files per table."""
        out = {}
        for table in [*TABLES, *self.side_tables()]:
            snap = self.table(table) if table in TABLES else self.side_table(table)
            if snap is None:
                continue
            try:
                out[table] = snap.vacuum(retention_hours=retention_hours, dry_run=dry_run,
                                         enforce_retention_duration=retention_hours is None)
            except Exception as e:
                raise self._error(e, f"vacuuming {table}") from None
        return out


def _as_date(v) -> dt.date | None:
    if v is None:
        return None
    if isinstance(v, dt.date):
        return v
    try:
        return dt.date.fromisoformat(str(v)[:10])
    except ValueError:
        return None
