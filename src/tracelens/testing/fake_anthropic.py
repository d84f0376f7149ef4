"""A local, scriptable fake of the Anthropic Messages API.

Contract:

* ``FakeAnthropicServer`` is a context manager that serves on 127.0.0.1 (an
  ephemeral port unless one is given) from a background
  ``ThreadingHTTPServer``. ``.base_url`` is what to pass to the SDK's
  ``base_url``; ``.requests`` lists every request received as
  ``RecordedRequest`` (method, path, lower-cased headers, exact body bytes and
  parsed JSON), in arrival order.
* ``POST /v1/messages`` validates like the real API: ``x-api-key`` present
  (401 ``authentication_error``), ``anthropic-version`` present, a JSON object
  body with ``model``, ``max_tokens`` (int >= 1) and a non-empty ``messages``
  list whose roles are ``user``/``assistant``, start with ``user`` and
  alternate, no unknown top-level fields (400 ``invalid_request_error``), and a
  known model (404 ``not_found_error``). Aliases resolve to snapshots and the
  response reports the snapshot, as the real API does. ``stream: true`` gets a
  proper SSE sequence (message_start, content_block_start, ping,
  content_block_delta..., content_block_stop, message_delta, message_stop).
  ``POST /v1/messages/count_tokens`` returns a deterministic estimate.
* ``GET /v1/models`` lists the configured snapshots as the Models API does
  (``data`` of ``{type: "model", id, display_name, created_at}``, newest
  first, with ``has_more``, ``first_id``, ``last_id``; ``limit`` 1-1000,
  default 20, and ``after_id`` / ``before_id`` cursors). ``GET
  /v1/models/{model_id}`` returns one model, resolving an alias to its
  snapshot as the real API does; unknown ids are 404 ``not_found_error``.
  ``created_at`` comes from the id's date (the epoch for undated ids) unless
  ``model_info`` gives it; ``model_info`` can add any other field
  (``display_name``, ``deprecated_at``, ``retires_at``, ``lifecycle``, ...).
* Behaviour is scripted with ``Reply`` objects: ``enqueue`` adds one-shot
  replies consumed in order; ``add_rule`` adds persistent replies chosen by
  model / prompt substring / predicate (optionally limited to ``times`` uses).
  Without a script the server answers with a deterministic, seed-varied echo
  whose text starts with ``[tracelens fake server]``.
* Every response carries ``x-tracelens-fake: 1`` and a ``request-id`` header;
  model ids stay real.

Run standalone with ``python -m tracelens.testing.fake_anthropic --port N``;
``--store PATH`` serves every model a store's traces name (so replaying any
stored trace works), ``--model``/``--models-file`` add ids, and ``--rules
FILE`` scripts replies per prompt (e.g. a refusal for one question).
This module is test tooling: it imports only the standard library (and the store for ``--store``).
"""

from __future__ import annotations

import hashlib
import json
import math
import random
import re
import sys
import threading
import uuid
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler
from typing import Any
from urllib.parse import parse_qs, unquote

from tracelens.testing.localserver import LocalServer, OwnedServer, RecordedRequest

FAKE_HEADER = "x-tracelens-fake"
FAKE_PREFIX = "[tracelens fake server]"

# Snapshots the fake knows about; tests can pass their own.
DEFAULT_MODELS: tuple[str, ...] = (
    "claude-opus-4-5-20251101",
    "claude-sonnet-4-5-20250929",
    "claude-haiku-4-5-20251001",
    "claude-opus-4-1-20250805",
    "claude-opus-4-20250514",
    "claude-sonnet-4-20250514",
    "claude-3-7-sonnet-20250219",
    "claude-3-5-haiku-20241022",
    "claude-3-haiku-20240307",
)

DEFAULT_ALIASES: dict[str, str] = {
    "claude-opus-4-5": "claude-opus-4-5-20251101",
    "claude-sonnet-4-5": "claude-sonnet-4-5-20250929",
    "claude-haiku-4-5": "claude-haiku-4-5-20251001",
    "claude-opus-4-1": "claude-opus-4-1-20250805",
    "claude-opus-4-0": "claude-opus-4-20250514",
    "claude-sonnet-4-0": "claude-sonnet-4-20250514",
    "claude-3-7-sonnet-latest": "claude-3-7-sonnet-20250219",
    "claude-3-5-haiku-latest": "claude-3-5-haiku-20241022",
}

# Top-level request fields the Messages API accepts; anything else is a 400,
# which catches platform wrappers (e.g. Bedrock's anthropic_version) leaking in.
KNOWN_FIELDS = frozenset(
    {
        "model",
        "messages",
        "max_tokens",
        "system",
        "metadata",
        "stop_sequences",
        "stream",
        "temperature",
        "top_p",
        "top_k",
        "tools",
        "tool_choice",
        "thinking",
        "service_tier",
        "container",
        "mcp_servers",
        "context_management",
        "output_config",
        "output_format",
        "inference_geo",
    }
)

_STATUS_ERROR_TYPES = {
    400: "invalid_request_error",
    401: "authentication_error",
    403: "permission_error",
    404: "not_found_error",
    413: "request_too_large",
    429: "rate_limit_error",
    500: "api_error",
    529: "overloaded_error",
}


@dataclass
class Reply:
    """One scripted behaviour.

    ``status == 200`` produces a message: ``content`` (explicit blocks) wins,
    else ``text`` (None means "use the default echo"). Any other status
    produces an error body ``{"type": "error", "error": {...}}``. ``delay``
    seconds are waited before anything is sent (for client timeouts).
    """

    text: str | None = None
    stop_reason: str = "end_turn"
    stop_details: dict[str, Any] | None = None
    content: list[dict[str, Any]] | None = None
    input_tokens: int | None = None
    output_tokens: int | None = None
    # prompt-cache usage to report (the usage fields are left out when None, as for a request without cache_control)
    cache_read_input_tokens: int | None = None
    cache_creation_input_tokens: int | None = None
    model: str | None = None
    status: int = 200
    error_type: str | None = None
    error_message: str | None = None
    headers: dict[str, str] = field(default_factory=dict)
    delay: float = 0.0

    @classmethod
    def message(cls, text: str, stop_reason: str = "end_turn", **kw: Any) -> Reply:
        """An answer with ``text`` and ``stop_reason`` (other ``Reply`` fields as keywords)."""
        return cls(text=text, stop_reason=stop_reason, **kw)

    @classmethod
    def refusal(
        cls,
        text: str = "",
        category: str | None = "cyber",
        explanation: str | None = "This request was declined by the fake server's script.",
        **kw: Any,
    ) -> Reply:
        """A refusal as the API reports one: ``stop_reason`` "refusal" with ``stop_details`` naming a category."""
        details = {"type": "refusal", "category": category, "explanation": explanation}
        return cls(text=text, stop_reason="refusal", stop_details=details, **kw)

    @classmethod
    def error(
        cls, status: int, error_type: str | None = None, message: str | None = None, retry_after: float | None = None
    ) -> Reply:
        """An error response with ``status``, the API's error type for it and, optionally, a ``retry-after`` header."""
        headers = {}
        if retry_after is not None:
            headers["retry-after"] = f"{retry_after:g}"
        return cls(
            status=status,
            error_type=error_type or _STATUS_ERROR_TYPES.get(status, "api_error"),
            error_message=message or "Scripted error from the fake server",
            headers=headers,
        )

    @classmethod
    def rate_limited(cls, retry_after: float | None = 1) -> Reply:
        """HTTP 429 ``rate_limit_error``, with ``retry-after`` seconds."""
        return cls.error(429, "rate_limit_error", "Number of request tokens has exceeded your rate limit.", retry_after)

    @classmethod
    def overloaded(cls) -> Reply:
        """HTTP 529 ``overloaded_error``."""
        return cls.error(529, "overloaded_error", "Overloaded")

    @classmethod
    def server_error(cls) -> Reply:
        """HTTP 500 ``api_error``."""
        return cls.error(500, "api_error", "Internal server error")

    @classmethod
    def slow(cls, delay: float, text: str | None = None) -> Reply:
        """An answer sent only after ``delay`` seconds (for client timeouts and deadlines)."""
        return cls(text=text, delay=delay)


@dataclass
class Rule:
    """A persistent scripted reply, used when the one-shot queue is empty."""

    reply: Reply
    model: str | None = None  # matches requested or resolved model id
    contains: str | None = None  # substring of the last user text
    match: Callable[[dict[str, Any]], bool] | None = None
    times: int | None = None  # None = unlimited

    def matches(self, body: dict[str, Any], resolved: str) -> bool:
        """Whether this rule answers a request ``body`` whose model resolved to ``resolved`` (and has uses left)."""
        if self.times is not None and self.times <= 0:
            return False
        if self.model is not None and self.model not in (body.get("model"), resolved):
            return False
        if self.contains is not None and self.contains not in _last_user_text(body):
            return False
        return self.match is None or bool(self.match(body))


class _ApiError(Exception):
    def __init__(self, status: int, error_type: str, message: str, headers: dict[str, str] | None = None):
        super().__init__(message)
        self.status = status
        self.error_type = error_type
        self.message = message
        self.headers = headers or {}


def _last_user_text(body: dict[str, Any]) -> str:
    for msg in reversed(body.get("messages") or []):
        if isinstance(msg, dict) and msg.get("role") == "user":
            return _content_text(msg.get("content"))
    return ""


def _content_text(content: Any) -> str:
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        parts = []
        for block in content:
            if isinstance(block, dict):
                if block.get("type") == "text":
                    parts.append(str(block.get("text", "")))
                elif block.get("type") == "tool_result":
                    parts.append(_content_text(block.get("content")))
        return "\n".join(p for p in parts if p)
    return ""


DATED_ID = re.compile(r"(20\d{2})(0[1-9]|1[0-2])([0-2]\d|3[01])$")


def _display_name(model: str) -> str:
    """'claude-sonnet-4-5-20250929' -> 'Claude Sonnet 4.5', 'claude-3-7-sonnet-20250219' -> 'Claude 3.7 Sonnet'."""
    words = DATED_ID.sub("", model).strip("-").split("-")
    out: list[str] = []
    for w in words:
        if w.isdigit() and out and out[-1][-1].isdigit():
            out[-1] += "." + w  # version digits: 4-5 -> 4.5
        else:
            out.append(w.capitalize() if not w.isdigit() else w)
    return " ".join(out)


def _estimate_tokens(text: str) -> int:
    return max(1, math.ceil(len(text) / 4))


class _Handler(BaseHTTPRequestHandler):
    server: OwnedServer  # type: ignore[assignment]
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - stdlib signature
        """Request log lines on stderr, only when the server is verbose."""
        if self.server.owner.verbose:
            sys.stderr.write("fake_anthropic: " + (format % args) + "\n")

    def do_GET(self) -> None:  # noqa: N802 - stdlib naming
        """The Models API (``/v1/models``, ``/v1/models/{id}``); anything else is 404."""
        self._record(b"", None)
        owner = self.server.owner
        path, _, query = self.path.partition("?")
        try:
            if path == "/v1/models" or path.startswith("/v1/models/"):
                owner._check_headers(self.headers)
                if path == "/v1/models":
                    self._send_json(200, owner._list_models(parse_qs(query)))
                else:
                    self._send_json(200, owner._model_info(unquote(path[len("/v1/models/") :])))
            else:
                raise _ApiError(404, "not_found_error", "Not found")
        except _ApiError as e:
            self._send_error(e)

    def do_POST(self) -> None:  # noqa: N802 - stdlib naming
        """``/v1/messages`` (plain or streamed) and ``/v1/messages/count_tokens``, validated like the real API."""
        length = int(self.headers.get("content-length") or 0)
        raw = self.rfile.read(length) if length else b""
        try:
            parsed: Any = json.loads(raw) if raw else None
        except ValueError:
            parsed = None
        self._record(raw, parsed)
        owner = self.server.owner
        try:
            try:
                path = self.path.split("?", 1)[0]
                if path == "/v1/messages":
                    body = owner._validate(self.headers, raw, parsed, require_max_tokens=True)
                    owner._handle_messages(self, body)
                elif path == "/v1/messages/count_tokens":
                    body = owner._validate(self.headers, raw, parsed, require_max_tokens=False)
                    owner._resolve_model(body["model"])  # 404 for unknown models, as the real API
                    self._send_json(200, {"input_tokens": _estimate_tokens(json.dumps(body))})
                else:
                    raise _ApiError(404, "not_found_error", "Not found")
            except _ApiError as e:
                self._send_error(e)
        except OSError:
            # The client gave up (e.g. its timeout fired while we were delayed): nobody to answer.
            self.close_connection = True

    def _record(self, raw: bytes, parsed: Any) -> None:
        headers = {k.lower(): v for k, v in self.headers.items()}
        rec = RecordedRequest(self.command, self.path, headers, raw, parsed)
        with self.server.owner._lock:
            self.server.owner.requests.append(rec)

    def _common_headers(self, extra: dict[str, str] | None = None) -> None:
        self.send_header(FAKE_HEADER, "1")
        self.send_header("request-id", "req_fake_" + uuid.uuid4().hex[:24])
        for k, v in (extra or {}).items():
            self.send_header(k, v)

    def _send_json(self, status: int, obj: Any, headers: dict[str, str] | None = None) -> None:
        data = json.dumps(obj).encode()
        self.send_response(status)
        self.send_header("content-type", "application/json")
        self.send_header("content-length", str(len(data)))
        self._common_headers(headers)
        self.end_headers()
        self.wfile.write(data)

    def _send_error(self, e: _ApiError) -> None:
        body = {"type": "error", "error": {"type": e.error_type, "message": e.message}}
        self._send_json(e.status, body, e.headers)

    def _send_sse(self, message: dict[str, Any]) -> None:
        self.send_response(200)
        self.send_header("content-type", "text/event-stream")
        self.send_header("cache-control", "no-cache")
        # No content-length on a stream: closing the connection ends the body.
        self.send_header("connection", "close")
        self._common_headers()
        self.end_headers()
        self.close_connection = True

        def event(name: str, data: dict[str, Any]) -> None:
            self.wfile.write(f"event: {name}\ndata: {json.dumps(data)}\n\n".encode())
            self.wfile.flush()

        start = dict(message, content=[], stop_reason=None, stop_sequence=None)
        start.pop("stop_details", None)
        start["usage"] = dict(message["usage"], output_tokens=1)
        event("message_start", {"type": "message_start", "message": start})
        for i, block in enumerate(message["content"]):
            if block.get("type") == "tool_use":
                event(
                    "content_block_start",
                    {"type": "content_block_start", "index": i, "content_block": dict(block, input={})},
                )
                if i == 0:
                    event("ping", {"type": "ping"})
                delta = {"type": "input_json_delta", "partial_json": json.dumps(block.get("input", {}))}
                event("content_block_delta", {"type": "content_block_delta", "index": i, "delta": delta})
            else:
                text = block.get("text", "")
                event(
                    "content_block_start",
                    {"type": "content_block_start", "index": i, "content_block": {"type": "text", "text": ""}},
                )
                if i == 0:
                    event("ping", {"type": "ping"})
                for chunk in [text[j : j + 16] for j in range(0, len(text), 16)]:
                    delta = {"type": "text_delta", "text": chunk}
                    event("content_block_delta", {"type": "content_block_delta", "index": i, "delta": delta})
            event("content_block_stop", {"type": "content_block_stop", "index": i})
        final_delta: dict[str, Any] = {"stop_reason": message["stop_reason"], "stop_sequence": None}
        if message.get("stop_details") is not None:
            final_delta["stop_details"] = message["stop_details"]
        event(
            "message_delta",
            {
                "type": "message_delta",
                "delta": final_delta,
                "usage": {"output_tokens": message["usage"]["output_tokens"]},
            },
        )
        event("message_stop", {"type": "message_stop"})


class FakeAnthropicServer(LocalServer):
    """Scriptable fake Messages API on 127.0.0.1; use as a context manager."""

    handler = _Handler
    thread_name = "fake-anthropic"

    def __init__(
        self,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        models: tuple[str, ...] | list[str] | None = None,
        aliases: dict[str, str] | None = None,
        seed: int = 0,
        strict_roles: bool = True,
        verbose: bool = False,
        model_info: dict[str, dict[str, Any]] | None = None,
    ) -> None:
        super().__init__(host, port)
        self.models = set(DEFAULT_MODELS if models is None else models)
        self.aliases = dict(DEFAULT_ALIASES if aliases is None else aliases)
        # extra/overriding fields of a model's Models API object (display_name, created_at, deprecated_at, ...)
        self.model_info = {k: dict(v) for k, v in (model_info or {}).items()}
        self.seed = seed
        self.strict_roles = strict_roles
        self.verbose = verbose
        self.requests: list[RecordedRequest] = []
        self._queue: deque[Reply] = deque()
        self._rules: list[Rule] = []
        self._lock = threading.Lock()
        self._counter = 0

    @property
    def base_url(self) -> str:
        """What to pass as the SDK's ``base_url``: ``http://HOST:PORT``."""
        return f"http://{self.host}:{self.port}"

    # -- scripting -------------------------------------------------------
    def enqueue(self, *replies: Reply) -> None:
        """Add one-shot replies, consumed in order by /v1/messages calls."""
        with self._lock:
            self._queue.extend(replies)

    def add_rule(
        self,
        reply: Reply,
        *,
        model: str | None = None,
        contains: str | None = None,
        match: Callable[[dict[str, Any]], bool] | None = None,
        times: int | None = None,
    ) -> Rule:
        """Add a persistent reply used when the queue is empty and the rule matches."""
        rule = Rule(reply, model=model, contains=contains, match=match, times=times)
        with self._lock:
            self._rules.append(rule)
        return rule

    def add_rules(self, rules: list[Rule]) -> None:
        """Add persistent rules (e.g. from ``read_rules``), tried after those already added."""
        with self._lock:
            self._rules.extend(rules)

    def reset(self) -> None:
        """Forget the scripted replies, the rules and the recorded requests."""
        with self._lock:
            self._queue.clear()
            self._rules.clear()
            self.requests.clear()
            self._counter = 0

    @property
    def message_requests(self) -> list[RecordedRequest]:
        """Requests to POST /v1/messages only."""
        with self._lock:
            return [r for r in self.requests if r.method == "POST" and r.path.split("?")[0] == "/v1/messages"]

    # -- request handling ------------------------------------------------
    def _check_headers(self, headers: Any) -> None:
        if not headers.get("x-api-key") and not (headers.get("authorization") or "").lower().startswith("bearer "):
            raise _ApiError(401, "authentication_error", "x-api-key header is required")
        if not headers.get("anthropic-version"):
            raise _ApiError(400, "invalid_request_error", "anthropic-version: header is required")

    # -- Models API ------------------------------------------------------
    def _model_object(self, model: str) -> dict[str, Any]:
        m = DATED_ID.search(model)
        created = f"{m.group(1)}-{m.group(2)}-{m.group(3)}T00:00:00Z" if m else "1970-01-01T00:00:00Z"
        obj: dict[str, Any] = {"type": "model", "id": model, "display_name": _display_name(model), "created_at": created}
        obj.update(self.model_info.get(model, {}))
        return obj

    def _list_models(self, query: dict[str, list[str]]) -> dict[str, Any]:
        try:
            limit = int((query.get("limit") or ["20"])[0])
        except ValueError:
            raise _ApiError(400, "invalid_request_error", "limit: Input should be a valid integer") from None
        if not 1 <= limit <= 1000:
            raise _ApiError(400, "invalid_request_error", "limit: Input should be between 1 and 1000")
        items = sorted((self._model_object(m) for m in self.models), key=lambda o: (o["created_at"], o["id"]))
        items.reverse()  # newest first, as the real API lists them
        ids = [o["id"] for o in items]
        after, before = (query.get("after_id") or [None])[0], (query.get("before_id") or [None])[0]
        for cursor in (after, before):
            if cursor is not None and cursor not in ids:
                raise _ApiError(400, "invalid_request_error", f"Invalid cursor: {cursor}")
        if before is not None:
            end = ids.index(before)
            page = items[max(0, end - limit) : end]
            has_more = end - limit > 0
        else:
            start = ids.index(after) + 1 if after is not None else 0
            page = items[start : start + limit]
            has_more = start + limit < len(items)
        return {
            "data": page,
            "has_more": has_more,
            "first_id": page[0]["id"] if page else None,
            "last_id": page[-1]["id"] if page else None,
        }

    def _model_info(self, model: str) -> dict[str, Any]:
        if model in self.models:
            return self._model_object(model)
        if model in self.aliases and self.aliases[model] in self.models:
            return self._model_object(self.aliases[model])
        raise _ApiError(404, "not_found_error", f"model: {model}")

    def _validate(self, headers: Any, raw: bytes, parsed: Any, *, require_max_tokens: bool) -> dict[str, Any]:
        self._check_headers(headers)
        if not isinstance(parsed, dict):
            raise _ApiError(400, "invalid_request_error", "There was an error parsing the body of your request as JSON")
        body = parsed
        required = ("model", "max_tokens", "messages") if require_max_tokens else ("model", "messages")
        for name in required:
            if name not in body:
                raise _ApiError(400, "invalid_request_error", f"{name}: Field required")
        extra = [k for k in body if k not in KNOWN_FIELDS]
        if extra:
            raise _ApiError(400, "invalid_request_error", f"{extra[0]}: Extra inputs are not permitted")
        if not isinstance(body["model"], str) or not body["model"]:
            raise _ApiError(400, "invalid_request_error", "model: Input should be a valid string")
        if require_max_tokens:
            mt = body["max_tokens"]
            if not isinstance(mt, int) or isinstance(mt, bool):
                raise _ApiError(400, "invalid_request_error", "max_tokens: Input should be a valid integer")
            if mt < 1:
                raise _ApiError(400, "invalid_request_error", "max_tokens: Input should be greater than or equal to 1")
        msgs = body["messages"]
        if not isinstance(msgs, list):
            raise _ApiError(400, "invalid_request_error", "messages: Input should be a valid list")
        if not msgs:
            raise _ApiError(400, "invalid_request_error", "messages: at least one message is required")
        prev = None
        for i, m in enumerate(msgs):
            if not isinstance(m, dict):
                raise _ApiError(400, "invalid_request_error", f"messages.{i}: Input should be a valid dictionary")
            role = m.get("role")
            if role not in ("user", "assistant"):
                raise _ApiError(
                    400, "invalid_request_error", f"messages.{i}.role: Input should be 'user' or 'assistant'"
                )
            if "content" not in m:
                raise _ApiError(400, "invalid_request_error", f"messages.{i}.content: Field required")
            if self.strict_roles:
                if i == 0 and role != "user":
                    raise _ApiError(400, "invalid_request_error", 'messages: first message must use the "user" role')
                if role == prev:
                    raise _ApiError(
                        400,
                        "invalid_request_error",
                        'messages: roles must alternate between "user" and "assistant", '
                        f'but found multiple "{role}" roles in a row',
                    )
            prev = role
        for name in ("temperature", "top_p"):
            v = body.get(name)
            if v is not None and (not isinstance(v, (int, float)) or isinstance(v, bool) or not 0 <= v <= 1):
                raise _ApiError(400, "invalid_request_error", f"{name}: Input should be between 0 and 1")
        return body

    def _resolve_model(self, model: str) -> str:
        if model in self.models:
            return model
        if model in self.aliases and self.aliases[model] in self.models:
            return self.aliases[model]
        raise _ApiError(404, "not_found_error", f"model: {model}")

    def _next_reply(self, body: dict[str, Any], resolved: str) -> Reply | None:
        with self._lock:
            self._counter += 1
            if self._queue:
                return self._queue.popleft()
            for rule in self._rules:
                if rule.matches(body, resolved):
                    if rule.times is not None:
                        rule.times -= 1
                    return rule.reply
        return None

    def _default_text(self, body: dict[str, Any], counter: int) -> str:
        prompt = _last_user_text(body)
        digest = hashlib.sha256(prompt.encode()).hexdigest()[:12]
        # temperature 0 asks for determinism: vary only with the seed, not the call.
        salt = "" if body.get("temperature") == 0 else f":{counter}"
        rng = random.Random(f"{self.seed}:{digest}{salt}")
        openers = ["Sure.", "Certainly.", "Happy to help.", "Here is an answer.", "Of course."]
        closers = ["Hope that helps.", "Let me know if you need more.", "That is the gist.", ""]
        snippet = " ".join(prompt.split())[:80]
        variant = rng.randrange(1000)
        parts = [
            FAKE_PREFIX,
            rng.choice(openers),
            f'You asked: "{snippet}".',
            rng.choice(closers),
            f"(variant {variant})",
        ]
        return " ".join(p for p in parts if p)

    def _handle_messages(self, handler: _Handler, body: dict[str, Any]) -> None:
        resolved = self._resolve_model(body["model"])
        reply = self._next_reply(body, resolved)
        with self._lock:
            counter = self._counter
        reply = reply or Reply()
        if reply.delay > 0 and self._stopping.wait(reply.delay):
            # Shutting down mid-delay: drop the connection so the client fails now, not at its timeout.
            handler.close_connection = True
            return
        if reply.status != 200:
            raise _ApiError(
                reply.status,
                reply.error_type or _STATUS_ERROR_TYPES.get(reply.status, "api_error"),
                reply.error_message or "Scripted error",
                reply.headers,
            )
        if reply.content is not None:
            content = reply.content
            out_text = "".join(b.get("text", "") for b in content if b.get("type") == "text")
        else:
            out_text = reply.text if reply.text is not None else self._default_text(body, counter)
            content = [{"type": "text", "text": out_text}] if out_text else []
        message: dict[str, Any] = {
            "id": "msg_fake_" + uuid.uuid4().hex[:24],
            "type": "message",
            "role": "assistant",
            "model": reply.model or resolved,
            "content": content,
            "stop_reason": reply.stop_reason,
            "stop_sequence": None,
            "usage": {
                "input_tokens": reply.input_tokens
                if reply.input_tokens is not None
                else _estimate_tokens(json.dumps(body.get("messages")) + str(body.get("system") or "")),
                "output_tokens": reply.output_tokens if reply.output_tokens is not None else _estimate_tokens(out_text),
            },
        }
        for name in ("cache_creation_input_tokens", "cache_read_input_tokens"):
            if getattr(reply, name) is not None:
                message["usage"][name] = getattr(reply, name)
        if reply.stop_details is not None:
            message["stop_details"] = reply.stop_details
        if body.get("stream") is True:
            handler._send_sse(message)
        else:
            handler._send_json(200, message, reply.headers)



if __name__ == "__main__":
    from tracelens.testing.fake_anthropic_cli import main

    raise SystemExit(main())
