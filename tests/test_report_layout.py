"""The HTML report as a reader sees it, and the Markdown post's length bound.

The layout tests render the page in headless Chromium (the Debian package
``chromium``; ``.ci/run`` installs it) at the widths people read it at and
assert what a team lead would notice: the page is a few screens long at
1,400 px (it used to run ~27,000 px), nothing forces horizontal scrolling at
1,000 px, the charts come before the findings, and the info findings are
collapsed -- also when there are hundreds of them. Locally they skip only when
no Chromium binary exists and ``CI`` is not set; under CI a missing binary
fails them.

The other tests read the HTML text: self-contained (no scripts, no external
URLs), a print stylesheet, the title naming the week, the reading order, and
the daily per-snapshot series the time charts draw.
"""

from __future__ import annotations

import dataclasses
import os
import re
from datetime import UTC, datetime, timedelta

import polars as pl
import pytest
from click.testing import CliRunner

from tests.conftest import anthropic_line
from tests.test_report_golden import build_fixture_report, build_fixture_timeline, fixture_scenario
from tracelens.analysis.findings import Finding
from tracelens.report import common, render
from tracelens.report.html import render_html
from tracelens.report.markdown import MAX_CHARS, MAX_LINES
from tracelens.report.timeline import OTHER, build_timeline
from tracelens.samples.synthetic import make_pair
from tracelens.testing.browser import find_chromium, measure_layout

#: page height bound at 1,400 px for the fixture (22 alert/warn cards, 50 info findings, six charts)
MAX_HEIGHT_1400 = 8000


@pytest.fixture(scope="module")
def report(tmp_path_factory):
    return build_fixture_report(tmp_path_factory.mktemp("layout-store"))


@pytest.fixture(scope="module")
def timeline(report):
    return build_fixture_timeline(report)


@pytest.fixture(scope="module")
def page(report, timeline):
    return render_html(report, timeline=timeline)


def _info(i: int) -> Finding:
    return Finding(
        kind="prompt_mix", segment=f"cluster={i} (a long topic label number {i} about many things)", direction="up",
        baseline_value=0.01, current_value=0.012, effect=0.002, ci_low=-0.001, ci_high=0.005, p_value=0.4,
        q_value=0.9, significant=False, severity="info", first_seen=None,
        summary=f"Share of cluster {i} moved a little " + "and nothing came of it " * 8, evidence=(f"t-{i}",),
    )


@pytest.fixture(scope="module")
def crowded(report):
    """The fixture with 300 more info findings, as a store with many topics produces."""
    return dataclasses.replace(report, findings=report.findings + tuple(_info(i) for i in range(300)))


def _chromium() -> str:
    path = find_chromium()
    if path:
        return path
    if os.environ.get("CI"):
        pytest.fail("CI is set but no Chromium binary was found: .ci/run installs the 'chromium' package")
    pytest.skip("no Chromium binary (apt-get install chromium); under CI this test runs")


# --------------------------------------------------------------------------- in Chromium


@pytest.fixture(scope="module")
def wide(page):
    return measure_layout(page, 1400, chromium=_chromium())


def test_page_is_a_few_screens_at_1400px(wide):
    assert wide.scroll_height < MAX_HEIGHT_1400, wide.scroll_height
    assert not wide.overflows_horizontally, wide.overflowing
    assert wide.images_loaded and all(wide.images_loaded)  # every chart decoded (data URIs, no network)
    assert len(wide.images_loaded) == 6


def test_reading_order_headline_variance_charts_cards_info(wide):
    top = {k: wide.boxes[k]["top"] for k in ("headline", "variance", "charts", "findings", "info")}
    assert top["headline"] < top["variance"] < top["charts"] < top["findings"] < top["info"], top
    # the first chart starts on the second screen at the latest (it used to start ~25,000 px down)
    assert wide.boxes["chart-snapshot-refusal"]["top"] < 1800, wide.boxes["chart-snapshot-refusal"]
    for chart in ("chart-snapshot-refusal", "chart-snapshot-share", "chart-topics", "chart-clusters"):
        assert wide.boxes[chart]["top"] + wide.boxes[chart]["height"] <= top["info"], chart


def test_info_findings_are_collapsed(wide):
    info = wide.boxes["info"]
    assert info["tag"] == "details" and info["open"] is False
    assert info["height"] < 80, info  # only the summary line shows


def test_no_horizontal_overflow_at_1000px(page):
    lay = measure_layout(page, 1000, chromium=_chromium())
    assert lay.inner_width == 1000
    assert not lay.overflows_horizontally, (lay.scroll_width, lay.client_width, lay.overflowing)
    assert not lay.overflowing
    # the cards still fit side by side or stack; either way each stays within the viewport
    cards = [b for k, b in lay.boxes.items() if k.startswith("finding-")]
    assert cards and all(b["left"] >= 0 and b["left"] + b["width"] <= 1000 for b in cards)


def test_hundreds_of_info_findings_do_not_lengthen_the_page(crowded, timeline, wide):
    lay = measure_layout(render_html(crowded, timeline=timeline), 1400, chromium=_chromium())
    assert lay.boxes["info"]["open"] is False
    assert lay.scroll_height - wide.scroll_height < 60, (lay.scroll_height, wide.scroll_height)


# --------------------------------------------------------------------------- the HTML text


def test_self_contained_and_printable(page):
    assert "<script" not in page.lower() and "<link" not in page.lower() and "@import" not in page
    assert not re.search(r"""(src|href)\s*=\s*["']?(https?:|//)""", page)
    assert "url(" not in page and "@font-face" not in page
    srcs = re.findall(r'<img [^>]*src="([^"]{0,30})', page)
    assert len(srcs) == 6 and all(s.startswith("data:image/svg+xml;base64,") for s in srcs)
    assert "@media print" in page and "break-inside:avoid" in page


def test_title_names_the_week(report, page):
    assert common.title(report) == "Weekly drift report 2025-W03 (2025-01-13 .. 2025-01-19) vs 2025-W02"
    assert "<title>Weekly drift report 2025-W03" in page and "<h1>Weekly drift report 2025-W03" in page
    other = dataclasses.replace(report, current=dataclasses.replace(report.current, end=report.current.end - timedelta(days=2)))
    assert common.title(other).startswith("Drift report 2025-01-13 .. 2025-01-17 vs 2025-01-06 .. 2025-01-12")


def test_cards_carry_effect_first_seen_and_evidence_command(report, page):
    cards = re.findall(r'<article class="card (alert|warn)".*?</article>', page, re.S)
    n = sum(1 for f in report.findings if f.severity in ("alert", "warn"))
    assert len(cards) == n
    card = re.search(r'<article class="card alert" id="finding-\d+"><h3>.*?refusal_rate <span class="seg">'
                     r"cluster=5 \(medical symptoms\)</span>.*?</article>", page, re.S).group(0)
    assert "+24.7 pp [+15.7 pp, +34.3 pp]" in card and "first seen 2025-01-13 00:23 UTC" in card
    assert "<code>tracelens show c-11-1199</code>" in card
    # info findings are in the page, collapsed; --all opens them
    assert '<details id="info"><summary>57 tests without a significant change' in page
    assert '<details id="info" open>' in render_html(report, show_info=True)


def test_configuration_changes_are_marked(report, page):
    marks = common.marks(report)
    # the rollover and the alias re-resolution happen at the same moment: one mark with both labels
    assert [m.kinds for m in marks] == [("alias", "snapshot"), ("system_prompt",)]
    assert marks[0].at == datetime(2025, 1, 15, 5, 33, 22, 716568, tzinfo=UTC)
    assert "re-resolved to claude-sonnet-4-5-20251101" in marks[0].labels[0]
    assert '<ol class="marks" id="marks">' in page and "system prompt changed (app support)" in page


def test_without_timeline_the_page_falls_back_to_the_daily_series(report):
    html = render_html(report)
    assert 'id="chart-refusal"' in html and "chart-snapshot-share" not in html
    assert html == render_html(report)


def test_deterministic_with_timeline(report, timeline, page):
    assert render_html(report, timeline=build_fixture_timeline(report)) == page


# --------------------------------------------------------------------------- the daily series


def test_timeline_counts_match_the_frames(report, timeline):
    sp = make_pair(fixture_scenario())
    both = pl.concat([sp.baseline, sp.current], how="vertical_relaxed")
    assert sum(d.traces for d in timeline.snapshots) == both.height
    ok = both.filter(pl.col("status") != "error")
    assert sum(d.refusals for d in timeline.snapshots) == ok.filter(pl.col("refusal") != "none").height
    assert sum(d.labelled for d in timeline.snapshots) == ok.filter(pl.col("refusal").is_not_null()).height
    assert timeline.snapshot_order == ("claude-sonnet-4-5-20250929", "claude-sonnet-4-5-20251101")
    new = [d for d in timeline.snapshots if d.key == "claude-sonnet-4-5-20251101"]
    assert min(d.day for d in new).isoformat() == "2025-01-15"  # the rollover day
    # topics: those with a significant refusal finding, most severe and largest first
    assert timeline.topic_order == ("cluster=5 (medical symptoms)", "cluster=6 (legal contracts)",
                                    "cluster=7 (recipe ideas)")
    t5 = both.filter(pl.col("cluster_id") == 5)
    assert sum(d.traces for d in timeline.topics if d.key == timeline.topic_order[0]) == t5.height


def test_timeline_groups_small_snapshots_and_needs_no_topics(report):
    rows = [
        {"timestamp": datetime(2025, 1, 6 + i % 14, 12, tzinfo=UTC), "status": "ok", "refusal": "none",
         "model_returned": f"m-{i % 9}" if i % 9 else None, "model_requested": "alias-x"}
        for i in range(200)
    ]
    df = pl.DataFrame(rows)
    tl = build_timeline(df.head(100), df.tail(100), report)
    assert len(tl.snapshot_order) == 7 and tl.snapshot_order[-1] == OTHER
    assert "alias-x" in {d.key for d in tl.snapshots} | {OTHER}  # no returned model: the requested name
    assert tl.topics == () and tl.topic_order == ()  # no cluster_id column
    assert build_timeline(df.head(0), df.head(0), report) is None


# --------------------------------------------------------------------------- Markdown for Slack


def test_markdown_fits_a_slack_post(report):
    md = render(report, "markdown", html_link="reports/weekly.html")
    assert len(md) <= MAX_CHARS and md.count("\n") <= MAX_LINES
    assert md.startswith("**Weekly drift report 2025-W03")
    assert "Full report (charts, evidence, diffs): reports/weekly.html" in md
    assert "**Variance sources** -- " in md and "- snapshot rollover: " in md
    assert "- 🔴 refusal_rate cluster=5 (medical symptoms): 1.9% -> 26.5%, +24.7 pp [+15.7 pp, +34.3 pp]" in md


def test_markdown_bound_holds_for_a_huge_report(report):
    loud = [dataclasses.replace(_info(i), severity="alert", significant=True, summary="x" * 3000,
                                segment=f"cluster={i} " + "very long label " * 30) for i in range(300)]
    big = dataclasses.replace(report, findings=tuple(loud) + report.findings,
                              notes=tuple("note " * 200 for _ in range(50)))
    md = render(big, "markdown", show_info=True, html_link="r.html")
    assert len(md) <= MAX_CHARS and md.count("\n") <= MAX_LINES, (len(md), md.count("\n"))
    assert re.search(r"- \.\.\. and \d+ more in the full report", md) and "r.html" in md


# --------------------------------------------------------------------------- through the CLI


def test_weekly_cli_writes_linked_markdown_and_html(tmp_path):
    from tracelens.cli.main import cli

    log = tmp_path / "log.jsonl"
    lines = []
    for i in range(280):
        day = 9 + (i % 14)  # W46 and W47
        returned = "claude-sonnet-4-5-20251101" if day >= 18 else "claude-sonnet-4-5-20250929"
        refused = day >= 18 and i % 3 == 0
        lines.append(anthropic_line(i, ts=f"2026-11-{day:02d}T{i % 24:02d}:{i % 60:02d}:00Z", returned=returned,
                                    text="I can't help with that request." if refused else None))
    log.write_text("\n".join(lines) + "\n")
    store = str(tmp_path / "store")
    r = CliRunner().invoke(cli, ["ingest", str(log), "--store", store, "--no-progress"])
    assert r.exit_code == 0, r.output
    md, html = tmp_path / "w.md", tmp_path / "w.html"
    r = CliRunner().invoke(cli, ["weekly", "--week", "2026-W47", "--store", store, "--no-embed", "--fail-on", "never",
                                 "--format", "markdown", "-o", str(md), "--html", str(html)])
    assert r.exit_code == 0, r.output
    text = md.read_text()
    assert text.startswith("**Weekly drift report 2026-W47 (2026-11-16 .. 2026-11-22) vs 2026-W46**")
    assert f"Full report (charts, evidence, diffs): {html}" in text and len(text) <= MAX_CHARS
    page = html.read_text()
    assert 'id="chart-snapshot-refusal"' in page and 'id="chart-snapshot-share"' in page
    assert "new snapshot claude-sonnet-4-5-20251101" in page


# --------------------------------------------------------------------------- charts


def test_legends_sit_outside_the_plotting_area(report, timeline):
    """No legend box overlaps its axes, so it can cover no bar, step or line (the old histograms' legends did)."""
    pytest.importorskip("matplotlib")
    from matplotlib import rc_context
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    from tracelens.report import charts

    marks = common.marks(report)
    figs = [
        charts.snapshot_refusal_chart.figure(timeline, marks),
        charts.snapshot_share_chart.figure(timeline, marks),
        charts.refusal_chart.figure(report.daily, marks),
        charts.cluster_chart.figure(report.cluster_shares),
        *(charts.distribution_chart.figure(d) for d in report.distributions),
    ]
    assert len(figs) == 6 and all(figs)
    for fig in figs:
        with rc_context(charts._RC):
            FigureCanvasAgg(fig)
            fig.draw_without_rendering()
            renderer = fig.canvas.get_renderer()
            for ax in fig.axes:
                legend = ax.get_legend()
                assert legend is not None
                assert not legend.get_window_extent(renderer).overlaps(ax.get_window_extent(renderer)), fig
