"""Run eval cases on OpenAI models and OpenAI-compatible endpoints (Gemini's, vLLM, Ollama).

Contract:

* ``OpenAITarget(model, base_url=, api_key_env=, flavor=)``: ``plan(request)``
  is the ``Translation`` of a case's Anthropic request (``evals/translate.py``);
  ``send(request, cancel)`` sends it once to ``POST {base_url}/chat/completions``
  through the ``openai`` SDK and returns a ``Response``. A blocking
  translation loss is never sent: it is ``Response(error="not translatable:
  ...")``. Failures (4xx, retries used up, a timeout, a body that is not a
  completion) are ``Response(error=...)`` with the provider's message, never
  an exception; a set ``cancel`` raises ``Cancelled`` (not a result).
* Retries are ours (the SDK's ``max_retries=0``), by the rules replays
  follow (``replay/transport.py``): 408/409/429/5xx and connection errors,
  up to ``max_attempts``, honouring ``retry-after-ms`` / ``retry-after``,
  else exponential backoff with full jitter; a timeout is never retried (the
  request may have been processed and billed). ``max_attempts`` and
  ``sleep`` set the common knobs, ``retry=RetryPolicy(...)`` all of them. ``timeout`` bounds the whole
  attempt, body included. ``sleep`` is injectable so tests do not wait.
* The key is read from the environment variable ``api_key_env`` at each
  send, handed to the SDK client made for that send and dropped with it: it
  is never kept on this object, never printed, and scrubbed from every error
  text (``tracelens.secrets.scrub_text`` and the key itself). A missing key
  raises ``MissingKeyError`` naming the variable (``check_key`` says so
  before a run sends anything). For flavor ``compatible`` a missing key is
  allowed: local servers (Ollama, vLLM) take none, and the SDK needs some
  bearer value, so ``NO_KEY_PLACEHOLDER`` is sent.
* ``base_url``: the argument, else ``$OPENAI_BASE_URL`` (as the SDK would),
  else the public API; required for ``compatible``.
* ``estimate_cost(model, input_tokens, output_tokens)``: USD at list price
  from ``evals/openai_prices.json`` (overridable with ``$TRACELENS_PRICES``
  through ``replay/pricing.py``); None when the model or a count is unknown.
"""

from __future__ import annotations

import json
import os
import threading
import time
from collections.abc import Callable, Mapping
from typing import Any

import openai

from tracelens.evals.model import Response
from tracelens.evals.translate import FLAVORS, Translation, anthropic_to_openai, openai_to_response
from tracelens.modelid import parse_model_id
from tracelens.replay.pricing import PriceTable, builtin_prices, load_prices
from tracelens.replay.transport import (
    BodyError,
    Cancelled,
    DeadlineExceeded,
    HTTPResponse,
    RetryPolicy,
    is_retryable,
    post_with_deadline,
)
from tracelens.secrets import scrub_text

__all__ = ["Cancelled", "MissingKeyError", "OpenAITarget", "estimate_cost", "openai_prices"]

DEFAULT_BASE_URL = "https://api.openai.com/v1"
NO_KEY_PLACEHOLDER = "no-key"
"""The bearer value a ``compatible`` target sends when its key variable is unset (local servers ignore it)."""


class MissingKeyError(RuntimeError):
    """The API key variable is not set (the message names it)."""


class _Failure(Exception):
    """One attempt failed: ``message`` for the result, ``delay`` before a retry (None: do not retry)."""

    def __init__(self, message: str, delay: float | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.delay = delay


def _provider_message(e: openai.APIStatusError) -> str:
    """``type: message`` from an error body, whatever shape the server uses."""
    body = e.body
    if isinstance(body, dict) and isinstance(body.get("error"), dict):
        body = body["error"]  # servers that answer {"error": {...}} past the SDK's unwrapping
    if isinstance(body, dict) and body.get("message"):
        kinds = [k for k in (body.get("type"), body.get("code")) if isinstance(k, str) and k]
        return (f"{' '.join(dict.fromkeys(kinds))}: " if kinds else "") + str(body["message"])
    if isinstance(body, str) and body:
        return body[:300]
    try:
        return e.response.text[:300]
    except Exception:  # noqa: BLE001 - a closed streaming body has no text; the status is enough
        return ""


class OpenAITarget:
    """A Chat Completions target. The API key is read at send time and never kept on this object."""

    def __init__(
        self,
        model: str,
        *,
        base_url: str | None = None,
        api_key_env: str = "OPENAI_API_KEY",
        flavor: str = "openai",
        timeout: float = 120.0,
        max_attempts: int = 6,
        env: Mapping[str, str] | None = None,
        sleep: Callable[[float], None] | None = None,
        retry: RetryPolicy | None = None,
    ) -> None:
        if flavor not in FLAVORS:
            raise ValueError(f"flavor must be one of {', '.join(FLAVORS)}, not {flavor!r}")
        if flavor == "compatible" and not base_url:
            raise ValueError("a compatible target needs a base_url (e.g. http://127.0.0.1:11434/v1)")
        self.model = model
        self.flavor = flavor
        self.api_key_env = api_key_env
        self.timeout = timeout
        self.retry = retry or RetryPolicy(max_attempts=max_attempts, sleep=sleep)
        self._env = env
        self._explicit_base = base_url
        self.base_url = base_url or self._environ().get("OPENAI_BASE_URL") or DEFAULT_BASE_URL

    def __repr__(self) -> str:
        return f"OpenAITarget({self.name!r}, flavor={self.flavor!r}, api_key_env={self.api_key_env!r})"

    @property
    def name(self) -> str:
        """``openai:MODEL``, with ``@BASE_URL`` when a base URL was given (``compatible:MODEL@BASE_URL``)."""
        prefix = "openai" if self.flavor == "openai" else "compatible"
        return f"{prefix}:{self.model}" + (f"@{self._explicit_base}" if self._explicit_base else "")

    def _environ(self) -> Mapping[str, str]:
        return os.environ if self._env is None else self._env

    # -- key -----------------------------------------------------------------------------------------------------
    def check_key(self) -> None:
        """Raise ``MissingKeyError`` when the key variable is unset (``compatible`` needs none)."""
        self._key()

    def _key(self) -> str:
        key = self._environ().get(self.api_key_env)
        if key:
            return key
        if self.flavor == "compatible":
            return NO_KEY_PLACEHOLDER
        raise MissingKeyError(
            f"no API key: the environment variable {self.api_key_env} is not set "
            "(set it, or name another variable with a #VAR suffix on the target)"
        )

    def _scrub(self, text: str) -> str:
        key = self._environ().get(self.api_key_env)
        if key and key in text:
            text = text.replace(key, "[redacted]")
        return scrub_text(text)

    # -- one case ------------------------------------------------------------------------------------------------
    def plan(self, request: dict[str, Any]) -> Translation:
        """The Chat Completions body this target would send for ``request``, with what could not be translated."""
        return anthropic_to_openai(request, self.model, flavor=self.flavor)

    def send(self, request: dict[str, Any], cancel: threading.Event) -> Response:
        """Translate and send ``request`` once (retrying as the module docstring says); failures are ``error``."""
        key = self._key()  # first: a missing key stops the run whatever the case
        translation = self.plan(request)
        if translation.blocking:
            return Response(error=translation.reason)
        sdk = openai.OpenAI(base_url=self.base_url, api_key=key, max_retries=0, timeout=self.timeout)
        del key
        try:
            return self._send_with_retries(sdk, translation.body, cancel)
        finally:
            sdk.close()

    def _send_with_retries(self, sdk: openai.OpenAI, body: dict[str, Any], cancel: threading.Event) -> Response:
        content = json.dumps(body, ensure_ascii=False).encode()
        for attempt in range(1, self.retry.max_attempts + 1):
            if cancel.is_set():
                raise Cancelled
            t0 = time.monotonic()
            try:
                resp, raw = post_with_deadline(
                    lambda: sdk.post("/chat/completions", cast_to=HTTPResponse, content=content,
                                     options={"headers": {"content-type": "application/json"}}, stream=True),
                    self.timeout,
                    cancel,
                )
            except Cancelled:
                raise
            except Exception as e:  # noqa: BLE001 - classified below; anything unexpected propagates
                if cancel.is_set():
                    raise Cancelled from None
                failure = self._classify(e, attempt)
                if failure.delay is None:
                    return Response(error=self._scrub(failure.message))
                self.retry.wait(failure.delay, cancel)
                continue
            return self._parse(resp, raw, (time.monotonic() - t0) * 1000.0)
        raise AssertionError("unreachable: the last attempt always returns")  # pragma: no cover

    def _classify(self, e: Exception, attempt: int) -> _Failure:
        """What a failed attempt means: a message, and a delay when it is retried."""
        last = attempt >= self.retry.max_attempts
        tries = f"gave up after {attempt} attempt{'s' if attempt != 1 else ''}"
        if isinstance(e, openai.APIStatusError):
            status = e.status_code
            detail = _provider_message(e)
            head = f"HTTP {status}" + (f" {detail}" if detail else "")
            if status == 401:
                return _Failure(f"authentication failed ({head}); check the key in ${self.api_key_env}")
            if status == 404:
                return _Failure(f"model {self.model} was not found at {self.base_url} ({head})")
            if not is_retryable(status):
                return _Failure(head)
            if last:
                return _Failure(f"{head} ({tries})")
            delay = self.retry.delay(attempt, e.response.headers)
            if delay is None:
                return _Failure(f"{head} ({tries}; the server asked to retry after more than "
                                f"{self.retry.max_retry_after:g}s)")
            return _Failure(head, delay)
        if isinstance(e, openai.APITimeoutError | DeadlineExceeded):
            return _Failure(f"timed out after {self.timeout:g}s (not retried: the request may have been processed "
                            "and billed)")
        if isinstance(e, BodyError):
            return _Failure(f"the response body could not be read: {e}")
        if isinstance(e, openai.APIConnectionError):
            cause = e.__cause__ or e
            message = f"connection error to {self.base_url}: {type(cause).__name__}: {cause}"
            if last:
                return _Failure(f"{message} ({tries})")
            return _Failure(message, self.retry.delay(attempt, None) or 0.0)
        raise e

    def _parse(self, resp: Any, raw: bytes, latency_ms: float) -> Response:
        text = raw.decode(resp.encoding or "utf-8", "replace")
        try:
            data = json.loads(text)
        except ValueError:
            return Response(error=f"response is not JSON (HTTP {resp.status_code})", latency_ms=latency_ms,
                            raw=self._scrub(text[:2000]))
        response = openai_to_response(data, latency_ms, raw=text)
        if response.error:
            response.error = self._scrub(response.error)
        return response


# -- cost ------------------------------------------------------------------------------------------------------------

def openai_prices(env: Mapping[str, str] | None = None) -> PriceTable:
    """OpenAI list prices (``evals/openai_prices.json``), overridden by ``$TRACELENS_PRICES`` as Anthropic's are."""
    base = builtin_prices("tracelens.evals", "openai_prices.json")
    return load_prices(env=dict(os.environ if env is None else env), base=base)


def estimate_cost(
    model: str, input_tokens: int | None, output_tokens: int | None, *, prices: PriceTable | None = None
) -> float | None:
    """USD for these tokens at list price; None when a count or the model's price is unknown.

    Only the exact id or its family (a dated snapshot's undated name) is
    priced: the table's longest-prefix rule would price ``gpt-4.1-nano`` as
    ``gpt-4.1`` when it is missing, and a guess is worse than no price.
    """
    if input_tokens is None or output_tokens is None:
        return None
    table = prices if prices is not None else openai_prices()
    hit = table.lookup(model)
    parsed = parse_model_id(model)
    if hit is None or hit[0] not in (model, parsed.family if parsed else None):
        return None
    price = hit[1]
    return (input_tokens * price.input + output_tokens * price.output) / 1_000_000
