"""Generated hostile inputs for every ingest format, each with the number of records it holds.

Used by the test suite (``tests/test_ingest_hostile.py``) and the fuzz
benchmark (``benchmarks/fuzz_inputs.py``). Contract:

* Everything is generated here from a seed: valid records of every format
  ``tracelens formats`` lists, then damaged in one way per file (a ``kind``,
  see ``KINDS``): NULs and invalid UTF-8 in the first or a middle record,
  garbage lines, wrong JSON types, JSON nested 100,000 deep, a cut-short
  file, BOMs, UTF-16/32 with and without BOM, CRLF and blank lines, a
  multi-megabyte line, and gzip/zstd streams that are truncated, followed by
  garbage, garbage altogether or damaged in one frame. The same
  ``(kind, fmt, seed)`` always gives the same bytes (gzip mtime 0).
* ``records`` is the number of physical records the file holds, counted from
  the bytes written: non-blank lines for JSONL, items of a top-level JSON
  array, the document itself otherwise, data rows for CSV, rows of the
  Parquet footer or of the SQLite tables. A stream that stops early (damaged
  compression, a cut-short document) adds exactly one record for its rest;
  what a damaged compressed stream still holds is decided by ``zlib`` and
  ``zstandard`` themselves. ``tracelens ingest`` must report exactly this as
  ``FileResult.records``, with read = stored + duplicates + quarantined +
  skipped. A file of which nothing can be decoded holds 0 (and is a file
  error).
* ``min_stored`` is how many records were left intact: at least that many
  must be stored (companion formats store nothing: their records are
  skipped unless joined with a results file).

Read each file on its own with ``force_format=fmt``; files whose kind is not
in ``UNSNIFFABLE`` are also recognised without it (companion formats are then
set aside for joining, not read).
"""

from __future__ import annotations

import copy
import csv
import datetime as dt
import gzip
import hashlib
import io
import json
import random
import sqlite3
import zlib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

T0 = dt.datetime(2026, 10, 1, 9, 0, tzinfo=dt.UTC)
WORDS = ("tent", "stove", "boots", "refund", "order", "weather", "trail", "map", "lamp", "rope", "pack", "river",
         "bike", "derailleur", "size", "colour", "warranty", "return", "delivery", "Norway", "Ø", "café", "数字", "🙂")
# Values of the wrong type put into records.
WRONG = (-1, 1.5, True, None, "text", [1, "a"], {"k": {"n": 1}}, 2**70, "\ud800", "", [], {})


@dataclass(frozen=True)
class HostileFile:
    path: Path
    fmt: str
    kind: str
    records: int
    min_stored: int


# ---------------------------------------------------------------- valid records, one builder per format


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


@dataclass(frozen=True)
class Spec:
    """How a format's valid file is built: its records, layout and file name."""

    fmt: str
    make: Callable[[random.Random, int, str], dict]
    layout: str  # jsonl | array | document | csv | parquet | sqlite | protobuf
    suffix: str
    columns: tuple[str, ...] = ()  # csv/parquet header
    stores: bool = True  # each intact record is stored (False: companion formats, records are skipped)
    events: bool = False  # records hold GenAI log events (kept in the otlp_events table, not stored as traces)


SPECS: dict[str, Spec] = {s.fmt: s for s in (
    Spec("anthropic_log", _anthropic_log, "jsonl", ".jsonl"),
    Spec("openai_log", _openai_log, "jsonl", ".jsonl"),
    Spec("openai_batch", _openai_batch, "jsonl", ".jsonl"),
    Spec("openai_batch_input", _openai_batch_input, "jsonl", ".jsonl", stores=False),
    Spec("anthropic_batch", _anthropic_batch, "jsonl", ".jsonl"),
    Spec("anthropic_batch_requests", _anthropic_batch_requests, "jsonl", ".jsonl", stores=False),
    Spec("anthropic_batch_object", _anthropic_batch_object, "document", ".json", stores=False),
    Spec("anthropic_http", _anthropic_http, "array", ".json"),
    Spec("bedrock_invocation", _bedrock, "jsonl", ".jsonl"),
    Spec("helicone_export", _helicone, "jsonl", ".jsonl"),
    Spec("langfuse_blob", _langfuse_blob, "jsonl", ".jsonl"),
    Spec("langfuse_trace", _langfuse_trace, "array", ".json"),
    Spec("langsmith_runs", _langsmith, "jsonl", ".jsonl"),
    Spec("litellm_payload", _litellm, "jsonl", ".jsonl"),
    Spec("otlp_json", _otlp, "jsonl", ".jsonl"),
    Spec("openinference", _openinference, "array", ".json"),
    Spec("generic_jsonl", _generic, "jsonl", ".jsonl"),
    Spec("generic_csv", _generic, "csv", ".csv", GENERIC_COLUMNS),
    Spec("generic_parquet", _generic, "parquet", ".parquet", GENERIC_COLUMNS),
    Spec("simonw_llm", lambda rng, i, tag: {}, "sqlite", ".db"),
    Spec("otlp_proto", _otlp, "protobuf", ".binpb"),
    Spec("otlp_logs", _otlp_logs, "jsonl", ".jsonl", stores=False, events=True),
    Spec("otlp_logs_proto", _otlp_logs, "protobuf", ".binpb", stores=False, events=True),
)}
# The same formats in their other layouts (one importer, two shapes of file).
VARIANTS: dict[str, Spec] = {
    "helicone_export#csv": Spec("helicone_export", _helicone_row, "csv", ".csv", HELICONE_COLUMNS),
    "langfuse_blob#csv": Spec("langfuse_blob", _langfuse_blob, "csv", ".csv", LANGFUSE_COLUMNS),
    "openinference#jsonl": Spec("openinference", _openinference, "jsonl", ".jsonl"),
}
ALL_SPECS: dict[str, Spec] = {**SPECS, **VARIANTS}


def _needs_otlp_extra() -> bool:
    from tracelens.extras import has_extra

    return not has_extra("otlp")


if _needs_otlp_extra():  # protobuf files are built with opentelemetry-proto (the otlp extra)
    del SPECS["otlp_proto"], ALL_SPECS["otlp_proto"], SPECS["otlp_logs_proto"], ALL_SPECS["otlp_logs_proto"]

# ---------------------------------------------------------------- layouts


def _csv_value(v: Any) -> str:
    if v is None:
        return ""
    return json.dumps(v, ensure_ascii=False) if isinstance(v, dict | list) else str(v)


def _csv_line(values: list[str]) -> bytes:
    buf = io.StringIO()
    csv.writer(buf, lineterminator="\n").writerow(values)
    return buf.getvalue().encode()


@dataclass
class Text:
    """A text file being built: its lines (records and others) and where each record lies."""

    layout: str
    header: list[bytes]  # lines before the records (CSV header, "[")
    records: list[bytes]  # one per record, without newline
    footer: list[bytes]  # lines after ("]")

    def render(self, sep: bytes = b"\n") -> bytes:
        if self.layout == "array":  # one item a line, indented; blank "records" are blank lines between items
            last = max((k for k, r in enumerate(self.records) if r.strip()), default=-1)
            body = [b"  " + r + (b"," if k < last else b"") if r.strip() else r for k, r in enumerate(self.records)]
            return sep.join([*self.header, *body, *self.footer]) + sep
        return sep.join([*self.header, *self.records, *self.footer]) + sep

    def count(self) -> int:
        """Physical records: non-blank record lines (array items and a document count once each)."""
        return sum(1 for r in self.records if r.strip())


def _build(spec: Spec, rng: random.Random, n: int, tag: str) -> Text:
    recs = [spec.make(rng, i, tag) for i in range(n)]
    if spec.layout == "jsonl":
        return Text("jsonl", [], [json.dumps(r, ensure_ascii=False).encode() for r in recs], [])
    if spec.layout == "array":
        return Text("array", [b"["], [json.dumps(r, ensure_ascii=False).encode() for r in recs], [b"]"])
    if spec.layout == "document":
        return Text("document", [], [json.dumps(recs[0], ensure_ascii=False, indent=2).encode()], [])
    if spec.layout == "csv":
        rows = [_csv_line([_csv_value(r.get(c)) for c in spec.columns]).rstrip(b"\n") for r in recs]
        return Text("csv", [_csv_line(list(spec.columns)).rstrip(b"\n")], rows, [])
    raise ValueError(spec.layout)


# ---------------------------------------------------------------- damage


def _wrong_types(rng: random.Random, rec: Any, k: int = 3) -> Any:
    """``rec`` with up to ``k`` values (at random places, any depth) replaced by values of the wrong type."""
    rec = copy.deepcopy(rec)
    for _ in range(k):
        cur, parent, key = rec, None, None
        for _depth in range(rng.randint(1, 4)):
            if isinstance(cur, dict) and cur:
                key = rng.choice(sorted(cur))
            elif isinstance(cur, list) and cur:
                key = rng.randrange(len(cur))
            else:
                break
            parent, cur = cur, cur[key]
        if parent is not None:
            parent[key] = copy.deepcopy(rng.choice(WRONG))
    return rec


def _deep(n: int = 100_000) -> bytes:
    return b"[" * n + b"]" * n


def _nested_json(n: int) -> bytes:
    """JSON text of objects and arrays nested ``2 * n`` deep (beyond the 1,024 levels ingest reads)."""
    return b'{"a": [' * n + b'"bottom"' + b"]}" * n


def _insert(b: bytes, at: int, what: bytes) -> bytes:
    return b[:at] + what + b[at:]


def _damage_text(kind: str, spec: Spec, t: Text, rng: random.Random) -> tuple[Text, int]:
    """Apply a record-level ``kind`` to ``t`` in place; returns (t, records left intact)."""
    n = len(t.records)
    intact = n
    first = 0
    mid = n // 2
    if kind in ("nul_first", "nul_mid"):
        j = first if kind == "nul_first" else mid
        t.records[j] = _insert(t.records[j], max(1, len(t.records[j]) // 3), b"\x00")
        intact -= 1
    elif kind in ("badutf8_first", "badutf8_mid"):
        j = first if kind == "badutf8_first" else mid
        t.records[j] = _insert(t.records[j], max(1, len(t.records[j]) // 2), b"\xff\xfe\xc3")
        intact -= 1
    elif kind == "garbage_lines":
        junk = [b"{not json", b"\x1b[2J\x1b]8;;http://x\x07", b"null", b"[1, 2]", b'"str"', b"42", b"{}",
                bytes(rng.randrange(1, 256) for _ in range(24)).replace(b"\n", b" ").replace(b"\r", b" ")]
        if t.layout == "csv":
            junk = [b"only,two", b'"unterminated,quote', b"\x00\x01\x02"]
        for g in rng.sample(junk, k=min(3, len(junk))):
            t.records.insert(rng.randrange(len(t.records) + 1), g if g.strip() else b"x" + g)
    elif kind == "wrong_types":
        if t.layout == "csv":
            cols = t.header[0].count(b",") + 1
            t.records[mid] = _csv_line([rng.choice(["-1", "true", "[1]", "{}", "\ud800".encode("utf-8", "surrogatepass")
                                                    .decode("utf-8", "replace"), "9" * 30]) for _ in range(cols)]).rstrip()
        else:
            for j in sorted(rng.sample(range(n), k=min(3, n))):
                t.records[j] = json.dumps(_wrong_types(rng, json.loads(t.records[j]))).encode()
        intact -= min(3, n) if t.layout != "csv" else 1
    elif kind == "deep_first":
        if t.layout == "csv":
            t.records[first] = t.records[first] + b"," + _deep(20_000)
        else:
            t.records.insert(0, _deep())
            intact = n
        if t.layout == "csv":
            intact -= 1
    elif kind == "deep_value":
        j = mid
        if t.layout == "csv":
            t.records[j] = t.records[j].replace(b",", b',"' + _nested_json(600).replace(b'"', b'""') + b'",', 1)
        else:
            rec = json.loads(t.records[j])
            rec[sorted(rec)[0]] = "@DEEP@"
            t.records[j] = json.dumps(rec).encode().replace(b'"@DEEP@"', _nested_json(600))
        intact -= 1
    elif kind == "huge_line":
        j = mid
        big = "lorem ipsum dolor sit amet " * (rng.randint(40_000, 120_000))
        if t.layout == "csv":
            t.records[j] = t.records[j] + b"," + big.encode()  # an extra field: quarantined, kept whole
            intact -= 1
        else:
            rec = json.loads(t.records[j])
            _grow(rec, big)
            t.records[j] = json.dumps(rec, ensure_ascii=False).encode()
    elif kind == "blank_lines":
        for _ in range(4):
            t.records.insert(rng.randrange(len(t.records) + 1), rng.choice([b"", b"   ", b"\t", b" \r"]))
    elif kind == "truncated":
        j = n - 1
        t.records[j] = t.records[j][: max(1, len(t.records[j]) // 2)]
        t.footer = []
        intact -= 1
    return t, intact


def _grow(rec: Any, big: str) -> None:
    """Make the longest string in ``rec`` ``big`` (the record stays valid, only much larger)."""
    best: tuple[int, Any, Any] | None = None
    stack = [rec]
    while stack:
        cur = stack.pop()
        items = cur.items() if isinstance(cur, dict) else enumerate(cur) if isinstance(cur, list) else ()
        for k, v in items:
            if isinstance(v, str) and (best is None or len(v) > best[0]) and not v.startswith("{"):
                best = (len(v), cur, k)
            elif isinstance(v, dict | list):
                stack.append(v)
    if best is not None:
        best[1][best[2]] = best[1][best[2]] + " " + big


# ---------------------------------------------------------------- encodings and compression

TEXT_KINDS = ("valid", "nul_first", "nul_mid", "badutf8_first", "badutf8_mid", "garbage_lines", "wrong_types",
              "deep_first", "deep_value", "huge_line", "blank_lines", "truncated")
ENCODING_KINDS = ("bom_utf8", "utf16le_bom", "utf16be_bom", "utf16le", "utf32le_bom", "utf32be_bom", "crlf")
STREAM_KINDS = ("gzip", "gzip_truncated", "gzip_garbage_tail", "gzip_bad_member", "zstd", "zstd_truncated",
                "zstd_garbage_tail", "zstd_bad_frame", "zstd_garbage")
KINDS = TEXT_KINDS + ENCODING_KINDS + STREAM_KINDS
# Kinds after which the format cannot be recognised from the bytes (nothing decodes).
UNSNIFFABLE = frozenset({"zstd_garbage"})


def _encode(kind: str, data: bytes) -> bytes:
    if kind == "bom_utf8":
        return b"\xef\xbb\xbf" + data
    if kind == "crlf":
        return data.replace(b"\n", b"\r\n")
    text = data.decode("utf-8", "surrogateescape")
    codec = {"utf16le_bom": "utf-16-le", "utf16be_bom": "utf-16-be", "utf16le": "utf-16-le", "utf32le_bom": "utf-32-le",
             "utf32be_bom": "utf-32-be"}[kind]
    bom = {"utf-16-le": b"\xff\xfe", "utf-16-be": b"\xfe\xff", "utf-32-le": b"\xff\xfe\x00\x00",
           "utf-32-be": b"\x00\x00\xfe\xff"}[codec]
    return (bom if kind.endswith("_bom") else b"") + text.encode(codec, "surrogateescape")


def _gzip(data: bytes) -> bytes:
    return gzip.compress(data, mtime=0)


def _zstd(data: bytes) -> bytes:
    import zstandard

    return zstandard.ZstdCompressor(level=3, write_checksum=True).compress(data)


def _gunzip_prefix(data: bytes) -> bytes:
    """What zlib itself decodes of (possibly damaged) gzip members, one after another."""
    out = []
    while data[:2] == b"\x1f\x8b":
        d = zlib.decompressobj(31)
        try:
            out.append(d.decompress(data))
        except zlib.error:
            break
        if not d.eof:
            break
        data = d.unused_data
    return b"".join(out)


def _unzstd_prefix(data: bytes) -> bytes:
    """What zstandard itself decodes of (possibly damaged) frames, one after another."""
    import zstandard

    out = []
    while data[:4] == b"\x28\xb5\x2f\xfd":
        d = zstandard.ZstdDecompressor().decompressobj()
        try:
            out.append(d.decompress(data))
        except zstandard.ZstdError:
            break
        if not d.eof:
            break
        data = d.unused_data
    return b"".join(out)


def _records_in(layout: str, text: bytes, full: Text, cut: bool) -> int:
    """Physical records in the decoded ``text`` (a prefix of ``full.render()``), plus one when the stream was cut."""
    if layout == "jsonl":
        lines = text.split(b"\n")
        done = sum(1 for ln in lines[:-1] if ln.strip())
        return done + (1 if cut else (1 if lines[-1].strip() else 0))
    if layout == "csv":
        lines = text.split(b"\n")
        done = sum(1 for ln in lines[1:-1] if ln.strip()) if len(lines) > 1 else 0
        return done + (1 if cut else (1 if len(lines) > 1 and lines[-1].strip() else 0))
    if layout == "array":
        rendered = full.render()
        ends = []
        pos = 0
        for r in full.records:
            pos = rendered.index(r, pos) + len(r)
            ends.append(pos)
        done = sum(1 for e in ends if e <= len(text))
        return done + (1 if cut or done < len(ends) or not text.rstrip().endswith(b"]") else 0)
    # a document: itself when it was decoded whole, and the rest of the stream
    return (1 if len(text) >= len(full.render().rstrip()) else 0) + (1 if cut else 0)


def _stream(kind: str, data: bytes, t: Text, rng: random.Random) -> tuple[bytes, int]:
    """(bytes written, physical records) for the compression kinds."""
    n = t.count() if kind in ("gzip", "zstd") else None
    if kind == "gzip":
        return _gzip(data), n
    if kind == "zstd":
        return _zstd(data), n
    if kind == "zstd_garbage":  # the magic, then a frame header with its reserved bit set, then noise
        return b"\x28\xb5\x2f\xfd\x08" + bytes(rng.randrange(256) for _ in range(300)), 0
    if kind in ("gzip_garbage_tail", "zstd_garbage_tail"):
        z = _gzip(data) if kind.startswith("gzip") else _zstd(data)
        junk = b"GARBAGE" + bytes(rng.randrange(1, 256) for _ in range(200))
        return z + junk, _records_in(t.layout, data, t, cut=True)
    if kind in ("gzip_truncated", "zstd_truncated"):
        z = _gzip(data) if kind.startswith("gzip") else _zstd(data)
        z = z[: max(20, int(len(z) * rng.uniform(0.4, 0.9)))]
        decoded = _gunzip_prefix(z) if kind.startswith("gzip") else _unzstd_prefix(z)
        if not decoded:
            return z, 0
        return z, _records_in(t.layout, decoded, t, cut=True)
    if kind in ("gzip_bad_member", "zstd_bad_frame"):
        # one member/frame per line: the third is replaced by garbage of the same length
        lines = data.split(b"\n")
        pieces = [ln + b"\n" for ln in lines[:-1]] + ([lines[-1]] if lines[-1] else [])
        comp = [(_gzip(p) if kind.startswith("gzip") else _zstd(p)) for p in pieces]
        k = min(2, len(comp) - 1)
        comp[k] = bytes(rng.randrange(1, 256) for _ in range(len(comp[k])))
        z = b"".join(comp)
        decoded = b"".join(pieces[:k])
        if not decoded:
            return z, 0
        return z, _records_in(t.layout, decoded, t, cut=True)
    raise ValueError(kind)


# ---------------------------------------------------------------- binary layouts


def _parquet(kind: str, spec: Spec, rng: random.Random, damage: random.Random, n: int, tag: str
             ) -> tuple[bytes, int, int]:
    import pyarrow as pa
    import pyarrow.parquet as pq

    rows = [spec.make(rng, i, tag) for i in range(n)]
    rng = damage
    intact = n
    if kind == "wrong_types":
        for r in rows[:3]:
            r["ts"] = rng.choice(["not a time", "", "2026-13-45T99:00:00Z", "\x00"])
        intact -= 3
    if kind == "huge_line":
        rows[n // 2]["answer"] = "lorem ipsum " * 300_000
    if kind in ("nul_mid", "nul_first"):
        rows[0 if kind == "nul_first" else n // 2]["question"] += "\x00\x00"
    table = pa.Table.from_pylist(rows)
    if kind in ("badutf8_first", "badutf8_mid"):
        # a binary column where text is expected, holding invalid UTF-8 in one row
        vals = [r["answer"].encode() for r in rows]
        vals[0 if kind == "badutf8_first" else n // 2] = b"\xff\xfe bad"
        table = table.set_column(table.schema.get_field_index("answer"), "answer", pa.array(vals, pa.binary()))
    buf = io.BytesIO()
    pq.write_table(table, buf, row_group_size=max(1, n // 4), compression="none")
    data = buf.getvalue()
    if kind == "garbage_lines":  # damage the data of one row group (the footer stays readable)
        md = pq.ParquetFile(io.BytesIO(data)).metadata
        col = md.row_group(1).column(3)
        start = col.data_page_offset
        data = data[:start] + bytes(rng.randrange(256) for _ in range(64)) + data[start + 64:]
        intact -= md.row_group(1).num_rows
    if kind == "truncated":
        return data[: len(data) // 2], 0, 0
    if kind == "gzip":
        return _gzip(data), n, intact
    return data, n, intact


SQLITE_SCHEMA = """
CREATE TABLE "conversations" ("id" TEXT PRIMARY KEY, "name" TEXT, "model" TEXT);
CREATE TABLE "responses" ("id" TEXT PRIMARY KEY, "model" TEXT, "prompt" TEXT, "system" TEXT, "prompt_json" TEXT,
  "options_json" TEXT, "response" TEXT, "response_json" TEXT, "conversation_id" TEXT REFERENCES "conversations"("id"),
  "duration_ms" INTEGER, "datetime_utc" TEXT, "input_tokens" INTEGER, "output_tokens" INTEGER, "token_details" TEXT,
  "schema_id" TEXT, "resolved_model" TEXT, "reasoning" TEXT);
"""


def _sqlite(kind: str, path: Path, rng: random.Random, damage: random.Random, n: int, tag: str) -> tuple[int, int]:
    conn = sqlite3.connect(path)
    conn.executescript(SQLITE_SCHEMA)
    conn.execute("insert into conversations values (?, ?, ?)", (f"conv-{tag}", "hostile", "gpt-4o-mini"))
    intact = n
    for i in range(n):
        prompt: Any = _text(rng)
        response: Any = _text(rng)
        duration: Any = 500 + i
        pj: Any = None
        if kind in ("nul_first", "nul_mid") and i == (0 if kind == "nul_first" else n // 2):
            prompt += "\x00\x00"
        if kind in ("badutf8_first", "badutf8_mid") and i == (0 if kind == "badutf8_first" else n // 2):
            response = b"\xff\xfe invalid"  # a BLOB where text belongs
        if kind == "wrong_types" and i < 3:
            duration, pj = damage.choice([("slow", "{not json"), (2**62, "[1, 2]"), (None, '{"messages": 5}')])
            intact -= 1
        if kind == "huge_line" and i == n // 2:
            response = "lorem ipsum " * 300_000
        if kind == "deep_value" and i == n // 2:
            pj = _nested_json(600).decode()
        conn.execute("insert into responses (id, model, prompt, system, prompt_json, response, conversation_id, "
                     "duration_ms, datetime_utc, input_tokens, output_tokens, resolved_model) values "
                     "(?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                     (f"{tag}r{i:05d}", "gpt-4o-mini", prompt, "Be brief.", pj, response, f"conv-{tag}", duration,
                      _ts(i).isoformat(), 12, 5, "gpt-4o-mini-2024-07-18"))
    conn.commit()
    conn.close()
    if kind == "truncated":
        data = path.read_bytes()
        path.write_bytes(data[: len(data) // 2])
        return _sqlite_readable(path), 0
    return n, intact


def _sqlite_readable(path: Path) -> int:
    """Rows sqlite itself reads from a damaged database (plus one for the failure), 0 if it cannot open it."""
    try:
        conn = sqlite3.connect(f"file:{path}?mode=ro&immutable=1", uri=True)
        names = {r[0] for r in conn.execute("select name from sqlite_master")}
        if "responses" not in names:
            return 0
    except sqlite3.DatabaseError:
        return 0
    n = 0
    try:
        for _ in conn.execute("select * from responses r left join conversations c on c.id = r.conversation_id"):
            n += 1
    except sqlite3.DatabaseError:
        return n + 1
    finally:
        conn.close()
    return n


def _protobuf(kind: str, spec: Spec, rng: random.Random, damage: random.Random, n: int, tag: str
              ) -> tuple[bytes, int, int]:
    """Length-prefixed ExportTraceServiceRequest (ExportLogsServiceRequest) messages (the Collector file
    exporter's proto mode)."""
    import base64

    from google.protobuf.json_format import ParseDict
    from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import ExportLogsServiceRequest
    from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest

    request = ExportLogsServiceRequest if spec.events else ExportTraceServiceRequest
    msgs = []
    for i in range(n):
        req = spec.make(rng, i, tag)
        leaves = (req["resourceLogs"][0]["scopeLogs"][0]["logRecords"] if spec.events
                  else req["resourceSpans"][0]["scopeSpans"][0]["spans"])
        for sp in leaves:
            for key in ("traceId", "spanId"):  # protobuf's JSON mapping has base64 bytes where OTLP JSON has hex
                if key in sp:
                    sp[key] = base64.b64encode(bytes.fromhex(sp[key])).decode()
        msgs.append(ParseDict(req, request()).SerializeToString())
    if kind == "bare":
        merged = request()
        for m in msgs:
            merged.MergeFromString(m)  # one message holding every resourceSpans entry
        return merged.SerializeToString(), 1, 1
    intact = n
    if kind == "garbage_lines":  # one message's bytes replaced by garbage of the same length
        j = damage.randrange(1, n)
        msgs[j] = bytes(damage.randrange(256) for _ in range(len(msgs[j])))
        intact -= 1
    data = b"".join(len(m).to_bytes(4, "big") + m for m in msgs)
    if kind == "truncated":  # the writer stopped inside the last message
        return data[: len(data) - len(msgs[-1]) // 2], n, n - 1
    if kind == "gzip":
        return _gzip(data), n, intact
    if kind == "zstd":
        return _zstd(data), n, intact
    return data, n, intact


# ---------------------------------------------------------------- files


def kinds_for(spec: Spec) -> tuple[str, ...]:
    """The damage kinds that apply to a format's layout."""
    if spec.layout == "parquet":
        return ("valid", "wrong_types", "huge_line", "nul_first", "nul_mid", "badutf8_first", "badutf8_mid",
                "garbage_lines", "truncated", "gzip")
    if spec.layout == "sqlite":
        return ("valid", "wrong_types", "huge_line", "nul_first", "nul_mid", "badutf8_first", "badutf8_mid",
                "deep_value", "truncated")
    if spec.layout == "protobuf":
        return ("valid", "bare", "garbage_lines", "truncated", "gzip", "zstd")
    if spec.layout == "document":
        return ("valid", "nul_mid", "badutf8_mid", "truncated", "deep_value", "huge_line") + ENCODING_KINDS + (
            "gzip", "gzip_truncated", "gzip_garbage_tail", "zstd", "zstd_truncated", "zstd_garbage_tail", "zstd_garbage")
    kinds = KINDS
    if spec.layout == "array":
        kinds = tuple(k for k in kinds if k not in ("gzip_bad_member", "zstd_bad_frame"))
    return kinds


def write_hostile(out_dir: Path, key: str, kind: str, seed: int, n: int = 12, index: int = 0) -> HostileFile:
    """Write one hostile file of format ``key`` (a name in ``ALL_SPECS``) damaged by ``kind``."""
    spec = ALL_SPECS[key]
    # the records depend on (seed, format, index) only, the damage also on the kind: files that differ only
    # in their kind hold the same records (the same ids)
    rng = random.Random(f"{seed}:{key}:{index}")
    damage_rng = random.Random(f"{seed}:{key}:{index}:{kind}")
    tag = f"s{seed}k{index}"
    out_dir.mkdir(parents=True, exist_ok=True)
    stem = f"{index:04d}-{key.replace('#', '-')}-{kind}"
    if spec.layout == "parquet":
        data, records, intact = _parquet(kind, spec, rng, damage_rng, n, tag)
        path = out_dir / (stem + (".parquet.gz" if kind == "gzip" else ".parquet"))
        path.write_bytes(data)
        return HostileFile(path, spec.fmt, kind, records, intact)
    if spec.layout == "protobuf":
        data, records, intact = _protobuf(kind, spec, rng, damage_rng, n, tag)
        path = out_dir / (stem + spec.suffix + {"gzip": ".gz", "zstd": ".zst"}.get(kind, ""))
        path.write_bytes(data)
        return HostileFile(path, spec.fmt, kind, records, intact if spec.stores else 0)
    if spec.layout == "sqlite":
        path = out_dir / (stem + ".db")
        records, intact = _sqlite(kind, path, rng, damage_rng, n, tag)
        return HostileFile(path, spec.fmt, kind, records, intact)
    n_records = 1 if spec.layout == "document" else n
    t = _build(spec, rng, n_records, tag)
    intact = t.count()
    if kind in TEXT_KINDS and kind != "valid":
        t, intact = _damage_text(kind, spec, t, damage_rng)
    if spec.layout == "document" and kind != "valid" and kind not in ENCODING_KINDS and kind not in STREAM_KINDS:
        intact = 0 if kind in ("nul_mid", "badutf8_mid", "truncated", "deep_value") else intact
    data = t.render()
    records = t.count() if t.layout != "document" else 1
    suffix = spec.suffix
    if kind in ENCODING_KINDS:
        data = _encode(kind, data)
    elif kind in STREAM_KINDS:
        data, records = _stream(kind, data, t, damage_rng)
        suffix += ".gz" if kind.startswith("gzip") else ".zst"
        if kind not in ("gzip", "zstd"):
            intact = min(intact, max(0, records - 2))
    if spec.layout == "document" and kind in ("nul_mid", "badutf8_mid", "truncated", "deep_value"):
        intact = 0
    path = out_dir / (stem + suffix)
    path.write_bytes(data)
    return HostileFile(path, spec.fmt, kind, records, intact if spec.stores else 0)


def hostile_files(out_dir: str | Path, n: int, seed: int) -> list[HostileFile]:
    """``n`` hostile files over every (format layout, kind) pair, deterministically for ``seed``.

    Pairs are taken round-robin over the formats (each format's kinds in a
    seeded order), so any ``n`` of at least ``len(ALL_SPECS)`` covers every
    format; beyond all pairs they repeat with other seeds.
    """
    out = Path(out_dir)
    rng = random.Random(seed)
    per_key = []
    for key, spec in ALL_SPECS.items():
        kinds = list(kinds_for(spec))
        rng.shuffle(kinds)
        per_key.append([(key, k) for k in kinds])
    order = [p for round_ in range(max(len(k) for k in per_key)) for ks in per_key if round_ < len(ks)
             for p in [ks[round_]]]
    files = []
    for i in range(n):
        key, kind = order[i % len(order)]
        files.append(write_hostile(out, key, kind, seed + i // len(order), index=i))
    return files


def generate_hostile_files(out_dir: str | Path, n: int = 600, seed: int = 0) -> list[tuple[Path, str, int]]:
    """Write ``n`` hostile files under ``out_dir``; returns ``(path, format, expected physical records)`` each."""
    return [(f.path, f.fmt, f.records) for f in hostile_files(out_dir, n, seed)]
