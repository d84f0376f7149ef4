"""The parallel ingest path stores exactly what the serial path stores, and loses nothing when a worker fails.

The parallel path (worker processes parse and finalize chunks of a JSONL
file; the parent commits them in order) must be indistinguishable from the
serial path in the store: the same trace rows, the same quarantine rows (their
ids hash the reason and raw text, so reasons and locators must match too) and
the same per-file counts. Fixtures mix good lines with blank, malformed,
non-UTF-8, duplicate and conflicting ones, and use a small batch size so that
duplicates and conflicts fall both inside one batch and across batches.
"""

from __future__ import annotations

import datetime as dt
import gzip
import io
import json
import logging
import os
from pathlib import Path

import pytest

import tracelens.ingest.pipeline as P
from tests.conftest import anthropic_line
from tracelens.hashing import prompt_hash, record_hash, text_hash, tools_hash
from tracelens.ingest.base import IngestOptions, Quarantined
from tracelens.ingest.formats.anthropic import anthropic_log_record
from tracelens.ingest.readers import iter_json_values, json_line, line_is_blank
from tracelens.store import Store
from tracelens.storeopen import open_store

pytestmark = pytest.mark.skipif(not P._WorkerPool(2).size, reason="the parallel path needs fork (Linux)")

BATCH = 7


def _lines() -> list[bytes]:
    """Good lines interleaved with every kind of bad line, duplicates and conflicts."""
    out = [anthropic_line(i, ts=f"2026-11-{10 + i % 5:02d}T1{i % 10}:00:00Z").encode() for i in range(12)]
    bad = [
        b"",
        b"   \t",
        "\u00a0".encode(),  # blank to str.strip(), not to bytes.strip()
        b"\x1c",
        b"{not json",
        b'{"request": {"messages": []}, "response": {"id": "x\xff\xfe"}}',  # invalid UTF-8
        anthropic_line(3, ts="2026-11-13T13:00:00Z").encode(),  # exact duplicate of line 4
        anthropic_line(5, text="different answer").encode(),  # same id as line 6, other content
        json.dumps({"timestamp": "2026-11-12T00:00:00Z", "response": {}}).encode(),
        json.dumps({**json.loads(anthropic_line(40)), "timestamp": "1970-01-01T00:00:00Z"}).encode(),
        json.dumps({**json.loads(anthropic_line(41)), "timestamp": "2026-11-12 08:00:00"}).encode(),  # naive
        json.dumps({**json.loads(anthropic_line(42)), "timestamp": 1794000000123}).encode(),
        json.dumps({**json.loads(anthropic_line(43)), "timestamp": "2026-11-12T08:00:00.123456789+02:00"}).encode(),
        json.dumps({**json.loads(anthropic_line(44)), "timestamp": "2026-13-12T08:00:00Z"}).encode(),
        json.dumps({**json.loads(anthropic_line(45)), "latency_ms": 2**70}).encode(),
        json.dumps(json.loads(anthropic_line(46, text="caf\u00e9 \U0001f600 \u2028")), ensure_ascii=False).encode(),
        anthropic_line(47, text="lone \ud800 surrogate").encode(),
        b"[1, 2, 3]",
        b'"just a string"',
        b"{}",
        "  \u00e9".encode(),  # leading non-ASCII, not JSON
    ]
    mixed = []
    for i, b in enumerate(bad):
        mixed.append(b)
        mixed.append(out[i % len(out)])  # every good line again: duplicates spread over many batches
    # conflicts next to their first copy: at least two of the three pairs share a batch
    pairs = [x for i in (70, 71, 72) for x in (anthropic_line(i).encode(), anthropic_line(i, text="other").encode())]
    return out + mixed + pairs + [anthropic_line(i).encode() for i in range(50, 60)]


def _write(path: Path, lines: list[bytes], sep: bytes = b"\n") -> Path:
    path.write_bytes(sep.join(lines) + sep)
    return path


def _snapshot(root: Path, paths: list[Path], workers: int, **kw) -> tuple[dict, list[dict], list[dict]]:
    store = Store(root, create=True)
    summary = P.ingest(store, [str(p) for p in paths], enricher=False, batch_size=kw.pop("batch_size", BATCH),
                       workers=workers, **kw)
    d = summary.to_dict()
    for f in d["files"]:
        f.pop("seconds")
    traces = store.scan().collect().drop("ingested_at").sort("trace_id").to_dicts()
    quarantine = store.scan("quarantine").collect().drop("quarantined_at").sort("quarantine_id").to_dicts()
    return d, traces, quarantine


def _assert_same(tmp_path: Path, paths: list[Path], **kw) -> tuple[dict, list[dict], list[dict]]:
    serial = _snapshot(tmp_path / "serial", paths, 0, **dict(kw))
    parallel = _snapshot(tmp_path / "parallel", paths, 2, **dict(kw))
    assert parallel[0] == serial[0]
    assert parallel[1] == serial[1]
    assert parallel[2] == serial[2]
    assert serial[0]["reconciles"]
    return serial


@pytest.fixture
def hostile(tmp_path) -> Path:
    return _write(tmp_path / "hostile.jsonl", _lines())


def _in_worker(chunk_processor):
    """Wrap ``_process_chunk`` (workers are forked, so they see the replacement) to act only in workers."""
    parent = os.getpid()
    original = P._process_chunk

    def run(chunk, *args):
        if os.getpid() != parent:
            chunk_processor(chunk)
        return original(chunk, *args)

    return run


@pytest.fixture
def worker_pids(monkeypatch, tmp_path):
    """Pids of the worker processes that processed chunks."""
    log = tmp_path / "pids.txt"

    def record(chunk):
        with open(log, "a") as fh:
            fh.write(f"{os.getpid()}\n")

    monkeypatch.setattr(P, "_process_chunk", _in_worker(record))
    return lambda: {int(x) for x in log.read_text().split()} if log.exists() else set()


def test_parallel_stores_exactly_what_serial_stores(tmp_path, hostile, worker_pids):
    summary, traces, quarantine = _assert_same(tmp_path, [hostile])
    pids = worker_pids()
    assert pids and os.getpid() not in pids  # the chunks really ran in workers
    totals = summary["totals"]
    assert totals["duplicates"] > 0 and totals["quarantined"] > 0 and totals["naive_timestamps"] == 1
    reasons = " ".join(q["reason"] for q in quarantine)
    for expected in ("malformed JSON on line", "invalid UTF-8 at byte", "different content (same batch)",
                     "different content", "implausible", "no 'request' field", "expected a JSON object"):
        assert expected in reasons
    assert any(q["source_locator"].startswith("line:") for q in quarantine)


def test_parallel_matches_serial_on_crlf_bom_and_compressed_input(tmp_path):
    lines = _lines()
    crlf = _write(tmp_path / "crlf.jsonl", lines, b"\r\n")
    bom = tmp_path / "bom.jsonl"
    bom.write_bytes(b"\xef\xbb\xbf" + crlf.read_bytes())
    gz = tmp_path / "cut.jsonl.gz"
    gz.write_bytes(gzip.compress(crlf.read_bytes(), mtime=0)[:-40])  # truncated: ends with a quarantine item
    _assert_same(tmp_path / "a", [crlf, gz])
    summary, _, quarantine = _assert_same(tmp_path / "b", [bom], force_format="anthropic_log")
    assert summary["files"][0]["format"] == "anthropic_log"
    summary, _, quarantine = _assert_same(tmp_path / "c", [gz])
    assert any("input ends unexpectedly" in q["reason"] for q in quarantine)


def test_parallel_matches_serial_across_files_and_reingest(tmp_path, hostile):
    other = _write(tmp_path / "other.jsonl", [anthropic_line(i).encode() for i in range(100, 140)] + _lines()[:9])
    paths = [hostile, other]
    serial = Store(tmp_path / "s", create=True)
    parallel = Store(tmp_path / "p", create=True)
    for _ in range(2):  # the second run finds everything already stored
        a = P.ingest(serial, [str(p) for p in paths], enricher=False, batch_size=BATCH, workers=0).to_dict()
        b = P.ingest(parallel, [str(p) for p in paths], enricher=False, batch_size=BATCH, workers=2).to_dict()
        for f in a["files"] + b["files"]:
            f.pop("seconds")
        assert a == b
    assert a["totals"]["stored"] == 0 and a["reconciles"]
    cols = ["trace_id", "content_hash", "source_file", "source_locator"]
    assert parallel.scan().select(cols).collect().sort("trace_id").equals(serial.scan().select(cols).collect().sort("trace_id"))


def test_parallel_matches_serial_with_redaction(tmp_path):
    lines = [anthropic_line(i, prompt=f"mail me at person{i}@example.com").encode() for i in range(30)]
    p = _write(tmp_path / "pii.jsonl", lines)
    opts = IngestOptions(redact_kinds=("emails",))
    results = []
    for workers in (0, 2):
        root = tmp_path / f"s{workers}"
        store = Store(root, create=True)
        (root / ".redaction_salt").write_bytes(b"k" * 32)  # the same key in both stores
        P.ingest(store, [str(p)], opts, enricher=False, batch_size=BATCH, workers=workers)
        results.append(store.scan().select("trace_id", "prompt_text", "request_raw", "redacted", "attributes")
                       .collect().sort("trace_id"))
    assert results[0].equals(results[1])
    assert "example.com" not in " ".join(results[1]["prompt_text"].to_list())
    assert results[1]["redacted"].all()


def test_small_files_and_stdin_stay_in_process(tmp_path, worker_pids, monkeypatch):
    p = _write(tmp_path / "small.jsonl", [anthropic_line(i).encode() for i in range(5)])
    store = Store(tmp_path / "s", create=True)
    s = P.ingest(store, [str(p)], enricher=False, batch_size=BATCH, workers=2)
    assert s.total("stored") == 5 and not worker_pids()

    class Stdin:
        buffer = io.BytesIO(b"\n".join(_lines()) + b"\n")

    monkeypatch.setattr("sys.stdin", Stdin())
    s = P.ingest(Store(tmp_path / "stdin", create=True), ["-"], enricher=False, batch_size=BATCH, workers=2)
    assert s.files[0].format == "anthropic_log" and s.files[0].reconciles and s.total("stored") > 20
    assert not worker_pids()


def test_json_array_documents_take_the_serial_path(tmp_path, worker_pids):
    doc = "[" + ",".join(anthropic_line(i) for i in range(30)) + "]"
    p = tmp_path / "array.json"
    p.write_text(doc)
    _assert_same(tmp_path, [p], force_format="anthropic_log")
    assert not worker_pids()


def test_worker_process_death_loses_nothing(tmp_path, hostile, monkeypatch, caplog):
    def die(chunk):
        if chunk.index == 2:
            os._exit(3)  # as an OOM kill would

    monkeypatch.setattr(P, "_process_chunk", _in_worker(die))
    with caplog.at_level(logging.WARNING, logger="tracelens.ingest.pipeline"):
        _assert_same(tmp_path, [hostile])
    assert "continuing in-process" in caplog.text


def test_worker_exception_is_retried_in_process(tmp_path, hostile, monkeypatch, caplog):
    def flaky(chunk):
        if chunk.index in (1, 3):
            raise RuntimeError("worker bug")

    monkeypatch.setattr(P, "_process_chunk", _in_worker(flaky))
    with caplog.at_level(logging.WARNING, logger="tracelens.ingest.pipeline"):
        _assert_same(tmp_path, [hostile])
    assert "worker bug" in caplog.text and "retrying in-process" in caplog.text


def test_chunk_failing_everywhere_is_quarantined_not_dropped(tmp_path, hostile, monkeypatch):
    original = P._process_chunk

    def broken(chunk, *args):
        if chunk.index == 2:
            raise RuntimeError("bug on this data")
        return original(chunk, *args)

    monkeypatch.setattr(P, "_process_chunk", broken)  # workers are forked after this: they fail too
    store = Store(tmp_path / "s", create=True)
    s = P.ingest(store, [str(hostile)], enricher=False, batch_size=BATCH, workers=2)
    f = s.files[0]
    assert f.reconciles and not f.error
    q = store.scan("quarantine").collect()
    failed = q.filter(q["reason"].str.contains("bug on this data"))
    assert failed.height == BATCH  # the chunk's records, each with its line and raw text
    assert all(loc.startswith("line:") for loc in failed["source_locator"].to_list())
    assert failed["raw"].null_count() == 0
    total_lines = sum(1 for i, raw in enumerate(hostile.read_bytes().split(b"\n")[:-1], 1) if not line_is_blank(raw, i))
    assert f.read == total_lines


def test_chunks_in_flight_are_bounded(tmp_path, monkeypatch):
    lines = [anthropic_line(i, ts="2026-11-01T10:00:00Z").encode() for i in range(100)]
    p = _write(tmp_path / "many.jsonl", lines)
    produced = []
    committed = []
    read_chunks = P._read_chunks

    def counting(*args):
        for c in read_chunks(*args):
            produced.append(c.index)
            yield c

    commit = P._commit_chunk

    def counted(*args):
        committed.append(len(produced))
        return commit(*args)

    monkeypatch.setattr(P, "_read_chunks", counting)
    monkeypatch.setattr(P, "_commit_chunk", counted)
    store = Store(tmp_path / "s", create=True)
    P.ingest(store, [str(p)], enricher=False, batch_size=5, workers=2)
    assert len(committed) == 20 and store.count() == 100
    # read ahead of the commits by at most the chunks in flight (workers + 1, the one being committed
    # among them) plus the one just read
    assert max(n - i for i, n in enumerate(committed)) <= (2 + 1) + 1


def test_chunks_are_the_serial_batches(tmp_path):
    raw = [b"{}\n", b"\n", b"  \n", "\u00a0\n".encode(), b"{}\r\n", b"{}\n", "\u00e9\n".encode(), b"{}\n", b"{}"]
    chunks = list(P._read_chunks(io.BytesIO(b"".join(raw)), 2, "anthropic_log"))
    got = [(c.first_line, c.offset, len(c.lines)) for c in chunks]
    offsets = [sum(len(x) for x in raw[:i]) for i in range(len(raw))]
    # records are lines 1, 5, 6, 7 ("\u00e9" is not blank), 8, 9; blank lines ride with the batch before them
    assert got == [(1, 0, 5), (6, offsets[5], 2), (8, offsets[7], 2)]


@pytest.mark.parametrize(
    "raw",
    [b"", b" \t\r\n", b"\x0b\x0c\n", "\u00a0\u2028 \n".encode(), b"\x1c\x1d\n", b"\xef\xbb\xbf\n", b"\xef\xbb\xbf{}\n",
     b"{\"a\": 1}\r\n", b"{bad\n", b"\xff{}\n", "\u00e9\n".encode(), " {\"\u00e9\": \"\u00e9\"}\n".encode(),
     b"{\"a\": \"\\ud800\"}\n", b"[1, 2]\n", b"123456789012345678901234567890\n", b"\x00\n"],
)
@pytest.mark.parametrize("lineno", [1, 2])
def test_json_line_is_what_iter_json_values_yields(raw, lineno):
    prefix = b"{}\n" if lineno == 2 else b""
    stream = io.BufferedReader(io.BytesIO(prefix + raw))
    expected = [v for v in iter_json_values(stream, b"{}\n", "x") if v[0] == f"line:{lineno}"]
    got = json_line(raw, lineno, len(prefix))
    assert line_is_blank(raw, lineno) == (got is None)
    if got is None:
        assert expected == []
    else:
        assert [got] == expected
        if isinstance(got[1], Quarantined):
            assert got[1].locator == f"line:{lineno}"


def test_hash_values_are_pinned():
    """Stored hashes decide re-ingest duplicates and key embeddings: speed-ups must not change them.

    (content_hash was redefined once on purpose, to ignore the importer and sub-millisecond times; rows
    hashed before are compared through ``pipeline.same_call``, and ``h_`` ids keep their old derivation.)
    """
    line = {
        "timestamp": "2026-11-18T15:00:00.250Z", "latency_ms": 812.5, "request_id": "req_pin",
        "metadata": {"user_id": "u-7", "app": "support", "tier": 3},
        "request": {"model": "claude-sonnet-4-5", "max_tokens": 256, "temperature": 0.2, "system": "Be brief. \u00e9\u6f22",
                    "tools": [{"name": "lookup", "description": "find an order",
                               "input_schema": {"type": "object", "properties": {"id": {"type": "string"}}}}],
                    "messages": [{"role": "user", "content": "Where is order 42?"},
                                 {"role": "assistant", "content": [{"type": "tool_use", "id": "tu_1", "name": "lookup",
                                                                    "input": {"id": "42"}}]},
                                 {"role": "user", "content": [{"type": "tool_result", "tool_use_id": "tu_1",
                                                               "content": "shipped"}]}]},
        "response": {"id": "msg_pin", "type": "message", "role": "assistant", "model": "claude-sonnet-4-5-20250929",
                     "content": [{"type": "text", "text": "It shipped \U0001f4e6."}], "stop_reason": "end_turn",
                     "usage": {"input_tokens": 40, "output_tokens": 6}},
    }
    now = dt.datetime(2026, 11, 20, tzinfo=dt.UTC)
    rec = P.finalize(anthropic_log_record(line, "line:1"), "anthropic_log", "/logs/a.jsonl", IngestOptions(), now)
    assert (rec["content_hash"], rec["prompt_hash"], rec["system_prompt_hash"], rec["tools_hash"]) == (
        "1d5732917f3681e208c217ad6b90981f3ab19dfe47bf48931d7e17afb0288935", "bc0cf1fa8c8af1c0", "0c1ffa7c98d73567",
        "35de9138d243be39")
    del line["response"]["id"], line["request_id"]
    rec = P.finalize(anthropic_log_record(line, "line:1"), "anthropic_log", "/logs/a.jsonl", IngestOptions(), now)
    assert rec["trace_id"] == "h_d30b3d663fa60485c7fb1ec82d4e3f"
    plain = {"timestamp": "2026-11-18 15:00:00", "messages": [{"role": "user", "text": "hi"}], "response_text": "yo",
             "model_requested": "gpt-4o-2024-08-06", "source_locator": "row:3", "attributes": {"k": 1}}
    rec = P.finalize(plain, "generic_jsonl", "/logs/b.jsonl", IngestOptions(), now)
    assert (rec["content_hash"], rec["prompt_hash"]) == (
        "1add86cbeea1313e8b55e2cd2de825a13a564745366f25c743001c9b301e0999", "554a9985201b46d6")
    assert text_hash("caf\u00e9 \ud800") == "a13c823dc2ed3719"
    assert tools_hash('[{"b": 1, "a": [2]}]') == "c3a86ee765398e8f"
    assert tools_hash("not json") == "85462369cc4b934f"
    assert tools_hash([{"b": 1, "a": 2**70}]) == "f011d7ddda87d2c6"
    assert prompt_hash(None, [{"role": "user", "text": "lone \ud800"}], None) == "c7094459df96ed4b"
    assert record_hash({"b": 1, "a": dt.datetime(2026, 1, 1, tzinfo=dt.UTC), "c": 2**70}) == (
        "014a4294de14ecf5b87aa60bccb5948c468496af003e6e5843b38cd7dd075cd2")


def _quarantine_by_file(store: Store) -> list[list[dict]]:
    """Quarantine rows file by file, in file order within each file (files sorted by content)."""
    import pyarrow.parquet as pq

    per_file = [pq.read_table(f).drop(["quarantined_at"]).to_pylist() for f in store.files("quarantine")]
    return sorted(per_file, key=lambda rows: [r["quarantine_id"] for r in rows])


def test_converting_in_sub_batches_changes_nothing(tmp_path, monkeypatch):
    """Records are turned into Arrow a few at a time to bound memory; rows and their order must not change."""
    huge = json.loads(anthropic_line(90))
    huge["response"]["usage"]["input_tokens"] = 2**70  # Arrow refuses it: that record is coerced and stored
    p = _write(tmp_path / "mixed.jsonl", _lines()[:30] + [json.dumps(huge).encode()] + _lines()[30:])
    snapshots = []
    for every, workers in ((10**9, 0), (3, 0), (3, 2)):
        monkeypatch.setattr(P, "_CONVERT_EVERY", every)  # 10**9: one conversion per batch, as before
        store = Store(tmp_path / f"s{every}-{workers}", create=True)
        d = P.ingest(store, [str(p)], enricher=False, batch_size=BATCH, workers=workers).to_dict()
        for f in d["files"]:
            f.pop("seconds")
        traces = store.scan().collect().drop("ingested_at").sort("trace_id").to_dicts()
        snapshots.append((d, traces, _quarantine_by_file(store)))
    assert snapshots[1] == snapshots[0]
    assert snapshots[2] == snapshots[0]
    assert any(t["trace_id"] == "msg_000090" for t in snapshots[0][1])


def test_workers_do_without_pandas(tmp_path):
    """pyarrow would import pandas into every worker on its first conversion (~40 MB each); workers started
    by a process that has not imported it go without, and store exactly what the serial path stores."""
    import subprocess
    import sys

    src = _write(tmp_path / "log.jsonl", [anthropic_line(i).encode() for i in range(40)])
    log = tmp_path / "workers.txt"
    code = (
        "import os, sys\n"
        "import tracelens.ingest.pipeline as P\n"
        "from tracelens.store import Store\n"
        "parent, original = os.getpid(), P._process_chunk\n"
        "def run(chunk, *args):\n"
        "    if os.getpid() != parent:\n"
        f"        open({str(log)!r}, 'a').write(str('pandas' in sys.modules) + chr(10))\n"
        "    return original(chunk, *args)\n"
        "P._process_chunk = run\n"
        "s = P.ingest(Store(sys.argv[1], create=True), [sys.argv[2]], batch_size=7, workers=2)\n"
        "assert s.files[0].stored == 40 and s.files[0].reconciles, s.to_dict()\n"
    )
    env = {**os.environ, "PYTHONPATH": str(Path(P.__file__).parents[2])}
    subprocess.run([sys.executable, "-c", code, str(tmp_path / "store"), str(src)], check=True, env=env, timeout=120)
    seen = log.read_text().split()
    assert seen and set(seen) == {"False"}
    serial = Store(tmp_path / "serial", create=True)
    P.ingest(serial, [str(src)], batch_size=7, workers=0)
    got = open_store(tmp_path / "store").scan().collect().drop("ingested_at").sort("trace_id")
    assert got.to_dicts() == serial.scan().collect().drop("ingested_at").sort("trace_id").to_dicts()
