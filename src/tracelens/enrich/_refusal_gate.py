"""Prefilter of the refusal text layer: rule out, cheaply, responses no refusal rule can fire on.

Contract: ``gate().might_refuse(text) -> bool``, where ``text`` is the head
and tail of a response folded and its code replaced as the normaliser does
(``_refusal_text.classify`` builds it; lower-cased or not), is False only
when no rule that carries refusal weight, and no redirect rule, can match
anywhere in ``_refusal_text.normalise(text)``. ``analyse`` then labels the
text ``none`` with score 0 (nothing enters its noisy-OR, and only a redirect
can raise its upper bound), so ``classify`` returns that without normalising
or scanning. ``might_refuse_many(texts)`` answers the same for a batch
(``classify_many``), in one search. A wrong False would change a label; a
wrong True only costs time (the full analysis runs). tests/test_refusal_gate.py
compares ``classify`` and ``classify_many`` with ``analyse`` on a generated
corpus, the sample logs and, when present, XSTest and ShareGPT responses, and
checks every backend's rejections.

Why: most production responses are answers. Normalising (quote, dialogue and
blockquote stripping) and scanning cost ~60 µs for a 1 KB response; this is
one lower-cased copy, a few whole-text byte operations in C and one pass of a
literal search.

How, and why it is sound:

1. Literals. Every weighted/redirect English rule is expanded into literal
   prefixes, two words or more where the variant budget allows ("i can't",
   "as an ai", "sorry, but"; ``_refusal_compile._expand`` with ``min_len``),
   cut before any character a placeholder or the normaliser's spacing could
   touch (``_UNSAFE``) and before a trailing space: every match of the rule
   in the normalised text starts with one of them, at a word start. Foreign
   tables get their trigger words, as in the scanner.
2. The probe text is ``" " + low`` (``low`` the lower-cased text) with its
   runs of spaces made single when one sits inside a line (the batch search
   makes all of them single: as sound, only more literals can appear), then
   every lead-in character (``_LEAD_INS``: a line break, an opener ``( [ /``
   the normaliser puts a space after, the closing quote or backtick of a
   passage it replaces) made a space. The normalised text differs from
   ``low`` only by placeholders (which hold ``§``; the code placeholders are
   already in ``low``), by a space inserted after line breaks and ``( [ /``,
   and by single spaces. So a literal found in the normalised text at a word
   start is in the probe text after a space, and only ``" " + literal`` is
   searched for (one search, no variants per lead-in).
3. Checks. Where a literal is found, the rule's own pattern, without its
   look-arounds and ``\\b`` (they look at neighbours that may differ), runs
   anchored there, for every rule whose matches consist of plain characters
   and cannot span a ``§`` (``_checkable``; ``$`` becomes "a space, a text
   separator or the end", a line break being a space in the probe text):
   such a match is in the probe text as it is. Other rules count when one of
   their hand-written anchors (``ANCHORS``, checked per rule by the tests)
   occurs. Rules bound to the start of the text count when an anchor occurs
   within their reach of it (in ``low``'s head as it is and with its runs of
   spaces made single; looked at only where the anchor's longest word occurs
   at all).

Backends: hyperscan when it is installed (the probe is built as bytes in C:
ASCII lower-casing, runs, lead-ins by ``bytes.translate``; the checks run on
the same bytes, as they match ASCII only and no byte of a multi-byte
character is ASCII; about three times as fast as pyahocorasick on a 1 KB
response, ~0.1 s to compile), else pyahocorasick, else one regex.
"""

from __future__ import annotations

import bisect
import re
import threading

try:  # the literal search in SIMD C (Linux and Windows x86-64, macOS): the fastest backend
    import hyperscan
except ImportError:  # pragma: no cover - depends on the installation
    hyperscan = None
try:  # the same search as an Aho-Corasick automaton in C; without either the gate runs one regex
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
    """``pattern`` without its look-arounds, ``\\b`` and ``^``, and ``$`` made "a space or the end": it matches wherever
    the rule does, and more (the conditions look at characters that may differ between the probe text and the
    normalised text, where a line break is a space)."""
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
        elif ch == "$":
            out.append("(?=[ \\x00]|\\Z)")  # a line end of the normalised text is a space (or the end) in the probe text
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
        # the search reports every literal found, so there a literal stands only for its own rules
        self._own = {lit: tuple((k, implied) for k, implied in rules if k in by_literal[lit]) for lit, rules in self.rules_of.items()}
        self.backend = backend or _default_backend()
        if self.backend == "hyperscan":
            try:
                self._build_hyperscan()
            except Exception:  # noqa: BLE001 - hyperscan installed but unusable here (an old release, a CPU without SSSE3)
                if backend is not None:
                    raise
                self.backend = "ahocorasick" if ahocorasick is not None else "re"
        if self.backend == "ahocorasick":
            if ahocorasick is None:
                raise ImportError("the ahocorasick backend needs pyahocorasick")
            auto = ahocorasick.Automaton()
            for lit, own in self._own.items():
                auto.add_word(" " + lit, (len(lit), own, lit in self.whole))
            auto.make_automaton()
            self._auto = auto
        elif self.backend == "re":
            words = sorted(by_literal)
            # a space, then a look-ahead: zero-width, so that every word start is visited, even one inside a longer
            # literal's match
            self._finder = re.compile(" (?=(" + _trie_regex(words, set(words), set(self.whole), {}) + "))")

    def _build_hyperscan(self) -> None:
        if hyperscan is None:
            raise ImportError("the hyperscan backend needs hyperscan")
        lits = sorted(self._own)
        # per literal id: (its length in UTF-8 bytes, its rules, whether it must end a word)
        self._hs_info = [(len(lit.encode()), self._own[lit], lit in self.whole) for lit in lits]
        db = hyperscan.Database()
        exprs = [(" " + lit).encode() for lit in lits]
        db.compile(expressions=exprs, ids=list(range(len(exprs))), elements=len(exprs), flags=0, literal=True)
        self._hs_db = db
        # The batch search also finds, anywhere (an anchor is checked with ``in``), the anchors of the rules checked
        # by them, and the longest word of each opening rule's anchor; per extra id: the rules, or None.
        by_anchor: dict[str, set[int]] = {}
        for k, anchors in enumerate(self.anchors):
            if self.check[k] is None:
                for a in anchors:
                    if a:
                        by_anchor.setdefault(a, set()).add(k)
        keys = sorted({max(a.split(), key=len) for a in self.opening})
        self._hs_extra: list[tuple[int, ...] | None] = [tuple(sorted(by_anchor[a])) for a in sorted(by_anchor)]
        self._hs_extra += [None] * len(keys)
        batch = exprs + [a.encode() for a in sorted(by_anchor)] + [k.encode() for k in keys]
        bdb = hyperscan.Database()
        bdb.compile(expressions=batch, ids=list(range(len(batch))), elements=len(batch), flags=0, literal=True)
        self._hs_batch_db = bdb
        self._hs_lock = threading.Lock()
        self._hs_data = b""  # the probe being scanned, for the match handler
        match = self._hs_match

        def on_match(k: int, start: int, end: int, flags: int, context: object) -> bool:
            return match(k, end)

        self._hs_on_match = on_match
        self._opening_bytes = tuple(a.encode() for a in self.opening)
        # the longest word of each: in the probe wherever the anchor is in its head, runs made single or not
        self._opening_keys = tuple({max(a.split(), key=len) for a in self._opening_bytes})
        self._always_bytes = tuple(a.encode() for a in self.always)
        self._anchors_bytes = [tuple(a.encode() for a in anchors) for anchors in self.anchors]
        self._compiled_bytes: dict[int, re.Pattern[bytes]] = {}

    def might_refuse(self, text: str) -> bool:
        """False when no gated rule can match ``normalise(text)``; ``text`` is the head and tail of a response, folded
        and its code replaced as the normaliser does (``_refusal_text.classify``), lower-cased or not."""
        if self.backend == "hyperscan":
            return self._hs_might_refuse(text)
        low = text.lower()
        if self.opening and self._opening_hit(low):
            return True
        probe = probe_text(low)
        for a in self.always:
            if a in probe:
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

    def _opening_hit(self, low: str) -> bool:
        """An anchor of a rule bound to the start of the text within their reach of it: in ``low``'s head as it is,
        or with its runs of spaces made single (the normalised text's spacing)."""
        s = low.lstrip(" \n")
        w = self.opening_width
        head = s[:w]
        for a in self.opening:
            if a in head:
                return True
        if "  " in s[: 4 * w]:
            c = _SPACES.sub(" ", s[: 4 * w])  # a prefix of the whole head with its runs made single
            if len(c) <= w and len(s) > 4 * w:
                c = _SPACES.sub(" ", s)
            head = c[:w]
            for a in self.opening:
                if a in head:
                    return True
        return False

    def _hs_might_refuse(self, text: str) -> bool:
        # The probe as bytes, built in C: ASCII lower-casing is str.lower() on ASCII text (other text is lower-cased
        # as a str first, since str.lower() can turn a non-ASCII letter into an ASCII one), runs of spaces made
        # single where one sits inside a line, lead-ins made spaces (``probe_text``'s rules). The checks then run on
        # these bytes: they match ASCII only, and no byte of a multi-byte character is ASCII, so they match there
        # exactly where they match the str.
        ascii_only = text.isascii()
        data = b" " + (text.encode().lower() if ascii_only else text.lower().encode())
        for word in self._opening_keys:  # rare anywhere: the exact look at the head only where one may occur
            if word in data:
                if self._opening_hit_bytes(data, ascii_only):
                    return True
                break
        if b"  " in data and _MID_LINE_RUN_BYTES.search(data) is not None:
            data = _SPACES_BYTES.sub(b" ", data)
        data = data.translate(_LEAD_TABLE)
        for a in self._always_bytes:
            if a in data:
                return True
        # one scan at a time: a database's scratch space and ``_hs_data`` are shared (responses may be labelled
        # from several threads, as the eval runner does)
        with self._hs_lock:
            self._hs_data = data
            try:
                self._hs_db.scan(data, match_event_handler=self._hs_on_match)
            except hyperscan.ScanTerminated:  # a literal whose rule can match there: the answer is yes
                return True
            return False

    def _check_bytes(self, k: int) -> re.Pattern[bytes]:
        """Rule ``k``'s check compiled for the bytes probe, on first use (most rules' literals never occur)."""
        rx = self._compiled_bytes.get(k)
        if rx is None:
            rx = self._compiled_bytes[k] = re.compile(self.check[k].encode())  # type: ignore[union-attr]
        return rx

    def _hs_match(self, lit_id: int, end: int) -> bool:
        """True (which ends the scan) when a rule of the literal that ends at ``end`` can match there."""
        data = self._hs_data
        length, rules, whole = self._hs_info[lit_id]
        if whole and end < len(data) and data[end] in _WORD_BYTES:
            return False
        pos = end - length
        check = self.check
        for k, implied in rules:
            if check[k] is not None:
                if self._check_bytes(k).match(data, pos) is not None:
                    return True
            elif implied:
                return True
            else:
                for a in self._anchors_bytes[k]:
                    if a in data:
                        return True
        return False

    def might_refuse_many(self, texts: list[str]) -> list[bool]:
        """``[might_refuse(t) for t in texts]``; with hyperscan, in one pass over all of them: one probe of the texts
        joined by ``\\x00`` (which no literal, check or anchor holds; each text's own probe starts after one), one
        search that also finds the anchors and the opening rules' words, then the checks where literals were found.
        """
        if self.backend != "hyperscan" or len(texts) < 2:
            return [self.might_refuse(t) for t in texts]
        # str.lower() only where it may differ from the ASCII lower-casing of the bytes (non-ASCII text)
        joined = b"\x00 ".join([t.encode() if t.isascii() else t.lower().encode() for t in texts])
        if joined.count(b"\x00") != len(texts) - 1:  # a text holds the separator
            return [self.might_refuse(t) for t in texts]
        raw = b" " + joined.lower()
        data = raw
        if b"  " in data and _MID_LINE_RUN_BYTES.search(data) is not None:
            data = _SPACES_BYTES.sub(b" ", data)  # every run in every text: as sound as in runs inside a line only
        data = data.translate(_LEAD_TABLE)
        found: list[tuple[int, int]] = []
        add = found.append

        def on_match(k: int, start: int, end: int, flags: int, context: object) -> None:
            add((k, end))

        with self._hs_lock:  # the database's scratch space is shared
            self._hs_batch_db.scan(data, match_event_handler=on_match)
        out = [False] * len(texts)
        if not found:
            return out
        bounds = _separators(data)  # text i spans bounds[i] + 1 .. bounds[i + 1] (its leading space included)
        n_lits = len(self._hs_info)
        extra = self._hs_extra
        anchored: set[tuple[int, int]] = set()  # (text, rule) where one of the rule's anchors occurs
        hits: list[tuple[int, int, int]] = []  # (text, literal, end)
        raw_bounds: list[int] | None = None
        i = 0
        for lit_id, end in found:  # in order of their ends
            if end > bounds[i + 1]:
                i = bisect.bisect_left(bounds, end) - 1
            if lit_id < n_lits:
                hits.append((i, lit_id, end))
            elif out[i]:
                continue
            else:
                what = extra[lit_id - n_lits]
                if what is None:  # a word of an opening rule's anchor: look at the head exactly
                    if raw_bounds is None:
                        raw_bounds = _separators(raw)
                    one = raw[raw_bounds[i] + 1 : raw_bounds[i + 1]]
                    out[i] = self._opening_hit_bytes(one, one.isascii())
                else:
                    for k in what:
                        anchored.add((i, k))
        info = self._hs_info
        check = self.check
        n = len(data)
        for i, lit_id, end in hits:
            if out[i]:
                continue
            length, rules, whole = info[lit_id]
            if whole and end < n and data[end] in _WORD_BYTES:
                continue
            pos = end - length
            for k, implied in rules:
                if check[k] is not None:
                    if self._check_bytes(k).match(data, pos) is not None:
                        out[i] = True
                        break
                elif implied or (i, k) in anchored:
                    out[i] = True
                    break
        return out

    def _opening_hit_bytes(self, data: bytes, ascii_only: bool) -> bool:
        """``_opening_hit`` on the UTF-8 probe: ``opening_width`` characters are as many bytes in ASCII text and at
        most four times as many otherwise, so the heads looked at hold at least the characters ``_opening_hit``
        looks at."""
        s = data.lstrip(b" \n")
        w = self.opening_width if ascii_only else 4 * self.opening_width
        head = s[:w]
        for a in self._opening_bytes:
            if a in head:
                return True
        if b"  " in s[: 4 * w]:
            c = _SPACES_BYTES.sub(b" ", s[: 4 * w])
            if len(c) <= w and len(s) > 4 * w:
                c = _SPACES_BYTES.sub(b" ", s)
            head = c[:w]
            for a in self._opening_bytes:
                if a in head:
                    return True
        return False


def _separators(data: bytes) -> list[int]:
    """-1, the offsets of the ``\\x00`` separating the texts in ``data``, and ``len(data)``."""
    out = [-1]
    j = data.find(b"\x00")
    while j >= 0:
        out.append(j)
        j = data.find(b"\x00", j + 1)
    out.append(len(data))
    return out


def _default_backend() -> str:
    return "hyperscan" if hyperscan is not None else "ahocorasick" if ahocorasick is not None else "re"


_WORD_CHARS = frozenset("abcdefghijklmnopqrstuvwxyz0123456789'")
_WORD_BYTES = frozenset(ord(c) for c in _WORD_CHARS)


# Characters after which the normalised text may have a word start: a space, a line break, an opener it puts a
# space after, and the closing quote or backtick of a passage it replaces (module docstring). The probe text has a
# space for each.
_LEAD_INS = (" ", "\n", "(", "[", "/", '"', "`")
_MID_LINE_RUN = re.compile("  (?<=[^ \n]  )")  # two spaces inside a line (indentation is harmless)
_SPACES = re.compile(" {2,}")
_SPACES_BYTES = re.compile(b"   *")  # runs of two spaces or more; this form starts with a two-byte literal (fast)
_MID_LINE_RUN_BYTES = re.compile(b"  (?<=[^ \n]  )")
_LEAD_TABLE = bytes.maketrans("".join(_LEAD_INS[1:]).encode(), b" " * (len(_LEAD_INS) - 1))


def probe_text(low: str) -> str:
    """The text the gate searches: ``" " + low`` with every run of spaces made single when one sits inside a line (a
    literal's space is one space in the normalised text; a run that starts a line is harmless), then every lead-in
    character made a space (the runs that makes stand where the normalised text has a lead-in, never a space
    inside a literal)."""
    probe = " " + low
    if "  " in probe and _MID_LINE_RUN.search(probe) is not None:
        probe = _SPACES.sub(" ", probe)
    for c in _LEAD_INS[1:]:
        if c in probe:
            probe = probe.replace(c, " ")
    return probe


_GATE: Gate | None = None


def gate() -> Gate:
    """The process's ``Gate``, built on first use (a fraction of a second), not at import."""
    global _GATE
    if _GATE is None:
        _GATE = Gate()
    return _GATE
