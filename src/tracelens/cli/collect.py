"""`tracelens collect`: receive OTLP/HTTP exports into the store (the server is ``tracelens.collect``)."""

from __future__ import annotations

import os
import re
import signal
import sys
import threading

import click

from tracelens.cli.common import FiniteFloatRange, diag, emit_json, json_option, open_store, safe, store_option

_SIZE = re.compile(r"(\d+)\s*([kmg]i?b?|b)?", re.IGNORECASE)
# the most one body may be: the spool frames a protobuf body with a 4-byte length, and otlp_proto reads
# messages up to this size
MAX_BODY_CAP = 256 * 1024 * 1024


class Size(click.ParamType):
    """A byte count: 1048576, 512K, 16M, 1G (binary units)."""

    name = "SIZE"

    def convert(self, value, param, ctx):
        if isinstance(value, int):
            return value
        m = _SIZE.fullmatch(str(value).strip())
        if not m:
            self.fail(f"{value!r} is not a size (e.g. 16M, 512K, 1048576)", param, ctx)
        n = int(m.group(1)) * 1024 ** " kmg".index((m.group(2) or " ")[0].lower().replace("b", " "))
        if n < 1:
            self.fail("must be at least 1 byte", param, ctx)
        return n


def _token(token_env: str | None, token_file: str | None) -> str | None:
    if token_env and token_file:
        raise click.UsageError("give --token-env or --token-file, not both")
    if token_env:
        value = os.environ.get(token_env, "").strip()
        if not value:
            raise click.BadParameter(f"environment variable {token_env} is not set or empty",
                                     param_hint="'--token-env'")
        return value
    if token_file:
        try:
            with open(token_file, encoding="utf-8") as f:
                value = f.read().strip()
        except (OSError, UnicodeDecodeError) as e:
            raise click.BadParameter(f"cannot read {token_file}: {e}", param_hint="'--token-file'") from None
        if not value:
            raise click.BadParameter(f"{token_file} is empty", param_hint="'--token-file'")
        return value
    return None


@click.command()
@click.option("--host", default="127.0.0.1", show_default=True,
              help="Address to listen on. Anything but loopback exposes the receiver: set a token.")
@click.option("--port", default=4318, show_default=True, type=click.IntRange(0, 65535),
              help="Port to listen on (0: any free port; the chosen one is printed).")
@click.option("--token-env", metavar="VAR", help="Require 'Authorization: Bearer <token>', the token read from this "
              "environment variable.")
@click.option("--token-file", metavar="FILE", help="Same, the token read from this file.")
@click.option("--max-body", default="32M", show_default=True, type=Size(),
              help="Largest request body, compressed or decompressed (larger: 413).")
@click.option("--max-pending", default="256M", show_default=True, type=Size(),
              help="Received but not yet committed bodies; beyond it requests get 429 with Retry-After.")
@click.option("--max-pending-files", default=10_000, show_default=True, type=click.IntRange(min=1),
              help="Received but not yet committed requests; beyond it requests get 429 with Retry-After.")
@click.option("--commit-interval", default=1.0, show_default=True, type=FiniteFloatRange(min=0),
              help="Seconds to gather requests into one store commit.")
@click.option("--batch-size", default=5000, show_default=True, type=click.IntRange(min=1),
              help="Records per atomic store commit.")
@click.option("--max-in-flight", default=16, show_default=True, type=click.IntRange(min=1),
              help="Requests received at once (bounds memory); beyond it requests get 503 with Retry-After.")
@click.option("--retry-after", default=1, show_default=True, type=click.IntRange(min=0),
              help="Seconds clients are told to wait when the receiver is full (429) or stopping (503).")
@click.option("--redact", default="", metavar="KINDS",
              help="Mask personal data and secrets in stored text: comma list of emails,phones,cards,keys (as ingest).")
@click.option("--redact-regex", multiple=True, metavar="REGEX", help="Extra pattern to mask (repeatable).")
@click.option("--redact-fields", default="", metavar="FIELDS",
              help="Replace these id columns by keyed tokens: comma list of user_id,session_id,app,request_id.")
@click.option("--phone-region", "phone_regions", multiple=True, default=("US",), show_default=True, metavar="CC",
              help="Region whose national phone numbers --redact phones recognises (repeatable).")
@click.option("--quiet", is_flag=True, help="No progress lines on stderr (the summary at exit is still written).")
@store_option
@json_option
def collect(host, port, token_env, token_file, max_body, max_pending, max_pending_files, commit_interval,
            batch_size, max_in_flight, retry_after, redact, redact_regex, redact_fields, phone_regions, quiet,
            store_path, as_json):
    """Receive OTLP/HTTP traces and logs from running applications into the store.

    Serves POST /v1/traces and /v1/logs (protobuf or JSON, gzip or not), so an
    application exporting with OTEL_EXPORTER_OTLP_ENDPOINT=http://127.0.0.1:4318
    lands its LLM calls in the store. A request is answered 200 only once its
    body is on disk (fsynced); a committer ingests what arrived, many requests
    per store commit, through the same importers as `ingest`. SIGTERM or Ctrl-C
    stops accepting, commits everything received and exits 0 (1 if some of it
    could not be committed: it is kept and committed at the next start).
    Protobuf needs the otlp extra; without it, protobuf requests get 415 and
    JSON works. Log records (GenAI events) are joined to their spans' traces.
    One collector per store. See docs/collect.md.

    \b
    Examples:
      tracelens collect
      TRACELENS_TOKEN=... tracelens collect --host 0.0.0.0 --token-env TRACELENS_TOKEN
    """
    from tracelens.collect import CollectConfig, SpoolBusy, is_loopback, serve
    from tracelens.ingest.base import IngestOptions
    from tracelens.redact import Redactor

    token = _token(token_env, token_file)
    kinds = tuple(k.strip() for k in redact.split(",") if k.strip())
    fields = tuple(k.strip() for k in redact_fields.split(",") if k.strip())
    try:  # validated before anything listens
        Redactor(kinds, tuple(redact_regex), fields=fields, phone_regions=tuple(phone_regions))
    except ValueError as e:
        raise click.BadParameter(str(e)) from None
    options = IngestOptions(redact_kinds=kinds, redact_patterns=tuple(redact_regex), redact_fields=fields,
                            phone_regions=tuple(r.upper() for r in phone_regions))
    if max_body > MAX_BODY_CAP:
        raise click.BadParameter(f"at most {MAX_BODY_CAP // (1024 * 1024)}M", param_hint="'--max-body'")
    if not is_loopback(host) and token is None:
        diag(f"warning: listening on {host}, which is not a loopback address, without a token: anyone who can "
             "reach it can write to the store (set --token-env or --token-file)")
    store = open_store(store_path, create=True, needs="a local spool directory for acknowledged requests")
    config = CollectConfig(host=host, port=port, token=token, max_body=max_body, max_pending_bytes=max_pending,
                           max_pending_files=max_pending_files, commit_interval=commit_interval,
                           batch_size=batch_size, max_in_flight=max_in_flight, retry_after=retry_after,
                           options=options)
    stop = threading.Event()

    def on_signal(signum, frame):
        stop.set()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)

    def ready(addr):
        h, p = addr
        shown = f"[{h}]" if ":" in h else h
        diag(safe(f"collect: listening on http://{shown}:{p} (POST /v1/traces, /v1/logs), store {store.root}"))

    def progress(stats):
        if not quiet:
            diag("collect: " + stats.line())

    try:
        stats = serve(store, config, stop, ready=ready, progress=progress)
    except SpoolBusy as e:
        raise click.ClickException(str(e)) from None
    except OSError as e:
        raise click.ClickException(f"cannot listen on {host}:{port}: {e.strerror or e}") from None
    diag("collect: stopped; " + stats.line())
    if as_json:
        emit_json(stats.to_dict())
    if stats.held_files:
        diag(f"note: {stats.held_files:,} received requests that this tracelens cannot read are kept under "
             f"{store.root / 'spool' / 'collect'}; a later start of a tracelens that can commits them")
    if stats.pending_files:
        diag(f"error: {stats.pending_files:,} received requests could not be committed; they are kept under "
             f"{store.root / 'spool' / 'collect'} and committed at the next start")
        sys.exit(1)


commands = [collect]
