"""The fake Chat Completions server, driven by the real ``openai`` SDK."""

from __future__ import annotations

import json
import subprocess
import sys
import urllib.error
import urllib.request

import pytest

openai = pytest.importorskip("openai")

from tracelens.testing.fake_openai import FAKE_PREFIX, FakeOpenAIServer, Reply  # noqa: E402

WEATHER = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "Current weather for a city",
        "parameters": {"type": "object", "properties": {"city": {"type": "string"},
                                                        "unit": {"type": "string", "enum": ["c", "f"]}},
                       "required": ["city", "unit"]},
    },
}


@pytest.fixture
def server():
    with FakeOpenAIServer() as s:
        yield s


@pytest.fixture
def client(server):
    return openai.OpenAI(api_key="sk-test", base_url=server.base_url, max_retries=0)


def test_plain_completion_is_deterministic_and_resolves_the_alias(client, server):
    msgs = [{"role": "system", "content": "Be terse."}, {"role": "user", "content": "What is 2+2?"}]
    a = client.chat.completions.create(model="gpt-4o-mini", messages=msgs)
    b = client.chat.completions.create(model="gpt-4o-mini", messages=msgs)
    assert a.model == "gpt-4o-mini-2024-07-18"
    assert a.object == "chat.completion"
    assert a.choices[0].message.content == b.choices[0].message.content
    assert a.choices[0].message.content.startswith(FAKE_PREFIX)
    assert "What is 2+2?" in a.choices[0].message.content
    assert a.choices[0].finish_reason == "stop"
    assert a.system_fingerprint.startswith("fp_")
    assert a.usage.total_tokens == a.usage.prompt_tokens + a.usage.completion_tokens
    assert a.usage.prompt_tokens_details.cached_tokens == 0
    assert a.id != b.id
    assert server.chat_requests[0].json["messages"] == msgs
    assert "sk-test" in server.chat_requests[0].headers["authorization"]


def test_tools_get_a_tool_call_then_an_answer(client):
    msgs = [{"role": "user", "content": "Weather in Paris?"}]
    r = client.chat.completions.create(model="gpt-4.1", messages=msgs, tools=[WEATHER])
    choice = r.choices[0]
    assert choice.finish_reason == "tool_calls"
    assert choice.message.content is None
    (call,) = choice.message.tool_calls
    assert call.function.name == "get_weather"
    assert json.loads(call.function.arguments) == {"city": "example city", "unit": "c"}
    assert call.id.startswith("call_")
    msgs += [choice.message.model_dump(exclude_none=True),
             {"role": "tool", "tool_call_id": call.id, "content": "18C, sunny"}]
    r2 = client.chat.completions.create(model="gpt-4.1", messages=msgs, tools=[WEATHER])
    assert r2.choices[0].finish_reason == "stop"
    assert r2.choices[0].message.content.startswith(FAKE_PREFIX)
    r3 = client.chat.completions.create(model="gpt-4.1", messages=msgs[:1], tools=[WEATHER], tool_choice="none")
    assert r3.choices[0].message.tool_calls is None


def test_streaming_with_usage_matches_the_non_streamed_answer(client):
    msgs = [{"role": "user", "content": "Tell me a short story about a lighthouse keeper."}]
    whole = client.chat.completions.create(model="gpt-4o", messages=msgs)
    chunks = list(client.chat.completions.create(model="gpt-4o", messages=msgs, stream=True,
                                                 stream_options={"include_usage": True}))
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text == whole.choices[0].message.content
    assert chunks[0].choices[0].delta.role == "assistant"
    assert [c.choices[0].finish_reason for c in chunks if c.choices][-1] == "stop"
    assert chunks[-1].choices == [] and chunks[-1].usage.completion_tokens == whole.usage.completion_tokens
    assert all(c.usage is None for c in chunks[:-1])
    assert {c.object for c in chunks} == {"chat.completion.chunk"}
    # without include_usage there is no usage chunk
    plain = list(client.chat.completions.create(model="gpt-4o", messages=msgs, stream=True))
    assert all(c.choices for c in plain)


def test_streamed_tool_call_reassembles(client):
    stream = client.chat.completions.create(model="gpt-4o", messages=[{"role": "user", "content": "Weather?"}],
                                            tools=[WEATHER], stream=True)
    name, args, finish = "", "", None
    for c in stream:
        for d in c.choices[0].delta.tool_calls or []:
            name += d.function.name or "" if d.function else ""
            args += d.function.arguments or "" if d.function else ""
        finish = c.choices[0].finish_reason or finish
    assert (name, json.loads(args), finish) == ("get_weather", {"city": "example city", "unit": "c"}, "tool_calls")


def test_the_sdk_stream_helper_accepts_the_stream(client):
    with client.beta.chat.completions.stream(model="gpt-4o", messages=[{"role": "user", "content": "Hi"}],
                                             stream_options={"include_usage": True}) as stream:
        final = stream.get_final_completion()
    assert final.choices[0].message.content.startswith(FAKE_PREFIX)
    assert final.usage.prompt_tokens > 0


def test_a_repeated_long_prefix_reports_cached_tokens(client):
    long_system = "You are a careful assistant. " * 200  # ~1500 tokens
    first = client.chat.completions.create(model="gpt-4o", messages=[
        {"role": "system", "content": long_system}, {"role": "user", "content": "First question"}])
    second = client.chat.completions.create(model="gpt-4o", messages=[
        {"role": "system", "content": long_system}, {"role": "user", "content": "Second question"}])
    assert first.usage.prompt_tokens >= 1024
    assert first.usage.prompt_tokens_details.cached_tokens == 0
    cached = second.usage.prompt_tokens_details.cached_tokens
    assert cached >= 1024 and cached % 128 == 0 and cached <= second.usage.prompt_tokens


def test_markers_script_errors_and_cache(client):
    with pytest.raises(openai.RateLimitError) as e:
        client.chat.completions.create(model="gpt-4o", messages=[{"role": "user", "content": "x [[fake:status=429]]"}])
    assert e.value.status_code == 429 and e.value.code == "rate_limit_exceeded"
    with pytest.raises(openai.InternalServerError):
        client.chat.completions.create(model="gpt-4o", messages=[{"role": "user", "content": "[[fake:status=500]]"}])
    with pytest.raises(openai.BadRequestError) as e:
        client.chat.completions.create(model="gpt-4o", messages=[{"role": "user", "content": "[[fake:status=400]]"}])
    assert e.value.body["type"] == "invalid_request_error"
    r = client.chat.completions.create(model="gpt-4o", messages=[{"role": "user", "content": "hi [[fake:cached=7]]"}])
    assert r.usage.prompt_tokens_details.cached_tokens == 7
    assert "[[fake" not in r.choices[0].message.content


def test_scripted_replies_and_validation(client, server):
    server.enqueue(Reply.message("Scripted.", completion_tokens=3), Reply.tool_call("lookup", {"q": "x"}))
    server.add_rule(Reply.error(503), contains="overload")
    assert client.chat.completions.create(model="gpt-4o", messages=[{"role": "user", "content": "a"}]
                                          ).choices[0].message.content == "Scripted."
    r = client.chat.completions.create(model="gpt-4o", messages=[{"role": "user", "content": "b"}])
    assert r.choices[0].message.tool_calls[0].function.arguments == '{"q": "x"}'
    with pytest.raises(openai.InternalServerError):
        client.chat.completions.create(model="gpt-4o", messages=[{"role": "user", "content": "overload"}])
    with pytest.raises(openai.NotFoundError) as e:
        client.chat.completions.create(model="gpt-9", messages=[{"role": "user", "content": "a"}])
    assert e.value.code == "model_not_found"
    with pytest.raises(openai.BadRequestError):
        client.chat.completions.create(model="gpt-4o", messages=[])
    req = urllib.request.Request(server.base_url + "/chat/completions", method="POST",
                                 data=b'{"model": "gpt-4o", "messages": [{"role": "user", "content": "a"}]}')
    with pytest.raises(urllib.error.HTTPError) as e:
        urllib.request.urlopen(req, timeout=10)
    assert e.value.code == 401


def test_max_tokens_truncates_with_length(client):
    r = client.chat.completions.create(model="gpt-4o", max_tokens=3, messages=[{"role": "user", "content": "Hello"}])
    assert r.choices[0].finish_reason == "length" and r.usage.completion_tokens == 3


def test_n_choices(client):
    r = client.chat.completions.create(model="gpt-4o", n=2, messages=[{"role": "user", "content": "Hello"}])
    assert [c.index for c in r.choices] == [0, 1]


def test_models_api(client):
    ids = [m.id for m in client.models.list()]
    assert "gpt-4o-2024-08-06" in ids
    assert client.models.retrieve("gpt-4o").id == "gpt-4o-2024-08-06"


async def _async_call(base_url: str) -> str:
    client = openai.AsyncOpenAI(api_key="sk-test", base_url=base_url, max_retries=0)
    r = await client.chat.completions.create(model="gpt-4o", messages=[{"role": "user", "content": "async"}])
    await client.close()
    return r.choices[0].message.content


def test_async_client(server):
    import asyncio

    assert asyncio.run(_async_call(server.base_url)).startswith(FAKE_PREFIX)


def test_standalone_cli_serves_until_stopped(tmp_path):
    script = tmp_path / "script.json"
    script.write_text(json.dumps([{"text": "from the script"}]))
    proc = subprocess.Popen([sys.executable, "-m", "tracelens.testing.fake_openai", "--port", "0", "--script",
                             str(script)], stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    try:
        base = proc.stdout.readline().strip()
        assert base.startswith("http://127.0.0.1:") and base.endswith("/v1")
        req = urllib.request.Request(base + "/chat/completions", method="POST",
                                     data=json.dumps({"model": "gpt-4o", "messages": [
                                         {"role": "user", "content": "hi"}]}).encode(),
                                     headers={"authorization": "Bearer k", "content-type": "application/json"})
        with urllib.request.urlopen(req, timeout=10) as resp:
            assert json.load(resp)["choices"][0]["message"]["content"] == "from the script"
    finally:
        proc.terminate()
        proc.wait(timeout=10)


def _post_chat(base_url: str, headers: dict[str, str]) -> tuple[int, dict]:
    req = urllib.request.Request(base_url + "/chat/completions", method="POST", headers=headers,
                                 data=b'{"model": "gpt-4o", "messages": [{"role": "user", "content": "a"}]}')
    try:
        with urllib.request.urlopen(req, timeout=10) as resp:
            return resp.status, json.load(resp)
    except urllib.error.HTTPError as e:
        return e.code, json.load(e)


def test_missing_or_malformed_bearer_gets_401_in_the_openai_error_shape(server):
    for headers in ({}, {"authorization": "Basic abc"}, {"authorization": "Bearer  "}):
        status, body = _post_chat(server.base_url, headers)
        assert status == 401
        assert set(body) == {"error"} and set(body["error"]) == {"message", "type", "param", "code"}
        assert body["error"]["type"] == "invalid_request_error" and body["error"]["code"] is None
        assert "didn't provide an API key" in body["error"]["message"]
    assert _post_chat(server.base_url, {"authorization": "Bearer anything"})[0] == 200  # no key configured


def test_wrong_key_gets_invalid_api_key_with_the_key_masked():
    with FakeOpenAIServer(api_key="sk-right-0123456789") as server:
        wrong = openai.OpenAI(api_key="sk-wrong-9876543210", base_url=server.base_url, max_retries=0)
        with pytest.raises(openai.AuthenticationError) as e:
            wrong.chat.completions.create(model="gpt-4o", messages=[{"role": "user", "content": "a"}])
        assert e.value.status_code == 401 and e.value.code == "invalid_api_key"
        assert "sk-wrong-9876543210" not in str(e.value) and "3210" in str(e.value)
        with pytest.raises(openai.AuthenticationError):
            wrong.models.list()
        right = openai.OpenAI(api_key="sk-right-0123456789", base_url=server.base_url, max_retries=0)
        assert right.chat.completions.create(model="gpt-4o", messages=[{"role": "user", "content": "a"}]).id
