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
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from typing import Any

from tracelens.ingest.base import Quarantined, RecordError, Skipped, Source
from tracelens.ingest.formats._spans import SpanInfo, norm_id, span_record
from tracelens.ingest.guard import describe, each_record, isolate
from tracelens.ingest.normalize import as_str
from tracelens.ingest.readers import iter_json_values

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


FORMATS = [OtlpJson()]
