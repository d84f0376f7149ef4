"""`tracelens enrich`: recompute derived columns (refusal labels) over the store."""

from __future__ import annotations

import datetime as dt

import click

from tracelens.cli.common import diag, echo, emit_json, json_option, open_store, store_option, when_option


@click.command()
@click.option("--refusal/--no-refusal", default=True, show_default=True, help="Re-run the refusal detector.")
@click.option("--force", is_flag=True, help="Rewrite every partition, even those already at the current version.")
@when_option("since")
@when_option("until", end=True)
@store_option
@json_option
def enrich(refusal, force, since, until, store_path, as_json):
    """Re-run enrichment over stored traces, one day partition at a time (atomic, idempotent).

    Ingest already labels refusals; run this after upgrading tracelens to relabel
    old data with the current detector. Partitions already at the current
    detector version are skipped unless --force.
    """
    from tracelens.enrich.apply import refresh_refusals

    store = open_store(store_path, url_ok=True, write=True)
    if not refusal:
        diag("nothing to do")
        return
    res = refresh_refusals(
        store,
        since=since.date() if since else None,
        until=(until - dt.timedelta(microseconds=1)).date() if until else None,
        force=force,
        progress=lambda d, n: diag(f"{d}: {n:,} rows relabelled"),
    )
    if as_json:
        emit_json(res.to_dict())
    else:
        echo(
            f"{res.partitions_rewritten} of {res.partitions_total} partitions rewritten ({res.rows_rewritten:,} rows, "
            f"{res.changed_labels:,} labels changed) with detector {res.detector_version}"
        )


commands = [enrich]
