"""Redaction of personal data and secrets at ingest (``--redact``, ``--redact-regex``, ``--redact-fields``).

``Redactor(kinds, patterns, salt, fields, phone_regions)`` masks matches in
every stored text field (system prompt, messages, prompt and response text,
tool-call arguments, error messages, attribute values, the raw
request/response JSON, and the ``user_id``, ``session_id`` and ``app``
columns) and in quarantined records (their raw text and reason). Each match
becomes a token like ``[EMAIL:3f9a0c1e]``: the suffix is an HMAC of the
matched value under a per-store salt, so the same address maps to the same
token everywhere (grouping and counting still work) while the value cannot
be read back or guessed from a public hash.

``fields`` (``--redact-fields user_id,session_id``) replaces whole id columns
(``REDACTABLE_FIELDS``) by keyed tokens such as
``[USER_ID:3f9a0c1e5b7d9f11]`` (64 bits, so distinct ids do not collide at
log scale); the same id gives the same token in every row, so per-user
grouping and ``search --user TOKEN`` still work, and the id's other
occurrences in the record (e.g. ``metadata.user_id`` inside ``request_raw``)
get the same token.

The ingest pipeline computes ``prompt_hash``, ``system_prompt_hash``,
``tools_hash`` and ``content_hash`` *before* redacting, so identical prompts
still group together and re-ingesting the same file is still idempotent. A
redacted row has ``redacted = true`` and ``attributes.redactions`` listing
what was masked (e.g. ``email:2,card:1``); replay warns that such a request
is no longer the exact one that was sent. Secrets are removed whether or not
``--redact`` is given (``tracelens.secrets``, before the hashes); ``keys``
adds what only a looser rule finds.

Built-in kinds are general rules, not lists:

* ``emails``;
* ``phones``: numbers found in running text by ``phonenumbers`` (Google's
  libphonenumber): international numbers (``+49 30 901820``, ``0049 …``)
  that are possible numbers, national numbers of the ``phone_regions``
  (default US: ``(415) 555-0123``, ``4155550123``) that are valid numbers,
  and seven-digit local numbers written ``555-0100``. A number glued to an
  identifier (``INV-2026-000123``, ``#1000234``, ``1Z999…``) is not a phone;
  dates, amounts and times are not either. A bare ten-digit number that is a
  valid national number is taken for a phone;
* ``cards``: 13-19 digits passing the Luhn check;
* ``keys``: everything ``tracelens.secrets`` removes, plus bare AWS secret
  access keys (40 base64 characters mixing upper case, lower case and
  digits) and ``password=…``-style assignments.
"""

from __future__ import annotations

import hashlib
import hmac
import re
from collections import Counter
from dataclasses import dataclass, field

from tracelens.secrets import scrub_text

KINDS = ("emails", "phones", "cards", "keys")
REDACTABLE_FIELDS = ("user_id", "session_id", "app", "request_id")
# Columns that hold ids or names, redacted by the text kinds too (an email used as a user id)
_ID_FIELDS = ("user_id", "session_id", "app")

_EMAIL = re.compile(r"(?<![\w.+-])[\w.+-]{1,64}@[A-Za-z0-9-]{1,63}(?:\.[A-Za-z0-9-]{1,63})*\.[A-Za-z]{2,24}\b")
_CARD = re.compile(r"(?<!\d)(?:\d[ -]?){12,18}\d(?!\d)")
_KEYS = re.compile(
    r"(?:sk-ant-[A-Za-z0-9_-]{10,}|sk-(?:proj-)?[A-Za-z0-9_-]{20,}|(?:AKIA|ASIA)[0-9A-Z]{16}|gh[pousr]_[A-Za-z0-9]{30,}"
    r"|(?:sk|rk)_(?:live|test)_[A-Za-z0-9]{10,}"
    r"|xox[abpr]-[A-Za-z0-9-]{10,}|AIza[0-9A-Za-z_-]{35}|(?i:bearer)\s+[A-Za-z0-9._~+/-]{16,}=*"
    r"|(?<![A-Za-z0-9/+=])(?=[A-Za-z0-9/+]{0,39}[A-Z])(?=[A-Za-z0-9/+]{0,39}[a-z])(?=[A-Za-z0-9/+]{0,39}[0-9])"
    r"[A-Za-z0-9/+]{40}(?![A-Za-z0-9/+=])"
    r"|(?<!\[)(?i:(?:api[_-]?key|secret|token|password|passwd)\s*[:=]\s*)[^\s\"',;\[]{6,})"  # (not our markers)
)
# A run that may hold a phone number: 7+ digits with separators between them (cheap test before the matcher)
_DIGIT_RUN = re.compile(r"\d[\d\s().\-/]{5,}\d")
_INTL_00 = re.compile(r"(?<![\d+])00(?=[1-9]\d)")
_LOCAL_FORM = re.compile(r"[2-9]\d{2}[-. ]\d{4}")
_GLUE_BEFORE = frozenset("#/-_.")
_GLUE_AFTER = frozenset("-_/")


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


def _glued(text: str, start: int, end: int) -> bool:
    """A number that is part of an identifier (INV-2026-000123, #1000234, 1Z999AA101...)."""
    before = text[start - 1] if start else " "
    after = text[end] if end < len(text) else " "
    return before.isalnum() or before in _GLUE_BEFORE or after.isalnum() or after in _GLUE_AFTER


def phone_spans(text: str, regions: tuple[str, ...] = ("US",)) -> list[tuple[int, int]]:
    """Where phone numbers are in ``text`` (see the module docstring for the rule)."""
    if not _DIGIT_RUN.search(text):
        return []
    import phonenumbers

    # "0049 30 …" is international too: read it as "+49 30 …" (same length, so positions agree)
    probe = _INTL_00.sub(" +", text)
    spans: set[tuple[int, int]] = set()
    for region in regions:
        for m in phonenumbers.PhoneNumberMatcher(probe, region, leniency=phonenumbers.Leniency.POSSIBLE):
            start, end, raw = m.start, m.end, m.raw_string
            if raw.startswith("+") and probe[start - 1:start] == " " and text[start - 1:start + 1] == "00":
                start -= 1  # the number began with "00"
            if _glued(text, start, end):
                continue
            num = m.number
            if raw.startswith("+"):
                ok = phonenumbers.is_possible_number(num)
            else:
                ok = phonenumbers.is_valid_number(num) or bool(_LOCAL_FORM.fullmatch(raw))
            if ok:
                spans.add((start, end))
    return sorted(spans)


def _phone_regex_stand_in(regions: tuple[str, ...]):
    """An object with ``sub`` that masks phone numbers, so phones sit in the same table as the regex kinds."""

    class _Phones:
        @staticmethod
        def sub(repl, text: str) -> str:
            spans = phone_spans(text, regions)
            if not spans:
                return text
            out, pos = [], 0
            for s, e in spans:
                if s < pos:
                    continue
                out.append(text[pos:s])
                out.append(repl(_Span(text[s:e])))
                pos = e
            out.append(text[pos:])
            return "".join(out)

    return _Phones()


class _Span:
    """The part of re.Match the substitution callbacks use."""

    def __init__(self, value: str) -> None:
        self._value = value

    def group(self, i: int = 0) -> str:
        """The whole value, whatever group is asked for."""
        return self._value


@dataclass
class Redactor:
    """Masks configured kinds, extra regexes and id fields; counts what it masked."""

    kinds: tuple[str, ...] = ()
    patterns: tuple[str, ...] = ()
    salt: bytes = b""
    fields: tuple[str, ...] = ()
    phone_regions: tuple[str, ...] = ("US",)
    _compiled: list[tuple[str, object]] = field(default_factory=list, init=False, repr=False)

    def __post_init__(self) -> None:
        unknown = set(self.kinds) - set(KINDS)
        if unknown:
            raise ValueError(f"unknown redaction kind(s) {sorted(unknown)}; choose from {', '.join(KINDS)}")
        bad_fields = set(self.fields) - set(REDACTABLE_FIELDS)
        if bad_fields:
            raise ValueError(f"unknown field(s) to redact {sorted(bad_fields)}; choose from {', '.join(REDACTABLE_FIELDS)}")
        if "phones" in self.kinds:
            import phonenumbers

            regions = tuple(r.upper() for r in self.phone_regions)
            unknown_regions = [r for r in regions if r not in phonenumbers.SUPPORTED_REGIONS]
            if unknown_regions:
                raise ValueError(f"unknown phone region(s) {unknown_regions}; use ISO 3166 codes such as US, GB, DE")
            self.phone_regions = regions
        table = {"keys": _KEYS, "emails": _EMAIL, "cards": _CARD, "phones": _phone_regex_stand_in(self.phone_regions)}
        # keys first: a key may contain digit runs that look like cards or phones; cards before phones
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
        """True when the redactor masks anything (a pattern kind, a custom pattern or a field)."""
        return bool(self._compiled or self.fields)

    def _token(self, kind: str, value: str, length: int = 8) -> str:
        tag = hmac.new(self.salt, value.encode("utf-8", "surrogatepass"), hashlib.sha256).hexdigest()[:length]
        return f"[{kind.upper()}:{tag}]"

    def field_token(self, name: str, value: str) -> str:
        """The token that stands for ``value`` in the id column ``name`` (stable per store)."""
        return self._token(name, f"{name}\x00{value}", 16)

    def text(self, s: str | None, counts: Counter) -> str | None:
        """``s`` with every match masked; adds to ``counts`` per kind."""
        if not s:
            return s
        for kind, rx in self._compiled:
            if kind == "key":
                found: Counter = Counter()
                s = scrub_text(s, found)
                if found:
                    counts["key"] += sum(found.values())

            def sub(m, kind=kind) -> str:
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
        replaced = self._fields(rec, counts)
        for k in ("system_prompt", "prompt_text", "response_text", "error_message", "request_raw", "response_raw",
                  "tool_definitions", "stop_details", *(f for f in _ID_FIELDS if f not in self.fields)):
            if rec.get(k):
                rec[k] = self._ids(self.text(rec[k], counts), replaced)
        for m in rec.get("messages") or []:
            m["text"] = self._ids(self.text(m.get("text"), counts), replaced)
            for c in m.get("tool_calls") or []:
                c["arguments"] = self._ids(self.text(c.get("arguments"), counts), replaced)
        for c in rec.get("tool_calls") or []:
            c["arguments"] = self._ids(self.text(c.get("arguments"), counts), replaced)
        attrs = rec.get("attributes") or {}
        for k in list(attrs):
            attrs[k] = self._ids(self.text(attrs[k], counts), replaced)
        if counts:
            attrs["redactions"] = ",".join(f"{k}:{n}" for k, n in sorted(counts.items()))
            rec["attributes"] = attrs
        rec["redacted"] = True  # redaction was applied, whether or not anything matched
        return rec

    def _fields(self, rec: dict, counts: Counter) -> list[tuple[re.Pattern, str]]:
        """Replace the id columns named in ``fields``; returns (pattern of the old value, token) for the rest."""
        replaced = []
        for name in self.fields:
            v = rec.get(name)
            if not v:
                continue
            token = self.field_token(name, v)
            rec[name] = token
            counts[name] += 1
            if len(v) >= 2:  # its other occurrences (e.g. metadata.user_id in request_raw) get the same token
                replaced.append((re.compile(rf"(?<![\w.@-]){re.escape(v)}(?![\w@-])"), token))
        return replaced

    @staticmethod
    def _ids(s: str | None, replaced: list[tuple[re.Pattern, str]]) -> str | None:
        if not s or not replaced:
            return s
        for rx, token in replaced:
            s = rx.sub(token, s)
        return s

    def quarantine_row(self, row: dict) -> dict:
        """A quarantine row with its raw text and reason redacted like a trace's text (and its id recomputed)."""
        from tracelens.store import make_quarantine_row

        counts: Counter = Counter()
        raw = self.text(row.get("raw"), counts)
        reason = self.text(row.get("reason"), counts)
        if not counts:
            return row
        # the id hashes the raw text: computed again so that it is not a hash of what was removed
        out = make_quarantine_row(row["source_format"], row["source_file"], row["source_locator"], reason, raw)
        out["quarantined_at"] = row["quarantined_at"]
        return out
