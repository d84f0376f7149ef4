"""Explain this user: the complaint dossier (``tracelens.explain``) of a trace's user, computed in a worker thread."""

from __future__ import annotations

from rich.markdown import Markdown
from rich.text import Text
from textual import work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import VerticalScroll
from textual.message import Message
from textual.screen import Screen
from textual.widgets import Header, Static

from tracelens.explain import Dossier, explain_user, render_markdown
from tracelens.tui.widgets.footer import KeyFooter
from tracelens.tui.widgets.text import safe


class DossierLoaded(Message):
    """The dossier is computed (or failed with ``error``)."""

    def __init__(self, dossier: Dossier | None, error: str | None = None) -> None:
        super().__init__()
        self.dossier = dossier
        self.error = error


class ExplainScreen(Screen):
    """The dossier of one user: their traffic, what changed underneath, comparable traffic, a ranked verdict."""

    BINDINGS = [Binding("escape", "app.back", "back", id="explain.back")]

    def __init__(self, user_id: str) -> None:
        super().__init__()
        self.user_id = user_id
        self.dossier: Dossier | None = None
        self.markdown = ""  # what the body shows (visible, escaped text)

    def compose(self) -> ComposeResult:
        """Status line and the dossier body."""
        yield Header()
        yield Static(Text("explaining user ", style="dim") + safe(self.user_id, "dim") + Text("…", style="dim"),
                     id="explain-status", markup=False)
        with VerticalScroll(id="explain-scroll"):
            yield Static("", id="explain-body", markup=False)
        yield KeyFooter()

    def on_mount(self) -> None:
        """Compute the dossier off the UI thread."""
        self.query_one("#explain-scroll").focus()
        self._load()

    @work(thread=True, exclusive=True, group="explain")
    def _load(self) -> None:
        try:
            d = explain_user(self.app.store, self.user_id, now=self.app.now())
        except Exception as e:  # the analysis failing must not take the browser down
            self.post_message(DossierLoaded(None, f"explain failed: {type(e).__name__}: {e}"))
            return
        self.post_message(DossierLoaded(d))

    def on_dossier_loaded(self, m: DossierLoaded) -> None:
        """Show the dossier, or why there is none."""
        status = self.query_one("#explain-status", Static)
        if m.dossier is None:
            status.update(safe(m.error or "explain failed", "red"))
            return
        self.dossier = m.dossier
        self.markdown = render_markdown(m.dossier)
        status.update(Text("verdict: ", style="bold") + safe(m.dossier.headline))
        self.query_one("#explain-body", Static).update(Markdown(self.markdown))
