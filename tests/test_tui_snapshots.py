"""Golden SVG snapshots of every TUI screen (pytest-textual-snapshot).

Fixed terminal (120×40), fixed clock, fixed data, no cursor blink, no
network (the replay destination is a name that is never contacted; the
replay results are posted as a message). Update after an intended change
with ``pytest tests/test_tui_snapshots.py --snapshot-update`` and review the
SVGs in the diff.
"""

from __future__ import annotations

import datetime as dt

import pytest

from tests.test_tui_data import NOW, build_tui_store, settle
from tracelens.tui.app import TuiConfig, make_app
from tracelens.weekly import WeeklyFindings

SIZE = (120, 40)


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    return build_tui_store(tmp_path_factory.mktemp("snap"))


def findings(store):
    from tracelens.analysis.findings import Finding

    when = dt.datetime(2026, 11, 20, 9, tzinfo=dt.UTC)
    return WeeklyFindings([
        Finding(kind="refusal_rate", segment="app=support", direction="up", baseline_value=0.0, current_value=0.07,
                effect=0.07, ci_low=0.01, ci_high=0.12, p_value=0.001, q_value=0.004, significant=True,
                severity="alert", first_seen=when, summary="Refusal rate 0.0% → 6.7% in app=support (+6.7 pp)",
                evidence=("msg_complaint", "msg_triage_w47")),
        Finding(kind="system_prompt", segment="app=support", direction="changed", baseline_value=None,
                current_value=None, effect=0.2, ci_low=None, ci_high=None, p_value=None, q_value=None,
                significant=True, severity="warn", first_seen=when,
                summary="New system prompt in app=support since 2026-11-20 09:07", evidence=("msg_000060",)),
    ], "tests", "2026-11-16 → 2026-11-23 (39 traces) vs previous week (40)")


def app_for(store, tmp_path, **kw):
    return make_app(store, TuiConfig(now=lambda: NOW, cursor_blink=False, subtitle="tests", weekly=findings, show_timings=False,
                                     export_dir=tmp_path, replay_base_url="http://replay.invalid", **kw))


def test_find_screen(store, tmp_path, snap_compare):
    assert snap_compare(app_for(store, tmp_path), terminal_size=SIZE, run_before=settle)


def test_find_the_complaint(store, tmp_path, snap_compare):
    async def run_before(pilot):
        await settle(pilot)
        pilot.app.screen.query_one("#f-user").value = "4411"
        pilot.app.screen.query_one("#f-time").value = "yesterday 3pm"
        pilot.app.screen.query_one("#f-time").focus()
        await pilot.press("enter")
        await settle(pilot)

    assert snap_compare(app_for(store, tmp_path), terminal_size=SIZE, run_before=run_before)


def _open(trace_id: str, *keys: str):
    async def run_before(pilot):
        await settle(pilot)
        pilot.app.open_trace(trace_id)
        await settle(pilot)
        if keys:
            await pilot.press(*keys)
            await settle(pilot)

    return run_before


def test_trace_screen(store, tmp_path, snap_compare):
    assert snap_compare(app_for(store, tmp_path), terminal_size=SIZE, run_before=_open("msg_complaint"))


def test_trace_prompt_history(store, tmp_path, snap_compare):
    assert snap_compare(app_for(store, tmp_path), terminal_size=SIZE, run_before=_open("msg_complaint", "d"))


def test_trace_related(store, tmp_path, snap_compare):
    assert snap_compare(app_for(store, tmp_path), terminal_size=SIZE, run_before=_open("msg_triage_w47", "s"))


def test_trace_with_tools(store, tmp_path, snap_compare):
    assert snap_compare(app_for(store, tmp_path), terminal_size=SIZE, run_before=_open("msg_tools"))


def test_hostile_trace(store, tmp_path, snap_compare):
    assert snap_compare(app_for(store, tmp_path), terminal_size=SIZE, run_before=_open("msg_hostile"))


def test_replay_plan(store, tmp_path, snap_compare):
    assert snap_compare(app_for(store, tmp_path), terminal_size=SIZE, run_before=_open("msg_complaint", "r"))


def test_replay_result(store, tmp_path, snap_compare):
    from tracelens.replay import ReplayResult, compute_verdict
    from tracelens.tui.messages import ReplayFinished

    texts = ["Of course! I can help with the refund for order #8812. Please send a photo of the damage.",
             "I'm sorry, but I can't help with refund requests. Please contact a human agent.",
             "Of course! I can help with your refund for order #8812: send a photo of the broken blender."]

    async def run_before(pilot):
        await _open("msg_complaint", "r")(pilot)
        screen = pilot.app.screen
        created = dt.datetime(2026, 11, 22, 10, tzinfo=dt.UTC)
        results = [
            ReplayResult(replay_id=f"r{i}", trace_id="msg_complaint", created_at=created,
                         model_requested="claude-sonnet-4-5-20250929", model_returned="claude-sonnet-4-5-20250929",
                         response_text=t, stop_reason="end_turn", refusal="full" if "can't" in t else "none",
                         latency_ms=800.0 + 100 * i)
            for i, t in enumerate(texts)
        ]
        screen.post_message(ReplayFinished(results, compute_verdict(screen.trace, results)))
        await settle(pilot)

    assert snap_compare(app_for(store, tmp_path), terminal_size=SIZE, run_before=run_before)


def test_week_screen(store, tmp_path, snap_compare):
    assert snap_compare(app_for(store, tmp_path), terminal_size=SIZE, run_before=_week)


async def _week(pilot):
    await settle(pilot)
    await pilot.press("w")
    await settle(pilot)


def test_help_screen(store, tmp_path, snap_compare):
    async def run_before(pilot):
        await settle(pilot)
        await pilot.press("question_mark")
        await settle(pilot)

    assert snap_compare(app_for(store, tmp_path), terminal_size=SIZE, run_before=run_before)


def test_add_to_suite_form(store, tmp_path, snap_compare):
    assert snap_compare(app_for(store, tmp_path), terminal_size=SIZE, run_before=_open("msg_complaint", "a"))


def test_case_history(tmp_path, snap_compare):
    from tracelens.evals.model import GradeResult, Response
    from tracelens.evals.runner import CaseResult, EvalRun, write_results
    from tracelens.evals.suite import add_traces, parse_expect

    local = build_tui_store(tmp_path / "history")
    out = add_traces(local.root, "complaints", ["msg_complaint"], local.get, parse_expect(["not-refused"]),
                     {"task": "refund"})
    answers = [("I'm sorry, but I can't help with refund requests.", "full", False),
               ("Of course: your refund for order #8812 is on its way.", "none", True)]
    for week, (text, refusal, ok) in enumerate(answers):  # two weekly runs, fixed ids and times
        started = dt.datetime(2026, 11, 16 + 7 * week, 6, tzinfo=dt.UTC)
        run = EvalRun(run_id=f"run{week:09d}", suite="complaints", target="pinned", provider="pinned", n=1,
                      started_at=started)
        grade = GradeResult("not-refused", "not-refused", ok, float(ok), "" if ok else "refused (label full)")
        run.results.append(CaseResult("msg_complaint", 0, "pass" if ok else "fail", float(ok),
                                      Response(text=text, refusal=refusal, latency_ms=800.0), [grade],
                                      "claude-sonnet-4-5-20250929"))
        write_results(local.root, run, out.suite)
    assert snap_compare(app_for(local, tmp_path), terminal_size=SIZE, run_before=_open("msg_complaint", "v"))
