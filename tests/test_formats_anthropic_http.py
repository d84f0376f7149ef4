"""anthropic_http: SDK/HTTP exchange recordings -> traces (streaming, errors, skips, no API keys stored)."""

from __future__ import annotations

import datetime as dt
import io
import json
import os
from pathlib import Path

import pyarrow.parquet as pq
import pytest
from click.testing import CliRunner

from tests.conftest import shared_path
from tracelens.ingest.base import IngestOptions, Quarantined, Skipped, Source
from tracelens.ingest.formats.anthropic_http import AnthropicHttp, classify, safe_url
from tracelens.ingest.normalize import dumps
from tracelens.ingest.pipeline import ingest
from tracelens.ingest.readers import open_input
from tracelens.ingest.registry import sniff_format
from tracelens.store import Store

FAKE_KEY = "sk-ant-api03-FAKEKEYforTESTS-0123456789abcdef"

# A string request body, kept byte for byte as request_raw (note the spacing).
STRING_BODY = '{"model": "claude-haiku-4-5",  "max_tokens": 64, "messages": [{"role": "user", "content": "Ping?"}]}'


def _req(url="https://api.anthropic.com/v1/messages", body=None, method="POST", **headers):
    h = {"host": "api.anthropic.com", "content-type": "application/json", "anthropic-version": "2023-06-01",
         "x-api-key": FAKE_KEY, "Authorization": f"Bearer {FAKE_KEY}", "user-agent": "Anthropic/Python 0.82.0",
         "x-stainless-retry-count": "0"}
    h.update(headers)
    return {"method": method, "url": url, "headers": h, "body": body}


def _resp(status, body, date="Thu, 01 Oct 2026 09:00:00 GMT", **headers):
    h = {"content-type": "application/json", "request-id": headers.pop("rid", "req_hdr_0001")}
    if date:
        h["date"] = date
    h.update(headers)
    return {"status_code": status, "headers": h, "body": body}


def _message(mid, text="Hello there.", model="claude-sonnet-4-5-20250929", stop="end_turn", **kw):
    m = {"model": model, "id": mid, "type": "message", "role": "assistant", "content": [{"type": "text", "text": text}],
         "stop_reason": stop, "stop_sequence": None,
         "usage": {"input_tokens": 21, "cache_creation_input_tokens": 0, "cache_read_input_tokens": 8, "output_tokens": 5}}
    m.update(kw)
    return m


def _sse_events():
    return [
        {"type": "message_start", "message": {"model": "claude-sonnet-4-5-20250929", "id": "msg_stream_1", "type": "message",
                                              "role": "assistant", "content": [], "stop_reason": None,
                                              "usage": {"input_tokens": 135, "output_tokens": 1}}},
        {"type": "content_block_start", "index": 0, "content_block": {"type": "text", "text": ""}},
        {"type": "ping"},
        {"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": "Checking "}},
        {"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": "the weather."}},
        {"type": "content_block_stop", "index": 0},
        {"type": "content_block_start", "index": 1, "content_block": {"type": "tool_use", "id": "toolu_1", "name": "weather", "input": {}}},
        {"type": "content_block_delta", "index": 1, "delta": {"type": "input_json_delta", "partial_json": '{"city": '}},
        {"type": "content_block_delta", "index": 1, "delta": {"type": "input_json_delta", "partial_json": '"Paris"}'}},
        {"type": "content_block_stop", "index": 1},
        {"type": "message_delta", "delta": {"stop_reason": "tool_use", "stop_sequence": None}, "usage": {"output_tokens": 30}},
        {"type": "message_stop"},
    ]


def _sse_text(events):
    # the SDK recordings pad data lines with spaces; keep that shape
    return "".join(f"event: {e['type']}\ndata: {json.dumps(e)}   \n\n" for e in events)


def _body(prompt, model="claude-sonnet-4-5", **kw):
    b = {"max_tokens": 256, "messages": [{"role": "user", "content": prompt}], "model": model}
    b.update(kw)
    return b


def exchanges() -> list[dict]:
    ev = _sse_events()
    return [
        # 0: plain call, alias requested, snapshot returned
        {"request": _req(body=_body("What is 2+2?", system="Be terse.")), "response": _resp(200, _message("msg_plain_1", "4"))},
        # 1: streaming, SSE text body
        {"request": _req(body=_body("Weather in Paris?", stream=True)),
         "response": _resp(200, _sse_text(ev), date="Fri, 02 Oct 2026 10:00:00 GMT", rid="req_hdr_0002",
                           **{"content-type": "text/event-stream"})},
        # 2: streaming, list of {event, data} objects, stream cut before message_stop
        {"request": _req(body=_body("Weather in Rome?", stream=True)),
         "response": _resp(200, [{"event": e["type"], "data": {**e, **({"message": {**e["message"], "id": "msg_stream_2"}}
                                                                         if e["type"] == "message_start" else {})}}
                                 for e in ev[:-1]], rid="req_hdr_0003")},
        # 3: rate limited
        {"request": _req(body=_body("Summarise this.")),
         "response": _resp(429, {"type": "error", "error": {"type": "rate_limit_error", "message": "Slow down."},
                                 "request_id": "req_body_429"}, rid="", **{"retry-after": "12"})},
        # 4: overloaded, HTML body from a proxy
        {"request": _req(body=_body("Summarise this.")),
         "response": _resp(529, "<html><body>overloaded</body></html>", rid="req_hdr_0529")},
        # 5: token counting: not an LLM call
        {"request": _req(url="https://api.anthropic.com/v1/messages/count_tokens", body=_body("count me")),
         "response": _resp(200, {"input_tokens": 9})},
        # 6: model listing
        {"request": _req(url="https://api.anthropic.com/v1/models", method="GET"), "response": _resp(200, {"data": []})},
        # 7: string request body (kept exactly), refusal with stop_details
        {"request": _req(url="https://api.anthropic.com/v1/messages?beta=true", body=STRING_BODY),
         "response": _resp(200, _message("msg_refusal_1", "", model="claude-haiku-4-5-20251001", stop="refusal",
                                         stop_details={"type": "refusal", "category": "cyber", "explanation": "no"}),
                           date="Sat, 03 Oct 2026 11:30:00 GMT")},
        # 8: no date header anywhere: the file's mtime is used (stdin would be quarantined)
        {"request": _req(body=_body("When?")), "response": _resp(200, _message("msg_nodate_1"), date=None)},
        # 9: not an exchange at all (carries the key: quarantine raw must be scrubbed)
        {"request": {"method": "POST", "url": "https://api.anthropic.com/v1/messages",
                     "headers": {"x-api-key": FAKE_KEY}, "body": {"model": "claude-x"}},
         "response": _resp(200, _message("msg_bad_1"))},
    ]


@pytest.fixture(scope="module")
def recording(tmp_path_factory) -> Path:
    p = tmp_path_factory.mktemp("http") / "recording.json"
    p.write_text(json.dumps(exchanges(), indent=2))
    return p


@pytest.fixture(scope="module")
def ingested(recording, tmp_path_factory):
    store = Store(tmp_path_factory.mktemp("store") / "s", create=True)
    summary = ingest(store, [str(recording)], IngestOptions(), enricher=False)
    return store, summary


def _by_id(store: Store) -> dict[str, dict]:
    return {r["trace_id"]: r for r in store.scan().collect().to_dicts()}


def test_sniffed_and_reconciles(recording, ingested):
    stream, head = open_input(str(recording))
    stream.close()
    assert sniff_format(head, str(recording)).name == "anthropic_http"
    _, summary = ingested
    f = summary.files[0]
    assert f.format == "anthropic_http" and f.error is None
    assert (f.read, f.stored, f.skipped, f.quarantined, f.duplicates) == (10, 7, 2, 1, 0)
    assert f.reconciles


def test_plain_call_fields(ingested):
    store, _ = ingested
    t = _by_id(store)["msg_plain_1"]
    assert t["provider"] == "anthropic"
    assert t["model_requested"] == "claude-sonnet-4-5" and t["model_returned"] == "claude-sonnet-4-5-20250929"
    assert t["model_is_alias"] is True and t["model_snapshot"] == "2025-09-29"
    assert (t["system_prompt"], t["prompt_text"], t["response_text"]) == ("Be terse.", "What is 2+2?", "4")
    assert (t["stop_reason"], t["stop_reason_raw"], t["status"], t["http_status"]) == ("end_turn", "end_turn", "ok", 200)
    assert (t["input_tokens"], t["output_tokens"], t["cache_read_tokens"]) == (21, 5, 8)
    assert t["request_id"] == "req_hdr_0001"
    assert t["timestamp"].isoformat() == "2026-10-01T09:00:00+00:00"
    assert t["request_raw"] == dumps(_body("What is 2+2?", system="Be terse."))
    assert json.loads(t["response_raw"])["id"] == "msg_plain_1"
    attrs = dict(t["attributes"])
    assert attrs["http.request.header.anthropic-version"] == "2023-06-01"
    assert attrs["http.response.header.request-id"] == "req_hdr_0001"
    assert attrs["http.url"] == "https://api.anthropic.com/v1/messages"


def test_streaming_reassembled(ingested):
    store, _ = ingested
    by = _by_id(store)
    t = by["msg_stream_1"]
    assert t["response_text"] == "Checking the weather."
    assert t["tool_calls"] == [{"id": "toolu_1", "name": "weather", "arguments": '{"city":"Paris"}'}]
    assert (t["stop_reason"], t["input_tokens"], t["output_tokens"]) == ("tool_use", 135, 30)
    assert dict(t["attributes"])["streamed"] == "true"
    assert t["response_raw"].startswith("event: message_start\n")  # the SSE text, exactly
    cut = by["msg_stream_2"]
    assert cut["response_text"] == "Checking the weather." and cut["stop_reason"] == "tool_use"
    assert dict(cut["attributes"])["stream_incomplete"] == "true"


def test_error_exchanges(ingested):
    store, _ = ingested
    by = _by_id(store)
    rl = by["req_body_429"]  # request id from the error body when the header is empty
    assert (rl["status"], rl["http_status"], rl["error_type"], rl["error_message"]) == ("error", 429, "rate_limit_error", "Slow down.")
    assert rl["stop_reason"] == "error" and rl["response_text"] is None
    assert dict(rl["attributes"])["http.response.header.retry-after"] == "12"
    ov = by["req_hdr_0529"]
    assert (ov["status"], ov["http_status"], ov["error_type"]) == ("error", 529, "overloaded_error")
    assert "overloaded" in ov["error_message"]


def test_string_body_kept_exactly_and_refusal(ingested):
    store, _ = ingested
    t = _by_id(store)["msg_refusal_1"]
    assert t["request_raw"] == STRING_BODY
    assert (t["stop_reason"], t["model_requested"], t["model_is_alias"]) == ("refusal", "claude-haiku-4-5", True)
    assert json.loads(t["stop_details"])["category"] == "cyber"


def test_quarantine_reasons(ingested):
    store, _ = ingested
    q = {r["source_locator"]: r["reason"] for r in store.scan("quarantine").collect().to_dicts()}
    assert set(q) == {"index:9"}
    assert "no 'messages'" in q["index:9"]


def test_undated_exchange_falls_back_to_file_mtime(recording, ingested):
    store, _ = ingested
    t = store.get("msg_nodate_1")
    mtime = dt.datetime.fromtimestamp(os.path.getmtime(recording), tz=dt.UTC)
    assert abs((t["timestamp"] - mtime).total_seconds()) < 1e-3
    assert dict(t["attributes"])["timestamp_source"] == "file_mtime"
    assert store.get("msg_plain_1")["timestamp"].isoformat() == "2026-10-01T09:00:00+00:00"  # header still wins


def test_undated_exchange_from_stdin_is_quarantined():
    undated = json.dumps([exchanges()[8]]).encode()
    items = list(AnthropicHttp().parse(Source("-", io.BytesIO(undated), IngestOptions(), undated[:4096])))
    assert len(items) == 1 and isinstance(items[0], Quarantined)
    assert "no 'date' response header" in items[0].reason and "--default-time" in items[0].reason


def test_skipped_are_not_llm_calls(recording):
    with open(recording, "rb") as fh:
        items = list(AnthropicHttp().parse(Source(str(recording), fh, IngestOptions(), recording.read_bytes()[:4096])))
    skipped = [i for i in items if isinstance(i, Skipped)]
    assert [s.locator for s in skipped] == ["index:5", "index:6"]
    assert "POST /v1/messages/count_tokens" in skipped[0].reason and "GET /v1/models" in skipped[1].reason
    assert sum(isinstance(i, Quarantined) for i in items) == 1


def test_api_keys_never_stored(ingested, tmp_path):
    store, _ = ingested
    # a document that is not valid JSON is quarantined whole: its raw text is scrubbed too
    broken = tmp_path / "broken.json"
    broken.write_text(json.dumps(exchanges()[:1], indent=2)[:-3])
    ingest(store, [str(broken)], IngestOptions(), force_format="anthropic_http", enricher=False)
    assert store.count("quarantine") == 2
    for f in store.files("traces") + store.files("quarantine"):
        text = json.dumps(pq.read_table(f).to_pylist(), default=str)
        assert FAKE_KEY not in text and "FAKEKEYforTESTS" not in text


def test_default_time_rescues_undated(recording, tmp_path):
    store = Store(tmp_path / "s", create=True)
    ingest(store, [str(recording)], IngestOptions(default_time="2026-10-04T00:00:00Z"), enricher=False)
    t = store.get("msg_nodate_1")
    assert t["timestamp"].isoformat() == "2026-10-04T00:00:00+00:00"
    assert dict(t["attributes"])["timestamp_source"] == "default_time"
    assert store.get("msg_plain_1")["timestamp"].isoformat() == "2026-10-01T09:00:00+00:00"  # header still wins


def test_classify_platform_urls():
    assert classify("POST", "https://api.anthropic.com/v1/messages?beta=true")[0] == "messages"
    assert classify("POST", "https://api.anthropic.com/v1/messages/batches")[0] == "skip"
    assert classify("GET", "https://api.anthropic.com/v1/messages")[0] == "skip"
    assert classify("POST", "https://api.anthropic.com/v1/complete")[0] == "unsupported"
    kind, model, platform, _ = classify(
        "POST", "https://us-east5-aiplatform.googleapis.com/v1/projects/p/locations/us-east5/publishers/anthropic/"
        "models/claude-sonnet-4-5@20250929:streamRawPredict")
    assert (kind, model, platform) == ("messages", "claude-sonnet-4-5@20250929", "vertex")
    kind, model, platform, _ = classify(
        "POST", "https://bedrock-runtime.us-east-1.amazonaws.com/model/anthropic.claude-3-5-sonnet-20240620-v1%3A0/invoke")
    assert (kind, model, platform) == ("messages", "anthropic.claude-3-5-sonnet-20240620-v1:0", "bedrock")
    assert safe_url("https://u:p@host.example/v1/x?key=abc&beta=true") == "https://host.example/v1/x?beta=true"


def test_vertex_model_from_url(tmp_path):
    body = {"anthropic_version": "vertex-2023-10-16", "max_tokens": 32, "messages": [{"role": "user", "content": "hi"}]}
    ex = [{"request": _req(url="https://europe-west1-aiplatform.googleapis.com/v1/projects/p/locations/europe-west1/"
                               "publishers/anthropic/models/claude-sonnet-4-5@20250929:rawPredict", body=body),
           "response": _resp(200, _message("msg_vertex_1"))}]
    p = tmp_path / "vertex.json"
    p.write_text(json.dumps(ex))
    store = Store(tmp_path / "s", create=True)
    ingest(store, [str(p)], IngestOptions(), enricher=False)
    t = store.get("msg_vertex_1")
    assert (t["provider"], t["model_requested"], t["model_is_alias"]) == ("vertex", "claude-sonnet-4-5@20250929", False)


def test_cli_ingest_json(recording, tmp_path):
    from tracelens.cli.main import cli

    res = CliRunner().invoke(cli, ["ingest", "--store", str(tmp_path / "s"), "--json", "--no-progress", str(recording)])
    assert res.exit_code == 0, res.output
    out = json.loads(res.stdout)
    assert out["totals"] == {"records": 10, "read": 10, "stored": 7, "duplicates": 0, "quarantined": 1, "skipped": 2,
                             "naive_timestamps": 0, "events": 0, "joined": 0, "waiting": 0}
    assert out["files"][0]["format"] == "anthropic_http" and out["reconciles"] is True


@pytest.mark.shared
def test_real_sdk_recordings(tmp_path):
    d = shared_path("formats", "anthropic", "sdk_recorded_http")
    files = sorted(str(p) for p in d.glob("*.json"))
    store = Store(tmp_path / "s", create=True)
    # none of the real recordings carries a date: every exchange falls back to its file's mtime
    summary = ingest(store, files, IngestOptions(), enricher=False)
    assert not summary.errors and all(f.format == "anthropic_http" for f in summary.files)
    n_exchanges = sum(len(json.loads(Path(f).read_text())) for f in files)
    assert summary.total("read") == n_exchanges
    assert summary.total("quarantined") == 0 and summary.total("stored") + summary.total("duplicates") == n_exchanges
    df = store.scan().collect()
    assert df.filter(df["status"] == "error")["error_type"].to_list() == ["rate_limit_error"] * 4
    ok = df.filter(df["status"] == "ok")
    assert ok["model_returned"].null_count() == 0 and ok["response_text"].null_count() == 0
    assert set(ok["model_is_alias"].to_list()) == {True}  # the recordings ask for claude-sonnet-4-5
    assert {dict(a)["timestamp_source"] for a in df["attributes"].to_list()} == {"file_mtime"}
