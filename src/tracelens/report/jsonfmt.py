"""JSON renderer: ``DriftReport.to_dict()`` as text, valid against schemas/drift_report.schema.json."""

from __future__ import annotations

from tracelens.analysis.findings import DriftReport


def render_json(report: DriftReport, indent: int | None = 2) -> str:
    """The report as JSON text (UTF-8, keys in schema order, trailing newline)."""
    return report.to_json(indent=indent)
