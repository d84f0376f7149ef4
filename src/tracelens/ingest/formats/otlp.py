"""OpenTelemetry GenAI spans as OTLP JSON (``otlp_json``).

What the OpenTelemetry Collector ``file`` exporter writes: one
``ExportTraceServiceRequest`` per line::

    {"resourceSpans": [{"resource": {"attributes": [...]},
                        "scopeSpans": [{"scope": {...}, "spans": [...]}]}]}

A plain JSON file holding one request, or an array of them, is read too, as
are the older ``instrumentationLibrarySpans`` key and snake_case field names
(protobuf ``preserving_proto_field_name``). Attribute values are OTLP
``AnyValue`` objects (``stringValue``, ``intValue`` as a string,
``doubleValue``, ``boolValue``, ``arrayValue``, ``kvlistValue``, ``bytesValue``);
trace/span ids are hex (base64 ids are converted).

Each span is one item: an LLM call span (``gen_ai.operation.name`` chat /
text_completion / generate_content, or an un-typed span naming a model or
carrying prompt content) becomes a trace; every other span (tool execution,
agent, embeddings, HTTP, ...) is ``Skipped`` with the reason. Spans carrying
``openinference.span.kind`` are mapped with the OpenInference rules. The
attribute mapping lives in ``_spans.py`` and is documented in
docs/formats/otlp.md. ``trace_id`` is ``otel:<traceId>:<spanId>``;
``request_raw`` is None because span attributes are not the request body.

``otlp_proto`` reads the same requests as binary protobuf (``.binpb``): what
the Collector ``file`` exporter writes with ``format: proto``, each
``ExportTraceServiceRequest`` preceded by its length as 4 big-endian bytes,
or one bare serialized request. With ``compression: zstd`` the exporter
compresses each message on its own before framing it (in JSON mode too);
such messages are decompressed first. Messages are decoded by the generated
classes of ``opentelemetry-proto`` (the ``otlp`` extra) and turned into the
OTLP JSON mapping with ``MessageToDict``, ids rewritten as hex, so both
paths store the same traces through the same mapping. Sniffing walks the
protobuf wire format of the first message (no extra needed), so a file is
recognised, and without the extra ingest says which install it needs.
"""

from __future__ import annotations

import base64
import datetime as dt
from collections.abc import Iterator
from typing import Any

from tracelens.ingest.base import FormatError, Quarantined, RecordError, Skipped, Source
from tracelens.ingest.guard import describe, each_record, isolate
from tracelens.ingest.normalize import as_str
from tracelens.ingest.readers import ZSTD_MAGIC, iter_json_values, loads
from tracelens.ingest.spans import SpanInfo, norm_id, span_record

_EPOCH = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)
_KINDS = {0: "UNSPECIFIED", 1: "INTERNAL", 2: "SERVER", 3: "CLIENT", 4: "PRODUCER", 5: "CONSUMER"}
_MAX_RAW = 256 * 1024


def _g(d: dict, camel: str, snake: str | None = None) -> Any:
    v = d.get(camel)
    if v is None and snake:
        v = d.get(snake)
    return v


def any_value(v: Any) -> Any:
    """Decode an OTLP ``AnyValue`` (JSON mapping) to a plain Python value."""
    if not isinstance(v, dict):
        return v
    for camel, snake in (("stringValue", "string_value"), ("boolValue", "bool_value"), ("bytesValue", "bytes_value")):
        if camel in v or snake in v:
            return _g(v, camel, snake)
    if "intValue" in v or "int_value" in v:
        x = _g(v, "intValue", "int_value")
        try:
            return int(x)
        except (TypeError, ValueError):
            return x
    if "doubleValue" in v or "double_value" in v:
        x = _g(v, "doubleValue", "double_value")
        try:
            return float(x)
        except (TypeError, ValueError):
            return x
    if "arrayValue" in v or "array_value" in v:
        arr = _g(v, "arrayValue", "array_value") or {}
        return [any_value(x) for x in (arr.get("values") or [])]
    if "kvlistValue" in v or "kvlist_value" in v:
        kv = _g(v, "kvlistValue", "kvlist_value") or {}
        return attributes(kv.get("values") or [])
    return None


def attributes(items: Any) -> dict[str, Any]:
    """OTLP ``[{"key", "value": AnyValue}]`` to a dict (a dict is accepted as already decoded)."""
    if isinstance(items, dict):
        return dict(items)
    out: dict[str, Any] = {}
    for kv in items or []:
        if isinstance(kv, dict) and "key" in kv:
            out[str(kv["key"])] = any_value(kv.get("value"))
    return out


def nanos_to_datetime(v: Any, what: str) -> dt.datetime | None:
    """``*TimeUnixNano`` (a decimal string or int) to an aware UTC datetime; 0/absent = None."""
    if v is None or v == "" or v == 0 or v == "0":
        return None
    try:
        ns = int(v)
    except (TypeError, ValueError):
        raise RecordError(f"{what} is not an integer number of nanoseconds: {v!r}") from None
    try:
        return _EPOCH + dt.timedelta(microseconds=ns // 1000)
    except OverflowError:
        raise RecordError(f"{what} {v!r} is out of range") from None


def _status(span: dict) -> tuple[str | None, str | None]:
    st = span.get("status") or {}
    code = st.get("code")
    if isinstance(code, str):
        c = code.upper()
        code = 2 if c.endswith("ERROR") else 1 if c.endswith("OK") else 0
    return ({2: "error", 1: "ok"}.get(code), as_str(st.get("message")) or None)


def _kind(v: Any) -> str | None:
    if isinstance(v, int):
        return _KINDS.get(v)
    if isinstance(v, str) and v:
        return v.upper().removeprefix("SPAN_KIND_")
    return None


def span_item(span: Any, resource: dict, scope: str | None, locator: str) -> dict | Quarantined | Skipped:
    """One OTLP span to a trace dict, Skipped, or Quarantined (a span that breaks the mapping costs only itself)."""
    return isolate(locator, span, lambda loc, sp: _span_item(sp, resource, scope, loc), raw=_raw)


def _raw(v: Any) -> str | None:
    text = describe(v)
    return text[:_MAX_RAW] if text else text


def _span_item(span: Any, resource: dict, scope: str | None, locator: str) -> dict | Skipped:
    if not isinstance(span, dict):
        raise RecordError(f"span is a {type(span).__name__}, not an object")
    attrs = attributes(span.get("attributes"))
    events = [
        {"name": e.get("name"), "time": _g(e, "timeUnixNano", "time_unix_nano"),
         "attributes": attributes(e.get("attributes"))}
        for e in span.get("events") or []
        if isinstance(e, dict)
    ]
    status, message = _status(span)
    info = SpanInfo(
        trace_id=norm_id(_g(span, "traceId", "trace_id")),
        span_id=norm_id(_g(span, "spanId", "span_id")),
        parent_id=norm_id(_g(span, "parentSpanId", "parent_span_id")),
        name=as_str(span.get("name")),
        kind=_kind(span.get("kind")),
        start=nanos_to_datetime(_g(span, "startTimeUnixNano", "start_time_unix_nano"), "startTimeUnixNano"),
        end=nanos_to_datetime(_g(span, "endTimeUnixNano", "end_time_unix_nano"), "endTimeUnixNano"),
        status=status,
        status_message=message,
        events=events,
        resource=resource,
        scope=scope,
    )
    return span_record(attrs, info, locator)


def iter_request(req: Any, locator: str) -> Iterator[dict | Quarantined | Skipped]:
    """Items for every span of one ExportTraceServiceRequest; a malformed resourceSpans entry costs only itself."""
    if not isinstance(req, dict) or not isinstance(_g(req, "resourceSpans", "resource_spans"), list):
        yield Quarantined(locator, "not an OTLP ExportTraceServiceRequest (no resourceSpans array)",
                          describe(req))
        return
    counter = [0]  # spans numbered across the request (span#n locators)
    entries = ((f"{locator}/resourceSpans", rs) for rs in _g(req, "resourceSpans", "resource_spans"))
    yield from each_record(None, entries, lambda loc, rs: _resource_items(rs, loc, locator, counter), defer=True)


def _resource_items(rs: Any, loc: str, locator: str, counter: list[int]) -> Iterator[dict | Quarantined | Skipped]:
    """The items of one resourceSpans entry (raises RecordError when its structure has the wrong types)."""
    if not isinstance(rs, dict):
        raise RecordError("resourceSpans entry is not an object")
    res = rs.get("resource")
    if res is not None and not isinstance(res, dict):
        raise RecordError(f"'resource' is a {type(res).__name__}, not an object")
    resource = attributes((res or {}).get("attributes"))
    scopes = _g(rs, "scopeSpans", "scope_spans") or _g(rs, "instrumentationLibrarySpans",
                                                       "instrumentation_library_spans") or []
    if not isinstance(scopes, list):
        raise RecordError(f"'scopeSpans' is a {type(scopes).__name__}, not a list")
    for ss in scopes:
        if not isinstance(ss, dict):
            continue
        sc = ss.get("scope") or _g(ss, "instrumentationLibrary", "instrumentation_library") or {}
        scope = as_str(sc.get("name")) if isinstance(sc, dict) else None
        spans = ss.get("spans") or []
        if not isinstance(spans, list):
            yield Quarantined(loc, f"'spans' is a {type(spans).__name__}, not a list", describe(ss))
            continue
        for span in spans:
            n = counter[0]
            counter[0] += 1
            sid = norm_id(_g(span, "spanId", "span_id")) if isinstance(span, dict) else None
            yield span_item(span, resource, scope, f"{locator}/span:{sid}" if sid else f"{locator}/span#{n}")


class OtlpJson:
    name = "otlp_json"
    description = "OpenTelemetry GenAI spans as OTLP JSON (Collector file exporter: one ExportTraceServiceRequest a line)"

    def sniff(self, head: bytes, path: str) -> float:
        s = head.lstrip()
        if s[:1] not in (b"{", b"["):
            return 0.0
        if b'"resourceSpans"' in head or b'"resource_spans"' in head:
            return 0.95
        return 0.0

    def parse(self, source: Source) -> Iterator[dict | Quarantined | Skipped]:
        return each_record(source, iter_json_values(source.stream, source.head, source.path), _doc_items)


def _doc_items(locator: str, doc: Any) -> Iterator[dict | Quarantined | Skipped]:
    if isinstance(doc, list):  # a line (or document) holding several requests
        for i, req in enumerate(doc):
            yield from iter_request(req, f"{locator}/{i}")
    else:
        yield from iter_request(doc, locator)


# ---------------------------------------------------------------- protobuf

# One length-prefixed message larger than this is taken as a damaged prefix, not a message to read into memory.
MAX_MESSAGE = 256 * 1024 * 1024
_READ = 1024 * 1024
SNIFF_MESSAGES = 8


def _varint(data: bytes, i: int) -> tuple[int, int] | None:
    """(value, next index) of the base-128 varint at ``data[i]``, or None when it does not end within ``data``."""
    shift = value = 0
    while i < len(data) and shift < 64:
        b = data[i]
        value |= (b & 0x7F) << shift
        i += 1
        if not b & 0x80:
            return value, i
        shift += 7
    return None


def _fields(data: bytes, i: int = 0) -> Iterator[tuple[int, int, int, int]]:
    """(field number, wire type, value start, value end) of each field from ``data[i]``, until the bytes stop
    being protobuf wire format; ``end`` may lie beyond ``data`` (a message longer than the sniffed head)."""
    while i < len(data):
        tag = _varint(data, i)
        if tag is None or tag[0] >> 3 == 0:
            return
        (key, i), wire = tag, tag[0] & 7
        if wire in (0, 2):
            n = _varint(data, i)
            if n is None:
                return
            start, end = (n[1], n[1]) if wire == 0 else (n[1], n[1] + n[0])
        elif wire in (1, 5):
            start, end = i, i + (8 if wire == 1 else 4)
        else:
            return
        yield key >> 3, wire, start, end
        i = end


def _field(data: bytes, i: int, want: int) -> tuple[int, int] | None:
    """(start, end) of the first length-delimited field ``want`` at or after ``data[i]`` (see ``_fields``)."""
    for number, wire, start, end in _fields(data, i):
        if number == want and wire == 2:
            return start, end
    return None


def _first_span(msg: bytes) -> bytes | None:
    """The start of the first span of a serialized ExportTraceServiceRequest (``msg`` may be cut short).

    request.resource_spans (1) > ResourceSpans.scope_spans (2) > ScopeSpans.spans (2);
    a Span starts with trace_id (1), 16 bytes. The same path in an
    ExportLogsServiceRequest reaches a LogRecord, which starts with its time
    (a fixed64), so logs are not taken for spans (see ``_is_span`` for metrics).
    """
    at = 0, len(msg)
    for want in (1, 2, 2):
        at = _field(msg[: at[1]], at[0], want)
        if at is None:
            return None
    return msg[at[0] : at[1]]


def sniff_proto(head: bytes) -> str | None:
    """``"framed"`` (4-byte big-endian length before each message), ``"bare"`` (one message), or None.

    Like the text sniffers, a damaged first message does not hide the file:
    the messages after it (up to ``SNIFF_MESSAGES`` within ``head``) are asked too.
    """
    at = 0
    for _ in range(SNIFF_MESSAGES):
        size = int.from_bytes(head[at : at + 4], "big")
        if len(head) < at + 5 or not 0 < size <= MAX_MESSAGE:
            break
        body = head[at + 4 : at + 4 + size]
        if body[:4] == ZSTD_MAGIC:  # the file exporter's `compression: zstd` compresses each message
            try:
                body = _unzstd(body, partial=True)
            except RecordError:
                body = b""
            if body.lstrip()[:1] == b"{" and b'"resourceSpans"' in body:
                return "framed"  # OTLP JSON, compressed: length-prefixed all the same
        if _is_span(_first_span(body)):
            return "framed"
        at += 4 + size
    return "bare" if _is_span(_first_span(head)) else None


def _is_span(data: bytes | None) -> bool:
    """Whether ``data`` starts like a serialized Span: trace_id (1), 16 bytes, span_id (2), 8 bytes, and a
    start time (7) that is a fixed64.

    A Metric, found on the same path of an ExportMetricsServiceRequest, starts with its name (1) and
    description (2), which may be 16 and 8 bytes long, but its field 7 (``sum``) is a message.
    """
    if data is None or data[:2] != b"\x0a\x10" or data[18:20] != b"\x12\x08":
        return False
    for number, wire, _, _ in _fields(data, 28):
        if number == 7:
            return wire == 1
        if number > 7:
            return False
    return False


def _unzstd(data: bytes, partial: bool = False) -> bytes:
    """One zstd-compressed message (``partial``: what decodes of a message cut short by the sniffing window)."""
    import zstandard

    d = zstandard.ZstdDecompressor().decompressobj()
    try:
        out = d.decompress(data)
    except zstandard.ZstdError as e:
        raise RecordError(f"zstd-compressed message does not decompress: {e}") from None
    if not partial and not d.eof:
        raise RecordError("zstd-compressed message ends inside its frame")
    if len(out) > MAX_MESSAGE:
        raise RecordError(f"message decompresses to more than {MAX_MESSAGE} bytes")
    return out


def _messages(stream, kind: str) -> Iterator[tuple[str, Any]]:
    """(locator, message bytes | Quarantined) for each message of a protobuf file."""
    if kind == "bare":
        yield "message:1", stream.read()
        return
    n = 0
    while True:
        n += 1
        prefix = stream.read(4)
        if not prefix:
            return
        if len(prefix) < 4:
            yield f"message:{n}", Quarantined(f"message:{n}", "input ends inside a message's 4-byte length prefix; "
                                              "nothing after it could be read", None)
            return
        size = int.from_bytes(prefix, "big")
        if size > MAX_MESSAGE:
            yield f"message:{n}", Quarantined(
                f"message:{n}", f"length prefix {size} is beyond {MAX_MESSAGE} bytes (not a message boundary); "
                "nothing after it could be read", None)
            return
        parts, got = [], 0
        while got < size:
            p = stream.read(min(_READ, size - got))
            if not p:
                break
            parts.append(p)
            got += len(p)
        data = b"".join(parts)
        if got < size:
            yield f"message:{n}", Quarantined(
                f"message:{n}", f"input ends inside message {n} ({got} of {size} bytes); nothing after it could be read",
                _raw_bytes(data))
            return
        yield f"message:{n}", data


def _raw_bytes(data: Any) -> str | None:
    """Quarantine text of a protobuf message: its bytes as base64 (cut to what a span's raw keeps)."""
    if not isinstance(data, bytes | bytearray):
        return describe(data)
    return "base64:" + base64.b64encode(bytes(data[: _MAX_RAW])).decode("ascii")


def _hex_ids(req: dict) -> dict:
    """Rewrite the base64 ids ``MessageToDict`` writes as the hex that OTLP JSON uses."""
    for rs in req.get("resourceSpans") or []:
        for ss in rs.get("scopeSpans") or []:
            for sp in ss.get("spans") or []:
                for key in ("traceId", "spanId", "parentSpanId"):
                    if sp.get(key):
                        sp[key] = base64.b64decode(sp[key]).hex()
                for link in sp.get("links") or []:
                    for key in ("traceId", "spanId"):
                        if link.get(key):
                            link[key] = base64.b64decode(link[key]).hex()
    return req


def _proto_items(locator: str, data: bytes) -> Iterator[dict | Quarantined | Skipped]:
    from google.protobuf.json_format import MessageToDict
    from google.protobuf.message import DecodeError
    from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest

    if data[:4] == ZSTD_MAGIC:
        data = _unzstd(data)
    if data.lstrip()[:1] == b"{":  # `format: json` with `compression: zstd`: OTLP JSON in length-prefixed frames
        yield from iter_request(loads(data), locator)
        return
    try:
        msg = ExportTraceServiceRequest.FromString(data)
    except DecodeError as e:
        raise RecordError(f"not a protobuf ExportTraceServiceRequest: {e}") from None
    if not msg.resource_spans:
        return  # an empty export: Skipped by each_record
    # OTLP JSON's conventions: lowerCamelCase names, enums by name, int64 as decimal strings, ids as hex
    yield from iter_request(_hex_ids(MessageToDict(msg)), locator)


class OtlpProto:
    name = "otlp_proto"
    description = ("OpenTelemetry GenAI spans as OTLP protobuf (.binpb: Collector file exporter in proto mode, "
                   "length-prefixed ExportTraceServiceRequest messages, or one bare message)")

    def sniff(self, head: bytes, path: str) -> float:
        return 0.95 if sniff_proto(head) else 0.0

    def parse(self, source: Source) -> Iterator[dict | Quarantined | Skipped]:
        from tracelens.extras import MissingExtra, require

        try:
            require("otlp", "reading OTLP protobuf")
        except MissingExtra as e:
            raise FormatError(f"{source.path}: {e}") from None
        kind = sniff_proto(source.head) or "framed"
        return each_record(source, _messages(source.stream, kind), _proto_items, raw=_raw_bytes)


FORMATS = [OtlpJson(), OtlpProto()]
