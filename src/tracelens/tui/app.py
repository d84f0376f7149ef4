"""The tracelens Textual app and ``make_app``, the factory shared by the CLI, the tests and the benchmark.

Screens: find (base) → trace → replay; this week → trace; help. Every
screen does its slow work in thread workers that call the headless core
and post ``tracelens.tui.messages`` back. ``TuiConfig`` holds everything
that differs between a terminal session and a test: the clock ("yesterday"
is relative to it), where exports go, the replay endpoint and environment,
and whether the cursor blinks.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

from textual import work
from textual.app import App
from textual.binding import Binding
from textual.widgets import Input

from tracelens.idindex import TraceIdIndex
from tracelens.query import FindQuery, load_trace
from tracelens.store import Store
from tracelens.timeexpr import TimeWindow
from tracelens.tui.commands import TraceLensCommands
from tracelens.tui.messages import TraceReady
from tracelens.tui.screens.find import FindScreen
from tracelens.weekly import WeeklyFindings

EXPORT_ENV = "TRACELENS_EXPORT_DIR"


@dataclass
class TuiConfig:
    """Settings of one TUI session."""

    now: Callable[[], dt.datetime] | None = None
    """Clock for relative times ('yesterday 3pm'); None = the real UTC clock."""
    tz: str = "UTC"
    """Zone in which typed times without a zone are read (display is always UTC)."""
    export_dir: Path = field(default_factory=lambda: Path(os.environ.get(EXPORT_ENV) or "tracelens-exports"))
    """Where `c` (trace JSON) and `x` (reproduction scripts) write files."""
    report_path: Path | None = None
    """A drift report JSON for the This-week screen, instead of computing it."""
    week: str | TimeWindow | None = None
    """ISO week for the This-week screen (e.g. 2026-W47, or a window read by `--week`); None = the last complete week."""
    weekly: Callable[[Store], WeeklyFindings] | None = None
    """Findings loader for the This-week screen (tests inject one); None = tracelens.analysis."""
    replay_base_url: str | None = None
    """Messages API base URL for replays; None = $ANTHROPIC_BASE_URL, else the public API."""
    replay_api_key_env: str = "ANTHROPIC_API_KEY"
    """Name of the environment variable that holds the API key (the key itself is never shown)."""
    replay_env: Mapping[str, str] | None = None
    """Environment the replay client reads the key from; None = os.environ."""
    replay_concurrency: int = 4
    """Replays in flight at once."""
    save_replays: bool = True
    """Store replay results under <store>/replays like `tracelens replay` does."""
    page_size: int = 200
    """Rows fetched per page of search results."""
    initial_query: FindQuery | None = None
    """Filters to start with."""
    cursor_blink: bool = True
    """False in tests and screenshots, so renders are deterministic."""
    show_timings: bool = True
    """Show how long each search took in the status line (off for deterministic screenshots)."""
    subtitle: str | None = None
    """Header subtitle; None = the store path."""


class TraceLensApp(App):
    """Find a trace from a complaint, read it in context, replay it."""

    CSS_PATH = "app.tcss"
    TITLE = "tracelens"
    COMMANDS = App.COMMANDS | {TraceLensCommands}
    BINDINGS = [
        Binding("q", "quit", "quit", id="app.quit"),
        Binding("question_mark", "help", "help", key_display="?", id="app.help"),
        Binding("w", "week", "this week", show=False, id="app.week"),
    ]

    def __init__(self, store: Store, config: TuiConfig | None = None) -> None:
        super().__init__()
        self.store = store
        self.config = config or TuiConfig()
        self._warmed = False
        self.ids = TraceIdIndex(store)  # trace id -> partition, built in the background by warm_up
        self.sub_title = self.config.subtitle if self.config.subtitle is not None else str(store.root)

    def now(self) -> dt.datetime:
        """The app's clock (fixed in tests and screenshots), in UTC."""
        return self.config.now() if self.config.now else dt.datetime.now(dt.UTC)

    def get_default_screen(self) -> FindScreen:
        """The find screen, with the configured initial query."""
        return FindScreen(self.config.initial_query)

    def on_mount(self) -> None:
        """Freeze cursor blinking when configured (stable snapshots)."""
        self._freeze_blink()

    def _freeze_blink(self) -> None:
        if not self.config.cursor_blink:
            for i in self.screen.query(Input):
                i.cursor_blink = False

    def on_screen_resume(self) -> None:
        """Freeze cursor blinking on a screen shown again."""
        self._freeze_blink()

    def warm_up(self) -> None:
        """Import the replay core (and the anthropic SDK) and build the trace-id index in the background, once
        the first page is shown.

        The import takes seconds on a small machine; done here, opening a trace
        or a replay does not wait for it. With the index, a lookup by trace id
        (or a prefix of one) opens only the partitions holding it; until it is
        built, lookups scan as before.
        """
        if not self._warmed:
            self._warmed = True
            self._warm()
            self._build_ids()

    @work(thread=True, group="warm-up")
    def _build_ids(self) -> None:
        # a damaged file leaves the index unusable; lookups then scan, and the scan reports the file
        with contextlib.suppress(Exception):
            self.ids.refresh()

    @work(thread=True, group="warm-up")
    def _warm(self) -> None:
        # replay is optional here: its screen reports why it cannot run
        with contextlib.suppress(Exception):
            import tracelens.replay  # noqa: F401

    # ------------------------------------------------------------------ navigation

    def open_trace(self, trace_id: str, timestamp: dt.datetime | None = None, then: str | None = None) -> None:
        """Read the trace in a worker, then push its screen (then = an action to run on it, e.g. "replay").

        Reading first and building the screen after keeps the two from
        competing for the interpreter, which on a small machine halves the
        time to a painted trace.
        """
        self._read_trace(trace_id, timestamp, then)

    @work(thread=True, exclusive=True, group="open")
    def _read_trace(self, trace_id: str, timestamp: dt.datetime | None, then: str | None) -> None:
        day = timestamp.astimezone(dt.UTC).date() if timestamp else None
        try:
            trace = load_trace(self.store, trace_id, day)
        except Exception as e:  # a damaged partition: say so on the trace screen instead of crashing
            self.post_message(TraceReady(trace_id, None, then, f"{type(e).__name__}: {e}"))
            return
        error = None if trace is not None else f"no trace {trace_id!r} in the store"
        self.post_message(TraceReady(trace_id, trace, then, error))

    def on_trace_ready(self, m: TraceReady) -> None:
        """Push the trace screen for a trace read by ``open_trace`` (or its error)."""
        from tracelens.tui.screens.trace import TraceScreen

        self.push_screen(TraceScreen(m.trace_id, then=m.then, trace=m.trace, error=m.error))

    def action_week(self) -> None:
        """Show the This-week findings (``w``), unless already shown."""
        from tracelens.tui.screens.week import WeekScreen

        if not isinstance(self.screen, WeekScreen):
            self.push_screen(WeekScreen())

    def action_help(self) -> None:
        """Show the key reference (``?``), unless already shown."""
        from tracelens.tui.screens.help import HelpScreen

        if not isinstance(self.screen, HelpScreen):
            self.push_screen(HelpScreen())


def make_app(store: Store | str | os.PathLike, config: TuiConfig | None = None, **settings) -> TraceLensApp:
    """Build the app over ``store`` (a Store or its path); ``settings`` are ``TuiConfig`` fields."""
    if isinstance(store, str | os.PathLike):
        from tracelens.storeopen import open_store

        store = open_store(store)
    if config is None:
        config = TuiConfig(**settings)
    elif settings:
        raise TypeError("pass either config or settings, not both")
    return TraceLensApp(store, config)
