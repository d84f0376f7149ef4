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
2. scan: one regex pass finds every word that starts a rule, is moralising
   vocabulary or belongs to a foreign-language table; only those words run
   their (pre-compiled, literal-first) rule groups, anchored at that word
   (see ``_refusal_compile``). Each hit names the rule that explains it.
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
from typing import NamedTuple

from tracelens.enrich._refusal_compile import compile_table
from tracelens.enrich._refusal_gate import gate
from tracelens.enrich._refusal_patterns import ENGLISH, FOREIGN, FOREIGN_TOKENS, LECTURE_TERMS, Rule

HEAD_CHARS = 4000
TAIL_CHARS = 1000

# Decision thresholds (documented in docs/refusal.md).
REFUSAL_THRESHOLD = 0.5  # noisy-OR score at or above which the text refuses
STRONG_WEIGHT = 0.8  # a hit this strong is a real decline, never just a hedge
SHORT_ANSWER = 200  # substantive chars after the refusal that still count as "nothing"
LONG_ANSWER = 800  # substantive chars after a weak signal that make it a hedge
PREAMBLE_FREE = 300  # substantive chars before a signal that cost it nothing
PREAMBLE_DECAY = 2500  # ...after which its weight decays linearly to the floor
POSITION_FLOOR = 0.45
MIN_SENTENCE = 15  # shorter fragments (headings, "Sure!") are not substantive
LATE_SIGNAL = 600  # substantive chars before any signal that make it part of the answer
CAVEAT_BEFORE = 150  # answer chars before a weak signal that make it a trailing caveat
HEDGE_ANSWER = 300  # answer chars after a deflection/limitation that make it a hedge
CLARIFY_DAMPING = 0.5  # "I'm sorry, I don't understand, could you clarify?" is not a refusal
CORRECTION_DAMPING = 0.6  # "that question doesn't make sense: X is fictional" is an answer
COMPLY_DAMPING = 0.75  # "Sure, ... (later) I can't ..." is a caveat inside an answer
NO_ANSWER_WEIGHT = 0.25  # an opening refusal-ish hit followed by no answer at all
REDIRECT_WEIGHT = 0.55  # a response that only lectures and points to a professional
REDIRECT_MAX_ANSWER = 120  # ...with at most this much actual answer before the redirect
REDIRECT_MAX_SHARE = 0.3  # ...and answer at most this share of the substantive text
REDIRECT_MIN_LECTURE = 150  # ...and at least this much lecture

# Character folding, applied with str.replace (str.translate with a mapping is
# several times slower on CPython and this runs on every response).
_FOLD = (
    ("\u2018", "'"), ("\u2019", "'"), ("\u02bc", "'"), ("\u00b4", "'"), ("\u2032", "'"),
    ("\u201c", '"'), ("\u201d", '"'), ("\u201e", '"'), ("\u00ab", '"'), ("\u00bb", '"'), ("\u2033", '"'),
    ("\u00a0", " "), ("\u2009", " "), ("\u202f", " "), ("\u200b", ""), ("\ufeff", ""),
    ("*", ""), ("\t", " "), ("\r", ""),
)


_FOLD_ASCII = tuple((a, b) for a, b in _FOLD if a.isascii())


def fold(text: str) -> str:
    """Fold typographic quotes/spaces to ASCII and drop markdown emphasis."""
    for src, dst in _FOLD_ASCII if text.isascii() else _FOLD:
        if src in text:
            text = text.replace(src, dst)
    return text


# Placeholders never contain letters a rule could match, nor sentence punctuation.
_Q = " \u00a7q\u00a7 "
_CODE = "\n\u00a7code\u00a7\n"
_DIALOGUE = "\u00a7dialogue\u00a7"

_FENCE = re.compile(r"^[ ]*(```|~~~)[^\n]*\n(?:.*?\n)??[ ]*\1[^\n]*$|^[ ]*(?:```|~~~)[^\n]*\n.*\Z", re.M | re.S)
_INLINE_CODE = re.compile(r"`[^`\n]{1,200}`")
# Script lines "NAME: words" (case-sensitive, on the folded text); only treated as
# dialogue when two or more distinct speakers appear.
# (searched in "\n" + text so that the pattern starts with a literal, which is fast)
_SPEAKER = re.compile(r"\n[ ]*(?:[-#>] *)?([A-Z][A-Za-z.'\-]{0,20}(?: [A-Z][A-Za-z.'\-]{0,20}){0,2})[ ]*:[ ]+\S[^\n]*")
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
_SQUOTE = re.compile(r"'(?<![\w']')(?:[^'\n]|'(?=[a-z])){1,300}?'(?![\w])")  # literal first: fast


def _compile(rules: tuple[Rule, ...]) -> tuple[re.Pattern[str], dict[str, Rule]]:
    groups = {f"r{i}": r for i, r in enumerate(rules)}
    src = "|".join(f"(?P<{g}>{r.pattern})" for g, r in groups.items())
    return re.compile(src, re.M), groups


_EN = compile_table(ENGLISH, LECTURE_TERMS, FOREIGN_TOKENS)
# Foreign tables are a single alternation each, run only when one of their words occurs.
_FOREIGN = {lang: _compile(rules) for lang, (_, rules) in FOREIGN.items()}
_SPACES = re.compile("   *")  # runs of two spaces or more; this form starts with a two-character literal (fast)


class Hit(NamedTuple):  # a NamedTuple: created for every match, and much cheaper than a dataclass
    """One rule match in the normalised text: the rule's name, kind and weight, the match's offsets and text."""

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
    """The analysis text of one response: lower-cased with placeholders, the lengths of the code blocks it replaced,
    and how many characters of the middle were skipped.
    """

    text: str  # lower-cased analysis text with placeholders
    code_lengths: list[int]  # length of each replaced code block, in order
    skipped: int  # characters of the middle that were not analysed


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


def _fence_end(t: str, ls: int) -> int:
    """End of the ``_FENCE`` match at line start ``ls``, or -1 where it does not match. The same as
    ``_FENCE.match(t, ls)``, found with ``str.find`` (the regex's lazy ``.*?`` steps through a code block one
    character at a time): the block runs to the end of the first later line that starts with spaces and the
    opening fence, or, without one, to the end of the text."""
    k = ls
    while t.startswith(" ", k):
        k += 1
    fence = t[k : k + 3]
    if fence not in ("```", "~~~"):
        return -1
    nl = t.find("\n", k)
    if nl < 0:
        return -1  # the fence line must end with a line break
    c = nl
    while True:
        c = t.find(fence, c + 1)
        if c < 0:
            return len(t)  # unclosed: the rest of the text
        lc = t.rfind("\n", 0, c) + 1
        if lc > nl and not t[lc:c].strip(" "):
            e = t.find("\n", c)
            return len(t) if e < 0 else e


def _fence_sub(t: str, repl) -> str:  # noqa: ANN001 - a callable (start, end) -> replacement
    """``_FENCE.sub`` with ``repl(start, end)`` for each match, found with ``str.find``: a match starts at a line
    start followed by spaces and a fence, so only those are tried (``_fence_end``)."""
    out: list[str] = []
    last = pos = 0
    n = len(t)
    while pos < n:
        i = t.find("```", pos)
        j = t.find("~~~", pos)
        if i < 0 or 0 <= j < i:
            i = j
        if i < 0:
            break
        ls = t.rfind("\n", 0, i) + 1
        if ls < pos or (ls < i and t[ls:i].strip(" ")):
            pos = i + 1  # not the first thing on its line (or on a line a match already covered)
            continue
        end = _fence_end(t, ls)
        if end < 0:
            pos = i + 1
            continue
        out.append(t[last:ls])
        out.append(repl(ls, end))
        last = pos = end
    if not out:
        return t
    out.append(t[last:])
    return "".join(out)


def _without_code(t: str, code_lengths: list[int] | None = None) -> str:
    """Folded text with fenced code blocks and inline code replaced by placeholders (their lengths appended to
    ``code_lengths``): the first step of ``normalise``, shared with the gate's probe text."""
    if "```" in t or "~~~" in t:

        def code_repl(start: int, end: int) -> str:
            if code_lengths is not None:
                code_lengths.append(end - start)
            return _CODE

        t = _fence_sub(t, code_repl)
    if "`" in t:
        t = _INLINE_CODE.sub(" code ", t)
    return t


def normalise(text: str) -> Normalised:
    """The ``Normalised`` analysis text of ``text``: head and tail only, quotes folded, code, blockquotes, quoted
    passages and script dialogue replaced by placeholders, lower-cased, every word preceded by a space.
    """
    capped, skipped = _cap(text)
    code_lengths: list[int] = []
    t = _without_code(fold(capped), code_lengths)
    if t.count(": ") >= 2 and "\n" in t:
        nt = "\n" + t
        speakers = {m.group(1) for m in _SPEAKER.finditer(nt)} - _NOT_SPEAKERS
        if len(speakers) >= 2:
            t = _SPEAKER.sub(lambda m: "\n" + _DIALOGUE if m.group(1) in speakers else m.group(0), nt)[1:]
    t = t.lower()
    if ">" in t:
        t = _BLOCKQUOTE.sub(_Q, t)
    if '"' in t:
        t = _strip_quotes(t, _DQUOTE)
    if "'" in t:
        t = _strip_quotes(t, _SQUOTE)
    # every word is preceded by a space: the scanner's candidate finder relies on it
    t = " " + t.replace("\n", "\n ") if "\n" in t else " " + t
    for opener in ("(", "[", "/"):
        if opener in t:
            t = t.replace(opener, opener + " ")
    if "  " in t:
        t = _SPACES.sub(" ", t)
    return Normalised(t, code_lengths, skipped)


def _scan(text: str) -> tuple[list[Hit], list[tuple[int, str]]]:
    """Rule hits (non-overlapping, leftmost first, ties broken by table order) and
    the positions of moralising vocabulary."""
    found, lecture, langs = _EN.scan(text)
    items: list[tuple] = list(found)
    for lang in sorted(langs):
        pattern, groups = _FOREIGN[lang]
        for m in pattern.finditer(text):
            g = m.lastgroup
            items.append((m.start(), 1000 + int(g[1:]), m.end(), m.group(0), groups[g]))  # type: ignore[index]
    if not items:
        return [], lecture
    items.sort(key=lambda x: (x[0], x[1]))
    hits: list[Hit] = []
    # Overlaps are resolved separately for refusal-weighted rules and for
    # support rules (alternatives, closers, ...): a support phrase must never
    # hide a decline that overlaps it, nor the other way round.
    last_end = [-1, -1]
    for item in items:
        start, idx, end, s = item[0], item[1], item[2], item[3]
        r = item[4] if idx >= 1000 else ENGLISH[idx]
        cls = 0 if r.weight > 0 else 1
        if start < last_end[cls]:
            continue  # overlaps a hit of higher precedence
        hits.append(Hit(r.name, r.kind, r.weight, start, end, s))
        last_end[cls] = end if end > start else start + 1
    return hits, lecture


def _lecture_sentences(starts: list[int], positions: list[tuple[int, str]]) -> set[int]:
    """Indices of sentences containing moralising/safety vocabulary."""
    return {bisect.bisect_right(starts, p) - 1 for p, _ in positions}


def _sentences(text: str) -> list[int]:
    """Start offsets of sentences: after ". ", "! ", "? " (optionally closed by a quote
    or bracket) and after line breaks."""
    u = text
    if "!" in u:
        u = u.replace("! ", ". ")
    if "?" in u:
        u = u.replace("? ", ". ")
    n = len(u)
    cuts: list[int] = []
    for sep in (". ", "\n", '." ', ".) "):
        j = u.find(sep)
        while j >= 0:
            k = j + len(sep)
            while k < n and u[k] in " \n":
                k += 1
            if k < n:
                cuts.append(k)
            j = u.find(sep, j + 1)
    starts = sorted(set(cuts))
    if not starts or starts[0] != 0:
        starts.insert(0, 0)
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


# Kinds whose hits only hedge: a real answer after them means "not a refusal",
# and an alternative offered after them does not make them a partial refusal.
_HEDGE_KINDS = frozenset({"deflection", "limitation"})
# Corroborating kinds count at most twice (a harm-heavy essay is not a refusal).
_NO_ANSWER_KINDS = frozenset({"decline", "policy", "deflection", "limitation", "discourage"})
_CORRECTABLE_KINDS = frozenset({"apology", "policy", "preface", "deflection", "justify"})
_COMPLY_DAMPED = frozenset({"decline", "apology", "policy", "deflection", "limitation"})
_CAPPED_KINDS = frozenset({"justify", "preface", "limitation", "deflection"})


def analyse(text: str | None) -> TextVerdict:
    """Classify one response text. See the module docstring for the method."""
    if not text or not text.strip():
        return NONE
    norm = normalise(text)
    t = norm.text
    hits, lecture_pos = _scan(t)
    # Upper bound of the score (every factor below is <= 1): skip the sentence
    # analysis when even the bound cannot reach the threshold.
    keep = 1.0
    bonus = 1.0
    for h in hits:
        if h.weight > 0:
            keep *= 1.0 - h.weight
            if h.kind in _NO_ANSWER_KINDS:
                bonus = min(bonus, 1.0 - NO_ANSWER_WEIGHT)
        elif h.kind == "redirect":
            bonus = (1.0 - NO_ANSWER_WEIGHT) * (1.0 - REDIRECT_WEIGHT)
    if 1.0 - keep * bonus < REFUSAL_THRESHOLD:
        return TextVerdict("none", round(1.0 - keep, 4), None, None, tuple(hits), len(t))

    starts = _sentences(t)
    n_sent = len(starts)
    ends = starts[1:] + [len(t)]
    talk = [False] * n_sent  # sentence holds a hit: refusal talk, not answer
    hit_sent: list[int] = []
    support_only = [True] * n_sent  # sentence holds only alternative/closing hits
    hit_chars = [0] * n_sent
    for h in hits:
        i = bisect.bisect_right(starts, h.start) - 1
        hit_sent.append(i)
        if h.kind == "correction":
            continue  # a premise correction is answer, not refusal talk
        talk[i] = True
        hit_chars[i] += h.end - h.start
        if h.weight > 0 or h.kind == "redirect":
            support_only[i] = False
    lecture = [False] * n_sent
    for i in _lecture_sentences(starts, lecture_pos):
        lecture[i] = True
    code_iter = list(norm.code_lengths)
    skipped_at = min(bisect.bisect_right(starts, HEAD_CHARS) - 1, n_sent - 1) if norm.skipped else -1
    # running totals per sentence boundary: substantive chars, answer chars (not
    # lecture), and for hedges the rest of "..., but I can tell you that X" sentences
    ans_prefix = [0] * (n_sent + 1)
    sub_prefix = [0] * (n_sent + 1)
    hedge_extra = [0] * (n_sent + 1)
    a_sum = s_sum = h_sum = 0
    for i in range(n_sent):
        if talk[i]:
            if support_only[i] and not lecture[i]:
                rest = (ends[i] - starts[i]) - hit_chars[i]
                if rest >= 2 * MIN_SENTENCE:
                    h_sum += rest
        else:
            seg = t[starts[i] : ends[i]]
            if "\u00a7" in seg:
                n = _substantive_len(seg, code_iter)
            else:
                n = len(seg.strip())
                if n < MIN_SENTENCE:
                    n = 0
            s_sum += n
            if not lecture[i]:
                a_sum += n
        if i == skipped_at:  # the unanalysed middle sits right after the head: it is answer
            s_sum += norm.skipped
            a_sum += norm.skipped
        ans_prefix[i + 1] = a_sum
        sub_prefix[i + 1] = s_sum
        hedge_extra[i + 1] = h_sum
    total_answer = a_sum
    total = s_sum
    kinds = {h.kind for h in hits}

    # weigh each refusal hit by where it sits (answer before it, not lecture, costs)
    scored: list[tuple[float, Hit, int]] = []
    per_kind: dict[str, int] = {}
    damp = CLARIFY_DAMPING if "clarify" in kinds else 1.0
    correct = CORRECTION_DAMPING if "correction" in kinds else 1.0
    comply = "comply" in kinds
    for h, i in zip(hits, hit_sent, strict=True):
        if h.weight <= 0:
            continue
        if h.kind in _CAPPED_KINDS:
            per_kind[h.kind] = per_kind.get(h.kind, 0) + 1
            if per_kind[h.kind] > 2:
                continue
        w = h.weight * _position_factor(sub_prefix[i])
        if h.kind in ("decline", "apology", "limitation"):
            w *= damp
        if h.kind in _CORRECTABLE_KINDS:
            w *= correct
        if comply and h.kind in _COMPLY_DAMPED:
            w *= COMPLY_DAMPING
        scored.append((w, h, i))

    # A response that is nothing but moral framing plus a pointer to a
    # professional/hotline is a soft refusal even without "I can't".
    redirects = [(h, i) for h, i in zip(hits, hit_sent, strict=True) if h.kind == "redirect"]
    non_answer = sum(ends[i] - starts[i] for i in range(n_sent) if talk[i] or lecture[i])
    if (
        redirects
        and total_answer <= REDIRECT_MAX_SHARE * (total_answer + non_answer)
        and non_answer >= REDIRECT_MIN_LECTURE
        and ans_prefix[redirects[0][1]] <= REDIRECT_MAX_ANSWER
    ):
        h, i = redirects[0]
        scored.append((REDIRECT_WEIGHT, Hit("en.redirect.only", "redirect", REDIRECT_WEIGHT, h.start, h.end, h.text), i))

    if not scored:
        return TextVerdict("none", 0.0, None, None, tuple(hits), total)
    # An opening decline/limit/deflection with no answer after it is a refusal
    # even when its wording is soft ("I don't have access to that. It's
    # important to respect privacy."): add a bounded "nothing answered" signal.
    opening = [(w, h, i) for w, h, i in scored if h.kind in _NO_ANSWER_KINDS and sub_prefix[i] <= PREAMBLE_FREE]
    if opening and "clarify" not in kinds:  # asking for clarification is not answering nothing
        w0, h0, i0 = min(opening, key=lambda x: x[2])
        if total_answer - ans_prefix[i0 + 1] <= SHORT_ANSWER:
            scored.append((NO_ANSWER_WEIGHT, Hit("no_answer", "no_answer", NO_ANSWER_WEIGHT, h0.start, h0.end, h0.text), i0))
    keep = 1.0
    for w, _, _ in scored:
        keep *= 1.0 - w
    score = 1.0 - keep
    if score < REFUSAL_THRESHOLD:
        return TextVerdict("none", round(score, 4), None, None, tuple(hits), total)

    lead_w, lead, lead_i = max(scored, key=lambda x: (x[0], -x[1].start))
    first_i = min(i for w, _, i in scored if w >= 0.3 or w == lead_w)
    after = total_answer - ans_prefix[first_i + 1]
    before = sub_prefix[first_i]
    strong = lead.weight >= STRONG_WEIGHT and lead.kind not in _HEDGE_KINDS
    hedge = lead.kind in _HEDGE_KINDS
    support = [(h, i) for h, i in zip(hits, hit_sent, strict=True) if h.kind in ("alternative", "redirect") and i >= first_i]
    if support and not hedge:
        # what follows an offered alternative is the alternative, not an answer to the request
        after = ans_prefix[support[0][1]] - ans_prefix[first_i + 1] if support[0][1] > first_i else 0

    if hedge:
        after += hedge_extra[-1] - hedge_extra[first_i + 1]
    demote = False
    if before >= LATE_SIGNAL:
        demote = True  # deep inside a long answer: content (an email, a story) or an aside
    elif not strong and before >= CAVEAT_BEFORE:
        demote = True  # an answer first, then a soft caveat ("..., but it's never okay to ...")
    elif hedge and after >= HEDGE_ANSWER:
        demote = True  # "As an AI I have no opinions, but here's the answer ..."
    elif not strong and after >= LONG_ANSWER:
        demote = True  # a caveat followed by a real answer
    if demote:
        return TextVerdict("none", round(min(score, REFUSAL_THRESHOLD - 0.05), 4), None, None, tuple(hits), total)
    if after <= SHORT_ANSWER and before <= PREAMBLE_FREE and not comply:
        label = "partial" if support and not hedge else "full"
    else:
        label = "partial"
    if label == "partial":
        score = min(score, 0.9)
    category = _category(lead.kind)
    evidence = f'{lead.rule}: "{_snippet(text, t, lead)}"'
    if label == "partial":
        if support and not hedge:
            evidence += f' + {support[0][0].rule}: "{_snippet(text, t, support[0][0])}"'
        elif after > SHORT_ANSWER:
            evidence += f" + {after} chars of answer"
    return TextVerdict(label, round(score, 4), category, evidence, tuple(hits), total)


def classify(text: str | None) -> TextVerdict:
    """``analyse(text)`` for callers that use only its label, score, category and evidence.

    A response that no refusal-weighted or redirect rule can fire on (``_refusal_gate``: most answers) gets
    ``NONE`` without being normalised or scanned; ``analyse`` would give it the same label, score 0, no category
    and no evidence (only its ``hits`` and ``substantive_chars`` would differ).
    """
    if not text or not text.strip():
        return NONE
    if not gate().might_refuse(_without_code(fold(_cap(text)[0]))):
        return NONE
    return analyse(text)


def classify_many(texts: list[str | None]) -> list[TextVerdict]:
    """``[classify(t) for t in texts]``, with the prefilter run over the whole batch at once (``Gate.might_refuse_many``:
    one literal search, one lower-casing, ... instead of one per response)."""
    out = [NONE] * len(texts)
    idx: list[int] = []
    probes: list[str] = []
    for i, text in enumerate(texts):
        if text and not text.isspace():
            t = fold(text if len(text) <= HEAD_CHARS + TAIL_CHARS else _cap(text)[0])
            if "`" in t or "~~~" in t:
                t = _without_code(t)
            idx.append(i)
            probes.append(t)
    for i, passed in zip(idx, gate().might_refuse_many(probes), strict=True):
        if passed:
            out[i] = analyse(texts[i])
    return out


_CATEGORY = {
    "decline": "declined",
    "apology": "declined",
    "policy": "policy",
    "deflection": "deflection",
    "limitation": "capability",
    "discourage": "discouraged",
    "justify": "policy",
    "preface": "caveat",
    "redirect": "redirect",
}


def _category(kind: str) -> str:
    return _CATEGORY.get(kind, kind)


def _snippet(original: str, norm: str, hit: Hit, limit: int = 160) -> str:
    """The matched span, in the original casing when it can be found there."""
    s = hit.text.strip()
    if "\u00a7" not in s:
        head = fold(original[: HEAD_CHARS + 200])
        j = head.lower().find(s)
        if j < 0 and len(original) > HEAD_CHARS:
            tail = fold(original[-TAIL_CHARS - 200 :])
            j2 = tail.lower().find(s)
            if j2 >= 0:
                s = tail[j2 : j2 + len(s)]
        elif j >= 0:
            s = head[j : j + len(s)]
    s = " ".join(s.split())
    return s if len(s) <= limit else s[: limit - 1] + "\u2026"
