"""Ingest throughput and memory against a floor measured in the same run.

    python benchmarks/ingest.py [--n 200000] [--repeat 3] [--workdir DIR] [--json]

Generates N Anthropic request/response log records, then, ``--repeat`` times
(in rotation, so load on a shared machine hits every variant alike), measures

1. the floor: ``polars.read_ndjson(file).write_parquet(...)`` on the same file;
2. ``tracelens ingest`` (the real CLI, in a subprocess) into a fresh store,
   refusal detector on (what users run);
3. the pipeline without the detector (``ingest(..., enricher=False)`` in a
   fresh interpreter; no CLI start-up);
4. the pipeline with the detector, likewise (``--no-direct`` skips 3 and 4).

Every variant runs in a fresh process; its wall time, CPU time (user+sys, all
its processes) and peak memory are recorded. Peak memory is sampled every
50 ms over the process and its children (workers): the largest sum of RSS
(pages shared by forked workers counted once per process, so it overstates)
and the largest sum of PSS (shared pages split between the processes: the
memory the run really holds). Reports the median over repeats of each figure
and of the ratio to the floor of the same repeat. Targets: the CLI within 2.0x of
the floor in CPU time and 2.5x in wall time; peak RSS under 1 GB for a 2 GB input (``--n 1500000`` gives
~1.8 GB).

``--workers N`` sets TRACELENS_INGEST_WORKERS for the ingest runs (0 = serial).
``--baseline-src DIR`` also runs every ingest variant with ``PYTHONPATH=DIR``
(e.g. a copy of ``src/`` from an older commit), in the same rotation, so that
before/after ratios come from the same load on a shared machine.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import platform
import random
import shutil
import statistics
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


# Runs a command and reports wall seconds, CPU seconds of the whole process tree, and the peak
# of the summed RSS of the tree (sampled). Runs in its own interpreter so that RUSAGE_CHILDREN
# covers exactly one measured command.
_MEASURE = r"""
import json, resource, subprocess, sys, threading, time
try:
    import psutil
except ImportError:
    psutil = None
t = time.perf_counter()
p = subprocess.Popen(sys.argv[1:], stdout=subprocess.PIPE)
peak = [0, 0]
def sample():
    if psutil is None:
        return
    try:
        root = psutil.Process(p.pid)
    except psutil.Error:
        return
    while p.poll() is None:
        rss = pss = 0
        try:
            procs = [root] + root.children(recursive=True)
        except psutil.Error:
            break
        for q in procs:
            try:
                m = q.memory_full_info()  # pss counts pages shared by forked workers once
                rss += m.rss
                pss += getattr(m, "pss", m.rss)
            except psutil.Error:
                pass
        peak[0] = max(peak[0], rss)
        peak[1] = max(peak[1], pss)
        time.sleep(0.05)
th = threading.Thread(target=sample, daemon=True)
th.start()
out = p.communicate()[0]
w = time.perf_counter() - t
th.join(1)
r = resource.getrusage(resource.RUSAGE_CHILDREN)
print(json.dumps({"wall": w, "cpu": r.ru_utime + r.ru_stime, "max_single_rss": r.ru_maxrss * 1024,
                  "tree_rss": peak[0], "tree_pss": peak[1], "rc": p.returncode,
                  "stdout": out.decode(errors="replace")[-4000:]}))
"""

_DIRECT = (
    "import sys; from tracelens.store import Store; from tracelens.ingest.pipeline import ingest\n"
    "s = ingest(Store(sys.argv[1], create=True), [sys.argv[2]], enricher=sys.argv[3] == '1')\n"
    "assert all(f.reconciles and not f.error for f in s.files), s.to_dict()\n"
    "print(s.to_dict()['totals'])\n"
)


def measure(cmd: list[str], env: dict | None = None) -> dict:
    p = subprocess.run([sys.executable, "-c", _MEASURE, *cmd], capture_output=True, text=True, env=env)
    if p.returncode != 0 or not p.stdout.strip():
        sys.stderr.write(p.stdout + p.stderr)
        raise SystemExit(f"measurement failed: {' '.join(cmd)}")
    m = json.loads(p.stdout.strip().splitlines()[-1])
    if m["rc"] != 0:
        sys.stderr.write(p.stderr)
        raise SystemExit(f"command failed ({m['rc']}): {' '.join(cmd)}")
    m["tree_rss"] = max(m["tree_rss"], m["max_single_rss"])  # no psutil: the largest single process
    m["tree_pss"] = m["tree_pss"] or m["tree_rss"]
    return m


def machine() -> dict:
    cpu = platform.processor() or ""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    mem = None
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal"):
                mem = round(int(line.split()[1]) / 1e6, 1)
    except OSError:
        pass
    versions = {}
    for mod in ("polars", "pyarrow", "orjson"):
        with contextlib.suppress(ImportError):
            versions[mod] = __import__(mod).__version__
    return {
        "cpu": cpu,
        "cores": os.cpu_count(),
        "usable_cores": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count(),
        "memory_gb": mem,
        "python": platform.python_version(),
        "platform": platform.platform(),
        "load_avg_at_start": [round(x, 2) for x in os.getloadavg()] if hasattr(os, "getloadavg") else None,
        **versions,
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--n", type=int, default=200_000)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--workdir", default=None)
    ap.add_argument("--keep", action="store_true")
    ap.add_argument("--workers", type=int, default=None, help="TRACELENS_INGEST_WORKERS for the ingest runs")
    ap.add_argument("--no-direct", action="store_true", help="only the floor and the CLI")
    ap.add_argument("--no-cli", action="store_true", help="only the floor and the direct pipeline runs")
    ap.add_argument("--json", action="store_true", help="print the results as JSON on stdout")
    ap.add_argument("--baseline-src", default=None, help="also run the ingest variants with PYTHONPATH=DIR")
    a = ap.parse_args()
    work = Path(a.workdir or tempfile.mkdtemp(prefix="tracelens-bench-"))
    work.mkdir(parents=True, exist_ok=True)
    src = work / f"anthropic-{a.n}.jsonl"
    t = time.perf_counter()
    if not src.exists():
        generate(src, a.n)
    size = src.stat().st_size
    print(f"input {a.n:,} records, {size / 1e6:.1f} MB ({time.perf_counter() - t:.1f}s)", file=sys.stderr)
    env = dict(os.environ)
    if a.workers is not None:
        env["TRACELENS_INGEST_WORKERS"] = str(a.workers)
    tl = shutil.which("tracelens", path=str(Path(sys.executable).parent)) or "tracelens"
    store = work / "store"
    floor_code = "import polars as pl, sys; pl.read_ndjson(sys.argv[1]).write_parquet(sys.argv[2], compression='zstd')"
    variants: list[tuple[str, list[str], dict | None]] = [
        ("floor: polars read_ndjson + write_parquet", [sys.executable, "-c", floor_code, str(src), str(work / "floor.parquet")],
         None),
    ]
    if not a.no_cli:
        variants.append(("tracelens ingest (CLI, detector on)",
                         [tl, "ingest", "--store", str(store), "--no-progress", "--json", str(src)], env))
    if not a.no_direct:
        variants.append(("pipeline, detector off", [sys.executable, "-c", _DIRECT, str(store), str(src), "0"], env))
        variants.append(("pipeline, detector on", [sys.executable, "-c", _DIRECT, str(store), str(src), "1"], env))
    if a.baseline_src:
        base_env = dict(env)
        base_env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(Path(a.baseline_src).resolve()),
                                                               env.get("PYTHONPATH")]))
        variants += [(f"{name} [baseline]", cmd, base_env) for name, cmd, _ in variants[1:]]
    runs: dict[str, list[dict]] = {name: [] for name, _, _ in variants}
    info = machine()
    for r in range(a.repeat):
        for name, cmd, e in variants:
            shutil.rmtree(store, ignore_errors=True)
            m = measure(cmd, e)
            runs[name].append(m)
            print(f"  repeat {r + 1}: {name}: {m['wall']:.1f}s wall, {m['cpu']:.1f}s CPU, "
                  f"{m['tree_rss'] / 1e6:.0f} MB", file=sys.stderr)
    floor = runs[variants[0][0]]
    rows = []
    for name, _, _ in variants:
        ms = runs[name]
        wall = statistics.median(m["wall"] for m in ms)
        rows.append({
            "step": name,
            "wall_s": round(wall, 2),
            "cpu_s": round(statistics.median(m["cpu"] for m in ms), 2),
            "records_per_s": round(a.n / wall),
            "mb_per_s": round(size / 1e6 / wall, 1),
            "peak_rss_mb": round(statistics.median(m["tree_rss"] for m in ms) / 1e6),
            "peak_pss_mb": round(statistics.median(m["tree_pss"] for m in ms) / 1e6),
            "ratio_wall": round(statistics.median(m["wall"] / f["wall"] for m, f in zip(ms, floor, strict=True)), 2),
            "ratio_cpu": round(statistics.median(m["cpu"] / f["cpu"] for m, f in zip(ms, floor, strict=True)), 2),
            "walls": [round(m["wall"], 2) for m in ms],
        })
    info["load_avg_at_end"] = [round(x, 2) for x in os.getloadavg()] if hasattr(os, "getloadavg") else None
    result = {"n": a.n, "mb": round(size / 1e6, 1), "repeat": a.repeat, "workers": a.workers, "machine": info,
              "rows": rows}
    if a.json:
        print(json.dumps(result, indent=2))
    else:
        print(f"machine: {info['cpu']}, {info['usable_cores']} usable cores, {info['memory_gb']} GB, "
              f"Python {info['python']}, polars {info.get('polars')}, pyarrow {info.get('pyarrow')}; "
              f"load average {info['load_avg_at_start']} -> {info['load_avg_at_end']}")
        print(f"input: {a.n:,} records, {size / 1e6:.1f} MB; median of {a.repeat}")
        print(f"{'step':<53} {'wall s':>7} {'CPU s':>7} {'records/s':>10} {'MB/s':>6} {'RSS MB':>7} {'PSS MB':>7} "
              f"{'x floor':>8} {'x floor CPU':>11}")
        for r in rows:
            print(f"{r['step']:<53} {r['wall_s']:7.1f} {r['cpu_s']:7.1f} {r['records_per_s']:10,} {r['mb_per_s']:6.1f} "
                  f"{r['peak_rss_mb']:7,} {r['peak_pss_mb']:7,} {r['ratio_wall']:8.2f} {r['ratio_cpu']:11.2f}")
        print("targets: the CLI (labels on) <= 2.0x the floor in CPU time and <= 2.5x in wall time; "
              "peak RSS summed over processes < 1 GB for a 2 GB input")
    if not a.keep and not a.workdir:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
