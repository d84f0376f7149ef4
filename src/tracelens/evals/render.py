"""The eval report and the upgrade verdict as text: terminal (rich), Markdown, and one self-contained HTML file.

Contract: ``render_report(report, fmt)`` / ``render_verdict(verdict, fmt)``
with fmt ``markdown`` or ``html`` return text; ``print_report`` /
``print_verdict`` / ``print_summaries`` write to a rich ``Console``. Every
figure shown comes from the typed results of ``tracelens.evals.report``;
all text from cases and answers is escaped (HTML) or made visible (terminal).
The HTML holds a pass-rate trend chart per target (matplotlib, the
``charts`` extra; the page says so when it is missing), no scripts and no
external requests.
"""

from __future__ import annotations

from html import escape

from rich.console import Console
from rich.table import Table
from rich.text import Text

from tracelens.evals.report import EvalReport, RunSummary, UpgradeVerdict
from tracelens.evals.stats import PairedComparison, RateCI
from tracelens.textsafe import one_line, visible


def pct(x: float | None, digits: int = 1) -> str:
    """A rate as a percentage (``-`` when unknown)."""
    return "-" if x is None else f"{x * 100:.{digits}f}%"


def rate_text(r: RateCI) -> str:
    """``82.0% [75.1–87.4]`` (``-`` when no repeat was graded)."""
    if r.rate is None:
        return "-"
    return f"{pct(r.rate)} [{pct(r.lo)}–{pct(r.hi)}]"


def delta_text(c: PairedComparison | None) -> str:
    """``-9.5 pts [-15.2, -3.8], p=0.002 (exact McNemar)``."""
    if c is None:
        return "first run on this target"
    if c.delta is None:
        return c.verdict
    ci = f" [{c.delta_lo * 100:+.1f}, {c.delta_hi * 100:+.1f}]" if c.delta_lo is not None else ""
    p = f", p={c.p_value:.3g}" if c.p_value is not None else ""
    return f"{c.delta * 100:+.1f} pts{ci}{p} ({c.method})"


def _ms(x: float | None) -> str:
    return "-" if x is None else f"{x:,.0f} ms"


def _usd(x: float | None) -> str:
    return "-" if x is None else f"${x:,.4f}"


def summary_row(s: RunSummary) -> dict[str, str]:
    """The cells every format shows for one run."""
    verdict = "first run" if s.vs_previous is None else s.vs_previous.overall.verdict
    if s.regressed_groups:
        verdict = "regression on " + ", ".join(s.regressed_groups)
    return {"target": s.run.target, "run": s.run.run_id, "when": s.run.started_at.strftime("%Y-%m-%d %H:%M"),
            "pass rate": rate_text(s.rate), "errors": str(s.rate.n_errors), "refusals": pct(s.refusal_rate),
            "latency p50": _ms(s.latency_p50_ms), "cost": _usd(s.cost_usd),
            "vs previous": delta_text(s.vs_previous.overall if s.vs_previous else None), "verdict": verdict}


# ---------------------------------------------------------------------------------------------- terminal


def _table(rows: list[dict[str, str]], regressed: list[bool]) -> Table:
    t = Table(box=None, header_style="bold")
    for k in rows[0] if rows else ():
        t.add_column(k, overflow="fold")
    for row, bad in zip(rows, regressed, strict=True):
        t.add_row(*[Text(visible(v), style="bold red" if bad and k == "verdict" else "") for k, v in row.items()])
    return t


def print_summaries(summaries: list[RunSummary], console: Console) -> None:
    """One block per run (it reads at 80 columns): figures, the test against the previous run, the flipped cases."""
    if not summaries:
        console.print("no results")
        return
    for s in summaries:
        row = summary_row(s)
        console.print(Text(visible(s.run.target), style="bold") + Text(f"  run {s.run.run_id}  {row['when']} UTC"))
        console.print(f"  pass rate {row['pass rate']}  errors {row['errors']}  refusals {row['refusals']}  "
                      f"latency p50 {row['latency p50']}  cost {row['cost']}")
        if s.vs_previous is None:
            console.print(Text("  first run on this target: nothing to compare with yet", style="dim"))
            continue
        o = s.vs_previous.overall
        verdict = Text(o.verdict.upper() if o.verdict == "regression" else o.verdict,
                       style="bold red" if o.verdict == "regression" else "")
        console.print(Text(f"  vs run {s.previous_run_id}: {delta_text(o)} → ") + verdict)
        if s.regressed_groups:
            console.print(Text("  regressed (adjusted): " + ", ".join(visible(g) for g in s.regressed_groups),
                               style="red"))
        if o.pass_to_fail:
            more = " …" if len(o.pass_to_fail) > 10 else ""
            console.print(Text(f"  {len(o.pass_to_fail)} case(s) passed before and fail now: "
                               + ", ".join(visible(i) for i in o.pass_to_fail[:10]) + more, style="yellow"))
        if o.fail_to_pass:
            console.print(f"  {len(o.fail_to_pass)} case(s) failed before and pass now")


def print_report(report: EvalReport, console: Console) -> None:
    """The report for a terminal: latest runs, trends, leaderboard."""
    console.print(Text(f"suite {report.suite}: {report.cases} case(s), {report.runs} run(s)", style="bold"))
    print_summaries(report.latest, console)
    for target, points in report.trends.items():
        if len(points) > 1:
            line = " → ".join(pct(p.rate.rate, 0) + ("↓" if p.regressed else "") for p in points[-8:])
            console.print(f"trend {visible(target)}: {line}")
    if report.leaderboard is not None:
        console.print(Text("leaderboard (latest run per target, paired on shared cases)", style="bold"))
        for e in report.leaderboard.entries:
            vs = "reference" if e.is_reference else delta_text(e.vs_reference) + (" · tied" if e.tied else "")
            console.print(f"  {e.rank}. {visible(e.target)}  {rate_text(e.rate)}  {vs}")


def print_verdict(v: UpgradeVerdict, console: Console) -> None:
    """The upgrade verdict for a terminal."""
    style = {"regressions": "bold red", "safe": "bold green", "improvement": "bold green"}.get(v.verdict, "bold")
    console.print(Text(f"{v.baseline.run.target} → {v.candidate.run.target}: ", style="bold")
                  + Text(visible(v.headline), style=style))
    print_summaries([v.baseline, v.candidate], console)
    for g in v.comparison.groups:
        if g.comparison.n_paired:
            console.print(f"  {visible(g.group)}: {delta_text(g.comparison)}, adjusted p="
                          f"{'-' if g.p_adjusted is None else f'{g.p_adjusted:.3g}'} → {g.verdict}")
    for title, cases in (("worse on the candidate", v.worse), ("better on the candidate", v.better)):
        if cases:
            console.print(Text(f"{len(cases)} case(s) {title}:", style="bold"))
            for c in cases[:20]:
                console.print(f"  {visible(c.case_id)}  failed: {visible(', '.join(c.failed_graders) or '-')}")
                console.print(f"      before: {one_line(c.baseline_answer, 90)}")
                console.print(f"      now:    {one_line(c.candidate_answer, 90)}")


# ---------------------------------------------------------------------------------------------- markdown


def _md_table(rows: list[dict[str, str]]) -> list[str]:
    if not rows:
        return []
    keys = list(rows[0])
    out = ["| " + " | ".join(keys) + " |", "|" + "---|" * len(keys)]
    out += ["| " + " | ".join(r[k].replace("|", "\\|") for k in keys) + " |" for r in rows]
    return out


def _md_report(report: EvalReport) -> str:
    lines = [f"# Eval report: {report.suite}", "",
             f"{report.cases} case(s), {report.runs} run(s). "
             + ("**A target regressed against its previous run.**" if report.regressed else
                "No target regressed against its previous run."), ""]
    lines += _md_table([summary_row(s) for s in report.latest])
    if report.leaderboard is not None:
        lines += ["", "## Leaderboard (latest run per target, paired on shared cases)", ""]
        for e in report.leaderboard.entries:
            vs = "reference" if e.is_reference else delta_text(e.vs_reference) + (" · tied" if e.tied else "")
            lines.append(f"{e.rank}. `{e.target}` {rate_text(e.rate)}: {vs}")
    for s in report.latest:
        if s.vs_previous and s.vs_previous.overall.pass_to_fail:
            lines += ["", f"Cases that fail now on `{s.run.target}`: "
                      + ", ".join(f"`{c}`" for c in s.vs_previous.overall.pass_to_fail[:20])]
    return "\n".join(lines) + "\n"


def _md_verdict(v: UpgradeVerdict) -> str:
    lines = [f"# Upgrade verdict: {v.baseline.run.target} → {v.candidate.run.target}", "",
             f"**{v.headline}**", ""]
    lines += _md_table([summary_row(v.baseline), summary_row(v.candidate)])
    for title, cases in (("Worse on the candidate", v.worse), ("Better on the candidate", v.better)):
        if cases:
            lines += ["", f"## {title} ({len(cases)})", ""]
            lines += [f"- `{c.case_id}` (failed: {', '.join(c.failed_graders) or '-'}): before "
                      f"“{one_line(c.baseline_answer, 80)}”, now “{one_line(c.candidate_answer, 80)}”"
                      for c in cases[:20]]
    return "\n".join(lines) + "\n"


# ---------------------------------------------------------------------------------------------- html


def _trend_svg(report: EvalReport) -> str | None:
    from tracelens.extras import has_extra

    if not has_extra("charts") or not any(len(p) > 1 for p in report.trends.values()):
        return None
    from tracelens.report.charts import PALETTE, _chart

    @_chart
    def build(report: EvalReport):
        from matplotlib.figure import Figure
        from matplotlib.ticker import PercentFormatter

        fig = Figure(figsize=(8, 3.2))
        ax = fig.add_subplot()
        for i, (target, points) in enumerate(report.trends.items()):
            xs = list(range(len(points)))
            ys = [p.rate.rate for p in points]
            colour = PALETTE[i % len(PALETTE)]
            ax.plot(xs, ys, marker="o", color=colour, label=target)
            lo = [p.rate.lo if p.rate.lo is not None else p.rate.rate for p in points]
            hi = [p.rate.hi if p.rate.hi is not None else p.rate.rate for p in points]
            ax.fill_between(xs, lo, hi, color=colour, alpha=0.15, linewidth=0)
            for x, p in zip(xs, points, strict=True):
                if p.regressed:
                    ax.annotate("regression", (x, p.rate.rate), textcoords="offset points", xytext=(0, -14),
                                ha="center", color="#cf222e", fontsize=8)
        ax.set_ylim(0, 1.02)
        ax.yaxis.set_major_formatter(PercentFormatter(1.0))
        ax.set_xlabel("run (oldest → newest)")
        ax.set_ylabel("pass rate (95% CI)")
        ax.legend(loc="upper center", bbox_to_anchor=(0.5, -0.25), ncol=2, frameon=False, fontsize=8)
        return fig

    return build(report)


def _html_table(rows: list[dict[str, str]], bad: list[bool]) -> str:
    if not rows:
        return ""
    head = "".join(f"<th>{escape(k)}</th>" for k in rows[0])
    body = "".join("<tr>" + "".join(
        f'<td class="{"alert" if b and k == "verdict" else ""}">{escape(v)}</td>' for k, v in r.items()) + "</tr>"
        for r, b in zip(rows, bad, strict=True))
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def _page(title: str, body: str) -> str:
    from tracelens.report.html import _CSS

    return (f'<!DOCTYPE html><html lang="en"><head><meta charset="utf-8"><meta name="viewport" '
            f'content="width=device-width,initial-scale=1"><title>{escape(title)}</title><style>{_CSS}</style>'
            f"</head><body>{body}<footer>tracelens eval report</footer></body></html>\n")


def _html_report(report: EvalReport) -> str:
    from tracelens.report.html import CHARTS_SKIPPED, _figure

    status = ('<p class="alert">A target regressed against its previous run.</p>' if report.regressed else
              '<p class="stable">No target regressed against its previous run.</p>')
    parts = [f"<h1>Eval report: {escape(report.suite)}</h1>",
             f'<p class="sub">{report.cases} case(s), {report.runs} run(s)</p>', f'<div class="headline">{status}</div>',
             "<h2>Latest run per target</h2>",
             _html_table([summary_row(s) for s in report.latest], [s.regressed for s in report.latest])]
    svg = _trend_svg(report)
    if svg:
        parts += ["<h2>Trend</h2>", _figure(svg, "pass rate per run and target", "Pass rate per run with its 95% "
                                            "interval; a regression against the run before is marked.", "trend")]
    elif any(len(p) > 1 for p in report.trends.values()):
        parts.append(f'<p class="small">{escape(CHARTS_SKIPPED)}</p>')
    if report.leaderboard is not None:
        rows = [{"rank": str(e.rank), "target": e.target, "pass rate": rate_text(e.rate),
                 "vs reference": "reference" if e.is_reference else delta_text(e.vs_reference),
                 "tied": "" if e.tied is None else ("yes" if e.tied else "no")} for e in report.leaderboard.entries]
        parts += ["<h2>Leaderboard</h2>", '<p class="small">Latest run per target, paired on the cases they share.</p>',
                  _html_table(rows, [False] * len(rows))]
    for s in report.latest:
        if s.vs_previous and s.vs_previous.overall.pass_to_fail:
            ids = ", ".join(f"<code>{escape(c)}</code>" for c in s.vs_previous.overall.pass_to_fail[:50])
            parts.append(f"<p>Cases that fail now on <code>{escape(s.run.target)}</code>: {ids}</p>")
    return _page(f"Eval report: {report.suite}", "".join(parts))


def _html_verdict(v: UpgradeVerdict) -> str:
    cls = "alert" if v.verdict == "regressions" else "stable" if v.verdict in ("safe", "improvement") else "warn"
    parts = [f"<h1>Upgrade verdict: {escape(v.baseline.run.target)} → {escape(v.candidate.run.target)}</h1>",
             f'<div class="headline"><p class="{cls}">{escape(v.headline)}</p></div>',
             _html_table([summary_row(v.baseline), summary_row(v.candidate)], [False, False])]
    for title, cases in (("Worse on the candidate", v.worse), ("Better on the candidate", v.better)):
        if cases:
            items = "".join(f"<li><code>{escape(c.case_id)}</code> (failed: {escape(', '.join(c.failed_graders) or '-')})"
                            f"<br><span class='small'>before: {escape(one_line(c.baseline_answer, 160))}<br>now: "
                            f"{escape(one_line(c.candidate_answer, 160))}</span></li>" for c in cases[:50])
            parts.append(f"<h2>{escape(title)} ({len(cases)})</h2><ul>{items}</ul>")
    return _page("Upgrade verdict", "".join(parts))


def render_report(report: EvalReport, fmt: str) -> str:
    """``markdown`` or ``html`` text of the report."""
    return _md_report(report) if fmt == "markdown" else _html_report(report)


def render_verdict(v: UpgradeVerdict, fmt: str) -> str:
    """``markdown`` or ``html`` text of the upgrade verdict."""
    return _md_verdict(v) if fmt == "markdown" else _html_verdict(v)

