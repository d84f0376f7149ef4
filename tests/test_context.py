"""A trace in its context (``tracelens.context``): prompt history, related and similar traces, refusal evidence.

The CLI front ends (`tracelens show --context`, `tracelens similar TRACE`) are checked against these same functions.
"""

from __future__ import annotations

import pytest

from tests.test_tui_data import PROMPT_CHANGE, build_tui_store
from tracelens.context import (
    refusal_explanation,
    same_prompt_traces,
    similar_traces,
    trace_context,
    word_diff,
)
from tracelens.extras import NotAvailable


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    return build_tui_store(tmp_path_factory.mktemp("context"))


def test_context_shows_the_prompt_change_before_the_complaint(store):
    trace = store.get("msg_complaint")
    ctx = trace_context(store, trace)
    assert [v.number for v in ctx.prompt_versions] == [1, 2]
    assert ctx.prompt_version.number == 2 and ctx.prompt_version.first_seen >= PROMPT_CHANGE
    assert "+Never discuss refunds; hand refund questions to a human agent." in ctx.prompt_diff.splitlines()
    assert ctx.previous_prompt_text.startswith("You are the support assistant")
    assert any(n.startswith("The system prompt changed") for n in ctx.notes)
    assert any("alias claude-sonnet-4-5" in n for n in ctx.notes)
    assert [m.key for m in ctx.models] == ["claude-sonnet-4-5-20250929"]
    # an early trace: no earlier version, nothing changed recently
    early = trace_context(store, store.get("msg_000000"))
    assert early.prompt_current == 0 and early.prompt_diff == ""
    # every banner line names its subject (it is read alone, not after the line before it)
    assert any(n.startswith("The system prompt of app ") and "(v1 here) was replaced later: v2" in n for n in early.notes)


def test_same_prompt_in_other_weeks(store):
    rows, weeks = same_prompt_traces(store, store.get("msg_triage_w47"))
    assert rows["trace_id"].to_list() == ["msg_triage_w46"]
    assert [(w.week, w.traces, w.refusals) for w in weeks] == [("2026-W46", 1, 0)]
    rows, weeks = same_prompt_traces(store, store.get("msg_complaint"))
    assert rows.height == 0 and weeks == []


def test_similar_traces_need_embeddings(store):
    # with embeddings: tests/test_tui.py::test_similar_traces_with_embeddings
    with pytest.raises(NotAvailable, match="tracelens embed"):
        similar_traces(store, store.get("msg_complaint"))


def test_refusal_explanation_points_at_the_evidence(store):
    why = refusal_explanation(store.get("msg_complaint"))
    assert why.label == "full" and why.source == "text"
    text = store.get("msg_complaint")["response_text"]
    assert [text[a:b].lower() for a, b in why.spans] == ["i can't help"]
    structured = refusal_explanation(store.get("msg_triage_w47"))
    assert "provider itself signalled" in structured.explanation and structured.spans == ()
    assert refusal_explanation(store.get("msg_000001")) is None


def test_word_diff_round_trips():
    a, b = "I can't help with refunds today.", "I can help with your refund today!"
    ops = word_diff(a, b)
    assert "".join(t for op, t in ops if op != "insert") == a
    assert "".join(t for op, t in ops if op != "delete") == b
    assert ("delete", "can't") in ops and ("insert", "can") in ops and ("delete", "refunds") in ops


# --------------------------------------------------------------------------- the CLI front ends


def _cli(args, store):
    import json

    from click.testing import CliRunner

    from tracelens.cli.main import cli

    r = CliRunner().invoke(cli, [*args, "--store", str(store.root)])
    return r, (json.loads(r.stdout) if "--json" in args and r.exit_code == 0 else None)


def test_show_context_json_is_the_core_report(store):
    import json

    from tracelens.cli.common import json_dumps
    from tracelens.context import context_report
    from tracelens.query import trace_jsonable

    r, out = _cli(["show", "msg_triage_w47", "--context", "--json"], store)
    assert r.exit_code == 0, r.output
    trace = store.get("msg_triage_w47")
    want = json.loads(json_dumps({"trace": trace_jsonable(trace), **context_report(store, trace).to_dict()}))
    assert out == want
    assert out["same_prompt"]["weeks"] == [{"week": "2026-W46", "traces": 1, "refusals": 0}]
    assert [t["trace_id"] for t in out["same_prompt"]["traces"]] == ["msg_triage_w46"]
    assert out["refusal"]["source"] == "structured"
    # without --context the JSON is the trace alone, as before
    r, plain = _cli(["show", "msg_triage_w47", "--json"], store)
    assert plain == out["trace"]


def test_show_context_text_names_the_prompt_change(store):
    r, _ = _cli(["show", "msg_complaint", "--context"], store)
    assert r.exit_code == 0, r.output
    out = " ".join(r.stdout.split())
    assert "The system prompt changed" in out and "diff v1 -> v2" in out
    assert "+Never discuss refunds; hand refund questions to a human agent." in r.stdout
    assert "Labelled a full refusal" in out and "same prompt in other weeks: none" in out


def test_similar_trace_id_is_the_tuis_related_list(store, tmp_path):
    r, _ = _cli(["similar", "msg_complaint"], store)
    assert r.exit_code == 1 and "tracelens embed" in r.output
    embed = pytest.importorskip("tracelens.embed")
    local = build_tui_store(tmp_path / "emb")
    embed.embed_store(local, "fake")
    r, out = _cli(["similar", "msg_complaint", "--k", "5", "--json"], local)
    assert r.exit_code == 0, r.output
    core = similar_traces(local, local.get("msg_complaint"), k=5)
    assert out["trace_id"] == "msg_complaint" and out["hits"]
    assert [(h["trace_id"], h["similarity"]) for h in out["hits"]] == list(
        zip(core["trace_id"].to_list(), core["similarity"].to_list(), strict=True))
    r, _ = _cli(["similar", "msg_complaint", "--field", "response"], local)
    assert r.exit_code == 2 and "--field applies to --like" in r.output
    r, _ = _cli(["similar", "msg_complaint", "--like", "msg_complaint"], local)
    assert r.exit_code == 2
