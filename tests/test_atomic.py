"""The one atomic-write helper: content replaced whole or not at all, never a partial file, temp files hidden."""

from __future__ import annotations

import json
import multiprocessing as mp
import os
import signal
import time

import pytest

from tracelens import atomic
from tracelens.store import Store, store_lock


def test_write_json_replaces_content_and_leaves_no_temp(tmp_path):
    p = tmp_path / "doc.json"
    atomic.write_json(p, {"a": 1})
    atomic.write_json(p, {"a": 2, "text": "é"})
    assert json.loads(p.read_text(encoding="utf-8")) == {"a": 2, "text": "é"}
    assert [x.name for x in tmp_path.iterdir()] == ["doc.json"]


def test_failed_writer_leaves_old_content(tmp_path):
    p = tmp_path / "doc.bin"
    atomic.write_bytes(p, b"old")
    with pytest.raises(RuntimeError), atomic.atomic_path(p) as tmp:
        tmp.write_bytes(b"half")
        raise RuntimeError("writer died")
    assert p.read_bytes() == b"old"
    assert [x.name for x in tmp_path.iterdir()] == ["doc.bin"]


def test_mode_is_applied(tmp_path):
    p = atomic.write_bytes(tmp_path / "secret", b"k", mode=0o600)
    assert (p.stat().st_mode & 0o777) == 0o600


def test_temp_name_is_recognised_and_never_a_link_target(tmp_path):
    # a link planted where a temp file might go is never followed: temp names are random and opened O_EXCL
    with atomic.atomic_path(tmp_path / "x.json") as tmp:
        assert atomic.is_temp(tmp)
        tmp.write_text("{}")
    assert not atomic.is_temp(tmp_path / "x.json")


def _writer(path: str, n: int) -> None:
    big = b"x" * (1 << 20)
    for i in range(n):
        atomic.write_bytes(path, bytes([i % 256]) + big)


def test_killed_writer_never_leaves_a_partial_file(tmp_path):
    p = tmp_path / "big.bin"
    atomic.write_bytes(p, b"\x00" + b"x" * (1 << 20))
    ctx = mp.get_context("fork")
    proc = ctx.Process(target=_writer, args=(str(p), 10_000))
    proc.start()
    time.sleep(0.3)
    os.kill(proc.pid, signal.SIGKILL)
    proc.join()
    data = p.read_bytes()
    assert len(data) == 1 + (1 << 20)  # one whole version, whichever it was
    leftovers = [x for x in tmp_path.iterdir() if x.name != "big.bin"]
    assert all(atomic.is_temp(x) for x in leftovers)


def test_store_lock_excludes_a_second_writer(tmp_path):
    Store(tmp_path / "st", create=True)
    with store_lock(tmp_path / "st") as got:
        assert got
        ctx = mp.get_context("fork")
        q = ctx.Queue()

        def probe():
            with store_lock(tmp_path / "st", blocking=False) as other:
                q.put(other)

        proc = ctx.Process(target=probe)
        proc.start()
        proc.join(10)
        assert q.get(timeout=5) is False
