"""Replay: choose N and the model, see the cost, confirm, watch progress, compare and judge.

Planning, sending, saving and judging are ``tracelens.replay.session``'s (the
same session `tracelens replay` runs), and the per-replay similarity column
is ``replay.verdict.replay_similarities``, the measure behind the verdict:
the same replay gets the same numbers and the same verdict here and in the CLI.
"""

from __future__ import annotations

import threading

from rich.table import Table
from rich.text import Text
from textual import events, on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.screen import Screen
from textual.widgets import Button, DataTable, Header, Input, Label, ProgressBar, Static

from tracelens.context import word_diff
from tracelens.replay.verdict import replay_similarities
from tracelens.textsafe import visible
from tracelens.tui.messages import ReplayFinished, ReplayPlanned, ReplayProgress
from tracelens.tui.widgets.diff import word_diff_side
from tracelens.tui.widgets.footer import KeyFooter
from tracelens.tui.widgets.text import refusal_text, safe, safe_line

VERDICT_STYLE = {"reproduces": "bold green", "within_variance": "bold cyan", "differs": "bold red",
                 "inconclusive": "bold yellow"}
MAX_N = 100


def verdict_table(v) -> Table:
    """The verdict with the numbers behind it, as ``tracelens.replay.verdict`` computed them."""
    t = Table.grid(padding=(0, 2))
    t.add_column(style="bold", no_wrap=True)
    t.add_column()
    t.add_row("verdict", Text(v.verdict.replace("_", " "), style=VERDICT_STYLE.get(v.verdict, "bold")))
    for r in v.reasons:
        t.add_row("", safe(r))
    t.add_row("replays", f"{v.n_replays} ok, {v.n_errors} failed")
    refusals = ", ".join(f"{k} {n}" for k, n in sorted(v.replay_refusals.items())) or "-"
    t.add_row("refusal", f"original {v.original_refusal or '-'}; replays {refusals}"
              + (f"; flip {v.refusal_flip} ({v.refusal_flip_share:.0%})" if v.refusal_flip else ""))

    def f(x, fmt="{:.3f}"):
        return "-" if x is None else fmt.format(x)

    t.add_row("similarity", f"original↔replays {f(v.original_similarity)}, replays↔replays {f(v.replay_similarity)}"
              f" (min {f(v.replay_similarity_min)}), {v.similarity_method}")
    t.add_row("exact match", f(v.exact_match_rate, "{:.0%}"))
    t.add_row("length ratio", f(v.length_ratio, "{:.2f}"))
    if v.p_value is not None:
        t.add_row("p-value", f"{v.p_value:.3f} (conformal rank of the original among the replays)")
    return t


class CountInput(Input):
    """A whole-number field that lets other keys through, so ``q`` still quits and ``[`` ``]`` still page."""

    def check_consume_key(self, key: str, character: str | None) -> bool:
        """Digits and signs are typed; every other key goes to the screen's and app's bindings."""
        return character is not None and (character.isdigit() or character in "+-")

    async def _on_key(self, event: events.Key) -> None:
        if event.is_printable and not self.check_consume_key(event.key, event.character):
            event.prevent_default()  # Input's handler would swallow it; it goes on to the bindings


class ReplayScreen(Screen):
    """Replays one trace against its pinned snapshot (or another model) and shows the verdict."""

    BINDINGS = [
        Binding("escape", "back", "back / stop", id="replay.back"),
        Binding("ctrl+s", "send", "send", id="replay.send"),
        Binding("left_square_bracket", "prev_replay", "prev replay", key_display="[", id="replay.prev"),
        Binding("right_square_bracket", "next_replay", "next replay", key_display="]", id="replay.next"),
    ]

    def __init__(self, trace: dict) -> None:
        super().__init__()
        self.trace = trace
        self.plan = None
        self.results: list = []
        self.verdict = None  # the last run's replay.verdict.Verdict (None before a run, or when all failed)
        self.running = False
        self.cancel = threading.Event()
        self.selected = 0
        self.focus_send = False  # focus Send once the plan for the current inputs arrives
        self.planned_for: tuple[int | None, str | None] | None = None

    def compose(self) -> ComposeResult:
        """N and model inputs, the plan, Send and progress, the verdict, the replays and the diff."""
        t = self.trace
        yield Header()
        with Vertical(id="replay-form"):
            with Horizontal(classes="form-row"):
                yield Label("replays N", markup=False)
                yield CountInput("5", id="n", type="integer", compact=True, classes="short")
                yield Label("model", markup=False)
                yield Input(self._initial_model(), id="model", compact=True, placeholder="pinned snapshot",
                            classes="mid")
            yield Static(Text("planning…", style="dim"), id="plan", markup=False)
            with Horizontal(classes="form-row buttons"):
                yield Button("Send", id="send", variant="primary", disabled=True, compact=True)
                yield ProgressBar(id="progress", show_eta=False)
        yield Static(id="verdict", markup=False)
        yield DataTable(id="replays", cursor_type="row", zebra_stripes=True)
        with Horizontal(id="sides"):
            with VerticalScroll(id="left"):
                yield Static(Text("original response", style="bold"), classes="side-title", markup=False)
                yield Static(safe(t.get("response_text") or ""), id="original", markup=False)
            with VerticalScroll(id="right"):
                yield Static(Text("replay", style="bold"), id="replay-title", classes="side-title", markup=False)
                yield Static(Text("no replay yet", style="dim"), id="replay", markup=False)
        yield KeyFooter()

    def _initial_model(self) -> str:
        # an Input shows its value raw: a model id with control characters from the log stays out of it
        # (the plan then picks the pinned snapshot itself, and shows it as safe text)
        model = self.trace.get("model_returned") or ""
        return model if visible(model) == model else ""

    def on_mount(self) -> None:
        """Set up the replays table and plan with the default inputs."""
        self.query_one("#progress", ProgressBar).display = False  # no indeterminate animation before a send
        for i in self.query(Input):
            i.cursor_blink = self.app.config.cursor_blink
        table = self.query_one("#replays", DataTable)
        for label, width in (("#", 3), ("refusal", 7), ("similarity", 10), ("chars", 7), ("latency", 9), ("error", 60)):
            table.add_column(label, width=width)
        self.query_one("#n", Input).focus()
        self.replan()

    # ------------------------------------------------------------------ planning

    def _inputs(self) -> tuple[int | None, str | None, str | None]:
        raw = self.query_one("#n", Input).value.strip()
        try:
            n = int(raw)
        except ValueError:
            return None, None, f"N must be a whole number between 1 and {MAX_N}"
        if not 1 <= n <= MAX_N:
            return None, None, f"N must be between 1 and {MAX_N}"
        model = self.query_one("#model", Input).value.strip() or None
        return n, model, None

    def replan(self) -> None:
        """Plan again for the current inputs (reusing the plan when they have not changed)."""
        n, model, err = self._inputs()
        if err:
            self.query_one("#send", Button).disabled = True
            self.query_one("#plan", Static).update(Text(err, style="bold red"))
            return
        if self.plan is not None and self.planned_for == (n, model):
            self._plan_ready()
            return
        self.query_one("#send", Button).disabled = True
        self._plan(n, model)

    @work(thread=True, exclusive=True, group="plan")
    def _plan(self, n: int, model: str | None) -> None:
        cfg = self.app.config
        try:
            from tracelens.replay import ReplayError, load_prices, plan_session
            from tracelens.replay.client import destination
        except ImportError as e:  # pragma: no cover - the replay core ships with tracelens
            self.post_message(ReplayPlanned(None, cfg.replay_base_url or "the Messages API",
                                            f"replay not available: {e}"))
            return
        dest = destination(cfg.replay_base_url, cfg.replay_env)
        try:
            from tracelens.modelcatalog import load_catalog

            store = getattr(self.app, "store", None)
            # a bad override's stderr warning would garble the screen; the shipped data is used either way
            catalog = load_catalog(store.root if store is not None else None, warn=lambda _msg: None)
            session = plan_session([self.trace], n=n, model=model, prices=load_prices(), catalog=catalog)
            if session.skipped:
                raise ReplayError(next(iter(session.skipped.values())))
            plan = session.plans[0]
        except (ReplayError, ValueError) as e:
            self.post_message(ReplayPlanned(None, dest, str(e), requested=(n, model)))
            return
        except Exception as e:  # a bug in planning must not close the app with the user's work
            self.post_message(ReplayPlanned(None, dest, f"{type(e).__name__}: {e}", requested=(n, model)))
            return
        self.post_message(ReplayPlanned(plan, dest, requested=(n, model)))

    def on_replay_planned(self, m: ReplayPlanned) -> None:
        """Show what will be sent, where and at what cost; enable Send."""
        if m.requested != self._inputs()[:2]:
            return  # the inputs changed since: a newer plan is on its way
        box = self.query_one("#plan", Static)
        self.planned_for = m.requested
        if m.error:
            self.plan = None
            self.focus_send = False
            box.update(Text("cannot replay: ", style="bold red") + safe(m.error))
            return
        p = self.plan = m.plan
        t = Text()
        t.append(f"{p.n} request{'s' if p.n != 1 else ''} ", style="bold")
        t.append("to ")
        t.append_text(safe(m.destination, "bold"))
        t.append(" · model ")
        t.append_text(safe(p.model, "bold"))
        if p.reconstructed:
            t.append(" · request reconstructed from normalised fields", style="yellow")
        if p.estimate is not None:
            t.append("\ncost: ")
            t.append_text(safe(p.estimate.describe()))
        for w in p.warnings:
            t.append("\nnote: ", style="yellow")
            t.append_text(safe(w))
        t.append(f"\nAPI key from ${self.app.config.replay_api_key_env} (never shown or stored)", style="dim")
        box.update(t)
        send = self.query_one("#send", Button)
        usd = p.estimated_cost_usd
        send.label = f"Send {p.n} request{'s' if p.n != 1 else ''}" + (f" (≈ ${usd:.4f})" if usd is not None else "")
        send.refresh(layout=True)  # Button.label repaints only: a longer label would wrap inside the old width
        self._plan_ready()

    def _plan_ready(self) -> None:
        send = self.query_one("#send", Button)
        send.disabled = self.running
        if self.focus_send and not send.disabled:
            self.focus_send = False
            send.focus()

    @on(Input.Submitted)
    def _submitted(self, event: Input.Submitted) -> None:
        event.stop()
        self.focus_send = True
        self.replan()

    @on(Input.Changed)
    def _changed(self, event: Input.Changed) -> None:
        if self.is_mounted and not self.running:
            self.replan()

    # ------------------------------------------------------------------ sending

    @on(Button.Pressed, "#send")
    def _pressed(self) -> None:
        self.action_send()

    def action_send(self) -> None:
        """Send the planned replays (``ctrl+s`` or Send); ``escape`` stops them."""
        if self.running or self.plan is None or self.query_one("#send", Button).disabled:
            return
        self.running = True
        self.cancel.clear()
        self.results = []
        self.query_one("#send", Button).disabled = True
        bar = self.query_one("#progress", ProgressBar)
        bar.update(total=self.plan.n, progress=0)
        bar.display = True
        self.query_one("#replays", DataTable).clear()
        self.query_one("#verdict", Static).update(Text("replaying… (escape stops)", style="dim"))
        self._send(self.plan)

    @work(thread=True, exclusive=True, group="send")
    def _send(self, plan) -> None:
        from tracelens.replay import ReplayClient, ReplayError, ReplaySession, run_session

        cfg = self.app.config
        client = ReplayClient(api_key_env=cfg.replay_api_key_env, base_url=cfg.replay_base_url,
                              env=cfg.replay_env, concurrency=max(1, min(cfg.replay_concurrency, plan.n)))
        done = 0

        def progress(result) -> None:
            nonlocal done
            done += 1
            self.post_message(ReplayProgress(done, plan.n, result))

        session = ReplaySession(plans=[plan], traces={plan.trace_id: self.trace})
        try:
            run_session(session, client, cancel=self.cancel, on_result=progress,
                        save_to=self.app.store.root if cfg.save_replays else None)
        except ReplayError as e:
            self.post_message(ReplayFinished([], None, error=str(e)))
            return
        except Exception as e:  # a bug must not close the app with the user's work
            self.post_message(ReplayFinished(session.results, None, session.interrupted,
                                             error=f"{type(e).__name__}: {e}"))
            return
        verdict = session.verdict_for(plan.trace_id) if session.results else None
        self.post_message(ReplayFinished(session.results, verdict, session.interrupted,
                                         [str(p) for p in session.saved], error=session.save_error))

    def on_replay_progress(self, m: ReplayProgress) -> None:
        """Advance the progress bar."""
        self.query_one("#progress", ProgressBar).update(progress=m.done)

    def on_replay_finished(self, m: ReplayFinished) -> None:
        """Show the verdict and each replay with its similarity to the original."""
        self.running = False
        self.verdict = m.verdict
        self.query_one("#send", Button).disabled = self.plan is None
        box = self.query_one("#verdict", Static)
        if m.verdict is None:
            box.update(Text("replay failed: ", style="bold red") + safe(m.error or "no successful replay"))
        else:
            t = Table.grid()
            t.add_row(verdict_table(m.verdict))
            extra = Text()
            if m.interrupted:
                extra.append("stopped early: partial results", style="yellow")
            if m.error:
                extra.append_text(safe(m.error, "yellow"))
            if extra.plain:
                t.add_row(extra)
            box.update(t)
        self.results = list(m.results)
        table = self.query_one("#replays", DataTable)
        table.clear()
        sims = replay_similarities(self.trace.get("response_text"), self.results)
        for i, (r, sim) in enumerate(zip(self.results, sims, strict=True), 1):
            table.add_row(
                str(i), refusal_text(r.refusal), "-" if sim is None else f"{sim:.0%}",
                f"{len(r.response_text or ''):,}", "-" if r.latency_ms is None else f"{r.latency_ms:,.0f} ms",
                safe_line(r.error or "", 40, "red"),
            )
        if self.results:
            self.show_replay(0)
            table.focus()

    def show_replay(self, i: int) -> None:
        """Show replay ``i`` beside the original, as a word-level diff."""
        if not self.results:
            return
        self.selected = i = max(0, min(i, len(self.results) - 1))
        r = self.results[i]
        original = self.trace.get("response_text") or ""
        if r.error:
            self.query_one("#original", Static).update(safe(original))
            self.query_one("#replay", Static).update(safe(r.error, "red"))
        else:
            ops = word_diff(original, r.response_text or "")
            self.query_one("#original", Static).update(word_diff_side(ops, "original"))
            self.query_one("#replay", Static).update(word_diff_side(ops, "replay"))
        title = Text(f"replay {i + 1} of {len(self.results)}", style="bold")
        title.append("  ")
        title.append_text(refusal_text(r.refusal))
        if r.model_returned:
            title.append("  ")
            title.append_text(safe(r.model_returned, "dim"))
        self.query_one("#replay-title", Static).update(title)

    @on(DataTable.RowHighlighted, "#replays")
    def _row(self, event: DataTable.RowHighlighted) -> None:
        self.show_replay(event.cursor_row)

    def action_prev_replay(self) -> None:
        """Show the previous replay (``[``)."""
        self.query_one("#replays", DataTable).move_cursor(row=self.selected - 1)

    def action_next_replay(self) -> None:
        """Show the next replay (``]``)."""
        self.query_one("#replays", DataTable).move_cursor(row=self.selected + 1)

    def action_back(self) -> None:
        """Stop a running replay (keeping what finished), else leave the screen."""
        if self.running:
            self.cancel.set()
            self.app.notify("stopping: requests in flight are abandoned", markup=False)
            return
        self.app.pop_screen()
