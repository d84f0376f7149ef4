"""Azurite, Microsoft's Azure Storage emulator, on 127.0.0.1 for tests: one blob service per test process.

``AzuriteServer.find()`` is the ``azurite-blob`` launcher: ``$TRACELENS_AZURITE``, else the one .ci/run installs
under ``.node/`` (``npm install --prefix .node azurite@VERSION``), else one on ``PATH``; None when there is none.
``start()`` runs it in memory (no files, telemetry off) on a free port and waits until it answers; ``env()`` is
the connection string that points tracelens at it; ``container(name)`` creates a container (a Shared Key signed
request: Azurite checks signatures as Azure does). Nothing here reaches the internet.
"""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import hmac
import http.client
import os
import shutil
import socket
import subprocess
import tempfile
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path

from tests.s3server import ServerProcess, free_port
from tracelens.objstore import AZURITE_ACCOUNT, AZURITE_KEY

REPO = Path(__file__).resolve().parents[1]


@dataclass
class AzuriteServer(ServerProcess):
    workdir: tempfile.TemporaryDirectory
    containers: list[str] = field(default_factory=list)

    @property
    def endpoint(self) -> str:
        """The blob endpoint of the emulator's account (path style: the account is the first path segment)."""
        return f"http://127.0.0.1:{self.port}/{AZURITE_ACCOUNT}"

    @staticmethod
    def find() -> str | None:
        for cand in (os.environ.get("TRACELENS_AZURITE"), str(REPO / ".node" / "node_modules" / ".bin" / "azurite-blob"),
                     shutil.which("azurite-blob")):
            if cand and os.access(cand, os.X_OK):
                return cand
        return None

    @classmethod
    def start(cls, binary: str) -> AzuriteServer:
        port = free_port()
        work = tempfile.TemporaryDirectory(prefix="azurite-")
        # --skipApiVersionCheck: object_store may send a newer x-ms-version than this Azurite knows;
        # --loose: ignore headers Azurite does not implement rather than refuse the request
        proc = subprocess.Popen([binary, "--blobHost", "127.0.0.1", "--blobPort", str(port), "--inMemoryPersistence",
                                 "--silent", "--skipApiVersionCheck", "--loose",
                                 "--disableTelemetry"],
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, cwd=work.name)
        deadline = time.monotonic() + 60
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), 0.2).close()
                return cls(port, proc, work)
            except OSError:
                if proc.poll() is not None or time.monotonic() > deadline:
                    proc.kill()
                    work.cleanup()
                    raise RuntimeError("Azurite did not start") from None
                time.sleep(0.1)

    def env(self) -> dict[str, str]:
        """The connection string the Azure CLI and SDKs take for this emulator (its published account and key)."""
        return {"AZURE_STORAGE_CONNECTION_STRING": f"DefaultEndpointsProtocol=http;AccountName={AZURITE_ACCOUNT};"
                                                   f"AccountKey={AZURITE_KEY};BlobEndpoint={self.endpoint};"}

    def container(self, name: str | None = None) -> str:
        name = name or f"tl-{uuid.uuid4().hex[:12]}"
        date = dt.datetime.now(dt.UTC).strftime("%a, %d %b %Y %H:%M:%S GMT")
        headers = {"x-ms-date": date, "x-ms-version": "2021-08-06"}
        # Shared Key: verb, eleven empty standard headers, the x-ms-* headers, then /account/path and the query
        to_sign = ("PUT\n" + "\n" * 11 + "".join(f"{k}:{v}\n" for k, v in sorted(headers.items()))
                   + f"/{AZURITE_ACCOUNT}/{AZURITE_ACCOUNT}/{name}\nrestype:container")
        sig = base64.b64encode(hmac.new(base64.b64decode(AZURITE_KEY), to_sign.encode(), hashlib.sha256).digest())
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=10)
        conn.request("PUT", f"/{AZURITE_ACCOUNT}/{name}?restype=container",
                     headers={**headers, "Authorization": f"SharedKey {AZURITE_ACCOUNT}:{sig.decode()}",
                              "Content-Length": "0"})
        resp = conn.getresponse()
        body = resp.read()
        conn.close()
        if resp.status != 201:
            raise RuntimeError(f"creating container {name}: {resp.status} {body[:200]!r}")
        self.containers.append(name)
        return name

    def stop(self) -> None:
        super().stop()
        self.workdir.cleanup()
