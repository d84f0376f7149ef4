"""Generic tabular logs with a column mapping (``generic_csv``, ``generic_jsonl``, ``generic_parquet``).

For exports that are just rows: a CSV from a spreadsheet or a data
warehouse, JSONL of flat objects, or a Parquet file. Each row becomes one
trace; which column holds what comes from ``options.column_map``
(``--map prompt=question --map response=answer``) and, for every canonical
field not mapped explicitly, from the column names (``question``,
``answer``, ``ts``, ``user_id``, ... are recognised; see ``AUTO_ALIASES``).
Columns that map to nothing are kept in ``attributes``.

Contract:

* ``--map`` keys are canonical trace fields (``tracelens.schema``) or the
  short aliases in ``MAP_ALIASES``; an unknown key, or a mapped column the
  file does not have, is a ``FormatError`` naming the problem and the valid
  choices. A file in which no prompt, response or messages column can be
  found is a ``FormatError`` that says how to map one.
* ``messages`` is ``[user prompt]`` when only a prompt is given; a mapped
  ``messages`` column (JSON list, OpenAI or Anthropic style) is normalised.
* Rows without a timestamp are quarantined with a reason unless
  ``options.default_time`` is set (then the pipeline fills it and marks
  ``attributes.timestamp_source=default_time``).
* CSV is streamed with the ``csv`` module (quoted newlines, large fields);
  a row whose field count differs from the header, or that holds invalid
  UTF-8, is quarantined. Parquet is read with ``iter_batches`` (bounded
  memory). JSONL is streamed line by line.
* Sniffers return at most 0.35 so that every specific format wins.

Values are made safe to write by ``tracelens.ingest.coerce`` (wrong JSON
types become strings or nulls), so one odd record can never abort a batch.

Field mappings and quarantine reasons: docs/formats/generic.md.
"""

from __future__ import annotations

import codecs
import csv
import datetime as dt
import io
import os
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

import pyarrow as pa

from tracelens.ingest.base import FormatError, IngestOptions, Quarantined, RecordError, Skipped, Source
from tracelens.ingest.coerce import FIELD_TYPES, attr_text, coerce_fields, json_text, safe_text
from tracelens.ingest.guard import each_record
from tracelens.ingest.normalize import (
    anthropic_messages,
    as_float,
    as_int,
    message,
    normalize_stop_reason,
    openai_messages,
    tool_call,
)
from tracelens.ingest.readers import csv_delimiter, iter_csv_rows, iter_json_values, loads
from tracelens.schema import FIELDS

# ---------------------------------------------------------------- column mapping

# Fields the pipeline derives or enrichment computes: never taken from a column.
_NOT_MAPPABLE = {
    "source_format", "source_file", "source_locator", "ingested_at", "content_hash", "prompt_hash",
    "system_prompt_hash", "tools_hash", "refusal", "refusal_score", "refusal_source", "refusal_category",
    "refusal_evidence", "refusal_version",
}
MAPPABLE = tuple(f.name for f in FIELDS if f.name not in _NOT_MAPPABLE)

# Short names accepted as --map keys: alias -> (canonical field, scale for numbers).
MAP_ALIASES: dict[str, tuple[str, float]] = {
    "prompt": ("prompt_text", 1), "response": ("response_text", 1), "user": ("user_id", 1),
    "session": ("session_id", 1), "conversation": ("conversation_id", 1), "thread": ("conversation_id", 1),
    "model": ("model_requested", 1), "returned_model": ("model_returned", 1), "system": ("system_prompt", 1),
    "latency": ("latency_ms", 1), "latency_s": ("latency_ms", 1000), "ttft": ("time_to_first_token_ms", 1),
    "tokens_in": ("input_tokens", 1), "tokens_out": ("output_tokens", 1), "prompt_tokens": ("input_tokens", 1),
    "completion_tokens": ("output_tokens", 1), "finish_reason": ("stop_reason", 1),
    "tools": ("tool_definitions", 1), "id": ("trace_id", 1), "time": ("timestamp", 1), "ts": ("timestamp", 1),
    "error": ("error_message", 1), "metadata": ("attributes", 1),
}


def _names(*names: str) -> tuple[str, ...]:
    return names


# Column names recognised without a mapping (compared after lower-casing and turning
# non-alphanumerics into '_'): canonical field -> names, in order of preference.
AUTO_ALIASES: dict[str, tuple[str, ...]] = {
    "prompt_text": _names("prompt_text", "prompt", "input", "input_text", "question", "query", "user_message",
                          "user_input", "user_prompt", "instruction", "request_text"),
    "response_text": _names("response_text", "response", "output", "output_text", "answer", "completion",
                            "model_output", "model_response", "assistant_message", "assistant_response",
                            "generation", "reply"),
    "messages": _names("messages",),
    "timestamp": _names("timestamp", "ts", "time", "datetime", "created_at", "created", "date", "start_time",
                        "started_at", "request_time", "event_time"),
    "trace_id": _names("trace_id",),
    "request_id": _names("request_id",),
    "response_id": _names("response_id",),
    "user_id": _names("user_id", "user", "userid", "end_user", "customer_id"),
    "session_id": _names("session_id", "session"),
    "conversation_id": _names("conversation_id", "conversation", "thread_id"),
    "app": _names("app", "application", "feature"),
    "service": _names("service", "service_name"),
    "provider": _names("provider",),
    "model_requested": _names("model_requested", "model", "model_name", "model_id", "requested_model"),
    "model_returned": _names("model_returned", "response_model", "resolved_model"),
    "system_prompt": _names("system_prompt", "system", "system_message"),
    "tool_definitions": _names("tool_definitions", "tools"),
    "tool_calls": _names("tool_calls",),
    "stop_reason": _names("stop_reason", "finish_reason"),
    "temperature": _names("temperature",),
    "top_p": _names("top_p",),
    "top_k": _names("top_k",),
    "max_tokens": _names("max_tokens",),
    "seed": _names("seed",),
    "input_tokens": _names("input_tokens", "prompt_tokens", "tokens_in", "num_input_tokens"),
    "output_tokens": _names("output_tokens", "completion_tokens", "tokens_out", "num_output_tokens"),
    "cache_read_tokens": _names("cache_read_tokens", "cached_tokens"),
    "cache_creation_tokens": _names("cache_creation_tokens",),
    "latency_ms": _names("latency_ms", "latency", "duration_ms", "elapsed_ms", "response_time_ms"),
    "time_to_first_token_ms": _names("time_to_first_token_ms", "ttft_ms", "ttft"),
    "status": _names("status",),
    "error_type": _names("error_type",),
    "error_message": _names("error_message", "error"),
    "http_status": _names("http_status", "status_code"),
    "cost": _names("cost", "cost_usd"),
    "service_tier": _names("service_tier",),
    "attributes": _names("attributes", "metadata"),
}
# Column names in seconds that map to a millisecond field.
_SECONDS_ALIASES = {
    "latency_ms": ("latency_s", "latency_sec", "latency_seconds", "duration_s", "duration_sec", "duration_seconds",
                   "elapsed_s"),
}
_TEXT_FIELDS = ("prompt_text", "response_text", "messages")


def _norm_name(s: str) -> str:
    return re.sub(r"[^0-9a-z]+", "_", str(s).lower()).strip("_")


@dataclass
class Mapping:
    """Resolved mapping of one file: canonical field -> (source column, numeric scale)."""

    fields: dict[str, tuple[str, float]] = field(default_factory=dict)
    explicit: set[str] = field(default_factory=set)

    @property
    def columns(self) -> set[str]:
        return {c for c, _ in self.fields.values()}


def resolve_map_keys(column_map: dict[str, str]) -> dict[str, tuple[str, float]]:
    """Canonical field -> (column, scale) from user ``--map`` keys; FormatError for unknown keys."""
    out: dict[str, tuple[str, float]] = {}
    bad = []
    for key, col in column_map.items():
        k = key.strip()
        if k in MAPPABLE:
            out[k] = (col, 1)
        elif k.lower() in MAP_ALIASES:
            canon, scale = MAP_ALIASES[k.lower()]
            out[canon] = (col, scale)
        else:
            bad.append(k)
    if bad:
        aliases = ", ".join(f"{a} ({c})" for a, (c, _) in MAP_ALIASES.items())
        raise FormatError(
            f"unknown field(s) in --map: {', '.join(sorted(bad))}. Valid fields: {', '.join(MAPPABLE)}; "
            f"short aliases: {aliases}"
        )
    return out


def plan_mapping(columns: Iterable[str], column_map: dict[str, str], path: str, has_column=None) -> Mapping:
    """Decide which column feeds which field.

    Explicit ``column_map`` entries win; every other canonical field is
    auto-mapped from a column whose (normalised) name is a known alias, each
    column used at most once. ``has_column`` checks a mapped name that is not
    a top-level column (dotted paths into nested JSON); default: exact match.
    """
    cols = list(dict.fromkeys(columns))
    explicit = resolve_map_keys(column_map)
    present = set(cols)
    missing = [c for c, _ in explicit.values() if c not in present and not (has_column and has_column(c))]
    if missing:
        raise FormatError(
            f"{path}: mapped column(s) not in the file: {', '.join(sorted(set(missing)))}; "
            f"columns found: {', '.join(cols) or '(none)'}"
        )
    m = Mapping(fields=dict(explicit), explicit=set(explicit))
    used = m.columns
    by_norm: dict[str, str] = {}
    for c in cols:
        by_norm.setdefault(_norm_name(c), c)
    for canon, names in AUTO_ALIASES.items():
        if canon in m.fields:
            continue
        scaled = [(n, 1.0) for n in names] + [(n, 1000.0) for n in _SECONDS_ALIASES.get(canon, ())]
        for n, scale in scaled:
            c = by_norm.get(n)
            if c is not None and c not in used:
                m.fields[canon] = (c, scale)
                used.add(c)
                break
    if not any(f in m.fields for f in _TEXT_FIELDS):
        raise FormatError(
            f"{path}: no prompt or response column found (columns: {', '.join(cols) or '(none)'}); "
            "map them, e.g. --map prompt=COLUMN --map response=COLUMN"
        )
    return m


def _get(row: dict, col: str) -> Any:
    """Value of ``col`` in ``row``; a dotted name reaches into nested objects when no such flat key exists."""
    if col in row:
        return row[col]
    if "." in col:
        cur: Any = row
        for part in col.split("."):
            if not isinstance(cur, dict) or part not in cur:
                return None
            cur = cur[part]
        return cur
    return None


def _has_path(rows: list[dict], col: str) -> bool:
    return any(_get(r, col) is not None for r in rows if isinstance(r, dict))


def _maybe_json(v: Any) -> Any:
    if isinstance(v, str):
        s = v.strip()
        if s[:1] in ("[", "{"):
            try:
                return loads(s)
            except ValueError:
                return v
    return v


def _messages(v: Any) -> tuple[str | None, list[dict]]:
    """(system prompt, messages) from a messages value in OpenAI or Anthropic style."""
    v = _maybe_json(v)
    if not isinstance(v, list):
        raise RecordError("messages column is not a JSON list")
    anthropic_style = any(
        isinstance(m, dict) and isinstance(m.get("content"), list)
        and any(isinstance(b, dict) and b.get("type") in ("tool_use", "tool_result") for b in m["content"])
        for m in v
    )
    if anthropic_style:
        return None, anthropic_messages(v)
    return openai_messages(v)


def _tool_calls(v: Any) -> list[dict]:
    v = _maybe_json(v)
    if not isinstance(v, list):
        raise RecordError("tool_calls column is not a JSON list")
    out = []
    for c in v:
        if not isinstance(c, dict):
            continue
        fn = c.get("function") if isinstance(c.get("function"), dict) else {}
        out.append(tool_call(c.get("id"), c.get("name") or fn.get("name"), c.get("arguments", c.get("input", fn.get("arguments")))))
    return out


_OK = {"ok", "success", "succeeded", "successful", "completed", "complete", "true", "200"}
_ERR = {"error", "errored", "failed", "failure", "fail", "exception", "false", "timeout", "cancelled", "canceled"}


def _status(v: Any) -> str | None:
    s = str(v).strip().lower()
    if s in _OK:
        return "ok"
    if s in _ERR:
        return "error"
    code = as_int(s)
    if code is not None and 100 <= code <= 599:
        return "error" if code >= 400 else "ok"
    return None


def _bool(v: Any) -> bool | None:
    if isinstance(v, bool):
        return v
    s = str(v).strip().lower()
    if s in ("true", "1", "yes", "y", "t"):
        return True
    if s in ("false", "0", "no", "n", "f"):
        return False
    return None


_YYYYMMDD = re.compile(r"^(19|20)\d{2}(0[1-9]|1[0-2])(0[1-9]|[12]\d|3[01])$")


def _timestamp_value(v: Any) -> Any:
    """Column value ready for the pipeline's timestamp parser.

    Tabular exports often hold plain dates: a ``date`` object (Parquet) or
    basic ISO 8601 ``YYYYMMDD`` text, which would otherwise read as epoch
    seconds in 1970. Both become midnight (in ``--naive-tz``).
    """
    if isinstance(v, dt.date) and not isinstance(v, dt.datetime):
        return dt.datetime(v.year, v.month, v.day)
    if isinstance(v, str | int) and not isinstance(v, bool) and _YYYYMMDD.match(str(v).strip()):
        s = str(v).strip()
        return f"{s[:4]}-{s[4:6]}-{s[6:]}"
    return v


def _blank(v: Any) -> bool:
    return v is None or (isinstance(v, str) and v == "")


def row_record(row: dict, mapping: Mapping, options: IngestOptions, locator: str) -> dict:
    """Trace fields from one row (raises RecordError)."""
    rec: dict[str, Any] = {}
    attrs: dict[str, str] = {}
    for canon, (col, scale) in mapping.fields.items():
        v = _get(row, col)
        if _blank(v) and not (canon == "response_text" and v == ""):
            continue
        if canon == "messages":
            system, rec["messages"] = _messages(v)
            if system and "system_prompt" not in mapping.fields:
                rec["system_prompt"] = system
        elif canon == "tool_calls":
            rec["tool_calls"] = _tool_calls(v)
        elif canon == "tool_definitions":
            rec["tool_definitions"] = v if isinstance(v, str) else json_text(v)
        elif canon == "stop_sequences":
            v = _maybe_json(v)
            rec["stop_sequences"] = [str(s) for s in v] if isinstance(v, list) else [str(v)]
        elif canon == "stop_reason":
            rec["stop_reason_raw"] = str(v)
            rec["stop_reason"] = normalize_stop_reason(str(v))
        elif canon == "stop_reason_raw":
            rec["stop_reason_raw"] = str(v)
            if "stop_reason" not in mapping.fields:
                rec["stop_reason"] = normalize_stop_reason(str(v))
        elif canon == "status":
            st = _status(v)
            if st is None:
                attrs["status_raw"] = str(v)
            rec["status"] = st
        elif canon == "attributes":
            obj = _maybe_json(v)
            if isinstance(obj, dict):
                attrs.update({str(a): attr_text(b) for a, b in obj.items() if b is not None})
            else:
                attrs[col] = attr_text(v)
        elif canon == "timestamp":
            rec["timestamp"] = _timestamp_value(v)
        elif canon == "provider":
            rec["provider"] = str(v).strip().lower()
        else:
            t = FIELD_TYPES[canon]
            if pa.types.is_integer(t):
                x = as_float(v)
                if x is None:
                    raise RecordError(f"column {col!r} ({canon}) is not a number: {str(v)[:80]!r}")
                rec[canon] = int(round(x * scale))
            elif pa.types.is_floating(t):
                x = as_float(v)
                if x is None:
                    raise RecordError(f"column {col!r} ({canon}) is not a number: {str(v)[:80]!r}")
                rec[canon] = x * scale
            elif pa.types.is_boolean(t):
                rec[canon] = _bool(v)
            else:
                rec[canon] = v if isinstance(v, str) else json_text(v)
    used = mapping.columns
    for k, v in row.items():
        if k in used or _blank(v):
            continue
        attrs[str(k)] = attr_text(v)
    if "messages" not in rec and rec.get("prompt_text") is not None:
        rec["messages"] = [message("user", rec["prompt_text"])]
    if not rec.get("provider") and options.provider:
        rec["provider"] = options.provider.lower()
    if rec.get("timestamp") is None and not options.default_time:
        if "timestamp" in mapping.fields:
            raise RecordError(f"empty timestamp in column {mapping.fields['timestamp'][0]!r} "
                              "(pass --default-time ISO8601 to assign one)")
        raise RecordError("no timestamp column (map one with --map timestamp=COLUMN, or pass --default-time ISO8601)")
    rec["attributes"] = attrs or None
    rec["source_locator"] = locator
    if rec.get("trace_id") is not None:
        rec["trace_id"] = str(rec["trace_id"])
    return coerce_fields(rec)


def _rows_to_items(source: Source, rows: Iterable[tuple[str, Any]], mapping: Mapping, options: IngestOptions
                   ) -> Iterator[dict | Quarantined | Skipped]:
    def item(locator: str, row: Any) -> dict:
        if not isinstance(row, dict):
            raise RecordError(f"expected an object, got {type(row).__name__}")
        rec = row_record(row, mapping, options, locator)
        rec["_raw"] = safe_text(json_text(row))
        return rec

    return each_record(source, rows, item, raw=lambda row: safe_text(json_text(row)))


# ---------------------------------------------------------------- sniffing helpers

_ALL_TEXT_NAMES = {n for f in _TEXT_FIELDS for n in AUTO_ALIASES[f]}
_JSON_TEXT_KEY = re.compile(rb'"(' + b"|".join(re.escape(n.encode()) for n in sorted(_ALL_TEXT_NAMES)) + rb')"\s*:', re.I)


def _decode_head(head: bytes) -> str | None:
    """The head as text for sniffing (bad bytes replaced: rows are checked one by one later)."""
    return head.decode("utf-8", errors="replace")


# ---------------------------------------------------------------- CSV


class GenericCsv:
    name = "generic_csv"
    description = "CSV/TSV with a header row; columns mapped with --map FIELD=COLUMN or recognised by name"

    def sniff(self, head: bytes, path: str) -> float:
        if head[:4] == b"PAR1":
            return 0.0
        text = _decode_head(head)
        if not text:
            return 0.0
        text = text.lstrip("\ufeff")
        first = text.split("\n", 1)[0].rstrip("\r")
        # binary data is not CSV; a NUL in one row of a text file does not make it binary
        if text.lstrip()[:1] in ("{", "[", "<") or "\x00" in first or text[:4096].count("\x00") > 8:
            return 0.0
        delim = csv_delimiter(first, path)
        try:
            header = next(csv.reader([first], delimiter=delim))
        except (csv.Error, StopIteration):
            return 0.0
        names = {_norm_name(h) for h in header}
        if len(header) >= 2 and names & _ALL_TEXT_NAMES:
            return 0.35
        if path.lower().endswith((".csv", ".tsv", ".csv.gz", ".csv.zst", ".tsv.gz", ".tsv.zst")):
            return 0.31  # chosen only when nothing else claims it; parse then explains the mapping
        return 0.0

    def parse(self, source: Source) -> Iterator[dict | Quarantined | Skipped]:
        cols, rows = iter_csv_rows(source.stream, source.head, source.path)
        if not cols:
            return iter(())
        mapping = plan_mapping(cols, source.options.column_map, source.path)
        return _rows_to_items(source, rows, mapping, source.options)


# ---------------------------------------------------------------- JSONL

_PEEK_RECORDS = 200


class GenericJsonl:
    name = "generic_jsonl"
    description = "JSONL (or a JSON array) of flat row objects; fields mapped with --map or recognised by name"

    def sniff(self, head: bytes, path: str) -> float:
        s = head.lstrip(codecs.BOM_UTF8).lstrip()
        if s[:1] == b"{":
            line = s.split(b"\n", 1)[0]
            try:
                obj = loads(line)
            except ValueError:
                return 0.0
            if isinstance(obj, dict) and {_norm_name(k) for k in obj} & _ALL_TEXT_NAMES:
                return 0.33
            return 0.0
        if s[:1] == b"[" and _JSON_TEXT_KEY.search(s[:65536]):
            return 0.32
        return 0.0

    def parse(self, source: Source) -> Iterator[dict | Quarantined | Skipped]:
        values = iter_json_values(source.stream, source.head, source.path)
        peeked: list[tuple[str, Any]] = []
        for item in values:
            peeked.append(item)
            if len(peeked) >= _PEEK_RECORDS:
                break
        if not peeked:
            return
        rows = [v for _, v in peeked if isinstance(v, dict)]
        cols = list(dict.fromkeys(k for r in rows for k in r))
        if rows:
            mapping = plan_mapping(cols, source.options.column_map, source.path, lambda c: _has_path(rows, c))
        else:
            mapping = Mapping()  # nothing readable in the first records: each is quarantined as not an object
        rows = []  # planning is done: the peeked records are not kept twice

        def chain() -> Iterator[tuple[str, Any]]:
            while peeked:
                yield peeked.pop(0)
            yield from values

        yield from _rows_to_items(source, chain(), mapping, source.options)


# ---------------------------------------------------------------- Parquet

_PARQUET_BATCH = 2048


class GenericParquet:
    name = "generic_parquet"
    description = "Parquet table of rows; columns mapped with --map or recognised by name (streamed by row group)"

    def sniff(self, head: bytes, path: str) -> float:
        return 0.35 if head[:4] == b"PAR1" else 0.0

    def parse(self, source: Source) -> Iterator[dict | Quarantined | Skipped]:
        import pyarrow.parquet as pq

        target: Any
        if source.path != "-" and os.path.isfile(source.path) and _magic(source.path) == b"PAR1":
            target = source.path  # random access for the footer; rows are read batch by batch
        else:
            # compressed or piped Parquet: the format needs its footer, so the data is held in memory
            try:
                target = io.BytesIO(source.stream.read())
            except OSError as e:
                raise FormatError(f"{source.path}: cannot read the Parquet data: {e}") from None
        try:
            pf = pq.ParquetFile(target)
        except Exception as e:  # noqa: BLE001 - pyarrow raises several types for unreadable files
            raise FormatError(f"{source.path}: not a readable Parquet file: {e}") from None
        cols = pf.schema_arrow.names
        mapping = plan_mapping(cols, source.options.column_map, source.path,
                               lambda c: c.split(".", 1)[0] in cols)
        return _rows_to_items(source, _parquet_rows(pf), mapping, source.options)


def _magic(path: str) -> bytes:
    with open(path, "rb") as f:
        return f.read(4)


def _parquet_rows(pf) -> Iterator[tuple[str, Any]]:
    """(row:n, row dict) for every row the footer announces; the rows of an unreadable row group are
    quarantined one by one (their count comes from the footer), and reading goes on with the next group."""
    n = 0
    for g in range(pf.num_row_groups):
        expected = pf.metadata.row_group(g).num_rows
        got = 0
        try:
            for batch in pf.iter_batches(batch_size=_PARQUET_BATCH, row_groups=[g]):
                for row in batch.to_pylist():
                    if got == expected:
                        break
                    n += 1
                    got += 1
                    yield f"row:{n}", row
        except Exception as e:  # noqa: BLE001 - a corrupt row group costs its own rows only
            reason = (f"Parquet row group {g} unreadable after {got} of its {expected} rows "
                      f"({type(e).__name__}: {e})")
            while got < expected:
                n += 1
                got += 1
                yield f"row:{n}", Quarantined(f"row:{n}", reason, None)
        if got < expected:  # fewer rows than the footer says
            reason = f"Parquet row group {g} holds {got} rows, its footer says {expected}"
            while got < expected:
                n += 1
                got += 1
                yield f"row:{n}", Quarantined(f"row:{n}", reason, None)


FORMATS = [GenericCsv(), GenericJsonl(), GenericParquet()]
