"""`tracelens store`: copy a store into a Delta Lake store (a directory or a URL), and clean one up."""

from __future__ import annotations

import sys

import click

from tracelens.cli.common import diag, emit_json, json_option, out_console


@click.group()
def store():
    """Delta Lake stores, local or on object storage: migrate a store into one, vacuum one."""


@store.command("migrate")
@click.argument("old")
@click.argument("new")
@click.option("--batch-rows", type=click.IntRange(min=1), default=20_000, show_default=True,
              help="Rows per commit.")
@json_option
def migrate_cmd(old, new, batch_rows, as_json):
    """Copy the store OLD into the Delta Lake store NEW and check the counts reconcile.

    OLD is a store directory (the Delta Lake layout, or the older file layout, which every command still reads
    with a one-line hint) or a store URL; NEW is a directory or a store URL: s3://bucket/prefix,
    gs://bucket/prefix, az://container/prefix or file:///absolute/path. NEW is created when absent, and OLD is
    only read: it stays usable as it is. Every table is a Delta Lake table (readable by polars, Spark, DuckDB
    and pyarrow through delta-rs); commits need no lock and no rename, so several machines may ingest into a
    store URL at once. Credentials come from the usual chain
    (AWS_* variables or AWS_PROFILE and ~/.aws; GOOGLE_APPLICATION_CREDENTIALS, or STORAGE_EMULATOR_HOST for an
    emulator; AZURE_STORAGE_CONNECTION_STRING or AZURE_STORAGE_*): docs/object-storage.md.

    Rows go in batch by batch through the commit path ingest uses, keyed by trace id (quarantine id, event id),
    so a migration interrupted at any point finishes when run again, without duplicates. Per table, rows read
    must equal rows written plus rows already in NEW, and every id read must be in NEW: otherwise the exit code
    is 1. The redaction salt is copied too, so later ingests into NEW pseudonymise alike.

    The embedding vectors (per model) and the topic clusters (cluster models, their assignments and the
    current model per embedding model) are copied too, and counted the same way, so `similar`, `clusters`
    and the semantic findings answer on NEW as on OLD without embedding again.

    Into a directory, replays, eval results, eval suites and canary sets, the model catalog override and the
    collect spool come too. A store URL does not hold those yet: they are listed as not copied, and the counts
    do not reconcile (exit 1), so nothing is left behind unnoticed.

    \b
    Examples:
      tracelens store migrate old-store tracelens-store
      tracelens store migrate tracelens-store s3://my-bucket/tracelens --json
    """
    from tracelens.storemigrate import migrate

    def progress(table: str, read: int, written: int) -> None:
        if sys.stderr.isatty():
            click.echo(f"\r{table}: {read:,} read, {written:,} written", err=True, nl=False)

    result = migrate(old, new, batch_rows=batch_rows, progress=progress)
    if sys.stderr.isatty():
        click.echo("", err=True)
    if as_json:
        emit_json(result.to_dict())
    else:
        from rich.table import Table

        t = Table(box=None)
        for name in ("table", "read", "written", "already there", "conflicts", "missing", "reconciles"):
            t.add_column(name)
        for c in result.tables:
            t.add_row(c.table, f"{c.read:,}", f"{c.written:,}", f"{c.already:,}", f"{c.conflicts:,}",
                      f"{c.missing:,}", "yes" if c.reconciles else "NO")
        out_console().print(t)
    for what in result.left_behind:
        diag(f"not copied: {what}")
    if not result.reconciles:
        diag(f"error: the copy of {old} into {result.destination} does not reconcile (see the table above)")
        sys.exit(1)


@store.command("vacuum")
@click.argument("url", metavar="STORE")
@click.option("--retention-hours", type=click.IntRange(min=1), default=None,
              help="Keep files younger than this (default: the tables' retention, 7 days). A short one may delete "
                   "files a writer still running is about to commit.")
@click.option("--dry-run", is_flag=True, help="List what would be deleted.")
@json_option
def vacuum_cmd(url, retention_hours, dry_run, as_json):
    """Delete the files of the Delta Lake store STORE (a directory or a URL) that no current version refers to.

    Those are files of rows a later commit replaced, and files a writer that was killed wrote before its commit
    (readers never see them). Only files older than the retention are deleted.
    """
    from tracelens.storemigrate import vacuum

    out = vacuum(url, retention_hours=retention_hours, dry_run=dry_run)
    if as_json:
        emit_json({"dry_run": dry_run, "files": out})
    else:
        for table, files in out.items():
            click.echo(f"{table}: {len(files):,} file(s) {'to delete' if dry_run else 'deleted'}")


commands = [store]
