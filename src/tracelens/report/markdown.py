"""Markdown renderer: the weekly report as a post short enough for Slack, an issue or an email.

Contract: ``render_markdown(report, show_info=False, html_link=None) -> str``;
deterministic (golden-tested). At most :data:`MAX_LINES` lines and
:data:`MAX_CHARS` characters, whatever the report holds (Slack recommends
keeping a message under 4,000 characters and folds long ones): the title
naming the windows, the finding counts, the headline, the variance sources in
one line per status (a line each for the changed ones), one line per alert
and warn finding (effect, interval and since when; the list is cut with "...
and N more" when the bound needs it), one line per eval suite and target
(regressions first, at most :data:`MAX_EVAL_LINES`), the weekly
trend in one line, and a pointer to the full HTML report (``html_link``, a
path or URL) where the charts, evidence, diffs and info findings are.
"""

from __future__ import annotations

from tracelens.analysis import fmt
from tracelens.analysis.findings import DriftReport
from tracelens.report import common

#: the bound this renderer keeps (tests check it on a report with hundreds of findings)
MAX_CHARS = 4000
MAX_LINES = 40
#: alert/warn lines shown before the bound forces fewer
MAX_FINDING_LINES = 10
#: eval lines shown (regressions first); the HTML report lists them all
MAX_EVAL_LINES = 5

_ICON = {"alert": "🔴", "warn": "🟡", "info": "⚪"}


def _status_line(report: DriftReport) -> list[str]:
    by: dict[str, list[str]] = {}
    for row in report.variance:
        by.setdefault(row.status, []).append(row.source)
    out = []
    if by:
        parts = [f"{status}: {', '.join(srcs)}" for status, srcs in by.items()]
        out.append("**Variance sources** -- " + "; ".join(parts) + ".")
    for row in report.variance:
        if row.status == "changed":
            out.append(f"- {row.source}: {fmt.clip(row.observation, 200)}")
    return out


def _compose(report: DriftReport, show_info: bool, html_link: str | None, n_findings: int, clip: int) -> list[str]:
    n = common.counts(report)
    out = [f"**{common.title(report)}**", common.window_line(report), ""]
    out.append(f"{_ICON['alert']} {n['alert']} alert · {_ICON['warn']} {n['warn']} warn · {_ICON['info']} {n['info']} info")
    out += [f"- {fmt.clip(s, clip)}" for s in common.headline(report)]
    out.append("")
    out += _status_line(report)
    groups = common.by_severity(report)
    shown = groups["alert"] + groups["warn"]
    if shown:
        out += ["", "**Alerts and warnings**"]
        out += [f"- {_ICON[f.severity]} {fmt.clip(common.change_line(f), clip)}" for f in shown[:n_findings]]
        if len(shown) > n_findings:
            out.append(f"- ... and {len(shown) - n_findings} more in the full report")
    evals = common.eval_results(report)
    if evals:
        out += ["", "**Evals** (latest run per target vs the previous one)"]
        for e in evals[:MAX_EVAL_LINES]:
            icon = _ICON["alert"] if e.regressed else "🟢"
            out.append(f"- {icon} {fmt.clip(common.eval_line(e), clip)}")
        if len(evals) > MAX_EVAL_LINES:
            out.append(f"- ... and {len(evals) - MAX_EVAL_LINES} more in the full report")
    tail = []
    if groups["info"]:
        quiet = f"{len(groups['info'])} tests without a significant change"
        tail.append(quiet + (f": {fmt.clip(common.info_summary(groups['info']), clip)}." if show_info else "."))
    if report.trend:
        tail.append("Weekly refusal rate: " + " · ".join(fmt.pct(p.rate) for p in report.trend) + ".")
    if report.notes:
        tail.append(f"{len(report.notes)} note{'s' if len(report.notes) != 1 else ''} on how this was computed in the full report.")
    if tail:
        out += [""] + tail
    out.append("")
    if html_link:
        out.append(f"Full report (charts, evidence, diffs): {html_link}")
    else:
        out.append("Full report with charts and evidence: run the same command with `--html report.html`.")
    g = report.generator
    out.append(f"_{g.name} {g.version} (analysis v{g.analysis_version})_")
    return out


def render_markdown(report: DriftReport, show_info: bool = False, html_link: str | None = None) -> str:
    """The report as a short Markdown post (see module docstring)."""
    n_shown = sum(1 for f in report.findings if f.severity in ("alert", "warn"))
    # fewest cuts first: drop finding lines, then shorten every line, until the post fits the bound
    for clip in (240, 160, 100):
        for k in range(min(n_shown, MAX_FINDING_LINES), -1, -1):
            lines = _compose(report, show_info, html_link, k, clip)
            text = "\n".join(lines) + "\n"
            if len(text) <= MAX_CHARS and len(lines) <= MAX_LINES:
                return text
    return "\n".join(lines[:MAX_LINES])[: MAX_CHARS - 1] + "\n"
