"""A local, scriptable fake of the OpenAI Chat Completions API.

Contract:

* ``FakeOpenAIServer`` is a context manager that serves on 127.0.0.1 (an
  ephemeral port unless one is given) from a background
  ``ThreadingHTTPServer``. ``.base_url`` (ending in ``/v1``) is what to pass
  to the ``openai`` SDK's ``base_url``; ``.requests`` lists every request
  received as ``RecordedRequest`` (method, path, lower-cased headers, exact
  body bytes and parsed JSON), in arrival order.
* ``POST /v1/chat/completions`` validates like the real API: a bearer token
  (401 in the OpenAI error shape: no ``Authorization: Bearer`` header gets
  the "You didn't provide an API key" error with ``code`` null; when the
  server was given ``api_key=``, any other key gets ``invalid_api_key``
  naming the key masked as the real API does), a JSON object body with ``model`` and a
  non-empty ``messages`` list of known roles (400
  ``invalid_request_error``), and a known model (404 ``model_not_found``).
  Aliases resolve to snapshots and the response reports the snapshot, as the
  real API does. The response carries ``system_fingerprint`` and ``usage``
  with ``prompt_tokens_details.cached_tokens`` and
  ``completion_tokens_details``.
* Deterministic answers derived from the request: the text starts with
  ``[tracelens fake server]`` and quotes the last user text; ``n`` choices are
  returned when asked. When the request offers ``tools`` (and ``tool_choice``
  is not ``none``) and the last message is not a tool result, the answer is
  a call of the chosen (else the first) tool with arguments built from its
  JSON schema: ``content`` null, ``finish_reason`` ``tool_calls``. A
  ``max_tokens``/``max_completion_tokens`` smaller than the answer truncates
  it with ``finish_reason`` ``length``.
* Prompt caching as the real API reports it: a prompt of at least 1024
  tokens whose leading messages repeat an earlier request's reports the
  shared prefix, in 128-token steps, as ``cached_tokens``.
* ``stream: true`` sends ``chat.completion.chunk`` SSE events (role chunk,
  content or tool-call argument deltas, a finish chunk) ending ``data:
  [DONE]``; ``stream_options.include_usage`` adds the usage chunk (empty
  ``choices``) before ``[DONE]`` and ``usage: null`` on every other chunk.
* Scripted behaviour: ``enqueue`` adds one-shot ``Reply`` objects consumed in
  order; ``add_rule`` adds persistent replies chosen by model / prompt
  substring / predicate. A marker in the last user text scripts one call
  without touching the server: ``[[fake:status=429]]`` (any 4xx/5xx status:
  the real error body for it), ``[[fake:cached=N]]`` (report N cached
  tokens), ``[[fake:finish=length]]``.
* ``GET /v1/models`` and ``GET /v1/models/{id}`` list the known models as the
  Models API does.
* Every response carries ``x-tracelens-fake: 1`` and an ``x-request-id``
  header; model ids stay real.

Run standalone with ``python -m tracelens.testing.fake_openai --port N``.
This module is test tooling: it imports only the standard library.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import math
import random
import re
import sys
import threading
import time
import uuid
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler
from typing import Any
from urllib.parse import unquote

from tracelens.testing.localserver import LocalServer, OwnedServer, RecordedRequest

FAKE_HEADER = "x-tracelens-fake"
FAKE_PREFIX = "[tracelens fake server]"

# Snapshots the fake knows about, with the creation time the Models API reports.
DEFAULT_MODELS: dict[str, int] = {
    "gpt-4o-2024-08-06": 1722814719,
    "gpt-4o-2024-11-20": 1731975040,
    "gpt-4o-mini-2024-07-18": 1721172717,
    "gpt-4.1-2025-04-14": 1744316542,
    "gpt-4.1-mini-2025-04-14": 1744318173,
    "gpt-4.1-nano-2025-04-14": 1744321025,
    "gpt-5-2025-08-07": 1754425777,
    "gpt-5-mini-2025-08-07": 1754425867,
    "o3-mini-2025-01-31": 1737146383,
}

DEFAULT_ALIASES: dict[str, str] = {
    "gpt-4o": "gpt-4o-2024-08-06",
    "gpt-4o-mini": "gpt-4o-mini-2024-07-18",
    "gpt-4.1": "gpt-4.1-2025-04-14",
    "gpt-4.1-mini": "gpt-4.1-mini-2025-04-14",
    "gpt-4.1-nano": "gpt-4.1-nano-2025-04-14",
    "gpt-5": "gpt-5-2025-08-07",
    "gpt-5-mini": "gpt-5-mini-2025-08-07",
    "o3-mini": "o3-mini-2025-01-31",
}

ROLES = frozenset({"system", "developer", "user", "assistant", "tool", "function"})

# status -> (error type, error code) as the real API spells them
_STATUS_ERRORS: dict[int, tuple[str, str | None]] = {
    400: ("invalid_request_error", None),
    401: ("invalid_request_error", "invalid_api_key"),
    403: ("invalid_request_error", "unsupported_country_region_territory"),
    404: ("invalid_request_error", "model_not_found"),
    409: ("invalid_request_error", None),
    422: ("invalid_request_error", None),
    429: ("requests", "rate_limit_exceeded"),
    500: ("server_error", None),
    503: ("server_error", None),
}
_STATUS_MESSAGES = {
    429: "Rate limit reached for requests. Please try again in 1s.",
    500: "The server had an error while processing your request. Sorry about that!",
    503: "The engine is currently overloaded, please try again later.",
}

_MARKER = re.compile(r"\[\[fake:(status|cached|finish)=([A-Za-z0-9_]+)\]\]")
_CACHE_MIN = 1024  # the real API caches prompts of at least this many tokens ...
_CACHE_STEP = 128  # ... and reports hits in steps of this many


@dataclass
class Reply:
    """One scripted behaviour.

    ``status == 200`` produces a completion: ``tool_calls`` (a list of
    ``{"name", "arguments"}``, arguments a dict or JSON text) make a tool-call
    answer, else ``text`` (None: the default echo). Token counts default to
    estimates; ``cached_tokens`` to the cache rule. Any other status produces
    the real API's error body. ``delay`` seconds are waited before anything is
    sent (for client timeouts).
    """

    text: str | None = None
    tool_calls: list[dict[str, Any]] | None = None
    finish_reason: str | None = None
    prompt_tokens: int | None = None
    completion_tokens: int | None = None
    cached_tokens: int | None = None
    reasoning_tokens: int = 0
    model: str | None = None
    system_fingerprint: str | None = None
    refusal: str | None = None
    status: int = 200
    error_type: str | None = None
    error_code: str | None = None
    error_message: str | None = None
    headers: dict[str, str] = field(default_factory=dict)
    delay: float = 0.0

    @classmethod
    def message(cls, text: str, **kw: Any) -> Reply:
        """A 200 completion answering ``text`` (other fields as keywords)."""
        return cls(text=text, **kw)

    @classmethod
    def tool_call(cls, name: str, arguments: dict[str, Any] | str, **kw: Any) -> Reply:
        """A 200 completion calling tool ``name`` with ``arguments`` (a dict or JSON text)."""
        return cls(tool_calls=[{"name": name, "arguments": arguments}], **kw)

    @classmethod
    def error(
        cls, status: int, error_type: str | None = None, message: str | None = None, code: str | None = None,
        retry_after: float | None = None,
    ) -> Reply:
        """An error reply with the real API's error body for ``status``.

        ``error_type``, ``code`` and ``message`` default to what the real API sends for that status; ``retry_after``
        (seconds) adds a ``retry-after`` header.
        """
        headers = {}
        if retry_after is not None:
            headers["retry-after"] = f"{retry_after:g}"
        default_type, default_code = _STATUS_ERRORS.get(status, ("server_error", None))
        return cls(
            status=status,
            error_type=error_type or default_type,
            error_code=code if code is not None else default_code,
            error_message=message or _STATUS_MESSAGES.get(status, "Scripted error from the fake server"),
            headers=headers,
        )

    @classmethod
    def rate_limited(cls, retry_after: float | None = 1) -> Reply:
        """A 429 ``rate_limit_exceeded`` reply; ``retry_after`` seconds in its header (None: no header)."""
        return cls.error(429, retry_after=retry_after)

    @classmethod
    def server_error(cls) -> Reply:
        """A 500 reply in the real API's error shape."""
        return cls.error(500)

    @classmethod
    def slow(cls, delay: float, text: str | None = None) -> Reply:
        """A completion sent after waiting ``delay`` seconds (``text`` None: the default echo)."""
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
        """True when this rule applies to request ``body`` (model resolved to ``resolved``) and has uses left."""
        if self.times is not None and self.times <= 0:
            return False
        if self.model is not None and self.model not in (body.get("model"), resolved):
            return False
        if self.contains is not None and self.contains not in last_user_text(body):
            return False
        return self.match is None or bool(self.match(body))


class _ApiError(Exception):
    def __init__(self, status: int, error_type: str, message: str, code: str | None = None,
                 param: str | None = None, headers: dict[str, str] | None = None):
        super().__init__(message)
        self.status = status
        self.error_type = error_type
        self.message = message
        self.code = code
        self.param = param
        self.headers = headers or {}


def content_text(content: Any) -> str:
    """Text of a Chat Completions message content (a string or a list of parts)."""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return "\n".join(str(p.get("text", "")) for p in content if isinstance(p, dict) and p.get("type") == "text")
    return ""


def last_user_text(body: dict[str, Any]) -> str:
    """Text of the last ``user`` message of a Chat Completions request body; "" when there is none."""
    for msg in reversed(body.get("messages") or []):
        if isinstance(msg, dict) and msg.get("role") == "user":
            return content_text(msg.get("content"))
    return ""


def estimate_tokens(text: str) -> int:
    """Rough token count of ``text``: one per 4 characters, at least 1."""
    return max(1, math.ceil(len(text) / 4))


def _prompt_tokens(body: dict[str, Any]) -> int:
    return estimate_tokens(json.dumps(body.get("messages")) + json.dumps(body.get("tools") or ""))


def _example_value(schema: Any, name: str) -> Any:
    """A deterministic value that satisfies a (simple) JSON schema."""
    if not isinstance(schema, dict):
        return name
    if "enum" in schema and schema["enum"]:
        return schema["enum"][0]
    kind = schema.get("type")
    if isinstance(kind, list):
        kind = next((k for k in kind if k != "null"), "string")
    if kind == "object":
        props = schema.get("properties") or {}
        required = schema.get("required") or list(props)
        return {k: _example_value(props.get(k), k) for k in required}
    if kind == "array":
        return [_example_value(schema.get("items"), name)]
    if kind == "integer":
        return 1
    if kind == "number":
        return 1.5
    if kind == "boolean":
        return True
    return f"example {name}"


def _call_id(body: dict[str, Any], name: str) -> str:
    digest = hashlib.sha256((json.dumps(body.get("messages"), sort_keys=True) + name).encode()).hexdigest()
    return "call_" + digest[:24]


class _Handler(BaseHTTPRequestHandler):
    server: OwnedServer  # type: ignore[assignment]
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - stdlib signature
        """Write the server's log message on stderr when it is verbose (silent otherwise)."""
        if self.server.owner.verbose:
            sys.stderr.write("fake_openai: " + (format % args) + "\n")

    def do_GET(self) -> None:  # noqa: N802 - stdlib naming
        """Record the request; serve ``GET /v1/models`` and ``/v1/models/{id}`` (auth checked; else 404)."""
        self._record(b"", None)
        owner = self.server.owner
        path = self.path.partition("?")[0]
        try:
            owner._check_auth(self.headers)
            if path == "/v1/models":
                self._send_json(200, {"object": "list", "data": [owner._model_object(m) for m in sorted(owner.models)]})
            elif path.startswith("/v1/models/"):
                self._send_json(200, owner._model_object(owner._resolve_model(unquote(path[len("/v1/models/"):]))))
            else:
                raise _ApiError(404, "invalid_request_error", f"Invalid URL (GET {path})")
        except _ApiError as e:
            self._send_error(e)

    def do_POST(self) -> None:  # noqa: N802 - stdlib naming
        """Record the request; serve ``POST /v1/chat/completions`` (auth and body validated; else 404)."""
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
                if path == "/v1/chat/completions":
                    owner._check_auth(self.headers)
                    owner._handle_chat(self, owner._validate(parsed))
                else:
                    raise _ApiError(404, "invalid_request_error", f"Invalid URL (POST {path})")
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
        self.send_header("x-request-id", "req_" + uuid.uuid4().hex)
        self.send_header("openai-processing-ms", "1")
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
        body = {"error": {"message": e.message, "type": e.error_type, "param": e.param, "code": e.code}}
        self._send_json(e.status, body, e.headers)

    def _send_sse(self, completion: dict[str, Any], include_usage: bool) -> None:
        self.send_response(200)
        self.send_header("content-type", "text/event-stream; charset=utf-8")
        self.send_header("cache-control", "no-cache")
        # No content-length on a stream: closing the connection ends the body.
        self.send_header("connection", "close")
        self._common_headers()
        self.end_headers()
        self.close_connection = True
        base = {k: completion[k] for k in ("id", "created", "model", "system_fingerprint")}
        base["object"] = "chat.completion.chunk"

        def chunk(choices: list[dict[str, Any]], **extra: Any) -> None:
            obj = dict(base, choices=choices, **extra)
            if include_usage and "usage" not in obj:
                obj["usage"] = None
            self.wfile.write(f"data: {json.dumps(obj)}\n\n".encode())
            self.wfile.flush()

        for choice in completion["choices"]:
            i, msg = choice["index"], choice["message"]
            delta0: dict[str, Any] = {"role": "assistant", "content": "" if msg["content"] is not None else None}
            if msg.get("refusal") is not None:
                delta0["refusal"] = None
            chunk([{"index": i, "delta": delta0, "logprobs": None, "finish_reason": None}])
            text = msg["content"] or ""
            for piece in [text[j : j + 16] for j in range(0, len(text), 16)]:
                chunk([{"index": i, "delta": {"content": piece}, "logprobs": None, "finish_reason": None}])
            for k, call in enumerate(msg.get("tool_calls") or []):
                head = {"index": k, "id": call["id"], "type": "function",
                        "function": {"name": call["function"]["name"], "arguments": ""}}
                chunk([{"index": i, "delta": {"tool_calls": [head]}, "logprobs": None, "finish_reason": None}])
                args = call["function"]["arguments"]
                for piece in [args[j : j + 16] for j in range(0, len(args), 16)]:
                    d = {"tool_calls": [{"index": k, "function": {"arguments": piece}}]}
                    chunk([{"index": i, "delta": d, "logprobs": None, "finish_reason": None}])
            chunk([{"index": i, "delta": {}, "logprobs": None, "finish_reason": choice["finish_reason"]}])
        if include_usage:
            chunk([], usage=completion["usage"])
        self.wfile.write(b"data: [DONE]\n\n")
        self.wfile.flush()


class FakeOpenAIServer(LocalServer):
    """Scriptable fake Chat Completions API on 127.0.0.1; use as a context manager."""

    handler = _Handler
    thread_name = "fake-openai"

    def __init__(
        self,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        models: dict[str, int] | list[str] | None = None,
        aliases: dict[str, str] | None = None,
        seed: int = 0,
        verbose: bool = False,
        api_key: str | None = None,
    ) -> None:
        super().__init__(host, port)
        self.api_key = api_key  # None: any non-empty bearer token is accepted
        if models is None:
            models = DEFAULT_MODELS
        self.models: dict[str, int] = dict(models) if isinstance(models, dict) else dict.fromkeys(models, 1700000000)
        self.aliases = dict(DEFAULT_ALIASES if aliases is None else aliases)
        self.seed = seed
        self.verbose = verbose
        self.requests: list[RecordedRequest] = []
        self._queue: deque[Reply] = deque()
        self._rules: list[Rule] = []
        self._prompts: list[list[str]] = []  # serialised messages of earlier requests, for the cache rule
        self._lock = threading.Lock()
        self._counter = 0

    @property
    def root_url(self) -> str:
        """``http://host:port``, without the ``/v1`` API prefix."""
        return f"http://{self.host}:{self.port}"

    @property
    def base_url(self) -> str:
        """What the ``openai`` SDK takes as ``base_url`` (the API root, ``/v1`` included)."""
        return self.root_url + "/v1"

    # -- scripting -------------------------------------------------------
    def enqueue(self, *replies: Reply) -> None:
        """Add one-shot replies, consumed in order by chat completion calls."""
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

    def reset(self) -> None:
        """Forget scripted replies, rules, recorded prompts and requests, and restart the id counter."""
        with self._lock:
            self._queue.clear()
            self._rules.clear()
            self._prompts.clear()
            self.requests.clear()
            self._counter = 0

    @property
    def chat_requests(self) -> list[RecordedRequest]:
        """Requests to POST /v1/chat/completions only."""
        with self._lock:
            return [r for r in self.requests if r.method == "POST" and r.path.split("?")[0] == "/v1/chat/completions"]

    # -- request handling ------------------------------------------------
    def _check_auth(self, headers: Any) -> None:
        auth = headers.get("authorization") or ""
        if not auth.lower().startswith("bearer ") or not auth[7:].strip():
            raise _ApiError(401, "invalid_request_error",
                            "You didn't provide an API key. You need to provide your API key in an Authorization "
                            "header using Bearer auth (i.e. Authorization: Bearer YOUR_KEY).", code=None)
        key = auth[7:].strip()
        if self.api_key is not None and key != self.api_key:
            # the real API echoes only the key's ends, so a log of the error never holds the whole key
            masked = key[:3] + "*" * max(len(key) - 7, 0) + key[-4:] if len(key) > 8 else "*" * len(key)
            raise _ApiError(401, "invalid_request_error",
                            f"Incorrect API key provided: {masked}. You can find your API key at "
                            "https://platform.openai.com/account/api-keys.", code="invalid_api_key")

    def _model_object(self, model: str) -> dict[str, Any]:
        return {"id": model, "object": "model", "created": self.models.get(model, 0), "owned_by": "system"}

    def _resolve_model(self, model: str) -> str:
        if model in self.models:
            return model
        if model in self.aliases and self.aliases[model] in self.models:
            return self.aliases[model]
        raise _ApiError(404, "invalid_request_error",
                        f"The model `{model}` does not exist or you do not have access to it.", code="model_not_found")

    def _validate(self, parsed: Any) -> dict[str, Any]:
        if not isinstance(parsed, dict):
            raise _ApiError(400, "invalid_request_error", "We could not parse the JSON body of your request.")
        for name in ("model", "messages"):
            if name not in parsed:
                raise _ApiError(400, "invalid_request_error", f"Missing required parameter: '{name}'.", param=name)
        if not isinstance(parsed["model"], str) or not parsed["model"]:
            raise _ApiError(400, "invalid_request_error", "Invalid type for 'model': expected a string.", param="model")
        msgs = parsed["messages"]
        if not isinstance(msgs, list) or not msgs:
            raise _ApiError(400, "invalid_request_error", "Invalid 'messages': empty array.", param="messages")
        for i, m in enumerate(msgs):
            if not isinstance(m, dict) or m.get("role") not in ROLES:
                raise _ApiError(400, "invalid_request_error", f"Invalid value for 'messages[{i}].role'.",
                                param=f"messages[{i}].role")
            if m["role"] == "tool" and not m.get("tool_call_id"):
                raise _ApiError(400, "invalid_request_error", f"Missing parameter 'messages[{i}].tool_call_id'.",
                                param=f"messages[{i}].tool_call_id")
        n = parsed.get("n", 1)
        if n is not None and (not isinstance(n, int) or isinstance(n, bool) or not 1 <= n <= 128):
            raise _ApiError(400, "invalid_request_error", "Invalid 'n': must be between 1 and 128.", param="n")
        for name, hi in (("temperature", 2), ("top_p", 1)):
            v = parsed.get(name)
            if v is not None and (not isinstance(v, (int, float)) or isinstance(v, bool) or not 0 <= v <= hi):
                raise _ApiError(400, "invalid_request_error", f"Invalid '{name}': must be between 0 and {hi}.",
                                param=name)
        if parsed.get("stream_options") is not None and parsed.get("stream") is not True:
            raise _ApiError(400, "invalid_request_error",
                            "The 'stream_options' parameter is only allowed when 'stream' is enabled.",
                            param="stream_options")
        return parsed

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

    def _cached_tokens(self, body: dict[str, Any], prompt_tokens: int) -> int:
        """Tokens of the longest message prefix shared with an earlier request, as the real API's cache reports."""
        msgs = [json.dumps(m, sort_keys=True) for m in body.get("messages") or []]
        tools = json.dumps(body.get("tools") or "", sort_keys=True)
        msgs.insert(0, tools)
        with self._lock:
            best = 0
            for earlier in self._prompts:
                k = 0
                while k < min(len(msgs), len(earlier)) and msgs[k] == earlier[k]:
                    k += 1
                best = max(best, sum(len(s) for s in msgs[:k]))
            self._prompts.append(msgs)
        if prompt_tokens < _CACHE_MIN:
            return 0
        shared = min(prompt_tokens, estimate_tokens("x" * best) if best else 0)
        return shared // _CACHE_STEP * _CACHE_STEP if shared >= _CACHE_MIN else 0

    def _default_text(self, body: dict[str, Any], index: int) -> str:
        prompt = _MARKER.sub("", last_user_text(body))
        digest = hashlib.sha256(prompt.encode()).hexdigest()[:12]
        rng = random.Random(f"{self.seed}:{digest}:{index}:{body.get('model')}")
        openers = ["Sure.", "Certainly.", "Happy to help.", "Here is an answer.", "Of course."]
        closers = ["Hope that helps.", "Let me know if you need more.", "That is the gist.", ""]
        snippet = " ".join(prompt.split())[:80]
        parts = [FAKE_PREFIX, rng.choice(openers), f'You asked: "{snippet}".', rng.choice(closers),
                 f"(variant {rng.randrange(1000)})"]
        return " ".join(p for p in parts if p)

    def _default_tool_calls(self, body: dict[str, Any]) -> list[dict[str, Any]] | None:
        tools = [t for t in body.get("tools") or [] if isinstance(t, dict) and t.get("type") == "function"]
        choice = body.get("tool_choice")
        msgs = body.get("messages") or []
        if not tools or choice == "none" or (msgs and msgs[-1].get("role") in ("tool", "function")):
            return None
        chosen = tools[0]
        if isinstance(choice, dict) and isinstance(choice.get("function"), dict):
            chosen = next((t for t in tools if t["function"].get("name") == choice["function"].get("name")), chosen)
        fn = chosen.get("function") or {}
        args = _example_value(fn.get("parameters") or {"type": "object"}, fn.get("name", "arg"))
        return [{"name": fn.get("name"), "arguments": args}]

    def _handle_chat(self, handler: _Handler, body: dict[str, Any]) -> None:
        prompt = last_user_text(body)
        markers = dict(_MARKER.findall(prompt))
        if "status" in markers and markers["status"].isdigit() and int(markers["status"]) >= 400:
            reply: Reply | None = Reply.error(int(markers["status"]),
                                              retry_after=0 if int(markers["status"]) == 429 else None)
        else:
            resolved = self._resolve_model(body["model"])
            reply = self._next_reply(body, resolved)
        reply = reply or Reply()
        if reply.delay > 0 and self._stopping.wait(reply.delay):
            handler.close_connection = True  # shutting down mid-delay: fail the client now, not at its timeout
            return
        if reply.status != 200:
            default_type, default_code = _STATUS_ERRORS.get(reply.status, ("server_error", None))
            raise _ApiError(reply.status, reply.error_type or default_type,
                            reply.error_message or "Scripted error from the fake server",
                            code=reply.error_code if reply.error_code is not None else default_code,
                            headers=reply.headers)
        resolved = self._resolve_model(body["model"])
        prompt_tokens = reply.prompt_tokens if reply.prompt_tokens is not None else _prompt_tokens(body)
        cached = self._cached_tokens(body, prompt_tokens)
        if reply.cached_tokens is not None:
            cached = reply.cached_tokens
        if "cached" in markers and markers["cached"].isdigit():
            cached = min(int(markers["cached"]), prompt_tokens)
        limit = body.get("max_completion_tokens") or body.get("max_tokens")
        choices = []
        completion_tokens = 0
        calls_spec = reply.tool_calls if reply.tool_calls is not None else (
            None if reply.text is not None else self._default_tool_calls(body))
        for i in range(body.get("n") or 1):
            finish = reply.finish_reason
            tool_calls = None
            if calls_spec:
                text = None
                tool_calls = []
                for spec in calls_spec:
                    args = spec.get("arguments", {})
                    args_text = args if isinstance(args, str) else json.dumps(args)
                    tool_calls.append({"id": spec.get("id") or _call_id(body, f"{spec.get('name')}:{i}"),
                                       "type": "function",
                                       "function": {"name": spec.get("name"), "arguments": args_text}})
                tokens = estimate_tokens(json.dumps(tool_calls))
                finish = finish or "tool_calls"
            else:
                text = reply.text if reply.text is not None else self._default_text(body, i)
                tokens = reply.completion_tokens if reply.completion_tokens is not None else estimate_tokens(text)
                if isinstance(limit, int) and tokens > limit:
                    text, tokens, finish = text[: limit * 4], limit, "length"
                finish = finish or markers.get("finish") or "stop"
            completion_tokens += tokens
            message: dict[str, Any] = {"role": "assistant", "content": text, "refusal": reply.refusal,
                                       "annotations": []}
            if tool_calls:
                message["tool_calls"] = tool_calls
            choices.append({"index": i, "message": message, "logprobs": None, "finish_reason": finish})
        if reply.completion_tokens is not None:
            completion_tokens = reply.completion_tokens
        model = reply.model or resolved
        fingerprint = reply.system_fingerprint or "fp_" + hashlib.sha256(model.encode()).hexdigest()[:10]
        completion = {
            "id": "chatcmpl-" + uuid.uuid4().hex[:29],
            "object": "chat.completion",
            "created": int(time.time()),
            "model": model,
            "choices": choices,
            "usage": {
                "prompt_tokens": prompt_tokens,
                "completion_tokens": completion_tokens,
                "total_tokens": prompt_tokens + completion_tokens,
                "prompt_tokens_details": {"cached_tokens": cached, "audio_tokens": 0},
                "completion_tokens_details": {"reasoning_tokens": reply.reasoning_tokens, "audio_tokens": 0,
                                              "accepted_prediction_tokens": 0, "rejected_prediction_tokens": 0},
            },
            "service_tier": body.get("service_tier") or "default",
            "system_fingerprint": fingerprint,
        }
        if body.get("stream") is True:
            include_usage = bool((body.get("stream_options") or {}).get("include_usage"))
            handler._send_sse(completion, include_usage)
        else:
            handler._send_json(200, completion, reply.headers)


def _reply_from_dict(d: dict[str, Any]) -> Reply:
    return Reply(**d)


def main(argv: list[str] | None = None) -> int:
    """Command-line entry point: serve until Ctrl-C, printing the base URL on stdout; returns 0."""
    ap = argparse.ArgumentParser(prog="python -m tracelens.testing.fake_openai", description=__doc__.split("\n")[0])
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--port", type=int, default=0, help="0 picks a free port")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--script", help="JSON file: a list of Reply fields objects, served in order before the default")
    ap.add_argument("--verbose", action="store_true")
    args = ap.parse_args(argv)
    server = FakeOpenAIServer(host=args.host, port=args.port, seed=args.seed, verbose=args.verbose)
    if args.script:
        with open(args.script, encoding="utf-8") as fh:
            server.enqueue(*(_reply_from_dict(d) for d in json.load(fh)))
    server.start()
    print(server.base_url, flush=True)
    print(f"fake OpenAI Chat Completions API listening on {server.base_url} (Ctrl-C to stop)", file=sys.stderr,
          flush=True)
    try:
        threading.Event().wait()
    except KeyboardInterrupt:
        pass
    finally:
        server.stop()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
