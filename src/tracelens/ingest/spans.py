"""Shared mapping for span- and observation-shaped sources (OTLP, OpenInference, Langfuse).

Three layers, all pure functions over plain Python values:

* **Content** (``conversation``, ``response_fields``): liberal readers for the
  many shapes a prompt or a response takes once an SDK has serialised it:
  OpenAI Chat / Responses, Anthropic Messages, Gemini ``contents``/``parts``,
  OTel GenAI ``parts`` messages, LangChain messages, Vercel AI SDK parts,
  OpenInference flattened messages, plain strings and JSON text of any of
  these. They never raise; what they cannot interpret is kept as text so no
  prompt or response is silently dropped.
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
from tracelens.ingest.normalize import (
    anthropic_blocks_text,
    anthropic_response_fields,
    as_float,
    as_int,
    as_str,
    dumps,
    message,
    normalize_stop_reason,
    openai_response_fields,
    tool_call,
    uncached_input,
)
from tracelens.ingest.readers import loads

# ---------------------------------------------------------------- small helpers

_NULLISH = {"", "null", "none", "undefined", "nan"}
_MAX_ATTR_LEN = 512  # longer scalar attributes are content, not metadata


def maybe_json(v: Any) -> Any:
    """Parse ``v`` when it is JSON text of an object, array or string; otherwise return it unchanged."""
    if isinstance(v, str):
        s = v.strip()
        if s[:1] in ("{", "[", '"'):
            try:
                return loads(s)
            except ValueError:
                return v
    return v


def as_dict(v: Any) -> dict:
    """``v`` as a dict: dicts pass, JSON object text is parsed, anything else is {}."""
    v = maybe_json(v)
    return v if isinstance(v, dict) else {}


def nullish(v: Any) -> bool:
    return v is None or (isinstance(v, str) and v.strip().lower() in _NULLISH)


def first(*values: Any) -> Any:
    """The first value that is not None/empty text."""
    for v in values:
        if not nullish(v):
            return v
    return None


def fill(primary: dict, *fallbacks: dict) -> dict:
    """``primary`` with keys that are None or empty lists taken from the fallbacks, in order."""
    out = dict(primary)
    for fb in fallbacks:
        for k, v in fb.items():
            cur = out.get(k)
            if (cur is None or (isinstance(cur, list) and not cur)) and v is not None:
                out[k] = v
    return out


def ms_between(start: dt.datetime | None, end: dt.datetime | None) -> float | None:
    if start is None or end is None:
        return None
    ms = (end - start).total_seconds() * 1000.0
    return ms if ms >= 0 else None


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


def string_list(v: Any) -> list[str] | None:
    """A list of strings from a list, JSON text of a list, or one plain string."""
    v = maybe_json(v)
    if nullish(v):
        return None
    if isinstance(v, str):
        return [v]
    if isinstance(v, list | tuple):
        out = [x if isinstance(x, str) else dumps(x) for x in v if x is not None]
        return out or None
    return None


_PROVIDERS = {
    "aws.bedrock": "bedrock",
    "aws_bedrock": "bedrock",
    "aws": "bedrock",
    "amazon": "bedrock",
    "bedrock": "bedrock",
    "gcp.vertex_ai": "vertex",
    "vertex_ai": "vertex",
    "vertexai": "vertex",
    "vertex": "vertex",
    "google-vertex": "vertex",
    "gcp.vertex.agent": "vertex",
    "gcp.gemini": "google",
    "gcp.gen_ai": "google",
    "gemini": "google",
    "google": "google",
    "google-gla": "google",
    "google_genai": "google",
    "azure.ai.openai": "azure",
    "azure.ai.inference": "azure",
    "az.ai.openai": "azure",
    "az.ai.inference": "azure",
    "azure": "azure",
    "azure_openai": "azure",
    "mistral_ai": "mistral",
    "mistralai": "mistral",
    "x_ai": "xai",
    "ibm.watsonx.ai": "watsonx",
}


def provider_name(v: Any) -> str | None:
    """Normalise a provider/system attribute (``aws.bedrock``, ``gcp.vertex_ai``, ``Anthropic``, ...) to lower case."""
    if nullish(v) or not isinstance(v, str):
        return None
    s = v.strip().lower()
    if s in _PROVIDERS:
        return _PROVIDERS[s]
    head = re.split(r"[./:]", s, maxsplit=1)[0]  # openai.responses, anthropic.messages
    return _PROVIDERS.get(head, head)


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


def params_fields(p: Mapping[str, Any] | None) -> dict:
    """Sampling parameters from a request body / invocation-parameters / model-parameters dict."""
    if not p:
        return {}

    def g(*keys):
        return first(*(p.get(k) for k in keys))

    max_tokens = as_int(g("max_tokens", "max_completion_tokens", "max_output_tokens", "maxTokens", "maxOutputTokens",
                          "max_tokens_to_sample", "max_new_tokens"))
    cfg = p.get("generation_config") or p.get("generationConfig") or p.get("config")
    out = {
        "temperature": as_float(g("temperature")),
        "top_p": as_float(g("top_p", "topP")),
        "top_k": as_int(g("top_k", "topK")),
        "max_tokens": max_tokens if max_tokens is None or max_tokens >= 0 else None,  # -1 = "unset"
        "seed": as_int(g("seed")),
        "stop_sequences": string_list(g("stop_sequences", "stop", "stopSequences")),
        "service_tier": as_str(g("service_tier")) if isinstance(g("service_tier"), str) else None,
    }
    if isinstance(cfg, dict):  # Gemini generation config nested in the call
        out = fill(out, params_fields({k: v for k, v in cfg.items() if k not in ("generation_config", "config")}))
    return out


def _text(v: Any) -> str | None:
    """Text of a system-instruction-like value: a string, parts/blocks, or {parts|content|text}."""
    v = maybe_json(v)
    if nullish(v):
        return None
    if isinstance(v, str):
        return v
    if isinstance(v, list):
        texts, _, _ = _parts(v)
        return "\n\n".join(texts) if texts else None
    if isinstance(v, dict):
        for k in ("parts", "content", "text"):
            if k in v:
                return _text(v[k])
    return None


# ---------------------------------------------------------------- content: parts and messages

_BLOCK_TYPES = {
    "text", "input_text", "output_text", "image", "image_url", "input_image", "input_audio", "input_file",
    "tool_use", "server_tool_use", "tool_result", "thinking", "redacted_thinking", "reasoning", "refusal",
    "document", "file", "tool_call", "tool_call_response", "tool-call", "tool-result", "blob", "uri", "audio",
}
_SKIP_PARTS = {"thinking", "redacted_thinking", "reasoning"}
_ROLES = {"human": "user", "ai": "assistant", "model": "assistant", "bot": "assistant", "function": "tool",
          "generic": "user", "chat": "user", "developer": "system"}
_LC_TYPES = {"human", "ai", "system", "tool", "function", "chat", "generic", "user", "assistant"}
_LC_CLASSES = {"HumanMessage": "user", "AIMessage": "assistant", "SystemMessage": "system", "ToolMessage": "tool",
               "FunctionMessage": "tool", "ChatMessage": "user", "AIMessageChunk": "assistant"}


def _result_text(v: Any) -> str | None:
    if v is None:
        return None
    if isinstance(v, str):
        return v
    if isinstance(v, list):
        t = anthropic_blocks_text(v)
        if t is not None:
            return t
    return dumps(v)


def _call(c: Any) -> dict | None:
    """One tool call in any of the common shapes (OpenAI, LangChain, Vercel, Gemini, OTel part)."""
    c = maybe_json(c)
    if not isinstance(c, dict):
        return None
    if isinstance(c.get("function"), dict):  # OpenAI
        fn = c["function"]
        return tool_call(c.get("id"), fn.get("name"), first(fn.get("arguments"), fn.get("args")))
    if "toolCallId" in c or "toolName" in c:  # Vercel AI SDK
        return tool_call(c.get("toolCallId"), c.get("toolName"), first(c.get("input"), c.get("args")))
    fc = c.get("function_call") or c.get("functionCall")
    if isinstance(fc, dict):  # Gemini part
        return tool_call(fc.get("id"), fc.get("name"), fc.get("args"))
    return tool_call(first(c.get("id"), c.get("call_id")), c.get("name"),
                     first(c.get("arguments"), c.get("args"), c.get("input")))


def _parts(content: list) -> tuple[list[str], list[dict], list[dict]]:
    """(texts, tool calls, tool results) from a list of content parts/blocks in any common shape."""
    texts: list[str] = []
    calls: list[dict] = []
    results: list[dict] = []
    for p in content:
        if isinstance(p, str):
            texts.append(p)
            continue
        if not isinstance(p, dict):
            continue
        t = p.get("type") if isinstance(p.get("type"), str) else None
        if t in _SKIP_PARTS or p.get("thought") is True:
            continue
        if t in ("tool_use", "server_tool_use", "tool_call", "tool-call", "function_call") or (
            t is None and ("function_call" in p or "functionCall" in p)
        ):
            c = _call(p)
            if c:
                calls.append(c)
        elif t == "tool_result":
            results.append(message("tool", _result_text(p.get("content")), tool_call_id=as_str(p.get("tool_use_id"))))
        elif t == "tool_call_response":
            results.append(message("tool", _result_text(first(p.get("response"), p.get("result"))),
                                   tool_call_id=as_str(p.get("id"))))
        elif t == "tool-result":
            results.append(message("tool", _result_text(first(p.get("output"), p.get("result"))),
                                   tool_call_id=as_str(p.get("toolCallId")), name=as_str(p.get("toolName"))))
        elif t == "function_call_output":
            results.append(message("tool", _result_text(p.get("output")), tool_call_id=as_str(p.get("call_id"))))
        elif t is None and ("function_response" in p or "functionResponse" in p):
            fr = p.get("function_response") or p.get("functionResponse") or {}
            results.append(message("tool", _result_text(fr.get("response")), tool_call_id=as_str(fr.get("id")),
                                   name=as_str(fr.get("name"))))
        elif t == "refusal" and isinstance(p.get("refusal"), str):
            texts.append(p["refusal"])
        elif t in (None, "text", "input_text", "output_text"):
            txt = p.get("text") if isinstance(p.get("text"), str) else p.get("content")
            if isinstance(txt, str):
                texts.append(txt)
        # images, files, audio, blobs: not text; the prompt hash still sees the message
    return texts, calls, results


def _maybe_blocks(content: Any) -> Any:
    """Content that is JSON text of a list of typed content blocks becomes that list."""
    if isinstance(content, str) and content.lstrip().startswith("[{"):
        v = maybe_json(content)
        if isinstance(v, list) and v and all(isinstance(b, dict) and b.get("type") in _BLOCK_TYPES for b in v):
            return v
    return content


def messages_of(m: Any) -> list[dict]:
    """One source message (any common shape) as one or more normalised messages (tool results split out)."""
    if isinstance(m, str):
        return [message("user", m)]
    if not isinstance(m, dict):
        return [] if m is None else [message("user", dumps(m))]
    if m.get("lc") is not None and isinstance(m.get("kwargs"), dict):  # LangChain serialised constructor
        cls = (m.get("id") or [""])[-1] if isinstance(m.get("id"), list) else ""
        m = {**m["kwargs"], "role": _LC_CLASSES.get(cls, m["kwargs"].get("role") or "user")}
    t = m.get("type") if isinstance(m.get("type"), str) else None
    if t == "function_call":  # OpenAI Responses input item
        return [message("assistant", None, [_call(m)])]
    if t == "function_call_output":
        return [message("tool", _result_text(m.get("output")), tool_call_id=as_str(m.get("call_id")))]
    if t in _SKIP_PARTS:
        return []
    role = m.get("role")
    if role is None and isinstance(t, str) and t in _LC_TYPES:
        role = t  # LangChain message dict: {"type": "human", "content"/"data": ...}
        if isinstance(m.get("data"), dict):
            m = {**m["data"], **{k: v for k, v in m.items() if k != "data"}}
    role = str(role) if role is not None else "user"
    role = _ROLES.get(role.lower(), role.lower())
    if "content" in m:
        content = m["content"]
    elif "parts" in m:
        content = m["parts"]
    else:
        content = m.get("text")
    content = _maybe_blocks(content)
    if isinstance(content, list):
        texts, calls, results = _parts(content)
    elif isinstance(content, str):
        texts, calls, results = [content], [], []
    elif content is None:
        texts, calls, results = [], [], []
    else:
        texts, calls, results = [dumps(content)], [], []
    extra = m.get("additional_kwargs") if isinstance(m.get("additional_kwargs"), dict) else {}
    raw_calls = m.get("tool_calls") or extra.get("tool_calls") or []
    if isinstance(raw_calls, str):
        raw_calls = maybe_json(raw_calls)
    for c in raw_calls if isinstance(raw_calls, list) else []:
        cc = _call(c)
        if cc:
            calls.append(cc)
    fc = m.get("function_call") or extra.get("function_call")
    if isinstance(fc, dict) and not calls:
        calls.append(tool_call(None, fc.get("name"), fc.get("arguments")))
    text = "\n\n".join(texts) if texts else None
    out = list(results)
    if role == "tool" and not results:
        return [message("tool", text, tool_call_id=as_str(first(m.get("tool_call_id"), m.get("id"))),
                        name=as_str(m.get("name")))]
    if text is not None or calls or not results:
        out.append(message(role, text, calls, as_str(m.get("tool_call_id")), as_str(m.get("name"))))
    return out


def split_system(msgs: list[dict]) -> tuple[str | None, list[dict]]:
    """Move system turns out of the conversation into the system prompt (as the OpenAI importer does)."""
    system = [m["text"] for m in msgs if m["role"] == "system" and m.get("text")]
    rest = [m for m in msgs if m["role"] != "system"]
    return ("\n\n".join(system) if system else None), rest


def conversation(value: Any) -> tuple[str | None, list[dict]]:
    """(system prompt, messages) from a prompt in any common shape. Never raises.

    Text is kept as logged: only None and "" mean "no prompt" (a prompt that
    reads "null" or "None" is still a prompt).
    """
    v = maybe_json(value)
    if v is None or v == "":
        return None, []
    if isinstance(v, str):
        return None, [message("user", v)]
    system_parts: list[str] = []
    src: Any
    if isinstance(v, dict):
        cfg = v.get("config") if isinstance(v.get("config"), dict) else {}
        for k in ("system", "instructions", "system_instruction", "systemInstruction"):
            t = _text(first(v.get(k), cfg.get(k)))
            if t:
                system_parts.append(t)
                break
        if isinstance(v.get("messages"), list):
            src = v["messages"]
        elif isinstance(v.get("contents"), list | str):
            src = v["contents"] if isinstance(v["contents"], list) else [v["contents"]]
        elif isinstance(v.get("input"), list | str) and ("model" in v or "instructions" in v):
            src = v["input"] if isinstance(v["input"], list) else [v["input"]]  # OpenAI Responses body
        elif isinstance(v.get("prompt"), str | list):
            src = v["prompt"] if isinstance(v["prompt"], list) else [v["prompt"]]
        elif isinstance(v.get("args"), list) or isinstance(v.get("kwargs"), dict):  # decorator-captured call
            args = list(v["args"] if isinstance(v.get("args"), list) else [])
            args += list(v["kwargs"].values() if isinstance(v.get("kwargs"), dict) else [])
            msg_lists = [a for a in args if isinstance(a, list) and a and all(isinstance(x, dict) for x in a)]
            src = msg_lists[0] if msg_lists else [a for a in args if isinstance(a, str)] or [dumps(v)]
        elif any(k in v for k in ("role", "content", "parts")):
            src = [v]
        else:
            return None, [message("user", dumps(v))]
    elif isinstance(v, list):
        src = v[0] if len(v) == 1 and isinstance(v[0], list) else v
    else:
        return None, [message("user", dumps(v))]
    msgs: list[dict] = []
    for m in src:
        msgs.extend(messages_of(m))
    system, msgs = split_system(msgs)
    if system:
        system_parts.append(system)
    return ("\n\n".join(system_parts) if system_parts else None), msgs


def request_body(value: Any) -> str | None:
    """The text of ``value`` when it is a complete provider request body (model + role/content messages)."""
    v = maybe_json(value)
    if not isinstance(v, dict) or not isinstance(v.get("model"), str) or not isinstance(v.get("messages"), list):
        return None
    if not v["messages"] or not all(isinstance(m, dict) and "role" in m and "content" in m for m in v["messages"]):
        return None
    return value if isinstance(value, str) else dumps(v)


def _message_response(m: Any) -> dict:
    texts, calls = [], []
    for msg in messages_of(m):
        if msg["role"] == "tool":
            continue
        if msg.get("text") is not None:
            texts.append(msg["text"])
        calls.extend(msg.get("tool_calls") or [])
    return {"response_text": "\n\n".join(texts) if texts else ("" if calls else None), "tool_calls": calls}


def _finish(raw: Any) -> dict:
    raw = first(raw)
    if isinstance(raw, list):
        raw = raw[0] if raw else None
    if raw is None:
        return {}
    return {"stop_reason_raw": as_str(raw), "stop_reason": normalize_stop_reason(as_str(raw))}


# google.genai / Vertex protobuf FinishReason enum values, as SDKs that serialise the enum number write them
_GEMINI_FINISH = {1: "STOP", 2: "MAX_TOKENS", 3: "SAFETY", 4: "RECITATION", 5: "OTHER", 6: "BLOCKLIST",
                  7: "PROHIBITED_CONTENT", 8: "SPII", 9: "MALFORMED_FUNCTION_CALL"}


def _gemini_finish(v: Any) -> Any:
    if isinstance(v, int) and not isinstance(v, bool):
        return _GEMINI_FINISH.get(v, str(v))
    if isinstance(v, str) and v.startswith("FinishReason."):
        return v[len("FinishReason."):]
    return v


def _gemini_response(v: dict) -> dict:
    cands = v.get("candidates") or []
    c0 = cands[0] if cands and isinstance(cands[0], dict) else {}
    content = c0.get("content") or {}
    texts, calls, _ = _parts(content.get("parts") or []) if isinstance(content, dict) else ([], [], [])
    usage = v.get("usage_metadata") or v.get("usageMetadata") or {}
    cached = first(usage.get("cached_content_token_count"), usage.get("cachedContentTokenCount"))
    out = {
        "response_text": "\n\n".join(texts) if texts else ("" if calls else None),
        "tool_calls": calls,
        "model_returned": as_str(first(v.get("model_version"), v.get("modelVersion"))),
        "response_id": as_str(first(v.get("response_id"), v.get("responseId"))),
        "input_tokens": uncached_input(first(usage.get("prompt_token_count"), usage.get("promptTokenCount")), cached),
        "output_tokens": as_int(first(usage.get("candidates_token_count"), usage.get("candidatesTokenCount"))),
        "cache_read_tokens": as_int(cached),
    }
    return {**out, **_finish(_gemini_finish(first(c0.get("finish_reason"), c0.get("finishReason"))))}


def _responses_api(v: dict) -> dict:
    texts, calls = [], []
    for item in v.get("output") or []:
        if not isinstance(item, dict):
            continue
        if item.get("type") == "function_call":
            calls.append(_call(item))
        elif item.get("type") == "message" or "content" in item:
            t, c, _ = _parts(item.get("content") if isinstance(item.get("content"), list) else [item.get("content")])
            texts.extend(t)
            calls.extend(c)
    usage = v.get("usage") if isinstance(v.get("usage"), dict) else {}
    details = usage.get("input_tokens_details") if isinstance(usage.get("input_tokens_details"), dict) else {}
    incomplete = v.get("incomplete_details") if isinstance(v.get("incomplete_details"), dict) else {}
    raw = first(incomplete.get("reason"), v.get("status"))
    fin = _finish(raw)
    if calls and fin.get("stop_reason") in (None, "end_turn"):
        fin["stop_reason"] = "tool_use"
    return {
        "response_text": "\n\n".join(texts) if texts else ("" if calls else None),
        "tool_calls": calls,
        "response_id": as_str(v.get("id")),
        "model_returned": as_str(v.get("model")),
        "input_tokens": uncached_input(usage.get("input_tokens"), details.get("cached_tokens")),
        "output_tokens": as_int(usage.get("output_tokens")),
        "cache_read_tokens": as_int(details.get("cached_tokens")),
        "service_tier": as_str(v.get("service_tier")) if isinstance(v.get("service_tier"), str) else None,
        **fin,
    }


def response_fields(value: Any) -> dict:
    """Response fields (text, tool calls, stop reason, and ids/usage when present) from an output in any shape.

    A complete provider response body (OpenAI Chat Completion / Responses,
    Anthropic Message) is also kept as ``response_raw``. Never raises.
    """
    v = maybe_json(value)
    if v is None:
        return {}
    if isinstance(v, str):  # kept as logged, even "" or "None"
        return {"response_text": v}
    raw = value if isinstance(value, str) else None
    if isinstance(v, dict):
        if isinstance(v.get("choices"), list):
            ch0 = v["choices"][0] if v["choices"] and isinstance(v["choices"][0], dict) else {}
            if "text" in ch0 and "message" not in ch0:  # legacy completions
                out = {"response_text": as_str(ch0.get("text")), "tool_calls": [], "response_id": as_str(v.get("id")),
                       "model_returned": as_str(v.get("model")), **_finish(ch0.get("finish_reason"))}
                usage = v.get("usage") if isinstance(v.get("usage"), dict) else {}
                out.update(input_tokens=as_int(usage.get("prompt_tokens")),
                           output_tokens=as_int(usage.get("completion_tokens")))
            else:
                try:
                    out = openai_response_fields(v)
                except (RecordError, AttributeError, TypeError):
                    out = _message_response(ch0.get("message") or {})
                out.pop("_created", None)
                out.pop("_system_fingerprint", None)
                out.pop("status", None)
            if v.get("id") and v.get("model"):
                out["response_raw"] = raw or dumps(v)
            return out
        if v.get("type") == "message" and isinstance(v.get("content"), list) and v.get("id"):
            try:
                out = anthropic_response_fields(v)
            except (RecordError, AttributeError, TypeError):
                out = _message_response(v)
            out.pop("status", None)
            out["response_raw"] = raw or dumps(v)
            return out
        if isinstance(v.get("candidates"), list):
            return _gemini_response(v)
        if v.get("object") == "response" or (isinstance(v.get("output"), list) and str(v.get("id", "")).startswith("resp")):
            out = _responses_api(v)
            if v.get("id") and v.get("model"):
                out["response_raw"] = raw or dumps(v)
            return out
        if isinstance(v.get("message"), dict):  # one OpenAI choice / OTel gen_ai.choice body
            return {**_message_response(v["message"]), **_finish(v.get("finish_reason"))}
        if isinstance(v.get("content"), dict) and "parts" in v["content"]:  # Gemini candidate / ADK response
            fin = _gemini_finish(first(v.get("finish_reason"), v.get("finishReason")))
            return {**_message_response(v["content"]), **_finish(fin)}
        if any(k in v for k in ("role", "content", "parts", "tool_calls")):
            meta = v.get("response_metadata") if isinstance(v.get("response_metadata"), dict) else {}
            fin = first(v.get("finish_reason"), v.get("stop_reason"), meta.get("finish_reason"), meta.get("stop_reason"))
            return {**_message_response(v), **_finish(fin)}
        for k in ("text", "completion", "output", "generated_text", "answer", "result"):
            if isinstance(v.get(k), str):
                return {"response_text": v[k], "tool_calls": [], **_finish(v.get("finish_reason"))}
        return {"response_text": dumps(v), "tool_calls": []}
    if isinstance(v, list):
        if not v:
            return {}
        if all(isinstance(x, str) for x in v):
            return {"response_text": "".join(v), "tool_calls": []}
        dicts = [x for x in v if isinstance(x, dict)]
        if dicts and all("toolCallId" in x or "toolName" in x for x in dicts):  # Vercel AI SDK tool calls
            return {"response_text": "", "tool_calls": [c for c in map(_call, dicts) if c]}
        if any(x.get("type") in ("message", "function_call") and "role" not in x for x in dicts):
            return _responses_api({"output": dicts})
        for x in dicts:  # a list of choices/candidates: the first one is the response
            if any(k in x for k in ("role", "content", "parts", "message", "text", "tool_calls")):
                out = response_fields(x)
                if "stop_reason_raw" not in out:
                    out.update(_finish(x.get("finish_reason")))
                return out
        return {"response_text": dumps(v), "tool_calls": []}
    return {"response_text": dumps(v)}


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
    "gen_ai.usage.cache_read_input_tokens", "gen_ai.usage.cache_creation_input_tokens", "gen_ai.conversation.id",
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
            choices.append(_event_body(ea))
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
    si = _text(a.get("gen_ai.system_instructions"))
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
    finish = string_list(a.get("gen_ai.response.finish_reasons"))
    model_req = as_str(a.get("gen_ai.request.model"))
    model_ret = as_str(a.get("gen_ai.response.model"))
    tokens, extra = token_fields(
        provider, model_ret or model_req,
        first(a.get("gen_ai.usage.input_tokens"), a.get("gen_ai.usage.prompt_tokens")),
        first(a.get("gen_ai.usage.output_tokens"), a.get("gen_ai.usage.completion_tokens")),
        first(a.get("gen_ai.usage.cache_read.input_tokens"), a.get("gen_ai.usage.cache_read_input_tokens")),
        first(a.get("gen_ai.usage.cache_creation.input_tokens"), a.get("gen_ai.usage.cache_creation_input_tokens")),
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
        fields.update(_finish(finish[0]))
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
        role = _ROLES.get(role.lower(), role.lower())
        content = g.get("content")
        texts: list[str] = []
        calls: list[dict] = []
        if isinstance(content, str):
            texts.append(content)
        elif content is not None:
            texts.append(_result_text(content) or "")
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
        fields.update(_finish(a["llm.finish_reason"]))
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
