"""LiteLLM standard logging payloads (``litellm_payload``).

What LiteLLM's logging callbacks receive as ``kwargs["standard_logging_object"]``
(``StandardLoggingPayload``) and what custom callbacks, the S3/GCS loggers
and the proxy's logging hooks write out: JSONL (or a JSON array, or one
payload per file) of objects with ``id``, ``call_type``, ``stream``,
``status`` (``success``/``failure``), ``startTime``/``endTime``/
``completionStartTime`` (epoch seconds), ``model``, ``model_id``,
``model_group``, ``custom_llm_provider``, ``api_base``, ``messages``,
``response`` (OpenAI-shaped ``ModelResponse``; Anthropic-shaped for
``anthropic_messages`` pass-through), ``model_parameters``,
``prompt_tokens``/``completion_tokens``, ``response_cost``, ``metadata``
(``user_api_key_*``, ``requester_metadata``, ``spend_logs_metadata``),
``end_user``, ``request_tags``, ``error_str``/``error_information``,
``hidden_params``, ``guardrail_information``.

Chat and text completions (and Anthropic ``/v1/messages``, Responses API
and Gemini ``generate_content`` pass-through calls) become traces;
embeddings, image generation, audio, moderation, rerank, file/batch and
other non-generation call types are ``Skipped`` with the call type.
``status: failure`` is an error trace (``error_information.error_class`` ->
``error_type``, ``error_str`` -> ``error_message``, a numeric
``error_code`` -> ``http_status``).

**Secrets are never stored.** Before anything else the record is scrubbed:
every value under a key naming an API key, secret, password, token or
authorization header is dropped (the already-hashed
``user_api_key_hash`` is kept when it looks like a hash, and LiteLLM's
non-secret key metadata ``user_api_key_user_id``/``team_id``/``org_id``/
``alias``/``team_alias``/``end_user_id`` is kept when it does not look like
a key), strings that look like provider keys (``sk-...``, ``AKIA...``,
``AIza...``, ``Bearer ...``) are masked wherever they appear outside the
conversation text, and ``key=`` query parameters are removed from URLs.
Quarantined records keep only the scrubbed copy. ``trace_id`` is
``litellm:<id>``; LiteLLM has no exact request body, so ``request_raw`` is
empty and replay rebuilds the request. Field mapping:
docs/formats/litellm.md.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

from tracelens.ingest.base import Quarantined, RecordError, Skipped, Source
from tracelens.ingest.coerce import attr_text, coerce_fields, safe_text
from tracelens.ingest.content import (
    as_dict,
    conversation,
    first,
    maybe_json,
    nullish,
    provider_name,
    request_settings,
    response_fields,
    string_list,
)
from tracelens.ingest.guard import each_record
from tracelens.ingest.loglines import META_FIELDS
from tracelens.ingest.normalize import as_float, as_int, as_str, dumps, message, uncached_input
from tracelens.ingest.readers import iter_json_values

_LLM_CALLS = {"completion", "acompletion", "text_completion", "atext_completion", "anthropic_messages",
              "aanthropic_messages", "responses", "aresponses", "generate_content", "agenerate_content",
              "generate_content_stream", "agenerate_content_stream", "pass_through_endpoint"}
_PROVIDERS = {"vertex_ai": "vertex", "vertex_ai_beta": "vertex", "gemini": "google", "azure_ai": "azure",
              "azure_text": "azure", "text-completion-openai": "openai", "anthropic_text": "anthropic",
              "bedrock_converse": "bedrock", "sagemaker_chat": "sagemaker", "together_ai": "together",
              "cohere_chat": "cohere", "mistral": "mistral", "ollama_chat": "ollama", "custom_openai": "openai",
              "openai_like": "openai", "hosted_vllm": "vllm", "watsonx_text": "watsonx", "fireworks_ai": "fireworks",
              "friendliai": "friendli", "deepinfra": "deepinfra", "xai": "xai"}
# the metadata keys of request/response log lines, plus LiteLLM's own
_META_FIELDS = {**META_FIELDS, "trace_user_id": "user_id", "litellm_session_id": "session_id"}

# --- secret scrubbing
_SECRET_KEY = re.compile(r"(?i)(api[_-]?key|apikey|secret|password|passwd|authorization|bearer|access[_-]?token|"
                         r"refresh[_-]?token|id[_-]?token|session[_-]?token|private[_-]?key|credential|x-goog-api-key)")
# LiteLLM's virtual-key metadata that names who called, not the key itself.
_KEY_METADATA_OK = {"user_api_key_user_id", "user_api_key_team_id", "user_api_key_org_id", "user_api_key_alias",
                    "user_api_key_team_alias", "user_api_key_end_user_id", "user_api_key_user_email",
                    "user_api_key_request_route", "user_api_key_spend", "user_api_key_max_budget",
                    "user_api_key_budget_reset_at"}
_HASH = re.compile(r"^[0-9a-fA-F]{32,128}$")
_SECRET_VALUE = re.compile(
    r"(?:sk-ant-[A-Za-z0-9_\-]{8,}|sk-(?:proj-|svcacct-|admin-)?[A-Za-z0-9_\-]{16,}|sk_(?:live|test)_[A-Za-z0-9]{8,}"
    r"|rk-[A-Za-z0-9_\-]{16,}|AKIA[0-9A-Z]{16}|ASIA[0-9A-Z]{16}|AIza[0-9A-Za-z_\-]{30,}|gsk_[A-Za-z0-9]{20,}"
    r"|xai-[A-Za-z0-9]{20,}|hf_[A-Za-z0-9]{20,}|ghp_[A-Za-z0-9]{20,}|(?i:bearer)\s+[A-Za-z0-9._\-]{12,})"
)
_URL_KEY = re.compile(r"(?i)([?&](?:key|api[_-]?key|apikey|token|access_token|sig|signature)=)[^&#\s]*")
_CONTENT_KEYS = {"messages", "response"}  # conversation text: secret-looking values are not rewritten there


_RAW_SECRET_FIELD = re.compile(r'("[^"]*(?:api[_-]?key|apikey|secret|password|authorization|access[_-]?token)[^"]*"'
                               r'\s*:\s*)"(?:[^"\\]|\\.)*"', re.I)


def _masked_raw(s: str) -> str:
    """Unparseable record text: credential-named fields and key-shaped strings masked textually."""
    return _masked(_RAW_SECRET_FIELD.sub(r'\1"[REDACTED]"', s))


def _masked(s: str) -> str:
    s = _URL_KEY.sub(r"\1[REDACTED]", s)
    return _SECRET_VALUE.sub("[REDACTED]", s)


def _kept_key_field(name: str, value: Any) -> bool:
    """Whether a credential-named field is safe to keep: LiteLLM's caller metadata, or an already-hashed key."""
    if name in _KEY_METADATA_OK:
        return isinstance(value, str | int | float | type(None)) and not (
            isinstance(value, str) and _SECRET_VALUE.search(value))
    return name.endswith("_hash") and isinstance(value, str) and bool(_HASH.match(value))


def scrub(v: Any, key: str | None = None, content: bool = False) -> Any:
    """A copy of ``v`` without credentials: see the module docstring. ``content`` spares conversation text."""
    if isinstance(v, dict):
        out = {}
        for k, x in v.items():
            ks = str(k)
            if _SECRET_KEY.search(ks) and not ks.endswith(("_tokens", "_token_count")):
                if _kept_key_field(ks, x):
                    out[k] = x
                continue  # dropped: the key names a credential
            out[k] = scrub(x, ks, content or ks in _CONTENT_KEYS)
        return out
    if isinstance(v, list):
        return [scrub(x, key, content) for x in v]
    if isinstance(v, str) and not content:
        return _masked(v)
    return v


# --- records


def _provider(p: Any, model: str | None) -> str | None:
    if nullish(p) or not isinstance(p, str):
        if model and "/" in model:  # litellm's "provider/model" naming
            return _PROVIDERS.get(model.split("/", 1)[0].lower()) or provider_name(model.split("/", 1)[0])
        return None
    s = p.strip().lower()
    return _PROVIDERS.get(s) or provider_name(s)


def _uncached_prompt(obj: dict, resp: Any) -> int | None:
    """The schema's uncached ``input_tokens`` from the payload's ``prompt_tokens``.

    LiteLLM reports every provider OpenAI-style: ``prompt_tokens`` includes the
    cache reads (``prompt_tokens_details.cached_tokens``, for Anthropic also
    ``usage.cache_read_input_tokens``) and, for Anthropic, the cache writes
    (``usage.cache_creation_input_tokens``).
    """
    usage = as_dict(resp.get("usage")) if isinstance(resp, dict) else {}
    ptd = as_dict(usage.get("prompt_tokens_details"))
    read = first(usage.get("cache_read_input_tokens"), ptd.get("cached_tokens"))
    total = first(obj.get("prompt_tokens"), usage.get("prompt_tokens"))
    return uncached_input(total, read, usage.get("cache_creation_input_tokens"))


def _ms(start: float, end: float | None) -> float | None:
    """Milliseconds between two epoch-second floats, rounded to the microsecond (float noise removed)."""
    if end is None or end < start:
        return None
    return round((end - start) * 1000.0, 3)


def _messages(v: Any) -> tuple[str | None, list[dict]]:
    v = maybe_json(v)
    if isinstance(v, str):
        return None, [message("user", v)]
    if isinstance(v, dict) and isinstance(v.get("prompt"), list):  # text_completion with a list of prompts
        return None, [message("user", p if isinstance(p, str) else dumps(p)) for p in v["prompt"]]
    return conversation(v)


def litellm_record(obj: Any, locator: str) -> dict | Skipped:
    """Trace fields (or Skipped) from one scrubbed StandardLoggingPayload (raises RecordError)."""
    if not isinstance(obj, dict):
        raise RecordError(f"expected a JSON object, got {type(obj).__name__}")
    pid = as_str(obj.get("id"))
    if not pid:
        raise RecordError("payload has no 'id'")
    call_type = as_str(obj.get("call_type")) or ""
    if call_type and call_type not in _LLM_CALLS:
        return Skipped(locator, f"LiteLLM {call_type} call (not a text generation call)")
    if call_type == "pass_through_endpoint" and not obj.get("messages"):
        return Skipped(locator, "LiteLLM pass-through call without messages (not a recognisable LLM call)")
    attrs: dict[str, str] = {"litellm_call_type": call_type} if call_type else {}
    params = as_dict(obj.get("model_parameters"))
    system, msgs = _messages(obj.get("messages"))
    fields: dict[str, Any] = {"system_prompt": system, "messages": msgs}
    fields.update(request_settings(params))
    if isinstance(params.get("user"), str):
        fields["user_id"] = params["user"]
    resp = maybe_json(obj.get("response"))
    resp_raw = None
    if not nullish(resp) and resp != {}:
        rf = response_fields(resp)
        resp_raw = rf.pop("response_raw", None) or dumps(resp)
        fields.update({k: v for k, v in rf.items() if v is not None or k not in fields})
        usage = as_dict(resp.get("usage")) if isinstance(resp, dict) else {}
        fields["cache_read_tokens"] = first(fields.get("cache_read_tokens"), as_int(usage.get("cache_read_input_tokens")))
        fields["cache_creation_tokens"] = first(fields.get("cache_creation_tokens"),
                                                as_int(usage.get("cache_creation_input_tokens")))
        if isinstance(resp, dict) and resp.get("system_fingerprint"):
            attrs["system_fingerprint"] = as_str(resp["system_fingerprint"]) or ""
    start = as_float(obj.get("startTime"))
    end = as_float(obj.get("endTime"))
    first_tok = as_float(obj.get("completionStartTime"))
    if start is None:
        raise RecordError("payload has no numeric startTime")
    streamed = obj.get("stream") is True
    if streamed:
        attrs["streamed"] = "true"
    failed = str(obj.get("status") or "").lower() == "failure"
    err_info = as_dict(obj.get("error_information"))
    if failed:
        code = as_int(err_info.get("error_code"))
        fields.update({
            "status": "error",
            "stop_reason": "error",
            "error_type": as_str(first(err_info.get("error_class"), err_info.get("error_code"))) or "error",
            "error_message": as_str(first(obj.get("error_str"), err_info.get("error_message"))),
            "http_status": code if code is not None and 100 <= code <= 599 else None,
        })
        if err_info.get("llm_provider"):
            attrs["error_llm_provider"] = attr_text(err_info["llm_provider"])
    else:
        fields["status"] = "ok"
        fields["http_status"] = 200  # the call returned a response; LiteLLM does not log the status itself
    ginfo = obj.get("guardrail_information")
    guards = [g for g in ginfo if isinstance(g, dict)] if isinstance(ginfo, list) else []
    status_fields = as_dict(obj.get("status_fields"))
    intervened = [g for g in guards if g.get("guardrail_status") in ("guardrail_intervened", "failure")]
    if intervened or status_fields.get("guardrail_status") == "guardrail_intervened":
        fields["stop_details"] = dumps({"guardrail_status": "guardrail_intervened",
                                        "guardrail": intervened or status_fields})
        attrs["guardrail_status"] = "guardrail_intervened"
        if failed:
            fields["stop_reason"] = "content_filter"
    meta = as_dict(obj.get("metadata"))
    for k in ("user_api_key_user_id", "user_api_key_team_id", "user_api_key_org_id", "user_api_key_alias",
              "user_api_key_team_alias", "user_api_key_hash"):
        if not nullish(meta.get(k)):
            attrs[f"litellm.{k}"] = attr_text(meta[k])
    for src in ("requester_metadata", "spend_logs_metadata"):
        for k, v in as_dict(meta.get(src)).items():
            if nullish(v):
                continue
            if k in _META_FIELDS and not fields.get(_META_FIELDS[k]):
                fields[_META_FIELDS[k]] = attr_text(v)
            else:
                attrs[f"metadata.{k}"] = attr_text(v)
    hidden = as_dict(obj.get("hidden_params"))
    for src, name in (("model_id", "litellm_model_id"), ("model_group", "litellm_model_group"),
                      ("api_base", "api_base"), ("trace_id", "litellm_trace_id"), ("cache_hit", "cache_hit"),
                      ("requester_ip_address", "requester_ip_address")):
        if not nullish(obj.get(src)):
            attrs[name] = attr_text(obj[src])
    if not nullish(hidden.get("litellm_model_name")):
        attrs["litellm_model_name"] = attr_text(hidden["litellm_model_name"])
    tags = string_list(obj.get("request_tags"))
    if tags:
        attrs["tags"] = dumps(tags)
    model = as_str(obj.get("model"))
    fields.update({
        "timestamp": start,
        "provider": _provider(obj.get("custom_llm_provider"), model),
        "model_requested": model or fields.get("model_requested"),
        "user_id": as_str(first(obj.get("end_user"), meta.get("user_api_key_end_user_id"), fields.get("user_id"))),
        "input_tokens": first(_uncached_prompt(obj, resp) if not failed else None, fields.get("input_tokens")),
        "output_tokens": first(as_int(obj.get("completion_tokens")) if not failed else None, fields.get("output_tokens")),
        "latency_ms": _ms(start, end),
        # non-streamed calls report completionStartTime == endTime: only a stream has a first token
        "time_to_first_token_ms": _ms(start, first_tok) if streamed else None,
        "cost": as_float(obj.get("response_cost")),
        "response_raw": resp_raw,
        "attributes": attrs,
        "source_locator": locator,
        "trace_id": f"litellm:{pid}",
    })
    fields.pop("_created", None)
    fields.pop("_system_fingerprint", None)
    return coerce_fields(fields)


_SNIFF_KEYS = re.compile(rb'"(call_type|startTime|endTime|completionStartTime|model_group|hidden_params|'
                         rb'model_parameters|response_cost|custom_llm_provider|model_map_information)"\s*:')


class LiteLLMPayload:
    """The ``litellm_payload`` format: LiteLLM ``StandardLoggingPayload`` records, one call each."""

    name = "litellm_payload"
    description = "LiteLLM StandardLoggingPayload JSONL (logging callbacks, S3/GCS loggers)"

    def sniff(self, head: bytes, path: str) -> float:
        """Confidence 0..1 that ``head`` is this format: 0.9 when the first record has ``call_type``, ``startTime`` and
        at least two more LiteLLM payload keys, else 0.
        """
        s = head.lstrip()
        if s[:1] not in (b"{", b"["):
            return 0.0
        w = s.split(b"\n", 1)[0] if s[:1] == b"{" and not s.startswith(b"{\n") else s[:65536]
        keys = {m.group(1) for m in _SNIFF_KEYS.finditer(w)}
        if b"call_type" in keys and b"startTime" in keys and len(keys) >= 4:
            return 0.9
        return 0.0

    def parse(self, source: Source) -> Iterator[dict | Quarantined | Skipped]:
        """Yield one trace dict per payload, or ``Skipped``/``Quarantined`` with the reason; secrets are masked (raw
        text of quarantined records included) and no raw line is kept.
        """
        def item(locator: str, obj: Any) -> dict | Quarantined | Skipped:
            rec = litellm_record(scrub(obj), locator)
            if isinstance(rec, dict):
                rec["_raw"] = None
            return rec

        # a line that is not JSON cannot be scrubbed structurally: what looks like a key is masked in its text
        return each_record(source, iter_json_values(source.stream, source.head, source.path), item,
                           raw=lambda obj: safe_text(dumps(scrub(obj))), text=_masked_raw)


FORMATS = [LiteLLMPayload()]
