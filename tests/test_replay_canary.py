"""Canary sets on evals: `tracelens canary` as an alias of `tracelens eval` (add, run, list, compare against the
fake Anthropic server), and the migration of canary sets and runs stored by older versions."""

from __future__ import annotations

import datetime as dt
import json

import pytest
import yaml
from click.testing import CliRunner

from tests.conftest import anthropic_line
from tracelens.cli.main import cli
from tracelens.evals import canary as canary_mod
from tracelens.evals.canary import migrate_canaries
from tracelens.evals.runner import list_runs, load_results
from tracelens.replay.client import ReplayResult
from tracelens.replay.storage import load_replays, write_replays
from tracelens.testing.fake_anthropic import FakeAnthropicServer, Reply

N = 12  # traces in the set: the paired test needs at least 10
FLIPPED = range(0, 6)  # the cases that refuse in the second run
SECRET = "sk-ant-api03-CANARYSECRET-0123456789abcdef"


def answer(i: int) -> str:
    return f"Your refund for order {1000 + i} is on its way and should arrive within five working days."


def prompt(i: int) -> str:
    return f"canary question {i}: where is my refund for order {1000 + i}?"


@pytest.fixture
def filled(store, tmp_path):
    from tracelens.ingest.pipeline import ingest

    src = tmp_path / "calls.jsonl"
    src.write_text("\n".join(anthropic_line(i, prompt=prompt(i), text=answer(i)) for i in range(N)) + "\n")
    ingest(store, [str(src)])
    return store


def ids() -> list[str]:
    return [f"msg_{i:06d}" for i in range(N)]


def run(args, store, env=None):
    full = {"ANTHROPIC_API_KEY": SECRET, "ANTHROPIC_BASE_URL": None, "TRACELENS_PRICES": None, **(env or {})}
    return CliRunner().invoke(cli, [*args, "--store", str(store.root)], env=full, catch_exceptions=False)


def script(server: FakeAnthropicServer, refuse: range = range(0)) -> None:
    """Answer every question as recorded, except the ``refuse`` ones."""
    server.reset()
    for i in range(N):
        reply = Reply.refusal("I can't help with that.") if i in refuse else Reply.message(answer(i))
        server.add_rule(reply, contains=f"canary question {i}:")


def test_canary_add_run_list_compare_through_the_cli(filled):
    r = run(["canary", "add", "core", "msg_000001", "msg_00000"], filled)
    assert r.exit_code == 1 and "msg_00000" in r.stderr  # an ambiguous prefix is not silently added
    r = run(["canary", "add", "core", *ids()[:8], "--n", "2"], filled)
    assert r.exit_code == 0 and "8 trace(s), n=2" in r.stdout, r.output
    r = run(["canary", "add", "core", *ids(), "--json"], filled)  # traces already in the set are left as they are
    out = json.loads(r.stdout)
    assert out["trace_ids"] == ids() and out["n"] == 2 and out["kind"] == "canary" and len(out["added"]) == 4
    doc = yaml.safe_load((filled.root / "evals" / "suites" / "core.yaml").read_text())
    assert doc["kind"] == "canary" and doc["n"] == 2
    assert {g["type"] for c in doc["cases"] for g in c["graders"]} == {"behaves-like"}
    r = run(["eval", "list"], filled)
    assert "core [canary]: 12 case(s)" in r.stdout
    r = run(["eval", "add", "plain", "msg_000001", "--expect", "not-refused"], filled)
    assert r.exit_code == 0
    r = run(["canary", "add", "plain", "msg_000002"], filled)
    assert r.exit_code == 1 and "not a canary set" in r.stderr

    r = run(["canary", "run", "core", "--dry-run"], filled)
    assert r.exit_code == 0 and len(r.stdout.splitlines()) == N
    assert json.loads(r.stdout.splitlines()[0])["model"] == "claude-sonnet-4-5-20250929"
    r = run(["canary", "run", "core", "--yes", "--timeout", "30"], filled)
    assert r.exit_code == 2 and "--timeout is not supported" in r.stderr
    r = run(["canary", "run", "core"], filled)
    assert r.exit_code == 1 and "--yes" in r.stderr  # not interactive: nothing sent without confirmation

    with FakeAnthropicServer() as server:
        env = {"ANTHROPIC_BASE_URL": server.base_url}
        script(server)
        r = run(["canary", "run", "core", "--yes", "--json"], filled, env)
        assert r.exit_code == 0, r.output
        first = json.loads(r.stdout)
        assert first["target"] == "pinned" and first["answers"] == 2 * N and first["errors"] == 0
        assert first["run"]["pass_rate"]["rate"] == 1.0 and first["run"]["previous_run_id"] is None
        assert len(server.requests) == 2 * N
        script(server, FLIPPED)
        r = run(["canary", "run", "core", "--yes", "--fail-on", "regression"], filled, env)
    assert r.exit_code == 1, r.output  # a regression with --fail-on regression
    assert "6 case(s) passed before and fail now: msg_000000" in r.stdout
    assert SECRET not in r.output

    listing = json.loads(run(["canary", "list", "--json"], filled).stdout)
    assert [(x["name"], x["traces"], x["n"], x["runs"]) for x in listing] == [("core", N, 2, 2)]
    runs = list_runs(filled.root, "core")
    assert listing[0]["last_run_id"] == runs[-1].run_id and {x.target for x in runs} == {"pinned"}
    r = run(["canary", "compare", "core", "--json"], filled)
    v = json.loads(r.stdout)
    assert v["verdict"] == "regressions" and sorted(c["case_id"] for c in v["worse"]) == ids()[:6]
    assert v["baseline"]["run"]["run_id"] == runs[0].run_id and v["candidate"]["run"]["run_id"] == runs[1].run_id
    r = run(["canary", "compare", "core", "--run", runs[0].run_id, "--previous", runs[0].run_id], filled)
    assert r.exit_code == 0 and "pinned → pinned: safe (+0.0 points" in r.stdout  # a run against itself
    r = run(["canary", "compare", "core", "--run", "nope"], filled)
    assert r.exit_code == 1 and "no run 'nope'" in r.stderr
    r = run(["canary", "run", "nope", "--yes"], filled)
    assert r.exit_code == 1 and "no canary set named 'nope'" in r.stderr


# ---------------------------------------------------------------------------------------------- migration

T0 = dt.datetime(2026, 11, 20, 9, 0, tzinfo=dt.UTC)
OLD_RUNS = ("0a1b2c3d4e5f", "f5e4d3c2b1a0")


def write_old_canary(root, name: str = "nightly", n: int = 3, trace_ids: list[str] | None = None) -> None:
    """A canary set and two runs as an older tracelens stored them: a JSON file and tagged replays."""
    d = root / "canaries"
    d.mkdir(exist_ok=True)
    (d / f"{name}.json").write_text(json.dumps({
        "name": name, "trace_ids": trace_ids or [*ids(), "msg_gone"], "n": n, "description": "nightly check",
        "created_at": "2026-11-01T00:00:00+00:00", "updated_at": "2026-11-01T00:00:00+00:00"}))
    results = []
    for k, run_id in enumerate(OLD_RUNS):
        at = T0 + dt.timedelta(days=k)
        for i in range(N):
            for rep in range(n):
                refused = k == 1 and i in FLIPPED
                results.append(ReplayResult(
                    replay_id=f"{run_id}-{i}-{rep}", trace_id=ids()[i], created_at=at + dt.timedelta(seconds=i * n + rep),
                    model_requested="claude-sonnet-4-5-20250929", model_returned="claude-sonnet-4-5-20250929",
                    response_text="I can't help with that." if refused else answer(i), stop_reason="end_turn",
                    refusal="full" if refused else "none", input_tokens=10, output_tokens=5, latency_ms=400.0 + i,
                    canary=name, canary_run_id=run_id))
    write_replays(root, results)


def fake_embedder():
    from tracelens.embed.models import get_embedder

    return get_embedder("fake").encode


def test_migration_turns_old_sets_and_runs_into_a_suite_and_eval_runs_once(filled):
    root = filled.root
    write_old_canary(root)
    notes: list[str] = []
    [m] = migrate_canaries(root, filled.get, embedder=fake_embedder(), note=notes.append)
    assert notes[0] == f"migrated canary set nightly ({N + 1} traces, 2 runs) to eval suite nightly"
    assert "msg_gone" in m.skipped and any("msg_gone" in x for x in notes)
    assert not (root / "canaries" / "nightly.json").exists()
    assert (root / "canaries" / "migrated" / "nightly.json").is_file()  # moved aside, not deleted
    doc = yaml.safe_load((root / "evals" / "suites" / "nightly.yaml").read_text())
    assert (doc["kind"], doc["n"], doc["description"], len(doc["cases"])) == ("canary", 3, "nightly check", N)
    assert doc["created_at"].startswith("2026-11-01")

    runs = list_runs(root, "nightly")
    assert [r.run_id for r in runs] == list(OLD_RUNS) and {r.target for r in runs} == {"pinned"}
    assert runs[0].started_at == T0 and runs[1].started_at == T0 + dt.timedelta(days=1)
    assert (runs[0].n, runs[0].cases, runs[0].passed, runs[1].failed) == (3, N, 3 * N, 3 * len(FLIPPED))
    df = load_results(root, "nightly", [OLD_RUNS[1]])
    row = df.filter(df["case_id"] == "msg_000000").row(0, named=True)
    assert (row["refusal"], row["outcome"], row["latency_ms"], row["input_tokens"]) == ("full", "fail", 400.0, 10)
    assert "refused" in json.loads(row["grades"])[0]["reason"]
    assert load_replays(root).height == 2 * N * 3  # the replays stay where they were

    assert migrate_canaries(root, filled.get, embedder=fake_embedder()) == []  # once
    r = run(["canary", "compare", "nightly", "--json"], filled)
    v = json.loads(r.stdout)
    assert v["verdict"] == "regressions" and sorted(c["case_id"] for c in v["worse"]) == ids()[:6]


def test_first_use_of_an_eval_command_migrates_and_says_so(filled):
    write_old_canary(filled.root, "smoke", n=2, trace_ids=ids())
    r = run(["eval", "list", "--json"], filled)
    assert r.exit_code == 0
    assert f"migrated canary set smoke ({N} traces, 2 runs) to eval suite smoke" in r.stderr
    assert [(s["suite"], s["kind"], s["runs"]) for s in json.loads(r.stdout)] == [("smoke", "canary", 2)]
    r = run(["canary", "list"], filled)
    assert "migrated" not in r.stderr and "smoke: 12 trace(s), n=2, 2 run(s)" in r.stdout


def test_a_migration_stopped_half_way_loses_nothing_and_finishes_next_time(filled, monkeypatch):
    root = filled.root
    write_old_canary(root)

    def boom(path):
        raise OSError("disk full")

    monkeypatch.setattr(canary_mod, "_move_aside", boom)
    with pytest.raises(OSError):
        migrate_canaries(root, filled.get, embedder=fake_embedder())
    assert (root / "canaries" / "nightly.json").is_file()  # the old set is still there
    monkeypatch.undo()
    [m] = migrate_canaries(root, filled.get, embedder=fake_embedder())
    assert m.runs == list(OLD_RUNS) and len(list_runs(root, "nightly")) == 2  # the same runs, not twice
    assert (root / "canaries" / "migrated" / "nightly.json").is_file()


def test_a_plain_suite_of_the_same_name_is_kept(filled):
    r = run(["eval", "add", "nightly", "msg_000001", "--expect", "not-refused"], filled)
    assert r.exit_code == 0
    write_old_canary(filled.root)
    [m] = migrate_canaries(filled.root, filled.get, embedder=fake_embedder())
    assert m.suite == "nightly-canary" and "already exists" in m.notes[0]
    assert len(list_runs(filled.root, "nightly")) == 0 and len(list_runs(filled.root, "nightly-canary")) == 2
