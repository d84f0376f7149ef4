"""Charts for the HTML report, drawn with matplotlib's object API (no pyplot, no global backend switch).

Contract: each function takes report data and returns SVG text, or None when
there is nothing to draw. Output is deterministic: a fixed ``svg.hashsalt``,
no creation date in the metadata, text kept as text (``svg.fonttype`` none).
"""

from __future__ import annotations

import io

from matplotlib import rc_context
from matplotlib.dates import DateFormatter, date2num
from matplotlib.figure import Figure
from matplotlib.ticker import NullFormatter

from tracelens.analysis.findings import ClusterShare, Distribution, SeriesPoint

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


def _svg(fig: Figure) -> str:
    buf = io.StringIO()
    fig.savefig(buf, format="svg", metadata={"Date": None}, bbox_inches="tight")
    return buf.getvalue()


def refusal_chart(points: tuple[SeriesPoint, ...]) -> str | None:
    """Daily refusal rate with its Wilson 95% band, coloured by window."""
    pts = [p for p in points if p.rate is not None]
    if len(pts) < 2:
        return None
    with rc_context(_RC):
        fig = Figure(figsize=(8, 2.8))
        ax = fig.add_subplot()
        for win, colour, label in (("", HIST, "history"), ("baseline", BASE, "baseline"), ("both", HIST, None), ("current", CUR, "current")):
            sel = [p for p in pts if p.window == win]
            if not sel:
                continue
            x = [date2num(p.start) for p in sel]
            ax.fill_between(x, [100 * p.ci_low for p in sel], [100 * p.ci_high for p in sel], color=colour, alpha=0.2, linewidth=0)
            ax.plot(x, [100 * p.rate for p in sel], marker="o", markersize=3, color=colour, label=label)
        ax.set_ylabel("refusal rate (%)")
        ax.xaxis.set_major_formatter(DateFormatter("%m-%d"))
        ax.set_ylim(bottom=0)
        ax.legend(loc="upper left", frameon=False)
        ax.set_title("Daily refusal rate with 95% Wilson interval")
        return _svg(fig)


def cluster_chart(shares: tuple[ClusterShare, ...]) -> str | None:
    """Baseline vs current share of the most shifted prompt clusters."""
    if not shares:
        return None
    rows = list(shares)[::-1]
    with rc_context(_RC):
        fig = Figure(figsize=(8, 0.35 * len(rows) + 1.0))
        ax = fig.add_subplot()
        y = list(range(len(rows)))
        ax.barh([i + 0.2 for i in y], [100 * r.baseline_share for r in rows], height=0.4, color=BASE, label="baseline")
        ax.barh([i - 0.2 for i in y], [100 * r.current_share for r in rows], height=0.4, color=CUR, label="current")
        labels = [(r.cluster + (" " + r.label[:40] if r.label else "")) for r in rows]
        ax.set_yticks(y, labels)
        ax.set_xlabel("share of traffic (%)")
        ax.legend(loc="lower right", frameon=False)
        ax.set_title("Prompt clusters with the largest share change")
        return _svg(fig)


def distribution_chart(d: Distribution) -> str | None:
    """Step histograms (share of traces per log-spaced bin) of one metric per window."""
    tb, tc = sum(d.baseline_counts), sum(d.current_counts)
    if not tb or not tc:
        return None
    with rc_context(_RC):
        fig = Figure(figsize=(4, 2.6))
        ax = fig.add_subplot()
        edges = list(d.edges)
        ax.stairs([c / tb for c in d.baseline_counts], edges, color=BASE, label=f"baseline (median {d.baseline_quantiles[1]:.4g})")
        ax.stairs([c / tc for c in d.current_counts], edges, color=CUR, label=f"current (median {d.current_quantiles[1]:.4g})")
        ax.set_xscale("log")
        ax.xaxis.set_minor_formatter(NullFormatter())
        ax.set_xlabel(d.metric)
        ax.set_ylabel("share of traces")
        ax.legend(loc="upper right", frameon=False, fontsize=7)
        return _svg(fig)
