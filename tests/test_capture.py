"""The capture helper records real SDK calls (streaming too) in the log format ingest reads, never the key."""

from __future__ import annotations

import asyncio
import json

import anthropic
import polars as pl
import pytest

from tracelens.capture import capture
from tracelens.ingest.pipeline import ingest
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
