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
The log line mapping (shared with ``anthropic_log``) lives in
``tracelens.ingest.loglines``, the join with the input file in
``tracelens.ingest.batchjoin``. Field mappings and quarantine reasons:
docs/formats/openai.md.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from tracelens.ingest.base import IngestOptions, Quarantined, RecordError, Skipped, Source
from tracelens.ingest.batchjoin import CompanionIndex, file_fingerprint, file_time, load_companions
from tracelens.ingest.coerce import coerce_fields
from tracelens.ingest.guard import each_record
from tracelens.ingest.loglines import (
    NOT_CHAT,
    anthropic_log_record,
    openai_error_body,
    openai_error_code,
    openai_log_record,
    openai_provider,
    pop_private_fields,
)
from tracelens.ingest.normalize import (
    ANTHROPIC_PROVIDERS,
    OPENAI_CHAT_PROVIDERS,
    as_int,
    as_str,
    dumps,
    line_provider,
    merge,
    openai_request_fields,
    openai_response_fields,
)
from tracelens.ingest.readers import iter_json_values, loads
from tracelens.ingest.validate import check_openai_request, check_openai_response

INPUT_ROLE = "openai_batch_input"

_CHAT_PATH = re.compile(r"/chat/completions/?$")



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
        if body.get("object") in NOT_CHAT:
            return Skipped(locator, f"batch result is a {body['object']!r} object, not a chat completion")
        if body.get("object") == "response":
            raise RecordError("Responses API batch results are not supported by this importer")
        check_openai_response(body)
        fields = merge(fields, openai_response_fields(body))
        openai_error_code(body, fields, attrs)
        created = pop_private_fields(fields, attrs)
        response_raw = dumps(body)
    err = obj.get("error")
    if err is not None:
        eb = openai_error_body(err)
        ef = openai_response_fields(eb)
        fields.update({k: ef[k] for k in ("error_type", "error_message") if ef.get(k) is not None})
        openai_error_code(eb, fields, attrs)
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
            "provider": openai_provider(None, body, fields.get("model_returned") or fields.get("model_requested"), options),
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
