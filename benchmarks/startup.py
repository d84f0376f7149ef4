"""Start-up of the CLI: how long a person waits for help, a usage error, and a one-file ingest.

    python benchmarks/startup.py [--repeat 5] [--json]

Each case runs the real ``tracelens`` entry point in a fresh interpreter
(``python -c 'from tracelens.cli.main import main; main()'``), ``--repeat``
times in rotation, and reports the best and median wall time. The baseline,
measured in the same run, is a bare ``python -c pass``: the ratio says what
tracelens adds to the interpreter's own start-up, which is what the machine's
load moves least. Targets: help and usage errors under 0.3 s, ingest of one
small file under 1.5 s.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from machine import cpu_model

REPO = Path(__file__).resolve().parents[1]
ENTRY = "import sys; from tracelens.cli.main import main; sys.argv[0] = 'tracelens'; main()"


def cases(tmp: Path) -> list[tuple[str, list[str]]]:
    log = REPO / "sample_logs" / "anthropic_log.jsonl"
    return [
        ("python -c pass (baseline)", [sys.executable, "-c", "pass"]),
        ("tracelens --help", [sys.executable, "-c", ENTRY, "--help"]),
        *((f"tracelens {cmd} --bogus (usage error)", [sys.executable, "-c", ENTRY, cmd, "--bogus"])
          for cmd in ("ingest", "search", "show", "weekly", "replay", "collect", "tui")),
        ("tracelens ingest /nonexistent", [sys.executable, "-c", ENTRY, "ingest", "--store", str(tmp / "none"),
                                           str(tmp / "nonexistent.jsonl")]),
        ("tracelens ingest sample_logs/anthropic_log.jsonl", [sys.executable, "-c", ENTRY, "ingest", "--no-progress",
                                                               "--store", str(tmp / "store"), str(log)]),
    ]


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--repeat", type=int, default=5)
    ap.add_argument("--json", action="store_true")
    a = ap.parse_args(argv)
    with tempfile.TemporaryDirectory() as d:
        tmp = Path(d)
        todo = cases(tmp)
        times: dict[str, list[float]] = {name: [] for name, _ in todo}
        for _ in range(a.repeat):
            for name, cmd in todo:
                for p in (tmp / "store", tmp / "none"):
                    if p.exists():
                        subprocess.run(["rm", "-rf", str(p)], check=True)
                t0 = time.perf_counter()
                subprocess.run(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, cwd=REPO)
                times[name].append(time.perf_counter() - t0)
    base = min(times[todo[0][0]])
    rows = [{"case": n, "best_s": round(min(t), 3), "median_s": round(statistics.median(t), 3),
             "x_baseline": round(min(t) / base, 1)} for n, t in times.items()]
    if a.json:
        print(json.dumps({"cpu": cpu_model(), "repeat": a.repeat, "rows": rows}, indent=2))
        return 0
    print(f"{cpu_model()}, best / median of {a.repeat}")
    print(f"{'case':58} {'best s':>7} {'median s':>9} {'x python':>9}")
    for r in rows:
        print(f"{r['case']:58} {r['best_s']:7.3f} {r['median_s']:9.3f} {r['x_baseline']:9.1f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
