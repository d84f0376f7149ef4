"""Request/response log lines: the ``{request, response|error, metadata}`` envelope in-house loggers write.

``anthropic_log`` and ``openai_log`` read the same envelope with Messages or
Chat Completions bodies, and one file can hold both (``tracelens.capture``
around both clients writes each call with its ``provider``): each importer
hands a line of the other API to the other API's mapper here, so a line reads
the same whichever importer the file was sniffed as.

Envelope keys: ``request`` (body object or JSON text, kept exactly as
``request_raw``), ``response`` (body, JSON text, a list of stream events or
chunks, or SSE text) or ``error``, a timestamp under one of ``TS_KEYS``,
``latency_ms``/``duration_ms``, ``time_to_first_token_ms``/``ttft_ms``,
``request_id``, ``status_code``/``http_status``, ``cost``, ``provider``,
``trace_id`` and ``metadata``, whose keys in ``META_FIELDS`` name trace
columns (the rest go to ``attributes``).

Both mappers raise ``RecordError`` (a quarantine reason) for a line they
cannot read. The OpenAI body helpers (``openai_body_fields``,
``openai_error_body``, ``openai_error_code``, ``openai_provider``,
``pop_private_fields``) also serve the OpenAI Batch importer.
"""

from __future__ import annotations

import json
from typing import Any

from tracelens.ingest.base import IngestOptions, RecordError
from tracelens.ingest.coerce import coerce_fields
from tracelens.ingest.normalize import (
    anthropic_request_fields,
    anthropic_response_fields,
    as_float,
    as_int,
    as_str,
    assemble_anthropic_sse,
    assemble_openai_chunks,
    dumps,
    merge,
    openai_request_fields,
    openai_response_fields,
    parse_sse,
)
from tracelens.ingest.readers import loads
from tracelens.ingest.validate import check_openai_request, check_openai_response
from tracelens.modelid import parse_model_id

# Envelope keys that may hold the call's time, in order of preference.
TS_KEYS = ("timestamp", "ts", "time", "created_at", "start_time", "started_at", "request_time")
# Metadata keys that name a trace column: key -> column.
META_FIELDS = {
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
# Response objects that are not chat completions: object -> endpoint.
NOT_CHAT = {"list": "embeddings", "embedding": "embeddings", "moderation": "moderations"}


# ---------------------------------------------------------------- Anthropic Messages lines


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
            if k in META_FIELDS and v is not None:
                fields[META_FIELDS[k]] = as_str(v)
            elif v is not None:
                attrs[k] = v if isinstance(v, str) else dumps(v)
    ts = None
    for k in TS_KEYS:
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


# ---------------------------------------------------------------- OpenAI Chat Completions lines


def _load_response(v: Any) -> tuple[Any, str | None, bool]:
    """(parsed completion, raw text, streamed) from a logged response body in any shape."""
    if isinstance(v, str):
        s = v.lstrip()
        if s.startswith(("data:", "event:")):
            return assemble_openai_chunks(parse_sse(v)), v, True
        try:
            return loads(v), v, False
        except ValueError as e:
            raise RecordError(f"response is a string but not valid JSON: {e}") from e
    if isinstance(v, list):
        try:
            chunks = [loads(c) if isinstance(c, str) else c for c in v]
        except ValueError as e:
            raise RecordError(f"response is a list but an item is not a JSON chunk: {e}") from e
        return assemble_openai_chunks(chunks), dumps(v), True
    return v, (dumps(v) if v is not None else None), False


def _load_request(v: Any) -> tuple[Any, str | None]:
    if isinstance(v, str):
        try:
            return loads(v), v
        except ValueError as e:
            raise RecordError(f"request is a string but not valid JSON: {e}") from e
    return v, (dumps(v) if v is not None else None)


def _is_azure(resp: Any) -> bool:
    if not isinstance(resp, dict):
        return False
    if "prompt_filter_results" in resp:
        return True
    choices = resp.get("choices")
    return isinstance(choices, list) and any(isinstance(c, dict) and "content_filter_results" in c for c in choices)


def openai_provider(explicit: Any, resp: Any, model: str | None, options: IngestOptions) -> str:
    if explicit:
        return str(explicit).strip().lower()
    if _is_azure(resp):
        return "azure"
    if options.provider:
        return options.provider.lower()
    ident = parse_model_id(model)
    if ident and (ident.platform or ident.provider):
        return ident.platform or ident.provider
    return "openai"


def openai_body_fields(resp: Any) -> dict:
    check_openai_response(resp)
    obj = resp.get("object")
    if obj in NOT_CHAT:
        raise RecordError(f"response is a {obj!r} object, not a chat completion")
    if obj == "response" or ("output" in resp and "choices" not in resp):
        raise RecordError("Responses API bodies ('object': 'response') are not supported by this importer")
    return openai_response_fields(resp)


def openai_error_body(err: Any) -> dict:
    """An OpenAI error body ``{"error": {...}}`` from what a logger wrote."""
    if isinstance(err, str):
        try:
            err = json.loads(err)
        except ValueError:
            return {"error": {"message": err, "type": None}}
    if isinstance(err, dict) and isinstance(err.get("error"), dict):
        return err
    if isinstance(err, dict):
        return {"error": err}
    return {"error": {"message": as_str(err), "type": None}}


def openai_error_code(body: Any, fields: dict, attrs: dict) -> None:
    """Prefer OpenAI's specific error ``code`` (rate_limit_exceeded) over its broad ``type`` (requests)."""
    err = body.get("error") if isinstance(body, dict) else None
    if not isinstance(err, dict):
        return
    code, etype = as_str(err.get("code")), as_str(err.get("type"))
    if code:
        fields["error_type"] = code
        if etype and etype != code:
            attrs["error_category"] = etype


def pop_private_fields(fields: dict, attrs: dict) -> Any:
    """Move normalize's private keys out of ``fields``; returns the response ``created``."""
    created = fields.pop("_created", None)
    fp = fields.pop("_system_fingerprint", None)
    if fp:
        attrs["system_fingerprint"] = fp
    return created


def openai_log_record(obj: Any, locator: str, options: IngestOptions) -> dict:
    """Trace fields from one openai_log line (raises RecordError)."""
    if not isinstance(obj, dict):
        raise RecordError(f"expected a JSON object, got {type(obj).__name__}")
    attrs: dict[str, str] = {}
    if "request" not in obj:
        if obj.get("object") == "chat.completion.chunk":
            raise RecordError("a lone chat.completion.chunk (a stream logged chunk by chunk cannot be placed)")
        if obj.get("object") != "chat.completion" and "choices" not in obj:
            raise RecordError("record has no 'request' field and is not a chat.completion object")
        if obj.get("created") is None:
            raise RecordError("bare chat.completion without 'created' (no request and no time to place it)")
        fields = openai_body_fields(obj)
        created = pop_private_fields(fields, attrs)
        attrs["request_logged"] = "false"
        fields.update({
            "timestamp": created,
            "provider": openai_provider(None, obj, fields.get("model_returned"), options),
            "http_status": 200,
            "response_raw": dumps(obj),
            "attributes": attrs,
            "source_locator": locator,
            "trace_id": fields.get("response_id"),
        })
        return coerce_fields(fields)
    req, req_raw = _load_request(obj.get("request"))
    if not isinstance(req, dict):
        raise RecordError("'request' is not an object")
    if "messages" not in req:
        raise RecordError("'request' has no 'messages' (not a Chat Completions request)")
    check_openai_request(req)
    fields = openai_request_fields(req)
    resp = None
    if obj.get("response") is not None:
        resp, resp_raw, streamed = _load_response(obj["response"])
        fields = merge(fields, openai_body_fields(resp))
        openai_error_code(resp, fields, attrs)
        if streamed or req.get("stream"):
            attrs["streamed"] = "true"
    elif obj.get("error") is not None:
        body = openai_error_body(obj["error"])
        resp_raw = dumps(body)
        fields = merge(fields, openai_response_fields(body))
        openai_error_code(body, fields, attrs)
        fields["status"] = "error"
    else:
        raise RecordError("record has neither 'response' nor 'error'")
    created = pop_private_fields(fields, attrs)
    meta = obj.get("metadata") or {}
    if isinstance(meta, dict):
        for k, v in meta.items():
            if k in META_FIELDS and v is not None:
                fields[META_FIELDS[k]] = as_str(v)
            elif v is not None:
                attrs[str(k)] = v if isinstance(v, str) else dumps(v)
    ts = next((obj[k] for k in TS_KEYS if obj.get(k) is not None), None)
    if ts is None and created is not None:
        ts = created
        attrs["timestamp_source"] = "response_created"
    status = as_int(obj.get("status_code", obj.get("http_status")))
    rid = as_str(obj.get("request_id")) or fields.get("request_id")
    fields.update(
        {
            "provider": openai_provider(obj.get("provider"), resp, fields.get("model_returned") or fields.get("model_requested"),
                                  options),
            "timestamp": ts,
            "latency_ms": as_float(obj.get("latency_ms", obj.get("duration_ms"))),
            "time_to_first_token_ms": as_float(obj.get("time_to_first_token_ms", obj.get("ttft_ms"))),
            "request_id": rid,
            "http_status": status if status is not None else (200 if fields.get("status") == "ok" else None),
            "cost": as_float(obj.get("cost")),
            "request_raw": req_raw,
            "response_raw": resp_raw,
            "attributes": attrs,
            "source_locator": locator,
            "trace_id": as_str(obj.get("trace_id")) or fields.get("response_id") or rid,
        }
    )
    if status is not None and status >= 400:
        fields["status"] = "error"
        fields["stop_reason"] = "error"
    return coerce_fields(fields)
