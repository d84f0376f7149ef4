"""Help: every key, by screen."""

from __future__ import annotations

from rich.table import Table
from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import Static

KEYS = (
    ("everywhere", (
        ("?", "this help"), ("ctrl+p", "command palette: every action by name"), ("escape", "back"),
        ("w", "this week's drift findings"), ("q", "quit (in a text field q is a letter: ctrl+q quits)"),
    )),
    ("find", (
        ("/", "focus the free-text search; type, then enter runs it and focuses the results"),
        ("enter", "in a filter: run the search · on a row: open the trace"),
        ("↑ ↓ pgup pgdn ctrl+end", "move; more rows load as you near the end"),
        ("t", "sort by time: newest / oldest first (or click the time header)"),
        ("r d s c x", "on the highlighted row: replay, prompt diff, similar, copy JSON, export"),
    )),
    ("trace", (
        ("r", "replay against the pinned snapshot"), ("d", "system-prompt history and diff"),
        ("s", "same prompt in other weeks, and similar traces"), ("m", "metadata"),
        ("e", "unfold / fold a long system prompt"),
        ("c", "copy the trace as JSON (clipboard + file)"),
        ("x", "export a reproduction: curl and Python, key from $ANTHROPIC_API_KEY"),
        ("a", "add to an eval suite (graders such as behaves-like; not-refused; contains:refund)"),
        ("v", "eval history: the suites holding this trace and how each run graded it"),
        ("u", "explain this user: their own traffic, what changed underneath, a ranked verdict"),
    )),
    ("replay", (
        ("enter", "in N or model: re-plan and focus Send · on Send: send"), ("ctrl+s", "send"),
        ("[ ]", "previous / next replay"), ("escape", "stop a running replay, else back"),
    )),
    ("time filter", (
        ("yesterday 3pm", "±1 h around 15:00 yesterday (UTC)"), ("2026-11-18 15:00 ±2h", "explicit width"),
        ("2026-11-18 13:00 .. 17:00", "a range"), ("2026-11-18, yesterday, tue", "a whole day"),
        ("2026-W47", "an ISO week"), ("7d, 12h, last 3 days", "back from now"),
    )),
    ("text filter", (
        ("refund", "case-insensitive words in prompt or response"), ("/refund.*denied/", "a regular expression"),
    )),
)


def help_table() -> Table:
    """The key reference and the filter syntax, section by section."""
    t = Table.grid(padding=(0, 2))
    t.add_column(style="bold cyan", no_wrap=True)
    t.add_column()
    for section, rows in KEYS:
        t.add_row(Text(section.upper(), style="bold"), "")
        for k, what in rows:
            t.add_row(k, what)
        t.add_row("", "")
    return t


class HelpScreen(ModalScreen):
    """Keyboard reference; escape, ? or q closes it."""

    BINDINGS = [
        Binding("escape", "dismiss", "close"),
        Binding("question_mark", "dismiss", "close", show=False),
        Binding("q", "dismiss", "close", show=False),
    ]

    DEFAULT_CSS = """
    HelpScreen { align: center middle; }
    HelpScreen > VerticalScroll { width: 96; max-height: 90%; border: round $accent; background: $surface;
                                  padding: 0 1; }
    """

    def compose(self) -> ComposeResult:
        """The key reference in a scrollable box."""
        with VerticalScroll():
            yield Static(help_table(), markup=False)
