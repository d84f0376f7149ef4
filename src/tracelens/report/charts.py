"""Charts for the HTML report, drawn with matplotlib's object API (no pyplot, no global backend switch).

Contract: each function takes report data (a :class:`DriftReport`'s fields,
the configuration-change :class:`~tracelens.report.common.Mark` list, or a
:class:`~tracelens.report.timeline.Timeline`) and returns SVG text, or None
when there is nothing to draw (each one's matplotlib ``Figure`` builder is
``<chart>.figure``, for tests that inspect the drawing). Output is deterministic: a fixed
``svg.hashsalt``, no creation date in the metadata, text kept as text
(``svg.fonttype`` none). Legends sit outside the plotting area, so they never
cover a bar or a line. Time charts share one look: the current window shaded,
configuration changes as numbered dashed lines (the numbers match the list
the HTML prints under the first chart).
"""

from __future__ import annotations

import functools
import io
from datetime import UTC, datetime, time

from matplotlib import rc_context
from matplotlib.dates import DateFormatter, date2num
from matplotlib.figure import Figure
from matplotlib.ticker import NullFormatter, PercentFormatter

from tracelens.analysis.findings import ClusterShare, Distribution, SeriesPoint
from tracelens.report.common import Mark
from tracelens.report.timeline import OTHER, DayCount, Timeline

_RC = {
    "svg.hashsalt": "tracelens",
    "svg.fonttype": "none",
    "font.family": "DejaVu Sans",
    "font.size": 9,
    "axes.spines.top": False,
    "axes.spines.right": False,
}
BASE = "#4c72b0"
CUR = "#dd8452"
HIST = "#999999"
#: one colour per served snapshot, in order of first appearance ("other" is grey)
PALETTE = ("#4c72b0", "#dd8452", "#55a868", "#c44e52", "#8172b3", "#937860")
MARK_COLOUR = {"snapshot": "#c44e52", "alias": "#8172b3", "system_prompt": "#2e7d32"}
#: a day's rate is drawn only when at least this many traces were labelled
MIN_LABELLED = 5


def _svg(fig: Figure) -> str:
    buf = io.StringIO()
    fig.savefig(buf, format="svg", metadata={"Date": None}, bbox_inches="tight")
    return buf.getvalue()


def _chart(build):
    """Turn a figure builder into the chart function (SVG text or None); the builder stays reachable as ``.figure``."""

    @functools.wraps(build)
    def chart(*args, **kwargs) -> str | None:
        with rc_context(_RC):
            fig = build(*args, **kwargs)
            return None if fig is None else _svg(fig)

    chart.figure = build
    return chart


def snapshot_colours(order: tuple[str, ...]) -> dict[str, str]:
    """Colour per snapshot key, stable for one report."""
    out, i = {}, 0
    for k in order:
        if k == OTHER:
            out[k] = HIST
        else:
            out[k] = PALETTE[i % len(PALETTE)]
            i += 1
    return out


def _day_x(day) -> float:
    # a day's value is drawn at its middle (noon UTC), so it sits between the day's tick marks
    return date2num(datetime.combine(day, time(12), tzinfo=UTC))


def _frame_time(ax, start, boundary, end, marks: list[Mark], numbers: bool = True) -> None:
    """Current window shaded, x limits on both windows, configuration changes as dashed lines."""
    if boundary is not None and end is not None:
        ax.axvspan(date2num(boundary), date2num(end), color="#f2f2f2", zorder=0, linewidth=0)
    if start is not None and end is not None:
        ax.set_xlim(date2num(start), date2num(end))
    last_x, level = None, 0
    span = (date2num(end) - date2num(start)) if start is not None and end is not None else 14.0
    for i, m in enumerate(marks, 1):
        x = date2num(m.at)
        ax.axvline(x, color=MARK_COLOUR[m.kinds[0]], linestyle="--", linewidth=0.9, zorder=1)
        if numbers:
            # marks closer than 4% of the axis stack their numbers, so two changes on one day stay readable
            level = level + 1 if last_x is not None and x - last_x < 0.04 * span else 0
            ax.annotate(str(i), xy=(x, 1.0), xycoords=("data", "axes fraction"), xytext=(0, 2 + 11 * level),
                        textcoords="offset points", ha="center", va="bottom", fontsize=7, color="white",
                        bbox={"boxstyle": "circle,pad=0.2", "facecolor": MARK_COLOUR[m.kinds[0]], "linewidth": 0})
            last_x = x
    ax.xaxis.set_major_formatter(DateFormatter("%a %m-%d"))
    for label in ax.get_xticklabels():
        label.set_fontsize(7)


def _legend_below(ax, n: int) -> None:
    ax.legend(loc="upper center", bbox_to_anchor=(0.5, -0.16), ncol=max(1, min(n, 4)), frameon=False, fontsize=8)


@_chart
def snapshot_refusal_chart(tl: Timeline, marks: list[Mark]) -> Figure | None:
    """Daily refusal rate per served snapshot, with configuration changes marked on the time axis."""
    colours = snapshot_colours(tl.snapshot_order)
    series = {k: [d for d in tl.snapshots if d.key == k and d.labelled >= MIN_LABELLED] for k in tl.snapshot_order}
    if sum(len(v) for v in series.values()) < 2:
        return None
    with rc_context(_RC):
        fig = Figure(figsize=(11, 3.4))
        ax = fig.add_subplot()
        _frame_time(ax, tl.start, tl.boundary, tl.end, marks)
        for k, pts in series.items():
            if pts:
                ax.plot([_day_x(d.day) for d in pts], [d.rate for d in pts], marker="o", markersize=3.5, linewidth=1.6,
                        color=colours[k], label=k, zorder=3)
        ax.yaxis.set_major_formatter(PercentFormatter(1.0, decimals=0))
        ax.set_ylim(bottom=0)
        ax.set_ylabel("refused")
        _legend_below(ax, len(series))
        return fig


@_chart
def snapshot_share_chart(tl: Timeline, marks: list[Mark]) -> Figure | None:
    """Share of each day's traffic served by each snapshot (stacked bars)."""
    colours = snapshot_colours(tl.snapshot_order)
    days = sorted({d.day for d in tl.snapshots})
    if len(days) < 2 or len(tl.snapshot_order) < 1:
        return None
    total = {day: sum(d.traces for d in tl.snapshots if d.day == day) for day in days}
    with rc_context(_RC):
        fig = Figure(figsize=(11, 2.8))
        ax = fig.add_subplot()
        _frame_time(ax, tl.start, tl.boundary, tl.end, marks)
        bottom = {day: 0.0 for day in days}
        for k in tl.snapshot_order:
            by_day = {d.day: d.traces / total[d.day] for d in tl.snapshots if d.key == k and total[d.day]}
            if not by_day:
                continue
            xs = sorted(by_day)
            ax.bar([_day_x(x) for x in xs], [by_day[x] for x in xs], width=0.8, bottom=[bottom[x] for x in xs],
                   color=colours[k], label=k, zorder=2, linewidth=0)
            for x in xs:
                bottom[x] += by_day[x]
        ax.yaxis.set_major_formatter(PercentFormatter(1.0, decimals=0))
        ax.set_ylim(0, 1)
        ax.set_ylabel("share of traffic")
        _legend_below(ax, len(tl.snapshot_order))
        return fig


def _window_mean(rows: list[DayCount]) -> float | None:
    n = sum(d.labelled for d in rows)
    return sum(d.refusals for d in rows) / n if n else None


@_chart
def topic_refusal_chart(tl: Timeline, marks: list[Mark], labels: dict[str, str] | None = None) -> Figure | None:
    """Small multiples: daily refusal rate of each topic with a refusal finding, window means as flat lines."""
    topics = [k for k in tl.topic_order if any(d.key == k for d in tl.topics)]
    if not topics:
        return None
    cols = min(3, len(topics))
    rows = -(-len(topics) // cols)
    with rc_context(_RC):
        fig = Figure(figsize=(11 if cols > 1 else 7, 2.0 * rows + 0.3))
        axes = fig.subplots(rows, cols, sharex=True, sharey=True, squeeze=False)
        for i, ax in enumerate(axes.flat):
            if i >= len(topics):
                ax.set_visible(False)
                continue
            k = topics[i]
            pts = [d for d in tl.topics if d.key == k]
            _frame_time(ax, tl.start, tl.boundary, tl.end, marks, numbers=False)
            shown = [d for d in pts if d.labelled >= 3]
            ax.plot([_day_x(d.day) for d in shown], [d.rate for d in shown], marker="o", markersize=2.5, linewidth=1,
                    color="#555555", zorder=3)
            bdate = tl.boundary.date() if tl.boundary is not None else None
            for sel, colour, lo, hi in (
                ([d for d in pts if bdate is None or d.day < bdate], BASE, tl.start, tl.boundary),
                ([d for d in pts if bdate is not None and d.day >= bdate], CUR, tl.boundary, tl.end),
            ):
                mean = _window_mean(sel)
                if mean is not None and lo is not None and hi is not None:
                    ax.hlines(mean, date2num(lo), date2num(hi), colors=colour, linewidth=2.2, zorder=2)
            ax.set_title((labels or {}).get(k, k)[:48], fontsize=8, loc="left")
            ax.yaxis.set_major_formatter(PercentFormatter(1.0, decimals=0))
            ax.set_ylim(bottom=0)
            ax.xaxis.set_major_formatter(DateFormatter("%m-%d"))
            for label in ax.get_xticklabels():
                label.set_fontsize(6)
                label.set_rotation(0)
        fig.set_layout_engine("constrained")
        return fig


@_chart
def refusal_chart(points: tuple[SeriesPoint, ...], marks: list[Mark] | None = None) -> Figure | None:
    """Daily refusal rate with its Wilson 95% band, coloured by window (used when no per-snapshot series exist)."""
    pts = [p for p in points if p.rate is not None]
    if len(pts) < 2:
        return None
    with rc_context(_RC):
        fig = Figure(figsize=(11, 3.2))
        ax = fig.add_subplot()
        for win, colour, label in (("", HIST, "history"), ("baseline", BASE, "baseline"), ("both", HIST, None), ("current", CUR, "current")):
            sel = [p for p in pts if p.window == win]
            if not sel:
                continue
            x = [date2num(p.start) for p in sel]
            ax.fill_between(x, [p.ci_low for p in sel], [p.ci_high for p in sel], color=colour, alpha=0.2, linewidth=0)
            ax.plot(x, [p.rate for p in sel], marker="o", markersize=3, color=colour, label=label)
        lo = min(p.start for p in pts)
        hi = max(p.end for p in pts)
        _frame_time(ax, lo, None, hi, marks or [])
        ax.yaxis.set_major_formatter(PercentFormatter(1.0, decimals=0))
        ax.set_ylabel("refused (95% Wilson band)")
        ax.set_ylim(bottom=0)
        _legend_below(ax, 3)
        return fig


@_chart
def cluster_chart(shares: tuple[ClusterShare, ...]) -> Figure | None:
    """Baseline vs current share of the most shifted prompt clusters."""
    if not shares:
        return None
    rows = list(shares)[::-1]
    with rc_context(_RC):
        fig = Figure(figsize=(11, 0.3 * len(rows) + 0.9))
        ax = fig.add_subplot()
        y = list(range(len(rows)))
        ax.barh([i + 0.2 for i in y], [r.baseline_share for r in rows], height=0.4, color=BASE, label="baseline")
        ax.barh([i - 0.2 for i in y], [r.current_share for r in rows], height=0.4, color=CUR, label="current")
        labels = [(r.cluster + (" " + r.label[:40] if r.label else "")) for r in rows]
        ax.set_yticks(y, labels)
        ax.xaxis.set_major_formatter(PercentFormatter(1.0, decimals=0))
        ax.set_xlabel("share of traffic")
        ax.legend(loc="lower left", bbox_to_anchor=(0, 1.0), ncol=2, frameon=False, fontsize=8)
        return fig


@_chart
def distribution_chart(d: Distribution) -> Figure | None:
    """Step histograms (share of traces per log-spaced bin) of one metric per window, medians dotted."""
    tb, tc = sum(d.baseline_counts), sum(d.current_counts)
    if not tb or not tc:
        return None
    with rc_context(_RC):
        fig = Figure(figsize=(5.6, 3.0))
        ax = fig.add_subplot()
        edges = list(d.edges)
        ax.stairs([c / tb for c in d.baseline_counts], edges, color=BASE, linewidth=1.4,
                  label=f"baseline (median {d.baseline_quantiles[1]:.4g})")
        ax.stairs([c / tc for c in d.current_counts], edges, color=CUR, linewidth=1.4,
                  label=f"current (median {d.current_quantiles[1]:.4g})")
        for q, colour in ((d.baseline_quantiles[1], BASE), (d.current_quantiles[1], CUR)):
            if q and q > 0:
                ax.axvline(q, color=colour, linestyle=":", linewidth=1)
        ax.set_xscale("log")
        ax.xaxis.set_minor_formatter(NullFormatter())
        ax.yaxis.set_major_formatter(PercentFormatter(1.0, decimals=0))
        ax.set_xlabel(d.metric)
        ax.set_ylabel("share of traces")
        # above the axes, outside the plotting area: it can never cover a bar
        ax.legend(loc="lower left", bbox_to_anchor=(0, 1.0), ncol=1, frameon=False, fontsize=7)
        return fig
