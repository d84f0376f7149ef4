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


def _direction(d: Draft) -> str:
    if d.direction:
        return d.direction
    if d.effect is None or d.effect != d.effect or d.effect == 0:
        return "changed"
    return "up" if d.effect > 0 else "down"


def finalise(drafts: list[Draft], alpha: float, det_severity: dict[str, str]) -> tuple[Finding, ...]:
    """BH across all tests, significance, severity, dating; returns sorted findings."""
    q = benjamini_hochberg([d.p_value for d in drafts])
    out = []
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
                summary=d.summary,
                evidence=tuple(d.evidence)[:20],
            )
        )
    return sort_findings(out)
