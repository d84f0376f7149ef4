"""Calibration of the drift engine on seeded synthetic windows with known truth.

Each test runs many two-window comparisons and checks a false-alarm share or
a power. To keep the suite fast, the refusal/prompt-mix runs use the reduced
path ``DriftConfig(semantic=False, kinds=CORE)`` (the BH family then holds
only those tests, which makes false alarms *easier*, not harder), and the
semantic runs use small windows. Figures measured at commit time are in
docs/drift.md.
"""

from __future__ import annotations

import numpy as np
import pytest

from tracelens.analysis import DriftConfig, analyze
from tracelens.analysis.synthetic import Scenario, make_pair

CORE = ("refusal_rate", "refusal_rate_adjusted", "matched_prompt_refusal", "prompt_mix")
FAST = DriftConfig(semantic=False, kinds=CORE)
SEMANTIC = DriftConfig(semantic_max_per_window=300, semantic_permutations=100, kinds=("prompt_semantic", "response_semantic"))


def _report(sc: Scenario, seed: int, cfg: DriftConfig = FAST):
    sp = make_pair(sc, seed=seed)
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


def test_no_change_false_alarms():
    """200 null runs: any significant refusal_rate / adjusted / prompt_mix finding in <= 5% of runs each."""
    shares = _shares(
        200,
        Scenario(n_baseline=1000, n_current=1000),
        {k: (lambda r, k=k: _sig(r, k)) for k in CORE},
    )
    print("no-change false-alarm shares:", shares)
    for kind in ("refusal_rate", "refusal_rate_adjusted", "prompt_mix"):
        assert shares[kind] <= 0.05, (kind, shares)


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
        {"raw": lambda r: _sig(r, "refusal_rate", ""), "adjusted": lambda r: _sig(r, "refusal_rate_adjusted", "")},
    )
    print("risky surge:", shares)
    assert shares["raw"] >= 0.9
    assert shares["adjusted"] <= 0.1


def test_behaviour_change_is_detected():
    """Same mix, one topic's refusal rate tripled (8% -> 24%, topic share 12.5%), n = 5,000 per window."""
    ref = tuple(np.linspace(0.02, 0.09, 8))
    cur = list(ref)
    cur[6] *= 3
    sc = Scenario(n_baseline=5000, n_current=5000, shares_b=UNIFORM, refusal_b=ref, refusal_c=tuple(cur))
    shares = _shares(30, sc, {"adjusted": lambda r: _sig(r, "refusal_rate_adjusted", "")})
    print("behaviour change power:", shares)
    assert shares["adjusted"] >= 0.9


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
