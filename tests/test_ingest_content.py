"""tracelens.ingest.content: prompts, responses and parameters in whatever shape an SDK logged them."""

from __future__ import annotations

import datetime as dt
import json

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tracelens.ingest.content import (
    as_dict,
    conversation,
    fill,
    first,
    maybe_json,
    ms_between,
    nullish,
    params_fields,
    provider_name,
    request_body,
    response_fields,
    split_system,
    string_list,
    system_text,
)


def test_small_value_helpers():
    assert maybe_json('{"a": 1}') == {"a": 1} and maybe_json("[1]") == [1] and maybe_json('"s"') == "s"
    assert maybe_json("{broken") == "{broken" and maybe_json("plain") == "plain" and maybe_json(3) == 3
    assert as_dict('{"a": 1}') == {"a": 1} and as_dict("[1]") == {} and as_dict(None) == {}
    assert all(nullish(v) for v in (None, "", " null ", "None", "undefined", "NaN"))
    assert not any(nullish(v) for v in (0, False, "0", "text", [], {}))
    assert first(None, "null", "", 0, "x") == 0 and first(None, "none") is None
    assert fill({"a": None, "b": [], "c": 1}, {"a": 2, "b": [3], "c": 9}, {"a": 4}) == {"a": 2, "b": [3], "c": 1}
    t0 = dt.datetime(2026, 10, 1, tzinfo=dt.UTC)
    assert ms_between(t0, t0 + dt.timedelta(seconds=1.5)) == 1500.0
    assert ms_between(t0 + dt.timedelta(seconds=1), t0) is None and ms_between(None, t0) is None
    assert string_list('["a", 1, null, {"b": 2}]') == ["a", "1", '{"b":2}'] and string_list("END") == ["END"]
    assert string_list([]) is None and string_list("null") is None and string_list(5) is None


def test_provider_names():
    cases = {"aws.bedrock": "bedrock", "gcp.vertex_ai": "vertex", "Anthropic": "anthropic", "openai.responses": "openai",
             "az.ai.inference": "azure", "gcp.gemini": "google", "mistral_ai": "mistral", "x_ai": "xai"}
    assert {k: provider_name(k) for k in cases} == cases
    assert provider_name(None) is None and provider_name("null") is None and provider_name(3) is None


def test_params_from_any_sdk_spelling():
    assert params_fields({"temperature": "0.2", "topP": 0.9, "topK": 40, "maxOutputTokens": 100, "seed": 7,
                          "stop": "END", "service_tier": "flex"}) == {
        "temperature": 0.2, "top_p": 0.9, "top_k": 40, "max_tokens": 100, "seed": 7, "stop_sequences": ["END"],
        "service_tier": "flex"}
    assert params_fields({"max_tokens": -1})["max_tokens"] is None  # -1 means "unset"
    nested = params_fields({"model": "gemini", "generation_config": {"temperature": 1, "max_output_tokens": 9}})
    assert (nested["temperature"], nested["max_tokens"]) == (1.0, 9)
    assert params_fields(None) == {} and params_fields({}) == {}


def test_system_text_and_split_system():
    assert system_text("Be brief.") == "Be brief."
    assert system_text({"parts": [{"text": "A"}, {"text": "B"}]}) == "A\n\nB"
    assert system_text('[{"type": "text", "text": "json"}]') == "json" and system_text("null") is None
    msgs = [{"role": "system", "text": "S1"}, {"role": "user", "text": "q"}, {"role": "system", "text": "S2"}]
    assert split_system(msgs) == ("S1\n\nS2", [{"role": "user", "text": "q"}])
    assert split_system([]) == (None, [])


def test_request_body_only_for_complete_provider_bodies():
    body = {"model": "gpt-4o", "messages": [{"role": "user", "content": "hi"}]}
    text = json.dumps(body)
    assert request_body(text) == text  # kept exactly as logged
    assert request_body(body) == '{"model":"gpt-4o","messages":[{"role":"user","content":"hi"}]}'
    assert request_body({"messages": body["messages"]}) is None  # no model
    assert request_body({"model": "m", "messages": []}) is None
    assert request_body({"model": "m", "messages": [{"role": "user"}]}) is None
    assert request_body("hi") is None


@pytest.mark.parametrize(
    "value,system,turns",
    [
        ("plain prompt", None, [("user", "plain prompt")]),
        (json.dumps("json string prompt"), None, [("user", "json string prompt")]),
        ({"messages": [{"role": "developer", "content": "Rules."}, {"role": "user", "content": "Q"}]}, "Rules.",
         [("user", "Q")]),
        ({"model": "gemini-2.0-flash", "config": {"system_instruction": "Greet."},
          "contents": [{"role": "user", "parts": [{"text": "hi"}]},
                       {"role": "model", "parts": [{"function_call": {"name": "hello", "args": {}}}]},
                       {"role": "user", "parts": [{"function_response": {"name": "hello", "response": {"ok": 1}}}]}]},
         "Greet.", [("user", "hi"), ("assistant", None), ("tool", '{"ok":1}')]),
        ([{"type": "human", "content": "lc question"}, {"type": "ai", "content": "lc answer",
                                                          "tool_calls": [{"name": "t", "args": {"a": 1}, "id": "c1"}]}],
         None, [("user", "lc question"), ("assistant", "lc answer")]),
        ([{"content": "Weather?", "role": "user"},
          {"type": "function_call", "call_id": "call_1", "name": "wx", "arguments": "{}"},
          {"type": "function_call_output", "call_id": "call_1", "output": "sunny"}],
         None, [("user", "Weather?"), ("assistant", None), ("tool", "sunny")]),
        ({"system": "Sys", "prompt": "vercel prompt"}, "Sys", [("user", "vercel prompt")]),
        ([{"role": "user", "content": [{"type": "text", "text": "v"}, {"type": "image", "image": "data:..."}]},
          {"role": "assistant", "content": [{"type": "tool-call", "toolCallId": "c", "toolName": "t", "input": {}}]},
          {"role": "tool", "content": [{"type": "tool-result", "toolCallId": "c", "toolName": "t", "output": "r"}]}],
         None, [("user", "v"), ("assistant", None), ("tool", "r")]),
        ({"args": ["What is X?"], "kwargs": {}}, None, [("user", "What is X?")]),
        ({"unrecognised": {"shape": 1}}, None, [("user", '{"unrecognised":{"shape":1}}')]),
        (None, None, []),
    ],
    ids=["text", "json-text", "openai-body", "gemini", "langchain", "responses", "vercel-prompt", "vercel-parts",
         "decorator-args", "unknown", "none"],
)
def test_conversation_shapes(value, system, turns):
    sp, msgs = conversation(value)
    assert sp == system
    assert [(m["role"], m["text"]) for m in msgs] == turns


@pytest.mark.parametrize(
    "value,text,calls,stop",
    [
        ("plain answer", "plain answer", None, None),
        ({"id": "chatcmpl-1", "model": "gpt-4o", "choices": [{"finish_reason": "length", "message": {
            "role": "assistant", "content": "cut"}}]}, "cut", [], "max_tokens"),
        ({"index": 0, "message": {"role": "assistant", "content": "choice"}, "finish_reason": "stop"}, "choice", [],
         "end_turn"),
        ({"content": [{"type": "tool_use", "id": "tu", "name": "f", "input": {"x": 1}}], "role": "assistant"}, "",
         [("tu", "f", '{"x":1}')], None),
        ({"candidates": [{"content": {"role": "model", "parts": [{"text": "gem", "thought": False}]},
                          "finish_reason": 2}]}, "gem", [], "max_tokens"),
        ({"content": {"parts": [{"function_call": {"name": "g", "args": {}}}], "role": "model"},
          "finish_reason": "STOP"}, "", [(None, "g", "{}")], "end_turn"),
        ({"id": "resp_1", "object": "response", "model": "gpt-4.1", "status": "completed", "output": [
            {"type": "function_call", "call_id": "c9", "name": "wx", "arguments": "{}"}]}, "", [("c9", "wx", "{}")],
         "tool_use"),
        ([{"role": "assistant", "parts": [{"type": "text", "content": "otel"}], "finish_reason": "stop"}], "otel", [],
         "end_turn"),
        ([{"toolCallId": "c", "toolName": "getWeather", "input": '{"city":"SF"}'}], "", [("c", "getWeather",
                                                                                          '{"city":"SF"}')], None),
        ({"role": "assistant", "content": "", "additional_kwargs": {"tool_calls": [
            {"id": "c2", "function": {"name": "s", "arguments": "{}"}, "type": "function"}]},
          "response_metadata": {"finish_reason": "tool_calls"}}, "", [("c2", "s", "{}")], "tool_use"),
    ],
    ids=["text", "openai-completion", "openai-choice", "anthropic-blocks", "gemini-enum", "adk", "responses",
         "otel-parts", "vercel-calls", "langchain-ai"],
)
def test_response_shapes(value, text, calls, stop):
    r = response_fields(value)
    assert r.get("response_text") == text
    if calls is not None:
        assert [(c["id"], c["name"], c["arguments"]) for c in r["tool_calls"]] == calls
    assert r.get("stop_reason") == stop


# ---------------------------------------------------------------- the content readers never raise

_KEYS = st.sampled_from(["role", "content", "parts", "type", "text", "messages", "contents", "tool_calls", "function",
                         "name", "arguments", "id", "message", "choices", "candidates", "output", "input",
                         "finish_reason", "toolCallId", "function_call", "kwargs", "args", "lc", "data", "system",
                         "config", "prompt", "model", "object", "response", "tool_use_id", "call_id"])
_JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=6)
    | st.sampled_from(["user", "assistant", "tool_call", "tool_use", "function_call", "message", '[{"type":"text"}]']),
    lambda c: st.lists(c, max_size=4) | st.dictionaries(_KEYS, c, max_size=5),
    max_leaves=20,
)


@settings(max_examples=120, deadline=None, derandomize=True, database=None, suppress_health_check=list(HealthCheck))
@given(_JSON)
def test_content_readers_accept_any_json(value):
    for v in (value, json.dumps(value)):
        system, msgs = conversation(v)
        assert system is None or isinstance(system, str)
        assert all(isinstance(m["role"], str) and (m["text"] is None or isinstance(m["text"], str)) for m in msgs)
        r = response_fields(v)
        assert r.get("response_text") is None or isinstance(r["response_text"], str)


def test_time_field_reads_a_time_names_the_field_and_keeps_null():
    from tracelens.ingest.base import RecordError
    from tracelens.ingest.content import time_field

    assert time_field(None, "startTime", "UTC") is None and time_field("", "startTime", "UTC") is None
    assert time_field("2026-11-18T15:00:00+01:00", "startTime", "UTC") == dt.datetime(2026, 11, 18, 14, tzinfo=dt.UTC)
    assert time_field("2026-11-18 15:00:00", "endTime", "Europe/Berlin") == dt.datetime(2026, 11, 18, 14, tzinfo=dt.UTC)
    with pytest.raises(RecordError, match="^endTime: "):
        time_field("yesterday-ish", "endTime", "UTC")


def test_request_settings_takes_set_parameters_and_tools():
    from tracelens.ingest.content import request_settings

    out = request_settings({"temperature": 0.2, "max_tokens": 100, "functions": [{"name": "f"}], "top_p": None})
    assert out["temperature"] == 0.2 and out["max_tokens"] == 100 and "top_p" not in out
    assert json.loads(out["tool_definitions"]) == [{"name": "f"}]
    assert request_settings(None) == {} and "tool_definitions" not in request_settings({"tools": []})
