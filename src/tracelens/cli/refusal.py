"""``tracelens eval-refusal``: score the refusal detector against labelled data.

Contract: a thin click layer over ``tracelens.enrich.evaluate``. The command
object is ``eval_refusal``; ``commands`` lists the commands this module adds
to the main group (``for c in refusal.commands: cli.add_command(c)``).
Results go to stdout (a table, or JSON with ``--json``); progress and errors
go to stderr. Exit status 2 on bad input (missing column, unreadable file).
"""

from __future__ import annotations

import textwrap

import click

from tracelens.cli.common import echo, emit_json
from tracelens.enrich.evaluate import BASELINES, EvalReport, EvalResult, Miss, evaluate_file


def _metrics_rows(results: list[EvalResult]) -> list[str]:
    head = f"{'predictor':<16}{'precision':>10}{'recall':>8}{'f1':>8}{'accuracy':>10}{'tp':>6}{'fp':>6}{'fn':>6}{'tn':>6}"
    rows = [head, "-" * len(head)]
    for r in results:
        rows.append(
            f"{r.predictor:<16}{r.precision:>10.3f}{r.recall:>8.3f}{r.f1:>8.3f}{r.accuracy:>10.3f}"
            f"{r.tp:>6}{r.fp:>6}{r.fn:>6}{r.tn:>6}"
        )
    return rows


def _confusion(r: EvalResult) -> list[str]:
    return [
        f"confusion matrix ({r.predictor})",
        f"{'':<22}{'pred refusal':>14}{'pred other':>12}",
        f"{'gold refusal':<22}{r.tp:>14}{r.fn:>12}",
        f"{'gold not refusal':<22}{r.fp:>14}{r.tn:>12}",
    ]


def _misses(title: str, misses: list[Miss]) -> list[str]:
    if not misses:
        return [f"{title}: none"]
    out = [f"{title}:"]
    for m in misses:
        out.append(f"  row {m.row}  gold={m.gold}  predicted={m.predicted}  score={m.score:.2f}")
        out.append(f"    evidence: {m.evidence or '-'}")
        out.append(textwrap.indent(textwrap.fill(m.text, width=100), "    | "))
    return out


def render_report(report: EvalReport, worst: int) -> str:
    lines = [
        f"file: {report.path}",
        f"rows: {report.rows} ({report.rows - report.skipped} scored, {report.skipped} skipped for an unmapped label)",
        f"columns: text={report.text_col} label={report.label_col}",
        f"gold refusals: {report.positives} of {report.rows - report.skipped}",
        "",
    ]
    results = [report.detector] + ([report.baseline] if report.baseline is not None else [])
    lines += _metrics_rows(results)
    lines += [""] + _confusion(report.detector)
    if worst > 0:
        lines += [""] + _misses(f"worst false negatives (missed refusals, lowest score first, up to {worst})",
                                report.detector.false_negatives[:worst])
        lines += [""] + _misses(f"worst false positives (highest score first, up to {worst})",
                                report.detector.false_positives[:worst])
    return "\n".join(lines)


@click.command("eval-refusal")
@click.argument("file", type=click.Path(exists=True, dir_okay=False))
@click.option("--text-col", help="Column holding the response text (default: completion, response_text, response, ...).")
@click.option("--label-col", help="Column holding the gold label (default: final_label, label, refusal, ...).")
@click.option("--positive", multiple=True, help="Label value meaning 'refusal' (repeatable).")
@click.option("--negative", multiple=True, help="Label value meaning 'not a refusal' (repeatable).")
@click.option("--baseline", type=click.Choice(BASELINES), help="Also score a published baseline side by side.")
@click.option("--json", "as_json", is_flag=True, help="Print the full report as JSON.")
@click.option("--worst", type=click.IntRange(min=0), default=5, show_default=True, help="Misses of each kind to show.")
def eval_refusal(
    file: str,
    text_col: str | None,
    label_col: str | None,
    positive: tuple[str, ...],
    negative: tuple[str, ...],
    baseline: str | None,
    as_json: bool,
    worst: int,
) -> None:
    """Score the refusal detector against a labelled CSV/JSONL FILE.

    Partial and full refusals both count as refusals. Without --positive /
    --negative, labels naming a refusal (2_full_refusal, 3_partial_refusal,
    refusal, true, 1, ...) are positives and labels naming compliance
    (1_full_compliance, none, false, 0, ...) negatives.
    """
    try:
        report = evaluate_file(
            file,
            text_col=text_col,
            label_col=label_col,
            positive=positive or None,
            negative=negative or None,
            baseline=baseline,
            worst=worst,
        )
    except (ValueError, OSError) as exc:
        raise click.UsageError(str(exc)) from exc
    echo(
        f"scored {report.rows - report.skipped} rows in {report.detector.seconds:.2f}s"
        + (f" ({report.skipped} skipped: label not mapped)" if report.skipped else ""),
        err=True,
    )
    if as_json:
        emit_json(report.to_dict())
    else:
        echo(render_report(report, worst))


commands = [eval_refusal]
