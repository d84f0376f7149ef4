"""Hostile log text through the real widgets: markup stays literal, control sequences become visible.

A trace's user id, system prompt, prompt, response, trace id and model names
carry Rich/Textual markup (``[red]``, ``[link=…]``, ``[@click=…]``), ANSI
CSI/OSC sequences, an OSC 8 hyperlink, a screen clear, a NUL byte and bidi
overrides. Every place that shows them is checked on the widget's own
content and on the rendered screen.
"""

from __future__ import annotations

import datetime as dt

import pytest
from rich.text import Text

from tests.test_tui_data import HOSTILE, NOW, build_tui_store, line, settle
from tracelens.textsafe import visible
from tracelens.tui.app import TuiConfig, make_app

pytestmark = pytest.mark.anyio

EVIL_ID = "msg_[red]x[/red]\x1b[2J\u202e"
RAW_BAD = ("\x1b", "\x00", "\u202e", "\u202c", "\x07")
SHOWN = ("[red]RED[/red]", "[link=https://evil.example]link[/link]", "[@click=app.quit]quit[/]", "␛[31mANSI",
         "␛]8;;https://evil.example", "␛[2J", "nul␀byte", "<U+202E>evil<U+202C>")


@pytest.fixture
def anyio_backend():
    return "asyncio"


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    extra = line(940, dt.datetime(2026, 11, 21, 13, 0, tzinfo=dt.UTC), user="mallory", app="playground",
                 prompt="[@click=app.quit]hi[/]", response="[link=https://evil.example]ok[/link]", msg_id=EVIL_ID,
                 returned="claude-sonnet-4-5-20250929[blink]\x1b[5m")
    return build_tui_store(tmp_path_factory.mktemp("hostile"), [extra])


def app_for(store, tmp_path):
    return make_app(store, TuiConfig(now=lambda: NOW, cursor_blink=False, export_dir=tmp_path, show_timings=False))


def assert_safe(text: Text, *expected: str) -> None:
    """Plain text only: nothing raw, nothing interpreted, the hostile parts shown literally."""
    assert isinstance(text, Text)
    for bad in RAW_BAD:
        assert bad not in text.plain, (bad, text.plain)
    for span in text.spans:
        style = span.style
        if not isinstance(style, str):
            assert style.link is None and not style.meta, span
        else:
            assert "link" not in style and "@" not in style, span
    for e in expected:
        assert e in text.plain, (e, text.plain)


def screen_text(app) -> str:
    """The rendered screen as lines of text (from the SVG screenshot: what a terminal would show)."""
    import html
    import re

    svg = app.export_screenshot()
    assert "<a " not in svg and "\x1b" not in svg  # no hyperlink made it to the terminal
    rows: dict[float, list[tuple[float, str]]] = {}
    for m in re.finditer(r'<text [^>]*?x="([\d.]+)" y="([\d.]+)"[^>]*>(.*?)</text>', svg):
        rows.setdefault(float(m.group(2)), []).append((float(m.group(1)), html.unescape(m.group(3))))
    return "\n".join("".join(t for _, t in sorted(r)).replace("\xa0", " ") for _, r in sorted(rows.items()))


async def test_results_table_shows_hostile_cells_literally(store, tmp_path):
    app = app_for(store, tmp_path)
    async with app.run_test(size=(160, 40)) as pilot:
        await settle(pilot)
        table = app.screen.query_one("#results")
        rows = {r["trace_id"]: i for i, r in enumerate(table.traces)}
        cells = table.get_row_at(rows["msg_hostile"])
        assert all(isinstance(c, Text) or "[" not in str(c) for c in cells)  # log text is never a markup string
        assert_safe(cells[1], "[bold]evil[")  # cut to the column, still literal
        assert_safe(cells[4], "Tell me [red]RED[/red]")
        evil = table.get_row_at(rows[EVIL_ID])
        assert_safe(evil[2], "claude-sonnet-4-5-20250929[")
        assert_safe(evil[4], "[@click=app.quit]hi[/]")
        text = screen_text(app)
        assert "[bold]evil[" in text and "Tell me [red]RED[/red]" in text


async def test_trace_view_shows_hostile_text_visibly_and_inertly(store, tmp_path):
    app = app_for(store, tmp_path)
    async with app.run_test(size=(160, 50)) as pilot:
        await settle(pilot)
        app.open_trace("msg_hostile")
        await settle(pilot)
        blocks = list(app.screen.query("#conversation > Static"))
        system, user, response = (b.content for b in blocks[:3])
        assert_safe(system, *SHOWN)
        assert_safe(user, *SHOWN)
        assert_safe(response, *SHOWN)
        assert response.plain.endswith("Here: " + visible(HOSTILE))  # shown in full, nothing dropped
        from rich.console import Console

        con = Console(width=300, record=True, color_system=None)
        con.print(app.screen.query_one("#meta").content)
        meta = con.export_text()
        assert "[bold]evil[/bold]␛[2J" in meta and "\x1b" not in meta
        text = screen_text(app)
        for s in ("[red]RED[/red]", "[@click=app.quit]quit[/]", "␛[2J␛[Hclear", "<U+202E>evil<U+202C>"):
            assert s in text
        # clicking where the [@click=app.quit] text is drawn runs nothing
        await pilot.click(blocks[1], offset=(12, 2))
        await settle(pilot)
        assert app.is_running and type(app.screen).__name__ == "TraceScreen"


async def test_hostile_trace_id_and_model_in_trace_view_and_exports(store, tmp_path):
    app = app_for(store, tmp_path)
    async with app.run_test(size=(160, 50)) as pilot:
        await settle(pilot)
        app.open_trace(EVIL_ID)
        await settle(pilot)
        assert app.screen.trace["trace_id"] == EVIL_ID
        assert_safe(app.screen.query_one("#banner").content)
        from rich.console import Console

        con = Console(width=300, record=True, color_system=None)
        con.print(app.screen.query_one("#meta").content)
        assert "claude-sonnet-4-5-20250929[blink]␛[5m" in con.export_text()
        blocks = list(app.screen.query("#conversation > Static"))
        assert_safe(blocks[-1].content, "[link=https://evil.example]ok[/link]")
        await pilot.press("c")
        await settle(pilot)
        written = list(tmp_path.glob("*.json"))
        assert len(written) == 1 and written[0].parent == tmp_path  # no path tricks from the id
        notes = [n for n in app._notifications]
        assert notes and all(n.markup is False for n in notes)
        text = screen_text(app)
        assert "msg_[red]x[/red]␛[2J<U+202E>" in text
        await pilot.press("r")  # the replay screen: the raw model id is kept out of the (raw) model input
        await settle(pilot)
        assert app.screen.query_one("#model").value == ""
        assert_safe(app.screen.query_one("#plan").content)


async def test_markup_typed_into_filters_stays_literal(store, tmp_path):
    app = app_for(store, tmp_path)
    async with app.run_test(size=(160, 40)) as pilot:
        await settle(pilot)
        box = app.screen.query_one("#f-text")
        box.focus()
        box.value = "/[red/"  # an invalid regex whose error message repeats it
        await pilot.press("enter")
        await settle(pilot)
        status = app.screen.query_one("#status").content
        assert_safe(status, "[red")
        box.value = "[@click=app.quit]"
        box.focus()
        await pilot.press("enter")
        await settle(pilot)
        ids = [r["trace_id"] for r in app.screen.query_one("#results").traces]
        assert ids == [EVIL_ID, "msg_hostile"] and app.is_running
