"""OpenAI Chat Completions logs (``openai_log``) and Batch API output (``openai_batch``).

``openai_log``: one JSON object per line, the same envelope as
``anthropic_log`` with OpenAI bodies:

* ``request``: a Chat Completions request body (object or JSON text, kept
  exactly as ``request_raw``),
* ``response``: a ``chat.completion`` (object or JSON text), or a stream
  (a list of ``chat.completion.chunk`` objects, or SSE text of ``data:``
  lines), reassembled into one completion,
* or ``error`` (object or text) with ``status_code``,
* optional ``timestamp`` (also ``ts``/``time``/``created_at``; else the
  response ``created``), ``latency_ms``, ``time_to_first_token_ms``,
  ``request_id``, ``provider``, ``cost``, ``metadata`` (``user_id``,
  ``session_id``, ``conversation_id``, ``app``, ``service``; other keys go to
  ``attributes``).

A bare ``chat.completion`` object per line (no request) is accepted only
when it carries ``created``: without the request the call has no prompt,
so its time must at least be known. ``message.refusal`` lands in
``stop_details`` (``stop_reason=refusal``), ``finish_reason`` is kept raw
and normalised (``content_filter`` included), ``system_fingerprint`` goes to
``attributes.system_fingerprint``. Errors keep OpenAI's specific ``code``
(``rate_limit_exceeded``) as ``error_type`` and its broad ``type`` as
``attributes.error_category``. Provider: the record's ``provider``
field, else ``azure`` when the response carries Azure's content-filter
annotations, else the model id's provider, else ``openai``.

``openai_batch``: Batch API output JSONL ``{id, custom_id, response:
{status_code, request_id, body}, error}``, joined by ``custom_id`` with the
batch input file (companion ``openai_batch_input``: ``{custom_id, method,
url, body}``) when passed in the same ingest. Non-chat endpoints
(embeddings, moderations) are skipped. ``error`` non-null or
``status_code >= 400`` is an error trace. Timestamp: the response body's
``created``; for lines without a body (errors): ``options.default_time``,
else the first ``created`` in the file (``timestamp_source=batch_created``),
else the file's mtime (``timestamp_source=file_mtime``). ``trace_id``: the
completion id, else the batch line id (``batch_req_...``), else
``batch:<file fingerprint>:<custom_id>`` (see ``anthropic_batch``).
Field mappings and quarantine reasons: docs/formats/openai.md.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from tracelens.ingest.base import IngestOptions, Quarantined, RecordError, Skipped, Source
from tracelens.ingest.batchjoin import CompanionIndex, file_fingerprint, file_time, load_companions
from tracelens.ingest.coerce import coerce_fields
from tracelens.ingest.guard import each_record
from tracelens.ingest.normalize import (
    ANTHROPIC_PROVIDERS,
    OPENAI_CHAT_PROVIDERS,
    as_float,
    as_int,
    as_str,
    dumps,
    line_provider,
    merge,
    openai_request_fields,
    openai_response_fields,
    parse_sse,
)
from tracelens.ingest.readers import iter_json_values, loads
from tracelens.ingest.validate import check_openai_request, check_openai_response
from tracelens.modelid import parse_model_id

INPUT_ROLE = "openai_batch_input"

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
_CHAT_PATH = re.compile(r"/chat/completions/?$")
_NOT_CHAT = {"list": "embeddings", "embedding": "embeddings", "moderation": "moderations"}


# ---------------------------------------------------------------- streaming


def assemble_openai_chunks(chunks: list) -> dict:
    """Rebuild a ``chat.completion`` from streamed ``chat.completion.chunk`` objects."""
    out: dict[str, Any] = {"object": "chat.completion"}
    choices: dict[int, dict] = {}
    seen = False
    for ch in chunks:
        if not isinstance(ch, dict):
            continue
        if ch.get("error") is not None and not ch.get("choices"):
            return {"error": ch["error"]}
        for k in ("id", "model", "created", "system_fingerprint", "service_tier"):
            if ch.get(k) is not None and k not in out:
                out[k] = ch[k]
        if ch.get("usage"):
            out["usage"] = ch["usage"]
        if ch.get("prompt_filter_results") is not None:
            out["prompt_filter_results"] = ch["prompt_filter_results"]
        for c in ch.get("choices") or []:
            if not isinstance(c, dict):
                continue
            seen = True
            st = choices.setdefault(as_int(c.get("index")) or 0,
                                    {"content": [], "refusal": [], "calls": {}, "finish_reason": None, "extra": {}})
            d = c.get("delta") if isinstance(c.get("delta"), dict) else {}
            if isinstance(d.get("content"), str):
                st["content"].append(d["content"])
            if isinstance(d.get("refusal"), str):
                st["refusal"].append(d["refusal"])
            for tc in d.get("tool_calls") or []:
                if not isinstance(tc, dict):
                    continue
                slot = st["calls"].setdefault(as_int(tc.get("index")) or 0,
                                              {"id": None, "type": "function", "function": {"name": "", "arguments": ""}})
                if tc.get("id"):
                    slot["id"] = tc["id"]
                fn = tc.get("function") if isinstance(tc.get("function"), dict) else {}
                if isinstance(fn.get("name"), str):
                    slot["function"]["name"] += fn["name"]
                if isinstance(fn.get("arguments"), str):
                    slot["function"]["arguments"] += fn["arguments"]
            if c.get("finish_reason") is not None:
                st["finish_reason"] = c["finish_reason"]
            if c.get("content_filter_results") is not None:
                st["extra"]["content_filter_results"] = c["content_filter_results"]
    if not seen and "id" not in out:
        raise RecordError("stream has no chat.completion.chunk with choices")
    out["choices"] = []
    for i in sorted(choices):
        st = choices[i]
        msg: dict[str, Any] = {"role": "assistant", "content": "".join(st["content"]) if st["content"] else None}
        if st["refusal"]:
            msg["refusal"] = "".join(st["refusal"])
        if st["calls"]:
            msg["tool_calls"] = [st["calls"][k] for k in sorted(st["calls"])]
        out["choices"].append({"index": i, "message": msg, "finish_reason": st["finish_reason"], **st["extra"]})
    return out


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


def _provider(explicit: Any, resp: Any, model: str | None, options: IngestOptions) -> str:
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


def _response_fields(resp: Any) -> dict:
    check_openai_response(resp)
    obj = resp.get("object")
    if obj in _NOT_CHAT:
        raise RecordError(f"response is a {obj!r} object, not a chat completion")
    if obj == "response" or ("output" in resp and "choices" not in resp):
        raise RecordError("Responses API bodies ('object': 'response') are not supported by this importer")
    return openai_response_fields(resp)


def _error_body(err: Any) -> dict:
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


def _error_code(body: Any, fields: dict, attrs: dict) -> None:
    """Prefer OpenAI's specific error ``code`` (rate_limit_exceeded) over its broad ``type`` (requests)."""
    err = body.get("error") if isinstance(body, dict) else None
    if not isinstance(err, dict):
        return
    code, etype = as_str(err.get("code")), as_str(err.get("type"))
    if code:
        fields["error_type"] = code
        if etype and etype != code:
            attrs["error_category"] = etype


def _finish(fields: dict, attrs: dict) -> Any:
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
        fields = _response_fields(obj)
        created = _finish(fields, attrs)
        attrs["request_logged"] = "false"
        fields.update({
            "timestamp": created,
            "provider": _provider(None, obj, fields.get("model_returned"), options),
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
        fields = merge(fields, _response_fields(resp))
        _error_code(resp, fields, attrs)
        if streamed or req.get("stream"):
            attrs["streamed"] = "true"
    elif obj.get("error") is not None:
        body = _error_body(obj["error"])
        resp_raw = dumps(body)
        fields = merge(fields, openai_response_fields(body))
        _error_code(body, fields, attrs)
        fields["status"] = "error"
    else:
        raise RecordError("record has neither 'response' nor 'error'")
    created = _finish(fields, attrs)
    meta = obj.get("metadata") or {}
    if isinstance(meta, dict):
        for k, v in meta.items():
            if k in _META_FIELDS and v is not None:
                fields[_META_FIELDS[k]] = as_str(v)
            elif v is not None:
                attrs[str(k)] = v if isinstance(v, str) else dumps(v)
    ts = next((obj[k] for k in _TS_KEYS if obj.get(k) is not None), None)
    if ts is None and created is not None:
        ts = created
        attrs["timestamp_source"] = "response_created"
    status = as_int(obj.get("status_code", obj.get("http_status")))
    rid = as_str(obj.get("request_id")) or fields.get("request_id")
    fields.update(
        {
            "provider": _provider(obj.get("provider"), resp, fields.get("model_returned") or fields.get("model_requested"),
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


def _parse_items(source: Source, make) -> Iterator[dict | Quarantined | Skipped]:
    def item(locator: str, obj: Any) -> dict | Quarantined | Skipped:
        rec = make(obj, locator)
        if isinstance(rec, dict):
            rec["_raw"] = None
        return rec

    return each_record(source, iter_json_values(source.stream, source.head, source.path), item)


_SNIFF_REQUEST = re.compile(rb'"request"\s*:')
_SNIFF_MESSAGES = re.compile(rb'"messages"\s*:')
_SNIFF_ESCAPED_MESSAGES = re.compile(rb'\\?"messages\\?"\s*:')
_SNIFF_RESPONSE = re.compile(rb'"(response|error)"\s*:')
_SNIFF_OPENAI = re.compile(rb'"chat\.completion|"choices"\s*:|"(gpt-|o1|o3|o4|chatgpt)|"role"\s*:\s*"(system|developer)"')


def _first_value(s: bytes) -> Any:
    """The first JSON value of a head: its first line (JSONL) or the whole head (one small document)."""
    for candidate in (s.split(b"\n", 1)[0], s):
        try:
            return loads(candidate)
        except ValueError:
            continue
    return None


def _is_bare_completion(v: Any) -> bool:
    return isinstance(v, dict) and v.get("object") == "chat.completion" and isinstance(v.get("choices"), list)


class OpenAILog:
    name = "openai_log"
    description = "OpenAI Chat Completions request/response log JSONL: {request, response|error, timestamp, metadata}"

    def sniff(self, head: bytes, path: str) -> float:
        s = head.lstrip()
        if s[:1] != b"{":
            return 0.0
        line = s.split(b"\n", 1)[0]
        if b'"custom_id"' in line:
            return 0.0
        if _SNIFF_REQUEST.search(line) and _SNIFF_RESPONSE.search(line):
            # tracelens.capture keeps the bodies as JSON strings (markers escaped) and names the provider
            provider = line_provider(line)
            if provider in OPENAI_CHAT_PROVIDERS and _SNIFF_ESCAPED_MESSAGES.search(line):
                return 0.92
            if provider in ANTHROPIC_PROVIDERS:
                return 0.0
        if _SNIFF_REQUEST.search(line) and _SNIFF_MESSAGES.search(line) and _SNIFF_RESPONSE.search(line):
            if b'"choices"' in line or b'"chat.completion' in line:
                return 0.92
            return 0.7 if _SNIFF_OPENAI.search(line) else 0.0
        return 0.8 if _is_bare_completion(_first_value(s)) else 0.0

    def parse(self, source: Source) -> Iterator[dict | Quarantined | Skipped]:
        return _parse_items(source, lambda obj, loc: _log_line(obj, loc, source.options))


def _log_line(obj: Any, locator: str, options: IngestOptions) -> dict:
    if line_provider(obj) in ANTHROPIC_PROVIDERS:
        # one capture file can hold both clients' calls: the line's own provider says which API it is
        from tracelens.ingest.formats.anthropic import anthropic_log_record

        return anthropic_log_record(obj, locator)
    return openai_log_record(obj, locator, options)


# ---------------------------------------------------------------- Batch API


@dataclass
class OpenAIBatchContext:
    path: str
    fingerprint: str
    inputs: CompanionIndex
    fallback_time: str | None
    fallback_source: str | None


_CREATED = re.compile(rb'"created"\s*:\s*(\d{9,10})\b')


def _input_rows(value: Any) -> Iterator[tuple[Any, Any]]:
    if isinstance(value, dict):
        body = value.get("body")
        if isinstance(body, dict):
            body = {"__url": value.get("url"), "__method": value.get("method"), "body": body}
        yield value.get("custom_id"), body


def openai_batch_context(source: Source) -> OpenAIBatchContext:
    opts = source.options
    index = load_companions(list(opts.companions.get(INPUT_ROLE, [])), _input_rows)
    ts, src = None, None
    if not opts.default_time:
        m = _CREATED.search(source.head)
        if m:
            ts, src = m.group(1).decode(), "batch_created"
        else:
            ts, src = file_time(source.path), "file_mtime"
    return OpenAIBatchContext(source.path, file_fingerprint(source.head), index, ts, src)


def openai_batch_record(obj: Any, locator: str, ctx: OpenAIBatchContext, options: IngestOptions) -> dict | Skipped:
    """Trace fields (or Skipped) from one Batch API output line (raises RecordError)."""
    if not isinstance(obj, dict):
        raise RecordError(f"expected a JSON object, got {type(obj).__name__}")
    cid = as_str(obj.get("custom_id"))
    if cid is None or ("response" not in obj and "error" not in obj):
        raise RecordError("line has no 'custom_id' with 'response' or 'error' (not a batch output line)")
    attrs = {"batch_custom_id": cid, "batch_file": ctx.fingerprint}
    if obj.get("id"):
        attrs["batch_line_id"] = as_str(obj["id"])
    entry, join = ctx.inputs.lookup(cid, ctx.path)
    attrs["batch_request"] = join
    fields: dict = {}
    request_raw = None
    if entry is not None:
        e = loads(entry)
        url = as_str(e.get("__url")) or ""
        if url and not _CHAT_PATH.search(url.split("?", 1)[0]):
            return Skipped(locator, f"batch request to {url} is not a chat completion")
        req = e.get("body")
        if isinstance(req, dict) and "messages" in req:
            check_openai_request(req)
            fields = openai_request_fields(req)
            request_raw = dumps(req)
    resp = obj.get("response") if isinstance(obj.get("response"), dict) else None
    status = as_int(resp.get("status_code")) if resp else None
    body = resp.get("body") if resp else None
    if isinstance(body, str):
        try:
            body = loads(body)
        except ValueError:
            body = {"error": {"message": body, "type": None}}
    response_raw = None
    created = None
    if isinstance(body, dict):
        if body.get("object") in _NOT_CHAT:
            return Skipped(locator, f"batch result is a {body['object']!r} object, not a chat completion")
        if body.get("object") == "response":
            raise RecordError("Responses API batch results are not supported by this importer")
        check_openai_response(body)
        fields = merge(fields, openai_response_fields(body))
        _error_code(body, fields, attrs)
        created = _finish(fields, attrs)
        response_raw = dumps(body)
    err = obj.get("error")
    if err is not None:
        eb = _error_body(err)
        ef = openai_response_fields(eb)
        fields.update({k: ef[k] for k in ("error_type", "error_message") if ef.get(k) is not None})
        _error_code(eb, fields, attrs)
        fields["status"] = "error"
        fields["stop_reason"] = "error"
        response_raw = response_raw or dumps(err)
    elif body is None:
        raise RecordError("batch line has neither a response body nor an error")
    if status is not None and status >= 400:
        fields["status"] = "error"
        fields["stop_reason"] = "error"
    ts = created
    if ts is None and not options.default_time:
        ts = ctx.fallback_time
        if ts is None:
            raise RecordError("batch line has no 'created' time and the input has no file time "
                              "(pass --default-time ISO8601)")
        attrs["timestamp_source"] = ctx.fallback_source
    fields.update(
        {
            "provider": _provider(None, body, fields.get("model_returned") or fields.get("model_requested"), options),
            "timestamp": ts,
            "request_id": as_str(resp.get("request_id")) if resp else None,
            "http_status": status,
            "request_raw": request_raw,
            "response_raw": response_raw,
            "attributes": attrs,
            "source_locator": locator,
            "trace_id": fields.get("response_id") or as_str(obj.get("id")) or f"batch:{ctx.fingerprint}:{cid}",
        }
    )
    return coerce_fields(fields)


class OpenAIBatch:
    name = "openai_batch"
    description = "OpenAI Batch API output JSONL ({id, custom_id, response, error}); joined with the input file by custom_id"

    def sniff(self, head: bytes, path: str) -> float:
        w = head[:65536]
        if w.lstrip()[:1] != b"{":
            return 0.0
        if (re.search(rb'"custom_id"\s*:', w) and re.search(rb'"response"\s*:', w)
                and (re.search(rb'"status_code"\s*:', w) or b'"batch_req_' in w)):
            return 0.95
        return 0.0

    def parse(self, source: Source) -> Iterator[dict | Quarantined | Skipped]:
        ctx = openai_batch_context(source)
        return _parse_items(source, lambda obj, loc: openai_batch_record(obj, loc, ctx, source.options))


class OpenAIBatchInput:
    name = "openai_batch_input"
    description = "OpenAI Batch API input JSONL ({custom_id, method, url, body}); joined with its output file"
    companion_role = INPUT_ROLE

    def sniff(self, head: bytes, path: str) -> float:
        w = head[:65536]
        if w.lstrip()[:1] != b"{":
            return 0.0
        if (re.search(rb'"custom_id"\s*:', w) and re.search(rb'"method"\s*:', w) and re.search(rb'"url"\s*:', w)
                and re.search(rb'"body"\s*:', w) and not re.search(rb'"response"\s*:', w)):
            return 0.95
        return 0.0

    def parse(self, source: Source) -> Iterator[dict | Quarantined | Skipped]:
        # Only reached with --format: an input file on its own has no results to store.
        return each_record(
            source, iter_json_values(source.stream, source.head, source.path),
            lambda locator, _: Skipped(locator, "batch input without its output: pass the output file in the same ingest"),
        )


FORMATS = [OpenAILog(), OpenAIBatch(), OpenAIBatchInput()]
