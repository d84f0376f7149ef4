"""A local Google Cloud Storage server for tests: the part of the GCS XML API the Rust ``object_store`` crate
speaks (under delta-rs and obstore), in memory, on 127.0.0.1.

Why our own: ``object_store`` writes objects with the XML API (``PUT /bucket/key``, preconditions in
``x-goog-if-generation-match``) and lists with ``GET /bucket?list-type=2``. fake-gcs-server answers a plain
XML ``PUT`` with "invalid uploadType" (it takes uploads through the JSON API only), and gcp-storage-emulator
has no XML listing, so neither can hold a Delta table written by delta-rs.

What it implements, as GCS does:

- ``PUT /b/key``: store; ``x-goog-if-generation-match: 0`` makes it a create (412 when the key exists), ``N``
  a replace of generation ``N``; with ``x-goog-copy-source: b/src`` a copy (same preconditions). The answer
  carries ``ETag`` and ``x-goog-generation``.
- ``GET``/``HEAD /b/key`` with ``Range: bytes=a-b`` / ``bytes=a-`` / ``bytes=-n`` (206 and ``Content-Range``),
  ``If-Match``/``If-None-Match`` on the ETag; ``DELETE /b/key`` (204, 404 when absent).
- ``GET /b?list-type=2&prefix=&delimiter=&start-after=&continuation-token=&max-keys=``: an S3-style
  ``ListBucketResult``, keys in order, paged.
- Multipart uploads (``POST ?uploads``, ``PUT ?partNumber&uploadId``, ``POST ?uploadId``) for large objects.
- ``POST /storage/v1/b`` (JSON ``{"name": ...}``) creates a bucket; an unknown bucket answers 404
  ``NoSuchBucket``. No authentication is checked (clients run with ``disable_oauth``).

``python -m tests.gcsserver PORT`` runs it; ``GCSServer.start()`` runs that on a free port and waits for it.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import subprocess
import sys
import threading
import time
import urllib.parse
import uuid
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from xml.sax.saxutils import escape

from tests.s3server import ServerProcess

_LOCK = threading.Lock()
_BUCKETS: dict[str, dict[str, tuple[bytes, int, float]]] = {}  # bucket -> key -> (data, generation, mtime)
_UPLOADS: dict[str, dict[int, bytes]] = {}
_GEN = [int(time.time() * 1_000_000)]


def _next_gen() -> int:
    _GEN[0] += 1
    return _GEN[0]


def _etag(data: bytes, gen: int) -> str:
    return f'"{hashlib.md5(data).hexdigest()}-{gen}"'  # noqa: S324 - an ETag, not security


def _http_date(t: float) -> str:
    return dt.datetime.fromtimestamp(t, dt.UTC).strftime("%a, %d %b %Y %H:%M:%S GMT")


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    # headers and body go out in two writes: without TCP_NODELAY each small answer waits for a delayed ACK
    disable_nagle_algorithm = True

    def log_message(self, *args) -> None:  # quiet
        pass

    # -------------------------------------------------------------- plumbing

    def _parts(self) -> tuple[str, str, dict[str, list[str]]]:
        url = urllib.parse.urlsplit(self.path)
        path = url.path.lstrip("/")
        bucket, _, key = path.partition("/")
        return urllib.parse.unquote(bucket), urllib.parse.unquote(key), urllib.parse.parse_qs(url.query,
                                                                                           keep_blank_values=True)

    def _body(self) -> bytes:
        n = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(n) if n else b""

    def _send(self, status: int, body: bytes = b"", headers: dict[str, str] | None = None,
              content_type: str = "application/xml") -> None:
        self.send_response(status)
        for k, v in (headers or {}).items():
            self.send_header(k, v)
        if body or status not in (204, 304):
            self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if body and self.command != "HEAD":
            self.wfile.write(body)

    def _error(self, status: int, code: str, message: str) -> None:
        body = f"<?xml version='1.0' encoding='UTF-8'?><Error><Code>{code}</Code><Message>{escape(message)}</Message></Error>"
        self._send(status, body.encode())

    def _bucket(self, name: str) -> dict | None:
        b = _BUCKETS.get(name)
        if b is None:
            self._error(404, "NoSuchBucket", f"The specified bucket does not exist: {name}")
        return b

    def _precondition(self, objs: dict, key: str) -> bool:
        want = self.headers.get("x-goog-if-generation-match")
        if want is None:
            return True
        have = objs[key][1] if key in objs else 0
        if int(want) != have:
            self._error(412, "PreconditionFailed", "At least one of the pre-conditions you specified did not hold.")
            return False
        return True

    # -------------------------------------------------------------- verbs

    def do_POST(self) -> None:  # noqa: N802 - http.server's naming
        bucket, key, q = self._parts()
        body = self._body()
        if bucket == "storage" and key.startswith("v1/b"):
            name = json.loads(body or b"{}").get("name")
            with _LOCK:
                _BUCKETS.setdefault(name, {})
            self._send(200, json.dumps({"kind": "storage#bucket", "name": name}).encode(), content_type="application/json")
            return
        with _LOCK:
            objs = self._bucket(bucket)
            if objs is None:
                return
            if "uploads" in q:
                uid = uuid.uuid4().hex
                _UPLOADS[uid] = {}
                self._send(200, (f"<InitiateMultipartUploadResult><Bucket>{escape(bucket)}</Bucket><Key>{escape(key)}"
                                 f"</Key><UploadId>{uid}</UploadId></InitiateMultipartUploadResult>").encode())
                return
            if "uploadId" in q:
                parts = _UPLOADS.pop(q["uploadId"][0], None)
                if parts is None:
                    self._error(404, "NoSuchUpload", "no such upload")
                    return
                if not self._precondition(objs, key):
                    return
                data = b"".join(parts[n] for n in sorted(parts))
                gen = _next_gen()
                objs[key] = (data, gen, time.time())
                self._send(200, f"<CompleteMultipartUploadResult><ETag>{escape(_etag(data, gen))}</ETag>"
                                f"</CompleteMultipartUploadResult>".encode(),
                           {"ETag": _etag(data, gen), "x-goog-generation": str(gen)})
                return
        self._error(400, "InvalidArgument", f"unsupported POST {self.path}")

    def do_PUT(self) -> None:  # noqa: N802
        bucket, key, q = self._parts()
        body = self._body()
        with _LOCK:
            objs = self._bucket(bucket)
            if objs is None:
                return
            if "partNumber" in q and "uploadId" in q:
                parts = _UPLOADS.get(q["uploadId"][0])
                if parts is None:
                    self._error(404, "NoSuchUpload", "no such upload")
                    return
                parts[int(q["partNumber"][0])] = body
                self._send(200, headers={"ETag": _etag(body, int(q["partNumber"][0]))})
                return
            src = self.headers.get("x-goog-copy-source")
            if src is not None:
                sb, _, sk = urllib.parse.unquote(src).lstrip("/").partition("/")
                found = _BUCKETS.get(sb, {}).get(sk)
                if found is None:
                    self._error(404, "NoSuchKey", f"The specified key does not exist: {sk}")
                    return
                body = found[0]
            if not self._precondition(objs, key):
                return
            gen = _next_gen()
            objs[key] = (body, gen, time.time())
        self._send(200, b"" if src is None else b"<CopyObjectResult></CopyObjectResult>",
                   {"ETag": _etag(body, gen), "x-goog-generation": str(gen)})

    def do_DELETE(self) -> None:  # noqa: N802
        bucket, key, _ = self._parts()
        with _LOCK:
            objs = self._bucket(bucket)
            if objs is None:
                return
            if objs.pop(key, None) is None:
                self._error(404, "NoSuchKey", f"The specified key does not exist: {key}")
                return
        self._send(204)

    def do_HEAD(self) -> None:  # noqa: N802
        self.do_GET()

    def do_GET(self) -> None:  # noqa: N802
        bucket, key, q = self._parts()
        with _LOCK:
            objs = self._bucket(bucket)
            if objs is None:
                return
            if not key:
                self._list(objs, q)
                return
            found = objs.get(key)
        if found is None:
            self._error(404, "NoSuchKey", f"The specified key does not exist: {key}")
            return
        data, gen, mtime = found
        etag = _etag(data, gen)
        if (m := self.headers.get("If-Match")) and m not in (etag, "*"):
            self._error(412, "PreconditionFailed", "If-Match")
            return
        if (m := self.headers.get("If-None-Match")) and m in (etag, "*"):
            self._send(304, headers={"ETag": etag})
            return
        headers = {"ETag": etag, "Last-Modified": _http_date(mtime), "x-goog-generation": str(gen)}
        rng = self.headers.get("Range")
        if rng and rng.startswith("bytes="):
            a, _, b = rng[len("bytes="):].partition("-")
            if a == "":
                start, end = max(0, len(data) - int(b)), len(data) - 1
            else:
                start, end = int(a), min(int(b) if b else len(data) - 1, len(data) - 1)
            if start >= len(data) and len(data):
                self._error(416, "InvalidRange", "The requested range cannot be satisfied.")
                return
            headers["Content-Range"] = f"bytes {start}-{end}/{len(data)}"
            self._send(206, data[start:end + 1], headers, content_type="application/octet-stream")
            return
        self._send(200, data, headers, content_type="application/octet-stream")

    def _list(self, objs: dict, q: dict[str, list[str]]) -> None:
        def one(name: str) -> str:
            return q.get(name, [""])[0]

        prefix, delim = one("prefix"), one("delimiter")
        after = one("continuation-token") or one("start-after")
        limit = int(one("max-keys") or 1000)
        keys = sorted(k for k in objs if k.startswith(prefix) and k > after)
        contents, prefixes, last, truncated = [], [], "", False
        for k in keys:
            if len(contents) + len(prefixes) >= limit:
                truncated = True
                break
            rest = k[len(prefix):]
            if delim and delim in rest:
                p = prefix + rest.split(delim, 1)[0] + delim
                if p not in prefixes:
                    prefixes.append(p)
            else:
                data, gen, mtime = objs[k]
                ts = dt.datetime.fromtimestamp(mtime, dt.UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
                contents.append(f"<Contents><Key>{escape(k)}</Key><LastModified>{ts}</LastModified>"
                                f"<Size>{len(data)}</Size><ETag>{escape(_etag(data, gen))}</ETag></Contents>")
            last = k
        # a common prefix is listed once: the next page starts after every key under it
        if truncated and prefixes and last.startswith(prefixes[-1]):
            last = prefixes[-1] + "\U0010ffff"
        body = ("<?xml version='1.0' encoding='UTF-8'?><ListBucketResult>"
                f"<Prefix>{escape(prefix)}</Prefix><KeyCount>{len(contents) + len(prefixes)}</KeyCount>"
                f"<IsTruncated>{'true' if truncated else 'false'}</IsTruncated>"
                + "".join(contents)
                + "".join(f"<CommonPrefixes><Prefix>{escape(p)}</Prefix></CommonPrefixes>" for p in prefixes)
                + (f"<NextContinuationToken>{escape(last)}</NextContinuationToken>" if truncated else "")
                + "</ListBucketResult>")
        self._send(200, body.encode())


def serve(port: int) -> None:
    ThreadingHTTPServer.daemon_threads = True
    ThreadingHTTPServer(("127.0.0.1", port), _Handler).serve_forever()


@dataclass
class GCSServer(ServerProcess):
    buckets: list[str] = field(default_factory=list)

    @classmethod
    def start(cls) -> GCSServer:
        import socket
        from pathlib import Path

        from tests.s3server import free_port

        port = free_port()
        proc = subprocess.Popen([sys.executable, "-m", "tests.gcsserver", str(port)], cwd=Path(__file__).parents[1],
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 20
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), 0.2).close()
                return cls(port, proc)
            except OSError:
                if proc.poll() is not None or time.monotonic() > deadline:
                    proc.kill()
                    raise RuntimeError("the GCS test server did not start") from None
                time.sleep(0.05)

    def env(self) -> dict[str, str]:
        """What points tracelens at this server: the variable Google's own client libraries read for an emulator."""
        return {"STORAGE_EMULATOR_HOST": self.endpoint}

    def bucket(self, name: str | None = None) -> str:
        import urllib.request

        name = name or f"tl-{uuid.uuid4().hex[:12]}"
        req = urllib.request.Request(f"{self.endpoint}/storage/v1/b", data=json.dumps({"name": name}).encode(),
                                     headers={"Content-Type": "application/json"}, method="POST")
        urllib.request.urlopen(req, timeout=5).close()
        self.buckets.append(name)
        return name

if __name__ == "__main__":
    serve(int(sys.argv[1]))
