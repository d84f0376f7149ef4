"""Per-topic refusal findings and the old-vs-new snapshot split ("did the model change?").

One planted world: a snapshot rollover in the middle of the current window
that raises one topic's refusal rate from 4% to 45% (the others unchanged),
followed by a system-prompt change. The engine must name the topic, date the
change, tie it to the snapshot and say so in the headline and the variance
table; without a behaviour change the split must stay quiet.
"""

from __future__ import annotations

import json
from datetime import timedelta

import numpy as np
import polars as pl
import pytest

from tracelens.analysis import DriftConfig, analyze
from tracelens.report import common, render
from tracelens.samples.synthetic import T0, WEEK, Scenario, make_history, make_pair

SNAP_AT = T0 + WEEK + timedelta(days=2, hours=14)
SYS_AT = T0 + WEEK + timedelta(days=3, hours=9)
NEW = "claude-sonnet-4-5-20251101"
UNIFORM = (1 / 8,) * 8
RATES = (0.005, 0.04, 0.01, 0.02, 0.01, 0.03, 0.02, 0.3)
TOPIC = "cluster=1 (password reset)"
QUICK = DriftConfig(semantic=False)


def _analyze(sp, cfg=QUICK, history=None):
    return analyze(
        sp.baseline,
        sp.current,
        baseline_window=sp.baseline_window,
        current_window=sp.current_window,
        prompt_emb=sp.prompt_emb,
        response_emb=sp.response_emb,
        cluster_labels=sp.cluster_labels,
        history=history,
        config=cfg,
    )


def _scenario(**kw) -> Scenario:
    new = list(RATES)
    new[1] = 0.45
    base = dict(
        n_baseline=1400,
        n_current=1400,
        seed=21,
        shares_b=UNIFORM,
        refusal_b=RATES,
        snapshot_change_at=SNAP_AT,
        refusal_new_snapshot=tuple(new),
        system_prompt_change_at=SYS_AT,
    )
    return Scenario(**{**base, **kw})


@pytest.fixture(scope="module")
def world():
    sc = _scenario()
    sp = make_pair(sc)
    return sp, _analyze(sp, history=make_history(sc, weeks=4, n_per_week=300))


def _get(report, kind, segment):
    hits = [f for f in report.findings if f.kind == kind and f.segment == segment]
    assert hits, (kind, segment, sorted({(f.kind, f.segment) for f in report.findings}))
    return hits[0]


def _current(sp) -> pl.DataFrame:
    return sp.current.with_columns((pl.col("refusal").fill_null("none") != "none").alias("refused"))


def test_topic_refusal_rise_is_named_dated_and_evidenced(world):
    sp, report = world
    f = _get(report, "refusal_rate", TOPIC)
    assert f.significant and f.severity == "alert" and f.direction == "up"
    assert f.baseline_value < 0.1 and f.current_value > 0.2
    assert f.ci_low > 0 and f.ci_low <= f.effect <= f.ci_high
    # dated by the change-point scan: near the rollover, not at the window start
    assert abs(f.first_seen - SNAP_AT) <= timedelta(hours=12)
    # evidence: refused traces of that topic in the current window
    cur = _current(sp).filter(pl.col("trace_id").is_in(list(f.evidence)))
    assert cur.height == len(f.evidence) > 0
    assert cur["refused"].all() and (cur["cluster_id"] == 1).all()
    # the other topics did not change
    others = [g for g in report.findings if g.kind in ("refusal_rate", "refusal_rate_adjusted")
              and g.segment.startswith("cluster=") and g.segment != TOPIC and g.significant]
    assert not others, [(g.kind, g.segment) for g in others]


def test_snapshot_split_ties_the_change_to_the_new_snapshot(world):
    sp, report = world
    snap = _get(report, "model_snapshot", "family=claude-sonnet-4-5")
    split = _get(report, "snapshot_behaviour", f"snapshot={NEW}")
    assert split.significant and split.direction == "up"
    assert split.first_seen == snap.first_seen
    assert split.p_value is not None and split.q_value is not None
    # evidence: refused traces served by the new snapshot
    ev = _current(sp).filter(pl.col("trace_id").is_in(list(split.evidence)))
    assert ev.height == len(split.evidence) > 0
    assert ev["refused"].all() and (ev["model_returned"] == NEW).all()
    # the system prompt changed after the rollover: the summary warns that the two share the period
    assert "system prompt change for app=support" in split.summary
    topic = _get(report, "snapshot_behaviour", f"snapshot={NEW} {TOPIC}")
    assert topic.significant and topic.effect > 0.2
    quiet = [g for g in report.by_kind("snapshot_behaviour") if g.significant and g.segment not in (split.segment, topic.segment)]
    assert not quiet, [(g.segment, g.q_value) for g in quiet]


def test_variance_row_and_headline_say_what_changed_and_since_when(world):
    _, report = world
    row = next(v for v in report.variance if v.source == "snapshot rollover")
    assert "Refusals on the new snapshot:" in row.observation and "cluster 1 (password reset)" in row.observation
    assert row.findings == ("model_snapshot", "snapshot_behaviour")
    safety = next(v for v in report.variance if v.source == "safety classifier changes")
    assert "did not change" not in safety.observation
    head = common.headline(report)
    assert head[0].startswith("Refusals on topic cluster 1 (password reset) rose from")
    assert "starting 2025-01-15" in head[0] and f"with the new snapshot {NEW}" in head[0]
    assert any(line.startswith(f"The new snapshot {NEW}") for line in head)
    for fmt_name in ("markdown", "terminal", "html"):
        text = render(report, fmt_name, width=160)
        assert "password reset" in text and f"snapshot={NEW}" in text, fmt_name


def test_no_behaviour_change_keeps_the_split_quiet():
    sc = _scenario(refusal_new_snapshot=None, seed=22)
    report = _analyze(make_pair(sc))
    split = _get(report, "snapshot_behaviour", f"snapshot={NEW}")
    assert not split.significant
    assert not any(f.significant for f in report.by_kind("snapshot_behaviour"))
    assert not any(f.significant and f.segment.startswith("cluster=") for f in report.by_kind("refusal_rate"))
    assert not common.topic_lines(report) and not common.snapshot_lines(report)
    # response length on the new snapshot is compared the same way
    length = _get(report, "response_length", f"snapshot={NEW}")
    assert not length.significant and length.first_seen is not None


def test_topic_screen_and_note():
    sp = make_pair(_scenario(n_baseline=600, n_current=600, seed=23, refusal_b=(0.0,) + RATES[1:]))
    report = _analyze(sp, DriftConfig(semantic=False, kinds=("refusal_rate", "refusal_rate_adjusted")))
    tested = {f.segment for f in report.by_kind("refusal_rate") if f.segment.startswith("cluster=")}
    # topic 0 never refuses: its most extreme split could not be significant, so it is not tested
    assert tested and not any(s.startswith("cluster=0 ") for s in tested)
    assert any(n.startswith(f"Per-topic refusal tests: {len(tested)} of 8 prompt clusters") for n in report.notes)
    big = _analyze(sp, DriftConfig(semantic=False, kinds=("refusal_rate",), min_topic_n=10_000))
    assert not any(f.segment.startswith("cluster=") for f in big.findings)


def test_split_needs_a_new_snapshot_and_handles_missing_labels():
    plain = make_pair(Scenario(n_baseline=400, n_current=400, seed=24))
    assert not _analyze(plain).by_kind("snapshot_behaviour")
    sp = make_pair(_scenario(n_baseline=500, n_current=500, seed=25))
    no_labels = analyze(sp.baseline.drop("refusal"), sp.current.drop("refusal"), config=QUICK)
    assert not no_labels.by_kind("snapshot_behaviour")
    assert no_labels.by_kind("response_length", f"snapshot={NEW}")


def test_new_snapshot_without_topics_still_splits():
    sp = make_pair(_scenario(n_baseline=800, n_current=800, seed=26))
    report = analyze(sp.baseline.drop("cluster_id"), sp.current.drop("cluster_id"), config=QUICK)
    split = report.by_kind("snapshot_behaviour")
    assert [f.segment for f in split] == [f"snapshot={NEW}"]  # no topics: no per-topic breakdown
    assert "app for the rest" in split[0].summary


def test_report_json_round_trip_with_new_kind(world):
    import jsonschema

    from tracelens.analysis import report_json_schema

    _, report = world
    doc = json.loads(report.to_json())
    jsonschema.validate(doc, report_json_schema())
    kinds = {f["kind"] for f in doc["findings"]}
    assert "snapshot_behaviour" in kinds
    assert np.isfinite([f["effect"] for f in doc["findings"] if f["kind"] == "snapshot_behaviour"]).all()


def test_headline_ties_a_topic_only_to_a_snapshot_its_traffic_ran_on(world):
    """A refusal step in another app's model half a day before the rollover is not the rollover's."""
    import dataclasses

    _, report = world
    base = next(f for f in report.findings if f.kind == "refusal_rate" and f.segment.startswith("cluster=1 "))
    snap = next(f for f in report.findings if f.kind == "model_snapshot" and f.first_seen)
    other = dataclasses.replace(base, segment="cluster=99 (other app)", effect=0.5, current_value=0.6,
                                first_seen=snap.first_seen - timedelta(hours=3))
    folded = dataclasses.replace(other, segment="cluster=98 (stepped)", effect=0.4, summary=other.summary
                                 + " Part of the changepoint finding on snapshot=haiku-x metric=refusal (the same"
                                 " traces); reported there.", severity="info")
    lines = common.topic_lines(dataclasses.replace(report, findings=(other, folded, *report.findings)), limit=5)
    mine = next(ln for ln in lines if "cluster 99" in ln)
    assert "new snapshot" not in mine
    stepped = next(ln for ln in lines if "cluster 98" in ln)
    assert "a step inside snapshot haiku-x, which did not change" in stepped
    # the topic that did run on the new snapshot keeps its tie
    assert any("cluster 1 (password reset)" in ln and f"with the new snapshot {NEW}" in ln for ln in lines)
