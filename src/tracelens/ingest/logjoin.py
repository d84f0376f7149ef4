"""GenAI events from OTLP log records, joined to the trace of their span.

Contract. The ``otlp_logs`` importers yield ``LogEvent`` items; the pipeline
turns each into a row of the store's ``otlp_events`` table (``event_row``:
secrets scrubbed and the ingest's redaction applied, as for traces) whose
``event_id`` is a hash of the span, the event name, its time, its content and
its occurrence (``LogEvent.occurrence``), so re-ingesting the same events,
from JSON or protobuf, from a file or a receiver, stores nothing twice.

The trace of a span is always: the span's own row (as ``otlp_json`` /
``otlp_proto`` map it) with every stored event of that span merged in
(``merge``), then finalized again. Merging reads the events exactly as the
span mapping reads ``gen_ai.*`` span events (``tracelens.ingest.spans.genai_fields``) and
fills only what the span left empty: system prompt, messages, response
text, tool calls, stop reason, the model when the span lacks it, and so on.
Which fields came from events is recorded in the row
(``attributes["otel.log_event_fields"]``, with ``otel.log_events``, the
number of events) so that a later merge first takes them out again: the
result depends only on the span and the set of its events, never on the
order in which files were ingested. ``rejoin`` applies this to the rows of
a table; the store calls it under its lock for a batch's span rows and for
stored rows that new events belong to (``Store.commit_batch``).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from collections import Counter
from collections.abc import Callable
from typing import Any

import pyarrow as pa

from tracelens.ingest.base import IngestOptions, LogEvent
from tracelens.ingest.normalize import dumps
from tracelens.ingest.spans import genai_fields, tool_calls_only_text
from tracelens.schema import EVENTS_SCHEMA, TRACE_SCHEMA
from tracelens.secrets import scrub_text, scrub_value

# Fields an event may fill when the span left them empty, in this order.
MERGED = (
    "system_prompt", "messages", "response_text", "tool_calls", "tool_definitions", "stop_reason", "stop_reason_raw",
    "model_requested", "model_returned", "provider", "response_id", "conversation_id", "input_tokens",
    "output_tokens", "cache_read_tokens", "cache_creation_tokens", "temperature", "top_p", "top_k", "max_tokens",
    "seed", "stop_sequences", "error_type", "error_message",
)
_LISTS = frozenset({"messages", "tool_calls"})
# Columns finalize derives from the others (never set by the span mapping): recomputed after a merge.
_DERIVED = ("prompt_text", "model_family", "model_snapshot", "model_is_alias", "system_prompt_hash", "tools_hash",
            "prompt_hash", "content_hash")
COUNT_ATTR = "otel.log_events"
FIELDS_ATTR = "otel.log_event_fields"
# Importers whose rows are spans keyed otel:<trace_id>:<span_id>, which log events can belong to.
JOINABLE = frozenset({"otlp_json", "otlp_proto", "openinference"})


def event_id(trace_id: str, span_id: str, name: str, time_ns: int | None, attributes: str, occurrence: int) -> str:
    h = hashlib.sha256()
    for part in (trace_id, span_id, name, "" if time_ns is None else str(time_ns), attributes, str(occurrence)):
        h.update(part.encode("utf-8", "surrogatepass"))
        h.update(b"\x00")
    return h.hexdigest()[:32]


def _redact(v: Any, redactor, counts: Counter) -> Any:
    if isinstance(v, str):
        return redactor.text(v, counts)
    if isinstance(v, dict):
        return {k: _redact(x, redactor, counts) for k, x in v.items()}
    if isinstance(v, list):
        return [_redact(x, redactor, counts) for x in v]
    return v


def event_row(ev: LogEvent, source_format: str, source_file: str, now: dt.datetime, redactor=None) -> dict:
    """The ``otlp_events`` row of one event: its content scrubbed of secrets (and redacted), then keyed."""
    attrs = scrub_value(ev.attributes)
    if redactor is not None:
        attrs = _redact(attrs, redactor, Counter())
    text = dumps(attrs)
    return {
        "event_id": event_id(ev.trace_id, ev.span_id, ev.name, ev.time_ns, text, ev.occurrence),
        "trace_id": ev.trace_id,
        "span_id": ev.span_id,
        "name": ev.name,
        "time_unix_nano": ev.time_ns,
        "ordinal": ev.ordinal,
        "attributes": text,
        "scope": ev.scope,
        "source_format": source_format,
        "source_file": scrub_text(source_file),
        "source_locator": ev.locator,
        "ingested_at": now,
    }


def events_table(rows: list[dict]) -> pa.Table:
    return pa.Table.from_pylist(rows, schema=EVENTS_SCHEMA)


def _span_events(events: list[dict]) -> list[dict]:
    """Event rows as the span mapping's span events, in time order (then file order, then id)."""
    ordered = sorted(events, key=lambda e: (e["time_unix_nano"] or 0, e["ordinal"], e["event_id"]))
    return [{"name": e["name"], "time": e["time_unix_nano"], "attributes": json.loads(e["attributes"])}
            for e in ordered]


def _empty(v: Any) -> bool:
    return v is None or (isinstance(v, list) and not v)


def merge(row: dict, events: list[dict]) -> dict:
    """``row`` (a trace row of a span) with the content of ``events`` (``otlp_events`` rows) merged in, its
    derived columns cleared for finalize; an earlier merge is taken out first (see the module docstring)."""
    row = dict(row)
    attrs = dict(row.get("attributes") or {})
    for f in (attrs.pop(FIELDS_ATTR, None) or "").split(","):
        if f in MERGED:
            row[f] = [] if f in _LISTS else None
    attrs.pop(COUNT_ATTR, None)
    for f in _DERIVED:
        row[f] = None
    if events:
        fields, _ = genai_fields({}, _span_events(events))
        filled = []
        for f in MERGED:
            v = fields.get(f)
            if not _empty(v) and _empty(row.get(f)):
                row[f] = v
                filled.append(f)
        tool_calls_only_text(row)
        attrs[COUNT_ATTR] = str(len(events))
        if filled:
            attrs[FIELDS_ATTR] = ",".join(filled)
    row["attributes"] = attrs
    return row


def _as_record(row: dict) -> dict:
    """A row read from Arrow as a record finalize takes (attributes as a dict)."""
    attrs = row.get("attributes")
    if isinstance(attrs, list):
        row["attributes"] = {k: v for k, v in attrs}
    row.pop("date", None)
    return row


def rejoin(tbl: pa.Table, by_key: dict[str, list[dict]], options: IngestOptions, finalize: Callable[..., dict],
           redactor=None, enrich: Callable[[pa.Table], pa.Table] | None = None) -> pa.Table:
    """``tbl`` (TRACE_SCHEMA) with every span row that has events in ``by_key`` re-derived: merged, finalized,
    redacted and enriched as ingest does for a new row. Other rows are returned as they are.

    ``finalize`` is the pipeline's (``tracelens.ingest.pipeline.finalize``), passed in so that this module
    does not import the pipeline that imports it."""
    keys = tbl.column("trace_id").to_pylist()
    formats = tbl.column("source_format").to_pylist()
    todo = [i for i, (k, f) in enumerate(zip(keys, formats, strict=True)) if k in by_key and f in JOINABLE]
    if not todo:
        return tbl
    recs = []
    for row in tbl.take(todo).to_pylist():
        row = _as_record(row)
        rec = finalize(merge(row, by_key[row["trace_id"]]), row["source_format"], row["source_file"], options,
                       row["ingested_at"])
        rec["source_locator"] = row["source_locator"]
        if redactor is not None:
            redactor.record(rec)
        recs.append(rec)
    new = pa.Table.from_pylist(recs, schema=TRACE_SCHEMA)
    if enrich is not None:
        new = enrich(new)
    if len(todo) == tbl.num_rows:
        return new
    # every row in its place: the untouched rows, then the new ones, taken back in the original order
    n = tbl.num_rows
    place = list(range(n))
    for j, i in enumerate(todo):
        place[i] = n + j
    return pa.concat_tables([tbl.cast(TRACE_SCHEMA), new]).take(pa.array(place, pa.int64()))
