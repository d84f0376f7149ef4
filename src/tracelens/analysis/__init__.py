"""Drift analysis: did the model change, or did our traffic?

Public API (headless; never imports click or textual)::

    from tracelens.analysis import analyze, DriftConfig, DriftReport, Finding, exit_code

``analyze(baseline, current, ...)`` compares two windows of traces and returns
a :class:`DriftReport` of typed :class:`Finding` objects; renderers live in
:mod:`tracelens.report`. See ``docs/drift.md`` for the methods.
"""

from tracelens.analysis.drift import ANALYSIS_VERSION, DEFAULT_THRESHOLDS, DriftConfig, analyze
from tracelens.analysis.findings import (
    DETERMINISTIC_KINDS,
    KINDS,
    ClusterShare,
    Detail,
    Distribution,
    DriftReport,
    EvalResult,
    Finding,
    Generator,
    SeriesPoint,
    VarianceSource,
    Window,
    exit_code,
    report_json_schema,
    sort_findings,
)
from tracelens.analysis.variance import DEFAULT_ALIAS_PATTERNS

__all__ = [
    "ANALYSIS_VERSION",
    "DEFAULT_ALIAS_PATTERNS",
    "DEFAULT_THRESHOLDS",
    "DETERMINISTIC_KINDS",
    "KINDS",
    "ClusterShare",
    "Detail",
    "Distribution",
    "DriftConfig",
    "DriftReport",
    "EvalResult",
    "Finding",
    "Generator",
    "SeriesPoint",
    "VarianceSource",
    "Window",
    "analyze",
    "exit_code",
    "report_json_schema",
    "sort_findings",
]
