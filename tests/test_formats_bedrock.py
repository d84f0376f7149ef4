"""bedrock_invocation: AWS Bedrock model invocation logs -> traces."""

from __future__ import annotations

import copy
import datetime as dt
import io
import json
import random

import pyarrow as pa
import pytest

from tests.conftest import REPO, shared_path
from tracelens.ingest.base import IngestOptions, Quarantined, Skipped, Source
from tracelens.ingest.formats.bedrock import assemble_converse_stream, bedrock_record
from tracelens.ingest.pipeline import finalize, ingest
from tracelens.ingest.registry import FORMATS, get_format, sniff_format
from tracelens.schema import TRACE_SCHEMA

SAMPLE = REPO / "sample_logs" / "bedrock_invocation_log.jsonl"
RID = "6f1d2c3b-1a2b-4c5d-8e9f-0a1b2c3d4e"


def parse(data: str | bytes) -> list:
    raw = data.encode() if isinstance(data, str) else data
    return list(get_format("bedrock_invocation").parse(Source("mem", io.BytesIO(raw), IngestOptions(), raw[:262144])))


def record(body_in, body_out=None, *, op="Converse", model="us.anthropic.claude-3-5-sonnet-20241022-v2:0", **kw) -> dict:
    r = {"schemaType": "ModelInvocationLog", "schemaVersion": "1.0", "timestamp": "2026-10-02T10:00:00Z",
         "accountId": "111122223333", "region": "us-east-1", "requestId": "req-test-1", "operation": op, "modelId": model,
         "input": {"inputContentType": "application/json", "inputBodyJson": body_in}}
    if body_out is not None:
        r["output"] = {"outputContentType": "application/json", "outputBodyJson": body_out}
    r.update(kw)
    return r


@pytest.fixture(scope="module")
def sample_store(tmp_path_factory):
    from tracelens.store import Store

    store = Store(tmp_path_factory.mktemp("bedrock") / "s", create=True)
    summary = ingest(store, [str(SAMPLE)], enricher=False)
    return store, summary


def test_sample_reconciles_and_is_auto_detected(sample_store):
    _, summary = sample_store
    f = summary.files[0]
    assert (f.format, f.read, f.stored, f.skipped, f.quarantined, f.duplicates) == ("bedrock_invocation", 12, 11, 1, 0, 0)
    assert sniff_format(SAMPLE.read_bytes()[:262144], str(SAMPLE)).name == "bedrock_invocation"


# trace suffix -> (model_requested, family, snapshot, alias, stop, stop_raw, in, out, latency, ttft, status, http)
EXPECTED = {
    "01": ("us.anthropic.claude-3-5-sonnet-20241022-v2:0", "claude-3-5-sonnet", "2024-10-22", False, "end_turn",
           "end_turn", 58, 31, 1312.0, None, "ok", 200),
    "02": ("us.anthropic.claude-3-5-sonnet-20241022-v2:0", "claude-3-5-sonnet", "2024-10-22", False, "tool_use",
           "tool_use", 402, 61, 1874.0, None, "ok", 200),
    "04": ("anthropic.claude-3-5-haiku-20241022-v1:0", "claude-3-5-haiku", "2024-10-22", False, "content_filter",
           "guardrail_intervened", 0, 0, 233.0, None, "ok", 200),
    "05": ("us.amazon.nova-pro-v1:0", "nova-pro", None, False, "max_tokens", "max_tokens", 44, 40, 902.0, None, "ok", 200),
    "06": ("arn:aws:bedrock:us-east-1:418295730561:inference-profile/us.anthropic.claude-3-7-sonnet-20250219-v1:0",
           "claude-3-7-sonnet", "2025-02-19", False, "end_turn", "end_turn", 39, 24, None, None, "ok", 200),
    "07": ("anthropic.claude-3-haiku-20240307-v1:0", "claude-3-haiku", "2024-03-07", False, "content_filter", "end_turn",
           0, 0, 311.0, 287.0, "ok", 200),
    "08": ("global.anthropic.claude-sonnet-4-5-20250929-v1:0", "claude-sonnet-4-5", "2025-09-29", False, "end_turn",
           "end_turn", 17, 12, 845.0, 412.0, "ok", 200),
    "09": ("meta.llama3-1-70b-instruct-v1:0", "llama3-1-70b-instruct", None, False, "end_turn", "stop", 21, 7, None, None,
           "ok", 200),
    "12": ("us.anthropic.claude-3-5-sonnet-20241022-v2:0", "claude-3-5-sonnet", "2024-10-22", False, "error", None, 0,
           None, None, None, "error", 429),
}
COLS = ("model_requested", "model_family", "model_snapshot", "model_is_alias", "stop_reason", "stop_reason_raw",
        "input_tokens", "output_tokens", "latency_ms", "time_to_first_token_ms", "status", "http_status")


@pytest.mark.parametrize("suffix", sorted(EXPECTED))
def test_sample_trace_fields(sample_store, suffix):
    store, _ = sample_store
    t = store.get(f"bedrock:{RID}{suffix}")
    assert t is not None
    assert tuple(t[c] for c in COLS) == EXPECTED[suffix]
    assert t["provider"] == "bedrock" and t["request_id"] == f"{RID}{suffix}"


def test_converse_mapping_in_detail(sample_store):
    store, _ = sample_store
    t = store.get(f"bedrock:{RID}01")
    assert t["system_prompt"].startswith("You are Fernbot")
    assert t["prompt_text"] == "Do the Ridgeline 2 tents come with a footprint?"
    assert (t["temperature"], t["top_p"], t["top_k"], t["max_tokens"]) == (0.3, 0.9, 200, 512)
    assert (t["user_id"], t["session_id"], t["app"]) == ("cust-20417", "chat-8d1e", "support-bot")
    assert t["attributes"]["aws_account_id"] == "418295730561"
    assert t["attributes"]["bedrock_operation"] == "Converse"
    assert t["attributes"]["aws_identity_arn"].startswith("arn:aws:sts::418295730561:assumed-role/")
    assert json.loads(t["request_raw"])["inferenceConfig"]["maxTokens"] == 512  # the body exactly, as JSON text
    assert json.loads(t["response_raw"])["stopReason"] == "end_turn"
    assert t["request_is_exact"] is True
    tool = store.get(f"bedrock:{RID}02")
    assert tool["tool_calls"] == [{"id": "tooluse_Q2x7kLm0RZ", "name": "order_status", "arguments": '{"order":"FB-77120"}'}]
    assert json.loads(tool["tool_definitions"])[0]["toolSpec"]["name"] == "order_status"
    result = store.get(f"bedrock:{RID}03")
    roles = [(m["role"], m["tool_call_id"]) for m in result["messages"]]
    assert roles == [("user", None), ("assistant", None), ("tool", "tooluse_Q2x7kLm0RZ")]
    assert json.loads(result["messages"][2]["text"]) == {"status": "shipped", "carrier": "UPS", "eta": "2026-10-03"}
    assert (result["input_tokens"], result["cache_read_tokens"], result["cache_creation_tokens"]) == (31, 412, 0)


def test_guardrail_interventions_keep_details_and_are_refusals(sample_store):
    store, _ = sample_store
    conv = store.get(f"bedrock:{RID}04")
    details = json.loads(conv["stop_details"])
    assert details["guardrail_action"] == "INTERVENED"
    assert details["guardrail"]["inputAssessment"]["fb7x2q9k1m0z"]["topicPolicy"]["topics"][0]["name"] == "Account takeover"
    assert conv["attributes"]["guardrail_action"] == "INTERVENED"
    stream = store.get(f"bedrock:{RID}07")  # InvokeModel stream: the model said end_turn, the guardrail blocked it
    assert json.loads(stream["stop_details"])["guardrail"]["input"]["fb7x2q9k1m0z"]["contentPolicy"]["filters"][0][
        "type"] == "VIOLENCE"
    assert store.get(f"bedrock:{RID}01")["stop_details"] is None
    # the refusal detector labels both blocks from these structured signals alone, and not the normal answer
    from tracelens.enrich.refusal import detect_frame

    df = detect_frame(store.scan().collect().drop("date"))
    label = {r["trace_id"][-2:]: (r["refusal"], r["refusal_source"]) for r in df.iter_rows(named=True)}
    assert label["04"] == label["07"] == ("full", "structured")
    assert label["01"][0] == "none"


def test_invoke_model_stream_is_reassembled(sample_store):
    store, _ = sample_store
    t = store.get(f"bedrock:{RID}08")
    assert t["response_text"] == 'How about "Fall Into Stride"?'
    assert (t["response_id"], t["model_returned"]) == ("msg_bdrk_01Pz4Kc8Rt2Vx6Lm9Qa3Wd5E", "claude-sonnet-4-5-20250929")
    assert t["attributes"]["streamed"] == "true"
    assert isinstance(json.loads(t["response_raw"]), list)  # the events as logged


def test_s3_spilled_body_and_errors(sample_store):
    store, _ = sample_store
    s3 = store.get(f"bedrock:{RID}11")
    assert s3["attributes"]["body_in_s3"] == "true"
    assert s3["attributes"]["output_body_s3_path"].endswith("_output.json.gz")
    assert (s3["response_text"], s3["response_raw"], s3["output_tokens"]) == (None, None, 2210)
    assert s3["prompt_text"] == "Write the full care guide for our merino base layers."
    err = store.get(f"bedrock:{RID}12")
    assert (err["error_type"], err["error_message"]) == ("ThrottlingException",
                                                         "Too many requests, please wait before trying again.")


def test_non_text_models_are_skipped():
    cases = [
        ("amazon.titan-embed-text-v2:0", {"inputText": "x"}, {"embedding": [0.1]}, "embeddings model"),
        ("cohere.embed-english-v3", {"texts": ["x"]}, {"embeddings": [[0.1]]}, "embeddings model"),
        ("stability.sd3-5-large-v1:0", {"prompt": "a tent"}, {"images": ["..."]}, "image generation model"),
        ("amazon.nova-canvas-v1:0", {"taskType": "TEXT_IMAGE"}, {"images": ["..."]}, "image generation model"),
        ("cohere.rerank-v3-5:0", {"query": "q", "documents": ["a"]}, {"results": []}, "rerank model"),
        ("acme.custom-model-v1", {"inputText": "x"}, {"embedding": [0.1]}, "output is an embedding"),
    ]
    for model, body_in, body_out, why in cases:
        item = bedrock_record(record(body_in, body_out, op="InvokeModel", model=model), "line:1")
        assert isinstance(item, Skipped), model
        assert why in item.reason and model in item.reason


@pytest.mark.parametrize(
    ("body_in", "body_out", "text", "stop_raw", "tokens"),
    [
        ({"inputText": "Hi", "textGenerationConfig": {"maxTokenCount": 50, "temperature": 0.1}},
         {"inputTextTokenCount": 3, "results": [{"tokenCount": 4, "outputText": "Hello!", "completionReason": "FINISH"}]},
         "Hello!", "FINISH", (3, 4)),
        ({"prompt": "<s>[INST] Hi [/INST]", "max_tokens": 50},
         {"outputs": [{"text": "Hello!", "stop_reason": "stop"}]}, "Hello!", "stop", (None, None)),
        ({"prompt": "Hi", "max_tokens": 50}, {"generations": [{"text": "Hello!", "finish_reason": "COMPLETE"}]},
         "Hello!", "COMPLETE", (None, None)),
        ({"prompt": "\n\nHuman: Hi\n\nAssistant:", "max_tokens_to_sample": 50},
         {"completion": " Hello!", "stop_reason": "stop_sequence"}, " Hello!", "stop_sequence", (None, None)),
        ({"prompt": "Hi", "max_gen_len": 50},
         [{"generation": "Hel", "prompt_token_count": 2}, {"generation": "lo!", "generation_token_count": 3,
                                                           "stop_reason": "stop"}], "Hello!", "stop", (2, 3)),
        ({"messages": [{"role": "user", "content": "Hi"}], "max_tokens": 50},
         {"id": "chatcmpl-x", "choices": [{"index": 0, "message": {"role": "assistant", "content": "Hello!"},
                                           "finish_reason": "stop"}], "usage": {"prompt_tokens": 2, "completion_tokens": 3}},
         "Hello!", "stop", (2, 3)),
    ],
    ids=["titan", "mistral", "cohere", "claude-text", "llama-stream", "openai-shaped"],
)
def test_invoke_model_text_bodies(body_in, body_out, text, stop_raw, tokens):
    rec = bedrock_record(record(body_in, body_out, op="InvokeModel", model="acme.text-model-v1:0"), "line:1")
    assert (rec["response_text"], rec["stop_reason_raw"]) == (text, stop_raw)
    assert (rec.get("input_tokens"), rec.get("output_tokens")) == tokens
    assert rec["messages"][-1]["role"] == "user" and rec["max_tokens"] == 50


def test_converse_stream_event_list_is_reassembled():
    events = [
        {"messageStart": {"role": "assistant"}},
        {"contentBlockDelta": {"delta": {"text": "Checking "}, "contentBlockIndex": 0}},
        {"contentBlockDelta": {"delta": {"text": "stock."}, "contentBlockIndex": 0}},
        {"contentBlockStart": {"start": {"toolUse": {"toolUseId": "tu_9", "name": "stock"}}, "contentBlockIndex": 1}},
        {"contentBlockDelta": {"delta": {"toolUse": {"input": '{"sku": '}}, "contentBlockIndex": 1}},
        {"contentBlockDelta": {"delta": {"toolUse": {"input": '"RL-2"}'}}, "contentBlockIndex": 1}},
        {"messageStop": {"stopReason": "tool_use"}},
        {"metadata": {"usage": {"inputTokens": 12, "outputTokens": 9}, "metrics": {"latencyMs": 640}}},
    ]
    msg = assemble_converse_stream(events)
    assert msg["output"]["message"]["content"][1]["toolUse"]["input"] == {"sku": "RL-2"}
    rec = bedrock_record(record({"messages": [{"role": "user", "content": [{"text": "Stock?"}]}]}, events,
                                op="ConverseStream"), "line:1")
    assert (rec["response_text"], rec["stop_reason"], rec["latency_ms"]) == ("Checking stock.", "tool_use", 640.0)
    assert rec["tool_calls"] == [{"id": "tu_9", "name": "stock", "arguments": '{"sku":"RL-2"}'}]
    assert (rec["input_tokens"], rec["output_tokens"]) == (12, 9)
    assert rec["attributes"]["streamed"] == "true"


def test_request_metadata_and_cloudwatch_wrapping():
    inner = record({"messages": [{"role": "user", "content": [{"text": "Hi"}]}]},
                   {"output": {"message": {"role": "assistant", "content": [{"text": "Hello"}]}}, "stopReason": "end_turn"},
                   requestMetadata={"user_id": "u-9", "conversationId": "c-1", "tenant": "acme"})
    wrapped = {"timestamp": 1790935200000, "message": json.dumps(inner), "logStreamName": "aws/bedrock/modelinvocations"}
    data = json.dumps(wrapped) + "\n"
    assert sniff_format(data.encode(), "export.jsonl").name == "bedrock_invocation"
    (rec,) = parse(data)
    assert (rec["user_id"], rec["conversation_id"]) == ("u-9", "c-1")
    assert rec["attributes"]["request_metadata.tenant"] == "acme"
    assert rec["trace_id"] == "bedrock:req-test-1"


def test_bad_records_are_quarantined_with_precise_reasons():
    good = record({"messages": [{"role": "user", "content": [{"text": "Hi"}]}]},
                  {"output": {"message": {"role": "assistant", "content": [{"text": "Hello"}]}}, "stopReason": "end_turn"})
    no_id = {**good}
    no_id.pop("requestId")
    bad_body = {**good, "input": {"inputBodyJson": "{not json"}}
    no_output = {**good}
    no_output.pop("output")
    no_input = {**good, "input": {"inputTokenCount": 3}}
    not_list = {**good, "input": {"inputBodyJson": {"messages": "Hi"}}}
    lines = [good, {**good, "schemaType": "Other"}, no_id, bad_body, no_output, no_input, not_list]
    items = parse("\n".join(json.dumps(x) for x in lines) + "\n{broken\n")
    assert isinstance(items[0], dict)
    reasons = [i.reason for i in items[1:]]
    assert all(isinstance(i, Quarantined) for i in items[1:])
    assert "schemaType='Other'" in reasons[0]
    assert reasons[1] == "record has no 'requestId'"
    assert reasons[2].startswith("input.inputBodyJson is a string but not valid JSON")
    assert reasons[3] == "record has neither output.outputBodyJson, output.outputBodyS3Path nor an errorCode"
    assert reasons[4] == "record has neither input.inputBodyJson nor input.inputBodyS3Path"
    assert reasons[5] == "input body 'messages' is not a list"
    assert reasons[6].startswith("malformed JSON on line 8")


def test_reingest_is_idempotent(sample_store, tmp_path):
    from tracelens.store import Store

    store = Store(tmp_path / "s", create=True)
    first = ingest(store, [str(SAMPLE)], enricher=False).files[0]
    again = ingest(store, [str(SAMPLE)], enricher=False).files[0]
    assert (first.stored, again.stored, again.duplicates, again.skipped) == (11, 0, 11, 1)


def test_sniffer_claims_only_bedrock_logs():
    fmt = FORMATS["bedrock_invocation"]
    for p in sorted((REPO / "sample_logs").glob("*.*")):
        head = p.read_bytes()[:262144]
        if p.name == SAMPLE.name:
            assert fmt.sniff(head, str(p)) == 0.95
        else:
            assert fmt.sniff(head, str(p)) == 0.0, p.name


# ---------------------------------------------------------------- corruption: never raise, always accounted for

WRONG = [7, -1.5, True, None, "text", [1, "a"], {"k": {"n": 1}}, 2**70, "\ud800", [], {}]


def _paths(o, pre=()):
    if isinstance(o, dict):
        for k, v in o.items():
            yield pre + (k,)
            yield from _paths(v, pre + (k,))
    elif isinstance(o, list):
        for i, v in enumerate(o[:3]):
            yield pre + (i,)
            yield from _paths(v, pre + (i,))


def check_corruptions(fmt_name: str, records: list[dict], n: int = 150, seed: int = 7) -> None:
    """Put wrong JSON types at random places of valid records: parsing never raises, every line yields exactly one
    item, stored rows build an Arrow table, and quarantine reasons name the problem (no bare 'unexpected')."""
    rng = random.Random(seed)
    cases = [(i, p) for i, r in enumerate(records) for p in _paths(r)]
    now = dt.datetime.now(dt.UTC)
    lines = []
    for i, path in rng.sample(cases, min(n, len(cases))):
        r = copy.deepcopy(records[i])
        node = r
        for k in path[:-1]:
            node = node[k]
        node[path[-1]] = rng.choice(WRONG)
        lines.append(json.dumps(r, ensure_ascii=True))
    raw = ("\n".join(lines) + "\n").encode()
    items = list(get_format(fmt_name).parse(Source("mem", io.BytesIO(raw), IngestOptions(), raw[:262144])))
    rows = []
    for it in items:
        if isinstance(it, dict):
            try:
                rows.append(finalize(it, fmt_name, "mem", IngestOptions(), now))
            except Exception as e:  # noqa: BLE001 - RecordError is the only allowed failure
                assert type(e).__name__ == "RecordError", e
        elif isinstance(it, Quarantined):
            assert not it.reason.startswith("unexpected"), it.reason
    pa.Table.from_pylist(rows, schema=TRACE_SCHEMA)
    assert len(items) == len(lines)
    return items


def test_corrupted_records_never_raise():
    records = [json.loads(x) for x in SAMPLE.read_text().splitlines()]
    items = check_corruptions("bedrock_invocation", records, n=200)
    assert len(items) == 200 and any(isinstance(i, Quarantined) for i in items) and any(isinstance(i, dict) for i in items)


# ---------------------------------------------------------------- optional: real captures


def test_real_bedrock_invocation_logs(store):
    p = shared_path("formats", "aws_bedrock", "elastic_test-aws-bedrock_selected.jsonl")
    f = ingest(store, [str(p)]).files[0]
    assert (f.format, f.read, f.stored, f.quarantined, f.skipped) == ("bedrock_invocation", 7, 7, 0, 0) and f.reconciles
    df = store.scan().collect()
    assert set(df["provider"]) == {"bedrock"}
    # four guardrail blocks (three Converse stopReason, one InvokeModel stream INTERVENED) are structured refusals
    blocked = df.filter(df["stop_reason"] == "content_filter")
    assert blocked.height == 4 and set(blocked["refusal_source"]) == {"structured"}
    assert all("guardrail" in d for d in blocked["stop_details"])
    stream = df.filter(df["attributes"].map_elements(lambda a: dict(a).get("bedrock_operation"), return_dtype=str)
                       == "InvokeModelWithResponseStream")
    assert stream["response_text"].to_list() == ["Sorry, the model cannot answer this question."]
    assert df.filter(df["model_requested"] == "anthropic.claude-3-5-sonnet-20240620-v1:0")["model_snapshot"].unique(
    ).to_list() == ["2024-06-20"]
