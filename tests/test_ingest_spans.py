"""tracelens.ingest.spans: one span (OTLP or OpenInference export) to one trace, the same whichever export."""

from __future__ import annotations

import datetime as dt

import pytest

from tracelens.ingest.base import RecordError, Skipped
from tracelens.ingest.spans import (
    SpanInfo,
    attribute_fields,
    flatten,
    genai_kind,
    indexed,
    norm_id,
    openinference_kind,
    span_record,
    token_fields,
)

T0 = dt.datetime(2026, 10, 1, 8, 0, tzinfo=dt.UTC)


def test_norm_id_reads_hex_and_protobuf_base64():
    assert norm_id("0xABCDEF0123456789") == "abcdef0123456789"
    assert norm_id("q83vASNFZ4k=") == "abcdef0123456789"  # base64 of 8 bytes (protobuf JSON)
    assert norm_id("not-an-id") == "not-an-id" and norm_id("null") is None and norm_id(None) is None


def test_flatten_and_indexed():
    flat = flatten({"llm": {"input_messages": [{"message": {"role": "user", "content": "hi"}}], "model_name": "m"},
                    "gen_ai.input.messages": [{"role": "user"}], "tags": ["a", "b"]})
    assert flat == {"llm.input_messages.0.message.role": "user", "llm.input_messages.0.message.content": "hi",
                    "llm.model_name": "m", "gen_ai.input.messages": [{"role": "user"}], "tags": ["a", "b"]}
    groups = indexed({"p.1.text": "b", "p.0.text": "a", "p.0": "whole", "other": 1}, "p")
    assert groups == [{"text": "a", "": "whole"}, {"text": "b"}]


def test_token_fields_take_cached_tokens_out_of_the_input_total():
    fields, extra = token_fields("openai", "gpt-4o", 100, 5, 60, None)
    assert fields == {"input_tokens": 40, "output_tokens": 5, "cache_read_tokens": 60, "cache_creation_tokens": None}
    assert extra == {"input_tokens_reported": "100"}
    fields, extra = token_fields("anthropic", "claude", 10, 5, 60, None)  # already uncached: kept
    assert fields["input_tokens"] == 10 and extra == {}


def test_which_spans_are_llm_calls():
    assert genai_kind({"gen_ai.operation.name": "chat"}) == (True, None)
    assert genai_kind({"gen_ai.operation.name": "execute_tool"})[0] is False
    assert genai_kind({"llm.request.type": "chat"}) == (True, None)
    assert genai_kind({"gen_ai.prompt.0.content": "hi"}) == (True, None)
    assert genai_kind({"http.method": "GET"}) == (False, "no gen_ai.* attributes (not a GenAI span)")
    assert openinference_kind({"openinference.span.kind": "llm"}) == "LLM"
    assert openinference_kind({}, "chain") == "CHAIN" and openinference_kind({}, "INTERNAL") is None


def test_span_record_maps_an_llm_span_and_skips_the_rest():
    attrs = {"gen_ai.operation.name": "chat", "gen_ai.provider.name": "openai", "gen_ai.request.model": "gpt-4o",
             "gen_ai.input.messages": '[{"role": "user", "parts": [{"type": "text", "content": "hi"}]}]',
             "gen_ai.usage.input_tokens": 3, "session.id": "s1", "custom.flag": True}
    info = SpanInfo("t" * 32, "s" * 16, name="chat gpt-4o", start=T0, end=T0 + dt.timedelta(milliseconds=250),
                    resource={"service.name": "unknown_service:python"})
    rec = span_record(attrs, info, "span:1")
    assert (rec["trace_id"], rec["provider"], rec["model_requested"], rec["session_id"]) == (
        f"otel:{'t' * 32}:{'s' * 16}", "openai", "gpt-4o", "s1")
    assert rec["messages"][0]["text"] == "hi" and rec["latency_ms"] == 250.0 and rec["status"] == "ok"
    assert rec["service"] is None  # the SDK's default name is no name
    assert rec["attributes"]["custom.flag"] == "true" and rec["attributes"]["otel.span_name"] == "chat gpt-4o"
    tool = span_record({"openinference.span.kind": "TOOL"}, info, "span:2")
    assert isinstance(tool, Skipped) and "OpenInference TOOL span" in tool.reason
    with pytest.raises(RecordError, match="has no start time"):
        span_record(attrs, SpanInfo("t", "s", name="x"), "span:3")


def test_attribute_fields_dispatch_on_the_convention():
    fields, _ = attribute_fields({"llm": {"model_name": "claude-haiku-4-5", "token_count": {"prompt": 4}}})
    assert (fields["model_returned"], fields["input_tokens"]) == ("claude-haiku-4-5", 4)
    fields, _ = attribute_fields({"gen_ai.request.model": "gpt-4o"})
    assert fields["model_requested"] == "gpt-4o"
    assert attribute_fields({"anything": 1}) == ({}, {}) and attribute_fields({}) == ({}, {})
