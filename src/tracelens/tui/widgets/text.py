"""The only way log text becomes something on screen.

``safe`` returns a ``rich.text.Text`` (never markup) of ``visible(text)``:
control characters, escape sequences, NUL and bidi overrides are shown as
visible escapes, and ``[red]`` or ``[@click=...]`` stay literal characters.
"""

from __future__ import annotations

import datetime as dt

from rich.text import Text

from tracelens.textsafe import one_line, visible

REFUSAL_STYLE = {"full": "bold red", "partial": "yellow", "none": "dim"}


def safe(text: object, style: str = "") -> Text:
    """Multi-line log text as plain ``Text``."""
    return Text(visible("" if text is None else str(text)), style=style)


def safe_line(text: object, width: int = 60, style: str = "") -> Text:
    """The first ``width`` characters of log text on one line."""
    return Text(one_line("" if text is None else str(text), width), style=style, no_wrap=True, overflow="ellipsis")


def when(t: dt.datetime | None) -> str:
    """A timestamp as ``YYYY-MM-DD HH:MM:SS`` UTC (``-`` when missing)."""
    return "-" if t is None else t.astimezone(dt.UTC).strftime("%Y-%m-%d %H:%M:%S")


def minute(t: dt.datetime | None) -> str:
    """A timestamp as ``YYYY-MM-DD HH:MM`` UTC (``-`` when missing)."""
    return "-" if t is None else t.astimezone(dt.UTC).strftime("%Y-%m-%d %H:%M")


def refusal_text(label: str | None) -> Text:
    """A refusal label, coloured by severity."""
    label = label or "-"
    return Text(label, style=REFUSAL_STYLE.get(label, "dim"))


def model_text(returned: str | None, requested: str | None, is_alias: bool | None, width: int = 30) -> Text:
    """Model returned, with a yellow ``*`` when the request named an alias."""
    t = safe_line(returned or requested or "-", width)
    if is_alias:
        t.append("*", style="bold yellow")
    return t
