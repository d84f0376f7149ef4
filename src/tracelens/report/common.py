"""Presentation helpers shared by the renderers (pure functions of a DriftReport).

Contract: nothing here computes statistics; it only orders, groups and words
what :func:`tracelens.analysis.analyze` already decided, so every renderer
says the same thing.
"""

from __future__ import annotations

from tracelens.analysis import fmt
from tracelens.analysis.findings import DriftReport, Finding

#: Kinds that speak to the model's behaviour (as opposed to traffic or configuration).
BEHAVIOUR_KINDS = (
    "refusal_rate_adjusted",
    "matched_prompt_refusal",
    "matched_prompt_similarity",
    "response_semantic",
    "response_length",
    "stop_reason",
    "output_corruption",
    "tool_call_rate",
)
TRAFFIC_KINDS = ("prompt_mix", "prompt_semantic")
CONFIG_KINDS = ("model_snapshot", "alias_usage", "system_prompt", "tool_definitions", "sampling_params", "service_tier")

RATE_KINDS = frozenset(
    {
        "refusal_rate",
        "refusal_rate_adjusted",
        "matched_prompt_refusal",
        "prompt_mix",
        "stop_reason",
        "tool_call_rate",
        "error_rate",
        "output_corruption",
        "alias_usage",
    }
)


def window_line(report: DriftReport) -> str:
    """'baseline 2025-01-06 00:00 UTC .. 2025-01-13 00:00 UTC (2,000 traces) vs current ...'."""
    b, c = report.baseline, report.current
    return (
        f"baseline {fmt.ts(b.start)} .. {fmt.ts(b.end)} ({b.n:,} traces) vs "
        f"current {fmt.ts(c.start)} .. {fmt.ts(c.end)} ({c.n:,} traces)"
    )


def headline(report: DriftReport) -> list[str]:
    """A few plain sentences answering "did the model change, or did our traffic?"."""
    sig = [f for f in report.findings if f.significant]
    kinds = {f.kind for f in sig}
    lines: list[str] = []
    beh = [k for k in BEHAVIOUR_KINDS if k in kinds]
    cfg = [k for k in CONFIG_KINDS if k in kinds]
    if beh:
        lines.append("The model's behaviour changed on comparable traffic (" + ", ".join(beh) + ").")
    raw = [f for f in sig if f.kind == "refusal_rate" and f.segment == ""]
    adj = [f for f in report.findings if f.kind == "refusal_rate_adjusted" and f.segment == ""]
    if raw and adj and not adj[0].significant:
        lines.append(
            f"The refusal rate moved ({fmt.pp(raw[0].effect)}) but not once prompt mix is held fixed "
            f"({fmt.pp(adj[0].effect)}): the traffic changed, not the model."
        )
    if any(k in kinds for k in TRAFFIC_KINDS):
        lines.append("The traffic changed (" + ", ".join(k for k in TRAFFIC_KINDS if k in kinds) + ").")
    if cfg:
        lines.append("Configuration changed (" + ", ".join(cfg) + ") -- check these first.")
    if not lines:
        lines.append("No significant change between the windows.")
    return lines


def counts(report: DriftReport) -> dict[str, int]:
    """Number of findings per severity."""
    out = {"alert": 0, "warn": 0, "info": 0}
    for f in report.findings:
        out[f.severity] += 1
    return out


def value(f: Finding, v) -> str:
    """A baseline/current value as text, in the kind's natural unit."""
    if v is None:
        return "-"
    if isinstance(v, str):
        return fmt.clip(v, 40)
    if f.kind in RATE_KINDS or f.kind in ("model_snapshot", "system_prompt", "tool_definitions", "sampling_params"):
        return fmt.pct(v)
    if f.kind in ("prompt_semantic", "response_semantic"):
        return f"AUC {v:.3f}"
    if f.kind == "matched_prompt_similarity":
        return f"cos {v:.3f}"
    return fmt.num(v)


def effect(f: Finding) -> str:
    """Effect with interval, in the kind's natural unit."""
    if f.effect is None:
        return "-"
    if f.kind in RATE_KINDS and not (f.kind in ("prompt_mix", "stop_reason") and f.segment == ""):
        s = fmt.pp(f.effect)
        if f.ci_low is not None and f.ci_high is not None:
            s += f" [{fmt.pp(f.ci_low)}, {fmt.pp(f.ci_high)}]"
        return s
    if f.kind in ("prompt_mix", "stop_reason", "service_tier") and f.segment == "":
        return f"TV {fmt.pct(f.effect)}"
    if f.kind in ("model_snapshot", "system_prompt", "tool_definitions", "sampling_params", "service_tier"):
        return f"{fmt.pct(f.effect)} of traffic"
    s = f"{f.effect:+.3f}"
    if f.ci_low is not None and f.ci_high is not None:
        s += f" [{f.ci_low:+.3f}, {f.ci_high:+.3f}]"
    return s


def qtext(f: Finding) -> str:
    """q-value text, or 'certain' for deterministic findings."""
    if f.p_value is None:
        return "certain" if f.significant else "-"
    return fmt.pval(f.q_value).replace("p", "q", 1)


def by_severity(report: DriftReport) -> dict[str, list[Finding]]:
    """Findings grouped by severity, in report order."""
    out: dict[str, list[Finding]] = {"alert": [], "warn": [], "info": []}
    for f in report.findings:
        out[f.severity].append(f)
    return out


def info_summary(info: list[Finding]) -> str:
    """'refusal_rate (3 tests), prompt_mix (9 tests), ...' for the quiet findings."""
    seen: dict[str, int] = {}
    for f in info:
        seen[f.kind] = seen.get(f.kind, 0) + 1
    return ", ".join(f"{k} ({n} test{'s' if n > 1 else ''})" for k, n in seen.items())
