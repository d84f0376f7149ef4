"""Find: the filter bar over a lazily paged table of traces (the app's base screen)."""

from __future__ import annotations

import time

from rich.text import Text
from textual import events, on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.screen import Screen
from textual.widget import Widget
from textual.widgets import Checkbox, DataTable, Header, Input, Static
from textual.worker import get_current_worker

from tracelens.extras import NotAvailable
from tracelens.query import FindQuery, ResultSet, find_results, semantic_results
from tracelens.tui.messages import PageLoaded, SearchFailed, SearchProgress
from tracelens.tui.widgets.filter_bar import FilterBar
from tracelens.tui.widgets.footer import KeyFooter
from tracelens.tui.widgets.results import PREFETCH_ROWS, TraceTable
from tracelens.tui.widgets.text import safe

# A search that answers sooner than this never shows "searching…": painting that line (and repainting it
# away a moment later) would cost a frame in the middle of a fast lookup.
SEARCHING_NOTICE_AFTER = 0.2


class FindScreen(Screen):
    """Search the store; enter opens the highlighted trace."""

    BINDINGS = [
        Binding("slash", "focus_text", "search text", key_display="/", id="find.focus_text"),
        Binding("enter", "open", "open", show=False, id="find.open"),
        Binding("r", "replay", "replay", id="find.replay"),
        Binding("d", "diff", "prompt diff", id="find.diff"),
        Binding("s", "similar", "similar", id="find.similar"),
        Binding("c", "copy", "copy JSON", id="find.copy"),
        Binding("x", "export", "export repro", id="find.export"),
        Binding("t", "toggle_sort", "sort time", id="find.sort"),
        Binding("w", "app.week", "this week", id="find.week"),
        Binding("escape", "focus_results", "results", show=False, id="find.escape"),
        # every filter field has a key: alt+ the first letter of its label (trace: i, for id)
        Binding("alt+u", "focus_field('user')", "user filter", show=False, id="find.f_user"),
        Binding("alt+s", "focus_field('session')", "session filter", show=False, id="find.f_session"),
        Binding("alt+i", "focus_field('trace_id')", "trace id filter", show=False, id="find.f_trace"),
        Binding("alt+m", "focus_field('model')", "model filter", show=False, id="find.f_model"),
        Binding("alt+a", "focus_field('app')", "app filter", show=False, id="find.f_app"),
        Binding("alt+t", "focus_field('time')", "time filter", show=False, id="find.f_time"),
        Binding("alt+l", "focus_field('like')", "semantic filter", show=False, id="find.f_like"),
        Binding("alt+r", "toggle_refusals", "refusals only", show=False, id="find.f_refusal"),
    ]

    def __init__(self, initial: FindQuery | None = None) -> None:
        super().__init__()
        self.initial = initial or FindQuery()
        self.query_id = 0
        self.result_set: ResultSet | None = None
        self.total = 0
        self.fetching = False
        self.newest_first = self.initial.newest_first
        self.started = 0.0
        self.painted_at = 0.0
        self._window = ""  # the time window read, for the status line
        self._ranked = False  # results ranked by similarity rather than time
        self._seconds = 0.0  # how long the last search's query took
        self._focus_on_answer = 0  # the search whose answer moves the focus from the filter bar to the results
        self._focus_from: Widget | None = None  # where the focus was when that search was submitted
        self._progress_for = 0  # the search whose progress the status line shows (not to be hidden by "searching…")

    def compose(self) -> ComposeResult:
        """Filter bar, status line and the results table."""
        yield Header()
        yield FilterBar()
        yield Static(id="status", markup=False)
        yield TraceTable(id="results", text_width=self.text_width())
        yield KeyFooter()

    def text_width(self) -> int:
        # what is left of the terminal after time, user, model and refusal columns
        """Width of the prompt and response columns: what the fixed columns leave of the terminal."""
        return max(16, (self.app.size.width - 80) // 2)

    def on_mount(self) -> None:
        """Fill the filter bar with the initial query and run it."""
        bar = self.query_one(FilterBar)
        bar.set_query(self.initial)
        self.query_one("#results", TraceTable).focus()
        self.run_search(self.initial)

    # ------------------------------------------------------------------ searching

    def run_search(self, q: FindQuery | None = None) -> None:
        """Start a search; the table keeps the old rows until the first page of the new one arrives."""
        q = q or self.query_one(FilterBar).current_query()
        q.newest_first = self.newest_first
        self.query_id += 1
        self.fetching = True
        self.result_set = None
        self.started = time.perf_counter()
        self.set_timer(SEARCHING_NOTICE_AFTER, lambda qid=self.query_id: self._still_searching(qid))
        self._search(self.query_id, q)

    def _still_searching(self, query_id: int) -> None:
        if query_id == self.query_id and self.fetching and self._progress_for != query_id:
            self.set_status(Text("searching…", style="dim"))

    @work(thread=True, exclusive=True, group="search")
    def _search(self, query_id: int, q: FindQuery) -> None:
        worker = get_current_worker()
        t0 = time.perf_counter()
        try:
            app = self.app
            if q.like.strip():
                from tracelens.embed.models import embedder_loaded

                if not embedder_loaded():
                    # the first semantic search loads the model (seconds): say so rather than look stuck
                    self.post_message(SearchProgress(query_id, "loading the embedding model (first semantic "
                                                               "search only)…"))
                df, window = semantic_results(app.store, q, now=app.now(), tz=app.config.tz)
                rows = df.to_dicts()
                if not worker.is_cancelled:
                    self.post_message(PageLoaded(query_id, 0, rows, len(rows), time.perf_counter() - t0,
                                                 window.describe() if window else "", ranked=True))
                return
            rs, window = find_results(app.store, q, now=app.now(), tz=app.config.tz, ids=app.ids)
            total = rs.total
            rows = rs.page(0, app.config.page_size).to_dicts()
        except (ValueError, NotAvailable) as e:
            if not worker.is_cancelled:
                self.post_message(SearchFailed(query_id, str(e)))
            return
        except Exception as e:  # e.g. a damaged partition: report it, keep the app
            if not worker.is_cancelled:
                self.post_message(SearchFailed(query_id, f"search failed: {type(e).__name__}: {e}"))
            return
        if not worker.is_cancelled:
            self.post_message(PageLoaded(query_id, 0, rows, total, time.perf_counter() - t0,
                                         window.describe() if window else "", result_set=rs))

    @work(thread=True, exclusive=True, group="page")
    def _more(self, query_id: int, rs: ResultSet, offset: int) -> None:
        t0 = time.perf_counter()
        try:
            rows = rs.page(offset, self.app.config.page_size).to_dicts()
        except Exception as e:  # e.g. a partition rewritten under us: say so, keep the rows shown
            self.post_message(SearchFailed(query_id, f"loading more rows failed: {type(e).__name__}: {e}",
                                           keep_rows=True))
            return
        self.post_message(PageLoaded(query_id, offset, rows, rs.total, time.perf_counter() - t0))

    def on_search_progress(self, m: SearchProgress) -> None:
        """Say what a running search waits for; a late message of a superseded search is dropped."""
        if m.query_id == self.query_id and self.fetching:
            self._progress_for = m.query_id
            self.set_status(Text(m.text, style="dim"))

    def on_page_loaded(self, m: PageLoaded) -> None:
        """Show a page of results (a first page replaces the table); late answers are dropped."""
        if m.query_id != self.query_id:
            return  # answer to a superseded search
        table = self.query_one("#results", TraceTable)
        if m.offset == 0:  # a new search: new columns and rows in one go (one repaint)
            table.text_width = self.text_width()
            table.keys = (("similarity",) if m.ranked else ()) + TraceTable.DEFAULT_KEYS
            table.set_columns(time_label="time (UTC) " + ("▼" if self.newest_first else "▲"))
            table.traces = []
        elif m.offset != len(table.traces):
            return
        table.add_traces(m.rows)
        if m.offset == 0:
            self._answered_focus(m.query_id)
        self.fetching = False
        self.total = m.total
        if m.offset == 0:
            table.when_painted(self._painted)
            self.app.warm_up()
            self.result_set = m.result_set
            self._window = m.window
            self._ranked = m.ranked
            self._seconds = m.seconds
        self.update_status()

    def _painted(self) -> None:
        self.painted_at = time.perf_counter()  # when a search's first page reached the screen (benchmarks)

    def on_search_failed(self, m: SearchFailed) -> None:
        """Say why the search failed; the rows shown go unless a later page failed."""
        if m.query_id != self.query_id:
            return
        self._answered_focus(m.query_id)
        self.fetching = False
        if not m.keep_rows:
            self.total = 0
            self.result_set = None
            self.query_one("#results", TraceTable).replace([])  # old rows would pass for answers
        self.set_status(safe(m.error, "bold red"))

    def update_status(self) -> None:
        """The status line: how many traces, how many shown, the order and the window."""
        table = self.query_one("#results", TraceTable)
        shown = len(table.traces)
        t = Text()
        t.append(f"{self.total:,} trace{'s' if self.total != 1 else ''}", style="bold")
        if self.total:
            t.append(f" · showing 1–{shown:,}")
        if self._ranked:
            t.append(" · ranked by similarity")
        else:
            t.append(" · newest first" if self.newest_first else " · oldest first")
        if self._window:
            t.append(f" · {self._window}")
        if self.app.config.show_timings:
            t.append(f" · {self._seconds:.2f} s", style="dim")
        t.append("   * = requested by alias", style="dim")
        self.set_status(t)

    def set_status(self, t: Text) -> None:
        """Replace the status line."""
        self.query_one("#status", Static).update(t)

    @on(DataTable.RowHighlighted, "#results")
    def _near_end(self, event: DataTable.RowHighlighted) -> None:
        table = self.query_one("#results", TraceTable)
        n = len(table.traces)
        if (self.result_set is not None and not self.fetching and n < self.total
                and event.cursor_row >= n - min(PREFETCH_ROWS, self.app.config.page_size // 4)):
            self.fetching = True
            self._more(self.query_id, self.result_set, n)

    @on(FilterBar.Submitted)
    def _filters(self, event: FilterBar.Submitted) -> None:
        self.run_search(event.query)
        # The focus moves to the results with the answer, in the same frame as its rows: moved now, the old
        # rows would be repainted focused and the footer rebuilt while the query runs, competing with it.
        self._focus_on_answer = self.query_id if event.focus_results else 0
        self._focus_from = self.focused

    def _answered_focus(self, query_id: int) -> None:
        """Move the focus to the results when the search that asked for it is answered, unless it moved meanwhile."""
        if self._focus_on_answer != query_id:
            return
        self._focus_on_answer = 0
        if self.focused is None or self.focused is self._focus_from:
            self.query_one("#results", TraceTable).focus()
        self._focus_from = None

    @on(DataTable.HeaderSelected, "#results")
    def _header(self, event: DataTable.HeaderSelected) -> None:
        if event.column_key.value == "time":
            self.action_toggle_sort()

    # ------------------------------------------------------------------ actions

    def action_focus_text(self) -> None:
        """Focus the text filter (``/``)."""
        self.query_one("#f-text", Input).focus()

    def action_focus_field(self, name: str) -> None:
        """Focus the filter field ``name`` (``alt+u`` user, ``alt+s`` session, ``alt+i`` trace id, ...)."""
        self.query_one(f"#f-{name}", Input).focus()

    def action_toggle_refusals(self) -> None:
        """Flip the refusals-only filter (``alt+r``) and search again."""
        box = self.query_one("#f-refusal", Checkbox)
        box.value = not box.value

    def on_key(self, event: events.Key) -> None:
        """A printable key the results table has no use for starts a text search, instead of doing nothing."""
        if self.focused is not self.query_one("#results") or not event.is_printable or not event.character:
            return
        if event.key in self._table_keys():
            return
        event.stop()
        event.prevent_default()
        field = self.query_one("#f-text", Input)
        # the typing goes on in the field: no select-all on this focus, or the next key would replace this one
        field.select_on_focus = False
        field.focus()
        char = event.character

        field.call_later(field.insert_text_at_cursor, char)

    @on(Input.Blurred, "#f-text")
    def _text_left(self, event: Input.Blurred) -> None:
        # typing that started in the table kept its text unselected; focusing the field again selects it as usual
        event.input.select_on_focus = True

    def _table_keys(self) -> set[str]:
        """Keys bound on this screen or the app (the table's own letters act; any other letter types)."""
        keys = {b.key for b in [*self.BINDINGS, *self.app.BINDINGS] if isinstance(b, Binding)}
        return keys | {"question_mark", "slash"}

    def action_focus_results(self) -> None:
        """Focus the results table (``escape``)."""
        self.query_one("#results", TraceTable).focus()

    def action_toggle_sort(self) -> None:
        """Flip between newest and oldest first (``t``) and search again."""
        self.newest_first = not self.newest_first
        self.run_search()

    def _open(self, then: str | None = None) -> None:
        r = self.query_one("#results", TraceTable).current
        if r is None:
            self.app.notify("no trace selected", severity="warning", markup=False)
            return
        self.app.open_trace(r["trace_id"], r.get("timestamp"), then=then)

    @on(TraceTable.Open)
    def _open_row(self, event: TraceTable.Open) -> None:
        self.app.open_trace(event.trace["trace_id"], event.trace.get("timestamp"))

    def action_open(self) -> None:
        """Open the highlighted trace (``enter``)."""
        self._open()

    def action_replay(self) -> None:
        """Open the highlighted trace and plan its replay (``r``)."""
        self._open("replay")

    def action_diff(self) -> None:
        """Open the highlighted trace on its prompt history (``d``)."""
        self._open("diff")

    def action_similar(self) -> None:
        """Open the highlighted trace on its related traces (``s``)."""
        self._open("similar")

    def action_copy(self) -> None:
        """Open the highlighted trace and copy it as JSON (``c``)."""
        self._open("copy")

    def action_export(self) -> None:
        """Open the highlighted trace and export its reproduction scripts (``x``)."""
        self._open("export")
