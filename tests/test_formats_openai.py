"""openai_log and openai_batch: Chat Completions logs and Batch API output -> traces."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from tests.conftest import anthropic_line, shared_path
from tracelens.ingest.base import IngestOptions
from tracelens.ingest.formats.openai import OpenAILog
from tracelens.ingest.normalize import dumps
from tracelens.ingest.pipeline import ingest
from tracelens.ingest.readers import open_input
from tracelens.ingest.registry import FORMATS, sniff_format
from tracelens.store import Store

SYS = "You are a travel assistant."
T0 = 1790812800  # 2026-10-01T00:00:00Z


def req(user: str, model: str = "gpt-4o", **kw) -> dict:
    r = {"model": model, "messages": [{"role": "system", "content": SYS}, {"role": "user", "content": user}]}
    r.update(kw)
    return r


def completion(cid: str, content, finish="stop", model="gpt-4o-2024-08-06", created=T0, refusal=None, tool_calls=None,
               choice_extra=None, **kw) -> dict:
    msg = {"role": "assistant", "content": content, "refusal": refusal}
    if tool_calls:
        msg["tool_calls"] = tool_calls
    choice = {"index": 0, "message": msg, "logprobs": None, "finish_reason": finish, **(choice_extra or {})}
    c = {"id": cid, "object": "chat.completion", "created": created, "model": model, "choices": [choice],
         "usage": {"prompt_tokens": 20, "completion_tokens": 7, "total_tokens": 27, "prompt_tokens_details": {"cached_tokens": 4}},
         "system_fingerprint": "fp_abc123"}
    c.update(kw)
    return c


def chunk(cid, delta, finish=None, usage=None):
    c = {"id": cid, "object": "chat.completion.chunk", "created": T0 + 500, "model": "gpt-4o-2024-08-06",
         "system_fingerprint": "fp_abc123", "choices": [{"index": 0, "delta": delta, "finish_reason": finish}]}
    if usage:
        c["choices"], c["usage"] = [], usage
    return c


STRING_REQUEST = '{"model":"gpt-4o-mini", "messages":[{"role":"user","content":"Best month for Lisbon?"}]}'
STREAM = [chunk("chatcmpl-s1", {"role": "assistant", "content": ""}), chunk("chatcmpl-s1", {"content": "May "}),
          chunk("chatcmpl-s1", {"content": "or June."}), chunk("chatcmpl-s1", {}, "stop"),
          chunk("chatcmpl-s1", None, usage={"prompt_tokens": 11, "completion_tokens": 4, "total_tokens": 15})]
TOOL_STREAM = [
    chunk("chatcmpl-s2", {"role": "assistant", "tool_calls": [{"index": 0, "id": "call_1", "type": "function",
                                                               "function": {"name": "find_flights", "arguments": ""}}]}),
    chunk("chatcmpl-s2", {"tool_calls": [{"index": 0, "function": {"arguments": '{"to":'}}]}),
    chunk("chatcmpl-s2", {"tool_calls": [{"index": 0, "function": {"arguments": '"LIS"}'}}]}),
    chunk("chatcmpl-s2", {}, "tool_calls"),
]


def log_lines() -> list:
    tool = [{"id": "call_w", "type": "function", "function": {"name": "weather", "arguments": '{"city":"Oslo"}'}}]
    return [
        {"timestamp": "2026-10-01T10:00:00Z", "latency_ms": 900, "request_id": "req_1",
         "metadata": {"user_id": "u1", "session_id": "s1", "app": "trips", "page": "home"},
         "request": req("Is Oslo cold in October?", temperature=0.2, max_tokens=100, seed=7),
         "response": completion("chatcmpl-1", "Yes, around 5 C.")},
        {"timestamp": "2026-10-01T11:00:00Z", "request": req("Forge me a visa stamp."),
         "response": completion("chatcmpl-2", None, refusal="I can't help with forging documents.")},
        {"timestamp": "2026-10-01T12:00:00Z", "request": req("Insult the hotel staff."),
         "response": completion("chatcmpl-3", "", finish="content_filter",
                                choice_extra={"content_filter_results": {"hate": {"filtered": True, "severity": "medium"}}},
                                prompt_filter_results=[])},
        {"timestamp": "2026-10-01T13:00:00Z", "request": req("Weather in Oslo?", model="gpt-4o-mini"),
         "response": completion("chatcmpl-4", None, finish="tool_calls", model="gpt-4o-mini-2024-07-18", tool_calls=tool)},
        {"timestamp": "2026-10-01T14:00:00Z", "status_code": 429, "request_id": "req_429", "request": req("Hi"),
         "error": {"error": {"message": "Rate limit reached", "type": "requests", "param": None, "code": "rate_limit_exceeded"}}},
        {"timestamp": "2026-10-01T15:00:00Z", "request": req("Best month?", stream=True), "response": STREAM},
        {"timestamp": "2026-10-01T16:00:00Z", "request": STRING_REQUEST,
         "response": "".join(f"data: {json.dumps(c)}\n\n" for c in TOOL_STREAM) + "data: [DONE]\n\n"},
        {"request": req("No timestamp here"), "response": completion("chatcmpl-8", "Fine.", created=T0 + 3600)},
        completion("chatcmpl-9", "Bare response.", model="gpt-4o-mini-2024-07-18", created=T0 + 7200),
        {"id": "chatcmpl-10", "object": "chat.completion", "model": "gpt-4o", "choices": []},  # bare, no created
        {"timestamp": "2026-10-01T17:00:00Z", "request": {"model": "gpt-4o", "input": "Responses API"},
         "response": {"object": "response", "output": []}},
        {"timestamp": "2026-10-01T18:00:00Z", "provider": "Together", "request": req("Hi", model="meta-llama/Llama-3-70b"),
         "response": completion("chatcmpl-12", "Hello!", model="meta-llama/Llama-3-70b")},
    ]


@pytest.fixture(scope="module")
def log_store(tmp_path_factory):
    d = tmp_path_factory.mktemp("oai")
    p = d / "openai_log.jsonl"
    p.write_text("".join(json.dumps(x) + "\n" for x in log_lines()))
    store = Store(d / "s", create=True)
    summary = ingest(store, [str(p)], IngestOptions(), enricher=False)
    return p, store, summary


def test_log_sniffing(log_store, tmp_path):
    p, _, summary = log_store
    assert summary.files[0].format == "openai_log"
    fmt = FORMATS["openai_log"]
    assert fmt.sniff(anthropic_line(1).encode(), "x.jsonl") == 0.0
    assert FORMATS["anthropic_log"].sniff(p.read_bytes(), str(p)) == 0.0
    bare = tmp_path / "bare.json"
    bare.write_text(json.dumps(completion("chatcmpl-x", "hi"), indent=2))
    assert fmt.sniff(bare.read_bytes(), str(bare)) == 0.8
    nested = json.dumps({"outputs": completion("chatcmpl-y", "hi"), "inputs": {"messages": []}}, indent=2)
    assert fmt.sniff(nested.encode(), "run.json") == 0.0  # a completion inside another tool's export is not ours


def test_log_reconciles(log_store):
    _, store, summary = log_store
    f = summary.files[0]
    assert (f.read, f.stored, f.quarantined, f.skipped) == (12, 10, 2, 0) and f.reconciles
    reasons = {r["source_locator"]: r["reason"] for r in store.scan("quarantine").collect().to_dicts()}
    assert "without 'created'" in reasons["line:10"]
    assert "no 'messages'" in reasons["line:11"]


def test_log_plain_fields(log_store):
    _, store, _ = log_store
    t = store.get("chatcmpl-1")
    assert (t["provider"], t["model_requested"], t["model_returned"], t["model_is_alias"]) == (
        "openai", "gpt-4o", "gpt-4o-2024-08-06", True)
    assert (t["model_family"], t["model_snapshot"]) == ("gpt-4o", "2024-08-06")
    assert (t["system_prompt"], t["prompt_text"], t["response_text"]) == (SYS, "Is Oslo cold in October?", "Yes, around 5 C.")
    assert [m["role"] for m in t["messages"]] == ["user"]
    assert (t["temperature"], t["max_tokens"], t["seed"]) == (0.2, 100, 7)
    # prompt_tokens 20 includes the 4 cached; the schema's input_tokens is the uncached rest
    assert (t["input_tokens"], t["output_tokens"], t["cache_read_tokens"]) == (16, 7, 4)
    assert (t["stop_reason"], t["stop_reason_raw"], t["status"], t["http_status"]) == ("end_turn", "stop", "ok", 200)
    assert (t["user_id"], t["session_id"], t["app"], t["request_id"], t["latency_ms"]) == ("u1", "s1", "trips", "req_1", 900.0)
    attrs = dict(t["attributes"])
    assert attrs["system_fingerprint"] == "fp_abc123" and attrs["page"] == "home"
    assert t["request_raw"] == dumps(log_lines()[0]["request"])


def test_log_refusal_and_content_filter(log_store):
    _, store, _ = log_store
    r = store.get("chatcmpl-2")
    assert (r["stop_reason"], r["stop_reason_raw"], r["response_text"]) == (
        "refusal", "stop", "I can't help with forging documents.")
    assert json.loads(r["stop_details"])["refusal"] == "I can't help with forging documents."
    cf = store.get("chatcmpl-3")
    assert (cf["stop_reason"], cf["stop_reason_raw"], cf["provider"]) == ("content_filter", "content_filter", "azure")
    assert "content_filter_results" in cf["response_raw"]


def test_log_tool_calls_errors_and_streams(log_store):
    _, store, _ = log_store
    tc = store.get("chatcmpl-4")
    assert tc["tool_calls"] == [{"id": "call_w", "name": "weather", "arguments": '{"city":"Oslo"}'}]
    assert (tc["stop_reason"], tc["response_text"]) == ("tool_use", None)  # content null: no text, not ""
    err = store.get("req_429")
    assert (err["status"], err["http_status"], err["error_type"], err["error_message"], err["stop_reason"]) == (
        "error", 429, "rate_limit_exceeded", "Rate limit reached", "error")
    assert dict(err["attributes"])["error_category"] == "requests"
    s1 = store.get("chatcmpl-s1")
    assert (s1["response_text"], s1["stop_reason"], s1["input_tokens"], s1["output_tokens"]) == ("May or June.", "end_turn", 11, 4)
    assert dict(s1["attributes"])["streamed"] == "true"
    s2 = store.get("chatcmpl-s2")
    assert s2["tool_calls"] == [{"id": "call_1", "name": "find_flights", "arguments": '{"to":"LIS"}'}]
    assert s2["request_raw"] == STRING_REQUEST and s2["model_requested"] == "gpt-4o-mini"


def test_capture_lines_sniffed_by_their_provider():
    # tracelens.capture keeps the bodies as JSON strings: the markers are escaped, the line's provider is not
    def line(provider, req, resp):
        return (json.dumps({"timestamp": "2026-10-01T00:00:00Z", "provider": provider, "status_code": 200,
                            "request": json.dumps(req), "response": json.dumps(resp)}, separators=(",", ":")) + "\n").encode()

    oai = line("openai", {"model": "gpt-4o-mini", "max_tokens": 8, "messages": [{"role": "user", "content": "hi"}]},
               completion("chatcmpl-c1", "hello"))
    ant = line("anthropic", {"model": "claude-haiku-4-5", "max_tokens": 8, "messages": [{"role": "user", "content": "hi"}]},
               {"id": "msg_c1", "type": "message", "role": "assistant", "model": "claude-haiku-4-5-20251001",
                "content": [{"type": "text", "text": "hello"}], "stop_reason": "end_turn"})
    assert (FORMATS["openai_log"].sniff(oai, "x.jsonl"), FORMATS["anthropic_log"].sniff(oai, "x.jsonl")) == (0.92, 0.0)
    assert FORMATS["openai_log"].sniff(ant, "x.jsonl") == 0.0 and FORMATS["anthropic_log"].sniff(ant, "x.jsonl") > 0
    assert sniff_format(oai, "x.jsonl").name == "openai_log" and sniff_format(ant, "x.jsonl").name == "anthropic_log"


def test_stats_json_missing_model_is_null(log_store):
    from tracelens.cli.main import cli

    _, store, _ = log_store
    res = CliRunner().invoke(cli, ["stats", "--store", str(store.root), "--json"])
    assert res.exit_code == 0, res.output
    rows = json.loads(res.stdout)["per_model"]
    assert any(r["model_returned"] is None for r in rows)  # the 429 returned no model
    assert all(r["model_requested"] != "" and r["model_returned"] != "" for r in rows)


def test_log_timestamps_and_bare_and_provider(log_store):
    _, store, _ = log_store
    t = store.get("chatcmpl-8")
    assert t["timestamp"].isoformat() == "2026-10-01T01:00:00+00:00"
    assert dict(t["attributes"])["timestamp_source"] == "response_created"
    bare = store.get("chatcmpl-9")
    assert bare["timestamp"].isoformat() == "2026-10-01T02:00:00+00:00"
    assert bare["prompt_text"] is None and bare["request_raw"] is None and bare["model_requested"] is None
    assert bare["model_is_alias"] is False and dict(bare["attributes"])["request_logged"] == "false"
    assert store.get("chatcmpl-12")["provider"] == "together"


# ---------------------------------------------------------------- batch

INPUTS = [
    {"custom_id": "q-1", "method": "POST", "url": "/v1/chat/completions", "body": req("Capital of Peru?", model="gpt-4o-mini", max_tokens=20)},
    {"custom_id": "q-2", "method": "POST", "url": "/v1/chat/completions", "body": req("Capital of Chile?", model="gpt-4o-mini")},
    {"custom_id": "q-3", "method": "POST", "url": "/v1/chat/completions", "body": req("Capital of Bolivia?", model="gpt-4o-mini")},
    {"custom_id": "q-4", "method": "POST", "url": "/v1/chat/completions", "body": req("Capital of Ecuador?", model="gpt-4o-mini")},
    {"custom_id": "e-1", "method": "POST", "url": "/v1/embeddings", "body": {"model": "text-embedding-3-small", "input": "x"}},
]


def out_line(n, cid, body=None, status=200, error=None):
    return {"id": f"batch_req_{n}", "custom_id": cid,
            "response": None if status is None else {"status_code": status, "request_id": f"rq_{n}", "body": body},
            "error": error}


OUTPUTS = [
    out_line(1, "q-1", completion("chatcmpl-b1", "Lima.", model="gpt-4o-mini-2024-07-18", created=T0 + 60)),
    out_line(2, "q-2", {"error": {"message": "bad temperature", "type": "invalid_request_error", "param": "temperature",
                                  "code": None}}, status=400),
    out_line(3, "q-3", status=None, error={"code": "batch_expired", "message": "expired before completion"}),
    out_line(4, "e-1", {"object": "list", "data": [], "model": "text-embedding-3-small"}),
    out_line(5, "q-9", completion("chatcmpl-b5", "Quito.", model="gpt-4o-mini-2024-07-18", created=T0 + 90)),
]


@pytest.fixture
def batch_files(tmp_path) -> tuple[Path, Path]:
    i = tmp_path / "batch_input.jsonl"
    o = tmp_path / "batch_output.jsonl"
    i.write_text("".join(json.dumps(x) + "\n" for x in INPUTS))
    o.write_text("".join(json.dumps(x) + "\n" for x in OUTPUTS))
    return i, o


def test_batch_join_errors_and_skips(batch_files, store):
    i, o = batch_files
    for p, name in ((i, "openai_batch_input"), (o, "openai_batch")):
        s, head = open_input(str(p))
        s.close()
        assert sniff_format(head, str(p)).name == name
    summary = ingest(store, [str(o), str(i)], IngestOptions(), enricher=False)
    f = next(f for f in summary.files if f.format == "openai_batch")
    assert (f.read, f.stored, f.skipped, f.quarantined) == (5, 4, 1, 0) and f.reconciles
    ok = store.get("chatcmpl-b1")
    assert (ok["prompt_text"], ok["system_prompt"], ok["response_text"]) == ("Capital of Peru?", SYS, "Lima.")
    assert (ok["model_requested"], ok["model_returned"], ok["model_is_alias"], ok["max_tokens"]) == (
        "gpt-4o-mini", "gpt-4o-mini-2024-07-18", True, 20)
    assert ok["timestamp"].isoformat() == "2026-10-01T00:01:00+00:00"
    assert (ok["request_id"], ok["http_status"]) == ("rq_1", 200)
    assert ok["request_raw"] == dumps(INPUTS[0]["body"])
    a = dict(ok["attributes"])
    assert (a["batch_custom_id"], a["batch_line_id"], a["batch_request"]) == ("q-1", "batch_req_1", "joined")
    bad = store.get("batch_req_2")
    assert (bad["status"], bad["http_status"], bad["error_type"], bad["prompt_text"]) == (
        "error", 400, "invalid_request_error", "Capital of Chile?")
    exp = store.get("batch_req_3")
    assert (exp["status"], exp["error_type"], exp["error_message"]) == ("error", "batch_expired", "expired before completion")
    assert exp["timestamp"].isoformat() == "2026-10-01T00:01:00+00:00"  # no body: the file's first 'created'
    assert dict(exp["attributes"])["timestamp_source"] == "batch_created"
    lone = store.get("chatcmpl-b5")
    assert lone["prompt_text"] is None and dict(lone["attributes"])["batch_request"] == "missing"


def test_batch_cli_json(batch_files, tmp_path):
    from tracelens.cli.main import cli

    i, o = batch_files
    res = CliRunner().invoke(cli, ["ingest", "--store", str(tmp_path / "s"), "--json", "--no-progress", str(i), str(o)])
    assert res.exit_code == 0, res.output
    out = json.loads(res.stdout)
    assert out["totals"] == {"records": 5, "read": 5, "stored": 4, "duplicates": 0, "quarantined": 0, "skipped": 1,
                             "naive_timestamps": 0, "events": 0, "joined": 0, "waiting": 0}


def test_log_cli_json(log_store, tmp_path):
    from tracelens.cli.main import cli

    p, _, _ = log_store
    res = CliRunner().invoke(cli, ["ingest", "--store", str(tmp_path / "s"), "--json", "--no-progress", str(p)])
    assert res.exit_code == 0, res.output
    assert json.loads(res.stdout)["totals"]["stored"] == 10


@pytest.mark.shared
def test_real_openai_samples(tmp_path):
    d = shared_path("formats", "openai")
    pairs = [("batch_input_example.jsonl", "batch_output_example.jsonl"),
             ("litellm_openai_batch_input_2lines.jsonl", "litellm_openai_batch_output_2lines.jsonl")]
    for n, (inp, outp) in enumerate(pairs):
        store = Store(tmp_path / f"s{n}", create=True)
        summary = ingest(store, [str(d / inp), str(d / outp)], IngestOptions(), enricher=False)
        f = next(f for f in summary.files if f.format == "openai_batch")
        lines = len((d / outp).read_text().splitlines())
        assert (f.read, f.stored, f.quarantined) == (lines, lines, 0) and f.reconciles
    df = store.scan().collect()
    assert df["prompt_text"].to_list() == ["Hello world!"] * 2 and df["stop_reason"].to_list() == ["end_turn", "max_tokens"]
    bare = sorted(str(p) for p in d.glob("chat_completion_example_*.json"))
    store = Store(tmp_path / "bare", create=True)
    summary = ingest(store, bare, IngestOptions(), enricher=False)
    assert all(f.format == "openai_log" for f in summary.files)
    assert summary.total("stored") == len(bare) and summary.total("quarantined") == 0


def test_openai_log_parse_never_raises_on_odd_types(tmp_path):
    p = tmp_path / "odd.jsonl"
    odd = [{"request": {"model": 5, "messages": [{"role": 3, "content": {"x": 1}}]}, "timestamp": "2026-10-01T00:00:00Z",
            "response": {"id": 7, "choices": [{"message": {"content": ["a", 1]}, "finish_reason": 9}], "usage": {"prompt_tokens": "x"}}},
           [1, 2], "text", 42, None]
    p.write_text("".join(json.dumps(x) + "\n" for x in odd))
    store = Store(tmp_path / "s", create=True)
    summary = ingest(store, [str(p)], IngestOptions(), force_format="openai_log", enricher=False)
    f = summary.files[0]
    assert f.reconciles and (f.read, f.stored, f.quarantined) == (5, 1, 4)
    t = store.scan().collect().to_dicts()[0]
    assert (t["model_requested"], t["messages"][0]["role"], t["trace_id"]) == ("5", "3", "7")
    assert isinstance(OpenAILog().description, str)
