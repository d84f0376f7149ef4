"""Shared mapping for span- and observation-shaped sources (OTLP, OpenInference, Langfuse).

Two layers, all pure functions over plain Python values; the content they
carry (prompts, responses) is read by ``tracelens.ingest.content``:

* **Attribute mappers** (``genai_fields``, ``openinference_fields``): span
  attributes (flat ``dict`` key -> value, values already decoded from OTLP
  ``AnyValue``) to trace fields. ``genai_fields`` reads the current OTel GenAI
  semantic conventions and the older forms still emitted (``gen_ai.system``,
  OpenLLMetry ``gen_ai.prompt.N.*``/``gen_ai.completion.N.*``/``llm.*``,
  content in span events). ``openinference_fields`` reads OpenInference
  ``llm.*`` attributes in flattened or nested form.
* **Span records** (``span_record``): one span (``SpanInfo`` + attributes) to a
  trace dict, or ``Skipped`` when it is not an LLM call. Both the OTLP and the
  OpenInference importers go through it, so a span reads the same whichever
  export it came from, and ``trace_id`` is ``otel:<traceId>:<spanId>`` in both
  (re-ingesting the same span from the other export is a duplicate, not a
  second trace).

Token convention: ``input_tokens`` is the schema's (docs/schema.md): prompt
tokens neither read from nor written to the prompt cache. Span conventions
(OTel GenAI, OpenInference) count cached prompt tokens inside the input total,
whatever the provider, so the cache read/creation counts are subtracted (when
the total is large enough to contain them: some Anthropic instrumentations
report the API's own, already uncached, count) and the reported total is kept
in ``attributes["input_tokens_reported"]``.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from tracelens.ingest.base import RecordError, Skipped
from tracelens.ingest.content import (
    ROLE_ALIASES,
    as_dict,
    conversation,
    fill,
    finish_fields,
    first,
    maybe_json,
    ms_between,
    nullish,
    params_fields,
    provider_name,
    request_body,
    response_fields,
    result_text,
    split_system,
    string_list,
    system_text,
)
from tracelens.ingest.normalize import (
    as_float,
    as_int,
    as_str,
    dumps,
    message,
    tool_call,
    uncached_input,
)

_MAX_ATTR_LEN = 512  # longer scalar attributes are content, not metadata


def indexed(attrs: Mapping[str, Any], prefix: str) -> list[dict[str, Any]]:
    """Group flattened ``<prefix>.<N>.<rest>`` keys into a list of ``{rest: value}`` dicts ordered by N."""
    pat = re.compile(re.escape(prefix) + r"\.(\d+)(?:\.(.+))?$")
    groups: dict[int, dict[str, Any]] = {}
    for k, v in attrs.items():
        if not k.startswith(prefix):
            continue
        m = pat.match(k)
        if m:
            groups.setdefault(int(m.group(1)), {})[m.group(2) or ""] = v
    return [groups[i] for i in sorted(groups)]


def token_fields(provider: str | None, model: str | None, inp: Any, out: Any, cache_read: Any,
                 cache_creation: Any) -> tuple[dict, dict]:
    """(fields, attributes) for span-convention token counts; see the module docstring."""
    i, o, r, c = as_int(inp), as_int(out), as_int(cache_read), as_int(cache_creation)
    attrs = {}
    uncached = uncached_input(i, r, c)
    if uncached != i:
        attrs["input_tokens_reported"] = str(i)
        i = uncached
    return {"input_tokens": i, "output_tokens": o, "cache_read_tokens": r, "cache_creation_tokens": c}, attrs


# ---------------------------------------------------------------- OTel GenAI attributes

LLM_OPERATIONS = {"chat", "text_completion", "generate_content", "completion", "completions", "generate",
                  "chat_completion", "messages", "converse"}
_OPENLLMETRY_LLM_TYPES = {"chat", "completion"}
_OPENLLMETRY_CONTENT = re.compile(r"^gen_ai\.(prompt|completion)\.\d+\.")

_CONTENT_PREFIXES = (
    "gen_ai.input.", "gen_ai.output.", "gen_ai.prompt", "gen_ai.completion", "gen_ai.system_instructions",
    "gen_ai.tool.definitions", "gen_ai.event.content", "llm.input_messages", "llm.output_messages", "llm.prompts",
    "llm.choices", "llm.tools", "llm.request.functions", "llm.prompt_template", "input.value", "output.value",
    "input.mime_type", "output.mime_type", "llm.invocation_parameters", "traceloop.entity.input",
    "traceloop.entity.output", "metadata",
)
_MAPPED = frozenset({
    "gen_ai.provider.name", "gen_ai.system", "gen_ai.request.model", "gen_ai.response.model", "gen_ai.response.id",
    "gen_ai.response.finish_reasons", "gen_ai.request.temperature", "gen_ai.request.top_p", "gen_ai.request.top_k",
    "gen_ai.request.max_tokens", "gen_ai.request.seed", "gen_ai.openai.request.seed", "gen_ai.request.stop_sequences",
    "gen_ai.usage.input_tokens", "gen_ai.usage.output_tokens", "gen_ai.usage.prompt_tokens",
    "gen_ai.usage.completion_tokens", "gen_ai.usage.cache_read.input_tokens", "gen_ai.usage.cache_creation.input_tokens",
    "gen_ai.usage.cache_read_input_tokens", "gen_ai.usage.cache_creation_input_tokens",
    "gen_ai.usage.cache_write.input_tokens", "anthropic.message.stop_reason", "gen_ai.conversation.id",
    "gen_ai.response.time_to_first_chunk", "session.id", "user.id", "enduser.id", "llm.user", "error.type",
    "http.response.status_code", "http.status_code", "llm.usage.total_tokens", "gen_ai.usage.total_tokens",
    "llm.top_k", "openai.request.service_tier", "openai.response.service_tier", "gen_ai.openai.request.service_tier",
    "gen_ai.openai.response.service_tier", "llm.model_name", "llm.provider", "llm.system", "llm.token_count.prompt",
    "llm.token_count.completion", "llm.token_count.total", "llm.token_count.prompt_details.cache_read",
    "llm.token_count.prompt_details.cache_write", "llm.request.model_name", "llm.response.model_name",
    "llm.finish_reason", "llm.cost.total", "openinference.span.kind", "tag.tags", "service.name",
    "exception.type", "exception.message", "exception.stacktrace",
})


def genai_kind(attrs: Mapping[str, Any]) -> tuple[bool, str | None]:
    """(is an LLM call, skip reason) for a span carrying OTel GenAI / OpenLLMetry attributes."""
    op = attrs.get("gen_ai.operation.name")
    if isinstance(op, str) and op:
        if op.lower() in LLM_OPERATIONS:
            return True, None
        return False, f"gen_ai.operation.name={op} is not an LLM call"
    rtype = attrs.get("llm.request.type")
    if isinstance(rtype, str) and rtype:
        if rtype.lower() in _OPENLLMETRY_LLM_TYPES:
            return True, None
        return False, f"llm.request.type={rtype} is not an LLM call"
    if attrs.get("gen_ai.request.model") or attrs.get("gen_ai.input.messages") or any(
        k in ("gen_ai.prompt", "gen_ai.completion") or _OPENLLMETRY_CONTENT.match(k) for k in attrs
    ):
        return True, None
    if any(k.startswith("gen_ai.") for k in attrs):
        return False, "GenAI span without a model, operation or content (not an LLM call)"
    return False, "no gen_ai.* attributes (not a GenAI span)"


_MESSAGE_EVENTS = {"gen_ai.system.message": "system", "gen_ai.user.message": "user",
                   "gen_ai.assistant.message": "assistant", "gen_ai.tool.message": "tool"}


def _event_body(ev_attrs: Mapping[str, Any]) -> dict:
    body = ev_attrs.get("gen_ai.event.content", ev_attrs.get("event.body", ev_attrs.get("body")))
    body = maybe_json(body)
    if isinstance(body, dict):
        return body
    return dict(ev_attrs)


def _with_events(attrs: dict, events: Iterable[dict]) -> tuple[dict, list[dict], list[dict], dict]:
    """Attributes completed from span events, plus event messages, event choices and exception info."""
    a = dict(attrs)
    ev_msgs: list[dict] = []
    choices: list[dict] = []
    exc: dict = {}
    for ev in events:
        name = ev.get("name") or ""
        ea = ev.get("attributes") or {}
        if name == "gen_ai.client.inference.operation.details":
            for k, v in ea.items():  # the span's own attributes win
                a.setdefault(k, v)
        elif name == "gen_ai.content.prompt":
            if "gen_ai.prompt" in ea:
                a.setdefault("gen_ai.prompt", ea["gen_ai.prompt"])
        elif name == "gen_ai.content.completion":
            if "gen_ai.completion" in ea:
                a.setdefault("gen_ai.completion", ea["gen_ai.completion"])
        elif name in _MESSAGE_EVENTS:
            body = _event_body(ea)
            m = {"role": body.get("role") or _MESSAGE_EVENTS[name], "content": body.get("content"),
                 "tool_calls": body.get("tool_calls")}
            if _MESSAGE_EVENTS[name] == "tool":
                m["tool_call_id"] = first(body.get("id"), body.get("tool_call_id"))
            ev_msgs.append(m)
        elif name == "gen_ai.choice":
            body = _event_body(ea)
            msg = body.get("message")
            if isinstance(msg, dict) and body.get("tool_calls") and not msg.get("tool_calls"):
                # OpenLLMetry puts a choice's tool calls beside its message, not in it
                body = {**body, "message": {**msg, "tool_calls": body["tool_calls"]}}
            choices.append(body)
        elif name == "exception":
            exc = {"type": ea.get("exception.type"), "message": ea.get("exception.message")}
    return a, ev_msgs, choices, exc


def _openllmetry_messages(attrs: Mapping[str, Any], prefix: str) -> list[dict]:
    out = []
    for g in indexed(attrs, prefix):
        m = {"role": g.get("role"), "content": g.get("content")}
        calls = [{"id": c.get("id"), "name": c.get("name"), "arguments": c.get("arguments")}
                 for c in indexed(g, "tool_calls")]
        if g.get("function_call.name"):
            calls.append({"name": g.get("function_call.name"), "arguments": g.get("function_call.arguments")})
        if calls:
            m["tool_calls"] = calls
        if g.get("tool_call_id"):
            m["tool_call_id"] = g["tool_call_id"]
        if g.get("finish_reason"):
            m["finish_reason"] = g["finish_reason"]
        if m["role"] is None and m["content"] is None and not calls:
            continue
        out.append(m)
    return out


def tool_calls_only_text(fields: dict) -> None:
    """An OpenAI answer of tool calls only has null ``response_text`` (in place), as the openai importers store it.

    OpenAI answers a tool call with content null (docs/formats/openai.md); a span's or log event's text-less
    output message must not make the same call read differently.
    """
    if fields.get("response_text") == "" and fields.get("tool_calls") and fields.get("provider") == "openai":
        fields["response_text"] = None


def genai_fields(attrs: Mapping[str, Any], events: Iterable[dict] = ()) -> tuple[dict, dict]:
    """(trace fields, extra attributes) from OTel GenAI / OpenLLMetry span attributes and span events."""
    a, ev_msgs, choices, exc = _with_events(dict(attrs), events)
    provider = provider_name(first(a.get("gen_ai.provider.name"), a.get("gen_ai.system")))
    # prompt
    system, msgs = None, []
    if a.get("gen_ai.input.messages") is not None:
        system, msgs = conversation(a["gen_ai.input.messages"])
    elif indexed(a, "gen_ai.prompt"):
        system, msgs = conversation(_openllmetry_messages(a, "gen_ai.prompt"))
    elif a.get("gen_ai.prompt") is not None:
        system, msgs = conversation(a["gen_ai.prompt"])
    elif ev_msgs:
        system, msgs = conversation(ev_msgs)
    si = system_text(a.get("gen_ai.system_instructions"))
    if si:
        system = si if not system else si + "\n\n" + system
    # response
    if a.get("gen_ai.output.messages") is not None:
        resp = response_fields(a["gen_ai.output.messages"])
    elif indexed(a, "gen_ai.completion"):
        resp = response_fields(_openllmetry_messages(a, "gen_ai.completion"))
    elif a.get("gen_ai.completion") is not None:
        resp = response_fields(a["gen_ai.completion"])
    elif choices:
        ch = sorted(choices, key=lambda c: as_int(c.get("index")) or 0)[0]
        resp = response_fields(ch if ("message" in ch or "content" in ch) else {"message": ch})
    else:
        resp = {}
    resp.pop("response_raw", None)  # span attributes are never the exact body
    # tools
    tools = maybe_json(a.get("gen_ai.tool.definitions"))
    if tools is None:
        fns = indexed(a, "llm.request.functions")
        tools = [{k: maybe_json(v) for k, v in f.items()} for f in fns] or None
    # the anthropic SDK's own spans record the Message's stop_reason under their own name
    finish = string_list(first(a.get("gen_ai.response.finish_reasons"), a.get("anthropic.message.stop_reason")))
    model_req = as_str(a.get("gen_ai.request.model"))
    model_ret = as_str(a.get("gen_ai.response.model"))
    tokens, extra = token_fields(
        provider, model_ret or model_req,
        first(a.get("gen_ai.usage.input_tokens"), a.get("gen_ai.usage.prompt_tokens")),
        first(a.get("gen_ai.usage.output_tokens"), a.get("gen_ai.usage.completion_tokens")),
        first(a.get("gen_ai.usage.cache_read.input_tokens"), a.get("gen_ai.usage.cache_read_input_tokens")),
        # cache_write: the anthropic SDK's own spans spell the creation count so
        first(a.get("gen_ai.usage.cache_creation.input_tokens"), a.get("gen_ai.usage.cache_creation_input_tokens"),
              a.get("gen_ai.usage.cache_write.input_tokens")),
    )
    ttft = as_float(a.get("gen_ai.response.time_to_first_chunk"))
    fields = {
        "provider": provider,
        "model_requested": model_req,
        "model_returned": model_ret,
        "response_id": as_str(a.get("gen_ai.response.id")),
        "conversation_id": as_str(a.get("gen_ai.conversation.id")),
        "session_id": as_str(a.get("session.id")),
        "user_id": as_str(first(a.get("user.id"), a.get("enduser.id"), a.get("llm.user"))),
        "system_prompt": system,
        "messages": msgs,
        "tool_definitions": dumps(tools) if tools else None,
        "temperature": as_float(a.get("gen_ai.request.temperature")),
        "top_p": as_float(a.get("gen_ai.request.top_p")),
        "top_k": as_int(first(a.get("gen_ai.request.top_k"), a.get("llm.top_k"))),
        "max_tokens": as_int(a.get("gen_ai.request.max_tokens")),
        "seed": as_int(first(a.get("gen_ai.request.seed"), a.get("gen_ai.openai.request.seed"))),
        "stop_sequences": string_list(a.get("gen_ai.request.stop_sequences")),
        "service_tier": as_str(first(a.get("openai.response.service_tier"), a.get("gen_ai.openai.response.service_tier"),
                                     a.get("openai.request.service_tier"), a.get("gen_ai.openai.request.service_tier"))),
        "time_to_first_token_ms": ttft * 1000.0 if ttft is not None else None,
        "error_type": as_str(first(a.get("error.type"), exc.get("type"))),
        "error_message": as_str(exc.get("message")),
        "http_status": as_int(first(a.get("http.response.status_code"), a.get("http.status_code"))),
        **tokens,
    }
    fields = fill(fields, resp)
    if finish:
        fields.update(finish_fields(finish[0]))
    if fields.get("max_tokens") is not None and fields["max_tokens"] < 0:
        fields["max_tokens"] = None
    return fields, extra


# ---------------------------------------------------------------- OpenInference attributes

# Phoenix exports put the OpenInference kind in the span's own kind field; these are the values it uses
OPENINFERENCE_KINDS = {"LLM", "EMBEDDING", "CHAIN", "RETRIEVER", "RERANKER", "TOOL", "AGENT", "GUARDRAIL",
                       "EVALUATOR", "PROMPT"}
# attribute values that stay whole when nested attributes are flattened
_KEEP_WHOLE = frozenset({"gen_ai.input.messages", "gen_ai.output.messages", "gen_ai.system_instructions",
                         "gen_ai.tool.definitions", "gen_ai.prompt", "gen_ai.completion", "metadata"})


def flatten(attrs: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    """Flatten nested attributes (``{"llm": {"input_messages": [{"message": {...}}]}}`` or
    ``{"llm.input_messages": [{"message.role": ...}]}``) into OpenInference dotted keys.

    Lists of objects are indexed only under ``llm.`` (OpenInference lists);
    GenAI structured values and lists of scalars stay whole.
    """
    out: dict[str, Any] = {}
    for k, v in attrs.items():
        key = f"{prefix}{k}"
        if isinstance(v, dict) and key not in _KEEP_WHOLE:
            out.update(flatten(v, key + "."))
        elif isinstance(v, list) and key.startswith("llm.") and v and all(isinstance(x, dict) for x in v):
            for i, x in enumerate(v):
                out.update(flatten(x, f"{key}.{i}."))
        else:
            out[key] = v
    return out


def _oi_call(g: Mapping[str, Any]) -> dict:
    return tool_call(g.get("tool_call.id"), g.get("tool_call.function.name"), g.get("tool_call.function.arguments"))


def _oi_messages(a: Mapping[str, Any], prefix: str) -> list[dict]:
    out: list[dict] = []
    for g in indexed(a, prefix):
        g = {k[len("message."):] if k.startswith("message.") else k: v for k, v in g.items()}
        role = as_str(g.get("role")) or "user"
        role = ROLE_ALIASES.get(role.lower(), role.lower())
        content = g.get("content")
        texts: list[str] = []
        calls: list[dict] = []
        if isinstance(content, str):
            texts.append(content)
        elif content is not None:
            texts.append(result_text(content) or "")
        for c in indexed(g, "contents"):
            c = {k[len("message_content."):] if k.startswith("message_content.") else k: v for k, v in c.items()}
            ctype = c.get("type")
            if ctype == "tool_use" or any(k.startswith("tool_call.") for k in c):
                continue  # repeated in message.tool_calls
            if ctype in (None, "text") and isinstance(c.get("text"), str) and not isinstance(content, str):
                texts.append(c["text"])
        calls = [_oi_call(c) for c in indexed(g, "tool_calls")]
        if not calls:  # tool calls recorded only as ordered tool_use contents
            calls = [_oi_call(c) for c in indexed(g, "contents") if any(k.startswith("tool_call.") for k in c)]
        if g.get("function_call_name"):
            calls.append(tool_call(None, g.get("function_call_name"), g.get("function_call_arguments_json")))
        text = "\n\n".join(texts) if texts else None
        tcid = as_str(g.get("tool_call_id"))
        out.append(message("tool" if role == "function" else role, text, calls, tcid, as_str(g.get("name"))))
    return out


def openinference_kind(attrs: Mapping[str, Any], hint: str | None = None) -> str | None:
    k = attrs.get("openinference.span.kind")
    if isinstance(k, str) and k:
        return k.upper()
    if hint and hint.upper() in OPENINFERENCE_KINDS:
        return hint.upper()
    return None


def openinference_fields(attrs: Mapping[str, Any]) -> tuple[dict, dict]:
    """(trace fields, extra attributes) from OpenInference LLM span attributes (flattened or nested)."""
    a = flatten(attrs)
    inv = as_dict(a.get("llm.invocation_parameters"))
    provider = provider_name(first(a.get("llm.provider"), a.get("llm.system")))
    system, msgs = split_system(_oi_messages(a, "llm.input_messages"))
    if not msgs:
        prompts = indexed(a, "llm.prompts")
        texts = [first(p.get("prompt.text"), p.get("")) for p in prompts]
        if not prompts and isinstance(a.get("llm.prompts"), list):
            texts = list(a["llm.prompts"])
        msgs = [message("user", t) for t in texts if isinstance(t, str)]
    in_value = a.get("input.value")
    if not msgs and in_value is not None:
        s2, msgs = conversation(in_value)
        system = system or s2
    out_msgs = [m for m in _oi_messages(a, "llm.output_messages") if m["role"] != "tool"]
    resp: dict = {}
    if out_msgs:
        m0 = out_msgs[0]
        resp = {"response_text": m0["text"] if m0["text"] is not None else ("" if m0["tool_calls"] else None),
                "tool_calls": m0["tool_calls"]}
    else:
        choices = indexed(a, "llm.choices")
        if choices and isinstance(choices[0].get("completion.text"), str):
            resp = {"response_text": choices[0]["completion.text"], "tool_calls": []}
    out_value = response_fields(a.get("output.value")) if a.get("output.value") is not None else {}
    resp = fill(resp, out_value) if resp else out_value
    tools = [maybe_json(t.get("tool.json_schema")) for t in indexed(a, "llm.tools") if t.get("tool.json_schema")]
    model_ret = as_str(first(a.get("llm.response.model_name"), a.get("llm.model_name")))
    model_req = as_str(first(a.get("llm.request.model_name"), inv.get("model"), inv.get("model_name")))
    answered = bool(resp) or not nullish(first(a.get("llm.token_count.completion"), a.get("llm.token_count.prompt")))
    if not answered and nullish(a.get("llm.response.model_name")):
        # OpenInference sets llm.model_name from the request and overwrites it from the response: with no
        # response (a call that raised) it names the requested model, which the provider never reported
        model_req = model_req or model_ret
        model_ret = None
    tokens, extra = token_fields(provider, model_ret or model_req, a.get("llm.token_count.prompt"),
                                 a.get("llm.token_count.completion"), a.get("llm.token_count.prompt_details.cache_read"),
                                 a.get("llm.token_count.prompt_details.cache_write"))
    meta = as_dict(a.get("metadata"))
    tags = string_list(a.get("tag.tags"))
    if tags:
        extra["tags"] = dumps(tags)
    for k, v in meta.items():
        if isinstance(v, str | int | float | bool) and len(str(v)) <= _MAX_ATTR_LEN:
            extra[f"metadata.{k}"] = str(v)
    fields = {
        "provider": provider,
        "model_requested": model_req,
        "model_returned": model_ret,
        "session_id": as_str(first(a.get("session.id"), meta.get("session_id"))),
        "user_id": as_str(first(a.get("user.id"), meta.get("user_id"))),
        "conversation_id": as_str(first(meta.get("conversation_id"), meta.get("thread_id"))),
        "system_prompt": system,
        "messages": msgs,
        "tool_definitions": dumps(tools) if tools else None,
        **params_fields(inv),
        **tokens,
        "cost": as_float(a.get("llm.cost.total")),
        "request_raw": request_body(in_value),
    }
    fields = fill(fields, resp)
    if a.get("llm.finish_reason"):
        fields.update(finish_fields(a["llm.finish_reason"]))
    return fields, extra


# ---------------------------------------------------------------- lenient dispatch (Langfuse metadata)


def attribute_fields(attrs: Mapping[str, Any]) -> tuple[dict, dict]:
    """Best-effort fields from a bag of span attributes of either convention; ({}, {}) when neither applies."""
    if not attrs:
        return {}, {}
    flat = flatten(attrs)
    if "openinference.span.kind" in flat or any(k.startswith(("llm.input_messages", "llm.output_messages",
                                                              "llm.model_name", "llm.token_count")) for k in flat):
        return openinference_fields(flat)
    if any(k.startswith("gen_ai.") for k in flat):
        return genai_fields(flat)
    return {}, {}


# ---------------------------------------------------------------- span records


@dataclass
class SpanInfo:
    """The envelope of one span, independent of how the export encoded it."""

    trace_id: str | None
    span_id: str | None
    name: str | None = None
    parent_id: str | None = None
    kind: str | None = None  # CLIENT, INTERNAL, ... or an OpenInference kind (Phoenix exports)
    start: dt.datetime | None = None
    end: dt.datetime | None = None
    status: str | None = None  # "ok", "error" or None (unset)
    status_message: str | None = None
    events: list[dict] = field(default_factory=list)  # {"name", "time", "attributes"}
    resource: dict = field(default_factory=dict)
    scope: str | None = None


_HEX = re.compile(r"^[0-9a-fA-F]+$")


def norm_id(v: Any) -> str | None:
    """A trace/span id as lower-case hex: accepts hex, ``0x``-prefixed hex and base64 (protobuf JSON)."""
    if nullish(v):
        return None
    s = str(v).strip()
    if s.lower().startswith("0x"):
        s = s[2:]
    if _HEX.match(s):
        return s.lower()
    if len(s) in (12, 24):  # base64 of 8 or 16 bytes (protobuf's default JSON mapping)
        import base64
        import binascii

        try:
            raw = base64.b64decode(s, validate=True)
            if len(raw) in (8, 16):
                return raw.hex()
        except (binascii.Error, ValueError):
            pass
    return s


def _scalar_attrs(attrs: Mapping[str, Any]) -> dict[str, str]:
    out = {}
    for k, v in attrs.items():
        if k in _MAPPED or k.startswith(_CONTENT_PREFIXES) or v is None:
            continue
        if isinstance(v, dict):
            continue
        s = v if isinstance(v, str) else dumps(v)
        if len(s) <= _MAX_ATTR_LEN:
            out[k] = s
    return out


def span_record(attrs: Mapping[str, Any], info: SpanInfo, locator: str) -> dict | Skipped:
    """A trace dict for one LLM span, or ``Skipped`` with the reason. Raises RecordError for a broken LLM span."""
    what = f"span {info.name!r}" if info.name else "span"
    flat = flatten(attrs)
    oi = openinference_kind(flat, info.kind)
    if oi is None and not any(k.startswith("gen_ai.") for k in flat) and (
        "llm.model_name" in flat or any(k.startswith("llm.input_messages") for k in flat)
    ):
        oi = "LLM"  # OpenInference span from an SDK that predates openinference.span.kind
    if oi is not None:
        if oi != "LLM":
            return Skipped(locator, f"{what} is an OpenInference {oi} span, not an LLM call")
        fields, extra = openinference_fields(flat)
        exc: dict = {}
        for ev in info.events:
            if ev.get("name") == "exception":
                ea = ev.get("attributes") or {}
                exc = {"type": ea.get("exception.type"), "message": ea.get("exception.message")}
        fields = fill(fields, {"error_type": as_str(exc.get("type")), "error_message": as_str(exc.get("message"))})
        extra["openinference.span.kind"] = oi
    else:
        ok, reason = genai_kind(flat)
        if not ok:
            return Skipped(locator, f"{what}: {reason}")
        fields, extra = genai_fields(flat, info.events)
        op = flat.get("gen_ai.operation.name")
        if op:
            extra["gen_ai.operation.name"] = str(op)
    if info.start is None:
        raise RecordError(f"{what} has no start time")
    tool_calls_only_text(fields)
    service = as_str(first(info.resource.get("service.name"), flat.get("service.name")))
    if service and service.startswith("unknown_service"):
        service = None  # the SDK default when the application set no name
    status = info.status
    if status == "error" or (status is None and fields.get("error_type")):
        fields["status"] = "error"
        fields["error_message"] = fields.get("error_message") or info.status_message
        if fields.get("stop_reason") is None:
            fields["stop_reason"] = "error"
    else:
        fields["status"] = "ok"
    attributes = _scalar_attrs(flat)
    for k in ("service.version", "deployment.environment", "deployment.environment.name"):
        if info.resource.get(k) is not None:
            attributes[k] = str(info.resource[k])
    attributes.update(extra)
    for k, v in (("otel.trace_id", info.trace_id), ("otel.span_id", info.span_id),
                 ("otel.parent_span_id", info.parent_id), ("otel.span_name", info.name),
                 ("otel.span_kind", info.kind), ("otel.scope", info.scope)):
        if v:
            attributes[k] = str(v)
    fields.update(
        {
            "timestamp": info.start,
            "latency_ms": ms_between(info.start, info.end),
            "service": service,
            "attributes": attributes or None,
            "request_is_exact": False,
            "source_locator": locator,
            "trace_id": f"otel:{info.trace_id}:{info.span_id}" if info.trace_id and info.span_id else None,
        }
    )
    return fields
