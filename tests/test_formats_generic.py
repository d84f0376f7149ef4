"""generic_csv / generic_jsonl / generic_parquet: rows + column mapping -> traces."""

from __future__ import annotations

import csv
import datetime as dt
import gzip
import io
import json
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from click.testing import CliRunner

from tests.conftest import anthropic_line, shared_path
from tracelens.ingest.base import FormatError, IngestOptions, Source
from tracelens.ingest.formats.generic import GenericCsv, plan_mapping
from tracelens.ingest.pipeline import ingest
from tracelens.ingest.registry import FORMATS, sniff_format
from tracelens.store import Store

HEADER = ["ts", "user_id", "model", "question", "answer", "latency_ms", "rating"]
ROWS = [
    ["2026-10-01T08:00:00Z", "u1", "claude-sonnet-4-5", "How do I reset MFA?", "Go to Settings > Security.", "1200", "5"],
    ["2026-10-02T09:30:00Z", "u2", "claude-sonnet-4-5-20250929", "Write two lines, please.", "Line one,\nline \"two\".", "800", ""],
    ["2026-10-03T10:45:00Z", "u1", "claude-haiku-4-5", "Big answer?", "x" * 300_000, "2500", "3"],
]


def write_csv(path: Path, header=HEADER, rows=ROWS, delimiter=",") -> Path:
    with open(path, "w", newline="", encoding="utf-8") as f:
        w = csv.writer(f, delimiter=delimiter)
        w.writerow(header)
        w.writerows(rows)
    return path


def run(tmp_path, paths, fmt=None, **opts):
    store = Store(tmp_path / "s", create=True)
    summary = ingest(store, [str(p) for p in paths], IngestOptions(**opts), force_format=fmt, enricher=False)
    rows = sorted(store.scan().collect().to_dicts(), key=lambda r: r["timestamp"])
    return store, summary, rows


def test_csv_auto_mapping(tmp_path):
    p = write_csv(tmp_path / "chat.csv")
    store, summary, rows = run(tmp_path, [p])
    f = summary.files[0]
    assert f.format == "generic_csv" and (f.read, f.stored, f.quarantined) == (3, 3, 0)
    a, b, c = rows
    assert (a["prompt_text"], a["response_text"], a["user_id"], a["latency_ms"]) == (
        "How do I reset MFA?", "Go to Settings > Security.", "u1", 1200.0)
    assert a["messages"] == [{"role": "user", "text": "How do I reset MFA?", "tool_calls": [], "tool_call_id": None, "name": None}]
    assert (a["model_requested"], a["model_is_alias"], a["provider"]) == ("claude-sonnet-4-5", True, "anthropic")
    assert b["model_is_alias"] is False
    assert a["timestamp"].isoformat() == "2026-10-01T08:00:00+00:00"
    assert dict(a["attributes"]) == {"rating": "5"}
    assert b["response_text"] == 'Line one,\nline "two".' and b["attributes"] is None  # quoted newline; empty cell dropped
    assert len(c["response_text"]) == 300_000  # beyond csv's default field limit
    assert a["source_locator"] == "row:1" and c["source_locator"] == "row:3"


def test_csv_explicit_map_aliases_and_seconds(tmp_path):
    p = write_csv(tmp_path / "data.tsv", header=["when", "q", "a", "secs", "why"], delimiter="\t",
                  rows=[["20261004", "hi", "hello", "1.5", "length"]])
    _, summary, rows = run(tmp_path, [p], "generic_csv",
                           column_map={"prompt": "q", "response": "a", "time": "when", "latency_s": "secs",
                                       "finish_reason": "why"}, provider="Anthropic")
    assert summary.files[0].stored == 1
    r = rows[0]
    assert (r["prompt_text"], r["response_text"], r["latency_ms"]) == ("hi", "hello", 1500.0)
    assert (r["stop_reason"], r["stop_reason_raw"], r["provider"]) == ("max_tokens", "length", "anthropic")
    assert r["timestamp"].isoformat() == "2026-10-04T00:00:00+00:00"  # basic ISO date, not epoch seconds


def test_mapping_errors_are_clear():
    with pytest.raises(FormatError) as e:
        plan_mapping(["q", "a"], {"promt": "q"}, "f.csv")
    assert "promt" in str(e.value) and "prompt_text" in str(e.value) and "prompt (prompt_text)" in str(e.value)
    with pytest.raises(FormatError) as e:
        plan_mapping(["q", "a"], {"prompt": "question", "response": "answer"}, "f.csv")
    assert "answer, question" in str(e.value) and "columns found: q, a" in str(e.value)
    with pytest.raises(FormatError) as e:
        plan_mapping(["foo", "bar"], {}, "f.csv")
    assert "no prompt or response column" in str(e.value) and "--map prompt=COLUMN" in str(e.value)
    m = plan_mapping(["Question", "Model Output", "created_at", "id"], {}, "f.csv")
    assert m.fields["prompt_text"][0] == "Question" and m.fields["response_text"][0] == "Model Output"
    assert m.fields["timestamp"][0] == "created_at" and "trace_id" not in m.fields  # a bare 'id' is not trusted


def test_file_level_errors_reported(tmp_path):
    p = write_csv(tmp_path / "other.csv", header=["foo", "bar"], rows=[["1", "2"]])
    _, summary, _ = run(tmp_path, [p])
    assert "no prompt or response column" in summary.files[0].error
    _, summary, _ = run(tmp_path, [write_csv(tmp_path / "chat.csv")], column_map={"prompt": "nope"})
    assert "mapped column(s) not in the file: nope" in summary.files[0].error


def test_no_timestamp_quarantines_unless_default(tmp_path):
    p = write_csv(tmp_path / "nots.csv", header=["prompt", "response"], rows=[["a", "b"], ["c", "d"]])
    store, summary, _ = run(tmp_path, [p])
    assert (summary.files[0].stored, summary.files[0].quarantined) == (0, 2)
    reason = store.scan("quarantine").collect()["reason"][0]
    assert "no timestamp column" in reason and "--default-time" in reason
    _, summary, rows = run(tmp_path / "2", [p], default_time="2026-10-05T00:00:00Z")
    assert summary.files[0].stored == 2 and dict(rows[0]["attributes"])["timestamp_source"] == "default_time"


def test_bad_rows_quarantined_good_rows_kept(tmp_path):
    p = tmp_path / "bad.csv"
    p.write_bytes(
        b"ts,prompt,response\n"
        b"2026-10-01T00:00:00Z,ok one,fine\n"
        b"2026-10-01T00:01:00Z,bad \xff\xfe bytes,oops\n"
        b"2026-10-01T00:02:00Z,too,many,fields\n"
        b"2026-10-01T00:03:00Z,ok two,fine\n"
        b"not a time,ok three,fine\n"
        b"2026-10-01T00:05:00Z,\"unterminated"
    )
    store, summary, rows = run(tmp_path, [p])
    f = summary.files[0]
    assert (f.read, f.stored, f.quarantined) == (6, 2, 4) and f.reconciles
    assert [r["prompt_text"] for r in rows] == ["ok one", "ok two"]
    reasons = {r["source_locator"]: r["reason"] for r in store.scan("quarantine").collect().to_dicts()}
    assert "invalid UTF-8" in reasons["row:2"]
    assert "4 fields, the header has 3" in reasons["row:3"]
    assert "unparseable timestamp" in reasons["row:5"]
    assert "2 fields, the header has 3" in reasons["row:6"]


def test_jsonl_nested_paths_and_messages(tmp_path):
    p = tmp_path / "rows.jsonl"
    lines = [
        {"created_at": "2026-10-02T00:00:00Z", "input": "hello?", "output": "hi!", "usage": {"in": 3, "out": 2},
         "messages": [{"role": "system", "content": "Be nice."}, {"role": "user", "content": "hello?"}], "tag": ["a"]},
        [1, 2],
        {"created_at": "2026-10-02T00:01:00Z", "input": "bye", "output": "ciao", "usage": {"in": "x"}},
    ]
    p.write_text("".join(json.dumps(x) + "\n" for x in lines))
    store, summary, rows = run(tmp_path, [p], column_map={"input_tokens": "usage.in", "output_tokens": "usage.out"})
    f = summary.files[0]
    assert f.format == "generic_jsonl" and (f.read, f.stored, f.quarantined) == (3, 1, 2)
    r = rows[0]
    assert (r["system_prompt"], r["prompt_text"], r["response_text"]) == ("Be nice.", "hello?", "hi!")
    assert (r["input_tokens"], r["output_tokens"]) == (3, 2)
    assert dict(r["attributes"]) == {"usage": '{"in":3,"out":2}', "tag": '["a"]'}
    reasons = sorted(store.scan("quarantine").collect()["reason"].to_list())
    assert reasons[0].startswith("column 'usage.in' (input_tokens) is not a number")
    assert reasons[1] == "expected an object, got list"


def _parquet_table():
    return pa.table({
        "ts": pa.array([dt.datetime(2026, 10, 6, 12, i, tzinfo=dt.UTC) for i in range(5)], pa.timestamp("us", tz="UTC")),
        "day": pa.array([dt.date(2026, 10, 6)] * 5, pa.date32()),
        "prompt": [f"question {i}" for i in range(5)],
        "completion": [f"answer {i}" for i in range(5)],
        "meta": [{"k": i} for i in range(5)],
    })


def test_parquet_streamed_by_batches(tmp_path):
    p = tmp_path / "rows.parquet"
    pq.write_table(_parquet_table(), p, row_group_size=2)
    store, summary, rows = run(tmp_path, [p])
    f = summary.files[0]
    assert f.format == "generic_parquet" and (f.read, f.stored) == (5, 5)
    assert [r["source_locator"] for r in rows] == [f"row:{i}" for i in range(1, 6)]
    assert rows[4]["prompt_text"] == "question 4" and rows[4]["response_text"] == "answer 4"
    assert rows[4]["timestamp"].isoformat() == "2026-10-06T12:04:00+00:00"
    assert dict(rows[4]["attributes"]) == {"day": "2026-10-06", "meta": '{"k":4}'}
    # gzip-compressed Parquet is read through memory; a date column can be the timestamp
    gz = tmp_path / "rows.parquet.gz"
    buf = io.BytesIO()
    pq.write_table(_parquet_table(), buf)
    gz.write_bytes(gzip.compress(buf.getvalue()))
    _, summary, rows = run(tmp_path / "gz", [gz], column_map={"timestamp": "day"})
    assert summary.files[0].stored == 5 and rows[0]["timestamp"].isoformat() == "2026-10-06T00:00:00+00:00"


def test_sniffers_stay_low_and_specific_formats_win(tmp_path):
    csv_head = write_csv(tmp_path / "c.csv").read_bytes()[:4096]
    for fmt in ("generic_csv", "generic_jsonl", "generic_parquet"):
        for head in (csv_head, anthropic_line(1).encode(), b"PAR1xxxx", b'{"prompt": "a", "response": "b"}\n'):
            assert FORMATS[fmt].sniff(head, "x") <= 0.35
    assert sniff_format(anthropic_line(1).encode(), "log.jsonl").name == "anthropic_log"
    assert sniff_format(b'{"question": "a", "answer": "b"}\n', "x.jsonl").name == "generic_jsonl"
    assert sniff_format(b"foo,bar\n1,2\n", "x.csv").name == "generic_csv"  # a .csv without known columns: explained later
    assert sniff_format(b"foo,bar\n1,2\n", "x.txt") is None


def test_csv_header_only_and_empty(tmp_path):
    p = tmp_path / "h.csv"
    p.write_text("ts,prompt,response\n")
    with open(p, "rb") as fh:
        assert list(GenericCsv().parse(Source(str(p), fh, IngestOptions(), p.read_bytes()))) == []


def test_cli_map_and_format(tmp_path):
    from tracelens.cli.main import cli

    p = write_csv(tmp_path / "x.txt", header=["when", "q", "a"], rows=[["2026-10-07T00:00:00Z", "hi", "hello"]])
    res = CliRunner().invoke(cli, ["ingest", "--store", str(tmp_path / "s"), "--json", "--no-progress", "--format",
                                   "generic_csv", "--map", "prompt=q", "--map", "response=a", "--map", "ts=when", str(p)])
    assert res.exit_code == 0, res.output
    out = json.loads(res.stdout)
    assert out["totals"]["stored"] == 1 and out["files"][0]["format"] == "generic_csv"
    res = CliRunner().invoke(cli, ["ingest", "--store", str(tmp_path / "s"), "--json", "--no-progress", "--format",
                                   "generic_csv", "--map", "bogus=q", str(p)])
    assert res.exit_code == 1 and "unknown field(s) in --map: bogus" in json.loads(res.stdout)["files"][0]["error"]


@pytest.mark.shared
def test_real_xstest_csv(tmp_path):
    p = shared_path("xstest", "xstest_v2_completions_gpt4.csv")
    with open(p, newline="", encoding="utf-8") as f:
        n = sum(1 for _ in csv.reader(f)) - 1
    store, summary, rows = run(tmp_path, [p], default_time="2026-10-03T00:00:00Z")
    f = summary.files[0]
    assert f.format == "generic_csv" and f.read == n and f.quarantined == 0 and f.stored + f.duplicates == n
    assert all(r["prompt_text"] and r["response_text"] is not None for r in rows)
    assert {"id", "type", "final_label"} <= set(dict(rows[0]["attributes"]))
