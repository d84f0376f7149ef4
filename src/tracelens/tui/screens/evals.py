"""Evals from the trace screen: add the open trace to a suite (``a``), and its history as a case (``v``).

The suite file and the results are the ones `tracelens eval` reads and writes
(``tracelens.evals``); nothing here sends requests.
"""

from __future__ import annotations

from rich.text import Text
from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.message import Message
from textual.screen import ModalScreen, Screen
from textual.widgets import DataTable, Header, Input, Label, Static

from tracelens.tui.widgets.footer import KeyFooter
from tracelens.tui.widgets.text import minute, safe, safe_line

DEFAULT_EXPECT = "behaves-like"


class CaseAdded(Message):
    """The worker's answer: ``text`` to show, ``ok`` whether a case was added or replaced."""

    def __init__(self, text: str, ok: bool) -> None:
        super().__init__()
        self.text = text
        self.ok = ok


class AddCaseScreen(ModalScreen[str | None]):
    """Suite name, graders (one-line forms) and tags for the open trace; enter adds it, escape cancels."""

    BINDINGS = [Binding("escape", "dismiss_none", "cancel")]

    def __init__(self, trace: dict, suite: str | None = None) -> None:
        super().__init__()
        self.trace = trace
        self.suite = suite or (trace.get("app") or "regressions")

    def compose(self) -> ComposeResult:
        """Three fields and a line for the outcome."""
        with Vertical(id="add-case"):
            yield Static(Text("Add this trace to an eval suite", style="bold"), markup=False)
            yield Static(safe_line(self.trace.get("trace_id"), 60, "dim"), markup=False)
            with Horizontal(classes="form-row"):
                yield Label("suite ", markup=False)
                yield Input(self.suite, id="suite", compact=True)
            with Horizontal(classes="form-row"):
                yield Label("expect", markup=False)
                yield Input(DEFAULT_EXPECT, id="expect", compact=True,
                            placeholder="behaves-like; not-refused; contains:refund")
            with Horizontal(classes="form-row"):
                yield Label("tags  ", markup=False)
                yield Input("", id="tags", compact=True, placeholder="task=refund risk=high")
            yield Static(Text("enter adds · escape cancels · graders separated by ';'", style="dim"), id="add-status",
                         markup=False)

    def on_mount(self) -> None:
        """Focus the suite name."""
        for i in self.query(Input):
            i.cursor_blink = self.app.config.cursor_blink
        self.query_one("#suite", Input).focus()

    def action_dismiss_none(self) -> None:
        """Close without adding."""
        self.dismiss(None)

    @on(Input.Submitted)
    def _submitted(self, event: Input.Submitted) -> None:
        event.stop()
        suite = self.query_one("#suite", Input).value.strip()
        expect = [e.strip() for e in self.query_one("#expect", Input).value.split(";") if e.strip()]
        tags = self.query_one("#tags", Input).value.split()
        self.query_one("#add-status", Static).update(Text("adding…", style="dim"))
        self._add(suite, expect, tags)

    @work(thread=True, exclusive=True, group="add-case")
    def _add(self, suite: str, expect: list[str], tags: list[str]) -> None:
        from tracelens.evals.graders import SuiteError
        from tracelens.evals.suite import add_traces, parse_expect

        try:
            tag_map = {}
            for t in tags:
                k, sep, v = t.partition("=")
                if not sep or not k:
                    raise SuiteError(f"tag {t!r}: use NAME=VALUE")
                tag_map[k] = v
            graders = parse_expect(expect)
            out = add_traces(self.app.store.root, suite, [self.trace["trace_id"]], self.app.store.get, graders,
                             tag_map, replace=True)
        except (SuiteError, OSError) as e:
            self.post_message(CaseAdded(str(e), False))
            return
        if out.skipped:
            self.post_message(CaseAdded(next(iter(out.skipped.values())), False))
            return
        verb = "replaced in" if out.replaced else "added to"
        self.post_message(CaseAdded(f"{self.trace['trace_id']} {verb} suite {out.suite.name} "
                                    f"({len(out.suite.cases)} cases); run it with `tracelens eval run "
                                    f"{out.suite.name}`", True))

    def on_case_added(self, m: CaseAdded) -> None:
        """Close with the outcome, or show why it failed and stay."""
        if m.ok:
            self.dismiss(m.text)
        else:
            self.query_one("#add-status", Static).update(safe(m.text, "bold red"))


class HistoryLoaded(Message):
    """The suites holding the trace and each case's runs (``error`` when they could not be read)."""

    def __init__(self, rows: list, error: str | None = None) -> None:
        super().__init__()
        self.rows = rows
        self.error = error


class CaseHistoryScreen(Screen):
    """Every suite case built from one trace, and how each stored run graded it."""

    BINDINGS = [
        Binding("escape", "app.back", "back", id="evals.back"),
        Binding("a", "add", "add to suite", id="evals.add"),
    ]

    def __init__(self, trace: dict) -> None:
        super().__init__()
        self.trace = trace

    def compose(self) -> ComposeResult:
        """A summary line, the runs table, and the selected run's first answer."""
        yield Header()
        yield Static(Text("loading…", style="dim"), id="history-title", markup=False)
        yield DataTable(id="case-runs", cursor_type="row", zebra_stripes=True)
        with VerticalScroll(id="case-answer-scroll"):
            yield Static(id="case-answer", markup=False)
        yield KeyFooter()

    def on_mount(self) -> None:
        """Read the history in the background."""
        table = self.query_one("#case-runs", DataTable)
        for label, width in (("suite", 16), ("run (UTC)", 16), ("target", 34), ("pass", 5), ("fail", 5),
                             ("error", 5), ("score", 6), ("failed graders", 30)):
            table.add_column(label, width=width)
        table.focus()
        self._load()

    @work(thread=True, exclusive=True, group="case-history")
    def _load(self) -> None:
        from tracelens.evals.history import case_history, cases_for_trace
        from tracelens.evals.runner import load_results

        try:
            rows = []
            cases = cases_for_trace(self.app.store.root, self.trace["trace_id"])
            df = load_results(self.app.store.root) if cases else None  # read once, whatever the number of suites
            for suite, case in cases:
                runs = case_history(self.app.store.root, suite, case.id, df)
                rows.append((suite, case, runs))
        except Exception as e:  # a damaged results file: say so, keep the app
            self.post_message(HistoryLoaded([], f"{type(e).__name__}: {e}"))
            return
        self.post_message(HistoryLoaded(rows))

    def on_history_loaded(self, m: HistoryLoaded) -> None:
        """Fill the table: one row per (suite, run)."""
        title = self.query_one("#history-title", Static)
        table = self.query_one("#case-runs", DataTable)
        table.clear()
        self.answers: list[str] = []
        if m.error:
            title.update(safe("eval history failed: " + m.error, "bold red"))
            return
        if not m.rows:
            title.update(Text("This trace is in no eval suite yet: press a to add it.", style="dim"))
            return
        t = Text()
        t.append_text(safe_line(self.trace.get("trace_id"), 40, "bold"))
        t.append(f"  in {len(m.rows)} suite{'s' if len(m.rows) != 1 else ''}: ")
        t.append(", ".join(f"{s} ({sum(1 for _ in r)} run{'s' if len(r) != 1 else ''})" for s, _, r in m.rows))
        title.update(t)
        for suite, _case, runs in m.rows:
            if not runs:
                table.add_row(suite, "no runs yet", "", "", "", "", "", "")
                self.answers.append("")
            for r in runs:
                table.add_row(suite, minute(r.started_at), safe_line(r.target, 34), str(r.passed),
                              Text(str(r.failed), style="bold red" if r.failed else ""),
                              Text(str(r.errors), style="yellow" if r.errors else ""), f"{r.score:.2f}",
                              safe_line(", ".join(r.failed_graders) or "-", 30))
                self.answers.append(r.first_answer or r.first_error or "")
        self._show(0)

    @on(DataTable.RowHighlighted, "#case-runs")
    def _highlighted(self, event: DataTable.RowHighlighted) -> None:
        self._show(event.cursor_row)

    def _show(self, i: int) -> None:
        answers = getattr(self, "answers", [])
        text = answers[i] if 0 <= i < len(answers) else ""
        self.query_one("#case-answer", Static).update(safe(text) if text else Text("", style="dim"))

    def action_add(self) -> None:
        """Add the trace to a suite (``a``), then reload the history."""

        def done(msg: str | None) -> None:
            if msg:
                self.app.notify(msg, title="eval suite", markup=False, timeout=8)
                self._load()

        self.app.push_screen(AddCaseScreen(self.trace), done)
