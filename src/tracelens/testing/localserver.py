"""The lifecycle the local fake API servers share: bind, serve from a daemon thread, stop, context manager.

A subclass sets ``handler`` (its ``BaseHTTPRequestHandler``) and
``thread_name``, and calls ``LocalServer.__init__`` with its host and port.
``port`` 0 picks a free port, known once ``start`` returns. Handlers reach
the server object as ``self.server.owner``; ``stopping`` is set by ``stop``,
so a handler sleeping in a scripted delay wakes up and the teardown of each
test stays fast. ``RecordedRequest`` is what both record of each request.
Standard library only.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, ClassVar, Self


@dataclass(frozen=True)
class RecordedRequest:
    """A request as the server received it."""

    method: str
    path: str
    headers: dict[str, str]
    raw: bytes
    json: Any


class OwnedServer(ThreadingHTTPServer):
    """A threading HTTP server that knows the ``LocalServer`` it serves for (``owner``)."""

    daemon_threads = True
    block_on_close = False
    owner: Any


class LocalServer:
    """Bind, serve, stop: the shared part of ``FakeAnthropicServer`` and ``FakeOpenAIServer``."""

    handler: ClassVar[type[BaseHTTPRequestHandler]]
    thread_name: ClassVar[str] = "local-server"

    def __init__(self, host: str = "127.0.0.1", port: int = 0) -> None:
        self.host = host
        self.port = port
        self._stopping = threading.Event()
        self._httpd: OwnedServer | None = None
        self._thread: threading.Thread | None = None

    def start(self) -> Self:
        """Bind (a free port when ``port`` is 0), serve from a daemon thread, and return the server."""
        self._stopping.clear()
        self._httpd = OwnedServer((self.host, self.port), self.handler)
        self._httpd.owner = self
        self.port = self._httpd.server_address[1]
        # A short poll interval makes stop() (and so each test's teardown) fast.
        self._thread = threading.Thread(
            target=self._httpd.serve_forever, kwargs={"poll_interval": 0.05}, name=self.thread_name, daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop serving and wake any handler waiting in a scripted delay; safe to call when not started."""
        self._stopping.set()
        if self._httpd is not None:
            self._httpd.shutdown()
            self._httpd.server_close()
            self._httpd = None
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
