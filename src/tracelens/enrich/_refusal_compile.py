"""Compile the English rule table into fast literal-first regexes.

Contract: ``compile_table(rules, lecture_terms, foreign_tokens) -> Table``;
``Table.scan(text)`` returns ``(hits, lecture, langs)``: every
``(start, rule_index, end, matched_text)`` where a rule matches at a word start
of the normalised ``text``, the positions of moralising vocabulary, and the
foreign languages whose trigger words occur. The caller resolves overlaps.
``text`` must have a space before every word (the normaliser guarantees it).
tests/test_refusal_patterns.py checks the result against a plain reference
that tries every rule, as written, at every word start.

Why: CPython's regex engine scans fast only for a pattern that starts with a
literal; a pattern that starts with ``\\b`` or an alternation is tried at every
position, and a table of ~90 such rules costs milliseconds per response. So:

1. Each ``\\b``-led rule is expanded into literal-first variants
   (``\\b(?:i|we)[ ]+can't`` -> ``i can't``, ``we can't``): ``[ ]+`` becomes
   one space, ``[ ,]+`` becomes " ", ", " or ",", an optional character or
   group becomes both choices, a leading alternation one variant per branch,
   until the variant's first word (two words when the first is very common,
   such as "the" or "is") is complete.
2. Variants are grouped by their lead into regexes of the form
   ``lead(?<!\\w.{n})(?:rest1|rest2|...)`` (the look-behind re-checks the word
   boundary), and all groups of one first word are merged into one regex.
3. One "finder" regex, a space followed by a character trie of all first
   words (plus moralising vocabulary and foreign trigger words), visits every
   word start of the response; a common first word is only reported where one
   of its second words follows (a look-ahead). Each reported word runs its
   merged regex anchored there.

Rules anchored at a line start (``^``) run only for words at a line start;
``\\A`` rules only at the start of the text. A rule that cannot be expanded
runs as written, gated on its literal anchors.
"""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass, field

from tracelens.enrich._refusal_patterns import Rule

_META = frozenset("\\()[]{}?*+|.^$")
_TOKEN_END = frozenset(" ,.!?;:")
MAX_VARIANTS = 3000  # per rule; beyond this a rule is run as written (slowly)
GATE_MAX_VARIANTS = 3000  # per rule and depth of the refusal gate's literals; beyond this it tries a shallower depth


@functools.lru_cache(maxsize=8192)  # expansion asks the same questions of the same suffixes
def _class_end(s: str, i: int) -> int:
    """Index of the "]" closing the character class that opens at s[i]."""
    j = i + 1
    if j < len(s) and s[j] == "^":
        j += 1
    if j < len(s) and s[j] == "]":
        j += 1
    while s[j] != "]":
        j += 2 if s[j] == "\\" else 1
    return j


@functools.lru_cache(maxsize=8192)  # expansion asks the same questions of the same suffixes
def group_end(s: str, i: int) -> int:
    """Index of the ")" closing the group that opens at s[i]."""
    depth = 0
    j = i
    while j < len(s):
        ch = s[j]
        if ch == "\\":
            j += 2
            continue
        if ch == "[":
            j = _class_end(s, j)
        elif ch == "(":
            depth += 1
        elif ch == ")":
            depth -= 1
            if depth == 0:
                return j
        j += 1
    raise ValueError(f"unbalanced group in {s!r}")


@functools.lru_cache(maxsize=8192)  # expansion asks the same questions of the same suffixes
def split_top(s: str) -> tuple[str, ...]:
    """Split a regex on "|" at nesting depth 0."""
    parts: list[str] = []
    depth = 0
    start = 0
    j = 0
    while j < len(s):
        ch = s[j]
        if ch == "\\":
            j += 2
            continue
        if ch == "[":
            j = _class_end(s, j)
        elif ch == "(":
            depth += 1
        elif ch == ")":
            depth -= 1
        elif ch == "|" and depth == 0:
            parts.append(s[start:j])
            start = j + 1
        j += 1
    parts.append(s[start:])
    return tuple(parts)  # immutable: results are cached


class _TooMany(Exception):
    pass


def _expand(prefix: str, rest: str, out: list[tuple[str, str, bool]], depth: int = 0, min_len: int = 0) -> None:
    """Append (literal prefix, remaining regex, first word complete) for every expansion.

    ``min_len`` > 0 asks for longer literals (the refusal gate's): expansion goes on past the first word until the
    prefix holds two words, ``min_len`` characters or more, and ends a word; skips ``\\b`` (a condition, not a character) and expands
    any short character class.
    """
    if len(out) > (GATE_MAX_VARIANTS if min_len else MAX_VARIANTS) or depth > (80 if min_len else 40):
        raise _TooMany
    if min_len:
        if len(prefix) >= min_len and prefix[-1] in _TOKEN_END and " " in prefix.strip(" ,"):
            out.append((prefix, rest, True))
            return
        if rest.startswith("\\b"):
            _expand(prefix, rest[2:], out, depth + 1, min_len)
            return
        if rest.startswith(("(?!", "(?=", "(?<!", "(?<=")):  # a look-around is a condition too
            _expand(prefix, rest[group_end(rest, 0) + 1 :], out, depth + 1, min_len)
            return
        if rest.startswith("[") and not rest.startswith("[ ") and not rest.startswith("[^"):
            end = _class_end(rest, 0)
            body = rest[1:end]
            q = rest[end + 1 : end + 2]
            if q not in ("*", "+", "{", "?") and "\\" not in body and "-" not in body and len(body) <= 4:
                for c in body:
                    _expand(prefix + c, rest[end + 1 :], out, depth + 1, min_len)
                return
    elif prefix and _lead_done(prefix):
        out.append((prefix, rest, True))
        return
    if rest.startswith("(?:"):
        end = group_end(rest, 0)
        after = rest[end + 1 :]
        q = after[:1]
        if q in ("*", "+", "{"):
            out.append((prefix, rest, False))
            return
        if q == "?":
            after = after[1:]
            if after.startswith("?"):  # lazy optional: keep as written
                out.append((prefix, rest, False))
                return
        for alt in split_top(rest[3:end]):
            _expand(prefix, alt + after, out, depth + 1, min_len)
        if q == "?":
            _expand(prefix, after, out, depth + 1, min_len)
        return
    if rest.startswith("[ ]+"):
        _expand(prefix + " ", rest[4:], out, depth + 1, min_len)
        return
    if rest.startswith("[ ,]+"):
        for sep in (" ", ", ", ","):
            _expand(prefix + sep, rest[5:], out, depth + 1, min_len)
        return
    if rest.startswith("[ ]*"):
        _expand(prefix, rest[4:], out, depth + 1, min_len)
        _expand(prefix + " ", rest[4:], out, depth + 1, min_len)
        return
    if rest.startswith("["):
        end = _class_end(rest, 0)
        body = rest[1:end]
        q = rest[end + 1 : end + 2]
        if q not in ("*", "+", "{", "?") and body.isalpha() and len(body) <= 4:
            for c in body:
                _expand(prefix + c, rest[end + 1 :], out, depth + 1, min_len)
            return
        out.append((prefix, rest, False))
        return
    if rest.startswith("\\b"):
        # the word ends here; for a common first word keep going to the next word
        if prefix and prefix[-1].isalnum() and prefix.split(" ")[0] in COMMON_WORDS and " " not in prefix.strip():
            rest2 = rest[2:]
            if rest2.startswith("[ ]+") or rest2.startswith(" ") or rest2.startswith("(?:") or rest2.startswith("[ ,]+"):
                _expand(prefix, rest2, out, depth + 1, min_len)
                return
        out.append((prefix, rest, bool(prefix) and prefix[-1].isalnum()))
        return
    if not rest:
        out.append((prefix, rest, True))
        return
    if rest[0] == "\\" and len(rest) > 1 and not rest[1].isalnum() and rest[2:3] not in ("?", "*", "+", "{"):
        _expand(prefix + rest[1], rest[2:], out, depth + 1, min_len)  # an escaped punctuation character is a literal
        return
    c = rest[0]
    if c in _META:
        out.append((prefix, rest, False))
        return
    q = rest[1:2]
    if q == "?":
        _expand(prefix + c, rest[2:], out, depth + 1, min_len)
        _expand(prefix, rest[2:], out, depth + 1, min_len)
        return
    if q in ("*", "+", "{"):
        out.append((prefix, rest, False))
        return
    _expand(prefix + c, rest[1:], out, depth + 1, min_len)


def expand(pattern: str) -> list[tuple[str, str, bool]] | None:
    """Literal-first expansions of a ``\\b``-led pattern, or None."""
    out: list[tuple[str, str, bool]] = []
    try:
        for piece in split_top(pattern):
            if not piece.startswith("\\b"):
                return None
            _expand("", piece[2:], out)
    except _TooMany:
        return None
    if any(not p or not p[0].isalnum() for p, _, _ in out):
        return None
    return out


# Words so common that a rule starting with one is looked for by its first two
# words ("the question", "is illegal"): otherwise every "the" in a response
# would cost a regex call.
COMMON_WORDS = frozenset(
    (
        "the", "a", "an", "that", "this", "these", "those", "your", "is", "are", "be", "was", "were", "it", "it's",
        "can", "as", "not", "if", "such", "there", "how", "would", "do", "could", "here", "should", "help", "support",
        "to", "of", "in", "on", "for", "and", "or", "with", "you",
    )
)


def _lead_done(prefix: str) -> bool:
    """True once the prefix holds a complete lead: one word plus its separator, or
    two words when the first is a common word."""
    ends = [i for i, c in enumerate(prefix) if c in _TOKEN_END and i > 0]
    if not ends:
        return False
    first = prefix[: ends[0]]
    if first not in COMMON_WORDS:
        return True
    # a second word followed by a separator
    return any(prefix[ends[0] + 1 : i].strip(" ,") for i in ends[1:])


def _first_word(prefix: str) -> tuple[str, str]:
    """(lead word(s), literal lead): the lead also keeps the separator after the word(s)."""
    ends = [i for i, c in enumerate(prefix) if c in _TOKEN_END and i > 0]
    if prefix and prefix[-1] not in _TOKEN_END:
        ends.append(len(prefix))  # a complete prefix ends a word even without a separator
    if not ends:
        return prefix, prefix
    if prefix[: ends[0]] in COMMON_WORDS:
        for i in ends[1:]:
            if prefix[ends[0] + 1 : i].strip(" ,"):
                return prefix[:i], prefix[: i + 1]
    return prefix[: ends[0]], prefix[: ends[0] + 1]


_TOKEN_CHARS = "abcdefghijklmnopqrstuvwxyz0123456789'"


@dataclass(frozen=True)
class _Group:
    lead: str  # literal the group's regex starts with
    source: str  # its regex source (compiled only as part of a literal's merged regex)
    names: dict[str, int]
    line_start: bool = False  # from a "^" rule: only counts at the start of a line


@dataclass
class _Literal:
    """A word-start literal the candidate finder looks for, and what to do on a hit."""

    text: str
    whole_word: bool  # must be followed by a non-word character
    groups: list[int]
    lecture: str | None = None  # a single-word lecture stem
    phrases: list[str] = field(default_factory=list)  # lecture phrases starting with this word
    lang: str | None = None
    pattern: str | None = None  # all of this literal's groups in one regex (source; compiled on first use)
    line_pattern: str | None = None  # groups of "^" rules, tried at line starts only
    seconds: set[tuple[str, bool]] = field(default_factory=set)  # (second word, whole) of two-word leads
    alone: bool = False  # needed wherever the word occurs (one-word lead, lecture, language)
    names: dict[str, int] = field(default_factory=dict)


# English letters by how often words start with them (most frequent first).
_LETTER_RANK = {ch: i for i, ch in enumerate("tasiowcbpfhmdrlnegyuvkjqxz")}


def _trie_regex(words: list[str], standalone: set[str], whole: set[str], tails: dict[str, str]) -> str:
    """Regex matching the longest of ``words`` at the current position.

    A word in ``standalone`` matches on its own (only where it ends a word if it
    is in ``whole``); any other word only where its ``tails`` look-ahead holds.
    """
    root: dict = {}
    for w in words:
        node = root
        for ch in w:
            node = node.setdefault(ch, {})
        node[""] = w

    def emit(node: dict) -> str:
        # the engine tries alternatives in order: frequent first letters first saves comparisons
        keys = sorted((k for k in node if k != ""), key=lambda ch: (_LETTER_RANK.get(ch, 99), ch))
        alts = [re.escape(ch) + emit(node[ch]) for ch in keys]
        if "" in node:
            w = node[""]
            if w in standalone:
                alts.append("(?![a-z0-9'])" if w in whole else "")
            else:
                alts.append(tails[w])
        return alts[0] if len(alts) == 1 else "(?:" + "|".join(alts) + ")"

    return emit(root)


class Table:
    """Compiled English rules; see the module docstring.

    One regex pass over the text finds every word that starts a rule variant,
    is moralising vocabulary, or belongs to a foreign-language table: the
    pattern is a space followed by a character trie of those words, so it
    starts with a literal (fast). It consumes the space and the word but never
    the space in front of the next word, so every word start stays visible.
    Each candidate then runs only the rule groups whose lead is that word,
    anchored at that position.
    """

    def __init__(
        self,
        groups: list[_Group],
        literals: list[_Literal],
        line_rules: list[tuple[int, Rule, re.Pattern[str]]],
        raw_rules: list[tuple[int, Rule, re.Pattern[str]]],
    ) -> None:
        self.groups = tuple(groups)
        self.literals = tuple(literals)
        self.line_rules = tuple(line_rules)
        self.raw_rules = tuple(raw_rules)
        by_text: dict[str, list[_Literal]] = {}
        for lit in literals:
            by_text.setdefault(lit.text, []).append(lit)
        words = sorted(by_text)
        whole = {lit.text for lit in literals if lit.whole_word} - {lit.text for lit in literals if not lit.whole_word}
        # a word that only starts two-word leads is found only where one of its
        # second words follows (look-ahead), so common words cost nothing elsewhere
        tails: dict[str, str] = {}
        standalone: set[str] = set()
        for t, lits in by_text.items():
            seconds = {w2 for lit in lits for w2 in lit.seconds}
            if any(lit.alone for lit in lits) or not seconds:
                standalone.add(t)
            else:
                alts = sorted(re.escape(w2) + ("(?![a-z0-9'])" if whole2 else "") for w2, whole2 in seconds)
                tails[t] = "(?= (?:" + "|".join(alts) + "))"
        self.finder = re.compile(" (?:" + _trie_regex(words, standalone, whole, tails) + ")")
        # for each matched word: the literals that apply there (itself and its
        # prefixes that need no word end there, or whose word does end there)
        self._closure: dict[str, tuple[_Literal, ...]] = {}
        for t in words:
            acts: list[_Literal] = []
            for k in range(1, len(t) + 1):
                for lit in by_text.get(t[:k], ()):
                    if lit.whole_word and k < len(t) and t[k] in _TOKEN_CHARS:
                        continue  # the shorter word does not end here
                    acts.append(lit)
            self._closure[t] = tuple(acts)
        # The same, flattened into tuples for the hot loop in scan(), built the first time a word is seen: compiling
        # all ~1,000 merged regexes up front took seconds at import, while one response meets only a few words.
        self._actions: dict[str, tuple] = {}
        self._compiled: dict[str, re.Pattern[str]] = {}

    def _regex(self, src: str | None):
        if src is None:
            return None
        pat = self._compiled.get(src)
        if pat is None:
            pat = self._compiled[src] = re.compile(src, re.M)
        return pat.match

    def _actions_for(self, word: str) -> tuple:
        acts = tuple(
            (self._regex(lit.pattern), lit.names, self._regex(lit.line_pattern), lit.lecture, tuple(lit.phrases), lit.lang)
            for lit in self._closure[word]
        )
        self._actions[word] = acts
        return acts

    def compile_all(self) -> None:
        """Compile every word's regexes now (a long-running scan pays the cost once, up front)."""
        for word in self._closure:
            if word not in self._actions:
                self._actions_for(word)

    def scan(self, text: str) -> tuple[list[tuple[int, int, int, str]], list[tuple[int, str]], set[str]]:
        """(rule hits, lecture term positions, foreign languages seen).

        ``text`` must have a space before every word (the normaliser ensures it).
        """
        found: list[tuple[int, int, int, str]] = []
        lecture: list[tuple[int, str]] = []
        langs: set[str] = set()
        actions = self._actions
        for m in self.finder.finditer(text):
            pos, end = m.span()
            pos += 1
            word = text[pos:end]
            acts = actions.get(word)
            if acts is None:
                acts = self._actions_for(word)
            for match, names, line_match, lect, phrases, lang in acts:
                if match is not None:
                    mm = match(text, pos)
                    if mm is not None:
                        found.append((pos, names[mm.lastgroup], mm.end(), mm.group()))
                if line_match is not None:
                    c = text[pos - 2] if pos >= 2 else "\n"
                    if c == "\n" or (c in "_>#-" and _at_line_start(text, pos)):
                        mm = line_match(text, pos)
                        if mm is not None:
                            found.append((pos, names[mm.lastgroup], mm.end(), mm.group()))
                if lect is not None:
                    lecture.append((pos, lect))
                for ph in phrases:
                    if text.startswith(ph, pos):
                        lecture.append((pos, ph))
                if lang is not None:
                    langs.add(lang)
        for idx, _rule, pattern in self.line_rules:  # "\\A" rules: the start of the text only
            mm = pattern.match(text, 0)
            if mm is not None:
                found.append((mm.start(), idx, mm.end(), mm.group(0)))
        for idx, rule, pattern in self.raw_rules:
            if any(a in text for a in rule.anchors):
                for mm in pattern.finditer(text):
                    found.append((mm.start(), idx, mm.end(), mm.group(0)))
        return found, lecture, langs


def _at_line_start(text: str, pos: int) -> bool:
    """Only markdown markers and spaces between the previous line break (or the start) and pos."""
    j = pos - 1
    while j >= 0 and text[j] in " _>#-":
        j -= 1
    return j < 0 or text[j] == "\n"


def compile_table(
    rules: tuple[Rule, ...], lecture_terms: tuple[str, ...] = (), foreign_tokens: dict[str, frozenset[str]] | None = None
) -> Table:
    """Compile ``rules`` (and the moralising vocabulary and foreign trigger words) into the ``Table`` that scans
    normalised text in one pass; raises ``ValueError`` for a rule that can be neither expanded nor anchored.
    """
    variants: dict[tuple, list[tuple[str, int]]] = {}
    line_rules: list[tuple[int, Rule, re.Pattern[str]]] = []
    raw_rules: list[tuple[int, Rule, re.Pattern[str]]] = []
    for idx, r in enumerate(rules):
        if r.pattern.startswith("\\A"):
            line_rules.append((idx, r, re.compile(r.pattern, re.M)))
            continue
        at_line_start = r.pattern.startswith("^")
        ex = expand("\\b" + r.pattern[1:].lstrip() if at_line_start else r.pattern)
        if ex is None:
            if not r.anchors:
                raise ValueError(f"rule {r.name} cannot be expanded and has no anchors")
            raw_rules.append((idx, r, re.compile(r.pattern, re.M)))
            continue
        seen: set[tuple[tuple, str]] = set()
        for prefix, rest, complete in ex:
            word, lead = _first_word(prefix)
            key = (word, True, lead) if complete else (prefix, False, prefix)
            if at_line_start:
                key = (key[0], key[1], key[2], "^")  # type: ignore[assignment]
            src = re.escape(prefix[len(key[2]) :]) + rest
            if (key, src) in seen:
                continue
            seen.add((key, src))
            variants.setdefault(key, []).append((src, idx))
    groups: list[_Group] = []
    literals: dict[tuple[str, bool], _Literal] = {}

    def literal(text: str, whole: bool) -> _Literal:
        lit = literals.get((text, whole))
        if lit is None:
            lit = literals[(text, whole)] = _Literal(text, whole, [])
        return lit

    for vkey, vs in variants.items():
        key, by_token, lead = vkey[:3]
        line_start = len(vkey) > 3
        vs.sort(key=lambda v: v[1])  # table order = precedence inside a group
        names = {f"v{k}": idx for k, (_, idx) in enumerate(vs)}
        body = "|".join(f"(?P<v{k}>{src})" for k, (src, _) in enumerate(vs))
        # the lookbehind re-checks the word boundary the rule's leading \b asked for
        head = re.escape(lead) + r"(?<!\w" + "." * len(lead) + ")"
        groups.append(_Group(lead, f"{head}(?:{body})", names, line_start))
        # a whole first word is looked for as a word; a partial one as a word start
        # (a literal never ends in a separator: the finder must not consume the
        # space in front of the next word)
        word = key.strip(" ,.!?;:")
        if " " in word:
            # two words: found by the first, where the second (whole, or its start) follows
            w1, w2 = word.split(" ", 1)
            lit = literal(w1, True)
            lit.seconds.add((w2.strip(" ,"), by_token and word == key))
        else:
            lit = literal(word, by_token and word == key and word[-1] in _TOKEN_CHARS)
            lit.alone = True
        lit.groups.append(len(groups) - 1)
    for term in lecture_terms:
        if " " in term:  # found like a two-word lead: its first word, where its second follows
            head, second = term.split(" ", 1)
            lit = literal(head, True)
            lit.seconds.add((second.split(" ")[0], False))
            lit.phrases.append(term)
        else:
            lit = literal(term, False)
            lit.lecture = term
            lit.alone = True
    for lang, words in (foreign_tokens or {}).items():
        for w in sorted(words):
            lit = literal(w, True)
            lit.lang = lang
            lit.alone = True
    for lit in literals.values():
        for line_start in (False, True):
            parts = []
            for gi in lit.groups:
                g = groups[gi]
                if g.line_start != line_start:
                    continue
                src = g.source
                for name, idx in g.names.items():
                    new = f"g{gi}_{name}"
                    src = src.replace(f"(?P<{name}>", f"(?P<{new}>", 1)
                    lit.names[new] = idx
                parts.append(f"(?:{src})")
            if parts:
                if line_start:
                    lit.line_pattern = "|".join(parts)
                else:
                    lit.pattern = "|".join(parts)
    return Table(groups, list(literals.values()), line_rules, raw_rules)
