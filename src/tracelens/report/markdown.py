"""Markdown renderer: a DriftReport as text to paste into Slack, an issue or an email.

Contract: ``render_markdown(report, show_info=False) -> str``; deterministic
(golden-tested). Findings are bullet lists (they survive Slack); the
variance-sources table is a GitHub-style table; diffs go in ```diff blocks.
"""

from __future__ import annotations

from tracelens.analysis import fmt
from tracelens.analysis.findings import DriftReport, Finding
from tracelens.report import common

_ICON = {"alert": "🔴", "warn": "🟡", "info": "⚪"}


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def _bullet(f: Finding) -> str:
    meta = [f"effect {common.effect(f)}", common.qtext(f)]
    if f.first_seen:
        meta.append(f"first seen {fmt.ts(f.first_seen)}")
    seg = f" `{f.segment}`" if f.segment else ""
    line = f"- {_ICON[f.severity]} **{f.kind}**{seg}: {f.summary} _({'; '.join(meta)})_"
    if f.evidence:
        ev = ", ".join(f"`{e}`" for e in f.evidence[:5]) + (" ..." if len(f.evidence) > 5 else "")
        line += f"\n  - evidence: {ev}"
    return line


def render_markdown(report: DriftReport, show_info: bool = False) -> str:
    """The report as Markdown text (see module docstring)."""
    n = common.counts(report)
    out = ["## tracelens drift report", "", common.window_line(report), ""]
    out.append(f"**{n['alert']} alert, {n['warn']} warn, {n['info']} info.** " + " ".join(common.headline(report)))
    out.append("")
    groups = common.by_severity(report)
    for sev, title in (("alert", "Alerts"), ("warn", "Warnings")):
        if groups[sev]:
            out += [f"### {title}", ""] + [_bullet(f) for f in groups[sev]] + [""]
    if groups["info"]:
        out += ["### No significant change", ""]
        if show_info:
            out += [_bullet(f) for f in groups["info"]]
        else:
            out.append(common.info_summary(groups["info"]) + ".")
        out.append("")
    if report.details:
        out += ["### Details", ""]
        for d in report.details:
            out += [f"**{d.title}** (`{d.segment or 'all'}`)", "", "```diff", d.text or "(no textual difference)", "```", ""]
    canaries = common.canary_sets(report)
    if canaries:
        out += ["### Canary sets", ""]
        for c in canaries:
            out.append(f"- {'🟡' if c.n_changed else '🟢'} **{c.name}**: {common.canary_runs(c)} -- {common.canary_counts(c)}")
            for p in c.changed:
                out.append(f"  - `{p.trace_id}`: {'; '.join(p.reasons) or 'changed'}")
        out.append("")
    out += [
        "### Variance sources at a glance",
        "",
        "| source | status | what the logs show | backed by | to make it observable, log |",
        "|---|---|---|---|---|",
    ]
    for row in report.variance:
        out.append(
            f"| {row.source} | {row.status} | {_cell(row.observation)} | {', '.join(row.findings)} | "
            f"{_cell(row.what_to_log or '')} |"
        )
    out.append("")
    if report.trend:
        out += ["### Weekly refusal rate", "", "| week from | traces | refusal rate | 95% CI |", "|---|---|---|---|"]
        for p in report.trend:
            out.append(f"| {fmt.ts(p.start)[:10]} | {p.n:,} | {fmt.pct(p.rate)} | {fmt.pct(p.ci_low)} .. {fmt.pct(p.ci_high)} |")
        out.append("")
    if report.notes:
        out += ["### Notes", ""] + [f"- {s}" for s in report.notes] + [""]
    g = report.generator
    out.append(f"_{g.name} {g.version} (analysis v{g.analysis_version})_")
    return "\n".join(out) + "\n"
