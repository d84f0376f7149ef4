"""The trace store: Hive-partitioned Parquet with atomic, idempotent commits.

Layout (every table readable as-is by polars, DuckDB, pyarrow and Spark)::

    STORE/
      STORE.json                       marker: store format and schema version
      traces/date=YYYY-MM-DD/part-*.parquet     one row per LLM call (zstd)
      quarantine/date=YYYY-MM-DD/part-*.parquet records that could not be stored, with the reason
      otlp_events/date=YYYY-MM-DD/part-*.parquet GenAI events from OTLP log records, by ingest day
      embeddings/ clusters/ replays/ canaries/  written by later stages
      models.json                      model catalog override (tracelens.modelcatalog)
      spool/collect/                   request bodies tracelens.collect acknowledged, not yet committed
      _txn/                            staging area of commits in flight (not data)
      corrupt/                         files and journals set aside (by recovery or `tracelens doctor --repair`)
      .lock                            writer lock (flock)
      .apply.lock                      held exclusively while a commit renames, shared while a scan reads

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

Confinement. A journal is validated before it is rolled forward: it must be
a JSON object of ``puts`` (``[staged, dest]`` pairs) and ``deletes``, every
staged path ``files/NNNNN.parquet`` (a regular file inside its own ``_txn``
entry), and every destination a relative path without ``.``/``..`` that
names one of the places a commit writes (``COMMIT_PLACES``: a partition
file of ``traces/``, ``quarantine/`` or ``otlp_events/``, an ``embeddings/`` or cluster
assignments file) with no symbolic link on the way from the root. A journal
that fails (unparsable, wrong types, a path outside those places) was not
written by tracelens: it is never executed, but set aside under
``corrupt/_txn/`` with a warning, as is anything in ``_txn`` that is not a
plain directory. A live commit checks the same rules before its commit
point. The lock files are opened without following symbolic links.

Consistent reads. Files are immutable once renamed in; a commit changes
what is visible only by its renames and deletes (the "apply" phase). That
phase holds an exclusive ``flock`` on ``.apply.lock``; ``scan()`` lists and
reads the files of a query holding it shared. So a reader sees the store as
it was between two commits: never half a batch, never a rewritten partition
twice (old and new file) or not at all (a file deleted under it). We chose
a lock over a manifest or retries because it keeps the layout plain Hive
Parquet (no file other tools must learn to read), a retry cannot tell a
double-counted partition from a real one, and the apply phase is only a few
renames, so neither side waits long. The listing and the read happen when
the frame is collected, not when ``scan()`` is called (a polars IO source),
so a lazy frame kept for a while (the TUI) still reads a consistent store.

Damaged files. Before a scan reads a file it checks its footer and schema
(cached per file, so each is read once per process): a file that is not
Parquet, is truncated, or whose columns have foreign types raises
``CorruptStoreError`` naming every such file and pointing to ``tracelens
doctor`` (``tracelens.doctor`` checks and repairs the whole store). A read
that fails past the footer (a damaged page) is diagnosed the same way. The
duplicate index used by ingest skips damaged files with a warning instead,
so ingest keeps working around them.

Idempotence. ``trace_id`` is stable across re-ingests; the store keeps an
index of ``trace_id -> content_hash`` (read from the Parquet files, refreshed
under the lock before each commit, so concurrent writers see each other's
rows). A known id with the same content is a duplicate; a known id with
different content is quarantined as a conflict, never overwritten.

Log events. GenAI events that arrive as OTLP log records (``otlp_events``,
keyed by ``event_id``: a re-ingested event is a duplicate) belong to the span
whose trace row has the id ``otel:<trace_id>:<span_id>``. ``commit_batch``
joins them under the same lock and in the same transaction as the rows: a
batch's span rows are re-derived with the events already stored for them
(and those of the batch), and new events whose span is already stored
re-derive that row, its file replaced by a copy holding the new row (the
row's content_hash changes; the index follows the file change). The
re-derivation itself is the caller's (``rejoin``: the ingest pipeline's
``tracelens.ingest.logjoin``); the store only finds rows and events and
commits the result, so whichever arrives first the stored row is the same.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import fcntl
import json
import logging
import os
import shutil
import time
import uuid
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

import polars as pl
import pyarrow as pa
import pyarrow.parquet as pq

from tracelens import __version__, atomic
from tracelens.schema import EVENTS_SCHEMA, QUARANTINE_SCHEMA, SCHEMA_VERSION, TRACE_SCHEMA
from tracelens.storefiles import (  # noqa: F401 - the store's public names, as before the split
    _SCHEMAS,
    COMMIT_PLACES,
    CORRUPT_DIR,
    DEFAULT_STORE,
    DOCTOR_HINT,
    EVENTS,
    MARKER,
    STORE_ENV,
    TABLES,
    CorruptStoreError,
    DamagedFile,
    JournalError,
    StoreError,
    TraceLookup,
    Transaction,
    _fsync_dir,
    _no_link_on_the_way,
    _one_line,
    _open_lock,
    _polars_schema,
    _scan_kwargs,
    as_utc,
    check_destination,
    check_rel_path,
    corrupt_destination,
    default_store_path,
    discard_if_unused,
    footer_problem,
    iter_batches,
    make_quarantine_row,
    parquet_metadata,
    read_journal,
    read_marker,
    read_problem,
    split_by_day,
    store_lock,
    write_parquet_file,
)

log = logging.getLogger(__name__)


class Store(TraceLookup):
    """A tracelens store at ``root``. Cheap to construct; opening checks the marker.

    Opening also rolls forward or sets aside what dead writers left in ``_txn``
    (when no writer holds the lock); ``recover=False`` leaves it untouched
    (``tracelens doctor`` looks before it changes anything).
    """

    format = "files"

    def __init__(self, root: str | os.PathLike, create: bool = False, recover: bool = True):
        self.root = Path(root)
        self.set_aside: list[tuple[str, str]] = []  # (_txn entry, reason) set aside by recovery in this process
        marker = self.root / MARKER
        if not marker.exists():
            if not create:
                raise StoreError(
                    f"no tracelens store at {self.root} (run `tracelens ingest` first, or pass --store / set {STORE_ENV})"
                )
            if self.root.exists() and any(self.root.iterdir()):
                raise StoreError(f"{self.root} exists and is not a tracelens store (no {MARKER}); refusing to write into it")
            self.root.mkdir(parents=True, exist_ok=True)
            atomic.write_json(
                marker,
                {
                    "tracelens_store": 1,
                    "schema_version": SCHEMA_VERSION,
                    "created_at": dt.datetime.now(dt.UTC).isoformat(),
                    "created_by": f"tracelens {__version__}",
                },
            )
        else:
            info = read_marker(marker)
            if info.get("format") == "delta":
                raise StoreError(f"{self.root} is a Delta Lake store: open it with tracelens.storeopen.open_store "
                                 "(every tracelens command does)")
            if info.get("schema_version", 0) > SCHEMA_VERSION:
                raise StoreError(
                    f"store {self.root} has schema version {info.get('schema_version')}, newer than this tracelens "
                    f"({SCHEMA_VERSION}); upgrade tracelens"
                )
        self._index: pl.DataFrame | None = None
        self._index_frames: dict[str, pl.DataFrame] = {}  # traces file -> its (trace_id, content_hash) rows
        self._event_frames: dict[str, pl.DataFrame] = {}  # otlp_events file -> its (event_id, key) rows
        self._quarantine_ids: set[str] | None = None
        self._quarantine_files: set[str] = set()
        if recover:
            self._recover_if_possible()

    @property
    def local_root(self) -> Path:
        """The store's directory, where side files (vectors, evals, the catalog override) live."""
        return self.root

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

    def lock(self, blocking: bool = True) -> contextlib.AbstractContextManager[bool]:
        """Exclusive writer lock; yields False if non-blocking and busy."""
        return store_lock(self.root, blocking)

    @contextlib.contextmanager
    def apply_lock(self, shared: bool) -> Iterator[None]:
        """The apply lock: exclusive while a commit renames and deletes, shared while a reader lists and reads.

        A store we cannot write to (no lock file and no right to create one)
        is read without it: nobody can be committing to it through us.
        """
        fd = _open_lock(self.root / ".apply.lock")
        if fd is None:
            yield
            return
        try:
            fcntl.flock(fd, fcntl.LOCK_SH if shared else fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(fd, fcntl.LOCK_UN)
        finally:
            os.close(fd)

    def _recover_if_possible(self) -> None:
        txn_root = self.root / "_txn"
        if not os.path.lexists(txn_root) or (txn_root.is_dir() and not txn_root.is_symlink() and not any(txn_root.iterdir())):
            return
        with contextlib.suppress(StoreError), self.lock(blocking=False) as got:  # a read-only store: leave it
            if got:
                self._recover()

    def _recover(self) -> None:
        """Roll forward journalled transactions, drop unjournalled ones, set aside foreign ones. Caller holds the lock."""
        txn_root = self.root / "_txn"
        if not os.path.lexists(txn_root):
            return
        if txn_root.is_symlink() or not txn_root.is_dir():
            # following it would roll forward or delete whatever it points at
            self._set_aside(txn_root, "_txn is a symbolic link or not a directory")
            return
        for d in sorted(txn_root.iterdir()):
            try:
                plan = self.read_journal(d)
            except JournalError as e:
                self._set_aside(d, str(e))
                continue
            if plan is not None:
                with self.apply_lock(shared=False):
                    self._apply_journal(d, plan)
            shutil.rmtree(d, ignore_errors=True)  # rmtree never follows links inside d
        _fsync_dir(txn_root)

    def check_destination(self, rel: str) -> str:
        """``rel`` if a commit may write or delete it (see ``COMMIT_PLACES``); raises JournalError otherwise."""
        return check_destination(self.root, rel)

    def read_journal(self, d: Path) -> dict | None:
        """The validated journal of the ``_txn`` entry ``d`` (see ``read_journal``)."""
        return read_journal(self.root, d)

    def _set_aside(self, path: Path, reason: str) -> None:
        """Move a foreign ``_txn`` entry (or ``_txn`` itself) to ``corrupt/`` without executing anything in it."""
        rel = path.relative_to(self.root).as_posix()
        try:
            dest = corrupt_destination(self.root, rel)
            os.rename(path, dest)  # renames a link itself, never what it points to
            where = f"moved to {dest.relative_to(self.root).as_posix()}"
        except (OSError, StoreError) as e:
            where = f"left in place, ignored ({e})"
        self.set_aside.append((rel, reason))
        log.warning("store %s: did not roll forward %s: %s; %s. See `tracelens doctor`.", self.root, rel, reason, where)

    def _apply_journal(self, d: Path, journal: dict) -> None:
        # test hook: widen the window between renames so kill tests (and reader tests) can land inside it
        pause = float(os.environ.get("TRACELENS_TEST_PAUSE_APPLY", "0") or 0)
        for staged_rel, dest_rel in journal["puts"]:
            if pause:
                time.sleep(pause)
            src = d / staged_rel
            dest = self.root / dest_rel
            if src.exists():
                dest.parent.mkdir(parents=True, exist_ok=True)
                os.replace(src, dest)
                _fsync_dir(dest.parent)
        for dest_rel in journal["deletes"]:
            if pause:
                time.sleep(pause)
            with contextlib.suppress(FileNotFoundError):
                (self.root / dest_rel).unlink()

    @contextlib.contextmanager
    def transaction(self) -> Iterator[Transaction]:
        """Stage files, then commit them all-or-nothing. Holds the writer lock throughout."""
        with self.lock():
            self._recover()
            # staging must not write through a link either; Transaction.stage/delete check each destination,
            # so a commit that recovery would refuse fails here, before its commit point (nothing is applied)
            _no_link_on_the_way(self.root, "_txn")
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
            atomic.write_json(txn.dir / "journal.json", journal, indent=None)  # commit point
            # Readers hold this lock shared while they list and read, so they see all of the renames or none. A
            # crash while holding it releases it (flock) and leaves the journal: the next open rolls it forward.
            with self.apply_lock(shared=False):
                self._apply_journal(txn.dir, journal)
            shutil.rmtree(txn.dir, ignore_errors=True)

    # ------------------------------------------------------------------ files

    def table_dir(self, table: str) -> Path:
        """The directory of ``table`` (its ``date=`` partitions) under the store root."""
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
        """The days ``table`` has a partition for, in order."""
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
        (the ``timestamp`` filter for datetime bounds is applied here). For
        ``traces`` and ``quarantine`` the files are listed and read when the
        frame is collected, under the shared apply lock (a consistent
        snapshot), after their footers are checked (``CorruptStoreError``).
        """
        since_d = since.date() if isinstance(since, dt.datetime) else since
        until_d = until.date() if isinstance(until, dt.datetime) else until
        schema = _SCHEMAS.get(table)
        if schema is None:  # tables of later stages, read as they are
            files = self.files(table, since_d, until_d)
            if not files:
                return pl.LazyFrame()
            return pl.scan_parquet([str(f) for f in files], hive_partitioning=True, hive_schema={"date": pl.Date})
        from polars.io.plugins import register_io_source

        full = pl.Schema({**_polars_schema(table, schema), "date": pl.Date})

        def read(with_columns: list[str] | None, predicate: pl.Expr | None, n_rows: int | None, batch_size: int | None):
            with self.apply_lock(shared=True):
                files = self.files(table, since_d, until_d)
                self.check_files(table, files)
                if not files:
                    empty = pl.DataFrame(schema=full)
                    yield empty.select(with_columns) if with_columns is not None else empty
                    return
                lf = pl.scan_parquet([str(f) for f in files], hive_partitioning=True, hive_schema={"date": pl.Date},
                                     **_scan_kwargs(table))
                if with_columns is not None:
                    lf = lf.select(with_columns)
                if predicate is not None:
                    lf = lf.filter(predicate)
                if n_rows is not None:
                    lf = lf.head(n_rows)
                df = self._collect(lf, table, files)
            yield df

        lf = register_io_source(read, schema=full)
        if table == "traces":
            if isinstance(since, dt.datetime):
                lf = lf.filter(pl.col("timestamp") >= as_utc(since))
            if isinstance(until, dt.datetime):
                lf = lf.filter(pl.col("timestamp") < as_utc(until))
        return lf

    def _collect(self, lf: pl.LazyFrame, table: str, files: list[Path]) -> pl.DataFrame:
        """``lf.collect()``; when it fails on a page damaged behind a valid footer, CorruptStoreError naming the file."""
        try:
            return lf.collect()
        except Exception as e:
            damaged = [DamagedFile(f, r) for f in files if (r := read_problem(f, table)) is not None]
            if damaged:
                raise CorruptStoreError(self.root, damaged) from e
            raise  # not the files' fault (e.g. an invalid expression)

    def check_files(self, table: str, files: list[Path]) -> None:
        """Raise CorruptStoreError naming every file of ``files`` that is damaged or reached through a link.

        A store never contains symbolic links; one in a table would feed rows
        from outside the store into every answer, so it is reported like a
        damaged file (``tracelens doctor --repair`` moves the link itself aside).
        """
        damaged = []
        linked_table = (self.root / table).is_symlink()
        for f in files:
            if linked_table or f.is_symlink() or f.parent.is_symlink():
                damaged.append(DamagedFile(f, "a symbolic link (or inside one): the store never contains links"))
            elif (r := footer_problem(f, table)) is not None:
                damaged.append(DamagedFile(f, r))
        if damaged:
            raise CorruptStoreError(self.root, damaged)

    def row_counts(self, table: str = "traces", since: dt.date | None = None,
                   until: dt.date | None = None) -> dict[Path, int]:
        """Rows per file of ``table`` from the footers, as one consistent snapshot."""
        with self.apply_lock(shared=True):
            files = self.files(table, since, until)
            self.check_files(table, files)
            return {f: pq.ParquetFile(f).metadata.num_rows for f in files}

    # ------------------------------------------------------------------ dedupe index

    def _readable(self, path: str, table: str, columns: list[str]) -> pa.Table | None:
        """``columns`` of ``path``, or None (with a warning naming it) when the file is damaged.

        The duplicate index skips a damaged file instead of failing the commit:
        ingest keeps working, and records whose only copy is in that file may be
        stored again (``tracelens doctor --repair`` moves the file aside).
        """
        problem = footer_problem(Path(path), table)
        if problem is None:
            try:
                return pq.read_table(path, columns=columns)
            except FileNotFoundError:
                return None
            except Exception as e:  # a damaged page behind a valid footer
                problem = f"damaged data ({_one_line(e)})"
        log.warning("skipped damaged file %s for the duplicate check: %s; %s", path, problem, DOCTOR_HINT)
        return None

    def _refresh_index(self) -> pl.DataFrame:
        """trace_id -> content_hash of every stored row, read once per file (files are immutable; a file that a
        commit replaced is dropped from the index with its rows)."""
        files = [str(p) for p in self.files("traces")]
        changed = self._index is None
        present = set(files)
        for f in [f for f in self._index_frames if f not in present]:
            del self._index_frames[f]
            changed = True
        for f in files:
            if f in self._index_frames:
                continue
            changed = True
            t = self._readable(f, "traces", ["trace_id", "content_hash"])
            self._index_frames[f] = (
                pl.from_arrow(t).select(pl.col("trace_id").cast(pl.String), pl.col("content_hash").cast(pl.String))
                if t is not None else pl.DataFrame(schema={"trace_id": pl.String, "content_hash": pl.String})
            )
        if changed:
            frames = [self._index_frames[f] for f in files]
            if frames:
                self._index = pl.concat(frames, rechunk=False) if len(frames) > 1 else frames[0]
            else:
                self._index = pl.DataFrame(schema={"trace_id": pl.String, "content_hash": pl.String})
        return self._index

    def stored_ids(self, trace_ids: Iterable[str]) -> set[str]:
        """Which of ``trace_ids`` the store holds a row for."""
        index = self._refresh_index()
        return set(index.filter(pl.col("trace_id").is_in(list(trace_ids)))["trace_id"].to_list())

    def _refresh_event_index(self) -> pl.DataFrame:
        """event_id and span key (``otel:<trace_id>:<span_id>``) of every stored log event."""
        files = [str(p) for p in self.files(EVENTS)]
        present = set(files)
        for f in [f for f in self._event_frames if f not in present]:
            del self._event_frames[f]
        for f in files:
            if f not in self._event_frames:
                t = self._readable(f, EVENTS, ["event_id", "trace_id", "span_id"])
                self._event_frames[f] = _event_keys(t) if t is not None else _event_keys(EVENTS_SCHEMA.empty_table())
        frames = [self._event_frames[f] for f in files]
        return pl.concat(frames, rechunk=False) if frames else _event_keys(EVENTS_SCHEMA.empty_table())

    def _events_for(self, keys: set[str], new_events: pa.Table | None) -> dict[str, list[dict]]:
        """The stored log events of the spans ``keys`` (plus those of ``new_events``), as rows, per span key."""
        out: dict[str, list[dict]] = {}
        wanted = list(keys)
        tables = []
        for f, frame in self._event_frames.items():
            if frame.height and bool(frame["key"].is_in(wanted).any()):
                t = self._readable(f, EVENTS, EVENTS_SCHEMA.names)
                if t is not None:
                    tables.append(t)
        if new_events is not None and new_events.num_rows:
            tables.append(new_events)
        for t in tables:
            rows = _event_keys(t, full=True).filter(pl.col("key").is_in(wanted))
            for r in rows.iter_rows(named=True):
                out.setdefault(r.pop("key"), []).append(r)
        return out

    def _refresh_quarantine_ids(self) -> set[str]:
        if self._quarantine_ids is None:
            self._quarantine_ids = set()
        files = [str(p) for p in self.files("quarantine")]
        for f in files:
            if f not in self._quarantine_files:
                t = self._readable(f, "quarantine", ["quarantine_id"])
                if t is not None:
                    self._quarantine_ids.update(t.column(0).to_pylist())
        self._quarantine_files = set(files)
        return self._quarantine_ids

    def commit_batch(self, traces: pa.Table, quarantine: pa.Table | None = None,
                     same_call: Callable[[dict, dict], bool] | None = None, events: pa.Table | None = None,
                     rejoin: Callable[[pa.Table, dict[str, list[dict]]], pa.Table] | None = None) -> BatchOutcome:
        """Store new traces and quarantine rows atomically; classify duplicates and conflicts.

        ``traces`` must have TRACE_SCHEMA. Rows whose trace_id is already
        stored with the same content_hash are duplicates; with a different
        content_hash they become quarantine rows (reason names the conflict).
        ``same_call(stored_row, new_row)``, when given, is asked about those
        rows (both read back as Polars rows of the stored schema) and makes the
        ones it accepts duplicates: a stored row's hash may come from an older
        definition of ``content_hash``. Returns what happened to every row.

        ``events`` (EVENTS_SCHEMA) are log events to keep; ``rejoin(rows,
        events_by_key)`` re-derives the rows (TRACE_SCHEMA) that have events
        and returns them in the same order (see the module docstring, "Log
        events"). Without ``rejoin`` events are kept but joined to nothing.
        """
        conflicts: list[dict] = []
        joined = _JoinOutcome()
        with self.transaction() as txn:
            index = self._refresh_index()
            if (events is not None and events.num_rows) or (rejoin is not None and traces.num_rows):
                traces, joined = self._join_events(txn, index, traces, events, rejoin)
            stored = duplicates = 0
            if traces.num_rows:
                # only the id columns go through polars: a batch's texts are never copied for the checks
                ids = pl.from_arrow(traces.select(["trace_id", "content_hash"])).with_row_index("_row")
                # the stored rows with one of this batch's ids only: the index is the whole store, and
                # deduplicating all of it for each batch cost time and memory in proportion to the store
                old = (index.filter(pl.col("trace_id").is_in(ids["trace_id"].implode()))
                       .unique("trace_id", keep="first").rename({"content_hash": "_old"}))
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
                clashes = list(cls.filter(~keep_s & ~dup_s).select("_row", "trace_id", "_stored_before").iter_rows())
                agreed = self._same_calls(traces, clashes, same_call) if same_call is not None and clashes else set()
                duplicates += len(agreed)
                for row, tid, before in clashes:
                    if row in agreed:
                        continue
                    where = "" if before else " (same batch)"
                    conflicts.append({"row": row, "reason": f"duplicate trace_id {tid} with different content{where}"})
                new = traces if keep_s.all() else traces.filter(keep_s.to_arrow())
                stored = new.num_rows
                if stored:
                    for day, tbl in split_by_day(new.select(TRACE_SCHEMA.names).cast(TRACE_SCHEMA)):
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
        return BatchOutcome(stored=stored, duplicates=duplicates, quarantined=len(q_rows), conflicts=len(conflicts),
                            events=joined.events, event_duplicates=joined.duplicates, joined=joined.joined)

    def _join_events(self, txn: Transaction, index: pl.DataFrame, traces: pa.Table, events: pa.Table | None,
                     rejoin) -> tuple[pa.Table, _JoinOutcome]:
        """Keep the new ``events`` and join events to rows (see the module docstring); caller holds the lock."""
        out = _JoinOutcome()
        eindex = self._refresh_event_index()
        new = None
        new_keys: set[str] = set()
        if events is not None and events.num_rows:
            ids = _event_keys(events).with_row_index("_row")
            keep = ids.with_columns(
                (~pl.col("event_id").is_in(eindex["event_id"].implode()) & pl.col("event_id").is_first_distinct())
                .alias("_keep"))["_keep"]
            new = events if keep.all() else events.filter(keep.to_arrow())
            out.events, out.duplicates = new.num_rows, events.num_rows - new.num_rows
            new_keys = set(ids.filter(keep)["key"].to_list())
            if new.num_rows:
                txn.stage(new, f"{EVENTS}/date={dt.datetime.now(dt.UTC).date().isoformat()}/part-{txn.txn_id}.parquet",
                          EVENTS)
        if rejoin is None:
            return traces, out
        batch_keys = {t for t in traces.column("trace_id").to_pylist() if t and t.startswith("otel:")}
        in_batch = batch_keys & (new_keys | set(eindex.filter(pl.col("key").is_in(list(batch_keys)))["key"].to_list()))
        others = new_keys - batch_keys
        in_store = set(index.filter(pl.col("trace_id").is_in(list(others)))["trace_id"].to_list()) if others else set()
        if not in_batch and not in_store:
            return traces, out
        by_key = self._events_for(in_batch | in_store, new)
        if in_batch:
            traces = rejoin(traces, {k: by_key[k] for k in in_batch if k in by_key})
        if in_store:
            out.joined = self._rewrite_joined(txn, {k: by_key[k] for k in in_store if k in by_key}, rejoin)
        return traces, out

    def _rewrite_joined(self, txn: Transaction, by_key: dict[str, list[dict]], rejoin) -> int:
        """Replace each traces file holding a row of ``by_key`` by a copy with those rows re-derived; rows changed."""
        wanted = list(by_key)
        changed = 0
        for n, (f, frame) in enumerate(sorted(self._index_frames.items())):
            if not frame.height or not bool(frame["trace_id"].is_in(wanted).any()):
                continue
            old = self._readable(f, "traces", TRACE_SCHEMA.names)
            if old is None:
                continue  # damaged: left as it is (reported by the warning and by doctor)
            old = old.cast(TRACE_SCHEMA)
            new = rejoin(old, by_key)
            diff = sum(a != b for a, b in zip(old.column("content_hash").to_pylist(),
                                               new.column("content_hash").to_pylist(), strict=True))
            if not diff:
                continue
            rel = Path(f).relative_to(self.root).as_posix()
            txn.stage(new.select(TRACE_SCHEMA.names).cast(TRACE_SCHEMA),
                      f"{rel.rsplit('/', 1)[0]}/part-{txn.txn_id}-j{n:05d}.parquet", "traces")
            txn.delete(rel)
            changed += diff
        return changed

    def _same_calls(self, traces: pa.Table, clashes: list[tuple], same_call: Callable[[dict, dict], bool]) -> set[int]:
        """Rows of ``traces`` that clash with a stored row by content_hash but that ``same_call`` accepts."""
        wanted = {tid: row for row, tid, before in clashes if before}
        if not wanted:
            return set()
        # one scan for the whole batch: a re-ingest can clash on every row
        stored = self.scan().filter(pl.col("trace_id").is_in(list(wanted))).unique("trace_id", keep="first").collect()
        rows = pl.from_arrow(traces.take(list(wanted.values())).select(TRACE_SCHEMA.names).cast(TRACE_SCHEMA))
        new_by_id = {r["trace_id"]: r for r in rows.iter_rows(named=True)}
        agreed = set()
        for old in stored.drop("date", strict=False).iter_rows(named=True):
            new = new_by_id.get(old["trace_id"])
            if new is not None and same_call(old, new):
                agreed.add(wanted[old["trace_id"]])
        return agreed

    def rewrite_partition(self, day: dt.date, transform) -> int:
        """Replace every file of one traces partition by ``transform(df) -> df`` atomically.

        Used by enrichment (e.g. re-running the refusal detector). Returns rows written.
        """
        with self.transaction() as txn:
            files = self.files("traces", day, day)
            if not files:
                return 0
            self.check_files("traces", files)  # a damaged file is reported, never silently dropped by the rewrite
            lf = pl.scan_parquet([str(f) for f in files], hive_partitioning=False, **_scan_kwargs("traces"))
            df = self._collect(lf, "traces", files)
            out = transform(df)
            tbl = out.to_arrow().select(TRACE_SCHEMA.names).cast(TRACE_SCHEMA)
            txn.stage(tbl, f"traces/date={day.isoformat()}/part-{txn.txn_id}.parquet", "traces")
            for f in files:
                txn.delete(str(f.relative_to(self.root)))
            return tbl.num_rows

    def count(self, table: str = "traces") -> int:
        """Rows of ``table``, from the Parquet footers (no data is read)."""
        return sum(self.row_counts(table).values())


@dataclass(frozen=True)
class BatchOutcome:
    """What ``commit_batch`` did with one batch: rows stored, duplicates, quarantined (conflicts among them), log events."""

    stored: int
    duplicates: int
    quarantined: int
    conflicts: int
    events: int = 0  # log events kept (new)
    event_duplicates: int = 0  # log events the store already held
    joined: int = 0  # stored rows (of earlier commits) re-derived with new log events


@dataclass
class _JoinOutcome:
    events: int = 0
    duplicates: int = 0
    joined: int = 0


def _event_keys(t: pa.Table, full: bool = False) -> pl.DataFrame:
    """event_id and span key (``otel:<trace_id>:<span_id>``, the id of the span's trace row) of log event rows;
    ``full``: every column plus the key."""
    df = pl.from_arrow(t if full else t.select(["event_id", "trace_id", "span_id"]))
    df = df.with_columns(pl.concat_str([pl.lit("otel:"), pl.col("trace_id"), pl.lit(":"), pl.col("span_id")]).alias("key"))
    return df if full else df.select("event_id", "key")
