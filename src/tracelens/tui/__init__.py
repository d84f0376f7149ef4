"""The tracelens TUI (Textual): find a trace, read it in context, replay it.

Everything slow runs in thread workers that call the headless core
(``tracelens.query``, ``tracelens.context``, ``tracelens.replay``, ``tracelens.weekly``) and post
the dataclass Messages of ``tracelens.tui.messages`` back; the UI never
blocks. All log text reaches the screen as ``rich.text.Text`` made with
``tracelens.textsafe.visible``: never as markup, never with raw control
characters. ``make_app`` is the one way to build the app, for the CLI, the
tests and the benchmark alike.
"""

from __future__ import annotations

__all__ = ["TraceLensApp", "TuiConfig", "make_app"]


def __getattr__(name: str):
    # lazy, so `import tracelens.tui` does not pull in Textual until needed
    if name in __all__:
        from tracelens.tui import app

        return getattr(app, name)
    raise AttributeError(name)
