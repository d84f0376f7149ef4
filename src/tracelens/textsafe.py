"""Make log text safe to show in a terminal.

Logs contain whatever users typed. Before any log text reaches a terminal
(CLI tables, TUI widgets) it goes through ``visible``: secrets are replaced
by ``[secret:KIND]`` markers (``tracelens.secrets``: a store written before
the scrubber existed may still hold some), then C0/C1 control characters
(ESC, so no ANSI CSI/OSC sequences, OSC 8 links or screen clears), NUL, DEL
and the Unicode bidirectional overrides/isolates are replaced by visible
escapes such as ``␛`` or ``<U+202E>``, so nothing is interpreted and nothing
is hidden. Newlines and tabs are kept. Rich/Textual markup is never
interpreted because callers render the result as plain ``rich.text.Text``
(or escape it with ``markup``), never as markup.

JSON output (``json_text``) gets the same guarantee without changing any
value: json.dumps already escapes C0 controls; DEL, C1 controls and bidi
controls, which it leaves raw, become ``\\uXXXX`` escapes (valid JSON, same
value), so ``--json`` piped to a terminal cannot drive it either.
"""

from __future__ import annotations

import re

from tracelens.secrets import scrub_text

_BIDI = {0x202A, 0x202B, 0x202C, 0x202D, 0x202E, 0x2066, 0x2067, 0x2068, 0x2069, 0x200E, 0x200F, 0x061C}
_PATTERN = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069\u200e\u200f\u061c]")
_NAMES = {0x00: "␀", 0x1B: "␛", 0x07: "␇", 0x08: "␈", 0x0D: "␍", 0x7F: "␡"}


def _repl(m: re.Match) -> str:
    cp = ord(m.group(0))
    if cp in _NAMES:
        return _NAMES[cp]
    if cp < 0x20:
        return chr(0x2400 + cp)  # Unicode control pictures
    return f"<U+{cp:04X}>"


def visible(text: str | None) -> str:
    """``text`` with secrets removed and control and bidi-override characters shown as visible escapes."""
    if not text:
        return text or ""
    if not isinstance(text, str):
        text = str(text)
    return _PATTERN.sub(_repl, scrub_text(text))


def markup(text: str | None) -> str:
    """``visible(text)`` for a string Rich will parse as markup: ``[`` cannot open a tag."""
    from rich.markup import escape

    return escape(visible(text))


# What json.dumps leaves raw that a terminal may act on: DEL, C1 controls, bidi controls, line separators.
_JSON_UNSAFE = re.compile("[\x7f-\x9f\u202a-\u202e\u2066-\u2069\u200e\u200f\u061c\u2028\u2029]")


def json_text(doc: str) -> str:
    """JSON text from json.dumps with the characters it leaves raw escaped as ``\\uXXXX`` (same JSON value)."""
    return _JSON_UNSAFE.sub(lambda m: f"\\u{ord(m.group(0)):04x}", doc)


def one_line(text: str | None, width: int = 80) -> str:
    """First ``width`` characters of ``text`` on one line, made visible."""
    s = " ".join(visible(text).split())
    return s if len(s) <= width else s[: width - 1] + "…"
