"""tracelens.ingest.batchjoin: how batch results find their request bodies, ids and fallback time."""

from __future__ import annotations

import datetime as dt
import gzip
import json
import os

from tracelens.ingest.batchjoin import CompanionIndex, file_fingerprint, file_time, load_companions


def test_lookup_joins_one_body_and_says_why_it_did_not():
    idx = CompanionIndex()
    idx.add("r-1", "/x/a.jsonl", '{"a":1}')
    assert idx.lookup("r-1", "/y/results.jsonl") == ('{"a":1}', "joined")
    assert idx.lookup("r-2", "/y/results.jsonl") == (None, "missing")
    assert idx.lookup(None, "/y/results.jsonl") == (None, "missing")
    # no name tells two files apart: join nothing rather than the wrong prompt
    idx.add("r-1", "/x/b.jsonl", '{"b":1}')
    assert idx.lookup("r-1", "/y/results.jsonl") == (None, "ambiguous")


def test_repeated_custom_ids_join_the_best_matching_request_file():
    idx = CompanionIndex()
    idx.add("r-1", "/d/march_requests.jsonl", '{"m":3}')
    idx.add("r-1", "/d/april_requests.jsonl", '{"m":4}')
    assert idx.lookup("r-1", "/d/april_results.jsonl") == ('{"m":4}', "joined")
    assert idx.lookup("r-1", "/d/march-batch-output.jsonl.gz") == ('{"m":3}', "joined")
    # the same directory wins over a longer common name elsewhere
    idx.add("r-2", "/other/april_requests.jsonl", '{"far":1}')
    idx.add("r-2", "/d/x_requests.jsonl", '{"near":1}')
    assert idx.lookup("r-2", "/d/april_results.jsonl") == ('{"near":1}', "joined")


def test_the_same_request_in_several_files_still_joins():
    idx = CompanionIndex()
    idx.add("r-1", "/x/a.jsonl", "{}")
    idx.add("r-1", "/x/a.jsonl", "{}")  # added twice from one file: kept once
    idx.add("r-1", "/x/copy.jsonl", "{}")
    assert idx.by_id["r-1"] == [("/x/a.jsonl", "{}"), ("/x/copy.jsonl", "{}")]
    assert idx.lookup("r-1", "/y/results.jsonl") == ("{}", "joined")


def _rows(value):
    yield value.get("custom_id"), value.get("body")


def test_load_companions_skips_what_it_cannot_read(tmp_path):
    good = tmp_path / "input.jsonl.gz"
    lines = [json.dumps({"custom_id": "a", "body": {"model": "m", "messages": []}}), "{not json",
             json.dumps({"custom_id": "b", "body": "not an object"}), json.dumps([1, 2]),
             json.dumps({"custom_id": 7, "body": {"x": 1}})]
    good.write_bytes(gzip.compress(("\n".join(lines) + "\n").encode()))
    idx = load_companions([str(tmp_path / "missing.jsonl"), str(good)], _rows)
    assert sorted(idx.by_id) == ["7", "a"]  # the bad line, the non-object body and the list line cost only themselves
    assert idx.lookup("a", str(tmp_path / "output.jsonl")) == ('{"model":"m","messages":[]}', "joined")


def test_fingerprint_depends_on_content_not_path():
    assert file_fingerprint(b"abc") == file_fingerprint(b"abc")
    assert file_fingerprint(b"abc") != file_fingerprint(b"abd")
    assert len(file_fingerprint(b"")) == 12 and int(file_fingerprint(b"x"), 16) >= 0


def test_file_time(tmp_path):
    p = tmp_path / "results.jsonl"
    p.write_text("{}\n")
    os.utime(p, (1_790_000_000, 1_790_000_000))
    assert dt.datetime.fromisoformat(file_time(str(p))) == dt.datetime.fromtimestamp(1_790_000_000, tz=dt.UTC)
    assert file_time("-") is None and file_time(str(tmp_path / "gone.jsonl")) is None
