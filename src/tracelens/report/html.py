"""HTML renderer: one self-contained file (inline CSS, charts as base64 SVG images).

Contract: ``render_html(report, show_info=True) -> str``. No external assets,
no JavaScript. Charts come from :mod:`tracelens.report.charts` (deterministic
SVG, matplotlib: the ``charts`` extra; without it the page says so in their
place); :func:`strip_images` replaces their payloads for golden tests. All text
from traces is HTML-escaped.
"""

from __future__ import annotations

import base64
import re
from html import escape

from tracelens.analysis import fmt
from tracelens.analysis.findings import DriftReport
from tracelens.extras import has_extra, install_command
from tracelens.report import common

_CSS = """
body{font-family:-apple-system,Segoe UI,Helvetica,Arial,sans-serif;margin:2em auto;max-width:1100px;color:#222;padding:0 1em}
h1{font-size:1.5em}h2{font-size:1.2em;margin-top:1.6em;border-bottom:1px solid #ddd}
table{border-collapse:collapse;width:100%;font-size:.9em}td,th{border:1px solid #ddd;padding:.3em .5em;vertical-align:top;text-align:left}
th{background:#f6f6f6}.alert{color:#b00020;font-weight:bold}.warn{color:#a66a00;font-weight:bold}.info{color:#777}
.changed{color:#a66a00;font-weight:bold}.stable{color:#2e7d32}.observed{color:#1565c0}.not-observable{color:#777}
.headline{background:#f6f8fa;border-left:4px solid #4c72b0;padding:.6em 1em}pre{background:#f6f8fa;padding:.6em;overflow:auto;font-size:.85em}
.ev{color:#777;font-size:.8em}.charts img{max-width:100%}.dist img{max-width:49%}footer{color:#777;font-size:.8em;margin-top:2em}
"""

CHARTS_SKIPPED = f"Charts left out: the 'charts' extra is not installed ({install_command('charts')})."

_IMG = re.compile(r"data:image/svg\+xml;base64,[A-Za-z0-9+/=]+")


def strip_images(html_text: str) -> str:
    """The HTML with every inline image payload replaced by '...' (for golden comparisons)."""
    return _IMG.sub("data:image/svg+xml;base64,...", html_text)


def _img(svg: str | None, alt: str) -> str:
    if not svg:
        return ""
    data = base64.b64encode(svg.encode("utf-8")).decode("ascii")
    return f'<img alt="{escape(alt)}" src="data:image/svg+xml;base64,{data}">'


def render_html(report: DriftReport, show_info: bool = True) -> str:
    """The report as a single HTML document (see module docstring)."""
    e = escape
    n = common.counts(report)
    out = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        "<title>tracelens drift report</title>",
        f"<style>{_CSS}</style></head><body>",
        "<h1>tracelens drift report</h1>",
        f"<p>{e(common.window_line(report))}</p>",
        f'<div class="headline"><p><b>{n["alert"]} alert, {n["warn"]} warn, {n["info"]} info.</b></p><ul>'
        + "".join(f"<li>{e(s)}</li>" for s in common.headline(report))
        + "</ul></div>",
    ]
    groups = common.by_severity(report)
    shown = groups["alert"] + groups["warn"] + (groups["info"] if show_info else [])
    out.append("<h2>Findings</h2>")
    if shown:
        out.append(
            "<table><tr><th>severity</th><th>kind</th><th>segment</th><th>baseline</th><th>current</th>"
            "<th>effect [CI]</th><th>q</th><th>first seen</th><th>summary</th></tr>"
        )
        for f in shown:
            ev = ""
            if f.evidence:
                ev = f'<div class="ev">evidence: {e(", ".join(f.evidence[:10]))}{" ..." if len(f.evidence) > 10 else ""}</div>'
            out.append(
                f'<tr><td class="{f.severity}">{f.severity}</td><td>{e(f.kind)}</td><td>{e(f.segment or "all")}</td>'
                f"<td>{e(common.value(f, f.baseline_value))}</td><td>{e(common.value(f, f.current_value))}</td>"
                f"<td>{e(common.effect(f))}</td><td>{e(common.qtext(f))}</td>"
                f"<td>{e(fmt.ts(f.first_seen) if f.first_seen else '')}</td><td>{e(f.summary)}{ev}</td></tr>"
            )
        out.append("</table>")
    if groups["info"] and not show_info:
        out.append(f'<p class="info">No significant change: {e(common.info_summary(groups["info"]))}.</p>')
    if has_extra("charts"):
        from tracelens.report import charts  # matplotlib loads only when a report is drawn

        out.append('<h2>Charts</h2><div class="charts">')
        out.append(_img(charts.refusal_chart(report.daily), "daily refusal rate"))
        out.append(_img(charts.cluster_chart(report.cluster_shares), "cluster share changes"))
        out.append('</div><div class="dist">')
        for d in report.distributions:
            out.append(_img(charts.distribution_chart(d), f"{d.metric} distribution"))
        out.append("</div>")
    else:
        out.append(f'<h2>Charts</h2><p class="info">{e(CHARTS_SKIPPED)}</p>')
    if report.details:
        out.append("<h2>Details</h2>")
        for d in report.details:
            out.append(
                f"<details open><summary>{e(d.title)} ({e(d.segment or 'all')})</summary>"
                f"<pre>{e(d.text or '(no textual difference)')}</pre></details>"
            )
    canaries = common.canary_sets(report)
    if canaries:
        out.append(
            "<h2>Canary sets</h2><table><tr><th>set</th><th>runs</th><th>prompts</th><th>changed</th>"
            "<th>changed prompts</th></tr>"
        )
        for c in canaries:
            items = "".join(f"<li><code>{e(p.trace_id)}</code>: {e('; '.join(p.reasons) or 'changed')}</li>" for p in c.changed)
            out.append(
                f"<tr><td>{e(c.name)}</td><td>{e(common.canary_runs(c))}</td><td>{c.n_prompts:,}</td>"
                f'<td class="{"warn" if c.n_changed else "stable"}">{c.n_changed:,}</td>'
                f"<td>{'<ul>' + items + '</ul>' if items else ''}</td></tr>"
            )
        out.append("</table>")
    out.append(
        "<h2>Variance sources at a glance</h2><table><tr><th>source</th><th>status</th><th>what the logs show</th>"
        "<th>backed by</th><th>to make it observable, log</th></tr>"
    )
    for row in report.variance:
        out.append(
            f"<tr><td>{e(row.source)}</td><td class=\"{row.status.replace(' ', '-')}\">{e(row.status)}</td>"
            f"<td>{e(row.observation)}</td><td>{e(', '.join(row.findings))}</td><td>{e(row.what_to_log or '')}</td></tr>"
        )
    out.append("</table>")
    if report.trend:
        out.append("<h2>Weekly refusal rate</h2><table><tr><th>week from</th><th>traces</th><th>rate</th><th>95% CI</th></tr>")
        for p in report.trend:
            out.append(
                f"<tr><td>{e(fmt.ts(p.start)[:10])}</td><td>{p.n:,}</td><td>{e(fmt.pct(p.rate))}</td>"
                f"<td>{e(fmt.pct(p.ci_low))} .. {e(fmt.pct(p.ci_high))}</td></tr>"
            )
        out.append("</table>")
    if report.notes:
        out.append("<h2>Notes</h2><ul>" + "".join(f"<li>{e(s)}</li>" for s in report.notes) + "</ul>")
    g = report.generator
    out.append(
        f"<footer>{e(g.name)} {e(g.version)} (analysis v{e(g.analysis_version)})</footer></body></html>"
    )
    return "\n".join(out) + "\n"
