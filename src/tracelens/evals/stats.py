"""Did it regress? Pass/fail statistics for task evals: pass rates with intervals, paired comparisons, groups,
leaderboards and trends.

Contract:

* Pure functions over plain data; no store, no I/O, deterministic (every randomised step draws from
  ``numpy.random.default_rng(seed)``). Results are frozen dataclasses whose ``to_dict()`` is JSON-ready: no NaN or
  infinity anywhere (a quantity that does not exist is ``None``), case ids sorted.
* The input of every function is the outcomes of one run: a mapping ``case_id -> list of repeat outcomes``, each
  ``True`` (pass), ``False`` (fail) or ``None`` (error: the target gave no answer). The runner's words ``"pass"``,
  ``"fail"`` and ``"error"`` (:data:`tracelens.evals.model.OUTCOMES`) are accepted too, and a bare outcome counts as
  one repeat. Errors are counted and reported (``n_errors``, ``error_rate``) but never enter a pass rate: an
  outage is not a wrong answer.
* The case is the unit. Repeats of one case are correlated (an easy case passes every time), so with several
  repeats per case every interval and test treats the per-case pass rate as the observation:

  - :func:`pass_rate`: one graded repeat per case -> Wilson score interval on passes / graded repeats. More than
    one -> the same Wilson interval on the *effective* sample size ``graded / design effect``, where the design
    effect is the cluster-robust (ratio-estimator) variance of the pooled rate over the binomial variance,
    floored at 1. When it cannot be estimated (all pass, all fail, or a single case) the effective size is the
    number of cases, the conservative end.
  - :func:`compare_paired`: cases graded on both sides are paired; the others are reported as dropped, by reason.
    With one graded repeat per case on both sides: exact McNemar test (two-sided binomial test of the fail->pass
    count among the discordant pairs, p = 1/2), the one-sided p for "candidate worse", and the Agresti-Min
    interval of the paired difference. Otherwise: sign-flip permutation test of the per-case rate differences
    (all 2**m sign patterns when at most :data:`EXACT_SIGN_FLIPS` cases differ, else ``n_resamples`` Monte-Carlo
    flips, p = (1 + hits) / (1 + n_resamples)) and a percentile bootstrap interval over cases of the mean
    difference. The test is exact when both sides ran a case equally often (its difference is then symmetric
    about 0 under no change) and asymptotically valid otherwise (1 repeat against 3).
* Verdicts: fewer than :data:`MIN_PAIRED_CASES` paired cases -> ``"not enough cases"``; otherwise the two-sided
  p-value decides at ``alpha`` and the sign of the difference names it (``"regression"`` / ``"improvement"``),
  else ``"no significant change"`` (also when no case changed: p = 1). A regression verdict is thus wrong at most
  ``alpha / 2`` of the time when nothing changed; ``p_worse`` (one-sided) is reported for callers who gate on it.
  The verdict follows the test, not the interval: near the threshold the Agresti-Min interval (less conservative
  than the exact test) can exclude 0 while the test does not reject.
* Groups (:func:`compare_by_group`): the overall comparison is the primary test; per-tag and per-grader
  comparisons are secondary, and their p-values are adjusted across the groups that have enough cases
  (Benjamini-Hochberg by default: the groups say *where* a change sits, a screening question for which the false
  discovery rate is the right error; ``correction="holm"`` controls the family-wise error instead, for gating a
  release on any single group). Group intervals are not adjusted.
* Differences are always candidate minus baseline (in :func:`leaderboard`: target minus reference), in pass-rate
  units (0.1 = ten points).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import numpy as np
from scipy import stats as sps

from tracelens.analysis.jsonform import JsonRecord, iso
from tracelens.analysis.stats import benjamini_hochberg, paired_diff_ci, wilson

MIN_PAIRED_CASES = 10
"""Fewer paired cases than this give the verdict "not enough cases", whatever the p-value: a verdict on so few
cases would speak for a handful of tasks, not for the target."""

EXACT_SIGN_FLIPS = 16
"""Up to this many cases with a non-zero difference the sign-flip test enumerates every sign pattern (exact)."""

N_RESAMPLES = 10_000
"""Default Monte-Carlo sign flips and bootstrap resamples."""

VERDICTS = ("regression", "improvement", "no significant change", "not enough cases")
CORRECTIONS = ("bh", "holm")

Outcome = bool | None | str
Outcomes = Mapping[str, Sequence[Outcome] | Outcome]

_WORDS = {"pass": True, "fail": False, "error": None}
_CHUNK = 2_000_000  # resampling matrices are built this many cells at a time, whatever the number of cases
_TOL = 1e-9  # per-case differences are ratios of small integers: sums equal in exact arithmetic may differ by ulps


# --------------------------------------------------------------------------- results


@dataclass(frozen=True)
class RateCI(JsonRecord):
    """A pass rate with its interval; ``rate``/``lo``/``hi`` are None when no repeat was graded.

    ``method`` is ``"wilson"`` (one graded repeat per case), ``"wilson, design effect"`` (several: the interval
    uses ``n_effective``) or ``"none"``. ``n_cases`` counts every case given, ``n_graded_cases`` those with at
    least one graded repeat; ``n_repeats`` counts every repeat, errors included.
    """

    rate: float | None
    lo: float | None
    hi: float | None
    method: str
    n_cases: int
    n_graded_cases: int
    n_repeats: int
    n_graded: int
    n_passed: int
    n_errors: int
    error_rate: float | None
    design_effect: float | None
    n_effective: float | None
    alpha: float


@dataclass(frozen=True)
class PairedComparison(JsonRecord):
    """Candidate against baseline on the cases graded in both (see the module docstring for the tests).

    ``delta`` = candidate rate - baseline rate over the paired cases (mean of per-case rate differences), with
    ``delta_lo``/``delta_hi``. ``p_value`` is two-sided, ``p_worse`` one-sided for "candidate worse".
    ``pass_to_fail`` / ``fail_to_pass`` list the cases whose pass rate fell / rose (with one repeat: the cases that
    flipped). ``dropped`` maps a reason (``"baseline only"``, ``"candidate only"``, ``"no graded repeat in
    baseline"``, ``"no graded repeat in candidate"``, ``"no graded repeat in either"``) to the case ids left out.
    ``n_resamples`` is the number of bootstrap resamples (and Monte-Carlo sign flips unless the test was exact);
    None for McNemar, which draws nothing.
    """

    verdict: str
    reason: str
    method: str
    n_paired: int
    n_dropped: int
    baseline_rate: float | None
    candidate_rate: float | None
    delta: float | None
    delta_lo: float | None
    delta_hi: float | None
    p_value: float | None
    p_worse: float | None
    n_pass_to_fail: int
    n_fail_to_pass: int
    pass_to_fail: list[str]
    fail_to_pass: list[str]
    dropped: dict[str, list[str]]
    baseline_errors: int
    candidate_errors: int
    alpha: float
    n_resamples: int | None
    seed: int


@dataclass(frozen=True)
class GroupComparison(JsonRecord):
    """One group's comparison: ``kind`` is ``"tag"`` or ``"grader"``; ``verdict`` is decided on ``p_adjusted``
    (None, with verdict "not enough cases", for a group too small to be tested); ``comparison.verdict`` is the
    unadjusted one, kept for reference."""

    group: str
    kind: str
    verdict: str
    p_adjusted: float | None
    comparison: PairedComparison


@dataclass(frozen=True)
class GroupReport(JsonRecord):
    """The primary (overall) comparison and the secondary per-group ones, adjusted with ``correction``."""

    overall: PairedComparison
    correction: str
    n_tested: int
    groups: list[GroupComparison]


@dataclass(frozen=True)
class LeaderboardEntry(JsonRecord):
    """One target: rank by pass rate, the rate with its interval, and the paired difference against the reference
    (None for the reference itself). ``tied`` is True when the paired interval covers 0, None when it is unknown."""

    rank: int
    target: str
    rate: RateCI
    is_reference: bool
    tied: bool | None
    vs_reference: PairedComparison | None


@dataclass(frozen=True)
class Leaderboard(JsonRecord):
    """Targets ranked by measured pass rate, each compared with ``reference`` on the cases both ran."""

    reference: str | None
    entries: list[LeaderboardEntry] = field(default_factory=list)


@dataclass(frozen=True)
class TrendPoint(JsonRecord):
    """One run of a target over time: its pass rate, and the paired comparison with the previous run
    (None for the first); ``regressed`` is True when that comparison's verdict is "regression"."""

    label: str
    rate: RateCI
    regressed: bool
    vs_previous: PairedComparison | None


# --------------------------------------------------------------------------- tallies


@dataclass(frozen=True)
class _Tally:
    ids: list[str]
    passed: np.ndarray  # per case, int
    graded: np.ndarray  # per case, int (pass + fail)
    errors: np.ndarray  # per case, int


def _outcome(v: Any) -> bool | None:
    if v is None:
        return None
    if isinstance(v, str):
        try:
            return _WORDS[v.strip().lower()]
        except KeyError:
            raise ValueError(f"unknown outcome {v!r}: use True/False/None or one of pass, fail, error") from None
    if isinstance(v, float) and math.isnan(v):
        return None
    return bool(v)


def _tally(outcomes: Outcomes) -> _Tally:
    ids = sorted(str(k) for k in outcomes)
    by_id = {str(k): v for k, v in outcomes.items()}
    passed = np.zeros(len(ids), dtype=np.int64)
    graded = np.zeros(len(ids), dtype=np.int64)
    errors = np.zeros(len(ids), dtype=np.int64)
    for i, case in enumerate(ids):
        reps = by_id[case]
        if reps is None or isinstance(reps, str | bool) or not isinstance(reps, Iterable):
            reps = [reps]
        for r in reps:
            v = _outcome(r)
            if v is None:
                errors[i] += 1
            else:
                graded[i] += 1
                passed[i] += int(v)
    return _Tally(ids, passed, graded, errors)


def _f(x: float | None) -> float | None:
    """A float, or None when missing or not finite (so no NaN ever reaches a result)."""
    if x is None:
        return None
    x = float(x)
    return x if math.isfinite(x) else None


# --------------------------------------------------------------------------- pass rate


def _rate_ci(t: _Tally, alpha: float) -> RateCI:
    n_rep = int(t.graded.sum() + t.errors.sum())
    n_err = int(t.errors.sum())
    err_rate = n_err / n_rep if n_rep else None
    g = t.graded[t.graded > 0]
    x = t.passed[t.graded > 0]
    k, n, s = int(g.size), int(g.sum()), int(x.sum())
    common = dict(n_cases=len(t.ids), n_graded_cases=k, n_repeats=n_rep, n_graded=n, n_passed=s, n_errors=n_err,
                  error_rate=err_rate, alpha=alpha)
    if n == 0:
        return RateCI(None, None, None, "none", design_effect=None, n_effective=None, **common)
    p = s / n
    if int(g.max()) == 1:
        lo, hi = wilson(s, n, alpha)
        return RateCI(p, _f(lo), _f(hi), "wilson", design_effect=1.0, n_effective=float(n), **common)
    if k < 2 or s in (0, n):
        # No spread to measure: count each case once (the design effect is at most the cluster size).
        n_eff = float(k)
    else:
        var_cluster = float(np.sum((x - p * g) ** 2)) / (n * n) * k / (k - 1)
        var_binom = p * (1 - p) / n
        n_eff = n / max(1.0, var_cluster / var_binom)
    lo, hi = wilson(p * n_eff, n_eff, alpha)
    return RateCI(p, _f(lo), _f(hi), "wilson, design effect", design_effect=n / n_eff, n_effective=n_eff, **common)


def pass_rate(outcomes: Outcomes, *, alpha: float = 0.05) -> RateCI:
    """Pass rate over all graded repeats with a ``1 - alpha`` interval: Wilson with one repeat per case, Wilson on the
    design-effect-adjusted sample size with several (the case is the unit); errors are counted apart."""
    return _rate_ci(_tally(outcomes), alpha)


# --------------------------------------------------------------------------- paired comparison


def _chunks(total: int, width: int):
    rows = max(1, _CHUNK // max(width, 1))
    for start in range(0, total, rows):
        yield min(rows, total - start)


def _sign_flip(d: np.ndarray, n_resamples: int, rng: np.random.Generator) -> tuple[float, float, bool]:
    """(two-sided p, one-sided p for a negative mean, exact?) of the sign-flip test of the mean of ``d``."""
    d = d[d != 0]
    m = d.size
    if m == 0:
        return 1.0, 1.0, True
    obs = float(d.sum())
    tol = _TOL * max(1.0, float(np.abs(d).sum()))
    if m <= EXACT_SIGN_FLIPS:
        bits = (np.arange(2**m)[:, None] >> np.arange(m)) & 1
        sums = (1 - 2 * bits) @ d
        return (float(np.mean(np.abs(sums) >= abs(obs) - tol)), float(np.mean(sums <= obs + tol)), True)
    two = low = 0
    for rows in _chunks(n_resamples, m):
        sums = np.where(rng.random((rows, m)) < 0.5, -1.0, 1.0) @ d
        two += int(np.sum(np.abs(sums) >= abs(obs) - tol))
        low += int(np.sum(sums <= obs + tol))
    return (1 + two) / (1 + n_resamples), (1 + low) / (1 + n_resamples), False


def _bootstrap_ci(d: np.ndarray, alpha: float, n_resamples: int, rng: np.random.Generator) -> tuple[float, float]:
    """Percentile bootstrap interval of the mean of ``d``, resampling cases."""
    k = d.size
    if k == 0:
        return math.nan, math.nan
    means = np.empty(n_resamples)
    done = 0
    for rows in _chunks(n_resamples, k):
        means[done:done + rows] = d[rng.integers(0, k, size=(rows, k))].mean(axis=1)
        done += rows
    lo, hi = np.quantile(means, [alpha / 2, 1 - alpha / 2])
    return float(lo), float(hi)


def mcnemar_exact(pass_to_fail: int, fail_to_pass: int) -> tuple[float, float]:
    """Exact McNemar test on the discordant pairs: (two-sided p, one-sided p for "candidate worse").

    Under no change each discordant pair is equally likely to go either way, so ``fail_to_pass`` is binomial
    (discordant, 1/2); the two-sided p doubles the smaller tail (capped at 1), as ``binomtest`` does at p = 1/2.
    """
    n = pass_to_fail + fail_to_pass
    if n == 0:
        return 1.0, 1.0
    two = min(1.0, 2.0 * float(sps.binom.cdf(min(pass_to_fail, fail_to_pass), n, 0.5)))
    return two, float(sps.binom.cdf(fail_to_pass, n, 0.5))


def _verdict(n_paired: int, delta: float | None, p: float | None, alpha: float) -> tuple[str, str]:
    if n_paired < MIN_PAIRED_CASES:
        return "not enough cases", f"{n_paired} paired case(s); at least {MIN_PAIRED_CASES} are needed"
    if p is None or delta is None:
        return "not enough cases", "no test"
    if p <= alpha and delta != 0:
        word = "regression" if delta < 0 else "improvement"
        return word, f"p = {p:.3g} <= {alpha:g}; candidate {abs(delta) * 100:.1f} points {'lower' if delta < 0 else 'higher'}"
    if delta == 0 and p >= 1.0:
        return "no significant change", "no paired case changed its pass rate"
    return "no significant change", f"p = {p:.3g} > {alpha:g}"


def _pair(base: _Tally, cand: _Tally) -> tuple[list[str], np.ndarray, np.ndarray, np.ndarray, np.ndarray, dict]:
    bi = {c: i for i, c in enumerate(base.ids)}
    ci = {c: i for i, c in enumerate(cand.ids)}
    dropped: dict[str, list[str]] = {}
    ids: list[str] = []
    for case in sorted(set(bi) | set(ci)):
        if case not in ci:
            reason = "baseline only"
        elif case not in bi:
            reason = "candidate only"
        else:
            gb, gc = base.graded[bi[case]] > 0, cand.graded[ci[case]] > 0
            if gb and gc:
                ids.append(case)
                continue
            reason = ("no graded repeat in either" if not gb and not gc
                      else "no graded repeat in baseline" if not gb else "no graded repeat in candidate")
        dropped.setdefault(reason, []).append(case)
    b = np.array([bi[c] for c in ids], dtype=np.int64)
    c = np.array([ci[c] for c in ids], dtype=np.int64)
    return ids, base.passed[b], base.graded[b], cand.passed[c], cand.graded[c], dropped


def _compare(base: _Tally, cand: _Tally, alpha: float, seed: int, n_resamples: int) -> PairedComparison:
    ids, xb, nb, xc, nc, dropped = _pair(base, cand)
    k = len(ids)
    rb = xb / np.maximum(nb, 1)
    rc = xc / np.maximum(nc, 1)
    d = rc - rb
    worse = [ids[i] for i in np.flatnonzero(d < 0)]
    better = [ids[i] for i in np.flatnonzero(d > 0)]
    resamples: int | None = None
    if k == 0:
        method, delta, lo, hi, p, p_worse = "none", None, None, None, None, None
    elif int(nb.max()) == 1 and int(nc.max()) == 1:
        method = "exact McNemar"
        p, p_worse = mcnemar_exact(len(worse), len(better))
        delta, lo, hi = paired_diff_ci(len(worse), len(better), k, alpha)
    else:
        rng = np.random.default_rng(seed)
        p, p_worse, exact = _sign_flip(d, n_resamples, rng)
        lo, hi = _bootstrap_ci(d, alpha, n_resamples, rng)
        delta = float(d.mean())
        resamples = n_resamples
        method = "sign-flip permutation (exact)" if exact else "sign-flip permutation (Monte Carlo)"
    verdict, reason = _verdict(k, _f(delta), _f(p), alpha)
    return PairedComparison(
        verdict=verdict, reason=reason, method=method, n_paired=k, n_dropped=sum(len(v) for v in dropped.values()),
        baseline_rate=_f(rb.mean()) if k else None, candidate_rate=_f(rc.mean()) if k else None,
        delta=_f(delta), delta_lo=_f(lo), delta_hi=_f(hi), p_value=_f(p), p_worse=_f(p_worse),
        n_pass_to_fail=len(worse), n_fail_to_pass=len(better), pass_to_fail=worse, fail_to_pass=better,
        dropped=dropped, baseline_errors=int(base.errors.sum()), candidate_errors=int(cand.errors.sum()),
        alpha=alpha, n_resamples=resamples, seed=seed)


def compare_paired(baseline: Outcomes, candidate: Outcomes, *, alpha: float = 0.05, seed: int = 0,
                   n_resamples: int = N_RESAMPLES) -> PairedComparison:
    """Did the candidate regress against the baseline? Paired per case: exact McNemar with one repeat per case on
    both sides, else a sign-flip permutation test with a bootstrap interval (see the module docstring)."""
    return _compare(_tally(baseline), _tally(candidate), alpha, seed, n_resamples)


# --------------------------------------------------------------------------- groups


def holm(pvalues) -> np.ndarray:
    """Holm step-down adjusted p-values (family-wise error); entries that are None/NaN stay NaN and do not count."""
    p = np.asarray([math.nan if v is None else v for v in pvalues], dtype=float)
    out = np.full_like(p, math.nan)
    idx = np.flatnonzero(np.isfinite(p))
    if idx.size:
        ranked = idx[np.argsort(p[idx], kind="stable")]  # smallest first: it is multiplied by the family size
        steps = p[ranked] * np.arange(idx.size, 0, -1)
        out[ranked] = np.minimum(np.maximum.accumulate(steps), 1.0)
    return out


def _subset(t: _Tally, keep: set[str]) -> _Tally:
    idx = [i for i, c in enumerate(t.ids) if c in keep]
    return _Tally([t.ids[i] for i in idx], t.passed[idx], t.graded[idx], t.errors[idx])


def compare_by_group(baseline: Outcomes, candidate: Outcomes, groups: Mapping[str, Iterable[str]] | None = None, *,
                     graders: Mapping[str, tuple[Outcomes, Outcomes]] | None = None, alpha: float = 0.05,
                     seed: int = 0, correction: str = "bh", n_resamples: int = N_RESAMPLES) -> GroupReport:
    """The overall comparison (primary) plus one per group (secondary, adjusted for multiplicity).

    ``groups`` maps a case id to its group labels (e.g. ``["task=refund", "app=support"]``); a case may sit in
    several groups. ``graders`` maps a grader name to its own ``(baseline, candidate)`` outcomes (that grader's
    verdict per repeat), compared as group ``"grader=NAME"``. Groups with fewer than :data:`MIN_PAIRED_CASES`
    paired cases are reported but left out of the family. ``correction`` is ``"bh"`` (Benjamini-Hochberg, false
    discovery rate) or ``"holm"`` (family-wise error).
    """
    if correction not in CORRECTIONS:
        raise ValueError(f"correction must be one of {', '.join(CORRECTIONS)}, not {correction!r}")
    base, cand = _tally(baseline), _tally(candidate)
    overall = _compare(base, cand, alpha, seed, n_resamples)
    members: dict[str, set[str]] = {}
    for case, labels in (groups or {}).items():
        for label in ([labels] if isinstance(labels, str) else labels):
            members.setdefault(str(label), set()).add(str(case))
    rows: list[tuple[str, str, PairedComparison]] = [
        (label, "tag", _compare(_subset(base, cases), _subset(cand, cases), alpha, seed, n_resamples))
        for label, cases in sorted(members.items())]
    for name, (gb, gc) in sorted((graders or {}).items()):
        rows.append((f"grader={name}", "grader", compare_paired(gb, gc, alpha=alpha, seed=seed,
                                                                 n_resamples=n_resamples)))
    tested = [r[2].p_value if r[2].n_paired >= MIN_PAIRED_CASES else None for r in rows]
    adjusted = (benjamini_hochberg if correction == "bh" else holm)(tested)
    out = []
    for (label, kind, comp), q in zip(rows, adjusted, strict=True):
        q = _f(q)
        if q is None:
            verdict = "not enough cases"
        else:
            verdict = _verdict(comp.n_paired, comp.delta, q, alpha)[0]
        out.append(GroupComparison(label, kind, verdict, q, comp))
    return GroupReport(overall, correction, sum(q is not None for q in tested), out)


# --------------------------------------------------------------------------- leaderboard and trend


def leaderboard(runs: Mapping[str, Outcomes], *, reference: str | None = None, alpha: float = 0.05, seed: int = 0,
                n_resamples: int = N_RESAMPLES) -> Leaderboard:
    """Targets ranked by pass rate (with intervals), each paired against ``reference`` (default: the top-ranked) on
    the cases both ran; a target whose paired interval covers 0 is ``tied`` with the reference."""
    if reference is not None and reference not in runs:
        raise ValueError(f"reference {reference!r} is not among the runs ({', '.join(sorted(runs))})")
    tallies = {name: _tally(o) for name, o in runs.items()}
    rates = {name: _rate_ci(t, alpha) for name, t in tallies.items()}
    order = sorted(rates, key=lambda n: (-(rates[n].rate if rates[n].rate is not None else -1.0), n))
    ref = reference if reference is not None else (order[0] if order else None)
    entries = []
    for rank, name in enumerate(order, 1):
        if name == ref:
            entries.append(LeaderboardEntry(rank, name, rates[name], True, None, None))
            continue
        comp = _compare(tallies[ref], tallies[name], alpha, seed, n_resamples)
        tied = None if comp.delta_lo is None or comp.delta_hi is None else comp.delta_lo <= 0 <= comp.delta_hi
        entries.append(LeaderboardEntry(rank, name, rates[name], False, tied, comp))
    return Leaderboard(ref, entries)


def trend(points: Sequence[tuple[str | datetime, Outcomes]], *, alpha: float = 0.05, seed: int = 0,
          n_resamples: int = N_RESAMPLES) -> list[TrendPoint]:
    """One target's runs in order: each run's pass rate with its interval, flagged ``regressed`` when the paired
    comparison with the previous run says "regression"."""
    out: list[TrendPoint] = []
    prev: _Tally | None = None
    for label, outcomes in points:
        t = _tally(outcomes)
        comp = None if prev is None else _compare(prev, t, alpha, seed, n_resamples)
        text = iso(label) if isinstance(label, datetime) else str(label)
        out.append(TrendPoint(text, _rate_ci(t, alpha), comp is not None and comp.verdict == "regression", comp))
        prev = t
    return out

