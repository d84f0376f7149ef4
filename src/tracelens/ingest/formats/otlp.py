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
attribute mapping lives in ``tracelens.ingest.spans`` (the OTLP wire in ``tracelens.ingest.otlpwire``) and is documented in
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
from tracelens.ingest.otlpwire import (
    attributes,
    first_request_kind,
    iter_messages,
    key_of,
    nanos_to_datetime,
    raw_bytes,
    raw_text,
    sniff_proto,
    unzstd,
)
from tracelens.ingest.readers import ZSTD_MAGIC, iter_json_values, loads
from tracelens.ingest.spans import SpanInfo, norm_id, span_record

_KINDS = {0: "UNSPECIFIED", 1: "INTERNAL", 2: "SERVER", 3: "CLIENT", 4: "PRODUCER", 5: "CONSUMER"}


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
    return isolate(locator, span, lambda loc, sp: _span_item(sp, resource, scope, loc), raw=raw_text)


def _span_item(span: Any, resource: dict, scope: str | None, locator: str) -> dict | Skipped:
    if not isinstance(span, dict):
        raise RecordError(f"span is a {type(span).__name__}, not an object")
    attrs = attributes(span.get("attributes"))
    events = [
        {"name": e.get("name"), "time": key_of(e, "timeUnixNano", "time_unix_nano"),
         "attributes": attributes(e.get("attributes"))}
        for e in span.get("events") or []
        if isinstance(e, dict)
    ]
    status, message = _status(span)
    info = SpanInfo(
        trace_id=norm_id(key_of(span, "traceId", "trace_id")),
        span_id=norm_id(key_of(span, "spanId", "span_id")),
        parent_id=norm_id(key_of(span, "parentSpanId", "parent_span_id")),
        name=as_str(span.get("name")),
        kind=_kind(span.get("kind")),
        start=nanos_to_datetime(key_of(span, "startTimeUnixNano", "start_time_unix_nano"), "startTimeUnixNano"),
        end=nanos_to_datetime(key_of(span, "endTimeUnixNano", "end_time_unix_nano"), "endTimeUnixNano"),
        status=status,
        status_message=message,
        events=events,
        resource=resource,
        scope=scope,
    )
    return span_record(attrs, info, locator)


def iter_request(req: Any, locator: str) -> Iterator[dict | Quarantined | Skipped]:
    """Items for every span of one ExportTraceServiceRequest; a malformed resourceSpans entry costs only itself."""
    if not isinstance(req, dict) or not isinstance(key_of(req, "resourceSpans", "resource_spans"), list):
        yield Quarantined(locator, "not an OTLP ExportTraceServiceRequest (no resourceSpans array)",
                          describe(req))
        return
    counter = [0]  # spans numbered across the request (span#n locators)
    entries = ((f"{locator}/resourceSpans", rs) for rs in key_of(req, "resourceSpans", "resource_spans"))
    # the request is in memory already (parsed JSON), so holding its items to join them costs about as much
    items = list(each_record(None, entries, lambda loc, rs: _resource_items(rs, loc, locator, counter), defer=True))
    yield from one_span_per_call(items)


def _resource_items(rs: Any, loc: str, locator: str, counter: list[int]) -> Iterator[dict | Quarantined | Skipped]:
    """The items of one resourceSpans entry (raises RecordError when its structure has the wrong types)."""
    if not isinstance(rs, dict):
        raise RecordError("resourceSpans entry is not an object")
    res = rs.get("resource")
    if res is not None and not isinstance(res, dict):
        raise RecordError(f"'resource' is a {type(res).__name__}, not an object")
    resource = attributes((res or {}).get("attributes"))
    scopes = key_of(rs, "scopeSpans", "scope_spans") or key_of(rs, "instrumentationLibrarySpans",
                                                       "instrumentation_library_spans") or []
    if not isinstance(scopes, list):
        raise RecordError(f"'scopeSpans' is a {type(scopes).__name__}, not a list")
    for ss in scopes:
        if not isinstance(ss, dict):
            continue
        sc = ss.get("scope") or key_of(ss, "instrumentationLibrary", "instrumentation_library") or {}
        scope = as_str(sc.get("name")) if isinstance(sc, dict) else None
        spans = ss.get("spans") or []
        if not isinstance(spans, list):
            yield Quarantined(loc, f"'spans' is a {type(spans).__name__}, not a list", describe(ss))
            continue
        for span in spans:
            n = counter[0]
            counter[0] += 1
            sid = norm_id(key_of(span, "spanId", "span_id")) if isinstance(span, dict) else None
            yield span_item(span, resource, scope, f"{locator}/span:{sid}" if sid else f"{locator}/span#{n}")


def _has_content(item: dict) -> bool:
    return bool(item.get("messages") or item.get("response_text") or item.get("tool_calls")
                or item.get("system_prompt"))


# the other span's identity and timing stay its own; every other field it lacks is taken from the span merged in
_OWN_FIELDS = frozenset(("trace_id", "source_locator", "timestamp", "latency_ms", "time_to_first_token_ms",
                         "attributes"))


def one_span_per_call(items: list) -> list:
    """One item per provider call among the spans of one export request.

    Two tracers can record the same call: the anthropic SDK traces its own
    requests (scope ``com.anthropic.sdk.python``, no message content) to the
    global tracer provider that OpenLLMetry's setup installs, beside
    OpenLLMetry's span, each in its own OTel trace. Spans naming the same
    provider and response id are one call. A call that failed has no response
    id: then a span without content is the same call as a span with content
    when both name the same provider and requested model, both failed, and its
    time lies inside the other's, each being the only such match of the
    other. The span holding the message content is kept, the fields it lacks
    are filled from the other (the stop reason as the provider spelled it,
    request id, HTTP status, ...), and the other is Skipped naming the span it
    was merged into. Anything less certain (content in both, several
    candidates) is left as it is.
    """
    groups: dict[tuple, list[int]] = {}
    for i, it in enumerate(items):
        if isinstance(it, dict) and it.get("response_id"):
            groups.setdefault((it.get("provider"), it["response_id"]), []).append(i)
    for (_, rid), idxs in groups.items():
        rich = [i for i in idxs if _has_content(items[i])]
        if len(idxs) > 1 and len(rich) == 1:
            for i in idxs:
                if i != rich[0]:
                    _merge(items, rich[0], i, f"response {rid}")
    poor = [i for i, it in enumerate(items) if isinstance(it, dict) and not it.get("response_id")
            and not _has_content(it) and it.get("model_requested")]
    rich = [i for i, it in enumerate(items) if isinstance(it, dict) and not it.get("response_id") and _has_content(it)]
    matches = {p: [r for r in rich if _failed_together(items[p], items[r])] for p in poor}
    for p, rs in matches.items():
        if len(rs) == 1 and sum(rs[0] in other for other in matches.values()) == 1:
            _merge(items, rs[0], p, "failed, no response")
    return items


def _window(item: dict) -> tuple[dt.datetime, dt.datetime] | None:
    start, ms = item.get("timestamp"), item.get("latency_ms")
    if not isinstance(start, dt.datetime) or not isinstance(ms, int | float):
        return None
    return start, start + dt.timedelta(milliseconds=ms)


def _failed_together(inner: dict, outer: dict) -> bool:
    a, b = _window(inner), _window(outer)
    return (inner.get("status") == outer.get("status") == "error" and a is not None and b is not None
            and inner.get("provider") == outer.get("provider")
            and inner.get("model_requested") == outer.get("model_requested")
            and b[0] <= a[0] and a[1] <= b[1])


def _merge(items: list, keep_at: int, other_at: int, what: str) -> None:
    keep, other = items[keep_at], items[other_at]
    attrs = dict(keep.get("attributes") or {})
    other_attrs = other.get("attributes") or {}
    if keep.get("stop_reason_raw") is not None and other.get("stop_reason_raw") is not None:
        # a provider's own spelling (end_turn) over the GenAI conventions' (stop)
        keep["stop_reason_raw"], keep["stop_reason"] = other["stop_reason_raw"], other.get("stop_reason")
    for k, v in other.items():
        if k not in _OWN_FIELDS and v is not None and keep.get(k) is None:
            keep[k] = v
    for k, v in other_attrs.items():
        if not k.startswith("otel.") and k not in attrs:
            attrs[k] = v
    if other_attrs.get("otel.span_id"):
        attrs["otel.merged_span_ids"] = ",".join(filter(None, (attrs.get("otel.merged_span_ids"),
                                                                other_attrs["otel.span_id"])))
    keep["attributes"] = attrs or None
    kept = attrs.get("otel.span_id") or keep.get("source_locator")
    items[other_at] = Skipped(other.get("source_locator") or "",
                              f"the same call ({what}) as span {kept}, which holds its content; "
                              "its fields were merged there")


class OtlpJson:
    name = "otlp_json"
    description = "OpenTelemetry GenAI spans as OTLP JSON (Collector file exporter: one ExportTraceServiceRequest a line)"

    def sniff(self, head: bytes, path: str) -> float:
        s = head.lstrip()
        if s[:1] not in (b"{", b"["):
            return 0.0
        return 0.95 if first_request_kind(head) == "spans" else 0.0

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
        data = unzstd(data)
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
        return each_record(source, iter_messages(source.stream, kind), _proto_items, raw=raw_bytes)


FORMATS = [OtlpJson(), OtlpProto()]
