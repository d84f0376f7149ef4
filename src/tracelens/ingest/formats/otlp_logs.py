"""OpenTelemetry GenAI events sent as OTLP log records (``otlp_logs``, ``otlp_logs_proto``).

Instrumentations that keep prompts and responses out of span attributes
emit them as log records ("events") instead: the OpenTelemetry
``openai-v2`` instrumentation in event mode (``gen_ai.system.message``,
``gen_ai.user.message``, ``gen_ai.assistant.message``, ``gen_ai.tool.message``,
``gen_ai.choice``; newer ``gen_ai.client.inference.operation.details``
carrying ``gen_ai.input.messages`` / ``gen_ai.output.messages``), and
OpenLLMetry (traceloop) with ``use_attributes=False``. Their spans then
carry no content, so a trace is only complete once both are read.

``otlp_logs`` reads OTLP JSON: one ``ExportLogsServiceRequest`` per line (the
Collector ``file`` exporter), a single JSON document, or an array of them;
camelCase and snake_case keys, hex or base64 ids (as ``otlp_json``).
``otlp_logs_proto`` reads the same requests as protobuf (``.binpb``, framed
with 4-byte big-endian lengths or one bare message, zstd per message), via
``opentelemetry-proto`` (the ``otlp`` extra), turned into the JSON mapping.

Each log record is one item:

* a GenAI event (event name ``gen_ai.*``, from the record's ``eventName`` or
  its ``event.name`` attribute) with a trace and span id becomes a
  ``LogEvent``: its attributes, and its body under ``event.body``, so that it
  reads exactly like a span event of the same name;
* any other log record, and a GenAI event without a span context (nothing to
  join it to), is ``Skipped`` with the reason;
* a record whose structure is broken is ``Quarantined``.

The pipeline keeps every ``LogEvent`` in the store's ``otlp_events`` table
and merges the events of a span into that span's trace, whichever of the two
files is ingested first (``tracelens.ingest.logjoin``).

``log_doc_items(locator, doc)`` maps one decoded OTLP JSON-shaped logs
document (a request, or a list of them) to items: the entry point for a
receiver that already holds a decoded ``ExportLogsServiceRequest``.
"""

from __future__ import annotations

import base64
from collections import Counter
from collections.abc import Iterator
from typing import Any

from tracelens.ingest.base import FormatError, LogEvent, Quarantined, RecordError, Skipped, Source
from tracelens.ingest.guard import describe, each_record, isolate
from tracelens.ingest.normalize import as_str, dumps
from tracelens.ingest.otlpwire import (
    any_value,
    attributes,
    first_request_kind,
    iter_messages,
    key_of,
    proto_fields,
    raw_bytes,
    raw_text,
    sniff_proto,
    unzstd,
)
from tracelens.ingest.readers import ZSTD_MAGIC, iter_json_values, loads
from tracelens.ingest.spans import norm_id

Item = LogEvent | Quarantined | Skipped
_ZERO_IDS = {"0" * 32, "0" * 16}


class LogState:
    """What the items of one input share: the running ordinal and how often each event was seen.

    ``occurrence`` tells apart events that are identical in span, name, time and
    content (the store keys events by them), counted in input order, so the same
    input always gives the same keys.
    """

    def __init__(self) -> None:
        self.ordinal = 0
        self.seen: Counter = Counter()


def log_doc_items(locator: str, doc: Any, state: LogState | None = None) -> Iterator[Item]:
    """Items for one decoded OTLP JSON-shaped logs document: an ExportLogsServiceRequest or a list of them."""
    state = state or LogState()
    if isinstance(doc, list):  # a line (or document) holding several requests
        for i, req in enumerate(doc):
            yield from iter_logs_request(req, f"{locator}/{i}", state)
    else:
        yield from iter_logs_request(doc, locator, state)


def iter_logs_request(req: Any, locator: str, state: LogState | None = None) -> Iterator[Item]:
    """Items for every log record of one ExportLogsServiceRequest; a malformed resourceLogs entry costs only itself."""
    state = state or LogState()
    if not isinstance(req, dict) or not isinstance(key_of(req, "resourceLogs", "resource_logs"), list):
        yield Quarantined(locator, "not an OTLP ExportLogsServiceRequest (no resourceLogs array)", describe(req))
        return
    counter = [0]
    entries = ((f"{locator}/resourceLogs", rl) for rl in key_of(req, "resourceLogs", "resource_logs"))
    yield from each_record(None, entries, lambda loc, rl: _resource_items(rl, loc, locator, counter, state),
                           defer=True)


def _resource_items(rl: Any, loc: str, locator: str, counter: list[int], state: LogState) -> Iterator[Item]:
    if not isinstance(rl, dict):
        raise RecordError("resourceLogs entry is not an object")
    res = rl.get("resource")
    if res is not None and not isinstance(res, dict):
        raise RecordError(f"'resource' is a {type(res).__name__}, not an object")
    scopes = key_of(rl, "scopeLogs", "scope_logs") or []
    if not isinstance(scopes, list):
        raise RecordError(f"'scopeLogs' is a {type(scopes).__name__}, not a list")
    for sl in scopes:
        if not isinstance(sl, dict):
            continue
        sc = sl.get("scope") or {}
        scope = as_str(sc.get("name")) if isinstance(sc, dict) else None
        records = key_of(sl, "logRecords", "log_records") or []
        if not isinstance(records, list):
            yield Quarantined(loc, f"'logRecords' is a {type(records).__name__}, not a list", describe(sl))
            continue
        for record in records:
            n = counter[0]
            counter[0] += 1
            yield isolate(f"{locator}/log#{n}", record, lambda lc, r, sc=scope: _log_item(r, sc, lc, state), raw=raw_text)


def _event_name(record: dict, attrs: dict) -> str | None:
    name = as_str(key_of(record, "eventName", "event_name")) or as_str(attrs.get("event.name"))
    return name or None


def _log_item(record: Any, scope: str | None, locator: str, state: LogState) -> Item:
    if not isinstance(record, dict):
        raise RecordError(f"log record is a {type(record).__name__}, not an object")
    attrs = attributes(record.get("attributes"))
    name = _event_name(record, attrs)
    if name is None or not name.startswith("gen_ai."):
        what = f"event {name!r}" if name else "no event name"
        return Skipped(locator, f"log record is not a GenAI event ({what})")
    trace_id = norm_id(key_of(record, "traceId", "trace_id"))
    span_id = norm_id(key_of(record, "spanId", "span_id"))
    if not trace_id or not span_id or trace_id in _ZERO_IDS or span_id in _ZERO_IDS:
        return Skipped(locator, f"GenAI event {name!r} has no span context (trace and span id): nothing to join it to")
    body = any_value(record.get("body"))
    ev = {k: v for k, v in attrs.items() if k != "event.name"}
    if body is not None:
        ev["event.body"] = body
    time_ns = _nanos(key_of(record, "timeUnixNano", "time_unix_nano")) or _nanos(
        key_of(record, "observedTimeUnixNano", "observed_time_unix_nano"))
    key = (trace_id, span_id, name, time_ns, dumps(ev))
    occurrence = state.seen[key]
    state.seen[key] += 1
    ordinal = state.ordinal
    state.ordinal += 1
    return LogEvent(locator, trace_id, span_id, name, time_ns, ev, ordinal, scope, occurrence)


def _nanos(v: Any) -> int | None:
    if v is None or v == "" or v == 0 or v == "0":
        return None
    try:
        ns = int(v)
    except (TypeError, ValueError):
        raise RecordError(f"time is not an integer number of nanoseconds: {v!r}") from None
    if not 0 < ns < 2**63:
        raise RecordError(f"time {v!r} is out of range")
    return ns


class OtlpLogs:
    name = "otlp_logs"
    description = ("OpenTelemetry GenAI events as OTLP JSON log records (one ExportLogsServiceRequest a line), "
                   "joined to their spans")

    def sniff(self, head: bytes, path: str) -> float:
        if head.lstrip()[:1] not in (b"{", b"["):
            return 0.0
        return 0.95 if first_request_kind(head) == "logs" else 0.0

    def parse(self, source: Source) -> Iterator[Item]:
        state = LogState()
        return each_record(source, iter_json_values(source.stream, source.head, source.path),
                           lambda loc, doc: log_doc_items(loc, doc, state))


# ---------------------------------------------------------------- protobuf

# LogRecord fields and their wire types: time (1, fixed64), severity number (2), severity text (3), body (5),
# attributes (6), dropped attributes (7), flags (8, fixed32), trace id (9), span id (10), observed time (11,
# fixed64), event name (12).
_LOG_WIRE = {1: 1, 2: 0, 3: 2, 5: 2, 6: 2, 7: 0, 8: 5, 9: 2, 10: 2, 11: 1, 12: 2}


def _is_log_record(data: bytes | None) -> bool:
    """Whether ``data`` starts like a serialized LogRecord: its fields have a LogRecord's wire types and one
    of them is a time (a fixed64). A Span starts with its trace id (field 1, bytes), a Metric with its name
    (field 1, a string): field 1 of a LogRecord is a fixed64."""
    if not data:
        return False
    timed = False
    for n, (number, wire, start, end) in enumerate(proto_fields(data), 1):
        if _LOG_WIRE.get(number) != wire:
            return False
        if number in (9, 10) and end <= len(data) and end - start not in (0, 16 if number == 9 else 8):
            return False
        timed = timed or number in (1, 11)
        if n >= 16:
            break
    return timed


def _hex_log_ids(req: dict) -> dict:
    """Rewrite the base64 ids ``MessageToDict`` writes as the hex that OTLP JSON uses."""
    for rl in req.get("resourceLogs") or []:
        for sl in rl.get("scopeLogs") or []:
            for rec in sl.get("logRecords") or []:
                for key in ("traceId", "spanId"):
                    if rec.get(key):
                        rec[key] = base64.b64decode(rec[key]).hex()
    return req


def _proto_items(locator: str, data: bytes, state: LogState) -> Iterator[Item]:
    from google.protobuf.json_format import MessageToDict
    from google.protobuf.message import DecodeError
    from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import ExportLogsServiceRequest

    if data[:4] == ZSTD_MAGIC:
        data = unzstd(data)
    if data.lstrip()[:1] == b"{":  # `format: json` with `compression: zstd`: OTLP JSON in length-prefixed frames
        yield from iter_logs_request(loads(data), locator, state)
        return
    try:
        msg = ExportLogsServiceRequest.FromString(data)
    except DecodeError as e:
        raise RecordError(f"not a protobuf ExportLogsServiceRequest: {e}") from None
    if not msg.resource_logs:
        return  # an empty export: Skipped by each_record
    yield from iter_logs_request(_hex_log_ids(MessageToDict(msg)), locator, state)


def sniff_logs_proto(head: bytes) -> str | None:
    """``"framed"``, ``"bare"`` or None for a protobuf ExportLogsServiceRequest file (see ``otlp.sniff_proto``)."""
    return sniff_proto(head, leaf=_is_log_record, json_key=b'"resourceLogs"')


class OtlpLogsProto:
    name = "otlp_logs_proto"
    description = ("OpenTelemetry GenAI events as OTLP protobuf log records (.binpb: length-prefixed or bare "
                   "ExportLogsServiceRequest messages), joined to their spans")

    def sniff(self, head: bytes, path: str) -> float:
        return 0.95 if sniff_logs_proto(head) else 0.0

    def parse(self, source: Source) -> Iterator[Item]:
        from tracelens.extras import MissingExtra, require

        try:
            require("otlp", "reading OTLP protobuf")
        except MissingExtra as e:
            raise FormatError(f"{source.path}: {e}") from None
        kind = sniff_logs_proto(source.head) or "framed"
        state = LogState()
        return each_record(source, iter_messages(source.stream, kind), lambda loc, data: _proto_items(loc, data, state),
                           raw=raw_bytes)


FORMATS = [OtlpLogs(), OtlpLogsProto()]
