"""Send replay plans to the Messages API with the official ``anthropic`` SDK.

Contract:

* ``ReplayClient.run(plans)`` sends each plan's exact body bytes ``plan.n``
  times to ``POST /v1/messages`` (via the SDK's ``client.post`` with raw
  ``content``, so the body on the wire is exactly ``plan.body``) with at most
  ``concurrency`` requests in flight, and returns a ``ReplayRun``: one
  ``ReplayResult`` per finished replay, ordered by plan then repetition.
  Failed replays are results with ``error`` set; they are never raised.
* Retries are ours, not the SDK's (``max_retries=0``): 408/409/429/5xx/529 and
  connection errors are retried up to ``max_attempts`` with exponential
  backoff and full jitter, honouring ``retry-after-ms`` / ``retry-after``
  when the server sends them (a retry-after above ``max_retry_after`` is not
  waited out: the replay fails with a message saying so). Timeouts are not
  retried: the request may have been processed and billed. These rules, and
  the deadline below, live in ``replay/transport.py`` (eval targets share them).
* ``timeout`` is a total deadline per attempt: connecting, sending, the
  response headers and the whole body must be done within it, however
  slowly a server trickles bytes (each attempt runs in a helper thread that
  reads the body in chunks and checks the clock; the caller stops waiting at
  the deadline and closes the response). A response that is not a JSON
  object, or whose fields have the wrong types, is an error result that
  says what was wrong, never an exception.
  ``sleep`` is injectable so tests do not wait.
* Interruption: a KeyboardInterrupt in the calling thread, or the ``cancel``
  event being set, stops scheduling, aborts in-flight requests, and returns
  the results that had finished (``interrupted=True``).
* The API key is read from the environment variable named by
  ``api_key_env`` (default ``ANTHROPIC_API_KEY``) when the first run starts.
  It is passed only to the SDK; it never appears in results, messages,
  reprs or logs (error texts are scrubbed of it as a second line of defence).
* ``base_url``: the argument, else the SDK's ``ANTHROPIC_BASE_URL``, else
  the public API (``destination`` names it before anything is sent, for the
  plans the CLI and the TUI show). ``base_url_is_default`` on each result
  says which.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import queue
import random
import threading
import time
import uuid
from collections.abc import Callable, Iterable, Mapping
from dataclasses import asdict, dataclass, field
from typing import Any

import anthropic

from tracelens.modelid import parse_model_id
from tracelens.replay.labels import refusal_label
from tracelens.replay.request import DEFAULT_BASE_URL, DEFAULT_KEY_ENV, ReplayError, ReplayPlan
from tracelens.replay.transport import (
    BodyError,
    Cancelled,
    DeadlineExceeded,
    HTTPResponse,
    RetryPolicy,
    is_retryable,
    post_with_deadline,
)


def destination(base_url: str | None = None, env: Mapping[str, str] | None = None) -> str:
    """Where a ``ReplayClient(base_url=..., env=...)`` sends: the argument, else ``$ANTHROPIC_BASE_URL``, else the API."""
    return base_url or (os.environ if env is None else env).get("ANTHROPIC_BASE_URL") or DEFAULT_BASE_URL


@dataclass
class ReplayResult:
    """One replay of one trace (a row of the replays table)."""

    replay_id: str
    trace_id: str
    created_at: dt.datetime
    model_requested: str
    model_returned: str | None = None
    request_id: str | None = None
    response_text: str | None = None
    response_raw: str | None = None
    stop_reason: str | None = None
    refusal: str | None = None
    input_tokens: int | None = None
    output_tokens: int | None = None
    latency_ms: float | None = None
    error: str | None = None
    reconstructed: bool = False
    base_url_is_default: bool = True
    attempts: int = 1
    canary: str | None = None
    canary_run_id: str | None = None

    @property
    def ok(self) -> bool:
        """True when the request got a response (no ``error``)."""
        return self.error is None

    def to_dict(self) -> dict[str, Any]:
        """JSON form, ``created_at`` as ISO 8601."""
        d = asdict(self)
        d["created_at"] = self.created_at.isoformat()
        return d


@dataclass
class ReplayRun:
    """Outcome of ``ReplayClient.run``: finished results, and whether it was cut short."""

    results: list[ReplayResult] = field(default_factory=list)
    interrupted: bool = False
    planned: int = 0

    @property
    def not_run(self) -> int:
        """Planned replays that never finished (after an interruption)."""
        return self.planned - len(self.results)

    def for_trace(self, trace_id: str) -> list[ReplayResult]:
        """The results of one trace, in finishing order."""
        return [r for r in self.results if r.trace_id == trace_id]


def _error_detail(e: anthropic.APIStatusError) -> tuple[str | None, str]:
    body = e.body if isinstance(e.body, dict) else None
    err = body.get("error") if body else None
    if isinstance(err, dict):
        return err.get("type"), str(err.get("message") or "")
    try:
        text = e.response.text
    except Exception:  # noqa: BLE001 - a streaming/closed body has no text; the status is enough
        text = ""
    return None, text[:300]


class _ResponseShapeError(ValueError):
    """A JSON response that is not shaped like a Messages API message (the message says how)."""


def _typed(data: dict, key: str, types: tuple[type, ...], what: str):
    v = data.get(key)
    if v is None:
        return None
    if isinstance(v, bool) and bool not in types or not isinstance(v, types):
        raise _ResponseShapeError(f"{key!r} is {type(v).__name__}, expected {what}")
    return v


def _message_fields(data: Any) -> dict[str, Any]:
    """The fields a replay keeps, from a parsed response; raises _ResponseShapeError on a wrong shape or type."""
    if not isinstance(data, dict):
        raise _ResponseShapeError(f"the body is a JSON {type(data).__name__}, expected an object")
    content = _typed(data, "content", (list,), "a list of content blocks") or []
    parts = []
    for i, b in enumerate(content):
        if not isinstance(b, dict):
            raise _ResponseShapeError(f"content[{i}] is {type(b).__name__}, expected an object")
        if b.get("type") == "text":
            parts.append(_typed(b, "text", (str,), "a string") or "")
    usage = _typed(data, "usage", (dict,), "an object") or {}
    details = data.get("stop_details")
    return {
        "text": "".join(parts),
        "model": _typed(data, "model", (str,), "a string"),
        "stop_reason": _typed(data, "stop_reason", (str,), "a string"),
        "stop_details": details if isinstance(details, dict) else None,
        "input_tokens": _typed(usage, "input_tokens", (int,), "an integer"),
        "output_tokens": _typed(usage, "output_tokens", (int,), "an integer"),
    }


def successor_hint(model: str) -> str:
    """How to pick a replacement for a retired snapshot, naming the same tier when we can."""
    p = parse_model_id(model)
    tier = next((t for t in ("opus", "sonnet", "haiku") if p and t in p.family), None)
    family_hint = ""
    if tier:
        try:
            from tracelens.replay.pricing import builtin_prices

            newer = [k for k in builtin_prices().models if tier in k and k != (p.family if p else None)]
        except Exception:  # noqa: BLE001 - a hint must never break error reporting
            newer = []
        if newer:
            family_hint = f" (e.g. a dated snapshot of {newer[0]})"
    return (
        f"pick a successor snapshot{family_hint} and pass it with --model (or model=); the replay then answers "
        "'what does the successor do with this request' rather than 'does the original model still do that'"
    )


class ReplayClient:
    """Bounded-concurrency replay sender. The API key is resolved at run time and never kept on this object."""

    def __init__(
        self,
        *,
        api_key_env: str = DEFAULT_KEY_ENV,
        base_url: str | None = None,
        concurrency: int = 4,
        timeout: float = 120.0,
        max_attempts: int = 6,
        backoff_base: float = 1.0,
        backoff_max: float = 60.0,
        max_retry_after: float = 300.0,
        sleep: Callable[[float], None] | None = None,
        rng: random.Random | None = None,
        env: Mapping[str, str] | None = None,
    ) -> None:
        if concurrency < 1:
            raise ValueError("concurrency must be >= 1")
        self.api_key_env = api_key_env
        self.base_url = base_url
        self.concurrency = concurrency
        self.timeout = timeout
        # RetryPolicy rejects max_attempts < 1
        self.retry = RetryPolicy(max_attempts, backoff_base, backoff_max, max_retry_after, sleep, rng or random.Random())
        self._env = env

    def __repr__(self) -> str:
        return (
            f"ReplayClient(api_key_env={self.api_key_env!r}, base_url={self.base_url!r}, "
            f"concurrency={self.concurrency}, timeout={self.timeout})"
        )

    # -- setup -----------------------------------------------------------
    def _make_sdk(self) -> anthropic.Anthropic:
        env = os.environ if self._env is None else self._env
        key = env.get(self.api_key_env)
        if not key:
            raise ReplayError(
                f"no API key: the environment variable {self.api_key_env} is not set "
                "(set it, or name another variable with --api-key-env)"
            )
        kwargs: dict[str, Any] = {"api_key": key, "max_retries": 0, "timeout": self.timeout}
        kwargs["base_url"] = destination(self.base_url, env)
        try:
            # Tracing off: the SDK's OpenTelemetry spans could otherwise export prompts to a collector.
            return anthropic.Anthropic(open_telemetry=False, **kwargs)
        except TypeError:  # pragma: no cover - older SDKs have no open_telemetry option
            return anthropic.Anthropic(**kwargs)

    def _scrub(self, text: str) -> str:
        # Re-read rather than keep the key on this object, so no attribute dump can show it.
        key = (os.environ if self._env is None else self._env).get(self.api_key_env)
        if key and key in text:
            text = text.replace(key, "[redacted]")
        return text

    @staticmethod
    def _is_default_base(sdk: anthropic.Anthropic) -> bool:
        return str(sdk.base_url).rstrip("/") == DEFAULT_BASE_URL

    # -- retry policy ------------------------------------------------------
    def retry_delay(self, attempt: int, headers: Mapping[str, str] | None) -> float | None:
        """Seconds to wait before attempt ``attempt + 1``; None when the server asks for longer than we wait."""
        return self.retry.delay(attempt, headers)

    def _wait(self, seconds: float, cancel: threading.Event) -> None:
        self.retry.wait(seconds, cancel)

    # -- one replay --------------------------------------------------------
    def _result(self, plan: ReplayPlan, sdk: anthropic.Anthropic, **kw: Any) -> ReplayResult:
        return ReplayResult(
            replay_id=uuid.uuid4().hex,
            trace_id=plan.trace_id,
            created_at=dt.datetime.now(dt.UTC),
            model_requested=plan.model,
            reconstructed=plan.reconstructed,
            base_url_is_default=self._is_default_base(sdk),
            **kw,
        )

    def _status_message(self, plan: ReplayPlan, e: anthropic.APIStatusError, attempts: int, note: str = "") -> str:
        etype, msg = _error_detail(e)
        status = e.status_code
        head = f"HTTP {status}" + (f" {etype}" if etype else "") + (f": {msg}" if msg else "")
        if status == 404:
            return (
                f"model {plan.model} was not found ({head}). The snapshot may be retired or not enabled for this "
                f"key; {successor_hint(plan.model)}"
            )
        if status == 401:
            return f"authentication failed ({head}); check the key in ${self.api_key_env}"
        if is_retryable(status):
            return f"{head} (gave up after {attempts} attempt{'s' if attempts != 1 else ''}{note})"
        return head

    def replay_one(self, plan: ReplayPlan, sdk: anthropic.Anthropic, cancel: threading.Event) -> ReplayResult:
        """Send one plan once, retrying as the module docstring says; a failure is a result with ``error``."""
        attempt = 0
        while True:
            if cancel.is_set():
                raise Cancelled
            attempt += 1
            t0 = time.monotonic()
            try:
                resp, body = self._send(plan, sdk, cancel)
            except anthropic.APIStatusError as e:
                if cancel.is_set():
                    raise Cancelled from None
                retryable = is_retryable(e.status_code)
                if retryable and attempt < self.retry.max_attempts:
                    delay = self.retry_delay(attempt, e.response.headers)
                    if delay is not None:
                        self._wait(delay, cancel)
                        continue
                    note = f"; server asked to retry after more than {self.retry.max_retry_after:g}s"
                    return self._result(
                        plan, sdk, error=self._scrub(self._status_message(plan, e, attempt, note)), attempts=attempt
                    )
                return self._result(
                    plan, sdk, error=self._scrub(self._status_message(plan, e, attempt)), attempts=attempt
                )
            except (anthropic.APITimeoutError, DeadlineExceeded):
                if cancel.is_set():
                    raise Cancelled from None
                return self._result(
                    plan,
                    sdk,
                    error=f"timed out after {self.timeout:g}s (the deadline covers the whole request and response; "
                          "not retried: the request may have been processed and billed)",
                    attempts=attempt,
                )
            except BodyError as e:
                if cancel.is_set():
                    raise Cancelled from None
                return self._result(
                    plan, sdk, error=self._scrub(f"the response body could not be read: {e}"), attempts=attempt
                )
            except anthropic.APIConnectionError as e:
                if cancel.is_set():
                    raise Cancelled from None
                if attempt < self.retry.max_attempts:
                    self._wait(self.retry_delay(attempt, None) or 0.0, cancel)
                    continue
                cause = e.__cause__ or e
                return self._result(
                    plan,
                    sdk,
                    error=self._scrub(f"connection error after {attempt} attempts: {type(cause).__name__}: {cause}"),
                    attempts=attempt,
                )
            latency_ms = (time.monotonic() - t0) * 1000.0
            return self._parse(plan, sdk, resp, body, latency_ms, attempt)

    def _send(self, plan: ReplayPlan, sdk: anthropic.Anthropic, cancel: threading.Event) -> tuple[Any, bytes]:
        """POST the body and read the whole response, all within ``self.timeout`` seconds (``post_with_deadline``:
        httpx's timeouts bound each read, not the total, so a server trickling bytes would never trip them)."""
        return post_with_deadline(
            lambda: sdk.post(
                "/v1/messages",
                cast_to=HTTPResponse,
                content=plan.body,
                options={"headers": {"content-type": "application/json"}},
                stream=True,
            ),
            self.timeout,
            cancel,
        )

    def _parse(
        self, plan: ReplayPlan, sdk: anthropic.Anthropic, resp: Any, body: bytes, latency_ms: float, attempt: int
    ) -> ReplayResult:
        raw = body.decode(resp.encoding or "utf-8", "replace")
        request_id = resp.headers.get("request-id")

        def failed(error: str) -> ReplayResult:
            return self._result(plan, sdk, response_raw=raw, request_id=request_id, latency_ms=latency_ms,
                                attempts=attempt, error=error)

        try:
            data = json.loads(raw)
        except ValueError:
            return failed(f"response is not JSON (HTTP {resp.status_code})")
        try:
            fields = _message_fields(data)
        except _ResponseShapeError as e:
            return failed(f"response is not a Messages API message (HTTP {resp.status_code}): {e}")
        text = fields["text"]
        return self._result(
            plan,
            sdk,
            model_returned=fields["model"],
            request_id=request_id,
            response_text=text,
            response_raw=raw,
            stop_reason=fields["stop_reason"],
            refusal=refusal_label(text, fields["stop_reason"], fields["stop_details"]),
            input_tokens=fields["input_tokens"],
            output_tokens=fields["output_tokens"],
            latency_ms=latency_ms,
            attempts=attempt,
        )

    # -- many replays --------------------------------------------------------
    def run(
        self,
        plans: Iterable[ReplayPlan],
        *,
        cancel: threading.Event | None = None,
        on_result: Callable[[ReplayResult], None] | None = None,
    ) -> ReplayRun:
        """Send every plan ``plan.n`` times; returns finished results even when interrupted."""
        plans = list(plans)
        jobs = [((pi, rep), plan) for pi, plan in enumerate(plans) for rep in range(plan.n)]
        run = ReplayRun(planned=len(jobs))
        if not jobs:
            return run
        sdk = self._make_sdk()
        cancel = cancel or threading.Event()
        todo: queue.SimpleQueue[tuple[tuple[int, int], ReplayPlan]] = queue.SimpleQueue()
        for job in jobs:
            todo.put(job)
        # (job key, plan, result or None, unexpected exception or None); None/None = cancelled.
        done_q: queue.SimpleQueue[tuple[tuple[int, int], ReplayPlan, ReplayResult | None, BaseException | None]]
        done_q = queue.SimpleQueue()

        def worker() -> None:
            while not cancel.is_set():
                try:
                    key, plan = todo.get_nowait()
                except queue.Empty:
                    return
                try:
                    done_q.put((key, plan, self.replay_one(plan, sdk, cancel), None))
                except Cancelled:
                    done_q.put((key, plan, None, None))
                except Exception as e:  # noqa: BLE001 - reported on the replay, the run goes on
                    done_q.put((key, plan, None, e))

        # Daemon threads, not a ThreadPoolExecutor: after an interrupt a request stuck in flight
        # must not keep the process alive until its timeout.
        threads = [
            threading.Thread(target=worker, name=f"tracelens-replay-{i}", daemon=True)
            for i in range(min(self.concurrency, len(jobs)))
        ]
        for t in threads:
            t.start()
        finished: list[tuple[tuple[int, int], ReplayResult]] = []

        def take(item, notify: bool) -> None:
            key, plan, result, exc = item
            if result is None and exc is None:
                return  # stopped before it finished: not a result
            if exc is not None:
                if not notify:
                    return  # failed while we were aborting (client closed under it)
                result = self._result(plan, sdk, error=self._scrub(f"{type(exc).__name__}: {exc}"))
            finished.append((key, result))
            if notify and on_result is not None:
                on_result(result)

        remaining = len(jobs)
        try:
            while remaining:
                try:
                    item = done_q.get(timeout=0.05)
                except queue.Empty:
                    if cancel.is_set():
                        run.interrupted = True
                        break
                    continue
                remaining -= 1
                take(item, notify=True)
                if cancel.is_set() and remaining:
                    run.interrupted = True
                    break
        except KeyboardInterrupt:
            run.interrupted = True
        finally:
            if run.interrupted or remaining:
                cancel.set()
                # Closing the HTTP client aborts requests still in flight; their results are discarded.
                sdk.close()
                while True:  # results that finished meanwhile are kept
                    try:
                        take(done_q.get_nowait(), notify=False)
                    except queue.Empty:
                        break
            else:
                for t in threads:
                    t.join()
                sdk.close()
        finished.sort(key=lambda x: x[0])
        run.results = [r for _, r in finished]
        return run
