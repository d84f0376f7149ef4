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

The line mapping (shared with ``openai_log``, which reads the same envelope)
lives in ``tracelens.ingest.loglines``; fields are documented in
docs/formats/anthropic_log.md. ``trace_id`` is the response
id (``msg_...``), else the request id, else a content hash.
"""

from __future__ import annotations

import re
from collections.abc import Iterator

from tracelens.ingest.base import IngestOptions, Quarantined, Skipped, Source
from tracelens.ingest.guard import each_record, isolate
from tracelens.ingest.loglines import anthropic_log_record, openai_log_record
from tracelens.ingest.normalize import (
    OPENAI_CHAT_PROVIDERS,
    line_provider,
)
from tracelens.ingest.readers import iter_json_values

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
        rec = openai_log_record(obj, locator, IngestOptions())
        rec["_raw"] = None
        return rec
    rec = anthropic_log_record(obj, locator)
    rec["_raw"] = None
    return rec


FORMATS = [AnthropicLog()]
