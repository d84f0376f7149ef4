"""What stored eval runs say: each run against the previous one, trends, a leaderboard, and upgrade verdicts.

Contract (read only, over ``runner.load_results``):

* ``run_summaries(store, suite, run_ids)``: per run its pass rate with an
  interval, error, refusal and latency figures, cost, and the paired test
  against the previous run *on the same target* (overall, per tag and per
  grader, adjusted for multiplicity: ``tracelens.evals.stats``);
  ``regressed`` is True when the overall test or any adjusted group test
  says "regression".
* ``eval_report(store, suite)``: the latest run of every target (as above),
  each target's trend over its runs, and a leaderboard of the targets' latest
  runs on the cases they share ("route by measured task performance").
* ``upgrade_verdict(store, suite, baseline, candidate)``: the latest run of
  each side (a side is named by its target, e.g. ``anthropic:MODEL``, or by
  the model alone, which also matches ``pinned`` runs whose cases all ran on
  it) compared case by case: ``safe``, ``regressions`` (overall or on named
  tags/graders, with the cases that flipped), ``improvement``, or ``not
  enough cases``.
* ``compare_runs(store, suite, run_id, previous_run_id)``: the same verdict
  for two named runs (default: the latest run against the one before it on
  its target), what `tracelens canary compare` shows.
"""

from __future__ import annotations

import json
import statistics
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import polars as pl

from tracelens.evals.model import Suite
from tracelens.evals.runner import RunInfo, list_runs, load_results, outcomes
from tracelens.evals.stats import (
    GroupReport,
    Leaderboard,
    RateCI,
    TrendPoint,
    compare_by_group,
    leaderboard,
    pass_rate,
    trend,
)


class EvalReportError(ValueError):
    """A report that cannot be made (no runs, an unknown target); the message says what to run."""


@dataclass
class RunSummary:
    """One run: pass rate, errors, refusals, latency, cost, and the test against the target's previous run."""

    run: RunInfo
    rate: RateCI
    refusal_rate: float | None
    latency_p50_ms: float | None
    latency_p95_ms: float | None
    cost_usd: float | None
    previous_run_id: str | None = None
    vs_previous: GroupReport | None = None

    @property
    def regressed(self) -> bool:
        """True when the run is worse than the target's previous run (overall, or an adjusted tag/grader group)."""
        if self.vs_previous is None:
            return False
        return self.vs_previous.overall.verdict == "regression" or any(
            g.verdict == "regression" for g in self.vs_previous.groups)

    @property
    def regressed_groups(self) -> list[str]:
        """The tag/grader groups whose adjusted test says regression."""
        return [g.group for g in self.vs_previous.groups if g.verdict == "regression"] if self.vs_previous else []

    def to_dict(self) -> dict[str, Any]:
        """JSON form."""
        return {"run": self.run.to_dict(), "pass_rate": self.rate.to_dict(), "refusal_rate": self.refusal_rate,
                "latency_p50_ms": self.latency_p50_ms, "latency_p95_ms": self.latency_p95_ms,
                "cost_usd": self.cost_usd, "previous_run_id": self.previous_run_id,
                "vs_previous": self.vs_previous.to_dict() if self.vs_previous else None, "regressed": self.regressed,
                "regressed_groups": self.regressed_groups}


def _groups(df: pl.DataFrame) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    for case_id, tags in df.select("case_id", "tags").unique("case_id").iter_rows():
        out[case_id] = [f"{k}={v}" for k, v in sorted(json.loads(tags or "{}").items())]
    return out


def _grader_outcomes(df: pl.DataFrame) -> dict[str, dict[str, list[bool | None]]]:
    out: dict[str, dict[str, list[bool | None]]] = {}
    for case_id, grades in df.select("case_id", "grades").iter_rows():
        for g in json.loads(grades or "[]"):
            name = g.get("grader") or g.get("type") or "?"
            out.setdefault(name, {}).setdefault(case_id, []).append(g.get("passed"))
    return out


def _compare(df: pl.DataFrame, base_id: str, cand_id: str) -> GroupReport:
    base, cand = df.filter(pl.col("run_id") == base_id), df.filter(pl.col("run_id") == cand_id)
    gb, gc = _grader_outcomes(base), _grader_outcomes(cand)
    graders = {name: (gb[name], gc[name]) for name in sorted(set(gb) & set(gc))}
    if len(graders) == 1:
        graders = {}  # one grader decides the case: its test is the overall test
    groups = _groups(pl.concat([base, cand]))
    counts: dict[str, int] = {}
    for labels in groups.values():
        for label in labels:
            counts[label] = counts.get(label, 0) + 1
    # a tag every case carries (the app of a one-app suite) is the overall test again: leave it out of the family
    groups = {case: [t for t in labels if counts[t] < len(groups)] for case, labels in groups.items()}
    return compare_by_group(outcomes(df, base_id), outcomes(df, cand_id), groups, graders=graders)


def _pct(values: list[float], q: float) -> float | None:
    if not values:
        return None
    if len(values) == 1:
        return values[0]
    return statistics.quantiles(values, n=100, method="inclusive")[int(q) - 1]


def summarise(df: pl.DataFrame, info: RunInfo, previous: RunInfo | None) -> RunSummary:
    """One run's summary from the results frame (which must hold the previous run too, when given)."""
    rows = df.filter(pl.col("run_id") == info.run_id)
    answered = rows.filter(pl.col("outcome") != "error")
    refusals = answered["refusal"].to_list()
    lat = sorted(x for x in answered["latency_ms"].to_list() if x is not None)
    costs = [c for c in rows["cost_usd"].to_list() if c is not None]
    return RunSummary(
        run=info, rate=pass_rate(outcomes(df, info.run_id)),
        refusal_rate=(sum(r in ("partial", "full") for r in refusals) / len(refusals)) if refusals else None,
        latency_p50_ms=_pct(lat, 50), latency_p95_ms=_pct(lat, 95), cost_usd=sum(costs) if costs else None,
        previous_run_id=previous.run_id if previous else None,
        vs_previous=_compare(df, previous.run_id, info.run_id) if previous else None)


def _previous(runs: list[RunInfo], info: RunInfo) -> RunInfo | None:
    same = [r for r in runs if r.target == info.target and r.started_at < info.started_at]
    return same[-1] if same else None


def run_summaries(store_root: str | Path, suite: Suite | str, run_ids: list[str]) -> list[RunSummary]:
    """Summaries of the given runs, each tested against the previous run on its target."""
    name = suite if isinstance(suite, str) else suite.name
    df = load_results(store_root, name)
    runs = list_runs(store_root, name, df)
    by_id = {r.run_id: r for r in runs}
    return [summarise(df, by_id[rid], _previous(runs, by_id[rid])) for rid in run_ids if rid in by_id]


@dataclass
class EvalReport:
    """A suite's runs: the latest per target, each target's trend, and a leaderboard of the latest runs."""

    suite: str
    cases: int
    runs: int
    latest: list[RunSummary] = field(default_factory=list)
    trends: dict[str, list[TrendPoint]] = field(default_factory=dict)
    leaderboard: Leaderboard | None = None

    @property
    def regressed(self) -> bool:
        """True when some target's latest run regressed against its previous run."""
        return any(s.regressed for s in self.latest)

    def to_dict(self) -> dict[str, Any]:
        """JSON form."""
        return {"suite": self.suite, "cases": self.cases, "runs": self.runs, "regressed": self.regressed,
                "latest": [s.to_dict() for s in self.latest],
                "trends": {t: [p.to_dict() for p in pts] for t, pts in self.trends.items()},
                "leaderboard": self.leaderboard.to_dict() if self.leaderboard else None}


def eval_report(store_root: str | Path, suite: Suite) -> EvalReport:
    """The report of every stored run of ``suite`` (``EvalReportError`` when it has none)."""
    df = load_results(store_root, suite.name)
    runs = list_runs(store_root, suite.name, df)
    if not runs:
        raise EvalReportError(f"suite {suite.name!r} has no stored runs: run `tracelens eval run {suite.name}`")
    targets = list(dict.fromkeys(r.target for r in runs))
    latest = {t: [r for r in runs if r.target == t][-1] for t in targets}
    out = EvalReport(suite=suite.name, cases=len(suite.cases), runs=len(runs))
    out.latest = [summarise(df, latest[t], _previous(runs, latest[t])) for t in targets]
    for t in targets:
        mine = [r for r in runs if r.target == t]
        out.trends[t] = trend([(r.started_at, outcomes(df, r.run_id)) for r in mine])
    if len(targets) > 1:
        out.leaderboard = leaderboard({t: outcomes(df, latest[t].run_id) for t in targets})
    return out


# ---------------------------------------------------------------------------------------------- upgrade verdict


@dataclass
class FlippedCase:
    """A case whose pass rate fell (or rose) from baseline to candidate, with what each side answered."""

    case_id: str
    tags: dict[str, str]
    baseline: str
    candidate: str
    baseline_answer: str | None
    candidate_answer: str | None
    failed_graders: list[str]

    def to_dict(self) -> dict[str, Any]:
        """JSON form."""
        return dict(self.__dict__)


@dataclass
class UpgradeVerdict:
    """Baseline against candidate on the suite's shared cases: the verdict, the tests and the flipped cases."""

    suite: str
    baseline: RunSummary
    candidate: RunSummary
    comparison: GroupReport
    verdict: str
    regressed_groups: list[str]
    worse: list[FlippedCase]
    better: list[FlippedCase]

    def to_dict(self) -> dict[str, Any]:
        """JSON form."""
        return {"suite": self.suite, "verdict": self.verdict, "regressed_groups": self.regressed_groups,
                "baseline": self.baseline.to_dict(), "candidate": self.candidate.to_dict(),
                "comparison": self.comparison.to_dict(), "worse": [c.to_dict() for c in self.worse],
                "better": [c.to_dict() for c in self.better]}

    @property
    def headline(self) -> str:
        """One line: the verdict with the paired difference."""
        o = self.comparison.overall
        delta = "" if o.delta is None else f" ({o.delta * 100:+.1f} points, 95% CI {o.delta_lo * 100:+.1f} to " \
            f"{o.delta_hi * 100:+.1f}, {o.n_paired} paired cases)" if o.delta_lo is not None else \
            f" ({o.delta * 100:+.1f} points, {o.n_paired} paired cases)"
        if self.verdict == "regressions":
            where = ", ".join(self.regressed_groups) if self.regressed_groups else "overall"
            return f"regressions on {where}{delta}"
        return self.verdict + delta


def _matches(run: RunInfo, df: pl.DataFrame, side: str) -> bool:
    from tracelens.evals.targets import parse_target

    side = side.split("#", 1)[0]  # a key variable names no run
    try:
        have = parse_target(run.target, env={})
    except ValueError:
        return run.target == side
    if ":" in side:  # a target: same provider and model, wherever it was served from
        try:
            want = parse_target(side, env={})
        except ValueError:
            return False
        return (want.provider, want.model) == (have.provider, have.model)
    if have.provider == "pinned":  # a bare model: a pinned run whose every case ran on it
        models = set(df.filter(pl.col("run_id") == run.run_id)["model"].drop_nulls().to_list())
        return models == {side}
    return have.model == side


def find_run(runs: list[RunInfo], df: pl.DataFrame, side: str) -> RunInfo | None:
    """The latest run whose target (or, for pinned runs, every case's model) is ``side``."""
    mine = [r for r in runs if r.run_id == side or _matches(r, df, side)]
    return mine[-1] if mine else None


def _answers(df: pl.DataFrame, run_id: str) -> dict[str, tuple[str | None, list[str]]]:
    out: dict[str, tuple[str | None, list[str]]] = {}
    for case_id, text, error, grades in df.filter(pl.col("run_id") == run_id).select(
            "case_id", "response_text", "error", "grades").iter_rows():
        if case_id in out:
            continue
        failed = [g.get("grader") or g.get("type") for g in json.loads(grades or "[]") if g.get("passed") is not True]
        out[case_id] = (text if text is not None else (f"error: {error}" if error else None), failed)
    return out


def upgrade_verdict(store_root: str | Path, suite: Suite, baseline: str, candidate: str) -> UpgradeVerdict:
    """Compare the latest runs of ``baseline`` and ``candidate`` (see the module docstring)."""
    df = load_results(store_root, suite.name)
    runs = list_runs(store_root, suite.name, df)
    sides = {}
    for what, side in (("baseline", baseline), ("candidate", candidate)):
        r = find_run(runs, df, side)
        if r is None:
            known = ", ".join(dict.fromkeys(x.target for x in runs)) or "none"
            raise EvalReportError(f"no run of suite {suite.name!r} on {side!r} for the {what} (targets with runs: "
                                  f"{known}); run it with `tracelens eval run {suite.name} --target anthropic:{side}` "
                                  "or pass --run-missing")
        sides[what] = r
    b, c = sides["baseline"], sides["candidate"]
    comp = _compare(df, b.run_id, c.run_id)
    regressed = [g.group for g in comp.groups if g.verdict == "regression"]
    o = comp.overall
    if o.verdict == "not enough cases":
        verdict = "not enough cases"
    elif o.verdict == "regression" or regressed:
        verdict = "regressions"
    elif o.verdict == "improvement":
        verdict = "improvement"
    else:
        verdict = "safe"
    tags = _groups(df)
    ba, ca = _answers(df, b.run_id), _answers(df, c.run_id)

    def flipped(ids: list[str]) -> list[FlippedCase]:
        return [FlippedCase(cid, dict(t.split("=", 1) for t in tags.get(cid, [])), b.target, c.target,
                            ba.get(cid, (None, []))[0], ca.get(cid, (None, []))[0], ca.get(cid, (None, []))[1])
                for cid in ids]

    return UpgradeVerdict(suite=suite.name, baseline=summarise(df, b, None), candidate=summarise(df, c, None),
                          comparison=comp, verdict=verdict, regressed_groups=regressed,
                          worse=flipped(o.pass_to_fail), better=flipped(o.fail_to_pass))


def compare_runs(store_root: str | Path, suite: Suite, run_id: str | None = None,
                 previous_run_id: str | None = None) -> UpgradeVerdict:
    """Two stored runs of ``suite`` compared case by case, as ``upgrade_verdict`` does: ``run_id`` (default the
    latest run) against ``previous_run_id`` (default the run before it on the same target); ``EvalReportError``
    naming the runs there are when one is missing."""
    runs = list_runs(store_root, suite.name)
    if not runs:
        raise EvalReportError(f"suite {suite.name!r} has no stored runs: run `tracelens eval run {suite.name}`")
    ids = [r.run_id for r in runs]
    for rid in (run_id, previous_run_id):
        if rid is not None and rid not in ids:
            raise EvalReportError(f"suite {suite.name!r} has no run {rid!r} (its runs, oldest first: "
                                  f"{', '.join(ids)})")
    current = next(r for r in runs if r.run_id == run_id) if run_id else runs[-1]
    if previous_run_id is None:
        previous = _previous(runs, current)
        if previous is None:
            raise EvalReportError(f"run {current.run_id} is the first run of suite {suite.name!r} on "
                                  f"{current.target}: there is nothing to compare it with")
        previous_run_id = previous.run_id
    return upgrade_verdict(store_root, suite, previous_run_id, current.run_id)
