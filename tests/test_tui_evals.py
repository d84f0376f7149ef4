"""Pilot tests: the trace screen adds the open trace to an eval suite (``a``) and shows its history as a case (``v``)."""

from __future__ import annotations

import pytest

from tests.test_tui import SIZE, app_for, plain, settle
from tests.test_tui_data import build_tui_store
from tracelens.evals.runner import execute, plan_run, write_results
from tracelens.evals.suite import read_suite_file
from tracelens.evals.targets import parse_target
from tracelens.testing.fake_anthropic import FakeAnthropicServer, Reply

pytestmark = pytest.mark.anyio


@pytest.fixture
def anyio_backend():
    return "asyncio"


async def test_add_the_open_trace_to_a_suite_then_see_how_each_run_graded_it(tmp_path):
    store = build_tui_store(tmp_path / "s")
    app = app_for(store, tmp_path)
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        app.open_trace("msg_complaint")
        await settle(pilot)
        await pilot.press("a")
        await settle(pilot)
        assert type(app.screen).__name__ == "AddCaseScreen"
        assert app.screen.query_one("#suite").value == "support"  # the trace's app
        app.screen.query_one("#suite").value = "complaints"
        app.screen.query_one("#expect").value = "not-refused; contains:refund"
        app.screen.query_one("#tags").value = "task=refund risk=high"
        app.screen.query_one("#tags").focus()
        await pilot.press("enter")
        await settle(pilot)
        assert type(app.screen).__name__ == "TraceScreen"  # closed on success
        suite, _ = read_suite_file(store.root / "evals" / "suites" / "complaints.yaml")
        case = suite.case("msg_complaint")
        assert [g.type for g in case.graders] == ["not-refused", "contains"]
        assert case.tags == {"app": "support", "task": "refund", "risk": "high"} and case.model
        await pilot.press("v")
        await settle(pilot)
        assert "no runs yet" in str(app.screen.query_one("#case-runs").get_row_at(0))

        # two runs: the pinned snapshot still refuses, then answers
        for text in ("I'm sorry, but I can't help with refund requests.", "Of course: your refund for #8812 is on "
                                                                          "its way."):
            with FakeAnthropicServer() as server:
                server.add_rule(Reply.message(text))
                plan = plan_run(suite, parse_target("pinned", env={"ANTHROPIC_BASE_URL": server.base_url}), 2)
                run = execute(plan, env={"ANTHROPIC_API_KEY": "k", "ANTHROPIC_BASE_URL": server.base_url})
                write_results(store.root, run, suite)
        await pilot.press("escape")
        await settle(pilot)
        await pilot.press("v")
        await settle(pilot)
        table = app.screen.query_one("#case-runs")
        assert table.row_count == 2
        first, second = (list(map(str, table.get_row_at(i))) for i in range(2))
        assert first[3:6] == ["0", "2", "0"] and "not-refused" in first[7]  # pass, fail, error; failed graders
        assert second[3:6] == ["2", "0", "0"]
        assert "in 1 suite" in plain(app, "#history-title")
        assert plain(app, "#case-answer").startswith("I'm sorry")
        await pilot.press("down")
        await settle(pilot)
        assert plain(app, "#case-answer").startswith("Of course")


async def test_a_bad_grader_in_the_add_form_says_why_and_keeps_the_form(tmp_path):
    store = build_tui_store(tmp_path / "s")
    app = app_for(store, tmp_path)
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        app.open_trace("msg_complaint")
        await settle(pilot)
        await pilot.press("a")
        await settle(pilot)
        app.screen.query_one("#expect").value = "containz:refund"
        app.screen.query_one("#expect").focus()
        await pilot.press("enter")
        await settle(pilot)
        assert type(app.screen).__name__ == "AddCaseScreen"
        assert "unknown grader 'containz'" in plain(app, "#add-status")
        assert not (store.root / "evals" / "suites" / "support.yaml").exists()
