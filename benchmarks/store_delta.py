"""Ingest into a Delta Lake store (a local directory, the default, and a local S3 server) against a store of the
older file layout, in the same run.

    python benchmarks/store_delta.py [--weeks 2] [--per-day 200] [--batch-size 500] [--repeat 3]

Generates the sample production logs (``tracelens.samples``), then ``--repeat`` times, in rotation so the
machine's load hits every variant alike, ingests them into a fresh store of each kind (the older file layout,
Delta Lake in a local directory, ``s3://`` Delta Lake on moto's server on 127.0.0.1, tests/s3server.py) and
ingests them again (all duplicates). Prints the median wall time per kind and its ratio to the file layout's, with
the 1-minute load average before and after. moto is a Python server: its S3 figures bound the request count
and the commit path's cost, not what S3 itself would take.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
import uuid
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--weeks", type=int, default=2)
    ap.add_argument("--per-day", type=int, default=200)
    ap.add_argument("--batch-size", type=int, default=500)
    ap.add_argument("--repeat", type=int, default=3)
    args = ap.parse_args()
    import os

    from tests.s3server import S3Server
    from tracelens.ingest.pipeline import ingest
    from tracelens.samples.generator import main as generate
    from tracelens.store import Store
    from tracelens.storeopen import open_store

    load0 = Path("/proc/loadavg").read_text().split()[0]
    work = Path(tempfile.mkdtemp(prefix="tl-delta-bench-"))
    logs = work / "logs"
    generate(["--out", str(logs), "--weeks", str(args.weeks), "--per-day", str(args.per_day)])
    server = S3Server.start()
    os.environ.update(server.env())
    bucket = server.bucket()
    kinds = {"files": lambda u: str(work / u), "delta-local": lambda u: str(work / u),
             "delta-s3": lambda u: f"s3://{bucket}/{u}"}
    res: dict[str, list[tuple[float, float]]] = {k: [] for k in kinds}
    try:
        for _ in range(args.repeat):
            for kind, url in kinds.items():
                name = url(uuid.uuid4().hex[:8])
                store = Store(name, create=True) if kind == "files" else open_store(name, create=True)
                t = time.perf_counter()
                r1 = ingest(store, [str(logs)], enricher=False, batch_size=args.batch_size)
                first = time.perf_counter() - t
                t = time.perf_counter()
                r2 = ingest(store, [str(logs)], enricher=False, batch_size=args.batch_size)
                again = time.perf_counter() - t
                assert r2.total("stored") == 0 and r2.total("duplicates") == r1.total("stored")
                res[kind].append((first, again))
    finally:
        server.stop()
    base = [statistics.median(x[i] for x in res["files"]) for i in (0, 1)]
    print(f"{r1.total('stored'):,} traces, batch size {args.batch_size}, median of {args.repeat}")
    print(f"{'store':<12}{'ingest s':>10}{'ratio':>8}{'re-ingest s':>13}{'ratio':>8}")
    for kind, v in res.items():
        m = [statistics.median(x[i] for x in v) for i in (0, 1)]
        print(f"{kind:<12}{m[0]:>10.2f}{m[0] / base[0]:>8.2f}{m[1]:>13.2f}{m[1] / base[1]:>8.2f}")
    print(f"load average (1 min): {load0} before, {Path('/proc/loadavg').read_text().split()[0]} after")


if __name__ == "__main__":
    main()
