"""langsmith_runs: LangSmith run create/update payloads and export rows -> traces."""

from __future__ import annotations

import glob
import io
import json

import pytest

from tests.conftest import REPO, SHARED, shared_path
from tracelens.ingest.base import IngestOptions, Quarantined, Skipped, Source
from tracelens.ingest.pipeline import ingest
from tracelens.ingest.registry import FORMATS, get_format, sniff_format

SAMPLE = REPO / "sample_logs" / "langsmith_runs.jsonl"
RUN = "11111111-2222-4333-8444-555555555555"
DOTTED = "20261002T101500000000Z" + RUN


def parse(data: str | bytes) -> list:
    raw = data.encode() if isinstance(data, str) else data
    return list(get_format("langsmith_runs").parse(Source("mem", io.BytesIO(raw), IngestOptions(), raw[:262144])))


def lc(cls: str, content, **kw) -> dict:
    return {"lc": 1, "type": "constructor", "id": ["langchain", "schema", "messages", cls], "kwargs": {"content": content, **kw}}


def post(**kw) -> dict:
    r = {"id": RUN, "name": "ChatOpenAI", "run_type": "llm", "start_time": "2026-10-02T10:15:00.000000+00:00",
         "trace_id": RUN, "dotted_order": DOTTED, "session_name": "shop-assistant",
         "inputs": {"model": "gpt-4o", "messages": [{"role": "user", "content": "Hi"}]},
         "extra": {"metadata": {"ls_provider": "openai", "ls_model_name": "gpt-4o"}}, "outputs": {}}
    r.update(kw)
    return r


def patch(**kw) -> dict:
    r = {"id": RUN, "trace_id": RUN, "dotted_order": DOTTED, "end_time": "2026-10-02T10:15:01.500000+00:00",
         "outputs": {"id": "chatcmpl-1", "object": "chat.completion", "created": 1790936101, "model": "gpt-4o-2024-08-06",
                     "choices": [{"index": 0, "message": {"role": "assistant", "content": "Hello!"}, "finish_reason": "stop"}],
                     "usage_metadata": {"input_tokens": 8, "output_tokens": 2, "total_tokens": 10}}}
    r.update(kw)
    return r


def jsonl(*runs) -> str:
    return "".join(json.dumps(r) + "\n" for r in runs)


@pytest.fixture(scope="module")
def sample_store(tmp_path_factory):
    from tracelens.store import Store

    store = Store(tmp_path_factory.mktemp("ls") / "s", create=True)
    return store, ingest(store, [str(SAMPLE)], enricher=False)


def test_sample_reconciles(sample_store):
    _, summary = sample_store
    f = summary.files[0]
    assert (f.format, f.read, f.stored, f.skipped, f.quarantined) == ("langsmith_runs", 11, 5, 6, 0) and f.reconciles


# run id prefix -> (model_requested, model_returned, provider, stop, in, out, latency, ttft, status, app)
EXPECTED = {
    "5a9e1c44": ("claude-sonnet-4-5", "claude-sonnet-4-5-20250929", "anthropic", "end_turn", 41, 19, 2160.0, None, "ok",
                 "support-bot-prod"),
    "9b8a7c6d": ("gpt-4o-mini", "gpt-4o-mini-2024-07-18", "openai", "end_turn", 27, 6, 1150.0, None, "ok",
                 "catalog-tagger"),
    "3e4f5a6b": ("gpt-4o-mini", None, "openai", "error", None, None, 30020.0, None, "error", "catalog-tagger"),
    "7d6c5b4a": ("gpt-4o", "gpt-4o-2024-08-06", "openai", "end_turn", 15, 14, 2150.0, 640.0, "ok", "shop-assistant"),
    "e5f6a7b8": ("claude-haiku-4-5", "claude-haiku-4-5-20251001", "anthropic", "end_turn", 33, 24, 3200.0, 900.0, "ok",
                 None),
}
COLS = ("model_requested", "model_returned", "provider", "stop_reason", "input_tokens", "output_tokens", "latency_ms",
        "time_to_first_token_ms", "status", "app")


def test_sample_trace_fields(sample_store):
    store, _ = sample_store
    df = store.scan().collect()
    got = {r["trace_id"].split(":", 1)[1][:8]: tuple(r[c] for c in COLS) for r in df.iter_rows(named=True)}
    assert got == EXPECTED
    assert all(t.startswith("langsmith:") for t in df["trace_id"])


def test_langchain_messages_and_llm_result(sample_store):
    store, _ = sample_store
    t = store.get("langsmith:5a9e1c44-7d02-4b8f-a1e3-6c2b9d0f7a12")
    assert t["system_prompt"] == "You are Fernbot, the support assistant of Fernbrook Outfitters."
    assert [(m["role"], m["text"]) for m in t["messages"]] == [("user", "Can I return worn boots?")]
    assert t["response_text"] == "Yes, within 60 days if they are clean; worn boots get store credit."
    assert (t["response_id"], t["stop_reason_raw"]) == ("msg_01RtX8vQeZ4kP2nL6wJ3bC9d", "end_turn")
    assert (t["temperature"], t["max_tokens"]) == (0.2, 1024)  # from invocation params / ls_* metadata
    assert (t["user_id"], t["conversation_id"]) == ("cust-20417", "thread-7f21")
    a = t["attributes"]
    assert (a["langsmith_parent_run_id"], a["langsmith_records_merged"]) == ("0f3c6a1e-5b7d-4e21-9a0c-3d8e2f71b401", "2")
    assert t["source_locator"] == "line:3"
    export = store.get("langsmith:e5f6a7b8-c9d0-4e1f-8a2b-3c4d5e6f7a11")  # bulk-export row: {type, data} messages
    assert export["system_prompt"] == "You write one-paragraph handover notes."
    assert export["prompt_text"].startswith("Ticket 5521")
    assert (export["cost"], export["session_id"]) == (0.000153, "handover-0942")
    assert export["attributes"]["langsmith_project_id"] == "b0a1c2d3-e4f5-4a6b-8c7d-9e0f1a2b3c4d"


def test_wrap_openai_run_keeps_the_request_body(sample_store):
    store, _ = sample_store
    t = store.get("langsmith:9b8a7c6d-5e4f-4a3b-8c2d-1e0f9a8b7c66")
    assert json.loads(t["request_raw"])["messages"][1]["content"] == "Product: 40 L waterproof hiking backpack"
    assert t["request_is_exact"] is False  # the SDK's record of the call, not the bytes on the wire
    assert json.loads(t["response_raw"])["id"] == "chatcmpl-CXa91bQ2mT7rV4kZ8pL0sN3eH"
    assert (t["seed"], t["temperature"], t["system_prompt"]) == (11, 0.0, "Return three comma-separated tags.")
    assert t["attributes"]["system_fingerprint"] == "fp_5f1c9a3e2b"


def test_error_run(sample_store):
    store, _ = sample_store
    t = store.get("langsmith:3e4f5a6b-7c8d-4e9f-a0b1-c2d3e4f5a677")
    assert (t["status"], t["error_type"], t["stop_reason"]) == ("error", "RateLimitError", "error")
    assert t["error_message"].startswith('RateLimitError("Error code: 429')


def test_skipped_runs_name_their_reason():
    items = parse(SAMPLE.read_bytes())
    skipped = {i.locator: i.reason for i in items if isinstance(i, Skipped)}
    assert skipped == {
        "line:1": "LangSmith chain run (not an LLM call)",
        "line:2": "merged into run 5a9e1c44-7d02-4b8f-a1e3-6c2b9d0f7a12 (stored from line:3)",
        "line:4": "LangSmith tool run (not an LLM call)",
        "line:5": "LangSmith chain run (not an LLM call)",  # the chain's patch carries no run_type: known by its id
        "line:7": "merged into run 3e4f5a6b-7c8d-4e9f-a0b1-c2d3e4f5a677 (stored from line:8)",
        "line:9": "merged into run 7d6c5b4a-3f2e-4d1c-9b0a-8f7e6d5c4b99 (stored from line:10)",
    }


def test_batch_document_post_and_patch_merge_and_js_patch_without_id():
    js_patch = patch()
    js_patch.pop("id")  # the JS SDK sends updates without "id": matched through dotted_order
    doc = json.dumps({"post": [post()], "patch": [js_patch]}, indent=2)
    assert sniff_format(doc.encode(), "batch.json").name == "langsmith_runs"
    items = parse(doc)
    assert isinstance(items[0], Skipped) and items[0].locator == "document/post:0"
    rec = items[1]
    assert (rec["trace_id"], rec["source_locator"], rec["response_text"]) == (f"langsmith:{RUN}", "document/patch:0", "Hello!")
    assert (rec["latency_ms"], rec["input_tokens"], rec["output_tokens"]) == (1500.0, 8, 2)


def test_patch_values_win_but_empty_values_do_not_erase():
    later = patch(extra={"metadata": {"user_id": "u-7"}}, inputs={})
    (skip, rec) = parse(jsonl(post(), later))
    assert rec["prompt_text"] == "Hi"  # the patch's empty inputs did not erase the create's
    assert rec["user_id"] == "u-7" and rec["provider"] == "openai"  # metadata merged, not replaced
    assert rec["model_requested"] == "gpt-4o"


def test_across_files_creates_and_updates_are_skipped_then_merge_when_together(store, tmp_path):
    a, b, both = tmp_path / "a.jsonl", tmp_path / "b.jsonl", tmp_path / "both.jsonl"
    py_patch = patch()  # a Python SDK update carries no inputs
    a.write_text(jsonl(post()))
    b.write_text(jsonl(py_patch))
    both.write_text(jsonl(post(), py_patch))
    s = ingest(store, [str(a), str(b)], enricher=False)
    assert [(f.read, f.stored, f.skipped) for f in s.files] == [(1, 0, 1), (1, 0, 1)]
    q = parse(a.read_bytes())[0]
    assert "without its update in this file" in q.reason
    assert "without its create in this file" in parse(b.read_bytes())[0].reason
    f = ingest(store, [str(both)], enricher=False).files[0]
    assert (f.read, f.stored, f.skipped) == (2, 1, 1)
    again = ingest(store, [str(both)], enricher=False).files[0]
    assert (again.stored, again.duplicates) == (0, 1)  # idempotent


def test_update_with_inputs_is_complete_on_its_own():
    js_patch = patch(inputs={"model": "gpt-4o", "messages": [{"role": "user", "content": "Hi"}]},
                     extra={"metadata": {"ls_model_name": "gpt-4o", "ls_provider": "openai"}})
    js_patch.pop("id")
    (rec,) = parse(jsonl(js_patch))
    assert rec["prompt_text"] == "Hi"
    assert rec["timestamp"].isoformat() == "2026-10-02T10:15:00+00:00"  # start time read from dotted_order
    assert rec["latency_ms"] == 1500.0


@pytest.mark.parametrize(
    ("inputs", "outputs", "system", "prompt", "text", "stop"),
    [
        ({"messages": [[lc("SystemMessage", "Be brief."), lc("HumanMessage", "Hi")]]},
         {"generations": [[{"text": "Hello", "message": lc("AIMessage", "Hello", response_metadata={"finish_reason": "stop"}),
                            "generation_info": None}]]}, "Be brief.", "Hi", "Hello", "stop"),
        ({"prompts": ["Human: Hi"]}, {"generations": [[{"text": "Hello", "generation_info": {"finish_reason": "length"}}]]},
         None, "Human: Hi", "Hello", "length"),
        ({"messages": [{"role": "user", "content": "Hi"}]},
         {"id": "msg_1", "type": "message", "role": "assistant", "model": "claude-haiku-4-5-20251001",
          "content": [{"type": "text", "text": "Hello"}], "stop_reason": "end_turn",
          "usage": {"input_tokens": 3, "output_tokens": 1}}, None, "Hi", "Hello", "end_turn"),
        ({"messages": [[{"type": "human", "data": {"content": "Hi"}}]]},
         {"generations": [[{"text": "", "message": {"type": "ai", "data": {"content": "Hello", "tool_calls": []}}}]]},
         None, "Hi", "Hello", None),
    ],
    ids=["langchain-chat", "langchain-completion", "wrap-anthropic", "type-data-dicts"],
)
def test_content_shapes(inputs, outputs, system, prompt, text, stop):
    (rec,) = parse(jsonl(post(inputs=inputs, outputs=outputs, end_time="2026-10-02T10:15:01Z")))
    assert (rec.get("system_prompt"), rec["prompt_text"], rec["response_text"], rec.get("stop_reason_raw")) == (
        system, prompt, text, stop)


# What wrap_anthropic records as outputs: Message.model_dump() without "type", usage moved to usage_metadata.
WRAPPED_MESSAGE = {"id": "msg_01WrapA", "container": None,
                   "content": [{"citations": None, "text": "Hello", "type": "text"}], "model": "claude-haiku-4-5-20251001",
                   "role": "assistant", "stop_reason": "end_turn", "stop_sequence": None,
                   "usage_metadata": {"input_tokens": 3, "output_tokens": 1, "total_tokens": 4}}


@pytest.mark.parametrize(
    ("outputs", "text", "calls"),
    [
        (WRAPPED_MESSAGE, "Hello", []),
        # recent wrappers flatten tool_use blocks into OpenAI-style tool_calls, content the joined text
        ({**WRAPPED_MESSAGE, "content": "Checking.", "stop_reason": "tool_use",
          "tool_calls": [{"id": "toolu_1", "type": "function", "index": 0,
                          "function": {"name": "weather", "arguments": '{"city": "Oslo"}'}}]},
         "Checking.", [{"id": "toolu_1", "name": "weather", "arguments": '{"city":"Oslo"}'}]),
        # older wrappers nest the message
        ({"message": WRAPPED_MESSAGE}, "Hello", []),
    ],
    ids=["message", "flattened-tool-calls", "nested-message"],
)
def test_wrap_anthropic_outputs_keep_model_and_id(outputs, text, calls):
    inputs = {"model": "claude-haiku-4-5", "max_tokens": 64,
              "messages": [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Hi"}]}
    run = post(name="ChatAnthropic", inputs=inputs, outputs=outputs, end_time="2026-10-02T10:15:01Z",
               extra={"metadata": {"ls_provider": "anthropic", "ls_model_name": "claude-haiku-4-5"}})
    (rec,) = parse(jsonl(run))
    assert (rec["model_requested"], rec["model_returned"], rec["response_id"]) == (
        "claude-haiku-4-5", "claude-haiku-4-5-20251001", "msg_01WrapA")
    assert json.loads(rec["response_raw"]) == outputs  # as recorded
    assert (rec["system_prompt"], rec["response_text"], rec["tool_calls"]) == ("Be brief.", text, calls)
    assert (rec["input_tokens"], rec["output_tokens"]) == (3, 1)
    assert rec["stop_reason"] == ("tool_use" if calls else "end_turn")


def test_tool_calls_from_langchain_ai_message():
    msg = lc("AIMessage", "", tool_calls=[{"name": "order_status", "args": {"order": "FB-1"}, "id": "call_1",
                                          "type": "tool_call"}], response_metadata={"finish_reason": "tool_calls"})
    (rec,) = parse(jsonl(post(outputs={"generations": [[{"text": "", "message": msg}]]}, end_time="2026-10-02T10:15:01Z")))
    assert rec["tool_calls"] == [{"id": "call_1", "name": "order_status", "arguments": '{"order":"FB-1"}'}]
    assert rec["stop_reason"] == "tool_use"


def test_bad_runs_are_quarantined():
    no_id = post()
    no_id.pop("id")
    no_id.pop("dotted_order")
    no_time = post(end_time=None, start_time=None, dotted_order=None, id="22222222-2222-4222-8222-222222222222",
                   outputs={"choices": []}, status="success")
    items = parse(jsonl(no_id, no_time, [1, 2]) + "{oops\n")
    kinds = [(type(i).__name__, getattr(i, "reason", None)) for i in items]
    assert kinds[0] == ("Quarantined", "run has no 'id' (and no dotted_order to recover it from)")
    assert kinds[1][0] == "Quarantined" and "no start_time, end_time or dotted_order" in kinds[1][1]
    assert kinds[2] == ("Quarantined", "expected a run object, got int")
    assert kinds[4][0] == "Quarantined" and kinds[4][1].startswith("malformed JSON on line 4")
    assert all(isinstance(i, Quarantined) for i in items)


def test_sniffer_claims_only_langsmith_runs():
    fmt = FORMATS["langsmith_runs"]
    for p in sorted((REPO / "sample_logs").glob("*.*")):
        score = fmt.sniff(p.read_bytes()[:262144], str(p))
        assert score == (0.9 if p.name == SAMPLE.name else 0.0), p.name


# ---------------------------------------------------------------- optional: recorded SDK payloads


def test_real_langsmith_payloads(store):
    shared_path("formats", "langsmith")
    files = sorted(glob.glob(str(SHARED / "formats" / "langsmith" / "*.json")))
    s = ingest(store, files, enricher=False)
    assert all(f.format == "langsmith_runs" and f.reconciles for f in s.files)
    assert [(f.read, f.stored, f.skipped, f.quarantined) for f in s.files] == [(2, 1, 1, 0)] * len(files)
    df = store.scan().collect()
    assert set(df["model_returned"]) == {"gpt-4o-mini-2024-07-18", "o1-mini-2024-09-12"}
    assert df["input_tokens"].null_count() == 0 and df["response_text"].null_count() == 0
    streamed = df.filter(df["time_to_first_token_ms"].is_not_null())
    assert streamed.height == 1 and 0 < streamed["time_to_first_token_ms"][0] < streamed["latency_ms"][0]


def test_corrupted_records_never_raise():
    from tests.test_formats_bedrock import check_corruptions

    records = [json.loads(x) for x in SAMPLE.read_text().splitlines()]
    items = check_corruptions("langsmith_runs", records)
    assert any(isinstance(i, Quarantined) for i in items) and any(isinstance(i, dict) for i in items)


def test_failed_wrapper_run_records_no_response_text():
    """wrap_openai/wrap_anthropic record {"output": None} as the outputs of a call that raised."""
    from tracelens.ingest.formats.langsmith import output_fields

    assert output_fields({"output": None}) == {}
    assert output_fields('{"output": null}') == {}
