"""tracelens.ingest.validate: one type check per body shape, whichever importer read the body."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tracelens.ingest.base import RecordError
from tracelens.ingest.validate import (
    check_anthropic_request,
    check_anthropic_response,
    check_openai_request,
    check_openai_response,
)

SAMPLES = Path(__file__).resolve().parent.parent / "sample_logs"

# Messages requests that both former validators (the HTTP-recording one and the Bedrock/Helicone one) accepted:
# the merged check accepts them all.
VALID_REQUESTS = [
    {"model": "claude-sonnet-4-5", "max_tokens": 64, "messages": [{"role": "user", "content": "hi"}]},
    {"messages": []},
    {"max_tokens": 10, "messages": [{"role": "user", "content": [{"type": "text", "text": "hi"}]}],
     "system": [{"type": "text", "text": "be brief"}], "stop_sequences": ["END"], "tools": []},
    {"messages": [
        {"role": "user", "content": "weather?"},
        {"role": "assistant", "content": [{"type": "tool_use", "id": "t1", "name": "w", "input": {"city": "Oslo"}}]},
        {"role": "user", "content": [{"type": "tool_result", "tool_use_id": "t1", "content": "3C"}]},
    ], "tools": [{"name": "w", "input_schema": {"type": "object"}}], "metadata": {"user_id": "u1"}},
    {"anthropic_version": "bedrock-2023-05-31", "max_tokens": 5, "messages": [{"role": "user", "content": None}]},
    {"messages": [{"role": "user"}], "stop_sequences": None, "tools": None},
    {"messages": [{"role": "user", "content": [{"type": "image", "source": {"type": "base64", "data": "AA=="}}]}],
     "thinking": {"type": "enabled", "budget_tokens": 1024}, "stream": True},
]


@pytest.mark.parametrize("body", VALID_REQUESTS)
def test_valid_messages_requests_pass(body):
    check_anthropic_request(body)


# Bodies one former validator let through although they are not Messages requests; the merged check names the part.
INVALID_REQUESTS = [
    ([{"role": "user"}], "request body is not a JSON object"),
    ({"model": "m"}, "request body has no 'messages' (not a Messages API request)"),
    ({"messages": {"role": "user"}}, "request body 'messages' is not a list"),
    ({"messages": ["hi"]}, "request body messages[0] is not an object"),
    ({"messages": [{"role": "user", "content": "a"}, {"role": "user", "content": 5}]},
     "request body messages[1].content is neither text nor a list of blocks"),
    ({"messages": [{"role": "user", "content": {"type": "text"}}]},
     "request body messages[0].content is neither text nor a list of blocks"),
    ({"messages": [], "tools": {"name": "w"}}, "request body 'tools' is not a list"),
    ({"messages": [], "stop_sequences": "END"}, "request body 'stop_sequences' is not a list"),
]


@pytest.mark.parametrize(("body", "reason"), INVALID_REQUESTS)
def test_invalid_messages_requests_name_the_first_wrong_part(body, reason):
    with pytest.raises(RecordError) as e:
        check_anthropic_request(body)
    assert str(e.value) == reason


def test_the_body_is_named_as_the_importer_calls_it():
    with pytest.raises(RecordError, match=r"^input body 'tools' is not a list$"):
        check_anthropic_request({"messages": [], "tools": "x"}, "input body")
    with pytest.raises(RecordError, match=r"^response_body 'usage' is not an object$"):
        check_anthropic_response({"content": [], "usage": 3}, "response_body")


def _bodies(value, out):
    """Anthropic request bodies inside a parsed sample value (bodies kept as JSON text included)."""
    if isinstance(value, str) and value.lstrip().startswith("{") and '"messages"' in value:
        _bodies(json.loads(value), out)
    elif isinstance(value, dict):
        if "messages" in value and ("max_tokens" in value or "anthropic_version" in value):
            out.append(value)
        for v in value.values():
            _bodies(v, out)
    elif isinstance(value, list):
        for v in value:
            _bodies(v, out)
    return out


@pytest.mark.parametrize("name", ["anthropic_log.jsonl", "anthropic_batch_requests.jsonl", "anthropic_http_recording.json",
                                  "bedrock_invocation_log.jsonl", "helicone_export.jsonl"])
def test_every_anthropic_request_in_the_samples_passes(name):
    text = (SAMPLES / name).read_text(encoding="utf-8")
    try:
        values = [json.loads(text)]
    except ValueError:
        values = [json.loads(line) for line in text.splitlines() if line.strip()]
    bodies = _bodies(values, [])
    assert bodies, f"no Anthropic request body found in {name}"
    for body in bodies:
        check_anthropic_request(body)


def test_anthropic_responses():
    check_anthropic_response({"type": "message", "content": [{"type": "text", "text": "x"}], "usage": {}})
    check_anthropic_response({"type": "error", "error": {"type": "overloaded_error"}})
    for body, reason in [
        ("text", "response is not a JSON object"),
        ({"content": "x"}, "response 'content' is not a list of blocks"),
        ({"content": [{"type": "text"}, "x"]}, "response 'content' is not a list of blocks"),
        ({"content": [], "usage": [1]}, "response 'usage' is not an object"),
    ]:
        with pytest.raises(RecordError) as e:
            check_anthropic_response(body)
        assert str(e.value) == reason


def test_openai_requests():
    check_openai_request({"messages": [{"role": "user", "content": "hi"}], "stop": "END"})
    check_openai_request({"messages": [{"role": "assistant", "tool_calls": [{"function": {"name": "f"}}]}], "stop": ["a"]})
    for body, reason in [
        ({"messages": "hi"}, "request.messages is not a list"),
        ({"messages": [3]}, "request.messages[0] is not an object"),
        ({"messages": [{"tool_calls": [{"function": "f"}]}]},
         "request.messages[0].tool_calls is not a list of tool call objects"),
        ({"messages": [{"function_call": "f"}]}, "request.messages[0].function_call is not an object"),
        ({"messages": [], "stop": 5}, "request.stop is neither a string nor a list"),
    ]:
        with pytest.raises(RecordError) as e:
            check_openai_request(body)
        assert str(e.value) == reason


def test_openai_responses():
    check_openai_response({"choices": [{"message": {"content": "x", "tool_calls": None}}], "usage": {}})
    check_openai_response({"error": {"message": "x"}})
    for body, reason in [
        ([], "response is not a JSON object"),
        ({"usage": 1}, "response.usage is not an object"),
        ({"usage": {"prompt_tokens_details": 1}}, "response.usage.prompt_tokens_details is not an object"),
        ({"choices": {}}, "response.choices is not a list"),
        ({"choices": [1]}, "response.choices[0] is not an object"),
        ({"choices": [{"message": "x"}]}, "response.choices[0].message is not an object"),
        ({"choices": [{"message": {"tool_calls": [1]}}]},
         "response.choices[0].message.tool_calls is not a list of tool call objects"),
        ({"choices": [{"message": {"function_call": []}}]}, "response.choices[0].message.function_call is not an object"),
    ]:
        with pytest.raises(RecordError) as e:
            check_openai_response(body)
        assert str(e.value) == reason
