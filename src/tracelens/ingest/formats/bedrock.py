"""AWS Bedrock model invocation logs (``bedrock_invocation``).

What Bedrock's model invocation logging writes to CloudWatch Logs or S3: one
JSON object per call (JSONL, gzip'd in S3 delivery), ``schemaType:
"ModelInvocationLog"``, with the caller (``accountId``, ``identity.arn``,
``region``), the call (``requestId``, ``operation``, ``modelId``) and the
provider-native bodies in ``input.inputBodyJson`` / ``output.outputBodyJson``.
A CloudWatch export line that wraps the record as JSON text in ``message`` is
unwrapped.

Bodies are read by shape, whatever the operation says:

* **Converse / ConverseStream**: ``messages[].content[]`` blocks
  (``text``, ``toolUse``, ``toolResult``, ``guardContent``, documents and
  images), ``system[]``, ``inferenceConfig``, ``toolConfig``; the output
  ``output.message``, ``stopReason``, ``usage``, ``metrics.latencyMs``,
  ``trace.guardrail``. A stream logged as a list of Converse stream events is
  reassembled.
* **InvokeModel with Anthropic Messages bodies**: the shared Anthropic
  normalisation; a streamed output (a list of Anthropic stream events) is
  reassembled, its ``amazon-bedrock-invocationMetrics`` give latency, time to
  first byte and token counts.
* Other InvokeModel text bodies: OpenAI-shaped (``choices``), Llama
  (``generation``), Titan text (``results``/``outputText``), Mistral
  (``outputs``), Cohere (``generations``/``text``), legacy Claude Text
  Completions (``completion``), AI21 (``completions``), each also as a
  list of stream chunks.

Guardrails: Converse ``stopReason: guardrail_intervened`` and InvokeModel
``"amazon-bedrock-guardrailAction": "INTERVENED"`` give
``stop_reason=content_filter``; the guardrail trace (assessments, the blocked
model output) is kept as ``stop_details`` JSON so the refusal detector and a
reader see why. ``stop_reason_raw`` stays what the model reported.

Bodies spilled to S3 (``inputBodyS3Path``/``outputBodyS3Path``) are not
fetched: the trace is stored with what the record holds and marked
``attributes.body_in_s3=true`` plus the paths. Embedding, image, video and
rerank models are ``Skipped`` with a reason. ``trace_id`` is
``bedrock:<requestId>``; ``provider`` is ``bedrock``. Field mapping and
quarantine reasons: docs/formats/bedrock.md.
"""

from __future__ import annotations

import contextlib
import json
import re
from collections.abc import Iterator
from typing import Any

from tracelens.ingest.base import Quarantined, RecordError, Skipped, Source
from tracelens.ingest.coerce import attr_text, coerce_fields
from tracelens.ingest.content import first, params_fields, response_fields
from tracelens.ingest.guard import each_record
from tracelens.ingest.normalize import (
    anthropic_request_fields,
    anthropic_response_fields,
    as_float,
    as_int,
    as_str,
    assemble_anthropic_sse,
    assemble_openai_chunks,
    dumps,
    last_user_text,
    message,
    normalize_stop_reason,
    openai_request_fields,
    openai_response_fields,
    tool_call,
)
from tracelens.ingest.readers import iter_json_values, loads
from tracelens.ingest.validate import (
    check_anthropic_request,
    check_anthropic_response,
    check_openai_request,
    check_openai_response,
)

SCHEMA_TYPE = "ModelInvocationLog"

# Model ids that do not generate text: (pattern, what they are).
_NON_TEXT = (
    (re.compile(r"(^|[./])(amazon\.titan-embed|cohere\.embed|amazon\.nova-(2-)?multimodal-embed|twelvelabs\.marengo)"),
     "an embeddings model"),
    (re.compile(r"(^|[./])(stability\.|amazon\.titan-image|amazon\.nova-canvas)"), "an image generation model"),
    (re.compile(r"(^|[./])(amazon\.nova-reel|luma\.)"), "a video generation model"),
    (re.compile(r"(^|[./])(cohere\.rerank|amazon\.rerank)"), "a rerank model"),
    (re.compile(r"(^|[./])amazon\.nova-sonic"), "a speech-to-speech model"),
)
# Bedrock error codes (exception names) -> HTTP status, as the runtime API documents them.
_ERROR_STATUS = {
    "ValidationException": 400, "AccessDeniedException": 403, "ResourceNotFoundException": 404,
    "ModelTimeoutException": 408, "ThrottlingException": 429, "ModelNotReadyException": 429,
    "ServiceQuotaExceededException": 429, "ModelErrorException": 424, "InternalServerException": 500,
    "ServiceUnavailableException": 503, "ModelStreamErrorException": 424,
}
# requestMetadata keys (lower case, letters and digits only) that name a trace column.
_META_FIELDS = {"userid": "user_id", "user": "user_id", "enduserid": "user_id", "sessionid": "session_id",
                "conversationid": "conversation_id", "threadid": "conversation_id", "app": "app",
                "application": "app", "feature": "app", "service": "service"}
_GUARD_ACTION = "amazon-bedrock-guardrailAction"
_GUARD_TRACE = "amazon-bedrock-trace"
_METRICS = "amazon-bedrock-invocationMetrics"


# ---------------------------------------------------------------- bodies


def _body(v: Any, what: str) -> tuple[Any, str | None]:
    """(parsed body, exact JSON text) from an inputBodyJson/outputBodyJson value (object, list or JSON text)."""
    if v is None:
        return None, None
    if isinstance(v, str):
        try:
            return loads(v), v
        except ValueError as e:
            raise RecordError(f"{what} is a string but not valid JSON: {e}") from e
    return v, dumps(v)


def non_text_reason(model_id: str | None, req: Any, resp: Any, output: dict) -> str | None:
    """Why this invocation is not a text-generation call (None when it is one)."""
    mid = (model_id or "").lower()
    for pat, what in _NON_TEXT:
        if pat.search(mid):
            return f"{model_id} is {what}, not a text generation call"
    if isinstance(resp, dict):
        if "embedding" in resp or "embeddings" in resp or "embeddingsByType" in resp:
            return f"{model_id}: output is an embedding, not a text generation call"
        if "images" in resp or "artifacts" in resp:
            return f"{model_id}: output is an image, not a text generation call"
    if any(k.startswith("outputVideo") for k in output):
        return f"{model_id}: output is a video, not a text generation call"
    if isinstance(req, dict) and req.get("taskType") in ("TEXT_IMAGE", "IMAGE_VARIATION", "INPAINTING", "OUTPAINTING",
                                                         "COLOR_GUIDED_GENERATION", "BACKGROUND_REMOVAL", "TEXT_VIDEO"):
        return f"{model_id}: {req['taskType']} task is not a text generation call"
    return None


def _is_converse_request(req: dict, operation: str) -> bool:
    if operation.startswith("Converse"):
        return True
    if "inferenceConfig" in req or "toolConfig" in req or req.get("schemaVersion") == "messages-v1":
        return True  # Amazon Nova InvokeModel bodies use the Converse shapes
    msgs = req.get("messages")
    return isinstance(msgs, list) and any(
        isinstance(m, dict) and isinstance(m.get("content"), list)
        and any(isinstance(b, dict) and "type" not in b and ("text" in b or "toolUse" in b or "toolResult" in b)
                for b in m["content"])
        for m in msgs
    )


def _is_anthropic_request(req: dict) -> bool:
    if "anthropic_version" in req or "anthropic_beta" in req:
        return True
    msgs = req.get("messages")
    if not isinstance(msgs, list):
        return False
    if "system" in req and not any(isinstance(m, dict) and m.get("role") == "system" for m in msgs):
        return True
    return any(isinstance(m, dict) and isinstance(m.get("content"), list)
               and any(isinstance(b, dict) and "type" in b for b in m["content"]) for m in msgs)


def _converse_block_texts(blocks: Any) -> tuple[list[str], list[dict], list[dict]]:
    """(texts, tool calls, tool-result messages) of Converse content blocks."""
    texts: list[str] = []
    calls: list[dict] = []
    results: list[dict] = []
    if isinstance(blocks, str):
        return [blocks], calls, results
    for b in blocks if isinstance(blocks, list) else []:
        if not isinstance(b, dict):
            continue
        if isinstance(b.get("text"), str):
            texts.append(b["text"])
        elif isinstance(b.get("guardContent"), dict):
            g = b["guardContent"].get("text")
            t = g.get("text") if isinstance(g, dict) else g
            if isinstance(t, str):
                texts.append(t)
        elif isinstance(b.get("toolUse"), dict):
            tu = b["toolUse"]
            calls.append(tool_call(tu.get("toolUseId"), tu.get("name"), tu.get("input")))
        elif isinstance(b.get("toolResult"), dict):
            tr = b["toolResult"]
            parts = []
            for c in tr.get("content") or []:
                if isinstance(c, dict):
                    if isinstance(c.get("text"), str):
                        parts.append(c["text"])
                    elif "json" in c:
                        parts.append(dumps(c["json"]))
            results.append(message("tool", "\n\n".join(parts) if parts else None, tool_call_id=as_str(tr.get("toolUseId"))))
        # images, documents, videos, reasoningContent, cachePoint: not text
    return texts, calls, results


def converse_request_fields(req: dict) -> dict:
    """Trace fields from a Converse (or Nova InvokeModel) request body."""
    raw_msgs = req.get("messages")
    if not isinstance(raw_msgs, list):
        raise RecordError("input body 'messages' is not a list")
    msgs: list[dict] = []
    for m in raw_msgs:
        if not isinstance(m, dict):
            raise RecordError("input body 'messages' contains a non-object entry")
        texts, calls, results = _converse_block_texts(m.get("content"))
        msgs.extend(results)
        if texts or calls or not results:
            msgs.append(message(str(m.get("role") or "user"), "\n\n".join(texts) if texts else None, calls))
    sys_texts, _, _ = _converse_block_texts(req.get("system"))
    cfg = req.get("inferenceConfig") if isinstance(req.get("inferenceConfig"), dict) else {}
    extra = req.get("additionalModelRequestFields") if isinstance(req.get("additionalModelRequestFields"), dict) else {}
    params = params_fields({**extra, **cfg})
    tools = (req.get("toolConfig") or {}).get("tools") if isinstance(req.get("toolConfig"), dict) else None
    return {
        "system_prompt": "\n\n".join(sys_texts) if sys_texts else None,
        "messages": msgs,
        "prompt_text": last_user_text(msgs),
        "tool_definitions": dumps(tools) if tools else None,
        **{k: v for k, v in params.items() if k != "service_tier"},
    }


def _text_request_fields(req: dict) -> dict:
    """Trace fields from a prompt-style InvokeModel body (Llama, Titan, Mistral, Cohere, legacy Claude, ...)."""
    prompt = first(req.get("prompt"), req.get("inputText"), req.get("message"), req.get("text"))
    if not isinstance(prompt, str):
        raise RecordError("input body has neither 'messages' nor a text prompt ('prompt', 'inputText', 'message')")
    msgs = []
    history = req.get("chat_history")
    for h in history if isinstance(history, list) else []:  # Cohere Command R
        if isinstance(h, dict) and isinstance(h.get("message"), str):
            role = str(h.get("role") or "USER").lower()
            msgs.append(message("assistant" if role in ("chatbot", "assistant") else "user", h["message"]))
    msgs.append(message("user", prompt))
    cfg = req.get("textGenerationConfig") if isinstance(req.get("textGenerationConfig"), dict) else {}
    params = params_fields({**req, **cfg, "max_tokens": first(req.get("max_tokens"), req.get("max_gen_len"),
                                                               cfg.get("maxTokenCount"), req.get("maxTokens"))})
    system = req.get("preamble") if isinstance(req.get("preamble"), str) else None
    return {"system_prompt": system, "messages": msgs, "prompt_text": prompt,
            **{k: v for k, v in params.items() if k != "service_tier"}}


def request_fields(req: Any, operation: str) -> tuple[dict, str]:
    """(trace fields, body shape name) from an input body."""
    try:
        return _request_fields(req, operation)
    except (TypeError, AttributeError, ValueError, KeyError) as e:  # wrong JSON types deep inside the body
        raise RecordError(f"input body has an unexpected shape ({type(e).__name__}: {e})") from e


def _request_fields(req: Any, operation: str) -> tuple[dict, str]:
    if not isinstance(req, dict):
        raise RecordError(f"input body is a {type(req).__name__}, not a JSON object")
    if "messages" in req and _is_converse_request(req, operation):
        return converse_request_fields(req), "converse"
    if "messages" in req and _is_anthropic_request(req):
        f = anthropic_request_fields(req)
        check_anthropic_request(req, "input body")
        f.pop("model_requested", None)  # Bedrock bodies carry no model; the envelope's modelId is it
        return f, "anthropic_messages"
    if "messages" in req:
        check_openai_request(req)
        f = openai_request_fields(req)
        f.pop("model_requested", None)
        return f, "openai_chat"
    return _text_request_fields(req), "text"


# ---------------------------------------------------------------- responses


def assemble_converse_stream(events: list) -> dict:
    """Rebuild a Converse response from ConverseStream events (``messageStart``, ``contentBlockDelta``, ...)."""
    blocks: dict[int, dict] = {}
    out: dict[str, Any] = {"output": {"message": {"role": "assistant", "content": []}}}
    seen = False
    for ev in events:
        if not isinstance(ev, dict):
            continue
        if isinstance(ev.get("messageStart"), dict):
            seen = True
            out["output"]["message"]["role"] = ev["messageStart"].get("role") or "assistant"
        elif isinstance(ev.get("contentBlockStart"), dict):
            seen = True
            cs = ev["contentBlockStart"]
            start = cs.get("start") if isinstance(cs.get("start"), dict) else {}
            if isinstance(start.get("toolUse"), dict):
                blocks[as_int(cs.get("contentBlockIndex")) or 0] = {"toolUse": {**start["toolUse"], "input": ""}}
        elif isinstance(ev.get("contentBlockDelta"), dict):
            seen = True
            cd = ev["contentBlockDelta"]
            i = as_int(cd.get("contentBlockIndex")) or 0
            d = cd.get("delta") if isinstance(cd.get("delta"), dict) else {}
            if isinstance(d.get("text"), str):
                b = blocks.setdefault(i, {"text": ""})
                b["text"] = b.get("text", "") + d["text"]
            elif isinstance(d.get("toolUse"), dict):
                b = blocks.setdefault(i, {"toolUse": {"input": ""}})
                b["toolUse"]["input"] = b["toolUse"].get("input", "") + str(d["toolUse"].get("input") or "")
        elif isinstance(ev.get("messageStop"), dict):
            seen = True
            out["stopReason"] = ev["messageStop"].get("stopReason")
            if ev["messageStop"].get("additionalModelResponseFields") is not None:
                out["additionalModelResponseFields"] = ev["messageStop"]["additionalModelResponseFields"]
        elif isinstance(ev.get("metadata"), dict):
            seen = True
            for k in ("usage", "metrics", "trace"):
                if ev["metadata"].get(k) is not None:
                    out[k] = ev["metadata"][k]
    if not seen:
        raise RecordError("output is a list but holds no Converse stream events")
    for i in sorted(blocks):
        b = blocks[i]
        if "toolUse" in b and isinstance(b["toolUse"].get("input"), str):
            s = b["toolUse"]["input"]
            with contextlib.suppress(ValueError):  # unparseable: kept as the text that was streamed
                b["toolUse"]["input"] = json.loads(s) if s else {}
        out["output"]["message"]["content"].append(b)
    return out


def converse_response_fields(resp: dict) -> dict:
    msg = (resp.get("output") or {}).get("message") if isinstance(resp.get("output"), dict) else None
    texts, calls, _ = _converse_block_texts((msg or {}).get("content") if isinstance(msg, dict) else None)
    usage = resp.get("usage") if isinstance(resp.get("usage"), dict) else {}
    metrics = resp.get("metrics") if isinstance(resp.get("metrics"), dict) else {}
    raw_stop = as_str(resp.get("stopReason"))
    return {
        "response_text": "\n\n".join(texts) if texts else "",
        "tool_calls": calls,
        "stop_reason_raw": raw_stop,
        "stop_reason": normalize_stop_reason(raw_stop),
        "input_tokens": as_int(usage.get("inputTokens")),
        "output_tokens": as_int(usage.get("outputTokens")),
        "cache_read_tokens": as_int(usage.get("cacheReadInputTokens")),
        "cache_creation_tokens": as_int(usage.get("cacheWriteInputTokens")),
        "latency_ms": as_float(metrics.get("latencyMs")),
    }


def _is_converse_response(resp: Any) -> bool:
    return isinstance(resp, dict) and isinstance(resp.get("output"), dict) and "message" in resp["output"]


def _chunks_text(chunks: list[dict], *keys: str) -> str:
    return "".join(str(c[k]) for c in chunks for k in keys if isinstance(c.get(k), str))


def _text_response_fields(resp: Any) -> dict:
    """Prompt-style model outputs (one object, or a list of stream chunks)."""
    chunks = resp if isinstance(resp, list) else [resp]
    chunks = [c for c in chunks if isinstance(c, dict)]
    if not chunks:
        raise RecordError("output body holds no JSON objects")
    last = chunks[-1]
    c0 = chunks[0]
    if any("generation" in c for c in chunks):  # Meta Llama
        return {"response_text": _chunks_text(chunks, "generation"),
                "stop_reason_raw": as_str(first(*(c.get("stop_reason") for c in chunks))),
                "input_tokens": as_int(first(*(c.get("prompt_token_count") for c in chunks))),
                "output_tokens": as_int(first(*(c.get("generation_token_count") for c in reversed(chunks))))}
    if isinstance(c0.get("results"), list):  # Titan text
        res = [r for c in chunks for r in c.get("results") or [] if isinstance(r, dict)]
        return {"response_text": "".join(str(r.get("outputText") or "") for r in res),
                "stop_reason_raw": as_str(first(*(r.get("completionReason") for r in res))),
                "input_tokens": as_int(c0.get("inputTextTokenCount")),
                "output_tokens": sum(as_int(r.get("tokenCount")) or 0 for r in res) or None}
    if any("outputText" in c for c in chunks):  # Titan text stream
        return {"response_text": _chunks_text(chunks, "outputText"),
                "stop_reason_raw": as_str(first(*(c.get("completionReason") for c in chunks))),
                "input_tokens": as_int(first(*(c.get("inputTextTokenCount") for c in chunks))),
                "output_tokens": as_int(first(*(c.get("totalOutputTextTokenCount") for c in reversed(chunks))))}
    if any(isinstance(c.get("outputs"), list) for c in chunks):  # Mistral
        outs = [o for c in chunks for o in c.get("outputs") or [] if isinstance(o, dict)]
        return {"response_text": "".join(str(o.get("text") or "") for o in outs),
                "stop_reason_raw": as_str(first(*(o.get("stop_reason") for o in reversed(outs))))}
    if any(isinstance(c.get("generations"), list) for c in chunks):  # Cohere Command
        gens = [g for c in chunks for g in c.get("generations") or [] if isinstance(g, dict)]
        return {"response_text": "".join(str(g.get("text") or "") for g in gens),
                "stop_reason_raw": as_str(first(*(g.get("finish_reason") for g in reversed(gens))))}
    if any("completion" in c for c in chunks):  # legacy Claude Text Completions
        return {"response_text": _chunks_text(chunks, "completion"),
                "stop_reason_raw": as_str(first(*(c.get("stop_reason") for c in reversed(chunks))))}
    if isinstance(c0.get("completions"), list):  # AI21 Jurassic
        comps = [x for x in c0["completions"] if isinstance(x, dict)]
        data = comps[0].get("data") if comps and isinstance(comps[0].get("data"), dict) else {}
        fin = comps[0].get("finishReason") if comps and isinstance(comps[0].get("finishReason"), dict) else {}
        return {"response_text": as_str(data.get("text")), "stop_reason_raw": as_str(fin.get("reason"))}
    if any("text" in c for c in chunks):  # Cohere Command R (and its stream chunks)
        return {"response_text": _chunks_text(chunks, "text"),
                "stop_reason_raw": as_str(first(*(c.get("finish_reason") for c in reversed(chunks))))}
    out = response_fields(last)  # anything else: the liberal reader keeps what it can as text
    out.pop("response_raw", None)
    return out


def response_fields_of(resp: Any, shape: str) -> dict:
    """Trace fields from an output body (object, or a list of stream events/chunks)."""
    try:
        return _response_fields_of(resp, shape)
    except (TypeError, AttributeError, ValueError, KeyError) as e:  # wrong JSON types deep inside the body
        raise RecordError(f"output body has an unexpected shape ({type(e).__name__}: {e})") from e


def _response_fields_of(resp: Any, shape: str) -> dict:
    if isinstance(resp, list):
        events = [e for e in resp if isinstance(e, dict)]
        if any(e.get("type") == "message_start" for e in events):
            return anthropic_response_fields(assemble_anthropic_sse(events))
        if any(any(k in e for k in ("messageStart", "contentBlockDelta", "messageStop")) for e in events):
            return converse_response_fields(assemble_converse_stream(events))
        if any(e.get("object") == "chat.completion.chunk" or "choices" in e for e in events):
            out = openai_response_fields(assemble_openai_chunks(events))
            out.pop("_created", None)
            out.pop("_system_fingerprint", None)
            return out
        out = _text_response_fields(events)
        out["stop_reason"] = normalize_stop_reason(out.get("stop_reason_raw"))
        return out
    if not isinstance(resp, dict):
        raise RecordError(f"output body is a {type(resp).__name__}, not a JSON object or a list of stream events")
    if _is_converse_response(resp):
        if resp.get("usage") is not None and not isinstance(resp["usage"], dict):
            raise RecordError("output body 'usage' is not an object")
        return converse_response_fields(resp)
    if resp.get("type") == "message" or (shape == "anthropic_messages" and "content" in resp):
        check_anthropic_response(resp, "output body")
        return anthropic_response_fields(resp)
    if isinstance(resp.get("choices"), list):
        check_openai_response(resp)
        out = openai_response_fields(resp)
        out.pop("_created", None)
        out.pop("_system_fingerprint", None)
        return out
    out = _text_response_fields(resp)
    out["stop_reason"] = normalize_stop_reason(out.get("stop_reason_raw"))
    return out


def _stream_metrics(resp: Any) -> dict:
    """``amazon-bedrock-invocationMetrics`` from an InvokeModel body or its last stream event."""
    nodes = resp if isinstance(resp, list) else [resp]
    for n in reversed(nodes):
        if isinstance(n, dict) and isinstance(n.get(_METRICS), dict):
            return n[_METRICS]
    return {}


def guardrail_details(resp: Any) -> tuple[bool, dict | None]:
    """(intervened, details) from guardrail signals anywhere in an output body or its stream events."""
    nodes = resp if isinstance(resp, list) else [resp]
    intervened = False
    trace = None
    for n in nodes:
        if not isinstance(n, dict):
            continue
        act = n.get(_GUARD_ACTION)
        if isinstance(act, str) and act.upper() == "INTERVENED":
            intervened = True
        t = n.get(_GUARD_TRACE)
        if isinstance(t, dict) and t.get("guardrail") is not None:
            trace = t["guardrail"]
        conv = n.get("trace")
        if isinstance(conv, dict) and conv.get("guardrail") is not None:
            trace = conv["guardrail"]
        if n.get("stopReason") == "guardrail_intervened":
            intervened = True
    if not intervened:
        return False, None
    details: dict[str, Any] = {"guardrail_action": "INTERVENED"}
    if trace is not None:
        details["guardrail"] = trace
    return True, details


# ---------------------------------------------------------------- records


def _unwrap(obj: Any) -> Any:
    """A CloudWatch export line ``{"message": "<record JSON>", ...}`` -> the record."""
    if isinstance(obj, dict) and "schemaType" not in obj and isinstance(obj.get("message"), str):
        s = obj["message"].lstrip()
        if s.startswith("{") and SCHEMA_TYPE in s:
            try:
                return loads(s)
            except ValueError:
                return obj
    return obj


def bedrock_record(obj: Any, locator: str) -> dict | Skipped:
    """Trace fields (or Skipped) from one invocation log record (raises RecordError)."""
    obj = _unwrap(obj)
    if not isinstance(obj, dict):
        raise RecordError(f"expected a JSON object, got {type(obj).__name__}")
    if obj.get("schemaType") != SCHEMA_TYPE:
        raise RecordError(f"not a Bedrock model invocation log record (schemaType={obj.get('schemaType')!r})")
    request_id = as_str(obj.get("requestId"))
    if not request_id:
        raise RecordError("record has no 'requestId'")
    model_id = as_str(obj.get("modelId"))
    operation = as_str(obj.get("operation")) or ""
    inp = obj.get("input") if isinstance(obj.get("input"), dict) else {}
    out = obj.get("output") if isinstance(obj.get("output"), dict) else {}
    req, req_raw = _body(inp.get("inputBodyJson"), "input.inputBodyJson")
    resp, resp_raw = _body(out.get("outputBodyJson"), "output.outputBodyJson")
    skip = non_text_reason(model_id, req, resp, out)
    if skip:
        return Skipped(locator, skip)
    attrs: dict[str, str] = {}
    for src, name in (("accountId", "aws_account_id"), ("region", "aws_region"), ("inferenceRegion", "inference_region"),
                      ("schemaVersion", "bedrock_schema_version"), ("operation", "bedrock_operation")):
        if obj.get(src) is not None:
            attrs[name] = attr_text(obj[src])
    identity = obj.get("identity") if isinstance(obj.get("identity"), dict) else {}
    if identity.get("arn"):
        attrs["aws_identity_arn"] = attr_text(identity["arn"])
    perf = obj.get("performanceConfig") if isinstance(obj.get("performanceConfig"), dict) else {}
    if perf.get("latency"):
        attrs["performance_config_latency"] = attr_text(perf["latency"])
    for key, name in (("inputBodyS3Path", "input_body_s3_path"), ("outputBodyS3Path", "output_body_s3_path")):
        src = inp if key.startswith("input") else out
        if src.get(key):
            attrs[name] = attr_text(src[key])
            attrs["body_in_s3"] = "true"
    error_code = as_str(obj.get("errorCode"))
    failed = bool(error_code) or str(obj.get("status") or "").lower() in ("failure", "failed", "error")
    if req is None and "input_body_s3_path" not in attrs:
        raise RecordError("record has neither input.inputBodyJson nor input.inputBodyS3Path")
    if resp is None and "output_body_s3_path" not in attrs and not failed:
        raise RecordError("record has neither output.outputBodyJson, output.outputBodyS3Path nor an errorCode")
    fields: dict[str, Any] = {}
    shape = "unknown"
    if req is not None:
        fields, shape = request_fields(req, operation)
        attrs["bedrock_body_shape"] = shape
        if isinstance(req, dict) and req.get("stream"):
            attrs["streamed"] = "true"
    if resp is not None and not failed:
        rf = response_fields_of(resp, shape)
        fields.update({k: v for k, v in rf.items() if v is not None or k not in fields})
        if isinstance(resp, list):
            attrs["streamed"] = "true"
        intervened, details = guardrail_details(resp)
        if intervened:
            fields["stop_reason"] = "content_filter"
            prior = json.loads(fields["stop_details"]) if fields.get("stop_details") else {}
            fields["stop_details"] = dumps({**(prior if isinstance(prior, dict) else {"model": prior}), **(details or {})})
            attrs["guardrail_action"] = "INTERVENED"
        m = _stream_metrics(resp)
        if m:
            fields["latency_ms"] = first(as_float(m.get("invocationLatency")), fields.get("latency_ms"))
            fields["time_to_first_token_ms"] = as_float(m.get("firstByteLatency"))
            # Bedrock's own counts; the body's message_start may say 0 (e.g. when a guardrail blocked the input)
            for mk, field in (("inputTokenCount", "input_tokens"), ("outputTokenCount", "output_tokens")):
                if as_int(m.get(mk)) is not None:
                    fields[field] = as_int(m[mk])
        if operation.endswith("Stream"):
            attrs["streamed"] = "true"
    elif operation.endswith("Stream"):
        attrs["streamed"] = "true"
    # The envelope's token counts are what Bedrock billed; bodies may report zeros (guardrail blocks) or nothing.
    for env_key, field in (("inputTokenCount", "input_tokens"), ("cacheReadInputTokenCount", "cache_read_tokens"),
                           ("cacheWriteInputTokenCount", "cache_creation_tokens")):
        if as_int(inp.get(env_key)) is not None:
            fields[field] = as_int(inp[env_key])
    if as_int(out.get("outputTokenCount")) is not None:
        fields["output_tokens"] = as_int(out["outputTokenCount"])
    if failed:
        fields.update({
            "status": "error",
            "stop_reason": "error",
            "error_type": error_code or "error",
            "error_message": as_str(first(obj.get("errorMessage"), (resp or {}).get("message") if isinstance(resp, dict)
                                          else None)),
            "http_status": _ERROR_STATUS.get(error_code or ""),
        })
    else:
        fields["status"] = "ok"
        if resp is not None:
            fields.setdefault("http_status", 200)
    meta = obj.get("requestMetadata")
    if isinstance(meta, dict):
        for k, v in meta.items():
            if v is None:
                continue
            target = _META_FIELDS.get(re.sub(r"[^a-z0-9]", "", str(k).lower()))
            if target and not fields.get(target):
                fields[target] = attr_text(v)
            else:
                attrs[f"request_metadata.{k}"] = attr_text(v)
    fields.update({
        "provider": "bedrock",
        "timestamp": obj.get("timestamp"),
        "model_requested": model_id,
        "request_id": request_id,
        "request_raw": req_raw,
        "response_raw": resp_raw,
        "attributes": attrs,
        "source_locator": locator,
        "trace_id": f"bedrock:{request_id}",
    })
    return coerce_fields(fields)


_SNIFF = re.compile(rb'\\?"schemaType\\?"\s*:\s*\\?"ModelInvocationLog')


class BedrockInvocation:
    name = "bedrock_invocation"
    description = "AWS Bedrock model invocation logs (schemaType ModelInvocationLog; CloudWatch or S3 JSONL)"

    def sniff(self, head: bytes, path: str) -> float:
        s = head.lstrip()
        if s[:1] not in (b"{", b"["):
            return 0.0
        window = s[:65536]
        if _SNIFF.search(window) and (b"modelId" in window or b"requestId" in window):
            return 0.95
        return 0.0

    def parse(self, source: Source) -> Iterator[dict | Quarantined | Skipped]:
        def item(locator: str, obj: Any) -> dict | Quarantined | Skipped:
            rec = bedrock_record(obj, locator)
            if isinstance(rec, dict):
                rec["_raw"] = None
            return rec

        return each_record(source, iter_json_values(source.stream, source.head, source.path), item)


FORMATS = [BedrockInvocation()]

