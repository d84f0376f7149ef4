"""Statistical building blocks for the drift engine (pure numpy/scipy).

Contract: every function here is pure and deterministic (randomised tests take
a ``numpy.random.Generator``), works on plain arrays, never sees a DataFrame
and never imports the rest of tracelens. Conventions:

* "b" is the baseline window, "c" the current window; differences are
  current minus baseline.
* p-values are two-sided unless the name says otherwise; they are floats in
  [0, 1]. Intervals are at level ``1 - alpha``.
* Vectorised: per-stratum quantities are arrays, never Python loops over rows,
  so the same code serves 2,000 and 2,000,000 traces.
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass

import numpy as np
from scipy import stats as sps

# --------------------------------------------------------------------------- proportions


@functools.lru_cache(maxsize=64)
def z_crit(alpha: float = 0.05) -> float:
    """Two-sided normal critical value for level ``alpha``."""
    return float(sps.norm.ppf(1.0 - alpha / 2.0))


def wilson(x, n, alpha: float = 0.05) -> tuple[np.ndarray, np.ndarray]:
    """Wilson score interval for x successes out of n (vectorised; NaN where n == 0)."""
    x = np.asarray(x, dtype=float)
    n = np.asarray(n, dtype=float)
    z = z_crit(alpha)
    with np.errstate(invalid="ignore", divide="ignore"):
        p = x / n
        denom = 1.0 + z * z / n
        centre = (p + z * z / (2.0 * n)) / denom
        half = z * np.sqrt(p * (1.0 - p) / n + z * z / (4.0 * n * n)) / denom
        lo = np.clip(centre - half, 0.0, 1.0)
        hi = np.clip(centre + half, 0.0, 1.0)
    # Exact at the boundaries: the interval for 0/n starts at 0, for n/n ends at 1.
    lo = np.where(x <= 0, 0.0, lo)
    hi = np.where(x >= n, 1.0, hi)
    bad = n <= 0
    return np.where(bad, np.nan, lo), np.where(bad, np.nan, hi)


def newcombe_diff(xb, nb, xc, nc, alpha: float = 0.05) -> tuple[float, float, float]:
    """Difference pc - pb with Newcombe's hybrid score interval (method 10)."""
    pb, pc = xb / nb, xc / nc
    lb, ub = (float(v) for v in wilson(xb, nb, alpha))
    lc, uc = (float(v) for v in wilson(xc, nc, alpha))
    d = pc - pb
    lo = d - math.sqrt((pc - lc) ** 2 + (ub - pb) ** 2)
    hi = d + math.sqrt((uc - pc) ** 2 + (pb - lb) ** 2)
    return d, lo, hi


def two_proportion_test(xb: int, nb: int, xc: int, nc: int) -> tuple[float, str]:
    """p-value for pb == pc: pooled z-test, or Fisher's exact test when an expected cell is below 5.

    Returns ``(p, test_name)``.
    """
    if nb <= 0 or nc <= 0:
        return 1.0, "none"
    m = xb + xc
    n = nb + nc
    if m == 0 or m == n:
        return 1.0, "z"
    expected = min(nb * m / n, nb * (n - m) / n, nc * m / n, nc * (n - m) / n)
    if expected < 5:
        res = sps.fisher_exact([[xc, nc - xc], [xb, nb - xb]])
        return float(min(1.0, res.pvalue)), "Fisher exact"
    p = m / n
    se = math.sqrt(p * (1 - p) * (1 / nb + 1 / nc))
    z = (xc / nc - xb / nb) / se
    return float(2 * sps.norm.sf(abs(z))), "z"


def min_attainable_p(nb: int, nc: int, m: int) -> float:
    """Smallest p-value :func:`two_proportion_test` can give for windows of ``nb`` and ``nc`` with ``m`` events in all.

    Tarone's screen for discrete tests: a segment whose most extreme split of
    its ``m`` events still cannot reach significance is left out of the
    multiple-testing family, where it could only dilute the others. The screen
    reads the margins only (sizes and the pooled count), which carry no
    information about the split under the null, so dropping such tests keeps
    the conditional p-values of the rest valid. The minimum is attained at one
    of the two extreme tables (|z| is linear in the split; Fisher's tails are
    monotone).
    """
    if nb <= 0 or nc <= 0 or m <= 0 or m >= nb + nc:
        return 1.0
    hi = min(m, nc)  # as many events as possible in the current window
    lo = max(0, m - nb)  # as few as possible
    return min(two_proportion_test(m - hi, nb, hi, nc)[0], two_proportion_test(m - lo, nb, lo, nc)[0])


def benjamini_hochberg(pvalues) -> np.ndarray:
    """Benjamini-Hochberg q-values; entries that are None/NaN stay NaN and do not count as tests."""
    p = np.array([np.nan if v is None else float(v) for v in pvalues], dtype=float)
    q = np.full(p.shape, np.nan)
    ok = np.isfinite(p)
    m = int(ok.sum())
    if m == 0:
        return q
    pv = p[ok]
    order = np.argsort(pv, kind="stable")
    ranked = pv[order] * m / np.arange(1, m + 1)
    ranked = np.minimum.accumulate(ranked[::-1])[::-1]
    out = np.empty(m)
    out[order] = np.minimum(ranked, 1.0)
    q[ok] = out
    return q


# --------------------------------------------------------------------------- stratified binary


def cmh_test(xb, nb, xc, nc) -> tuple[float, float]:
    """Cochran-Mantel-Haenszel test (no continuity correction) over 2x2 strata.

    Inputs are per-stratum arrays (refusals and totals per window). Strata seen
    in one window only carry no information and are ignored. Returns
    ``(chi2, p)``; p = 1 when no stratum is informative.
    """
    xb, nb, xc, nc = (np.asarray(a, dtype=float) for a in (xb, nb, xc, nc))
    n = nb + nc
    m1 = xb + xc
    keep = (nb > 0) & (nc > 0) & (n > 1)
    if not keep.any():
        return 0.0, 1.0
    xb, nb, xc, nc, n, m1 = (a[keep] for a in (xb, nb, xc, nc, n, m1))
    expected = nc * m1 / n
    var = nb * nc * m1 * (n - m1) / (n * n * (n - 1))
    v = float(var.sum())
    if v <= 0:
        return 0.0, 1.0
    stat = float((xc.sum() - expected.sum()) ** 2 / v)
    return stat, float(sps.chi2.sf(stat, 1))


@dataclass(frozen=True)
class Kitagawa:
    """Kitagawa decomposition of ``raw = pc - pb`` into ``mix + behaviour + unmatched``.

    ``behaviour`` sums, over strata present in both windows, the rate change
    weighted by the average stratum share; ``mix`` sums the share change
    weighted by the average rate; ``unmatched`` is the part carried by strata
    that occur in one window only (new or vanished traffic, which no
    adjustment can attribute). ``behaviour_se`` treats the shares as fixed and
    estimates each stratum's variance from the pooled rate (unbiased under the
    stratum null, conservative otherwise), which stays sane for the 1+1 strata
    that exact-prompt matching produces.
    """

    raw: float
    mix: float
    behaviour: float
    unmatched: float
    behaviour_se: float
    coverage: float  # share of current traffic in strata that the baseline also has


def kitagawa(xb, nb, xc, nc) -> Kitagawa:
    """Kitagawa decomposition over strata (see :class:`Kitagawa`)."""
    xb, nb, xc, nc = (np.asarray(a, dtype=float) for a in (xb, nb, xc, nc))
    tb, tc = nb.sum(), nc.sum()
    if tb <= 0 or tc <= 0:
        return Kitagawa(float("nan"), float("nan"), float("nan"), float("nan"), float("nan"), 0.0)
    wb, wc = nb / tb, nc / tc
    both = (nb > 0) & (nc > 0)
    with np.errstate(invalid="ignore", divide="ignore"):
        pb = np.where(nb > 0, xb / np.maximum(nb, 1), 0.0)
        pc = np.where(nc > 0, xc / np.maximum(nc, 1), 0.0)
    raw = float(xc.sum() / tc - xb.sum() / tb)
    wbar = (wb + wc) / 2
    behaviour = float(np.sum((wbar * (pc - pb))[both]))
    mix = float(np.sum(((wc - wb) * (pb + pc) / 2)[both]))
    unmatched = float(np.sum((wc * pc)[~both]) - np.sum((wb * pb)[~both]))
    n = nb + nc
    pool = np.where(n > 0, (xb + xc) / np.maximum(n, 1), 0.0)
    with np.errstate(invalid="ignore", divide="ignore"):
        q = pool * (1 - pool) * n / np.maximum(n - 1, 1)
        v = q * (1 / np.maximum(nb, 1) + 1 / np.maximum(nc, 1))
    se = float(math.sqrt(np.sum((wbar**2 * v)[both])))
    coverage = float(wc[both].sum())
    return Kitagawa(raw, mix, behaviour, unmatched, se, coverage)


def mcnemar(b: int, c: int) -> tuple[float, str]:
    """McNemar test on discordant pair counts: exact binomial below 25 discordant pairs, else chi-square."""
    n = b + c
    if n == 0:
        return 1.0, "McNemar"
    if n < 25:
        return float(sps.binomtest(int(c), int(n), 0.5).pvalue), "exact McNemar"
    stat = (b - c) ** 2 / n
    return float(sps.chi2.sf(stat, 1)), "McNemar"


def paired_diff_ci(b: int, c: int, n: int, alpha: float = 0.05) -> tuple[float, float, float]:
    """Paired difference (c - b)/n with a Wald interval on Agresti-Min adjusted counts."""
    if n <= 0:
        return float("nan"), float("nan"), float("nan")
    d = (c - b) / n
    ba, ca, na = b + 0.5, c + 0.5, n + 2.0
    da = (ca - ba) / na
    var = ((ba + ca) / na - da * da) / na
    h = z_crit(alpha) * math.sqrt(max(var, 0.0))
    return d, max(-1.0, da - h), min(1.0, da + h)


# --------------------------------------------------------------------------- ranks


@dataclass(frozen=True)
class RankTest:
    """Stratified Wilcoxon-Mann-Whitney (van Elteren) result.

    ``z`` > 0 means current values tend to be larger. ``delta`` is Cliff's
    delta pooled over strata with the van Elteren weights (n_b n_c / (n+1));
    ``delta_se`` uses the null variance (approximate away from the null).
    """

    z: float
    p: float
    delta: float
    delta_se: float
    n_b: int
    n_c: int

    @property
    def auc(self) -> float:
        """Probability that a current value exceeds a baseline one (ties count half)."""
        return (self.delta + 1.0) / 2.0

    @property
    def p_greater(self) -> float:
        """One-sided p-value for "current larger"."""
        return float(sps.norm.sf(self.z)) if math.isfinite(self.z) else 1.0


def stratified_rank_test(values, is_current, strata=None) -> RankTest:
    """Van Elteren's stratified rank-sum test (plain Mann-Whitney when ``strata`` is None).

    Ranks are computed within strata with average ranks for ties and the usual
    tie correction; each stratum's standardised rank sum gets weight
    1 / (n_s + 1). Non-finite values are dropped. Vectorised: one lexsort.
    """
    v = np.asarray(values, dtype=float)
    g = np.asarray(is_current, dtype=bool)
    s = np.zeros(v.shape, dtype=np.int64) if strata is None else np.asarray(strata)
    ok = np.isfinite(v)
    v, g, s = v[ok], g[ok], s[ok]
    nb_tot, nc_tot = int((~g).sum()), int(g.sum())
    if nb_tot == 0 or nc_tot == 0:
        return RankTest(float("nan"), 1.0, float("nan"), float("nan"), nb_tot, nc_tot)
    order = np.lexsort((v, s))
    v, g, s = v[order], g[order], s[order]
    n = v.size
    idx = np.arange(n)
    s_new = np.empty(n, dtype=bool)
    s_new[0] = True
    s_new[1:] = s[1:] != s[:-1]
    start = np.maximum.accumulate(np.where(s_new, idx, 0))
    pos = (idx - start + 1).astype(float)
    t_new = s_new.copy()
    t_new[1:] |= v[1:] != v[:-1]
    tie_id = np.cumsum(t_new) - 1
    tie_cnt = np.bincount(tie_id).astype(float)
    rank = (np.bincount(tie_id, weights=pos) / tie_cnt)[tie_id]
    sid = np.cumsum(s_new) - 1
    ns = np.bincount(sid).astype(float)
    nc = np.bincount(sid, weights=g.astype(float))
    nb = ns - nc
    w_sum = np.bincount(sid, weights=rank * g)
    tie_sid = sid[np.flatnonzero(t_new)]
    tie_term = np.bincount(tie_sid, weights=tie_cnt**3 - tie_cnt, minlength=ns.size)
    use = (nb > 0) & (nc > 0)
    ns, nc, nb, w_sum, tie_term = ns[use], nc[use], nb[use], w_sum[use], tie_term[use]
    expected = nc * (ns + 1) / 2
    var = nb * nc / 12.0 * ((ns + 1) - tie_term / (ns * (ns - 1)))
    wt = 1.0 / (ns + 1)
    t = float(np.sum(wt * (w_sum - expected)))
    var_t = float(np.sum(wt * wt * var))
    u = w_sum - nc * (nc + 1) / 2
    ws = nb * nc / (ns + 1)
    if ws.sum() <= 0:
        return RankTest(float("nan"), 1.0, float("nan"), float("nan"), nb_tot, nc_tot)
    delta = float((np.sum(2 * u / (ns + 1)) - ws.sum()) / ws.sum())
    if var_t <= 0:
        return RankTest(0.0, 1.0, delta, 0.0, nb_tot, nc_tot)
    z = t / math.sqrt(var_t)
    return RankTest(z, float(2 * sps.norm.sf(abs(z))), delta, 2 * math.sqrt(var_t) / float(ws.sum()), nb_tot, nc_tot)


# --------------------------------------------------------------------------- tables


def chi2_table(table, min_expected: float = 5.0) -> tuple[float, int, float]:
    """Chi-square test of homogeneity on a (categories x 2) count table.

    Rows whose expected count is below ``min_expected`` in either column are
    pooled into one "other" row first so the asymptotics hold. Returns
    ``(chi2, dof, p)``; p = 1 when fewer than two rows remain.
    """
    t = np.asarray(table, dtype=float)
    t = t[t.sum(axis=1) > 0]
    if t.shape[0] < 2 or (t.sum(axis=0) == 0).any():
        return 0.0, 0, 1.0
    col = t.sum(axis=0) / t.sum()
    exp = t.sum(axis=1, keepdims=True) * col
    small = (exp < min_expected).any(axis=1)
    if small.any():
        t = np.vstack([t[~small], t[small].sum(axis=0, keepdims=True)])
        t = t[t.sum(axis=1) > 0]
    if t.shape[0] < 2:
        return 0.0, 0, 1.0
    res = sps.chi2_contingency(t, correction=False)
    return float(res.statistic), int(res.dof), float(res.pvalue)


def total_variation(pb, pc) -> float:
    """Total variation distance between two share vectors (0..1)."""
    return float(0.5 * np.abs(np.asarray(pc, float) - np.asarray(pb, float)).sum())


# --------------------------------------------------------------------------- change points


def changepoint(y, min_index: int = 1) -> int | None:
    """Index of the first element of the new regime for the single mean shift that best splits ``y``.

    CUSUM / likelihood-ratio scan for one change in mean (for 0/1 data this is
    the binomial change-point statistic). Only splits with the new regime
    starting at ``min_index`` or later are considered (the engine passes the
    first current-window element: a change is dated inside the current
    window, a step at the boundary gets the window start). Returns None for
    fewer than 8 points.
    """
    y = np.asarray(y, dtype=float)
    n = y.size
    if n < 8:
        return None
    s = np.cumsum(y)[:-1]
    k = np.arange(1, n, dtype=float)
    ybar = y.mean()
    stat = (s - k * ybar) ** 2 / (k * (n - k) / n)
    lo = min(max(min_index, 1), n - 1) - 1
    return int(np.argmax(stat[lo:])) + lo + 1


# --------------------------------------------------------------------------- embeddings


def sq_dists(x: np.ndarray) -> np.ndarray:
    """Pairwise squared Euclidean distances (n x n)."""
    sq = np.einsum("ij,ij->i", x, x)
    return np.maximum(sq[:, None] + sq[None, :] - 2.0 * (x @ x.T), 0.0)


def median_gamma(d2: np.ndarray) -> float:
    """RBF kernel parameter from the median heuristic: gamma = 1 / median pairwise squared distance."""
    iu = np.triu_indices(d2.shape[0], k=1)
    med = float(np.median(d2[iu])) if iu[0].size else 0.0
    return 1.0 / med if med > 0 else 1.0


def stratified_permutations(labels: np.ndarray, strata: np.ndarray | None, n_perm: int, rng) -> np.ndarray:
    """``n_perm`` relabelings that shuffle labels only within strata (rows = permutations)."""
    labels = np.asarray(labels)
    n = labels.size
    s = np.zeros(n, dtype=np.int64) if strata is None else np.asarray(strata)
    base = np.argsort(s, kind="stable")
    out = np.empty((n_perm, n), dtype=labels.dtype)
    for i in range(n_perm):
        order = np.lexsort((rng.random(n), s))  # same grouping, random order inside each stratum
        out[i, order] = labels[base]
    return out


def mmd_permutation_test(x: np.ndarray, is_current, strata=None, n_perm: int = 200, rng=None) -> tuple[float, float]:
    """MMD^2 two-sample permutation test with an RBF kernel (median heuristic bandwidth).

    Permutations shuffle window labels within ``strata`` (all rows when None),
    so under "same distribution within each stratum" the test is exact even
    when strata shares differ between windows. Returns ``(mmd2, p)`` with the
    biased (V-statistic) MMD^2 and p = (1 + #perm >= observed) / (1 + n_perm).
    """
    rng = np.random.default_rng(0) if rng is None else rng
    x = np.asarray(x, dtype=np.float64)
    g = np.asarray(is_current, dtype=bool)
    nb, nc = int((~g).sum()), int(g.sum())
    if nb < 2 or nc < 2:
        return float("nan"), 1.0
    d2 = sq_dists(x)
    k = np.exp(-median_gamma(d2) * d2)
    del d2
    perms = stratified_permutations(g, strata, n_perm, rng)
    labels = np.vstack([g[None, :], perms]).astype(bool)
    a = np.where(labels, 1.0 / nc, -1.0 / nb).T  # (n, P+1)
    stat = np.einsum("ij,ij->j", a, k @ a)
    obs = float(stat[0])
    p = (1.0 + float(np.sum(stat[1:] >= obs - 1e-12))) / (1.0 + n_perm)
    return obs, p


@dataclass(frozen=True)
class C2ST:
    """Classifier two-sample test result (held-out, cross-fitted)."""

    auc: float
    p: float
    scores: np.ndarray  # held-out decision scores, aligned with the input rows


def classifier_two_sample_test(x: np.ndarray, is_current, strata=None, folds: int = 2, rng=None) -> C2ST:
    """Cross-fitted logistic-regression two-sample test.

    Each row gets a held-out score from a model trained on the other folds.
    Within a (fold, stratum) cell those scores are exchangeable between the
    windows under the null, so a van Elteren rank test per fold (stratified
    by ``strata``) is exact; the per-fold z statistics are averaged (valid
    under any correlation between folds) for a one-sided p-value without a
    fixed AUC threshold. The reported AUC is the stratified held-out AUC.
    """
    from sklearn.linear_model import LogisticRegression

    rng = np.random.default_rng(0) if rng is None else rng
    x = np.asarray(x, dtype=np.float64)
    g = np.asarray(is_current, dtype=bool)
    n = g.size
    if (~g).sum() < folds or g.sum() < folds:
        return C2ST(float("nan"), 1.0, np.zeros(n))
    fold = np.empty(n, dtype=np.int64)
    for cls in (False, True):  # stratified fold assignment
        idx = np.flatnonzero(g == cls)
        fold[idx] = rng.permutation(np.arange(idx.size) % folds)
    scores = np.zeros(n)
    for f in range(folds):
        tr, te = fold != f, fold == f
        clf = LogisticRegression(C=1.0, max_iter=300, class_weight="balanced")
        clf.fit(x[tr], g[tr])
        scores[te] = clf.decision_function(x[te])
    s = fold if strata is None else np.asarray(strata, dtype=np.int64) * folds + fold
    auc = stratified_rank_test(scores, g, s).auc
    # Each fold's z is exactly N(0,1) under the null, but the folds' z are positively correlated (each
    # model is scored on the data the other was trained on), so summing them would be anti-conservative.
    # Their mean has variance <= 1 whatever the correlation: a valid, slightly conservative test.
    zs = []
    for f in range(folds):
        te = fold == f
        rt = stratified_rank_test(scores[te], g[te], None if strata is None else np.asarray(strata)[te])
        if math.isfinite(rt.z):
            zs.append(rt.z)
    p = float(sps.norm.sf(np.mean(zs))) if zs else 1.0
    return C2ST(auc, p, scores)


def bonferroni_min(*pvalues: float) -> float:
    """Combine p-values from tests of the same null: min(p) times the number of tests, capped at 1."""
    ps = [p for p in pvalues if p is not None and math.isfinite(p)]
    if not ps:
        return 1.0
    return float(min(1.0, min(ps) * len(ps)))


def auc_se(auc: float, nb: int, nc: int) -> float:
    """Hanley-McNeil standard error of an AUC."""
    if nb <= 0 or nc <= 0 or not math.isfinite(auc):
        return float("nan")
    q1 = auc / (2 - auc)
    q2 = 2 * auc * auc / (1 + auc)
    var = (auc * (1 - auc) + (nc - 1) * (q1 - auc * auc) + (nb - 1) * (q2 - auc * auc)) / (nb * nc)
    return math.sqrt(max(var, 0.0))


def signed_rank_p(d) -> float:
    """One-sided Wilcoxon signed-rank p-value for "differences tend to be negative"."""
    d = np.asarray(d, dtype=float)
    d = d[np.isfinite(d) & (d != 0)]
    if d.size < 5:
        return 1.0
    return float(sps.wilcoxon(d, alternative="less").pvalue)


def median_ratio_ci(b, c, alpha: float = 0.05, n_resamples: int = 1000, rng=None) -> tuple[float, float, float]:
    """Ratio of medians median(c) / median(b) with a percentile bootstrap interval (each sample resampled alone).

    NaN when either sample is empty or the baseline median is not positive;
    resamples with a non-positive baseline median are dropped.
    """
    b = np.asarray(b, dtype=float)
    c = np.asarray(c, dtype=float)
    b, c = b[np.isfinite(b)], c[np.isfinite(c)]
    nan = float("nan")
    if b.size == 0 or c.size == 0 or np.median(b) <= 0:
        return nan, nan, nan
    rng = rng if rng is not None else np.random.default_rng(0)

    def medians(x: np.ndarray) -> np.ndarray:
        # resampled in blocks: memory stays ~block x n, whatever n_resamples is
        block = max(1, min(n_resamples, 2_000_000 // x.size))
        return np.concatenate([
            np.median(x[rng.integers(0, x.size, (min(block, n_resamples - i), x.size))], axis=1)
            for i in range(0, n_resamples, block)
        ])

    mb, mc = medians(b), medians(c)
    ok = mb > 0
    ratios = mc[ok] / mb[ok]
    if ratios.size == 0:
        return nan, nan, nan
    lo, hi = np.quantile(ratios, [alpha / 2, 1 - alpha / 2])
    return float(np.median(c) / np.median(b)), float(lo), float(hi)
