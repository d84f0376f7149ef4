"""The capture helper records real SDK calls (streaming too) in the log format ingest reads, never the key."""

from __future__ import annotations

import asyncio
import json
import sys

import anthropic
import polars as pl
import pytest

from tracelens.capture import capture
from tracelens.ingest.pipeline import ingest
from tracelens.store import Store
from tracelens.testing.fake_anthropic import FakeAnthropicServer

KEY = "sk-ant-test-SECRET-never-logged-000000"


@pytest.fixture
def server():
    with FakeAnthropicServer() as s:
        yield s


def _client(server, cls=anthropic.Anthropic):
    return cls(api_key=KEY, base_url=server.base_url, max_retries=0)


def test_capture_roundtrip_sync_and_stream(tmp_path, server, store):
    log = tmp_path / "llm.jsonl"
    client = capture(_client(server), log, metadata={"app": "support-bot"})
    with client.tracelens.context(user_id="4411", session_id="s-1"):
        msg = client.messages.create(
            model="claude-sonnet-4-5", max_tokens=64, system="Be brief.",
            messages=[{"role": "user", "content": "Where is my refund?"}],
        )
        with client.messages.stream(
            model="claude-sonnet-4-5-20250929", max_tokens=64, messages=[{"role": "user", "content": "Stream me"}]
        ) as stream:
            streamed = stream.get_final_text()
    client.tracelens.close()
    text = log.read_text()
    assert KEY not in text and "x-api-key" not in text
    lines = [json.loads(x) for x in text.splitlines()]
    assert len(lines) == 2
    assert lines[0]["metadata"] == {"app": "support-bot", "user_id": "4411", "session_id": "s-1"}
    # the request is kept as the exact bytes the SDK sent
    assert lines[0]["request"].encode() == server.message_requests[0].raw
    assert "time_to_first_token_ms" in lines[1]

    res = ingest(store, [str(log)])
    assert res.files[0].format == "anthropic_log" and res.files[0].stored == 2
    t = store.get(msg.id)
    assert t["user_id"] == "4411" and t["app"] == "support-bot" and t["model_requested"] == "claude-sonnet-4-5"
    assert t["model_returned"] == msg.model and t["response_text"] == msg.content[0].text
    assert t["request_raw"].encode() == server.message_requests[0].raw
    s = store.scan().filter(pl.col("prompt_text") == "Stream me").collect()
    assert s["response_text"][0] == streamed


def test_capture_errors_and_async(tmp_path, server, store):
    from tracelens.testing.fake_anthropic import Reply

    log = tmp_path / "llm.jsonl"
    server.enqueue(Reply.overloaded())
    client = capture(_client(server), log)
    with pytest.raises(anthropic.APIStatusError):
        client.messages.create(model="claude-sonnet-4-5", max_tokens=8, messages=[{"role": "user", "content": "hi"}])

    async def go():
        ac = capture(_client(server, anthropic.AsyncAnthropic), log)
        await ac.messages.create(model="claude-sonnet-4-5", max_tokens=8, messages=[{"role": "user", "content": "a"}])
        ac.tracelens.close()
        # closed in this loop: an async client left to the garbage collector schedules its close on whatever loop
        # runs then (another test's), which fails once that loop has closed
        await ac.close()

    asyncio.run(go())
    client.tracelens.close()
    lines = [json.loads(x) for x in log.read_text().splitlines()]
    assert lines[0]["status_code"] == 529 and "overloaded_error" in lines[0]["error"]
    assert lines[1]["status_code"] == 200
    res = ingest(store, [str(log)])
    assert res.files[0].stored == 2 and res.files[0].quarantined == 0
    errs = store.scan().filter(pl.col("status") == "error").collect()
    assert errs["error_type"][0] == "overloaded_error" and errs["http_status"][0] == 529


def test_redaction_hook_and_rotation(tmp_path, server):
    log = tmp_path / "llm.jsonl"

    def redact(rec):
        return {k: v.replace("555-0100", "[PHONE]") if isinstance(v, str) else v for k, v in rec.items()}

    client = capture(_client(server), log, redact=redact, max_bytes=1500)
    for i in range(4):
        client.messages.create(model="claude-sonnet-4-5", max_tokens=8,
                               messages=[{"role": "user", "content": f"call me at 555-0100 ({i})"}])
    client.tracelens.close()
    files = sorted(tmp_path.glob("llm*.jsonl"))
    assert len(files) >= 2  # rotated
    body = "".join(f.read_text() for f in files)
    assert "555-0100" not in body and body.count("[PHONE]") >= 4


# ---------------------------------------------------------------- OpenAI clients
# The OpenAI SDK is optional (not a dependency): a stand-in with the SDK's shape (an httpx client at ``_client``)
# against an in-process Chat Completions endpoint goes through the same capture hooks and writes the same lines.

T_CREATED = 1790841600


def _completion(cid, content, tool_calls=None, finish="stop"):
    msg = {"role": "assistant", "content": content, "refusal": None}
    if tool_calls:
        msg["tool_calls"] = tool_calls
    return {"id": cid, "object": "chat.completion", "created": T_CREATED, "model": "gpt-4o-mini-2024-07-18",
            "choices": [{"index": 0, "message": msg, "finish_reason": finish}],
            "usage": {"prompt_tokens": 20, "completion_tokens": 5, "total_tokens": 25,
                      "prompt_tokens_details": {"cached_tokens": 0}}}


def _chunks(cid):
    base = {"id": cid, "object": "chat.completion.chunk", "created": T_CREATED, "model": "gpt-4o-mini-2024-07-18"}
    deltas = [({"role": "assistant", "content": ""}, None), ({"content": "Streamed "}, None), ({"content": "answer."}, None),
              ({}, "stop")]
    out = [{**base, "choices": [{"index": 0, "delta": d, "finish_reason": f}]} for d, f in deltas]
    out.append({**base, "choices": [], "usage": {"prompt_tokens": 9, "completion_tokens": 3, "total_tokens": 12}})
    return "".join(f"data: {json.dumps(c)}\n\n" for c in out) + "data: [DONE]\n\n"


def _chat_handler(request):
    httpx = _http_lib()

    def reply(status, body, content_type="application/json", **headers):
        # an unread stream, as from a socket: capture's tee sees the bytes as the client reads them
        data = (body if isinstance(body, str) else json.dumps(body)).encode()
        return httpx.Response(status, headers={"content-type": content_type, **headers}, stream=httpx.ByteStream(data))

    body = json.loads(request.content)
    prompt = body["messages"][-1]["content"]
    if prompt == "rate me":
        return reply(429, {"error": {"message": "Rate limit reached", "type": "requests", "code": "rate_limit_exceeded"}},
                     **{"x-request-id": "req_oai_429"})
    if body.get("stream"):
        return reply(200, _chunks("chatcmpl-stream"), "text/event-stream")
    if body.get("tools"):
        call = [{"id": "call_1", "type": "function", "function": {"name": "weather", "arguments": '{"city":"Oslo"}'}}]
        return reply(200, _completion("chatcmpl-tool", None, call, "tool_calls"))
    return reply(200, _completion(f"chatcmpl-{prompt.split()[0].lower()}", f"Answer to {prompt}"))


def _http_lib():
    """The httpx-compatible package the SDKs are built on here (whatever it is named)."""
    http_cls = type(anthropic.Anthropic(api_key=KEY)._client)
    base = next(c for c in http_cls.__mro__ if not c.__module__.startswith("anthropic"))
    return sys.modules[base.__module__.split(".")[0]]


class _OpenAIStandIn:
    """What capture() needs of ``openai.OpenAI``/``AsyncOpenAI``: the httpx client at ``_client``."""

    def __init__(self, http):
        self._client = http


def _chat(**body):
    return {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "hi"}], **body}


def test_capture_openai_client_ingests_as_openai(tmp_path, store):
    httpx = _http_lib()
    log = tmp_path / "llm.jsonl"
    url = "http://127.0.0.1:9/v1/chat/completions"
    client = capture(_OpenAIStandIn(httpx.Client(transport=httpx.MockTransport(_chat_handler))), log)
    with client.tracelens.context(user_id="u-1"):
        client._client.post(url, json=_chat(messages=[{"role": "system", "content": "Be brief."},
                                                      {"role": "user", "content": "Plain question"}]))
        tools = [{"type": "function", "function": {"name": "weather", "parameters": {"type": "object"}}}]
        client._client.post(url, json=_chat(tools=tools, messages=[{"role": "user", "content": "Weather in Oslo?"}]))
        with client._client.stream("POST", url, json=_chat(stream=True, stream_options={"include_usage": True})) as r:
            for _ in r.iter_bytes():
                pass
        client._client.post(url, json=_chat(messages=[{"role": "user", "content": "rate me"}]))

    async def go():
        async def handler(request):
            return _chat_handler(request)

        ac = capture(_OpenAIStandIn(httpx.AsyncClient(transport=httpx.MockTransport(handler))), log)
        await ac._client.post(url, json=_chat(messages=[{"role": "user", "content": "Async question"}]))
        ac.tracelens.close()
        await ac._client.aclose()

    asyncio.run(go())
    client.tracelens.close()
    lines = [json.loads(x) for x in log.read_text().splitlines()]
    assert [x["provider"] for x in lines] == ["openai"] * 5 and isinstance(lines[0]["request"], str)

    res = ingest(store, [str(log)], enricher=False)
    f = res.files[0]
    assert (f.format, f.stored, f.quarantined) == ("openai_log", 5, 0)
    plain = store.get("chatcmpl-plain")
    assert (plain["system_prompt"], plain["prompt_text"], plain["response_text"]) == (
        "Be brief.", "Plain question", "Answer to Plain question")
    assert (plain["model_requested"], plain["model_returned"], plain["stop_reason"]) == (
        "gpt-4o-mini", "gpt-4o-mini-2024-07-18", "end_turn")
    assert (plain["input_tokens"], plain["output_tokens"], plain["user_id"], plain["provider"]) == (20, 5, "u-1", "openai")
    tool = store.get("chatcmpl-tool")
    assert tool["tool_calls"] == [{"id": "call_1", "name": "weather", "arguments": '{"city":"Oslo"}'}]
    assert (tool["response_text"], tool["stop_reason"]) == (None, "tool_use")
    s = store.get("chatcmpl-stream")
    assert (s["response_text"], s["input_tokens"], s["output_tokens"]) == ("Streamed answer.", 9, 3)
    assert dict(s["attributes"])["streamed"] == "true"
    assert store.get("chatcmpl-async")["response_text"] == "Answer to Async question"
    err = store.scan().filter(pl.col("status") == "error").collect().to_dicts()
    assert [(e["http_status"], e["error_type"]) for e in err] == [(429, "rate_limit_exceeded")]


def test_one_capture_file_with_both_clients(tmp_path, server):
    # two clients captured into one file: each line is read by its own provider, whichever comes first
    httpx = _http_lib()
    log = tmp_path / "llm.jsonl"
    oai = capture(_OpenAIStandIn(httpx.Client(transport=httpx.MockTransport(_chat_handler))), log)
    oai._client.post("http://127.0.0.1:9/v1/chat/completions", json=_chat(messages=[{"role": "user", "content": "First"}]))
    oai.tracelens.close()
    ant = capture(_client(server), log)
    msg = ant.messages.create(model="claude-sonnet-4-5", max_tokens=8, messages=[{"role": "user", "content": "Second"}])
    ant.tracelens.close()
    reordered = tmp_path / "anthropic_first.jsonl"
    reordered.write_text("".join(reversed(log.read_text().splitlines(keepends=True))))
    for i, p in enumerate((log, reordered)):
        s = Store(tmp_path / f"s{i}", create=True)
        f = ingest(s, [str(p)], enricher=False).files[0]
        assert (f.stored, f.quarantined) == (2, 0), [r["reason"] for r in s.scan("quarantine").collect().to_dicts()]
        assert s.get("chatcmpl-first")["response_text"] == "Answer to First"
        assert s.get(msg.id)["response_text"] == msg.content[0].text
