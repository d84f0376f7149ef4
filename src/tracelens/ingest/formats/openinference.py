"""OpenInference spans as exported by Arize Phoenix (``openinference``).

Phoenix exports spans as a JSON array or JSONL, one span object each::

    {"name": "ChatCompletion", "context": {"trace_id": "...", "span_id": "..."},
     "span_kind": "LLM", "parent_id": "...", "start_time": "2026-10-01T09:00:00+00:00",
     "end_time": "...", "status_code": "OK", "status_message": "",
     "attributes": {...}, "events": [...]}

``attributes`` may be flattened dotted keys (``llm.input_messages.0.message.role``),
the nested form (``{"llm": {"input_messages": [{"message": {...}}]}}``) or the
"logical" form (``{"llm.input_messages": [{"message.role": ...}]}``); all are
flattened to the dotted keys first. The spans-dataframe export (columns
``context.span_id``, ``attributes.llm.model_name``, ...) and the OpenTelemetry
SDK console-exporter span JSON (``kind``, ``status.status_code``,
``resource.attributes``) have the same envelope and are read too; a wrapper
object ``{"spans": [...]}`` or ``{"data": [...]}`` is unwrapped.

Only LLM spans (``openinference.span.kind`` or the span's ``span_kind``)
become traces; CHAIN/TOOL/AGENT/RETRIEVER/EMBEDDING/... spans are ``Skipped``.
A span with OTel GenAI attributes instead of OpenInference ones is mapped with
the GenAI rules, exactly as in the OTLP importer. The mapping lives in
``tracelens.ingest.spans``; see docs/formats/openinference.md. ``trace_id`` is
``otel:<trace_id>:<span_id>`` (the same id the OTLP importer gives the span).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from tracelens.ingest.base import Quarantined, RecordError, Skipped, Source
from tracelens.ingest.content import as_dict, time_field
from tracelens.ingest.guard import describe, each_record, isolate
from tracelens.ingest.normalize import as_str
from tracelens.ingest.readers import iter_json_values
from tracelens.ingest.spans import SpanInfo, norm_id, span_record

_MAX_RAW = 256 * 1024


def _unflatten_columns(span: dict) -> dict:
    """Spans-dataframe rows (``context.span_id``, ``attributes.x``) to the nested span shape."""
    if not any(k.startswith(("context.", "attributes.")) for k in span):
        return span
    out: dict = {"context": dict(span.get("context") or {}), "attributes": dict(span.get("attributes") or {})}
    for k, v in span.items():
        if k.startswith("context."):
            out["context"][k[len("context."):]] = v
        elif k.startswith("attributes."):
            if v is not None:
                out["attributes"][k[len("attributes."):]] = v
        elif k not in ("context", "attributes"):
            out[k] = v
    return out


def _status(span: dict) -> tuple[str | None, str | None]:
    st = span.get("status")
    code = span.get("status_code")
    msg = span.get("status_message")
    if isinstance(st, dict):  # OTel SDK console exporter
        code = code or st.get("status_code")
        msg = msg or st.get("description")
    c = str(code or "").upper()
    status = "error" if c.endswith("ERROR") else "ok" if c.endswith("OK") else None
    return status, (as_str(msg) or None)


def span_item(span: Any, locator: str, naive_tz: str) -> dict | Quarantined | Skipped:
    """One exported span to a trace dict, Skipped, or Quarantined (a span that breaks the mapping costs only itself)."""
    return isolate(locator, span, lambda loc, sp: _span_item(sp, loc, naive_tz), raw=_raw)


def _raw(v: Any) -> str | None:
    text = describe(v)
    return text[:_MAX_RAW] if text else text


def _span_item(span: Any, locator: str, naive_tz: str) -> dict | Skipped:
    if not isinstance(span, dict):
        raise RecordError(f"span is a {type(span).__name__}, not an object")
    span = _unflatten_columns(span)
    ctx = span.get("context") if isinstance(span.get("context"), dict) else {}
    attrs = span.get("attributes")
    if attrs is None:
        attrs = {}
    if isinstance(attrs, str):  # some exports keep attributes as JSON text
        attrs = as_dict(attrs)
    if not isinstance(attrs, dict):
        raise RecordError("span attributes are not an object")
    kind = span.get("span_kind") or span.get("kind")
    kind = str(kind).split(".")[-1].upper().removeprefix("SPAN_KIND_") if kind else None  # SpanKind.CLIENT
    status, message = _status(span)
    res = span.get("resource")
    resource = (res.get("attributes") or {}) if isinstance(res, dict) else {}
    events = [
        {"name": e.get("name"), "time": e.get("timestamp"), "attributes": e.get("attributes") or {}}
        for e in span.get("events") or []
        if isinstance(e, dict)
    ]
    info = SpanInfo(
        trace_id=norm_id(ctx.get("trace_id") or span.get("trace_id")),
        span_id=norm_id(ctx.get("span_id") or span.get("span_id")),
        parent_id=norm_id(span.get("parent_id")),
        name=as_str(span.get("name")),
        kind=kind,
        start=time_field(span.get("start_time"), "start_time", naive_tz),
        end=time_field(span.get("end_time"), "end_time", naive_tz),
        status=status,
        status_message=message,
        events=events,
        resource=resource if isinstance(resource, dict) else {},
    )
    return span_record(attrs, info, locator)


def _spans_of(doc: Any) -> list | None:
    if isinstance(doc, list):
        return doc
    if isinstance(doc, dict):
        for k in ("spans", "data"):
            if isinstance(doc.get(k), list):
                return doc[k]
    return None


class OpenInferenceSpans:
    """The ``openinference`` format: Arize Phoenix span exports (JSON array or JSONL of span objects)."""

    name = "openinference"
    description = "OpenInference spans (Arize Phoenix span export: JSON array or JSONL of spans)"

    def sniff(self, head: bytes, path: str) -> float:
        """Confidence 0..1 that ``head`` is this format: 0.85 for JSON spans with a ``context`` and an OpenInference
        span kind, 0.6 for OTel SDK console-exporter spans (context, ``span_id``, ``attributes``, ``start_time``); 0
        for OTLP requests (``resourceSpans``) and anything else.
        """
        s = head.lstrip()
        if s[:1] not in (b"{", b"[") or b'"resourceSpans"' in head or b'"resource_spans"' in head:
            return 0.0
        has_ctx = b'"context"' in head or b'"context.span_id"' in head or b'"context.trace_id"' in head
        if has_ctx and (b'"span_kind"' in head or b"openinference.span.kind" in head or b'"openinference"' in head):
            return 0.85
        if has_ctx and b'"span_id"' in head and b'"attributes"' in head and b'"start_time"' in head:
            return 0.6  # OTel SDK console-exporter spans
        return 0.0

    def parse(self, source: Source) -> Iterator[dict | Quarantined | Skipped]:
        """Yield one item per span: a trace dict for an LLM span, ``Skipped`` for other spans, ``Quarantined`` with the
        reason.
        """
        tz = source.options.naive_tz

        def items(locator: str, doc: Any) -> Iterator[dict | Quarantined | Skipped]:
            spans = _spans_of(doc)
            if spans is None:
                yield self._one(doc, locator, tz)
                return
            for i, sp in enumerate(spans):
                yield self._one(sp, f"{locator}/{i}", tz)

        return each_record(source, iter_json_values(source.stream, source.head, source.path), items)

    @staticmethod
    def _one(span: Any, locator: str, tz: str) -> dict | Quarantined | Skipped:
        if isinstance(span, dict):
            ctx = span.get("context") if isinstance(span.get("context"), dict) else {}
            sid = norm_id(ctx.get("span_id") or span.get("context.span_id") or span.get("span_id"))
            if sid:
                locator = f"{locator}/span:{sid}"
        return span_item(span, locator, tz)


FORMATS = [OpenInferenceSpans()]
