"""The find screen's filter bar: one compact input per filter, submitted together."""

from __future__ import annotations

from dataclasses import dataclass

from textual import on
from textual.app import ComposeResult
from textual.containers import Horizontal, Vertical
from textual.message import Message
from textual.widgets import Checkbox, Input, Label

from tracelens.query import FindQuery

# (field, label, placeholder, css class)
FIELDS = (
    ("user", "user", "user id", "short"),
    ("session", "session", "session id", "short"),
    ("trace_id", "trace", "trace id or prefix", "mid"),
    ("model", "model", "substring", "mid"),
    ("app", "app", "app name", "short"),
    ("time", "time", "yesterday 3pm · 2026-11-18 15:00 ±2h · 2026-W47 · 7d", "wide"),
    ("text", "text", "words in prompt or response, or /regex/", "wide"),
    ("like", "like", "semantically like: …", "wide"),
)
ROWS = (("user", "session", "trace_id", "model", "app"), ("time", "text"), ("like",))


class FilterBar(Vertical):
    """Filters for user, session, trace id, model, app, time window, free text, semantic text and refusals."""

    DEFAULT_CSS = """
    FilterBar { height: auto; padding: 0 1; }
    FilterBar Horizontal { height: 1; margin-bottom: 0; }
    FilterBar Label { width: auto; padding: 0 1 0 0; color: $text-muted; }
    FilterBar Input { width: 1fr; margin-right: 2; }
    FilterBar Input.short { max-width: 16; }
    FilterBar Input.mid { max-width: 26; }
    FilterBar Checkbox { width: auto; height: 1; }
    """

    @dataclass
    class Submitted(Message):
        """The user asked to run the search (enter in any field, or the refusal toggle)."""

        query: FindQuery
        focus_results: bool = True

    def compose(self) -> ComposeResult:
        """The filter inputs, row by row, and the refusals-only checkbox."""
        spec = {f: (label, ph, cls) for f, label, ph, cls in FIELDS}
        for row in ROWS:
            with Horizontal():
                for name in row:
                    label, ph, cls = spec[name]
                    yield Label(label, markup=False)
                    yield Input(placeholder=ph, id=f"f-{name}", classes=cls, compact=True)
                if row == ROWS[2]:
                    yield Checkbox("refusals only", id="f-refusal", compact=True)

    def current_query(self) -> FindQuery:
        """The query the inputs hold now."""
        q = FindQuery()
        for name, *_ in FIELDS:
            setattr(q, name, self.query_one(f"#f-{name}", Input).value)
        q.refusal_only = self.query_one("#f-refusal", Checkbox).value
        return q

    def set_query(self, q: FindQuery) -> None:
        """Fill the inputs from ``q`` (without running a search)."""
        for name, *_ in FIELDS:
            self.query_one(f"#f-{name}", Input).value = getattr(q, name)
        with self.prevent(Checkbox.Changed):
            self.query_one("#f-refusal", Checkbox).value = q.refusal_only

    @on(Input.Submitted)
    def _submitted(self, event: Input.Submitted) -> None:
        event.stop()
        self.post_message(self.Submitted(self.current_query()))

    @on(Checkbox.Changed)
    def _toggled(self, event: Checkbox.Changed) -> None:
        event.stop()
        self.post_message(self.Submitted(self.current_query(), focus_results=False))
