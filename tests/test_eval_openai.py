"""Eval targets on OpenAI and OpenAI-compatible endpoints: the request translation, the answer, retries and keys.

Sends go to the local fake Chat Completions server through the real ``openai`` SDK; assertions are on the exact
body the server received.
"""

from __future__ import annotations

import json
import threading

import pytest

from tests.conftest import shared_path
from tracelens.evals.openai_target import (
    NO_KEY_PLACEHOLDER,
    Cancelled,
    MissingKeyError,
    OpenAITarget,
    estimate_cost,
    openai_prices,
)
from tracelens.evals.targets import TargetSpec, parse_target
from tracelens.evals.translate import TOOL_ERROR_PREFIX, anthropic_to_openai, is_reasoning_model, openai_to_response
from tracelens.replay.pricing import PriceTable
from tracelens.testing.fake_openai import FakeOpenAIServer, Reply

KEY = "sk-proj-Tr4celensTestKey0123456789abcdef"
PNG = "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mP8z8BQDwAEhQGAhKmMIQAAAABJRU5ErkJggg=="

WEATHER_TOOL = {
    "name": "get_weather",
    "description": "Current weather for a city",
    "input_schema": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
}


@pytest.fixture
def server():
    with FakeOpenAIServer(api_key=KEY) as s:
        yield s


def target(server, model="gpt-4o-mini", *, env=None, sleeps=None, **kw):
    return OpenAITarget(model, base_url=server.base_url, env={"OPENAI_API_KEY": KEY} if env is None else env,
                        sleep=(sleeps.append if sleeps is not None else None), **kw)


def send(t, request):
    return t.send(request, threading.Event())


def user(text):
    return {"role": "user", "content": text}


# -- translation, checked on the wire ---------------------------------------------------------------------------


def test_every_field_reaches_the_server_translated(server):
    request = {
        "model": "claude-sonnet-4-5-20250929",
        "max_tokens": 300,
        "system": [{"type": "text", "text": "You are terse.", "cache_control": {"type": "ephemeral"}},
                   {"type": "text", "text": "Answer in French."}],
        "messages": [user([{"type": "text", "text": "Weather in Paris?"}])],
        "temperature": 0.3,
        "top_p": 0.9,
        "top_k": 40,
        "stop_sequences": ["END", "STOP"],
        "stream": True,
        "metadata": {"user_id": "u-42"},
        "tools": [WEATHER_TOOL],
        "tool_choice": {"type": "tool", "name": "get_weather", "disable_parallel_tool_use": True},
        "thinking": {"type": "enabled", "budget_tokens": 2000},
        "frobnicate": 1,
    }
    t = target(server)
    r = send(t, request)
    assert r.ok, r.error
    sent = server.chat_requests[-1].json
    assert sent == {
        "model": "gpt-4o-mini",
        "messages": [
            {"role": "system", "content": [{"type": "text", "text": "You are terse."},
                                           {"type": "text", "text": "Answer in French."}]},
            {"role": "user", "content": "Weather in Paris?"},
        ],
        "max_tokens": 300,
        "stop": ["END", "STOP"],
        "temperature": 0.3,
        "top_p": 0.9,
        "tools": [{"type": "function", "function": {"name": "get_weather", "description": "Current weather for a city",
                                                    "parameters": WEATHER_TOOL["input_schema"]}}],
        "tool_choice": {"type": "function", "function": {"name": "get_weather"}},
        "parallel_tool_calls": False,
        "user": "u-42",
    }
    losses = t.plan(request).losses
    for fragment in ("top_k", "thinking", "cache_control", "frobnicate", "stop sequence hit"):
        assert any(fragment in loss for loss in losses), (fragment, losses)
    assert not t.plan(request).blocking
    # the fake answered with a call of the forced tool
    assert r.stop_reason == "tool_use" and r.tool_calls[0].name == "get_weather"
    assert r.tool_calls[0].input == {"city": "example city"}


@pytest.mark.parametrize(("choice", "expected"), [
    ({"type": "auto"}, "auto"), ({"type": "any"}, "required"), ({"type": "none"}, "none"),
])
def test_tool_choice_modes(choice, expected):
    body = anthropic_to_openai({"max_tokens": 5, "messages": [user("hi")], "tools": [WEATHER_TOOL],
                                "tool_choice": choice}, "gpt-4o").body
    assert body["tool_choice"] == expected
    assert "parallel_tool_calls" not in body


def test_max_tokens_by_model_family_and_flavor():
    req = {"max_tokens": 64, "temperature": 0.5, "messages": [user("hi")]}
    for model in ("o3", "o4-mini", "o1-2024-12-17", "gpt-5-mini", "gpt-5"):
        tr = anthropic_to_openai(req, model)
        assert tr.body.get("max_completion_tokens") == 64 and "max_tokens" not in tr.body, model
        assert "temperature" not in tr.body  # reasoning models take only the default sampling ...
        assert any("temperature dropped" in loss for loss in tr.losses)  # ... and that is said
    assert not any(map(is_reasoning_model, ("gpt-4o", "gpt-4.1-mini", "gpt-4o-mini", "o30-custom", "")))
    assert is_reasoning_model("o3-pro") and is_reasoning_model("gpt-5.1")
    assert anthropic_to_openai(req, "gpt-4.1").body["max_tokens"] == 64
    compat = anthropic_to_openai(req, "o3", flavor="compatible").body  # a local "o3" is not OpenAI's
    assert compat["max_tokens"] == 64 and compat["temperature"] == 0.5


def test_tool_use_round_trip_history(server):
    request = {
        "max_tokens": 200,
        "tools": [WEATHER_TOOL],
        "messages": [
            user("Weather in Paris and Oslo?"),
            {"role": "assistant", "content": [
                {"type": "thinking", "thinking": "two cities", "signature": "sig"},
                {"type": "text", "text": "Checking both."},
                {"type": "tool_use", "id": "toolu_01", "name": "get_weather", "input": {"city": "Paris"}},
                {"type": "tool_use", "id": "toolu_02", "name": "get_weather", "input": {"city": "Oslo"}},
            ]},
            {"role": "user", "content": [
                {"type": "tool_result", "tool_use_id": "toolu_01", "content": "18C sunny"},
                {"type": "tool_result", "tool_use_id": "toolu_02", "is_error": True,
                 "content": [{"type": "text", "text": "service down"}]},
                {"type": "text", "text": "Summarise."},
            ]},
        ],
    }
    server.enqueue(Reply.message("Paris: 18C. Oslo: unknown."))
    r = send(target(server), request)
    assert r.ok and r.stop_reason == "end_turn" and r.text == "Paris: 18C. Oslo: unknown."
    msgs = server.chat_requests[-1].json["messages"]
    assert msgs[1] == {
        "role": "assistant", "content": "Checking both.",
        "tool_calls": [
            {"id": "toolu_01", "type": "function", "function": {"name": "get_weather", "arguments": '{"city": "Paris"}'}},
            {"id": "toolu_02", "type": "function", "function": {"name": "get_weather", "arguments": '{"city": "Oslo"}'}},
        ],
    }
    assert msgs[2:] == [
        {"role": "tool", "tool_call_id": "toolu_01", "content": "18C sunny"},
        {"role": "tool", "tool_call_id": "toolu_02", "content": TOOL_ERROR_PREFIX + "service down"},
        {"role": "user", "content": "Summarise."},
    ]
    assert any("thinking blocks" in loss for loss in anthropic_to_openai(request, "gpt-4o").losses)


def test_tool_only_turns_and_error_without_content():
    tr = anthropic_to_openai({"max_tokens": 9, "messages": [
        user("go"),
        {"role": "assistant", "content": [{"type": "tool_use", "id": "t1", "name": "f", "input": {}}]},
        {"role": "user", "content": [{"type": "tool_result", "tool_use_id": "t1", "is_error": True}]},
    ]}, "gpt-4o")
    assert tr.body["messages"][1] == {"role": "assistant", "content": None, "tool_calls": [
        {"id": "t1", "type": "function", "function": {"name": "f", "arguments": "{}"}}]}
    assert tr.body["messages"][2] == {"role": "tool", "tool_call_id": "t1", "content": TOOL_ERROR_PREFIX.rstrip()}
    assert len(tr.body["messages"]) == 3 and not tr.blocking


def test_image_blocks(server):
    request = {"max_tokens": 50, "messages": [user([
        {"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": PNG}},
        {"type": "image", "source": {"type": "url", "url": "https://example.com/cat.jpg"}},
        {"type": "text", "text": "What is this?"},
    ])]}
    assert send(target(server), request).ok
    assert server.chat_requests[-1].json["messages"] == [{"role": "user", "content": [
        {"type": "image_url", "image_url": {"url": f"data:image/png;base64,{PNG}"}},
        {"type": "image_url", "image_url": {"url": "https://example.com/cat.jpg"}},
        {"type": "text", "text": "What is this?"},
    ]}]
    # an endpoint of the compatible flavor is not assumed to fetch URLs: not sent, said why
    compat = OpenAITarget("llava", base_url=server.base_url, flavor="compatible", env={})
    r = send(compat, request)
    assert r.error.startswith("not translatable: an image given by URL")
    assert len(server.chat_requests) == 1


@pytest.mark.parametrize(("request_", "why"), [
    ({"messages": [user([{"type": "document", "source": {"type": "base64", "media_type": "application/pdf",
                                                         "data": "JVBERi0="}}, {"type": "text", "text": "sum"}])]},
     "document blocks"),
    ({"messages": [user("news?")], "tools": [{"type": "web_search_20250305", "name": "web_search"}]}, "server tool"),
    ({"messages": [user("ls")], "tools": [{"type": "bash_20250124", "name": "bash"}]}, "Anthropic-defined tool"),
    ({"messages": [user("hi"), {"role": "assistant", "content": "Sure, here"}]}, "assistant prefill"),
    ({"messages": [user("hi")], "stop_sequences": ["a", "b", "c", "d", "e"]}, "5 stop sequences"),
    ({"messages": [user([{"type": "image", "source": {"type": "file", "file_id": "file_1"}}])]}, "'file' source"),
    ({"messages": [user([{"type": "tool_result", "tool_use_id": "t", "content": [
        {"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": PNG}}]}])]},
     "image inside a tool_result"),
    ({"messages": [user("hi")], "mcp_servers": [{"type": "url", "url": "https://mcp.example", "name": "x"}]},
     "MCP servers"),
    ({"messages": []}, "no messages"),
    ({"messages": [user([{"type": "search_result", "source": "s", "title": "t", "content": []}])]}, "search_result"),
])
def test_blocking_losses_are_never_sent(server, request_, why):
    request_ = {"max_tokens": 20, **request_}
    t = target(server)
    plan = t.plan(request_)
    assert plan.blocking and any(why in b for b in plan.blockers), plan.blockers
    assert set(plan.blockers) <= set(plan.losses)
    r = send(t, request_)
    assert r.error == plan.reason and r.error.startswith("not translatable: ")
    assert server.chat_requests == []


def test_compatible_flavor_differences():
    req = {"max_tokens": 10, "metadata": {"user_id": "u1", "tier": "gold"}, "messages": [user("hi")],
           "stop_sequences": list("abcdef")}
    tr = anthropic_to_openai(req, "llama3", flavor="compatible")
    assert "user" not in tr.body and tr.body["stop"] == list("abcdef") and not tr.blocking
    assert any("metadata.user_id dropped" in loss for loss in tr.losses)
    assert any("tier" in loss for loss in tr.losses)
    with pytest.raises(ValueError, match="flavor"):
        anthropic_to_openai(req, "x", flavor="azure")


def test_structured_output_format():
    schema = {"type": "object", "title": "Order Item", "properties": {"n": {"type": "integer"}}, "required": ["n"],
              "additionalProperties": False}
    tr = anthropic_to_openai({"max_tokens": 5, "messages": [user("x")],
                              "output_config": {"format": {"type": "json_schema", "schema": schema}}}, "gpt-4o")
    assert tr.body["response_format"] == {"type": "json_schema",
                                          "json_schema": {"name": "Order_Item", "schema": schema, "strict": True}}
    loose = anthropic_to_openai({"max_tokens": 5, "messages": [user("x")], "output_format": {
        "type": "json_schema", "schema": {"type": "array", "items": {"type": "integer"}}}}, "gpt-4o")
    assert "strict" not in loose.body["response_format"]["json_schema"] and not loose.blocking
    assert any("without strict" in loss for loss in loose.losses)
    optional = {**schema, "properties": {"n": {"type": "integer"}, "note": {"type": "string"}}}
    nested = {**schema, "properties": {"n": {"type": "object", "properties": {"a": {"type": "string"}}}}}
    for not_strict in (optional, nested):
        tr = anthropic_to_openai({"max_tokens": 5, "messages": [user("x")], "output_format": {"schema": not_strict}},
                                 "gpt-4o")
        assert "strict" not in tr.body["response_format"]["json_schema"], not_strict


# -- the answer --------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(("finish", "stop"), [
    ("stop", "end_turn"), ("length", "max_tokens"), ("tool_calls", "tool_use"), ("function_call", "tool_use"),
    ("content_filter", "refusal"), ("something_new", "something_new"),
])
def test_finish_reason_mapping(finish, stop):
    data = {"model": "m", "choices": [{"index": 0, "message": {"role": "assistant", "content": "x"},
                                       "finish_reason": finish}]}
    r = openai_to_response(data, 1.0)
    assert r.stop_reason == stop and r.refusal is None


def test_finish_reasons_from_the_server(server):
    r = send(target(server), {"max_tokens": 3, "messages": [user("tell me a long story please")]})
    assert r.stop_reason == "max_tokens" and r.output_tokens == 3
    server.enqueue(Reply.message("done", finish_reason="content_filter"))
    assert send(target(server), {"max_tokens": 50, "messages": [user("x")]}).stop_reason == "refusal"


def test_structured_refusal(server):
    server.enqueue(Reply(refusal="I can't help with that."))
    r = send(target(server), {"max_tokens": 50, "messages": [user("something bad")]})
    assert r.ok and r.refusal == "full" and r.text == "I can't help with that."


def test_response_fields_and_tool_arguments(server):
    server.enqueue(Reply.tool_call("lookup", '{"q": unquoted}', system_fingerprint="fp_abc", prompt_tokens=11,
                                   completion_tokens=7))
    r = send(target(server, "gpt-4.1"), {"max_tokens": 50, "messages": [user("find it")]})
    assert r.ok and r.text is None and r.stop_reason == "tool_use"
    assert r.tool_calls[0].name == "lookup" and r.tool_calls[0].input == '{"q": unquoted}'  # raw when not JSON
    assert (r.input_tokens, r.output_tokens) == (11, 7)
    assert r.model_returned == "gpt-4.1-2025-04-14" and r.system_fingerprint == "fp_abc"
    assert json.loads(r.raw)["system_fingerprint"] == "fp_abc" and r.latency_ms > 0


def test_a_body_that_is_not_a_completion_is_an_error():
    assert openai_to_response({"object": "list", "data": []}, None).error.startswith("response has no choices")
    assert "not a Chat Completions" in openai_to_response([1], None).error


# -- retries, errors, keys ---------------------------------------------------------------------------------------


def test_429_with_retry_after_then_success(server):
    server.enqueue(Reply.rate_limited(3), Reply(status=503, headers={"retry-after-ms": "250"}), Reply.message("ok"))
    sleeps: list[float] = []
    r = send(target(server, sleeps=sleeps), {"max_tokens": 20, "messages": [user("hi")]})
    assert r.ok and r.text == "ok"
    assert sleeps == [3.0, 0.25] and len(server.chat_requests) == 3
    # every attempt sent the same body
    assert len({req.raw for req in server.chat_requests}) == 1


def test_retries_are_bounded_and_say_so(server):
    sleeps: list[float] = []
    r = send(target(server, sleeps=sleeps, max_attempts=3), {"max_tokens": 20, "messages": [user("[[fake:status=500]]")]})
    assert r.error.startswith("HTTP 500 server_error: The server had an error") and "gave up after 3 attempts" in r.error
    assert len(server.chat_requests) == 3 and len(sleeps) == 2
    server.enqueue(Reply.rate_limited(9999))
    r = send(target(server, sleeps=sleeps), {"max_tokens": 20, "messages": [user("hi")]})
    assert "retry after more than 300s" in r.error and len(server.chat_requests) == 4


def test_400_is_not_retried(server):
    server.enqueue(Reply.error(400, message="Invalid 'messages[0].content': too long."), Reply.message("never"))
    sleeps: list[float] = []
    r = send(target(server, sleeps=sleeps), {"max_tokens": 20, "messages": [user("hi")]})
    assert r.error == "HTTP 400 invalid_request_error: Invalid 'messages[0].content': too long."
    assert sleeps == [] and len(server.chat_requests) == 1


def test_unknown_model_and_timeout_are_not_retried(server):
    r = send(target(server, "gpt-9000"), {"max_tokens": 20, "messages": [user("hi")]})
    assert r.error.startswith("model gpt-9000 was not found at http://127.0.0.1") and "model_not_found" in r.error
    server.enqueue(Reply.slow(2.0))
    r = send(target(server, timeout=0.3), {"max_tokens": 20, "messages": [user("hi")]})
    assert r.error.startswith("timed out after 0.3s (not retried")
    assert len(server.chat_requests) == 2


def test_connection_errors_are_retried():
    with FakeOpenAIServer() as s:
        base = s.base_url
    sleeps: list[float] = []
    t = OpenAITarget("gpt-4o", base_url=base, env={"OPENAI_API_KEY": KEY}, sleep=sleeps.append, max_attempts=2)
    r = send(t, {"max_tokens": 5, "messages": [user("hi")]})
    assert r.error.startswith(f"connection error to {base}") and "gave up after 2 attempts" in r.error
    assert len(sleeps) == 1


def test_missing_key_names_the_variable(server):
    env: dict[str, str] = {}
    t = OpenAITarget("gpt-4o", base_url=server.base_url, api_key_env="MY_OPENAI_KEY", env=env)
    with pytest.raises(MissingKeyError, match=r"MY_OPENAI_KEY is not set"):
        t.check_key()
    with pytest.raises(MissingKeyError, match=r"MY_OPENAI_KEY"):
        send(t, {"max_tokens": 5, "messages": [user("hi")]})
    with pytest.raises(MissingKeyError):  # even for a case that would not be sent: the run cannot go on
        send(t, {"max_tokens": 5, "messages": [user("hi"), {"role": "assistant", "content": "Well"}]})
    assert server.requests == []
    env["MY_OPENAI_KEY"] = KEY  # read at send time, not when the target was made
    assert send(t, {"max_tokens": 5, "messages": [user("hi")]}).ok


def test_the_key_never_shows(server, monkeypatch):
    wrong = "sk-proj-WrongKeyButRealLooking0123456789"
    t = target(server, env={"OPENAI_API_KEY": wrong})
    r = send(t, {"max_tokens": 5, "messages": [user("hi")]})
    assert r.error.startswith("authentication failed (HTTP 401 invalid_request_error invalid_api_key: Incorrect API key")
    assert "$OPENAI_API_KEY" in r.error
    assert server.chat_requests[-1].headers["authorization"] == f"Bearer {wrong}"
    monkeypatch.setenv("OPENAI_API_KEY", wrong)  # the real environment: nothing of it is kept on the target
    with FakeOpenAIServer() as proxy:  # an error text that quotes the key (a proxy echoing it, say) is scrubbed
        t = OpenAITarget("gpt-4o", base_url=proxy.base_url)
        proxy.enqueue(Reply.error(400, message=f"bad header x-key={wrong} (Bearer {wrong})"))
        r = send(t, {"max_tokens": 5, "messages": [user("hi")]})
    assert r.error.startswith("HTTP 400 invalid_request_error: bad header")
    assert wrong not in r.error and "[redacted]" in r.error
    assert wrong not in repr(t) and wrong not in json.dumps(vars(t), default=str)


def test_compatible_flavor_without_a_key(server):
    with FakeOpenAIServer() as local:  # takes any bearer value, as Ollama and vLLM do
        t = OpenAITarget("gpt-4o-mini", base_url=local.base_url, flavor="compatible", env={})
        t.check_key()
        r = send(t, {"max_tokens": 20, "temperature": 0.2, "metadata": {"user_id": "u"},
                     "messages": [user("hi")]})
        assert r.ok
        rec = local.chat_requests[-1]
        assert rec.headers["authorization"] == f"Bearer {NO_KEY_PLACEHOLDER}"
        assert rec.json == {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "hi"}],
                            "max_tokens": 20, "temperature": 0.2}
        assert t.name == f"compatible:gpt-4o-mini@{local.base_url}"
        env_key = OpenAITarget("m", base_url=local.base_url, flavor="compatible", env={"OPENAI_COMPATIBLE_API_KEY": "x"},
                               api_key_env="OPENAI_COMPATIBLE_API_KEY")
        assert send(env_key, {"max_tokens": 5, "messages": [user("hi")]}).ok is False  # 404: unknown model
        assert local.chat_requests[-1].headers["authorization"] == "Bearer x"
    with pytest.raises(ValueError, match="base_url"):
        OpenAITarget("llama3", flavor="compatible")


def test_cancel_stops_before_and_between_attempts(server):
    cancel = threading.Event()
    cancel.set()
    with pytest.raises(Cancelled):
        target(server).send({"max_tokens": 5, "messages": [user("hi")]}, cancel)
    assert server.chat_requests == []
    server.enqueue(Reply.rate_limited(1))
    cancel = threading.Event()
    t = OpenAITarget("gpt-4o", base_url=server.base_url, env={"OPENAI_API_KEY": KEY},
                     sleep=lambda s: cancel.set())
    with pytest.raises(Cancelled):
        t.send({"max_tokens": 5, "messages": [user("hi")]}, cancel)
    assert len(server.chat_requests) == 1


def test_names_and_base_url():
    assert OpenAITarget("gpt-4o-mini", env={}).name == "openai:gpt-4o-mini"
    assert OpenAITarget("gpt-4o-mini", env={}).base_url == "https://api.openai.com/v1"
    assert OpenAITarget("gpt-4o", env={"OPENAI_BASE_URL": "http://proxy:1/v1"}).base_url == "http://proxy:1/v1"
    assert OpenAITarget("llama3", base_url="http://127.0.0.1:11434/v1", env={}).name == \
        "openai:llama3@http://127.0.0.1:11434/v1"


# -- cost --------------------------------------------------------------------------------------------------------


def test_cost_from_the_price_table():
    table = openai_prices(env={})
    assert table.as_of and table.sources == ["built-in openai_prices.json"]
    for model in ("gpt-4o", "gpt-4o-mini", "gpt-4.1", "gpt-4.1-mini", "o3", "o4-mini"):
        assert table.lookup(model)[0] == model
    p = table.models["gpt-4o-mini"]
    expected = (1000 * p.input + 500 * p.output) / 1e6
    assert estimate_cost("gpt-4o-mini-2024-07-18", 1000, 500, prices=table) == pytest.approx(expected)
    assert estimate_cost("gpt-4o-mini", 1000, 500, prices=table) == pytest.approx(expected)
    assert estimate_cost("gpt-4o-mini", None, 500, prices=table) is None
    # never a guess: a sibling missing from the table is not priced as its prefix
    assert estimate_cost("gpt-4o-audio-preview", 10, 10, prices=table) is None
    assert estimate_cost("llama3", 10, 10, prices=table) is None
    custom = PriceTable({"gpt-4.1": table.models["gpt-4.1"]})
    assert estimate_cost("gpt-4.1-nano", 10, 10, prices=custom) is None


def test_user_prices_override_the_shipped_table(tmp_path):
    f = tmp_path / "prices.json"
    f.write_text(json.dumps({"models": {"llama3": {"input": 0, "output": 0}, "gpt-4o": {"input": 1, "output": 2}}}))
    table = openai_prices(env={"TRACELENS_PRICES": str(f)})
    assert estimate_cost("llama3", 100, 100, prices=table) == 0.0
    assert estimate_cost("gpt-4o", 1_000_000, 1_000_000, prices=table) == 3.0


# -- target specs ------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(("spec", "expected"), [
    ("pinned", TargetSpec("pinned", None, None, "ANTHROPIC_API_KEY")),
    ("anthropic:claude-sonnet-4-5", TargetSpec("anthropic", "claude-sonnet-4-5", None, "ANTHROPIC_API_KEY")),
    ("anthropic:claude-haiku-4-5@https://gw.example/anthropic",
     TargetSpec("anthropic", "claude-haiku-4-5", "https://gw.example/anthropic", "ANTHROPIC_API_KEY")),
    ("openai:gpt-4o-mini", TargetSpec("openai", "gpt-4o-mini", None, "OPENAI_API_KEY")),
    ("openai:gemini-2.5-flash@https://generativelanguage.googleapis.com/v1beta/openai#GEMINI_API_KEY",
     TargetSpec("openai", "gemini-2.5-flash", "https://generativelanguage.googleapis.com/v1beta/openai",
                "GEMINI_API_KEY")),
    ("compatible:llama3@http://127.0.0.1:11434/v1",
     TargetSpec("compatible", "llama3", "http://127.0.0.1:11434/v1", "OPENAI_COMPATIBLE_API_KEY")),
    ("compatible:Qwen/Qwen2.5-7B@http://gpu:8000/v1#VLLM_KEY",
     TargetSpec("compatible", "Qwen/Qwen2.5-7B", "http://gpu:8000/v1", "VLLM_KEY")),
    ("anthropic:claude-3-5-sonnet-v2@20241022",  # a Vertex id: the @ is not a base URL
     TargetSpec("anthropic", "claude-3-5-sonnet-v2@20241022", None, "ANTHROPIC_API_KEY")),
    ("pinned#WORK_KEY", TargetSpec("pinned", None, None, "WORK_KEY")),
])
def test_parse_target(spec, expected):
    assert parse_target(spec, env={}) == expected


def test_parse_target_names_and_environment():
    assert parse_target("compatible:llama3@http://127.0.0.1:11434/v1", env={}).name == \
        "compatible:llama3@http://127.0.0.1:11434/v1"
    assert parse_target("openai:gpt-4o", env={}).flavor == "openai"
    assert parse_target("anthropic:claude-haiku-4-5", env={}).flavor is None
    assert parse_target("openai:gpt-4o", env={"OPENAI_BASE_URL": "http://p/v1"}).base_url == "http://p/v1"
    assert parse_target("anthropic:x", env={"ANTHROPIC_BASE_URL": "http://a"}).base_url == "http://a"


@pytest.mark.parametrize("spec", [
    "", "gpt-4o", "azure:gpt-4o", "openai:", "compatible:llama3", "openai:gpt 4o", "openai:gpt-4o#not-a-var",
    "openai:gpt-4o@https://", "pinned:x",
])
def test_parse_target_rejects_bad_specs(spec):
    with pytest.raises(ValueError, match="Accepted forms: pinned, anthropic:MODEL"):
        parse_target(spec, env={})


# -- real request samples ----------------------------------------------------------------------------------------


def _anthropic_requests(node):
    if isinstance(node, dict):
        if isinstance(node.get("messages"), list) and "max_tokens" in node:
            yield node
            return
        for v in node.values():
            yield from _anthropic_requests(v)
    elif isinstance(node, list):
        for v in node:
            yield from _anthropic_requests(v)


def test_real_anthropic_requests_translate_or_say_why():
    """Optional: the Anthropic request bodies recorded from the SDK's tests and the docs translate cleanly."""
    root = shared_path("formats", "anthropic")
    requests = []
    for f in sorted(root.rglob("*.json*")):
        lines = f.read_text(encoding="utf-8").splitlines() if f.suffix == ".jsonl" else [f.read_text(encoding="utf-8")]
        for line in lines:
            if line.strip():
                requests.extend(_anthropic_requests(json.loads(line)))
    assert len(requests) >= 5
    for req in requests:
        for flavor in ("openai", "compatible"):
            tr = anthropic_to_openai(req, "gpt-4.1", flavor=flavor)
            assert tr.blocking == bool(tr.blockers) and all(b.strip() for b in tr.losses)
            if not tr.blocking:
                assert tr.body["messages"] and tr.body["max_tokens"] == req["max_tokens"]
                assert tr.body["model"] == "gpt-4.1"
                schema = (req.get("output_config") or {}).get("format", {}).get("schema")
                if schema:
                    assert tr.body["response_format"]["json_schema"]["schema"] == schema
                    assert not any("output_config" in loss for loss in tr.losses)
