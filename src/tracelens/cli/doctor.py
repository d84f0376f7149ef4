"""`tracelens doctor`: check a store and move damaged files aside."""

from __future__ import annotations

import sys

import click

from tracelens.cli.common import emit_json, json_option, store_option
from tracelens.textsafe import visible


@click.command()
@click.option("--repair", is_flag=True,
              help="Move damaged files to corrupt/ (same relative path), never deleting one. A Delta Lake store "
                   "then commits the removal of the files it lists but cannot read; a store of the older layout "
                   "also moves foreign journals and links, rolls pending commits forward and writes a JSON report "
                   "to corrupt/.")
@click.option("--quick", is_flag=True, help="Check Parquet footers and schemas only, not every page.")
@store_option
@json_option
def doctor(repair, quick, store_path, as_json):
    """Check the store: every table's log and data files (footer, pages, row counts), keys, metadata.

    Commands that meet a damaged file name it and stop; this finds them all.
    Nothing is deleted: --repair moves what cannot be read to corrupt/, after
    which every command reads the rest again. Works on local stores (either
    layout) and on stores at a URL. Exit code 0 when the store is healthy
    (after --repair: when nothing is left to fix), 1 when not.

    \b
    Examples:
      tracelens doctor
      tracelens doctor --repair --json
    """
    from tracelens.objstore import is_url
    from tracelens.storefiles import StoreError
    from tracelens.storeopen import DELTA, store_format

    try:
        if is_url(store_path) or store_format(store_path) == DELTA:
            from tracelens.doctordelta import check_delta, repair_delta
            from tracelens.storeopen import open_store

            store = open_store(store_path, write=repair)
            report = repair_delta(store, deep=not quick) if repair else check_delta(store, deep=not quick)
        else:  # the older file layout (or no store: its check says so)
            from tracelens.doctor import check_store, repair_store

            report = repair_store(store_path, deep=not quick) if repair else check_store(store_path, deep=not quick)
    except StoreError as e:
        raise click.ClickException(str(e)) from None
    if as_json:
        emit_json(report.to_dict())
    else:
        _print(report, repair)
    sys.exit(0 if report.healthy else 1)


def _print(report, repair: bool) -> None:
    out = click.echo
    state = "healthy" if report.healthy else f"{len(report.problems)} problem(s)"
    out(f"store {visible(report.store)}: {state}")
    for table, c in report.tables.items():
        out(f"  {table}: {c.files:,} file(s), {c.rows:,} row(s) read cleanly")
    for m in report.moved:
        out(f"  moved {visible(m.path)} -> {visible(m.to)} ({visible(m.reason)})")
    for t in report.rolled_forward:
        out(f"  rolled forward {visible(t)}")
    for t in report.pending_commits:
        out(f"  pending commit {visible(t)} (rolled forward by the next command that opens the store)")
    for p in report.problems:
        fix = "" if p.repairable else " [not repairable: fix by hand]"
        out(f"  {p.kind}: {visible(p.path)}: {visible(p.reason)}{fix}")
    if report.report_file:
        click.echo(f"report written to {visible(report.report_file)}", err=True)
    if not report.healthy and not repair and any(p.repairable for p in report.problems):
        click.echo(f"run `tracelens doctor --repair --store {report.store}` to move the damaged files to corrupt/",
                   err=True)


commands = [doctor]
