"""Translate an Anthropic Messages request into a Chat Completions request, and a completion back.

Pure (no network). A request is never silently changed: what cannot be
carried over is listed in ``Translation.losses``, one line each, and the
losses that change what the model is *asked* make the translation
``blocking``: the runner then records an error outcome "not translatable:
..." instead of sending a different request.

``anthropic_to_openai(request, model, flavor=)`` (``flavor`` is ``openai``
for api.openai.com, ``compatible`` for any other Chat Completions endpoint:
Gemini's OpenAI-compatible endpoint, vLLM, Ollama):

* ``system`` (a string or text blocks) -> a first ``system`` message;
  ``messages``: text blocks -> ``content`` (a string for one text block,
  else a list of parts), base64 images -> ``image_url`` data URLs, URL
  images -> ``image_url`` (flavor ``openai`` only), assistant ``tool_use`` ->
  ``tool_calls`` (arguments JSON-encoded), user ``tool_result`` -> ``role:
  tool`` messages with ``tool_call_id``, placed before the user's other
  content in their order; a result with ``is_error`` gets its content
  prefixed ``TOOL_ERROR_PREFIX`` (Chat Completions has no error flag).
* ``max_tokens`` -> ``max_completion_tokens`` for OpenAI reasoning models
  (o1/o3/o4/gpt-5 families), else ``max_tokens`` (always ``max_tokens`` for
  ``compatible``); ``temperature``/``top_p`` as they are (OpenAI's
  temperature runs 0-2, Anthropic's 0-1: every Anthropic value is valid
  there, the same number is sent); ``stop_sequences`` -> ``stop``; tools ->
  ``function`` tools; ``tool_choice`` auto/any/tool/none -> auto/required/
  ``{"type": "function", ...}``/none; ``disable_parallel_tool_use`` ->
  ``parallel_tool_calls: false``; ``metadata.user_id`` -> ``user``
  (``openai`` only); ``output_config.format`` / ``output_format`` JSON
  schema -> ``response_format`` ``json_schema``; ``stream`` is dropped (the
  targets never stream; the answer is the same).

Blocking losses (the model would be asked something else): document,
search-result, container-upload or unknown content blocks; images given by
Files API id, by URL to a ``compatible`` endpoint (Ollama, for one, takes
only data URLs), or inside a tool result; server tools (web search, code
execution, ...) and Anthropic-defined client tools (bash, text editor,
computer use) whose schema is Anthropic's; server-tool blocks in the
history; MCP servers and containers; an assistant prefill (a last assistant
message the answer would continue: a Chat Completions answer starts a new
turn); more than 4 stop sequences (``openai``); a JSON output format that is
not a schema; a request without a messages list.

Informational losses (the question is the same, how it is answered may
differ): ``top_k``; ``thinking`` (the extended thinking budget) and thinking
blocks in the history; ``cache_control`` markers; citations; sampling
parameters a reasoning model does not take; ``metadata`` a flavor cannot
carry; ``service_tier``; ``output_config.effort``; a stop sequence hit being
reported as an ordinary stop; a reasoning model's token limit also bounding
its hidden reasoning; a JSON schema OpenAI cannot enforce strictly;
unknown keys (listed).

``openai_to_response(data, latency_ms)`` reads a completion into a
provider-neutral ``Response`` (see its docstring).
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from typing import Any

from tracelens.evals.model import Response, ToolCall

FLAVORS = ("openai", "compatible")

TOOL_ERROR_PREFIX = "[tool error] "
"""Prefix of a ``role: tool`` message translated from a ``tool_result`` with ``is_error: true``."""

OPENAI_MAX_STOP = 4

FINISH_REASONS = {
    "stop": "end_turn",
    "length": "max_tokens",
    "tool_calls": "tool_use",
    "function_call": "tool_use",
    "content_filter": "refusal",
}
"""Chat Completions ``finish_reason`` -> the Messages API's ``stop_reason`` vocabulary."""

# OpenAI reasoning model families: they take max_completion_tokens and only the default sampling.
_REASONING = re.compile(r"^(o1|o3|o4|gpt-5)(\b|[-.])")

_KNOWN_TOP = frozenset({
    "model", "messages", "system", "max_tokens", "temperature", "top_p", "top_k", "stop_sequences", "stream",
    "metadata", "tools", "tool_choice", "thinking", "service_tier", "output_format", "output_config",
    "mcp_servers", "container",
})
_ANTHROPIC_CLIENT_TOOLS = ("bash_", "text_editor_", "computer_", "memory_")


def is_reasoning_model(model: str) -> bool:
    """True for OpenAI reasoning model ids (o1, o3, o4 and gpt-5 families, dated snapshots included)."""
    return bool(_REASONING.match(model or ""))


@dataclass
class Translation:
    """A Chat Completions request body and what could not be carried over.

    ``losses`` lists every loss, one line each; ``blockers`` the ones that
    change what the model is asked (``blocking`` is True when there is one:
    the request must not be sent).
    """

    body: dict[str, Any]
    losses: list[str] = field(default_factory=list)
    blockers: list[str] = field(default_factory=list)

    @property
    def blocking(self) -> bool:
        """True when a loss changes what the model is asked: the runner records an error instead of sending."""
        return bool(self.blockers)

    @property
    def reason(self) -> str:
        """``not translatable: ...`` with the blocking losses, for an error outcome ("" when not blocking)."""
        return "not translatable: " + "; ".join(self.blockers) if self.blockers else ""


class _Tx:
    """Collects losses while one request is translated (each reported once)."""

    def __init__(self, flavor: str) -> None:
        self.flavor = flavor
        self.losses: list[str] = []
        self.blockers: list[str] = []

    def info(self, text: str) -> None:
        """Record an informational loss."""
        if text not in self.losses:
            self.losses.append(text)

    def block(self, text: str) -> None:
        """Record a blocking loss (it is a loss too)."""
        self.info(text)
        if text not in self.blockers:
            self.blockers.append(text)

    def note_cache(self, block: Any) -> None:
        """Record the cache_control loss when ``block`` carries a marker."""
        if isinstance(block, dict) and "cache_control" in block:
            self.info("cache_control markers dropped (prompt caching; no effect on the answer)")


def anthropic_to_openai(request: dict[str, Any], model: str, *, flavor: str = "openai") -> Translation:
    """Translate a Messages request body for ``model`` on a Chat Completions endpoint (see the module docstring).

    Never raises on a malformed request: what cannot be read is a blocking loss.
    """
    if flavor not in FLAVORS:
        raise ValueError(f"flavor must be one of {', '.join(FLAVORS)}, not {flavor!r}")
    tx = _Tx(flavor)
    body: dict[str, Any] = {"model": model}
    if not isinstance(request, dict) or not isinstance(request.get("messages"), list) or not request["messages"]:
        tx.block("the request has no messages list")
        return Translation(body, tx.losses, tx.blockers)
    reasoning = flavor == "openai" and is_reasoning_model(model)

    messages: list[dict[str, Any]] = []
    system = _system_message(request.get("system"), tx)
    if system is not None:
        messages.append(system)
    for i, msg in enumerate(request["messages"]):
        messages.extend(_message(msg, i, tx))
    last = request["messages"][-1]
    if isinstance(last, dict) and last.get("role") == "assistant":
        tx.block("assistant prefill (the answer continues a last assistant message) has no Chat Completions "
                 "equivalent: the answer would start a new turn")
    body["messages"] = messages

    _limits(request, body, tx, reasoning)
    _sampling(request, body, tx, reasoning)
    _tools(request, body, tx)
    _output_format(request, body, tx)
    _others(request, body, tx)
    return Translation(body, tx.losses, tx.blockers)


# -- system and messages -------------------------------------------------------------------------------------------


def _system_message(system: Any, tx: _Tx) -> dict[str, Any] | None:
    if system is None or system == "" or system == []:
        return None
    if isinstance(system, str):
        return {"role": "system", "content": system}
    if not isinstance(system, list):
        tx.block(f"system is a {type(system).__name__}, expected a string or text blocks")
        return None
    parts: list[dict[str, Any]] = []
    for _, block in _non_text(system, tx, parts):
        tx.block(f"a system block of type {_kind(block)} cannot be translated")
    return {"role": "system", "content": _content(parts)}


def _kind(block: Any) -> str:
    return repr(block.get("type")) if isinstance(block, dict) else type(block).__name__


def _non_text(blocks: list[Any], tx: _Tx, parts: list[dict[str, Any]]):
    """Yield ``(type, block)`` for every block but text; text blocks become parts appended to ``parts``."""
    for block in blocks:
        tx.note_cache(block)
        kind = block.get("type") if isinstance(block, dict) else None
        if kind == "text" and isinstance(block.get("text"), str):
            if block.get("citations"):
                tx.info("citations on text blocks dropped (the text is kept)")
            parts.append({"type": "text", "text": block["text"]})
        else:
            yield kind, block


def _content(parts: list[dict[str, Any]]) -> str | list[dict[str, Any]]:
    """A string for a single text part, else the parts."""
    if len(parts) == 1 and parts[0]["type"] == "text":
        return parts[0]["text"]
    return parts


def _blocks(content: Any, where: str, tx: _Tx) -> list[Any]:
    if isinstance(content, str):
        return [{"type": "text", "text": content}]
    if isinstance(content, list):
        return content
    tx.block(f"{where} has content of type {type(content).__name__}, expected a string or blocks")
    return []


def _message(msg: Any, i: int, tx: _Tx) -> list[dict[str, Any]]:
    if not isinstance(msg, dict) or msg.get("role") not in ("user", "assistant"):
        tx.block(f"messages[{i}] is not a user or assistant message")
        return []
    blocks = _blocks(msg.get("content"), f"messages[{i}]", tx)
    if msg["role"] == "assistant":
        return _assistant(blocks, i, tx)
    return _user(blocks, i, tx)


def _image_part(block: dict[str, Any], tx: _Tx) -> dict[str, Any] | None:
    source = block.get("source")
    if not isinstance(source, dict):
        tx.block("an image block without a source cannot be translated")
        return None
    if source.get("type") == "base64" and isinstance(source.get("data"), str):
        media = source.get("media_type") or "image/png"
        return {"type": "image_url", "image_url": {"url": f"data:{media};base64,{source['data']}"}}
    if source.get("type") == "url" and isinstance(source.get("url"), str):
        if tx.flavor != "openai":
            tx.block("an image given by URL: OpenAI-compatible endpoints differ in fetching URLs (Ollama takes only "
                     "data URLs), so the case cannot be translated for the compatible flavor")
            return None
        return {"type": "image_url", "image_url": {"url": source["url"]}}
    tx.block(f"an image given by {source.get('type')!r} source (e.g. a Files API id) cannot be translated")
    return None


def _user(blocks: list[Any], i: int, tx: _Tx) -> list[dict[str, Any]]:
    tool_msgs: list[dict[str, Any]] = []
    parts: list[dict[str, Any]] = []
    for kind, block in _non_text(blocks, tx, parts):
        if kind == "image":
            part = _image_part(block, tx)
            if part:
                parts.append(part)
        elif kind == "tool_result":
            tool_msgs.append(_tool_result(block, i, tx))
        elif kind == "document":
            tx.block("document blocks (PDF, text documents) are not supported by Chat Completions: the case cannot "
                     "be translated")
        else:
            tx.block(f"a user content block of type {_kind(block)} has no Chat Completions equivalent")
    out = list(tool_msgs)
    if parts:
        out.append({"role": "user", "content": _content(parts)})
    return out


def _tool_result(block: dict[str, Any], i: int, tx: _Tx) -> dict[str, Any]:
    content = block.get("content")
    parts: list[dict[str, Any]] = []
    for kind, sub in _non_text(_blocks(content if content is not None else [], f"a tool_result of messages[{i}]", tx),
                               tx, parts):
        if kind == "image":
            tx.block("an image inside a tool_result cannot be given to a Chat Completions tool message")
        else:
            tx.block(f"a tool_result content block of type {_kind(sub)} cannot be translated")
    if block.get("is_error"):
        if parts:
            parts[0] = {"type": "text", "text": TOOL_ERROR_PREFIX + parts[0]["text"]}
        else:
            parts = [{"type": "text", "text": TOOL_ERROR_PREFIX.rstrip()}]
    text: str | list[dict[str, Any]] = "" if not parts else _content(parts)
    return {"role": "tool", "tool_call_id": str(block.get("tool_use_id") or ""), "content": text}


def _assistant(blocks: list[Any], i: int, tx: _Tx) -> list[dict[str, Any]]:
    parts: list[dict[str, Any]] = []
    calls: list[dict[str, Any]] = []
    for kind, block in _non_text(blocks, tx, parts):
        if kind == "tool_use":
            calls.append({
                "id": str(block.get("id") or ""),
                "type": "function",
                "function": {"name": str(block.get("name") or ""),
                             "arguments": json.dumps(block.get("input", {}), ensure_ascii=False)},
            })
        elif kind in ("thinking", "redacted_thinking"):
            tx.info("thinking blocks in the assistant history dropped (not translatable)")
        elif isinstance(kind, str) and (kind == "server_tool_use" or kind.endswith("_tool_result")):
            tx.block(f"server tool blocks ({kind}) in the history cannot be translated")
        else:
            tx.block(f"an assistant content block of type {_kind(block)} has no Chat Completions equivalent")
    if not parts and not calls:
        return []
    out: dict[str, Any] = {"role": "assistant", "content": _content(parts) if parts else None}
    if calls:
        out["tool_calls"] = calls
    return [out]


# -- parameters ----------------------------------------------------------------------------------------------------


def _limits(request: dict[str, Any], body: dict[str, Any], tx: _Tx, reasoning: bool) -> None:
    max_tokens = request.get("max_tokens")
    if max_tokens is not None:
        if reasoning:
            body["max_completion_tokens"] = max_tokens
            tx.info("max_tokens sent as max_completion_tokens, which on a reasoning model also bounds its hidden "
                    "reasoning tokens: the visible answer can be cut shorter")
        else:
            body["max_tokens"] = max_tokens
    stops = request.get("stop_sequences")
    if stops:
        if tx.flavor == "openai" and isinstance(stops, list) and len(stops) > OPENAI_MAX_STOP:
            tx.block(f"{len(stops)} stop sequences: the OpenAI API takes at most {OPENAI_MAX_STOP}")
        body["stop"] = stops
        tx.info("a stop sequence hit is reported as an ordinary stop (end_turn), not stop_sequence")


def _sampling(request: dict[str, Any], body: dict[str, Any], tx: _Tx, reasoning: bool) -> None:
    for name in ("temperature", "top_p"):
        if request.get(name) is None:
            continue
        if reasoning:
            tx.info(f"{name} dropped: OpenAI reasoning models take only the default sampling")
        else:
            body[name] = request[name]
    if request.get("top_k") is not None:
        tx.info("top_k has no Chat Completions equivalent: dropped")
    thinking = request.get("thinking")
    if isinstance(thinking, dict) and thinking.get("type") not in (None, "disabled"):
        tx.info("thinking (extended thinking budget) is not translatable: dropped")


def _tools(request: dict[str, Any], body: dict[str, Any], tx: _Tx) -> None:
    tools = request.get("tools")
    if tools:
        out = []
        for tool in tools if isinstance(tools, list) else [tools]:
            fn = _tool(tool, tx)
            if fn:
                out.append(fn)
        if out:
            body["tools"] = out
    choice = request.get("tool_choice")
    if isinstance(choice, dict):
        kind = choice.get("type")
        if kind in ("auto", "none"):
            body["tool_choice"] = kind
        elif kind == "any":
            body["tool_choice"] = "required"
        elif kind == "tool":
            body["tool_choice"] = {"type": "function", "function": {"name": choice.get("name")}}
        else:
            tx.block(f"tool_choice of type {kind!r} has no Chat Completions equivalent")
        if choice.get("disable_parallel_tool_use") and body.get("tools"):
            body["parallel_tool_calls"] = False
    elif choice is not None:
        tx.block(f"tool_choice {choice!r} is not a Messages API tool choice")


def _tool(tool: Any, tx: _Tx) -> dict[str, Any] | None:
    if not isinstance(tool, dict):
        tx.block(f"a tool of type {type(tool).__name__} cannot be translated")
        return None
    tx.note_cache(tool)
    kind = tool.get("type")
    if kind not in (None, "custom"):
        if any(str(kind).startswith(p) for p in _ANTHROPIC_CLIENT_TOOLS):
            tx.block(f"Anthropic-defined tool {tool.get('name') or kind!r} ({kind}) has no portable schema")
        else:
            tx.block(f"server tool {tool.get('name') or kind!r} ({kind}) runs on Anthropic's side: not translatable")
        return None
    fn: dict[str, Any] = {"name": tool.get("name")}
    if tool.get("description") is not None:
        fn["description"] = tool["description"]
    fn["parameters"] = tool.get("input_schema") or {"type": "object", "properties": {}}
    if tool.get("strict") is not None:
        fn["strict"] = tool["strict"]
    extra = sorted(set(tool) - {"type", "name", "description", "input_schema", "cache_control", "strict"})
    if extra:
        tx.info(f"tool {tool.get('name')!r}: {', '.join(extra)} dropped (no Chat Completions equivalent)")
    return {"type": "function", "function": fn}


def _output_format(request: dict[str, Any], body: dict[str, Any], tx: _Tx) -> None:
    config = request.get("output_config")
    fmt = request.get("output_format")
    if isinstance(config, dict):
        fmt = config.get("format", fmt)
        if config.get("effort") is not None:
            tx.info("output_config.effort dropped (no equivalent on every model)")
        extra = sorted(set(config) - {"format", "effort"})
        if extra:
            tx.info(f"output_config keys dropped: {', '.join(extra)}")
    elif config is not None:
        tx.block("output_config is not an object")
    if fmt is None:
        return
    schema = fmt.get("schema") if isinstance(fmt, dict) else None
    if not isinstance(schema, dict) or fmt.get("type", "json_schema") != "json_schema":
        tx.block(f"output format {fmt!r} is not a JSON schema: not translatable")
        return
    name = re.sub(r"[^A-Za-z0-9_-]", "_", str(schema.get("title") or "output"))[:64] or "output"
    spec: dict[str, Any] = {"name": name, "schema": schema}
    if schema.get("type") == "object" and _strict_ok(schema):
        spec["strict"] = True
    else:
        tx.info("the output JSON schema is not strict-compatible for OpenAI (its root must be an object, every "
                "object closed and all its properties required): sent without strict, so the model follows it but "
                "nothing enforces it")
    body["response_format"] = {"type": "json_schema", "json_schema": spec}


def _strict_ok(node: Any) -> bool:
    """True when OpenAI's strict mode takes this schema: every object closed, with all its properties required."""
    if isinstance(node, list):
        return all(_strict_ok(n) for n in node)
    if not isinstance(node, dict):
        return True
    if node.get("type") == "object" or "properties" in node:
        props = node.get("properties") or {}
        if node.get("additionalProperties") is not False or set(props) - set(node.get("required") or []):
            return False
    subs = [*(node.get("properties") or {}).values(), *(node.get("$defs") or {}).values()]
    subs += [node[k] for k in ("items", "anyOf") if k in node]
    return all(_strict_ok(n) for n in subs)


def _others(request: dict[str, Any], body: dict[str, Any], tx: _Tx) -> None:
    metadata = request.get("metadata")
    if isinstance(metadata, dict) and metadata:
        user = metadata.get("user_id")
        if user is not None and tx.flavor == "openai":
            body["user"] = str(user)
        elif user is not None:
            tx.info("metadata.user_id dropped (the compatible flavor sends no user field)")
        rest = sorted(set(metadata) - {"user_id"})
        if rest:
            tx.info(f"metadata keys dropped: {', '.join(rest)}")
    if request.get("service_tier") is not None:
        tx.info("service_tier dropped (Anthropic's tiers have no counterpart)")
    if request.get("mcp_servers"):
        tx.block("MCP servers (mcp_servers) run on Anthropic's side: not translatable")
    if request.get("container") is not None:
        tx.block("a code execution container (container) is Anthropic's: not translatable")
    unknown = sorted(k for k in request if k not in _KNOWN_TOP)
    if unknown:
        tx.info(f"unknown request keys dropped: {', '.join(unknown)}")


# -- the answer ----------------------------------------------------------------------------------------------------


def _tool_call(call: Any) -> ToolCall:
    fn = call.get("function") if isinstance(call, dict) else None
    fn = fn if isinstance(fn, dict) else {}
    raw = fn.get("arguments")
    try:
        args = json.loads(raw) if isinstance(raw, str) else raw
    except ValueError:
        args = raw
    return ToolCall(str(fn.get("name") or ""), args)


def _int(v: Any) -> int | None:
    return v if isinstance(v, int) and not isinstance(v, bool) else None


def openai_to_response(data: dict[str, Any], latency_ms: float | None, *, raw: str | None = None) -> Response:
    """A ``Response`` from a Chat Completions completion (its first choice).

    Text from ``message.content`` (None when null); ``tool_calls`` (and a
    legacy ``function_call``) -> ``ToolCall`` with parsed JSON arguments, the
    raw string when not JSON; ``finish_reason`` mapped by ``FINISH_REASONS``
    (an unknown one kept as is); a structured ``message.refusal`` sets
    ``refusal`` to ``"full"`` and the text to the refusal message, else
    ``refusal`` stays None (the runner labels it); usage prompt/completion
    tokens, ``model`` and ``system_fingerprint``. ``raw`` is stored as the
    response text (JSON of ``data`` when not given). A body that is not a
    completion is a ``Response`` with ``error``, never an exception.
    """
    raw = raw if raw is not None else json.dumps(data, ensure_ascii=False)
    if not isinstance(data, dict):
        return Response(error=f"response is a JSON {type(data).__name__}, not a Chat Completions completion",
                        latency_ms=latency_ms, raw=raw)
    choices = data.get("choices")
    if not isinstance(choices, list) or not choices or not isinstance(choices[0], dict):
        return Response(error="response has no choices: not a Chat Completions completion",
                        latency_ms=latency_ms, raw=raw)
    choice = choices[0]
    message = choice.get("message") if isinstance(choice.get("message"), dict) else {}
    content = message.get("content")
    if isinstance(content, list):  # some compatible servers answer with parts
        content = "".join(str(p.get("text", "")) for p in content if isinstance(p, dict))
    text = content if isinstance(content, str) else None
    calls = [_tool_call(c) for c in message.get("tool_calls") or [] if isinstance(c, dict)]
    if isinstance(message.get("function_call"), dict):
        calls.append(_tool_call({"function": message["function_call"]}))
    finish = choice.get("finish_reason")
    refusal = None
    if isinstance(message.get("refusal"), str) and message["refusal"]:
        refusal, text = "full", message["refusal"]
    usage = data.get("usage") if isinstance(data.get("usage"), dict) else {}
    fingerprint = data.get("system_fingerprint")
    return Response(
        text=text,
        tool_calls=calls,
        stop_reason=FINISH_REASONS.get(finish, finish) if isinstance(finish, str) else None,
        refusal=refusal,
        model_returned=data.get("model") if isinstance(data.get("model"), str) else None,
        input_tokens=_int(usage.get("prompt_tokens")),
        output_tokens=_int(usage.get("completion_tokens")),
        latency_ms=latency_ms,
        raw=raw,
        system_fingerprint=fingerprint if isinstance(fingerprint, str) else None,
    )
