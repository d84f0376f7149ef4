"""The ingest pipeline: files in, traces and quarantine rows out, nothing lost.

``ingest(store, paths, options)`` expands paths, sniffs each file's format
(or uses the forced one), streams its records through the importer in
bounded batches, fills derived columns (``finalize``), runs the refusal
detector, and commits each batch atomically. Per file it counts the
physical records of the input (``records``: lines, array items, rows, as the
readers count them) and the items they held: read, stored, duplicate,
quarantined and skipped; ``read`` always equals the sum of the other four
(``FileResult.reconciles``), and every record yields at least one item.

A file that cannot be used at all (missing, unknown format, undecodable from
its first byte) is reported as an error for that file; one that fails part
way keeps what was committed and is reported too. Either way the run goes on
with the other files, and the summary's errors make the CLI exit non-zero.

``tracelens.ingest.inputs.ingest_inputs`` feeds in-memory inputs (the bodies ``tracelens collect``
received) through the same importers, finalize, enrichment and commits, as
one source in shared batches.

Batches end at ``batch_size`` records or ``BATCH_BYTES`` of record text, so
memory follows the largest record rather than the batch size (see
docs/formats.md, "Memory").

Chunked path. A JSONL file whose importer defines ``parse_value(locator,
value)`` (one item per JSON value, so that ``parse`` is ``parse_value`` over
``iter_json_values``) is cut, in this process, into chunks of ``batch_size``
records or ``CHUNK_BYTES`` of lines at line boundaries; each chunk is one
batch. Worker processes (``fork``, so they start instantly and share the
loaded code) parse, finalize and convert chunks to Arrow tables and set their
refusal labels (the built-in enricher; one passed in by a caller runs in this
process); this process commits the chunks in file order. Line numbers and byte
offsets are carried with each chunk, and chunks are processed by the same
code wherever they run, so the stored rows, quarantine rows and counts do not
depend on the number of workers. At most ``workers + 1`` chunks are in
flight. Chunks are processed in this process when there are no workers, when
the file is one chunk, and when a chunk is large (``_LOCAL_CHUNK``: after the
chunks in flight, with the workers stopped). Workers never use polars (its
thread pool does not survive ``fork``). Workers end when the ingest process
dies, even by SIGKILL (``PR_SET_PDEATHSIG`` plus a parent-pid watchdog
thread), so a killed ingest leaves no orphans. A chunk whose worker fails or dies is
redone in this process; if that fails too its records are quarantined with
the error as the reason. Stdin, documents that are not JSONL and importers
without ``parse_value`` take the serial path. Chunks are cut from the stream
in this process, so an object-storage input (read as a stream, see
``tracelens.ingest.remote``) takes the chunked path like a file, and the
workers never open anything. ``TRACELENS_INGEST_WORKERS``
(or ``workers=``) sets the number of workers; 0 processes every chunk here.
"""

from __future__ import annotations

import contextlib
import dataclasses
import datetime as dt
import functools
import gc
import logging
import os
import signal
import sys
import time
import warnings
from collections import deque
from collections.abc import Callable, Iterator

import pyarrow as pa

from tracelens.ingest import logjoin
from tracelens.ingest.base import FormatError, IngestOptions, LogEvent, Quarantined, RecordError, Skipped, Source
from tracelens.ingest.logjoin import JOINABLE
from tracelens.ingest.normalize import check_zone
from tracelens.ingest.readers import (
    LineReader,
    expand_paths,
    is_json_document,
    json_line,
    line_is_blank,
    open_input,
    sniff_sample,
)
from tracelens.ingest.records import (
    MAX_RAW_QUARANTINE,  # noqa: F401 - finalize and same_call are also used from here
    finalize,
    quarantine_row,
    safe_describe,
    same_call,
    text_size,
    to_table,
)
from tracelens.ingest.registry import FORMATS, get_format, sniff_format
from tracelens.ingest.summary import EMPTY, FileResult, IngestSummary  # noqa: F401 - re-exported
from tracelens.ingest.workers import (
    KEEP_LINE,
    Chunk,
    ChunkResult,
    Released,
    default_workers,
    exit_with_parent,
)
from tracelens.modelcatalog import load_catalog
from tracelens.objstore import is_url
from tracelens.schema import TRACE_SCHEMA
from tracelens.store import Store

log = logging.getLogger(__name__)

BATCH_SIZE = 5_000


Enricher = Callable[[pa.Table], pa.Table]


def default_enricher() -> Enricher | None:
    """The refusal detector applied to each batch, when available (``tracelens.ingest.labels.label_table``).

    Its input columns are read straight from the batch's Arrow table and its
    output columns set on it: no dataframe copy of a batch is made (a 100 MB
    response would otherwise be held several times over), and no polars, so
    on the chunked path it runs where the chunk is parsed, in the worker processes (``_in_workers``).
    """
    try:
        from tracelens.ingest.labels import label_table
    except ImportError:
        return None
    return label_table


def _in_workers(enrich: Enricher | None) -> bool:
    """Whether the chunked path runs ``enrich`` with the chunk (in a forked worker): only the built-in labels,
    which never use polars; an enricher passed in by a caller runs in this process before the commit, as ever."""
    if enrich is None:
        return False
    from tracelens.ingest.labels import label_table

    return enrich is label_table


def _iter_items(fmt, source: Source) -> Iterator[dict | Quarantined | Skipped]:
    try:
        yield from fmt.parse(source)
    except FormatError:
        raise
    except Exception as e:  # a failure outside the per-record guard: said in a quarantine row, never silent
        yield Quarantined("unknown", f"importer {fmt.name} failed: {type(e).__name__}: {e}; "
                          "the rest of the file could not be read", None)


def ingest(
    store: Store,
    paths: list[str],
    options: IngestOptions | None = None,
    force_format: str | None = None,
    batch_size: int = BATCH_SIZE,
    progress: Callable[[FileResult], None] | None = None,
    enricher: Enricher | None | bool = True,
    workers: int | None = None,
) -> IngestSummary:
    """Ingest ``paths`` into ``store``. Never raises for bad input; see the module docstring.

    Paths may be object-storage URLs (``tracelens.ingest.remote``): each bucket is checked once while the
    paths are expanded, before anything is read, and ``tracelens.objstore.ObjectStoreError`` (one line) is
    raised when one cannot be used (no credentials, endpoint unreachable, bucket missing, listing or
    reading denied). After that, an object that fails is an error for its file, as a local file is.

    ``workers``: processes for the parallel path (None: ``TRACELENS_INGEST_WORKERS``, else one per
    available CPU up to 4; 0 or 1 CPU: serial only). Raises ValueError for a ``batch_size`` below 1 or an
    unknown ``options.naive_tz`` (the CLI refuses both as usage errors first).
    """
    if batch_size < 1:
        raise ValueError(f"batch_size must be at least 1, got {batch_size}")
    if options is not None:
        check_zone(options.naive_tz, allow_reject=True)
    pool = _WorkerPool(default_workers() if workers is None else workers)
    try:
        return _ingest(store, paths, options, force_format, batch_size, progress, enricher, pool)
    finally:
        pool.close()


def _prepare(store: Store, options: IngestOptions | None, enricher) -> tuple[IngestOptions, Enricher | None, object]:
    """The options (with the store's model catalog), enricher and redactor of one ingest run."""
    options = options or IngestOptions()
    if options.model_catalog is None:
        options = dataclasses.replace(options, model_catalog=load_catalog(store.local_root))
    enrich = default_enricher() if enricher is True else (enricher or None)
    redactor = None
    if options.redact_kinds or options.redact_patterns or options.redact_fields:
        from tracelens.redact import Redactor

        redactor = Redactor(tuple(options.redact_kinds), tuple(options.redact_patterns), store.secret("redaction_salt"),
                            tuple(options.redact_fields), tuple(options.phone_regions))
    return options, enrich, redactor


@dataclasses.dataclass
class Plan:
    """What an ingest run will read, decided before any record is: ``ingest`` in two steps.

    ``done``: the results settled while planning (missing files, unknown
    formats, empty files, batch-request companions), in input order;
    ``files``: ``(path, format, FileResult)`` of the files to ingest, in input
    order (the format is an importer, or for stdin the forced name or None);
    ``options``: the run's options with the store's model catalog and the
    companions found. A run's summary lists ``done`` first, then ``files``.
    ``tracelens.engines`` ingests the files of a plan elsewhere (one Ray task
    per file) with ``ingest_file``, the same code as here.
    """

    options: IngestOptions
    done: list[FileResult]
    files: list[tuple[str, object, FileResult]]


def plan_inputs(store: Store, paths: list[str], options: IngestOptions | None = None,
                force_format: str | None = None) -> Plan:
    """Expand ``paths`` and sniff each file (see ``Plan``); reads a few bytes of each file, commits nothing."""
    options = options or IngestOptions()
    if options.model_catalog is None:
        options = dataclasses.replace(options, model_catalog=load_catalog(store.local_root))
    done: list[FileResult] = []
    walked: set[str] = set()
    files = expand_paths(paths, walked)
    plan: list[tuple[str, object, FileResult]] = []
    for path in files:
        res = FileResult(path=path, format=None)
        if path != "-" and not is_url(path) and not os.path.exists(path):
            res.error = f"{path}: no such file"
            done.append(res)
            continue
        if path == "-":  # stdin can be read once: sniff and parse in one go below
            plan.append((path, force_format, res))
            continue
        try:
            stream, head = open_input(path)
            try:
                sample = sniff_sample(stream, head)
            finally:
                stream.close()
            if not sample.strip():
                res.format = EMPTY  # nothing to read: said so, not "unknown format"
                done.append(res)
                continue
            sniffed = sniff_format(sample, path)
            if force_format and not (getattr(sniffed, "companion_role", None) and sniffed.name != force_format):
                fmt = get_format(force_format)
            else:
                fmt = sniffed  # a batch-request file is still routed to its results file under --format
        except Exception as e:  # one unreadable file is reported; the others are still ingested
            res.error = _file_error(path, e)
            done.append(res)
            continue
        if fmt is None:
            if path in walked:
                # found while walking a directory: not a log file we know; listed, not an error
                res.format = "(not a log format: skipped)"
            else:
                res.error = _unknown(path)
            done.append(res)
            continue
        role = getattr(fmt, "companion_role", None)
        if role and fmt.name != force_format:
            # a batch request file: consumed by the importer of the matching results file
            options.companions.setdefault(role, []).append(path)
            res.format = f"{fmt.name} (joined)"
            done.append(res)
            continue
        plan.append((path, fmt, res))
    return Plan(options, done, plan)


def _ingest(store, paths, options, force_format, batch_size, progress, enricher, pool) -> IngestSummary:
    plan = plan_inputs(store, paths, options, force_format)
    options, enrich, redactor = _prepare(store, plan.options, enricher)
    summary = IngestSummary(files=list(plan.done))
    for path, fmt, res in plan.files:
        _ingest_file(store, path, fmt, res, options, batch_size, enrich, progress, redactor, pool)
        summary.files.append(res)
    count_waiting(store, summary)
    return summary


def ingest_file(store: Store, path: str, fmt, res: FileResult, options: IngestOptions, batch_size: int = BATCH_SIZE,
                progress: Callable[[FileResult], None] | None = None, workers: int = 0) -> FileResult:
    """Ingest one planned file of a ``Plan`` into ``store`` (its options, the built-in enricher), filling ``res``.

    What ``ingest`` does for each file of its plan, committing batch by batch
    in this process (and ``workers`` processes for the chunked path); never
    raises for bad input. ``fmt`` is the plan's importer, or its name.
    """
    options, enrich, redactor = _prepare(store, options, True)
    if isinstance(fmt, str) and path != "-":
        fmt = get_format(fmt)
    pool = _WorkerPool(workers)
    try:
        _ingest_file(store, path, fmt, res, options, batch_size, enrich, progress, redactor, pool)
    finally:
        pool.close()
    return res


def _ingest_file(store, path, fmt, res, options, batch_size, enrich, progress, redactor, pool) -> None:
    """Read one planned file into the store, batch by batch; failures go to ``res.error``, never raised."""
    t0 = time.perf_counter()
    try:
        stream, head = open_input(path)
    except Exception as e:  # noqa: BLE001 - reported for this file; the others go on
        res.error = _file_error(path, e)
        return
    try:
        if path == "-":
            fmt = get_format(fmt) if isinstance(fmt, str) else sniff_format(head, path)
            if fmt is None:
                res.error = _unknown(path)
                return
        res.format = fmt.name
        source = Source(path, stream, options, head)
        if path != "-" and _chunkable(fmt, head):
            _ingest_chunked(store, fmt, source, res, options, batch_size, enrich, progress, redactor, pool)
        else:
            try:
                _ingest_one(store, fmt, source, res, options, batch_size, enrich, progress, redactor)
            finally:
                res.records += source.records
        origin = stream.origin
        if origin is not None and origin.error is not None and not res.error:
            # an object whose transfer failed part way: its unread rest is one quarantine item (as for a
            # local read error), and the file is reported, since the records behind it were never seen
            res.error = _file_error(path, origin.error, part_way=True)
    except FormatError as e:
        res.error = str(e)
    except Exception as e:  # noqa: BLE001 - what was committed stays; the file is reported, the others go on
        res.error = _file_error(path, e, part_way=True)
    finally:
        stream.close()
        res.seconds = time.perf_counter() - t0
        if stream.origin is not None:
            res.bytes = stream.origin.size
        elif path != "-":
            with contextlib.suppress(OSError):
                res.bytes = os.path.getsize(path)


def count_waiting(store: Store, summary: IngestSummary) -> None:
    """Set ``waiting``: the log events of each file whose span is not stored after the run (kept, not lost)."""
    keys = {k for f in summary.files for k in f.event_keys}
    if not keys:
        return
    stored = store.stored_ids(keys)
    for f in summary.files:
        f.waiting = sum(n for k, n in f.event_keys.items() if k not in stored)


def _file_error(path: str, e: BaseException, part_way: bool = False) -> str:
    """The per-file error line for an exception (the path first, once)."""
    what = str(e) if isinstance(e, OSError | FormatError) else f"{type(e).__name__}: {e}"
    if part_way:
        what = f"ingest stopped part-way ({what}); records committed before it are kept"
    return what if what.startswith(path) else f"{path}: {what}"


def _unknown(path: str) -> str:
    return (
        f"{path}: unknown format (no importer recognised the first bytes); "
        f"pass --format with one of: {', '.join(sorted(FORMATS))}"
    )


class _Counts:
    """The per-file counters a batch fills in: a FileResult, or this stand-in inside a worker."""

    __slots__ = ("read", "skipped", "naive_timestamps")

    def __init__(self) -> None:
        self.read = self.skipped = self.naive_timestamps = 0


# A batch is committed when it reaches ``batch_size`` records or this much record text (what the store then
# holds in memory several times over while it writes the batch); one larger record is a batch of its own.
BATCH_BYTES = 32 * 1024 * 1024
# Finalized records are converted to Arrow this many (or this much text) at a time, so that a batch never
# holds many records as Python objects (they take several times the memory of their Arrow form).
_CONVERT_EVERY = 1024
_CONVERT_BYTES = 8 * 1024 * 1024


class _Batch:
    """The items of one commit: finalized trace records and quarantine rows (shared by both paths)."""

    __slots__ = ("fmt_name", "path", "options", "now", "redactor", "counts", "traces", "quarantine", "nbytes",
                 "_records", "_pending_bytes", "_tables", "_unconvertible", "events")

    def __init__(self, fmt_name: str, path: str, options: IngestOptions, now: dt.datetime, redactor, counts) -> None:
        self.fmt_name, self.path, self.options, self.now, self.redactor = fmt_name, path, options, now, redactor
        self.counts = counts
        self.traces: list[dict] = []  # finalized records not yet converted
        self.quarantine: list[dict] = []
        self.nbytes = 0  # text held by the batch's records and quarantine rows
        self._records = 0  # finalized records, converted or not
        self._pending_bytes = 0
        self._tables: list[pa.Table] = []
        self._unconvertible: list[dict] = []  # quarantine rows of records Arrow refused; they go last, as ever
        self.events: list[dict] = []  # otlp_events rows (tracelens.ingest.logjoin)

    def __len__(self) -> int:
        return self._records + len(self.quarantine) + len(self.events)

    def add(self, item) -> bool:
        """Add one importer item; True when it takes a place in the batch (a record or a quarantine row)."""
        counts = self.counts
        counts.read += 1
        if isinstance(item, Skipped):
            counts.skipped += 1
            return False
        if isinstance(item, Quarantined):
            row = quarantine_row(self.fmt_name, self.path, item.locator, item.reason, item.raw)
            self.quarantine.append(row)
            self.nbytes += len(row["raw"] or "")
            return True
        if isinstance(item, LogEvent):
            return self._event(item)
        try:
            rec = finalize(item, self.fmt_name, self.path, self.options, self.now)
            if self.redactor is not None:
                self.redactor.record(rec)
            if rec["attributes"] and "timestamp_assumed_tz" in rec["attributes"]:
                counts.naive_timestamps += 1
        except Exception as e:  # RecordError, or a value of a type the importer did not expect
            reason = str(e) if isinstance(e, RecordError) else f"invalid record: {type(e).__name__}: {e}"
            row = quarantine_row(self.fmt_name, self.path, item.get("source_locator") or "record", reason,
                                  item.get("_raw") or safe_describe(item))
            self.quarantine.append(row)
            self.nbytes += len(row["raw"] or "")
            return True
        size = text_size(rec)
        self.traces.append(rec)
        self._records += 1
        self.nbytes += size
        self._pending_bytes += size
        if len(self.traces) >= _CONVERT_EVERY or self._pending_bytes >= _CONVERT_BYTES:
            self._convert()
        return True

    def _event(self, ev: LogEvent) -> bool:
        from tracelens.ingest.logjoin import event_row

        try:
            row = event_row(ev, self.fmt_name, self.path, self.now, self.redactor)
        except Exception as e:  # a value no event row can hold: quarantined like a record that breaks finalize
            from tracelens.ingest.guard import describe

            row = quarantine_row(self.fmt_name, self.path, ev.locator, f"invalid log event: {type(e).__name__}: {e}",
                                  safe_describe({"name": ev.name, "attributes": describe(ev.attributes)}))
            self.quarantine.append(row)
            self.nbytes += len(row["raw"] or "")
            return True
        self.events.append(row)
        self.nbytes += len(row["attributes"])
        keys = getattr(self.counts, "event_keys", None)
        if keys is not None:
            keys[f"otel:{ev.trace_id}:{ev.span_id}"] += 1
        return True

    def _convert(self) -> None:
        self._tables.append(to_table(self.traces, self._unconvertible, self.fmt_name, self.path))
        self.traces = []
        self._pending_bytes = 0

    def table(self) -> pa.Table:
        """The Arrow table of the traces; records that cannot be converted join the quarantine rows (last)."""
        if self.traces:
            self._convert()
        self.quarantine.extend(self._unconvertible)
        self._unconvertible = []
        tables, self._tables = self._tables, []
        if not tables:
            return TRACE_SCHEMA.empty_table()
        return tables[0] if len(tables) == 1 else pa.concat_tables(tables)


def _commit(store: Store, tbl: pa.Table, quarantine: list[dict], res: FileResult, enrich, progress,
            redactor=None, events: list[dict] | None = None, options: IngestOptions | None = None,
            enriched: bool = False) -> None:
    if enrich is not None and tbl.num_rows and not enriched:
        tbl = enrich(tbl)
    qtbl = None
    if quarantine and redactor is not None:
        # every quarantine row of every path (serial, workers, failed chunks) passes here once
        quarantine = [redactor.quarantine_row(q) for q in quarantine]
    if quarantine:
        from tracelens.schema import QUARANTINE_SCHEMA

        qtbl = pa.Table.from_pylist(quarantine, schema=QUARANTINE_SCHEMA)
    rejoin = None
    if options is not None and (events or res.format in JOINABLE):
        # log events and the span rows they belong to are joined by the store, under its lock (logjoin)
        rejoin = functools.partial(logjoin.rejoin, options=options, finalize=finalize, redactor=redactor,
                                   enrich=enrich)
    etbl = logjoin.events_table(events) if events else None
    out = store.commit_batch(tbl, qtbl, same_call=same_call, events=etbl, rejoin=rejoin)
    res.stored += out.stored
    res.duplicates += out.duplicates + out.event_duplicates
    res.quarantined += out.quarantined
    res.events += out.events
    res.joined += out.joined
    if progress:
        progress(res)


def _give_back_memory() -> None:
    """Return freed memory to the operating system after a large batch.

    Arrow's pool and the C allocator keep freed pages for reuse; after a
    batch of a few large records they would hold the last batch's size on
    top of the next one's, so the peak would grow with the number of large
    records instead of the largest.
    """
    pa.default_memory_pool().release_unused()
    if sys.platform.startswith("linux"):
        with contextlib.suppress(OSError, AttributeError):
            import ctypes

            ctypes.CDLL("libc.so.6").malloc_trim(0)


@contextlib.contextmanager
def _collector_paused() -> Iterator[None]:
    """Pause the cyclic garbage collector while a batch of records is built.

    A batch holds a few hundred thousand small containers that form no
    cycles; with the collector on, its full passes over them cost about a
    sixth of the per-record work. It is re-enabled (as found) between batches.
    """
    was = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was:
            gc.enable()


def _ingest_one(store, fmt, source, res, options, batch_size, enrich, progress, redactor=None) -> None:
    """The serial path: batches of ``batch_size`` records (or BATCH_BYTES of text) committed one by one."""
    now = dt.datetime.now(dt.UTC)
    batch = _Batch(fmt.name, source.path, options, now, redactor, res)
    items = _iter_items(fmt, source)
    while True:
        with _collector_paused():
            for item in items:
                placed = batch.add(item)
                del item  # a huge record must not outlive its conversion while the batch is committed
                if placed and (len(batch) >= batch_size or batch.nbytes >= BATCH_BYTES):
                    break
            else:
                items = None
            tbl = batch.table() if len(batch) else None
        if tbl is not None:
            big = batch.nbytes >= _LOCAL_CHUNK
            _commit(store, tbl, batch.quarantine, res, enrich, progress, redactor, batch.events, options)
            batch = _Batch(fmt.name, source.path, options, now, redactor, res)
            del tbl
            if big:
                _give_back_memory()
        if items is None:
            return


# ---------------------------------------------------------------- parallel path

def _chunkable(fmt, head: bytes) -> bool:
    """Whether a file takes the chunked path: JSONL read by an importer with ``parse_value``."""
    return callable(getattr(fmt, "parse_value", None)) and not is_json_document(head)


# Raw bytes of lines after which a chunk (a batch) ends even before ``batch_size`` records (see BATCH_BYTES).
CHUNK_BYTES = 32 * 1024 * 1024
# A chunk this large is processed in this process, after those in flight, not shipped to a worker: copying
# it to a worker and its table back would hold it several times over at once.
_LOCAL_CHUNK = 8 * 1024 * 1024


def _read_chunks(stream, batch_size: int, fmt_name: str) -> Iterator[Chunk]:
    """Cut a JSONL stream into chunks of ``batch_size`` non-blank lines or CHUNK_BYTES (each one batch)."""
    reader = LineReader(stream)
    lines: list[bytes] = []
    records = nbytes = 0
    first_line, first_offset = 1, 0
    index = 0
    tail = None
    try:
        for raw in reader:
            lines.append(raw)
            nbytes += len(raw)
            blank = line_is_blank(raw, reader.lineno)
            del raw  # not held by this frame while the chunk is processed
            if not blank:
                records += 1
                if records == batch_size or nbytes >= CHUNK_BYTES:
                    # handed over through a list, so that this frame does not hold the chunk while it is used
                    out = [Chunk(index, lines, first_line, first_offset, None, nbytes)]
                    index += 1
                    lines, records, nbytes = [], 0, 0
                    first_line, first_offset = reader.lineno + 1, reader.offset
                    yield out.pop()
        tail = reader.cut_short()
    except Exception as e:  # as _iter_items reports an importer that fails part way
        tail = Quarantined("unknown", f"importer {fmt_name} failed: {type(e).__name__}: {e}; "
                           "the rest of the file could not be read", None)
    if lines or tail is not None:
        yield Chunk(index, lines, first_line, first_offset, tail, nbytes)


def _process_chunk(chunk: Chunk, fmt_name: str, path: str, options: IngestOptions, now: dt.datetime,
                   redactor, enrich: Enricher | None = None) -> ChunkResult:
    """Parse, finalize and convert one chunk: what ``_ingest_one`` does for one batch, and ``enrich`` when given
    (the built-in labels, see ``_in_workers``); ``ChunkResult.enriched`` says which."""
    parse_value = get_format(fmt_name).parse_value
    counts = _Counts()
    batch = _Batch(fmt_name, path, options, now, redactor, counts)
    add = batch.add
    lineno = chunk.first_line
    offset = chunk.offset
    records = 0
    lines = chunk.lines
    with _collector_paused():
        for i, raw in enumerate(lines):
            v = json_line(raw, lineno, offset)
            lineno += 1
            offset += len(raw)
            if len(raw) > KEEP_LINE:
                # parsed: a large line is not held a second time while its record is finalized and converted
                lines[i] = Released(len(raw))
            del raw
            if v is not None:
                records += 1
                add(parse_value(*v))
                del v
        if chunk.tail is not None:
            records += 1
            add(chunk.tail)
        tbl = batch.table()
    enriched = False
    if enrich is not None:
        try:
            if tbl.num_rows:
                tbl = enrich(tbl)
            enriched = True
        except Exception:  # noqa: BLE001 - left to the commit, which runs it again and fails as it always did
            log.debug("labelling a chunk failed; left to the commit", exc_info=True)
    return ChunkResult(tbl, batch.quarantine, records, counts.read, counts.skipped, counts.naive_timestamps,
                       enriched=enriched)


def _failed_chunk(chunk: Chunk, fmt_name: str, path: str, error: BaseException) -> ChunkResult:
    """Every record of a chunk that could not be processed, quarantined with the error (nothing dropped)."""
    reason = f"ingest failed on this batch: {type(error).__name__}: {error}"
    rows = []
    lineno = chunk.first_line
    for raw in chunk.lines:
        if isinstance(raw, Released):
            rows.append(quarantine_row(fmt_name, path, f"line:{lineno}",
                                        f"{reason} (the line, {raw.size:,} bytes, was released after parsing)", None))
        elif not line_is_blank(raw, lineno):
            text = raw.decode("utf-8", "backslashreplace").rstrip("\r\n")
            rows.append(quarantine_row(fmt_name, path, f"line:{lineno}", reason, text))
        lineno += 1
    if chunk.tail is not None:
        t = chunk.tail
        rows.append(quarantine_row(fmt_name, path, t.locator, t.reason, t.raw))
    return ChunkResult(TRACE_SCHEMA.empty_table(), rows, len(rows), len(rows), 0, 0)


class _NoPandas:
    """Import finder of the ingest workers: pandas is not available there (see ``_worker_init``)."""

    @staticmethod
    def find_spec(name, path=None, target=None):
        """Refuse pandas (ImportError, which pyarrow takes as "not installed"); leave every other module alone."""
        if name == "pandas" or name.startswith("pandas."):
            raise ImportError("pandas is not loaded in tracelens ingest workers")
        return None


# Set in each worker by _worker_init (fork passes them without pickling).
_worker_redactor = None
_worker_enrich = None


def _worker_init(redactor, enrich, parent: int) -> None:
    global _worker_redactor, _worker_enrich
    exit_with_parent(parent)
    _worker_redactor = redactor
    _worker_enrich = enrich
    # Ctrl-C is the parent's to handle: it stops submitting and shuts the pool down (no tracebacks from here).
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    # pyarrow imports pandas (when installed) on its first conversion of Python values, only to recognise
    # pandas objects, which a worker never has: ~40 MB and ~0.25 s of CPU per worker. Unless this process
    # inherited it, a worker goes without (pyarrow then converts exactly as before).
    if "pandas" not in sys.modules:
        sys.meta_path.insert(0, _NoPandas)
    # Objects inherited from the parent never die here: keep the collector off them (and off their pages).
    gc.freeze()


def _run_in_worker(chunk: Chunk, fmt_name: str, path: str, options: IngestOptions, now: dt.datetime) -> ChunkResult:
    return _process_chunk(chunk, fmt_name, path, options, now, _worker_redactor, _worker_enrich)


class _WorkerPool:
    """Worker processes for the parallel path, started on first use and shared by the files of one run."""

    def __init__(self, size: int):
        usable = sys.platform.startswith("linux")  # fork is the only start method that is cheap and safe here
        self.size = size if usable and size > 0 else 0
        self._executor = None
        self._started = False
        self.broken = False

    def submit(self, redactor, enrich, *args):
        """Submit ``_run_in_worker(*args)``; None when the pool is unusable (the caller works in-process).

        ``redactor`` and ``enrich`` are the run's (the same for every file), given to the workers at their start.
        """
        if self.broken or not self.size:
            return None
        try:
            if self._executor is None:
                import multiprocessing
                from concurrent.futures import ProcessPoolExecutor

                self._executor = ProcessPoolExecutor(
                    self.size, mp_context=multiprocessing.get_context("fork"), initializer=_worker_init,
                    initargs=(redactor, enrich, os.getpid()),
                )
            if self._started:
                return self._executor.submit(_run_in_worker, *args)
            with warnings.catch_warnings():
                # Python 3.12+ warns about fork() in a process with threads (polars/pyarrow pools); the
                # workers never use polars, whose pool is the one that does not survive a fork.
                warnings.filterwarnings("ignore", message=".*fork.*", category=DeprecationWarning)
                fut = self._executor.submit(_run_in_worker, *args)  # the processes start here
            self._started = True
            return fut
        except Exception as e:  # BrokenProcessPool, or the processes could not start
            _pool_failed(self, e)
            return None

    def stop(self) -> None:
        """Stop the worker processes (the next ``submit`` starts new ones)."""
        self.close()
        self._started = False

    def mark_broken(self) -> None:
        """Stop using worker processes for this ingest (a worker died): the rest goes through the serial path."""
        self.broken = True
        self.close()

    def close(self) -> None:
        """Shut the worker processes down, cancelling chunks not yet started."""
        if self._executor is not None:
            self._executor.shutdown(wait=True, cancel_futures=True)
            self._executor = None


def _ingest_chunked(store, fmt, source, res, options, batch_size, enrich, progress, redactor, pool) -> None:
    """The chunked path (see the module docstring). Chunks go to the workers, in order, at most ``workers + 1``
    in flight; they are processed here when there are no workers, when the file is a single chunk (not worth
    a process round trip) and when a chunk is large (_LOCAL_CHUNK: after those in flight, workers stopped)."""
    now = dt.datetime.now(dt.UTC)
    args = (fmt.name, source.path, options, now)
    # the built-in labels run with each chunk (in the workers: both cores); any other enricher before the commit
    with_chunk = enrich if _in_workers(enrich) else None
    chunks = _read_chunks(source.stream, batch_size, fmt.name)
    pending: deque = deque()
    limit = pool.size + 1
    ahead: list[Chunk] = []
    first = True
    while True:
        chunk = ahead.pop() if ahead else next(chunks, None)
        if chunk is None:
            break
        big = chunk.nbytes >= _LOCAL_CHUNK
        local = big or not pool.size or pool.broken
        if first and not local:
            nxt = next(chunks, None)  # a file of one batch is processed here
            if nxt is None:
                local = True
            else:
                ahead.append(nxt)
            del nxt
        first = False
        if local:
            while pending:  # results are committed in file order
                _finish_head(store, pending, pool, args, redactor, res, enrich, progress, with_chunk)
            if big:
                pool.stop()  # idle workers would hold their memory while this one is processed; restarted on use
            result = _local(chunk, args, redactor, with_chunk)
            del chunk  # its lines are not needed while the result is committed
            _commit_chunk(store, result, res, enrich, progress, redactor, options)
            del result
            if big:
                _give_back_memory()
            continue
        while len(pending) >= limit:
            _finish_head(store, pending, pool, args, redactor, res, enrich, progress, with_chunk)
        pending.append((chunk, pool.submit(redactor, with_chunk, chunk, *args)))
        del chunk
    while pending:
        _finish_head(store, pending, pool, args, redactor, res, enrich, progress, with_chunk)


def _finish_head(store, pending: deque, pool, args, redactor, res, enrich, progress, with_chunk=None) -> None:
    """Commit the oldest chunk in flight (results are committed in file order)."""
    chunk, fut = pending.popleft()
    result = None
    if fut is not None:
        try:
            result = fut.result()
        except Exception as e:  # the worker raised, or died (BrokenProcessPool): redo the chunk here
            from concurrent.futures.process import BrokenProcessPool

            if isinstance(e, BrokenProcessPool) or pool.broken:  # (futures of a broken pool are cancelled)
                _pool_failed(pool, e)
            else:
                log.warning("ingest worker failed on %s lines %d+ (%s: %s); retrying in-process",
                            args[1], chunk.first_line, type(e).__name__, e)
    if result is None:
        result = _local(chunk, args, redactor, with_chunk)
    _commit_chunk(store, result, res, enrich, progress, redactor, args[2])


def _pool_failed(pool, error: BaseException) -> None:
    if not pool.broken:
        log.warning("ingest worker processes failed (%s: %s); continuing in-process", type(error).__name__, error)
        pool.mark_broken()


def _local(chunk: Chunk, args, redactor, enrich=None) -> ChunkResult:
    try:
        return _process_chunk(chunk, *args, redactor, enrich)
    except Exception as e:  # a bug that the per-record guards did not catch: quarantine, never drop
        return _failed_chunk(chunk, args[0], args[1], e)


def _commit_chunk(store, result: ChunkResult, res, enrich, progress, redactor=None, options=None) -> None:
    res.records += result.records
    res.read += result.read
    res.skipped += result.skipped
    res.naive_timestamps += result.naive_timestamps
    if result.traces.num_rows or result.quarantine:
        _commit(store, result.traces, result.quarantine, res, enrich, progress, redactor, options=options,
                enriched=result.enriched)

