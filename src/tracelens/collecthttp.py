"""The OTLP/HTTP side of ``tracelens collect``: the signals it serves, request bodies, status replies.

* ``SIGNALS``: ``/v1/traces`` and ``/v1/logs``, each with the importers that
  read its JSON and protobuf bodies and the request message it decodes to.
* ``gunzip`` inflates a gzip body up to a limit (a bomb is a ``BodyError``,
  413); chunked bodies are read to the same limit.
* ``status_body``: the ``google.rpc.Status`` (protobuf or JSON) an OTLP
  client expects with an error status.
* ``OtlpHandler``/``OtlpServer``: the HTTP server; every request is handed to the
  ``Collector`` that owns the server (``tracelens.collect``).
"""

from __future__ import annotations

import json
import socket
import zlib
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from tracelens.collect import Collector


@dataclass(frozen=True)
class Signal:
    """One OTLP signal this receiver accepts: its path, importers and request message."""

    name: str
    path: str
    json_format: str
    proto_format: str
    json_keys: tuple[str, ...]  # top-level keys of a non-empty request in OTLP JSON
    proto_module: str
    proto_class: str

    def request_class(self):
        """The protobuf request message class (needs the ``otlp`` extra)."""
        import importlib

        return getattr(importlib.import_module(self.proto_module), self.proto_class)


SIGNALS: dict[str, Signal] = {
    "traces": Signal("traces", "/v1/traces", "otlp_json", "otlp_proto", ("resourceSpans", "resource_spans"),
                     "opentelemetry.proto.collector.trace.v1.trace_service_pb2", "ExportTraceServiceRequest"),
    "logs": Signal("logs", "/v1/logs", "otlp_logs", "otlp_logs_proto", ("resourceLogs", "resource_logs"),
                   "opentelemetry.proto.collector.logs.v1.logs_service_pb2", "ExportLogsServiceRequest"),
}

JSON_TYPE = "application/json"
PROTO_TYPES = ("application/x-protobuf", "application/protobuf")

# ---------------------------------------------------------------- HTTP


class BodyError(Exception):
    """A request body that cannot be taken: ``status`` and the reason."""

    def __init__(self, status: int, reason: str):
        super().__init__(reason)
        self.status = status


def gunzip(data: bytes, limit: int) -> bytes:
    """Decompress a gzip body (several members allowed) to at most ``limit`` bytes, never more in memory."""
    out = bytearray()
    while True:
        d = zlib.decompressobj(16 + zlib.MAX_WBITS)
        try:
            out += d.decompress(data, limit + 1 - len(out))
        except zlib.error as e:
            raise BodyError(400, f"gzip body does not decompress: {e}") from None
        if len(out) > limit:
            raise BodyError(413, f"body decompresses to more than {limit:,} bytes (--max-body)")
        if not d.eof:
            raise BodyError(400, "gzip body ends inside its stream")
        data = d.unused_data
        if not data.strip(b"\x00"):
            return bytes(out)


def read_chunked(rfile, limit: int) -> bytes:
    """A ``Transfer-Encoding: chunked`` body, refused (413) as soon as it passes ``limit``."""
    parts, total = [], 0
    while True:
        line = rfile.readline(1024)
        try:
            size = int(line.split(b";", 1)[0].strip(), 16)
        except ValueError:
            raise BodyError(400, "malformed chunked body") from None
        if size == 0:
            while rfile.readline(1024).strip():  # trailers
                pass
            return b"".join(parts)
        total += size
        if total > limit:
            raise BodyError(413, f"body is larger than {limit:,} bytes (--max-body)")
        chunk = rfile.read(size)
        if len(chunk) < size:
            raise BodyError(400, "chunked body ends early")
        parts.append(chunk)
        rfile.readline(1024)


def _varint(n: int) -> bytes:
    out = bytearray()
    while True:
        b = n & 0x7F
        n >>= 7
        if n:
            out.append(b | 0x80)
        else:
            out.append(b)
            return bytes(out)


# HTTP status -> google.rpc.Code of the Status body
_RPC_CODES = {400: 3, 401: 16, 404: 5, 405: 12, 411: 3, 413: 8, 415: 3, 429: 8, 503: 14}


def status_body(status: int, message: str, proto: bool) -> bytes:
    """A ``google.rpc.Status`` (code, message) in protobuf or JSON, encoded without the protobuf runtime."""
    code = _RPC_CODES.get(status, 2)
    if not proto:
        return json.dumps({"code": code, "message": message}).encode()
    msg = message.encode("utf-8")
    return b"\x08" + _varint(code) + b"\x12" + _varint(len(msg)) + msg


class OtlpHandler(BaseHTTPRequestHandler):
    """HTTP handler: POST goes to the owning ``Collector``; any other method is 405 (known path) or 404."""

    protocol_version = "HTTP/1.1"
    server_version = "tracelens-collect"
    sys_version = ""
    server: OtlpServer

    def setup(self) -> None:
        """Apply the configured socket timeout before the request is read."""
        self.timeout = self.server.collector.config.socket_timeout
        super().setup()

    def do_POST(self) -> None:  # noqa: N802 - the http.server spelling
        """Hand the request to the collector."""
        self.server.collector.handle_post(self)

    def _not_post(self) -> None:
        c = self.server.collector
        c._count("other_errors")
        self.close_connection = True  # the body, if any, is not read
        if c.signal_for(self.path) is not None or self._known_path():
            c.reply(self, 405, False, f"{self.command} is not supported; OTLP/HTTP uses POST", {"Allow": "POST"})
        else:
            c.reply(self, 404, False, f"no such path: {self.path.split('?')[0]}")

    def _known_path(self) -> bool:
        return self.path.split("?", 1)[0] in {s.path for s in SIGNALS.values()}

    do_GET = do_PUT = do_DELETE = do_PATCH = do_OPTIONS = _not_post  # noqa: N815

    def do_HEAD(self) -> None:  # noqa: N802
        """405 or 404, as for every method but POST."""
        self._not_post()

    def log_message(self, format: str, *args) -> None:  # noqa: A002 - diagnostics go through the collector
        """Silent: the collector reports what happened (http.server's access log would go to stderr)."""
        pass


class OtlpServer(ThreadingHTTPServer):
    """A threading HTTP server (IPv4 or IPv6) whose requests go to one ``Collector``."""

    daemon_threads = True  # an idle keep-alive connection must not hold shutdown; stop() waits for requests
    request_queue_size = 128
    collector: Collector

    def __init__(self, address, collector: Collector):
        self.collector = collector
        if ":" in address[0]:
            self.address_family = socket.AF_INET6
        super().__init__(address, OtlpHandler)
