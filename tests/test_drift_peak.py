"""The ``time_of_day`` and ``load`` kinds: a metric that depends on the hour or on traffic volume, one snapshot and tier.

Calibration runs call the detector on seeded current windows built here (a
week of traffic with a weekday daytime peak, and, where said, short bursts of
heavy traffic; one snapshot and tier, 4 topics, refusal labels, errors, stop
reasons, output tokens, latency) and finalise its drafts the way the engine
does (severity from the practical thresholds, BH over the drafts): under no
change it must fire at warn/alert in at most 5% of 200 runs; planted effects
(latency x1.5 at the weekday peak on 300 traces, refusal 2% -> 8% at the peak
on 1,500 traces, latency x1.5 under the heaviest traffic on 400 traces) must
be found in at least 80% of the runs. The figures are in docs/drift.md.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import numpy as np
import polars as pl

from tracelens.analysis import DriftConfig, analyze
from tracelens.analysis.detectors.context import DetectorContext
from tracelens.analysis.detectors.peak import MIN_N, detect_peak, hours_phrase, load_per_minute, peak_hours
from tracelens.analysis.draft import Draft, finalise
from tracelens.analysis.strata import Topics
from tracelens.samples.synthetic import Scenario, make_pair

T0 = datetime(2026, 1, 5, tzinfo=UTC)  # a Monday
#: relative traffic per UTC hour on weekdays: night, day, and a 12:00-18:00 peak; weekends flat and low
WEEKDAY = np.array([0.5] * 9 + [1.5] * 3 + [3.0] * 6 + [1.5] * 3 + [0.5] * 3)
WEEKEND = np.full(24, 0.5)
PLANT_HOURS = range(12, 18)


def _times(rng, n: int, bursts: int = 0) -> np.ndarray:
    """``n`` seconds-from-T0 over one week following the weekly shape; ``bursts`` 20-minute bursts take a fifth of them."""
    w = np.concatenate([WEEKDAY] * 5 + [WEEKEND] * 2)
    nb = n // 5 if bursts else 0
    hour = rng.choice(w.size, size=n - nb, p=w / w.sum())
    t = (hour + rng.random(n - nb)) * 3600.0
    if bursts:
        starts = rng.random(bursts) * (7 * 86400 - 1200)
        t = np.r_[t, starts[rng.integers(0, bursts, nb)] + rng.random(nb) * 1200]
    return np.sort(t)


def _window(seed: int, n: int, refusal=(0.05, 0.05), latency_factor=1.0, bursts: int = 0, on_load=False) -> pl.DataFrame:
    """One current week of ``n`` traces; weekday 12:00-18:00 (or the top-quarter load, ``on_load``) gets the effect."""
    rng = np.random.default_rng(seed)
    t = _times(rng, n, bursts)
    if on_load:
        load = load_per_minute((t * 1e6).astype(np.int64))
        hot = load >= np.quantile(load, 0.75)
    else:
        day, hour = (t // 86400).astype(int), ((t % 86400) // 3600).astype(int)
        hot = (day < 5) & np.isin(hour, PLANT_HOURS)
    topic = rng.integers(0, 4, n)
    p = np.where(hot, refusal[1], refusal[0]) * (1 + 0.5 * (topic == 0))
    tokens = np.round(np.exp(5 + 0.3 * topic + 0.5 * rng.standard_normal(n)))
    latency = (300 + 15 * tokens) * np.exp(0.2 * rng.standard_normal(n)) * np.where(hot, latency_factor, 1.0)
    ok = rng.random(n) >= 0.01
    return pl.DataFrame(
        {
            "trace_id": [f"t{seed}-{i}" for i in range(n)],
            "timestamp": [T0 + timedelta(seconds=float(s)) for s in t],
            "_w": np.ones(n, dtype=np.int64),
            "model_returned": ["m-2026-01-01"] * n,
            "service_tier": ["standard"] * n,
            "app": ["support"] * n,
            "_refused": rng.random(n) < p,
            "_ok": ok,
            "_err": ~ok,
            "stop_reason": np.where(ok, np.where(tokens >= 400, "max_tokens", "end_turn"), "error"),
            "output_tokens": tokens.astype(np.int64),
            "_resp_len": (tokens * 4).astype(np.int64),
            "latency_ms": latency,
            "_topic": topic.astype(np.int64),
        }
    ).with_columns(pl.when(pl.col("_ok")).then(pl.col("_refused")).alias("_refused"))  # no refusal label on errors


def _ctx(df: pl.DataFrame, seed: int = 0) -> DetectorContext:
    cfg = DriftConfig(seed=seed)
    return DetectorContext(df, cfg, frozenset({"time_of_day", "load"}), T0, Topics(None, {}, "none"), None, None, [], [])


def _findings(df: pl.DataFrame, seed: int = 0):
    return finalise(detect_peak(_ctx(df, seed)), 0.05, {})


def _fires(findings) -> bool:
    return any(f.severity in ("warn", "alert") for f in findings)


def _found(findings, metric: str, kinds=("time_of_day", "load")) -> bool:
    return any(f.severity in ("warn", "alert") and f.direction == "up" and f.kind in kinds and f.segment.endswith(f"metric={metric}")
               for f in findings)  # fmt: skip


def test_null_false_alarms_at_most_5_percent():
    fired = sum(_fires(_findings(_window(seed, 400, bursts=seed % 2 * 6), seed)) for seed in range(200))
    assert fired / 200 <= 0.05, fired


def test_planted_peak_latency_found():
    hits = sum(_found(_findings(_window(100 + seed, 300, latency_factor=1.5)), "latency") for seed in range(100))
    assert hits / 100 >= 0.80, hits


def test_planted_peak_refusal_found():
    hits = sum(_found(_findings(_window(300 + seed, 1500, refusal=(0.02, 0.08))), "refusal") for seed in range(100))
    assert hits / 100 >= 0.80, hits


def test_planted_load_latency_found_as_load():
    hits = 0
    for seed in range(100):
        fs = _findings(_window(500 + seed, 400, latency_factor=1.5, bursts=6, on_load=True))
        hits += _found(fs, "latency", ("load",))
    assert hits / 100 >= 0.80, hits


def test_finding_contract():
    df = _window(7, 2000, refusal=(0.02, 0.12), latency_factor=2.0)
    fs = _findings(df)
    (f,) = [f for f in fs if f.segment.endswith("metric=refusal")]
    assert f.kind == "time_of_day" and f.segment == "snapshot=m-2026-01-01 tier=standard metric=refusal"
    assert f.severity == "alert" and f.p_value is not None and f.q_value is not None and f.direction == "up"
    assert f.ci_low < f.effect < f.ci_high and f.ci_low > 0
    assert f.baseline_value < 0.05 < f.current_value
    assert "peak hours (weekdays " in f.summary and "the load split gives" in f.summary and "\n" not in f.summary
    peak = df.filter((pl.col("timestamp").dt.weekday() <= 5) & pl.col("timestamp").dt.hour().is_in(list(PLANT_HOURS)))
    refused = set(peak.filter(pl.col("_refused")).get_column("trace_id").to_list())
    assert 10 <= len(f.evidence) <= 20 and set(f.evidence) <= refused
    (lat,) = [f for f in fs if f.segment.endswith("metric=latency")]
    assert lat.severity == "alert" and lat.effect > 0.2 and "median" in lat.summary and "ms" in lat.summary
    # drafts carry what folding needs: the metric and the peak traces as scope
    (d,) = [d for d in detect_peak(_ctx(df)) if d.segment.endswith("metric=latency")]
    assert d.metric == "latency" and d.scope and set(d.scope) <= set(df.get_column("trace_id").to_list())
    assert len(d.scope) < df.height / 2


def test_peak_hours_rule():
    rng = np.random.default_rng(0)
    ts = pl.Series([T0 + timedelta(seconds=float(s)) for s in _times(rng, 20000)])
    hours = peak_hours(ts)
    assert set(hours) <= set(PLANT_HOURS) and len(hours) >= 4
    assert hours_phrase([12, 13, 14, 20]) == "weekdays 12:00-15:00, 20:00-21:00 UTC"
    assert peak_hours(pl.Series([T0 + timedelta(days=5, hours=h) for h in range(24)])) == []  # a Saturday only


def test_load_proxy():
    us = np.array([0, 60, 120, 1800, 1801, 3600], dtype=np.int64) * 1_000_000
    # trailing 30 minutes, inclusive of the trace itself, per minute
    assert np.allclose(load_per_minute(us) * 30, [1, 2, 3, 3, 4, 2])


def test_segments_by_snapshot_and_tier():
    a = _window(21, 600, latency_factor=2.0)
    b = _window(22, 600).with_columns(pl.lit(None, dtype=pl.String).alias("service_tier"),
                                      pl.concat_str(pl.lit("u"), pl.col("trace_id")).alias("trace_id"))  # fmt: skip
    segs = {f.segment.rsplit(" metric=", 1)[0] for f in _findings(pl.concat([a, b]))}
    assert segs == {"snapshot=m-2026-01-01 tier=standard", "snapshot=m-2026-01-01"}
    assert _findings(_window(3, MIN_N - 1, latency_factor=3.0)) == ()


def test_folds_week_over_week_latency():
    df = _window(9, 1500, latency_factor=2.0)
    own = detect_peak(_ctx(df))
    slow = df.filter(pl.col("timestamp").dt.weekday() <= 5).sort("latency_ms", descending=True).head(20)
    wow = Draft("latency", "", 500.0, 700.0, 0.3, "Median latency went up.", p_value=1e-6, practical=True,
                evidence=tuple(slow.get_column("trace_id").to_list()))  # fmt: skip
    (f,) = [f for f in finalise([*own, wow], 0.05, {}) if f.kind == "latency"]
    assert f.severity == "info" and "Part of the time_of_day finding" in f.summary


def test_end_to_end_through_analyze():
    sp = make_pair(Scenario(n_current=3000), seed=3)
    cur = sp.current
    hot = (cur.get_column("timestamp").dt.weekday() <= 5) & cur.get_column("timestamp").dt.hour().is_between(12, 17)
    # uniform traffic: the peak hours are whichever weekday hours happen to be busiest; plant on all weekday days
    cur = cur.with_columns(pl.when(pl.Series(hot.to_numpy())).then(pl.col("latency_ms") * 3).otherwise(pl.col("latency_ms")))
    r = analyze(sp.baseline, cur, baseline_window=sp.baseline_window, current_window=sp.current_window,
                config=DriftConfig(semantic=False, kinds=("time_of_day", "load")))  # fmt: skip
    assert {f.kind for f in r.findings} <= {"time_of_day", "load"}
    assert any(f.significant and f.segment.endswith("metric=latency") for f in r.findings)


def test_variance_row_backed():
    from tracelens.analysis.findings import Finding
    from tracelens.analysis.sources import variance_table

    f = Finding("time_of_day", "snapshot=m tier=standard metric=latency", "up", 1700.0, 3100.0, 0.6, 0.5, 0.7, 0.001,
                0.003, True, "alert", None, "Latency at peak hours ...")  # fmt: skip
    df = _window(1, 10)
    rows = {r.source: r for r in variance_table(df, [f], {})}
    row = rows["capacity or tier routing"]
    assert row.status == "changed" and "time_of_day" in row.findings and "Latency at peak hours" in row.observation
