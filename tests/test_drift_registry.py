"""The detector registry: every finding kind has exactly one detector, and the engine runs what is registered."""

from __future__ import annotations

import dataclasses

import polars as pl
import pytest

from tracelens.analysis import DriftConfig, analyze
from tracelens.analysis import detectors as registry
from tracelens.analysis.draft import Draft
from tracelens.analysis.findings import DETERMINISTIC_KINDS, KINDS


def test_every_kind_has_exactly_one_detector():
    produced = [k for d in registry.DETECTORS for k in d.kinds]
    assert sorted(produced) == sorted(KINDS), "a kind without a detector, or one registered twice"
    for kind in KINDS:
        det = registry.detector_for(kind)
        # deterministic kinds compare with history, so they must also run when the baseline is empty
        assert det.needs_both_windows == (kind not in DETERMINISTIC_KINDS)
    with pytest.raises(KeyError):
        registry.detector_for("no_such_kind")


def test_snapshot_split_runs_after_the_changes_it_reads():
    order = [k for d in registry.DETECTORS for k in d.kinds]
    last = order.index("snapshot_behaviour")
    for kind in ("model_snapshot", "system_prompt", "tool_definitions", "sampling_params"):
        assert order.index(kind) < last


def _frames():
    ts = pl.datetime_range(
        pl.datetime(2026, 1, 1, time_zone="UTC"), pl.datetime(2026, 1, 14, 23, time_zone="UTC"), "1h", eager=True
    )
    df = pl.DataFrame({"timestamp": ts, "latency_ms": [100.0 + (i % 7) for i in range(ts.len())]})
    return df.filter(pl.col("timestamp").dt.day() <= 7), df.filter(pl.col("timestamp").dt.day() > 7)


def test_engine_runs_the_registered_detector(monkeypatch):
    calls = []

    def stub(ctx):
        calls.append((ctx.n_baseline, ctx.n_current, sorted(ctx.kinds)))
        return [Draft("latency", "", 1.0, 2.0, 0.5, "stub summary", p_value=1e-6, practical=True)]

    table = tuple(
        dataclasses.replace(d, run=stub) if d.kinds == ("latency",) else d for d in registry.DETECTORS
    )
    monkeypatch.setattr(registry, "DETECTORS", table)
    base, cur = _frames()
    rep = analyze(base, cur, config=DriftConfig(kinds=("latency", "error_rate"), semantic=False))
    assert calls == [(base.height, cur.height, ["error_rate", "latency"])]
    [f] = rep.by_kind("latency")
    assert f.summary == "stub summary" and f.significant and f.severity == "alert"
    assert rep.by_kind("error_rate")  # the other asked-for kind still ran through its own detector


def test_detectors_that_need_two_windows_do_not_run_on_one(monkeypatch):
    seen = []
    table = tuple(
        dataclasses.replace(d, run=lambda ctx, k=d.kinds: seen.append(k) or []) for d in registry.DETECTORS
    )
    monkeypatch.setattr(registry, "DETECTORS", table)
    base, cur = _frames()
    rep = analyze(base.clear(), cur, config=DriftConfig(semantic=False))
    # nothing before the current window at all: neither statistical nor deterministic detectors run
    assert seen == [] and "One window has no traces; nothing to compare." in rep.notes
    analyze(base, cur, config=DriftConfig(semantic=False))
    assert seen == [d.kinds for d in registry.DETECTORS]  # all of them, in registry order
