"""The fake Messages API server: validation, streaming, scripting, and the real SDK against it."""

from __future__ import annotations

import json
import subprocess
import sys
import urllib.error
import urllib.request

import anthropic
import pytest

from tracelens.testing.fake_anthropic import FAKE_PREFIX, FakeAnthropicServer, Reply

HEADERS = {"x-api-key": "test-key", "anthropic-version": "2023-06-01", "content-type": "application/json"}
# The SDK warns about deprecated model ids; the fake serves them on purpose.
pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")

BODY = {"model": "claude-sonnet-4-5-20250929", "max_tokens": 50, "messages": [{"role": "user", "content": "hello"}]}


def post(base_url: str, body, headers=None, path="/v1/messages"):
    data = body if isinstance(body, bytes) else json.dumps(body).encode()
    req = urllib.request.Request(base_url + path, data=data, headers=HEADERS if headers is None else headers)
    try:
        with urllib.request.urlopen(req, timeout=5) as r:
            return r.status, dict(r.headers), r.read()
    except urllib.error.HTTPError as e:
        return e.code, dict(e.headers), e.read()


def sdk(server: FakeAnthropicServer) -> anthropic.Anthropic:
    return anthropic.Anthropic(api_key="test-key", base_url=server.base_url, max_retries=0)


@pytest.fixture
def server():
    with FakeAnthropicServer() as s:
        yield s


def test_sdk_message_alias_resolves_to_snapshot(server):
    server.enqueue(Reply.message("hi there", input_tokens=7, output_tokens=3))
    raw = sdk(server).messages.with_raw_response.create(
        model="claude-sonnet-4-5", max_tokens=20, messages=[{"role": "user", "content": "hello"}]
    )
    msg = raw.parse()
    assert raw.headers["x-tracelens-fake"] == "1"
    assert raw.headers["request-id"].startswith("req_")
    assert msg.model == "claude-sonnet-4-5-20250929"
    assert msg.content[0].text == "hi there"
    assert (msg.usage.input_tokens, msg.usage.output_tokens) == (7, 3)
    rec = server.message_requests[0]
    assert rec.json["model"] == "claude-sonnet-4-5" and json.loads(rec.raw) == rec.json
    assert "anthropic-version" in rec.headers


@pytest.mark.parametrize(
    ("change", "status", "etype", "needle"),
    [
        ({"drop_header": "x-api-key"}, 401, "authentication_error", "x-api-key"),
        ({"drop_header": "anthropic-version"}, 400, "invalid_request_error", "anthropic-version"),
        ({"drop": "max_tokens"}, 400, "invalid_request_error", "max_tokens: Field required"),
        ({"drop": "model"}, 400, "invalid_request_error", "model: Field required"),
        ({"drop": "messages"}, 400, "invalid_request_error", "messages: Field required"),
        ({"set": ("max_tokens", 0)}, 400, "invalid_request_error", "greater than or equal to 1"),
        ({"set": ("messages", [])}, 400, "invalid_request_error", "at least one message"),
        ({"set": ("stream_me", True)}, 400, "invalid_request_error", "Extra inputs are not permitted"),
        ({"set": ("temperature", 3)}, 400, "invalid_request_error", "temperature"),
        (
            {"set": ("messages", [{"role": "user", "content": "a"}, {"role": "user", "content": "b"}])},
            400,
            "invalid_request_error",
            "roles must alternate",
        ),
        ({"set": ("messages", [{"role": "system", "content": "a"}])}, 400, "invalid_request_error", "role"),
        ({"set": ("messages", [{"role": "assistant", "content": "a"}])}, 400, "invalid_request_error", "first message"),
        ({"set": ("model", "claude-nonexistent-20990101")}, 404, "not_found_error", "claude-nonexistent-20990101"),
        ({"raw": b"{not json"}, 400, "invalid_request_error", "JSON"),
    ],
)
def test_validation_like_the_real_api(server, change, status, etype, needle):
    body = dict(BODY)
    headers = dict(HEADERS)
    if "drop_header" in change:
        headers.pop(change["drop_header"])
    if "drop" in change:
        body.pop(change["drop"])
    if "set" in change:
        body[change["set"][0]] = change["set"][1]
    code, hdrs, data = post(server.base_url, change.get("raw", body), headers)
    err = json.loads(data)
    assert code == status
    assert err["type"] == "error" and err["error"]["type"] == etype
    assert needle in err["error"]["message"]
    assert hdrs.get("x-tracelens-fake") == "1"


def test_sdk_sees_not_found_for_unknown_model(server):
    with pytest.raises(anthropic.NotFoundError) as ei:
        sdk(server).messages.create(model="claude-2.0", max_tokens=5, messages=[{"role": "user", "content": "x"}])
    assert "claude-2.0" in str(ei.value)


def test_streaming_event_sequence_and_sdk_accumulation(server):
    text = "The quick brown fox jumps over the lazy dog, twice over."
    server.enqueue(Reply.message(text), Reply.refusal("I can't help with that."))
    code, hdrs, data = post(server.base_url, dict(BODY, stream=True))
    assert code == 200 and hdrs["content-type"].startswith("text/event-stream")
    events = [line[len("event: ") :] for line in data.decode().splitlines() if line.startswith("event: ")]
    assert events[:3] == ["message_start", "content_block_start", "ping"]
    assert events[-3:] == ["content_block_stop", "message_delta", "message_stop"]
    assert events.count("content_block_delta") == -(-len(text) // 16)
    payloads = [json.loads(line[6:]) for line in data.decode().splitlines() if line.startswith("data: ")]
    assert "".join(p["delta"]["text"] for p in payloads if p["type"] == "content_block_delta") == text

    with sdk(server).messages.stream(model="claude-sonnet-4-5", max_tokens=20, messages=BODY["messages"]) as s:
        final = s.get_final_message()
    assert final.stop_reason == "refusal"
    assert final.content[0].text == "I can't help with that."
    assert final.stop_details is not None and final.stop_details.category == "cyber"


def test_scripted_errors_carry_status_type_and_retry_after(server):
    server.enqueue(Reply.rate_limited(retry_after=3), Reply.overloaded(), Reply.server_error())
    code, hdrs, data = post(server.base_url, BODY)
    assert code == 429 and hdrs["retry-after"] == "3" and json.loads(data)["error"]["type"] == "rate_limit_error"
    code, _, data = post(server.base_url, BODY)
    assert code == 529 and json.loads(data)["error"]["type"] == "overloaded_error"
    code, _, data = post(server.base_url, BODY)
    assert code == 500 and json.loads(data)["error"]["type"] == "api_error"
    code, _, _ = post(server.base_url, BODY)
    assert code == 200  # queue exhausted: back to the default


def test_rules_match_by_prompt_and_model_and_expire(server):
    server.add_rule(Reply.message("rule A"), contains="weather", times=1)
    server.add_rule(Reply.message("rule B"), model="claude-haiku-4-5-20251001")
    c = sdk(server)

    def ask(text, model="claude-sonnet-4-5-20250929"):
        m = c.messages.create(model=model, max_tokens=5, messages=[{"role": "user", "content": text}])
        return m.content[0].text

    assert ask("what's the weather") == "rule A"
    assert ask("what's the weather").startswith(FAKE_PREFIX)  # times=1 used up
    assert ask("anything", model="claude-haiku-4-5") == "rule B"  # alias resolves before matching


def test_default_echo_is_labelled_deterministic_and_seed_varied():
    def texts(seed, temperature=None):
        with FakeAnthropicServer(seed=seed) as s:
            body = dict(BODY, temperature=temperature) if temperature is not None else BODY
            return [json.loads(post(s.base_url, body)[2])["content"][0]["text"] for _ in range(4)]

    a, b, c = texts(1), texts(1), texts(2)
    assert a == b and a != c
    assert all(t.startswith(FAKE_PREFIX) and "hello" in t for t in a)
    assert len(set(a)) > 1  # repeated calls vary, so a replay demo shows variance
    assert len(set(texts(1, temperature=0))) == 1  # temperature 0 asks for determinism


def test_slow_reply_times_out_the_client(server):
    server.enqueue(Reply.slow(3, "late"))
    c = anthropic.Anthropic(api_key="k", base_url=server.base_url, max_retries=0, timeout=0.2)
    with pytest.raises(anthropic.APITimeoutError):
        c.messages.create(**BODY)


def test_count_tokens(server):
    code, _, data = post(server.base_url, {"model": "claude-sonnet-4-5", "messages": BODY["messages"]}, path="/v1/messages/count_tokens")
    assert code == 200 and json.loads(data)["input_tokens"] > 0


def get(base_url: str, path: str, headers=None):
    req = urllib.request.Request(base_url + path, headers=HEADERS if headers is None else headers)
    try:
        with urllib.request.urlopen(req, timeout=5) as r:
            return r.status, json.loads(r.read())
    except urllib.error.HTTPError as e:
        return e.code, json.loads(e.read())


def test_models_api_lists_pages_like_the_real_one(server):
    code, page = get(server.base_url, "/v1/models?limit=4")
    assert code == 200 and set(page) == {"data", "has_more", "first_id", "last_id"} and page["has_more"] is True
    assert page["data"][0] == {"type": "model", "id": "claude-opus-4-5-20251101", "display_name": "Claude Opus 4.5",
                               "created_at": "2025-11-01T00:00:00Z"}
    assert (page["first_id"], page["last_id"]) == (page["data"][0]["id"], page["data"][-1]["id"])
    _, nxt = get(server.base_url, f"/v1/models?limit=4&after_id={page['last_id']}")
    _, prev = get(server.base_url, f"/v1/models?limit=4&before_id={nxt['first_id']}")
    assert prev["data"] == page["data"]
    # the SDK's auto-pagination walks every page, newest model first
    ids = [m.id for m in sdk(server).models.list(limit=2)]
    assert sorted(ids) == sorted(server.models) and ids[0] == "claude-opus-4-5-20251101" and len(ids) == len(set(ids))
    assert ids[-1] == "claude-3-haiku-20240307"
    assert get(server.base_url, "/v1/models?limit=0")[0] == 400
    assert get(server.base_url, "/v1/models?after_id=nope")[0] == 400
    assert get(server.base_url, "/v1/models", headers={"anthropic-version": "2023-06-01"})[0] == 401


def test_models_api_resolves_aliases_and_404s_unknown_ids():
    info = {"claude-3-haiku-20240307": {"deprecated_at": "2025-12-01T00:00:00Z", "display_name": "Claude Haiku 3"}}
    with FakeAnthropicServer(models=["claude-3-haiku-20240307", "claude-opus-4-6"], aliases={"haiku": "claude-3-haiku-20240307"},
                             model_info=info) as s:
        client = sdk(s)
        m = client.models.retrieve("haiku")
        assert (m.id, m.display_name, m.deprecated_at.year) == ("claude-3-haiku-20240307", "Claude Haiku 3", 2025)
        m = client.models.retrieve("claude-opus-4-6")
        assert m.id == "claude-opus-4-6" and m.created_at.year == 1970  # undated: the epoch, as the API does
        with pytest.raises(anthropic.NotFoundError) as e:
            client.models.retrieve("claude-nonexistent")
        assert e.value.body["error"]["type"] == "not_found_error"
        assert [r.path for r in s.requests] == ["/v1/models/haiku", "/v1/models/claude-opus-4-6",
                                                "/v1/models/claude-nonexistent"]


def test_requests_record_exact_bytes(server):
    raw = b'{"model":"claude-sonnet-4-5-20250929","max_tokens":5,"messages":[{"role":"user","content":"h\\u00e9"}]}'
    post(server.base_url, raw)
    assert server.requests[-1].raw == raw
    assert server.requests[-1].json["messages"][0]["content"] == "hé"


def test_module_runs_standalone():
    proc = subprocess.Popen(
        [sys.executable, "-m", "tracelens.testing.fake_anthropic", "--port", "0", "--seed", "3"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        base_url = proc.stdout.readline().strip()
        assert base_url.startswith("http://127.0.0.1:")
        code, hdrs, data = post(base_url, BODY)
        assert code == 200 and hdrs["x-tracelens-fake"] == "1"
        assert json.loads(data)["model"] == "claude-sonnet-4-5-20250929"
    finally:
        proc.terminate()
        proc.wait(timeout=5)


def test_standalone_serves_a_stores_models_and_scripted_rules(tmp_path):
    """`--store` serves every model the store's traces name (no 404 for a newer snapshot), resolving the
    aliases the traces resolved through; `--rules` answers per prompt; `--model` and `--models-file` add ids."""
    from tracelens.ingest.pipeline import ingest
    from tracelens.store import Store

    newer = "claude-sonnet-4-5-20261112"
    log = tmp_path / "log.jsonl"
    log.write_text(json.dumps({
        "timestamp": "2026-11-21T15:03:28Z",
        "request": {"model": "claude-sonnet-4-5", "max_tokens": 50,
                    "messages": [{"role": "user", "content": "where is my refund?"}]},
        "response": {"id": "msg_x1", "type": "message", "role": "assistant", "model": newer,
                     "content": [{"type": "text", "text": "Sorry, I can't help with refunds."}],
                     "stop_reason": "end_turn", "usage": {"input_tokens": 5, "output_tokens": 7}},
    }) + "\n")
    store = tmp_path / "store"
    assert ingest(Store(store, create=True), [str(log)], workers=0).total("stored") == 1
    rules = tmp_path / "rules.json"
    rules.write_text(json.dumps([{"contains": "refund", "model": newer, "refusal": True, "text": "I can't."},
                                 {"contains": "weather", "text": "Sunny.", "times": 1}]))
    models_file = tmp_path / "models.txt"
    models_file.write_text("# extra ids\nclaude-test-1-20990101\n\n")
    proc = subprocess.Popen(
        [sys.executable, "-m", "tracelens.testing.fake_anthropic", "--port", "0", "--store", str(store),
         "--rules", str(rules), "--model", "claude-extra-2-20990202", "--models-file", str(models_file)],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )
    try:
        base_url = proc.stdout.readline().strip()
        assert base_url.startswith("http://127.0.0.1:"), proc.stderr.read()

        def ask(text, model):
            code, _, data = post(base_url, {**BODY, "model": model, "messages": [{"role": "user", "content": text}]})
            return code, json.loads(data)

        code, msg = ask("where is my refund?", "claude-sonnet-4-5")  # the alias resolves as the stored traces did
        assert code == 200 and msg["model"] == newer
        assert msg["stop_reason"] == "refusal" and msg["content"][0]["text"] == "I can't."
        code, msg = ask("what weather?", newer)
        assert msg["content"][0]["text"] == "Sunny."
        code, msg = ask("what weather?", newer)  # times: 1 is used up: the default echo answers
        assert msg["content"][0]["text"].startswith(FAKE_PREFIX)
        for model in ("claude-test-1-20990101", "claude-extra-2-20990202", "claude-sonnet-4-5-20250929"):
            assert ask("hi", model)[0] == 200
        assert ask("hi", "claude-unknown-20990303")[0] == 404
    finally:
        proc.terminate()
        proc.wait(timeout=5)


def test_standalone_rejects_a_bad_rules_file(tmp_path):
    rules = tmp_path / "rules.json"
    rules.write_text(json.dumps([{"contains": "x", "colour": "blue"}]))
    proc = subprocess.run([sys.executable, "-m", "tracelens.testing.fake_anthropic", "--rules", str(rules)],
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == 2 and "rule 0" in proc.stderr and "colour" in proc.stderr
