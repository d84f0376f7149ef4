"""Shared fixtures. Tests are offline and deterministic."""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
SHARED = REPO.parent / "shared" / "data"


def shared_path(*parts: str) -> Path:
    """A path under ../shared/data; skips the calling test when it is absent."""
    p = SHARED.joinpath(*parts)
    if not p.exists():
        pytest.skip(f"optional check: {p} not present")
    return p


@pytest.fixture
def store(tmp_path):
    """A new store of the default layout (Delta Lake tables in a local directory), as `tracelens ingest` makes."""
    from tracelens.storeopen import open_store

    return open_store(tmp_path / "store", create=True)


@pytest.fixture
def files_store(tmp_path):
    """A new store of the older file layout (``tracelens.store.Store``), still read and written."""
    from tracelens.store import Store

    return Store(tmp_path / "store", create=True)


def anthropic_line(i: int, *, ts: str = "2026-11-18T15:00:00Z", text: str | None = None, model: str = "claude-sonnet-4-5",
                   returned: str = "claude-sonnet-4-5-20250929", user: str = "u1", system: str = "You are helpful.",
                   prompt: str | None = None, stop: str = "end_turn") -> str:
    """One Anthropic request/response log line (our own fixture shape)."""
    return json.dumps(
        {
            "timestamp": ts,
            "latency_ms": 500 + i,
            "request_id": f"req_{i:06d}",
            "metadata": {"user_id": user, "app": "support"},
            "request": {
                "model": model,
                "max_tokens": 256,
                "system": system,
                "messages": [{"role": "user", "content": prompt or f"question number {i}"}],
            },
            "response": {
                "id": f"msg_{i:06d}",
                "type": "message",
                "role": "assistant",
                "model": returned,
                "content": [{"type": "text", "text": text or f"answer number {i}"}],
                "stop_reason": stop,
                "usage": {"input_tokens": 10, "output_tokens": 5},
            },
        }
    )


@pytest.fixture
def anthropic_file(tmp_path):
    def make(n: int = 10, name: str = "log.jsonl", **kw) -> Path:
        p = tmp_path / name
        p.write_text("\n".join(anthropic_line(i, **kw) for i in range(n)) + "\n")
        return p

    return make


def cli_line(argv: list[str], env: dict[str, str]) -> tuple[int, str, float]:
    """Run the CLI in a fresh process with ``env`` added: its exit code, stderr and wall time (seconds)."""
    import subprocess
    import sys
    import time

    start = time.monotonic()
    p = subprocess.run([sys.executable, "-m", "tracelens.cli.main", *argv], capture_output=True, text=True,
                       env={**os.environ, "PYTHONPATH": str(REPO / "src"), **env}, timeout=60)
    return p.returncode, p.stderr, time.monotonic() - start


def without_names(obj, names: tuple[str, ...]):
    """``obj`` (JSON data) without the fields whose value names a store (its path or URL): what differs between
    two stores' otherwise equal reports."""
    if isinstance(obj, dict):
        return {k: without_names(v, names) for k, v in obj.items()
                if not (isinstance(v, str) and any(n in v for n in names))}
    if isinstance(obj, list):
        return [without_names(v, names) for v in obj]
    return obj


def _stat(pid: int) -> list[str] | None:
    """Fields of /proc/PID/stat after the command name (state is [0], ppid [1], start time [19]); None if gone."""
    try:
        raw = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return raw.rsplit(")", 1)[1].split()


def children(pid: int) -> list[tuple[int, str]]:
    """Live child processes of ``pid`` as (pid, start time), so a recycled pid is not mistaken for one (Linux)."""
    out = []
    for d in Path("/proc").iterdir():
        if d.name.isdigit():
            st = _stat(int(d.name))
            if st and st[1] == str(pid) and st[0] != "Z":
                out.append((int(d.name), st[19]))
    return out


def assert_all_exit(procs: list[tuple[int, str]], within: float = 5.0) -> None:
    """Each (pid, start time) is gone (or a zombie awaiting its reaper) within ``within`` seconds."""
    deadline = time.monotonic() + within
    alive = procs
    while alive and time.monotonic() < deadline:
        time.sleep(0.1)
        alive = [(pid, start) for pid, start in alive if (st := _stat(pid)) and st[19] == start and st[0] != "Z"]
    for pid, _ in alive:  # do not leave them behind for the next test
        with __import__("contextlib").suppress(OSError):
            os.kill(pid, 9)
    assert not alive, f"processes still alive {within}s after their parent was killed: {[p for p, _ in alive]}"


def pytest_sessionfinish(session, exitstatus):
    """Drop hypothesis's GC timing callback once the tests are over.

    pytest-xdist stops a worker by interrupting its main thread; when a garbage
    collection runs at that moment, the KeyboardInterrupt lands inside that
    callback and pytest reports it as an "unraisable exception" warning after
    the run. Nothing measures GC time after the session, so the callback goes.
    """
    import gc

    gc.callbacks[:] = [cb for cb in gc.callbacks if not getattr(cb, "__module__", "").startswith("hypothesis.")]


@pytest.fixture(scope="session")
def s3_server():
    """A moto S3 server on 127.0.0.1 for this test process (see tests/s3server.py)."""
    from tests.s3server import S3Server

    server = S3Server.start()
    yield server
    server.stop()


@pytest.fixture
def s3_env(s3_server, monkeypatch):
    """The environment pointing object-storage clients at ``s3_server``; returns the server."""
    for key in ("AWS_PROFILE", "AWS_SESSION_TOKEN", "AWS_ENDPOINT_URL_S3", "AWS_S3_LOCKING_PROVIDER"):
        monkeypatch.delenv(key, raising=False)
    for key, value in s3_server.env().items():
        monkeypatch.setenv(key, value)
    return s3_server


STORE_KINDS = ["files", "delta", "delta-s3"]


@pytest.fixture(params=STORE_KINDS)
def make_store(request, tmp_path):
    """A factory of new, empty stores of one kind: the older file layout (``tracelens.store.Store``), the
    default Delta Lake layout in a local directory, or a Delta Lake store on the moto S3 server
    (``tracelens.deltastore``). ``make_store.kind`` and ``make_store.url(name)`` say which."""
    kind = request.param
    bucket = request.getfixturevalue("s3_env").bucket() if kind == "delta-s3" else None

    def url(name: str = "store") -> str:
        return f"s3://{bucket}/{name}" if kind == "delta-s3" else str(tmp_path / name)

    def make(name: str = "store"):
        if kind == "files":
            from tracelens.store import Store

            return Store(url(name), create=True)
        from tracelens.storeopen import open_store

        return open_store(url(name), create=True)

    make.kind = kind
    make.url = url
    return make


@pytest.fixture
def any_store(make_store):
    """A new store of each kind (see ``make_store``)."""
    return make_store()
