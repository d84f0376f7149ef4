"""Trace: the whole conversation beside its metadata, prompt history and related traces."""

from __future__ import annotations

import datetime as dt
import time
from pathlib import Path

from rich.text import Text
from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, VerticalScroll
from textual.screen import Screen
from textual.widgets import DataTable, Header, Static, TabbedContent, TabPane
from textual.worker import get_current_worker

from tracelens.context import (
    TraceContext,
    refusal_explanation,
    same_prompt_traces,
    similar_traces,
    trace_context,
)
from tracelens.extras import NotAvailable
from tracelens.query import load_trace
from tracelens.replay.reproduce import export_reproduction, export_trace_json
from tracelens.timeexpr import week_of
from tracelens.tui.messages import (
    ContextLoaded,
    CostEstimated,
    ExportDone,
    ExportFailed,
    SamePromptLoaded,
    SimilarLoaded,
    TraceFailed,
    TraceLoaded,
)
from tracelens.tui.widgets.conversation import Conversation, blocks
from tracelens.tui.widgets.diff import unified_diff_text
from tracelens.tui.widgets.footer import KeyFooter
from tracelens.tui.widgets.metadata import MetadataPanel, estimated_cost, metadata_table
from tracelens.tui.widgets.results import TraceTable
from tracelens.tui.widgets.text import minute, safe, safe_line, when


def banner_text(t: dict) -> Text:
    """The trace's id, time and user, while its context is being checked."""
    banner = Text()
    banner.append_text(safe_line(t.get("trace_id"), 40, "bold"))
    banner.append(f"  {when(t.get('timestamp'))} UTC  ")
    banner.append_text(safe_line(t.get("user_id") or "-", 20))
    banner.append("  checking for system-prompt and snapshot changes…", style="dim")
    return banner


class TraceScreen(Screen):
    """One trace. ``then`` names an action to run once it has loaded (e.g. "replay")."""

    BINDINGS = [
        Binding("r", "replay", "replay", id="trace.replay"),
        Binding("d", "diff", "prompt diff", id="trace.diff"),
        Binding("s", "similar", "similar", id="trace.similar"),
        Binding("c", "copy", "copy JSON", id="trace.copy"),
        Binding("x", "export", "export repro", id="trace.export"),
        Binding("a", "add_case", "add to suite", id="trace.add_case"),
        Binding("v", "evals", "eval history", show=False, id="trace.evals"),
        Binding("u", "explain_user", "explain this user", show=False, id="trace.explain_user"),
        Binding("m", "details", "metadata", show=False, id="trace.details"),
        Binding("e", "toggle_system", "system prompt", show=False, id="trace.system"),
        Binding("escape", "app.back", "back", id="trace.back"),
    ]

    def __init__(self, trace_id: str, timestamp: dt.datetime | None = None, then: str | None = None,
                 trace: dict | None = None, error: str | None = None) -> None:
        super().__init__()
        self.trace_id = trace_id
        self.timestamp = timestamp
        self.then = then
        self.preloaded = trace
        self.error = error
        self.trace: dict | None = None
        self.context: TraceContext | None = None
        self.painted_at = 0.0
        self.similar_done = False
        self.similar_error: str | None = None

    def compose(self) -> ComposeResult:
        # A trace read before the screen was pushed is composed in place: one layout, one paint.
        """Banner, conversation, and the Details / Prompt history / Related tabs."""
        pre = self.preloaded
        yield Header()
        yield Static(banner_text(pre) if pre else Text("loading…", style="dim"), id="banner", markup=False)
        with Horizontal(id="trace-body"):
            with Conversation(id="conversation"):
                if pre:
                    yield from blocks(pre, refusal_explanation(pre))
            with TabbedContent(id="side", initial="tab-details"):
                with TabPane("Details", id="tab-details"), VerticalScroll():
                    yield MetadataPanel(metadata_table(pre) if pre else "", id="meta", markup=False)
                with TabPane("Prompt history", id="tab-history"), VerticalScroll(id="history-scroll"):
                    yield Static(Text("loading…", style="dim"), id="history-summary", markup=False)
                    yield DataTable(id="versions", cursor_type="row", zebra_stripes=True)
                    yield Static(id="diff", markup=False)
                    yield Static(Text("served snapshots", style="bold"), markup=False)
                    yield DataTable(id="models", cursor_type="row", zebra_stripes=True)
                with TabPane("Related", id="tab-related"), VerticalScroll(id="related-scroll"):
                    yield Static(Text("same prompt in other weeks: loading…", style="dim"), id="same-summary",
                                 markup=False)
                    yield TraceTable(id="same", columns=("week", "when", "model", "refusal", "response"),
                                     text_width=28, classes="related")
                    yield Static(Text("similar traces: loading…", style="dim"), id="similar-status", markup=False)
                    yield TraceTable(id="similar", columns=("similarity", "when", "refusal", "prompt"),
                                     text_width=30, classes="related")
        yield KeyFooter()

    def on_mount(self) -> None:
        """Show the trace read before the screen was pushed, or read it now."""
        self.query_one("#conversation").focus()
        if self.preloaded is not None:
            self._loaded(self.preloaded)
        elif self.error is not None:
            self.post_message(TraceFailed(self.trace_id, self.error))
        else:
            self._load()

    # ------------------------------------------------------------------ workers

    @work(thread=True, exclusive=True, group="trace")
    def _load(self) -> None:
        day = self.timestamp.astimezone(dt.UTC).date() if self.timestamp else None
        try:
            trace = load_trace(self.app.store, self.trace_id, day)
        except Exception as e:  # a damaged partition: say so instead of crashing the app
            self.post_message(TraceFailed(self.trace_id, f"{type(e).__name__}: {e}"))
            return
        if trace is None:
            self.post_message(TraceFailed(self.trace_id, f"no trace {self.trace_id!r} in the store"))
        else:
            self.post_message(TraceLoaded(trace))

    # The context panels are extras: a failure there is shown in its panel, never takes the app down.

    @work(thread=True, exclusive=True, group="context")
    def _context_panels(self, trace: dict) -> None:
        """Prompt history, cost, same prompt, similar traces: in that order, each posted as it is ready."""
        worker = get_current_worker()
        store = self.app.store
        try:
            self.post_message(ContextLoaded(trace_context(store, trace)))
        except Exception as e:
            self.post_message(ContextLoaded(None, f"prompt history failed: {type(e).__name__}: {e}"))
        try:
            text = estimated_cost(trace)
        except Exception:  # a broken price table costs the cost line, nothing else
            text = None
        if text:
            self.post_message(CostEstimated(text))
        if worker.is_cancelled:
            return
        try:
            df, weeks = same_prompt_traces(store, trace)
            rows = [dict(r, week=week_of(r["timestamp"]).label) for r in df.to_dicts()]
            self.post_message(SamePromptLoaded(rows, weeks))
        except Exception as e:
            self.post_message(SamePromptLoaded([], [], f"failed: {type(e).__name__}: {e}"))
        if worker.is_cancelled:
            return
        try:
            self.post_message(SimilarLoaded(similar_traces(store, trace).to_dicts()))
        except NotAvailable as e:
            self.post_message(SimilarLoaded([], str(e)))
        except Exception as e:  # e.g. a damaged vector file
            self.post_message(SimilarLoaded([], f"similar traces failed: {type(e).__name__}: {e}"))

    @work(thread=True, group="export")
    def _export(self, kind: str) -> None:
        assert self.trace is not None
        directory = Path(self.app.config.export_dir)
        try:
            if kind == "json":
                ex = export_trace_json(self.trace, directory)
            else:
                ex = export_reproduction(self.trace, directory)
        except (OSError, ValueError, NotAvailable) as e:
            self.post_message(ExportFailed(kind, str(e)))
            return
        self.post_message(ExportDone(kind, [str(p) for p in ex.paths], ex.text))

    # ------------------------------------------------------------------ handlers

    def on_trace_loaded(self, m: TraceLoaded) -> None:
        """Fill the conversation, the metadata and the banner."""
        t = m.trace
        self.query_one(Conversation).show(t, refusal_explanation(t))
        self.query_one(MetadataPanel).show(t)
        self.query_one("#banner", Static).update(banner_text(t))
        self._loaded(t)

    def _loaded(self, t: dict) -> None:
        self.trace = t
        # after the conversation is painted; one thread, so it does not compete with the paint
        self.call_after_refresh(self._painted, t)
        if self.then:
            action, self.then = self.then, None
            self.call_after_refresh(self.run_action, action)

    def on_cost_estimated(self, m: CostEstimated) -> None:
        """Add the list-price cost to the metadata."""
        if self.trace is not None:
            self.query_one(MetadataPanel).show(self.trace, m.text)

    def _painted(self, trace: dict) -> None:
        self.painted_at = time.perf_counter()  # when the conversation reached the screen (benchmarks)
        self._context_panels(trace)

    def on_trace_failed(self, m: TraceFailed) -> None:
        """Say why the trace could not be read."""
        self.query_one("#banner", Static).update(safe(m.error, "bold red"))

    def on_context_loaded(self, m: ContextLoaded) -> None:
        """Banner notes, prompt versions, the prompt diff and the served snapshots."""
        if m.context is None:
            self.query_one("#banner", Static).update(safe(m.error or "", "red"))
            self.query_one("#history-summary", Static).update(safe(m.error or "", "red"))
            return
        self.context = ctx = m.context
        changed = any(n.startswith(("The system prompt changed", "The served snapshot changed")) for n in ctx.notes)
        banner = Text()
        for i, note in enumerate(ctx.notes):
            if i:
                banner.append("\n")
            style = "bold yellow" if changed and "changed" in note.split(":")[0] else ""
            banner.append_text(safe(("⚠ " if style else "· ") + note, style))
        self.query_one("#banner", Static).update(banner)
        self.query_one("#banner").set_class(changed, "changed")
        v = ctx.prompt_version
        summary = Text()
        if v is None:
            summary.append("This trace's system prompt was not found in the history.", style="dim")
        else:
            summary.append(f"This trace used system prompt v{v.number} of {len(ctx.prompt_versions)} ", style="bold")
            summary.append_text(safe(f"({ctx.segment})"))
            summary.append(f"\nv{v.number}: first seen {minute(v.first_seen)}, last seen {minute(v.last_seen)}, "
                           f"{v.traces:,} traces")
        table = self.query_one("#versions", DataTable)
        table.clear(columns=True)
        for label, width in (("version", 7), ("first seen (UTC)", 16), ("last seen", 16), ("traces", 7)):
            table.add_column(label, width=width)
        shown = ctx.prompt_versions
        if ctx.templated and ctx.prompt_current is not None:
            lo = max(0, ctx.prompt_current - 10)
            shown = ctx.prompt_versions[lo: lo + 20]
        for pv in shown:
            this = v is not None and pv.number == v.number
            label = Text(f"▶ v{pv.number}", style="bold yellow") if this else f"  v{pv.number}"
            table.add_row(label, minute(pv.first_seen), minute(pv.last_seen), f"{pv.traces:,}")
        self.query_one("#history-summary", Static).update(summary)
        prev = ctx.previous_version
        if prev is None:
            diff = Text("No earlier system prompt: nothing to diff.", style="dim")
        elif not ctx.prompt_diff:
            diff = Text(f"v{prev.number} → v{v.number}: same text (whitespace only).", style="dim")
        else:
            diff = Text(f"diff v{prev.number} → v{v.number}\n", style="bold")
            diff.append_text(unified_diff_text(ctx.prompt_diff))
        self.query_one("#diff", Static).update(diff)
        models = self.query_one("#models", DataTable)
        models.clear(columns=True)
        for label, width in (("model returned", 32), ("first seen (UTC)", 16), ("traces", 7)):
            models.add_column(label, width=width)
        for i, mv in enumerate(ctx.models):
            this = i == ctx.model_current
            label = Text("▶ ", style="bold yellow") if this else Text("  ")
            label.append_text(safe_line(mv.key or "-", 30, "bold yellow" if this else ""))
            models.add_row(label, minute(mv.first_seen), f"{mv.traces:,}")

    def on_same_prompt_loaded(self, m: SamePromptLoaded) -> None:
        """The same prompt in other weeks: per-week counts and the traces."""
        t = Text("same prompt in other weeks", style="bold")
        if m.error:
            t.append_text(safe(": " + m.error, "red"))
        elif not m.rows:
            t.append(": none (no other trace has this exact prompt)", style="dim")
        for w in m.weeks:
            t.append(f"\n  {w.week}: {w.traces:,} trace{'s' if w.traces != 1 else ''}, ")
            t.append(f"{w.refusals:,} refused", style="bold red" if w.refusals else "")
        self.query_one("#same-summary", Static).update(t)
        self.query_one("#same", TraceTable).replace(m.rows)

    def on_similar_loaded(self, m: SimilarLoaded) -> None:
        """The similar traces, or why there are none."""
        t = Text("similar traces", style="bold")
        if m.error:
            t.append(f": {m.error}", style="yellow")
        elif not m.rows:
            t.append(": none found", style="dim")
        else:
            t.append(f" (nearest {len(m.rows)} by prompt embedding)", style="dim")
        self.query_one("#similar-status", Static).update(t)
        similar = self.query_one("#similar", TraceTable)
        similar.replace(m.rows)
        self.similar_done, self.similar_error = True, m.error
        if not m.rows and self.focused is similar:
            self.query_one("#same", TraceTable).focus()

    @on(TraceTable.Open)
    def _open_related(self, event: TraceTable.Open) -> None:
        self.app.open_trace(event.trace["trace_id"], event.trace.get("timestamp"))

    def on_export_done(self, m: ExportDone) -> None:
        """Copy the export to the clipboard and say where it was written."""
        self.app.copy_to_clipboard(m.text)
        if m.kind == "json":
            msg = f"Copied the trace as JSON to the clipboard; also written to {m.paths[0]}"
        else:
            msg = ("Reproduction written (API key read from $ANTHROPIC_API_KEY, never inlined):\n"
                   + "\n".join(m.paths) + "\ncurl script copied to the clipboard")
        self.app.notify(msg, title="export", markup=False, timeout=8)

    def on_export_failed(self, m: ExportFailed) -> None:
        """Say why the export failed."""
        self.app.notify(f"cannot export: {m.error}", severity="error", markup=False, timeout=8)

    # ------------------------------------------------------------------ actions

    def _ready(self) -> bool:
        if self.trace is None:
            self.app.notify("the trace is still loading", severity="warning", markup=False)
            return False
        return True

    def action_replay(self) -> None:
        """Plan a replay of this trace (``r``)."""
        if self._ready():
            from tracelens.tui.screens.replay import ReplayScreen

            self.app.push_screen(ReplayScreen(self.trace))

    def action_diff(self) -> None:
        """Show the prompt history and diff (``d``)."""
        self.query_one(TabbedContent).active = "tab-history"
        self.query_one("#history-scroll").focus()

    def action_similar(self) -> None:
        """Show the related traces (``s``); focus the similar ones when there are any."""
        self.query_one(TabbedContent).active = "tab-related"
        similar = self.query_one("#similar", TraceTable)
        unavailable = self.similar_error is not None or (self.similar_error is None and self.similar_done
                                                         and not similar.traces)
        (self.query_one("#same", TraceTable) if unavailable else similar).focus()

    def action_toggle_system(self) -> None:
        """Unfold or fold a long system prompt."""
        from textual.widgets import Collapsible

        for c in self.query("#system-prompt").results(Collapsible):
            c.collapsed = not c.collapsed

    def action_details(self) -> None:
        """Show the metadata tab (``m``)."""
        self.query_one(TabbedContent).active = "tab-details"

    def action_copy(self) -> None:
        """Copy the trace as JSON and write it to the export directory (``c``)."""
        if self._ready():
            self._export("json")

    def action_export(self) -> None:
        """Write curl and Python reproduction scripts (``x``)."""
        if self._ready():
            self._export("repro")

    def action_add_case(self) -> None:
        """Add this trace to an eval suite (``a``)."""
        if self._ready():
            from tracelens.tui.screens.evals import AddCaseScreen

            def done(msg: str | None) -> None:
                if msg:
                    self.app.notify(msg, title="eval suite", markup=False, timeout=8)

            self.app.push_screen(AddCaseScreen(self.trace), done)

    def action_evals(self) -> None:
        """This trace's history as an eval case (``v``)."""
        if self._ready():
            from tracelens.tui.screens.evals import CaseHistoryScreen

            self.app.push_screen(CaseHistoryScreen(self.trace))

    def action_explain_user(self) -> None:
        """Explain this trace's user: their complaint dossier (``u``)."""
        if self._ready():
            if not self.trace.get("user_id"):
                self.app.notify("this trace has no user id", severity="warning", markup=False)
                return
            from tracelens.tui.screens.explain import ExplainScreen

            self.app.push_screen(ExplainScreen(self.trace["user_id"]))
