"""Headless TUI helpers (tracelens.tui_core): time windows, paging, context, exports. No Textual here."""

from __future__ import annotations

import datetime as dt
import json
import os
import shutil
import subprocess
import sys

import polars as pl
import pytest

from tests.test_tui_data import COMPLAINT_PROMPT, NOW, PROMPT_CHANGE, build_tui_store
from tracelens.query import SearchFilters
from tracelens.tui_core import (
    FindQuery,
    NotAvailable,
    ResultSet,
    build_filters,
    export_reproduction,
    export_trace_json,
    find_results,
    load_findings_report,
    parse_time_window,
    refusal_explanation,
    reproduction,
    safe_name,
    same_prompt_traces,
    similar_traces,
    trace_context,
    weekly_findings,
    word_diff,
)

UTC = dt.UTC


def T(s: str) -> dt.datetime:
    return dt.datetime.fromisoformat(s).replace(tzinfo=UTC)


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    return build_tui_store(tmp_path_factory.mktemp("tuicore"))


@pytest.mark.parametrize(
    ("text", "since", "until"),
    [
        ("yesterday 3pm", "2026-11-21 14:00", "2026-11-21 16:00"),
        ("around 3pm yesterday", "2026-11-21 14:00", "2026-11-21 16:00"),
        ("2026-11-18 15:00 ±2h", "2026-11-18 13:00", "2026-11-18 17:00"),
        ("2026-11-18 15:00 +-30m", "2026-11-18 14:30", "2026-11-18 15:30"),
        ("2026-11-18 15:00 +/- 90 min", "2026-11-18 13:30", "2026-11-18 16:30"),
        ("2026-11-18T15:00Z", "2026-11-18 14:00", "2026-11-18 16:00"),
        ("2026-11-18 13:00 .. 17:00", "2026-11-18 13:00", "2026-11-18 17:00"),
        ("2026-11-18 .. 2026-11-20", "2026-11-18 00:00", "2026-11-21 00:00"),
        ("2026-11-18", "2026-11-18 00:00", "2026-11-19 00:00"),
        ("yesterday", "2026-11-21 00:00", "2026-11-22 00:00"),
        ("tue 9:30", "2026-11-17 08:30", "2026-11-17 10:30"),
        ("last friday 15:00", "2026-11-20 14:00", "2026-11-20 16:00"),
        ("2026-W47", "2026-11-16 00:00", "2026-11-23 00:00"),
        ("7d", "2026-11-15 10:00", "2026-11-22 10:00"),
        ("last 3 days", "2026-11-19 10:00", "2026-11-22 10:00"),
    ],
)
def test_time_expressions(text, since, until):
    w = parse_time_window(text, now=NOW)
    assert (w.since, w.until) == (T(since), T(until))


def test_time_expressions_in_a_zone_and_errors():
    w = parse_time_window("yesterday 3pm", now=NOW, tz="Europe/Paris")  # 15:00 CET = 14:00 UTC
    assert w.since == T("2026-11-21 13:00")
    assert parse_time_window("  ", now=NOW) is None
    for bad in ("3", "blah", "3pm ±2x"):
        with pytest.raises(ValueError, match="cannot read time"):
            parse_time_window(bad, now=NOW)
    with pytest.raises(ValueError, match="ends before it starts"):
        parse_time_window("2026-11-18 17:00 .. 13:00", now=NOW)


def _all(rs: ResultSet, page: int) -> list[str]:
    out: list[str] = []
    while True:
        df = rs.page(len(out), page)
        if df.height == 0:
            return out
        out += df["trace_id"].to_list()


def test_pages_cover_the_matches_exactly_once_in_order(store):
    full = store.scan().sort(["timestamp", "trace_id"], descending=True).select("trace_id").collect()
    rs = ResultSet(store, SearchFilters(limit=None))
    assert rs.total == full.height == 79
    assert _all(rs, 7) == full["trace_id"].to_list()
    asc = ResultSet(store, SearchFilters(limit=None, newest_first=False))
    assert _all(asc, 11) == full["trace_id"].to_list()[::-1]


def test_pages_with_filters_and_the_complaint_query(store):
    f, extra, window = build_filters(FindQuery(user="4411", time="yesterday 3pm"), now=NOW)
    assert window.since == T("2026-11-21 14:00")
    rs = ResultSet(store, f, extra)
    rows = rs.page(0, 50)
    assert rows["trace_id"].to_list() == ["msg_complaint", "msg_000901"]
    assert rs.counts() == [(dt.date(2026, 11, 21), 2)]


def test_text_filter_searches_prompt_and_response_not_the_system_prompt(store):
    # "refunds" is in the v2 system prompt of every later support trace; only one prompt/response has it
    f, extra, _ = build_filters(FindQuery(text="REFUND"), now=NOW)
    assert ResultSet(store, f, extra).page(0, 100)["trace_id"].to_list() == ["msg_complaint"]
    f, extra, _ = build_filters(FindQuery(text="/order #88\\d\\d/"), now=NOW)
    assert set(ResultSet(store, f, extra).page(0, 100)["trace_id"]) == {"msg_complaint", "msg_000900", "msg_000901"}
    with pytest.raises(ValueError, match="invalid regular expression"):
        build_filters(FindQuery(text="/(unclosed/"), now=NOW)
    f, extra, _ = build_filters(FindQuery(trace_id="msg_triage"), now=NOW)
    assert ResultSet(store, f, extra).total == 2


def test_find_results_exact_id_then_prefix_and_one_pass_matches_paging(store):
    rs, _ = find_results(store, FindQuery(trace_id="msg_complaint"), now=NOW)
    assert rs.page(0, 10)["trace_id"].to_list() == ["msg_complaint"] and rs.filters.trace_ids == ["msg_complaint"]
    rs, _ = find_results(store, FindQuery(trace_id="msg_triage"), now=NOW)
    assert rs.page(0, 10)["trace_id"].to_list() == ["msg_triage_w47", "msg_triage_w46"]
    # a selective search answered in one pass pages exactly like the partition-by-partition way
    f, extra, _ = build_filters(FindQuery(text="order"), now=NOW)
    one = ResultSet(store, f, extra, selective=True)
    many = ResultSet(store, f, extra, selective=False)
    assert one.total == many.total > 50
    assert _all(one, 9) == _all(many, 9)
    assert one.counts() == many.counts()


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
    assert any("replaced later: v2" in n for n in early.notes)


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


def test_safe_names_for_hostile_ids():
    assert safe_name("msg_01") == "msg_01"
    for bad in ("../../etc/passwd", "a/b", "\x1b[2J", "..", ""):
        n = safe_name(bad)
        assert "/" not in n and not n.startswith(".") and n.isascii() and n


def test_exports_never_inline_the_key_and_are_pure_ascii(store, tmp_path, monkeypatch):
    monkeypatch.setenv("ANTHROPIC_API_KEY", "sk-ant-secret-value")
    trace = store.get("msg_hostile")
    ex = export_reproduction(trace, tmp_path)
    for p in ex.paths:
        text = p.read_bytes().decode("ascii")  # raises on any non-ASCII byte
        assert "sk-ant-secret-value" not in text
        assert all(c in "\n" or 32 <= ord(c) < 127 for c in text)
    sh, py = (p.read_text() for p in ex.paths)
    assert '"x-api-key: $ANTHROPIC_API_KEY"' in sh and "os.environ['ANTHROPIC_API_KEY']" in py
    body = json.loads(reproduction(trace).body)
    assert body["model"] == "claude-sonnet-4-5-20250929"  # pinned, not the alias
    assert body["messages"][0]["content"] == trace["prompt_text"]  # same value, control characters included
    j = export_trace_json(trace, tmp_path)
    assert json.loads(j.paths[0].read_text())["trace_id"] == "msg_hostile" and j.text.startswith("{")


def test_exported_scripts_run_against_the_fake_api(store, tmp_path):
    from tracelens.testing.fake_anthropic import FakeAnthropicServer, Reply

    ex = export_reproduction(store.get("msg_complaint"), tmp_path)
    sh, py = ex.paths
    with FakeAnthropicServer() as server:
        server.add_rule(Reply.message("Refund issued."))
        env = {**os.environ, "ANTHROPIC_API_KEY": "test-key", "ANTHROPIC_BASE_URL": server.base_url}
        out = subprocess.run([sys.executable, str(py)], env=env, capture_output=True, text=True, timeout=60)
        assert out.returncode == 0, out.stderr
        assert json.loads(out.stdout)["content"][0]["text"] == "Refund issued."
        if shutil.which("curl"):
            out = subprocess.run(["sh", str(sh)], env=env, capture_output=True, text=True, timeout=60)
            assert out.returncode == 0 and json.loads(out.stdout)["content"][0]["text"] == "Refund issued."
        sent = [r.json for r in server.message_requests]
    assert all(r["model"] == "claude-sonnet-4-5-20250929" for r in sent)
    assert all(r["messages"][0]["content"] == COMPLAINT_PROMPT for r in sent)


def test_findings_from_a_report_file(tmp_path):
    doc = {"windows": {"current": {"start": "2026-11-16T00:00:00Z", "end": "2026-11-23T00:00:00Z", "n": 10}},
           "findings": [{"kind": "refusal_rate", "segment": "app=support", "direction": "up", "severity": "alert",
                         "significant": True, "summary": "up", "first_seen": "2026-11-20T09:00:00Z",
                         "evidence": ["msg_complaint"]}]}
    p = tmp_path / "r.json"
    p.write_text(json.dumps(doc))
    wf = load_findings_report(p)
    assert [f.evidence for f in wf.findings] == [("msg_complaint",)]
    assert wf.findings[0].first_seen == T("2026-11-20 09:00")
    with pytest.raises(NotAvailable):
        load_findings_report(tmp_path / "missing.json")


def test_weekly_findings_calls_the_weekly_entry_point_without_embedding(store, monkeypatch):
    import types

    import tracelens.weekly
    from tracelens.analysis.findings import Finding

    f = Finding(kind="refusal_rate", segment="app=support", direction="up", baseline_value=0.0, current_value=0.1,
                effect=0.1, ci_low=0.0, ci_high=0.2, p_value=0.01, q_value=0.02, significant=True, severity="alert",
                first_seen=None, summary="up", evidence=("msg_complaint",))
    window = types.SimpleNamespace(start=T("2026-11-16 00:00"), end=T("2026-11-23 00:00"), n=39)
    calls = []

    def fake_run_weekly(store_, week=None, now=None, embed=True, progress=None):
        calls.append((store_, week, now, embed))
        progress("loaded")
        return types.SimpleNamespace(findings=(f,), current=window, baseline=window, notes=("a note",))

    monkeypatch.setattr(tracelens.weekly, "run_weekly", fake_run_weekly)
    said = []
    wf = weekly_findings(store, now=NOW, progress=said.append, week="2026-W47")
    assert calls == [(store, "2026-W47", NOW, False)] and said == ["loaded"]
    assert wf.findings == [f] and wf.notes == ["a note"] and "2026-11-16 → 2026-11-23 (39 traces)" in wf.window


def test_core_helpers_never_import_textual():
    code = "import sys, tracelens.tui_core; assert 'textual' not in sys.modules and 'click' not in sys.modules"
    subprocess.run([sys.executable, "-c", code], check=True)


def test_unfiltered_counts_come_from_parquet_footers(store, monkeypatch):
    # no row filter: counting must not run a query over the data
    def boom(*a, **k):
        raise AssertionError("scanned data to count")

    rs = ResultSet(store, SearchFilters(limit=None))
    monkeypatch.setattr(pl.LazyFrame, "collect", boom)
    assert rs.total == 79
