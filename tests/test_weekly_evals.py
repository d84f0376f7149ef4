"""`tracelens weekly` shows the Evals section: two runs of a suite made through the runner against the fake
Anthropic server, scripted to regress on some cases, show as a regression in every format, count toward the exit
code, and the JSON validates against the committed schema."""

from __future__ import annotations

import json

import jsonschema
import pytest
from click.testing import CliRunner

from tests.conftest import REPO, anthropic_line
from tracelens.cli.main import cli
from tracelens.testing.fake_anthropic import FakeAnthropicServer, Reply

N = 16
REFUSED = range(0, 8)


def question(i: int) -> str:
    return f"weekly refund question {i}: where is order {1000 + i}?"


@pytest.fixture(scope="module")
def store_path(tmp_path_factory):
    from tracelens.ingest.pipeline import ingest
    from tracelens.store import Store

    root = tmp_path_factory.mktemp("weekly-evals")
    src = root / "calls.jsonl"
    lines = [anthropic_line(i, prompt=question(i), text=f"Your refund for order {1000 + i} is on its way.",
                            ts=f"2026-11-{10 + 7 * (i % 2) + i % 5:02d}T{9 + i % 8:02d}:00:00Z") for i in range(N)]
    src.write_text("\n".join(lines) + "\n", encoding="utf-8")
    store = Store(root / "store", create=True)
    ingest(store, [str(src)])
    path = str(store.root)
    r = invoke(["eval", "add", "refunds", "--text", "weekly refund question", "--expect", "not-refused",
                "--expect", "contains:refund", "--store", path])
    assert r.exit_code == 0, r.output
    with FakeAnthropicServer() as server:
        env = {"ANTHROPIC_API_KEY": "k-test", "ANTHROPIC_BASE_URL": server.base_url}
        server.add_rule(Reply.message("Your refund is on its way."))
        assert invoke(["eval", "run", "refunds", "--yes", "--store", path], env).exit_code == 0
        server.reset()
        for i in REFUSED:
            server.add_rule(Reply.message("I'm sorry, but I can't help with that."), contains=f"question {i}:")
        server.add_rule(Reply.message("Your refund is on its way."))
        assert invoke(["eval", "run", "refunds", "--yes", "--store", path], env).exit_code == 0
    return path


def invoke(args, env=None):
    return CliRunner().invoke(cli, args, env={"ANTHROPIC_BASE_URL": None, **(env or {})}, catch_exceptions=False)


def weekly(store_path, *extra):
    return invoke(["weekly", "--week", "2026-W47", "--no-embed", "--store", store_path, *extra])


def test_weekly_json_has_the_eval_regression_validates_and_fails_the_run(store_path):
    r = weekly(store_path, "--json")
    doc = json.loads(r.stdout)
    schema = json.loads((REPO / "schemas" / "drift_report.schema.json").read_text())
    jsonschema.validate(doc, schema)
    [ev] = doc["evals"]
    assert (ev["suite"], ev["target"], ev["verdict"], ev["regressed"]) == ("refunds", "pinned", "regression", True)
    assert ev["n_pass_to_fail"] == len(REFUSED) and ev["pass_rate"] == 0.5 and ev["previous_pass_rate"] == 1.0
    assert ev["refusal_rate"] == 0.5 and ev["errors"] == 0 and ev["cases"] == N and ev["previous_run_id"]
    assert not [f for f in doc["findings"] if f["severity"] == "alert"]  # the exit code below is the eval's
    assert r.exit_code == 1
    assert weekly(store_path, "--json", "--fail-on", "never").exit_code == 0


def test_weekly_shows_the_evals_section_in_every_format(store_path, tmp_path):
    md = weekly(store_path, "--format", "markdown").stdout
    assert "**Evals** (latest run per target vs the previous one)" in md
    assert "🔴 refunds (pinned): pass 50.0% [" in md and "-- regression; 8 cases passed before and fail now" in md
    assert "Evals regressed against their previous run: refunds (pinned)." in md
    txt = invoke(["weekly", "--week", "2026-W47", "--no-embed", "--store", store_path],
                 {"COLUMNS": "160"}).stdout
    assert "Evals (latest run per target vs the previous one)" in txt and "regression" in txt
    html_path = tmp_path / "report.html"
    r = weekly(store_path, "--format", "markdown", "--html", str(html_path))
    html = html_path.read_text()
    assert r.exit_code == 1 and '<section id="evals"><h2>Evals</h2>' in html
    assert '<td class="alert">regression</td>' in html and "8: <code>" in html
