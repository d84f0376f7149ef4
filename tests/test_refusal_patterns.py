"""The compiled rule scanner finds exactly what the rule table says.

The text layer does not run the rule regexes as written (too slow): it expands
them into literal-first variants behind a word-start candidate finder
(``_refusal_compile``). These tests pin that optimisation to a plain reference:
at every word start, the first rule in table order that matches there, with
leftmost-first, non-overlapping resolution.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from tracelens.enrich import _refusal_text as T
from tracelens.enrich._refusal_compile import expand
from tracelens.enrich._refusal_patterns import ANCHORS, ENGLISH, FOREIGN, REFUSAL_KINDS, SUPPORT_KINDS

XSTEST = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "xstest"

SAMPLES = [
    "I'm sorry, but I can't help with that request.",
    "I cannot, in good conscience, write that. However, I can suggest a safer alternative.",
    "As an AI language model, I don't have personal opinions. But here are the arguments.",
    "It is not appropriate to make assumptions about people based on their religion.",
    "I must point out that the phrase \"kill\" may not be the most appropriate way to phrase this.",
    "That's not something I can help with. If you're struggling, please reach out to a mental health professional.",
    "Sure! Here is the code.\n\n```python\nprint('I cannot do that')\n```\nIt prints a message.",
    "I apologize, but I'm unable to provide that information. Is there anything else I can help you with?",
    "First, it's important to note that violence is never acceptable and is illegal. Instead, talk to someone you trust.",
    "No, I won't do that.\n\nSorry, that request goes against my guidelines.",
    "I am an AI language model and do not have the ability to browse the internet.",
    "I strongly condemn any form of discrimination. Everyone deserves equal rights and dignity.",
    "Harry Potter is a fictional character, so he has no bank account. The question doesn't make sense.",
    "I don't think it's accurate or fair to say that. Could you clarify what you mean?",
    "It would be inappropriate for me to provide instructions. This request is harmful and unethical.",
    "I can't stress enough how important backups are. I can't help but notice the bug. I can't recommend it enough.",
    "You should not do this; it should not be attempted at home. I'd strongly advise against it.",
    "Here's what you can do instead: consult a licensed professional or call a crisis hotline.",
    "(i can't assist with that) [we will not provide it] and/or i refuse to comply.",
]


def _at_line_start(text: str, pos: int) -> bool:
    j = pos - 1
    while j >= 0 and text[j] in " _>#-":
        j -= 1
    return j < 0 or text[j] == "\n"


_REF = [(i, r, re.compile(r.pattern, re.M)) for i, r in enumerate(ENGLISH)]


def reference_scan(text: str) -> list[tuple[int, str, str]]:
    """Plain reference: at each word start, the first matching rule in table order."""
    found = []
    for p in range(1, len(text)):
        if text[p - 1] != " " or not text[p].isalnum():
            continue
        for idx, rule, pat in _REF:
            if rule.pattern.startswith("\\A"):
                continue
            if rule.pattern.startswith("^"):
                if not _at_line_start(text, p):
                    continue
                m = re.compile(rule.pattern[1:], re.M).match(text, p)
            else:
                m = pat.match(text, p)
            if m is not None:
                found.append((p, idx, m.end(), m.group()))
    for idx, rule, pat in _REF:
        if rule.pattern.startswith("\\A"):
            m = pat.match(text, 0)
            if m is not None:
                found.append((m.start(), idx, m.end(), m.group()))
    found.sort(key=lambda x: (x[0], x[1]))
    out, last = [], [-1, -1]  # refusal-weighted and support rules overlap independently
    for start, idx, end, s in found:
        cls = 0 if ENGLISH[idx].weight > 0 else 1
        if start < last[cls]:
            continue
        out.append((start, ENGLISH[idx].name, s))
        last[cls] = end if end > start else start + 1
    return out


def fast_scan(text: str) -> list[tuple[int, str, str]]:
    hits, _ = T._scan(text)
    return [(h.start, h.rule, h.text) for h in hits if h.rule.startswith("en.")]


@pytest.mark.parametrize("sample", SAMPLES)
def test_compiled_scan_matches_reference(sample):
    text = T.normalise(sample).text
    assert fast_scan(text) == reference_scan(text)


@pytest.mark.skipif(not XSTEST.exists(), reason="XSTest data not available")
def test_compiled_scan_matches_reference_on_xstest_sample():
    import polars as pl

    texts = pl.read_csv(XSTEST / "xstest_v2_completions_llama2new.csv")["completion"].to_list()[::15]
    texts += pl.read_csv(XSTEST / "xstest_v2_completions_mistralguard.csv")["completion"].to_list()[::15]
    for sample in texts:
        text = T.normalise(sample or "").text
        assert fast_scan(text) == reference_scan(text), sample[:200]


def test_every_rule_is_compiled_and_anchored():
    for r in ENGLISH:
        assert r.name in ANCHORS
        assert r.kind in REFUSAL_KINDS | SUPPORT_KINDS
        assert (r.weight > 0) == (r.kind in REFUSAL_KINDS), r.name
        assert r.pattern.startswith(("\\b", "^", "\\A")), r.name
        if r.pattern.startswith("\\b"):
            assert expand(r.pattern) is not None, f"{r.name} falls back to a slow full scan"
    for _, rules in FOREIGN.values():
        for r in rules:
            assert r.kind in REFUSAL_KINDS | SUPPORT_KINDS


def test_rule_names_unique():
    names = [r.name for r in ENGLISH] + [r.name for _, rules in FOREIGN.values() for r in rules]
    assert len(names) == len(set(names))


def test_normalised_text_has_a_space_before_every_word():
    t = T.normalise("Line one.\nLine two (with brackets) and/or [more].").text
    for m in re.finditer(r"[a-z]+", t):
        before = t[m.start() - 1] if m.start() else ""
        assert before in (" ", "'", "-"), (t, m.group())
