"""One replay session (``tracelens.replay.session``) behind `tracelens replay`, canary runs and the TUI.

Against the local fake Messages API (``tracelens.testing``): planning keeps a
reason for every skipped trace, running saves and judges, a failed save is
recorded without losing the results, the per-replay similarities are the
verdict's measure, and the same replay gets the same verdict through the CLI
and through the TUI's replay screen.
"""

from __future__ import annotations

import json

import pytest
from click.testing import CliRunner

from tests.test_tui_data import NOW, build_tui_store, settle
from tracelens.replay import ReplayClient, load_replays, plan_session, replay_similarities, replay_traces, run_session
from tracelens.testing.fake_anthropic import FakeAnthropicServer, Reply

KEY = {"ANTHROPIC_API_KEY": "k-test"}
# a refusal, two answers and a near-copy of the original: a mixed bag whose verdict uses every number
REPLIES = (
    Reply.message("I'm sorry, but I can't help with refund requests. Please contact a human agent."),
    Reply.message("Of course! I can help with the refund for order #8812."),
    Reply.message("Sure, let me start a refund for the broken blender in order #8812."),
    Reply.message("I'm sorry, I can't help with refunds here. Please contact a human agent."),
)


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    return build_tui_store(tmp_path_factory.mktemp("session"))


@pytest.fixture
def server():
    with FakeAnthropicServer() as s:
        yield s


def _client(server) -> ReplayClient:
    return ReplayClient(base_url=server.base_url, env=KEY, concurrency=1)


def test_plan_keeps_a_reason_for_every_skipped_trace(store):
    session = plan_session([store.get("msg_complaint"), ("gone", None), {"trace_id": "bare"}], n=3)
    assert [p.trace_id for p in session.plans] == ["msg_complaint"]
    assert session.plans[0].n == 3 and session.requests == 3
    assert session.skipped["gone"] == "trace not found in the store"
    assert "only Anthropic Claude traces" in session.skipped["bare"]
    assert set(session.traces) == {"msg_complaint"} and not session.ran and session.verdicts == []


def test_run_saves_judges_and_lists_similarities(store, server):
    server.enqueue(*REPLIES)
    session = replay_traces(store, ["msg_complaint", "gone"], n=4, client=_client(server))
    assert session.ran and not session.interrupted and session.save_error is None
    assert len(session.results) == 4 and session.skipped == {"gone": "trace not found in the store"}
    v = session.verdict_for("msg_complaint")
    assert v is not None and v.n_replays == 4 and v.n_errors == 0 and v.similarity_method == "char3-tfidf"
    sims = session.similarities("msg_complaint")
    assert all(0.0 <= s <= 1.0 for s in sims)
    # the per-replay numbers a front end lists average to the verdict's number: one measure
    assert sum(sims) / len(sims) == pytest.approx(v.original_similarity)
    assert len(load_replays(store.root, ["msg_complaint"])) >= 4 and session.saved
    d = json.loads(json.dumps(session.to_dict()))
    assert set(d) == {"plans", "skipped", "results", "verdicts", "interrupted", "saved"}
    assert d["verdicts"][0]["verdict"] == v.verdict


def test_failed_requests_have_no_similarity(store, server):
    server.enqueue(Reply.message("Of course! I can help."), Reply.error(400, message="bad request"))
    session = plan_session([store.get("msg_complaint")], n=2)
    run_session(session, _client(server))
    assert sorted(r.error is None for r in session.results) == [False, True]
    sims = session.similarities("msg_complaint")
    assert [s is None for s in sims] == [r.error is not None for r in session.results]
    assert replay_similarities("x", []) == []


def test_a_failed_save_is_recorded_and_the_results_kept(store, server, tmp_path):
    server.enqueue(*REPLIES[:2])
    blocked = tmp_path / "not-a-store"
    blocked.write_text("a file where the replays directory would go")
    session = plan_session([store.get("msg_complaint")], n=2)
    run_session(session, _client(server), save_to=blocked)
    assert session.save_error and session.save_error.startswith("not saved") and session.saved == []
    assert len(session.results) == 2 and session.verdicts[0].n_replays == 2


# --------------------------------------------------------------------------- CLI and TUI agree


def _cli_verdict(store, server) -> dict:
    from tracelens.cli.replay import replay

    server.enqueue(*REPLIES)
    r = CliRunner().invoke(
        replay, ["msg_complaint", "--n", "4", "--yes", "--json", "--no-save", "--base-url", server.base_url,
                 "--store", str(store.root)],
        env={**KEY, "ANTHROPIC_BASE_URL": None, "TRACELENS_PRICES": None}, catch_exceptions=False,
    )
    assert r.exit_code == 0, r.stderr
    out = json.loads(r.stdout)
    assert len(out["results"]) == 4
    return out["verdicts"][0]


async def _tui_verdict(store, server, tmp_path) -> tuple[dict, list[str]]:
    from tracelens.tui.app import TuiConfig, make_app

    server.enqueue(*REPLIES)
    app = make_app(store, TuiConfig(now=lambda: NOW, cursor_blink=False, export_dir=tmp_path / "exports",
                                    replay_base_url=server.base_url, replay_env=KEY, save_replays=False))
    async with app.run_test(size=(120, 40)) as pilot:
        await settle(pilot)
        app.open_trace("msg_complaint", then="replay")
        await settle(pilot)
        screen = app.screen
        screen.query_one("#n").value = "4"
        screen.query_one("#n").focus()
        await pilot.press("enter")  # re-plan for N=4
        await settle(pilot)
        await pilot.press("ctrl+s")
        await settle(pilot)
        assert screen.verdict is not None, screen.query_one("#verdict").content
        table = screen.query_one("#replays")
        column = [str(table.get_row_at(i)[2]) for i in range(table.row_count)]
        return screen.verdict.to_dict(), column


@pytest.mark.anyio
@pytest.mark.parametrize("anyio_backend", ["asyncio"])
async def test_cli_and_tui_give_the_same_verdict(store, server, tmp_path):
    cli = _cli_verdict(store, server)
    tui, column = await _tui_verdict(store, server, tmp_path)
    assert len(server.message_requests) == 8
    assert cli["verdict"] in {"reproduces", "within_variance", "differs"} and cli["n_replays"] == 4
    numbers = {k for k, v in cli.items() if isinstance(v, float)}
    assert {k: v for k, v in tui.items() if k not in numbers} == {k: v for k, v in cli.items() if k not in numbers}
    for k in numbers:  # replies may finish in another order: sums may differ in the last bit, nothing more
        assert tui[k] == pytest.approx(cli[k], abs=1e-9), k
    # the TUI's similarity column is the verdict's measure: its mean is the verdict's original similarity
    shown = [float(c.rstrip("%")) / 100 for c in column]
    assert sum(shown) / len(shown) == pytest.approx(cli["original_similarity"], abs=0.01)
