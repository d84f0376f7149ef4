"""Deterministic variance sources, input robustness and the report contract of tracelens.analysis."""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime, timedelta

import numpy as np
import polars as pl
import pytest

from tracelens.analysis import DriftConfig, Finding, analyze, exit_code
from tracelens.analysis.findings import FINDING_FIELDS, KINDS, SEVERITIES, sort_key
from tracelens.analysis.variance import alias_names, family_of, norm_model
from tracelens.samples.synthetic import T0, WEEK, Scenario, make_history, make_pair

QUICK = DriftConfig(semantic=False)
SNAP_AT = T0 + WEEK + timedelta(days=2, hours=5, minutes=17)
SYS_AT = T0 + WEEK + timedelta(days=3, hours=9, minutes=41)
TEMP_AT = T0 + WEEK + timedelta(days=1, hours=2)


@pytest.fixture(scope="module")
def planted():
    sc = Scenario(n_baseline=1500, n_current=1500, seed=5, snapshot_change_at=SNAP_AT, system_prompt_change_at=SYS_AT,
                  temperature_change_at=TEMP_AT)
    sp = make_pair(sc)
    report = analyze(sp.baseline, sp.current, baseline_window=sp.baseline_window, current_window=sp.current_window,
                     prompt_emb=sp.prompt_emb, response_emb=sp.response_emb, cluster_labels=sp.cluster_labels, config=QUICK)
    return sp, report


def _one(report, kind, segment=None) -> Finding:
    hits = [f for f in report.findings if f.kind == kind and (segment is None or f.segment == segment) and f.significant]
    assert hits, (kind, segment, [(f.kind, f.segment) for f in report.findings])
    return hits[0]


def test_planted_snapshot_rollover_is_dated(planted):
    _, report = planted
    f = _one(report, "model_snapshot", "family=claude-sonnet-4-5")
    assert f.p_value is None and f.q_value is None and f.severity == "alert"
    assert f.baseline_value == "claude-sonnet-4-5-20250929" and f.current_value == "claude-sonnet-4-5-20251101"
    assert abs(f.first_seen - SNAP_AT) <= timedelta(hours=1)
    assert f.first_seen >= SNAP_AT
    assert len(f.evidence) == 20
    alias = _one(report, "alias_usage", "model=claude-sonnet-4-5")
    assert abs(alias.first_seen - SNAP_AT) <= timedelta(hours=1)


def test_planted_system_prompt_change_is_dated_with_diff(planted):
    _, report = planted
    f = _one(report, "system_prompt", "app=support")
    assert abs(f.first_seen - SYS_AT) <= timedelta(hours=1)
    assert "+2/-1 lines" in f.summary
    detail = [d for d in report.details if d.kind == "system_prompt" and d.segment == "app=support"]
    assert detail and "+Escalate legal questions to a human." in detail[0].text and "-Be concise." in detail[0].text


def test_planted_sampling_change(planted):
    _, report = planted
    f = _one(report, "sampling_params", "app=coding temperature")
    assert f.baseline_value == "0.7" and f.current_value == "1"
    assert abs(f.first_seen - TEMP_AT) <= timedelta(hours=1)


def test_variance_table_backs_changes_with_findings(planted):
    _, report = planted
    rows = {r.source: r for r in report.variance}
    assert set(rows) == {
        "sampling nondeterminism",
        "snapshot rollover",
        "alias resolution",
        "system prompt changes",
        "tool changes",
        "safety classifier changes",
        "capacity or tier routing",
        "backend configuration",
        "silent in-snapshot change",
        "long-context behaviour",
        "A/B cohorts",
    }
    assert rows["snapshot rollover"].status == "changed" and rows["snapshot rollover"].findings == ("model_snapshot",)
    assert rows["system prompt changes"].status == "changed"
    assert rows["tool changes"].status == "stable"
    # the planted rollover and system-prompt change are their own segments, not a step inside one
    assert rows["silent in-snapshot change"].status == "stable"
    assert rows["long-context behaviour"].status == "stable"
    assert rows["A/B cohorts"].status in ("observed", "not observable")
    for r in rows.values():
        if r.status == "not observable":
            assert r.what_to_log


def test_no_change_has_no_deterministic_findings():
    sp = make_pair(Scenario(n_baseline=500, n_current=500, seed=9))
    r = analyze(sp.baseline, sp.current, config=QUICK)
    assert not [f for f in r.findings if f.significant and f.p_value is None]


def test_history_counts_as_seen_before():
    sc = Scenario(n_baseline=400, n_current=400, seed=3, snapshot_change_at=T0 + WEEK + timedelta(days=1))
    sp = make_pair(sc)
    hist = make_history(sc, weeks=2, n_per_week=100).with_columns(pl.lit("claude-sonnet-4-5-20251101").alias("model_returned"))
    r = analyze(sp.baseline, sp.current, history=hist, config=QUICK)
    assert not [f for f in r.findings if f.kind == "model_snapshot" and f.significant and f.segment.startswith("family")]
    assert r.trend is not None and len(r.trend) == 8


def _frame(n, *, start, **cols):
    base = {
        "trace_id": [f"t{start:%d}-{i}" for i in range(n)],
        "timestamp": [start + timedelta(minutes=i) for i in range(n)],
    }
    base.update({k: (v if isinstance(v, list) else [v] * n) for k, v in cols.items()})
    return pl.DataFrame(base)


def test_requested_vs_returned_mismatch_and_alias_rules():
    t0 = datetime(2025, 3, 3, tzinfo=UTC)
    b = _frame(50, start=t0, model_requested="gpt-4o-2024-08-06", model_returned="gpt-4o-2024-08-06", app="a")
    c = _frame(50, start=t0 + WEEK, model_requested="gpt-4o-2024-08-06", model_returned=["gpt-4o-2024-08-06"] * 30 + ["gpt-4o-mini-2024-07-18"] * 20, app="a")
    r = analyze(b, c, config=QUICK)
    mm = [f for f in r.findings if f.kind == "model_snapshot" and f.segment == "model=gpt-4o-2024-08-06"]
    assert mm and mm[0].significant and mm[0].current_value == pytest.approx(0.4)
    assert mm[0].first_seen == t0 + WEEK + timedelta(minutes=30)
    # aliases by the model catalog (claude-opus-4-6 and gemini-2.5-pro are fixed models without a date),
    # in-house names only by user-extensible rules
    assert alias_names(["my-model", "claude-sonnet-4-5", "claude-3-5-sonnet-20241022", "claude-opus-4-6"], ()) == {
        "claude-sonnet-4-5"
    }
    names = ["my-model", "claude-sonnet-4-5", "claude-3-5-sonnet-20241022", "gpt-4o", "gpt-4o-2024-08-06", "x-latest",
             "gemini-2.5-pro", "gemini-2.0-flash"]
    from tracelens.analysis import DEFAULT_ALIAS_PATTERNS

    expected = {"claude-sonnet-4-5", "gpt-4o", "x-latest", "gemini-2.0-flash"}
    assert alias_names(names, DEFAULT_ALIAS_PATTERNS) == expected
    assert alias_names(names, (*DEFAULT_ALIAS_PATTERNS, r"^my-")) == expected | {"my-model"}
    b2 = _frame(40, start=t0, model_requested="my-model", model_returned="my-model-v1")
    c2 = _frame(40, start=t0 + WEEK, model_requested="my-model", model_returned="my-model-v2")
    r2 = analyze(b2, c2, config=dataclasses.replace(QUICK, alias_patterns=(r"^my-model$",)))
    assert any(f.kind == "alias_usage" and f.segment == "model=my-model" and f.significant for f in r2.findings)


def test_model_id_helpers():
    assert family_of("claude-3-5-sonnet-20241022") == "claude-3-5-sonnet"
    assert family_of("gpt-4-0613") == "gpt-4"
    assert family_of("anthropic.claude-3-5-sonnet-20240620-v1:0") == "claude-3-5-sonnet"
    assert norm_model("us.anthropic.claude-3-5-sonnet-20240620-v1:0") == "claude-3-5-sonnet-20240620"
    assert norm_model("claude-3-5-sonnet-v2@20241022") == "claude-3-5-sonnet-v2-20241022"


def test_tool_definitions_templated_prompts_and_tiers():
    t0 = datetime(2025, 3, 3, tzinfo=UTC)
    tools_a = '[{"name": "search", "input_schema": {"type": "object"}}]'
    tools_b = '[{"name": "search", "input_schema": {"type": "object", "properties": {"q": {"type": "string"}}}}]'
    b = _frame(30, start=t0, app="x", tool_definitions=tools_a, tools_hash="aaaa", system_prompt="Hi.", service_tier="standard")
    c = _frame(
        30,
        start=t0 + WEEK,
        app="x",
        tool_definitions=[tools_a] * 10 + [tools_b] * 20,
        tools_hash=["aaaa"] * 10 + ["bbbb"] * 20,
        system_prompt=[f"Hi user {i}." for i in range(30)],
        service_tier=["standard"] * 15 + ["priority"] * 15,
    )
    r = analyze(b, c, config=QUICK)
    tool = [f for f in r.findings if f.kind == "tool_definitions"]
    assert tool and tool[0].significant and tool[0].first_seen == t0 + WEEK + timedelta(minutes=10)
    assert any('"q"' in d.text for d in r.details if d.kind == "tool_definitions")
    sysf = [f for f in r.findings if f.kind == "system_prompt"]
    assert len(sysf) == 1 and "varies per request" in sysf[0].summary  # 30 new versions -> one templated finding
    tier = [f for f in r.findings if f.kind == "service_tier" and f.segment == "tier=priority"]
    assert tier and tier[0].significant


def test_missing_columns_and_empty_windows_do_not_crash():
    sp = make_pair(Scenario(n_baseline=300, n_current=300, seed=1))
    r = analyze(sp.baseline.select("trace_id", "timestamp", "response_text"), sp.current.select("trace_id", "timestamp", "response_text"))
    assert any("no refusal labels" in n for n in r.notes)
    r = analyze(pl.DataFrame(), sp.current)
    assert r.baseline.n == 0 and not r.findings
    r = analyze(pl.DataFrame({"trace_id": ["a"]}), pl.DataFrame({"trace_id": ["b"]}))
    assert r.current.n == 1


def test_nan_embedding_rows_are_treated_as_missing():
    sp = make_pair(Scenario(n_baseline=800, n_current=800, seed=4))
    pb, pc = (a.copy() for a in sp.prompt_emb)
    rb, rc = (a.copy() for a in sp.response_emb)
    rng = np.random.default_rng(0)
    for arr_p, arr_r in ((pb, rb), (pc, rc)):
        m = rng.random(arr_p.shape[0]) < 0.4  # like an embedding sample: rows outside carry no vector
        arr_p[m] = np.nan
        arr_r[m] = np.nan
    r = analyze(sp.baseline.drop("cluster_id"), sp.current.drop("cluster_id"), prompt_emb=(pb, pc), response_emb=(rb, rc),
                config=DriftConfig(semantic_max_per_window=300, semantic_permutations=50))
    assert not [f for f in r.findings if f.significant and f.kind in ("prompt_mix", "prompt_semantic", "response_semantic")]
    assert r.by_kind("refusal_rate_adjusted")
    with pytest.raises(ValueError):
        analyze(sp.baseline, sp.current, prompt_emb=(pb[:10], pc))


def test_report_contract(planted):
    _, report = planted
    d = report.to_dict()
    assert set(d["windows"]) == {"baseline", "current"}
    for f in d["findings"]:
        assert tuple(f) == FINDING_FIELDS
        assert f["kind"] in KINDS and f["severity"] in SEVERITIES and f["direction"] in ("up", "down", "changed")
        assert len(f["evidence"]) <= 20
        if f["p_value"] is None:
            assert f["q_value"] is None
    assert [sort_key(f) for f in report.findings] == sorted(sort_key(f) for f in report.findings)
    assert exit_code(report) == 1 and exit_code(report, "never") == 0
    quiet = dataclasses.replace(report, findings=tuple(f for f in report.findings if f.severity == "info"))
    assert exit_code(quiet) == 0 and exit_code(quiet, "warn") == 0
    with pytest.raises(ValueError):
        exit_code(report, "sometimes")


def test_report_validates_against_schema(planted):
    import jsonschema

    from tracelens.analysis import report_json_schema

    _, report = planted
    schema = report_json_schema()
    jsonschema.Draft202012Validator.check_schema(schema)
    import json

    jsonschema.validate(json.loads(report.to_json()), schema)


def test_determinism():
    sp = make_pair(Scenario(n_baseline=400, n_current=400, seed=8, response_shift=0.3))
    cfg = DriftConfig(semantic_max_per_window=200, semantic_permutations=50)
    a = analyze(sp.baseline, sp.current, prompt_emb=sp.prompt_emb, response_emb=sp.response_emb, config=cfg)
    b = analyze(sp.baseline, sp.current, prompt_emb=sp.prompt_emb, response_emb=sp.response_emb, config=cfg)
    assert a.to_json() == b.to_json()
