"""Task evals end to end through the CLI: traces become a suite, runs go to local fake Anthropic and OpenAI servers
scripted to regress on chosen cases, results are stored, and the regression tests and upgrade verdict say so."""

from __future__ import annotations

import json

import polars as pl
import pytest
from click.testing import CliRunner

from tests.conftest import anthropic_line
from tracelens.cli.main import cli
from tracelens.evals.graders import SuiteError
from tracelens.evals.runner import load_results
from tracelens.evals.suite import read_suite_file, suite_to_yaml
from tracelens.storeopen import open_store
from tracelens.testing.fake_anthropic import FakeAnthropicServer, Reply
from tracelens.testing.fake_openai import FakeOpenAIServer
from tracelens.testing.fake_openai import Reply as OReply

SNAP = "claude-sonnet-4-5-20250929"
NEW_SNAP = "claude-sonnet-4-5-20261112"
N_CASES = 40


@pytest.fixture(scope="module")
def store_path(tmp_path_factory):
    from tracelens.ingest.pipeline import ingest

    root = tmp_path_factory.mktemp("evals")
    src = root / "calls.jsonl"
    lines = [anthropic_line(i, prompt=f"refund question {i}: where is order {1000 + i}?",
                            text=f"Your refund for order {1000 + i} is on its way.", ts=f"2026-11-18T{10 + i % 8:02d}:00:00Z")
             for i in range(N_CASES)]
    src.write_text("\n".join(lines) + "\n", encoding="utf-8")
    store = open_store(root / "store", create=True)  # the default layout: results land in a Delta table
    ingest(store, [str(src)])
    return str(store.root)


def run(args, env=None, input=None):
    return CliRunner().invoke(cli, args, env=env or {}, input=input, catch_exceptions=False)


def make_suite(store_path: str, name: str) -> None:
    r = run(["eval", "add", name, "--text", "refund question", "--expect", "not-refused", "--expect",
             "contains:refund", "--tag", "task=refund", "--store", store_path, "--json"])
    assert r.exit_code == 0, r.output
    out = json.loads(r.stdout)
    assert len(out["added"]) == N_CASES and out["skipped"] == {}


def refuse_some(server: FakeAnthropicServer, ids: range) -> None:
    for i in ids:
        server.add_rule(Reply.message("I'm sorry, but I can't help with that."), contains=f"question {i}:")
    server.add_rule(Reply.message("Your refund is on its way."))


def test_traces_become_cases_with_the_exact_request_and_the_pinned_snapshot(store_path):
    make_suite(store_path, "exact")
    suite, _ = read_suite_file(f"{store_path}/evals/suites/exact.yaml")
    case = suite.case("msg_000003")
    assert case.model == SNAP and case.trace_id == "msg_000003"
    assert case.request["messages"] == [{"role": "user", "content": "refund question 3: where is order 1003?"}]
    assert case.request["system"] == "You are helpful." and case.request["max_tokens"] == 256
    assert case.reference == "Your refund for order 1003 is on its way." and case.reference_refusal == "none"
    assert case.tags == {"app": "support", "task": "refund"}
    assert [g.type for g in case.graders] == ["not-refused", "contains"]
    again = read_suite_file(f"{store_path}/evals/suites/exact.yaml")[0]  # the stored file round-trips
    assert suite_to_yaml(again) == suite_to_yaml(suite)
    r = run(["eval", "add", "exact", "msg_000003", "--store", store_path])
    assert r.exit_code == 1 and "already in the suite" in r.output  # nothing added twice


def test_a_regression_is_found_paired_per_case_and_fails_ci(store_path):
    make_suite(store_path, "reg")
    with FakeAnthropicServer() as server:
        env = {"ANTHROPIC_API_KEY": "k-test", "ANTHROPIC_BASE_URL": server.base_url}
        server.add_rule(Reply.message("Your refund is on its way."))
        r = run(["eval", "run", "reg", "--yes", "--store", store_path, "--json"], env)
        assert r.exit_code == 0, r.output
        first = json.loads(r.stdout)["runs"][0]
        assert first["pass_rate"]["rate"] == 1.0 and first["vs_previous"] is None
        assert {q.json["model"] for q in server.message_requests} == {SNAP}
    with FakeAnthropicServer() as server:
        env = {"ANTHROPIC_API_KEY": "k-test", "ANTHROPIC_BASE_URL": server.base_url}
        refuse_some(server, range(0, 12))
        r = run(["eval", "run", "reg", "--yes", "--fail-on", "regression", "--store", store_path, "--json"], env)
    assert r.exit_code == 1, r.output  # CI fails on the regression
    second = json.loads(r.stdout)["runs"][0]
    overall = second["vs_previous"]["overall"]
    assert second["regressed"] and overall["verdict"] == "regression"
    assert overall["n_pass_to_fail"] == 12 and overall["method"].lower().startswith("exact mcnemar")
    assert sorted(overall["pass_to_fail"]) == sorted(f"msg_{i:06d}" for i in range(12))
    df = load_results(store_path, "reg")  # stored, readable with polars
    assert df.height == 2 * N_CASES and set(df["outcome"]) == {"pass", "fail"}
    assert df.filter(pl.col("outcome") == "fail")["refusal"].to_list() == ["full"] * 12
    r = run(["eval", "report", "reg", "--store", store_path, "--format", "markdown"])
    assert r.exit_code == 0 and "regressed" in r.output and "msg_000000" in r.output


def test_upgrade_verdict_across_snapshots_and_an_openai_compatible_model(store_path):
    make_suite(store_path, "upgrade")
    with FakeAnthropicServer(models=[SNAP, NEW_SNAP]) as anth, FakeOpenAIServer() as oai:
        anth.add_rule(Reply.message("Your refund is on its way."), model=SNAP)
        for i in range(20):  # the new snapshot refuses half the refund questions
            anth.add_rule(Reply.message("I'm sorry, but I can't help with refunds."), model=NEW_SNAP,
                          contains=f"question {i}:")
        anth.add_rule(Reply.message("Your refund is on its way."), model=NEW_SNAP)
        oai.add_rule(OReply.message("Your refund has been issued."))
        env = {"ANTHROPIC_API_KEY": "k-test", "ANTHROPIC_BASE_URL": anth.base_url, "LOCAL_KEY": "o-test"}
        r = run(["eval", "run", "upgrade", "--target", "pinned", "--target", f"anthropic:{NEW_SNAP}",
                 "--target", f"compatible:gpt-4o-mini@{oai.base_url}#LOCAL_KEY", "--yes", "--store", store_path,
                 "--json"], env)
        assert r.exit_code == 0, r.output
        sent = [q.json for q in oai.requests if q.path.endswith("/chat/completions")]
        assert len(sent) == N_CASES and sent[0]["messages"][0] == {"role": "system", "content": "You are helpful."}
    r = run(["eval", "compare", "upgrade", "--baseline", SNAP, "--candidate", NEW_SNAP, "--store", store_path, "--json"])
    assert r.exit_code == 0, r.output
    v = json.loads(r.stdout)
    assert v["verdict"] == "regressions" and len(v["worse"]) == 20 and not v["better"]
    assert v["worse"][0]["candidate_answer"].startswith("I'm sorry")
    r = run(["eval", "compare", "upgrade", "--baseline", SNAP, "--candidate", "gpt-4o-mini", "--store", store_path,
             "--json"])
    assert json.loads(r.stdout)["verdict"] == "safe"
    r = run(["eval", "report", "upgrade", "--store", store_path, "--json"])
    board = json.loads(r.stdout)["leaderboard"]
    assert [e["target"] for e in board["entries"]][-1].startswith(f"anthropic:{NEW_SNAP}@")


def test_target_errors_are_errors_not_fails_and_nothing_is_sent_unconfirmed(store_path):
    make_suite(store_path, "errs")
    with FakeAnthropicServer() as server:
        env = {"ANTHROPIC_API_KEY": "k-test", "ANTHROPIC_BASE_URL": server.base_url}
        r = run(["eval", "run", "errs", "--store", store_path], env)  # not interactive, no --yes
        assert r.exit_code != 0 and "--yes" in r.output and server.message_requests == []
        r = run(["eval", "run", "errs", "--yes", "--max-cost", "0.000001", "--store", store_path], env)
        assert r.exit_code != 0 and "above --max-cost" in r.output and server.message_requests == []
        r = run(["eval", "run", "errs", "--target", "anthropic:claude-unknown-20990101", "--yes", "--store",
                 store_path, "--json"], env)
    summary = json.loads(r.stdout)["runs"][0]
    assert summary["run"]["errors"] == N_CASES and summary["run"]["failed"] == 0
    assert summary["pass_rate"]["rate"] is None


def test_missing_key_stops_the_run_before_anything_is_sent(store_path):
    make_suite(store_path, "nokey")
    with FakeAnthropicServer() as server:
        r = run(["eval", "run", "nokey", "--yes", "--store", store_path], {"ANTHROPIC_BASE_URL": server.base_url,
                                                                          "ANTHROPIC_API_KEY": ""})
        assert r.exit_code == 1 and "ANTHROPIC_API_KEY" in r.output and server.message_requests == []


def test_a_grader_that_raises_is_a_failed_grader_not_a_crashed_run(store_path, tmp_path):
    (tmp_path / "checks.py").write_text("def boom(output, context):\n    raise RuntimeError('bug in grader')\n")
    suite = tmp_path / "hand.yaml"
    suite.write_text(
        "name: hand\ncases:\n"
        "  - id: one\n    model: claude-sonnet-4-5-20250929\n    prompt: Say hello.\n"
        "    graders:\n      - type: python\n        value: checks.py:boom\n      - type: not-refused\n",
        encoding="utf-8")
    with FakeAnthropicServer() as server:
        env = {"ANTHROPIC_API_KEY": "k-test", "ANTHROPIC_BASE_URL": server.base_url}
        r = run(["eval", "run", str(suite), "--yes", "--store", store_path, "--json"], env)
    assert r.exit_code == 0, r.output
    df = load_results(store_path, "hand")
    grades = json.loads(df["grades"][0])
    assert df["outcome"][0] == "fail" and grades[0]["passed"] is None and "bug in grader" in grades[0]["error"]
    assert grades[1]["passed"] is True


@pytest.mark.parametrize("text, message", [
    ("name: bad\ncases:\n  - id: a\n    prompt: hi\n    colour: red\n", "line 3"),
    ("name: bad\ncases:\n  - id: a\n    prompt: hi\n    graders:\n      - type: contans\n        value: x\n", "line 6"),
    ("name: bad\ncases:\n  - id: a\n    prompt: hi\n  - id: a\n    prompt: again\n", "two cases have the id"),
    ("name: bad\ncases:\n  - id: a\n", "needs 'request', 'prompt' or 'messages'"),
])
def test_a_bad_suite_file_is_rejected_with_line_and_field(tmp_path, text, message):
    p = tmp_path / "bad.yaml"
    p.write_text(text, encoding="utf-8")
    with pytest.raises(SuiteError, match=message):
        read_suite_file(p)


def test_jsonl_suites_name_the_bad_line(tmp_path):
    p = tmp_path / "s.jsonl"
    p.write_text('{"suite": {"name": "j"}}\n{"id": "a", "prompt": "hi"}\n{"id": "b", "prompt": 3}\n', encoding="utf-8")
    with pytest.raises(SuiteError, match=r"s.jsonl line 3, case 'b', prompt"):
        read_suite_file(p)


def two_runs(store_path: str, name: str, refuse: range) -> None:
    make_suite(store_path, name)
    for ids in (range(0), refuse):
        with FakeAnthropicServer() as server:
            refuse_some(server, ids)
            r = run(["eval", "run", name, "--yes", "--store", store_path],
                    {"ANTHROPIC_API_KEY": "k-test", "ANTHROPIC_BASE_URL": server.base_url})
            assert r.exit_code == 0, r.output


def test_report_formats_show_the_regression_and_the_html_stands_alone(store_path, tmp_path):
    two_runs(store_path, "render", range(30, 40))
    r = run(["eval", "report", "render", "--store", store_path])
    assert r.exit_code == 0 and "REGRESSION" in r.output and "msg_000030" in r.output
    md = run(["eval", "report", "render", "--format", "markdown", "--store", store_path]).output
    assert md.startswith("# Eval report: render") and "| target |" in md and "`msg_000031`" in md
    out = tmp_path / "r.html"
    r = run(["eval", "report", "render", "--format", "html", "--out", str(out), "--store", store_path])
    html = out.read_text()
    assert r.exit_code == 0 and "<script" not in html and "http://" not in html.replace("http://www.w3.org", "")
    assert 'id="trend"' in html and "data:image/svg+xml;base64," in html and 'class="alert"' in html
    r = run(["eval", "report", "render", "--fail-on", "regression", "--store", store_path])
    assert r.exit_code == 1


def test_a_promptfoo_config_runs_as_a_suite(store_path):
    from pathlib import Path

    config = Path(__file__).parent / "fixtures" / "promptfoo" / "translate.yaml"
    r = run(["eval", "import", str(config), "--name", "pf", "--store", store_path])
    assert r.exit_code == 0 and "providers in the config are ignored" in r.output
    with FakeAnthropicServer() as server:
        server.add_rule(Reply.message("Bonjour le monde"), contains="French")
        server.add_rule(Reply.message("Hallo Welt"), contains="German")
        server.add_rule(Reply.message("¿Dónde está la biblioteca?"))
        r = run(["eval", "run", "pf", "--target", f"anthropic:{SNAP}", "--yes", "--store", store_path, "--json"],
                {"ANTHROPIC_API_KEY": "k-test", "ANTHROPIC_BASE_URL": server.base_url})
        assert r.exit_code == 0, r.output
        prompts = [q.json["messages"][0]["content"] for q in server.message_requests]
    assert "Convert this English to French: Hello world" in prompts
    df = load_results(store_path, "pf")
    assert df.height == len(prompts) and set(df["outcome"]) == {"pass"}


def test_an_alias_only_trace_is_not_added_unless_a_snapshot_is_pinned(tmp_path):
    from tracelens.ingest.pipeline import ingest
    from tracelens.store import Store

    src = tmp_path / "alias.jsonl"
    src.write_text(anthropic_line(1, returned="claude-sonnet-4-5") + "\n", encoding="utf-8")
    store = Store(tmp_path / "store", create=True)
    ingest(store, [str(src)])
    r = run(["eval", "add", "a", "msg_000001", "--expect", "not-refused", "--store", str(store.root)])
    assert r.exit_code == 1 and "alias" in r.output and "Pass --pin" in r.output
    assert not (store.root / "evals" / "suites" / "a.yaml").exists()  # a failed add leaves no empty suite
    r = run(["eval", "add", "a", "msg_000001", "--pin", SNAP, "--expect", "not-refused", "--store", str(store.root),
             "--json"])
    assert r.exit_code == 0 and json.loads(r.stdout)["added"] == ["msg_000001"]
    assert read_suite_file(store.root / "evals" / "suites" / "a.yaml")[0].cases[0].model == SNAP


def test_llm_judge_is_off_unless_asked_pinned_and_counted_in_the_cost(store_path, tmp_path):
    suite = tmp_path / "judged.yaml"
    suite.write_text(
        "name: judged\ncases:\n"
        "  - id: polite\n    model: claude-sonnet-4-5-20250929\n    prompt: Greet the customer.\n"
        "    graders:\n      - {type: llm-judge, rubric: The reply is polite.}\n", encoding="utf-8")
    with FakeAnthropicServer() as server:
        server.add_rule(Reply.message('{"reason": "polite", "score": 0.9, "pass": true}'), contains="<rubric>")
        server.add_rule(Reply.message("Hello, and welcome!"))
        env = {"ANTHROPIC_API_KEY": "k-test", "ANTHROPIC_BASE_URL": server.base_url}
        r = run(["eval", "run", str(suite), "--yes", "--store", store_path, "--json"], env)
        assert "llm-judge is off" in r.output and len(server.message_requests) == 1  # no judge call
        r = run(["eval", "run", str(suite), "--yes", "--judge", "claude-haiku-4-5", "--store", store_path], env)
        assert r.exit_code == 2 and "not a pinned snapshot" in r.output
        r = run(["eval", "run", str(suite), "--yes", "--judge", "claude-haiku-4-5-20251001", "--store", store_path,
                 "--json"], env)
        assert r.exit_code == 0, r.output
        assert "llm-judge: 1 call(s) to claude-haiku-4-5-20251001" in r.output
        judged = [q.json for q in server.message_requests if q.json["model"] == "claude-haiku-4-5-20251001"]
    assert len(judged) == 1 and "Hello, and welcome!" in judged[0]["messages"][0]["content"]
    df = load_results(store_path, "judged")
    last = df.filter(pl.col("run_id") == df["run_id"][-1])
    grade = json.loads(last["grades"][0])[0]
    assert last["outcome"][0] == "pass" and grade["cost_usd"] > 0
    assert last["cost_usd"][0] > grade["cost_usd"]  # the target's call plus the judge's


def test_concurrent_adds_to_one_suite_all_land(store_path):
    import threading

    from tracelens.evals.suite import add_traces, parse_expect

    store = open_store(store_path)
    graders = parse_expect(["not-refused"])
    ids = [f"msg_{i:06d}" for i in range(N_CASES)]
    errors = []

    def add(part):
        try:
            for tid in part:
                add_traces(store.root, "together", [tid], store.get, graders)
        except Exception as e:  # noqa: BLE001 - reported below
            errors.append(e)

    threads = [threading.Thread(target=add, args=(ids[k::4],)) for k in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    suite, _ = read_suite_file(f"{store_path}/evals/suites/together.yaml")
    assert sorted(c.id for c in suite.cases) == ids


def test_without_the_embed_extra_similarity_graders_say_what_to_install(store_path, monkeypatch):
    import tracelens.extras

    real = tracelens.extras.has_extra
    monkeypatch.setattr(tracelens.extras, "has_extra", lambda extra: extra != "embed" and real(extra))
    r = run(["eval", "add", "vectors", "msg_000001", "--expect", "behaves-like", "--store", store_path])
    assert r.exit_code == 0, r.output
    with FakeAnthropicServer() as server:
        server.add_rule(Reply.message("Your refund for order 1001 is on its way."))
        r = run(["eval", "run", "vectors", "--yes", "--store", store_path],
                {"ANTHROPIC_API_KEY": "k-test", "ANTHROPIC_BASE_URL": server.base_url})
    assert r.exit_code == 0, r.output
    assert "need an embedding model" in r.output and "pip install 'tracelens[embed]'" in r.output
    grade = json.loads(load_results(store_path, "vectors")["grades"][0])[0]
    assert grade["passed"] is None and "pip install 'tracelens[embed]'" in grade["error"]


def test_a_stopped_run_keeps_and_stores_the_answers_it_got(store_path):
    import threading

    from tracelens.evals.runner import execute, plan_run, write_results
    from tracelens.evals.targets import parse_target

    make_suite(store_path, "stopped")
    suite, _ = read_suite_file(f"{store_path}/evals/suites/stopped.yaml")
    cancel = threading.Event()
    got = []

    def on_result(r):
        got.append(r)
        if len(got) == 5:
            cancel.set()  # as ctrl-c does in `eval run`

    with FakeAnthropicServer() as server:
        server.add_rule(Reply.slow(0.05, "Your refund is on its way."))
        env = {"ANTHROPIC_API_KEY": "k", "ANTHROPIC_BASE_URL": server.base_url}
        plan = plan_run(suite, parse_target("pinned", env=env), 1)
        run_ = execute(plan, env=env, concurrency=2, cancel=cancel, on_result=on_result)
    assert run_.interrupted and 5 <= len(run_.results) < N_CASES
    assert len({(r.case_id, r.repeat) for r in run_.results}) == len(run_.results)
    write_results(store_path, run_, suite)
    assert load_results(store_path, "stopped").height == len(run_.results)



def test_a_trace_from_another_provider_is_not_a_case(tmp_path):
    from tracelens.ingest.pipeline import ingest
    from tracelens.store import Store

    src = tmp_path / "openai.jsonl"
    src.write_text(json.dumps({
        "timestamp": "2026-11-18T10:00:00Z",
        "request": {"model": "gpt-4o-mini", "messages": [{"role": "system", "content": "Be brief."},
                                                         {"role": "user", "content": "Hi"}]},
        "response": {"id": "chatcmpl-1", "object": "chat.completion", "model": "gpt-4o-mini-2024-07-18",
                     "choices": [{"index": 0, "message": {"role": "assistant", "content": "Hello"},
                                  "finish_reason": "stop"}],
                     "usage": {"prompt_tokens": 5, "completion_tokens": 1, "total_tokens": 6}}}) + "\n")
    store = Store(tmp_path / "store", create=True)
    ingest(store, [str(src)])
    tid = store.scan().collect()["trace_id"][0]
    r = run(["eval", "add", "o", tid, "--pin", "gpt-4o-mini-2024-07-18", "--store", str(store.root)])
    assert r.exit_code == 1 and "not Claude" in r.output and "--target openai:MODEL" in r.output


@pytest.mark.parametrize("doc", ["docs/evals.md", "README.md"])
def test_the_eval_commands_the_docs_show_parse(doc):
    """Every `tracelens eval ...` line in the docs' shell blocks names real subcommands and options."""
    import re
    import shlex
    from pathlib import Path

    import click

    text = (Path(__file__).parent.parent / doc).read_text(encoding="utf-8")
    blocks = re.findall(r"```bash\n(.*?)```", text, flags=re.S)
    lines = [ln.split("  #")[0].strip() for b in blocks for ln in b.replace("\\\n", " ").splitlines()]
    commands = [ln for ln in lines if ln.startswith("tracelens eval ")]
    assert commands
    root = click.Context(cli, info_name="tracelens")
    group = cli.get_command(root, "eval")
    for ln in commands:
        words = shlex.split(ln.replace('"$(date +%G-W%V)"', "2026-W47"))[2:]
        sub = group.get_command(root, words[0])
        assert sub is not None, ln
        sub.make_context(words[0], words[1:], parent=root)  # raises on an unknown option or a bad value
