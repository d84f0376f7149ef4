"""Typed results of a drift analysis and their JSON form.

Contract:

* A :class:`Finding` has exactly the fields ``kind, segment, direction,
  baseline_value, current_value, effect, ci_low, ci_high, p_value, q_value,
  significant, severity, first_seen, summary, evidence`` -- in the dataclass,
  in ``to_dict()`` and in the JSON Schema, with those names.
* ``kind`` is one of :data:`KINDS`; statistical kinds carry a p-value and a
  Benjamini-Hochberg q-value computed across every test in the report;
  deterministic kinds (:data:`DETERMINISTIC_KINDS`) carry ``p_value = None``
  and ``significant`` means "the change happened".
* :class:`DriftReport` holds the two windows, the findings sorted by
  (severity, kind, segment), the variance-sources table and optional trend,
  chart data, eval results (typed :class:`EvalResult` rows, set by the
  weekly run from ``tracelens.evals``' run summaries), notes, generator
  and config (``DriftConfig.to_dict()``).
  ``report.to_dict()`` is the JSON document that :func:`report_json_schema`
  describes; it is JSON-safe (ISO-8601 UTC timestamps, floats rounded to
  7 significant digits so that golden files do not depend on BLAS noise).
* Both the JSON form and the schema come from the dataclass declarations
  (:mod:`tracelens.analysis.jsonform`): a field's type gives its JSON type,
  its metadata the constraints types cannot say (enums, bounds,
  descriptions) and, where the JSON differs from the field, the key
  (``json=``) or an enclosing object (``group=``). A new field is declared
  once; ``python -m tracelens.schema schemas`` rewrites the committed schema
  (``tests/test_schema.py`` fails while it is stale).
* Nothing here computes statistics; see ``drift.py`` and ``stats.py``.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from tracelens.analysis.jsonform import JsonRecord, document_schema

#: Every finding kind, in display order (the sort key after severity).
KINDS: tuple[str, ...] = (
    "model_snapshot",
    "snapshot_behaviour",
    "refusal_rate",
    "refusal_rate_adjusted",
    "matched_prompt_refusal",
    "matched_prompt_similarity",
    "response_semantic",
    "output_corruption",
    "changepoint",
    "cohort",
    "time_of_day",
    "load",
    "response_length",
    "stop_reason",
    "tool_call_rate",
    "error_rate",
    "context_length",
    "latency",
    "latency_per_token",
    "time_to_first_token",
    "prompt_mix",
    "prompt_semantic",
    "alias_usage",
    "system_prompt",
    "tool_definitions",
    "sampling_params",
    "service_tier",
    "backend_fingerprint",
)

#: Kinds that report a change that is certain from the logs (no p-value).
DETERMINISTIC_KINDS: frozenset[str] = frozenset(
    {
        "model_snapshot",
        "alias_usage",
        "system_prompt",
        "tool_definitions",
        "sampling_params",
        "service_tier",
        "backend_fingerprint",
    }
)

SEVERITIES: tuple[str, ...] = ("alert", "warn", "info")
DIRECTIONS: tuple[str, ...] = ("up", "down", "changed")
FAIL_ON: tuple[str, ...] = ("alert", "warn", "never")

FINDING_FIELDS: tuple[str, ...] = (
    "kind",
    "segment",
    "direction",
    "baseline_value",
    "current_value",
    "effect",
    "ci_low",
    "ci_high",
    "p_value",
    "q_value",
    "significant",
    "severity",
    "first_seen",
    "summary",
    "evidence",
)

#: What ``effect`` means, per kind (also rendered into docs and the schema).
EFFECT_DOCS: dict[str, str] = {
    "refusal_rate": "current minus baseline refusal rate (proportion); CI is Newcombe's hybrid score interval",
    "refusal_rate_adjusted": "behaviour part of the Kitagawa decomposition (proportion, prompt mix held fixed)",
    "snapshot_behaviour": (
        "refusal rate on the new snapshot minus on the previous one(s), prompt mix held fixed (Kitagawa behaviour part)"
    ),
    "matched_prompt_refusal": "paired difference in refusal rate on identical prompts (current minus baseline)",
    "matched_prompt_similarity": "cross-window minus within-window cosine similarity of responses to the same prompt",
    "prompt_mix": "global: total variation distance between cluster shares; per cluster: share difference",
    "prompt_semantic": "held-out classifier AUC minus 0.5 (0 = windows indistinguishable)",
    "response_semantic": "held-out classifier AUC minus 0.5 on prompt-residualised responses, within prompt clusters",
    "response_length": (
        "Cliff's delta of output tokens within prompt clusters (-1..1, >0 = longer now); segment 'snapshot=X': "
        "traffic of the new snapshot X against its predecessor's, within prompt strata"
    ),
    "changepoint": (
        "step inside one snapshot and system prompt in the current window, after minus before: refusal rate "
        "(proportion, prompt mix held fixed) or Cliff's delta of output length / latency within prompt strata"
    ),
    "cohort": (
        "a cohort's gap to the rest of its dimension on comparable prompts, current minus baseline gap: refusal / "
        "error rate (proportion, Kitagawa behaviour part) or Cliff's delta of output length / latency; a cohort new "
        "in the current window: its current gap"
    ),
    "time_of_day": (
        "current window, one snapshot and tier, peak hours minus off-peak: refusal / error / max_tokens-stop rate "
        "(proportion, prompt mix held fixed) or Cliff's delta of output length / latency within prompt strata"
    ),
    "load": (
        "current window, one snapshot and tier, top-quarter load (requests per minute) minus the rest: refusal / "
        "error / max_tokens-stop rate (proportion, prompt mix held fixed) or Cliff's delta of output length / latency"
    ),
    "latency": "Cliff's delta of latency_ms (-1..1, >0 = slower now)",
    "latency_per_token": "Cliff's delta of latency_ms / output_tokens (-1..1, >0 = slower now)",
    "time_to_first_token": "Cliff's delta of time_to_first_token_ms (-1..1, >0 = slower now)",
    "stop_reason": "global: total variation distance between stop-reason shares; per reason: share difference",
    "tool_call_rate": "behaviour part of the change in the share of responses with a tool call, within prompt clusters",
    "error_rate": "current minus baseline error rate (proportion)",
    "context_length": (
        "difference in differences: the window change (current minus baseline) on long inputs (the top quarter of "
        "input sizes) minus that on shorter inputs, within size bins, app and topic -- in proportion for truncation, "
        "refusal and error rates, in Cliff's delta for output length; baseline/current values are the long inputs' "
        "rate (or median output length)"
    ),
    "output_corruption": "current minus baseline share of corrupted responses (proportion)",
    "model_snapshot": "share of the current segment's traffic served by the new snapshot / mismatching model",
    "alias_usage": "current minus baseline share of traffic that named an alias",
    "system_prompt": "share of the segment's current traffic that carries the new system prompt",
    "tool_definitions": "share of the segment's current traffic that carries the new tool definitions",
    "sampling_params": "share of the segment's current traffic that uses the new value",
    "service_tier": "current share of the tier (or total variation distance for a shift)",
    "backend_fingerprint": "share of the model's current traffic served by the new backend fingerprint",
}


_TS_DOC = "ISO-8601 UTC timestamp."


def _doc(text: str, **schema: Any) -> dict:
    """Field metadata: extra JSON Schema keywords for the generated schema (see :mod:`.jsonform`)."""
    return {"schema": {"description": text, **schema} if text else schema}


@dataclass(frozen=True)
class Finding(JsonRecord):
    """One tested (or deterministic) change between the two windows."""

    kind: str = field(metadata=_doc("What was compared.", enum=list(KINDS)))
    segment: str = field(
        metadata=_doc(
            "Traffic slice ('model=...', 'family=...', 'app=...', 'cluster=3 (label)', 'snapshot=...', ...); '' = all."
        )
    )
    direction: str = field(metadata=_doc("", enum=list(DIRECTIONS)))
    baseline_value: float | str | None
    current_value: float | str | None
    effect: float | None = field(metadata=_doc("Per kind: " + "; ".join(f"{k}: {v}" for k, v in EFFECT_DOCS.items())))
    ci_low: float | None
    ci_high: float | None
    p_value: float | None = field(metadata=_doc("", minimum=0, maximum=1))
    q_value: float | None = field(
        metadata=_doc("Benjamini-Hochberg q-value across all tests in the report.", minimum=0, maximum=1)
    )
    significant: bool
    severity: str = field(metadata=_doc("", enum=list(SEVERITIES)))
    first_seen: datetime | None = field(metadata=_doc("When the change began, where it can be dated."))
    summary: str
    evidence: tuple[str, ...] = field(default=(), metadata=_doc("Trace ids that show the change.", maxItems=20))


@dataclass(frozen=True)
class Window(JsonRecord):
    """A time window: [start, end) in UTC and the number of traces in it."""

    start: datetime | None
    end: datetime | None
    n: int = field(metadata=_doc("", minimum=0))


@dataclass(frozen=True)
class VarianceSource(JsonRecord):
    """One row of the "variance sources at a glance" table.

    ``status`` is ``changed`` (the logs show a change this window), ``stable``
    (observable, no change), ``observed`` (observable, present but not a
    change, e.g. sampling at temperature > 0), ``not observable``, or
    ``unknown`` (a window holds no traces: there is nothing to compare).
    """

    source: str
    status: str = field(metadata=_doc("", enum=["changed", "stable", "observed", "not observable", "unknown"]))
    observation: str
    findings: tuple[str, ...] = field(default=(), metadata=_doc("", items={"enum": list(KINDS)}))
    what_to_log: str | None = None


@dataclass(frozen=True)
class SeriesPoint(JsonRecord):
    """Refusal rate over one period (a day or a week) with a Wilson interval."""

    start: datetime
    end: datetime
    n: int
    refusals: int
    rate: float | None
    ci_low: float | None
    ci_high: float | None
    window: str = ""  # "baseline", "current" or "" (history)


@dataclass(frozen=True)
class ClusterShare(JsonRecord):
    """Share of traffic in one prompt cluster, per window (for the cluster chart)."""

    cluster: str
    label: str
    baseline_share: float
    current_share: float
    q_value: float | None = None


@dataclass(frozen=True)
class Distribution(JsonRecord):
    """Histogram of one metric per window on shared (log-spaced) bin edges."""

    metric: str
    edges: tuple[float, ...]
    baseline_counts: tuple[int, ...]
    current_counts: tuple[int, ...]
    baseline_quantiles: tuple[float, float, float] = field(metadata=_doc("p10, p50, p90."))
    current_quantiles: tuple[float, float, float] = field(metadata=_doc("p10, p50, p90."))


@dataclass(frozen=True)
class Detail(JsonRecord):
    """Long supporting text for one finding (e.g. a unified diff)."""

    kind: str = field(metadata=_doc("", enum=list(KINDS)))
    segment: str
    title: str
    text: str


#: The overall paired test's verdict of an eval run against the previous run on its target ("first run": none).
EVAL_VERDICTS: tuple[str, ...] = ("regression", "improvement", "no significant change", "not enough cases", "first run")


@dataclass(frozen=True)
class EvalResult(JsonRecord):
    """One target's latest run of a stored eval suite against the previous run of that suite on that target.

    Built by the weekly run from ``tracelens.evals.report.run_summaries`` (this
    module computes nothing): the pass rate with its interval, the paired test
    against the previous run, the cases that flipped, errors, refusals and
    latency.
    """

    suite: str
    kind: str | None = field(metadata=_doc("'canary' for a canary set; null for a plain suite."))
    target: str = field(metadata=_doc("'pinned' (each case's own snapshot) or a target such as 'anthropic:MODEL'."))
    run_id: str
    started_at: datetime
    previous_run_id: str | None = field(metadata=_doc("null when this is the target's first run."))
    cases: int = field(metadata=_doc("Cases in the run.", minimum=0))
    pass_rate: float | None = field(metadata=_doc("Share of graded repeats that passed.", minimum=0, maximum=1))
    pass_rate_low: float | None = field(metadata=_doc("95% interval of pass_rate.", minimum=0, maximum=1))
    pass_rate_high: float | None = field(metadata=_doc("", minimum=0, maximum=1))
    previous_pass_rate: float | None = field(
        metadata=_doc("The previous run's pass rate on the cases both runs graded.", minimum=0, maximum=1))
    delta: float | None = field(
        metadata=_doc("Paired difference in pass rate, latest minus previous (proportion), on the shared cases."))
    delta_low: float | None
    delta_high: float | None
    p_value: float | None = field(metadata=_doc("Two-sided p-value of the paired test.", minimum=0, maximum=1))
    method: str | None = field(metadata=_doc("The paired test (exact McNemar, sign-flip, ...); null on a first run."))
    verdict: str = field(metadata=_doc("The overall paired test's verdict.", enum=list(EVAL_VERDICTS)))
    regressed: bool = field(metadata=_doc("The overall test, or an adjusted tag/grader group, says regression."))
    regressed_groups: tuple[str, ...] = field(metadata=_doc("Tag or grader groups that regressed ('task=refund')."))
    n_pass_to_fail: int = field(metadata=_doc("Cases that passed in the previous run and fail now.", minimum=0))
    pass_to_fail: tuple[str, ...] = field(metadata=_doc("The first of those case ids.", maxItems=10))
    errors: int = field(metadata=_doc("Repeats the target gave no answer to.", minimum=0))
    refusal_rate: float | None = field(metadata=_doc("Share of answers labelled refused.", minimum=0, maximum=1))
    latency_p50_ms: float | None = field(metadata=_doc("Median latency of the answers (ms).", minimum=0))


@dataclass(frozen=True)
class Generator(JsonRecord):
    """What wrote the report: package name and version, and the version of the analysis methods."""

    name: str = "tracelens"
    version: str = ""
    analysis_version: str = ""


def _drift_config() -> type:
    """``DriftConfig``, the shape of ``DriftReport.config`` (imported late: config -> variance -> findings)."""
    from tracelens.analysis.config import DriftConfig

    return DriftConfig


@dataclass(frozen=True)
class DriftReport(JsonRecord):
    """Everything a renderer needs; built by :func:`tracelens.analysis.analyze`."""

    baseline: Window = field(metadata={"group": "windows"})
    current: Window = field(metadata={"group": "windows"})
    findings: tuple[Finding, ...] = field(
        metadata=_doc("Sorted by severity (alert, warn, info), then kind, then segment.")
    )
    variance: tuple[VarianceSource, ...] = field(metadata={"json": "variance_sources"})
    trend: tuple[SeriesPoint, ...] | None = field(default=None, metadata=_doc("Weekly refusal rate over 8 weeks."))
    daily: tuple[SeriesPoint, ...] = ()
    cluster_shares: tuple[ClusterShare, ...] = ()
    distributions: tuple[Distribution, ...] = ()
    details: tuple[Detail, ...] = ()
    notes: tuple[str, ...] = ()
    evals: tuple[EvalResult, ...] | None = field(
        default=None,
        metadata=_doc("Each stored eval suite's latest run per target against its previous run on that target "
                      "(canary sets included), by suite and target; null when no suite has a run."),
    )
    generator: Generator = field(default_factory=Generator)
    config: dict = field(
        default_factory=dict, metadata={"shape": _drift_config, **_doc("The DriftConfig the analysis ran with.")}
    )

    def to_json(self, indent: int | None = 2) -> str:
        """``to_dict()`` as JSON text (UTF-8, key order as in the schema)."""
        return json.dumps(self.to_dict(), indent=indent, ensure_ascii=False) + "\n"

    def by_kind(self, kind: str, segment: str | None = None) -> list[Finding]:
        """Findings of one kind (optionally one segment), in report order."""
        return [f for f in self.findings if f.kind == kind and (segment is None or f.segment == segment)]

    def significant(self) -> list[Finding]:
        """Findings whose change is significant (or certain, for deterministic kinds)."""
        return [f for f in self.findings if f.significant]


def sort_key(f: Finding) -> tuple:
    """Deterministic order: severity (alert first), then kind (display order), then segment."""
    kind_rank = KINDS.index(f.kind) if f.kind in KINDS else len(KINDS)
    return (SEVERITIES.index(f.severity), kind_rank, f.kind, f.segment, f.summary)


def sort_findings(findings) -> tuple[Finding, ...]:
    """Findings sorted by :func:`sort_key`."""
    return tuple(sorted(findings, key=sort_key))


# Exit status of a report with a window that holds no traces: nothing was compared, which is neither "no
# change" (0) nor a finding (1); a cron job must see it (the logging may have stopped), whatever --fail-on says.
NO_DATA_EXIT = 4


def no_data(report: DriftReport) -> list[str]:
    """The windows of ``report`` that hold no traces (``"baseline"``, ``"current"``); empty when both have some."""
    return [name for name, w in (("current", report.current), ("baseline", report.baseline)) if not w.n]


def eval_regressions(report: DriftReport) -> list[EvalResult]:
    """The eval rows whose latest run regressed against the previous run on its target."""
    return [e for e in report.evals or () if e.regressed]


def exit_code(report: DriftReport, fail_on: str = "alert") -> int:
    """``NO_DATA_EXIT`` (4) when a window holds no traces; else 1 when any finding is at least as severe as
    ``fail_on`` ('alert', 'warn' or 'never') or, unless 'never', an eval regressed (it counts as an alert); else 0."""
    if fail_on not in FAIL_ON:
        raise ValueError(f"fail_on must be one of {FAIL_ON}, not {fail_on!r}")
    if no_data(report):
        return NO_DATA_EXIT
    if fail_on == "never":
        return 0
    worst = SEVERITIES.index(fail_on)
    return int(any(SEVERITIES.index(f.severity) <= worst for f in report.findings) or bool(eval_regressions(report)))


# --------------------------------------------------------------------------- JSON Schema


def report_json_schema() -> dict:
    """JSON Schema (2020-12) of ``DriftReport.to_dict()`` / ``tracelens drift --json``, generated from the dataclasses."""
    return document_schema(
        DriftReport,
        **{
            "$id": "https://tracelens.dev/schemas/drift_report.schema.json",
            "title": "tracelens drift report",
            "description": "Did the model change, or did our traffic? Findings between a baseline and a current window.",
        },
    )


def finding_json_schema() -> dict:
    """JSON Schema of one finding (the ``finding`` entry of the report schema's ``$defs``)."""
    return report_json_schema()["$defs"]["finding"]
