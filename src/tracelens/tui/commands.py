"""Command palette: every action of the current screen, by name."""

from __future__ import annotations

from functools import partial

from textual.command import DiscoveryHit, Hit, Hits, Provider

# (title, help, action name on the screen or app) in palette order
COMMANDS = (
    ("Find: focus free-text search", "Jump to the text filter (/)", "focus_text"),
    ("Find: toggle time sort", "Newest or oldest first (t)", "toggle_sort"),
    ("Open trace", "Open the highlighted trace (enter)", "open"),
    ("Replay trace", "Replay against the pinned snapshot (r)", "replay"),
    ("System-prompt diff", "Prompt history and diff to the previous version (d)", "diff"),
    ("Similar traces", "Same prompt in other weeks and nearest neighbours (s)", "similar"),
    ("Copy trace as JSON", "To the clipboard and a file (c)", "copy"),
    ("Export reproduction", "curl and Python scripts; key from $ANTHROPIC_API_KEY (x)", "export"),
    ("Show metadata", "Trace metadata tab (m)", "details"),
    ("Unfold system prompt", "Unfold or fold a long system prompt (e)", "toggle_system"),
    ("Send replay", "Send the planned replays (ctrl+s)", "send"),
    ("This week", "Weekly drift findings (w)", "app.week"),
    ("Help", "Keyboard reference (?)", "app.help"),
    ("Back", "Previous screen (escape)", "app.back"),
    ("Quit", "Leave tracelens (q)", "app.quit"),
)


class TraceLensCommands(Provider):
    """The actions available on the screen the palette was opened from."""

    def _available(self):
        screen = self.screen
        for title, help_text, action in COMMANDS:
            if action.startswith("app.") or hasattr(screen, f"action_{action}"):
                yield title, help_text, action

    def _run(self, action: str) -> None:
        if action.startswith("app."):
            self.app.call_later(self.app.run_action, action[4:])
        else:
            self.app.call_later(self.screen.run_action, action)

    async def discover(self) -> Hits:
        """Every action of the current screen, listed when the palette opens."""
        for title, help_text, action in self._available():
            yield DiscoveryHit(title, partial(self._run, action), help=help_text)

    async def search(self, query: str) -> Hits:
        """The actions whose title matches what was typed, best first."""
        matcher = self.matcher(query)
        for title, help_text, action in self._available():
            score = matcher.match(title)
            if score > 0:
                yield Hit(score, matcher.highlight(title), partial(self._run, action), help=help_text)
