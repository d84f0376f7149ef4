"""Findings before multiple-testing correction, and the step that finalises them.

Contract: analysis modules return :class:`Draft` objects; :func:`finalise`
computes Benjamini-Hochberg q-values across the drafts that have a p-value
(one family per report; a test of what users asked, :data:`TRAFFIC_KINDS`,
must also pass BH among those tests alone), sets ``significant`` (q < alpha, or "the change
happened" for deterministic kinds), assigns severity and dates significant
statistical findings through their ``dater``. Severity rule: significant and
``practical`` (effect beyond the kind's practical threshold) -> alert;
significant but small -> warn; else info. Deterministic kinds take their
severity from ``DriftConfig.deterministic_severity`` when changed, unless the
draft sets its own (a retired model's traffic is an alert, a deprecated one's a
warning, both of kind ``model_snapshot``).

Folding: a step, an hour or load pattern, or a cohort seen inside the
current window also moves the week-over-week comparisons of the same traffic.
So that one cause is reported once at warn or alert, a significant finding on
the same ``metric`` as significant, more specific within-window findings
(:data:`EXPLAINERS`, most specific first) is kept but shown at info, its
summary naming the findings it is part of, when either its evidence lies
mostly (at least half) in their ``scope``, or its ``retest`` (the same test
with their scope's current-window traces left out) is no longer significant
at ``alpha``: the change is theirs.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from collections.abc import Set as AbstractSet
from dataclasses import dataclass
from datetime import datetime

import polars as pl

from tracelens.analysis.findings import Finding, sort_findings
from tracelens.analysis.stats import benjamini_hochberg


class Scope(AbstractSet):
    """The trace ids a within-window finding covers, held as a polars string Series; behaves as a frozenset of str.

    A segment of a ten-million-trace window has millions of traces: as a frozenset of Python strings that is
    gigabytes and seconds to build, while a Series filtered from the frame's ``trace_id`` column shares its
    string data. ``finalise`` compares scopes and evidence with polars (``scope_ids``); ``in`` and iteration
    (a frozenset's interface) build the Python set on first use.
    """

    __slots__ = ("_py", "ids")

    def __init__(self, ids: pl.Series):
        self.ids = ids.cast(pl.String).unique(maintain_order=True) if ids.is_duplicated().any() else ids.cast(pl.String)
        self._py: frozenset[str] | None = None

    def __len__(self) -> int:
        return self.ids.len()

    def __iter__(self):
        return iter(self.ids.to_list())

    def __contains__(self, t) -> bool:
        if self._py is None:
            self._py = frozenset(self.ids.to_list())
        return t in self._py

    __hash__ = AbstractSet._hash


def scope_ids(scope: AbstractSet[str] | Iterable[str]) -> pl.Series:
    """A scope's trace ids as a polars string Series (for ``is_in`` in the retests)."""
    if isinstance(scope, Scope):
        return scope.ids
    return pl.Series("trace_id", list(scope), dtype=pl.String)


def _n_inside(evidence: tuple[str, ...], scope: AbstractSet[str]) -> int:
    """How many of ``evidence`` lie in ``scope`` (the scope is scanned once, not turned into Python strings)."""
    if not isinstance(scope, Scope):
        return sum(1 for t in evidence if t in scope)
    ev = pl.Series(list(set(evidence)), dtype=pl.String)
    hit = set(scope.ids.filter(scope.ids.is_in(ev.implode())).to_list())
    return sum(1 for t in evidence if t in hit)


def _proper_subset(a: AbstractSet[str], b: AbstractSet[str]) -> bool:
    if not isinstance(a, Scope) and not isinstance(b, Scope):
        return a < b
    return len(a) < len(b) and bool(scope_ids(a).is_in(scope_ids(b).implode()).all())


def _union(scopes: list[AbstractSet[str]]) -> AbstractSet[str]:
    if not any(isinstance(s, Scope) for s in scopes):
        return frozenset().union(*scopes)
    if len(scopes) == 1:
        return scopes[0]
    return Scope(pl.concat([scope_ids(s) for s in scopes]).unique(maintain_order=True))


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
    scope: AbstractSet[str] | None = None  # within-window explainers: the current-window trace ids (frozenset or Scope)
    retest: Callable[[frozenset[str]], float] | None = None  # p-value of the same test without these current traces


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
#: kinds that measure something several explainers can move: responses that differ most between the windows are
#: often the refusals or shortened answers a within-window finding reports (folded by evidence only: no retest)
METRICS_OF_KIND = {"response_semantic": ("refusal", "response_length")}
#: within-window kinds that can explain other findings, most specific first. Not snapshot_behaviour: its scope is
#: most of the current window, so a rise that began before the new snapshot arrived would be filed under it both by
#: evidence (recent refusals are on the new snapshot) and by the retest (too little traffic is left to test)
EXPLAINERS = ("changepoint", "time_of_day", "load", "cohort")
FOLD_SHARE = 0.5  #: share of a finding's evidence inside an explainer's scope for it to be part of that finding
#: how _fold's sentence names a refusal step it files a finding under (read back by :func:`part_of_step`)
_PART_OF_STEP = re.compile(r"Part of the changepoint finding on snapshot=(\S+) metric=refusal\b")


def _direction(d: Draft) -> str:
    if d.direction:
        return d.direction
    if d.effect is None or d.effect != d.effect or d.effect == 0:
        return "changed"
    return "up" if d.effect > 0 else "down"


#: kinds that test what users asked rather than how the model answered. BH lets the bar rise with the number of
#: true discoveries, so several real behaviour changes in one report would loosen it for dozens of per-cluster
#: traffic-mix tests too; these must also pass BH among themselves (the larger q of the two counts)
TRAFFIC_KINDS = frozenset({"prompt_mix", "prompt_semantic"})


def _q_values(drafts: list[Draft]) -> list[float]:
    """BH q-values over the report; traffic kinds take the larger of that and their own family's q."""
    q = [float(v) for v in benjamini_hochberg([d.p_value for d in drafts])]
    idx = [i for i, d in enumerate(drafts) if d.kind in TRAFFIC_KINDS]
    for i, qv in zip(idx, benjamini_hochberg([drafts[i].p_value for i in idx]), strict=True):
        if qv == qv and q[i] == q[i]:
            q[i] = max(q[i], float(qv))
    return q


def finalise(drafts: list[Draft], alpha: float, det_severity: dict[str, str]) -> tuple[Finding, ...]:
    """BH (see :func:`_q_values`), significance, severity, folding, dating; returns sorted findings."""
    q = _q_values(drafts)
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
    _fold(rows, alpha)
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


def part_of_step(summary: str) -> str | None:
    """The snapshot of the refusal step (``changepoint``) a folded finding's summary says it is part of, else None."""
    m = _PART_OF_STEP.search(summary)
    return m.group(1) if m else None


def _rank(d: Draft) -> int:
    return EXPLAINERS.index(d.kind) if d.kind in EXPLAINERS else len(EXPLAINERS)


def _fold(rows: list[list], alpha: float) -> None:
    """Show at info the significant findings that are part of more specific within-window findings (rows in place)."""
    explainers = sorted(
        (r for r in rows if r[0].kind in EXPLAINERS and r[0].scope and r[0].metric and r[3] in ("warn", "alert")),
        key=lambda r: (_rank(r[0]), len(r[0].scope)),  # narrowest first within a kind
    )
    if not explainers:
        return
    for r in rows:
        d = r[0]
        metrics = (d.metric,) if d.metric else METRICS_OF_KIND.get(d.kind) or (METRIC_OF_KIND.get(d.kind),)
        if r[3] not in ("warn", "alert") or metrics == (None,):
            continue
        cands = [e[0] for e in explainers if e[0] is not d and _rank(e[0]) < _rank(d) and e[0].metric in metrics]
        if not cands:
            continue
        by: list[Draft] = []
        why = "the same traces"
        for e in cands:  # one explainer holding most of the evidence
            if d.evidence and _n_inside(d.evidence, e.scope) >= FOLD_SHARE * len(d.evidence):
                by = [e]
                break
        if not by and d.retest is not None:
            # else: the explainers whose traffic, left out, leaves no significant change (one alone first)
            # in the union, an explainer whose scope lies inside another's adds nothing (a topic of a snapshot)
            wide = [e for e in cands if not any(o is not e and _proper_subset(e.scope, o.scope) for o in cands)]
            for group in [[e] for e in cands] + ([wide] if len(wide) > 1 else []):
                p = d.retest(_union([e.scope for e in group]))
                if p == p and p >= alpha:
                    by, why = group, f"without their traffic the change is not significant, p={p:.2g}"
                    break
        if by:
            r[3] = "info"
            names = " and ".join(f"the {e.kind} finding" + (f" on {e.segment}" if e.segment else "") for e in by)
            r[5] = f"{r[5]} Part of {names} ({why}); reported there."
