"""OpenInference / Phoenix span importer (openinference)."""

from __future__ import annotations

import datetime as dt
import io
import json

import pytest

from tests.conftest import REPO, shared_path
from tracelens.ingest.base import IngestOptions, Quarantined, Skipped, Source
from tracelens.ingest.pipeline import finalize, ingest
from tracelens.ingest.registry import get_format, sniff_format

TRACE = "0af7651916cd43dd8448eb211c80319c"
TOOL_SCHEMA = json.dumps({"type": "function", "function": {"name": "stock", "parameters": {"type": "object"}}})


def px_span(span_id: str, attrs: dict, *, kind: str = "LLM", status: str = "OK", message: str = "",
            start: str = "2026-10-03T11:00:00+00:00", end: str = "2026-10-03T11:00:01.250000+00:00",
            events: list | None = None) -> dict:
    return {"name": "ChatCompletion", "context": {"trace_id": TRACE, "span_id": span_id}, "span_kind": kind,
            "parent_id": None, "start_time": start, "end_time": end, "status_code": status,
            "status_message": message, "attributes": attrs, "events": events or []}


def parse(data: str) -> list:
    raw = data.encode()
    fmt = get_format("openinference")
    return list(fmt.parse(Source("mem.json", io.BytesIO(raw), IngestOptions(), raw[:262144])))


FLAT = {
    "openinference.span.kind": "LLM",
    "llm.system": "openai",
    "llm.provider": "azure",
    "llm.model_name": "gpt-4o-2024-08-06",
    "llm.invocation_parameters": json.dumps({"model": "gpt-4o", "temperature": 0.3, "max_completion_tokens": 300,
                                             "stop": ["###"], "seed": 5}),
    "llm.input_messages.0.message.role": "system",
    "llm.input_messages.0.message.content": "You check stock.",
    "llm.input_messages.1.message.role": "user",
    "llm.input_messages.1.message.contents.0.message_content.type": "text",
    "llm.input_messages.1.message.contents.0.message_content.text": "Any Trailhead 29 left?",
    "llm.input_messages.1.message.contents.1.message_content.type": "image",
    "llm.input_messages.1.message.contents.1.message_content.image.image.url": "https://example.test/bike.png",
    "llm.input_messages.2.message.role": "assistant",
    "llm.input_messages.2.message.tool_calls.0.tool_call.id": "call_1",
    "llm.input_messages.2.message.tool_calls.0.tool_call.function.name": "stock",
    "llm.input_messages.2.message.tool_calls.0.tool_call.function.arguments": '{"sku": "TH29"}',
    "llm.input_messages.3.message.role": "tool",
    "llm.input_messages.3.message.content": "4",
    "llm.input_messages.3.message.tool_call_id": "call_1",
    "llm.input_messages.3.message.name": "stock",
    "llm.output_messages.0.message.role": "assistant",
    "llm.output_messages.0.message.content": "Yes, 4 left.",
    "llm.tools.0.tool.json_schema": TOOL_SCHEMA,
    "llm.token_count.prompt": 90,
    "llm.token_count.completion": 6,
    "llm.token_count.total": 96,
    "llm.cost.total": 0.0012,
    "llm.finish_reason": "stop",
    "session.id": "sess-7",
    "user.id": "cust-7",
    "metadata": json.dumps({"channel": "web", "thread_id": "thr-7"}),
    "tag.tags": ["stock", "web"],
    "input.value": json.dumps({"model": "gpt-4o", "messages": [{"role": "user", "content": "Any Trailhead 29 left?"}]}),
    "output.value": "Yes, 4 left.",
}

NESTED = {
    "openinference": {"span": {"kind": "LLM"}},
    "session": {"id": "sess-7"},
    "user": {"id": "cust-7"},
    "metadata": json.dumps({"channel": "web", "thread_id": "thr-7"}),
    "tag": {"tags": ["stock", "web"]},
    "input": {"value": FLAT["input.value"]},
    "output": {"value": "Yes, 4 left."},
    "llm": {
        "system": "openai", "provider": "azure", "model_name": "gpt-4o-2024-08-06",
        "invocation_parameters": FLAT["llm.invocation_parameters"], "finish_reason": "stop",
        "input_messages": [
            {"message": {"role": "system", "content": "You check stock."}},
            {"message": {"role": "user", "contents": [
                {"message_content": {"type": "text", "text": "Any Trailhead 29 left?"}},
                {"message_content": {"type": "image", "image": {"image": {"url": "https://example.test/bike.png"}}}}]}},
            {"message": {"role": "assistant", "tool_calls": [
                {"tool_call": {"id": "call_1", "function": {"name": "stock", "arguments": '{"sku": "TH29"}'}}}]}},
            {"message": {"role": "tool", "content": "4", "tool_call_id": "call_1", "name": "stock"}},
        ],
        "output_messages": [{"message": {"role": "assistant", "content": "Yes, 4 left."}}],
        "tools": [{"tool": {"json_schema": TOOL_SCHEMA}}],
        "token_count": {"prompt": 90, "completion": 6, "total": 96},
        "cost": {"total": 0.0012},
    },
}

# the "logical" form of the OpenInference spec: lists of objects with dotted keys
LOGICAL = {
    **{k: v for k, v in FLAT.items() if not k.startswith(("llm.input_messages", "llm.output_messages", "llm.tools"))},
    "llm.input_messages": [
        {"message.role": "system", "message.content": "You check stock."},
        {"message.role": "user", "message.contents": [
            {"message_content.type": "text", "message_content.text": "Any Trailhead 29 left?"},
            {"message_content.type": "image", "message_content.image": {"image.url": "https://example.test/bike.png"}}]},
        {"message.role": "assistant", "message.tool_calls": [
            {"tool_call.id": "call_1", "tool_call.function.name": "stock", "tool_call.function.arguments": '{"sku": "TH29"}'}]},
        {"message.role": "tool", "message.content": "4", "message.tool_call_id": "call_1", "message.name": "stock"},
    ],
    "llm.output_messages": [{"message.role": "assistant", "message.content": "Yes, 4 left."}],
    "llm.tools": [{"tool.json_schema": TOOL_SCHEMA}],
}


def test_flattened_llm_span_maps_every_field():
    (rec,) = parse(json.dumps([px_span("b7ad6b7169203331", FLAT)]))
    expected = {
        "trace_id": f"otel:{TRACE}:b7ad6b7169203331",
        "source_locator": "index:0/span:b7ad6b7169203331",
        "provider": "azure",  # llm.provider (hosting) wins over llm.system (product)
        "model_requested": "gpt-4o",
        "model_returned": "gpt-4o-2024-08-06",
        "session_id": "sess-7",
        "user_id": "cust-7",
        "conversation_id": "thr-7",
        "system_prompt": "You check stock.",
        "messages": [
            {"role": "user", "text": "Any Trailhead 29 left?", "tool_calls": [], "tool_call_id": None, "name": None},
            {"role": "assistant", "text": None, "tool_calls": [{"id": "call_1", "name": "stock",
                                                               "arguments": '{"sku": "TH29"}'}],
             "tool_call_id": None, "name": None},
            {"role": "tool", "text": "4", "tool_calls": [], "tool_call_id": "call_1", "name": "stock"},
        ],
        "response_text": "Yes, 4 left.",
        "tool_calls": [],
        "tool_definitions": '[{"type":"function","function":{"name":"stock","parameters":{"type":"object"}}}]',
        "stop_reason_raw": "stop",
        "stop_reason": "end_turn",
        "temperature": 0.3,
        "max_tokens": 300,
        "seed": 5,
        "stop_sequences": ["###"],
        "input_tokens": 90,
        "output_tokens": 6,
        "cost": 0.0012,
        "latency_ms": 1250.0,
        "timestamp": dt.datetime(2026, 10, 3, 11, 0, tzinfo=dt.UTC),
        "status": "ok",
        "request_raw": FLAT["input.value"],  # input.value is a complete OpenAI request body
        "request_is_exact": False,
    }
    assert {k: rec.get(k) for k in expected} == expected
    assert rec["attributes"]["tags"] == '["stock","web"]'
    assert rec["attributes"]["metadata.channel"] == "web"
    assert rec["attributes"]["openinference.span.kind"] == "LLM"


@pytest.mark.parametrize("attrs", [NESTED, LOGICAL], ids=["nested", "logical"])
def test_nested_and_logical_forms_read_like_the_flat_form(attrs):
    now = dt.datetime(2026, 10, 8, tzinfo=dt.UTC)
    (flat,) = parse(json.dumps([px_span("b7ad6b7169203331", FLAT)]))
    (other,) = parse(json.dumps([px_span("b7ad6b7169203331", attrs)]))
    a = finalize(flat, "openinference", "/x", IngestOptions(), now)
    b = finalize(other, "openinference", "/x", IngestOptions(), now)
    assert a == b  # same record, same content hash


def test_non_llm_spans_are_skipped_with_their_kind(store, tmp_path):
    spans = [
        px_span("0000000000000001", {"openinference.span.kind": "CHAIN", "input.value": "hi"}, kind="CHAIN"),
        px_span("0000000000000002", {"tool.name": "stock"}, kind="TOOL"),  # kind only in the export's span_kind
        px_span("0000000000000003", {"openinference.span.kind": "EMBEDDING", "embedding.model_name": "bge"},
                kind="EMBEDDING"),
        px_span("0000000000000004", FLAT),
    ]
    items = parse(json.dumps(spans))
    assert [i.reason.split(" is an ")[-1] for i in items if isinstance(i, Skipped)] == [
        "OpenInference CHAIN span, not an LLM call", "OpenInference TOOL span, not an LLM call",
        "OpenInference EMBEDDING span, not an LLM call"]
    p = tmp_path / "spans.json"
    p.write_text(json.dumps(spans, indent=2))
    f = ingest(store, [str(p)], enricher=False).files[0]
    assert (f.format, f.read, f.stored, f.skipped, f.quarantined) == ("openinference", 4, 1, 3, 0) and f.reconciles


def test_anthropic_cache_counts_and_reasoning_contents():
    attrs = {"openinference.span.kind": "LLM", "llm.provider": "anthropic", "llm.system": "anthropic",
             "llm.model_name": "claude-sonnet-4-5-20250929",
             "llm.invocation_parameters": json.dumps({"max_tokens": 1024, "top_k": 5}),
             "llm.input_messages.0.message.role": "user", "llm.input_messages.0.message.content": "Hi",
             "llm.output_messages.0.message.role": "assistant",
             "llm.output_messages.0.message.contents.0.message_content.type": "reasoning",
             "llm.output_messages.0.message.contents.0.message_content.text": "greet back",
             "llm.output_messages.0.message.contents.1.message_content.type": "text",
             "llm.output_messages.0.message.contents.1.message_content.text": "Hello!",
             "llm.output_messages.0.message.contents.2.message_content.type": "tool_use",
             "llm.output_messages.0.message.contents.2.tool_call.id": "toolu_1",
             "llm.output_messages.0.message.contents.2.tool_call.function.name": "wave",
             "llm.output_messages.0.message.contents.2.tool_call.function.arguments": "{}",
             "llm.token_count.prompt": 1540, "llm.token_count.prompt_details.cache_read": 1200,
             "llm.token_count.prompt_details.cache_write": 300, "llm.token_count.completion": 9}
    (rec,) = parse(json.dumps(px_span("0000000000000009", attrs)))
    assert (rec["input_tokens"], rec["cache_read_tokens"], rec["cache_creation_tokens"]) == (40, 1200, 300)
    assert rec["attributes"]["input_tokens_reported"] == "1540"
    assert (rec["model_requested"], rec["model_returned"], rec["top_k"], rec["max_tokens"]) == (
        None, "claude-sonnet-4-5-20250929", 5, 1024)
    assert rec["response_text"] == "Hello!"  # reasoning content is not response text
    assert rec["tool_calls"] == [{"id": "toolu_1", "name": "wave", "arguments": "{}"}]


def test_error_span_with_exception_event():
    attrs = {"openinference.span.kind": "LLM", "llm.model_name": "claude-sonnet-4-5", "llm.provider": "anthropic",
             "llm.input_messages.0.message.role": "user", "llm.input_messages.0.message.content": "Summarise"}
    ev = [{"name": "exception", "timestamp": "2026-10-05T20:10:30+00:00",
           "attributes": {"exception.type": "anthropic.APITimeoutError", "exception.message": "Request timed out."}}]
    (rec,) = parse(json.dumps(px_span("00000000000000e1", attrs, status="ERROR", message="timed out", events=ev)))
    assert (rec["status"], rec["error_type"], rec["error_message"], rec["stop_reason"]) == (
        "error", "anthropic.APITimeoutError", "Request timed out.", "error")
    (rec2,) = parse(json.dumps(px_span("00000000000000e2", attrs, status="ERROR", message="timed out")))
    assert (rec2["status"], rec2.get("error_type"), rec2["error_message"]) == ("error", None, "timed out")


def test_input_and_output_value_fallbacks():
    parts_in = json.dumps([{"role": "user", "parts": [{"type": "text", "content": "Weather in Paris?"}]},
                           {"role": "tool", "parts": [{"type": "tool_call_response", "id": "1", "response": "rainy"}]}])
    attrs = {"openinference.span.kind": "LLM", "llm.model_name": "gpt-4-0613", "llm.system": "openai",
             "input.value": parts_in, "input.mime_type": "application/json",
             "output.value": json.dumps({"text": "It is rainy.", "finish_reason": "stop"})}
    text_only = {"openinference.span.kind": "LLM", "llm.model_name": "gpt-4o", "input.value": "plain question",
                 "input.mime_type": "text/plain", "output.value": "plain answer"}
    completion_body = {"openinference.span.kind": "LLM", "llm.model_name": "gpt-4o-mini",
                       "llm.input_messages.0.message.role": "user", "llm.input_messages.0.message.content": "Hi",
                       "output.value": json.dumps({"id": "chatcmpl-1", "object": "chat.completion", "model": "gpt-4o-mini",
                                                   "choices": [{"index": 0, "finish_reason": "stop", "message": {
                                                       "role": "assistant", "content": "Hello"}}],
                                                   "usage": {"prompt_tokens": 3, "completion_tokens": 1}})}
    a, b, c = parse(json.dumps([px_span("1", attrs), px_span("2", text_only), px_span("3", completion_body)]))
    assert [(m["role"], m["text"]) for m in a["messages"]] == [("user", "Weather in Paris?"), ("tool", "rainy")]
    assert (a["response_text"], a["stop_reason"]) == ("It is rainy.", "end_turn")
    assert (b["messages"][0]["text"], b["response_text"]) == ("plain question", "plain answer")
    assert (c["response_text"], c["response_id"], c["input_tokens"], c["stop_reason"]) == ("Hello", "chatcmpl-1", 3,
                                                                                          "end_turn")
    assert c["response_raw"] == completion_body["output.value"]


def test_legacy_completions_prompts_and_choices():
    attrs = {"openinference.span.kind": "LLM", "llm.model_name": "babbage-002",
             "llm.prompts.0.prompt.text": "def fib(n):", "llm.choices.0.completion.text": " return n"}
    (rec,) = parse(json.dumps(px_span("4", attrs)))
    assert (rec["messages"][0]["text"], rec["response_text"]) == ("def fib(n):", " return n")


def test_dataframe_columns_jsonl_and_genai_attributes(tmp_path):
    df_row = {"name": "llm", "span_kind": "LLM", "context.trace_id": TRACE, "context.span_id": "00000000000000d1",
              "start_time": "2026-10-06T10:00:00.000Z", "end_time": "2026-10-06T10:00:00.400Z", "status_code": "OK",
              "attributes.llm.model_name": "gpt-4o", "attributes.llm.input_messages": [
                  {"message.role": "user", "message.content": "df question"}],
              "attributes.output.value": "df answer", "attributes.llm.token_count.prompt": None}
    genai = {"name": "chat gpt-4o", "context": {"trace_id": "0x" + TRACE, "span_id": "0x00000000000000d2"},
             "kind": "SpanKind.CLIENT", "start_time": "2026-10-06T10:01:00Z", "end_time": "2026-10-06T10:01:01Z",
             "status": {"status_code": "UNSET"}, "resource": {"attributes": {"service.name": "console-app"}},
             "attributes": {"gen_ai.operation.name": "chat", "gen_ai.request.model": "gpt-4o",
                            "gen_ai.input.messages": json.dumps([{"role": "user", "parts": [
                                {"type": "text", "content": "console question"}]}])}}
    text = json.dumps(df_row) + "\n" + json.dumps(genai) + "\n"
    a, b = parse(text)
    assert (a["trace_id"], a["messages"][0]["text"], a["response_text"], a["source_locator"]) == (
        f"otel:{TRACE}:00000000000000d1", "df question", "df answer", "line:1/span:00000000000000d1")
    assert (b["trace_id"], b["messages"][0]["text"], b["service"]) == (
        f"otel:{TRACE}:00000000000000d2", "console question", "console-app")
    assert sniff_format(text.encode(), "x.jsonl").name == "openinference"


def test_bad_spans_are_quarantined():
    items = parse(json.dumps([px_span("5", FLAT, start="not a time"), "just a string", px_span("6", FLAT)]))
    assert [type(i).__name__ for i in items] == ["Quarantined", "Quarantined", "dict"]
    assert "start_time" in items[0].reason and isinstance(items[1], Quarantined)


def test_sample_file_ingests_cleanly(store):
    f = ingest(store, [str(REPO / "sample_logs" / "phoenix_spans.json")], enricher=False).files[0]
    assert (f.format, f.read, f.stored, f.skipped, f.quarantined) == ("openinference", 7, 4, 3, 0)
    df = store.scan().collect()
    assert df["prompt_text"].null_count() == 0 and df["model_family"].null_count() == 0


# ---------------------------------------------------------------- optional checks over the shared samples


@pytest.mark.shared
def test_phoenix_trace_export(store):
    path = shared_path("formats", "openinference", "phoenix", "pxi_turn_trace.json")
    f = ingest(store, [str(path)], enricher=False).files[0]
    assert (f.format, f.read, f.stored, f.skipped, f.quarantined) == ("openinference", 18, 9, 9, 0)
    assert f.reconciles
    df = store.scan().collect()
    assert df["model_returned"].null_count() == 0 and df["prompt_text"].null_count() == 0
    assert (df["tool_calls"].list.len() + df["response_text"].str.len_chars().fill_null(0) > 0).all()
    assert (df["input_tokens"] < df["cache_read_tokens"]).all()  # cached tokens taken back out for Anthropic


@pytest.mark.shared
@pytest.mark.parametrize("name", ["openinference_client_span_tool_calls.json",
                                  "openinference_client_span_input_output_only.json"])
def test_shared_openinference_fixtures_wrapped_as_spans(name):
    attrs = json.loads(shared_path("formats", "openinference", "fixtures", name).read_text())
    (rec,) = parse(json.dumps([px_span("00000000000000f1", attrs)]))
    assert (rec["model_requested"], rec["model_returned"], rec["temperature"], rec["top_p"], rec["max_tokens"]) == (
        "gpt-4", "gpt-4-0613", 0.5, 0.9, 200)
    assert [m["role"] for m in rec["messages"]] == ["user", "assistant", "tool"]
    assert rec["messages"][0]["text"] == "Weather in Paris?"
    assert rec["messages"][1]["tool_calls"][0]["name"] == "get_weather"
    assert rec["response_text"].startswith("The weather in Paris is currently rainy")
    assert (rec["input_tokens"], rec["output_tokens"]) == (97, 52)


def test_failed_call_has_no_returned_model():
    """OpenInference's llm.model_name is the requested model until a response overwrites it."""
    from tracelens.ingest.spans import openinference_fields

    failed, _ = openinference_fields({"openinference.span.kind": "LLM", "llm.model_name": "claude-haiku-4-5",
                                      "llm.input_messages.0.message.role": "user",
                                      "llm.input_messages.0.message.content": "hi"})
    assert failed["model_requested"] == "claude-haiku-4-5" and failed["model_returned"] is None
    ok, _ = openinference_fields({"openinference.span.kind": "LLM", "llm.model_name": "claude-haiku-4-5-20251001",
                                  "llm.invocation_parameters": '{"model": "claude-haiku-4-5"}',
                                  "llm.output_messages.0.message.role": "assistant",
                                  "llm.output_messages.0.message.content": "hello",
                                  "llm.token_count.completion": 3})
    assert ok["model_requested"] == "claude-haiku-4-5" and ok["model_returned"] == "claude-haiku-4-5-20251001"
