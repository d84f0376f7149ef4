"""helicone_export: Helicone request exports (JSONL, JSON array, CSV) -> traces."""

from __future__ import annotations

import csv
import io
import json

import pytest

from tests.conftest import REPO
from tracelens.ingest.base import IngestOptions, Quarantined, Source
from tracelens.ingest.pipeline import ingest
from tracelens.ingest.registry import FORMATS, get_format, sniff_format

JSONL = REPO / "sample_logs" / "helicone_export.jsonl"
CSV = REPO / "sample_logs" / "helicone_export.csv"
CSV_COLUMNS = ["response_id", "response_created_at", "response_status", "request_created_at", "request_body",
               "request_properties", "request_user_id", "model", "prompt_tokens", "completion_tokens", "latency", "cost"]
RESP = "2b7e4f1a-9c3d-4e5f-8a6b-1c2d3e4f5a"


def parse(data: str | bytes) -> list:
    raw = data.encode() if isinstance(data, str) else data
    return list(get_format("helicone_export").parse(Source("mem", io.BytesIO(raw), IngestOptions(), raw[:262144])))


def to_csv(rows: list[dict]) -> str:
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(CSV_COLUMNS)
    for r in rows:
        vals = []
        for c in CSV_COLUMNS:
            v = r.get(c if c not in ("model", "latency", "cost") else {"model": "request_model", "latency": "delay_ms",
                                                                         "cost": "costUSD"}[c])
            vals.append("" if v is None else json.dumps(v) if isinstance(v, dict | list) else str(v))
        w.writerow(vals)
    return buf.getvalue()


@pytest.fixture(scope="module")
def sample_store(tmp_path_factory):
    from tracelens.store import Store

    store = Store(tmp_path_factory.mktemp("hc") / "s", create=True)
    return store, ingest(store, [str(JSONL), str(CSV)], enricher=False)


def test_samples_reconcile_and_are_auto_detected(sample_store):
    _, summary = sample_store
    got = [(f.format, f.read, f.stored, f.skipped, f.quarantined) for f in summary.files]
    assert got == [("helicone_export", 6, 6, 0, 0), ("helicone_export", 3, 3, 0, 0)]


# response id suffix -> (provider, model_requested, model_returned, stop, stop_raw, in, out, latency, ttft, status,
#                        http, error_type, user, session, cost)
EXPECTED = {
    "01": ("openai", "gpt-4o-mini", "gpt-4o-mini-2024-07-18", "end_turn", "stop", 41, 15, 812.0, None, "ok", 200, None,
           "cust-20417", "sess-4e21", 0.0000152),
    "02": ("anthropic", "claude-sonnet-4-5", "claude-sonnet-4-5-20250929", "end_turn", "end_turn", 28, 31, 1405.0, None,
           "ok", 200, None, "copy-team", None, 0.000549),
    "03": ("openai", "gpt-4o", None, "error", None, None, None, 96.0, None, "error", 429, "rate_limit_exceeded",
           "cust-30981", "sess-77b0", 0.0),
    "04": ("openai", "gpt-4o-mini", "gpt-4o-mini-2024-07-18", "tool_use", "tool_calls", 77, 18, 640.0, None, "ok", 200,
           None, "cust-52210", "sess-9a03", 0.0000224),
    "05": ("openai", "gpt-4o-mini", "gpt-4o-mini-2024-07-18", "refusal", "stop", 26, 14, 533.0, 210.0, "ok", 200, None,
           "support-agent-7", None, 0.0000123),
    "06": ("anthropic", "claude-haiku-4-5", None, "error", None, None, None, 60000.0, None, "error", None, "no_response",
           None, None, 0.0),
    "11": ("openai", "gpt-4o-mini", None, None, None, 22, 17, 812.0, None, "ok", 200, None, "cust-60011", "sess-c101",
           0.0000135),
    "12": ("anthropic", "claude-sonnet-4-5", None, None, None, 19, 27, 1418.0, None, "ok", 200, None, "copy-team", None,
           0.000462),
    "13": ("openai", "gpt-4o-mini", None, "error", None, None, None, 650.0, None, "error", 500, "http_500", "cust-60154",
           None, 0.0),
}
COLS = ("provider", "model_requested", "model_returned", "stop_reason", "stop_reason_raw", "input_tokens",
        "output_tokens", "latency_ms", "time_to_first_token_ms", "status", "http_status", "error_type", "user_id",
        "session_id", "cost")


def test_sample_trace_fields(sample_store):
    store, _ = sample_store
    df = store.scan().collect()
    got = {r["trace_id"][-2:]: tuple(r[c] for c in COLS) for r in df.iter_rows(named=True)}
    assert got == EXPECTED


def test_bodies_are_kept_exactly_and_properties_mapped(sample_store):
    store, _ = sample_store
    t = store.get(f"helicone:{RESP}01")
    src = json.loads(JSONL.read_text().splitlines()[0])
    assert json.loads(t["request_raw"]) == src["request_body"] and t["request_is_exact"] is True
    assert json.loads(t["response_raw"]) == src["response_body"]
    assert t["request_id"] == "8c1f0d3e-2a4b-4c6d-9e8f-0a1b2c3d4e01"
    assert (t["app"], t["system_prompt"]) == ("shop-assistant", "You are the Fernbrook Outfitters shopping assistant.")
    assert (t["temperature"], t["max_tokens"]) == (0.4, 300)
    a = t["attributes"]
    assert (a["helicone_session_name"], a["helicone_session_path"]) == ("shop-chat", "/chat/turn-1")
    assert (a["property.Environment"], a["helicone_provider"], a["request_path"]) == ("production", "OPENAI",
                                                                                         "/v1/chat/completions")
    assert t["timestamp"].isoformat() == "2026-10-01T10:15:22.104000+00:00"
    anth = store.get(f"helicone:{RESP}02")
    assert (anth["system_prompt"], anth["response_id"]) == ("You write product descriptions in two sentences.",
                                                            "msg_01Hb7Wq2Zx9Ln4Kc8Rt3Vp6Y")
    tool = store.get(f"helicone:{RESP}04")
    assert tool["tool_calls"] == [{"id": "call_Yz81Qp", "name": "order_status", "arguments": '{"order":"FB-80211"}'}]
    assert json.loads(tool["tool_definitions"])[0]["function"]["name"] == "order_status"


def test_streamed_data_is_reassembled(sample_store):
    store, _ = sample_store
    t = store.get(f"helicone:{RESP}05")
    assert t["attributes"]["streamed"] == "true"
    # as in openai_log: the streamed content was "" and the refusal text is kept in stop_details
    assert (t["response_text"], t["stop_reason"]) == ("", "refusal")
    assert json.loads(t["stop_details"])["refusal"] == "I can't help write a rude reply, but I can draft a polite one."
    anthropic_stream = {
        "response_id": "r-a", "request_id": "q-a", "request_created_at": "2026-10-03 10:00:00.000", "response_status": 200,
        "provider": "ANTHROPIC", "request_body": {"model": "claude-haiku-4-5", "max_tokens": 50, "stream": True,
                                                  "messages": [{"role": "user", "content": "Hi"}]},
        "response_body": {"streamed_data": [
            {"type": "message_start", "message": {"id": "msg_s", "type": "message", "role": "assistant", "content": [],
                                                  "model": "claude-haiku-4-5-20251001",
                                                  "usage": {"input_tokens": 5, "output_tokens": 1}}},
            {"type": "content_block_start", "index": 0, "content_block": {"type": "text", "text": ""}},
            {"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": "Hello"}},
            {"type": "message_delta", "delta": {"stop_reason": "end_turn"}, "usage": {"output_tokens": 2}}]}}
    (rec,) = parse(json.dumps(anthropic_stream) + "\n")
    assert (rec["response_text"], rec["model_returned"], rec["output_tokens"]) == ("Hello", "claude-haiku-4-5-20251001", 2)
    assert rec["timestamp"].isoformat() == "2026-10-03T10:00:00+00:00"  # naive export times are UTC


def test_csv_and_jsonl_exports_of_one_request_share_the_trace_id(store, tmp_path):
    rows = [json.loads(x) for x in JSONL.read_text().splitlines()]
    j, c = tmp_path / "export.jsonl", tmp_path / "export.csv"
    j.write_text("".join(json.dumps(r) + "\n" for r in rows[:2]))
    c.write_text(to_csv(rows[:2]))
    assert sniff_format(c.read_bytes(), str(c)).name == "helicone_export"
    ingest(store, [str(j)], enricher=False)
    f = ingest(store, [str(c)], enricher=False).files[0]
    # same ids, less content (no response body in the CSV): reported as conflicts, never stored twice
    assert (f.read, f.stored, f.quarantined) == (2, 0, 2)
    reasons = store.scan("quarantine").collect()["reason"].to_list()
    assert all(r.startswith(f"duplicate trace_id helicone:{RESP}0") for r in reasons)


def test_json_array_export(tmp_path):
    rows = [json.loads(x) for x in JSONL.read_text().splitlines()]
    items = parse(json.dumps(rows[:3], indent=2))
    assert [i["trace_id"] for i in items] == [f"helicone:{RESP}0{n}" for n in (1, 2, 3)]
    assert [i["source_locator"] for i in items] == ["index:0", "index:1", "index:2"]


def test_bad_records_are_quarantined():
    base = json.loads(JSONL.read_text().splitlines()[0])
    no_ids = {k: v for k, v in base.items() if k not in ("request_id", "response_id")}
    no_time = {k: v for k, v in base.items() if k not in ("request_created_at", "response_created_at")}
    no_time["response_body"] = {**base["response_body"], "created": None}
    bad_body = {**base, "response_body": "{truncated"}
    items = parse("\n".join(json.dumps(x) for x in (no_ids, no_time, bad_body)) + "\n")
    assert all(isinstance(i, Quarantined) for i in items)
    assert [i.reason for i in items[:2]] == [
        "record has neither 'response_id' nor 'request_id'",
        "record has no request_created_at (pass --default-time ISO8601 to assign one)",
    ]
    assert items[2].reason.startswith("response_body is text but not valid JSON")
    rows = CSV.read_text().splitlines()
    items = parse("\n".join([rows[0], rows[1], "only,three,fields", rows[2]]) + "\n")
    assert [type(i).__name__ for i in items] == ["dict", "Quarantined", "dict"]
    assert "has 3 fields, the header has 12" in items[1].reason


def test_sniffer_claims_only_helicone_exports():
    fmt = FORMATS["helicone_export"]
    for p in sorted((REPO / "sample_logs").glob("*.*")):
        score = fmt.sniff(p.read_bytes()[:262144], str(p))
        assert score == (0.9 if p.name in (JSONL.name, CSV.name) else 0.0), p.name
    assert sniff_format(JSONL.read_bytes(), str(JSONL)).name == "helicone_export"
    assert sniff_format(CSV.read_bytes(), str(CSV)).name == "helicone_export"


def test_corrupted_records_never_raise():
    from tests.test_formats_bedrock import check_corruptions

    records = [json.loads(x) for x in JSONL.read_text().splitlines()]
    items = check_corruptions("helicone_export", records)
    assert any(isinstance(i, Quarantined) for i in items) and any(isinstance(i, dict) for i in items)
