"""One meaning of ``input_tokens`` whatever the importer (docs/schema.md, "Tokens").

The same cached call is rendered the way each source writes it, and every
importer must store the prompt tokens neither read from nor written to the
cache, with the cached ones beside them: each token counted once.
"""

from __future__ import annotations

import io
import json
import sqlite3

import pytest

from tests.test_formats_simonw_llm import SCHEMA as LLM_SCHEMA
from tracelens.ingest.base import IngestOptions, Source
from tracelens.ingest.registry import get_format

# An Anthropic call: 15 uncached input tokens, 100 read from the cache, 40 written to it, 20 output.
ANTHROPIC = (15, 100, 40, 20)
# An OpenAI call: prompt_tokens 1200 of which 1000 were cached (OpenAI has no cache-write count), 30 output.
OPENAI = (200, 1000, None, 30)

START, END = "2026-10-01T09:00:00.000000+00:00", "2026-10-01T09:00:01.250000+00:00"
MODEL_A, MODEL_O = "claude-sonnet-4-5-20250929", "gpt-4o-2024-08-06"


def parse(fmt: str, raw: bytes, path: str = "mem") -> list[dict]:
    return [r for r in get_format(fmt).parse(Source(path, io.BytesIO(raw), IngestOptions(), raw[:262144]))
            if isinstance(r, dict)]


def jsonl(*objs) -> bytes:
    return "".join(json.dumps(o) + "\n" for o in objs).encode()


def anthropic_message(usage: dict | None) -> dict:
    m = {"id": "msg_01Cached", "type": "message", "role": "assistant", "model": MODEL_A,
         "content": [{"type": "text", "text": "Cached answer."}], "stop_reason": "end_turn", "stop_sequence": None}
    if usage is not None:
        m["usage"] = usage
    return m


def openai_completion(usage: dict) -> dict:
    return {"id": "chatcmpl-Cached", "object": "chat.completion", "created": 1790845200, "model": MODEL_O,
            "choices": [{"index": 0, "message": {"role": "assistant", "content": "Cached answer."},
                         "finish_reason": "stop"}], "usage": usage}


ANTHROPIC_USAGE = {"input_tokens": 15, "output_tokens": 20, "cache_read_input_tokens": 100,
                   "cache_creation_input_tokens": 40}
OPENAI_USAGE = {"prompt_tokens": 1200, "completion_tokens": 30, "total_tokens": 1230,
                "prompt_tokens_details": {"cached_tokens": 1000}}


# ------------------------------------------------------------------ renderings per importer


def _otlp(provider: str, model: str, inp: int, out: int, read: int, write: int | None) -> bytes:
    def v(x):
        return {"intValue": str(x)} if isinstance(x, int) else {"stringValue": x}

    attrs = {"gen_ai.operation.name": "chat", "gen_ai.provider.name": provider, "gen_ai.request.model": model,
             "gen_ai.response.model": model, "gen_ai.usage.input_tokens": inp, "gen_ai.usage.output_tokens": out,
             "gen_ai.usage.cache_read.input_tokens": read}
    if write is not None:
        attrs["gen_ai.usage.cache_creation.input_tokens"] = write
    span = {"traceId": "0af7651916cd43dd8448eb211c80319c", "spanId": "b7ad6b7169203331", "name": f"chat {model}",
            "kind": 3, "startTimeUnixNano": "1790845200000000000", "endTimeUnixNano": "1790845201250000000",
            "attributes": [{"key": k, "value": v(x)} for k, x in attrs.items()], "status": {}}
    return jsonl({"resourceSpans": [{"resource": {"attributes": []},
                                     "scopeSpans": [{"scope": {"name": "test"}, "spans": [span]}]}]})


def _openinference(provider: str, model: str, inp: int, out: int, read: int, write: int | None) -> bytes:
    attrs = {"openinference.span.kind": "LLM", "llm.provider": provider, "llm.model_name": model,
             "llm.input_messages.0.message.role": "user", "llm.input_messages.0.message.content": "Hi",
             "llm.output_messages.0.message.role": "assistant",
             "llm.output_messages.0.message.content": "Cached answer.",
             "llm.token_count.prompt": inp, "llm.token_count.completion": out,
             "llm.token_count.prompt_details.cache_read": read}
    if write is not None:
        attrs["llm.token_count.prompt_details.cache_write"] = write
    return json.dumps([{"name": "ChatCompletion", "context": {"trace_id": "87f513ceef7b116be07a61449019a2bd",
                                                               "span_id": "f64551fcd6f07823"},
                        "span_kind": "LLM", "parent_id": None, "start_time": START, "end_time": END,
                        "status_code": "OK", "status_message": "", "attributes": attrs, "events": []}]).encode()


def _litellm(provider: str, model: str, response: dict, prompt_tokens: int, out: int) -> bytes:
    return jsonl({"id": "chatcmpl-ll-1", "call_type": "acompletion", "stream": False, "status": "success",
                  "custom_llm_provider": provider, "prompt_tokens": prompt_tokens, "completion_tokens": out,
                  "total_tokens": prompt_tokens + out, "startTime": 1790845200.0, "endTime": 1790845201.25,
                  "completionStartTime": 1790845201.25, "model": model, "metadata": {},
                  "messages": [{"role": "user", "content": "Hi"}], "model_parameters": {}, "response": response})


def _langsmith(name: str, provider: str, outputs: dict) -> bytes:
    run = "1f0a2b3c-4d5e-4f60-8a7b-9c0d1e2f3a4b"
    return jsonl({"id": run, "name": name, "run_type": "llm", "start_time": START, "end_time": END,
                  "trace_id": run, "dotted_order": "20261001T090000000000Z" + run,
                  "inputs": {"messages": [{"role": "user", "content": "Hi"}]},
                  "extra": {"metadata": {"ls_provider": provider}}, "outputs": outputs})


def _simonw(tmp_path, model: str, resolved: str, inp: int, out: int, details: dict) -> tuple[bytes, str]:
    path = tmp_path / "logs.db"
    conn = sqlite3.connect(path)
    conn.executescript(LLM_SCHEMA)
    conn.execute("insert into responses values (" + ", ".join("?" * 17) + ")",
                 ("01k6a0c1r1cached0000000000", model, "Hi", None, None, None, "Cached answer.", None, None, 1250,
                  "2026-10-01T09:00:00", inp, out, json.dumps(details), None, resolved, None))
    conn.commit()
    conn.close()
    return path.read_bytes(), str(path)


ANTHROPIC_CASES = {
    "anthropic_log": lambda tmp: ("anthropic_log", jsonl({
        "timestamp": START, "request": {"model": MODEL_A, "max_tokens": 100, "messages": [{"role": "user", "content": "Hi"}]},
        "response": anthropic_message(ANTHROPIC_USAGE)})),
    # OTel GenAI: "input_tokens SHOULD include all types of input tokens, including cached tokens"
    "otlp_json": lambda tmp: ("otlp_json", _otlp("anthropic", MODEL_A, 155, 20, 100, 40)),
    "openinference": lambda tmp: ("openinference", _openinference("anthropic", MODEL_A, 155, 20, 100, 40)),
    # LiteLLM reports Anthropic usage OpenAI-style: prompt_tokens = 15 + 100 + 40
    "litellm_payload": lambda tmp: ("litellm_payload", _litellm("anthropic", MODEL_A, {
        "id": "chatcmpl-ll-1", "object": "chat.completion", "created": 1790845200, "model": MODEL_A,
        "choices": [{"index": 0, "message": {"role": "assistant", "content": "Cached answer."}, "finish_reason": "stop"}],
        "usage": {"prompt_tokens": 155, "completion_tokens": 20, "total_tokens": 175,
                  "prompt_tokens_details": {"cached_tokens": 100}, "cache_read_input_tokens": 100,
                  "cache_creation_input_tokens": 40}}, 155, 20)),
    # wrap_anthropic: the Message plus LangChain-style usage_metadata, whose input_tokens is the total
    "langsmith_runs": lambda tmp: ("langsmith_runs", _langsmith("ChatAnthropic", "anthropic", {
        **anthropic_message(None), "usage_metadata": {"input_tokens": 155, "output_tokens": 20, "total_tokens": 175,
                                                      "input_token_details": {"cache_read": 100, "cache_creation": 40}}})),
    "simonw_llm": lambda tmp: ("simonw_llm", _simonw(tmp, "claude-sonnet-4.5", MODEL_A, 15, 20,
                                                    {"cache_read_input_tokens": 100, "cache_creation_input_tokens": 40})),
}

OPENAI_CASES = {
    "openai_log": lambda tmp: ("openai_log", jsonl({
        "timestamp": START, "request": {"model": "gpt-4o", "messages": [{"role": "user", "content": "Hi"}]},
        "response": openai_completion(OPENAI_USAGE)})),
    "otlp_json": lambda tmp: ("otlp_json", _otlp("openai", MODEL_O, 1200, 30, 1000, None)),
    "openinference": lambda tmp: ("openinference", _openinference("openai", MODEL_O, 1200, 30, 1000, None)),
    "litellm_payload": lambda tmp: ("litellm_payload", _litellm("openai", MODEL_O, openai_completion(OPENAI_USAGE),
                                                                1200, 30)),
    "langsmith_runs": lambda tmp: ("langsmith_runs", _langsmith("ChatOpenAI", "openai", openai_completion(OPENAI_USAGE))),
    "simonw_llm": lambda tmp: ("simonw_llm", _simonw(tmp, "gpt-4o", MODEL_O, 1200, 30,
                                                    {"prompt_tokens_details": {"cached_tokens": 1000}})),
}


def _one(case, tmp_path) -> dict:
    fmt, data = case(tmp_path)
    raw, path = data if isinstance(data, tuple) else (data, "mem")
    (rec,) = parse(fmt, raw, path)
    return rec


@pytest.mark.parametrize("name", sorted(ANTHROPIC_CASES))
def test_cached_anthropic_call_counts_each_token_once(name, tmp_path):
    rec = _one(ANTHROPIC_CASES[name], tmp_path)
    got = (rec.get("input_tokens"), rec.get("cache_read_tokens"), rec.get("cache_creation_tokens"), rec.get("output_tokens"))
    assert got == ANTHROPIC


@pytest.mark.parametrize("name", sorted(OPENAI_CASES))
def test_cached_openai_call_counts_each_token_once(name, tmp_path):
    rec = _one(OPENAI_CASES[name], tmp_path)
    got = (rec.get("input_tokens"), rec.get("cache_read_tokens"), rec.get("cache_creation_tokens"), rec.get("output_tokens"))
    assert got == OPENAI


def test_a_total_too_small_to_hold_the_cache_is_kept():
    # some Anthropic instrumentations put the API's own (uncached) count in the span total
    (rec,) = parse("otlp_json", _otlp("anthropic", MODEL_A, 15, 20, 100, 40))
    assert (rec["input_tokens"], rec["cache_read_tokens"], rec["cache_creation_tokens"]) == (15, 100, 40)
    assert "input_tokens_reported" not in (rec.get("attributes") or {})
