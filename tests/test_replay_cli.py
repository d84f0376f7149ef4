"""`tracelens replay` end to end: ingest -> store -> CLI -> fake server (`tracelens canary`: tests/test_replay_canary.py)."""

from __future__ import annotations

import json

import pytest
from click.testing import CliRunner

from tests.conftest import anthropic_line
from tracelens.cli.replay import canary, commands, replay
from tracelens.ingest.pipeline import ingest
from tracelens.replay.storage import load_replays
from tracelens.testing.fake_anthropic import FakeAnthropicServer, Reply

SECRET = "sk-ant-api03-CLISECRET-fedcba9876543210"


@pytest.fixture
def server():
    with FakeAnthropicServer() as s:
        yield s


@pytest.fixture
def filled(store, tmp_path):
    """A store with 3 traces of user u1, 2 of u2, and one whose provider reported only an alias."""
    lines = [anthropic_line(i, user="u1") for i in range(3)]
    lines += [anthropic_line(i, user="u2", ts="2026-11-19T10:00:00Z") for i in range(3, 5)]
    lines.append(anthropic_line(9, returned="claude-sonnet-4-5", user="u3"))
    p = tmp_path / "log.jsonl"
    p.write_text("\n".join(lines) + "\n")
    ingest(store, [str(p)])
    return store


def invoke(cmd, args, server=None, store=None, env=None):
    full_env = {"ANTHROPIC_API_KEY": SECRET, "ANTHROPIC_BASE_URL": None, "TRACELENS_PRICES": None}
    full_env.update(env or {})
    extra = []
    if store is not None:
        extra += ["--store", str(store.root)]
    if server is not None and cmd is not canary:
        extra += ["--base-url", server.base_url]
    return CliRunner().invoke(cmd, [*args, *extra], env=full_env, catch_exceptions=False)


def test_commands_exported_for_registration():
    assert {c.name for c in commands} == {"replay", "canary"}
    assert set(canary.commands) == {"add", "list", "run", "compare", "migrate"}  # tests/test_replay_canary.py runs them


def test_dry_run_prints_exact_body_and_sends_nothing(filled, server):
    r = invoke(replay, ["msg_000001", "--n", "3", "--dry-run"], server, filled)
    assert r.exit_code == 0, r.stderr
    body = filled.get("msg_000001")["request_raw"].replace("claude-sonnet-4-5", "claude-sonnet-4-5-20250929")
    assert r.stdout == body + "\n"
    assert "claude-sonnet-4-5-20250929" in r.stderr and "estimated total" in r.stderr and "× 3" in r.stderr
    assert server.requests == []


def test_dry_run_json_lists_plans(filled, server):
    r = invoke(replay, ["msg_000001", "msg_000002", "--dry-run", "--json"], server, filled)
    out = json.loads(r.stdout)
    assert out["dry_run"] and [p["trace_id"] for p in out["plans"]] == ["msg_000001", "msg_000002"]
    assert out["plans"][0]["estimate"]["usd"] > 0 and out["plans"][0]["body"]["model"] == "claude-sonnet-4-5-20250929"
    assert server.requests == []


def test_non_interactive_without_yes_refuses(filled, server):
    r = invoke(replay, ["msg_000001"], server, filled)
    assert r.exit_code == 1 and "--yes" in r.stderr and "not an interactive terminal" in r.stderr
    assert server.requests == []


def test_replay_json_verdicts_and_stored_results(filled, server):
    server.add_rule(Reply.message("answer number 1"))
    r = invoke(replay, ["msg_000001", "--n", "4", "--yes", "--json"], server, filled)
    assert r.exit_code == 0, r.stderr
    out = json.loads(r.stdout)
    [v] = out["verdicts"]
    assert v["verdict"] == "reproduces" and v["n_replays"] == 4 and v["exact_match_rate"] == 1.0
    assert len(out["results"]) == 4 and out["interrupted"] is False and out["saved"]
    assert len(server.message_requests) == 4
    assert load_replays(filled.root, ["msg_000001"]).height == 4
    assert "[4/4]" in r.stderr  # progress on stderr, data on stdout


def test_replay_table_output_and_no_save(filled, server):
    server.add_rule(Reply.refusal("I can't help with that."))
    r = invoke(replay, ["msg_000002", "--n", "2", "--yes", "--no-save"], server, filled)
    assert r.exit_code == 0, r.stderr
    assert "differs" in r.stdout and "refusal flip" in r.stdout
    assert load_replays(filled.root).height == 0


def test_selection_by_filters(filled, server):
    r = invoke(replay, ["--user", "u2", "--dry-run", "--json"], server, filled)
    assert sorted(p["trace_id"] for p in json.loads(r.stdout)["plans"]) == ["msg_000003", "msg_000004"]
    r = invoke(replay, ["--user", "u1", "--limit", "2", "--dry-run", "--json"], server, filled)
    assert len(json.loads(r.stdout)["plans"]) == 2
    r = invoke(replay, ["--user", "nobody", "--dry-run"], server, filled)
    assert r.exit_code == 1 and "no trace matched" in r.stderr


def test_alias_only_and_unknown_ids_are_explained(filled, server):
    r = invoke(replay, ["msg_000009", "--dry-run"], server, filled)
    assert r.exit_code == 1 and "alias" in r.stderr and "--model" in r.stderr
    r = invoke(replay, ["msg_000009", "--dry-run", "--model", "claude-haiku-4-5-20251001"], server, filled)
    assert r.exit_code == 0 and '"model":"claude-haiku-4-5-20251001"' in r.stdout
    r = invoke(replay, ["does-not-exist", "--dry-run"], server, filled)
    assert r.exit_code == 1 and "does-not-exist" in r.stderr
    r = invoke(replay, [], server, filled)
    assert r.exit_code == 2


def test_cli_never_prints_the_key(filled, server):
    server.enqueue(Reply.error(401, "authentication_error", f"invalid x-api-key {SECRET}"))
    r = invoke(replay, ["msg_000001", "--n", "1", "--yes", "--json"], server, filled)
    assert r.exit_code == 1  # every replay failed
    assert "ANTHROPIC_API_KEY" in r.stderr
    assert SECRET not in r.stdout + r.stderr
    r = invoke(replay, ["msg_000001", "--yes", "--api-key-env", "UNSET_VAR"], server, filled, env={"UNSET_VAR": None})
    assert r.exit_code == 1 and "UNSET_VAR" in r.stderr and SECRET not in r.stdout + r.stderr


