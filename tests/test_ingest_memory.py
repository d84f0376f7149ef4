"""Ingest memory is bounded by the largest record, not by the file or the number of large records.

A file with 100 MB lines (each a 50 MB prompt and a 50 MB response, so that
the importer, the content hash, the refusal detector and the Parquet writer
all handle large texts) between ordinary lines is ingested in a fresh process
as the CLI does it: format sniffed, refusal detector on, worker processes
allowed. Its RSS, summed over the process and its workers and sampled every
10 ms, must stay under 1 GiB (docs/formats.md, "Memory"). Before batches
were bounded by bytes, this input peaked at about 2.8 GB.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.conftest import REPO, anthropic_line

psutil = pytest.importorskip("psutil")

LIMIT = 1024 * 1024 * 1024
BIG = 100 * 1024 * 1024


def _big_line(i: int) -> bytes:
    """An anthropic_log line of ~BIG bytes: half prompt, half response (built as bytes: quick)."""
    rec = json.loads(anthropic_line(900 + i))
    rec["request"]["messages"][0]["content"] = "@PROMPT@"
    rec["response"]["content"][0]["text"] = "@ANSWER@"
    half = b"lorem ipsum dolor sit amet, consectetur " * (BIG // 2 // 40)
    line = json.dumps(rec).encode()
    return line.replace(b"@PROMPT@", b"%d " % i + half).replace(b"@ANSWER@", b"%d " % i + half)


def _peak_rss(cmd: list[str], env: dict) -> tuple[int, subprocess.CompletedProcess]:
    """Run ``cmd``; the largest RSS summed over it and its children, sampled every 10 ms."""
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    top = psutil.Process(proc.pid)
    peak = 0
    while proc.poll() is None:
        try:
            total = top.memory_info().rss + sum(c.memory_info().rss for c in top.children(recursive=True))
            peak = max(peak, total)
        except psutil.Error:
            pass
        time.sleep(0.01)
    out, err = proc.communicate()
    return peak, subprocess.CompletedProcess(cmd, proc.returncode, out, err)


@pytest.mark.slow
def test_peak_rss_stays_under_1gib_with_100mb_lines(tmp_path: Path):
    path = tmp_path / "big.jsonl"
    with open(path, "wb") as f:
        for i in range(2):
            for j in range(50):
                f.write(anthropic_line(i * 100 + j).encode() + b"\n")
            f.write(_big_line(i) + b"\n")
    code = (
        "import json, sys\n"
        "from tracelens.ingest.pipeline import ingest\n"
        "from tracelens.store import Store\n"
        "s = ingest(Store(sys.argv[1], create=True), [sys.argv[2]], workers=2)\n"
        "print(json.dumps(s.to_dict()['totals']))\n"
    )
    env = {**os.environ, "PYTHONPATH": str(REPO / "src")}
    peak, res = _peak_rss([sys.executable, "-c", code, str(tmp_path / "store"), str(path)], env)
    assert res.returncode == 0, res.stderr.decode()[-2000:]
    totals = json.loads(res.stdout)
    assert (totals["records"], totals["stored"], totals["quarantined"]) == (102, 102, 0)
    assert peak < LIMIT, f"peak RSS {peak / 2**20:.0f} MiB for 100 MB lines (limit {LIMIT / 2**20:.0f} MiB)"
