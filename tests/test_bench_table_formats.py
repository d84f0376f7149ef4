"""benchmarks/table_formats.py, its smallest run on local disk: the measurements it reports still run and add up.

The benchmark compares Delta Lake (deltalake) and Iceberg (pyiceberg with a SQLite catalog) as the store's
table format; docs/table-formats.md quotes its figures. This runs ``--smoke --storage local`` (a few seconds of
commits, two writer processes, a killed writer) and checks the structure of the JSON it writes and that every
count reconciles, so a library upgrade or an edit that breaks a measurement fails here instead of in the next
long run. It asserts what must hold for any table format the store could use (no lost commits, exact counts, a
table that opens after SIGKILL); what differs between the formats is reported, not asserted, except the one
finding the choice rests on: Delta's MERGE never stores a trace_id twice.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

pytest.importorskip("deltalake")
pytest.importorskip("pyiceberg.catalog.sql")

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def result(tmp_path_factory) -> dict:
    out = tmp_path_factory.mktemp("bench") / "formats.json"
    proc = subprocess.run([sys.executable, str(REPO / "benchmarks" / "table_formats.py"), "--smoke", "--storage", "local",
                           "--json", str(out)], capture_output=True, text=True, timeout=180, cwd=REPO)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "Commit latency" in proc.stdout and "Killed writer" in proc.stdout
    return json.loads(out.read_text())


def test_structure(result):
    assert result["mode"] == "smoke" and result["storages"] == ["local"]
    assert set(result["formats"]) == {"delta", "iceberg"}
    for key in ("cpu", "python", "loadavg_start", "loadavg_end", "deltalake", "pyiceberg"):
        assert key in result["machine"]
    assert {c["format"] for c in result["commit_latency"]} == {"plain parquet (baseline)", "delta", "iceberg"}
    assert {(c["format"], c["test"]) for c in result["concurrency"]} == {
        ("delta", "append"), ("delta", "insert-if-absent (MERGE)"), ("iceberg", "append"),
        ("iceberg", "insert-if-absent (upsert)")}
    assert {(r["format"], r["phase"]) for r in result["reads"]} == {
        (f, p) for f in ("delta", "iceberg") for p in ("after_commits", "after_compaction")}
    assert {k["format"] for k in result["kill"]} == {"delta", "iceberg"}
    for f in ("delta", "iceberg"):
        assert result["operational"]["install"][f]["wheel_mb"] > 0


def test_commit_counts_reconcile(result):
    for c in result["commit_latency"]:
        assert c["commits"] == result["sizes"]["commits"] and 0 < c["median_ms"] <= c["p90_ms"]
        if c["format"] != "plain parquet (baseline)":
            assert c["rows_after"] == c["rows_expected"]


def test_concurrent_appends_lose_nothing(result):
    for c in (c for c in result["concurrency"] if c["test"] == "append"):
        assert c["commits_ok"] == 2 * c["commits_per_writer"], c["errors"]
        assert c["rows"] == c["rows_expected"] == c["distinct_ids"], c
        assert c["history_consistent"], c["history"]
        assert c["history"]["rows_added_by_log"] == c["rows_expected"]


def test_insert_if_absent(result):
    merges = {c["format"]: c for c in result["concurrency"] if c["test"].startswith("insert-if-absent")}
    for c in merges.values():
        assert c["merges_ok"] == 2 * c["rounds"], c["errors"]
        assert c["rows"] == c["distinct_ids"] + c["duplicate_rows"]
        assert c["distinct_ids"] == c["distinct_ids_expected"]  # every id arrives, at least once
    # delta-rs refuses the second of two conflicting MERGE commits (the writer re-runs it): no id twice
    assert merges["delta"]["no_duplicates"], merges["delta"]


def test_reads_count_every_row(result):
    for r in result["reads"]:
        assert r["rows"] == r["rows_expected"]
        for q in ("aggregate_3_columns", "full_read_all_columns", "one_day_all_columns"):
            assert r[q]["rows"] == r[q]["rows_baseline"], (r["format"], r["phase"], q)
            assert r[q]["s"] > 0 and r[q]["baseline_s"] > 0
        assert 0 < r["one_day_all_columns"]["rows"] < r["rows"]


def test_killed_writer_leaves_a_committed_version(result):
    for k in result["kill"]:
        assert k["opens"], k.get("error")
        assert k["whole_batches"] and k["rows_match_log"] and k["rows_match_latest_version"], k
        assert k["after_cleanup"]["rows"] == k["rows"]
        if k["format"] == "delta":  # vacuum lists the directory and removes what no version references
            assert k["after_cleanup"]["orphan_data_files"] == 0


def test_engines(result):
    e = result["engines"]
    for f in ("delta", "iceberg"):
        assert e[f"{f}_via_arrow"]["exact"], e
