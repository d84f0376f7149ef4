"""Scaling out with Ray: the same ingest + embed + weekly job on the local engine and on 1 and 2 Ray workers.

One command (defaults run in a few minutes on 2 cores)::

    PYTHONPATH=src .venv/bin/python benchmarks/scale_ray.py [--files 8] [--per-file 2500] [--embed-per-day 12]
                                                            [--repeats 1] [--keep DIR]

What it does:

1. writes a corpus of ``--files`` Anthropic-style JSONL files of
   ``--per-file`` records each, spread over two ISO weeks (2026-W46, W47),
   prompts and answers nearly all distinct, a few refusals;
2. for each configuration, in a fresh interpreter and a fresh store, runs
   the three stages and times each (wall clock):

   * ``ingest`` of the corpus (``engine.ingest``; the local engine with its
     default worker processes),
   * ``embed`` of the prompt and response texts of ``--embed-per-day``
     traces per day (bundled MiniLM, torch on the CPU; a sample, because
     the CPU encodes ~40 texts/s here),
   * ``weekly`` of 2026-W47 without embeddings (refusal labels, both
     windows, the 8-week history, the analysis);

   configurations: ``local`` (the baseline), ``ray-1`` (a local Ray started
   with 1 CPU: one ingest task, one embedding actor at a time) and ``ray-2``
   (2 CPUs). Ray's start-up is timed apart (``ray.init``), not in the stages.
   With ``--repeats`` > 1 the configurations alternate (local, ray-1, ray-2,
   local, ...) and each figure is the median;
3. checks that every configuration stored the same rows and the same report
   (trace count, quarantine count, vector count, report findings);
4. prints a Markdown table: seconds and throughput per stage and
   configuration, the ray-2 / ray-1 scaling ratio and each against local,
   the load average before and after (the machine is shared).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "benchmarks"))
CONFIGS = ("local", "ray-1", "ray-2")


def write_corpus(d: Path, files: int, per_file: int) -> int:
    """``files`` JSONL files of ``per_file`` records over 2026-W46..W47; returns the record count."""
    import datetime as dt

    d.mkdir(parents=True, exist_ok=True)
    start = dt.datetime(2026, 11, 9, tzinfo=dt.UTC)
    span = 14 * 24 * 3600
    n = 0
    for f in range(files):
        with open(d / f"log{f:03d}.jsonl", "w") as out:
            for j in range(per_file):
                i = f * per_file + j
                ts = start + dt.timedelta(seconds=(i * 7919) % span)
                refused = i % 23 == 0 or (ts.day >= 16 and i % 9 == 0)
                text = "I can't help with that request." if refused else f"Order {i} ships from warehouse {i % 97} " \
                    f"in {3 + i % 5} days; the tracking code is TRK{i * 31 % 100000:05d}."
                line = {
                    "timestamp": ts.isoformat().replace("+00:00", "Z"), "latency_ms": 300 + (i * 37) % 900,
                    "request_id": f"req_{i:08d}", "metadata": {"user_id": f"u{i % 500}", "app": "support"},
                    "request": {"model": "claude-sonnet-4-5", "max_tokens": 512, "system": "You are helpful.",
                                "messages": [{"role": "user", "content": f"Where is my order {i}? I paid "
                                                                          f"{i % 300} dollars on day {i % 28}."}]},
                    "response": {"id": f"msg_{i:08d}", "type": "message", "role": "assistant",
                                 "model": "claude-sonnet-4-5-20250929", "content": [{"type": "text", "text": text}],
                                 "stop_reason": "end_turn", "usage": {"input_tokens": 20 + i % 50,
                                                                      "output_tokens": 10 + i % 80}},
                }
                out.write(json.dumps(line) + "\n")
                n += 1
    return n


def run_config(config: str, corpus: str, store: str, embed_per_day: int) -> dict:
    """The three stages in this process on ``config``; returns seconds per stage and what was stored."""
    from tracelens.engines import get_engine
    from tracelens.store import Store

    out: dict = {"config": config}
    if config == "local":
        engine = get_engine("local")
    else:
        import ray

        cpus = int(config.split("-")[1])
        t0 = time.perf_counter()
        ray.init(num_cpus=cpus, include_dashboard=False, log_to_driver=False, configure_logging=False,
                 runtime_env={"env_vars": {"PYTHONPATH": str(ROOT / "src")}})
        out["ray_init_s"] = time.perf_counter() - t0
        engine = get_engine("ray")
        if os.environ.get("SCALE_RAY_COUNTS") == "ray":
            from tracelens.engines import rayengine

            rayengine.COUNT_ON_RAY_BYTES = 0  # the refusal counts on Ray Data however small the store
    st = Store(store, create=True)
    t0 = time.perf_counter()
    summary = engine.ingest(st, [corpus])
    out["ingest_s"] = time.perf_counter() - t0
    out["stored"] = summary.total("stored")
    out["quarantined"] = summary.total("quarantined")
    t0 = time.perf_counter()
    res = engine.embed(Store(store), None, sample_per_day=embed_per_day, columns=("prompt_text", "response_text"))
    out["embed_s"] = time.perf_counter() - t0
    out["embedded"] = res.embedded
    t0 = time.perf_counter()
    report = engine.weekly_run(Store(store), "2026-W47", embed=False, timeline=False).report
    out["weekly_s"] = time.perf_counter() - t0
    out["weekly_traces"] = report.baseline.n + report.current.n
    out["findings"] = sorted(f"{f.kind}|{f.segment}|{f.significant}" for f in report.findings)
    out["trend"] = [(p.n, p.refusals) for p in (report.trend or ())]
    if config != "local":
        import ray

        ray.shutdown()
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--files", type=int, default=8)
    ap.add_argument("--per-file", type=int, default=2500)
    ap.add_argument("--embed-per-day", type=int, default=12)
    ap.add_argument("--repeats", type=int, default=1)
    ap.add_argument("--keep", help="Work directory to keep (default: a temporary one, removed).")
    ap.add_argument("--child", nargs=4, metavar=("CONFIG", "CORPUS", "STORE", "EMBED"), help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        config, corpus, store, embed = args.child
        print(json.dumps(run_config(config, corpus, store, int(embed))))
        return

    from machine import cpu_model

    work = Path(args.keep or tempfile.mkdtemp(prefix="scale_ray_"))
    corpus = work / "corpus"
    if corpus.exists():
        shutil.rmtree(corpus)
    load0 = Path("/proc/loadavg").read_text().split()[0]
    n = write_corpus(corpus, args.files, args.per_file)
    print(f"corpus: {n:,} records in {args.files} files", file=sys.stderr)
    runs: dict[str, list[dict]] = {c: [] for c in CONFIGS}
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(p for p in (str(ROOT / "src"), os.environ.get("PYTHONPATH"))
                                                       if p)}
    for rep in range(args.repeats):
        for config in CONFIGS:
            store = work / f"store-{config}-{rep}"
            shutil.rmtree(store, ignore_errors=True)
            print(f"run {rep + 1}/{args.repeats}: {config} ...", file=sys.stderr)
            p = subprocess.run([sys.executable, __file__, "--child", config, str(corpus), str(store),
                                str(args.embed_per_day)], capture_output=True, text=True, env=env)
            if p.returncode:
                sys.exit(f"{config} failed:\n{p.stderr[-4000:]}")
            runs[config].append(json.loads(p.stdout.strip().splitlines()[-1]))
            shutil.rmtree(store, ignore_errors=True)
    load1 = Path("/proc/loadavg").read_text().split()[0]
    if not args.keep:
        shutil.rmtree(work, ignore_errors=True)

    first = runs["local"][0]
    same = all(r[k] == first[k] for rs in runs.values() for r in rs
               for k in ("stored", "quarantined", "embedded", "weekly_traces", "findings", "trend"))

    def med(config: str, key: str) -> float:
        return statistics.median(r[key] for r in runs[config])

    print(f"Machine: {cpu_model()}, {os.cpu_count()} CPUs, Python {sys.version.split()[0]}; "
          f"1-min load average {load0} before, {load1} after; median of {args.repeats} run(s) per configuration, "
          f"alternating.\n")
    print(f"Corpus: {n:,} records in {args.files} files; embed: {first['embedded']:,} distinct texts "
          f"({args.embed_per_day} traces per day); weekly: {first['weekly_traces']:,} traces in the two windows. "
          f"Same rows, vectors and report in every configuration: {'yes' if same else 'NO'}.\n")
    units = {"ingest": (n, "records/s"), "embed": (first["embedded"], "texts/s"),
             "weekly": (first["weekly_traces"], "traces/s")}
    print("| stage | local | ray-1 | ray-2 | ray-2 / ray-1 | ray-2 vs local |")
    print("|---|---|---|---|---|---|")
    for stage, (count, unit) in units.items():
        cells = []
        for c in CONFIGS:
            s = med(c, f"{stage}_s")
            cells.append(f"{s:.1f} s ({count / s:,.0f} {unit})")
        r1, r2, loc = med("ray-1", f"{stage}_s"), med("ray-2", f"{stage}_s"), med("local", f"{stage}_s")
        print(f"| {stage} | {' | '.join(cells)} | {r1 / r2:.2f}x | {loc / r2:.2f}x |")
    print(f"\nRay start-up (`ray.init`, not in the stages): ray-1 {med('ray-1', 'ray_init_s'):.1f} s, "
          f"ray-2 {med('ray-2', 'ray_init_s'):.1f} s.")


if __name__ == "__main__":
    main()
