"""tracelens.ingest.normalize: stream reassembly shared by every importer that meets an OpenAI stream."""

from __future__ import annotations

import pytest

from tracelens.ingest.base import RecordError
from tracelens.ingest.normalize import assemble_openai_chunks


def chunk(delta, finish=None, index=0, **extra):
    return {"id": "c", "object": "chat.completion.chunk", "created": 1790000000, "model": "gpt-4o",
            "choices": [{"index": index, "delta": delta, "finish_reason": finish}], **extra}


def test_assemble_chunks_keeps_refusal_and_filter():
    out = assemble_openai_chunks([
        chunk({"role": "assistant", "refusal": "I can't "}), chunk({"refusal": "do that."}),
        {**chunk({}, "stop"), "choices": [{"index": 0, "delta": {}, "finish_reason": "content_filter",
                                            "content_filter_results": {"sexual": {"filtered": True}}}]},
    ])
    ch = out["choices"][0]
    assert ch["message"]["refusal"] == "I can't do that." and ch["finish_reason"] == "content_filter"
    assert ch["content_filter_results"] == {"sexual": {"filtered": True}}


def test_assemble_chunks_joins_text_tool_calls_and_usage():
    out = assemble_openai_chunks([
        chunk({"role": "assistant", "content": "Hel"}, system_fingerprint="fp_1"),
        chunk({"content": "lo"}),
        chunk({"tool_calls": [{"index": 0, "id": "call_1", "function": {"name": "get_", "arguments": '{"ci'}}]}),
        chunk({"tool_calls": [{"index": 0, "function": {"name": "weather", "arguments": 'ty":"Oslo"}'}}]}),
        chunk({"content": "second choice"}, "stop", index=1),
        chunk({}, "tool_calls"),
        {"id": "c", "object": "chat.completion.chunk", "choices": [], "usage": {"prompt_tokens": 3}},
        "not a chunk",
    ])
    assert (out["id"], out["model"], out["created"], out["system_fingerprint"]) == ("c", "gpt-4o", 1790000000, "fp_1")
    assert out["usage"] == {"prompt_tokens": 3}
    first, second = out["choices"]
    assert first["message"]["content"] == "Hello" and first["finish_reason"] == "tool_calls"
    assert first["message"]["tool_calls"] == [
        {"id": "call_1", "type": "function", "function": {"name": "get_weather", "arguments": '{"city":"Oslo"}'}}]
    assert second == {"index": 1, "message": {"role": "assistant", "content": "second choice"}, "finish_reason": "stop"}


def test_assemble_chunks_error_and_empty_streams():
    assert assemble_openai_chunks([{"error": {"message": "overloaded"}}]) == {"error": {"message": "overloaded"}}
    with pytest.raises(RecordError, match="no chat.completion.chunk with choices"):
        assemble_openai_chunks([{"object": "chat.completion.chunk"}, 3])
