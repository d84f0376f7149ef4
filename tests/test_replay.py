"""Replay core against the fake server with the real anthropic SDK: request fidelity, retries, safety, storage."""

from __future__ import annotations

import json
import logging
import threading

import polars as pl
import pytest

from tests.conftest import shared_path
from tracelens.replay import (
    AliasOnlyError,
    NotReplayableError,
    ReplayClient,
    ReplayError,
    build_plan,
    load_replays,
    write_replays,
)
from tracelens.replay.pricing import PriceError, load_prices
from tracelens.replay.request import first_party_model_id
from tracelens.replay.storage import REPLAY_SCHEMA
from tracelens.testing.fake_anthropic import FakeAnthropicServer, Reply

SECRET = "sk-ant-api03-TESTSECRET-0123456789abcdef"
SNAPSHOT = "claude-sonnet-4-5-20250929"

# A compact request body as the SDK sends it, with every replay-relevant field, a streamed call,
# an alias as model, non-ASCII text and block-level detail that must survive untouched.
REQUEST_RAW = (
    '{"model":"claude-sonnet-4-5","max_tokens":512,'
    '"system":[{"type":"text","text":"You are Ada, a support agent.","cache_control":{"type":"ephemeral"}}],'
    '"messages":[{"role":"user","content":"Wie kündige ich? ✓"},'
    '{"role":"assistant","content":[{"type":"text","text":"Let me check."},'
    '{"type":"tool_use","id":"toolu_01","name":"lookup","input":{"q":"cancel"}}]},'
    '{"role":"user","content":[{"type":"tool_result","tool_use_id":"toolu_01","content":"Policy: 30 days"}]}],'
    '"tools":[{"name":"lookup","description":"Search the help centre","input_schema":'
    '{"type":"object","properties":{"q":{"type":"string"}},"required":["q"]}}],'
    '"tool_choice":{"type":"auto"},"temperature":0.7,"top_p":0.9,"top_k":40,'
    '"stop_sequences":["\\n\\nHuman:"],"metadata":{"user_id":"u-4411"},"stream":true}'
)
# The documented transformation: drop "stream", put the snapshot in "model" (same position).
EXPECTED_BODY = (
    REQUEST_RAW.replace(',"stream":true', "").replace('"model":"claude-sonnet-4-5"', f'"model":"{SNAPSHOT}"').encode()
)


def make_trace(**kw) -> dict:
    t = {
        "trace_id": "tr_1",
        "provider": "anthropic",
        "model_requested": "claude-sonnet-4-5",
        "model_returned": SNAPSHOT,
        "request_raw": REQUEST_RAW,
        "request_is_exact": True,
        "response_text": "You can cancel within 30 days from your account page.",
        "stop_reason": "end_turn",
        "input_tokens": 1000,
        "output_tokens": 200,
    }
    t.update(kw)
    return t


@pytest.fixture
def key(monkeypatch):
    monkeypatch.setenv("ANTHROPIC_API_KEY", SECRET)
    monkeypatch.delenv("ANTHROPIC_BASE_URL", raising=False)
    monkeypatch.delenv("TRACELENS_PRICES", raising=False)
    monkeypatch.delenv("TRACELENS_PINNED_MODELS", raising=False)
    return SECRET


@pytest.fixture
def server():
    with FakeAnthropicServer() as s:
        yield s


class Sleeps:
    """Injected sleep: records what the client asked for, waits (almost) nothing."""

    def __init__(self):
        self.calls: list[float] = []

    def __call__(self, s: float) -> None:
        self.calls.append(s)


def client(server, **kw) -> ReplayClient:
    kw.setdefault("sleep", Sleeps())
    return ReplayClient(base_url=server.base_url, **kw)


# -- what is sent ------------------------------------------------------------------------------


def test_body_sent_is_recorded_request_minus_stream_with_pinned_model(key, server):
    plan = build_plan(make_trace(), n=3)
    assert plan.body == EXPECTED_BODY
    assert plan.model == SNAPSHOT and plan.dropped_stream and not plan.reconstructed
    assert any("stream" in w for w in plan.warnings)
    run = client(server).run([plan])
    assert len(run.results) == 3 and all(r.ok for r in run.results)
    sent = server.message_requests
    assert len(sent) == 3
    assert all(r.raw == EXPECTED_BODY for r in sent)  # byte for byte on the wire
    assert all("stream" not in r.json for r in sent)
    r = run.results[0]
    assert r.model_requested == SNAPSHOT and r.model_returned == SNAPSHOT
    assert r.request_id.startswith("req_") and r.response_text and r.stop_reason == "end_turn"
    assert r.input_tokens and r.output_tokens and r.latency_ms > 0
    assert not r.base_url_is_default and not r.reconstructed


def test_streamed_original_is_replayed_non_streaming(key, server):
    server.add_rule(Reply.message("non-streamed answer"))
    plan = build_plan(make_trace(), n=1)
    run = client(server).run([plan])
    assert run.results[0].response_text == "non-streamed answer"
    assert json.loads(run.results[0].response_raw)["type"] == "message"  # a JSON body, not SSE
    assert "stream" not in server.message_requests[0].json


def test_pretty_printed_request_keeps_values_and_key_order(key):
    raw = json.dumps(json.loads(REQUEST_RAW), indent=2)
    plan = build_plan(make_trace(request_raw=raw), n=1)
    assert plan.body == EXPECTED_BODY


def test_sdk_recorded_requests_replay_value_for_value(key, server):
    folder = shared_path("formats", "anthropic", "sdk_recorded_http")
    for f in sorted(folder.glob("test_messages__*.json")):
        entry = json.loads(f.read_text())[0]
        body = entry["request"]["body"]
        response = entry["response"]["body"] if isinstance(entry["response"].get("body"), dict) else {}
        trace = make_trace(
            trace_id=f.stem,
            request_raw=json.dumps(body),
            model_requested=body["model"],
            model_returned=response.get("model") or SNAPSHOT,
        )
        plan = build_plan(trace, n=1)
        expected = {k: v for k, v in body.items() if k != "stream"}
        expected["model"] = plan.model
        assert json.loads(plan.body) == expected
        assert list(json.loads(plan.body)) == list(expected)
        server.requests.clear()
        run = client(server).run([plan])
        assert run.results[0].ok, run.results[0].error
        assert server.message_requests[0].json == expected


def test_alias_only_trace_is_refused_with_explanation(key):
    with pytest.raises(AliasOnlyError, match="alias 'claude-sonnet-4-5'.*--model"):
        build_plan(make_trace(model_returned=None), n=1)
    with pytest.raises(AliasOnlyError, match="alias"):
        build_plan(make_trace(model_returned="claude-3-5-sonnet-latest"), n=1)
    with pytest.raises(AliasOnlyError, match="not a dated snapshot"):
        build_plan(make_trace(), n=1, model="claude-sonnet-4-5")
    plan = build_plan(make_trace(model_returned=None), n=1, model="claude-haiku-4-5-20251001")
    assert plan.model == "claude-haiku-4-5-20251001"
    plan = build_plan(make_trace(), n=1, model="claude-haiku-4-5-20251001")
    assert any("overridden" in w for w in plan.warnings)


def test_pinned_request_without_model_returned_is_used(key):
    raw = REQUEST_RAW.replace('"claude-sonnet-4-5"', f'"{SNAPSHOT}"')
    plan = build_plan(make_trace(request_raw=raw, model_requested=SNAPSHOT, model_returned=None), n=1)
    assert plan.model == SNAPSHOT and any("model_returned" in w for w in plan.warnings)


def test_undated_ids_declared_pinned_are_replayable(key, monkeypatch):
    # an undated id the catalog does not know, reported by the provider itself: the most specific identity
    # available, so it is replayed (with a warning)
    trace = make_trace(model_requested="claude-zephyr-9", model_returned="claude-zephyr-9")
    plan = build_plan(trace, n=1)
    assert plan.model == "claude-zephyr-9" and any("without a dated snapshot" in w for w in plan.warnings)
    # only the request recorded, undated and unknown: refused unless the user declares the id pinned
    trace = make_trace(model_requested="claude-zephyr-9", model_returned=None)
    with pytest.raises(AliasOnlyError, match="TRACELENS_PINNED_MODELS"):
        build_plan(trace, n=1)
    monkeypatch.setenv("TRACELENS_PINNED_MODELS", "claude-zephyr-9, claude-zephyr-10")
    assert build_plan(trace, n=1).model == "claude-zephyr-9"


def test_undated_fixed_ids_known_to_the_catalog_need_no_declaration(key):
    # claude-opus-4-6 is a fixed model by the shipped data: replayable from the request alone, no warning needed
    for returned in ("claude-opus-4-6", None):
        plan = build_plan(make_trace(model_requested="claude-opus-4-6", model_returned=returned), n=1)
        assert plan.model == "claude-opus-4-6"
        assert not any("without a dated snapshot" in w for w in plan.warnings)
    # an alias the catalog knows stays an alias even when the provider reported it back
    with pytest.raises(AliasOnlyError):
        build_plan(make_trace(model_requested="claude-haiku-4-5", model_returned="claude-haiku-4-5"), n=1)


def test_alias_decision_does_not_depend_on_the_installed_sdk(key, monkeypatch):
    """The SDK's model list changes with each release; the replay target must not."""
    import typing

    import anthropic.types

    from tracelens.modelcatalog import default_catalog

    cases = [
        make_trace(model_returned="claude-sonnet-4-5"),  # alias reported back: refused
        make_trace(model_requested="claude-opus-4-6", model_returned=None),  # fixed by the data
        make_trace(model_requested="claude-zephyr-9", model_returned="claude-zephyr-9"),  # shape rule + reported
        make_trace(),  # pinned snapshot reported
    ]

    def outcomes():
        default_catalog.cache_clear()
        out = []
        for t in cases:
            try:
                p = build_plan(t, n=1)
                out.append((p.model, tuple(p.warnings)))
            except AliasOnlyError as e:
                out.append(("alias", str(e)))
        return out

    before = outcomes()
    assert before[0][0] == "alias" and before[1][0] == "claude-opus-4-6" and before[3][0] == SNAPSHOT
    # an SDK release that lists dated siblings of everything, and one that lists nothing at all
    everything = typing.Literal["claude-sonnet-4-5-20250929", "claude-opus-4-6-20990101", "claude-zephyr-9-20990101"]
    monkeypatch.setattr(anthropic.types, "Model", everything | str, raising=False)
    assert outcomes() == before
    monkeypatch.setattr(anthropic.types, "Model", str, raising=False)
    assert outcomes() == before
    monkeypatch.delattr(anthropic.types, "Model", raising=False)
    assert outcomes() == before


@pytest.mark.parametrize(
    ("model", "expected"),
    [
        ("anthropic.claude-3-5-sonnet-20240620-v1:0", "claude-3-5-sonnet-20240620"),
        ("us.anthropic.claude-sonnet-4-20250514-v1:0", "claude-sonnet-4-20250514"),
        ("claude-3-5-sonnet-v2@20241022", "claude-3-5-sonnet-20241022"),
        ("claude-sonnet-4-5@20250929", "claude-sonnet-4-5-20250929"),
        (SNAPSHOT, SNAPSHOT),
        ("gpt-4o-2024-08-06", None),
    ],
)
def test_platform_ids_map_to_first_party(model, expected):
    assert first_party_model_id(model) == expected


def test_bedrock_trace_drops_platform_envelope(key):
    raw = '{"anthropic_version":"bedrock-2023-05-31","max_tokens":100,"messages":[{"role":"user","content":"hi"}]}'
    trace = make_trace(
        provider="bedrock",
        model_requested="anthropic.claude-3-5-sonnet-20240620-v1:0",
        model_returned=None,
        request_raw=raw,
    )
    plan = build_plan(trace, n=1)
    assert plan.body == b'{"max_tokens":100,"messages":[{"role":"user","content":"hi"}],"model":"claude-3-5-sonnet-20240620"}'
    assert any("anthropic_version" in w for w in plan.warnings)


def test_non_anthropic_traces_are_refused():
    with pytest.raises(NotReplayableError, match="only Anthropic"):
        build_plan(make_trace(provider="openai", model_requested="gpt-4o", model_returned="gpt-4o-2024-08-06"), n=1)


def test_reconstructed_from_normalised_fields(key, server):
    trace = make_trace(
        request_raw=None,
        system_prompt="You are terse.",
        messages=[
            {"role": "user", "text": "Weather in Paris?", "tool_calls": [], "tool_call_id": None, "name": None},
            {
                "role": "assistant",
                "text": None,
                "tool_calls": [{"id": "call_1", "name": "weather", "arguments": '{"city":"Paris"}'}],
                "tool_call_id": None,
                "name": None,
            },
            {"role": "tool", "text": "18C sunny", "tool_calls": [], "tool_call_id": "call_1", "name": "weather"},
        ],
        tool_definitions=json.dumps(
            [{"type": "function", "function": {"name": "weather", "description": "d", "parameters": {"type": "object"}}}]
        ),
        temperature=0.2,
        max_tokens=300,
        stop_sequences=["END"],
        seed=7,
    )
    plan = build_plan(trace, n=1)
    body = plan.body_json
    assert plan.reconstructed
    assert body == {
        "model": SNAPSHOT,
        "max_tokens": 300,
        "system": "You are terse.",
        "messages": [
            {"role": "user", "content": "Weather in Paris?"},
            {"role": "assistant", "content": [{"type": "tool_use", "id": "call_1", "name": "weather", "input": {"city": "Paris"}}]},
            {"role": "user", "content": [{"type": "tool_result", "tool_use_id": "call_1", "content": "18C sunny"}]},
        ],
        "tools": [{"name": "weather", "input_schema": {"type": "object"}, "description": "d"}],
        "temperature": 0.2,
        "stop_sequences": ["END"],
    }
    assert any("seed" in w for w in plan.warnings)
    run = client(server).run([plan])
    assert run.results[0].ok and run.results[0].reconstructed


# -- cost ----------------------------------------------------------------------------------------


def test_cost_estimate_from_recorded_tokens_and_price_table(key):
    plan = build_plan(make_trace(), n=5)
    e = plan.estimate
    assert (e.input_tokens, e.output_tokens, e.input_source, e.output_source) == (1000, 200, "recorded", "recorded")
    assert e.price_key == "claude-sonnet-4-5"
    assert e.usd == pytest.approx(5 * (1000 * 3.0 + 200 * 15.0) / 1e6)
    assert "$" in e.describe()


def test_cost_estimate_without_tokens_uses_chars_and_max_tokens(key):
    plan = build_plan(make_trace(input_tokens=None, output_tokens=None), n=2)
    e = plan.estimate
    assert e.input_source == "estimated" and e.input_tokens == -(-len(EXPECTED_BODY.decode()) // 3.5)
    assert e.output_source == "max_tokens" and e.output_tokens == 512


def test_unknown_price_and_user_price_file(key, tmp_path, monkeypatch):
    trace = make_trace(model_returned="claude-zephyr-9-20300101")
    assert build_plan(trace, n=1).estimate.usd is None
    assert "unknown price" in build_plan(trace, n=1).estimate.describe()
    f = tmp_path / "prices.json"
    f.write_text(json.dumps({"models": {"claude-zephyr-9": {"input": 1, "output": 2}}}))
    monkeypatch.setenv("TRACELENS_PRICES", str(f))
    assert build_plan(trace, n=1, prices=load_prices()).estimate.usd == pytest.approx((1000 + 400) / 1e6)
    f.write_text('{"models": {"x": {"input": "free"}}}')
    with pytest.raises(PriceError, match=str(f)):
        load_prices()


def test_trace_cost_is_the_recorded_tokens_at_list_price(key):
    from tracelens.replay.pricing import trace_cost

    cost = trace_cost(make_trace())
    assert cost.price_key == "claude-sonnet-4-5" and cost.usd == pytest.approx((1000 * 3.0 + 200 * 15.0) / 1e6)
    assert cost.describe() == "≈ $0.0060 at list price (claude-sonnet-4-5)"
    assert trace_cost(make_trace(output_tokens=None)) is None
    assert trace_cost(make_trace(input_tokens=float("nan"))) is None
    assert trace_cost(make_trace(model_returned="claude-zephyr-9-20300101", model_requested=None)) is None


def test_destination_is_where_the_client_sends(key, server):
    from tracelens.replay.client import DEFAULT_BASE_URL, destination

    assert destination() == DEFAULT_BASE_URL
    assert destination(env={"ANTHROPIC_BASE_URL": server.base_url}) == server.base_url
    assert destination("http://127.0.0.1:9", {"ANTHROPIC_BASE_URL": server.base_url}) == "http://127.0.0.1:9"
    server.enqueue(Reply.message("ok"))
    env = {"ANTHROPIC_API_KEY": SECRET, "ANTHROPIC_BASE_URL": server.base_url}
    run = ReplayClient(env=env).run([build_plan(make_trace(), n=1)])
    assert run.results[0].ok and len(server.message_requests) == 1


# -- retries, errors, interruption ------------------------------------------------------------


def test_429_retry_after_is_honoured_then_success(key, server):
    server.enqueue(Reply.rate_limited(retry_after=2), Reply.message("ok now"))
    sleeps = Sleeps()
    run = client(server, sleep=sleeps).run([build_plan(make_trace(), n=1)])
    r = run.results[0]
    assert r.ok and r.response_text == "ok now" and r.attempts == 2
    assert sleeps.calls == [2.0]
    assert len(server.message_requests) == 2


def test_529_overloaded_backs_off_exponentially_with_jitter(key, server):
    server.enqueue(Reply.overloaded(), Reply.overloaded(), Reply.server_error(), Reply.message("finally"))
    sleeps = Sleeps()
    run = client(server, sleep=sleeps, backoff_base=1.0).run([build_plan(make_trace(), n=1)])
    assert run.results[0].response_text == "finally" and run.results[0].attempts == 4
    assert len(sleeps.calls) == 3
    for i, s in enumerate(sleeps.calls):
        assert 0 <= s <= 2**i  # full jitter under the exponential cap


def test_persistent_overload_gives_up_with_a_clear_error(key, server):
    server.add_rule(Reply.overloaded())
    run = client(server, max_attempts=3).run([build_plan(make_trace(), n=1)])
    err = run.results[0].error
    assert "529" in err and "overloaded_error" in err and "3 attempts" in err
    assert len(server.message_requests) == 3


def test_retry_after_beyond_limit_is_not_waited(key, server):
    server.enqueue(Reply.rate_limited(retry_after=3600))
    sleeps = Sleeps()
    run = client(server, sleep=sleeps, max_retry_after=60).run([build_plan(make_trace(), n=1)])
    assert sleeps.calls == [] and "retry after more than 60s" in run.results[0].error


def test_unknown_snapshot_404_names_model_and_suggests_override(key, server):
    plan = build_plan(make_trace(model_returned="claude-3-5-sonnet-20240620"), n=1)
    err = client(server).run([plan]).results[0].error
    assert "claude-3-5-sonnet-20240620" in err and "not found" in err and "--model" in err and "sonnet" in err


def test_timeout_is_reported_and_not_retried(key, server):
    server.enqueue(Reply.slow(3, "too late"))
    run = client(server, timeout=0.3).run([build_plan(make_trace(), n=1)])
    assert "timed out after 0.3s" in run.results[0].error
    assert len(server.message_requests) == 1


def test_cancel_event_returns_partial_results(key, server):
    server.enqueue(Reply.message("one"), Reply.message("two"))
    server.add_rule(Reply.slow(3, "slow"))
    cancel = threading.Event()
    seen = []

    def on_result(r):
        seen.append(r)
        if len(seen) == 2:
            cancel.set()

    run = client(server, concurrency=1).run([build_plan(make_trace(), n=6)], cancel=cancel, on_result=on_result)
    assert run.interrupted and run.planned == 6 and run.not_run == 4
    assert [r.response_text for r in run.results] == ["one", "two"]


def test_keyboard_interrupt_returns_partial_results(key, server):
    server.enqueue(Reply.message("first"))
    server.add_rule(Reply.slow(3))

    def on_result(r):
        raise KeyboardInterrupt

    run = client(server, concurrency=1).run([build_plan(make_trace(), n=4)], on_result=on_result)
    assert run.interrupted and [r.response_text for r in run.results] == ["first"]


def test_concurrency_is_bounded(key, server):
    server.add_rule(Reply.slow(0.2, "x"))
    active = {"now": 0, "max": 0}
    lock = threading.Lock()
    real = ReplayClient.replay_one

    def counting(self, plan, sdk, cancel):
        with lock:
            active["now"] += 1
            active["max"] = max(active["max"], active["now"])
        try:
            return real(self, plan, sdk, cancel)
        finally:
            with lock:
                active["now"] -= 1

    c = client(server, concurrency=2)
    c.replay_one = counting.__get__(c)
    run = c.run([build_plan(make_trace(), n=5)])
    assert len(run.results) == 5 and active["max"] == 2


# -- the key stays secret ----------------------------------------------------------------------


def test_api_key_never_in_errors_reprs_results_or_logs(key, server, caplog, capsys):
    caplog.set_level(logging.DEBUG)
    # A server error that echoes the key back (worst case) must still not leak it.
    server.enqueue(Reply.error(400, "invalid_request_error", f"bad header value {SECRET}"))
    server.enqueue(Reply.error(401, "authentication_error", "invalid x-api-key"))
    c = client(server, concurrency=1)
    run = c.run([build_plan(make_trace(), n=2)])
    errors = [r.error for r in run.results]
    assert errors[0] and "[redacted]" in errors[0]
    assert "ANTHROPIC_API_KEY" in errors[1]  # names the variable, not the value
    blob = json.dumps([r.to_dict() for r in run.results]) + repr(c) + repr(run) + str(vars(c))
    # Connection failure path too.
    dead = ReplayClient(base_url="http://127.0.0.1:9", max_attempts=1, sleep=Sleeps())
    blob += json.dumps([r.to_dict() for r in dead.run([build_plan(make_trace(), n=1)]).results])
    out = capsys.readouterr()
    blob += out.out + out.err + caplog.text
    assert SECRET not in blob


def test_missing_key_is_reported_by_variable_name(monkeypatch, server):
    monkeypatch.delenv("MY_REPLAY_KEY", raising=False)
    with pytest.raises(ReplayError, match="MY_REPLAY_KEY"):
        ReplayClient(api_key_env="MY_REPLAY_KEY", base_url=server.base_url).run([build_plan(make_trace(), n=1)])
    assert server.requests == []


def test_key_env_and_sdk_base_url_env(monkeypatch, server):
    monkeypatch.setenv("MY_REPLAY_KEY", "other-secret")
    monkeypatch.setenv("ANTHROPIC_BASE_URL", server.base_url)
    run = ReplayClient(api_key_env="MY_REPLAY_KEY").run([build_plan(make_trace(), n=1)])
    assert run.results[0].ok and not run.results[0].base_url_is_default
    hdrs = server.message_requests[0].headers
    assert "other-secret" in (hdrs.get("x-api-key", "") + hdrs.get("authorization", ""))


# -- storage -----------------------------------------------------------------------------------


def test_results_round_trip_through_parquet(key, server, tmp_path):
    run = client(server).run([build_plan(make_trace(), n=2), build_plan(make_trace(trace_id="tr_2"), n=1)])
    files = write_replays(tmp_path, run.results)
    assert len(files) == 1 and files[0].parent.name.startswith("date=") and files[0].name.startswith("part-")
    assert not [p for p in files[0].parent.iterdir() if p.name.startswith(".")]  # no temp files left
    df = load_replays(tmp_path)
    assert df.columns == REPLAY_SCHEMA.names and df.height == 3
    assert load_replays(tmp_path, trace_ids=["tr_2"]).height == 1
    row = load_replays(tmp_path, trace_ids=["tr_1"]).row(0, named=True)
    assert row["model_requested"] == SNAPSHOT and row["base_url_is_default"] is False and row["error"] is None
    assert load_replays(tmp_path / "nowhere").height == 0
    assert load_replays(tmp_path / "nowhere").schema == pl.from_arrow(REPLAY_SCHEMA.empty_table()).schema
