"""Helicone request exports (``helicone_export``): JSONL, a JSON array, or CSV.

What ``npx @helicone/export`` (and the ``/v1/request/query-clickhouse`` API
it pages through) writes: one ``HeliconeRequest`` per record, with the
proxied call's bodies and Helicone's own measurements:

* ``request_body`` / ``response_body``: the provider bodies (objects, or JSON
  text in CSV), kept exactly as ``request_raw`` / ``response_raw`` and read by
  shape: OpenAI Chat Completions (``choices``), Anthropic Messages
  (``type: message``, ``system``/``max_tokens`` requests), anything else by
  the liberal readers shared with the span importers. A streamed body kept as
  ``streamed_data`` chunks is reassembled.
* ``request_id``/``response_id``, ``request_created_at`` (UTC),
  ``response_status``, ``model``/``request_model``/``response_model``,
  ``provider`` (``OPENAI``, ``ANTHROPIC``, ...), ``delay_ms`` (CSV:
  ``latency``), ``time_to_first_token``, ``prompt_tokens``/
  ``completion_tokens``/``prompt_cache_read_tokens``/
  ``prompt_cache_write_tokens``, ``cost``/``costUSD``/``cost_usd``,
  ``request_user_id``, ``request_properties`` (custom properties:
  ``Helicone-Session-Id`` -> session, ``Helicone-Session-Name``/``-Path`` and
  every other property -> attributes).

``trace_id`` is ``helicone:<response_id>`` (present in both the CSV and the
JSON exports, so the same request exported twice is one trace), else
``helicone:<request_id>``. A CSV export without ``response_body`` still
gives a trace: prompt, model, tokens, latency, cost and status. Field
mapping: docs/formats/helicone.md.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

from tracelens.ingest.base import Quarantined, RecordError, Skipped, Source
from tracelens.ingest.coerce import attr_text, coerce_fields
from tracelens.ingest.content import (
    as_dict,
    conversation,
    first,
    maybe_json,
    nullish,
    params_fields,
    provider_name,
    response_fields,
)
from tracelens.ingest.guard import each_record
from tracelens.ingest.normalize import (
    anthropic_request_fields,
    anthropic_response_fields,
    as_float,
    as_int,
    as_str,
    assemble_anthropic_sse,
    assemble_openai_chunks,
    dumps,
    openai_request_fields,
    openai_response_fields,
    parse_timestamp,
)
from tracelens.ingest.readers import is_json_text, iter_csv_rows, iter_json_values, loads
from tracelens.ingest.validate import (
    check_anthropic_request,
    check_anthropic_response,
    check_openai_request,
    check_openai_response,
)

_PROVIDERS = {"openai": "openai", "azure": "azure", "anthropic": "anthropic", "google": "google", "vertex": "vertex",
              "bedrock": "bedrock", "aws": "bedrock", "togetherai": "together", "together": "together", "groq": "groq",
              "openrouter": "openrouter", "mistral": "mistral", "deepinfra": "deepinfra", "fireworks": "fireworks",
              "perplexity": "perplexity", "x": "xai", "xai": "xai", "cohere": "cohere", "custom": None}
# Export columns kept as attributes: column -> attribute name.
_ATTR_COLUMNS = {"request_path": "request_path", "country_code": "country_code", "prompt_id": "helicone_prompt_id",
                 "feedback_rating": "feedback_rating", "helicone_user": "helicone_user", "model_override": "model_override",
                 "cache_enabled": "cache_enabled", "cache_reference_id": "cache_reference_id"}
# Custom properties (lower case) that name a trace column.
_PROPERTY_FIELDS = {"app": "app", "application": "app", "feature": "app", "service": "service",
                    "conversation-id": "conversation_id", "conversation_id": "conversation_id",
                    "thread-id": "conversation_id", "thread_id": "conversation_id"}
_MAX_ATTR = 512


def _load(v: Any, what: str) -> tuple[Any, str | None]:
    """(parsed body, exact text) of a body column: an object, JSON text, or empty."""
    if nullish(v):
        return None, None
    if isinstance(v, str):
        try:
            return loads(v), v
        except ValueError as e:
            raise RecordError(f"{what} is text but not valid JSON: {e}") from e
    return v, dumps(v)


def _anthropic_shaped_request(req: dict, provider: str | None) -> bool:
    if provider == "anthropic":
        return True
    msgs = req.get("messages")
    return "system" in req and not any(isinstance(m, dict) and m.get("role") == "system" for m in msgs or [])


def _streamed(resp: dict) -> Any:
    """Reassemble a body kept as ``streamed_data`` chunks; returns the body unchanged otherwise."""
    chunks = resp.get("streamed_data")
    if not isinstance(chunks, list):
        return resp
    events = [maybe_json(c) for c in chunks]
    events = [e.get("data", e) if isinstance(e, dict) and isinstance(e.get("data"), dict) else e for e in events]
    events = [e for e in events if isinstance(e, dict)]
    if any(e.get("type") == "message_start" for e in events):
        return assemble_anthropic_sse(events)
    return assemble_openai_chunks(events)


def _request(req: Any, provider: str | None) -> dict:
    if isinstance(req, dict) and isinstance(req.get("messages"), list):
        if _anthropic_shaped_request(req, provider):
            check_anthropic_request(req, "request_body")
            return anthropic_request_fields(req)
        check_openai_request(req)
        return openai_request_fields(req)
    system, msgs = conversation(req)
    fields: dict[str, Any] = {"system_prompt": system, "messages": msgs}
    if isinstance(req, dict):
        fields.update(params_fields(req))
        fields["model_requested"] = as_str(req.get("model")) if isinstance(req.get("model"), str) else None
    return fields


def _guarded(what: str, fn, *args) -> dict:
    try:
        return fn(*args)
    except (TypeError, AttributeError, ValueError, KeyError) as e:  # wrong JSON types deep inside a body
        raise RecordError(f"{what} has an unexpected shape ({type(e).__name__}: {e})") from e


def _response(resp: Any) -> dict:
    if isinstance(resp, dict) and "streamed_data" in resp:
        resp = _streamed(resp)
    if isinstance(resp, dict) and (resp.get("type") == "message" or (resp.get("type") == "error" and "choices" not in resp)):
        check_anthropic_response(resp, "response_body")
        return anthropic_response_fields(resp)
    if isinstance(resp, dict) and (isinstance(resp.get("choices"), list) or ("error" in resp and "content" not in resp)):
        check_openai_response(resp)
        out = openai_response_fields(resp)
        if isinstance(resp.get("error"), dict) and resp["error"].get("code"):
            out["error_type"] = as_str(resp["error"]["code"])
        return out
    out = response_fields(resp)
    out.pop("response_raw", None)
    return out


def helicone_record(row: dict, locator: str) -> dict:
    """Trace fields from one Helicone export record (raises RecordError)."""
    if not isinstance(row, dict):
        raise RecordError(f"expected an object, got {type(row).__name__}")
    rid = as_str(first(row.get("response_id")))
    qid = as_str(first(row.get("request_id")))
    if not rid and not qid:
        raise RecordError("record has neither 'response_id' nor 'request_id'")
    req, req_raw = _load(row.get("request_body"), "request_body")
    resp, resp_raw = _load(row.get("response_body"), "response_body")
    prov_raw = as_str(first(row.get("provider")))
    provider = _PROVIDERS.get(prov_raw.lower().replace("_", ""), provider_name(prov_raw)) if prov_raw else None
    attrs: dict[str, str] = {}
    fields: dict[str, Any] = {}
    if req is not None:
        fields = _guarded("request_body", _request, req, provider)
        if isinstance(req, dict) and req.get("stream") is True:
            attrs["streamed"] = "true"
    if resp is not None:
        rf = _guarded("response_body", _response, resp)
        fields.update({k: v for k, v in rf.items() if v is not None or k not in fields})
        if isinstance(resp, dict) and "streamed_data" in resp:
            attrs["streamed"] = "true"
    created = fields.pop("_created", None)
    fp = fields.pop("_system_fingerprint", None)
    if fp:
        attrs["system_fingerprint"] = fp
    status = as_int(first(row.get("response_status")))
    if status is not None and (status >= 400 or status <= 0):
        # Helicone records -1/0 for requests that never got a response (timeouts, client aborts)
        fields["status"] = "error"
        fields["stop_reason"] = "error"
        fields["error_type"] = fields.get("error_type") or ("no_response" if status <= 0 else f"http_{status}")
    elif fields.get("status") is None and status is not None:
        fields["status"] = "ok"
    fields["http_status"] = status if status is not None and status > 0 else None
    ts_value = first(row.get("request_created_at"), row.get("response_created_at"), created)
    if ts_value is None:
        raise RecordError("record has no request_created_at (pass --default-time ISO8601 to assign one)")
    ts, _ = parse_timestamp(ts_value, "UTC")  # Helicone stores UTC; naive ClickHouse times are UTC
    model_req = as_str(first(row.get("request_model"), row.get("model_override"), fields.get("model_requested"),
                             row.get("model")))
    model_ret = as_str(first(fields.get("model_returned"), row.get("response_model")))
    props = as_dict(first(row.get("request_properties"), row.get("properties")))
    for k, v in props.items():
        if nullish(v):
            continue
        key = str(k)
        low = key.lower()
        if low == "helicone-session-id":
            fields["session_id"] = attr_text(v)
        elif low == "helicone-user-id" and not row.get("request_user_id"):
            fields["user_id"] = attr_text(v)
        elif low in _PROPERTY_FIELDS and not fields.get(_PROPERTY_FIELDS[low]):
            fields[_PROPERTY_FIELDS[low]] = attr_text(v)
        elif low in ("helicone-session-name", "helicone-session-path"):
            attrs[low.replace("helicone-", "helicone_").replace("-", "_")] = attr_text(v)
        else:
            s = attr_text(v)
            if len(s) <= _MAX_ATTR:
                attrs[f"property.{key}"] = s
    for col, name in _ATTR_COLUMNS.items():
        if not nullish(row.get(col)):
            attrs[name] = attr_text(row[col])
    if rid:
        attrs["helicone_response_id"] = rid
    if prov_raw:
        attrs["helicone_provider"] = prov_raw
    if req is None:
        attrs["request_body_exported"] = "false"
    if resp is None:
        attrs["response_body_exported"] = "false"
    usage_in = as_int(first(row.get("prompt_tokens")))
    usage_out = as_int(first(row.get("completion_tokens")))
    fields.update({
        "timestamp": ts,
        "provider": provider,
        "model_requested": model_req,
        "model_returned": model_ret,
        "request_id": qid,
        "user_id": as_str(first(row.get("request_user_id"), fields.get("user_id"))),
        "input_tokens": first(fields.get("input_tokens"), usage_in),
        "output_tokens": first(fields.get("output_tokens"), usage_out),
        "cache_read_tokens": first(fields.get("cache_read_tokens"), as_int(first(row.get("prompt_cache_read_tokens")))),
        "cache_creation_tokens": first(fields.get("cache_creation_tokens"),
                                       as_int(first(row.get("prompt_cache_write_tokens")))),
        "latency_ms": as_float(first(row.get("delay_ms"), row.get("latency"))),
        "time_to_first_token_ms": as_float(first(row.get("time_to_first_token"))),
        "cost": as_float(first(row.get("cost"), row.get("costUSD"), row.get("cost_usd"))),
        "request_raw": req_raw,
        "response_raw": resp_raw,
        "attributes": attrs,
        "source_locator": locator,
        "trace_id": f"helicone:{rid}" if rid else f"helicone:{qid}",
    })
    return coerce_fields(fields)


def _items(source: Source, rows: Iterator[tuple[str, Any]]) -> Iterator[dict | Quarantined | Skipped]:
    def item(locator: str, row: Any) -> dict:
        rec = helicone_record(row, locator)
        rec["_raw"] = None
        return rec

    return each_record(source, rows, item)


def _csv_header(head: bytes) -> set[str]:
    line = head.lstrip(b"\xef\xbb\xbf").split(b"\n", 1)[0].decode("utf-8", "replace").strip()
    return {c.strip().strip('"') for c in line.split(",")}


_JSON_KEYS = re.compile(rb'"(request_body|request_created_at|response_status|request_properties|delay_ms|'
                        rb'request_user_id|helicone_user|response_body)"\s*:')
_CSV_REQUIRED = {"response_id", "request_created_at", "request_body"}
_CSV_HELICONE = {"request_properties", "request_user_id", "response_status", "response_created_at"}


class HeliconeExport:
    name = "helicone_export"
    description = "Helicone request export (npx @helicone/export): JSONL, JSON array or CSV"

    def sniff(self, head: bytes, path: str) -> float:
        s = head.lstrip(b"\xef\xbb\xbf").lstrip()
        if s[:1] in (b"{", b"["):
            w = s.split(b"\n", 1)[0] if s[:1] == b"{" else s[:65536]
            keys = {m.group(1) for m in _JSON_KEYS.finditer(w)}
            if b"request_body" in keys and len(keys) >= 3:
                return 0.9
            return 0.0
        cols = _csv_header(s)
        if cols >= _CSV_REQUIRED and len(_CSV_HELICONE & cols) >= 2:
            return 0.9
        return 0.0

    def parse(self, source: Source) -> Iterator[dict | Quarantined | Skipped]:
        if is_json_text(source.head):
            return _items(source, iter_json_values(source.stream, source.head, source.path))
        _, rows = iter_csv_rows(source.stream, source.head, source.path)
        return _items(source, ((loc, {k: (None if v == "" else v) for k, v in r.items()} if isinstance(r, dict) else r)
                               for loc, r in rows))


FORMATS = [HeliconeExport()]
