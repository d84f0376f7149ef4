"""How tracelens sends one request to a model API: the retry policy and the total deadline.

Shared by replays (``replay/client.py``, the Messages API) and task-eval
targets (``evals/openai_target.py``, Chat Completions), so that every request
tracelens sends follows the same rules:

* Retryable: HTTP 408, 409, 429 and every 5xx (``is_retryable``), and
  connection errors. Never a timeout: the request may have been processed
  and billed.
* The wait before a retry (``backoff_delay``): the server's
  ``retry-after-ms`` / ``retry-after`` (seconds or an HTTP date) when sent,
  None when that is above ``max_retry_after`` (the caller gives up and says
  so); otherwise exponential backoff with full jitter, ``uniform(0,
  min(cap, base * 2**(attempt-1)))``, which spreads concurrent retries apart.
* ``RetryPolicy`` bundles these settings for a client (attempts, backoff,
  the longest retry-after waited out, an injectable ``sleep`` and ``rng``).
* ``wait_or_cancel`` waits (or calls an injected ``sleep`` so tests do not
  wait) and raises ``Cancelled`` when the cancel event is set.
* ``post_with_deadline(start, timeout, cancel)``: ``start()`` opens a
  streaming response with an SDK; the headers and the whole body must arrive
  within ``timeout`` seconds however slowly a server trickles bytes (httpx's
  timeouts bound each read, not the total). The attempt runs in a helper
  thread that reads the body in chunks and checks the clock; the caller stops
  waiting at the deadline or on cancel and closes the response, so the
  connection is dropped. Errors the SDK raised (status errors, connection
  errors) are re-raised in the caller's thread; a deadline is
  ``DeadlineExceeded``, a body that broke off is ``BodyError``.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import email.utils
import random
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

try:  # the SDKs' HTTP library (httpx2 in current releases, httpx before)
    import httpx2 as _httpx
except ImportError:  # pragma: no cover - depends on the installed SDK
    import httpx as _httpx  # type: ignore[no-redef]

RETRY_STATUSES = frozenset({408, 409, 429})

# Chunk size for reading response bodies: the deadline is checked between chunks.
CHUNK = 16 * 1024

HTTPResponse = _httpx.Response
"""The raw response class to pass to an SDK's ``post(..., cast_to=...)``."""


class Cancelled(Exception):
    """The caller's cancel event was set: stop, this is not a result."""


class DeadlineExceeded(Exception):
    """The attempt did not finish (headers and the whole body) within ``timeout`` seconds."""


class BodyError(Exception):
    """The response body could not be read after the headers arrived."""


def is_retryable(status: int) -> bool:
    """True for the HTTP statuses worth retrying: 408, 409, 429 and 5xx."""
    return status in RETRY_STATUSES or status >= 500


def retry_after_seconds(headers: Mapping[str, str] | None) -> float | None:
    """Seconds the server asks us to wait (``retry-after-ms``, else ``retry-after``); None when it does not say."""
    if not headers:
        return None
    ms = headers.get("retry-after-ms")
    if ms:
        try:
            return float(ms) / 1000.0
        except ValueError:
            pass
    ra = headers.get("retry-after")
    if not ra:
        return None
    try:
        return float(ra)
    except ValueError:
        pass
    try:  # HTTP-date form
        when = email.utils.parsedate_to_datetime(ra)
    except (TypeError, ValueError):
        return None
    return max(0.0, (when - dt.datetime.now(dt.UTC)).total_seconds())


def backoff_delay(
    attempt: int,
    headers: Mapping[str, str] | None,
    *,
    base: float,
    cap: float,
    max_retry_after: float,
    rng: random.Random,
) -> float | None:
    """Seconds to wait before attempt ``attempt + 1``; None when the server asks for longer than ``max_retry_after``."""
    ra = retry_after_seconds(headers)
    if ra is not None:
        return ra if ra <= max_retry_after else None
    return rng.uniform(0, min(cap, base * (2 ** (attempt - 1))))  # full jitter


def wait_or_cancel(seconds: float, cancel: threading.Event, sleep: Callable[[float], None] | None = None) -> None:
    """Wait ``seconds`` (through ``sleep`` when given); raises ``Cancelled`` when ``cancel`` is or becomes set."""
    if sleep is not None:
        sleep(seconds)
        if cancel.is_set():
            raise Cancelled
    elif cancel.wait(seconds):
        raise Cancelled


@dataclass
class RetryPolicy:
    """How many attempts a request gets and how long to wait between them (the module docstring's rules)."""

    max_attempts: int = 6
    backoff_base: float = 1.0
    backoff_max: float = 60.0
    max_retry_after: float = 300.0
    sleep: Callable[[float], None] | None = None
    rng: random.Random = field(default_factory=random.Random)

    def __post_init__(self) -> None:
        if self.max_attempts < 1:
            raise ValueError("max_attempts must be >= 1")

    def delay(self, attempt: int, headers: Mapping[str, str] | None) -> float | None:
        """Seconds before attempt ``attempt + 1``; None when the server asks for longer than ``max_retry_after``."""
        return backoff_delay(attempt, headers, base=self.backoff_base, cap=self.backoff_max,
                             max_retry_after=self.max_retry_after, rng=self.rng)

    def wait(self, seconds: float, cancel: threading.Event) -> None:
        """Wait before a retry; raises ``Cancelled`` when ``cancel`` is set."""
        wait_or_cancel(seconds, cancel, self.sleep)


def post_with_deadline(start: Callable[[], Any], timeout: float, cancel: threading.Event) -> tuple[Any, bytes]:
    """``(response, body bytes)`` of ``start()`` (a streaming SDK post), all within ``timeout`` seconds.

    See the module docstring; raises ``DeadlineExceeded``, ``Cancelled``, ``BodyError`` or what ``start`` raised.
    """
    deadline = time.monotonic() + timeout
    box: dict[str, Any] = {}
    done = threading.Event()

    def attempt() -> None:
        try:
            resp = start()
            box["resp"] = resp
            chunks = []
            try:
                for chunk in resp.iter_bytes(CHUNK):
                    chunks.append(chunk)
                    if time.monotonic() > deadline or box.get("abandoned"):
                        raise DeadlineExceeded
            except _httpx.TimeoutException:
                raise DeadlineExceeded from None
            except _httpx.HTTPError as e:
                raise BodyError(f"{type(e).__name__}: {e}") from None
            finally:
                resp.close()
            box["body"] = b"".join(chunks)
        except BaseException as e:  # noqa: BLE001 - handed to the waiting thread
            box["error"] = e
        finally:
            done.set()

    threading.Thread(target=attempt, name="tracelens-request-attempt", daemon=True).start()
    while not done.wait(max(0.0, min(0.05, deadline - time.monotonic()))):
        if cancel.is_set() or time.monotonic() >= deadline:
            box["abandoned"] = True
            resp = box.get("resp")
            if resp is not None:
                with contextlib.suppress(Exception):  # closing under a blocked read may fail; it is let go
                    resp.close()
            if cancel.is_set():
                raise Cancelled
            raise DeadlineExceeded
    if "error" in box:
        raise box["error"]
    return box["resp"], box["body"]
