"""Anthropic request/response log JSONL (``anthropic_log``).

What most in-house loggers write: one JSON object per line with

* ``request``: a Messages API request body (object, or JSON text),
* ``response``: a Messages API response body (object or JSON text; or a list
  of streaming events / an SSE text body, reassembled into the final message),
* or ``error`` (object or string) with ``status_code``,
* optional ``timestamp`` (ISO 8601 or epoch; also ``ts``/``time``/``created_at``),
  ``latency_ms`` (or ``duration_ms``), ``time_to_first_token_ms``,
  ``request_id``, ``status_code``/``http_status``, ``cost``,
  ``metadata`` (``user_id``, ``session_id``, ``conversation_id``, ``app``,
  ``service``; other keys go to ``attributes``).

Field mapping is documented in docs/formats/anthropic_log.md. ``trace_id`` is the response
id (``msg_...``), else the request id, else a content hash.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator

from tracelens.ingest.base import IngestOptions, Quarantined, RecordError, Skipped, Source
from tracelens.ingest.guard import each_record, isolate
from tracelens.ingest.normalize import (
    OPENAI_CHAT_PROVIDERS,
    anthropic_request_fields,
    anthropic_response_fields,
    as_float,
    as_int,
    as_str,
    assemble_anthropic_sse,
    dumps,
    line_provider,
    merge,
    parse_sse,
)
from tracelens.ingest.readers import iter_json_values

_TS_KEYS = ("timestamp", "ts", "time", "created_at", "start_time", "started_at", "request_time")
_META_FIELDS = {
    "user_id": "user_id",
    "user": "user_id",
    "session_id": "session_id",
    "conversation_id": "conversation_id",
    "thread_id": "conversation_id",
    "app": "app",
    "application": "app",
    "feature": "app",
    "service": "service",
}


def _load_body(v, what: str):
    if isinstance(v, str):
        s = v.strip()
        if s.startswith("event:") or s.startswith("data:"):
            return assemble_anthropic_sse(parse_sse(s)), v
        try:
            return json.loads(v), v
        except ValueError as e:
            raise RecordError(f"{what} is a string but not valid JSON: {e}") from e
    if isinstance(v, list):  # a list of streaming events
        return assemble_anthropic_sse([e.get("data", e) if isinstance(e, dict) else e for e in v]), dumps(v)
    return v, dumps(v) if v is not None else None


def _merge_into(fields: dict, more: dict) -> None:
    """``fields = merge(fields, more)`` without copying ``fields`` (later non-None values win)."""
    for k, v in more.items():
        if v is not None or k not in fields:
            fields[k] = v


def anthropic_log_record(obj: dict, locator: str) -> dict:
    """Trace fields from one log object (raises RecordError)."""
    if not isinstance(obj, dict):
        raise RecordError(f"expected a JSON object, got {type(obj).__name__}")
    if "request" not in obj:
        raise RecordError("record has no 'request' field")
    req, req_raw = _load_body(obj.get("request"), "request")
    if not isinstance(req, dict):
        raise RecordError("'request' is not an object")
    if "messages" not in req:
        raise RecordError("'request' has no 'messages' (not a Messages API request)")
    fields = anthropic_request_fields(req)
    resp_raw = None
    if obj.get("response") is not None:
        resp, resp_raw = _load_body(obj["response"], "response")
        _merge_into(fields, anthropic_response_fields(resp))
    elif obj.get("error") is not None:
        err = obj["error"]
        if isinstance(err, str):
            try:
                err = json.loads(err)
            except ValueError:
                err = {"type": "error", "error": {"type": "unknown_error", "message": err}}
        if isinstance(err, dict) and "error" not in err and "type" in err:
            err = {"type": "error", "error": err}
        resp_raw = dumps(err)
        fields = merge(fields, anthropic_response_fields(err))
        fields["status"] = "error"
    else:
        raise RecordError("record has neither 'response' nor 'error'")
    meta = obj.get("metadata") or {}
    attrs = {}
    if isinstance(meta, dict):
        for k, v in meta.items():
            if k in _META_FIELDS and v is not None:
                fields[_META_FIELDS[k]] = as_str(v)
            elif v is not None:
                attrs[k] = v if isinstance(v, str) else dumps(v)
    ts = None
    for k in _TS_KEYS:
        if obj.get(k) is not None:
            ts = obj[k]
            break
    status = as_int(obj.get("status_code", obj.get("http_status")))
    rid = as_str(obj.get("request_id")) or fields.get("request_id")
    # assigned one by one in the order a dict display would evaluate them (same keys order, same first error)
    fields["provider"] = as_str(obj.get("provider")) or "anthropic"
    fields["timestamp"] = ts
    fields["latency_ms"] = as_float(obj.get("latency_ms", obj.get("duration_ms")))
    fields["time_to_first_token_ms"] = as_float(obj.get("time_to_first_token_ms", obj.get("ttft_ms")))
    fields["request_id"] = rid
    fields["http_status"] = status if status is not None else (200 if fields.get("status") == "ok" else None)
    fields["cost"] = as_float(obj.get("cost"))
    fields["request_raw"] = req_raw
    fields["response_raw"] = resp_raw
    fields["attributes"] = attrs or None
    fields["source_locator"] = locator
    fields["trace_id"] = as_str(obj.get("trace_id")) or fields.get("response_id") or rid
    if req.get("stream"):
        attrs["streamed"] = "true"
        fields["attributes"] = attrs
    if status is not None and status >= 400:
        fields["status"] = "error"
    fields.pop("_created", None)
    return fields


_SNIFF_REQUEST = re.compile(rb'"request"\s*:')
_SNIFF_MESSAGES = re.compile(rb'\\?"messages\\?"\s*:')  # also inside a request kept as a JSON string
_SNIFF_RESPONSE = re.compile(rb'"(response|error)"\s*:')


class AnthropicLog:
    name = "anthropic_log"
    description = "Anthropic request/response log JSONL: {request, response|error, timestamp, latency_ms, metadata}"

    def sniff(self, head: bytes, path: str) -> float:
        first = head.lstrip()[:1]
        if first not in (b"{",):
            return 0.0
        line = head.split(b"\n", 1)[0]
        if not (_SNIFF_REQUEST.search(line) and _SNIFF_MESSAGES.search(line) and _SNIFF_RESPONSE.search(line)):
            return 0.0
        if line_provider(line) in OPENAI_CHAT_PROVIDERS:  # e.g. tracelens.capture around an OpenAI client
            return 0.0
        if b'"chat.completion"' in line or b'"choices"' in line or b'"custom_id"' in line:
            return 0.0
        if b'max_tokens' in line or b'"type":"message"' in line or b'"type": "message"' in line or b"claude" in line:
            return 0.9
        return 0.5

    def parse(self, source: Source) -> Iterator[dict | Quarantined | Skipped]:
        return each_record(source, iter_json_values(source.stream, source.head, source.path), self.parse_value)

    def parse_value(self, locator: str, obj) -> dict | Quarantined:
        """The one item of one JSON value read by ``iter_json_values``.

        ``parse`` is this function over the values of the file; the pipeline's
        parallel path calls it directly on JSONL lines split in the parent
        process, so the two paths cannot drift apart.
        """
        if isinstance(obj, Quarantined):
            return obj
        return isolate(locator, obj, _record)


def _record(locator: str, obj) -> dict:
    if line_provider(obj) in OPENAI_CHAT_PROVIDERS:
        # one capture file can hold both clients' calls: the line's own provider says which API it is
        from tracelens.ingest.formats.openai import openai_log_record

        rec = openai_log_record(obj, locator, IngestOptions())
        rec["_raw"] = None
        return rec
    rec = anthropic_log_record(obj, locator)
    rec["_raw"] = None
    return rec


FORMATS = [AnthropicLog()]
