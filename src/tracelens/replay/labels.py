"""Refusal labels for replay responses and originals.

``refusal_label(text, stop_reason, stop_details)`` returns one of
``tracelens.schema.REFUSAL_LABELS`` (``none``, ``partial``, ``full``). It
delegates to ``tracelens.enrich.refusal.detect(text, stop_reason=...)`` when
that module is importable, so replays and ingested traces are labelled by the
same detector; otherwise a small local fallback is used: a structured
``refusal`` stop reason is ``full``; a response that opens with a refusal
phrase is ``full`` when short (< 400 chars) and ``partial`` otherwise.
"""

from __future__ import annotations

import re
from typing import Any

_OPENERS = re.compile(
    r"^\s*(i'?m sorry,?\s*(but\s*)?)?(i\s*(can(no|')?t|cannot|won'?t|will not|am (not able|unable)|'m (not able|unable))"
    r"\s*(to\s+)?(help|assist|provide|do|comply|support|create|write|share|give|engage|fulfil+)|"
    r"sorry,?\s*(but\s*)?i\s*(can(no|')?t|cannot)|i must decline|i'm not comfortable)",
    re.IGNORECASE,
)


def fallback_label(text: str | None, stop_reason: str | None = None) -> str:
    """The local refusal label when the shared detector is missing: ``full`` for a ``refusal`` stop reason or a short
    (< 400 chars) response that opens with a refusal phrase, ``partial`` for a longer one, else ``none``.
    """
    if stop_reason == "refusal":
        return "full"
    t = (text or "").replace("\u2019", "'")
    if _OPENERS.search(t[:200]):
        return "full" if len(t) < 400 else "partial"
    return "none"


def refusal_label(text: str | None, stop_reason: str | None = None, stop_details: Any = None) -> str:
    """``none``, ``partial`` or ``full`` for a response, from the shared refusal detector when it is importable (the
    local fallback otherwise, or when the detector gives no valid label).
    """
    try:
        from tracelens.enrich.refusal import detect  # the shared layered detector, when present
    except ImportError:
        return fallback_label(text, stop_reason)
    try:
        result = detect(text or "", stop_reason=stop_reason, stop_details=stop_details)
    except TypeError:  # a detector without the stop_details keyword
        result = detect(text or "", stop_reason=stop_reason)
    label = result if isinstance(result, str) else getattr(result, "label", None)
    if label is None and isinstance(result, dict):
        label = result.get("label")
    return label if label in ("none", "partial", "full") else fallback_label(text, stop_reason)


def is_refused(label: str | None) -> bool:
    """Binary view used by verdicts: partial and full refusals both count as refused."""
    return label in ("partial", "full")
