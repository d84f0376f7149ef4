"""The vector cache on Delta Lake stores (file:// and a local S3 server) against the local store, same run.

    python benchmarks/vectors_delta.py [--vectors 32768] [--chunk 4096] [--repeat 3]

``--repeat`` times, in rotation so the machine's load hits every kind alike: a fresh store of each kind
(local directory, ``file://`` Delta Lake, ``s3://`` Delta Lake on moto's server on 127.0.0.1,
tests/s3server.py) gets ``--vectors`` random 384-dim vectors in commits of ``--chunk`` (what `tracelens
embed` does), then a new ``VectorStore`` lists the known hashes and loads 2,000 of them (what the weekly job
does). Prints the median wall time per kind and its ratio to the local store's, with the 1-minute load
average before and after. moto is a Python server: its S3 figures bound the commit path, not S3 itself.
"""

from __future__ import annotations

import argparse
import os
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
    ap.add_argument("--vectors", type=int, default=32_768)
    ap.add_argument("--chunk", type=int, default=4096)
    ap.add_argument("--repeat", type=int, default=3)
    args = ap.parse_args()
    import numpy as np

    from tests.s3server import S3Server
    from tracelens.embed.vectors import VectorStore
    from tracelens.store import Store  # the baseline: the older file layout's vector files
    from tracelens.storeopen import open_store

    rng = np.random.default_rng(0)
    vecs = rng.normal(size=(args.vectors, 384)).astype(np.float32)
    hashes = [f"{i:016x}" for i in range(args.vectors)]
    query = [hashes[i] for i in rng.choice(args.vectors, min(2000, args.vectors), replace=False)]
    server = S3Server.start()
    os.environ.update(server.env())
    bucket = server.bucket()

    def one(kind: str) -> tuple[float, float]:
        d = tempfile.mkdtemp()
        where = {"local": f"{d}/s", "delta-file": f"file://{d}/s", "delta-s3": f"s3://{bucket}/{uuid.uuid4().hex}"}
        store = Store(where[kind], create=True) if kind == "local" else open_store(where[kind], create=True)
        t0 = time.perf_counter()
        vs = VectorStore(store, "fake")
        for i in range(0, args.vectors, args.chunk):
            vs.append(hashes[i:i + args.chunk], vecs[i:i + args.chunk])
        t1 = time.perf_counter()
        fresh = VectorStore(store, "fake")
        n = len(fresh.known_hashes())
        found, _ = fresh.load(query)
        t2 = time.perf_counter()
        assert n == args.vectors and len(found) == len(query)
        return t1 - t0, t2 - t1

    print(f"load average before: {os.getloadavg()[0]:.1f}")
    res: dict[str, list[tuple[float, float]]] = {"local": [], "delta-file": [], "delta-s3": []}
    try:
        for _ in range(args.repeat):
            for kind in res:
                res[kind].append(one(kind))
    finally:
        server.stop()
    base_w = statistics.median(w for w, _ in res["local"])
    base_r = statistics.median(r for _, r in res["local"])
    print(f"{'store':<12} {'write':>8} {'vs local':>9} {'read':>8} {'vs local':>9}")
    for kind, v in res.items():
        w, r = statistics.median(x for x, _ in v), statistics.median(y for _, y in v)
        print(f"{kind:<12} {w:>7.2f}s {w / base_w:>9.2f} {r:>7.2f}s {r / base_r:>9.2f}")
    print(f"load average after: {os.getloadavg()[0]:.1f}")


if __name__ == "__main__":
    main()
