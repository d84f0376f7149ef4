"""Calibration: a change in what users ask is not called a change in the model.

See tests/calibration.py for the set-up shared by the calibration files.
"""

from __future__ import annotations

import polars as pl

from tests.calibration import SNAP, SPLIT, UNIFORM, Scenario, _report, _shares, _sig, _split_sig, make_pair
from tracelens.analysis.stats import two_proportion_test


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
