"""Make log text safe to show in a terminal.

Logs contain whatever users typed. Before any log text reaches a terminal
(CLI tables, TUI widgets) it goes through ``visible``: C0/C1 control
characters (ESC, so no ANSI CSI/OSC sequences, OSC 8 links or screen
clears), NUL, DEL and the Unicode bidirectional overrides/isolates are
replaced by visible escapes such as ``␛`` or ``<U+202E>``, so nothing is
interpreted and nothing is hidden. Newlines and tabs are kept. Rich/Textual
markup is never interpreted because callers render the result as plain
``rich.text.Text``, never as markup.
"""

from __future__ import annotations

import re

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
    """``text`` with control and bidi-override characters shown as visible escapes."""
    if not text:
        return text or ""
    return _PATTERN.sub(_repl, text)


def one_line(text: str | None, width: int = 80) -> str:
    """First ``width`` characters of ``text`` on one line, made visible."""
    s = " ".join(visible(text).split())
    return s if len(s) <= width else s[: width - 1] + "…"
