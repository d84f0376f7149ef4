"""Anthropic SDK / HTTP exchange recordings (``anthropic_http``).

What HTTP recorders write (the Anthropic SDK's own test recordings, proxy
captures, httpx/VCR-style dumps): a JSON array (or JSONL) of exchanges

    {"request":  {"method", "url", "headers", "body"},
     "response": {"status_code", "headers", "body"}}

Contract:

* Only ``POST .../v1/messages`` (first party, ``?beta=true`` allowed), Vertex
  ``:rawPredict`` / ``:streamRawPredict`` and Bedrock ``/model/ID/invoke``
  exchanges are LLM calls. ``count_tokens``, batches, models, files and
  every other endpoint are ``Skipped`` with the method and path as reason.
* Streaming bodies (SSE text of ``event:``/``data:`` lines, or a list of
  events or of SSE chunks) are reassembled into the final Message; a stream
  without ``message_stop`` is kept and marked ``stream_incomplete=true``.
* HTTP errors (429, 529, ...) are error traces: ``status=error``,
  ``http_status``, ``error_type`` from the error body, else from the status
  code (``rate_limit_error``, ``overloaded_error``, ...).
* Timestamp: the response ``date`` header (RFC 1123), else the request's
  ``date`` header, else a timestamp key on the exchange itself; without one
  the file's modification time is used, marked ``timestamp_source=file_mtime``
  (``--default-time`` overrides; only stdin input without a time is quarantined).
* ``request_id``: the ``request-id`` response header, else the error
  body's ``request_id``. ``trace_id``: the message id, else the request id,
  else the pipeline's content hash.
* API keys are never stored: ``x-api-key``, ``authorization``, cookies and
  any header named like a key, secret, credential or ``*-token`` are dropped
  from everything kept (only allow-listed headers reach attributes; the
  quarantine raw has them removed and key-like strings scrubbed); the URL
  loses user-info and credential-like query parameters.
* ``request_raw`` is the request body JSON text (a string body is kept
  exactly); ``response_raw`` the response body (SSE text kept exactly).

Field mapping and quarantine reasons: docs/formats/anthropic_http.md.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from typing import Any
from urllib.parse import parse_qsl, unquote, urlencode, urlsplit

from tracelens.ingest.base import IngestOptions, Quarantined, RecordError, Skipped, Source
from tracelens.ingest.batchjoin import file_time
from tracelens.ingest.coerce import coerce_fields, safe_text
from tracelens.ingest.guard import each_record
from tracelens.ingest.normalize import (
    anthropic_request_fields,
    anthropic_response_fields,
    as_float,
    as_int,
    as_str,
    assemble_anthropic_sse,
    dumps,
    merge,
    parse_sse,
)
from tracelens.ingest.readers import iter_json_values, loads
from tracelens.ingest.validate import check_anthropic_request, check_anthropic_response

# Headers never stored anywhere; checked before the keep list.
_SENSITIVE = re.compile(
    r"api[-_]?key|authori[sz]ation|secret|cookie|password|credential|signature|bearer|(^|[-_])(auth|token)$", re.I
)
# Headers worth keeping in attributes (others are transport noise).
_KEEP = re.compile(r"^(anthropic-.+|x-stainless-.+|user-agent|request-id|x-request-id|retry-after|x-should-retry)$")
_SENSITIVE_QUERY = re.compile(r"key|token|secret|sig|auth|password|credential", re.I)
# Quarantine raw text is scrubbed of these as a last line of defence.
_SECRET_TEXT = [
    (re.compile(r'("(?:x-api-key|authorization|proxy-authorization|cookie|api-key|x-goog-api-key)"\s*:\s*)"[^"]*"', re.I),
     r'\1"[redacted]"'),
    (re.compile(r"sk-ant-[A-Za-z0-9_\-]{8,}"), "[redacted]"),
    (re.compile(r"(Bearer\s+)[A-Za-z0-9._\-]{8,}", re.I), r"\1[redacted]"),
]

_TS_KEYS = ("timestamp", "time", "recorded_at", "started_at", "created_at", "start_time")

# Error type by HTTP status when the body does not say (Anthropic's documented error types).
_STATUS_ERROR = {
    400: "invalid_request_error", 401: "authentication_error", 402: "billing_error", 403: "permission_error",
    404: "not_found_error", 408: "timeout_error", 413: "request_too_large", 429: "rate_limit_error",
    500: "api_error", 502: "api_error", 503: "api_error", 504: "timeout_error", 529: "overloaded_error",
}

_VERTEX = re.compile(r"/publishers/anthropic/models/(?P<model>[^/:]+):(?P<op>rawPredict|streamRawPredict)$")
_BEDROCK = re.compile(r"/model/(?P<model>[^/]+)/(?P<op>invoke|invoke-with-response-stream)$")


def headers_dict(h: Any) -> dict[str, str]:
    """Headers as a lower-case dict, from a dict (values may be lists) or a list of pairs."""
    out: dict[str, str] = {}
    items: list = []
    if isinstance(h, dict):
        items = list(h.items())
    elif isinstance(h, list):
        items = [tuple(p) for p in h if isinstance(p, list | tuple) and len(p) == 2]
    for k, v in items:
        if isinstance(v, list):
            v = ", ".join(str(x) for x in v)
        if v is not None:
            out[str(k).lower()] = str(v)
    return out


def kept_headers(h: dict[str, str], prefix: str) -> dict[str, str]:
    """The useful, non-sensitive headers as attributes ``<prefix>.<name>``."""
    return {f"{prefix}.{k}": v for k, v in h.items() if not _SENSITIVE.search(k) and _KEEP.match(k)}


def safe_url(url: str) -> str:
    """``url`` without credentials in the user-info or query string."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return ""
    query = urlencode([(k, v) for k, v in parse_qsl(parts.query, keep_blank_values=True) if not _SENSITIVE_QUERY.search(k)])
    netloc = parts.hostname or ""
    if parts.port:
        netloc += f":{parts.port}"
    return parts._replace(netloc=netloc, query=query).geturl()


def scrub_text(raw: str | None) -> str | None:
    """``raw`` with anything that looks like an API key replaced (and safe to store as text)."""
    if raw is None:
        return None
    for pat, repl in _SECRET_TEXT:
        raw = pat.sub(repl, raw)
    return safe_text(raw)


def scrub_exchange(obj: Any) -> Any:
    """A copy of an exchange with sensitive headers removed and the URL made safe (for quarantine raw)."""
    if not isinstance(obj, dict):
        return obj
    out = dict(obj)
    for side in ("request", "response"):
        part = out.get(side)
        if isinstance(part, dict):
            part = dict(part)
            if "headers" in part:
                part["headers"] = {k: v for k, v in headers_dict(part["headers"]).items() if not _SENSITIVE.search(k)}
            if isinstance(part.get("url"), str):
                part["url"] = safe_url(part["url"])
            out[side] = part
    return out


def classify(method: str, url: str) -> tuple[str, str | None, str | None, str]:
    """(kind, model from the URL, platform, path): kind is 'messages', 'skip' or 'unsupported'."""
    try:
        path = urlsplit(url).path
    except ValueError:
        path = url
    path = unquote(path).rstrip("/")
    if method != "POST":
        return "skip", None, None, path
    if path.endswith("/v1/messages"):
        return "messages", None, None, path
    m = _VERTEX.search(path)
    if m:
        return "messages", m.group("model"), "vertex", path
    m = _BEDROCK.search(path)
    if m:
        return "messages", m.group("model"), "bedrock", path
    if path.endswith("/v1/complete"):
        return "unsupported", None, None, path
    return "skip", None, None, path


def _json_body(body: Any, what: str) -> tuple[Any, str | None]:
    """(parsed, raw text) of a JSON body given as an object or as text (kept exactly)."""
    if isinstance(body, str):
        try:
            return loads(body), body
        except ValueError as e:
            raise RecordError(f"{what} is a string but not valid JSON: {e}") from e
    if isinstance(body, bytes | bytearray):
        raise RecordError(f"{what} is binary")
    return body, (dumps(body) if body is not None else None)


def _sse_text(items: list) -> str:
    joiner = "" if any("\n" in s for s in items) else "\n"
    return joiner.join(items)


def response_body(body: Any, status: int | None) -> tuple[dict, str | None, dict[str, str]]:
    """(Message or error body, raw text, extra attributes) of a response body in any recorded shape."""
    attrs: dict[str, str] = {}
    events: list | None = None
    raw: str | None
    if isinstance(body, str):
        s = body.lstrip()
        raw = body
        if s.startswith(("event:", "data:")):
            events = parse_sse(body)
        elif not s:
            body = None
        else:
            try:
                body = loads(body)
            except ValueError:
                if status is not None and status >= 400:  # e.g. an HTML page from a proxy
                    return {"type": "error", "error": {"type": _STATUS_ERROR.get(status, "api_error"),
                                                       "message": body.strip()[:2000]}}, raw, attrs
                raise RecordError("response body is neither JSON nor an event stream") from None
    elif isinstance(body, list):
        raw = dumps(body)
        if body and all(isinstance(x, str) for x in body):
            events = parse_sse(_sse_text(body))
        else:
            events = []
            for e in body:
                d = e.get("data", e) if isinstance(e, dict) else e
                if isinstance(d, str):
                    try:
                        d = loads(d)
                    except ValueError as err:
                        raise RecordError(f"malformed streaming event: {err}") from err
                if not isinstance(d, dict):
                    raise RecordError("streaming event is not an object")
                events.append(d)
    else:
        raw = dumps(body) if body is not None else None
    if events is not None:
        attrs["streamed"] = "true"
        if not any(isinstance(e, dict) and e.get("type") in ("message_stop", "error") for e in events):
            attrs["stream_incomplete"] = "true"
        return assemble_anthropic_sse(events), raw, attrs
    if body is None:
        if status is not None and status >= 400:
            return {"type": "error", "error": {"type": _STATUS_ERROR.get(status, "api_error"), "message": None}}, None, attrs
        raise RecordError("response has no body")
    if not isinstance(body, dict):
        raise RecordError(f"response body is {type(body).__name__}, not an object")
    return body, raw, attrs


def exchange_record(obj: Any, locator: str, options: IngestOptions, path: str = "-") -> dict | Skipped:
    """Trace fields (or Skipped) from one recorded exchange read from file ``path``; raises RecordError."""
    if not isinstance(obj, dict):
        raise RecordError(f"expected an exchange object, got {type(obj).__name__}")
    req = obj.get("request")
    if not isinstance(req, dict):
        raise RecordError("exchange has no 'request' object")
    method = str(req.get("method") or "POST").upper()
    url = str(req.get("url") or req.get("uri") or "")
    # url_path, not path: ``path`` is the file, needed below for the mtime fallback
    kind, url_model, platform, url_path = classify(method, url)
    if kind == "skip":
        return Skipped(locator, f"{method} {url_path or url or '?'} is not a Messages API call")
    if kind == "unsupported":
        raise RecordError(f"{method} {url_path}: the legacy Text Completions API is not supported")
    body, req_raw = _json_body(req.get("body", req.get("content")), "request body")
    check_anthropic_request(body)
    fields = anthropic_request_fields(body)
    if url_model and not fields.get("model_requested"):
        fields["model_requested"] = url_model
    resp = obj.get("response")
    if not isinstance(resp, dict):
        raise RecordError("exchange has no 'response' object (request not answered?)")
    status = as_int(resp.get("status_code", resp.get("status")))
    rh = headers_dict(resp.get("headers"))
    qh = headers_dict(req.get("headers"))
    parsed, resp_raw, attrs = response_body(resp.get("body", resp.get("content")), status)
    check_anthropic_response(parsed)
    fields = merge(fields, anthropic_response_fields(parsed))
    if status is not None and status >= 400:
        fields["status"] = "error"
        fields["stop_reason"] = "error"
        if not fields.get("error_type"):  # not an Anthropic error body (a gateway's {"message": ...})
            fields["error_type"] = _STATUS_ERROR.get(status, "api_error" if status >= 500 else "invalid_request_error")
            fields["error_message"] = as_str(parsed.get("message") or parsed.get("Message"))
            fields["response_text"] = None
            fields["tool_calls"] = []
    ts = rh.get("date") or qh.get("date") or next((obj[k] for k in _TS_KEYS if obj.get(k) is not None), None)
    ts_source = None
    if ts is None and not options.default_time:
        # recordings (e.g. SDK test cassettes) often carry no time at all: fall back to the file's mtime,
        # marked, as the batch importer does; only stdin has nothing to fall back to
        ts = file_time(path)
        ts_source = "file_mtime"
        if ts is None:
            raise RecordError("no timestamp: the exchange has no 'date' response header or timestamp "
                              "(pass --default-time ISO8601 to assign one)")
    if ts_source:
        attrs["timestamp_source"] = ts_source
    rid = rh.get("request-id") or rh.get("x-request-id") or fields.get("request_id")
    attrs.update(kept_headers(qh, "http.request.header"))
    attrs.update(kept_headers(rh, "http.response.header"))
    attrs["http.method"] = method
    if url:
        attrs["http.url"] = safe_url(url)
    if body.get("stream"):
        attrs["streamed"] = "true"
    fields.update(
        {
            "provider": platform or "anthropic",
            "timestamp": ts,
            "latency_ms": as_float(obj.get("latency_ms", obj.get("duration_ms"))),
            "request_id": as_str(rid),
            "http_status": status if status is not None else (200 if fields.get("status") == "ok" else None),
            "request_raw": req_raw,
            "response_raw": resp_raw,
            "attributes": attrs,
            "source_locator": locator,
            "trace_id": fields.get("response_id") or as_str(rid),
        }
    )
    fields.pop("_created", None)
    return coerce_fields(fields)


_SNIFF_KEYS = (rb'"request"\s*:', rb'"response"\s*:', rb'"method"\s*:', rb'"url"\s*:', rb'"status_code"\s*:')
_SNIFF_ANTHROPIC = re.compile(rb"/v1/messages|anthropic-version|api\.anthropic\.com|publishers/anthropic|anthropic\.claude")


class AnthropicHttp:
    name = "anthropic_http"
    description = "Anthropic SDK/HTTP exchange recordings: [{request:{method,url,headers,body}, response:{status_code,headers,body}}]"

    def sniff(self, head: bytes, path: str) -> float:
        s = head.lstrip()
        if s[:1] not in (b"[", b"{"):
            return 0.0
        window = s[:65536]
        if not all(re.search(k, window) for k in _SNIFF_KEYS):
            return 0.0
        return 0.95 if _SNIFF_ANTHROPIC.search(window) else 0.4

    def parse(self, source: Source) -> Iterator[dict | Quarantined | Skipped]:
        def item(locator: str, obj: Any) -> dict | Quarantined | Skipped:
            rec = exchange_record(obj, locator, source.options, source.path)
            if isinstance(rec, dict):
                rec["_raw"] = None
            return rec

        return each_record(source, iter_json_values(source.stream, source.head, source.path), item,
                           raw=lambda obj: scrub_text(_raw(obj)), text=scrub_text)


def _raw(obj: Any) -> str | None:
    try:
        return json.dumps(scrub_exchange(obj), ensure_ascii=False, default=str)
    except (TypeError, ValueError):
        return None


FORMATS = [AnthropicHttp()]
