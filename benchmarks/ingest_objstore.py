"""Ingest from object storage against ingest of the same files from local disk, in the same run.

    python benchmarks/ingest_objstore.py [--repeat 5] [--copies 1] [--workers N] [--json]

Starts a local S3 server (moto, ``tests/s3server.py``) on 127.0.0.1, uploads the bundled ``sample_logs/``
(``--copies`` times, under distinct prefixes, for a longer run) and then, ``--repeat`` times in rotation
(so load on a shared machine hits both alike), ingests into a fresh store:

1. baseline: the local directory(ies) (``tracelens.ingest.pipeline.ingest``, refusal labels on);
2. the same tree by URL (``s3://bucket/prefix/``): listing, preflight, streamed range reads.

Reports the median wall time of each, records/s and MB/s (bytes of the inputs as stored, compressed), the
ratio URL/local, the 1-minute load average before and after, and checks both stored the same number of
rows. The S3 server is moto, a Python process on the same cores: its CPU time competes with the ingest's,
so the ratio is an upper bound on what a remote S3 costs in CPU (and a lower bound on nothing: network
latency to a real region is not simulated).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))


def _load() -> float:
    return float(Path("/proc/loadavg").read_text().split()[0]) if Path("/proc/loadavg").exists() else float("nan")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeat", type=int, default=5)
    ap.add_argument("--copies", type=int, default=1)
    ap.add_argument("--workers", type=int, default=None)
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()

    from tests.s3server import S3Server
    from tracelens.ingest.pipeline import ingest
    from tracelens.store import Store

    tmp = Path(tempfile.mkdtemp(prefix="tl-bench-objstore-"))
    server = S3Server.start()
    try:
        os.environ.update(server.env())
        bucket = server.bucket("bench")
        s3 = server.client()
        local_dirs, urls = [], []
        for c in range(args.copies):
            d = tmp / f"copy{c}"
            shutil.copytree(REPO / "sample_logs", d)
            local_dirs.append(str(d))
            for p in sorted(d.rglob("*")):
                if p.is_file():
                    s3.upload_file(str(p), bucket, f"copy{c}/{p.relative_to(d).as_posix()}")
            urls.append(f"s3://{bucket}/copy{c}/")

        def run(paths: list[str], name: str) -> tuple[float, int, int]:
            root = tmp / name
            t0 = time.perf_counter()
            summary = ingest(Store(root, create=True), paths, workers=args.workers)
            wall = time.perf_counter() - t0
            shutil.rmtree(root)
            if summary.errors:
                raise SystemExit(f"errors: {[f.error for f in summary.errors]}")
            return wall, summary.total("stored"), sum(f.bytes for f in summary.files)

        run(local_dirs, "warm-local")  # imports, model catalog, first fork
        run(urls, "warm-url")
        load_before = _load()
        local_t, url_t = [], []
        stored = nbytes = 0
        for i in range(args.repeat):
            t, stored_l, nbytes = run(local_dirs, f"local{i}")
            local_t.append(t)
            t, stored_u, _ = run(urls, f"url{i}")
            url_t.append(t)
            if stored_l != stored_u:
                raise SystemExit(f"stored rows differ: local {stored_l}, url {stored_u}")
            stored = stored_l
        load_after = _load()
    finally:
        server.stop()
        shutil.rmtree(tmp, ignore_errors=True)
    lm, um = statistics.median(local_t), statistics.median(url_t)
    out = {
        "machine": f"{platform.machine()}, {os.cpu_count()} CPUs, Python {platform.python_version()}",
        "records": stored, "input_bytes": nbytes, "repeat": args.repeat,
        "local_s": round(lm, 3), "url_s": round(um, 3), "ratio_url_local": round(um / lm, 3),
        "local_records_per_s": round(stored / lm), "url_records_per_s": round(stored / um),
        "local_mb_per_s": round(nbytes / lm / 1e6, 2), "url_mb_per_s": round(nbytes / um / 1e6, 2),
        "local_all_s": [round(x, 3) for x in local_t], "url_all_s": [round(x, 3) for x in url_t],
        "load_1min": [load_before, load_after],
    }
    if args.json:
        print(json.dumps(out, indent=2))
    else:
        for k, v in out.items():
            print(f"{k:>22}: {v}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
