"""The key footer of every screen: Textual's ``Footer``, rebuilt only when the keys it shows change.

Textual's footer recomposes (removes and mounts a widget per key) on every
bindings update, and the bindings update on every focus change. Moving the
focus between widgets whose shown keys are the same (a filter field and
the results table, say) then costs a teardown, a mount and a relayout of
the screen for an identical footer; on the find screen that happened in
the same frames as a search's first page, delaying it on screen. This
footer keeps the last shown key list and recomposes only when it differs.
"""

from __future__ import annotations

from textual.screen import Screen
from textual.widgets import Footer


class KeyFooter(Footer):
    """A ``Footer`` that skips the rebuild when the keys, their labels and their state are unchanged."""

    _shown: tuple | None = None

    def _keys_shown(self) -> tuple:
        """Everything ``Footer.compose`` reads: each shown binding, whether it is enabled, its tooltip."""
        active = self.screen.active_bindings
        keys = tuple(
            (b.key, b.action, b.description, b.key_display, b.group, enabled, tooltip, b.tooltip)
            for _, b, enabled, tooltip in active.values() if b.show
        )
        palette = active.get(self.app.COMMAND_PALETTE_BINDING)
        palette_key = None
        if palette is not None:
            _, b, enabled, tooltip = palette
            palette_key = (b.key, b.action, b.description, enabled, tooltip)
        return keys, palette_key, self.show_command_palette, self.app.ENABLE_COMMAND_PALETTE

    def bindings_changed(self, screen: Screen) -> None:
        """As ``Footer.bindings_changed``, but the rebuild is skipped when nothing shown would change."""
        self._bindings_ready = True
        if not screen.app.app_focus:
            return
        if self.is_attached and screen is self.screen:
            self.call_after_refresh(self._recompose_if_changed)

    async def _recompose_if_changed(self) -> None:
        if not self.is_attached:
            return
        shown = self._keys_shown()
        if shown == self._shown:
            return
        self._shown = shown
        await self.recompose()
