"""`tracelens drift` and `tracelens weekly`: did the model change, or did our traffic?

Exit codes: 0 when no finding reaches ``--fail-on`` severity, 1 when one does
or an eval suite's latest run regressed against its previous run (counted as
an alert: any ``--fail-on`` but ``never``; so cron and CI can page on it), 2 for usage errors, 3 for a missing extra, 4
when a window holds no traces (nothing was compared; whatever ``--fail-on``
says, since logs that stopped are worth a page too).
"""

from __future__ import annotations

import sys

import click

from tracelens import atomic
from tracelens.cli.common import (
    SEED,
    FiniteFloatRange,
    diag,
    engine_options,
    open_store,
    safe,
    store_option,
    window_callback,
)
from tracelens.secrets import scrub_text
from tracelens.textsafe import json_text


def _report_options(f):
    for opt in reversed(
        [
            click.option(
                "--format", "fmt", type=click.Choice(["terminal", "markdown", "html", "json"]), default="terminal",
                show_default=True, help="Report format.",
            ),
            click.option("--json", "as_json", is_flag=True, help="Same as --format json."),
            click.option("--output", "-o", type=click.Path(dir_okay=False), help="Write the report to a file."),
            click.option("--html", "html_path", type=click.Path(dir_okay=False),
                         help="Also write the HTML report (with charts) to this file; a Markdown report links to it."),
            click.option(
                "--fail-on", type=click.Choice(["alert", "warn", "never"]), default="alert", show_default=True,
                help="Exit 1 when a finding reaches this severity, or an eval regressed (an alert) "
                     "(exit 4 when a window holds no traces).",
            ),
            click.option("--all", "show_info", is_flag=True,
                         help="Also list info-level (not significant) findings (HTML: expanded, not collapsed)."),
            click.option("--no-embed", is_flag=True, help="Skip embeddings (no semantic or topic findings)."),
            click.option("--sample-cap", default=20_000, show_default=True, type=click.IntRange(min=1),
                         help="Most traces per window to embed (stratified by day)."),
            click.option("--model", "embed_model", default=None, help="Embedding model (default: bundled MiniLM)."),
            click.option("--alpha", default=0.05, show_default=True, type=FiniteFloatRange(0, 1, min_open=True, max_open=True),
                         help="False discovery rate for significance."),
            click.option("--seed", default=0, show_default=True, type=SEED, help="Seed for the randomised tests."),
            click.option(
                "--cohort-by", "cohort_by", multiple=True, metavar="NAME",
                help="Cohort dimension for the cohort tests: a trace column (service_tier, app, ...) or an attribute "
                     "key (region, api_key_id, ...); repeatable. Default: service_tier, app and common attribute "
                     "keys (see docs/drift.md).",
            ),
        ]
    ):
        f = opt(f)
    return f


def _emit(run, fmt, as_json, output, html_path, fail_on, show_info) -> None:
    from tracelens.analysis.findings import exit_code
    from tracelens.report import render, render_html, render_terminal

    report, timeline = run.report, run.timeline

    if as_json:
        fmt = "json"
    if fmt == "html" or html_path:
        from tracelens.extras import has_extra
        from tracelens.report.html import CHARTS_SKIPPED

        if not has_extra("charts"):
            diag(CHARTS_SKIPPED)
    if output:
        atomic.write_text(output, scrub_text(render(report, fmt, show_info=show_info, timeline=timeline,
                                                    html_link=html_path)))
        diag(f"report written to {output}")
    elif fmt == "terminal":
        from rich.console import Console

        render_terminal(report, Console(highlight=False), show_info=show_info)
    else:
        text = render(report, fmt, show_info=show_info, timeline=timeline, html_link=html_path)
        # JSON stays the same document (escapes only); Markdown and HTML show control characters visibly
        click.echo(json_text(scrub_text(text)) if fmt == "json" else safe(text), nl=False)
    if html_path:
        atomic.write_text(html_path, scrub_text(render_html(report, show_info=show_info, timeline=timeline)))
        diag(f"HTML report written to {html_path}")
    sys.exit(exit_code(report, fail_on))


def _config(alpha, seed, cohort_by=()):
    from tracelens.analysis.drift import DriftConfig

    return DriftConfig(alpha=alpha, seed=seed, cohort_by=tuple(cohort_by) or None)


@click.command()
@click.option("--baseline", required=True, metavar="START..END", callback=window_callback, help="Baseline window: START..END (dates inclusive, ISO datetimes), an ISO week, a day, or e.g. 7d.")
@click.option("--current", required=True, metavar="START..END", callback=window_callback, help="Current window, same forms.")
@_report_options
@engine_options
@store_option
def drift(baseline, current, fmt, as_json, output, html_path, fail_on, show_info, no_embed, sample_cap, embed_model,
          alpha, seed, cohort_by, engine, store_path):
    """Compare two time windows: refusals (raw and mix-adjusted), topics, semantics, lengths, latency,
    stop reasons, and the variance sources behind one model name.

    \b
    Examples:
      tracelens drift --baseline 2026-11-09..2026-11-15 --current 2026-11-16..2026-11-22
      tracelens drift --baseline 2026-W46 --current 2026-W47 --format markdown -o drift.md
    """
    try:
        run = engine.drift_run(open_store(store_path, url_ok=True, write=True), baseline, current, config=_config(alpha, seed, cohort_by),
                               embed=not no_embed, sample_cap=sample_cap, model=embed_model, progress=diag)
    finally:
        engine.close()
    _emit(run, fmt, as_json, output, html_path, fail_on, show_info)


@click.command()
@click.option("--week", metavar="YYYY-Www", callback=window_callback,
              help="ISO week to report, e.g. 2026-W47, or any window --current accepts (default: the last complete week).")
@_report_options
@engine_options
@store_option
def weekly(week, fmt, as_json, output, html_path, fail_on, show_info, no_embed, sample_cap, embed_model, alpha, seed,
           cohort_by, engine, store_path):
    """The weekly drift summary: a week against the one before, with an 8-week refusal trend.

    Runs whatever labelling, embedding and clustering is missing first, so it
    works on a freshly ingested store. The Evals section shows each stored
    eval suite's latest run per target against its previous run. Exit code 1
    when a finding reaches --fail-on severity or an eval regressed (counted as
    an alert), for cron and CI.
    """
    try:
        run = engine.weekly_run(open_store(store_path, url_ok=True, write=True), week, config=_config(alpha, seed, cohort_by),
                                embed=not no_embed, sample_cap=sample_cap, model=embed_model, progress=diag)
    finally:
        engine.close()
    _emit(run, fmt, as_json, output, html_path, fail_on, show_info)


commands = [drift, weekly]
