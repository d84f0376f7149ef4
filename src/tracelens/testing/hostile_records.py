"""Valid records of every ingest format, one builder per format, for the hostile-input corpus.

Each builder ``(rng, i, tag) -> dict`` makes record ``i`` of a file from a
seeded ``random.Random``: the same arguments always give the same record.
``tracelens.testing.hostile`` lays them out (JSONL, JSON array, CSV, Parquet,
SQLite, protobuf) and then damages the file.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import random
from typing import Any

T0 = dt.datetime(2026, 10, 1, 9, 0, tzinfo=dt.UTC)
WORDS = ("tent", "stove", "boots", "refund", "order", "weather", "trail", "map", "lamp", "rope", "pack", "river",
         "bike", "derailleur", "size", "colour", "warranty", "return", "delivery", "Norway", "Ø", "café", "数字", "🙂")


def _hex(tag: str, i: int, n: int) -> str:
    """``n`` hex digits unique to (tag, i): ids that never collide between the files of a corpus."""
    return hashlib.sha256(f"{tag}:{i}".encode()).hexdigest()[:n]


def _ts(i: int) -> dt.datetime:
    return T0 + dt.timedelta(minutes=7 * i)


def _iso(i: int) -> str:
    return _ts(i).isoformat().replace("+00:00", "Z")


def _text(rng: random.Random, n: int = 8) -> str:
    return " ".join(rng.choice(WORDS) for _ in range(n))


def _anthropic_log(rng: random.Random, i: int, tag: str) -> dict:
    return {
        "timestamp": _iso(i), "latency_ms": 400 + i, "request_id": f"req_{tag}{i:05d}",
        "metadata": {"user_id": f"u{i % 5}", "app": "hostile"},
        "request": {"model": "claude-sonnet-4-5", "max_tokens": 256, "system": "Be brief.",
                    "messages": [{"role": "user", "content": f"{_text(rng)} {i}"}]},
        "response": {"id": f"msg_{tag}{i:05d}", "type": "message", "role": "assistant",
                     "model": "claude-sonnet-4-5-20250929", "content": [{"type": "text", "text": _text(rng)}],
                     "stop_reason": "end_turn", "usage": {"input_tokens": 10 + i % 7, "output_tokens": 5}},
    }


def _chat_completion(rng: random.Random, i: int, tag: str) -> dict:
    return {"id": f"chatcmpl-{tag}{i:05d}", "object": "chat.completion", "created": int(_ts(i).timestamp()),
            "model": "gpt-4o-2024-08-06", "system_fingerprint": "fp_1",
            "choices": [{"index": 0, "message": {"role": "assistant", "content": _text(rng), "refusal": None},
                         "finish_reason": "stop"}],
            "usage": {"prompt_tokens": 12, "completion_tokens": 3}}


def _openai_log(rng: random.Random, i: int, tag: str) -> dict:
    return {"timestamp": _iso(i), "latency_ms": 300 + i, "request_id": f"req_{tag}{i:05d}",
            "metadata": {"user_id": f"u{i % 3}", "app": "hostile"},
            "request": {"model": "gpt-4o", "messages": [{"role": "system", "content": "Be brief."},
                                                        {"role": "user", "content": f"{_text(rng)} {i}"}]},
            "response": _chat_completion(rng, i, tag)}


def _openai_batch(rng: random.Random, i: int, tag: str) -> dict:
    return {"id": f"batch_req_{tag}{i:05d}", "custom_id": f"c-{tag}{i}",
            "response": {"status_code": 200, "request_id": f"req_b{tag}{i}", "body": _chat_completion(rng, i, tag)},
            "error": None}


def _openai_batch_input(rng: random.Random, i: int, tag: str) -> dict:
    return {"custom_id": f"c-{tag}{i}", "method": "POST", "url": "/v1/chat/completions",
            "body": {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": _text(rng)}], "max_tokens": 80}}


def _message(rng: random.Random, i: int, tag: str) -> dict:
    return {"id": f"msg_{tag}b{i:05d}", "type": "message", "role": "assistant", "model": "claude-haiku-4-5-20251001",
            "content": [{"type": "text", "text": _text(rng)}], "stop_reason": "end_turn", "stop_sequence": None,
            "usage": {"input_tokens": 20, "output_tokens": 9}}


def _anthropic_batch(rng: random.Random, i: int, tag: str) -> dict:
    return {"custom_id": f"t-{tag}{i}", "result": {"type": "succeeded", "message": _message(rng, i, tag)}}


def _anthropic_batch_requests(rng: random.Random, i: int, tag: str) -> dict:
    return {"custom_id": f"t-{tag}{i}", "params": {"model": "claude-haiku-4-5", "max_tokens": 200,
                                                   "messages": [{"role": "user", "content": _text(rng)}]}}


def _anthropic_batch_object(rng: random.Random, i: int, tag: str) -> dict:
    return {"id": f"msgbatch_{tag}{i:05d}", "type": "message_batch", "processing_status": "ended",
            "request_counts": {"processing": 0, "succeeded": 3, "errored": 0, "canceled": 0, "expired": 0},
            "ended_at": _iso(i + 1), "created_at": _iso(i), "expires_at": _iso(i + 200), "cancel_initiated_at": None}


def _anthropic_http(rng: random.Random, i: int, tag: str) -> dict:
    date = _ts(i).strftime("%a, %d %b %Y %H:%M:%S GMT")
    return {
        "request": {"method": "POST", "url": "https://api.anthropic.com/v1/messages",
                    "headers": {"content-type": "application/json", "anthropic-version": "2023-06-01",
                                "user-agent": "Anthropic/Python 0.82.0"},
                    "body": {"max_tokens": 512, "model": "claude-sonnet-4-5",
                             "messages": [{"role": "user", "content": _text(rng)}]}},
        "response": {"status_code": 200, "headers": {"date": date, "request-id": f"req_{tag}h{i:05d}"},
                     "body": {"id": f"msg_{tag}h{i:05d}", "type": "message", "role": "assistant",
                              "model": "claude-sonnet-4-5-20250929", "content": [{"type": "text", "text": _text(rng)}],
                              "stop_reason": "end_turn", "usage": {"input_tokens": 11, "output_tokens": 7}}},
    }


def _bedrock(rng: random.Random, i: int, tag: str) -> dict:
    return {"schemaType": "ModelInvocationLog", "schemaVersion": "1.0", "timestamp": _iso(i), "accountId": "111122223333",
            "region": "us-east-1", "requestId": f"{tag}-6f1d2c3b-{i:08d}", "operation": "Converse",
            "modelId": "us.anthropic.claude-3-5-sonnet-20241022-v2:0",
            "input": {"inputContentType": "application/json", "inputTokenCount": 9,
                      "inputBodyJson": {"messages": [{"role": "user", "content": [{"text": _text(rng)}]}],
                                        "inferenceConfig": {"maxTokens": 256}}},
            "output": {"outputContentType": "application/json", "outputTokenCount": 5,
                       "outputBodyJson": {"output": {"message": {"role": "assistant", "content": [{"text": _text(rng)}]}},
                                          "stopReason": "end_turn", "metrics": {"latencyMs": 900},
                                          "usage": {"inputTokens": 9, "outputTokens": 5}}}}


def _helicone(rng: random.Random, i: int, tag: str) -> dict:
    return {"response_id": f"{tag}-2b7e-{i:08d}", "response_created_at": _iso(i), "response_status": 200,
            "response_body": _chat_completion(rng, i, tag), "request_id": f"{tag}-8c1f-{i:08d}",
            "request_created_at": _iso(i), "request_user_id": f"cust-{i % 4}",
            "request_body": {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": _text(rng)}]},
            "request_properties": {"App": "hostile"}, "request_model": "gpt-4o-mini", "provider": "OPENAI",
            "delay_ms": 500 + i, "prompt_tokens": 12, "completion_tokens": 3, "costUSD": 0.0001}


def _langfuse_blob(rng: random.Random, i: int, tag: str) -> dict:
    t = _ts(i).strftime("%Y-%m-%d %H:%M:%S.%f")
    return {"id": f"{tag}-gen-{i:05d}", "trace_id": f"{tag}-trace-{i:05d}", "project_id": "p", "environment": "prod",
            "type": "GENERATION", "parent_observation_id": None, "start_time": t, "end_time": t, "name": "chat",
            "metadata": {}, "level": "DEFAULT", "status_message": None, "version": None,
            "input": [{"role": "user", "content": _text(rng)}], "output": {"role": "assistant", "content": _text(rng)},
            "provided_model_name": "gpt-4o-mini", "model_parameters": {"temperature": 0.3},
            "usage_details": {"input": 12, "output": 5, "total": 17}, "cost_details": {}, "completion_start_time": None,
            "total_cost": 0, "created_at": t, "updated_at": t, "tool_calls": [], "tool_definitions": {}}


def _langfuse_trace(rng: random.Random, i: int, tag: str) -> dict:
    tid = f"{tag}-lf-{i:05d}"
    base = {"traceId": tid, "startTime": _iso(i), "endTime": _iso(i), "projectId": "p", "level": "DEFAULT",
            "metadata": "{}", "usageDetails": {}, "costDetails": {}, "totalCost": 0}
    span = {**base, "id": f"{tid}-root", "type": "SPAN", "name": "turn", "parentObservationId": None}
    gen = {**base, "id": f"{tid}-gen", "type": "GENERATION", "name": "chat", "parentObservationId": f"{tid}-root",
           "model": "gpt-4o-mini", "modelParameters": {"temperature": 0.2},
           "input": [{"role": "user", "content": _text(rng)}], "output": {"role": "assistant", "content": _text(rng)},
           "usageDetails": {"input": 10, "output": 4, "total": 14}}
    return {"trace": {"id": tid, "projectId": "p", "name": "hostile", "timestamp": _iso(i), "userId": f"u{i % 3}",
                      "sessionId": f"s{i % 2}"}, "observations": [span, gen]}


def _langsmith(rng: random.Random, i: int, tag: str) -> dict:
    h = _hex(tag, i, 32)
    rid = f"{h[:8]}-{h[8:12]}-4{h[13:16]}-8{h[17:20]}-{h[20:]}"
    start = _ts(i)
    order = start.strftime("%Y%m%dT%H%M%S%fZ") + rid
    return {"id": rid, "name": "ChatAnthropic", "run_type": "llm", "start_time": start.isoformat(),
            "end_time": (start + dt.timedelta(seconds=1)).isoformat(), "trace_id": rid, "dotted_order": order,
            "session_name": "hostile", "inputs": {"messages": [{"role": "user", "content": _text(rng)}]},
            "outputs": {"generations": [[{"text": _text(rng), "type": "ChatGeneration"}]]},
            "extra": {"invocation_params": {"model": "claude-sonnet-4-5", "max_tokens": 256},
                      "metadata": {"ls_provider": "anthropic", "ls_model_name": "claude-sonnet-4-5"}}}


def _litellm(rng: random.Random, i: int, tag: str) -> dict:
    start = _ts(i).timestamp()
    return {"id": f"chatcmpl-{tag}l{i:05d}", "trace_id": f"{tag}-tr-{i}", "call_type": "acompletion", "stream": False,
            "response_cost": 1e-05, "status": "success", "custom_llm_provider": "openai", "total_tokens": 17,
            "prompt_tokens": 12, "completion_tokens": 5, "startTime": start, "endTime": start + 0.9,
            "completionStartTime": start + 0.9, "response_time": 0.9,
            "model_map_information": {"model_map_key": "gpt-4o-mini", "model_map_value": None}, "model": "gpt-4o-mini",
            "model_group": "g", "metadata": {"user_api_key_alias": "hostile"}, "end_user": f"cust-{i % 4}",
            "messages": [{"role": "user", "content": _text(rng)}],
            "response": {"id": f"chatcmpl-{tag}l{i:05d}", "object": "chat.completion", "model": "gpt-4o-mini-2024-07-18",
                         "choices": [{"index": 0, "message": {"role": "assistant", "content": _text(rng)},
                                      "finish_reason": "stop"}],
                         "usage": {"prompt_tokens": 12, "completion_tokens": 5}},
            "model_parameters": {"temperature": 0.2}, "hidden_params": {}}


def _av(v: Any) -> dict:
    if isinstance(v, bool):
        return {"boolValue": v}
    if isinstance(v, int):
        return {"intValue": str(v)}
    if isinstance(v, float):
        return {"doubleValue": v}
    return {"stringValue": str(v)}


def _otlp(rng: random.Random, i: int, tag: str) -> dict:
    ns = int(_ts(i).timestamp()) * 10**9
    trace = _hex(tag, i, 32)
    chat = {"gen_ai.provider.name": "anthropic", "gen_ai.operation.name": "chat", "gen_ai.request.model": "claude-sonnet-4-5",
            "gen_ai.response.model": "claude-sonnet-4-5-20250929", "gen_ai.usage.input_tokens": 12,
            "gen_ai.usage.output_tokens": 5,
            "gen_ai.input.messages": json.dumps([{"role": "user", "parts": [{"type": "text", "content": _text(rng)}]}]),
            "gen_ai.output.messages": json.dumps([{"role": "assistant", "parts": [{"type": "text", "content": _text(rng)}],
                                                   "finish_reason": "end_turn"}])}
    tool = {"gen_ai.operation.name": "execute_tool", "gen_ai.tool.name": "lookup"}

    def span(sid: str, name: str, attrs: dict) -> dict:
        return {"traceId": trace, "spanId": sid, "parentSpanId": "", "name": name, "kind": 3,
                "startTimeUnixNano": str(ns), "endTimeUnixNano": str(ns + 10**9),
                "attributes": [{"key": k, "value": _av(v)} for k, v in attrs.items()], "status": {}}

    return {"resourceSpans": [{"resource": {"attributes": [{"key": "service.name", "value": {"stringValue": "hostile"}}]},
                               "scopeSpans": [{"scope": {"name": "hostile.test"},
                                               "spans": [span(_hex(tag, i, 16), "chat", chat),
                                                         span(_hex(tag, -1 - i, 16), "execute_tool lookup", tool)]}]}]}


def _otlp_logs(rng: random.Random, i: int, tag: str) -> dict:
    """GenAI events of the chat span of ``_otlp`` (same ids) as log records, and an application log line."""
    ns = int(_ts(i).timestamp()) * 10**9
    trace, span = _hex(tag, i, 32), _hex(tag, i, 16)

    def kv(v: Any) -> dict:
        if isinstance(v, dict):
            return {"kvlistValue": {"values": [{"key": k, "value": kv(x)} for k, x in v.items()]}}
        return _av(v)

    def event(name: str, body: dict, t: int) -> dict:
        return {"timeUnixNano": str(t), "observedTimeUnixNano": str(t), "eventName": name, "traceId": trace,
                "spanId": span, "body": kv(body),
                "attributes": [{"key": "gen_ai.provider.name", "value": {"stringValue": "anthropic"}}]}

    return {"resourceLogs": [{"resource": {"attributes": [{"key": "service.name", "value": {"stringValue": "hostile"}}]},
                              "scopeLogs": [{"scope": {"name": "hostile.test"}, "logRecords": [
                                  event("gen_ai.user.message", {"content": _text(rng)}, ns + 1),
                                  event("gen_ai.choice", {"index": 0, "finish_reason": "end_turn",
                                                          "message": {"role": "assistant", "content": _text(rng)}},
                                        ns + 2),
                                  {"timeUnixNano": str(ns + 3), "severityText": "INFO",
                                   "body": {"stringValue": "request handled"}},
                              ]}]}]}


def _openinference(rng: random.Random, i: int, tag: str) -> dict:
    return {"name": "ChatCompletion", "context": {"trace_id": _hex(tag, i, 32), "span_id": _hex(tag, -i, 16)},
            "span_kind": "LLM", "parent_id": None, "start_time": _ts(i).isoformat(),
            "end_time": (_ts(i) + dt.timedelta(seconds=1)).isoformat(), "status_code": "OK", "status_message": "",
            "attributes": {"openinference.span.kind": "LLM", "llm.provider": "openai", "llm.model_name": "gpt-4o-2024-08-06",
                           "llm.input_messages.0.message.role": "user",
                           "llm.input_messages.0.message.content": _text(rng),
                           "llm.output_messages.0.message.role": "assistant",
                           "llm.output_messages.0.message.content": _text(rng),
                           "llm.token_count.prompt": 12, "llm.token_count.completion": 5},
            "events": []}


GENERIC_COLUMNS = ("ts", "user_id", "model", "question", "answer", "latency_ms")


def _generic(rng: random.Random, i: int, tag: str) -> dict:
    return {"ts": _iso(i), "user_id": f"agent-{i % 9}", "model": "claude-sonnet-4-5", "question": f"{_text(rng)} {tag}{i}",
            "answer": _text(rng), "latency_ms": 1000 + i}


HELICONE_COLUMNS = ("response_id", "response_created_at", "response_status", "request_created_at", "request_body",
                    "request_properties", "request_user_id", "model", "prompt_tokens", "completion_tokens", "latency", "cost")


def _helicone_row(rng: random.Random, i: int, tag: str) -> dict:
    r = _helicone(rng, i, tag)
    return {"response_id": r["response_id"], "response_created_at": r["response_created_at"],
            "response_status": 200, "request_created_at": r["request_created_at"], "request_body": r["request_body"],
            "request_properties": r["request_properties"], "request_user_id": r["request_user_id"],
            "model": "gpt-4o-mini", "prompt_tokens": 12, "completion_tokens": 3, "latency": 500 + i, "cost": 0.0001}


LANGFUSE_COLUMNS = ("id", "trace_id", "project_id", "environment", "type", "parent_observation_id", "start_time",
                    "end_time", "name", "metadata", "level", "status_message", "version", "input", "output",
                    "provided_model_name", "model_parameters", "usage_details", "cost_details", "completion_start_time",
                    "total_cost", "created_at", "updated_at", "tool_calls", "tool_definitions")
