"""Unit tests of the statistical building blocks (tracelens.analysis.stats) against known values."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import stats as sps

from tracelens.analysis import stats as S


def test_wilson_known_values():
    lo, hi = S.wilson(5, 10)
    assert float(lo) == pytest.approx(0.2366, abs=1e-4)
    assert float(hi) == pytest.approx(0.7634, abs=1e-4)
    lo, hi = S.wilson(0, 10)
    assert float(lo) == 0.0 and float(hi) == pytest.approx(0.2775, abs=1e-4)
    lo, hi = S.wilson(1, 0)
    assert math.isnan(float(lo)) and math.isnan(float(hi))


def test_newcombe_matches_published_example():
    # Newcombe (1998), example (a): 56/70 vs 48/80 -> difference 0.2, 95% CI 0.0524 to 0.3339
    d, lo, hi = S.newcombe_diff(48, 80, 56, 70)
    assert d == pytest.approx(0.2)
    assert lo == pytest.approx(0.0524, abs=1e-4)
    assert hi == pytest.approx(0.3339, abs=1e-4)


def test_two_proportion_test_z_and_fisher():
    p, name = S.two_proportion_test(100, 1000, 140, 1000)
    pool = 240 / 2000
    z = (0.14 - 0.1) / math.sqrt(pool * (1 - pool) * (2 / 1000))
    assert name == "z" and p == pytest.approx(2 * sps.norm.sf(z))
    p, name = S.two_proportion_test(1, 200, 8, 200)
    assert name == "Fisher exact"
    assert p == pytest.approx(sps.fisher_exact([[8, 192], [1, 199]]).pvalue)
    assert S.two_proportion_test(0, 10, 0, 10)[0] == 1.0


def test_benjamini_hochberg():
    q = S.benjamini_hochberg([0.01, 0.04, 0.03, 0.005, None])
    assert np.allclose(q[:4], [0.02, 0.04, 0.04, 0.02])
    assert math.isnan(q[4])
    assert np.isnan(S.benjamini_hochberg([None, float("nan")])).all()


@given(st.lists(st.floats(min_value=0.0, max_value=1.0), min_size=1, max_size=40))
@settings(max_examples=60, deadline=None)
def test_bh_properties(ps):
    q = S.benjamini_hochberg(ps)
    assert (q >= np.asarray(ps) - 1e-12).all() and (q <= 1.0).all()
    order = np.argsort(ps, kind="stable")
    assert (np.diff(q[order]) >= -1e-12).all()


def test_cmh_against_statsmodels():
    import statsmodels.stats.contingency_tables as sm
    xb = np.array([5, 10, 2, 30])
    nb = np.array([100, 80, 50, 200])
    xc = np.array([9, 14, 6, 31])
    nc = np.array([90, 85, 40, 210])
    stat, p = S.cmh_test(xb, nb, xc, nc)
    tables = [np.array([[xc[i], nc[i] - xc[i]], [xb[i], nb[i] - xb[i]]]) for i in range(4)]
    ref = sm.StratifiedTable(tables).test_null_odds(correction=False)
    assert stat == pytest.approx(ref.statistic)
    assert p == pytest.approx(ref.pvalue)


def test_cmh_ignores_one_window_strata():
    stat, p = S.cmh_test([1, 5], [10, 0], [0, 7], [0, 9])
    assert (stat, p) == (0.0, 1.0)


@given(
    st.lists(
        st.tuples(st.integers(0, 50), st.integers(0, 50), st.integers(0, 50), st.integers(0, 50)), min_size=1, max_size=8
    )
)
@settings(max_examples=80, deadline=None)
def test_kitagawa_identity(rows):
    # clamp successes to totals; need traffic in both windows
    nb = np.array([r[1] for r in rows], float)
    nc = np.array([r[3] for r in rows], float)
    xb = np.minimum([r[0] for r in rows], nb)
    xc = np.minimum([r[2] for r in rows], nc)
    if nb.sum() == 0 or nc.sum() == 0:
        return
    k = S.kitagawa(xb, nb, xc, nc)
    assert k.raw == pytest.approx(k.mix + k.behaviour + k.unmatched, abs=1e-9)
    assert 0.0 <= k.coverage <= 1.0 + 1e-12


def test_kitagawa_pure_mix_and_pure_behaviour():
    # same per-stratum rates, shares move -> all mix
    k = S.kitagawa([10, 100], [1000, 1000], [5, 300], [500, 3000])
    assert k.behaviour == pytest.approx(0.0, abs=1e-12)
    assert k.mix == pytest.approx(k.raw)
    # same shares, one rate triples -> all behaviour
    k = S.kitagawa([10, 100], [1000, 1000], [30, 100], [1000, 1000])
    assert k.mix == pytest.approx(0.0, abs=1e-3) and k.behaviour == pytest.approx(k.raw, abs=1e-3)


def test_mcnemar():
    p, name = S.mcnemar(1, 9)
    assert name == "exact McNemar" and p == pytest.approx(sps.binomtest(9, 10, 0.5).pvalue)
    p, name = S.mcnemar(20, 40)
    assert name == "McNemar" and p == pytest.approx(sps.chi2.sf(400 / 60, 1))
    assert S.mcnemar(0, 0)[0] == 1.0
    d, lo, hi = S.paired_diff_ci(10, 30, 200)
    assert d == pytest.approx(0.1) and lo < 0.1 < hi


def test_rank_test_matches_mann_whitney_and_cliffs_delta():
    rng = np.random.default_rng(1)
    a = rng.normal(0, 1, 300).round(1)  # ties on purpose
    b = rng.normal(0.3, 1, 250).round(1)
    v = np.concatenate([a, b])
    g = np.r_[np.zeros(a.size, bool), np.ones(b.size, bool)]
    rt = S.stratified_rank_test(v, g)
    ref = sps.mannwhitneyu(b, a, alternative="two-sided", method="asymptotic", use_continuity=False)
    assert rt.p == pytest.approx(ref.pvalue, rel=1e-6)
    brute = (np.sign(b[:, None] - a[None, :])).mean()
    assert rt.delta == pytest.approx(brute, abs=1e-9)
    assert rt.auc == pytest.approx(ref.statistic / (a.size * b.size))


def test_stratified_rank_test_removes_mix_shift():
    rng = np.random.default_rng(2)
    # two strata with very different levels; current has more of the high stratum, same within-stratum laws
    sb = rng.random(2000) < 0.2
    sc = rng.random(2000) < 0.6
    vb = np.where(sb, 100, 10) + rng.normal(0, 1, 2000)
    vc = np.where(sc, 100, 10) + rng.normal(0, 1, 2000)
    v = np.concatenate([vb, vc])
    g = np.r_[np.zeros(2000, bool), np.ones(2000, bool)]
    s = np.concatenate([sb, sc]).astype(int)
    assert S.stratified_rank_test(v, g).p < 1e-10  # naive test is fooled by the mix
    assert S.stratified_rank_test(v, g, s).p > 0.01


def test_chi2_table_pools_sparse_rows():
    stat, dof, p = S.chi2_table([[100, 100], [50, 80], [1, 0], [0, 2]])
    assert dof == 2 and 0 < p < 1
    assert S.chi2_table([[10, 0]]) == (0.0, 0, 1.0)


def test_changepoint_finds_step():
    y = np.r_[np.zeros(500), np.ones(300)] + np.random.default_rng(0).normal(0, 0.3, 800)
    assert abs(S.changepoint(y) - 500) <= 5
    assert S.changepoint([1, 2]) is None


def test_stratified_permutations_keep_strata_counts():
    labels = np.array([0, 0, 1, 1, 0, 1, 1, 1])
    strata = np.array([0, 0, 0, 0, 1, 1, 1, 1])
    perms = S.stratified_permutations(labels, strata, 20, np.random.default_rng(0))
    for p in perms:
        assert p[:4].sum() == 2 and p[4:].sum() == 3


def test_mmd_and_c2st_null_and_alternative():
    rng = np.random.default_rng(3)
    x = rng.normal(size=(400, 8))
    g = np.r_[np.zeros(200, bool), np.ones(200, bool)]
    mmd2, p = S.mmd_permutation_test(x, g, None, 100, rng)
    assert p > 0.01
    x2 = x.copy()
    x2[g] += 0.5
    mmd2b, pb = S.mmd_permutation_test(x2, g, None, 100, rng)
    assert mmd2b > mmd2 and pb < 0.02
    c = S.classifier_two_sample_test(x2, g, rng=rng)
    assert c.auc > 0.7 and c.p < 1e-6 and c.scores.shape == (400,)


def test_c2st_is_calibrated_under_the_null():
    # Regression test: summing per-fold statistics is anti-conservative (folds are correlated).
    from threadpoolctl import threadpool_limits

    rej = 0
    runs = 100
    with threadpool_limits(1):  # tiny problems: BLAS threads only add hand-off latency
        for s in range(runs):
            rng = np.random.default_rng(s)
            x = rng.normal(size=(200, 6))
            g = np.r_[np.zeros(100, bool), np.ones(100, bool)]
            rej += S.classifier_two_sample_test(x, g, rng=rng).p < 0.05
    assert rej / runs <= 0.08


def test_bonferroni_and_auc_se():
    assert S.bonferroni_min(0.01, 0.5) == pytest.approx(0.02)
    assert S.bonferroni_min(None, float("nan")) == 1.0
    assert 0 < S.auc_se(0.7, 100, 100) < 0.05


def test_min_attainable_p_is_the_minimum_over_all_splits():
    for nb, nc, m in [(30, 30, 10), (40, 25, 3), (100, 30, 1), (12, 9, 20), (50, 50, 0), (50, 50, 100), (200, 180, 37)]:
        lo, hi = max(0, m - nb), min(m, nc)
        brute = min((S.two_proportion_test(m - xc, nb, xc, nc)[0] for xc in range(lo, hi + 1)), default=1.0)
        assert S.min_attainable_p(nb, nc, m) == pytest.approx(brute), (nb, nc, m)
    # one event in all can never be significant; ten events between two windows of 30 can
    assert S.min_attainable_p(30, 30, 1) == 1.0
    assert S.min_attainable_p(30, 30, 10) < 0.01
    assert S.min_attainable_p(0, 30, 5) == 1.0
