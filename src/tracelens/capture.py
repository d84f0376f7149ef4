"""No logs yet? Start here: record every LLM call in the form tracelens replays best.

    import anthropic
    from tracelens.capture import capture

    client = capture(anthropic.Anthropic(), "logs/llm.jsonl", metadata={"app": "support-bot"})
    with client.tracelens.context(user_id="4411", session_id="s-981"):
        client.messages.create(model="claude-sonnet-4-5-20250929", max_tokens=512, messages=[...])

``capture`` hooks the client's HTTP layer (httpx event hooks on the SDK's
client), so every call is recorded, streaming included, exactly as it went
over the wire: the request body bytes as sent, the response body (a
streaming response is teed chunk by chunk as the caller reads it, so
streaming latency is untouched), status, ``request-id``, latency and time to
first byte. Each exchange is appended as one line of the Anthropic (or
OpenAI) request/response log JSONL that ``tracelens ingest`` reads, to a
file that rotates by size. The line's ``provider`` (``openai`` for Chat
Completions paths, else ``anthropic``) tells ingest which API the bodies
belong to, since they are kept as JSON strings.

Guarantees:

* The API key (``x-api-key``, ``authorization``) is never written: no
  request headers are logged at all.
* The call path gains only a buffered append (under a lock) after the
  response is read; nothing is sent anywhere.
* ``redact`` (a function record -> record) runs before anything is written.
* It depends only on the standard library and the SDK's own HTTP client.

Works with ``anthropic.Anthropic`` / ``AsyncAnthropic`` and, optionally,
``openai.OpenAI`` / ``AsyncOpenAI``.
"""

from __future__ import annotations

import contextlib
import contextvars
import datetime as dt
import functools
import json
import os
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

_LOGGED_PATHS = ("/v1/messages", "/chat/completions")
_context: contextvars.ContextVar[dict | None] = contextvars.ContextVar("tracelens_capture_context", default=None)


class RotatingJSONL:
    """Append-only JSONL writer that rotates when the file passes ``max_bytes``.

    Rotated files are renamed ``<stem>-<UTC timestamp>.jsonl``; ``tracelens
    ingest DIR`` reads them all. Each record is one ``write`` of a whole line
    followed by a flush, so concurrent processes appending to the same file
    never interleave within a line (O_APPEND) and a crash loses at most the
    record being written.
    """

    def __init__(self, path: str | os.PathLike, max_bytes: int = 100 * 1024 * 1024):
        self.path = Path(path)
        self.max_bytes = max_bytes
        self._lock = threading.Lock()
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._fh = open(self.path, "a", encoding="utf-8")  # noqa: SIM115 - long-lived handle

    def write(self, record: dict) -> None:
        """Append ``record`` as one JSON line and flush, first rotating the file when the line would take it past
        ``max_bytes`` (0: never rotate).
        """
        line = json.dumps(record, ensure_ascii=False, separators=(",", ":")) + "\n"
        with self._lock:
            if self.max_bytes and self._fh.tell() + len(line) > self.max_bytes and self._fh.tell() > 0:
                self._rotate()
            self._fh.write(line)
            self._fh.flush()

    def _rotate(self) -> None:
        self._fh.close()
        stamp = dt.datetime.now(dt.UTC).strftime("%Y%m%dT%H%M%S%f")
        os.replace(self.path, self.path.with_name(f"{self.path.stem}-{stamp}{self.path.suffix}"))
        self._fh = open(self.path, "a", encoding="utf-8")  # noqa: SIM115

    def close(self) -> None:
        """Close the current file."""
        with self._lock:
            self._fh.close()


@functools.cache
def _tee_classes(httpx):
    """Tee stream classes for the HTTP library the SDK uses (httpx, or the SDK's own httpx2)."""

    class SyncTee(httpx.SyncByteStream):
        """Passes a response's chunks through to the caller and keeps a copy."""

        def __init__(self, inner, on_close: Callable[[bytes, float | None], None], started: float):
            self._inner = inner
            self._chunks: list[bytes] = []
            self._on_close = on_close
            self._first: float | None = None
            self._started = started
            self._done = False

        def _seen(self, chunk: bytes) -> None:
            if self._first is None:
                self._first = (time.perf_counter() - self._started) * 1000
            self._chunks.append(chunk)

        def _finish(self) -> None:
            if not self._done:
                self._done = True
                self._on_close(b"".join(self._chunks), self._first)

        def __iter__(self) -> Iterator[bytes]:
            for chunk in self._inner:
                self._seen(chunk)
                yield chunk

        def close(self) -> None:
            try:
                self._inner.close()
            finally:
                self._finish()

    class AsyncTee(httpx.AsyncByteStream):
        def __init__(self, inner, on_close, started: float):
            self._sync = SyncTee(None, on_close, started)
            self._inner = inner

        async def __aiter__(self):
            async for chunk in self._inner:
                self._sync._seen(chunk)
                yield chunk

        async def aclose(self) -> None:
            try:
                await self._inner.aclose()
            finally:
                self._sync._finish()

    return SyncTee, AsyncTee


class Capture:
    """The recorder attached to a client as ``client.tracelens``."""

    def __init__(
        self,
        path: str | os.PathLike,
        metadata: dict | None = None,
        redact: Callable[[dict], dict] | None = None,
        max_bytes: int = 100 * 1024 * 1024,
    ):
        self.writer = RotatingJSONL(path, max_bytes)
        self.metadata = dict(metadata or {})
        self.redact = redact
        self.errors = 0  # records that could not be written (never raised into the caller)

    @contextlib.contextmanager
    def context(self, **metadata: Any) -> Iterator[None]:
        """Metadata (user_id, session_id, ...) added to calls made inside the block, thread- and task-safe."""
        token = _context.set({**(_context.get() or {}), **metadata})
        try:
            yield
        finally:
            _context.reset(token)

    # ---------------------------------------------------------------- httpx hooks

    def _on_request(self, request) -> None:
        if request.method != "POST" or not request.url.path.endswith(_LOGGED_PATHS):
            return
        request.extensions["tracelens"] = {
            "started": time.perf_counter(),
            "timestamp": dt.datetime.now(dt.UTC).isoformat(timespec="microseconds").replace("+00:00", "Z"),
            "metadata": {**self.metadata, **(_context.get() or {})},
        }

    def _on_response(self, response) -> None:
        info = response.request.extensions.get("tracelens")
        if info is None:
            return
        started = info["started"]

        def done(body: bytes, first_ms: float | None) -> None:
            self._record(response, info, body, first_ms, (time.perf_counter() - started) * 1000)

        httpx = sys.modules[type(response).__module__.split(".")[0]]
        sync_tee, async_tee = _tee_classes(httpx)
        tee = async_tee if isinstance(response.stream, httpx.AsyncByteStream) else sync_tee
        response.stream = tee(response.stream, done, started)

    async def _aon_request(self, request) -> None:
        self._on_request(request)

    async def _aon_response(self, response) -> None:
        self._on_response(response)

    def _record(self, response, info: dict, body: bytes, first_ms: float | None, latency_ms: float) -> None:
        try:
            req_body = response.request.content.decode("utf-8")
            text = body.decode("utf-8", "replace")
            is_sse = response.headers.get("content-type", "").startswith("text/event-stream")
            rec: dict[str, Any] = {
                "timestamp": info["timestamp"],
                "provider": "openai" if response.request.url.path.endswith("/chat/completions") else "anthropic",
                "latency_ms": round(latency_ms, 3),
                "request_id": response.headers.get("request-id") or response.headers.get("x-request-id"),
                "status_code": response.status_code,
                "metadata": info["metadata"] or None,
                # the exact bytes sent, kept as a string so replay can reproduce them byte for byte
                "request": req_body,
            }
            if is_sse:
                rec["time_to_first_token_ms"] = round(first_ms, 3) if first_ms is not None else None
            if response.status_code >= 400:
                rec["error"] = text
            else:
                rec["response"] = text
            if self.redact is not None:
                rec = self.redact(rec)
            self.writer.write({k: v for k, v in rec.items() if v is not None})
        except Exception:  # recording must never break the caller's request
            self.errors += 1

    def close(self) -> None:
        """Close the log file the recorder writes to."""
        self.writer.close()


def capture(client, path: str | os.PathLike, metadata: dict | None = None,
            redact: Callable[[dict], dict] | None = None, max_bytes: int = 100 * 1024 * 1024):
    """Record every Messages (or Chat Completions) call made through ``client`` to ``path``.

    Returns the same client, with the recorder at ``client.tracelens`` (use
    ``client.tracelens.context(user_id=...)`` to tag calls). Async clients are
    supported.
    """
    http = getattr(client, "_client", None)
    if http is None or not hasattr(http, "event_hooks"):
        raise TypeError("capture() expects an anthropic or openai SDK client (built on httpx)")
    cap = Capture(path, metadata, redact, max_bytes)
    hooks = http.event_hooks
    is_async = type(http).__name__ == "AsyncClient" or hasattr(http, "aclose")
    if is_async:
        hooks.setdefault("request", []).append(cap._aon_request)
        hooks.setdefault("response", []).append(cap._aon_response)
    else:
        hooks.setdefault("request", []).append(cap._on_request)
        hooks.setdefault("response", []).append(cap._on_response)
    http.event_hooks = hooks
    client.tracelens = cap
    return client
