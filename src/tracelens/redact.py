"""Redaction of personal data and secrets at ingest.

``Redactor(kinds, patterns, salt)`` masks matches in every stored text field
(system prompt, messages, prompt and response text, tool-call arguments,
error messages, attribute values, and the raw request/response JSON).
Each match becomes a token like ``[EMAIL:3f9a0c1e]``: the suffix is an HMAC
of the matched value under a per-store salt, so the same address maps to the
same token everywhere (grouping and counting still work) while the value
cannot be read back or guessed from a public hash.

The ingest pipeline computes ``prompt_hash``, ``system_prompt_hash``,
``tools_hash`` and ``content_hash`` *before* redacting, so identical prompts
still group together and re-ingesting the same file is still idempotent. A
redacted row has ``redacted = true`` and ``attributes.redactions`` listing
what was masked (e.g. ``email:2,card:1``); replay warns that such a request
is no longer the exact one that was sent.

Built-in kinds are general patterns, not lists: ``emails``, ``phones``
(numbers written with separators, so order ids are left alone), ``cards``
(13–19 digits passing the Luhn check) and ``keys`` (well-known API-key
prefixes, bearer tokens, and ``password=…``-style assignments).
"""

from __future__ import annotations

import hashlib
import hmac
import re
from collections import Counter
from dataclasses import dataclass, field

KINDS = ("emails", "phones", "cards", "keys")

_EMAIL = re.compile(r"(?<![\w.+-])[\w.+-]{1,64}@[A-Za-z0-9-]{1,63}(?:\.[A-Za-z0-9-]{1,63})*\.[A-Za-z]{2,24}\b")
_PHONE = re.compile(
    r"(?<![\w+])(?:\+\d{1,3}[ .-]?)?(?:\(\d{2,4}\)[ .-]?|\d{2,4}[ .-])\d{2,4}[ .-]\d{3,4}(?:[ .-]\d{2,4})?(?![\w-])"
)
_CARD = re.compile(r"(?<!\d)(?:\d[ -]?){12,18}\d(?!\d)")
_KEYS = re.compile(
    r"(?:sk-ant-[A-Za-z0-9_-]{10,}|sk-(?:proj-)?[A-Za-z0-9_-]{20,}|AKIA[0-9A-Z]{16}|gh[pousr]_[A-Za-z0-9]{30,}"
    r"|xox[abpr]-[A-Za-z0-9-]{10,}|AIza[0-9A-Za-z_-]{35}|(?i:bearer)\s+[A-Za-z0-9._~+/-]{16,}=*"
    r"|(?i:(?:api[_-]?key|secret|token|password|passwd)\s*[:=]\s*)[^\s\"',;]{6,})"
)


def _luhn(digits: str) -> bool:
    total = 0
    for i, ch in enumerate(reversed(digits)):
        d = int(ch)
        if i % 2 == 1:
            d *= 2
            if d > 9:
                d -= 9
        total += d
    return total % 10 == 0


@dataclass
class Redactor:
    """Masks configured kinds and extra regexes; counts what it masked."""

    kinds: tuple[str, ...] = ()
    patterns: tuple[str, ...] = ()
    salt: bytes = b""
    _compiled: list[tuple[str, re.Pattern]] = field(default_factory=list, init=False, repr=False)

    def __post_init__(self) -> None:
        unknown = set(self.kinds) - set(KINDS)
        if unknown:
            raise ValueError(f"unknown redaction kind(s) {sorted(unknown)}; choose from {', '.join(KINDS)}")
        table = {"keys": _KEYS, "emails": _EMAIL, "cards": _CARD, "phones": _PHONE}
        # keys first: a key may contain digit runs that look like cards or phones
        for k in ("keys", "emails", "cards", "phones"):
            if k in self.kinds:
                self._compiled.append((k.rstrip("s"), table[k]))
        for i, p in enumerate(self.patterns):
            try:
                self._compiled.append((f"custom{i + 1}" if len(self.patterns) > 1 else "custom", re.compile(p)))
            except re.error as e:
                raise ValueError(f"invalid redaction regex {p!r}: {e}") from None

    @property
    def active(self) -> bool:
        return bool(self._compiled)

    def _token(self, kind: str, value: str) -> str:
        tag = hmac.new(self.salt, value.encode("utf-8", "surrogatepass"), hashlib.sha256).hexdigest()[:8]
        return f"[{kind.upper()}:{tag}]"

    def text(self, s: str | None, counts: Counter) -> str | None:
        """``s`` with every match masked; adds to ``counts`` per kind."""
        if not s:
            return s
        for kind, rx in self._compiled:

            def sub(m: re.Match, kind=kind) -> str:
                v = m.group(0)
                if kind == "card" and not _luhn(re.sub(r"\D", "", v)):
                    return v
                counts[kind] += 1
                return self._token(kind, v)

            s = rx.sub(sub, s)
        return s

    def record(self, rec: dict) -> dict:
        """Redact a finalised trace record in place; sets ``redacted`` and ``attributes.redactions``."""
        counts: Counter = Counter()
        for k in ("system_prompt", "prompt_text", "response_text", "error_message", "request_raw", "response_raw",
                  "tool_definitions", "stop_details"):
            if rec.get(k):
                rec[k] = self.text(rec[k], counts)
        for m in rec.get("messages") or []:
            m["text"] = self.text(m.get("text"), counts)
            for c in m.get("tool_calls") or []:
                c["arguments"] = self.text(c.get("arguments"), counts)
        for c in rec.get("tool_calls") or []:
            c["arguments"] = self.text(c.get("arguments"), counts)
        attrs = rec.get("attributes") or {}
        for k in list(attrs):
            attrs[k] = self.text(attrs[k], counts)
        if counts:
            attrs["redactions"] = ",".join(f"{k}:{n}" for k, n in sorted(counts.items()))
            rec["attributes"] = attrs
        rec["redacted"] = True  # redaction was applied, whether or not anything matched
        return rec
