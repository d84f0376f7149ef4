"""Ingest worker processes end when the ingest that started them is killed (no orphans)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import pytest

from tests.conftest import REPO, anthropic_line, assert_all_exit, children

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc; the parallel path is Linux-only")

# Without PR_SET_PDEATHSIG (ctypes unusable once everything is imported) the parent-pid watchdog alone must
# end the workers.
_NO_PRCTL = "import ctypes\ndef _no(*a, **k):\n    raise OSError('no libc')\nctypes.CDLL = _no\n"


def _slow_ingest(tmp_path, prelude: str = "") -> subprocess.Popen:
    src = tmp_path / "big.jsonl"
    with src.open("w") as fh:
        for i in range(6000):
            fh.write(anthropic_line(i, ts=f"2026-11-{10 + i % 5:02d}T12:00:00Z") + "\n")
    code = (
        "from tracelens.store import Store\nfrom tracelens.ingest.pipeline import ingest\n" + prelude +
        f"s = Store({str(tmp_path / 'store')!r}, create=True)\n"
        f"ingest(s, [{str(src)!r}], batch_size=300, enricher=False, workers=2)\n"
    )
    env = {**os.environ, "PYTHONPATH": str(REPO / "src"), "TRACELENS_TEST_PAUSE_APPLY": "0.2"}
    return subprocess.Popen([sys.executable, "-c", code], env=env)


def _wait_for_workers(p: subprocess.Popen, n: int) -> list[tuple[int, str]]:
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline and p.poll() is None:
        kids = children(p.pid)
        if len(kids) >= n:
            return kids
        time.sleep(0.05)
    p.kill()
    pytest.fail("the ingest never started its worker processes")


@pytest.mark.parametrize("prelude", ["", _NO_PRCTL], ids=["pdeathsig", "watchdog-only"])
def test_sigkill_of_ingest_leaves_no_worker_alive(tmp_path, prelude):
    p = _slow_ingest(tmp_path, prelude)
    workers = _wait_for_workers(p, 2)
    time.sleep(0.3)  # let them get busy with chunks
    p.send_signal(signal.SIGKILL)
    p.wait()
    assert_all_exit(workers, within=5.0)
