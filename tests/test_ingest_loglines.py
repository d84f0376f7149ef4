"""tracelens.ingest.loglines: one {request, response|error, metadata} envelope, read the same by both log importers."""

from __future__ import annotations

import io
import json

import pytest

from tracelens.ingest.base import IngestOptions, RecordError, Source
from tracelens.ingest.loglines import META_FIELDS, TS_KEYS, anthropic_log_record, openai_log_record
from tracelens.ingest.registry import get_format

META = {"user": "u1", "session_id": "s1", "thread_id": "c1", "feature": "search", "service": "api", "tier": "gold",
        "flags": {"beta": True}}

ANTHROPIC = {
    "provider": "anthropic", "time": "2026-10-01T08:00:00Z", "latency_ms": 120, "metadata": META,
    "request": {"model": "claude-sonnet-4-5", "max_tokens": 50, "messages": [{"role": "user", "content": "hi"}]},
    "response": {"id": "msg_1", "type": "message", "role": "assistant", "model": "claude-sonnet-4-5-20250929",
                 "content": [{"type": "text", "text": "hello"}], "stop_reason": "end_turn",
                 "usage": {"input_tokens": 3, "output_tokens": 1}},
}
OPENAI = {
    "provider": "openai", "time": "2026-10-01T08:00:00Z", "latency_ms": 120, "metadata": META,
    "request": json.dumps({"model": "gpt-4o", "messages": [{"role": "user", "content": "hi"}]}),
    "response": json.dumps({"id": "chatcmpl-1", "object": "chat.completion", "created": 1790000000, "model": "gpt-4o",
                            "choices": [{"index": 0, "message": {"role": "assistant", "content": "hello"},
                                         "finish_reason": "stop"}],
                            "usage": {"prompt_tokens": 3, "completion_tokens": 1}}),
}


@pytest.mark.parametrize("line", [ANTHROPIC, OPENAI], ids=["anthropic", "openai"])
def test_metadata_keys_name_columns_and_the_rest_are_attributes(line):
    rec = (anthropic_log_record(line, "line:1") if line is ANTHROPIC
           else openai_log_record(line, "line:1", IngestOptions()))
    cols = {k: rec[k] for k in ("user_id", "session_id", "conversation_id", "app", "service")}
    assert cols == {"user_id": "u1", "session_id": "s1", "conversation_id": "c1", "app": "search", "service": "api"}
    assert rec["attributes"]["tier"] == "gold" and rec["attributes"]["flags"] == '{"beta":true}'
    assert rec["timestamp"] == "2026-10-01T08:00:00Z" and rec["latency_ms"] == 120.0
    assert rec["response_text"] == "hello" and rec["http_status"] == 200 and rec["source_locator"] == "line:1"
    assert set(META_FIELDS.values()) == {"user_id", "session_id", "conversation_id", "app", "service"}


def test_timestamp_keys_in_order_of_preference():
    line = {**ANTHROPIC, "time": None, "ts": "2026-10-02T00:00:00Z", "created_at": "2026-10-03T00:00:00Z"}
    assert TS_KEYS.index("ts") < TS_KEYS.index("created_at")
    assert anthropic_log_record(line, "l")["timestamp"] == "2026-10-02T00:00:00Z"
    bare = {k: v for k, v in OPENAI.items() if k != "time"}
    rec = openai_log_record(bare, "l", IngestOptions())
    assert rec["timestamp"] == 1790000000 and rec["attributes"]["timestamp_source"] == "response_created"


def test_broken_lines_are_record_errors():
    with pytest.raises(RecordError, match="no 'request' field"):
        anthropic_log_record({"response": {}}, "l")
    with pytest.raises(RecordError, match="neither 'response' nor 'error'"):
        openai_log_record({"request": {"messages": []}}, "l", IngestOptions())
    with pytest.raises(RecordError, match="request.messages is not a list"):
        openai_log_record({"request": {"messages": "hi"}, "response": {}}, "l", IngestOptions())


def _parse(fmt: str, lines: list[dict]) -> list[dict]:
    data = b"".join(json.dumps(x).encode() + b"\n" for x in lines)
    items = list(get_format(fmt).parse(Source("mixed.jsonl", io.BytesIO(data), IngestOptions(), data[:4096])))
    for item in items:
        assert isinstance(item, dict), item
        item.pop("_raw", None)
    return items


def test_a_mixed_capture_file_reads_the_same_whichever_importer_reads_it():
    """tracelens.capture around both clients writes both APIs into one file; each line goes to its API's mapper."""
    a = _parse("anthropic_log", [ANTHROPIC, OPENAI])
    o = _parse("openai_log", [ANTHROPIC, OPENAI])
    assert [r["response_id"] for r in a] == ["msg_1", "chatcmpl-1"]
    assert [r["provider"] for r in a] == ["anthropic", "openai"]
    assert a == o
