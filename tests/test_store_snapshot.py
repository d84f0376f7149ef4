"""Readers never see a half-rewritten store: real reader processes against a process running `enrich --force`."""

from __future__ import annotations

import datetime as dt
import json
import os
import subprocess
import sys
import threading
import time

import polars as pl

from tests.conftest import REPO, anthropic_line
from tracelens.ingest.pipeline import ingest
from tracelens.store import Store

DAYS = 4
N = 400


def _store(tmp_path) -> Store:
    src = tmp_path / "log.jsonl"
    src.write_text("\n".join(anthropic_line(i, ts=f"2026-11-{16 + i % DAYS}T12:00:00Z") for i in range(N)) + "\n")
    store = Store(tmp_path / "store", create=True)
    ingest(store, [str(src)], enricher=False)
    return store


_WRITER = """
import sys
from tracelens.enrich.apply import refresh_refusals
from tracelens.store import Store
store = Store(sys.argv[1])
open(sys.argv[2], "w").close()  # started
for _ in range(int(sys.argv[3])):
    refresh_refusals(store, force=True)  # what `tracelens enrich --force` runs: every partition rewritten
open(sys.argv[4], "w").close()  # done
"""

_READER = """
import json, os, sys, time
import polars as pl
from tracelens.query import SearchFilters, search, stats
from tracelens.store import Store
root, started, done, n = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
store = Store(root)
while not os.path.exists(started):
    time.sleep(0.01)
reads, failures = 0, []
deadline = time.monotonic() + 120
while not os.path.exists(done) and time.monotonic() < deadline:
    try:
        ids = search(store, SearchFilters(limit=None), columns=["trace_id"])["trace_id"]
        total = stats(store).traces
        one = store.get("msg_000123")
        if ids.len() != n or ids.n_unique() != n or total != n or one is None:
            failures.append(f"saw {ids.len()} rows ({ids.n_unique()} ids), stats {total}, get {one is not None}")
    except Exception as e:
        failures.append(f"{type(e).__name__}: {e}")
    reads += 1
print(json.dumps({"reads": reads, "failures": failures[:20], "failed": len(failures)}))
"""


def test_readers_see_whole_commits_while_partitions_are_rewritten(tmp_path):
    store = _store(tmp_path)
    started, done = tmp_path / "started", tmp_path / "done"
    # widen the windows between a commit's renames and deletes, where a reader could see old and new files
    env = {**os.environ, "PYTHONPATH": str(REPO / "src"), "TRACELENS_TEST_PAUSE_APPLY": "0.02"}
    readers = [
        subprocess.Popen([sys.executable, "-c", _READER, str(store.root), str(started), str(done), str(N)],
                         env={**env, "TRACELENS_TEST_PAUSE_APPLY": "0"}, stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE, text=True)
        for _ in range(2)
    ]
    writer = subprocess.Popen([sys.executable, "-c", _WRITER, str(store.root), str(started), "6", str(done)], env=env,
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        _, werr = writer.communicate(timeout=240)
        assert writer.returncode == 0, werr
        results = []
        for r in readers:
            out, err = r.communicate(timeout=240)
            assert r.returncode == 0, err
            results.append(json.loads(out))
    finally:
        for p in (writer, *readers):
            if p.poll() is None:
                p.kill()
    assert all(r["failed"] == 0 for r in results), results
    assert sum(r["reads"] for r in results) >= 10, results  # they really did read while the rewrites ran
    assert Store(store.root).count() == N and len(Store(store.root).files()) == DAYS


def test_a_lazy_frame_kept_across_a_rewrite_reads_the_store_as_it_is_when_collected(tmp_path):
    """Files are listed when the frame is collected: one built before a rewrite does not look for deleted files."""
    store = _store(tmp_path)
    lf = store.scan().select("trace_id", "date")
    before = {f.name for f in store.files()}
    for day in store.dates():
        store.rewrite_partition(day, lambda df: df)
    assert before.isdisjoint(f.name for f in store.files())  # every file it could have listed is gone
    df = lf.collect()
    assert df.height == N and df["trace_id"].n_unique() == N
    assert df["date"].unique().sort().to_list() == [dt.date(2026, 11, 16 + i) for i in range(DAYS)]


def test_a_reader_waits_for_a_commit_being_applied(tmp_path):
    store = _store(tmp_path)
    seen: list[int] = []
    with store.apply_lock(shared=False):  # as a commit holds it while renaming
        t = threading.Thread(target=lambda: seen.append(store.scan().select(pl.len()).collect().item()))
        t.start()
        time.sleep(0.3)
        assert t.is_alive() and not seen  # the read waits: it would otherwise see half the renames
    t.join(timeout=30)
    assert seen == [N]
