"""Structured layer of the refusal detector: provider signals, no text guessing.

Contract: ``structured(...) -> StructuredVerdict | None``. A verdict is
returned only when the provider itself said the output was refused, filtered
or blocked; ``None`` means "no structured signal, ask the text layer".
Recognised signals (first match wins, in this order):

* Anthropic ``stop_reason == "refusal"`` (normalised or raw, or in
  ``response_raw``); ``stop_details`` JSON supplies category and explanation.
* OpenAI Chat Completions ``choices[].message.refusal`` (or a streamed
  ``delta.refusal``) with a non-empty string; Responses API ``output[]``
  content parts of ``type: "refusal"``.
* ``finish_reason: "content_filter"`` (OpenAI / Azure OpenAI; Azure's
  ``content_filter_results`` name the filtered categories).
* Amazon Bedrock guardrails: Converse ``stopReason: "guardrail_intervened"``,
  InvokeModel ``"amazon-bedrock-guardrailAction": "INTERVENED"``.
* Google Gemini ``finishReason`` SAFETY / PROHIBITED_CONTENT / BLOCKLIST /
  SPII / IMAGE_SAFETY and ``promptFeedback.blockReason``.
* HTTP 400-class (or any error) whose type/message is about content policy,
  safety systems, moderation or guardrails.

A refusal stop with empty text ("the stream ended with nothing") is reported
with that fact in the evidence. ``response_raw`` is only parsed when a cheap
substring test says it may hold one of these keys, and is capped, so the cost
stays bounded for multi-megabyte bodies.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any

RAW_PARSE_LIMIT = 2_000_000  # bytes of response_raw we are willing to json-parse
EXPLANATION_LIMIT = 240

_REFUSAL_STOPS = {
    "refusal": "refusal",
    "content_filter": "content_filter",
    "guardrail_intervened": "guardrail",
    "safety": "safety",
    "prohibited_content": "prohibited_content",
    "blocklist": "blocklist",
    "spii": "spii",
    "image_safety": "safety",
}

_POLICY_ERROR = re.compile(
    r"content[ _-]?(?:policy|polic(?:ies)|management|filter(?:ing)?|moderation)|safety (?:system|polic|filter|setting|guideline|classifier)"
    r"|usage polic|moderation|flagged|responsible ?ai|invalid[_ ]prompt|prohibited[_ ]content|harm[_ ]categor|guardrail"
    r"|violat\w* (?:our|the|openai|anthropic) (?:usage|content|acceptable)|potentially (?:harmful|violating|unsafe)|unsafe content"
    r"|blocked (?:due to|because|by|for) (?:safety|content|policy)|(?:output|input|prompt|response) (?:was|has been) (?:blocked|filtered)"
    r"|acceptable use polic|responsibleaipolicyviolation|content_policy_violation",
    re.I,
)
# Substrings without which a raw body cannot hold a structured signal. Plain
# substring tests (no regex, no case folding) keep the common case, a body
# with none of them, at a few microseconds; `"refusal": null` (every OpenAI
# response) and `"filtered": false` (every Azure one) do not count.
_RAW_HINTS = (
    '"content_filter"', "guardrail", "INTERVENED", '"SAFETY"', "PROHIBITED_CONTENT", "BLOCKLIST", '"SPII"', "IMAGE_SAFETY",
    "blockReason", '"filtered": true', '"filtered":true',
)
_REFUSAL_KEY = re.compile(r'"refusal"')


def _raw_may_signal(raw: str) -> bool:
    if any(h in raw for h in _RAW_HINTS):
        return True
    if '"refusal"' not in raw:
        return False
    for m in _REFUSAL_KEY.finditer(raw):
        after = raw[m.end() : m.end() + 8].lstrip()
        before = raw[max(0, m.start() - 4) : m.start()].rstrip()
        if before.endswith(":") or (after.startswith(":") and not after[1:].lstrip().startswith("null")):
            return True  # a "refusal" stop value, or a non-null refusal field
    return False
_RAW_STOP = re.compile(r'"(?:stop_reason|stopReason|finish_reason|finishReason)"\s*:\s*"([A-Za-z_]+)"')


@dataclass(frozen=True)
class StructuredVerdict:
    """A refusal the provider itself signalled: label (``full``), score 0..1, category and evidence text."""

    label: str
    score: float
    category: str
    evidence: str


def _clip(s: str, n: int = EXPLANATION_LIMIT) -> str:
    s = " ".join(str(s).split())
    return s if len(s) <= n else s[: n - 1] + "\u2026"


def _loads(raw: Any) -> Any:
    if raw is None:
        return None
    if isinstance(raw, (dict, list)):
        return raw
    if not isinstance(raw, str) or not raw or len(raw) > RAW_PARSE_LIMIT:
        return None
    s = raw.strip()
    if not s or s[0] not in "{[":
        return None
    try:
        return json.loads(s)
    except ValueError:
        return None


def _walk(obj: Any, depth: int = 0):
    """Yield every dict inside obj (bounded depth, so hostile JSON stays cheap)."""
    if depth > 12:
        return
    if isinstance(obj, dict):
        yield obj
        for v in obj.values():
            if isinstance(v, (dict, list)):
                yield from _walk(v, depth + 1)
    elif isinstance(obj, list):
        for v in obj[:256]:
            if isinstance(v, (dict, list)):
                yield from _walk(v, depth + 1)


def _details(stop_details: Any) -> tuple[str | None, str | None]:
    """(category, explanation) from Anthropic-style stop_details JSON."""
    d = _loads(stop_details)
    if d is None and isinstance(stop_details, str) and stop_details.strip():
        return None, _clip(stop_details)
    category = explanation = None
    for node in _walk(d):
        if category is None:
            for k in ("category", "refusal_category", "type"):
                v = node.get(k)
                if isinstance(v, str) and v and v != "refusal":
                    category = v
                    break
        if explanation is None:
            for k in ("explanation", "message", "reason", "description"):
                v = node.get(k)
                if isinstance(v, str) and v:
                    explanation = _clip(v)
                    break
    return category, explanation


def _filtered_categories(raw_obj: Any) -> list[str]:
    """Names of Azure/Gemini/Bedrock categories that were filtered or blocked."""
    cats: list[str] = []
    for node in _walk(raw_obj):
        for k in ("content_filter_results", "contentFilterResults"):
            v = node.get(k)
            if isinstance(v, dict):
                cats += [name for name, r in v.items() if isinstance(r, dict) and r.get("filtered") is True]
        if node.get("blocked") is True and isinstance(node.get("category"), str):
            cats.append(node["category"])
        action = node.get("action")
        if isinstance(action, str) and action.upper() == "BLOCKED":
            # Bedrock: topic policies carry a name, content filters a type
            label = node.get("name") if isinstance(node.get("name"), str) else node.get("type")
            if isinstance(label, str):
                cats.append(label.lower().replace(" ", "_"))
    seen: list[str] = []
    for c in cats:
        c = c.lower().replace("harm_category_", "")
        if c not in seen:
            seen.append(c)
    return seen


def _empty_note(text: str | None) -> str:
    return " (stream ended with empty content)" if not (text or "").strip() else ""


def structured(
    response_text: str | None,
    *,
    stop_reason: str | None = None,
    stop_reason_raw: str | None = None,
    stop_details: Any = None,
    status: str | None = None,
    http_status: int | None = None,
    error_type: str | None = None,
    error_message: str | None = None,
    provider: str | None = None,
    response_raw: Any = None,
) -> StructuredVerdict | None:
    """The ``StructuredVerdict`` when the provider's own fields say the output was refused, filtered or blocked (first
    recognised signal wins, see the module docstring); None when there is no structured signal.
    """
    sr = (stop_reason or "").strip().lower()
    srr = (stop_reason_raw or "").strip().lower()
    raw_obj = None
    raw_stops: set[str] = set()
    if response_raw is not None:
        raw_s = response_raw if isinstance(response_raw, str) else json.dumps(response_raw)
        if _raw_may_signal(raw_s):
            raw_obj = _loads(response_raw)
            raw_stops = {m.group(1).lower() for m in _RAW_STOP.finditer(raw_s[:RAW_PARSE_LIMIT])}

    # 1. Anthropic stop_reason "refusal"
    if sr == "refusal" or srr == "refusal" or "refusal" in raw_stops:
        category, explanation = _details(stop_details)
        if category is None and raw_obj is not None:
            for node in _walk(raw_obj):
                if "stop_details" in node:
                    category, explanation = _details(node["stop_details"])
                    break
        ev = "stop_reason=refusal" + _empty_note(response_text)
        if category:
            ev += f" category={category}"
        if explanation:
            ev += f": {explanation}"
        return StructuredVerdict("full", 1.0, category or "refusal", ev)

    # 2. OpenAI message.refusal / Responses API refusal parts
    if raw_obj is not None:
        for node in _walk(raw_obj):
            ref = node.get("refusal")
            if isinstance(ref, str) and ref.strip():
                return StructuredVerdict("full", 1.0, "model_refusal", f"message.refusal: {_clip(ref)}")
            if node.get("type") == "refusal" and isinstance(node.get("refusal", node.get("text")), str):
                txt = node.get("refusal") or node.get("text") or ""
                return StructuredVerdict("full", 1.0, "model_refusal", f"output refusal part: {_clip(txt)}")

    # 3. content filter / guardrail / Gemini safety stops
    stops = {s for s in (sr, srr) if s} | raw_stops
    if raw_obj is not None:
        for node in _walk(raw_obj):
            act = node.get("amazon-bedrock-guardrailAction")
            if isinstance(act, str) and act.upper() == "INTERVENED":
                stops.add("guardrail_intervened")
            br = (node.get("promptFeedback") or {}).get("blockReason") if isinstance(node.get("promptFeedback"), dict) else None
            if isinstance(br, str) and br:
                stops.add(br.lower() if br.lower() in _REFUSAL_STOPS else "prohibited_content")
    for stop in sorted(stops, key=lambda s: list(_REFUSAL_STOPS).index(s) if s in _REFUSAL_STOPS else 99):
        kind = _REFUSAL_STOPS.get(stop)
        if kind is None or kind == "refusal":
            continue
        cats = _filtered_categories(raw_obj) if raw_obj is not None else []
        category = kind if not cats else f"{kind}:{','.join(cats)}"
        ev = f"stop={stop}" + _empty_note(response_text)
        if cats:
            ev += f" filtered={','.join(cats)}"
        if kind == "guardrail" and (response_text or "").strip():
            ev += f": {_clip(response_text or '', 120)}"
        return StructuredVerdict("full", 0.98, category, ev)

    # 4. policy errors (HTTP 400 content policy, moderation, guardrail errors)
    is_error = (status or "").lower() == "error" or (http_status is not None and http_status >= 400) or bool(error_type)
    if is_error:
        blob = " ".join(x for x in (error_type, error_message) if x)
        if not blob and isinstance(response_raw, str) and len(response_raw) < 20_000:
            blob = response_raw
        m = _POLICY_ERROR.search(blob) if blob else None
        if m is not None:
            score = 0.95 if http_status == 400 else 0.9
            where = f"HTTP {http_status} " if http_status else ""
            et = f"{error_type}: " if error_type else ""
            cats = _filtered_categories(_loads(response_raw)) if response_raw is not None else []
            category = "content_policy_error" + (f":{','.join(cats)}" if cats else "")
            return StructuredVerdict("full", score, category, f"{where}{et}{_clip(error_message or blob)}")
    return None
