"""Liberal readers for prompts, responses and request parameters in whatever shape an SDK logged them.

Shared by every importer whose records carry content another library
serialised (span exports, Langfuse, LangSmith, LiteLLM, Helicone, Bedrock,
simonw/llm, generic tables): OpenAI Chat / Responses, Anthropic Messages,
Gemini ``contents``/``parts``, OTel GenAI ``parts`` messages, LangChain
messages, Vercel AI SDK parts, OpenInference flattened messages, plain
strings and JSON text of any of these.

Contract: pure functions over plain Python values. ``conversation`` and
``response_fields`` never raise; what they cannot interpret is kept as text,
so no prompt or response is silently dropped (a prompt that reads "null" is
still a prompt). ``nullish``/``first`` are for metadata values, where a
logger's "null", "None" or "undefined" means nothing was set.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Mapping
from typing import Any

from tracelens.ingest.base import RecordError
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
    parse_timestamp,
    tool_call,
    uncached_input,
)
from tracelens.ingest.readers import loads

# ---------------------------------------------------------------- small helpers

_NULLISH = {"", "null", "none", "undefined", "nan"}


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
    """True for None and for text that means no value: blank, "null", "none", "undefined" or "nan" (any case)."""
    return v is None or (isinstance(v, str) and v.strip().lower() in _NULLISH)


def time_field(v: Any, what: str, naive_tz: str) -> dt.datetime | None:
    """A record's time field ``what`` as an aware UTC datetime; None when absent or null; RecordError naming the field
    for a value that is not a time (a naive one is read in ``naive_tz``)."""
    if nullish(v):
        return None
    try:
        return parse_timestamp(v, naive_tz)[0]
    except RecordError as e:
        raise RecordError(f"{what}: {e}") from None


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
    """Milliseconds from ``start`` to ``end``; None when either is None or ``end`` is before ``start``."""
    if start is None or end is None:
        return None
    ms = (end - start).total_seconds() * 1000.0
    return ms if ms >= 0 else None


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


def request_settings(p: Mapping[str, Any] | None) -> dict:
    """The set sampling parameters of a request-like dict and its tool definitions (``tools``, or the older
    ``functions``, as JSON text); fields the dict does not set are left out."""
    out = {k: v for k, v in params_fields(p).items() if v is not None}
    tools = (p or {}).get("tools") or (p or {}).get("functions")
    if tools:
        out["tool_definitions"] = dumps(tools)
    return out


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


def system_text(v: Any) -> str | None:
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
                return system_text(v[k])
    return None


# ---------------------------------------------------------------- content: parts and messages

_BLOCK_TYPES = {
    "text", "input_text", "output_text", "image", "image_url", "input_image", "input_audio", "input_file",
    "tool_use", "server_tool_use", "tool_result", "thinking", "redacted_thinking", "reasoning", "refusal",
    "document", "file", "tool_call", "tool_call_response", "tool-call", "tool-result", "blob", "uri", "audio",
}
_SKIP_PARTS = {"thinking", "redacted_thinking", "reasoning"}
ROLE_ALIASES = {"human": "user", "ai": "assistant", "model": "assistant", "bot": "assistant", "function": "tool",
          "generic": "user", "chat": "user", "developer": "system"}
_LC_TYPES = {"human", "ai", "system", "tool", "function", "chat", "generic", "user", "assistant"}
_LC_CLASSES = {"HumanMessage": "user", "AIMessage": "assistant", "SystemMessage": "system", "ToolMessage": "tool",
               "FunctionMessage": "tool", "ChatMessage": "user", "AIMessageChunk": "assistant"}


def result_text(v: Any) -> str | None:
    """Text of a tool result: a string as is, Anthropic-style blocks as their text, anything else as compact JSON; None
    for None.
    """
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
            results.append(message("tool", result_text(p.get("content")), tool_call_id=as_str(p.get("tool_use_id"))))
        elif t == "tool_call_response":
            results.append(message("tool", result_text(first(p.get("response"), p.get("result"))),
                                   tool_call_id=as_str(p.get("id"))))
        elif t == "tool-result":
            results.append(message("tool", result_text(first(p.get("output"), p.get("result"))),
                                   tool_call_id=as_str(p.get("toolCallId")), name=as_str(p.get("toolName"))))
        elif t == "function_call_output":
            results.append(message("tool", result_text(p.get("output")), tool_call_id=as_str(p.get("call_id"))))
        elif t is None and ("function_response" in p or "functionResponse" in p):
            fr = p.get("function_response") or p.get("functionResponse") or {}
            results.append(message("tool", result_text(fr.get("response")), tool_call_id=as_str(fr.get("id")),
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
        return [message("tool", result_text(m.get("output")), tool_call_id=as_str(m.get("call_id")))]
    if t in _SKIP_PARTS:
        return []
    role = m.get("role")
    if role is None and isinstance(t, str) and t in _LC_TYPES:
        role = t  # LangChain message dict: {"type": "human", "content"/"data": ...}
        if isinstance(m.get("data"), dict):
            m = {**m["data"], **{k: v for k, v in m.items() if k != "data"}}
    role = str(role) if role is not None else "user"
    role = ROLE_ALIASES.get(role.lower(), role.lower())
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
            t = system_text(first(v.get(k), cfg.get(k)))
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


def finish_fields(raw: Any) -> dict:
    """``stop_reason_raw`` and the normalised ``stop_reason`` from a finish reason (a list: its first one); {} when
    there is none.
    """
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
    return {**out, **finish_fields(_gemini_finish(first(c0.get("finish_reason"), c0.get("finishReason"))))}


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
    fin = finish_fields(raw)
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
                       "model_returned": as_str(v.get("model")), **finish_fields(ch0.get("finish_reason"))}
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
            return {**_message_response(v["message"]), **finish_fields(v.get("finish_reason"))}
        if isinstance(v.get("content"), dict) and "parts" in v["content"]:  # Gemini candidate / ADK response
            fin = _gemini_finish(first(v.get("finish_reason"), v.get("finishReason")))
            return {**_message_response(v["content"]), **finish_fields(fin)}
        if any(k in v for k in ("role", "content", "parts", "tool_calls")):
            meta = v.get("response_metadata") if isinstance(v.get("response_metadata"), dict) else {}
            fin = first(v.get("finish_reason"), v.get("stop_reason"), meta.get("finish_reason"), meta.get("stop_reason"))
            return {**_message_response(v), **finish_fields(fin)}
        for k in ("text", "completion", "output", "generated_text", "answer", "result"):
            if isinstance(v.get(k), str):
                return {"response_text": v[k], "tool_calls": [], **finish_fields(v.get("finish_reason"))}
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
                    out.update(finish_fields(x.get("finish_reason")))
                return out
        return {"response_text": dumps(v), "tool_calls": []}
    return {"response_text": dumps(v)}
