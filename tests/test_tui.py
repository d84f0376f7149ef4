"""Pilot tests of the TUI flows on the fixed store: find → open → diff / similar / replay / export; findings.

Tests never sleep: ``settle`` waits on the app's workers and lets the
posted messages be handled.
"""

from __future__ import annotations

import datetime as dt
import json

import pytest

from tests.test_tui_data import COMPLAINT_PROMPT, NOW, build_tui_store, settle
from tracelens.tui.app import TuiConfig, make_app
from tracelens.weekly import WeeklyFindings

pytestmark = pytest.mark.anyio

SIZE = (120, 40)


@pytest.fixture
def anyio_backend():
    return "asyncio"


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    return build_tui_store(tmp_path_factory.mktemp("tui"))


def app_for(store, tmp_path, **kw):
    kw.setdefault("export_dir", tmp_path / "exports")
    return make_app(store, TuiConfig(now=lambda: NOW, cursor_blink=False, **kw))


async def type_into(pilot, selector: str, text: str) -> None:
    """Put ``text`` in an input and focus it (typing key by key is tested once, in the `/` test)."""
    widget = pilot.app.screen.query_one(selector)
    widget.focus()
    widget.value = text
    await pilot.pause()


def result_ids(app) -> list[str]:
    return [r["trace_id"] for r in app.screen.query_one("#results").traces]


def plain(app, selector: str) -> str:
    return app.screen.query_one(selector).content.plain


async def test_find_by_user_and_time_then_open(store, tmp_path):
    app = app_for(store, tmp_path)
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        assert len(result_ids(app)) == 79 and "79 traces" in plain(app, "#status")
        await type_into(pilot, "#f-user", "4411")
        await type_into(pilot, "#f-time", "yesterday 3pm")
        await pilot.press("enter")
        await settle(pilot)
        assert result_ids(app) == ["msg_complaint", "msg_000901"]
        assert "2026-11-21 14:00 → 2026-11-21 16:00 UTC" in plain(app, "#status")
        assert app.focused is app.screen.query_one("#results")
        await pilot.press("enter")
        await settle(pilot)
        screen = app.screen
        assert type(screen).__name__ == "TraceScreen" and screen.trace["trace_id"] == "msg_complaint"
        convo = "\n".join(s.content.plain for s in screen.query("#conversation > Static"))
        assert COMPLAINT_PROMPT in convo and "I can't help" in convo and "SYSTEM PROMPT" in convo
        assert "evidence: en.decline" in plain(app, "#refusal")
        meta = screen.query_one("#meta").content
        assert "alias requested" in _render_plain(meta)
        banner = plain(app, "#banner")
        assert "The system prompt changed" in banner and "before this trace" in banner
        await pilot.press("escape")
        await settle(pilot)
        assert type(app.screen).__name__ == "FindScreen" and len(result_ids(app)) == 2


def _render_plain(renderable) -> str:
    from rich.console import Console

    con = Console(width=200, record=True, color_system=None)
    con.print(renderable)
    return con.export_text()


async def test_slash_focuses_free_text_and_enter_searches(store, tmp_path):
    app = app_for(store, tmp_path)
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        await pilot.press("slash")
        assert app.focused is app.screen.query_one("#f-text")
        await pilot.press(*"refund", "enter")
        await settle(pilot)
        assert result_ids(app) == ["msg_complaint"]
        assert app.focused is app.screen.query_one("#results")
        # a bad regex is reported in the status line; nothing crashes
        await type_into(pilot, "#f-text", "/(broken/")
        await pilot.press("enter")
        await settle(pilot)
        assert "invalid regular expression" in plain(app, "#status")
        await type_into(pilot, "#f-text", "")
        await type_into(pilot, "#f-time", "half past nowhere")
        await pilot.press("enter")
        await settle(pilot)
        assert "cannot read time" in plain(app, "#status")


async def test_refusal_toggle_sort_and_lazy_paging(store, tmp_path):
    app = app_for(store, tmp_path, page_size=20)
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        table = app.screen.query_one("#results")
        assert len(table.traces) == 20  # first page only
        newest = table.traces[0]["timestamp"]
        await pilot.press("ctrl+end")  # to the end of what is loaded: the next page is fetched
        await settle(pilot)
        assert len(table.traces) == 40
        for _ in range(3):
            await pilot.press("ctrl+end")
            await settle(pilot)
        assert len(table.traces) == 79
        assert [r["timestamp"] for r in table.traces] == sorted((r["timestamp"] for r in table.traces), reverse=True)
        await pilot.press("t")
        await settle(pilot)
        assert table.traces[0]["timestamp"] < newest and "oldest first" in plain(app, "#status")
        app.screen.query_one("#f-refusal").value = True
        await settle(pilot)
        assert set(result_ids(app)) == {"msg_complaint", "msg_triage_w47"}


async def test_diff_and_related_tabs(store, tmp_path):
    app = app_for(store, tmp_path)
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        app.open_trace("msg_complaint")
        await settle(pilot)
        await pilot.press("d")
        await settle(pilot)
        assert app.screen.query_one("#side").active == "tab-history"
        diff = plain(app, "#diff")
        assert "diff v1 → v2" in diff and "+Never discuss refunds; hand refund questions to a human agent." in diff
        assert "used system prompt v2 of 2" in plain(app, "#history-summary")
        await pilot.press("s")
        await settle(pilot)
        assert app.screen.query_one("#side").active == "tab-related"
        assert "run `tracelens embed`" in plain(app, "#similar-status")
        # the triage prompt: refused this week, answered the week before
        app.open_trace("msg_triage_w47")
        await settle(pilot)
        await pilot.press("s")
        await settle(pilot)
        same = app.screen.query_one("#same")
        assert [r["trace_id"] for r in same.traces] == ["msg_triage_w46"]
        assert "2026-W46: 1 trace, 0 refused" in plain(app, "#same-summary")
        same.focus()
        await pilot.press("enter")  # opens the week-46 trace
        await settle(pilot)
        assert app.screen.trace["trace_id"] == "msg_triage_w46"


async def test_similar_traces_with_embeddings(tmp_path):
    embed = pytest.importorskip("tracelens.embed")
    local = build_tui_store(tmp_path / "emb")
    embed.embed_store(local, "fake")
    app = app_for(local, tmp_path)
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        app.open_trace("msg_complaint", then="similar")
        await settle(pilot)
        similar = app.screen.query_one("#similar")
        assert similar.traces and "msg_complaint" not in [r["trace_id"] for r in similar.traces]
        assert all(r.get("refusal") and r.get("prompt_text") for r in similar.traces)
        sims = [r["similarity"] for r in similar.traces]
        assert sims == sorted(sims, reverse=True)
        assert "nearest" in plain(app, "#similar-status")
        assert app.focused is similar
        # semantic search from the filter bar uses the same vectors
        await app.pop_screen()
        await type_into(pilot, "#f-like", "refund for a broken blender")
        await pilot.press("enter")
        await settle(pilot)
        assert "ranked by similarity" in plain(app, "#status") and result_ids(app)


async def test_first_like_search_says_the_model_is_loading(store, tmp_path, monkeypatch):
    import threading

    pytest.importorskip("tracelens.embed")
    import tracelens.embed.models as models
    import tracelens.tui.screens.find as find

    loaded = threading.Event()
    real = find.semantic_results

    def slow_first_load(*a, **kw):  # stands in for the seconds a real model load takes
        assert loaded.wait(10)
        return real(*a, **kw)

    monkeypatch.setattr(models, "embedder_loaded", lambda *a, **kw: loaded.is_set())
    monkeypatch.setattr(find, "semantic_results", slow_first_load)
    app = app_for(store, tmp_path)
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        await type_into(pilot, "#f-like", "refund for a broken blender")
        await pilot.press("enter")
        for _ in range(50):  # the worker is blocked: settle() would wait for it
            await pilot.pause(0.02)
            if "loading the embedding model" in plain(app, "#status"):
                break
        assert "loading the embedding model" in plain(app, "#status")
        loaded.set()
        await settle(pilot)
        assert "loading the embedding model" not in plain(app, "#status")


async def test_replay_against_the_fake_api(tmp_path):
    from tracelens.replay import load_replays
    from tracelens.testing.fake_anthropic import FakeAnthropicServer, Reply

    local = build_tui_store(tmp_path / "replay")
    with FakeAnthropicServer() as server:
        server.add_rule(Reply.message("Of course! I can help with the refund for order #8812."))
        app = app_for(local, tmp_path, replay_base_url=server.base_url, replay_env={"ANTHROPIC_API_KEY": "k-test"})
        async with app.run_test(size=SIZE) as pilot:
            await settle(pilot)
            await type_into(pilot, "#f-user", "4411")
            await pilot.press("enter")
            await settle(pilot)
            assert result_ids(app)[0] == "msg_complaint"
            await pilot.press("r")  # from the results: opens the trace, then the replay screen
            await settle(pilot)
            screen = app.screen
            assert type(screen).__name__ == "ReplayScreen"
            assert screen.query_one("#model").value == "claude-sonnet-4-5-20250929"  # the pinned snapshot
            plan = plain(app, "#plan")
            assert "5 requests to " + server.base_url in plan and "≈ $" in plan and "ANTHROPIC_API_KEY" in plan
            await type_into(pilot, "#n", "3")
            await pilot.press("enter")  # re-plans, then focuses Send
            await settle(pilot)
            send = screen.query_one("#send")
            assert app.focused is send and str(send.label).startswith("Send 3 requests")
            assert server.message_requests == []  # nothing is sent before confirmation
            await pilot.press("enter")
            await settle(pilot)
            assert len(server.message_requests) == 3
            assert screen.query_one("#progress").progress == 3
            from textual.widgets._progress_bar import PercentageStatus

            assert str(screen.query_one(PercentageStatus).render()) == "100%"  # what the user reads
            verdict = _render_plain(screen.query_one("#verdict").content)
            assert "differs" in verdict and "refusal flip" in verdict and "3 ok, 0 failed" in verdict
            assert screen.query_one("#replays").row_count == 3
            right = plain(app, "#replay")
            assert right.startswith("Of course! I can help")
            await pilot.press("right_square_bracket")
            await settle(pilot)
            assert screen.selected == 1
        sent = server.message_requests
    assert {r.json["model"] for r in sent} == {"claude-sonnet-4-5-20250929"}
    assert all("k-test" in (r.headers.get("x-api-key") or r.headers.get("authorization") or "") for r in sent)
    assert len(load_replays(local.root, ["msg_complaint"])) == 3


async def test_replay_without_a_key_says_so(store, tmp_path):
    app = app_for(store, tmp_path, replay_base_url="http://127.0.0.1:9", replay_env={}, save_replays=False)
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        app.open_trace("msg_complaint", then="replay")
        await settle(pilot)
        await pilot.press("ctrl+s")
        await settle(pilot)
        assert "no API key" in plain(app, "#verdict")
        await pilot.press("escape")
        await settle(pilot)
        assert type(app.screen).__name__ == "TraceScreen"


def _findings(store):
    from tracelens.analysis.findings import Finding

    f = Finding(kind="refusal_rate", segment="app=support", direction="up", baseline_value=0.0, current_value=0.07,
                effect=0.07, ci_low=0.01, ci_high=0.12, p_value=0.001, q_value=0.004, significant=True,
                severity="alert", first_seen=dt.datetime(2026, 11, 20, 9, tzinfo=dt.UTC),
                summary="Refusal rate 0% → 7% in app=support", evidence=("msg_complaint", "msg_triage_w47", "gone"))
    g = Finding(kind="system_prompt", segment="app=support", direction="changed", baseline_value=None,
                current_value=None, effect=0.2, ci_low=None, ci_high=None, p_value=None, q_value=None,
                significant=True, severity="warn", first_seen=dt.datetime(2026, 11, 20, 9, tzinfo=dt.UTC),
                summary="New system prompt in app=support", evidence=("msg_000060",))
    return WeeklyFindings([f, g], "test fixture", "2026-11-16 → 2026-11-23")


async def test_jump_from_a_finding_to_its_evidence(store, tmp_path):
    app = app_for(store, tmp_path, weekly=_findings)
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        await pilot.press("w")
        await settle(pilot)
        assert type(app.screen).__name__ == "WeekScreen"
        assert app.screen.query_one("#findings").row_count == 2
        ev = app.screen.query_one("#evidence")
        assert [r["trace_id"] for r in ev.traces] == ["msg_complaint", "msg_triage_w47"]
        assert "1 not in this store" in plain(app, "#evidence-status")
        await pilot.press("down")  # second finding
        await settle(pilot)
        assert [r["trace_id"] for r in ev.traces] == ["msg_000060"]
        await pilot.press("up", "enter")  # back to the first, into its evidence
        await settle(pilot)
        assert app.focused is ev
        await pilot.press("enter")
        await settle(pilot)
        assert app.screen.trace["trace_id"] == "msg_complaint"
        await pilot.press("escape")
        await settle(pilot)
        assert type(app.screen).__name__ == "WeekScreen"


async def test_week_screen_without_analysis_explains(store, tmp_path):
    from tracelens.extras import NotAvailable

    def missing(store):
        raise NotAvailable("drift findings not available: run `tracelens drift`")

    app = app_for(store, tmp_path, weekly=missing)
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        await pilot.press("w")
        await settle(pilot)
        assert "run `tracelens drift`" in plain(app, "#week-status")


async def test_copy_and_export(store, tmp_path):
    app = app_for(store, tmp_path)
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        app.open_trace("msg_complaint")
        await settle(pilot)
        await pilot.press("c")
        await settle(pilot)
        copied = json.loads(app.clipboard)
        assert copied["trace_id"] == "msg_complaint" and copied["prompt_text"] == COMPLAINT_PROMPT
        assert (tmp_path / "exports" / "msg_complaint.json").exists()
        notes = [n.message for n in app._notifications]
        assert any(str(tmp_path / "exports" / "msg_complaint.json") in n for n in notes)
        await pilot.press("x")
        await settle(pilot)
        sh = tmp_path / "exports" / "msg_complaint.repro.sh"
        assert sh.exists() and (tmp_path / "exports" / "msg_complaint.repro.py").exists()
        assert "$ANTHROPIC_API_KEY" in sh.read_text() and app.clipboard == sh.read_text()


async def test_command_palette_runs_screen_actions(store, tmp_path):
    from tracelens.tui.commands import TraceLensCommands

    app = app_for(store, tmp_path)
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        app.open_trace("msg_complaint")
        await settle(pilot)
        provider = TraceLensCommands(app.screen)
        titles = [h.text for h in [hit async for hit in provider.discover()]]
        for t in ("Replay trace", "System-prompt diff", "Similar traces", "Copy trace as JSON",
                  "Export reproduction", "Help", "Back", "Quit", "This week"):
            assert t in titles
        assert "Find: toggle time sort" not in titles  # not an action of the trace screen
        await pilot.press("ctrl+p")
        await settle(pilot)
        await pilot.press(*"prompt diff")
        await settle(pilot)
        await pilot.press("enter")
        await settle(pilot)
        assert app.screen.query_one("#side").active == "tab-history"


async def test_help_and_quit(store, tmp_path):
    app = app_for(store, tmp_path)
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        await pilot.press("question_mark")
        await settle(pilot)
        assert type(app.screen).__name__ == "HelpScreen"
        await pilot.press("escape")
        await settle(pilot)
        assert type(app.screen).__name__ == "FindScreen"
        await pilot.press("q")
        await settle(pilot)
    assert app.return_code == 0


@pytest.mark.parametrize("keys", [(), ("enter",), ("enter", "d"), ("enter", "s"), ("enter", "r"), ("w",)],
                         ids=["find", "trace", "trace-diff", "trace-similar", "replay", "week"])
async def test_q_quits_from_every_screen(store, tmp_path, keys):
    # the replay screen opens with its N field focused: q must not vanish into it
    app = app_for(store, tmp_path, replay_base_url="http://127.0.0.1:9", replay_env={"ANTHROPIC_API_KEY": "k"},
                  save_replays=False)
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        for k in keys:
            await pilot.press(k)
            await settle(pilot)
        screen = type(app.screen).__name__
        await pilot.press("q")
        await settle(pilot)
        assert app.return_code == 0, f"q did not quit from {screen} (focus {app.focused})"


async def test_q_is_a_letter_in_a_text_field_and_ctrl_q_quits(store, tmp_path):
    app = app_for(store, tmp_path)
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        await pilot.press("slash", "q")
        await settle(pilot)
        assert app.return_code is None and app.screen.query_one("#f-text").value == "q"
        await pilot.press("ctrl+q")
        await settle(pilot)
        assert app.return_code == 0


def test_cli_tui_command(store, tmp_path):
    from click.testing import CliRunner

    from tracelens.cli.main import cli

    r = CliRunner().invoke(cli, ["tui", "--help"])
    assert r.exit_code == 0 and "--store" in r.output and "replay" in r.output
    r = CliRunner().invoke(cli, ["tui", "--store", str(tmp_path / "nope")])
    assert r.exit_code != 0 and "no tracelens store" in r.output
    r = CliRunner().invoke(cli, ["tui", "--store", str(store.root), "--tz", "Mars/Olympus"])
    assert r.exit_code == 2 and "unknown time zone" in r.output


async def test_every_filter_has_a_key_and_typing_in_the_results_searches_text(store, tmp_path):
    app = app_for(store, tmp_path)
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        screen = app.screen
        for key, field in (("alt+u", "user"), ("alt+s", "session"), ("alt+i", "trace_id"), ("alt+m", "model"),
                           ("alt+a", "app"), ("alt+t", "time"), ("alt+l", "like"), ("slash", "text")):
            await pilot.press("escape")
            await pilot.press(key)
            assert app.focused is screen.query_one(f"#f-{field}"), key
        await pilot.press("escape")
        assert app.focused is screen.query_one("#results")
        refusals = screen.query_one("#f-refusal")
        before = refusals.value
        await pilot.press("alt+r")
        await settle(pilot)
        assert refusals.value is not before
        await pilot.press("alt+r")
        await settle(pilot)
        # a letter the table has no use for starts a text search where the typing goes on
        await pilot.press("escape")
        await pilot.press("p", "a", "s", "s")
        assert app.focused is screen.query_one("#f-text") and screen.query_one("#f-text").value == "pass"
        await pilot.press("escape")
        await pilot.press("w")  # a bound letter still acts (this week)
        await settle(pilot)
        assert app.screen is not screen


def test_cli_tui_now_pins_the_clock_for_relative_times(store, tmp_path, monkeypatch):
    """`--now` makes "yesterday 3pm" in the docs' walk-through find the sample data's complaint on any day."""
    from click.testing import CliRunner

    import tracelens.tui.app as tui_app
    from tracelens.cli.main import cli
    from tracelens.query import FindQuery, build_filters

    made = []

    class Stub:
        def run(self):
            pass

    monkeypatch.setattr(tui_app, "make_app", lambda store_, config: made.append(config) or Stub())
    r = CliRunner().invoke(cli, ["tui", "--store", str(store.root), "--now", "2026-11-22 10:00"])
    assert r.exit_code == 0, r.output
    now = made[0].now()
    assert now == dt.datetime(2026, 11, 22, 10, tzinfo=dt.UTC)
    _, _, window = build_filters(FindQuery(time="yesterday 3pm"), now=now)
    assert window.since <= dt.datetime(2026, 11, 21, 15, tzinfo=dt.UTC) < window.until
    r = CliRunner().invoke(cli, ["tui", "--store", str(store.root), "--now", "half past nowhere"])
    assert r.exit_code == 2 and "--now" in r.output
