"""Prefilter of the refusal text layer: rule out, cheaply, responses no refusal rule can fire on.

Contract: ``gate().might_refuse(low) -> bool``, where ``low`` is the head and
tail of a response folded, its code replaced and lower-cased as the
normaliser does (``_refusal_text.classify`` builds it), is False only when no
rule that carries refusal weight, and no redirect rule, can match anywhere in
``_refusal_text.normalise(text)``. ``analyse`` then labels the text ``none``
with score 0 (nothing enters its noisy-OR, and only a redirect can raise its
upper bound), so ``classify`` returns that without normalising or scanning.
A wrong False would change a label; a wrong True only costs time (the full
analysis runs). tests/test_refusal_gate.py compares ``classify`` with
``analyse`` on a generated corpus, the sample logs and, when present, XSTest
and ShareGPT responses.

Why: most production responses are answers. Normalising (quote, dialogue and
blockquote stripping) and scanning cost ~60 µs for a 1 KB response; this is
one lower-cased copy and one pass of a literal search.

How, and why it is sound:

1. Literals. Every weighted/redirect English rule is expanded into literal
   prefixes, two words or more where the variant budget allows ("i can't",
   "as an ai", "sorry, but"; ``_refusal_compile._expand`` with ``min_len``),
   cut before any character a placeholder or the normaliser's spacing could
   touch (``_UNSAFE``) and before a trailing space: every match of the rule
   in the normalised text starts with one of them, at a word start. Foreign
   tables get their trigger words, as in the scanner. One search (an
   Aho-Corasick automaton, or one regex without pyahocorasick) finds them.
2. The probe text is ``" " + low``, with runs of spaces inside a line made
   single. The normalised text differs from it only by placeholders (which
   hold ``§``; the code placeholders are already in ``low``), by a space
   inserted after line breaks and ``( [ /``, and by single spaces. So a
   literal found in the normalised text at a word start is in the probe text
   after one of the lead-in characters ``_LEAD_INS`` (a space, a line break,
   an opener, or the closing quote or backtick of a replaced passage).
3. Checks. Where a literal is found, the rule's own pattern, without its
   look-arounds and ``\\b`` (they look at neighbours that may differ), runs
   anchored there, for every rule whose matches consist of plain characters
   and cannot span a ``§`` (``_checkable``): such a match is in the probe
   text as it is. Other rules count when one of their hand-written anchors
   (``ANCHORS``, checked per rule by the tests) occurs. Rules bound to the
   start of the text count when an anchor occurs within their reach of it.
"""

from __future__ import annotations

import re

try:  # the same search in C; without it the gate runs one regex (about twice as long; docs/refusal.md)
    import ahocorasick
except ImportError:  # pragma: no cover - depends on the installation
    ahocorasick = None

from tracelens.enrich._refusal_compile import _class_end, _expand, _TooMany, _trie_regex, expand, group_end, split_top
from tracelens.enrich._refusal_patterns import ENGLISH, FOREIGN, FOREIGN_TOKENS, Rule

# Literal prefixes are expanded to at least this many characters (then to the end of that word); fewer when a
# rule has too many variants for that depth.
GATE_DEPTHS = (8, 5)
_UNSAFE = ("\u00a7", '"', "`", "(", "[", "/", "\n", "code")


def _gated(rule: Rule) -> bool:
    """A rule the gate must let through: it carries refusal weight or is a redirect (raises analyse's bound)."""
    return rule.weight > 0 or rule.kind == "redirect"


def _literals(pattern: str) -> set[str] | None:
    """Literal prefixes, one of which starts every match of the ``\\b``-led ``pattern``; None if it cannot expand.

    The deepest of ``GATE_DEPTHS`` whose expansion stays within the variant budget; else the scanner's own leads.
    """
    for depth in (*GATE_DEPTHS, None):
        out: list[tuple[str, str, bool]] = []
        if depth is None:
            out = expand(pattern) or []
            if not out:
                return None
        else:
            try:
                for piece in split_top(pattern):
                    if not piece.startswith("\\b"):
                        return None
                    _expand("", piece[2:], out, 0, depth)
            except _TooMany:
                continue
        lits = set()
        for prefix, _, _ in out:
            cut = min([prefix.find(u) for u in _UNSAFE if u in prefix] or [len(prefix)])
            # a space after the literal may be the start of a placeholder (a quoted passage, a code span)
            lit = prefix[:cut].rstrip(" ")
            if not lit or not lit[0].isalnum():
                return None
            lits.add(lit)
        return lits
    return None


def _max_width(pattern: str) -> int | None:
    """The most characters a match of ``pattern`` spans in normalised text (single spaces), or None if unbounded."""
    single = pattern.replace("[ ]+", " ").replace("[ ]*", "[ ]?").replace("[ ,]+", "[ ,]{1,2}")
    hi = re._parser.parse(single).getwidth()[1]  # type: ignore[attr-defined]
    return None if hi >= re._constants.MAXREPEAT else hi  # type: ignore[attr-defined]


_PLAIN = frozenset("abcdefghijklmnopqrstuvwxyz0123456789' ,.!?;:-")


def _checkable(pattern: str) -> bool:
    """True when every match of ``pattern`` in normalised text is in the probe text as it is, from the same word
    start: its characters are plain (no ``§``, quote, opener or line break) and no class can match a ``§``, so a
    match never spans a placeholder the probe text lacks (its code placeholders are the normaliser's own)."""
    def ok(items) -> bool:  # noqa: ANN001 - sre's parse tree
        for op, av in items:
            name = str(op)
            if name == "LITERAL":
                if chr(av) not in _PLAIN:
                    return False
            elif name == "IN":
                for o, v in av:
                    if str(o) == "LITERAL":
                        if chr(v) not in _PLAIN:
                            return False
                    elif str(o) == "RANGE":
                        lo, hi = chr(v[0]), chr(v[1])
                        if not (("a" <= lo <= hi <= "z") or ("0" <= lo <= hi <= "9")):
                            return False
                    else:
                        return False
            elif name == "BRANCH":
                if not all(ok(b) for b in av[1]):
                    return False
            elif name == "SUBPATTERN":
                if not ok(av[-1]):
                    return False
            elif name in ("MAX_REPEAT", "MIN_REPEAT", "POSSESSIVE_REPEAT"):
                if not ok(av[2]):
                    return False
            elif name not in ("ASSERT", "ASSERT_NOT", "AT"):
                return False
        return True

    return ok(re._parser.parse(pattern))  # type: ignore[attr-defined]


def _without_conditions(pattern: str) -> str:
    """``pattern`` without its look-arounds, ``\\b`` and ``^``: it matches wherever the rule does, and more (the
    conditions look at characters that may differ between the probe text and the normalised text)."""
    out: list[str] = []
    i = 0
    while i < len(pattern):
        ch = pattern[i]
        if ch == "\\":
            if pattern[i + 1] != "b":
                out.append(pattern[i : i + 2])
            i += 2
        elif ch == "[":
            j = _class_end(pattern, i)
            out.append(pattern[i : j + 1])
            i = j + 1
        elif pattern.startswith(("(?!", "(?=", "(?<!", "(?<="), i):
            i = group_end(pattern, i) + 1
        elif ch == "^":
            i += 1
        else:
            out.append(ch)
            i += 1
    return "".join(out)


def _safe_anchor(a: str) -> str:
    a = a.strip(" ")
    if not a or any(u in a for u in _UNSAFE):
        raise ValueError(f"anchor {a!r} cannot be checked on the probe text")
    return a


class Gate:
    """The compiled prefilter (see the module docstring); ``might_refuse(low)`` answers for one response."""

    def __init__(self, backend: str | None = None) -> None:
        by_literal: dict[str, set[int]] = {}
        self.anchors: list[tuple[str, ...]] = []  # per gated rule
        # per gated rule: its pattern as the probe text can be checked with at a literal (see _checkable), or None
        self.check: list[str | None] = []
        self._compiled: dict[int, re.Pattern[str]] = {}
        always: list[str] = []  # anchors of rules that are not expanded: one of them lets the text through
        self.opening: list[str] = []  # anchors of rules bound to the start of the text
        self.opening_width = 0  # ...and how far into the text their matches reach
        for r in ENGLISH:
            if not _gated(r):
                continue
            pattern = r.pattern
            if pattern.startswith("^"):
                pattern = "\\b" + pattern[1:].lstrip()
            anchors = tuple(_safe_anchor(a) for a in r.anchors)
            if pattern.startswith("\\A[ \\n]*"):
                width = _max_width(pattern[len("\\A[ \\n]*") :])
                if width is not None and anchors:
                    self.opening.extend(anchors)
                    self.opening_width = max(self.opening_width, width)
                    continue
            lits = None if pattern.startswith("\\A") else _literals(pattern)
            if lits is None:
                if not anchors:
                    raise ValueError(f"rule {r.name} has neither literal prefixes nor anchors")
                always.extend(anchors)
                continue
            k = len(self.anchors)
            self.anchors.append(anchors)
            self.check.append(_without_conditions(pattern) if _checkable(pattern) else None)
            for lit in lits:
                by_literal.setdefault(lit, set()).add(k)
        self.always = tuple(sorted(set(always)))
        # foreign trigger words (whole words, as the scanner finds them) let the text through on their own
        langs = [lang for lang, (_, rules) in FOREIGN.items() if any(_gated(r) for r in rules)]
        foreign = sorted({w for lang in langs for w in FOREIGN_TOKENS[lang]})
        whole = {w for w in foreign if w not in by_literal}  # an English literal already finds the others anywhere
        if foreign:
            k = len(self.anchors)
            self.anchors.append(("",))  # "" is in every text
            self.check.append(None)
            for w in foreign:
                by_literal.setdefault(w, set()).add(k)
        # a literal whose shorter prefix is a literal of the same rules adds nothing: wherever it occurs, so does the
        # prefix (fewer literals: a smaller regex, compiled faster)
        for lit in sorted(by_literal, key=len, reverse=True):
            ks = by_literal[lit]
            if any(
                lit[:n] in by_literal and lit[:n] not in whole and by_literal[lit[:n]] >= ks for n in range(1, len(lit))
            ):
                del by_literal[lit]
        self.whole = frozenset(whole)  # literals that must end a word
        # The finder reports the longest literal at a word start: it stands for every literal that is a prefix of
        # it. Per literal: (rule, True when the literal itself holds one of the rule's anchors).
        self.rules_of: dict[str, tuple[tuple[int, bool], ...]] = {}
        for lit in by_literal:
            closure: set[int] = set()
            for n in range(1, len(lit) + 1):
                if lit[:n] not in self.whole or n == len(lit) or lit[n] not in _WORD_CHARS:
                    closure.update(by_literal.get(lit[:n], ()))
            self.rules_of[lit] = tuple((k, any(a in lit for a in self.anchors[k])) for k in sorted(closure))
        self.backend = backend or ("ahocorasick" if ahocorasick is not None else "re")
        if self.backend == "ahocorasick":
            if ahocorasick is None:
                raise ImportError("the ahocorasick backend needs pyahocorasick")
            auto = ahocorasick.Automaton()
            for lit, rules in self.rules_of.items():
                # the automaton reports every literal found, so a literal stands only for its own rules here
                own = tuple((k, implied) for k, implied in rules if k in by_literal[lit])
                for lead in _LEAD_INS:
                    auto.add_word(lead + lit, (len(lit), own, lit in self.whole))
            auto.make_automaton()
            self._auto = auto
        else:
            words = sorted(by_literal)
            # A lead-in character, then a look-ahead: zero-width, so that every word start is visited, even one
            # inside a longer literal's match.
            lead = "[" + re.escape("".join(_LEAD_INS)) + "]"
            self._finder = re.compile(lead + "(?=(" + _trie_regex(words, set(words), set(self.whole), {}) + "))")

    def might_refuse(self, low: str) -> bool:
        """False when no gated rule can match ``normalise(text)``; ``low`` is the head and tail of ``text``, folded,
        code replaced as the normaliser does, lower-cased (``_refusal_text.classify``)."""
        probe = probe_text(low)
        for a in self.always:
            if a in probe:
                return True
        if self.opening:
            head = probe.lstrip(" \n")[: self.opening_width]
            for a in self.opening:
                if a in head:
                    return True
        anchors = self.anchors
        check = self.check
        rules_of = self.rules_of
        if self.backend == "ahocorasick":
            n = len(probe)
            hits = (
                (end - length + 1, rules)
                for end, (length, rules, whole) in self._auto.iter(probe)
                if not (whole and end + 1 < n and probe[end + 1] in _WORD_CHARS)
            )
        else:
            hits = ((m.start(1), rules_of[m.group(1)]) for m in self._finder.finditer(probe))
        for pos, rules in hits:
            for k, implied in rules:
                if check[k] is not None:
                    rx = self._compiled.get(k)
                    if rx is None:
                        rx = self._compiled[k] = re.compile(check[k])  # type: ignore[arg-type]
                    if rx.match(probe, pos) is not None:
                        return True
                elif implied:
                    return True
                else:
                    for a in anchors[k]:
                        if a in probe:
                            return True
        return False


_WORD_CHARS = frozenset("abcdefghijklmnopqrstuvwxyz0123456789'")


# Characters after which the normalised text may have a word start: a space, a line break, an opener it puts a
# space after, and the closing quote or backtick of a passage it replaces (module docstring).
_LEAD_INS = (" ", "\n", "(", "[", "/", '"', "`")
_MID_LINE_RUN = re.compile("  (?<=[^ \n]  )")  # two spaces inside a line (indentation is harmless)
_SPACES = re.compile(" {2,}")


def probe_text(low: str) -> str:
    """The text the gate searches: ``" " + low``, with runs of spaces inside a line made single (a literal's
    space is one space in the normalised text), which is rare enough to be checked for first."""
    probe = " " + low
    if "  " in probe and _MID_LINE_RUN.search(probe) is not None:
        probe = _SPACES.sub(" ", probe)
    return probe


_GATE: Gate | None = None


def gate() -> Gate:
    """The process's ``Gate``, built on first use (a fraction of a second), not at import."""
    global _GATE
    if _GATE is None:
        _GATE = Gate()
    return _GATE
