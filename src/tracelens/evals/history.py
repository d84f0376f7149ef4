"""A trace's life as an eval case: which suites hold it, and how each stored run graded it.

Contract: ``cases_for_trace(store_root, trace_id)`` lists (suite name, case)
for every stored suite with a case built from that trace (a suite file
that cannot be read is skipped: `tracelens eval list` reports it).
``case_history(store_root, suite, case_id)`` summarises each stored run of
that case, oldest first: target, repeats, pass/fail/error counts, mean
score, the graders that failed and the first answer. Both read only.
"""

from __future__ import annotations

import datetime as dt
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import polars as pl

from tracelens.evals.graders import SuiteError
from tracelens.evals.model import Case
from tracelens.evals.runner import load_results
from tracelens.evals.suite import read_suite_file, suites_dir


def cases_for_trace(store_root: str | Path, trace_id: str) -> list[tuple[str, Case]]:
    """(suite name, case) for every stored suite holding a case built from ``trace_id``."""
    d = suites_dir(store_root)
    out = []
    for p in sorted(d.glob("*.yaml")) if d.is_dir() else []:
        try:
            suite = read_suite_file(p)[0]
        except SuiteError:
            continue
        out.extend((suite.name, c) for c in suite.cases if c.trace_id == trace_id)
    return out


@dataclass
class CaseRun:
    """One stored run of one case."""

    run_id: str
    started_at: dt.datetime
    target: str
    label: str | None
    repeats: int
    passed: int
    failed: int
    errors: int
    score: float
    failed_graders: list[str] = field(default_factory=list)
    first_answer: str | None = None
    first_error: str | None = None

    def to_dict(self) -> dict[str, Any]:
        """JSON form."""
        return {"run_id": self.run_id, "started_at": self.started_at.isoformat(), "target": self.target,
                "label": self.label, "repeats": self.repeats, "passed": self.passed, "failed": self.failed,
                "errors": self.errors, "score": self.score, "failed_graders": self.failed_graders,
                "first_answer": self.first_answer, "first_error": self.first_error}


def case_history(store_root: str | Path, suite: str, case_id: str, df: pl.DataFrame | None = None) -> list[CaseRun]:
    """Every stored run of one case, oldest first."""
    df = load_results(store_root, suite) if df is None else df.filter(pl.col("suite") == suite)
    rows = df.filter(pl.col("case_id") == case_id)
    out = []
    for run_id in rows["run_id"].unique(maintain_order=True).to_list():
        r = rows.filter(pl.col("run_id") == run_id).sort("repeat")
        failed_graders: dict[str, None] = {}
        for g in r["grades"].to_list():
            for grade in json.loads(g or "[]"):
                if grade.get("passed") is not True:
                    failed_graders[grade.get("grader") or grade.get("type") or "?"] = None
        outcomes = r["outcome"].to_list()
        answers = [t for t in r["response_text"].to_list() if t]
        errors = [e for e in r["error"].to_list() if e]
        out.append(CaseRun(run_id=run_id, started_at=r["run_started_at"][0], target=r["target"][0],
                           label=r["label"][0], repeats=len(outcomes), passed=outcomes.count("pass"),
                           failed=outcomes.count("fail"), errors=outcomes.count("error"),
                           score=float(r["score"].mean() or 0.0), failed_graders=list(failed_graders),
                           first_answer=answers[0] if answers else None, first_error=errors[0] if errors else None))
    return out
