"""Diff renderers: a coloured unified diff, and the two sides of a word-level diff."""

from __future__ import annotations

from rich.text import Text

from tracelens.tui.widgets.text import safe


def unified_diff_text(diff: str) -> Text:
    """A unified diff (of log text) coloured by line kind."""
    out = Text()
    for line in diff.splitlines():
        if line.startswith(("+++", "---")):
            style = "bold"
        elif line.startswith("@@"):
            style = "cyan"
        elif line.startswith("+"):
            style = "green"
        elif line.startswith("-"):
            style = "red"
        else:
            style = ""
        out.append_text(safe(line, style))
        out.append("\n")
    return out


def word_diff_side(ops: list[tuple[str, str]], side: str) -> Text:
    """One side of a word diff: 'original' shows deletions, 'replay' shows insertions."""
    out = Text()
    for op, text in ops:
        if op == "equal":
            out.append_text(safe(text))
        elif op == "delete" and side == "original":
            out.append_text(safe(text, "bold red on #3b0d0d"))
        elif op == "insert" and side == "replay":
            out.append_text(safe(text, "bold green on #0d3b16"))
    return out
