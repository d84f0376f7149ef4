"""Normalisation shared by importers: timestamps, stop reasons, and the
Anthropic Messages / OpenAI Chat Completions bodies that many sources embed.

Every function here is pure and raises ``RecordError`` (a quarantine reason)
for values it cannot interpret, never a bare exception.
"""

from __future__ import annotations

import datetime as dt
import json
import re
from typing import Any

from tracelens.ingest.base import RecordError

# ---------------------------------------------------------------- timestamps

_NUMERIC = re.compile(r"^-?\d+(\.\d+)?$")
_YYYYMMDD = re.compile(r"^(19[9]\d|20\d\d)(0[1-9]|1[0-2])(0[1-9]|[12]\d|3[01])$")
# C0 controls and DEL: datetime.fromisoformat stops at an embedded NUL and would accept what precedes it.
_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f]")


def check_zone(name: str, allow_reject: bool = False) -> str:
    """``name`` if it is a zone ``parse_timestamp`` can use ("UTC", an IANA key, or "reject" when allowed).

    Raises ValueError with a user-facing message otherwise, so a misspelt zone
    is refused up front instead of quarantining every naive timestamp.
    """
    if allow_reject and name == "reject":
        return name
    if name.upper() == "UTC":
        return name
    from zoneinfo import ZoneInfo

    try:
        ZoneInfo(name)
    except (KeyError, ValueError):  # ZoneInfoNotFoundError is a KeyError; bad keys (NUL, '..', absolute) ValueError
        extra = ", 'UTC' or 'reject'" if allow_reject else " or 'UTC'"
        raise ValueError(f"unknown time zone {name!r}: use an IANA zone such as Europe/Paris{extra}") from None
    return name


def parse_timestamp(value: Any, naive_tz: str = "UTC") -> tuple[dt.datetime, bool]:
    """Parse ISO 8601 text or an epoch number (s, ms, us or ns by magnitude) to UTC.

    Returns (timestamp, was_naive). A naive timestamp is read in ``naive_tz``
    (an IANA zone or "UTC"); ``naive_tz="reject"`` raises RecordError instead.
    """
    if value is None or value == "":
        raise RecordError("missing timestamp (pass --default-time ISO8601 to assign one)")
    if isinstance(value, bool):
        raise RecordError(f"timestamp is a boolean ({value!r})")
    if isinstance(value, dt.datetime):
        ts = value
    elif isinstance(value, int | float) or (isinstance(value, str) and _NUMERIC.match(value.strip())):
        digits = str(value).strip()
        if _YYYYMMDD.match(digits):  # a compact date, not 1970 epoch seconds
            return dt.datetime.strptime(digits, "%Y%m%d").replace(tzinfo=dt.UTC), False
        x = float(value)
        ax = abs(x)
        if ax >= 1e17:
            x /= 1e9
        elif ax >= 1e14:
            x /= 1e6
        elif ax >= 1e11:
            x /= 1e3
        try:
            return dt.datetime.fromtimestamp(x, tz=dt.UTC), False
        except (OverflowError, OSError, ValueError) as e:
            raise RecordError(f"timestamp {value!r} is out of range") from e
    elif isinstance(value, str):
        if _CONTROL.search(value):
            raise RecordError(f"timestamp {value!r} contains control characters")
        s = value.strip()
        if s.endswith(("Z", "z")):
            s = s[:-1] + "+00:00"
        # tolerate 'YYYY-MM-DD HH:MM:SS UTC' and nanosecond fractions
        s = re.sub(r"\s+UTC$", "+00:00", s)
        s = re.sub(r"(\.\d{6})\d+", r"\1", s)
        try:
            ts = dt.datetime.fromisoformat(s)
        except ValueError:
            try:
                from email.utils import parsedate_to_datetime

                ts = parsedate_to_datetime(value)
            except (TypeError, ValueError, IndexError) as e:
                raise RecordError(f"unparseable timestamp {value!r} (expected ISO 8601 or epoch)") from e
    else:
        raise RecordError(f"timestamp has unsupported type {type(value).__name__}")
    if ts.tzinfo is None:
        if naive_tz == "reject":
            raise RecordError(f"timestamp {value!r} has no time zone (pass --naive-tz ZONE to accept it)")
        if naive_tz.upper() == "UTC":
            ts = ts.replace(tzinfo=dt.UTC)
        else:
            from zoneinfo import ZoneInfo

            ts = ts.replace(tzinfo=ZoneInfo(naive_tz))
        return ts.astimezone(dt.UTC), True
    return ts.astimezone(dt.UTC), False


# ---------------------------------------------------------------- stop reasons

_STOP_MAP = {
    # Anthropic
    "end_turn": "end_turn",
    "max_tokens": "max_tokens",
    "stop_sequence": "stop_sequence",
    "tool_use": "tool_use",
    "refusal": "refusal",
    "pause_turn": "other",
    "model_context_window_exceeded": "max_tokens",
    # OpenAI
    "stop": "end_turn",
    "length": "max_tokens",
    "tool_calls": "tool_use",
    "function_call": "tool_use",
    "content_filter": "content_filter",
    # Bedrock Converse
    "guardrail_intervened": "content_filter",
    "content_filtered": "content_filter",
    # Gemini
    "STOP": "end_turn",
    "MAX_TOKENS": "max_tokens",
    "SAFETY": "content_filter",
    "RECITATION": "content_filter",
    "BLOCKLIST": "content_filter",
    "PROHIBITED_CONTENT": "content_filter",
    "SPII": "content_filter",
    "MALFORMED_FUNCTION_CALL": "error",
    # misc
    "error": "error",
    "eos": "end_turn",
    "eos_token": "end_turn",
    "complete": "end_turn",
    "completed": "end_turn",
}


def normalize_stop_reason(raw: str | None) -> str | None:
    """Map a provider's stop/finish reason to the schema's normalised set."""
    if raw is None or raw == "":
        return None
    raw = str(raw)
    if raw in _STOP_MAP:
        return _STOP_MAP[raw]
    low = raw.lower()
    if low in _STOP_MAP:
        return _STOP_MAP[low]
    if "filter" in low or "safety" in low or "guardrail" in low:
        return "content_filter"
    if "length" in low or "max" in low:
        return "max_tokens"
    if "tool" in low or "function" in low:
        return "tool_use"
    return "other"


# ---------------------------------------------------------------- helpers


try:
    import orjson as _orjson
except ImportError:  # pragma: no cover
    _orjson = None


def dumps(obj: Any) -> str:
    """Compact JSON that keeps key order and non-ASCII text (how request_raw is kept)."""
    if _orjson is not None:
        try:
            return _orjson.dumps(obj).decode()
        except TypeError:  # e.g. integers beyond 64 bits: the standard library handles them
            pass
    return json.dumps(obj, ensure_ascii=False, separators=(",", ":"))


def as_int(v: Any) -> int | None:
    if v is None or v == "" or isinstance(v, bool):
        return None
    try:
        return int(float(v))
    except (TypeError, ValueError):
        return None


def uncached_input(total: Any, *cached: Any) -> int | None:
    """``input_tokens`` in the schema's meaning from a prompt total that includes the cached tokens.

    OpenAI's ``prompt_tokens``, LangChain's ``input_tokens``, LiteLLM's
    ``prompt_tokens`` and Gemini's ``promptTokenCount`` count the tokens read
    from (and, for LiteLLM, written to) the prompt cache inside the total; the
    schema's ``input_tokens`` is the rest (see docs/schema.md), so the cache
    counts given are subtracted. A total smaller than them is not such a total
    and is kept as it is.
    """
    t = as_int(total)
    c = sum(n for n in (as_int(x) for x in cached) if n)
    if t is None or not c or t < c:
        return t
    return t - c


def as_float(v: Any) -> float | None:
    if v is None or v == "" or isinstance(v, bool):
        return None
    try:
        return float(v)
    except (TypeError, ValueError):
        return None


def as_str(v: Any) -> str | None:
    if v is None:
        return None
    if isinstance(v, str):
        return v
    return dumps(v)


def tool_call(id_: Any, name: Any, arguments: Any) -> dict:
    if arguments is not None and not isinstance(arguments, str):
        arguments = dumps(arguments)
    return {"id": as_str(id_), "name": as_str(name), "arguments": arguments}


def message(role: str, text: str | None, tool_calls: list[dict] | None = None, tool_call_id: str | None = None,
            name: str | None = None) -> dict:
    return {"role": role, "text": text, "tool_calls": tool_calls or [], "tool_call_id": tool_call_id, "name": name}


def last_user_text(messages: list[dict]) -> str | None:
    for m in reversed(messages):
        if m.get("role") == "user" and m.get("text"):
            return m["text"]
    return None


# ---------------------------------------------------------------- Anthropic Messages API


# What a request/response log line's own ``provider`` says about its bodies (``tracelens.capture`` writes
# "openai" for every Chat Completions endpoint, OpenAI-compatible servers included, else "anthropic").
OPENAI_CHAT_PROVIDERS = frozenset({"openai", "azure"})
ANTHROPIC_PROVIDERS = frozenset({"anthropic", "bedrock", "vertex"})


def line_provider(obj: Any) -> str | None:
    """The lower-cased top-level ``provider`` of a log line (a parsed object, or the first line of a file head).

    ``tracelens.capture`` keeps the request and response as JSON strings, so the
    markers a sniffer looks for only appear escaped; the line's own ``provider``
    is the reliable sign of which API the bodies belong to.
    """
    if isinstance(obj, bytes | bytearray):
        line = bytes(obj).lstrip().split(b"\n", 1)[0]
        if not line.startswith(b"{"):
            return None
        try:
            obj = json.loads(line)
        except ValueError:  # a first line longer than the head: no answer
            return None
    if isinstance(obj, dict) and isinstance(obj.get("provider"), str):
        return obj["provider"].strip().lower() or None
    return None


def anthropic_blocks_text(content: Any) -> str | None:
    """Text of an Anthropic content value (a string or a list of blocks)."""
    if content is None:
        return None
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        parts = []
        for b in content:
            if isinstance(b, dict):
                if b.get("type") == "text" and isinstance(b.get("text"), str):
                    parts.append(b["text"])
                elif b.get("type") == "tool_result":
                    t = anthropic_blocks_text(b.get("content"))
                    if t:
                        parts.append(t)
            elif isinstance(b, str):
                parts.append(b)
        return "\n\n".join(parts) if parts else None
    return None


def anthropic_messages(body_messages: Any) -> list[dict]:
    """Normalise an Anthropic ``messages`` array. Tool results become role 'tool' entries."""
    if not isinstance(body_messages, list):
        raise RecordError("request.messages is not a list")
    out: list[dict] = []
    for m in body_messages:
        if not isinstance(m, dict):
            raise RecordError("request.messages contains a non-object entry")
        role = m.get("role") or "user"
        content = m.get("content")
        if isinstance(content, list):
            calls = [
                tool_call(b.get("id"), b.get("name"), b.get("input"))
                for b in content
                if isinstance(b, dict) and b.get("type") in ("tool_use", "server_tool_use")
            ]
            results = [b for b in content if isinstance(b, dict) and b.get("type") == "tool_result"]
            text_blocks = [b for b in content if not (isinstance(b, dict) and b.get("type") == "tool_result")]
            for r in results:
                out.append(message("tool", anthropic_blocks_text(r.get("content")), tool_call_id=as_str(r.get("tool_use_id"))))
            text = anthropic_blocks_text(text_blocks)
            if text is not None or calls or not results:
                out.append(message(role, text, calls))
        else:
            out.append(message(role, anthropic_blocks_text(content)))
    return out


def anthropic_system(system: Any) -> str | None:
    if system is None:
        return None
    return anthropic_blocks_text(system)


def anthropic_request_fields(req: dict) -> dict:
    """Trace fields from an Anthropic Messages request body."""
    if not isinstance(req, dict):
        raise RecordError("request is not a JSON object")
    msgs = anthropic_messages(req.get("messages", []))
    tools = req.get("tools")
    meta = req.get("metadata") or {}
    return {
        "model_requested": as_str(req.get("model")),
        "system_prompt": anthropic_system(req.get("system")),
        "messages": msgs,
        "prompt_text": last_user_text(msgs),
        "tool_definitions": dumps(tools) if tools else None,
        "temperature": as_float(req.get("temperature")),
        "top_p": as_float(req.get("top_p")),
        "top_k": as_int(req.get("top_k")),
        "max_tokens": as_int(req.get("max_tokens")),
        "stop_sequences": [str(s) for s in req.get("stop_sequences") or []] or None,
        "service_tier": as_str(req.get("service_tier")),
        "user_id": as_str(meta.get("user_id")) if isinstance(meta, dict) else None,
    }


def anthropic_response_fields(resp: dict) -> dict:
    """Trace fields from an Anthropic Messages response (or error) body."""
    if not isinstance(resp, dict):
        raise RecordError("response is not a JSON object")
    if resp.get("type") == "error" or ("error" in resp and "content" not in resp):
        err = resp.get("error") or {}
        if not isinstance(err, dict):
            err = {"message": str(err)}
        return {
            "status": "error",
            "error_type": as_str(err.get("type")),
            "error_message": as_str(err.get("message")),
            "request_id": as_str(resp.get("request_id")),
            "stop_reason": "error",
        }
    content = resp.get("content") or []
    calls = [
        tool_call(b.get("id"), b.get("name"), b.get("input"))
        for b in content
        if isinstance(b, dict) and b.get("type") in ("tool_use", "server_tool_use")
    ]
    usage = resp.get("usage") or {}
    raw_stop = resp.get("stop_reason")
    details = resp.get("stop_details")
    return {
        "status": "ok",
        "response_id": as_str(resp.get("id")),
        "model_returned": as_str(resp.get("model")),
        "response_text": anthropic_blocks_text(content) or ("" if isinstance(content, list) else None),
        "tool_calls": calls,
        "stop_reason_raw": as_str(raw_stop),
        "stop_reason": normalize_stop_reason(raw_stop),
        "stop_details": dumps(details) if details else None,
        "input_tokens": as_int(usage.get("input_tokens")),
        "output_tokens": as_int(usage.get("output_tokens")),
        "cache_read_tokens": as_int(usage.get("cache_read_input_tokens")),
        "cache_creation_tokens": as_int(usage.get("cache_creation_input_tokens")),
        "service_tier": as_str(usage.get("service_tier")),
    }


def assemble_anthropic_sse(events: list[dict]) -> dict:
    """Rebuild the final Message from a list of Anthropic streaming events (parsed data objects)."""
    msg: dict | None = None
    blocks: dict[int, dict] = {}
    partial_json: dict[int, str] = {}
    for ev in events:
        t = ev.get("type")
        if t == "message_start":
            msg = dict(ev.get("message") or {})
            msg["content"] = []
        elif t == "content_block_start":
            blocks[ev["index"]] = dict(ev.get("content_block") or {})
        elif t == "content_block_delta":
            d = ev.get("delta") or {}
            b = blocks.setdefault(ev.get("index", 0), {"type": "text", "text": ""})
            if d.get("type") == "text_delta":
                b["text"] = b.get("text", "") + d.get("text", "")
            elif d.get("type") == "input_json_delta":
                partial_json[ev.get("index", 0)] = partial_json.get(ev.get("index", 0), "") + d.get("partial_json", "")
            elif d.get("type") == "thinking_delta":
                b["thinking"] = b.get("thinking", "") + d.get("thinking", "")
            elif d.get("type") == "signature_delta":
                b["signature"] = d.get("signature")
        elif t == "message_delta":
            if msg is None:
                msg = {"content": []}
            d = ev.get("delta") or {}
            for k, v in d.items():
                msg[k] = v
            if ev.get("usage"):
                msg["usage"] = {**(msg.get("usage") or {}), **ev["usage"]}
        elif t == "error":
            return {"type": "error", "error": ev.get("error")}
    if msg is None:
        raise RecordError("stream has no message_start event")
    for i in sorted(blocks):
        b = blocks[i]
        if i in partial_json:
            try:
                b["input"] = json.loads(partial_json[i]) if partial_json[i] else {}
            except ValueError:
                b["input"] = partial_json[i]
        msg["content"].append(b)
    return msg


def parse_sse(text: str) -> list[dict]:
    """Parse a text/event-stream body into the list of JSON data objects."""
    events = []
    data_lines: list[str] = []
    for line in text.splitlines() + [""]:
        if line.startswith("data:"):
            data_lines.append(line[5:].lstrip())
        elif line == "" and data_lines:
            payload = "\n".join(data_lines)
            data_lines = []
            if payload.strip() == "[DONE]":
                continue
            try:
                events.append(json.loads(payload))
            except ValueError as e:
                raise RecordError(f"malformed SSE data: {e}") from e
    return events


# ---------------------------------------------------------------- OpenAI Chat Completions


def openai_content_text(content: Any) -> str | None:
    if content is None:
        return None
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        parts = []
        for p in content:
            if isinstance(p, dict):
                if p.get("type") in ("text", "input_text", "output_text") and isinstance(p.get("text"), str) or isinstance(p.get("text"), str):
                    parts.append(p["text"])
            elif isinstance(p, str):
                parts.append(p)
        return "\n\n".join(parts) if parts else None
    return None


def openai_messages(body_messages: Any) -> tuple[str | None, list[dict]]:
    """(system prompt, messages) from an OpenAI ``messages`` array; system/developer turns become the system prompt."""
    if not isinstance(body_messages, list):
        raise RecordError("request.messages is not a list")
    system_parts = []
    out = []
    for m in body_messages:
        if not isinstance(m, dict):
            raise RecordError("request.messages contains a non-object entry")
        role = m.get("role") or "user"
        text = openai_content_text(m.get("content"))
        if role in ("system", "developer"):
            if text:
                system_parts.append(text)
            continue
        calls = []
        for c in m.get("tool_calls") or []:
            fn = c.get("function") or {}
            calls.append(tool_call(c.get("id"), fn.get("name"), fn.get("arguments")))
        if m.get("function_call"):
            fc = m["function_call"]
            calls.append(tool_call(None, fc.get("name"), fc.get("arguments")))
        out.append(
            message("tool" if role == "function" else role, text, calls, as_str(m.get("tool_call_id")), as_str(m.get("name")))
        )
    return ("\n\n".join(system_parts) if system_parts else None), out


def openai_request_fields(req: dict) -> dict:
    if not isinstance(req, dict):
        raise RecordError("request is not a JSON object")
    system, msgs = openai_messages(req.get("messages", []))
    tools = req.get("tools") or req.get("functions")
    stop = req.get("stop")
    max_tokens = req.get("max_completion_tokens", req.get("max_tokens"))
    return {
        "model_requested": as_str(req.get("model")),
        "system_prompt": system,
        "messages": msgs,
        "prompt_text": last_user_text(msgs),
        "tool_definitions": dumps(tools) if tools else None,
        "temperature": as_float(req.get("temperature")),
        "top_p": as_float(req.get("top_p")),
        "max_tokens": as_int(max_tokens),
        "seed": as_int(req.get("seed")),
        "stop_sequences": ([stop] if isinstance(stop, str) else [str(s) for s in stop]) if stop else None,
        "service_tier": as_str(req.get("service_tier")),
        "user_id": as_str(req.get("user")),
    }


def openai_response_fields(resp: dict) -> dict:
    if not isinstance(resp, dict):
        raise RecordError("response is not a JSON object")
    if "error" in resp and not resp.get("choices"):
        err = resp.get("error") or {}
        if not isinstance(err, dict):
            err = {"message": str(err)}
        return {
            "status": "error",
            "error_type": as_str(err.get("type") or err.get("code")),
            "error_message": as_str(err.get("message")),
            "stop_reason": "error",
        }
    choices = resp.get("choices") or []
    choice = choices[0] if choices and isinstance(choices[0], dict) else {}
    msg = choice.get("message") or {}
    calls = []
    for c in msg.get("tool_calls") or []:
        fn = c.get("function") or {}
        calls.append(tool_call(c.get("id"), fn.get("name"), fn.get("arguments")))
    if msg.get("function_call"):
        fc = msg["function_call"]
        calls.append(tool_call(None, fc.get("name"), fc.get("arguments")))
    usage = resp.get("usage") or {}
    details = usage.get("prompt_tokens_details") or {}
    finish = choice.get("finish_reason")
    refusal = msg.get("refusal")
    stop_details = {"refusal": refusal} if refusal else None
    text = openai_content_text(msg.get("content"))
    return {
        "status": "ok",
        "response_id": as_str(resp.get("id")),
        "model_returned": as_str(resp.get("model")),
        # content null (a tool-call-only answer) is no text, not empty text
        "response_text": text if text is not None else (refusal or None),
        "tool_calls": calls,
        "stop_reason_raw": as_str(finish),
        "stop_reason": "refusal" if refusal and finish in (None, "stop") else normalize_stop_reason(finish),
        "stop_details": dumps(stop_details) if stop_details else None,
        "input_tokens": uncached_input(usage.get("prompt_tokens"), details.get("cached_tokens")),
        "output_tokens": as_int(usage.get("completion_tokens")),
        "cache_read_tokens": as_int(details.get("cached_tokens")),
        "service_tier": as_str(resp.get("service_tier")),
        "_created": resp.get("created"),
        "_system_fingerprint": as_str(resp.get("system_fingerprint")),
    }


def assemble_openai_chunks(chunks: list) -> dict:
    """Rebuild a ``chat.completion`` from streamed ``chat.completion.chunk`` objects."""
    out: dict[str, Any] = {"object": "chat.completion"}
    choices: dict[int, dict] = {}
    seen = False
    for ch in chunks:
        if not isinstance(ch, dict):
            continue
        if ch.get("error") is not None and not ch.get("choices"):
            return {"error": ch["error"]}
        for k in ("id", "model", "created", "system_fingerprint", "service_tier"):
            if ch.get(k) is not None and k not in out:
                out[k] = ch[k]
        if ch.get("usage"):
            out["usage"] = ch["usage"]
        if ch.get("prompt_filter_results") is not None:
            out["prompt_filter_results"] = ch["prompt_filter_results"]
        for c in ch.get("choices") or []:
            if not isinstance(c, dict):
                continue
            seen = True
            st = choices.setdefault(as_int(c.get("index")) or 0,
                                    {"content": [], "refusal": [], "calls": {}, "finish_reason": None, "extra": {}})
            d = c.get("delta") if isinstance(c.get("delta"), dict) else {}
            if isinstance(d.get("content"), str):
                st["content"].append(d["content"])
            if isinstance(d.get("refusal"), str):
                st["refusal"].append(d["refusal"])
            for tc in d.get("tool_calls") or []:
                if not isinstance(tc, dict):
                    continue
                slot = st["calls"].setdefault(as_int(tc.get("index")) or 0,
                                              {"id": None, "type": "function", "function": {"name": "", "arguments": ""}})
                if tc.get("id"):
                    slot["id"] = tc["id"]
                fn = tc.get("function") if isinstance(tc.get("function"), dict) else {}
                if isinstance(fn.get("name"), str):
                    slot["function"]["name"] += fn["name"]
                if isinstance(fn.get("arguments"), str):
                    slot["function"]["arguments"] += fn["arguments"]
            if c.get("finish_reason") is not None:
                st["finish_reason"] = c["finish_reason"]
            if c.get("content_filter_results") is not None:
                st["extra"]["content_filter_results"] = c["content_filter_results"]
    if not seen and "id" not in out:
        raise RecordError("stream has no chat.completion.chunk with choices")
    out["choices"] = []
    for i in sorted(choices):
        st = choices[i]
        msg: dict[str, Any] = {"role": "assistant", "content": "".join(st["content"]) if st["content"] else None}
        if st["refusal"]:
            msg["refusal"] = "".join(st["refusal"])
        if st["calls"]:
            msg["tool_calls"] = [st["calls"][k] for k in sorted(st["calls"])]
        out["choices"].append({"index": i, "message": msg, "finish_reason": st["finish_reason"], **st["extra"]})
    return out


def merge(*parts: dict) -> dict:
    """Merge field dicts; later non-None values win."""
    out: dict = {}
    for p in parts:
        for k, v in p.items():
            if v is not None or k not in out:
                out[k] = v
    return out
