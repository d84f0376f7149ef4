"""The files of a store, below the ``Store`` class: layout constants, locks, damaged-file checks, journals.

Contract (the store's layout and commit protocol are in ``tracelens.store``):

* names: ``MARKER``, ``TABLES``, ``COMMIT_PLACES`` (every place a commit may
  write), ``CORRUPT_DIR``; ``check_rel_path`` refuses any other destination,
  and a path with a symbolic link on the way from the root;
* locks: ``store_lock`` (the writer lock every writer of a store file holds),
  ``discard_if_unused`` (remove a store a failed command created);
* damaged files: ``footer_problem`` / ``read_problem`` say what is wrong with
  a Parquet file of a table (cached per file identity: files never change in
  place), ``corrupt_destination`` where ``doctor --repair`` moves it;
* journals: ``read_journal`` validates a commit's journal before anything in
  it is executed; ``Transaction`` stages files for one commit;
  ``write_parquet_file`` writes one table file with the store's metadata.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import errno
import fcntl
import json
import logging
import os
import re
import shutil
import stat
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import polars as pl
import pyarrow as pa
import pyarrow.parquet as pq

from tracelens import __version__
from tracelens.atomic import fsync_dir
from tracelens.schema import EVENTS_SCHEMA, QUARANTINE_SCHEMA, SCHEMA_VERSION, TRACE_SCHEMA
from tracelens.storenames import DEFAULT_STORE, MARKER, STORE_ENV  # noqa: F401 - re-exported

if TYPE_CHECKING:
    from tracelens.store import Store

log = logging.getLogger(__name__)

TABLES = ("traces", "quarantine", "otlp_events")
EVENTS = "otlp_events"  # GenAI events from OTLP log records, waiting for or merged into their span (see below)
CORRUPT_DIR = "corrupt"
DOCTOR_HINT = "run `tracelens doctor` to check the store and `tracelens doctor --repair` to move damaged files aside"

# Every place a commit may put or delete a file, relative to the root. A journal naming anything else was not
# written by tracelens and is never executed; a new table written through Store.transaction() is added here.
COMMIT_PLACES = (
    re.compile(r"(?:traces|quarantine|otlp_events)/date=\d{4}-\d{2}-\d{2}/[^/]+\.parquet"),
    re.compile(r"embeddings/[^/]+/[^/]+\.parquet"),
    re.compile(r"clusters/[^/]+/assignments/[^/]+\.parquet"),
)
_STAGED = re.compile(r"files/\d{5}\.parquet")
_MAX_JOURNAL = 16 * 1024 * 1024  # a commit's journal lists a few files: a few KB
_UNSAFE_CHARS = re.compile(r"[\x00-\x1f\x7f\\]")


_POLARS_SCHEMAS: dict[str, pl.Schema] = {}


def _polars_schema(table: str, schema) -> pl.Schema:
    """The polars schema of a stored table (converted once per process)."""
    if table not in _POLARS_SCHEMAS:
        _POLARS_SCHEMAS[table] = pl.from_arrow(schema.empty_table()).schema
    return _POLARS_SCHEMAS[table]


class TraceLookup:
    """Finding one trace by id, shared by both store kinds: it needs only their ``scan()`` and ``root``."""

    def get(self, trace_id: str) -> dict | None:
        """One trace as a dict (schema columns), or None; an unambiguous prefix of an id is enough."""
        df = self.scan().filter(pl.col("trace_id") == trace_id).collect()
        if df.height == 0:
            # allow unambiguous prefixes, as git does for hashes
            df = self.scan().filter(pl.col("trace_id").str.starts_with(trace_id)).head(2).collect()
            if df.height != 1:
                return None
        row = df.row(0, named=True)
        row.pop("date", None)
        return row

    def ids_matching(self, prefix: str, limit: int = 5) -> list[str]:
        """Up to ``limit`` distinct trace ids that start with ``prefix`` (sorted)."""
        return (
            self.scan().select("trace_id").filter(pl.col("trace_id").str.starts_with(prefix))
            .unique().sort("trace_id").head(limit).collect()["trace_id"].to_list()
        )

    def not_found(self, trace_id: str) -> str:
        """Why ``get(trace_id)`` found nothing, for a message: an ambiguous prefix names its matches."""
        ids = self.ids_matching(trace_id, limit=6)
        if len(ids) > 1:
            more = " …" if len(ids) > 5 else ""
            return (f"{'more than 5' if more else len(ids)} traces match {trace_id!r}: "
                    f"{', '.join(ids[:5])}{more} (give more of the id)")
        return f"no trace {trace_id!r} in {self.root}"


class StoreError(Exception):
    """A store that cannot be opened or written (message is user-facing)."""


class JournalError(StoreError):
    """A ``_txn`` entry that tracelens did not write (the reason is user-facing)."""


@dataclass(frozen=True)
class DamagedFile:
    """A Parquet file of the store that cannot be read as its table."""

    path: Path
    reason: str


class CorruptStoreError(StoreError):
    """Files a read needs are damaged; the message names each one and points to ``tracelens doctor``."""

    def __init__(self, root: Path, damaged: list[DamagedFile]):
        self.root = root
        self.damaged = damaged
        shown = "\n".join(f"  {d.path}: {d.reason}" for d in damaged[:20])
        more = f"\n  ... and {len(damaged) - 20} more" if len(damaged) > 20 else ""
        super().__init__(
            f"{len(damaged)} damaged file(s) in the store {root} cannot be read:\n{shown}{more}\n"
            f"{DOCTOR_HINT} (--store {root})"
        )


def _short(value: object) -> str:
    text = repr(value)
    return text if len(text) <= 80 else text[:77] + "..."


def check_rel_path(rel: object, places: tuple[re.Pattern, ...] = COMMIT_PLACES) -> str:
    """``rel`` if it is a safe relative path naming one of ``places``; raises JournalError otherwise."""
    if not isinstance(rel, str) or not rel:
        raise JournalError(f"path {_short(rel)} is not a non-empty string")
    if _UNSAFE_CHARS.search(rel):
        raise JournalError(f"path {_short(rel)} contains control characters or a backslash")
    if rel.startswith("/") or os.path.isabs(rel):
        raise JournalError(f"path {_short(rel)} is absolute")
    if any(part in ("", ".", "..") for part in rel.split("/")):
        raise JournalError(f"path {_short(rel)} has an empty, '.' or '..' component")
    if not any(p.fullmatch(rel) for p in places):
        raise JournalError(f"path {_short(rel)} is not a place a commit writes")
    return rel


def _no_link_on_the_way(root: Path, rel_dir: str) -> None:
    """Raise JournalError when a directory on the way from ``root`` to ``root/rel_dir`` is a link or not a directory.

    Missing directories are fine (the commit creates them, as real ones).
    The root itself may be a link: that is where the user keeps the store.
    """
    cur = root
    for part in [p for p in rel_dir.split("/") if p]:
        cur = cur / part
        try:
            st = os.lstat(cur)
        except FileNotFoundError:
            return
        if stat.S_ISLNK(st.st_mode):
            raise JournalError(f"{cur} is a symbolic link; a commit never writes through one")
        if not stat.S_ISDIR(st.st_mode):
            raise JournalError(f"{cur} is not a directory")
    real_root, real = os.path.realpath(root), os.path.realpath(cur)
    if os.path.commonpath([real_root, real]) != real_root:  # belt and braces: the walk above already ensures it
        raise JournalError(f"{cur} resolves outside the store")


def _open_lock(path: Path) -> int | None:
    """An fd for flock on ``path`` (created if missing), never through a symbolic link; None if it cannot exist."""
    flags = os.O_CREAT | os.O_NOFOLLOW | os.O_CLOEXEC
    try:
        return os.open(path, os.O_RDWR | flags, 0o644)
    except OSError as e:
        if e.errno == errno.ELOOP:
            raise StoreError(f"{path} is a symbolic link; refusing to use it as a lock (remove it)") from None
        if e.errno not in (errno.EACCES, errno.EPERM, errno.EROFS):
            raise
    try:  # a store we may only read: a read-only fd still takes a shared lock
        return os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC)
    except OSError:
        return None


def one_line(e: BaseException | str, limit: int = 300) -> str:
    """An error's text on one line for a message: whitespace collapsed, cut at ``limit`` characters (marked
    with " …"); the exception's type when it says nothing."""
    text = " ".join(str(e).split())
    if len(text) > limit:
        return text[:limit] + " …"
    return text or (type(e).__name__ if isinstance(e, BaseException) else "")


def discard_if_unused(root: str | Path) -> bool:
    """Remove a store directory that holds nothing but what opening it wrote (marker, locks, empty folders, the
    creation of empty Delta tables).

    For a command that created a store and then stored nothing (a failed
    ingest): it must not leave an empty store behind. A store holding any
    other file is left alone; returns whether it was removed.
    """
    root = Path(root)
    if not (root / MARKER).is_file():
        return False
    for dirpath, _dirs, files in os.walk(root):
        created = {"00000000000000000000.json"} if os.path.basename(dirpath) == "_delta_log" else set()
        if set(files) - {MARKER, ".lock", ".apply.lock"} - created:  # a Delta table's version 0 is its creation
            return False
    shutil.rmtree(root, ignore_errors=True)
    return not root.exists()


@contextlib.contextmanager
def store_lock(root: str | os.PathLike, blocking: bool = True) -> Iterator[bool]:
    """The store's exclusive writer lock (``ROOT/.lock``); yields False if non-blocking and busy.

    Every writer of a file under a store holds it: commits, and the side files
    (replays, canaries, clusters, the model override) written with
    ``tracelens.atomic``. flock is per open file, so a process must not take it
    twice (the second waits for the first).
    """
    root = Path(root)
    fd = _open_lock(root / ".lock")
    if fd is None:
        raise StoreError(f"cannot write to the store {root} (no permission to create its lock)")
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


def default_store_path() -> Path:
    """The store directory when none is given: ``$TRACELENS_STORE``, else ``./tracelens-store``."""
    return Path(os.environ.get(STORE_ENV) or DEFAULT_STORE)


_fsync_dir = fsync_dir


def read_marker(marker: Path) -> dict:
    """The store marker as a dict; StoreError (naming the file) for anything else."""
    try:
        info = json.loads(marker.read_bytes().decode("utf-8"))
    except (ValueError, UnicodeDecodeError) as e:
        raise StoreError(f"{marker} is not valid JSON: {e}") from None
    except OSError as e:
        raise StoreError(f"{marker} cannot be read: {e.strerror or e}") from None
    if not isinstance(info, dict) or not isinstance(info.get("schema_version", 0), int):
        raise StoreError(f"{marker} is not a tracelens store marker (expected an object with an integer schema_version)")
    return info


def corrupt_destination(root: Path, rel: str) -> Path:
    """A free path under ``root/corrupt/`` for the store entry ``rel`` (same relative path; a suffix if taken)."""
    parent = f"{CORRUPT_DIR}/{rel}".rsplit("/", 1)[0]
    _no_link_on_the_way(root, parent)
    dest = root / CORRUPT_DIR / rel
    dest.parent.mkdir(parents=True, exist_ok=True)
    n = 1
    while os.path.lexists(dest):
        dest = root / CORRUPT_DIR / f"{rel}.{n}"
        n += 1
    return dest


# ------------------------------------------------------------------ damaged files

_REQUIRED = {name: frozenset(f.name for f in schema if not f.nullable)
             for name, schema in (("traces", TRACE_SCHEMA), ("quarantine", QUARANTINE_SCHEMA),
                                  (EVENTS, EVENTS_SCHEMA))}
_SCHEMAS = {"traces": TRACE_SCHEMA, "quarantine": QUARANTINE_SCHEMA, EVENTS: EVENTS_SCHEMA}
# (path, size, mtime_ns, inode, table) -> problem or None; files never change in place, so this stays true
_FOOTER_CACHE: dict[tuple, str | None] = {}


def _compatible(found: pl.DataType, want: pl.DataType) -> bool:
    """Whether a scan into ``want`` reads a column stored as ``found`` (polars' own rule, as far as we use it)."""
    if found == want:
        return True
    # a zone-less timestamp of the same unit reads as UTC; polars refuses any other difference without a cast
    return isinstance(found, pl.Datetime) and isinstance(want, pl.Datetime) and found.time_unit == want.time_unit \
        and found.time_zone is None


def footer_problem(path: Path, table: str) -> str | None:
    """Why ``path`` cannot be read as a file of ``table`` judging by its footer (None if it can).

    Catches zero-byte, truncated and non-Parquet files, files of another
    table and columns of foreign types. Files lacking optional columns (from
    an older writer) are fine. A damaged page behind a valid footer is only
    found by reading it (``read_problem``).
    """
    try:
        st = os.stat(path)
    except FileNotFoundError:
        return None  # gone since it was listed: nothing to read, nothing damaged
    key = (str(path), st.st_size, st.st_mtime_ns, st.st_ino, table)
    if key in _FOOTER_CACHE:
        return _FOOTER_CACHE[key]
    problem = _footer_problem(path, table, st.st_size)
    if len(_FOOTER_CACHE) > 100_000:
        _FOOTER_CACHE.clear()
    _FOOTER_CACHE[key] = problem
    return problem


def _footer_problem(path: Path, table: str, size: int) -> str | None:
    if size == 0:
        return "empty file (0 bytes)"
    if size < 12:
        return f"truncated: {size} bytes is too short for a Parquet file"
    try:
        with open(path, "rb") as fh:
            head = fh.read(4)
            fh.seek(-4, os.SEEK_END)
            tail = fh.read(4)
        if head != b"PAR1" or tail != b"PAR1":
            return "not a Parquet file (truncated, or not written by tracelens): no Parquet magic at " + (
                "start and end" if head != b"PAR1" and tail != b"PAR1" else "the end" if head == b"PAR1" else "the start")
        found = pl.read_parquet_schema(path)
    except FileNotFoundError:
        return None
    except Exception as e:  # polars/pyarrow raise various types for a damaged footer
        return f"unreadable Parquet footer ({_one_line(e)})"
    schema = _SCHEMAS.get(table)
    if schema is None:
        return None
    missing = sorted(_REQUIRED[table] - set(found))
    if missing:
        return f"not a {table} file: lacks required column(s) {', '.join(missing)}"
    want = _polars_schema(table, schema)
    for name, dtype in found.items():
        if name in want and not _compatible(dtype, want[name]):
            return f"column {name} is {dtype}, expected {want[name]}"
    return None


def read_problem(path: Path, table: str) -> str | None:
    """Why ``path`` cannot be read in full as a file of ``table`` (None if it can): the footer, then every page."""
    problem = footer_problem(path, table)
    if problem is not None or table not in _SCHEMAS:
        return problem
    try:
        pl.scan_parquet(str(path), **_scan_kwargs(table)).collect()
    except FileNotFoundError:
        return None
    except Exception as e:
        return f"damaged data ({_one_line(e)})"
    return None


def _one_line(e: BaseException) -> str:
    text = " ".join(str(e).split())
    return (text[:200] + "...") if len(text) > 200 else text or type(e).__name__


def _scan_kwargs(table: str) -> dict:
    # Read every file into the current schema: a partition written by an older tracelens (before a column was
    # added) reads with that column null instead of failing the whole scan; a column added by a newer writer is
    # left out rather than refused.
    return {"schema": _polars_schema(table, _SCHEMAS[table]), "missing_columns": "insert", "extra_columns": "ignore"}


def check_destination(root: Path, rel: str) -> str:
    """``rel`` if a commit may write or delete it under ``root`` (see ``COMMIT_PLACES``); JournalError otherwise."""
    check_rel_path(rel)
    _no_link_on_the_way(root, rel.rsplit("/", 1)[0])
    return rel


def read_journal(root: Path, d: Path) -> dict | None:
    """The validated journal of the ``_txn`` entry ``d``: None when it has none (the commit never happened).

    Raises JournalError for anything tracelens would not have written (see
    the module docstring); such an entry must never be rolled forward.
    """
    st = os.lstat(d)
    if stat.S_ISLNK(st.st_mode) or not stat.S_ISDIR(st.st_mode):
        raise JournalError(f"{d.name} is a symbolic link or not a directory")
    journal = d / "journal.json"
    try:
        jst = os.lstat(journal)
    except FileNotFoundError:
        return None
    if not stat.S_ISREG(jst.st_mode):
        raise JournalError("journal.json is a symbolic link or not a regular file")
    if jst.st_size > _MAX_JOURNAL:
        raise JournalError(f"journal.json is {jst.st_size:,} bytes, far more than any commit writes")
    try:
        doc = json.loads(journal.read_bytes().decode("utf-8"))
    except (ValueError, UnicodeDecodeError, RecursionError) as e:  # JSONDecodeError is a ValueError
        raise JournalError(f"journal.json is not valid JSON ({_one_line(e)})") from None
    except OSError as e:
        raise JournalError(f"journal.json cannot be read ({e.strerror})") from None
    if not isinstance(doc, dict) or set(doc) != {"puts", "deletes"}:
        raise JournalError("journal.json is not an object with exactly 'puts' and 'deletes'")
    puts, deletes = doc["puts"], doc["deletes"]
    if not isinstance(puts, list) or not isinstance(deletes, list):
        raise JournalError("'puts' and 'deletes' must be lists")
    for entry in puts:
        if not (isinstance(entry, list) and len(entry) == 2):
            raise JournalError(f"put {_short(entry)} is not a [staged, destination] pair")
        staged, dest = entry
        if not isinstance(staged, str) or not _STAGED.fullmatch(staged):
            raise JournalError(f"staged path {_short(staged)} is not files/NNNNN.parquet")
        check_destination(root, dest)
        for p in (d / "files", d / staged):
            with contextlib.suppress(FileNotFoundError):  # already renamed in before the crash
                pst = os.lstat(p)
                if stat.S_ISLNK(pst.st_mode):
                    raise JournalError(f"{p.relative_to(d)} is a symbolic link")
        if os.path.lexists(d / staged) and not (d / staged).is_file():
            raise JournalError(f"staged {staged} is not a regular file")
    for dest in deletes:
        check_destination(root, dest)
    return {"puts": [tuple(e) for e in puts], "deletes": list(deletes)}


def parquet_metadata(table: str, extra: dict[str, str] | None = None) -> dict[bytes, bytes]:
    """The key-value metadata every store file carries: schema version, table name, tracelens version, and ``extra``."""
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
        """The transaction's staging directory, ``STORE/_txn/<txn_id>``."""
        return self.store.root / "_txn" / self.txn_id

    def stage(self, table: pa.Table, dest_rel: str, table_name: str, extra_meta: dict[str, str] | None = None) -> None:
        """Write ``table`` to a staged file that the commit moves to ``dest_rel`` (refused unless a commit may write there)."""
        self.store.check_destination(dest_rel)  # what recovery would refuse, a live commit refuses first
        staged_rel = f"files/{len(self.puts):05d}.parquet"
        write_parquet_file(table, self.dir / staged_rel, table_name, extra_meta)
        self.puts.append((staged_rel, dest_rel))

    def delete(self, dest_rel: str) -> None:
        """Have the commit delete ``dest_rel`` (refused unless a commit may write there)."""
        self.store.check_destination(dest_rel)
        self.deletes.append(dest_rel)


# ------------------------------------------------------------------ rows and batches


def split_by_day(traces: pa.Table) -> Iterator[tuple[dt.date, pa.Table]]:
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
    """A quarantine row; its id is stable so re-ingesting a bad file adds nothing new.

    Every quarantine row is built here, so this is where its text is scrubbed
    of secrets (``tracelens.secrets``): raw records are whatever the input held.
    """
    import hashlib

    from tracelens.secrets import scrub_text

    source_file, locator, reason = scrub_text(source_file), scrub_text(locator), scrub_text(reason)
    raw = scrub_text(raw) if raw else raw

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


def as_utc(t: dt.datetime) -> dt.datetime:
    """``t`` in UTC; a naive datetime is taken to be UTC already."""
    return t.replace(tzinfo=dt.UTC) if t.tzinfo is None else t.astimezone(dt.UTC)


def iter_batches(items: Iterable, size: int) -> Iterator[list]:
    """``items`` in lists of ``size`` (the last one shorter), without holding more than one list."""
    batch = []
    for it in items:
        batch.append(it)
        if len(batch) >= size:
            yield batch
            batch = []
    if batch:
        yield batch
