"""Calibration of the drift engine on seeded synthetic windows with known truth.

Each test runs many two-window comparisons and checks a false-alarm share or
a power. To keep the suite fast, the refusal/prompt-mix runs use the reduced
path ``DriftConfig(semantic=False, kinds=CORE)`` (the BH family then holds
only those tests, which makes false alarms *easier*, not harder), and the
semantic runs use small windows. Figures measured at commit time are in
docs/drift.md.
"""

from __future__ import annotations

from datetime import timedelta

import numpy as np
import polars as pl
import pytest

from tracelens.analysis import DriftConfig, analyze
from tracelens.analysis.stats import two_proportion_test
from tracelens.analysis.synthetic import T0, WEEK, Scenario, make_pair

CORE = ("refusal_rate", "refusal_rate_adjusted", "matched_prompt_refusal", "prompt_mix")
FAST = DriftConfig(semantic=False, kinds=CORE)
SEMANTIC = DriftConfig(semantic_max_per_window=300, semantic_permutations=100, kinds=("prompt_semantic", "response_semantic"))


def _report(sc: Scenario, seed: int, cfg: DriftConfig = FAST, sp=None):
    sp = sp or make_pair(sc, seed=seed)
    return analyze(
        sp.baseline,
        sp.current,
        baseline_window=sp.baseline_window,
        current_window=sp.current_window,
        prompt_emb=sp.prompt_emb,
        response_emb=sp.response_emb,
        cluster_labels=sp.cluster_labels,
        config=cfg,
    )


def _sig(report, kind: str, segment: str | None = None) -> bool:
    return any(f.significant for f in report.findings if f.kind == kind and (segment is None or f.segment == segment))


def _shares(runs: int, sc: Scenario, checks: dict, cfg: DriftConfig = FAST) -> dict[str, float]:
    hits = dict.fromkeys(checks, 0)
    for seed in range(runs):
        r = _report(sc, seed, cfg)
        for name, fn in checks.items():
            hits[name] += bool(fn(r))
    return {k: v / runs for k, v in hits.items()}


def _topic_sig(report, kinds=("refusal_rate", "refusal_rate_adjusted")) -> bool:
    return any(f.significant and f.kind in kinds and f.segment.startswith("cluster=") for f in report.findings)


def _n_topic_tests(report) -> int:
    return sum(1 for f in report.findings if f.kind in ("refusal_rate", "refusal_rate_adjusted") and f.segment.startswith("cluster="))


def test_no_change_false_alarms():
    """200 null runs: any significant refusal / prompt_mix finding in <= 5% of runs, per-topic segments included."""
    checks = {k: (lambda r, k=k: _sig(r, k)) for k in CORE}
    checks["any refusal finding"] = lambda r: any(_sig(r, k) for k in CORE[:3])
    checks["per-topic refusal"] = _topic_sig
    checks["has per-topic tests"] = lambda r: _n_topic_tests(r) >= 8
    shares = _shares(200, Scenario(n_baseline=1000, n_current=1000), checks)
    print("no-change false-alarm shares:", shares)
    for kind in ("refusal_rate", "refusal_rate_adjusted", "prompt_mix", "any refusal finding", "per-topic refusal"):
        assert shares[kind] <= 0.05, (kind, shares)
    # the per-topic tests did run: raw and adjusted on most of the 8 topics in every run
    assert shares["has per-topic tests"] == 1.0


def test_no_change_semantic_false_alarms():
    """40 null runs with 300 traces per window: semantic findings in <= 5% of runs each."""
    shares = _shares(
        40,
        Scenario(n_baseline=300, n_current=300),
        {k: (lambda r, k=k: _sig(r, k)) for k in ("prompt_semantic", "response_semantic")},
        SEMANTIC,
    )
    print("no-change semantic false-alarm shares:", shares)
    assert shares["prompt_semantic"] <= 0.05 and shares["response_semantic"] <= 0.05, shares


UNIFORM = (1 / 8,) * 8


def test_topic_mix_shift_is_not_a_model_change():
    """Topic shares change (the riskiest topic grows from 12.5% to 50%), per-topic refusal rates do not."""
    sc = Scenario(n_baseline=5000, n_current=5000, shares_b=UNIFORM, shares_c=(0.5 / 7,) * 7 + (0.5,))
    shares = _shares(
        30,
        sc,
        {"raw": lambda r: _sig(r, "refusal_rate", ""), "adjusted": lambda r: _sig(r, "refusal_rate_adjusted", "")},
    )
    print("topic mix shift:", shares)
    assert shares["raw"] >= 0.9
    assert shares["adjusted"] <= 0.1


def test_risky_prompt_surge_is_not_a_model_change():
    """20 recurring risky prompts (refused 90% of the time in both windows) go from 2% to 6% of traffic."""
    sc = Scenario(n_baseline=3000, n_current=3000, risky_prompts=20, risky_share_b=0.02, risky_share_c=0.06)
    shares = _shares(
        30,
        sc,
        {
            "raw": lambda r: _sig(r, "refusal_rate", ""),
            "adjusted": lambda r: _sig(r, "refusal_rate_adjusted", ""),
            "raw topic 0": lambda r: _sig(r, "refusal_rate", "cluster=0 (billing and refunds)"),
            "adjusted topic 0": lambda r: _sig(r, "refusal_rate_adjusted", "cluster=0 (billing and refunds)"),
        },
    )
    print("risky surge:", shares)
    assert shares["raw"] >= 0.9
    assert shares["adjusted"] <= 0.1
    assert shares["adjusted topic 0"] <= 0.1  # the topic the risky prompts belong to: its raw rate moves, not its behaviour


def test_behaviour_change_is_detected():
    """Same mix, one topic's refusal rate tripled (8% -> 24%, topic share 12.5%), n = 5,000 per window."""
    ref = tuple(np.linspace(0.02, 0.09, 8))
    cur = list(ref)
    cur[6] *= 3
    sc = Scenario(n_baseline=5000, n_current=5000, shares_b=UNIFORM, refusal_b=ref, refusal_c=tuple(cur))
    shares = _shares(
        30,
        sc,
        {
            "adjusted": lambda r: _sig(r, "refusal_rate_adjusted", ""),
            "topic 6": lambda r: _sig(r, "refusal_rate", "cluster=6 (legal contracts)"),
            "other topics": lambda r: any(
                f.significant and f.segment.startswith("cluster=") and not f.segment.startswith("cluster=6 ")
                for f in r.findings
                if f.kind in ("refusal_rate", "refusal_rate_adjusted")
            ),
        },
    )
    print("behaviour change power:", shares)
    assert shares["adjusted"] >= 0.9
    assert shares["topic 6"] >= 0.9  # the per-topic test names the topic that changed
    assert shares["other topics"] <= 0.1


def test_rate_jump_is_detected():
    """Refusal rate 0.5% -> 2% everywhere at n = 2,000 per window."""
    sc = Scenario(n_baseline=2000, n_current=2000, refusal_b=(0.005,) * 8, refusal_c=(0.02,) * 8)
    shares = _shares(30, sc, {"raw": lambda r: _sig(r, "refusal_rate", "")})
    print("0.5% -> 2% power:", shares)
    assert shares["raw"] >= 0.9


@pytest.mark.parametrize("seed", [0, 1])
def test_semantic_tests_separate_traffic_from_model(seed):
    """A prompt-mix shift moves prompt_semantic but not response_semantic; a planted response shift is found."""
    mix = Scenario(n_baseline=300, n_current=300, shares_b=UNIFORM, shares_c=(0.5 / 7,) * 7 + (0.5,))
    r = _report(mix, seed, SEMANTIC)
    assert _sig(r, "prompt_semantic") and not _sig(r, "response_semantic")
    shifted = Scenario(n_baseline=300, n_current=300, response_shift=0.3)
    r = _report(shifted, seed, SEMANTIC)
    assert _sig(r, "response_semantic")


# --------------------------------------------------------------------------- snapshot split

SNAP = T0 + WEEK + timedelta(days=3)
SPLIT = DriftConfig(semantic=False, kinds=("snapshot_behaviour", "response_length"))


def _split_sig(report, topic: bool | None = None) -> bool:
    return any(
        f.significant
        for f in report.findings
        if f.kind == "snapshot_behaviour" and (topic is None or (" " in f.segment) == topic)
    )


def test_snapshot_split_holds_prompt_mix_fixed():
    """Rollover mid-window while the riskiest topic (30% refused) grows from 12.5% to 50%; per-topic rates unchanged.

    The naive old-vs-new snapshot comparison is confounded by the mix shift
    (the new snapshot serves riskier traffic); the stratified split must not
    call that a behaviour change. 100 runs, 1,000 traces per window; the
    reduced family holds only true nulls, so <= 5% of runs may show any.
    """
    rates = (0.01, 0.02, 0.03, 0.04, 0.05, 0.06, 0.08, 0.3)
    sc = Scenario(
        n_baseline=1000,
        n_current=1000,
        shares_b=UNIFORM,
        shares_c=(0.5 / 7,) * 7 + (0.5,),
        refusal_b=rates,
        snapshot_change_at=SNAP,
    )
    naive = 0
    hits = {"split": 0, "split per topic": 0, "length": 0}
    runs = 100
    for seed in range(runs):
        sp = make_pair(sc, seed=seed)
        r = _report(sc, seed, SPLIT, sp)
        cur = sp.current.filter(pl.col("status") == "ok")
        old = pl.concat([sp.baseline.filter(pl.col("status") == "ok"), cur.filter(pl.col("timestamp") < SNAP)])
        new = cur.filter(pl.col("timestamp") >= SNAP)
        xo, xn = int((old["refusal"] != "none").sum()), int((new["refusal"] != "none").sum())
        naive += two_proportion_test(xo, old.height, xn, new.height)[0] < 0.05
        hits["split"] += _split_sig(r, topic=False)
        hits["split per topic"] += _split_sig(r, topic=True)
        hits["length"] += any(f.significant and f.kind == "response_length" and f.segment.startswith("snapshot=") for f in r.findings)
    shares = {k: v / runs for k, v in hits.items()}
    print("snapshot split under a coinciding mix shift:", shares, "naive significant:", naive / runs)
    assert naive / runs >= 0.5  # the confound is real
    assert all(v <= 0.05 for v in shares.values()), shares


def test_snapshot_behaviour_change_is_found_on_its_topic():
    """The new snapshot triples one topic's refusal rate (rollover mid-window, n = 2,000): the split names the topic."""
    ref = tuple(np.linspace(0.02, 0.09, 8))
    new = list(ref)
    new[6] *= 3
    sc = Scenario(
        n_baseline=2000, n_current=2000, shares_b=UNIFORM, refusal_b=ref, snapshot_change_at=SNAP, refusal_new_snapshot=tuple(new)
    )
    cfg = DriftConfig(semantic=False, kinds=("snapshot_behaviour",))
    shares = _shares(
        20,
        sc,
        {
            "topic 6": lambda r: _sig(r, "snapshot_behaviour", "snapshot=claude-sonnet-4-5-20251101 cluster=6 (legal contracts)"),
            "other topics": lambda r: any(
                f.significant and " cluster=" in f.segment and "cluster=6 " not in f.segment
                for f in r.by_kind("snapshot_behaviour")
            ),
        },
        cfg,
    )
    print("snapshot behaviour power:", shares)
    assert shares["topic 6"] >= 0.8
    assert shares["other topics"] <= 0.1
