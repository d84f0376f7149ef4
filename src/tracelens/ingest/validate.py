"""Type checks of provider request and response bodies, before their fields are read.

A body logged by an application or a proxy is untrusted JSON: a field can
hold any type. Reading one of the wrong type deep inside the normalisers
would raise a bare TypeError; these checks raise ``RecordError`` naming the
first part of the body whose JSON type is wrong, so the quarantine reason
says what to look at. They check types only: a body that passes may still
lack fields (a response without usage is fine).

``what`` names the body in the message as the importer's docs call it
(``request body``, ``input body``, ``request_body``); every importer of a
body shape uses the same check, so one body is accepted or refused the same
way whichever log it came in.
"""

from __future__ import annotations

from typing import Any

from tracelens.ingest.base import RecordError


def check_anthropic_request(req: Any, what: str = "request body") -> None:
    """RecordError naming the first part of an Anthropic Messages request whose JSON type is wrong.

    A Messages request is an object whose ``messages`` is a list of message
    objects, each with text or a list of content blocks as ``content``;
    ``tools`` and ``stop_sequences`` are lists when present.
    """
    if not isinstance(req, dict):
        raise RecordError(f"{what} is not a JSON object")
    if "messages" not in req:
        raise RecordError(f"{what} has no 'messages' (not a Messages API request)")
    msgs = req["messages"]
    if not isinstance(msgs, list):
        raise RecordError(f"{what} 'messages' is not a list")
    for i, m in enumerate(msgs):
        if not isinstance(m, dict):
            raise RecordError(f"{what} messages[{i}] is not an object")
        c = m.get("content")
        if c is not None and not isinstance(c, str | list):
            raise RecordError(f"{what} messages[{i}].content is neither text nor a list of blocks")
    if req.get("tools") is not None and not isinstance(req["tools"], list):
        raise RecordError(f"{what} 'tools' is not a list")
    stop = req.get("stop_sequences")
    if stop is not None and not isinstance(stop, list):
        raise RecordError(f"{what} 'stop_sequences' is not a list")


def check_anthropic_response(resp: Any, what: str = "response") -> None:
    """RecordError naming the first part of an Anthropic Message (or error body) whose JSON type is wrong."""
    if not isinstance(resp, dict):
        raise RecordError(f"{what} is not a JSON object")
    content = resp.get("content")
    if content is not None and not (isinstance(content, list) and all(isinstance(b, dict) for b in content)):
        raise RecordError(f"{what} 'content' is not a list of blocks")
    if resp.get("usage") is not None and not isinstance(resp["usage"], dict):
        raise RecordError(f"{what} 'usage' is not an object")


def check_openai_response(resp: Any) -> None:
    """RecordError naming the first part of a chat.completion whose JSON type is wrong."""
    if not isinstance(resp, dict):
        raise RecordError("response is not a JSON object")
    if resp.get("usage") is not None and not isinstance(resp["usage"], dict):
        raise RecordError("response.usage is not an object")
    details = (resp.get("usage") or {}).get("prompt_tokens_details")
    if details is not None and not isinstance(details, dict):
        raise RecordError("response.usage.prompt_tokens_details is not an object")
    choices = resp.get("choices")
    if choices is None:
        return
    if not isinstance(choices, list):
        raise RecordError("response.choices is not a list")
    for i, c in enumerate(choices[:1]):
        if not isinstance(c, dict):
            raise RecordError(f"response.choices[{i}] is not an object")
        msg = c.get("message")
        if msg is None:
            continue
        if not isinstance(msg, dict):
            raise RecordError(f"response.choices[{i}].message is not an object")
        calls = msg.get("tool_calls")
        if calls is not None and not (isinstance(calls, list) and all(
                isinstance(t, dict) and isinstance(t.get("function") or {}, dict) for t in calls)):
            raise RecordError(f"response.choices[{i}].message.tool_calls is not a list of tool call objects")
        if msg.get("function_call") is not None and not isinstance(msg["function_call"], dict):
            raise RecordError(f"response.choices[{i}].message.function_call is not an object")


def check_openai_request(req: dict) -> None:
    """RecordError naming the first part of a Chat Completions request whose JSON type is wrong."""
    msgs = req.get("messages")
    if not isinstance(msgs, list):
        raise RecordError("request.messages is not a list")
    for i, m in enumerate(msgs):
        if not isinstance(m, dict):
            raise RecordError(f"request.messages[{i}] is not an object")
        calls = m.get("tool_calls")
        if calls is not None and not (isinstance(calls, list) and all(
                isinstance(t, dict) and isinstance(t.get("function") or {}, dict) for t in calls)):
            raise RecordError(f"request.messages[{i}].tool_calls is not a list of tool call objects")
        if m.get("function_call") is not None and not isinstance(m["function_call"], dict):
            raise RecordError(f"request.messages[{i}].function_call is not an object")
    stop = req.get("stop")
    if stop is not None and not isinstance(stop, str | list):
        raise RecordError("request.stop is neither a string nor a list")
