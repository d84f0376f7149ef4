"""`tracelens ingest`: read log exports into the store."""

from __future__ import annotations

import os
import posixpath
import sys

import click

from tracelens.cli.common import (
    cell,
    diag,
    emit_json,
    engine_options,
    json_option,
    open_store,
    safe,
    store_option,
    zone_callback,
)
from tracelens.objstore import is_url


def relative_names(paths: list[str]) -> tuple[list[str], str | None]:
    """``paths`` relative to their common parent directory, and that parent (None for a single file or none)."""
    if len(paths) < 2:
        return list(paths), None
    urls = [is_url(p) for p in paths]
    if any(urls):
        # object URLs: their common "directory" as written (no local absolute path); none when mixed with files
        if not all(urls):
            return list(paths), None
        schemes = {p.split("://", 1)[0] for p in paths}
        if len(schemes) != 1:
            return list(paths), None
        scheme = schemes.pop()
        common = posixpath.commonpath([posixpath.dirname(p.split("://", 1)[1]) for p in paths])
        if common in ("", "/"):  # different buckets, or nothing in common below the root
            return list(paths), None
        parent = f"{scheme}://{common}"
        return [p[len(parent) + 1:] for p in paths], parent
    try:
        parent = os.path.commonpath([os.path.dirname(os.path.abspath(p)) for p in paths])
    except ValueError:  # different drives
        return list(paths), None
    if parent in ("", os.sep):
        return list(paths), None
    return [os.path.relpath(os.path.abspath(p), parent) for p in paths], parent



@click.command()
@click.argument("paths", nargs=-1, required=True)
@click.option("--format", "force_format", help="Skip sniffing and read every input as this format.")
@click.option(
    "--map",
    "maps",
    multiple=True,
    metavar="FIELD=COLUMN",
    help="Column mapping for generic CSV/JSONL/Parquet, e.g. --map prompt=question --map response=answer.",
)
@click.option("--naive-tz", default="UTC", show_default=True, callback=zone_callback(allow_reject=True),
              help="Zone for timestamps without one (e.g. Europe/Paris), or 'reject'.")
@click.option("--default-time", help="Timestamp (ISO 8601) for records that carry none; otherwise they are quarantined.")
@click.option("--provider", help="Provider for generic formats whose records do not say.")
@click.option(
    "--redact",
    "redact",
    default="",
    metavar="KINDS",
    help="Mask personal data and secrets in stored text: comma list of emails,phones,cards,keys.",
)
@click.option("--redact-regex", multiple=True, metavar="REGEX", help="Extra pattern to mask (repeatable).")
@click.option(
    "--redact-fields",
    default="",
    metavar="FIELDS",
    help="Replace these id columns by keyed tokens (grouping still works): comma list of "
    "user_id,session_id,app,request_id.",
)
@click.option(
    "--phone-region",
    "phone_regions",
    multiple=True,
    default=("US",),
    show_default=True,
    metavar="CC",
    help="Region whose national phone numbers --redact phones recognises (repeatable; international ones always).",
)
@click.option("--batch-size", default=5000, show_default=True, type=click.IntRange(min=1), help="Records per atomic commit.")
@click.option("--no-progress", is_flag=True, help="No progress bar on stderr.")
@engine_options
@store_option
@json_option
def ingest(paths, force_format, maps, naive_tz, default_time, provider, redact, redact_regex, redact_fields,
           phone_regions, batch_size, no_progress, engine, store_path, as_json):
    """Read log files into the store.

    PATHS are files, directories (recursive), globs, or '-' for stdin; .gz and
    .zst are decompressed transparently. A PATH may also be an object-storage
    URL (s3://, gs://, az://, file://), with globs or a trailing '/' for all
    objects below it: objects are streamed, not downloaded, and each bucket is
    checked once before anything is read (credentials from the usual AWS, GCS
    or Azure environment and profiles; see docs/formats.md). Each file's format is sniffed from its
    first bytes (see `tracelens formats`). Every record is stored, counted as a
    duplicate, skipped (a non-LLM span) or quarantined with a reason. GenAI
    events sent as OTLP log records are kept in the store and joined to the
    trace of their span, whichever of the two files is ingested first; those
    whose span is not stored yet are counted as waiting for it.

    \b
    Examples:
      tracelens ingest logs/2026-11-*.jsonl.gz
      tracelens ingest 's3://team-logs/llm/2026-11-*.jsonl.gz'
      tracelens ingest --format generic_csv --map prompt=question --map response=answer data.csv
      cat export.jsonl | tracelens ingest -
      tracelens ingest --engine ray --ray-address auto exports/
    """
    from tracelens.ingest.base import IngestOptions
    from tracelens.ingest.pipeline import EMPTY
    from tracelens.objstore import ObjectStoreError
    from tracelens.store import discard_if_unused

    if engine.name == "ray" and "-" in paths:
        raise click.BadParameter("--engine ray reads files, not stdin: ingest '-' with --engine local",
                                 param_hint="PATHS")

    if default_time is not None:
        from tracelens.ingest.base import RecordError
        from tracelens.ingest.normalize import parse_timestamp

        try:
            parse_timestamp(default_time, naive_tz)
        except RecordError as e:
            raise click.BadParameter(str(e), param_hint="'--default-time'") from None
    column_map = {}
    for m in maps:
        if "=" not in m:
            raise click.BadParameter(f"--map expects FIELD=COLUMN, got {m!r}")
        k, v = m.split("=", 1)
        column_map[k.strip()] = v.strip()
    kinds = tuple(k.strip() for k in redact.split(",") if k.strip())
    fields = tuple(k.strip() for k in redact_fields.split(",") if k.strip())
    try:
        from tracelens.redact import Redactor

        # validate before touching the store
        Redactor(kinds, tuple(redact_regex), fields=fields, phone_regions=tuple(phone_regions))
    except ValueError as e:
        raise click.BadParameter(str(e)) from None
    from tracelens.objstore import is_url

    created = not is_url(store_path) and not os.path.exists(store_path)
    store = open_store(store_path, create=True, url_ok=True)
    options = IngestOptions(
        column_map=column_map, naive_tz=naive_tz, default_time=default_time, provider=provider,
        redact_kinds=kinds, redact_patterns=tuple(redact_regex), redact_fields=fields,
        phone_regions=tuple(r.upper() for r in phone_regions),
    )
    show_progress = not no_progress and sys.stderr.isatty()

    def progress(res):
        if show_progress:
            click.echo(
                "\r" + safe(f"{res.path[-50:]}: {res.read:,} read, {res.stored:,} stored, {res.quarantined:,} quarantined"),
                err=True,
                nl=False,
            )

    try:
        summary = engine.ingest(store, list(paths), options, force_format=force_format, batch_size=batch_size,
                                progress=progress)
    except ObjectStoreError as e:  # an input location that cannot be used: nothing was read
        if created:
            discard_if_unused(store_path)
        diag(f"error: {e}")
        sys.exit(1)
    finally:
        engine.close()
    if show_progress:
        click.echo("", err=True)
    if not summary.files:
        if created:
            discard_if_unused(store_path)
        diag(f"warning: no files to ingest in {', '.join(paths)}")
        sys.exit(1)
    if as_json:
        emit_json(summary.to_dict())
    else:
        from rich.table import Table

        from tracelens.cli.common import out_console

        keys = ["records", "read", "stored", "duplicates", "quarantined", "skipped"]
        heads = ["records", "read", "stored", "duplicate", "quarantined", "skipped"]
        if any(f.event_keys or f.joined for f in summary.files):  # log events: kept, and traces they completed
            keys += ["events", "joined", "waiting"]
            heads += ["events", "joined", "waiting"]
        t = Table(box=None)
        names, parent = relative_names([f.path for f in summary.files])
        # whole names, folded when long: files that differ only at the end must stay apart
        t.add_column(f"file (in {parent})" if parent else "file", overflow="fold",
                     min_width=min(max((len(n) for n in names), default=4), 40))
        for name in ("format", *heads):
            t.add_column(name)
        for f, name in zip(summary.files, names, strict=True):
            t.add_row(cell(name), cell(f.format or "-"), *(f"{getattr(f, k):,}" for k in keys))
        t.add_row("total", "", *(f"{summary.total(k):,}" for k in keys))
        out_console().print(t)
        waiting = summary.total("waiting")
        if waiting:
            diag(f"note: {waiting:,} log event(s) are waiting for their span: they are kept, and join its trace "
                 "when the spans are ingested")
        naive = summary.total("naive_timestamps")
        if naive:
            diag(f"note: {naive:,} timestamps had no time zone and were read as {naive_tz}")
        if summary.total("quarantined"):
            diag(f"see quarantined records with: tracelens quarantine --store {store_path}")
    for f in summary.errors:
        diag(f"error: {f.error}")
    for f in summary.files:
        if f.format == EMPTY:
            diag(f"note: {f.path} is empty: nothing to read")
    if created and summary.total("stored") + summary.total("quarantined") == 0:
        discard_if_unused(store_path)  # a run that stored nothing leaves no empty store behind
    if summary.errors:
        sys.exit(1)


@click.command()
@json_option
def formats(as_json):
    """List the input formats `ingest` recognises."""
    from tracelens.ingest.registry import FORMATS

    rows = [{"name": f.name, "description": f.description} for f in sorted(FORMATS.values(), key=lambda f: f.name)]
    if as_json:
        emit_json(rows)
    else:
        for r in rows:
            click.echo(f"{r['name']:<24} {r['description']}")


commands = [ingest, formats]
