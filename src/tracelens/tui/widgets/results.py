"""Trace lists: the paged search results and the smaller related-trace tables."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from rich.text import Text
from textual.geometry import Region
from textual.message import Message
from textual.strip import Strip
from textual.widgets import DataTable

from tracelens.tui.widgets.text import model_text, refusal_text, safe_line, when

# how close to the end the cursor gets before the next page is fetched
PREFETCH_ROWS = 40


class TraceTable(DataTable):
    """A DataTable of traces; ``traces`` holds the row dicts in display order."""

    DEFAULT_CSS = """
    TraceTable { height: 1fr; }
    """

    @dataclass
    class Open(Message):
        """Open this trace (enter or click on a row)."""

        trace: dict

    COLUMNS: tuple[tuple[str, str], ...] = (
        ("time", "time (UTC)"),
        ("user", "user"),
        ("model", "model returned"),
        ("refusal", "refusal"),
        ("prompt", "prompt"),
        ("response", "response"),
    )

    DEFAULT_KEYS = tuple(k for k, _ in COLUMNS)
    ALL_COLUMNS = {"similarity": "sim", "week": "week", "when": "when (UTC)", **dict(COLUMNS)}
    # Fixed widths: rendering never depends on when the table re-measures its cells.
    WIDTHS = {"time": 19, "when": 11, "user": 12, "model": 28, "refusal": 7, "similarity": 5, "week": 8}

    def __init__(self, *, text_width: int = 30, columns: tuple[str, ...] | None = None, **kw):
        super().__init__(cursor_type="row", zebra_stripes=True, **kw)
        self.traces: list[dict] = []
        self.text_width = text_width
        self.keys = columns or self.DEFAULT_KEYS
        self._when_painted: Callable[[], object] | None = None

    def when_painted(self, callback: Callable[[], object]) -> None:
        """Call ``callback`` once the rows the table holds now have been drawn into a frame.

        ``call_after_refresh`` is not that: it can run before the table has
        even measured its new rows, so a time taken there is not when they
        reached the screen. The table renders its lines while the frame is
        composed; the callback runs right after that frame is written.
        """
        self._when_painted = callback

    def render_lines(self, crop: Region) -> list[Strip]:
        """Render, then schedule ``when_painted``'s callback once rows added before are part of the frame."""
        lines = super().render_lines(crop)
        if self._when_painted is not None and not self._require_update_dimensions:
            callback, self._when_painted = self._when_painted, None
            self.call_later(callback)
        return lines

    def on_mount(self) -> None:
        """Build the columns."""
        self.set_columns()

    def set_columns(self, time_label: str | None = None) -> None:
        """(Re)build the columns; a no-op when nothing about them changed (saves a full re-layout)."""
        shape = (self.keys, self.text_width, time_label)
        if shape == getattr(self, "_shape", None):
            self.clear()
            return
        self._shape = shape
        self.clear(columns=True)
        for key in self.keys:
            label = time_label if key == "time" and time_label else self.ALL_COLUMNS[key]
            self.add_column(label, key=key, width=self.WIDTHS.get(key, self.text_width))

    def cell(self, key: str, r: dict) -> Text | str:
        """The cell of column ``key`` for row ``r`` (log text shown literally, cut to the column)."""
        if key == "time":
            return when(r.get("timestamp"))
        if key == "when":
            t = r.get("timestamp")
            return "-" if t is None else t.strftime("%m-%d %H:%M")
        if key == "user":
            return safe_line(r.get("user_id") or "-", 12)
        if key == "model":
            return model_text(r.get("model_returned"), r.get("model_requested"), r.get("model_is_alias"), 28)
        if key == "refusal":
            return refusal_text(r.get("refusal"))
        if key == "prompt":
            return safe_line(r.get("prompt_text"), self.text_width)
        if key == "response":
            return safe_line(r.get("response_text"), self.text_width)
        if key == "similarity":
            s = r.get("similarity")
            return "-" if s is None else f"{s:.2f}"
        if key == "week":
            return str(r.get("week") or "")
        return safe_line(r.get(key), 20)

    def add_traces(self, rows: list[dict]) -> None:
        """Append rows."""
        for r in rows:
            self.traces.append(r)
            self.add_row(*(self.cell(k, r) for k in self.keys))

    def replace(self, rows: list[dict]) -> None:
        """Replace every row."""
        self.clear()
        self.traces = []
        self.add_traces(rows)

    @property
    def current(self) -> dict | None:
        """The row under the cursor (None when the table is empty)."""
        if not self.traces or self.cursor_row < 0 or self.cursor_row >= len(self.traces):
            return None
        return self.traces[self.cursor_row]

    def on_data_table_row_selected(self, event: DataTable.RowSelected) -> None:
        """Post ``Open`` for the selected row."""
        event.stop()
        if 0 <= event.cursor_row < len(self.traces):
            self.post_message(self.Open(self.traces[event.cursor_row]))
