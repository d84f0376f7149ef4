"""The find screen's answer path: focus moves with the answer, slow searches say so, the footer is rebuilt only
when its keys change, and a search's painted time is taken once its rows are drawn."""

from __future__ import annotations

import threading
import time

import pytest

from tests.test_tui import SIZE, app_for, plain, result_ids, type_into
from tests.test_tui_data import build_tui_store, settle

pytestmark = pytest.mark.anyio


@pytest.fixture
def anyio_backend():
    return "asyncio"


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    return build_tui_store(tmp_path_factory.mktemp("lookup"), files_layout=True)


def blocked_search(monkeypatch):
    """Make the find screen's search wait for the returned event (a slow query), then answer for real."""
    import tracelens.tui.screens.find as find

    release = threading.Event()
    real = find.find_results

    def slow(*a, **kw):
        assert release.wait(10)
        return real(*a, **kw)

    monkeypatch.setattr(find, "find_results", slow)
    return release


async def test_the_answer_moves_the_focus_and_a_slow_search_says_searching(store, tmp_path, monkeypatch):
    app = app_for(store, tmp_path)
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        release = blocked_search(monkeypatch)
        await type_into(pilot, "#f-trace_id", "msg_complaint")
        field = app.screen.query_one("#f-trace_id")
        await pilot.press("enter")
        for _ in range(100):  # the worker is blocked: settle() would wait for it
            await pilot.pause(0.02)
            if "searching" in plain(app, "#status"):
                break
        assert "searching…" in plain(app, "#status")  # past SEARCHING_NOTICE_AFTER without an answer
        assert app.focused is field  # the old rows are not the answer: the focus waits for it
        release.set()
        await settle(pilot)
        assert result_ids(app) == ["msg_complaint"]
        assert app.focused is app.screen.query_one("#results")
        assert "searching" not in plain(app, "#status") and "1 trace" in plain(app, "#status")


async def test_focus_moved_during_a_search_stays_where_it_went(store, tmp_path, monkeypatch):
    app = app_for(store, tmp_path)
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        release = blocked_search(monkeypatch)
        await type_into(pilot, "#f-trace_id", "msg_complaint")
        await pilot.press("enter")
        await type_into(pilot, "#f-user", "4411")  # refining the next search while this one runs
        release.set()
        await settle(pilot)
        assert result_ids(app) == ["msg_complaint"]
        assert app.focused is app.screen.query_one("#f-user")


async def test_a_failed_search_moves_the_focus_too(store, tmp_path):
    app = app_for(store, tmp_path)
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        await type_into(pilot, "#f-text", "/(unclosed/")
        await pilot.press("enter")
        await settle(pilot)
        assert "invalid regular expression" in plain(app, "#status")
        assert app.focused is app.screen.query_one("#results")


async def test_footer_is_rebuilt_only_when_its_keys_change(store, tmp_path):
    from textual.widgets._footer import FooterKey

    from tracelens.tui.widgets.footer import KeyFooter

    app = app_for(store, tmp_path)
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        footer = app.screen.query_one(KeyFooter)

        def keys():
            return list(footer.query(FooterKey))

        table_keys = keys()
        assert {"r", "d", "q"} <= {k.key for k in table_keys}  # the results table: letters act
        await type_into(pilot, "#f-user", "")
        await settle(pilot)
        field_keys = keys()
        # in a text field the letters type: the footer no longer offers them
        assert "r" not in {k.key for k in field_keys} and field_keys != table_keys
        await type_into(pilot, "#f-session", "")
        await settle(pilot)
        assert keys() == field_keys  # same keys shown: the very same widgets, no rebuild
        app.screen.query_one("#results").focus()
        await settle(pilot)
        assert [k.key for k in keys()] == [k.key for k in table_keys]


async def test_painted_time_is_taken_after_the_rows_are_drawn(store, tmp_path, monkeypatch):
    from tracelens.tui.widgets.results import TraceTable

    drawn: list[tuple[float, list[str]]] = []
    real = TraceTable.render_lines

    def render_lines(self, crop):
        lines = real(self, crop)
        if self.id == "results" and not self._require_update_dimensions:
            drawn.append((time.perf_counter(), [r["trace_id"] for r in self.traces]))
        return lines

    monkeypatch.setattr(TraceTable, "render_lines", render_lines)
    app = app_for(store, tmp_path)
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        await type_into(pilot, "#f-trace_id", "msg_complaint")
        t0 = time.perf_counter()
        await pilot.press("enter")
        await settle(pilot)
        screen = app.screen
        assert screen.painted_at > t0
        first = min(t for t, ids in drawn if t > t0 and ids == ["msg_complaint"])
        assert first <= screen.painted_at


async def test_lookups_go_through_the_id_index_once_it_is_built(store, tmp_path, monkeypatch):
    import tracelens.idindex as idindex

    asked: list[tuple[str, bool, bool]] = []
    real = idindex.TraceIdIndex.days

    def days(self, trace_id, prefix=False):
        out = real(self, trace_id, prefix)
        asked.append((trace_id, prefix, out is not None))
        return out

    monkeypatch.setattr(idindex.TraceIdIndex, "days", days)
    app = app_for(store, tmp_path)
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        assert app.ids.ready and len(app.ids) == 79  # built in the background after the first page
        await type_into(pilot, "#f-trace_id", "msg_complain")  # no such id: a prefix of one
        await pilot.press("enter")
        await settle(pilot)
        assert result_ids(app) == ["msg_complaint"]
        assert asked == [("msg_complain", False, True), ("msg_complain", True, True)]
