"""The ingest pipeline: files in, traces and quarantine rows out, nothing lost.

``ingest(store, paths, options)`` expands paths, sniffs each file's format
(or uses the forced one), streams its records through the importer in
bounded batches, fills derived columns (``finalize``), runs the refusal
detector, and commits each batch atomically. Per file it counts records
read, stored, duplicate, quarantined and skipped; ``read`` always equals the
sum of the other four (``FileResult.reconciles``).

A file that cannot be used at all (missing, unknown format, unreadable) is
reported as an error for that file and the run goes on with the others.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import os
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

import pyarrow as pa

from tracelens.hashing import prompt_hash, record_hash, system_prompt_hash, tools_hash
from tracelens.ingest.base import FormatError, IngestOptions, Quarantined, RecordError, Skipped, Source
from tracelens.ingest.normalize import parse_timestamp
from tracelens.ingest.readers import expand_paths, open_input
from tracelens.ingest.registry import FORMATS, get_format, sniff_format
from tracelens.modelid import parse_model_id
from tracelens.schema import FIELD_NAMES, STOP_REASONS, TRACE_SCHEMA
from tracelens.store import Store, make_quarantine_row

BATCH_SIZE = 5_000
# Fields excluded from content_hash: where and when we read the record, not what it says.
_VOLATILE = ("ingested_at", "source_file", "source_locator", "refusal", "refusal_score", "refusal_source",
             "refusal_category", "refusal_evidence", "refusal_version", "content_hash")
_MAX_RAW_QUARANTINE = 64 * 1024 * 1024


@dataclass
class FileResult:
    path: str
    format: str | None
    read: int = 0
    stored: int = 0
    duplicates: int = 0
    quarantined: int = 0
    skipped: int = 0
    naive_timestamps: int = 0
    error: str | None = None
    seconds: float = 0.0
    bytes: int = 0

    @property
    def reconciles(self) -> bool:
        return self.read == self.stored + self.duplicates + self.quarantined + self.skipped


@dataclass
class IngestSummary:
    files: list[FileResult] = field(default_factory=list)

    def total(self, attr: str) -> int:
        return sum(getattr(f, attr) for f in self.files)

    @property
    def errors(self) -> list[FileResult]:
        return [f for f in self.files if f.error]

    def to_dict(self) -> dict:
        keys = ("read", "stored", "duplicates", "quarantined", "skipped", "naive_timestamps")
        return {
            "totals": {k: self.total(k) for k in keys},
            "files": [
                {
                    "path": f.path,
                    "format": f.format,
                    **{k: getattr(f, k) for k in keys},
                    "error": f.error,
                    "seconds": round(f.seconds, 3),
                }
                for f in self.files
            ],
            "reconciles": all(f.reconciles for f in self.files),
        }


def finalize(rec: dict, source_format: str, source_file: str, options: IngestOptions, now: dt.datetime) -> dict:
    """Fill derived columns of one importer record and validate it. Raises RecordError."""
    out = {k: rec.get(k) for k in FIELD_NAMES}
    attrs = {str(k): (v if isinstance(v, str) else str(v)) for k, v in (rec.get("attributes") or {}).items() if v is not None}
    ts_value = rec.get("timestamp")
    if ts_value is None and options.default_time:
        ts_value = options.default_time
        attrs["timestamp_source"] = "default_time"
    ts, naive = parse_timestamp(ts_value, options.naive_tz)
    if naive:
        attrs["timestamp_assumed_tz"] = options.naive_tz
    if not (dt.datetime(1990, 1, 1, tzinfo=dt.UTC) <= ts <= now + dt.timedelta(days=2)):
        raise RecordError(f"timestamp {ts.isoformat()} is implausible (before 1990 or in the future)")
    out["timestamp"] = ts
    out["source_format"] = source_format
    out["source_file"] = source_file
    out["source_locator"] = rec.get("source_locator") or "record"
    out["ingested_at"] = now
    out["attributes"] = attrs or None
    msgs = out.get("messages") or []
    out["messages"] = [
        {"role": m.get("role"), "text": m.get("text"), "tool_calls": m.get("tool_calls") or [],
         "tool_call_id": m.get("tool_call_id"), "name": m.get("name")}
        for m in msgs
    ]
    out["tool_calls"] = out.get("tool_calls") or []
    if out.get("prompt_text") is None:
        for m in reversed(out["messages"]):
            if m["role"] == "user" and m["text"]:
                out["prompt_text"] = m["text"]
                break
    sr = out.get("stop_reason")
    if sr is not None and sr not in STOP_REASONS:
        out["stop_reason"] = "other"
    if out.get("status") is None:
        out["status"] = "error" if out.get("error_type") or (out.get("http_status") or 200) >= 400 else "ok"
    # model identity: prefer what the provider returned for family/snapshot, alias-ness from the request
    req = parse_model_id(out.get("model_requested"))
    ret = parse_model_id(out.get("model_returned"))
    ident = ret or req
    if ident:
        out["model_family"] = out.get("model_family") or ident.family
        out["model_snapshot"] = out.get("model_snapshot") or ident.snapshot
        out["provider"] = out.get("provider") or (ident.platform or ident.provider)
    if out.get("model_is_alias") is None:
        out["model_is_alias"] = req.is_alias if req else (ret.is_alias if ret else None)
    out["system_prompt_hash"] = system_prompt_hash(out.get("system_prompt"))
    out["tools_hash"] = tools_hash(out.get("tool_definitions"))
    out["prompt_hash"] = prompt_hash(out.get("system_prompt"), out["messages"], out.get("tool_definitions"))
    if out.get("request_is_exact") is None:
        out["request_is_exact"] = out.get("request_raw") is not None
    if out.get("redacted") is None:
        out["redacted"] = False
    out["content_hash"] = _content_hash(out)
    if not out.get("trace_id"):
        out["trace_id"] = "h_" + out["content_hash"][:30]
    return out


_HASHED = tuple(k for k in FIELD_NAMES if k not in _VOLATILE)
_RAW_DERIVED = frozenset(
    # with the exact bodies present these are functions of them, so hashing the bodies covers them
    ("system_prompt", "messages", "prompt_text", "response_text", "tool_calls", "tool_definitions", "stop_details",
     "system_prompt_hash", "tools_hash", "prompt_hash", "model_family", "model_snapshot", "model_is_alias")
)
_HASHED_WITH_RAW = tuple(k for k in _HASHED if k not in _RAW_DERIVED)


def _content_hash(rec: dict) -> str:
    """Hash of what a record says (not where or when it was read)."""
    keys = _HASHED_WITH_RAW if rec.get("request_raw") is not None and rec.get("response_raw") is not None else _HASHED
    return record_hash({k: rec.get(k) for k in keys})


def _quarantine_raw(raw: str | None) -> str | None:
    if raw is not None and len(raw) > _MAX_RAW_QUARANTINE:
        return raw[:_MAX_RAW_QUARANTINE] + f"\n[... truncated: record was {len(raw)} characters]"
    return raw


Enricher = Callable[[pa.Table], pa.Table]


def default_enricher() -> Enricher | None:
    """The refusal detector applied to each batch, when available."""
    try:
        from tracelens.enrich.refusal import detect_frame
    except ImportError:
        return None

    def enrich(tbl: pa.Table) -> pa.Table:
        import polars as pl

        df = detect_frame(pl.from_arrow(tbl))
        return df.to_arrow().select(TRACE_SCHEMA.names).cast(TRACE_SCHEMA)

    return enrich


def _iter_items(fmt, source: Source) -> Iterator[dict | Quarantined | Skipped]:
    try:
        yield from fmt.parse(source)
    except FormatError:
        raise
    except Exception as e:  # an importer bug must not lose the rest of the file silently
        yield Quarantined("unknown", f"importer {fmt.name} failed: {type(e).__name__}: {e}", None)


def ingest(
    store: Store,
    paths: list[str],
    options: IngestOptions | None = None,
    force_format: str | None = None,
    batch_size: int = BATCH_SIZE,
    progress: Callable[[FileResult], None] | None = None,
    enricher: Enricher | None | bool = True,
) -> IngestSummary:
    """Ingest ``paths`` into ``store``. Never raises for bad input; see the module docstring."""
    options = options or IngestOptions()
    enrich = default_enricher() if enricher is True else (enricher or None)
    redactor = None
    if options.redact_kinds or options.redact_patterns:
        from tracelens.redact import Redactor

        redactor = Redactor(tuple(options.redact_kinds), tuple(options.redact_patterns), store.secret("redaction_salt"))
    summary = IngestSummary()
    walked: set[str] = set()
    files = expand_paths(paths, walked)
    plan: list[tuple[str, object, FileResult]] = []
    for path in files:
        res = FileResult(path=path, format=None)
        if path != "-" and not os.path.exists(path):
            res.error = f"{path}: no such file"
            summary.files.append(res)
            continue
        if path == "-":  # stdin can be read once: sniff and parse in one go below
            plan.append((path, force_format, res))
            continue
        try:
            stream, head = open_input(path)
            stream.close()
            sniffed = sniff_format(head, path)
            if force_format and not (getattr(sniffed, "companion_role", None) and sniffed.name != force_format):
                fmt = get_format(force_format)
            else:
                fmt = sniffed  # a batch-request file is still routed to its results file under --format
        except (OSError, FormatError) as e:
            res.error = f"{path}: {e}" if not str(e).startswith(path) else str(e)
            summary.files.append(res)
            continue
        if fmt is None:
            if path in walked:
                # found while walking a directory: not a log file we know; listed, not an error
                res.format = "(not a log format: skipped)"
            else:
                res.error = _unknown(path)
            summary.files.append(res)
            continue
        role = getattr(fmt, "companion_role", None)
        if role and fmt.name != force_format:
            # a batch request file: consumed by the importer of the matching results file
            options.companions.setdefault(role, []).append(path)
            res.format = f"{fmt.name} (joined)"
            summary.files.append(res)
            continue
        plan.append((path, fmt, res))
    for path, fmt, res in plan:
        t0 = time.perf_counter()
        try:
            stream, head = open_input(path)
        except (OSError, FormatError) as e:
            res.error = f"{path}: {e}"
            summary.files.append(res)
            continue
        try:
            if path == "-":
                fmt = get_format(fmt) if isinstance(fmt, str) else sniff_format(head, path)
                if fmt is None:
                    res.error = _unknown(path)
                    continue
            res.format = fmt.name
            _ingest_one(
                store, fmt, Source(path, stream, options, head), res, options, batch_size, enrich, progress, redactor
            )
        except FormatError as e:
            res.error = str(e)
        finally:
            stream.close()
            res.seconds = time.perf_counter() - t0
            if path != "-":
                with contextlib.suppress(OSError):
                    res.bytes = os.path.getsize(path)
            summary.files.append(res)
    return summary


def _unknown(path: str) -> str:
    return (
        f"{path}: unknown format (no importer recognised the first bytes); "
        f"pass --format with one of: {', '.join(sorted(FORMATS))}"
    )


def _ingest_one(store, fmt, source, res, options, batch_size, enrich, progress, redactor=None) -> None:
    traces: list[dict] = []
    quarantine: list[dict] = []
    now = dt.datetime.now(dt.UTC)

    def flush():
        nonlocal traces, quarantine
        tbl = _to_table(traces, quarantine, fmt.name, source.path) if traces else TRACE_SCHEMA.empty_table()
        if enrich is not None and tbl.num_rows:
            tbl = enrich(tbl)
        qtbl = None
        if quarantine:
            from tracelens.schema import QUARANTINE_SCHEMA

            qtbl = pa.Table.from_pylist(quarantine, schema=QUARANTINE_SCHEMA)
        out = store.commit_batch(tbl, qtbl)
        res.stored += out.stored
        res.duplicates += out.duplicates
        res.quarantined += out.quarantined
        traces, quarantine = [], []
        if progress:
            progress(res)

    for item in _iter_items(fmt, source):
        res.read += 1
        if isinstance(item, Skipped):
            res.skipped += 1
            continue
        if isinstance(item, Quarantined):
            quarantine.append(
                make_quarantine_row(fmt.name, source.path, item.locator, item.reason, _quarantine_raw(item.raw))
            )
        else:
            try:
                rec = finalize(item, fmt.name, source.path, options, now)
                if redactor is not None:
                    redactor.record(rec)
                if rec["attributes"] and "timestamp_assumed_tz" in rec["attributes"]:
                    res.naive_timestamps += 1
                traces.append(rec)
            except Exception as e:  # RecordError, or a value of a type the importer did not expect
                reason = str(e) if isinstance(e, RecordError) else f"invalid record: {type(e).__name__}: {e}"
                quarantine.append(
                    make_quarantine_row(
                        fmt.name, source.path, item.get("source_locator") or "record", reason,
                        _quarantine_raw(item.get("_raw") or _safe_describe(item)),
                    )
                )
        if len(traces) + len(quarantine) >= batch_size:
            flush()
    if traces or quarantine:
        flush()


_CONVERT_ERRORS = (pa.ArrowException, TypeError, ValueError, OverflowError, UnicodeError)


def _to_table(traces: list[dict], quarantine: list[dict], fmt_name: str, path: str) -> pa.Table:
    """Arrow table of ``traces``; records that cannot be converted go to ``quarantine`` instead.

    The fast path converts the whole batch at once. Only when that fails
    (a value of the wrong type from untrusted input) are records converted
    one by one, coerced to the schema types, and the rest quarantined.
    """
    try:
        return pa.Table.from_pylist(traces, schema=TRACE_SCHEMA)
    except _CONVERT_ERRORS:
        pass
    from tracelens.ingest.formats.generic import coerce_fields

    good = []
    for rec in traces:
        try:
            pa.Table.from_pylist([rec], schema=TRACE_SCHEMA)
            good.append(rec)
            continue
        except _CONVERT_ERRORS:
            pass
        try:
            fixed = coerce_fields(dict(rec))
            for k in ("request_raw", "response_raw"):
                if isinstance(fixed.get(k), str):
                    fixed[k] = fixed[k].encode("utf-8", "surrogatepass").decode("utf-8", "replace")
            pa.Table.from_pylist([fixed], schema=TRACE_SCHEMA)
            good.append(fixed)
        except _CONVERT_ERRORS as e:
            quarantine.append(
                make_quarantine_row(fmt_name, path, rec.get("source_locator") or "record",
                                    f"record cannot be stored: {type(e).__name__}: {e}", _safe_describe(rec))
            )
    return pa.Table.from_pylist(good, schema=TRACE_SCHEMA) if good else TRACE_SCHEMA.empty_table()


def _safe_describe(item: dict) -> str:
    try:
        return _describe(item)
    except Exception:
        return repr(item)[:_MAX_RAW_QUARANTINE].encode("utf-8", "replace").decode("utf-8")


def _describe(item: dict) -> str:
    from tracelens.ingest.normalize import dumps

    req = item.get("request_raw")
    resp = item.get("response_raw")
    if req or resp:
        return dumps({"request": req, "response": resp})
    return dumps({k: (v if isinstance(v, str | int | float | bool | type(None)) else str(v)) for k, v in item.items()})
