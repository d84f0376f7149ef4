"""This week: the weekly drift findings; a finding's evidence traces open in the trace view."""

from __future__ import annotations

from rich.text import Text
from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.screen import Screen
from textual.widgets import DataTable, Header, Static

from tracelens.extras import NotAvailable
from tracelens.query import trace_rows
from tracelens.tui.messages import EvidenceLoaded, FindingsLoaded, FindingsProgress
from tracelens.tui.widgets.footer import KeyFooter
from tracelens.tui.widgets.results import TraceTable
from tracelens.tui.widgets.text import safe, safe_line
from tracelens.weekly import weekly_findings

SEVERITY_STYLE = {"alert": "bold red", "warn": "bold yellow", "info": "cyan"}


class WeekScreen(Screen):
    """Findings of the latest week; enter on a finding lists its evidence, enter on a trace opens it."""

    BINDINGS = [
        Binding("escape", "app.back", "back", id="week.back"),
        Binding("tab", "app.focus_next", "next table", show=False),
    ]

    def __init__(self) -> None:
        super().__init__()
        self.findings: list = []

    def compose(self) -> ComposeResult:
        """Status line, the findings table, and the evidence traces of the selected finding."""
        yield Header()
        yield Static(Text("computing this week's findings…", style="dim"), id="week-status", markup=False)
        yield DataTable(id="findings", cursor_type="row", zebra_stripes=True)
        yield Static(Text("evidence: select a finding", style="dim"), id="evidence-status", markup=False)
        yield TraceTable(id="evidence", text_width=26)
        yield KeyFooter()

    def on_mount(self) -> None:
        """Set up the findings table and load the findings."""
        table = self.query_one("#findings", DataTable)
        summary = max(30, self.app.size.width - 8 - 22 - 36 - 8 - 12)
        for label, width in (("severity", 8), ("kind", 22), ("segment", 36), ("summary", summary), ("evidence", 8)):
            table.add_column(label, width=width)
        self.query_one("#findings").focus()
        self._load()

    @work(thread=True, exclusive=True, group="findings")
    def _load(self) -> None:
        app = self.app

        def progress(text: str) -> None:
            self.post_message(FindingsProgress(text))

        try:
            loader = app.config.weekly
            wf = loader(app.store) if loader else weekly_findings(app.store, app.config.report_path, app.now(),
                                                                  progress=progress, week=app.config.week)
        except NotAvailable as e:
            self.post_message(FindingsLoaded([], error=str(e)))
            return
        except Exception as e:  # the analysis failing must not take the browser down
            self.post_message(FindingsLoaded([], error=f"drift analysis failed: {type(e).__name__}: {e}"))
            return
        self.post_message(FindingsLoaded(wf.findings, wf.source, wf.window, notes=wf.notes))

    @work(thread=True, exclusive=True, group="evidence")
    def _evidence(self, index: int, trace_ids: tuple[str, ...]) -> None:
        rows = trace_rows(self.app.store, list(trace_ids)).to_dicts()
        self.post_message(EvidenceLoaded(index, rows))

    def on_findings_progress(self, m: FindingsProgress) -> None:
        """Show the step the weekly analysis is at."""
        self.query_one("#week-status", Static).update(Text("computing this week's findings… ", style="dim")
                                                      + safe(m.text, "dim"))

    def on_findings_loaded(self, m: FindingsLoaded) -> None:
        """List the findings, most severe first, and select the first."""
        status = self.query_one("#week-status", Static)
        if m.error:
            status.update(Text("This week: ", style="bold") + safe(m.error, "yellow"))
            return
        self.findings = list(m.findings)
        t = Text(f"This week: {len(self.findings)} finding{'s' if len(self.findings) != 1 else ''}", style="bold")
        if m.window:
            t.append(f" · {m.window}")
        t.append_text(safe(f" · from {m.source}", "dim"))
        for note in m.notes[:3]:
            t.append("\n")
            t.append_text(safe("note: " + note, "dim"))
        status.update(t)
        table = self.query_one("#findings", DataTable)
        table.clear()
        for f in self.findings:
            table.add_row(
                Text(f.severity, style=SEVERITY_STYLE.get(f.severity, "")), safe_line(f.kind, 22),
                safe_line(f.segment, 36), safe_line(f.summary, 200), str(len(f.evidence)),
            )
        if self.findings:
            self.select_finding(0)

    def select_finding(self, i: int) -> None:
        """Load the evidence traces of finding ``i``."""
        if 0 <= i < len(self.findings):
            f = self.findings[i]
            self.query_one("#evidence-status", Static).update(
                Text(f"evidence for {f.kind} / ", style="bold") + safe(f.segment, "bold")
                + Text(f": {len(f.evidence)} trace(s) — loading…", style="dim"))
            self._evidence(i, tuple(f.evidence))

    def on_evidence_loaded(self, m: EvidenceLoaded) -> None:
        """List a finding's evidence traces (saying how many are not in this store)."""
        if m.finding_index >= len(self.findings):
            return
        f = self.findings[m.finding_index]
        t = Text(f"evidence for {f.kind} / ", style="bold") + safe(f.segment, "bold")
        t.append(f": {len(m.rows)} trace(s)", style="bold")
        if len(m.rows) < len(f.evidence):
            t.append(f" ({len(f.evidence) - len(m.rows)} not in this store)", style="yellow")
        t.append("  enter opens", style="dim")
        self.query_one("#evidence-status", Static).update(t)
        self.query_one("#evidence", TraceTable).replace(m.rows)

    @on(DataTable.RowHighlighted, "#findings")
    def _highlighted(self, event: DataTable.RowHighlighted) -> None:
        self.select_finding(event.cursor_row)

    @on(DataTable.RowSelected, "#findings")
    def _selected(self, event: DataTable.RowSelected) -> None:
        self.query_one("#evidence", TraceTable).focus()

    @on(TraceTable.Open)
    def _open(self, event: TraceTable.Open) -> None:
        self.app.open_trace(event.trace["trace_id"], event.trace.get("timestamp"))
