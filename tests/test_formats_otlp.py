"""OTLP JSON importer (otlp_json): OTel GenAI spans, current and older conventions."""

from __future__ import annotations

import base64
import datetime as dt
import io
import json
from pathlib import Path

import pytest

from tests.conftest import REPO, shared_path
from tracelens.ingest.base import IngestOptions, Quarantined, Skipped, Source
from tracelens.ingest.pipeline import ingest
from tracelens.ingest.registry import get_format, sniff_format

TRACE = "5b8efff798038103d269b633813fc60c"
T0 = "2026-10-01T09:00:00Z"


def _ns(iso: str) -> str:
    t = dt.datetime.fromisoformat(iso.replace("Z", "+00:00"))
    return str(int(t.timestamp() * 1_000_000) * 1000)


def _av(v):
    if isinstance(v, bool):
        return {"boolValue": v}
    if isinstance(v, int):
        return {"intValue": str(v)}  # OTLP JSON writes int64 as a string
    if isinstance(v, float):
        return {"doubleValue": v}
    if isinstance(v, list):
        return {"arrayValue": {"values": [_av(x) for x in v]}}
    if isinstance(v, dict):
        return {"kvlistValue": {"values": [{"key": k, "value": _av(x)} for k, x in v.items()]}}
    return {"stringValue": v}


def _attrs(d: dict) -> list:
    return [{"key": k, "value": _av(v)} for k, v in d.items()]


def span(span_id: str, attrs: dict, *, name: str = "chat", start: str = T0, end: str = "2026-10-01T09:00:01.500Z",
         events: list | None = None, status: dict | None = None, parent: str = "") -> dict:
    s = {"traceId": TRACE, "spanId": span_id, "parentSpanId": parent, "name": name, "kind": 3,
         "startTimeUnixNano": _ns(start), "endTimeUnixNano": _ns(end), "attributes": _attrs(attrs),
         "status": status or {}}
    if events:
        s["events"] = [{"timeUnixNano": _ns(start), "name": n, "attributes": _attrs(a)} for n, a in events]
    return s


def request(*spans: dict, service: str = "checkout-assistant") -> dict:
    return {"resourceSpans": [{"resource": {"attributes": _attrs({"service.name": service})},
                               "scopeSpans": [{"scope": {"name": "test.instrumentation"}, "spans": list(spans)}]}]}


def parse(data: str | bytes) -> list:
    raw = data.encode() if isinstance(data, str) else data
    fmt = get_format("otlp_json")
    return list(fmt.parse(Source("mem.jsonl", io.BytesIO(raw), IngestOptions(), raw[:262144])))


def lines(*reqs: dict) -> str:
    return "\n".join(json.dumps(r) for r in reqs) + "\n"


def _parts(role: str, text: str) -> dict:
    return {"role": role, "parts": [{"type": "text", "content": text}]}


CHAT = {
    "gen_ai.provider.name": "anthropic",
    "gen_ai.operation.name": "chat",
    "gen_ai.request.model": "claude-sonnet-4-5",
    "gen_ai.request.max_tokens": 512,
    "gen_ai.request.temperature": 0.2,
    "gen_ai.request.top_p": 0.95,
    "gen_ai.request.top_k": 40.0,
    "gen_ai.request.seed": 3,
    "gen_ai.request.stop_sequences": ["\n\nHuman:"],
    "gen_ai.response.model": "claude-sonnet-4-5-20250929",
    "gen_ai.response.id": "msg_01Abc",
    "gen_ai.response.finish_reasons": ["end_turn"],
    "gen_ai.usage.input_tokens": 120,
    "gen_ai.usage.output_tokens": 14,
    "gen_ai.conversation.id": "conv-1",
    "gen_ai.response.time_to_first_chunk": 0.25,
    "session.id": "sess-1",
    "user.id": "user-9",
    "server.address": "api.anthropic.com",
    "gen_ai.system_instructions": json.dumps([{"type": "text", "content": "You are a cashier."}]),
    "gen_ai.input.messages": json.dumps([_parts("user", "Total for two coffees?")]),
    "gen_ai.output.messages": json.dumps([{"role": "assistant", "parts": [{"type": "text", "content": "That is 7.00."}],
                                           "finish_reason": "stop"}]),
    "gen_ai.tool.definitions": json.dumps([{"type": "function", "name": "price", "parameters": {"type": "object"}}]),
}


def test_current_semconv_chat_span_maps_every_field():
    (rec,) = parse(lines(request(span("00f067aa0ba902b7", CHAT, name="chat claude-sonnet-4-5"))))
    assert isinstance(rec, dict)
    expected = {
        "trace_id": f"otel:{TRACE}:00f067aa0ba902b7",
        "source_locator": "line:1/span:00f067aa0ba902b7",
        "provider": "anthropic",
        "model_requested": "claude-sonnet-4-5",
        "model_returned": "claude-sonnet-4-5-20250929",
        "response_id": "msg_01Abc",
        "conversation_id": "conv-1",
        "session_id": "sess-1",
        "user_id": "user-9",
        "service": "checkout-assistant",
        "system_prompt": "You are a cashier.",
        "messages": [{"role": "user", "text": "Total for two coffees?", "tool_calls": [], "tool_call_id": None,
                      "name": None}],
        "response_text": "That is 7.00.",
        "tool_calls": [],
        "tool_definitions": '[{"type":"function","name":"price","parameters":{"type":"object"}}]',
        "stop_reason_raw": "end_turn",  # the span attribute wins over the output message's finish_reason
        "stop_reason": "end_turn",
        "temperature": 0.2,
        "top_p": 0.95,
        "top_k": 40,
        "max_tokens": 512,
        "seed": 3,
        "stop_sequences": ["\n\nHuman:"],
        "input_tokens": 120,
        "output_tokens": 14,
        "time_to_first_token_ms": 250.0,
        "latency_ms": 1500.0,
        "timestamp": dt.datetime(2026, 10, 1, 9, 0, tzinfo=dt.UTC),
        "status": "ok",
        "request_raw": None,
        "response_raw": None,
        "request_is_exact": False,
    }
    assert {k: rec.get(k) for k in expected} == expected
    assert rec["attributes"]["server.address"] == "api.anthropic.com"
    assert rec["attributes"]["otel.span_name"] == "chat claude-sonnet-4-5"
    assert rec["attributes"]["otel.span_kind"] == "CLIENT"
    assert "gen_ai.input.messages" not in rec["attributes"]  # content is not metadata


def test_multi_span_line_skips_and_counts_non_llm_spans(store, tmp_path):
    req = request(
        span("a000000000000001", {"gen_ai.operation.name": "invoke_agent", "gen_ai.agent.name": "Till"}, name="agent"),
        span("a000000000000002", CHAT, parent="a000000000000001"),
        span("a000000000000003", {"gen_ai.operation.name": "execute_tool", "gen_ai.tool.name": "price"}),
        span("a000000000000004", {"gen_ai.operation.name": "embeddings", "gen_ai.request.model": "text-embedding-3"}),
        span("a000000000000005", {"http.request.method": "POST", "http.response.status_code": 200}, name="POST"),
    )
    items = parse(lines(req))
    assert [type(i).__name__ for i in items] == ["Skipped", "dict", "Skipped", "Skipped", "Skipped"]
    reasons = [i.reason for i in items if isinstance(i, Skipped)]
    assert "invoke_agent" in reasons[0] and "execute_tool" in reasons[1] and "embeddings" in reasons[2]
    assert "no gen_ai.* attributes" in reasons[3]
    p = tmp_path / "spans.jsonl"
    p.write_text(lines(req))
    f = ingest(store, [str(p)], enricher=False).files[0]
    assert (f.format, f.read, f.stored, f.skipped, f.quarantined) == ("otlp_json", 5, 1, 4, 0)
    assert f.reconciles
    # re-ingest: the stored span is a duplicate, not a new trace
    f2 = ingest(store, [str(p)], enricher=False).files[0]
    assert (f2.stored, f2.duplicates, f2.skipped) == (0, 1, 4)


def test_tool_call_round_trip_in_parts_messages():
    attrs = {
        "gen_ai.provider.name": "openai", "gen_ai.operation.name": "chat", "gen_ai.request.model": "gpt-4o",
        "gen_ai.input.messages": json.dumps([
            _parts("user", "Weather in Oslo?"),
            {"role": "assistant", "parts": [{"type": "tool_call", "id": "call_1", "name": "weather",
                                             "arguments": {"city": "Oslo"}}]},
            {"role": "tool", "parts": [{"type": "tool_call_response", "id": "call_1", "response": {"temp": 4}}]},
        ]),
        "gen_ai.output.messages": json.dumps([{"role": "assistant", "finish_reason": "tool_call", "parts": [
            {"type": "reasoning", "content": "need the forecast too"},
            {"type": "tool_call", "id": "call_2", "name": "forecast", "arguments": {"city": "Oslo", "days": 2}}]}]),
    }
    (rec,) = parse(lines(request(span("b000000000000001", attrs))))
    assert rec["messages"] == [
        {"role": "user", "text": "Weather in Oslo?", "tool_calls": [], "tool_call_id": None, "name": None},
        {"role": "assistant", "text": None, "tool_calls": [{"id": "call_1", "name": "weather",
                                                           "arguments": '{"city":"Oslo"}'}],
         "tool_call_id": None, "name": None},
        {"role": "tool", "text": '{"temp":4}', "tool_calls": [], "tool_call_id": "call_1", "name": None},
    ]
    assert rec["tool_calls"] == [{"id": "call_2", "name": "forecast", "arguments": '{"city":"Oslo","days":2}'}]
    assert rec["response_text"] is None  # reasoning is not response text; an OpenAI tool-call-only answer has none
    assert (rec["stop_reason_raw"], rec["stop_reason"]) == ("tool_call", "tool_use")


@pytest.mark.parametrize(
    "status,events,extra,error_type,message",
    [
        ({"code": 2, "message": "overloaded"}, None, {"error.type": "overloaded_error"}, "overloaded_error", "overloaded"),
        ({"code": "STATUS_CODE_ERROR", "message": "boom"}, None, {}, None, "boom"),
        ({"code": 2}, [("exception", {"exception.type": "TimeoutError", "exception.message": "read timed out"})], {},
         "TimeoutError", "read timed out"),
    ],
)
def test_error_spans(status, events, extra, error_type, message):
    attrs = {k: v for k, v in CHAT.items() if k not in ("gen_ai.output.messages", "gen_ai.response.finish_reasons")}
    (rec,) = parse(lines(request(span("c000000000000001", {**attrs, **extra}, status=status, events=events))))
    assert (rec["status"], rec["error_type"], rec["error_message"], rec["stop_reason"]) == (
        "error", error_type, message, "error")
    assert rec.get("response_text") is None


def test_openllmetry_indexed_attributes():
    attrs = {
        "gen_ai.system": "Anthropic",
        "llm.request.type": "chat",
        "gen_ai.request.model": "claude-3-5-haiku-latest",
        "gen_ai.prompt.0.role": "system",
        "gen_ai.prompt.0.content": "Reply in French.",
        "gen_ai.prompt.1.role": "user",
        "gen_ai.prompt.1.content": json.dumps([{"type": "text", "text": "Good morning"}]),  # content blocks as JSON
        "gen_ai.completion.0.role": "assistant",
        "gen_ai.completion.0.content": "Bonjour",
        "gen_ai.completion.0.finish_reason": "end_turn",
        "gen_ai.completion.1.role": "assistant",
        "gen_ai.completion.1.content": "second choice is ignored",
        "gen_ai.usage.prompt_tokens": 12,
        "gen_ai.usage.completion_tokens": 3,
        "llm.request.functions.0.name": "translate",
        "llm.request.functions.0.description": "Translate text",
        "llm.request.functions.0.parameters": json.dumps({"type": "object"}),
    }
    (rec,) = parse(lines(request(span("d000000000000001", attrs, name="anthropic.chat"))))
    assert rec["provider"] == "anthropic"
    assert rec["system_prompt"] == "Reply in French."
    assert [(m["role"], m["text"]) for m in rec["messages"]] == [("user", "Good morning")]
    assert (rec["response_text"], rec["stop_reason"], rec["input_tokens"], rec["output_tokens"]) == (
        "Bonjour", "end_turn", 12, 3)
    assert json.loads(rec["tool_definitions"]) == [{"name": "translate", "description": "Translate text",
                                                   "parameters": {"type": "object"}}]
    assert rec["attributes"]["llm.request.type"] == "chat"


def test_openllmetry_tool_calls_and_llm_request_type_skips():
    llm = {"gen_ai.system": "openai", "llm.request.type": "chat", "gen_ai.request.model": "gpt-4o",
           "gen_ai.prompt.0.role": "user", "gen_ai.prompt.0.content": "Book Saturday",
           "gen_ai.completion.0.role": "assistant", "gen_ai.completion.0.finish_reason": "tool_calls",
           "gen_ai.completion.0.tool_calls.0.id": "call_9", "gen_ai.completion.0.tool_calls.0.name": "book",
           "gen_ai.completion.0.tool_calls.0.arguments": '{"day": "Sat"}'}
    emb = {"gen_ai.system": "openai", "llm.request.type": "embedding", "gen_ai.request.model": "text-embedding-3-small"}
    rec, skipped = parse(lines(request(span("e000000000000001", llm), span("e000000000000002", emb))))
    assert rec["tool_calls"] == [{"id": "call_9", "name": "book", "arguments": '{"day": "Sat"}'}]
    assert rec["stop_reason"] == "tool_use"
    assert isinstance(skipped, Skipped) and "llm.request.type=embedding" in skipped.reason


def test_content_in_span_events():
    base = {"gen_ai.system": "openai", "gen_ai.operation.name": "chat", "gen_ai.request.model": "gpt-4o-mini"}
    legacy = span("f000000000000001", base, events=[
        ("gen_ai.content.prompt", {"gen_ai.prompt": json.dumps([{"role": "user", "content": "Ping?"}])}),
        ("gen_ai.content.completion", {"gen_ai.completion": json.dumps([{"role": "assistant", "content": "Pong.",
                                                                        "finish_reason": "stop"}])}),
    ])
    v128 = span("f000000000000002", base, events=[
        ("gen_ai.system.message", {"gen_ai.event.content": json.dumps({"content": "Be terse."})}),
        ("gen_ai.user.message", {"content": "Capital of Peru?"}),
        ("gen_ai.choice", {"gen_ai.event.content": json.dumps({"index": 0, "finish_reason": "length",
                                                               "message": {"content": "Lima"}})}),
    ])
    details = span("f000000000000003", base, events=[
        ("gen_ai.client.inference.operation.details", {
            "gen_ai.input.messages": json.dumps([_parts("user", "2+2?")]),
            "gen_ai.output.messages": json.dumps([{"role": "assistant", "parts": [{"type": "text", "content": "4"}],
                                                   "finish_reason": "stop"}]),
        }),
    ])
    a, b, c = parse(lines(request(legacy, v128, details)))
    assert (a["messages"][0]["text"], a["response_text"], a["stop_reason"]) == ("Ping?", "Pong.", "end_turn")
    assert (b["system_prompt"], b["messages"][0]["text"], b["response_text"], b["stop_reason"]) == (
        "Be terse.", "Capital of Peru?", "Lima", "max_tokens")
    assert (c["messages"][0]["text"], c["response_text"]) == ("2+2?", "4")


def test_input_tokens_exclude_cache_whatever_the_provider():
    anth = {**CHAT, "gen_ai.usage.input_tokens": 2480, "gen_ai.usage.cache_read.input_tokens": 2000,
            "gen_ai.usage.cache_creation.input_tokens": 400}
    oai = {**CHAT, "gen_ai.provider.name": "openai", "gen_ai.request.model": "gpt-4o", "gen_ai.response.model": "gpt-4o",
           "gen_ai.usage.input_tokens": 2480, "gen_ai.usage.cache_read.input_tokens": 2000}
    a, o = parse(lines(request(span("1000000000000001", anth), span("1000000000000002", oai))))
    assert (a["input_tokens"], a["cache_read_tokens"], a["cache_creation_tokens"]) == (80, 2000, 400)
    assert a["attributes"]["input_tokens_reported"] == "2480"
    assert (o["input_tokens"], o["cache_read_tokens"]) == (480, 2000)  # the GenAI total includes the cache
    assert o["attributes"]["input_tokens_reported"] == "2480"


def test_anyvalue_decoding_structured_messages_and_base64_ids():
    attrs = {**CHAT, "gen_ai.input.messages": [_parts("user", "structured, not a JSON string")],
             "gen_ai.output.messages": [{"role": "assistant", "parts": [{"type": "text", "content": "ok"}],
                                         "finish_reason": "stop"}],
             "gen_ai.request.stream": True, "custom.bytes": "aGk="}
    s = span("ignored", attrs)
    s["traceId"] = base64.b64encode(bytes.fromhex(TRACE)).decode()
    s["spanId"] = base64.b64encode(bytes.fromhex("00f067aa0ba902b7")).decode()
    (rec,) = parse(lines(request(s)))
    assert rec["trace_id"] == f"otel:{TRACE}:00f067aa0ba902b7"
    assert (rec["messages"][0]["text"], rec["response_text"]) == ("structured, not a JSON string", "ok")
    assert rec["attributes"]["gen_ai.request.stream"] == "true"


def test_whole_document_array_and_snake_case_variants():
    one = request(span("2000000000000001", CHAT))
    pretty = json.dumps(one, indent=2)
    array = json.dumps([one, request(span("2000000000000002", CHAT))], indent=1)
    snake = {"resource_spans": [{"resource": {"attributes": [{"key": "service.name",
                                                               "value": {"string_value": "svc"}}]},
                                 "scope_spans": [{"spans": [{
                                     "trace_id": TRACE, "span_id": "2000000000000003", "name": "chat",
                                     "start_time_unix_nano": _ns(T0), "end_time_unix_nano": _ns("2026-10-01T09:00:02Z"),
                                     "attributes": [{"key": k, "value": {"string_value": v} if isinstance(v, str)
                                                     else {"int_value": str(v)}}
                                                    for k, v in {"gen_ai.operation.name": "chat",
                                                                 "gen_ai.request.model": "gpt-4o",
                                                                 "gen_ai.usage.output_tokens": 5}.items()]}]}]}]}
    assert [type(i).__name__ for i in parse(pretty)] == ["dict"]
    assert [i["source_locator"] for i in parse(array)] == ["index:0/span:2000000000000001",
                                                           "index:1/span:2000000000000002"]
    (rec,) = parse(json.dumps(snake))
    assert (rec["model_requested"], rec["output_tokens"], rec["service"], rec["latency_ms"]) == ("gpt-4o", 5, "svc",
                                                                                                 2000.0)
    fmt = sniff_format(pretty.encode(), "x.json")
    assert fmt is not None and fmt.name == "otlp_json"


def test_openinference_attributes_inside_otlp_are_delegated():
    oi = {"openinference.span.kind": "LLM", "llm.model_name": "gpt-4o-2024-08-06", "llm.provider": "openai",
          "llm.input_messages.0.message.role": "user", "llm.input_messages.0.message.content": "hello",
          "llm.output_messages.0.message.role": "assistant", "llm.output_messages.0.message.content": "hi there",
          "llm.token_count.prompt": 5, "llm.token_count.completion": 2}
    chain = {"openinference.span.kind": "CHAIN", "input.value": "hello"}
    rec, skipped = parse(lines(request(span("3000000000000001", oi), span("3000000000000002", chain))))
    assert (rec["model_returned"], rec["messages"][0]["text"], rec["response_text"], rec["input_tokens"]) == (
        "gpt-4o-2024-08-06", "hello", "hi there", 5)
    assert rec["trace_id"] == f"otel:{TRACE}:3000000000000001"
    assert "CHAIN" in skipped.reason


def test_bad_records_are_quarantined_and_the_rest_kept(store, tmp_path):
    no_start = span("4000000000000002", CHAT)
    del no_start["startTimeUnixNano"]
    bad_nanos = span("4000000000000003", CHAT)
    bad_nanos["startTimeUnixNano"] = "yesterday"
    text = (
        json.dumps(request(span("4000000000000001", CHAT))) + "\n"
        + '{"resourceSpans": [\n'  # truncated line
        + json.dumps({"hello": "world"}) + "\n"
        + json.dumps(request(no_start, bad_nanos)) + "\n"
    )
    items = parse(text)
    q = [i for i in items if isinstance(i, Quarantined)]
    assert [i.locator for i in q] == ["line:2", "line:3", "line:4/span:4000000000000002",
                                      "line:4/span:4000000000000003"]
    assert "malformed JSON" in q[0].reason and "no resourceSpans" in q[1].reason
    assert "no start time" in q[2].reason and "nanoseconds" in q[3].reason
    p = tmp_path / "mixed.jsonl"
    p.write_text(text)
    f = ingest(store, [str(p)], enricher=False).files[0]
    assert (f.read, f.stored, f.quarantined) == (5, 1, 4) and f.reconciles


def test_sample_files_ingest_cleanly(store):
    paths = [REPO / "sample_logs" / "otel_genai_spans.jsonl", REPO / "sample_logs" / "otel_openllmetry_spans.jsonl"]
    s = ingest(store, [str(p) for p in paths], enricher=False)
    got = [(f.format, f.read, f.stored, f.skipped, f.quarantined) for f in s.files]
    assert got == [("otlp_json", 9, 5, 4, 0), ("otlp_json", 6, 4, 2, 0)]
    df = store.scan().collect()
    assert df["model_requested"].null_count() == 0 and df["prompt_text"].null_count() == 0
    dates = sorted(df["timestamp"].dt.date().unique().to_list())
    assert dates[0] >= dt.date(2026, 10, 1) and dates[-1] <= dt.date(2026, 10, 7)


# ---------------------------------------------------------------- optional: shared OpenInference-repo GenAI fixtures


def _fixture_request(path: Path, span_id: str) -> dict:
    attrs = json.loads(path.read_text())
    return request(span(span_id, attrs, name=path.stem))


@pytest.mark.shared
def test_shared_genai_fixtures_wrapped_as_spans(store, tmp_path):
    base = shared_path("formats", "openinference", "fixtures")
    names = ["otel_genai_client_span_tool_calls.json", "otel_genai_deprecated_client_span_tool_calls.json",
             "otel_genai_tool_execution_span.json"]
    p = tmp_path / "wrapped.jsonl"
    p.write_text(lines(*[_fixture_request(base / n, f"{i + 1:016x}") for i, n in enumerate(names)]))
    f = ingest(store, [str(p)], enricher=False).files[0]
    assert (f.read, f.stored, f.skipped, f.quarantined) == (3, 2, 1, 0) and f.reconciles
    df = store.scan().collect().sort("trace_id")
    for row in df.iter_rows(named=True):
        assert (row["model_requested"], row["model_returned"]) == ("gpt-4", "gpt-4-0613")
        assert row["prompt_text"] == "Weather in Paris?"
        assert row["response_text"].startswith("The weather in Paris is currently rainy")
        assert (row["input_tokens"], row["output_tokens"], row["stop_reason"]) == (97, 52, "end_turn")
        assert [m["role"] for m in row["messages"]] == ["user", "assistant", "tool"]


def test_anthropic_sdk_own_span_stop_reason_and_cache_write():
    """The anthropic SDK's built-in spans name the stop reason and the cache creation count their own way."""
    from tracelens.ingest.spans import genai_fields

    fields, _ = genai_fields({"gen_ai.operation.name": "chat", "gen_ai.provider.name": "anthropic",
                              "gen_ai.request.model": "claude-haiku-4-5", "anthropic.message.stop_reason": "tool_use",
                              "gen_ai.usage.input_tokens": 1645, "gen_ai.usage.cache_write.input_tokens": 1536,
                              "gen_ai.usage.cache_read.input_tokens": 0, "gen_ai.usage.output_tokens": 28})
    assert fields["stop_reason_raw"] == "tool_use" and fields["stop_reason"] == "tool_use"
    assert (fields["input_tokens"], fields["cache_creation_tokens"], fields["cache_read_tokens"]) == (109, 1536, 0)


def _scope_span(sid: str, scope: str, attrs: dict, start: int, end: int, error: bool = False) -> dict:
    return {"scope": {"name": scope}, "spans": [{
        "traceId": sid * 4, "spanId": sid, "name": "chat", "startTimeUnixNano": str(start),
        "endTimeUnixNano": str(end), "status": {"code": 2 if error else 1},
        "attributes": [{"key": k, "value": {"intValue": str(v)} if isinstance(v, int) else {"stringValue": v}}
                       for k, v in attrs.items()]}]}


def _export_request(*scope_spans: dict) -> dict:
    return {"resourceSpans": [{"resource": {"attributes": []}, "scopeSpans": list(scope_spans)}]}


SDK = "com.anthropic.sdk.python"
LIB = "opentelemetry.instrumentation.anthropic"
NS0 = 1_796_627_873_000_000_000


def test_one_call_traced_twice_in_a_request_is_one_trace():
    from tracelens.ingest.formats.otlp import iter_request

    base = {"gen_ai.operation.name": "chat", "gen_ai.provider.name": "anthropic",
            "gen_ai.request.model": "claude-haiku-4-5"}
    sdk = _scope_span("a" * 16, SDK, {**base, "gen_ai.response.id": "msg_1", "anthropic.message.stop_reason": "end_turn",
                                "anthropic.request.id": "req_1", "http.response.status_code": 200,
                                "gen_ai.usage.input_tokens": 5, "gen_ai.usage.output_tokens": 7}, NS0 + 10, NS0 + 90)
    lib = _scope_span("b" * 16, LIB, {**base, "gen_ai.response.id": "msg_1", "gen_ai.response.finish_reasons": "stop",
                                "gen_ai.input.messages": '[{"role": "user", "parts": [{"type": "text", "content": "hi"}]}]',
                                "gen_ai.usage.input_tokens": 5, "gen_ai.usage.output_tokens": 7}, NS0, NS0 + 100)
    # a failed call: no response id on either span
    sdk_err = _scope_span("c" * 16, SDK, base, NS0 + 210, NS0 + 290, error=True)
    lib_err = _scope_span("d" * 16, LIB, {**base, "gen_ai.input.messages":
                                    '[{"role": "user", "parts": [{"type": "text", "content": "boom"}]}]'},
                    NS0 + 200, NS0 + 300, error=True)
    items = list(iter_request(_export_request(sdk, lib, sdk_err, lib_err), "line:1"))
    traces = [i for i in items if isinstance(i, dict)]
    skipped = [i for i in items if isinstance(i, Skipped)]
    assert [t["attributes"]["otel.scope"] for t in traces] == [LIB, LIB] and len(skipped) == 2
    ok = traces[0]
    assert (ok["stop_reason_raw"], ok["http_status"], ok["attributes"]["anthropic.request.id"]) == ("end_turn", 200,
                                                                                                   "req_1")
    assert ok["trace_id"] == f"otel:{'b' * 16 * 4}:{'b' * 16}" and ok["messages"]
    assert ok["attributes"]["otel.merged_span_ids"] == "a" * 16
    assert "the same call (response msg_1)" in skipped[0].reason and "b" * 16 in skipped[0].reason
    assert traces[1]["status"] == "error" and traces[1]["attributes"]["otel.merged_span_ids"] == "c" * 16


def test_spans_not_certainly_one_call_stay_apart():
    from tracelens.ingest.formats.otlp import iter_request

    base = {"gen_ai.operation.name": "chat", "gen_ai.provider.name": "anthropic",
            "gen_ai.request.model": "claude-haiku-4-5"}
    content = {"gen_ai.input.messages": '[{"role": "user", "parts": [{"type": "text", "content": "hi"}]}]'}
    # same response id, but both hold content (e.g. two instrumentations): neither is dropped
    both = [_scope_span(c * 16, LIB, {**base, **content, "gen_ai.response.id": "msg_2"}, NS0, NS0 + 100) for c in "ef"]
    # a failed call's SDK span inside two failed content spans: which one it belongs to is unknown
    sdk_err = _scope_span("1" * 16, SDK, base, NS0 + 210, NS0 + 290, error=True)
    outer = [_scope_span(c * 16, LIB, {**base, **content}, NS0 + 200, NS0 + 300, error=True) for c in "23"]
    items = list(iter_request(_export_request(*both, sdk_err, *outer), "line:1"))
    assert all(isinstance(i, dict) for i in items) and len(items) == 5
