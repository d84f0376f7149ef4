"""litellm_payload: LiteLLM StandardLoggingPayload JSONL -> traces, with credentials never stored."""

from __future__ import annotations

import io
import json

import pyarrow.parquet as pq
import pytest

from tests.conftest import REPO
from tracelens.ingest.base import IngestOptions, Quarantined, Skipped, Source
from tracelens.ingest.formats.litellm import scrub
from tracelens.ingest.pipeline import ingest
from tracelens.ingest.registry import FORMATS, get_format, sniff_format

SAMPLE = REPO / "sample_logs" / "litellm_payloads.jsonl"
PID = "chatcmpl-5e1f0a2b-3c4d-4e5f-8a9b-0c1d2e3f4a0"
KEYHASH = "88dc28d0f030c55ed4ab77ed8faf098196cb1c05df778539800c9f1243fe6b4b"
# Fake credentials, assembled at run time so no key-shaped literal sits in the repository.
OPENAI_KEY = "sk-" + "proj-" + "T3stOnlyN0tARealKey" * 2
ANTHROPIC_KEY = "sk-" + "ant-api03-" + "T3stOnlyN0tARealKey" * 2
AWS_KEY = "AKIA" + "IOSFODNN7EXAMPLE"
GOOGLE_KEY = "AIza" + "SyT3stOnlyN0tARealKeyT3stOnly12"
LITELLM_KEY = "sk-" + "litellm-virtual-" + "T3stOnly" * 3
SECRETS = (OPENAI_KEY, ANTHROPIC_KEY, AWS_KEY, GOOGLE_KEY, LITELLM_KEY)


def parse(data: str | bytes) -> list:
    raw = data.encode() if isinstance(data, str) else data
    return list(get_format("litellm_payload").parse(Source("mem", io.BytesIO(raw), IngestOptions(), raw[:262144])))


def sample_lines() -> list[dict]:
    return [json.loads(x) for x in SAMPLE.read_text().splitlines()]


@pytest.fixture(scope="module")
def sample_store(tmp_path_factory):
    from tracelens.store import Store

    store = Store(tmp_path_factory.mktemp("litellm") / "s", create=True)
    return store, ingest(store, [str(SAMPLE)], enricher=False)


def test_sample_reconciles_and_is_auto_detected(sample_store):
    _, summary = sample_store
    f = summary.files[0]
    assert (f.format, f.read, f.stored, f.skipped, f.quarantined) == ("litellm_payload", 7, 6, 1, 0) and f.reconciles
    assert sniff_format(SAMPLE.read_bytes(), str(SAMPLE)).name == "litellm_payload"


# id suffix -> (provider, model_requested, model_returned, family, alias, stop, stop_raw, in, out, cache_read, latency,
#               ttft, status, error_type, http, user, cost)
EXPECTED = {
    "1": ("openai", "gpt-4o-mini", "gpt-4o-mini-2024-07-18", "gpt-4o-mini", True, "end_turn", "stop", 36, 14, 0, 912.0,
          None, "ok", None, 200, "cust-20417", 0.0000138),
    "2": ("anthropic", "claude-sonnet-4-5-20250929", "claude-sonnet-4-5-20250929", "claude-sonnet-4-5", False, "end_turn",
          "stop", 52, 17, 1024, 2310.0, 604.0, "ok", None, 200, "cust-30981", 0.000412),
    "3": ("bedrock", "bedrock/us.anthropic.claude-3-5-haiku-20241022-v1:0", "us.anthropic.claude-3-5-haiku-20241022-v1:0",
          "claude-3-5-haiku", False, "tool_use", "tool_calls", 210, 40, 0, 1480.0, None, "ok", None, 200, None, 0.000328),
    "4": ("openai", "gpt-4o", None, "gpt-4o", True, "error", None, None, None, None, 210.0, None, "error",
          "RateLimitError", 429, "cust-52210", 0.0),
    "5": ("anthropic", "claude-sonnet-4-5-20250929", None, "claude-sonnet-4-5", False, "content_filter", None, None, None,
          None, 50.0, None, "error", "HTTPException", 400, None, 0.0),
    "7": ("openai", "gpt-3.5-turbo-instruct", "gpt-3.5-turbo-instruct", "gpt-3.5-turbo-instruct", True, "end_turn", "stop",
          6, 6, None, 740.0, None, "ok", None, 200, None, 0.000012),
}
COLS = ("provider", "model_requested", "model_returned", "model_family", "model_is_alias", "stop_reason",
        "stop_reason_raw", "input_tokens", "output_tokens", "cache_read_tokens", "latency_ms", "time_to_first_token_ms",
        "status", "error_type", "http_status", "user_id", "cost")


def test_sample_trace_fields(sample_store):
    store, _ = sample_store
    df = store.scan().collect()
    got = {r["trace_id"][-1]: tuple(r[c] for c in COLS) for r in df.iter_rows(named=True)}
    assert got == EXPECTED
    assert all(t.startswith("litellm:") for t in df["trace_id"])


def test_mapping_in_detail(sample_store):
    store, _ = sample_store
    t = store.get(f"litellm:{PID}1")
    assert t["system_prompt"] == "You are Fernbot, the support assistant of Fernbrook Outfitters."
    assert t["prompt_text"] == "Do you price-match other shops?"
    assert (t["temperature"], t["max_tokens"], t["session_id"], t["app"]) == (0.3, 300, "chat-8d1e", "support-bot")
    assert t["timestamp"].isoformat() == "2026-10-01T09:01:01.250000+00:00"
    a = t["attributes"]
    assert (a["litellm_model_group"], a["litellm_call_type"], a["tags"]) == ("support-fast", "acompletion", '["prod"]')
    assert a["litellm.user_api_key_hash"] == KEYHASH  # already a hash: kept, so spend can be joined to the key
    assert a["litellm.user_api_key_team_id"] == "team-support"
    assert t["request_raw"] is None  # LiteLLM logs no exact request body
    assert json.loads(t["response_raw"])["id"] == "chatcmpl-CZ01aB2cD3eF4gH5iJ6kL7mN"
    tool = store.get(f"litellm:{PID}3")
    assert tool["tool_calls"] == [{"id": "tooluse_kq81Zt", "name": "stock_level", "arguments": '{"sku": "RL-2-GRN"}'}]
    assert json.loads(tool["tool_definitions"])[0]["function"]["name"] == "stock_level"
    assert store.get(f"litellm:{PID}2")["attributes"]["streamed"] == "true"


def test_failures_are_error_traces(sample_store):
    store, _ = sample_store
    rl = store.get(f"litellm:{PID}4")
    assert rl["error_message"].startswith("litellm.RateLimitError")
    assert rl["attributes"]["error_llm_provider"] == "openai"
    g = store.get(f"litellm:{PID}5")
    details = json.loads(g["stop_details"])
    assert details["guardrail"][0]["guardrail_name"] == "pii-block"
    assert g["attributes"]["guardrail_status"] == "guardrail_intervened"


def test_non_generation_calls_are_skipped():
    items = parse(SAMPLE.read_bytes())
    skipped = [i for i in items if isinstance(i, Skipped)]
    assert [(s.locator, s.reason) for s in skipped] == [("line:6", "LiteLLM aembedding call (not a text generation call)")]
    line = sample_lines()[0]
    for ct in ("image_generation", "atranscription", "moderation", "rerank", "acreate_batch"):
        (item,) = parse(json.dumps({**line, "call_type": ct}) + "\n")
        assert isinstance(item, Skipped) and ct in item.reason


def test_anthropic_messages_pass_through():
    line = sample_lines()[1]
    line.update(call_type="anthropic_messages", stream=False,
                messages=[{"role": "user", "content": [{"type": "text", "text": "Warranty?"}]}],
                response={"id": "msg_01Pt", "type": "message", "role": "assistant", "model": "claude-sonnet-4-5-20250929",
                          "content": [{"type": "text", "text": "Three years."}], "stop_reason": "end_turn",
                          "usage": {"input_tokens": 9, "output_tokens": 3, "cache_read_input_tokens": 5}})
    (rec,) = parse(json.dumps(line) + "\n")
    assert (rec["response_text"], rec["response_id"], rec["stop_reason"]) == ("Three years.", "msg_01Pt", "end_turn")
    assert rec["cache_read_tokens"] == 5 and rec["time_to_first_token_ms"] is None  # not streamed: no first token


def _leaky_payloads() -> list[dict]:
    """Payloads with credentials everywhere LiteLLM users have seen them leak."""
    base = sample_lines()[0]
    meta = {**base["metadata"],
            "user_api_key": LITELLM_KEY, "user_api_key_hash": "not-a-hash-" + LITELLM_KEY,
            "requester_custom_headers": {"authorization": f"Bearer {LITELLM_KEY}", "x-api-key": ANTHROPIC_KEY},
            "requester_metadata": {"app": "support-bot", "note": f"debug key {OPENAI_KEY}"}}
    leak = {**base, "id": "chatcmpl-leak-1", "metadata": meta,
            "model_parameters": {"temperature": 0.1, "api_key": OPENAI_KEY,
                                 "extra_headers": {"Authorization": f"Bearer {OPENAI_KEY}"}},
            "hidden_params": {**base["hidden_params"], "additional_headers": {"x-goog-api-key": GOOGLE_KEY},
                              "litellm_params": {"aws_access_key_id": AWS_KEY, "aws_secret_access_key": "wJalr" * 8}},
            "api_base": f"https://generativelanguage.googleapis.com/v1beta?key={GOOGLE_KEY}",
            "error_str": None, "secret_fields": {"raw_headers": {"authorization": f"Bearer {LITELLM_KEY}"}}}
    failed = {**leak, "id": "chatcmpl-leak-2", "status": "failure", "response": {},
              "error_str": f"AuthenticationError: Incorrect API key provided: {OPENAI_KEY}",
              "error_information": {"error_code": "401", "error_class": "AuthenticationError",
                                    "error_message": f"Incorrect API key provided: {OPENAI_KEY}"}}
    broken = {**leak, "id": "chatcmpl-leak-3", "startTime": None}  # quarantined: its raw copy must be clean too
    return [leak, failed, broken]


def test_credentials_never_reach_the_store(store, tmp_path):
    p = tmp_path / "leaky.jsonl"
    p.write_text("".join(json.dumps(x) + "\n" for x in _leaky_payloads())
                 + f'{{"call_type": "acompletion", "startTime": 1, "api_key": "{OPENAI_KEY}", "x_api_key": "plain-secret-1"\n')
    f = ingest(store, [str(p)], enricher=False).files[0]
    assert (f.format, f.stored, f.quarantined) == ("litellm_payload", 2, 2)
    everything = ""  # every data file of every table, and the tables' logs (Delta Lake keeps column statistics)
    for part in sorted(store.root.rglob("*")):
        if part.suffix == ".parquet":
            everything += json.dumps(pq.read_table(part).to_pylist(), default=str)
        elif part.is_file():
            everything += part.read_text("utf-8", "replace")
    assert "chatcmpl-leak-3" in everything and "startTime" in everything  # the quarantined rows are there...
    for secret in SECRETS + ("wJalr" * 8, "plain-secret-1"):
        assert secret not in everything  # ...but no credential, anywhere
    t = store.get("litellm:chatcmpl-leak-1")
    assert t["attributes"]["api_base"] == "https://generativelanguage.googleapis.com/v1beta?key=[REDACTED]"
    assert t["attributes"]["metadata.note"] == "debug key [REDACTED]"
    assert "litellm.user_api_key_hash" not in t["attributes"]  # not hex: it might be the key itself
    assert t["attributes"]["litellm.user_api_key_team_id"] == "team-support"
    err = store.get("litellm:chatcmpl-leak-2")
    assert err["error_message"] == "AuthenticationError: Incorrect API key provided: [REDACTED]"
    assert (err["status"], err["http_status"]) == ("error", 401)


def test_scrub_spares_conversation_text_and_token_counts():
    v = scrub({"messages": [{"role": "user", "content": "my code is sk-abcdefghijklmnopqrstuvwxyz"}],
               "max_tokens": 5, "prompt_tokens": 3, "api_key": "x", "nested": [{"Authorization": "y", "ok": 1}]})
    assert v == {"messages": [{"role": "user", "content": "my code is sk-abcdefghijklmnopqrstuvwxyz"}],
                 "max_tokens": 5, "prompt_tokens": 3, "nested": [{"ok": 1}]}


def test_bad_payloads_are_quarantined():
    line = sample_lines()[0]
    no_id = {k: v for k, v in line.items() if k != "id"}
    no_start = {**line, "startTime": "soon"}
    items = parse("\n".join(json.dumps(x) for x in (no_id, no_start, [1])) + "\n")
    assert [i.reason for i in items] == ["payload has no 'id'", "payload has no numeric startTime",
                                         "expected a JSON object, got list"]
    assert all(isinstance(i, Quarantined) for i in items)


def test_sniffer_claims_only_litellm_payloads():
    fmt = FORMATS["litellm_payload"]
    for p in sorted((REPO / "sample_logs").glob("*.*")):
        score = fmt.sniff(p.read_bytes()[:262144], str(p))
        assert score == (0.9 if p.name == SAMPLE.name else 0.0), p.name
    one = json.dumps(sample_lines()[0], indent=2)  # one payload per file, pretty-printed (S3/GCS loggers)
    assert fmt.sniff(one.encode(), "payload.json") == 0.9
    (rec,) = parse(one)
    assert rec["trace_id"] == f"litellm:{PID}1"


def test_corrupted_records_never_raise():
    from tests.test_formats_bedrock import check_corruptions

    records = [json.loads(x) for x in SAMPLE.read_text().splitlines()]
    items = check_corruptions("litellm_payload", records)
    assert any(isinstance(i, Quarantined) for i in items) and any(isinstance(i, dict) for i in items)
