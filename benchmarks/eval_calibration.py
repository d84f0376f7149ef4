"""Calibration of the task-eval regression test (tracelens.evals.stats.compare_paired): false alarms and power.

One command, from the repository root::

    PYTHONPATH=src .venv/bin/python benchmarks/eval_calibration.py [--runs 1000] [--seed 0]

Each simulated run builds a fresh suite of ``cases`` cases whose true pass probabilities are drawn from
Beta(mean * k, (1 - mean) * k) (mean 0.8: cases differ in difficulty, and the smaller the concentration ``k``
the more each case passes or fails consistently); the candidate's probability for a case is the baseline's
minus ``drop``, clipped at 0. Baseline and candidate are each run ``repeats`` times per case, independently,
and ``compare_paired`` gives a verdict. The table reports the share of runs with the verdict "regression":
with ``drop = 0`` it is the false-alarm rate (the test is built for at most alpha / 2 = 2.5%), otherwise the
detection rate (power). ``retest flips`` is how often one case changes outcome between two runs of the same
target, 2 E[p (1 - p)], a figure to compare with a real suite's flakiness.

A second table checks ``pass_rate``: how often its 95% interval covers the true suite pass rate (0.8) on the same
simulated suites, next to a plain Wilson interval that takes every repeat as independent.

Results are printed as a Markdown table (stdout); progress goes to stderr. ``tests/test_eval_stats.py`` runs the
same simulations (``regression_share``, ``interval_coverage``) with fewer runs.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
try:
    import tracelens  # noqa: F401
except ImportError:  # running from a checkout without an installed package
    sys.path.insert(0, str(ROOT / "src"))

from tracelens.analysis.stats import wilson  # noqa: E402
from tracelens.evals.stats import compare_paired, pass_rate  # noqa: E402

SCENARIOS = [  # (cases, repeats, drop)
    (200, 1, 0.0), (200, 1, 0.05), (200, 1, 0.10),
    (200, 3, 0.0), (200, 3, 0.05), (200, 3, 0.10),
    (100, 1, 0.0), (100, 1, 0.05), (100, 1, 0.10),
    (100, 3, 0.0), (100, 3, 0.05), (100, 3, 0.10),
]


def regression_share(cases: int, repeats: int, drop: float, *, runs: int = 200, seed: int = 0, mean: float = 0.8,
                     concentration: float = 1.0, n_resamples: int = 2000) -> float:
    """Share of ``runs`` simulated baseline/candidate pairs that ``compare_paired`` calls a regression."""
    rng = np.random.default_rng(seed)
    ids = [f"case-{i:04d}" for i in range(cases)]
    p = rng.beta(mean * concentration, (1 - mean) * concentration, size=(runs, cases))
    q = np.clip(p - drop, 0.0, 1.0)
    base = (rng.random((runs, cases, repeats)) < p[..., None]).tolist()
    cand = (rng.random((runs, cases, repeats)) < q[..., None]).tolist()
    hits = 0
    for r in range(runs):
        res = compare_paired(dict(zip(ids, base[r], strict=True)), dict(zip(ids, cand[r], strict=True)), seed=r,
                             n_resamples=n_resamples)
        hits += res.verdict == "regression"
    return hits / runs


def interval_coverage(cases: int, repeats: int, *, runs: int = 1000, seed: int = 0, mean: float = 0.8,
                      concentration: float = 1.0) -> tuple[float, float]:
    """How often ``pass_rate``'s 95% interval covers the suite's true pass rate ``mean``, next to the coverage of a
    plain Wilson interval that counts every repeat as an independent observation."""
    rng = np.random.default_rng(seed)
    ids = [f"case-{i:04d}" for i in range(cases)]
    p = rng.beta(mean * concentration, (1 - mean) * concentration, size=(runs, cases))
    outcomes = (rng.random((runs, cases, repeats)) < p[..., None]).tolist()
    ours = naive = 0
    for r in range(runs):
        rate = pass_rate(dict(zip(ids, outcomes[r], strict=True)))
        ours += rate.lo <= mean <= rate.hi
        lo, hi = wilson(rate.n_passed, rate.n_graded)
        naive += float(lo) <= mean <= float(hi)
    return ours / runs, naive / runs


def main(argv: list[str] | None = None) -> int:
    """Print the false-alarm and detection rates of every scenario at each concentration."""
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--runs", type=int, default=1000, help="simulated runs per scenario (default 1000)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--concentration", type=float, nargs="+", default=[0.5, 1.0, 2.0, 10.0],
                    help="Beta concentrations k of the per-case pass probabilities (default 0.5 1 2 10)")
    ap.add_argument("--resamples", type=int, default=2000, help="sign flips / bootstrap resamples (default 2000)")
    args = ap.parse_args(argv)
    print(f"{args.runs} runs per scenario, seed {args.seed}, mean pass rate 0.8, alpha 0.05, "
          f"{args.resamples} resamples\n")
    print("| k | retest flips | cases | repeats | drop | test | regression verdicts |")
    print("|---|---|---|---|---|---|---|")
    for k in args.concentration:
        flips = 2 * 0.16 * k / (k + 1)  # 2 E[p(1-p)] for Beta with mean 0.8: 2 (0.16 - 0.16 / (k + 1))
        for cases, repeats, drop in SCENARIOS:
            t0 = time.perf_counter()
            share = regression_share(cases, repeats, drop, runs=args.runs, seed=args.seed, concentration=k,
                                     n_resamples=args.resamples)
            what = "false alarms" if drop == 0 else "detected"
            test = "exact McNemar" if repeats == 1 else "sign-flip"
            print(f"| {k:g} | {flips:.0%} | {cases} | {repeats} | {drop * 100:.0f} pts | {test} | "
                  f"{share:.1%} {what} |", flush=True)
            print(f"k={k:g} {cases}x{repeats} drop={drop}: {time.perf_counter() - t0:.1f}s", file=sys.stderr)
    print("\n| k | cases | repeats | pass_rate interval covers | Wilson over all repeats covers |")
    print("|---|---|---|---|---|")
    for k in args.concentration:
        for cases, repeats in ((200, 1), (200, 3), (50, 3)):
            ours, naive = interval_coverage(cases, repeats, runs=args.runs, seed=args.seed, concentration=k)
            print(f"| {k:g} | {cases} | {repeats} | {ours:.1%} | {naive:.1%} |", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
