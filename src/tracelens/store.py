"""The trace store: Hive-partitioned Parquet with atomic, idempotent commits.

Layout (every table readable as-is by polars, DuckDB, pyarrow and Spark)::

    STORE/
      STORE.json                       marker: store format and schema version
      traces/date=YYYY-MM-DD/part-*.parquet     one row per LLM call (zstd)
      quarantine/date=YYYY-MM-DD/part-*.parquet records that could not be stored, with the reason
      embeddings/ clusters/ replays/ canaries/  written by later stages
      models.json                      model catalog override (tracelens.modelcatalog)
      _txn/                            staging area of commits in flight (not data)
      .lock                            writer lock (flock)

Commit protocol. A batch is staged under ``_txn/<id>/`` (complete Parquet
files, fsynced), then a journal listing every rename and delete is written
atomically (``os.replace``): that is the commit point. The renames into
``traces/`` follow. Writers hold an exclusive ``flock`` on ``.lock`` from
staging to the end of the renames, so any ``_txn`` entry found by a process
holding the lock belongs to a dead writer: a journalled one is rolled
forward, an unjournalled one is deleted. A process killed at any instant
therefore leaves either none or all of a batch once any tracelens command has
opened the store again; every file in ``traces/`` is always a complete Parquet
file, because files only arrive there by rename.

Idempotence. ``trace_id`` is stable across re-ingests; the store keeps an
index of ``trace_id -> content_hash`` (read from the Parquet files, refreshed
under the lock before each commit, so concurrent writers see each other's
rows). A known id with the same content is a duplicate; a known id with
different content is quarantined as a conflict, never overwritten.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import fcntl
import json
import os
import shutil
import uuid
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import polars as pl
import pyarrow as pa
import pyarrow.parquet as pq

from tracelens import __version__
from tracelens.schema import QUARANTINE_SCHEMA, SCHEMA_VERSION, TRACE_SCHEMA

DEFAULT_STORE = "tracelens-store"
STORE_ENV = "TRACELENS_STORE"
MARKER = "STORE.json"
TABLES = ("traces", "quarantine")


_POLARS_SCHEMAS: dict[str, pl.Schema] = {}


def _polars_schema(table: str, schema) -> pl.Schema:
    """The polars schema of a stored table (converted once per process)."""
    if table not in _POLARS_SCHEMAS:
        _POLARS_SCHEMAS[table] = pl.from_arrow(schema.empty_table()).schema
    return _POLARS_SCHEMAS[table]


class StoreError(Exception):
    """A store that cannot be opened or written (message is user-facing)."""


def default_store_path() -> Path:
    return Path(os.environ.get(STORE_ENV) or DEFAULT_STORE)


def _fsync_dir(path: Path) -> None:
    with contextlib.suppress(OSError):
        fd = os.open(path, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def parquet_metadata(table: str, extra: dict[str, str] | None = None) -> dict[bytes, bytes]:
    meta = {
        "tracelens.schema_version": str(SCHEMA_VERSION),
        "tracelens.writer": f"tracelens {__version__}",
        "tracelens.table": table,
    }
    meta.update(extra or {})
    return {k.encode(): v.encode() for k, v in meta.items()}


# Free-text columns get no Parquet min/max statistics: nothing is pruned by them, and the writer would hold
# copies of the longest texts to compute them (a 100 MB prompt cost ~450 MB more to write).
_NO_STATISTICS = frozenset({
    "system_prompt", "messages", "prompt_text", "response_text", "tool_calls", "tool_definitions", "stop_details",
    "error_message", "attributes", "request_raw", "response_raw", "refusal_evidence", "raw", "reason",
})


def write_parquet_file(table: pa.Table, path: Path, table_name: str, extra_meta: dict[str, str] | None = None) -> None:
    """Write ``table`` to ``path`` with our metadata, zstd, and fsync."""
    existing = table.schema.metadata or {}
    table = table.replace_schema_metadata({**existing, **parquet_metadata(table_name, extra_meta)})
    path.parent.mkdir(parents=True, exist_ok=True)
    stats = [f.name for f in table.schema if f.name not in _NO_STATISTICS and not pa.types.is_nested(f.type)]
    with open(path, "wb") as fh:
        pq.write_table(table, fh, compression="zstd", row_group_size=64_000, write_statistics=stats)
        fh.flush()
        os.fsync(fh.fileno())


@dataclass
class Transaction:
    """Files staged for one atomic commit."""

    store: Store
    txn_id: str
    puts: list[tuple[str, str]] = field(default_factory=list)  # (staged rel path, dest rel path)
    deletes: list[str] = field(default_factory=list)

    @property
    def dir(self) -> Path:
        return self.store.root / "_txn" / self.txn_id

    def stage(self, table: pa.Table, dest_rel: str, table_name: str, extra_meta: dict[str, str] | None = None) -> None:
        staged_rel = f"files/{len(self.puts):05d}.parquet"
        write_parquet_file(table, self.dir / staged_rel, table_name, extra_meta)
        self.puts.append((staged_rel, dest_rel))

    def delete(self, dest_rel: str) -> None:
        self.deletes.append(dest_rel)


class Store:
    """A tracelens store at ``root``. Cheap to construct; opening checks the marker."""

    def __init__(self, root: str | os.PathLike, create: bool = False):
        self.root = Path(root)
        marker = self.root / MARKER
        if not marker.exists():
            if not create:
                raise StoreError(
                    f"no tracelens store at {self.root} (run `tracelens ingest` first, or pass --store / set {STORE_ENV})"
                )
            if self.root.exists() and any(self.root.iterdir()):
                raise StoreError(f"{self.root} exists and is not a tracelens store (no {MARKER}); refusing to write into it")
            self.root.mkdir(parents=True, exist_ok=True)
            tmp = self.root / (MARKER + ".tmp")
            tmp.write_text(
                json.dumps(
                    {
                        "tracelens_store": 1,
                        "schema_version": SCHEMA_VERSION,
                        "created_at": dt.datetime.now(dt.UTC).isoformat(),
                        "created_by": f"tracelens {__version__}",
                    },
                    indent=2,
                )
            )
            os.replace(tmp, marker)
        else:
            try:
                info = json.loads(marker.read_text())
            except ValueError as e:
                raise StoreError(f"{marker} is not valid JSON: {e}") from e
            if info.get("schema_version", 0) > SCHEMA_VERSION:
                raise StoreError(
                    f"store {self.root} has schema version {info.get('schema_version')}, newer than this tracelens "
                    f"({SCHEMA_VERSION}); upgrade tracelens"
                )
        self._index: pl.DataFrame | None = None
        self._indexed_files: set[str] = set()
        self._quarantine_ids: set[str] | None = None
        self._quarantine_files: set[str] = set()
        self._recover_if_possible()

    def secret(self, name: str, nbytes: int = 32) -> bytes:
        """A random per-store secret (created on first use, mode 0600), e.g. the redaction salt."""
        p = self.root / f".{name}"
        if not p.exists():
            tmp = self.root / f".{name}.{uuid.uuid4().hex}.tmp"
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(fd, "wb") as fh:
                fh.write(os.urandom(nbytes))
            try:
                os.link(tmp, p)  # first writer wins; a concurrent one reads the winner's secret
            except FileExistsError:
                pass
            finally:
                tmp.unlink()
        return p.read_bytes()

    # ------------------------------------------------------------------ locking

    @contextlib.contextmanager
    def lock(self, blocking: bool = True) -> Iterator[bool]:
        """Exclusive writer lock; yields False if non-blocking and busy."""
        fd = os.open(self.root / ".lock", os.O_RDWR | os.O_CREAT, 0o644)
        try:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | (0 if blocking else fcntl.LOCK_NB))
            except BlockingIOError:
                yield False
                return
            try:
                yield True
            finally:
                fcntl.flock(fd, fcntl.LOCK_UN)
        finally:
            os.close(fd)

    def _recover_if_possible(self) -> None:
        txn_root = self.root / "_txn"
        if not txn_root.exists() or not any(txn_root.iterdir()):
            return
        with self.lock(blocking=False) as got:
            if got:
                self._recover()

    def _recover(self) -> None:
        """Roll forward journalled transactions, drop unjournalled ones. Caller holds the lock."""
        txn_root = self.root / "_txn"
        if not txn_root.exists():
            return
        for d in sorted(txn_root.iterdir()):
            journal = d / "journal.json"
            if journal.exists():
                self._apply_journal(d, json.loads(journal.read_text()))
            shutil.rmtree(d, ignore_errors=True)
        _fsync_dir(txn_root)

    def _apply_journal(self, d: Path, journal: dict) -> None:
        # test hook: widen the window between renames so kill tests can land inside it
        pause = float(os.environ.get("TRACELENS_TEST_PAUSE_APPLY", "0") or 0)
        for staged_rel, dest_rel in journal["puts"]:
            if pause:
                import time

                time.sleep(pause)
            src = d / staged_rel
            dest = self.root / dest_rel
            if src.exists():
                dest.parent.mkdir(parents=True, exist_ok=True)
                os.replace(src, dest)
                _fsync_dir(dest.parent)
        for dest_rel in journal["deletes"]:
            with contextlib.suppress(FileNotFoundError):
                (self.root / dest_rel).unlink()

    @contextlib.contextmanager
    def transaction(self) -> Iterator[Transaction]:
        """Stage files, then commit them all-or-nothing. Holds the writer lock throughout."""
        with self.lock():
            self._recover()
            txn = Transaction(self, dt.datetime.now(dt.UTC).strftime("%Y%m%dT%H%M%S") + "-" + uuid.uuid4().hex[:12])
            txn.dir.mkdir(parents=True)
            try:
                yield txn
            except BaseException:
                shutil.rmtree(txn.dir, ignore_errors=True)
                raise
            if not txn.puts and not txn.deletes:
                shutil.rmtree(txn.dir, ignore_errors=True)
                return
            journal = {"puts": txn.puts, "deletes": txn.deletes}
            tmp = txn.dir / "journal.json.tmp"
            with open(tmp, "w") as fh:
                json.dump(journal, fh)
                fh.flush()
                os.fsync(fh.fileno())
            os.replace(tmp, txn.dir / "journal.json")  # commit point
            _fsync_dir(txn.dir)
            self._apply_journal(txn.dir, journal)
            shutil.rmtree(txn.dir, ignore_errors=True)

    # ------------------------------------------------------------------ files

    def table_dir(self, table: str) -> Path:
        return self.root / table

    def files(self, table: str = "traces", since: dt.date | None = None, until: dt.date | None = None) -> list[Path]:
        """Parquet files of ``table``, pruned by date partition (inclusive bounds)."""
        base = self.table_dir(table)
        if not base.exists():
            return []
        out = []
        for part in sorted(base.iterdir()):
            if not part.is_dir() or not part.name.startswith("date="):
                continue
            try:
                day = dt.date.fromisoformat(part.name[5:])
            except ValueError:
                continue
            if since and day < since:
                continue
            if until and day > until:
                continue
            out.extend(sorted(p for p in part.glob("*.parquet") if not p.name.startswith(".")))
        return out

    def dates(self, table: str = "traces") -> list[dt.date]:
        base = self.table_dir(table)
        if not base.exists():
            return []
        out = []
        for part in sorted(base.iterdir()):
            if part.name.startswith("date=") and any(part.glob("*.parquet")):
                with contextlib.suppress(ValueError):
                    out.append(dt.date.fromisoformat(part.name[5:]))
        return out

    def scan(
        self,
        table: str = "traces",
        since: dt.date | dt.datetime | None = None,
        until: dt.date | dt.datetime | None = None,
    ) -> pl.LazyFrame:
        """Lazy frame over ``table`` with a ``date`` partition column; empty frame if nothing stored.

        Only partitions in [since, until] are opened; callers add row filters
        (the ``timestamp`` filter for datetime bounds is applied here).
        """
        since_d = since.date() if isinstance(since, dt.datetime) else since
        until_d = until.date() if isinstance(until, dt.datetime) else until
        files = self.files(table, since_d, until_d)
        schema = TRACE_SCHEMA if table == "traces" else QUARANTINE_SCHEMA if table == "quarantine" else None
        if not files:
            if schema is None:
                return pl.LazyFrame()
            empty = pl.from_arrow(schema.empty_table())
            return empty.lazy().with_columns(pl.lit(None, dtype=pl.Date).alias("date"))
        kw = {}
        if schema is not None:
            # Read every file into the current schema: a partition written by an older tracelens (before a
            # column was added) reads with that column null instead of failing the whole scan.
            kw = {"schema": _polars_schema(table, schema), "missing_columns": "insert"}
        lf = pl.scan_parquet(
            [str(f) for f in files],
            hive_partitioning=True,
            hive_schema={"date": pl.Date},
            **kw,
        )
        if table == "traces":
            if isinstance(since, dt.datetime):
                lf = lf.filter(pl.col("timestamp") >= _utc(since))
            if isinstance(until, dt.datetime):
                lf = lf.filter(pl.col("timestamp") < _utc(until))
        return lf

    def get(self, trace_id: str) -> dict | None:
        """One trace as a dict (schema columns), or None."""
        df = self.scan().filter(pl.col("trace_id") == trace_id).collect()
        if df.height == 0:
            # allow unambiguous prefixes, as git does for hashes
            df = self.scan().filter(pl.col("trace_id").str.starts_with(trace_id)).head(2).collect()
            if df.height != 1:
                return None
        row = df.row(0, named=True)
        row.pop("date", None)
        return row

    # ------------------------------------------------------------------ dedupe index

    def _refresh_index(self) -> pl.DataFrame:
        files = [str(p) for p in self.files("traces")]
        new = [f for f in files if f not in self._indexed_files]
        frames = [] if self._index is None else [self._index]
        for f in new:
            t = pq.read_table(f, columns=["trace_id", "content_hash"])
            frames.append(pl.from_arrow(t))
        self._indexed_files = set(files)
        if frames:
            self._index = pl.concat(frames, rechunk=False) if len(frames) > 1 else frames[0]
        else:
            self._index = pl.DataFrame(schema={"trace_id": pl.String, "content_hash": pl.String})
        return self._index

    def _refresh_quarantine_ids(self) -> set[str]:
        if self._quarantine_ids is None:
            self._quarantine_ids = set()
        files = [str(p) for p in self.files("quarantine")]
        for f in files:
            if f not in self._quarantine_files:
                self._quarantine_ids.update(pq.read_table(f, columns=["quarantine_id"]).column(0).to_pylist())
        self._quarantine_files = set(files)
        return self._quarantine_ids

    def commit_batch(self, traces: pa.Table, quarantine: pa.Table | None = None) -> BatchOutcome:
        """Store new traces and quarantine rows atomically; classify duplicates and conflicts.

        ``traces`` must have TRACE_SCHEMA. Rows whose trace_id is already
        stored with the same content_hash are duplicates; with a different
        content_hash they become quarantine rows (reason names the conflict).
        Returns what happened to every row.
        """
        conflicts: list[dict] = []
        with self.transaction() as txn:
            index = self._refresh_index()
            stored = duplicates = 0
            if traces.num_rows:
                # only the id columns go through polars: a batch's texts are never copied for the checks
                ids = pl.from_arrow(traces.select(["trace_id", "content_hash"])).with_row_index("_row")
                old = index.unique("trace_id", keep="first").rename({"content_hash": "_old"})
                first = ids.unique("trace_id", keep="first").select("trace_id", pl.col("content_hash").alias("_first_ch"),
                                                                   pl.col("_row").alias("_first_row"))
                cls = (
                    ids.join(old, on="trace_id", how="left")
                    .join(first, on="trace_id", how="left")
                    .with_columns(
                        # the content this row is compared with: the stored row, else the first copy in this batch
                        pl.when(pl.col("_old").is_not_null()).then(pl.col("_old"))
                        .when(pl.col("_row") != pl.col("_first_row")).then(pl.col("_first_ch"))
                        .otherwise(None).alias("_ref"),
                        pl.col("_old").is_not_null().alias("_stored_before"),
                    )
                    .sort("_row")
                )
                keep_s = cls["_ref"].is_null()
                dup_s = ~keep_s & (cls["_ref"] == cls["content_hash"])
                duplicates = int(dup_s.sum())
                for row, tid, before in cls.filter(~keep_s & ~dup_s).select("_row", "trace_id", "_stored_before").iter_rows():
                    where = "" if before else " (same batch)"
                    conflicts.append({"row": row, "reason": f"duplicate trace_id {tid} with different content{where}"})
                new = traces if keep_s.all() else traces.filter(keep_s.to_arrow())
                stored = new.num_rows
                if stored:
                    for day, tbl in _by_day(new.select(TRACE_SCHEMA.names).cast(TRACE_SCHEMA)):
                        txn.stage(tbl, f"traces/date={day.isoformat()}/part-{txn.txn_id}.parquet", "traces")
            q_rows = quarantine.to_pylist() if quarantine is not None and quarantine.num_rows else []
            for c in conflicts:
                r = traces.slice(c["row"], 1).to_pylist()[0]
                q_rows.append(
                    make_quarantine_row(
                        r["source_format"],
                        r["source_file"],
                        r["source_locator"],
                        c["reason"],
                        r.get("response_raw") and json.dumps({"request": r.get("request_raw"), "response": r.get("response_raw")})
                        or json.dumps({k: str(v) for k, v in r.items()}),
                    )
                )
            qids = self._refresh_quarantine_ids()
            fresh = []
            seen = set()
            for r in q_rows:
                if r["quarantine_id"] in qids or r["quarantine_id"] in seen:
                    continue
                seen.add(r["quarantine_id"])
                fresh.append(r)
            if fresh:
                day = dt.datetime.now(dt.UTC).date().isoformat()
                qt = pa.Table.from_pylist(fresh, schema=QUARANTINE_SCHEMA)
                txn.stage(qt, f"quarantine/date={day}/part-{txn.txn_id}.parquet", "quarantine")
        # the commit succeeded: make the index reflect it without re-reading
        return BatchOutcome(stored=stored, duplicates=duplicates, quarantined=len(q_rows), conflicts=len(conflicts))

    def rewrite_partition(self, day: dt.date, transform) -> int:
        """Replace every file of one traces partition by ``transform(df) -> df`` atomically.

        Used by enrichment (e.g. re-running the refusal detector). Returns rows written.
        """
        with self.transaction() as txn:
            files = self.files("traces", day, day)
            if not files:
                return 0
            df = pl.read_parquet([str(f) for f in files], hive_partitioning=False)
            out = transform(df)
            tbl = out.to_arrow().select(TRACE_SCHEMA.names).cast(TRACE_SCHEMA)
            txn.stage(tbl, f"traces/date={day.isoformat()}/part-{txn.txn_id}.parquet", "traces")
            for f in files:
                txn.delete(str(f.relative_to(self.root)))
            return tbl.num_rows

    def count(self, table: str = "traces") -> int:
        return sum(pq.ParquetFile(f).metadata.num_rows for f in self.files(table))


@dataclass(frozen=True)
class BatchOutcome:
    stored: int
    duplicates: int
    quarantined: int
    conflicts: int


def _by_day(traces: pa.Table) -> Iterator[tuple[dt.date, pa.Table]]:
    """The rows of ``traces`` per UTC day, each day sorted by timestamp (stable).

    Only the timestamp column goes through polars; the rows are taken in
    Arrow, and a batch that is one day already in order is passed on as it
    is, so a batch of large records is not held several times over.
    """
    order = (
        pl.from_arrow(traces.select(["timestamp"])).with_row_index("_row")
        .with_columns(pl.col("timestamp").dt.date().alias("_day"))
        .sort(["_day", "timestamp"], maintain_order=True)
    )
    for (day,), part in order.group_by("_day", maintain_order=True):
        rows = part["_row"]
        if rows.len() == traces.num_rows and bool((rows == pl.int_range(0, rows.len(), eager=True)).all()):
            yield day, traces
        else:
            yield day, traces.take(rows.to_arrow())


def make_quarantine_row(source_format: str | None, source_file: str, locator: str, reason: str, raw: str | None) -> dict:
    """A quarantine row; its id is stable so re-ingesting a bad file adds nothing new."""
    import hashlib

    h = hashlib.sha256()
    for part in (source_format or "", source_file, locator, reason, raw or ""):
        h.update(part.encode("utf-8", "surrogatepass"))
        h.update(b"\x00")
    return {
        "quarantine_id": h.hexdigest()[:32],
        "quarantined_at": dt.datetime.now(dt.UTC),
        "source_format": source_format,
        "source_file": source_file,
        "source_locator": locator,
        "reason": reason,
        "raw": raw,
    }


def _utc(t: dt.datetime) -> dt.datetime:
    return t.replace(tzinfo=dt.UTC) if t.tzinfo is None else t.astimezone(dt.UTC)


def iter_batches(items: Iterable, size: int) -> Iterator[list]:
    batch = []
    for it in items:
        batch.append(it)
        if len(batch) >= size:
            yield batch
            batch = []
    if batch:
        yield batch
