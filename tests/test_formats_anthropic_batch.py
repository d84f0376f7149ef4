"""anthropic_batch: Message Batches results joined with their requests by custom_id."""

from __future__ import annotations

import datetime as dt
import json
import os
import shutil
from pathlib import Path

import pytest
from click.testing import CliRunner

from tests.conftest import shared_path
from tracelens.ingest.base import IngestOptions
from tracelens.ingest.batchjoin import file_fingerprint
from tracelens.ingest.normalize import dumps
from tracelens.ingest.pipeline import ingest
from tracelens.ingest.readers import open_input
from tracelens.ingest.registry import sniff_format
from tracelens.store import Store

SYS = "Label the sentiment: positive, negative or neutral."


def params(text: str, model: str = "claude-haiku-4-5") -> dict:
    return {"model": model, "max_tokens": 50, "system": SYS, "messages": [{"role": "user", "content": text}]}


REQUESTS = {"r-1": params("Great service!"), "r-2": params("Terrible wait."), "r-3": params("It was fine."),
            "r-4": params("Meh."), "r-5": params("Loved it.", model="claude-haiku-4-5-20251001")}


def succeeded(cid, mid, text, stop="end_turn", model="claude-haiku-4-5-20251001", **kw):
    m = {"id": mid, "type": "message", "role": "assistant", "model": model, "content": [{"type": "text", "text": text}],
         "stop_reason": stop, "stop_sequence": None, "usage": {"input_tokens": 30, "output_tokens": 2}}
    m.update(kw)
    return {"custom_id": cid, "result": {"type": "succeeded", "message": m}}


RESULTS = [
    succeeded("r-2", "msg_b2", "negative"),
    succeeded("r-1", "msg_b1", "positive"),
    {"custom_id": "r-3", "result": {"type": "errored",
                                    "error": {"type": "error", "error": {"type": "invalid_request_error", "message": "bad"}}}},
    {"custom_id": "r-4", "result": {"type": "canceled"}},
    {"custom_id": "r-5", "result": {"type": "expired"}},
    succeeded("r-9", "msg_b9", "neutral"),  # no such request in the requests file
    {"custom_id": "r-6", "result": {"type": "exploded"}},  # unknown result type: quarantined
]


def write_jsonl(path: Path, rows) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


@pytest.fixture
def batch_dir(tmp_path) -> Path:
    d = tmp_path / "batch"
    d.mkdir()
    write_jsonl(d / "results.jsonl", RESULTS)
    write_jsonl(d / "requests.jsonl", [{"custom_id": k, "params": v} for k, v in REQUESTS.items()])
    return d


def run(store, paths, **opts):
    return ingest(store, [str(p) for p in paths], IngestOptions(**opts), enricher=False)


def traces(store) -> dict[str, dict]:
    return {r["trace_id"]: r for r in store.scan().collect().to_dicts()}


def test_sniffing_roles(batch_dir):
    for name, fmt in (("results.jsonl", "anthropic_batch"), ("requests.jsonl", "anthropic_batch_requests")):
        s, head = open_input(str(batch_dir / name))
        s.close()
        assert sniff_format(head, name).name == fmt


def test_join_and_result_types(batch_dir, store):
    summary = run(store, [batch_dir], default_time="2026-10-02T00:00:00Z")
    files = {Path(f.path).name: f for f in summary.files}
    assert files["requests.jsonl"].format == "anthropic_batch_requests (joined)" and files["requests.jsonl"].read == 0
    f = files["results.jsonl"]
    assert (f.read, f.stored, f.quarantined) == (7, 6, 1) and f.reconciles
    by = traces(store)
    fp = file_fingerprint((batch_dir / "results.jsonl").read_bytes())
    ok = by["msg_b1"]
    assert (ok["prompt_text"], ok["system_prompt"], ok["response_text"]) == ("Great service!", SYS, "positive")
    assert ok["request_raw"] == dumps(REQUESTS["r-1"])
    assert (ok["model_requested"], ok["model_returned"], ok["model_is_alias"]) == (
        "claude-haiku-4-5", "claude-haiku-4-5-20251001", True)
    assert (ok["status"], ok["stop_reason"], ok["input_tokens"], ok["max_tokens"]) == ("ok", "end_turn", 30, 50)
    attrs = dict(ok["attributes"])
    assert attrs["batch_custom_id"] == "r-1" and attrs["batch_request"] == "joined" and attrs["batch_file"] == fp
    assert attrs["timestamp_source"] == "default_time"
    err = by[f"batch:{fp}:r-3"]
    assert (err["status"], err["error_type"], err["error_message"], err["stop_reason"]) == (
        "error", "invalid_request_error", "bad", "error")
    assert err["prompt_text"] == "It was fine."
    for cid, kind in (("r-4", "canceled"), ("r-5", "expired")):
        t = by[f"batch:{fp}:{cid}"]
        assert (t["status"], t["error_type"]) == ("error", kind)
    assert by[f"batch:{fp}:r-5"]["model_is_alias"] is False  # pinned in the request
    lone = by["msg_b9"]
    assert lone["prompt_text"] is None and lone["messages"] == [] and lone["request_raw"] is None
    assert dict(lone["attributes"])["batch_request"] == "missing"
    q = store.scan("quarantine").collect().to_dicts()
    assert "unknown batch result type 'exploded'" in q[0]["reason"]


def test_requests_document_form_and_no_requests(tmp_path, batch_dir):
    doc = tmp_path / "create.json"
    doc.write_text(json.dumps({"requests": [{"custom_id": k, "params": v} for k, v in REQUESTS.items()]}, indent=2))
    s1 = Store(tmp_path / "s1", create=True)
    run(s1, [batch_dir / "results.jsonl", doc], default_time="2026-10-02T00:00:00Z")
    assert traces(s1)["msg_b2"]["prompt_text"] == "Terrible wait."
    s2 = Store(tmp_path / "s2", create=True)
    summary = run(s2, [batch_dir / "results.jsonl"], default_time="2026-10-02T00:00:00Z")
    assert summary.files[0].stored == 6
    t = traces(s2)["msg_b2"]
    assert t["prompt_text"] is None and dict(t["attributes"])["batch_request"] == "missing"
    assert t["model_returned"] == "claude-haiku-4-5-20251001" and t["model_is_alias"] is False


def test_timestamps_from_mtime_and_batch_object(batch_dir, tmp_path):
    res = batch_dir / "results.jsonl"
    when = dt.datetime(2026, 10, 3, 12, 0, tzinfo=dt.UTC).timestamp()
    os.utime(res, (when, when))
    s1 = Store(tmp_path / "s1", create=True)
    run(s1, [res])
    t = traces(s1)["msg_b1"]
    assert t["timestamp"].isoformat() == "2026-10-03T12:00:00+00:00"
    assert dict(t["attributes"])["timestamp_source"] == "file_mtime"
    obj = tmp_path / "batch_object.json"
    obj.write_text(json.dumps({"id": "msgbatch_1", "type": "message_batch", "processing_status": "ended",
                               "created_at": "2026-10-01T08:00:00Z", "ended_at": "2026-10-01T09:30:00Z"}, indent=2))
    s2 = Store(tmp_path / "s2", create=True)
    summary = run(s2, [res, obj])
    assert {f.format for f in summary.files} == {"anthropic_batch", "anthropic_batch_object (joined)"}
    t = traces(s2)["msg_b1"]
    assert t["timestamp"].isoformat() == "2026-10-01T09:30:00+00:00"
    assert dict(t["attributes"])["timestamp_source"] == "batch_ended_at"
    assert dict(t["attributes"])["batch_id"] == "msgbatch_1"


def test_trace_ids_survive_moves_and_do_not_collide_across_batches(batch_dir, tmp_path, store):
    run(store, [batch_dir], default_time="2026-10-02T00:00:00Z")
    moved = tmp_path / "elsewhere"
    shutil.copytree(batch_dir, moved)
    again = run(store, [moved], default_time="2026-10-02T00:00:00Z")
    f = next(f for f in again.files if f.format == "anthropic_batch")
    assert (f.stored, f.duplicates, f.quarantined) == (0, 6, 1)
    # another batch reusing custom id r-4, also canceled: a different file, so a different trace
    other = write_jsonl(tmp_path / "other_results.jsonl", [{"custom_id": "r-4", "result": {"type": "canceled"}},
                                                            {"custom_id": "r-8", "result": {"type": "expired"}}])
    s = run(store, [other], default_time="2026-10-02T00:00:00Z")
    assert s.files[0].stored == 2
    ids = [t for t in traces(store) if t.endswith(":r-4")]
    assert len(ids) == 2


def test_repeated_custom_ids_join_the_matching_request_file(tmp_path):
    d = tmp_path / "two"
    d.mkdir()
    write_jsonl(d / "march_requests.jsonl", [{"custom_id": "r-1", "params": params("from march")}])
    write_jsonl(d / "april_requests.jsonl", [{"custom_id": "r-1", "params": params("from april")}])
    write_jsonl(d / "april_results.jsonl", [succeeded("r-1", "msg_april", "ok")])
    store = Store(tmp_path / "s", create=True)
    run(store, [d], default_time="2026-10-02T00:00:00Z")
    assert store.get("msg_april")["prompt_text"] == "from april"


def test_request_file_alone_is_skipped(batch_dir, store):
    s = ingest(store, [str(batch_dir / "requests.jsonl")], IngestOptions(), force_format="anthropic_batch_requests",
               enricher=False)
    f = s.files[0]
    assert (f.read, f.skipped, f.stored) == (5, 5, 0) and f.reconciles


def test_cli_ingest_json(batch_dir, tmp_path):
    from tracelens.cli.main import cli

    res = CliRunner().invoke(cli, ["ingest", "--store", str(tmp_path / "s"), "--json", "--no-progress",
                                   "--default-time", "2026-10-02T00:00:00Z", str(batch_dir)])
    assert res.exit_code == 0, res.output
    out = json.loads(res.stdout)
    assert out["totals"]["read"] == 7 and out["totals"]["stored"] == 6 and out["reconciles"] is True


@pytest.mark.shared
def test_real_docs_example(tmp_path):
    d = shared_path("formats", "anthropic", "docs_examples")
    paths = [d / "message_batch_results_example.jsonl", d / "message_batch_create_requests_example.json"]
    store = Store(tmp_path / "s", create=True)
    summary = run(store, paths, default_time="2026-10-02T00:00:00Z")
    res = next(f for f in summary.files if f.format == "anthropic_batch")
    n = len((d / "message_batch_results_example.jsonl").read_text().splitlines())
    assert (res.read, res.stored, res.quarantined) == (n, n, 0)
    df = store.scan().collect()
    assert df["prompt_text"].null_count() == 0 and set(df["model_returned"].to_list()) == {"claude-3-7-sonnet-20250219"}
    assert {dict(a)["batch_request"] for a in df["attributes"].to_list()} == {"joined"}
