"""The ``changepoint`` kind: a step inside one snapshot and system prompt within the current window.

Calibration runs call the detector on seeded current windows built here (one
snapshot, one system prompt, refusal labels, output tokens and latency) and
finalise its drafts the way the engine does (Benjamini-Hochberg over the
segment's three metrics, severity from the practical thresholds): under no
change it must fire at warn/alert in at most 5% of 200 runs; a planted
refusal step (2% -> 6% at the window's middle, 3,000 traces) must be found in
at least 80% of 100 runs with the change located within 10% of the window
(2.4 hours of a day) of the truth. One end-to-end run goes through
:func:`analyze` on the synthetic generator's windows, and the sample-data
check lives in test_docs_walk.py (the demo's figures).
"""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

import numpy as np
import polars as pl
import pytest

from tracelens.analysis import DriftConfig, analyze
from tracelens.analysis.detectors.changepoint import MIN_N, detect_changepoint, step_scan
from tracelens.analysis.detectors.context import DetectorContext
from tracelens.analysis.draft import finalise
from tracelens.analysis.strata import Topics
from tracelens.samples.synthetic import Scenario, make_pair

T0 = datetime(2026, 1, 5, tzinfo=UTC)
DAY_S = 86400.0


def _window(seed: int, n: int, refusal=(0.05, 0.05), latency_factor=1.0, snapshots=("m-2026-01-01",)) -> pl.DataFrame:
    """One current window of ``n`` traces over a day; the second half gets ``refusal[1]`` and ``latency_factor``."""
    rng = np.random.default_rng(seed)
    t = np.sort(rng.random(n)) * DAY_S
    late = np.arange(n) >= n // 2
    topic = rng.integers(0, 4, n)
    p = np.where(late, refusal[1], refusal[0]) * (1 + 0.5 * (topic == 0))  # topic 0 refuses more
    tokens = np.round(np.exp(5 + 0.3 * topic + 0.5 * rng.standard_normal(n)))
    latency = (300 + 15 * tokens) * np.exp(0.2 * rng.standard_normal(n)) * np.where(late, latency_factor, 1.0)
    return pl.DataFrame(
        {
            "trace_id": [f"t{seed}-{i}" for i in range(n)],
            "timestamp": [T0 + timedelta(seconds=float(s)) for s in t],
            "_w": np.ones(n, dtype=np.int64),
            "model_returned": [snapshots[i % len(snapshots)] for i in range(n)],
            "system_prompt_hash": ["abc123"] * n,
            "app": ["support"] * n,
            "_refused": rng.random(n) < p,
            "_ok": np.ones(n, dtype=bool),
            "output_tokens": tokens.astype(np.int64),
            "_resp_len": (tokens * 4).astype(np.int64),
            "latency_ms": latency,
            "_topic": topic.astype(np.int64),
        }
    )


def _findings(df: pl.DataFrame, seed: int = 0):
    cfg = DriftConfig(seed=seed)
    ctx = DetectorContext(df, cfg, frozenset({"changepoint"}), T0, Topics(None, {}, "none"), None, None, [], [])
    return finalise(detect_changepoint(ctx), cfg.alpha, {})


def _fires(findings) -> bool:
    return any(f.severity in ("warn", "alert") for f in findings)


def test_null_false_alarms_at_most_5_percent():
    fired = sum(_fires(_findings(_window(seed, 300), seed)) for seed in range(200))
    assert fired / 200 <= 0.05, fired


def test_planted_refusal_step_found_and_located():
    hits = 0
    for seed in range(100):
        df = _window(1000 + seed, 3000, refusal=(0.02, 0.06))
        fs = [f for f in _findings(df, seed) if f.segment.endswith("metric=refusal")]
        if not fs or not _fires(fs):
            continue
        f = fs[0]
        truth = df.get_column("timestamp")[1500]
        hits += abs((f.first_seen - truth).total_seconds()) <= 0.1 * DAY_S and f.direction == "up"
    assert hits / 100 >= 0.80, hits


def test_planted_latency_step_found():
    hits = 0
    for seed in range(50):
        fs = [f for f in _findings(_window(5000 + seed, 400, latency_factor=1.3), seed) if "latency" in f.segment]
        hits += _fires(fs) and fs[0].direction == "up"
    assert hits / 50 >= 0.80, hits


def test_finding_contract():
    df = _window(7, 2000, refusal=(0.02, 0.10))
    (f,) = [f for f in _findings(df) if f.segment.endswith("metric=refusal")]
    assert f.kind == "changepoint" and f.segment == "snapshot=m-2026-01-01 metric=refusal"
    assert f.severity == "alert" and f.p_value is not None and f.q_value is not None
    assert f.ci_low < f.effect < f.ci_high and f.ci_low > 0
    assert f.baseline_value < 0.04 < f.current_value
    assert "95% interval" in f.summary and "\n" not in f.summary
    ev = set(f.evidence)
    refused = set(df.filter(pl.col("_refused") & (pl.col("timestamp") >= f.first_seen)).get_column("trace_id").to_list())
    assert 10 <= len(ev) <= 20 and len(ev & refused) >= 10


def test_snapshot_rollover_is_not_a_changepoint():
    # the second half of the day goes to a new snapshot that refuses far more: each snapshot is flat inside
    a = _window(11, 1500, refusal=(0.02, 0.02))
    b = _window(12, 1500, refusal=(0.12, 0.12))
    half = T0 + timedelta(seconds=DAY_S / 2)
    df = pl.concat(
        [
            a.filter(pl.col("timestamp") < half),
            b.filter(pl.col("timestamp") >= half).with_columns(pl.lit("m-2026-02-01").alias("model_returned")),
        ]
    )
    assert not _fires(_findings(df))
    # the same traffic on one snapshot label is a changepoint
    assert _fires(_findings(df.with_columns(pl.lit("m-2026-01-01").alias("model_returned"))))


def test_small_segments_are_not_scanned():
    assert _findings(_window(3, MIN_N - 1, refusal=(0.0, 0.5))) == ()


def test_scan_locates_and_is_seeded():
    y = np.r_[np.zeros(300), np.ones(300)] + np.random.default_rng(0).normal(0, 0.5, 600)
    a, b = step_scan(y, rng=np.random.default_rng(1)), step_scan(y, rng=np.random.default_rng(1))
    assert a == b and a.p <= 0.002 and abs(a.k - 300) <= 5 and a.k_low <= a.k <= a.k_high


def test_end_to_end_through_analyze():
    sp = make_pair(Scenario(), seed=3)
    cur = sp.current.sort("timestamp")
    mid = cur.get_column("timestamp")[cur.height // 2]
    rng = np.random.default_rng(0)
    late = (cur.get_column("timestamp") >= mid).to_numpy() & (rng.random(cur.height) < 0.15)
    cur = cur.with_columns(pl.when(pl.Series(late)).then(pl.lit("harmful")).otherwise(pl.col("refusal")).alias("refusal"))
    r = analyze(sp.baseline, cur, baseline_window=sp.baseline_window, current_window=sp.current_window,
                config=DriftConfig(semantic=False, kinds=("changepoint",)))  # fmt: skip
    hits = [f for f in r.findings if f.kind == "changepoint" and f.segment.endswith("metric=refusal") and f.significant]
    assert hits and all(f.direction == "up" for f in hits)
    assert min(abs((f.first_seen - mid).total_seconds()) for f in hits) <= 0.1 * (cur.get_column("timestamp")[-1] - cur.get_column("timestamp")[0]).total_seconds()


@pytest.mark.parametrize("kind", ["changepoint"])
def test_variance_row_backed(kind):
    from tracelens.analysis.findings import Finding
    from tracelens.analysis.sources import variance_table

    f = Finding(kind, "snapshot=m metric=refusal", "up", 0.02, 0.06, 0.04, 0.02, 0.06, 0.001, 0.003, True, "alert", T0, "s")
    df = _window(1, 10)
    rows = {r.source: r for r in variance_table(df.with_columns(pl.lit(None).alias("stop_reason")), [f], {})}
    row = rows["silent in-snapshot change"]
    assert row.status == "changed" and row.findings == (kind,)


# --------------------------------------------------------------------------- the subsampled scan (large segments)


def test_segment_at_the_scan_cap_is_scanned_whole(monkeypatch):
    import tracelens.analysis.detectors.changepoint as cp

    df = _window(7, 2000, refusal=(0.02, 0.10))
    whole = _findings(df)
    monkeypatch.setattr(cp, "SCAN_MAX", 2000)  # every metric has at most 2,000 values: no subsample
    assert [(f.segment, f.p_value, f.first_seen, f.summary) for f in _findings(df)] == [
        (f.segment, f.p_value, f.first_seen, f.summary) for f in whole
    ]
    assert not any("subsample" in f.summary for f in whole)


def test_subsampled_scan_null_false_alarms_at_most_5_percent(monkeypatch):
    import tracelens.analysis.detectors.changepoint as cp

    monkeypatch.setattr(cp, "SCAN_MAX", 300)  # 1,200-trace windows scanned on 300 of their traces
    fired = sum(_fires(_findings(_window(seed, 1200), seed)) for seed in range(150))
    assert fired / 150 <= 0.05, fired


def test_subsampled_scan_p_values_are_calibrated(monkeypatch):
    import tracelens.analysis.detectors.changepoint as cp

    monkeypatch.setattr(cp, "SCAN_MAX", 300)
    ps = [f.p_value for seed in range(150) for f in _findings(_window(seed, 1200), seed)
          if f.segment.endswith("metric=latency")]
    assert len(ps) == 150
    # under the null the Bonferroni-adjusted p-values are at least uniform: P(p <= a) <= a (plus sampling slack)
    for a in (0.05, 0.2, 0.5):
        assert np.mean(np.array(ps) <= a) <= a + 0.06, (a, np.mean(np.array(ps) <= a))


def test_subsampled_scan_finds_and_locates_a_step_and_says_so(monkeypatch):
    import tracelens.analysis.detectors.changepoint as cp

    monkeypatch.setattr(cp, "SCAN_MAX", 2000)
    df = _window(11, 12_000, refusal=(0.02, 0.08))
    (f,) = [f for f in _findings(df) if f.segment.endswith("metric=refusal")]
    assert f.severity == "alert" and f.direction == "up"
    truth = df.get_column("timestamp")[6000]
    assert abs((f.first_seen - truth).total_seconds()) <= 0.1 * DAY_S
    assert "random subsample of 2,000 of the 12,000 traces" in f.summary
    # before/after counts and the effect come from every trace of the segment
    assert f.ci_low > 0
    m = re.search(r"([\d,]+) traces before, ([\d,]+) after", f.summary)
    before, after = (int(x.replace(",", "")) for x in m.groups())
    assert before + after == 12_000
