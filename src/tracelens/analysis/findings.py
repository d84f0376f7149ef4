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
  chart data, canary results, notes, generator and config.
  ``report.to_dict()`` is the JSON document that :func:`report_json_schema`
  describes; it is JSON-safe (ISO-8601 UTC timestamps, floats rounded to
  7 significant digits so that golden files do not depend on BLAS noise).
* Nothing here computes statistics; see ``drift.py`` and ``stats.py``.
"""

from __future__ import annotations

import json
import math
import numbers
from dataclasses import dataclass, field, fields
from datetime import UTC, datetime
from typing import Any

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
    "response_length",
    "stop_reason",
    "tool_call_rate",
    "error_rate",
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
)

#: Kinds that report a change that is certain from the logs (no p-value).
DETERMINISTIC_KINDS: frozenset[str] = frozenset(
    {"model_snapshot", "alias_usage", "system_prompt", "tool_definitions", "sampling_params", "service_tier"}
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
    "latency": "Cliff's delta of latency_ms (-1..1, >0 = slower now)",
    "latency_per_token": "Cliff's delta of latency_ms / output_tokens (-1..1, >0 = slower now)",
    "time_to_first_token": "Cliff's delta of time_to_first_token_ms (-1..1, >0 = slower now)",
    "stop_reason": "global: total variation distance between stop-reason shares; per reason: share difference",
    "tool_call_rate": "behaviour part of the change in the share of responses with a tool call, within prompt clusters",
    "error_rate": "current minus baseline error rate (proportion)",
    "output_corruption": "current minus baseline share of corrupted responses (proportion)",
    "model_snapshot": "share of the current segment's traffic served by the new snapshot / mismatching model",
    "alias_usage": "current minus baseline share of traffic that named an alias",
    "system_prompt": "share of the segment's current traffic that carries the new system prompt",
    "tool_definitions": "share of the segment's current traffic that carries the new tool definitions",
    "sampling_params": "share of the segment's current traffic that uses the new value",
    "service_tier": "current share of the tier (or total variation distance for a shift)",
}


def _iso(ts: datetime | None) -> str | None:
    if ts is None:
        return None
    if ts.tzinfo is None:
        ts = ts.replace(tzinfo=UTC)
    return ts.astimezone(UTC).isoformat().replace("+00:00", "Z")


def _num(x: Any) -> Any:
    """JSON-safe value: round floats to 7 significant digits, NaN/inf -> None."""
    if isinstance(x, bool) or x is None:
        return x
    if isinstance(x, numbers.Integral):
        return int(x)
    if isinstance(x, numbers.Real):
        f = float(x)
        if not math.isfinite(f):
            return None
        if f == 0.0:
            return 0.0
        return float(f"{f:.7g}")
    return x


def _plain(x: Any) -> Any:
    """Recursively convert dataclass-ish payloads to JSON-safe values."""
    if isinstance(x, datetime):
        return _iso(x)
    if isinstance(x, dict):
        return {str(k): _plain(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [_plain(v) for v in x]
    if hasattr(x, "to_dict"):
        return x.to_dict()
    return _num(x)


@dataclass(frozen=True)
class Finding:
    """One tested (or deterministic) change between the two windows."""

    kind: str
    segment: str
    direction: str
    baseline_value: float | str | None
    current_value: float | str | None
    effect: float | None
    ci_low: float | None
    ci_high: float | None
    p_value: float | None
    q_value: float | None
    significant: bool
    severity: str
    first_seen: datetime | None
    summary: str
    evidence: tuple[str, ...] = ()

    def to_dict(self) -> dict:
        """JSON-safe dict with exactly the :data:`FINDING_FIELDS` keys."""
        out = {}
        for name in FINDING_FIELDS:
            v = getattr(self, name)
            if name == "first_seen":
                out[name] = _iso(v)
            elif name == "evidence":
                out[name] = [str(e) for e in v]
            elif name in ("kind", "segment", "direction", "summary", "severity", "significant"):
                out[name] = v
            else:
                out[name] = _num(v)
        return out


@dataclass(frozen=True)
class Window:
    """A time window: [start, end) in UTC and the number of traces in it."""

    start: datetime | None
    end: datetime | None
    n: int

    def to_dict(self) -> dict:
        return {"start": _iso(self.start), "end": _iso(self.end), "n": int(self.n)}


@dataclass(frozen=True)
class VarianceSource:
    """One row of the "variance sources at a glance" table.

    ``status`` is ``changed`` (the logs show a change this window), ``stable``
    (observable, no change), ``observed`` (observable, present but not a
    change, e.g. sampling at temperature > 0) or ``not observable``.
    """

    source: str
    status: str
    observation: str
    findings: tuple[str, ...] = ()
    what_to_log: str | None = None

    def to_dict(self) -> dict:
        return {
            "source": self.source,
            "status": self.status,
            "observation": self.observation,
            "findings": list(self.findings),
            "what_to_log": self.what_to_log,
        }


@dataclass(frozen=True)
class SeriesPoint:
    """Refusal rate over one period (a day or a week) with a Wilson interval."""

    start: datetime
    end: datetime
    n: int
    refusals: int
    rate: float | None
    ci_low: float | None
    ci_high: float | None
    window: str = ""  # "baseline", "current" or "" (history)

    def to_dict(self) -> dict:
        return {
            "start": _iso(self.start),
            "end": _iso(self.end),
            "n": int(self.n),
            "refusals": int(self.refusals),
            "rate": _num(self.rate),
            "ci_low": _num(self.ci_low),
            "ci_high": _num(self.ci_high),
            "window": self.window,
        }


@dataclass(frozen=True)
class ClusterShare:
    """Share of traffic in one prompt cluster, per window (for the cluster chart)."""

    cluster: str
    label: str
    baseline_share: float
    current_share: float
    q_value: float | None = None

    def to_dict(self) -> dict:
        return {k.name: _plain(getattr(self, k.name)) for k in fields(self)}


@dataclass(frozen=True)
class Distribution:
    """Histogram of one metric per window on shared (log-spaced) bin edges."""

    metric: str
    edges: tuple[float, ...]
    baseline_counts: tuple[int, ...]
    current_counts: tuple[int, ...]
    baseline_quantiles: tuple[float, float, float]  # p10, p50, p90
    current_quantiles: tuple[float, float, float]

    def to_dict(self) -> dict:
        return {k.name: _plain(getattr(self, k.name)) for k in fields(self)}


@dataclass(frozen=True)
class Detail:
    """Long supporting text for one finding (e.g. a unified diff)."""

    kind: str
    segment: str
    title: str
    text: str

    def to_dict(self) -> dict:
        return {"kind": self.kind, "segment": self.segment, "title": self.title, "text": self.text}


@dataclass(frozen=True)
class DriftReport:
    """Everything a renderer needs; built by :func:`tracelens.analysis.analyze`."""

    baseline: Window
    current: Window
    findings: tuple[Finding, ...]
    variance: tuple[VarianceSource, ...]
    trend: tuple[SeriesPoint, ...] | None = None
    daily: tuple[SeriesPoint, ...] = ()
    cluster_shares: tuple[ClusterShare, ...] = ()
    distributions: tuple[Distribution, ...] = ()
    details: tuple[Detail, ...] = ()
    notes: tuple[str, ...] = ()
    canary: list | None = None
    generator: dict = field(default_factory=dict)
    config: dict = field(default_factory=dict)

    def to_dict(self) -> dict:
        """The JSON document described by :func:`report_json_schema`."""
        return {
            "windows": {"baseline": self.baseline.to_dict(), "current": self.current.to_dict()},
            "findings": [f.to_dict() for f in self.findings],
            "variance_sources": [v.to_dict() for v in self.variance],
            "trend": None if self.trend is None else [p.to_dict() for p in self.trend],
            "daily": [p.to_dict() for p in self.daily],
            "cluster_shares": [c.to_dict() for c in self.cluster_shares],
            "distributions": [d.to_dict() for d in self.distributions],
            "details": [d.to_dict() for d in self.details],
            "notes": list(self.notes),
            "canary": None if self.canary is None else _plain(self.canary),
            "generator": _plain(self.generator),
            "config": _plain(self.config),
        }

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


def exit_code(report: DriftReport, fail_on: str = "alert") -> int:
    """1 when any finding is at least as severe as ``fail_on`` ('alert', 'warn' or 'never'), else 0."""
    if fail_on not in FAIL_ON:
        raise ValueError(f"fail_on must be one of {FAIL_ON}, not {fail_on!r}")
    if fail_on == "never":
        return 0
    worst = SEVERITIES.index(fail_on)
    return int(any(SEVERITIES.index(f.severity) <= worst for f in report.findings))


# --------------------------------------------------------------------------- JSON Schema


def _n(t: str | list) -> dict:
    types = [t] if isinstance(t, str) else list(t)
    return {"type": types + ["null"]}


_TS = {"type": ["string", "null"], "format": "date-time"}


def _window_schema() -> dict:
    return {
        "type": "object",
        "properties": {"start": _TS, "end": _TS, "n": {"type": "integer", "minimum": 0}},
        "required": ["start", "end", "n"],
        "additionalProperties": False,
    }


def _series_schema() -> dict:
    return {
        "type": "object",
        "properties": {
            "start": {"type": "string", "format": "date-time"},
            "end": {"type": "string", "format": "date-time"},
            "n": {"type": "integer"},
            "refusals": {"type": "integer"},
            "rate": _n("number"),
            "ci_low": _n("number"),
            "ci_high": _n("number"),
            "window": {"type": "string"},
        },
        "required": ["start", "end", "n", "refusals", "rate", "ci_low", "ci_high", "window"],
        "additionalProperties": False,
    }


def finding_json_schema() -> dict:
    """JSON Schema of one finding."""
    return {
        "type": "object",
        "properties": {
            "kind": {"type": "string", "enum": list(KINDS), "description": "What was compared."},
            "segment": {
                "type": "string",
                "description": (
                    "Traffic slice ('model=...', 'family=...', 'app=...', 'cluster=3 (label)', 'snapshot=...', ...); "
                    "'' = all."
                ),
            },
            "direction": {"type": "string", "enum": list(DIRECTIONS)},
            "baseline_value": {"type": ["number", "string", "null"]},
            "current_value": {"type": ["number", "string", "null"]},
            "effect": {
                "type": ["number", "null"],
                "description": "Per kind: " + "; ".join(f"{k}: {v}" for k, v in EFFECT_DOCS.items()),
            },
            "ci_low": _n("number"),
            "ci_high": _n("number"),
            "p_value": {**_n("number"), "minimum": 0, "maximum": 1},
            "q_value": {
                **_n("number"),
                "minimum": 0,
                "maximum": 1,
                "description": "Benjamini-Hochberg q-value across all tests in the report.",
            },
            "significant": {"type": "boolean"},
            "severity": {"type": "string", "enum": list(SEVERITIES)},
            "first_seen": {**_TS, "description": "When the change began, where it can be dated."},
            "summary": {"type": "string"},
            "evidence": {"type": "array", "items": {"type": "string"}, "maxItems": 20},
        },
        "required": list(FINDING_FIELDS),
        "additionalProperties": False,
    }


def report_json_schema() -> dict:
    """JSON Schema (2020-12) of ``DriftReport.to_dict()`` / ``tracelens drift --json``."""
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "$id": "https://tracelens.dev/schemas/drift_report.schema.json",
        "title": "tracelens drift report",
        "description": "Did the model change, or did our traffic? Findings between a baseline and a current window.",
        "type": "object",
        "properties": {
            "windows": {
                "type": "object",
                "properties": {"baseline": _window_schema(), "current": _window_schema()},
                "required": ["baseline", "current"],
                "additionalProperties": False,
            },
            "findings": {
                "type": "array",
                "items": {"$ref": "#/$defs/finding"},
                "description": "Sorted by severity (alert, warn, info), then kind, then segment.",
            },
            "variance_sources": {
                "type": "array",
                "items": {
                    "type": "object",
                    "properties": {
                        "source": {"type": "string"},
                        "status": {"type": "string", "enum": ["changed", "stable", "observed", "not observable"]},
                        "observation": {"type": "string"},
                        "findings": {"type": "array", "items": {"type": "string", "enum": list(KINDS)}},
                        "what_to_log": _n("string"),
                    },
                    "required": ["source", "status", "observation", "findings", "what_to_log"],
                    "additionalProperties": False,
                },
            },
            "trend": {"type": ["array", "null"], "items": {"$ref": "#/$defs/series_point"}},
            "daily": {"type": "array", "items": {"$ref": "#/$defs/series_point"}},
            "cluster_shares": {
                "type": "array",
                "items": {
                    "type": "object",
                    "properties": {
                        "cluster": {"type": "string"},
                        "label": {"type": "string"},
                        "baseline_share": {"type": "number"},
                        "current_share": {"type": "number"},
                        "q_value": _n("number"),
                    },
                    "required": ["cluster", "label", "baseline_share", "current_share", "q_value"],
                    "additionalProperties": False,
                },
            },
            "distributions": {
                "type": "array",
                "items": {
                    "type": "object",
                    "properties": {
                        "metric": {"type": "string"},
                        "edges": {"type": "array", "items": {"type": "number"}},
                        "baseline_counts": {"type": "array", "items": {"type": "integer"}},
                        "current_counts": {"type": "array", "items": {"type": "integer"}},
                        "baseline_quantiles": {"type": "array", "items": _n("number"), "minItems": 3, "maxItems": 3},
                        "current_quantiles": {"type": "array", "items": _n("number"), "minItems": 3, "maxItems": 3},
                    },
                    "required": [
                        "metric",
                        "edges",
                        "baseline_counts",
                        "current_counts",
                        "baseline_quantiles",
                        "current_quantiles",
                    ],
                    "additionalProperties": False,
                },
            },
            "details": {
                "type": "array",
                "items": {
                    "type": "object",
                    "properties": {
                        "kind": {"type": "string", "enum": list(KINDS)},
                        "segment": {"type": "string"},
                        "title": {"type": "string"},
                        "text": {"type": "string"},
                    },
                    "required": ["kind", "segment", "title", "text"],
                    "additionalProperties": False,
                },
            },
            "notes": {"type": "array", "items": {"type": "string"}},
            "canary": {"type": ["array", "null"], "items": {"type": "object"}},
            "generator": {
                "type": "object",
                "properties": {
                    "name": {"type": "string"},
                    "version": {"type": "string"},
                    "analysis_version": {"type": "string"},
                },
                "required": ["name", "version", "analysis_version"],
            },
            "config": {"type": "object"},
        },
        "required": [
            "windows",
            "findings",
            "variance_sources",
            "trend",
            "daily",
            "cluster_shares",
            "distributions",
            "details",
            "notes",
            "canary",
            "generator",
            "config",
        ],
        "additionalProperties": False,
        "$defs": {"finding": finding_json_schema(), "series_point": _series_schema()},
    }
