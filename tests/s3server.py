"""A local S3-compatible server for tests: moto's server mode on 127.0.0.1, one per test process.

``S3Server.start()`` runs ``python -m moto.server`` on a free port and waits until it answers;
``env()`` is the environment that points tracelens (delta-rs, obstore, botocore) at it with dummy
credentials; ``bucket(name)`` creates a bucket. ``auth_after`` starts a server that enforces IAM
after that many unauthenticated requests (moto's ``INITIAL_NO_AUTH_ACTION_COUNT``), for the tests of
denied writes. Nothing here reaches the internet.
"""

from __future__ import annotations

import contextlib
import json
import os
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field

ACCESS_KEY = "testing-key"
SECRET_KEY = "testing-secret"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass
class ServerProcess:
    """A server the tests started as a child process on 127.0.0.1:``port``."""

    port: int
    proc: subprocess.Popen

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def stop(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(5)
        except subprocess.TimeoutExpired:
            self.proc.kill()


@dataclass
class S3Server(ServerProcess):
    buckets: list[str] = field(default_factory=list)

    @classmethod
    def start(cls, auth_after: int | None = None) -> S3Server:
        port = free_port()
        env = dict(os.environ)
        if auth_after is not None:
            env["INITIAL_NO_AUTH_ACTION_COUNT"] = str(auth_after)
        proc = subprocess.Popen([sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env)
        deadline = time.monotonic() + 30
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), 0.2).close()
                break
            except OSError:
                if proc.poll() is not None or time.monotonic() > deadline:
                    proc.kill()
                    raise RuntimeError("moto server did not start") from None
                time.sleep(0.05)
        return cls(port, proc)

    @classmethod
    @contextlib.contextmanager
    def denying(cls, action: str, bucket: str, objects: dict[str, bytes] | None = None
                ) -> Iterator[tuple[S3Server, dict[str, str]]]:
        """A server enforcing IAM that holds ``bucket`` (with ``objects``) and a user allowed every S3 action but
        ``action`` (e.g. ``s3:PutObject``); yields the server and that user's environment, then stops it.

        moto checks IAM by S3 operation, so the policy allows ``s3:*`` and denies the one action. The setup's own
        requests (bucket, objects, user, policy, key) are the ones moto leaves unchecked; every later one is checked.
        """
        objects = objects or {}
        server = cls.start(auth_after=4 + len(objects))
        try:
            s3 = server.client()
            s3.create_bucket(Bucket=bucket)
            for key, body in objects.items():
                s3.put_object(Bucket=bucket, Key=key, Body=body)
            iam = server.client("iam")
            iam.create_user(UserName="limited")
            iam.put_user_policy(UserName="limited", PolicyName="all-but-one", PolicyDocument=json.dumps({
                "Version": "2012-10-17",
                "Statement": [{"Effect": "Allow", "Action": ["s3:*"], "Resource": "*"},
                              {"Effect": "Deny", "Action": [action], "Resource": "*"}]}))
            key = iam.create_access_key(UserName="limited")["AccessKey"]
            yield server, server.env(key["AccessKeyId"], key["SecretAccessKey"])
        finally:
            server.stop()

    def env(self, access_key: str = ACCESS_KEY, secret_key: str = SECRET_KEY) -> dict[str, str]:
        return {
            "AWS_ENDPOINT_URL": self.endpoint,
            "AWS_ACCESS_KEY_ID": access_key,
            "AWS_SECRET_ACCESS_KEY": secret_key,
            "AWS_REGION": "us-east-1",
            "AWS_EC2_METADATA_DISABLED": "true",
        }

    def client(self, service: str = "s3", **keys):
        import boto3

        return boto3.client(service, endpoint_url=self.endpoint, region_name="us-east-1",
                            aws_access_key_id=keys.get("access_key", ACCESS_KEY),
                            aws_secret_access_key=keys.get("secret_key", SECRET_KEY))

    def bucket(self, name: str | None = None) -> str:
        name = name or f"tl-{uuid.uuid4().hex[:12]}"
        self.client().create_bucket(Bucket=name)
        self.buckets.append(name)
        return name

class CountingProxy:
    """A TCP proxy on 127.0.0.1 in front of ``upstream`` that records what clients ask for and receive.

    ``requests`` holds ``(method, target, range header or None)`` for every HTTP request passing through
    (request bodies are skipped by their Content-Length), ``received`` the bytes sent back to clients so
    far. Only as good as HTTP/1.1 without chunked request bodies, which is what object-store reads send.
    """

    def __init__(self, upstream_port: int):
        import threading

        self.upstream_port = upstream_port
        self.requests: list[tuple[str, str, str | None]] = []
        self.received = 0
        self._lock = threading.Lock()
        self._sock = socket.socket()
        self._sock.bind(("127.0.0.1", 0))
        self._sock.listen(16)
        self.port = self._sock.getsockname()[1]
        self._closed = False
        threading.Thread(target=self._accept, daemon=True).start()

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def _accept(self) -> None:
        import threading

        while not self._closed:
            try:
                client, _ = self._sock.accept()
            except OSError:
                return
            upstream = socket.create_connection(("127.0.0.1", self.upstream_port))
            threading.Thread(target=self._up, args=(client, upstream), daemon=True).start()
            threading.Thread(target=self._down, args=(upstream, client), daemon=True).start()

    def _up(self, client: socket.socket, upstream: socket.socket) -> None:
        buf = b""
        skip = 0
        try:
            while True:
                data = client.recv(65536)
                if not data:
                    break
                upstream.sendall(data)
                buf += data
                while True:
                    if skip:
                        n = min(skip, len(buf))
                        buf, skip = buf[n:], skip - n
                        if skip:
                            break
                    end = buf.find(b"\r\n\r\n")
                    if end < 0:
                        break
                    head, buf = buf[:end].decode("latin-1"), buf[end + 4:]
                    lines = head.split("\r\n")
                    method, target = lines[0].split(" ")[:2]
                    headers = {k.strip().lower(): v.strip() for k, _, v in (h.partition(":") for h in lines[1:])}
                    with self._lock:
                        self.requests.append((method, target, headers.get("range")))
                    skip = int(headers.get("content-length") or 0)
        except OSError:
            pass
        finally:
            with _suppress():
                upstream.shutdown(socket.SHUT_WR)

    def _down(self, upstream: socket.socket, client: socket.socket) -> None:
        try:
            while True:
                data = upstream.recv(65536)
                if not data:
                    break
                with self._lock:
                    self.received += len(data)
                client.sendall(data)
        except OSError:
            pass
        finally:
            for s in (client, upstream):
                with _suppress():
                    s.close()

    def close(self) -> None:
        self._closed = True
        self._sock.close()


def _suppress():
    import contextlib

    return contextlib.suppress(OSError)
