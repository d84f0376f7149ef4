"""Terminal renderer: a DriftReport drawn with rich into a Console the caller owns.

Contract: ``render_terminal(report, console, show_info=False)`` prints to
``console`` only (never to stdout directly); the CLI decides whether that
console is stdout or stderr, its width and colour. Every string that can
come from the logs (topic labels, model ids, suite names, trace ids,
prompt diffs) is drawn as plain ``Text`` after ``textsafe.visible``: never
parsed as Rich markup, no escape sequence reaches the terminal. With a fixed-width
``Console(record=True, color_system=None)`` the output is deterministic
(golden-tested).
"""

from __future__ import annotations

from rich.console import Console, Group
from rich.panel import Panel
from rich.table import Table
from rich.text import Text

from tracelens.analysis import fmt
from tracelens.analysis.findings import DriftReport
from tracelens.report import common
from tracelens.textsafe import visible

_STYLE = {"alert": "bold red", "warn": "yellow", "info": "dim"}
_STATUS = {"changed": "bold yellow", "stable": "green", "observed": "cyan", "not observable": "dim"}
_SPARK = "▁▂▃▄▅▆▇█"


def _spark(values: list[float | None]) -> str:
    vals = [v for v in values if v is not None]
    if not vals:
        return ""
    lo, hi = min(vals), max(vals)
    out = []
    for v in values:
        if v is None:
            out.append(" ")
        elif hi == lo:
            out.append(_SPARK[3])
        else:
            out.append(_SPARK[int(round((v - lo) / (hi - lo) * (len(_SPARK) - 1)))])
    return "".join(out)


def _t(value, style: str = "") -> Text:
    return Text(visible("" if value is None else str(value)), style=style)


def render_terminal(report: DriftReport, console: Console, show_info: bool = False) -> None:
    """Draw the report into ``console`` (see module docstring)."""
    n = common.counts(report)
    head = Text()
    head.append("tracelens drift  ", style="bold")
    head.append(visible(common.window_line(report)) + "\n")
    head.append(f"{n['alert']} alert, {n['warn']} warn, {n['info']} info\n", style="bold")
    for line in common.headline(report):
        head.append("• " + visible(line) + "\n")
    console.print(Panel(head, expand=True))

    groups = common.by_severity(report)
    shown = groups["alert"] + groups["warn"] + (groups["info"] if show_info else [])
    if shown:
        t = Table(title="Findings", show_lines=False, expand=True)
        t.add_column("sev", no_wrap=True)
        # kind over segment in one column: the segment (topic label, snapshot) needs the room, also at 80 columns
        t.add_column("finding (kind / segment)", overflow="fold", ratio=5)
        t.add_column("baseline → current", overflow="fold", ratio=3)
        t.add_column("effect [CI]", overflow="fold", ratio=3)
        t.add_column("q", no_wrap=True)
        t.add_column("first seen (UTC)", ratio=2)
        for f in shown:
            what = _t(f.kind, style="bold")
            what.append("\n" + visible(f.segment or "all"))
            t.add_row(
                Text(f.severity.upper(), style=_STYLE[f.severity]),
                what,
                _t(f"{common.value(f, f.baseline_value)} → {common.value(f, f.current_value)}"),
                _t(common.effect(f)),
                _t(common.qtext(f)),
                f.first_seen.strftime("%m-%d %H:%M") if f.first_seen else "",  # the year is in the window line
            )
        console.print(t)
        for f in shown:
            line = Text()
            line.append(f"[{f.severity}] ", style=_STYLE[f.severity])
            line.append(visible(f"{f.kind}{' ' + f.segment if f.segment else ''}: "), style="bold")
            line.append(visible(f.summary))
            if f.evidence:
                line.append(visible(f"\n    evidence: {', '.join(f.evidence[:5])}") + (" ..." if len(f.evidence) > 5 else ""),
                            style="dim")
            console.print(line)
    if groups["info"] and not show_info:
        console.print(Text(f"No significant change: {common.info_summary(groups['info'])}.", style="dim"))

    for d in report.details:
        console.print(Panel(_t(d.text or "(no textual difference)"), title=_t(f"{d.title} [{d.segment or 'all'}]"),
                            expand=True))

    evals = common.eval_results(report)
    if evals:
        # one block per suite and target, not a table: target names carry base URLs and would fold to shreds
        console.print(Text("Evals (latest run per target vs the previous one)", style="bold"))
        for e in evals:
            head = Text("  ")
            head.append(visible(common.eval_name(e)), style="bold")
            head.append("  ")
            head.append(visible(common.eval_verdict(e)), style="bold red" if e.regressed else "")
            console.print(head)
            latency = "n/a" if e.latency_p50_ms is None else f"{e.latency_p50_ms:,.0f} ms"
            delta = common.eval_delta(e)
            vs = "" if delta == common.eval_verdict(e) else f" · vs previous {delta} · pass→fail {e.n_pass_to_fail:,}"
            console.print(Text(f"    pass rate {common.eval_rate(e)}{vs} · errors {e.errors:,} · refusals "
                               f"{fmt.pct(e.refusal_rate)} · latency p50 {latency}"))
        for e in evals:
            if e.regressed and e.n_pass_to_fail:
                line = Text()
                line.append(visible(f"[eval {e.suite} {e.target}] "), style="red")
                line.append(visible(common.eval_flipped(e, 10)))
                console.print(line)

    v = Table(title="Variance sources at a glance", expand=True, show_lines=True)
    v.add_column("source", ratio=2, overflow="fold")
    v.add_column("status", ratio=2)
    v.add_column("what the logs show", ratio=6)
    v.add_column("backed by", ratio=2, overflow="fold")
    v.add_column("to make it observable, log", ratio=4)
    for row in report.variance:
        v.add_row(
            _t(row.source),
            _t(row.status, style=_STATUS.get(row.status, "")),
            _t(row.observation),
            _t(", ".join(row.findings)),
            _t(row.what_to_log or ""),
        )
    console.print(v)

    if report.trend:
        rates = [p.rate for p in report.trend]
        cells = " ".join(fmt.pct(r) for r in rates)
        console.print(Text(f"Weekly refusal rate (last {len(rates)} weeks): {_spark(rates)}  {cells}"))
    if report.notes:
        console.print(Group(*[_t("note: " + s, style="dim") for s in report.notes]))
    g = report.generator
    console.print(Text(f"{g.name} {g.version} (analysis v{g.analysis_version})", style="dim"))
