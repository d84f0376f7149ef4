"""Store guarantees: reconciliation, idempotence, atomic commits under SIGKILL, concurrent writers."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import polars as pl
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from tests.conftest import REPO, anthropic_line, assert_all_exit, children
from tracelens.ingest.pipeline import ingest
from tracelens.store import MARKER, Store


def _ids(store: Store) -> list[str]:
    return store.scan().select("trace_id").collect()["trace_id"].to_list()


def test_ingest_reconciles_and_is_idempotent(any_store, anthropic_file):
    store = any_store  # every store kind: local, Delta Lake on file:// and on S3
    path = anthropic_file(50)
    s1 = ingest(store, [str(path)])
    f = s1.files[0]
    assert (f.read, f.stored, f.duplicates, f.quarantined) == (50, 50, 0, 0)
    s2 = ingest(store, [str(path)])
    f = s2.files[0]
    assert (f.read, f.stored, f.duplicates) == (50, 0, 50)
    assert len(_ids(store)) == 50 == len(set(_ids(store)))


def test_parquet_layout_and_metadata(files_store, anthropic_file):
    store = files_store  # the older layout's own files
    ingest(store, [str(anthropic_file(5, ts="2026-11-18T23:59:59Z"))])
    files = store.files()
    assert [f.parent.name for f in files] == ["date=2026-11-18"]
    md = pq.ParquetFile(files[0]).schema_arrow.metadata
    assert md[b"tracelens.schema_version"] == b"1"
    assert md[b"tracelens.table"] == b"traces"
    assert pq.ParquetFile(files[0]).metadata.row_group(0).column(0).compression == "ZSTD"
    # readable as-is by plain polars with hive partitioning
    df = pl.read_parquet(str(store.root / "traces"), hive_partitioning=True)
    assert df.height == 5 and "date" in df.columns


def test_same_id_different_content_is_quarantined_not_overwritten(any_store, tmp_path):
    store = any_store  # every store kind: local, Delta Lake on file:// and on S3
    a = tmp_path / "a.jsonl"
    b = tmp_path / "b.jsonl"
    a.write_text(anthropic_line(1, text="original") + "\n")
    b.write_text(anthropic_line(1, text="tampered") + "\n")
    ingest(store, [str(a)])
    s = ingest(store, [str(b)])
    assert s.files[0].quarantined == 1 and s.files[0].stored == 0
    assert store.get("msg_000001")["response_text"] == "original"
    q = store.scan("quarantine").collect()
    assert "different content" in q["reason"][0]


def test_bad_records_do_not_take_good_ones_down(any_store, tmp_path):
    store = any_store  # every store kind: local, Delta Lake on file:// and on S3
    p = tmp_path / "mixed.jsonl"
    lines = [anthropic_line(i) for i in range(5)]
    lines.insert(2, "{not json")
    lines.insert(4, json.dumps({"request": {"model": "x"}, "response": {}}))  # wrong type of record
    lines.append(json.dumps(["a", "list"]))
    p.write_bytes(("\n".join(lines) + "\n").encode() + b'{"bad utf8": "\xff\xfe"}\n')
    s = ingest(store, [str(p)])
    f = s.files[0]
    assert f.stored == 5 and f.quarantined == 4 and f.reconciles
    reasons = store.scan("quarantine").collect()["reason"].to_list()
    assert any("malformed JSON on line 3" in r for r in reasons)
    assert any("invalid UTF-8" in r for r in reasons)
    assert any("no 'messages'" in r for r in reasons)
    assert any("expected a JSON object" in r for r in reasons)


def test_compressed_inputs_and_truncated_gzip(any_store, tmp_path):
    store = any_store  # every store kind: local, Delta Lake on file:// and on S3
    import gzip

    import zstandard

    body = ("\n".join(anthropic_line(i) for i in range(200)) + "\n").encode()
    (tmp_path / "a.jsonl.gz").write_bytes(gzip.compress(body))
    (tmp_path / "b.jsonl.zst").write_bytes(zstandard.ZstdCompressor().compress(body.replace(b"msg_", b"msgb_")))
    s = ingest(store, [str(tmp_path / "a.jsonl.gz"), str(tmp_path / "b.jsonl.zst")])
    assert [f.stored for f in s.files] == [200, 200]
    trunc = gzip.compress(body.replace(b"msg_", b"msgc_"))[: 2500]
    (tmp_path / "c.jsonl.gz").write_bytes(trunc)
    s = ingest(store, [str(tmp_path / "c.jsonl.gz")])
    f = s.files[0]
    assert f.reconciles and f.quarantined >= 1 and f.stored > 0
    assert any("ends unexpectedly" in r for r in store.scan("quarantine").collect()["reason"].to_list())


def test_unknown_format_is_a_clear_error(any_store, tmp_path):
    store = any_store  # every store kind: local, Delta Lake on file:// and on S3
    p = tmp_path / "notes.txt"
    p.write_text("hello\nworld\n")
    s = ingest(store, [str(p), str(tmp_path / "missing.jsonl")])
    assert "unknown format" in s.files[0].error and "--format" in s.files[0].error
    assert "no such file" in s.files[1].error


def test_missing_and_naive_timestamps(any_store, tmp_path):
    store = any_store  # every store kind: local, Delta Lake on file:// and on S3
    lines = [json.loads(anthropic_line(i)) for i in range(3)]
    del lines[0]["timestamp"]
    lines[1]["timestamp"] = "2026-11-18T10:00:00"
    p = tmp_path / "ts.jsonl"
    p.write_text("\n".join(json.dumps(x) for x in lines) + "\n")
    s = ingest(store, [str(p)])
    assert s.files[0].stored == 2 and s.files[0].quarantined == 1 and s.files[0].naive_timestamps == 1
    assert "missing timestamp" in store.scan("quarantine").collect()["reason"][0]


def _ingest_proc(store_path: Path, files: list[Path], batch: int, env: dict | None = None) -> subprocess.Popen:
    code = (
        "import sys; from tracelens.store import Store; from tracelens.ingest.pipeline import ingest\n"
        f"s = Store({str(store_path)!r}, create=True)\n"
        f"r = ingest(s, {[str(f) for f in files]!r}, batch_size={batch}, enricher=False)\n"
        "print(r.total('stored'), r.total('duplicates'))\n"
    )
    return subprocess.Popen(
        [sys.executable, "-c", code], env={**os.environ, "PYTHONPATH": str(REPO / "src"), **(env or {})},
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )


def _txn_counts(store: Store) -> Counter:
    return Counter(f.name.split("part-")[1].rsplit(".", 1)[0] for f in store.files() for _ in range(pq.ParquetFile(f).metadata.num_rows))


@pytest.mark.parametrize("delay", [0.0, 0.13, 0.6])
def test_sigkill_mid_ingest_leaves_no_partial_batch(tmp_path, delay):
    # records spread over several days so one batch spans several partition files
    src = tmp_path / "big.jsonl"
    with src.open("w") as fh:
        for i in range(3000):
            fh.write(anthropic_line(i, ts=f"2026-11-{10 + i % 5:02d}T12:00:00Z") + "\n")
    store_path = tmp_path / "store"
    batch = 500
    # two workers whatever the machine, so the parallel path (and its worker processes) is what gets killed
    p = _ingest_proc(store_path, [src], batch, env={"TRACELENS_TEST_PAUSE_APPLY": "0.05", "TRACELENS_INGEST_WORKERS": "2"})
    # wait until the writer is committing (startup time varies with machine load), then kill it mid-way
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and p.poll() is None and not (store_path / "_txn").exists():
        time.sleep(0.01)
    time.sleep(delay)
    workers = children(p.pid)
    p.send_signal(signal.SIGKILL)
    p.wait()
    assert_all_exit(workers)  # no orphaned ingest worker outlives the killed ingest
    if not (store_path / "STORE.json").exists():
        pytest.skip("killed before the store existed")
    store = Store(store_path)  # opening recovers: journalled txns roll forward, others vanish
    assert not any((store_path / "_txn").glob("*")) if (store_path / "_txn").exists() else True
    df = store.scan().collect()  # every file reads cleanly
    per_txn = _txn_counts(store)
    assert all(n == batch for n in per_txn.values()), per_txn  # whole batches only
    assert df.height == sum(per_txn.values())
    p2 = _ingest_proc(store_path, [src], batch)
    out, err = p2.communicate(timeout=120)
    assert p2.returncode == 0, err
    ids = _ids(Store(store_path))
    assert len(ids) == 3000 == len(set(ids))


def test_concurrent_ingests_do_not_corrupt_or_duplicate(tmp_path):
    files = []
    for k in range(2):
        f = tmp_path / f"part{k}.jsonl"
        # overlapping content: both files share records 500..999
        f.write_text("\n".join(anthropic_line(i) for i in range(k * 500, k * 500 + 1000)) + "\n")
        files.append(f)
    store_path = tmp_path / "store"
    Store(store_path, create=True)
    procs = [_ingest_proc(store_path, [files[0], files[1]], 200), _ingest_proc(store_path, [files[1], files[0]], 200)]
    for p in procs:
        out, err = p.communicate(timeout=120)
        assert p.returncode == 0, err
    ids = _ids(Store(store_path))
    assert len(ids) == 1500 == len(set(ids))


def test_store_written_by_an_older_version_still_opens(tmp_path, anthropic_file):
    """An older marker (no schema_version) and a partition file that lacks columns added since both still read."""
    root = tmp_path / "old"
    st = Store(root, create=True)
    ingest(st, [str(anthropic_file(5))])
    marker = root / MARKER
    info = json.loads(marker.read_text())
    info.pop("schema_version")  # stores from before schema versioning carried none
    marker.write_text(json.dumps(info))
    # a file as an older writer would have left it: the same table without two later columns
    part = st.files()[0]
    old = pq.read_table(part).drop_columns(["service_tier", "refusal_score"]).slice(0, 2)
    old = old.set_column(0, "trace_id", pa.array(["old-1", "old-2"]))
    pq.write_table(old, part.with_name("older-writer.parquet"))
    df = Store(root).scan().collect()
    assert df.height == 7
    assert df.filter(pl.col("trace_id").str.starts_with("old-"))["service_tier"].to_list() == [None, None]
    r = subprocess.run([sys.executable, "-m", "tracelens.cli.main", "stats", "--store", str(root), "--json"],
                       capture_output=True, text=True, cwd=REPO, timeout=120)
    assert r.returncode == 0, r.stderr
    assert '"traces": 7' in r.stdout or json.loads(r.stdout).get("traces") == 7, r.stdout[:500]
