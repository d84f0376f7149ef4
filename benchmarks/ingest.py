"""Ingest throughput and memory against a floor measured in the same run.

    python benchmarks/ingest.py [--n 200000] [--workdir DIR]

Generates N Anthropic request/response log records, then measures
1. the floor: ``polars.read_ndjson(file).write_parquet(...)`` on the same file;
2. ``tracelens ingest`` (the real CLI, in a subprocess) into a fresh store.
Reports records/s, MB/s, peak RSS of each, and the ratio. Targets: ingest
within 3x of the floor; peak RSS under 1 GB for a 2 GB input (use
``--n 1500000`` for a ~2 GB file).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import random
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

TOPICS = ["refund", "order status", "password reset", "billing", "shipping", "warranty", "invoice", "discount"]


def generate(path: Path, n: int, seed: int = 1) -> None:
    rng = random.Random(seed)
    with path.open("w") as fh:
        for i in range(n):
            topic = rng.choice(TOPICS)
            day = 1 + i * 28 // n
            rec = {
                "timestamp": f"2026-11-{day:02d}T{rng.randrange(24):02d}:{rng.randrange(60):02d}:{rng.randrange(60):02d}Z",
                "latency_ms": round(rng.lognormvariate(6.5, 0.4), 1),
                "request_id": f"req_{i:012d}",
                "metadata": {"user_id": f"user-{rng.randrange(50000)}", "app": "support-bot", "session_id": f"s{i // 4}"},
                "request": {
                    "model": "claude-sonnet-4-5",
                    "max_tokens": 1024,
                    "temperature": 0.7,
                    "system": "You are the support assistant for Acme Store. Be concise and friendly. " * 3,
                    "messages": [
                        {"role": "user", "content": f"Hi, I have a question about my {topic} for order #{rng.randrange(10**6)}. "
                         + "It has been a few days and I have not heard back. " * rng.randrange(1, 4)}
                    ],
                },
                "response": {
                    "id": f"msg_{i:016d}",
                    "type": "message",
                    "role": "assistant",
                    "model": "claude-sonnet-4-5-20250929",
                    "content": [{"type": "text", "text": f"Thanks for reaching out about your {topic}. "
                                 + "Here is what I can see on your account and the next steps. " * rng.randrange(1, 6)}],
                    "stop_reason": "end_turn",
                    "stop_sequence": None,
                    "usage": {"input_tokens": rng.randrange(50, 400), "output_tokens": rng.randrange(20, 300)},
                },
            }
            fh.write(json.dumps(rec) + "\n")


def run_measured(cmd: list[str], env: dict | None = None) -> tuple[float, int]:
    """Wall seconds and peak RSS (bytes) of a child process."""
    t0 = time.perf_counter()
    before = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    p = subprocess.run(cmd, env=env, capture_output=True, text=True)
    wall = time.perf_counter() - t0
    if p.returncode not in (0,):
        sys.stderr.write(p.stdout + p.stderr)
        raise SystemExit(f"command failed: {' '.join(cmd)}")
    after = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    # ru_maxrss of children is the max over all children so far; run each in a fresh wrapper to isolate
    return wall, max(after, before) * 1024


def measure(cmd: list[str]) -> tuple[float, int]:
    code = (
        "import resource, subprocess, sys, time\n"
        "t=time.perf_counter(); p=subprocess.run(sys.argv[1:]); w=time.perf_counter()-t\n"
        "print(w, resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss*1024); sys.exit(p.returncode)\n"
    )
    p = subprocess.run([sys.executable, "-c", code, *cmd], capture_output=True, text=True)
    if p.returncode != 0:
        sys.stderr.write(p.stderr)
        raise SystemExit(f"command failed: {' '.join(cmd)}")
    wall, rss = p.stdout.strip().splitlines()[-1].split()
    return float(wall), int(rss)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--n", type=int, default=200_000)
    ap.add_argument("--workdir", default=None)
    ap.add_argument("--keep", action="store_true")
    a = ap.parse_args()
    work = Path(a.workdir or tempfile.mkdtemp(prefix="tracelens-bench-"))
    work.mkdir(parents=True, exist_ok=True)
    src = work / "anthropic.jsonl"
    t = time.perf_counter()
    generate(src, a.n)
    size = src.stat().st_size
    print(f"generated {a.n:,} records, {size / 1e6:.1f} MB in {time.perf_counter() - t:.1f}s", file=sys.stderr)
    floor_code = (
        "import polars as pl, sys; pl.read_ndjson(sys.argv[1]).write_parquet(sys.argv[2], compression='zstd')"
    )
    fw, frss = measure([sys.executable, "-c", floor_code, str(src), str(work / "floor.parquet")])
    store = work / "store"
    shutil.rmtree(store, ignore_errors=True)
    tl = shutil.which("tracelens", path=str(Path(sys.executable).parent)) or "tracelens"
    iw, irss = measure([tl, "ingest", "--store", str(store), "--no-progress", "--json", str(src)])
    rows = [
        ("polars read_ndjson+write_parquet (floor)", fw, frss),
        ("tracelens ingest", iw, irss),
    ]
    print(f"machine: {platform.machine()} {os.cpu_count()} cores, {platform.processor() or platform.platform()}")
    print(f"input: {a.n:,} records, {size / 1e6:.1f} MB")
    print(f"{'step':<44} {'seconds':>8} {'records/s':>11} {'MB/s':>7} {'peak RSS MB':>12}")
    for name, w, rss in rows:
        print(f"{name:<44} {w:8.1f} {a.n / w:11,.0f} {size / 1e6 / w:7.1f} {rss / 1e6:12.0f}")
    print(f"ratio ingest/floor: {iw / fw:.2f}x (target <= 3x)")
    if not a.keep and not a.workdir:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
