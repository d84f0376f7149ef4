"""Findings before multiple-testing correction, and the step that finalises them.

Contract: analysis modules return :class:`Draft` objects; :func:`finalise`
computes Benjamini-Hochberg q-values across every draft that has a p-value
(one family per report), sets ``significant`` (q < alpha, or "the change
happened" for deterministic kinds), assigns severity and dates significant
statistical findings through their ``dater``. Severity rule: significant and
``practical`` (effect beyond the kind's practical threshold) -> alert;
significant but small -> warn; else info. Deterministic kinds take their
severity from ``DriftConfig.deterministic_severity`` when changed, unless the
draft sets its own (a retired model's traffic is an alert, a deprecated one's a
warning, both of kind ``model_snapshot``).

Folding: a step, an hour or load pattern, or a cohort seen inside the
current window also moves the week-over-week comparisons of the same traffic.
So that one cause is reported once at warn or alert, a significant finding
whose evidence lies mostly (at least half) in the ``scope`` of a
significant, more specific within-window finding on the same ``metric``
(:data:`EXPLAINERS`, most specific first) is kept but shown at info, its
summary naming the finding it is part of.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

from tracelens.analysis.findings import Finding, sort_findings
from tracelens.analysis.stats import benjamini_hochberg


@dataclass
class Draft:
    """A finding under construction (see module docstring)."""

    kind: str
    segment: str
    baseline_value: float | str | None
    current_value: float | str | None
    effect: float | None
    summary: str
    ci_low: float | None = None
    ci_high: float | None = None
    p_value: float | None = None
    direction: str | None = None  # derived from the sign of effect when None
    first_seen: datetime | None = None
    evidence: tuple[str, ...] = ()
    practical: bool = False
    changed: bool | None = None  # deterministic kinds only
    dater: Callable[[], datetime | None] | None = None
    severity: str | None = None  # deterministic kinds only: overrides DriftConfig.deterministic_severity when changed
    metric: str | None = None  # what is measured, when it is not implied by the kind (see METRIC_OF_KIND)
    scope: frozenset[str] | None = None  # within-window explainers: the current-window trace ids the finding covers


#: the metric each week-over-week kind measures (a within-window finding on the same metric can explain it)
METRIC_OF_KIND = {
    "refusal_rate": "refusal",
    "refusal_rate_adjusted": "refusal",
    "response_length": "response_length",
    "latency": "latency",
    "latency_per_token": "latency",
    "error_rate": "error",
    "stop_reason": "stop_reason",
}
#: within-window kinds that can explain other findings, most specific first
EXPLAINERS = ("changepoint", "time_of_day", "load", "cohort")
FOLD_SHARE = 0.5  #: share of a finding's evidence inside an explainer's scope for it to be part of that finding


def _direction(d: Draft) -> str:
    if d.direction:
        return d.direction
    if d.effect is None or d.effect != d.effect or d.effect == 0:
        return "changed"
    return "up" if d.effect > 0 else "down"


def finalise(drafts: list[Draft], alpha: float, det_severity: dict[str, str]) -> tuple[Finding, ...]:
    """BH across all tests, significance, severity, dating; returns sorted findings."""
    q = benjamini_hochberg([d.p_value for d in drafts])
    rows = []
    for d, qv in zip(drafts, q, strict=True):
        first_seen = d.first_seen
        if d.changed is not None:
            significant = bool(d.changed)
            severity = (d.severity or det_severity.get(d.kind, "warn")) if significant else "info"
            qval = None
        else:
            qval = None if qv != qv else float(qv)
            significant = qval is not None and qval < alpha
            severity = ("alert" if d.practical else "warn") if significant else "info"
            if significant and first_seen is None and d.dater is not None:
                first_seen = d.dater()
        rows.append([d, qval, significant, severity, first_seen, d.summary])
    _fold(rows)
    out = []
    for d, qval, significant, severity, first_seen, summary in rows:
        out.append(
            Finding(
                kind=d.kind,
                segment=d.segment,
                direction=_direction(d),
                baseline_value=d.baseline_value,
                current_value=d.current_value,
                effect=d.effect,
                ci_low=d.ci_low,
                ci_high=d.ci_high,
                p_value=d.p_value,
                q_value=qval,
                significant=significant,
                severity=severity,
                first_seen=first_seen,
                summary=summary,
                evidence=tuple(d.evidence)[:20],
            )
        )
    return sort_findings(out)


def _rank(d: Draft) -> int:
    return EXPLAINERS.index(d.kind) if d.kind in EXPLAINERS else len(EXPLAINERS)


def _fold(rows: list[list]) -> None:
    """Show at info the significant findings that are part of a more specific within-window finding (rows in place)."""
    explainers = sorted(
        (r for r in rows if r[0].kind in EXPLAINERS and r[0].scope and r[0].metric and r[3] in ("warn", "alert")),
        key=lambda r: _rank(r[0]),
    )
    if not explainers:
        return
    for r in rows:
        d = r[0]
        metric = d.metric or METRIC_OF_KIND.get(d.kind)
        if r[3] not in ("warn", "alert") or metric is None or not d.evidence:
            continue
        for e in explainers:
            ed = e[0]
            if ed is d or _rank(ed) >= _rank(d) or ed.metric != metric:
                continue
            inside = sum(1 for t in d.evidence if t in ed.scope)
            if inside >= FOLD_SHARE * len(d.evidence):
                r[3] = "info"
                where = f" on {ed.segment}" if ed.segment else ""
                r[5] = f"{r[5]} Part of the {ed.kind} finding{where} (the same traces); reported there."
                break
