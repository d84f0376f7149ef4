"""Regression statistics of task evals (tracelens.evals.stats): known values, edge cases and calibration.

The calibration tests simulate suites with per-case heterogeneity (benchmarks/eval_calibration.py, the same
simulation at 200 runs per scenario) and check the false-alarm and detection rates that docs/evals.md reports.
"""

from __future__ import annotations

import json
import math
from datetime import UTC, datetime
from importlib.util import module_from_spec, spec_from_file_location
from pathlib import Path

import numpy as np
import pytest
from scipy import stats as sps
from statsmodels.stats.contingency_tables import mcnemar as sm_mcnemar
from statsmodels.stats.multitest import multipletests
from statsmodels.stats.proportion import proportion_confint

from tracelens.evals import stats as S

REPO = Path(__file__).resolve().parents[1]

# Per-case pass probabilities ~ Beta(0.4, 0.1): mean 0.8, and one case in nine changes outcome between two runs of
# the same target. benchmarks/eval_calibration.py prints these and other scenarios at 1,000 runs.
STABLE = 0.5


def _load_calibration():
    spec = spec_from_file_location("eval_calibration", REPO / "benchmarks" / "eval_calibration.py")
    mod = module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


@pytest.fixture(scope="module")
def calibration():
    """benchmarks/eval_calibration.py, whose simulations the calibration tests run."""
    return _load_calibration()


def _json(result) -> dict:
    """The result's JSON form, checked to be strict JSON (no NaN/inf)."""
    d = result.to_dict()
    json.dumps(d, allow_nan=False)
    return d


def _runs(pattern: dict[str, str]) -> dict[str, list]:
    """``{"c1": "PPF"}`` -> ``{"c1": [True, True, False]}`` (E = error)."""
    words = {"P": True, "F": False, "E": None}
    return {case: [words[ch] for ch in reps] for case, reps in pattern.items()}


def _paired(pairs: list[tuple[str, str]]) -> tuple[dict, dict]:
    base = _runs({f"c{i:03d}": b for i, (b, _) in enumerate(pairs)})
    cand = _runs({f"c{i:03d}": c for i, (_, c) in enumerate(pairs)})
    return base, cand


# --------------------------------------------------------------------------- pass rate


@pytest.mark.parametrize(("x", "n"), [(0, 10), (3, 10), (10, 10), (81, 100), (1, 1), (997, 1000)])
def test_single_repeat_pass_rate_is_the_wilson_interval(x, n):
    outcomes = {f"c{i}": [i < x] for i in range(n)}
    r = S.pass_rate(outcomes)
    lo, hi = proportion_confint(x, n, alpha=0.05, method="wilson")
    assert r.method == "wilson"
    assert r.rate == pytest.approx(x / n)
    assert r.lo == pytest.approx(lo, abs=1e-9) and r.hi == pytest.approx(hi, abs=1e-9)
    assert (r.n_cases, r.n_repeats, r.n_graded, r.n_passed, r.n_errors) == (n, n, n, x, 0)
    _json(r)


def test_errors_are_counted_apart_from_the_pass_rate():
    r = S.pass_rate(_runs({"a": "P", "b": "F", "c": "E", "d": "P"}))
    assert r.rate == pytest.approx(2 / 3)
    assert (r.n_cases, r.n_graded_cases, r.n_repeats, r.n_graded, r.n_errors) == (4, 3, 4, 3, 1)
    assert r.error_rate == pytest.approx(0.25)
    lo, hi = proportion_confint(2, 3, method="wilson")
    assert (r.lo, r.hi) == (pytest.approx(lo), pytest.approx(hi))


def test_runner_words_and_bare_outcomes_are_accepted():
    words = S.pass_rate({"a": ["pass", "fail"], "b": ["error", "PASS"], "c": "pass", "d": None, "e": True})
    bools = S.pass_rate({"a": [True, False], "b": [None, True], "c": [True], "d": [None], "e": [True]})
    assert words == bools
    with pytest.raises(ValueError, match="unknown outcome"):
        S.pass_rate({"a": ["passed"]})


def test_repeats_of_perfectly_consistent_cases_count_about_once():
    # 100 cases, each passing or failing all 3 repeats: the design effect is ~3, so the interval is the one of
    # 100 observations, not 300.
    outcomes = {f"c{i}": [i % 2 == 0] * 3 for i in range(100)}
    r = S.pass_rate(outcomes)
    assert r.method == "wilson, design effect"
    assert r.design_effect == pytest.approx(3.0303, abs=1e-3)  # k/(k-1) small-sample factor over 3
    lo, hi = proportion_confint(50, 100, method="wilson")
    assert r.lo == pytest.approx(lo, abs=0.002) and r.hi == pytest.approx(hi, abs=0.002)


def test_design_effect_interval_covers_the_suite_pass_rate_where_the_naive_one_does_not(calibration):
    ours, naive = calibration.interval_coverage(200, 3, runs=400, seed=7, concentration=STABLE)
    assert ours >= 0.92
    assert naive < 0.85  # why the case is the unit: 600 repeats are not 600 independent observations


def test_all_passing_repeats_fall_back_to_one_observation_per_case():
    r = S.pass_rate({f"c{i}": [True] * 3 for i in range(10)})
    lo, _ = proportion_confint(10, 10, method="wilson")
    assert (r.rate, r.hi, r.n_effective) == (1.0, 1.0, 10.0)
    assert r.lo == pytest.approx(lo)


@pytest.mark.parametrize("outcomes", [{}, {"a": [None, None]}, {"a": []}])
def test_no_graded_repeat_gives_an_empty_rate_not_nan(outcomes):
    r = S.pass_rate(outcomes)
    d = _json(r)
    assert (d["rate"], d["lo"], d["hi"], d["method"]) == (None, None, None, "none")
    assert d["error_rate"] == (1.0 if outcomes.get("a") else None)


# --------------------------------------------------------------------------- McNemar


@pytest.mark.parametrize(("b", "c"), [(0, 0), (1, 0), (5, 5), (10, 2), (2, 10), (30, 17), (100, 70), (3, 40)])
def test_exact_mcnemar_matches_statsmodels_and_binomtest(b, c):
    # table rows: baseline pass/fail, columns: candidate pass/fail; b = pass->fail, c = fail->pass
    two, worse = S.mcnemar_exact(b, c)
    assert two == pytest.approx(sm_mcnemar([[40, b], [c, 7]], exact=True).pvalue, rel=1e-9)
    if b + c:
        assert two == pytest.approx(sps.binomtest(c, b + c, 0.5).pvalue, rel=1e-9)
        assert worse == pytest.approx(sps.binomtest(c, b + c, 0.5, alternative="less").pvalue, rel=1e-9)


def test_single_repeat_comparison_is_mcnemar_on_the_flips():
    pairs = [("P", "F")] * 12 + [("F", "P")] * 2 + [("P", "P")] * 30 + [("F", "F")] * 6
    base, cand = _paired(pairs)
    r = S.compare_paired(base, cand)
    assert r.method == "exact McNemar"
    assert (r.n_paired, r.n_pass_to_fail, r.n_fail_to_pass) == (50, 12, 2)
    assert r.pass_to_fail == [f"c{i:03d}" for i in range(12)]
    assert r.fail_to_pass == ["c012", "c013"]
    assert r.p_value == pytest.approx(sps.binomtest(2, 14, 0.5).pvalue)
    assert r.delta == pytest.approx(-10 / 50)
    assert r.baseline_rate == pytest.approx(42 / 50) and r.candidate_rate == pytest.approx(32 / 50)
    assert r.delta_lo < r.delta < r.delta_hi < 0
    assert r.verdict == "regression" and r.p_worse < r.p_value
    flipped = S.compare_paired(cand, base)
    assert flipped.verdict == "improvement" and flipped.p_value == pytest.approx(r.p_value)
    _json(r)


def test_the_verdict_follows_the_exact_test_where_the_interval_is_less_conservative():
    # 9 pass->fail against 2 fail->pass: exact p = 0.065, while the Agresti-Min interval just excludes 0
    base, cand = _paired([("P", "F")] * 9 + [("F", "P")] * 2 + [("P", "P")] * 39)
    r = S.compare_paired(base, cand)
    assert r.p_value == pytest.approx(0.0654, abs=1e-4) and r.delta_hi < 0
    assert r.verdict == "no significant change"


# --------------------------------------------------------------------------- sign-flip permutation


def _scipy_paired_p(base: dict, cand: dict) -> float:
    """scipy's exact paired permutation test of the mean per-case difference (cases with no difference are left
    out: flipping a zero changes nothing, and scipy would enumerate 2**n patterns)."""
    ids = sorted(base)
    rb = np.array([np.mean(base[i]) for i in ids])
    rc = np.array([np.mean(cand[i]) for i in ids])
    keep = rc != rb
    rb, rc = rb[keep], rc[keep]
    assert keep.sum() <= 20
    res = sps.permutation_test((rc, rb), lambda x, y, axis: np.mean(x - y, axis=axis), permutation_type="samples",
                               n_resamples=np.inf, alternative="two-sided")
    return float(res.pvalue)


def test_repeated_comparison_is_the_exact_sign_flip_test_when_few_cases_differ():
    pairs = ([("PPP", "PPF")] * 5 + [("PPF", "FFF")] * 2 + [("PFF", "PPF")] + [("PPP", "PPP")] * 20
             + [("FFF", "FFF")] * 4)
    base, cand = _paired(pairs)
    r = S.compare_paired(base, cand)
    assert r.method == "sign-flip permutation (exact)"
    assert r.p_value == pytest.approx(_scipy_paired_p(base, cand), rel=1e-9)
    assert r.delta == pytest.approx((5 * (-1 / 3) + 2 * (-2 / 3) + 1 / 3) / 32)
    assert (r.n_pass_to_fail, r.n_fail_to_pass) == (7, 1)
    assert r.delta_lo <= r.delta <= r.delta_hi


def test_monte_carlo_sign_flip_agrees_with_the_exact_test():
    # 17 cases that differ (more than EXACT_SIGN_FLIPS), so Monte Carlo; scipy enumerates all 2**17 flips
    diffs = ["PPF", "PFF", "FFF", "PPP", "PPF", "FFF", "PFF", "PPF", "PPP", "PFF", "FFF", "PPF", "PPP", "PFF", "FPF",
             "PPF", "FFF"]
    pairs = [(b, "PPP" if b != "PPP" else "PFF") if i % 3 else (b, "FFF" if b != "FFF" else "PPF")
             for i, b in enumerate(diffs)]
    base, cand = _paired(pairs)
    r = S.compare_paired(base, cand, n_resamples=10_000)
    assert r.method == "sign-flip permutation (Monte Carlo)" and r.n_pass_to_fail + r.n_fail_to_pass == 17
    exact = _scipy_paired_p(base, cand)
    assert 0.01 < exact < 0.9
    assert r.p_value == pytest.approx(exact, abs=4 * math.sqrt(exact * (1 - exact) / 10_000) + 1e-4)
    assert S.compare_paired(base, cand, n_resamples=10_000) == r  # seeded: the same answer every time
    assert S.compare_paired(base, cand, n_resamples=10_000, seed=1).p_value != r.p_value


def test_one_repeat_against_three_uses_the_per_case_rates():
    base = {f"c{i}": [i % 4 != 0] for i in range(30)}
    cand = {f"c{i}": [i % 4 != 0] * 3 for i in range(30)}
    r = S.compare_paired(base, cand)
    assert r.method.startswith("sign-flip")
    assert (r.delta, r.p_value, r.verdict) == (0.0, 1.0, "no significant change")


# --------------------------------------------------------------------------- edge cases


@pytest.mark.parametrize("reps", [1, 3])
def test_all_pass_on_both_sides_is_no_change_with_a_finite_interval(reps):
    base = {f"c{i}": [True] * reps for i in range(50)}
    r = S.compare_paired(base, base)
    d = _json(r)
    assert (d["verdict"], d["delta"], d["p_value"], d["n_pass_to_fail"]) == ("no significant change", 0.0, 1.0, 0)
    assert d["delta_lo"] <= 0 <= d["delta_hi"]
    assert "no paired case changed" in r.reason


def test_no_shared_cases_is_not_enough_cases_with_the_reasons():
    r = S.compare_paired(_runs({"a": "P", "b": "F", "x": "E"}), _runs({"c": "P", "d": "P", "x": "P"}))
    d = _json(r)
    assert (d["verdict"], d["n_paired"], d["n_dropped"], d["delta"], d["p_value"]) == ("not enough cases", 0, 5, None, None)
    assert d["dropped"] == {"baseline only": ["a", "b"], "candidate only": ["c", "d"],
                            "no graded repeat in baseline": ["x"]}


def test_only_errors_is_not_enough_cases():
    errs = {f"c{i}": [None, None] for i in range(20)}
    r = S.compare_paired(errs, errs)
    d = _json(r)
    assert (d["verdict"], d["baseline_errors"], d["candidate_errors"]) == ("not enough cases", 40, 40)
    assert d["dropped"] == {"no graded repeat in either": sorted(errs)}


@pytest.mark.parametrize("reps", ["P", "PPP"])
def test_one_case_is_not_enough_cases(reps):
    r = S.compare_paired(_runs({"a": reps}), _runs({"a": "F" * len(reps)}))
    d = _json(r)
    assert d["verdict"] == "not enough cases" and d["n_paired"] == 1 and d["delta"] == -1.0


def test_a_big_change_on_too_few_cases_is_still_not_enough_cases():
    base, cand = _paired([("P", "F")] * (S.MIN_PAIRED_CASES - 1))
    assert S.compare_paired(base, cand).verdict == "not enough cases"
    base, cand = _paired([("P", "F")] * S.MIN_PAIRED_CASES)
    assert S.compare_paired(base, cand).verdict == "regression"  # 10 of 10 flipped: p = 0.002


# --------------------------------------------------------------------------- groups


@pytest.mark.parametrize(("correction", "method"), [("bh", "fdr_bh"), ("holm", "holm")])
def test_adjusted_p_values_match_statsmodels(correction, method):
    p = [0.001, 0.02, 0.03, 0.04, 0.2, 0.5, 0.011, 0.04]
    adj = (S.benjamini_hochberg if correction == "bh" else S.holm)(p)
    assert adj == pytest.approx(multipletests(p, method=method)[1], rel=1e-12)
    holm = S.holm([0.01, None, float("nan"), 0.04])
    assert holm[0] == pytest.approx(0.02) and holm[3] == pytest.approx(0.04)
    assert math.isnan(holm[1]) and math.isnan(holm[2])


def _grouped_suite():
    """60 cases in three tasks of 20, plus 5 cases tagged "rare"; only the refund task regresses."""
    pairs, groups = [], {}
    for t, task in enumerate(("refund", "billing", "shipping")):
        block = [("P", "F")] * 14 + [("P", "P")] * 6 if task == "refund" else [("P", "F"), ("F", "P")] + [("P", "P")] * 18
        for j, pair in enumerate(block):
            groups[f"c{len(pairs):03d}"] = [f"task={task}"] + (["rare"] if t == 2 and j < 5 else [])
            pairs.append(pair)
    base, cand = _paired(pairs)
    return base, cand, groups


@pytest.mark.parametrize("correction", ["bh", "holm"])
def test_groups_find_the_task_that_regressed_with_adjusted_p_values(correction):
    base, cand, groups = _grouped_suite()
    graders = {"exact": _paired([("P", "P")] * 30), "judge": _paired([("P", "F")] * 12 + [("P", "P")] * 18)}
    rep = S.compare_by_group(base, cand, groups, graders=graders, correction=correction)
    assert rep.overall == S.compare_paired(base, cand)  # the primary test is the plain comparison
    assert rep.overall.verdict == "regression"
    by = {g.group: g for g in rep.groups}
    assert list(by) == ["rare", "task=billing", "task=refund", "task=shipping", "grader=exact", "grader=judge"]
    assert by["rare"].kind == "tag" and by["grader=judge"].kind == "grader"
    assert (by["rare"].verdict, by["rare"].p_adjusted, by["rare"].comparison.n_paired) == ("not enough cases", None, 5)
    assert rep.n_tested == 5
    tested = [g for g in rep.groups if g.p_adjusted is not None]
    method = "fdr_bh" if correction == "bh" else "holm"
    expected = multipletests([g.comparison.p_value for g in tested], method=method)[1]
    assert [g.p_adjusted for g in tested] == pytest.approx(list(expected))
    assert {g.group for g in rep.groups if g.verdict == "regression"} == {"task=refund", "grader=judge"}
    assert all(g.p_adjusted >= g.comparison.p_value for g in tested)
    _json(rep)


def test_unknown_correction_is_refused():
    with pytest.raises(ValueError, match="correction"):
        S.compare_by_group({}, {}, correction="bonferroni")


# --------------------------------------------------------------------------- leaderboard and trend


def _target(rate: float, n: int = 200, seed: int = 0, shared: np.ndarray | None = None) -> dict:
    """n cases passing with roughly ``rate``; ``shared`` uniforms make targets agree case by case."""
    u = np.random.default_rng(seed).random(n) if shared is None else shared
    return {f"c{i:03d}": [bool(u[i] < rate)] for i in range(n)}


def test_leaderboard_ranks_and_marks_ties_with_the_best():
    u = np.random.default_rng(11).random(200)
    runs = {"small": _target(0.60, shared=u), "big": _target(0.90, shared=u), "mid": _target(0.89, shared=u)}
    lb = S.leaderboard(runs)
    assert lb.reference == "big"
    assert [(e.rank, e.target, e.is_reference) for e in lb.entries] == [(1, "big", True), (2, "mid", False),
                                                                      (3, "small", False)]
    big, mid, small = lb.entries
    assert big.vs_reference is None and big.tied is None
    assert mid.tied is True and mid.vs_reference.delta < 0
    assert small.tied is False and small.vs_reference.verdict == "regression"
    assert small.vs_reference.delta == pytest.approx(small.rate.rate - big.rate.rate)
    by_mid = S.leaderboard(runs, reference="mid")
    assert by_mid.reference == "mid" and by_mid.entries[0].target == "big" and by_mid.entries[0].tied is True
    _json(lb)
    with pytest.raises(ValueError, match="reference"):
        S.leaderboard(runs, reference="nope")
    assert S.leaderboard({}).entries == []


def test_trend_flags_the_run_that_regressed_from_the_previous_one():
    u = np.random.default_rng(5).random(200)
    weeks = [(datetime(2026, 11, 2, tzinfo=UTC), _target(0.85, shared=u)), ("w2", _target(0.85, shared=u)),
             ("w3", _target(0.70, shared=u)), ("w4", _target(0.80, shared=u))]
    pts = S.trend(weeks)
    assert [p.label for p in pts] == ["2026-11-02T00:00:00Z", "w2", "w3", "w4"]
    assert [p.regressed for p in pts] == [False, False, True, False]
    assert pts[0].vs_previous is None and pts[2].vs_previous.verdict == "regression"
    assert pts[3].vs_previous.verdict == "improvement"
    assert pts[2].rate.rate == pytest.approx(sum(u < 0.70) / 200)
    for p in pts:
        _json(p)


# --------------------------------------------------------------------------- calibration (docs/evals.md)



@pytest.mark.parametrize("repeats", [1, 3])
def test_no_change_is_called_a_regression_at_most_5_percent_of_the_time(calibration, repeats):
    share = calibration.regression_share(200, repeats, 0.0, runs=200, seed=1, concentration=STABLE, n_resamples=1000)
    assert share <= 0.05


@pytest.mark.parametrize("repeats", [1, 3])
def test_a_ten_point_drop_on_200_cases_is_detected_at_least_80_percent_of_the_time(calibration, repeats):
    share = calibration.regression_share(200, repeats, 0.10, runs=200, seed=2, concentration=STABLE, n_resamples=1000)
    assert share >= 0.80
