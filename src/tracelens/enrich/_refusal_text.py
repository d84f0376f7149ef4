"""Text layer of the refusal detector: normalise, scan, score.

Contract: ``analyse(text) -> TextVerdict`` is pure, deterministic, linear in
``len(text)`` and bounded: only the first ``HEAD_CHARS`` and the last
``TAIL_CHARS`` characters are analysed (a refusal sits at the start of a
response or, after a preamble, close to it; a trailing caveat sits at the
end; the middle of a very long response is answer). The skipped middle still
counts as substantive answer when weighing a refusal against what follows it.

Pipeline:

1. normalise: fold curly quotes/apostrophes, drop markdown emphasis, replace
   fenced and inline code, blockquotes, quoted passages and script dialogue
   with placeholders (so a refusal *quoted* in an answer, or spoken by a
   character in a story, never fires), lower-case.
2. scan: each pattern table from ``_refusal_patterns`` is compiled once into a
   single alternation of named groups; one ``finditer`` per table yields the
   hits, each naming its rule.
3. score: split into sentences; every hit gets its rule weight times a
   position factor (a signal after a long stretch of answer counts less);
   hits combine by noisy-OR into ``score``. Sentences holding a hit (or an
   alternative/redirect/closing) are "refusal talk"; everything else is
   substantive answer. The label weighs the score against how much answer
   follows the first refusal signal: a strong decline followed by a real
   answer is ``partial``; a weak hedge followed by a long answer is ``none``.
"""

from __future__ import annotations

import bisect
import re
from dataclasses import dataclass

from tracelens.enrich._refusal_patterns import ENGLISH, FOREIGN, Rule

HEAD_CHARS = 4000
TAIL_CHARS = 1000

# Decision thresholds (documented in docs/refusal.md).
REFUSAL_THRESHOLD = 0.5  # noisy-OR score at or above which the text refuses
STRONG_WEIGHT = 0.8  # a hit this strong is a real decline, never just a hedge
SHORT_ANSWER = 200  # substantive chars after the refusal that still count as "nothing"
LONG_ANSWER = 600  # substantive chars after a weak signal that make it a hedge
PREAMBLE_FREE = 300  # substantive chars before a signal that cost it nothing
PREAMBLE_DECAY = 2500  # ...after which its weight decays linearly to the floor
POSITION_FLOOR = 0.45
MIN_SENTENCE = 15  # shorter fragments (headings, "Sure!") are not substantive

_FOLD = str.maketrans(
    {
        "\u2018": "'", "\u2019": "'", "\u02bc": "'", "\u00b4": "'", "\u2032": "'",
        "\u201c": '"', "\u201d": '"', "\u201e": '"', "\u00ab": '"', "\u00bb": '"', "\u2033": '"',
        "\u00a0": " ", "\u2009": " ", "\u202f": " ", "\u200b": None, "\ufeff": None,
        "*": None, "\t": " ", "\r": None,
    }
)

# Placeholders never contain letters a rule could match, nor sentence punctuation.
_Q = " \u00a7q\u00a7 "
_CODE = "\n\u00a7code\u00a7\n"
_DIALOGUE = "\u00a7dialogue\u00a7"

_FENCE = re.compile(r"^[ ]*(```|~~~)[^\n]*\n(?:.*?\n)??[ ]*\1[^\n]*$|^[ ]*(?:```|~~~)[^\n]*\n.*\Z", re.M | re.S)
_INLINE_CODE = re.compile(r"`[^`\n]{1,200}`")
# Script lines "NAME: words" (case-sensitive, on the folded text); only treated as
# dialogue when two or more distinct speakers appear.
_SPEAKER = re.compile(r"^[ ]*(?:[-#>] *)?([A-Z][A-Za-z.'\-]{0,20}(?: [A-Z][A-Za-z.'\-]{0,20}){0,2})[ ]*:[ ]+\S[^\n]*$", re.M)
_NOT_SPEAKERS = frozenset(
    {
        "Note", "Example", "Answer", "Question", "Summary", "Step", "Warning", "Important", "Disclaimer", "Tip", "Output",
        "Input", "Result", "Results", "Conclusion", "Reason", "Reasons", "Option", "Pros", "Cons", "Ingredients",
        "Instructions", "Source", "Sources", "Title", "Subject", "Date", "Time", "Location", "Setting", "Scene",
        "Definition", "Explanation", "Solution", "Problem", "Usage", "Syntax", "Benefits", "Risks", "Caution", "Update",
        "Edit", "Response", "Translation", "Key", "Remember", "Bonus", "Method", "Goal", "Purpose", "Context", "Background",
    }
)
_BLOCKQUOTE = re.compile(r"^[ ]*>[^\n]*$", re.M)
_DQUOTE = re.compile(r'"(?:[^"\n]|\n(?![ ]*\n)){1,600}?"')
_SQUOTE = re.compile(r"(?<![\w'])'(?:[^'\n]|'(?=[a-z])){1,300}?'(?![\w])")
_SENT_BOUNDARY = re.compile(r"[.!?]+[\"')\]]*[ ]+|\n[ \n]*")


def _compile(rules: tuple[Rule, ...]) -> tuple[re.Pattern[str], dict[str, Rule]]:
    groups = {f"r{i}": r for i, r in enumerate(rules)}
    src = "|".join(f"(?P<{g}>{r.pattern})" for g, r in groups.items())
    return re.compile(src, re.M), groups


_EN = _compile(ENGLISH)
_FOREIGN = {lang: (re.compile(trigger), _compile(rules)) for lang, (trigger, rules) in FOREIGN.items()}


@dataclass(frozen=True)
class Hit:
    rule: str
    kind: str
    weight: float
    start: int
    end: int
    text: str


@dataclass(frozen=True)
class TextVerdict:
    """Outcome of the text layer. ``label`` is none/partial/full."""

    label: str
    score: float
    category: str | None
    evidence: str | None
    hits: tuple[Hit, ...] = ()
    substantive_chars: int = 0


NONE = TextVerdict("none", 0.0, None, None)


@dataclass
class Normalised:
    text: str  # lower-cased analysis text with placeholders
    code_lengths: list[int]  # length of each replaced code block, in order
    skipped: int  # characters of the middle that were not analysed
    head_len: int  # length of the analysed head inside ``text`` (approximate after replacement)


def _cap(text: str) -> tuple[str, int]:
    n = len(text)
    if n <= HEAD_CHARS + TAIL_CHARS:
        return text, 0
    return text[:HEAD_CHARS] + "\n\n" + text[n - TAIL_CHARS :], n - HEAD_CHARS - TAIL_CHARS


def _strip_quotes(text: str, pattern: re.Pattern[str]) -> str:
    # A quote that spans almost the whole response is the response (some logs
    # wrap the text in quotes), not a quotation inside it.
    limit = 0.8 * len(text)

    def repl(m: re.Match[str]) -> str:
        return m.group(0) if m.end() - m.start() > limit else _Q

    return pattern.sub(repl, text)


def normalise(text: str) -> Normalised:
    capped, skipped = _cap(text)
    t = capped.translate(_FOLD)
    code_lengths: list[int] = []
    if "```" in t or "~~~" in t:

        def code_repl(m: re.Match[str]) -> str:
            code_lengths.append(m.end() - m.start())
            return _CODE

        t = _FENCE.sub(code_repl, t)
    if "`" in t:
        t = _INLINE_CODE.sub(" code ", t)
    if ":" in t:
        speakers = {m.group(1) for m in _SPEAKER.finditer(t)} - _NOT_SPEAKERS
        if len(speakers) >= 2:
            t = _SPEAKER.sub(lambda m: _DIALOGUE if m.group(1) in speakers else m.group(0), t)
    t = t.lower()
    if ">" in t:
        t = _BLOCKQUOTE.sub(_Q, t)
    if '"' in t:
        t = _strip_quotes(t, _DQUOTE)
    if "'" in t:
        t = _strip_quotes(t, _SQUOTE)
    return Normalised(t, code_lengths, skipped, HEAD_CHARS)


def _scan(text: str) -> list[Hit]:
    hits: list[Hit] = []
    pattern, groups = _EN
    for m in pattern.finditer(text):
        r = groups[m.lastgroup]  # type: ignore[index]
        hits.append(Hit(r.name, r.kind, r.weight, m.start(), m.end(), m.group(0)))
    for trigger, (pattern, groups) in _FOREIGN.values():
        if trigger.search(text) is None:
            continue
        for m in pattern.finditer(text):
            r = groups[m.lastgroup]  # type: ignore[index]
            hits.append(Hit(r.name, r.kind, r.weight, m.start(), m.end(), m.group(0)))
    return hits


def _sentences(text: str) -> list[int]:
    starts = [0]
    for m in _SENT_BOUNDARY.finditer(text):
        if m.end() < len(text):
            starts.append(m.end())
    return starts


def _substantive_len(segment: str, code_iter: list[int]) -> int:
    n = 0
    if "\u00a7code\u00a7" in segment:
        for _ in range(segment.count("\u00a7code\u00a7")):
            n += code_iter.pop(0) if code_iter else 0
        segment = segment.replace("\u00a7code\u00a7", "")
    if "\u00a7" in segment:
        # quoted passages and dialogue are content, but count them modestly
        n += 20 * (segment.count(_Q.strip()) + segment.count(_DIALOGUE))
        segment = segment.replace(_Q.strip(), "").replace(_DIALOGUE, "")
    s = segment.strip()
    if len(s) >= MIN_SENTENCE:
        n += len(s)
    return n


def _position_factor(pre: int) -> float:
    if pre <= PREAMBLE_FREE:
        return 1.0
    return max(POSITION_FLOOR, 1.0 - (pre - PREAMBLE_FREE) / PREAMBLE_DECAY)


def analyse(text: str | None) -> TextVerdict:
    """Classify one response text. See the module docstring for the method."""
    if not text or not text.strip():
        return NONE
    norm = normalise(text)
    t = norm.text
    hits = _scan(t)
    if not hits:
        return NONE
    refusal_hits = [h for h in hits if h.weight > 0]
    if not refusal_hits:
        return NONE

    starts = _sentences(t)
    n_sent = len(starts)
    ends = starts[1:] + [len(t)]
    talk = [False] * n_sent  # sentence is refusal talk (hit or support)
    hit_sent: list[int] = []
    for h in hits:
        i = bisect.bisect_right(starts, h.start) - 1
        hit_sent.append(i)
        talk[i] = True
    code_iter = list(norm.code_lengths)
    subst = [0 if talk[i] else _substantive_len(t[starts[i] : ends[i]], code_iter) for i in range(n_sent)]
    if norm.skipped:
        # the unanalysed middle sits right after the head: count it as answer there
        i = min(bisect.bisect_right(starts, HEAD_CHARS) - 1, n_sent - 1)
        subst[i] += norm.skipped
    prefix = [0] * (n_sent + 1)
    for i in range(n_sent):
        prefix[i + 1] = prefix[i] + subst[i]
    total = prefix[-1]

    # weigh each refusal hit by where it sits
    scored: list[tuple[float, Hit, int]] = []
    per_kind: dict[str, int] = {}
    for h, i in zip(hits, hit_sent):
        if h.weight <= 0:
            continue
        # corroborating kinds only count twice: a harm-heavy essay is not a refusal
        if h.kind in ("justify", "preface", "limitation", "deflection"):
            per_kind[h.kind] = per_kind.get(h.kind, 0) + 1
            if per_kind[h.kind] > 2:
                continue
        scored.append((h.weight * _position_factor(prefix[i]), h, i))
    keep = 1.0
    for w, _, _ in scored:
        keep *= 1.0 - w
    score = 1.0 - keep
    if score < REFUSAL_THRESHOLD:
        return TextVerdict("none", round(score, 4), None, None, tuple(hits), total)

    lead_w, lead, lead_i = max(scored, key=lambda x: (x[0], -x[1].start))
    first_i = min(i for w, _, i in scored if w >= 0.4 or w == lead_w)
    after = total - prefix[first_i + 1]
    before = prefix[first_i]
    strong = lead.weight >= STRONG_WEIGHT
    support = [h for h in hits if h.kind in ("alternative", "redirect")]

    if not strong and after >= LONG_ANSWER:
        # a hedge ("as an AI...", "it's not appropriate to generalise") followed by a real answer
        return TextVerdict("none", round(min(score, REFUSAL_THRESHOLD - 0.05), 4), None, None, tuple(hits), total)
    if after <= SHORT_ANSWER and before <= PREAMBLE_FREE:
        label = "partial" if support else "full"
    else:
        label = "partial"
    if label == "partial":
        score = min(score, 0.9)
    category = _category(lead.kind)
    evidence = f'{lead.rule}: "{_snippet(text, t, lead)}"'
    if label == "partial":
        if support:
            evidence += f' + {support[0].rule}: "{_snippet(text, t, support[0])}"'
        elif after > SHORT_ANSWER:
            evidence += f" + {after} chars of answer"
    return TextVerdict(label, round(score, 4), category, evidence, tuple(hits), total)


_CATEGORY = {
    "decline": "declined",
    "apology": "declined",
    "policy": "policy",
    "deflection": "deflection",
    "limitation": "capability",
    "discourage": "discouraged",
    "justify": "policy",
    "preface": "caveat",
}


def _category(kind: str) -> str:
    return _CATEGORY.get(kind, kind)


def _snippet(original: str, norm: str, hit: Hit, limit: int = 160) -> str:
    """The matched span, in the original casing when it can be found there."""
    s = hit.text.strip()
    if "\u00a7" not in s:
        head = original[: HEAD_CHARS + 200].translate(_FOLD)
        j = head.lower().find(s)
        if j < 0 and len(original) > HEAD_CHARS:
            tail = original[-TAIL_CHARS - 200 :].translate(_FOLD)
            j2 = tail.lower().find(s)
            if j2 >= 0:
                s = tail[j2 : j2 + len(s)]
        elif j >= 0:
            s = head[j : j + len(s)]
    s = " ".join(s.split())
    return s if len(s) <= limit else s[: limit - 1] + "\u2026"
