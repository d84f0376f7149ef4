"""`tracelens models`: list, show, and refresh against the fake server's Models API, end to end through the CLI."""

from __future__ import annotations

import json

import pytest
from click.testing import CliRunner

from tests.conftest import anthropic_line
from tracelens.cli.models import commands, models
from tracelens.cli.replay import replay
from tracelens.ingest.pipeline import ingest
from tracelens.modelcatalog import load_catalog
from tracelens.testing.fake_anthropic import FakeAnthropicServer

SECRET = "sk-ant-api03-MODELSSECRET-0123456789abcdef"


def invoke(cmd, args, store=None, env=None):
    full_env = {"ANTHROPIC_API_KEY": SECRET, "ANTHROPIC_BASE_URL": None}
    full_env.update(env or {})
    extra = ["--store", str(store.root)] if store is not None else []
    return CliRunner().invoke(cmd, [*args, *extra], env=full_env, catch_exceptions=False)


@pytest.fixture
def filled(tmp_path):
    """A store whose traces requested an alias, a fixed undated id, and an undated id the catalog has never seen."""
    from tracelens.storeopen import open_store

    store = open_store(tmp_path / "store", create=True)
    lines = [anthropic_line(0), anthropic_line(1, model="claude-opus-4-6", returned="claude-opus-4-6"),
             anthropic_line(2, model="claude-zephyr-9", returned="claude-zephyr-9-20300101")]
    p = tmp_path / "log.jsonl"
    p.write_text("\n".join(lines) + "\n")
    ingest(store, [str(p)], enricher=False, workers=0)
    return store


@pytest.fixture
def server():
    models = ["claude-sonnet-4-5-20250929", "claude-haiku-4-5-20251001", "claude-opus-4-6", "claude-zephyr-9-20300101",
              "claude-sonnet-4-5-20261112"]
    aliases = {"claude-sonnet-4-5": "claude-sonnet-4-5-20261112",  # moved on since the shipped data was written
               "claude-haiku-4-5": "claude-haiku-4-5-20251001", "claude-zephyr-9": "claude-zephyr-9-20300101"}
    info = {"claude-opus-4-6": {"created_at": "2026-02-05T00:00:00Z"}}
    with FakeAnthropicServer(models=models, aliases=aliases, model_info=info) as s:
        yield s


def test_command_is_registered_lazily():
    from tracelens.cli.main import COMMANDS

    assert [c.name for c in commands] == ["models"] and COMMANDS["models"] == "models"
    assert set(models.commands) == {"show", "refresh"}


def test_list_filters_and_json():
    r = invoke(models, ["--provider", "anthropic", "--kind", "alias", "--json"])
    rows = json.loads(r.stdout)
    assert r.exit_code == 0 and rows and {x["kind"] for x in rows} == {"alias"}
    assert {x["provider"] for x in rows} == {"anthropic"} and all(x["source"] == "shipped data" for x in rows)
    assert {"id": "claude-sonnet-4-5", "resolves_to": ["claude-sonnet-4-5-20250929"]}.items() <= next(
        x for x in rows if x["id"] == "claude-sonnet-4-5").items()
    r = invoke(models, ["--provider", "gemini"])
    assert r.exit_code == 0 and "gemini-2.5-pro" in r.stdout and "claude" not in r.stdout
    assert "shipped model data as of" in r.stderr


def test_show_explains_the_decision():
    r = invoke(models, ["show", "us.anthropic.claude-sonnet-4-20250514-v1:0"])
    assert r.exit_code == 0 and "snapshot" in r.stdout and "anthropic.claude-sonnet-4-20250514-v1:0" in r.stdout
    out = json.loads(invoke(models, ["show", "claude-zephyr-9", "--json"]).stdout)
    assert (out["kind"], out["source"], out["is_alias"]) == ("alias", "shape rule", True)
    out = json.loads(invoke(models, ["show", "claude-zephyr-9", "--reported", "--json"]).stdout)
    assert (out["kind"], out["source"], out["is_alias"]) == ("fixed", "shape rule", False)


def test_refresh_saves_an_override_that_wins(filled, server):
    root = filled.root
    assert not (root / "models.json").exists()
    r = invoke(models, ["refresh", "--base-url", server.base_url, "--json"], filled)
    assert r.exit_code == 0, r.stderr
    out = json.loads(r.stdout)
    assert sorted(out["listed"]) == sorted(server.models)
    assert out["aliases"]["claude-sonnet-4-5"] == "claude-sonnet-4-5-20261112"
    assert out["aliases"]["claude-zephyr-9"] == "claude-zephyr-9-20300101"  # an undated id the store requested
    assert "claude-3-7-sonnet-latest" in out["not_found"]  # a shipped alias this server does not serve
    assert out["base_url"] == server.base_url and out["fetched_at"].endswith("Z")
    # what was asked: every page of the list, then one GET per alias / undated requested id
    paths = [q.path.split("?")[0] for q in server.requests]
    assert paths[0] == "/v1/models" and "/v1/models/claude-zephyr-9" in paths
    assert "/v1/models/claude-opus-4-6" not in paths  # listed by the API itself: a model, not an alias
    assert all(q.method == "GET" for q in server.requests)
    # the file: the documented format, when it was fetched, never the key
    text = (root / "models.json").read_text()
    assert SECRET not in text and SECRET not in r.stdout + r.stderr
    doc = json.loads(text)
    assert doc["format_version"] == 1 and doc["fetched_at"] == out["fetched_at"]
    cat = load_catalog(root)
    c = cat.classify("claude-sonnet-4-5")
    assert (c.source, c.resolves_to) == ("store override", ("claude-sonnet-4-5-20261112",))
    assert cat.classify("claude-opus-4-6").released.isoformat() == "2026-02-05"
    assert cat.classify("claude-zephyr-9").kind == "alias"
    # the CLI reports the override, and replay uses it
    r = invoke(models, ["show", "claude-sonnet-4-5"], filled)
    assert "store override" in r.stdout and "claude-sonnet-4-5-20261112" in r.stdout
    r = invoke(models, ["--kind", "alias"], filled)
    assert "store override" in r.stderr and "claude-sonnet-4-5-20261112" in r.stdout
    r = invoke(models, ["refresh", "--base-url", server.base_url], filled)
    assert r.exit_code == 0 and "claude-sonnet-4-5 -> claude-sonnet-4-5-20261112" in r.stdout


def test_refresh_without_a_key_changes_nothing(filled, server):
    before = sorted(p.name for p in filled.root.iterdir())
    r = invoke(models, ["refresh", "--base-url", server.base_url], filled, env={"ANTHROPIC_API_KEY": None})
    assert r.exit_code == 1 and r.stdout == ""
    assert len(r.stderr.strip().splitlines()) == 1 and "ANTHROPIC_API_KEY" in r.stderr
    r = invoke(models, ["refresh", "--base-url", server.base_url, "--api-key-env", "MY_KEY"], filled,
               env={"MY_KEY": None})
    assert r.exit_code == 1 and "MY_KEY" in r.stderr
    assert server.requests == [] and sorted(p.name for p in filled.root.iterdir()) == before


def test_refresh_failure_keeps_the_old_override(filled, server):
    invoke(models, ["refresh", "--base-url", server.base_url], filled)
    saved = (filled.root / "models.json").read_text()
    server.stop()  # the API goes away: nothing is written, the error names where it went
    r = invoke(models, ["refresh", "--base-url", server.base_url, "--timeout", "2"], filled)
    assert r.exit_code == 1 and server.base_url in r.stderr and SECRET not in r.stderr
    assert (filled.root / "models.json").read_text() == saved


@pytest.mark.parametrize("bad", ["{oops", json.dumps({"format_version": 0, "as_of": "2025-01-01", "providers": {}}),
                                 json.dumps({"format_version": 2, "as_of": "2027-01-01", "providers": {}}),
                                 json.dumps({"format_version": 1, "as_of": "2026-01-01"})])
def test_a_bad_override_still_opens(filled, server, bad):
    path = filled.root / "models.json"
    path.write_text(bad)
    r = invoke(models, ["show", "claude-sonnet-4-5", "--json"], filled)
    assert r.exit_code == 0 and json.loads(r.stdout)["source"] == "shipped data"
    assert str(path) in r.stderr and "warning" in r.stderr
    r = invoke(replay, ["msg_000000", "msg_000001", "--dry-run", "--base-url", server.base_url], filled)
    assert r.exit_code == 0, r.stderr
    assert [json.loads(line)["model"] for line in r.stdout.splitlines()] == ["claude-sonnet-4-5-20250929",
                                                                             "claude-opus-4-6"]


def test_replay_reads_the_stores_override(filled, server):
    r = invoke(replay, ["msg_000001", "--dry-run", "--base-url", server.base_url], filled)
    assert r.exit_code == 0 and json.loads(r.stdout)["model"] == "claude-opus-4-6"  # fixed by the shipped data
    override = {"format_version": 1, "as_of": "2026-12-01", "sources": {"anthropic": ["hand-written"]},
                "providers": {"anthropic": [
                    {"id": "claude-opus-4-6", "kind": "alias", "family": "claude-opus-4-6",
                     "resolves_to": ["claude-opus-4-6-20990101"]},
                    {"id": "claude-opus-4-6-20990101", "kind": "snapshot", "family": "claude-opus-4-6"}]}}
    (filled.root / "models.json").write_text(json.dumps(override))
    r = invoke(replay, ["msg_000001", "--dry-run", "--base-url", server.base_url], filled)
    assert r.exit_code == 1 and "alias" in r.stderr and "claude-opus-4-6" in r.stderr
