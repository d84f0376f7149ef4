"""Calibration under no change: false-alarm shares of the refusal, prompt-mix and semantic tests.

See tests/calibration.py for the set-up shared by the calibration files.
"""

from __future__ import annotations

from tests.calibration import CORE, SEMANTIC, Scenario, _n_topic_tests, _shares, _sig, _topic_sig


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
