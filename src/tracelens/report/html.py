"""HTML renderer: the weekly report a team lead reads in 30 seconds, as one self-contained file.

Contract: ``render_html(report, show_info=False, timeline=None) -> str``.

Reading order: the title names the windows; the headline ("did the model
change, or did our traffic?") and the variance-sources table come first;
then the charts (daily refusal rate per served snapshot and each snapshot's
traffic share, with snapshot rollovers, alias re-resolutions and
system-prompt changes marked on the time axis; per-topic refusal small
multiples; length and latency distributions; topic share changes); then
alert and warn findings as cards (values, effect and interval, q, first seen,
evidence trace ids and the ``tracelens show`` command to open one); info
findings collapsed in a ``<details>`` (open with ``show_info``); diffs,
the Evals table (regressions first, highlighted), the weekly trend and notes
last.

Self-contained: inline CSS (with a print stylesheet), charts as base64 SVG
data URIs, no JavaScript, no external fonts or requests. Readable from
1,000 px wide (nothing forces horizontal scrolling). The time charts need a
:class:`~tracelens.report.timeline.Timeline` (built by the CLI from the
windows' traces); without one the page falls back to the report's daily
refusal series. Charts come from :mod:`tracelens.report.charts` (matplotlib:
the ``charts`` extra; without it the page says so in their place).
:func:`strip_images` replaces image payloads for golden tests. All text from
traces is HTML-escaped. Deterministic: same inputs, same bytes.
"""

from __future__ import annotations

import base64
import re
from html import escape

from tracelens.analysis import fmt
from tracelens.analysis.findings import DriftReport, Finding
from tracelens.extras import has_extra, install_command
from tracelens.report import common
from tracelens.report.timeline import Timeline

_CSS = """
*{box-sizing:border-box}
body{font-family:-apple-system,"Segoe UI",Helvetica,Arial,sans-serif;margin:0 auto;max-width:1180px;color:#1f2328;
padding:1.2em 1.4em 2em;line-height:1.45;font-size:15px}
h1{font-size:1.45em;margin:.2em 0 .1em}h2{font-size:1.15em;margin:1.6em 0 .5em;padding-bottom:.2em;border-bottom:1px solid #d8dee4}
.sub{color:#57606a;margin:.1em 0 .6em;font-size:.92em}
.badge{display:inline-block;border-radius:3px;padding:0 .45em;font-size:.8em;font-weight:600;margin-right:.3em;color:#fff}
.headline{background:#f6f8fa;border-left:4px solid #4c72b0;padding:.5em 1em .6em;margin:.6em 0}
.headline>p{margin:.2em 0 .3em}.headline ul{margin:.3em 0 0;padding-left:1.2em}.headline li{margin:.2em 0}
table{border-collapse:collapse;width:100%;font-size:.88em;table-layout:fixed}
td,th{border-bottom:1px solid #e5e8eb;padding:.3em .5em;vertical-align:top;text-align:left;overflow-wrap:anywhere}
th{background:#f6f8fa;font-weight:600}
.alert{color:#cf222e;font-weight:600}.warn{color:#9a6700;font-weight:600}.info{color:#6e7781}
.changed{color:#9a6700;font-weight:600}.stable{color:#1a7f37}.observed{color:#0969da}.not-observable{color:#6e7781}
.small{font-size:.85em;color:#57606a}
figure{margin:.6em 0 1em}figure img{display:block;max-width:100%;height:auto}
figcaption{font-size:.88em;color:#57606a;margin-top:.2em}
.pair{display:grid;grid-template-columns:repeat(auto-fit,minmax(380px,1fr));gap:1em}
ol.marks{font-size:.88em;margin:.2em 0 1em;padding-left:1.6em}ol.marks li{margin:.1em 0}
.cards{display:grid;grid-template-columns:repeat(auto-fill,minmax(440px,1fr));gap:.8em}
.card{border:1px solid #d8dee4;border-left:4px solid #8c959f;border-radius:4px;padding:.55em .8em;break-inside:avoid;min-width:0}
.card.alert{border-left-color:#cf222e;color:inherit;font-weight:normal}.card.warn{border-left-color:#bf8700;color:inherit;font-weight:normal}
.card h3{font-size:.98em;margin:0 0 .25em;overflow-wrap:anywhere}.card h3 .seg{font-weight:normal;color:#57606a}
.card p{margin:.25em 0;font-size:.9em;overflow-wrap:anywhere}
.facts{display:flex;flex-wrap:wrap;gap:.2em 1.2em;font-size:.85em;margin:.3em 0}.facts b{font-weight:600}
.ev{font-size:.8em;color:#57606a;overflow-wrap:anywhere}
code{font-family:ui-monospace,SFMono-Regular,Menlo,Consolas,monospace;font-size:.9em;background:#f6f8fa;padding:0 .2em;border-radius:3px}
details{margin:.8em 0}details>summary{cursor:pointer;font-weight:600}
pre{background:#f6f8fa;padding:.6em;overflow:auto;font-size:.82em;white-space:pre-wrap;overflow-wrap:anywhere}
footer{color:#6e7781;font-size:.8em;margin-top:2em}
.badge.alert{background:#cf222e;color:#fff}.badge.warn{background:#bf8700;color:#fff}.badge.info{background:#8c959f;color:#fff}
figure.wide img{width:100%}
#trend table{max-width:640px}
@media print{
body{max-width:none;padding:0;font-size:10.5pt}h2{break-after:avoid}
.card,figure,tr{break-inside:avoid}.cards{grid-template-columns:1fr 1fr}
details::details-content{content-visibility:visible;display:block}
.headline,.badge,th{-webkit-print-color-adjust:exact;print-color-adjust:exact}
}
"""

CHARTS_SKIPPED = f"Charts left out: the 'charts' extra is not installed ({install_command('charts')})."

_IMG = re.compile(r"data:image/svg\+xml;base64,[A-Za-z0-9+/=]+")


def strip_images(html_text: str) -> str:
    """The HTML with every inline image payload replaced by '...' (for golden comparisons)."""
    return _IMG.sub("data:image/svg+xml;base64,...", html_text)


_SVG_SIZE = re.compile(r'<svg[^>]*\swidth="([0-9.]+)pt"[^>]*\sheight="([0-9.]+)pt"')


def _img(svg: str | None, alt: str) -> str:
    if not svg:
        return ""
    data = base64.b64encode(svg.encode("utf-8")).decode("ascii")
    # the intrinsic size up front, so the layout does not jump while images decode (and print scales them)
    m = _SVG_SIZE.search(svg[:2000])
    size = f' width="{round(float(m.group(1)) * 4 / 3)}" height="{round(float(m.group(2)) * 4 / 3)}"' if m else ""
    return f'<img alt="{escape(alt)}"{size} src="data:image/svg+xml;base64,{data}">'


def _figure(svg: str | None, alt: str, caption: str, ident: str, wide: bool = True) -> str:
    img = _img(svg, alt)
    if not img:
        return ""
    cls = ' class="wide"' if wide else ""
    return f'<figure id="{ident}"{cls}>{img}<figcaption>{escape(caption)}</figcaption></figure>'


def _evidence(f: Finding) -> str:
    if not f.evidence:
        return ""
    e = escape
    ids = ", ".join(f"<code>{e(t)}</code>" for t in f.evidence[:4])
    more = f" and {len(f.evidence) - 4} more" if len(f.evidence) > 4 else ""
    return (
        f'<p class="ev">evidence: {ids}{more} &middot; open one with '
        f"<code>tracelens show {e(f.evidence[0])}</code></p>"
    )


def _card(f: Finding, i: int) -> str:
    e = escape
    seg = f' <span class="seg">{e(f.segment)}</span>' if f.segment else ""
    facts = [
        f"<span><b>{e(common.value(f, f.baseline_value))} &rarr; {e(common.value(f, f.current_value))}</b></span>",
        f"<span>effect {e(common.effect(f))}</span>",
        f"<span>{e(common.qtext(f))}</span>",
    ]
    if f.first_seen:
        facts.append(f"<span>first seen {e(fmt.ts(f.first_seen))}</span>")
    return (
        f'<article class="card {f.severity}" id="finding-{i}"><h3><span class="badge {f.severity}">{f.severity}</span>'
        f"{e(f.kind)}{seg}</h3>"
        f'<div class="facts">{"".join(facts)}</div><p>{e(f.summary)}</p>{_evidence(f)}</article>'
    )


def _charts(report: DriftReport, timeline: Timeline | None, marks: list[common.Mark]) -> list[str]:
    from tracelens.report import charts  # matplotlib loads only when a report is drawn

    out = ['<section id="charts"><h2>Did the model change, or did our traffic?</h2>']
    first = ""
    if timeline is not None:
        first = _figure(
            charts.snapshot_refusal_chart(timeline, marks), "daily refusal rate per served snapshot",
            "Daily refusal rate per served snapshot (days with at least 5 labelled traces). "
            "Grey background: the current window.", "chart-snapshot-refusal",
        )
    if not first:
        first = _figure(charts.refusal_chart(report.daily, marks), "daily refusal rate",
                        "Daily refusal rate of all traffic with its 95% Wilson band.", "chart-refusal")
    out.append(first)
    if marks:
        out.append('<ol class="marks" id="marks">')
        for m in marks:
            out.append(f"<li><b>{escape(fmt.ts(m.at))}</b>: {escape('; '.join(m.labels))}</li>")
        out.append("</ol>")
    if timeline is not None:
        out.append(_figure(charts.snapshot_share_chart(timeline, marks), "traffic share per snapshot",
                           "Share of each day's traffic served by each snapshot.", "chart-snapshot-share"))
        out.append(_figure(
            charts.topic_refusal_chart(timeline, marks, {k: common.topic_phrase(k) for k in timeline.topic_order}),
            "daily refusal rate per topic",
            "Topics with a significant refusal change: daily refusal rate; thick lines are the baseline (blue) and "
            "current (orange) window rates.", "chart-topics", wide=len(timeline.topic_order) > 1,
        ))
    dists = [_figure(charts.distribution_chart(d), f"{d.metric} distribution",
                     f"{d.metric}: baseline vs current, share of traces per bin (log scale), medians dotted.",
                     f"chart-dist-{i}", wide=False) for i, d in enumerate(report.distributions)]
    if any(dists):
        out.append('<div class="pair">' + "".join(dists) + "</div>")
    out.append(_figure(charts.cluster_chart(report.cluster_shares), "topic share changes",
                       "Prompt topics whose share of traffic moved most (did our traffic change?).", "chart-clusters"))
    out.append("</section>")
    return out


def render_html(report: DriftReport, show_info: bool = False, timeline: Timeline | None = None) -> str:
    """The report as a single HTML document (see module docstring)."""
    e = escape
    n = common.counts(report)
    title = common.title(report)
    marks = common.marks(report)
    out = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        f"<title>{e(title)} - tracelens</title>",
        f"<style>{_CSS}</style></head><body>",
        f'<header id="top"><h1>{e(title)}</h1><p class="sub">{e(common.window_line(report))}</p></header>',
        f'<section class="headline" id="headline"><p><span class="badge alert">{n["alert"]} alert</span>'
        f'<span class="badge warn">{n["warn"]} warn</span><span class="badge info">{n["info"]} info</span></p><ul>'
        + "".join(f"<li>{e(s)}</li>" for s in common.headline(report))
        + "</ul></section>",
    ]
    out.append(
        '<section id="variance"><h2>Variance sources at a glance</h2><table>'
        '<colgroup><col style="width:17%"><col style="width:11%"><col style="width:50%"><col style="width:22%"></colgroup>'
        "<tr><th>source</th><th>status</th><th>what the logs show</th><th>backed by</th></tr>"
    )
    for row in report.variance:
        log = f'<div class="small">to make it observable, log: {e(row.what_to_log)}</div>' if row.what_to_log else ""
        out.append(
            f"<tr><td>{e(row.source)}</td><td class=\"{row.status.replace(' ', '-')}\">{e(row.status)}</td>"
            f"<td>{e(row.observation)}{log}</td><td class=\"small\">{e(', '.join(row.findings))}</td></tr>"
        )
    out.append("</table></section>")
    if has_extra("charts"):
        out += _charts(report, timeline, marks)
    else:
        out.append(f'<section id="charts"><h2>Charts</h2><p class="info">{e(CHARTS_SKIPPED)}</p></section>')

    groups = common.by_severity(report)
    shown = groups["alert"] + groups["warn"]
    out.append(f'<section id="findings"><h2>Alerts and warnings ({len(shown)})</h2>')
    if shown:
        out.append('<div class="cards">' + "".join(_card(f, i) for i, f in enumerate(shown, 1)) + "</div>")
    else:
        out.append("<p>No finding reached warn or alert severity.</p>")
    out.append("</section>")
    if groups["info"]:
        out.append(
            f'<details id="info"{" open" if show_info else ""}><summary>{len(groups["info"])} tests without a '
            f'significant change (info)</summary><p class="small">{e(common.info_summary(groups["info"]))}</p>'
            '<table><colgroup><col style="width:18%"><col style="width:30%"><col style="width:22%">'
            '<col style="width:20%"><col style="width:10%"></colgroup>'
            "<tr><th>kind</th><th>segment</th><th>baseline &rarr; current</th><th>effect [CI]</th><th>q</th></tr>"
        )
        for f in groups["info"]:
            out.append(
                f"<tr><td>{e(f.kind)}</td><td>{e(f.segment or 'all')}</td>"
                f"<td>{e(common.value(f, f.baseline_value))} &rarr; {e(common.value(f, f.current_value))}</td>"
                f"<td>{e(common.effect(f))}</td><td>{e(common.qtext(f))}</td></tr>"
            )
        out.append("</table></details>")
    if report.details:
        out.append('<section id="diffs"><h2>Details</h2>')
        for d in report.details:
            out.append(
                f"<details><summary>{e(d.title)} ({e(d.segment or 'all')})</summary>"
                f"<pre>{e(d.text or '(no textual difference)')}</pre></details>"
            )
        out.append("</section>")
    evals = common.eval_results(report)
    if evals:
        out.append(
            '<section id="evals"><h2>Evals</h2><p class="small">Latest run of each stored suite per target against '
            "its previous run on that target (paired on the cases both graded).</p><table>"
            "<tr><th>suite (target)</th><th>run</th><th>pass rate</th><th>vs previous</th><th>verdict</th>"
            "<th>pass&rarr;fail</th><th>errors</th><th>refusals</th><th>p50</th></tr>"
        )
        for ev in evals:
            cls = ' class="alert"' if ev.regressed else ' class="stable"' if ev.previous_run_id else ""
            flipped = ""
            if ev.n_pass_to_fail:
                ids = ", ".join(f"<code>{e(i)}</code>" for i in ev.pass_to_fail[:5])
                flipped = f"{ev.n_pass_to_fail:,}: {ids}" + (", &hellip;" if ev.n_pass_to_fail > 5 else "")
            run = e(ev.run_id) + (f" vs {e(ev.previous_run_id)}" if ev.previous_run_id else "")
            out.append(
                f"<tr><td>{e(common.eval_name(ev))}</td><td class=\"small\">{run}</td><td>{e(common.eval_rate(ev))}</td>"
                f"<td>{e(common.eval_delta(ev))}</td><td{cls}>{e(common.eval_verdict(ev))}</td>"
                f"<td>{flipped or '0'}</td><td>{ev.errors:,}</td><td>{e(fmt.pct(ev.refusal_rate))}</td>"
                f"<td>{'n/a' if ev.latency_p50_ms is None else f'{ev.latency_p50_ms:,.0f} ms'}</td></tr>"
            )
        out.append("</table></section>")
    if report.trend:
        out.append(
            '<section id="trend"><h2>Weekly refusal rate</h2><table><tr><th>week from</th><th>traces</th><th>rate</th>'
            "<th>95% CI</th></tr>"
        )
        for p in report.trend:
            out.append(
                f"<tr><td>{e(fmt.ts(p.start)[:10])}</td><td>{p.n:,}</td><td>{e(fmt.pct(p.rate))}</td>"
                f"<td>{e(fmt.pct(p.ci_low))} .. {e(fmt.pct(p.ci_high))}</td></tr>"
            )
        out.append("</table></section>")
    if report.notes:
        out.append('<section id="notes"><h2>Notes</h2><ul class="small">'
                   + "".join(f"<li>{e(s)}</li>" for s in report.notes) + "</ul></section>")
    g = report.generator
    out.append(
        f"<footer>{e(g.name)} {e(g.version)} (analysis v{e(g.analysis_version)})</footer></body></html>"
    )
    return "\n".join(out) + "\n"
