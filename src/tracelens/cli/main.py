"""The `tracelens` command: a thin click group over the headless core.

Each command group lives in its own module under ``tracelens.cli`` and
exports ``commands``. The group imports a module only when one of its
commands runs (or help lists them), so `tracelens search` does not pay for
loading the refusal detector, the Anthropic SDK or torch.
"""

from __future__ import annotations

import importlib
import logging
import os
import sys

import click

from tracelens import __version__
from tracelens.storenames import STORE_ENV  # no store code: top-level help stays light

# command name -> module under tracelens.cli, in help order (a test checks this matches the modules)
COMMANDS: dict[str, str] = {
    "ingest": "ingest",
    "formats": "ingest",
    "collect": "collect",
    "stats": "read",
    "show": "read",
    "search": "read",
    "quarantine": "read",
    "doctor": "doctor",
    "store": "store",
    "enrich": "enrich",
    "embed": "embed",
    "cluster": "embed",
    "clusters": "embed",
    "similar": "embed",
    "drift": "drift",
    "weekly": "drift",
    "explain": "explain",
    "eval-refusal": "refusal",
    "replay": "replay",
    "canary": "replay",
    "eval": "evals",
    "models": "models",
    "tui": "tui",
}

# What `tracelens --help` shows per command, so listing commands imports none of their modules (a test checks these
# equal each command's own short help). A command missing here is listed by importing its module.
SHORT_HELP: dict[str, str] = {
    "ingest": "Read log files into the store.",
    "formats": "List the input formats `ingest` recognises.",
    "collect": "Receive OTLP/HTTP traces and logs from running applications into the store.",
    "stats": "Traces per day, per model (requested vs returned) and per source format; quarantine count.",
    "show": "Show one whole trace (an unambiguous id prefix is enough).",
    "search": "Find traces.",
    "quarantine": "List quarantined records with their reasons.",
    "doctor": "Check the store: every table's log and data files (footer, pages, row counts), keys, metadata.",
    "store": "Delta Lake stores, local or on object storage: migrate a store into one, vacuum one.",
    "enrich": "Re-run enrichment over stored traces, one day partition at a time (atomic, idempotent).",
    "embed": "Embed prompt, response and system-prompt texts that have no vector yet.",
    "cluster": "Fit topic clusters on prompt embeddings and assign every trace.",
    "clusters": "Clusters with label, traces and refusal rate per week, and example prompts.",
    "similar": "Traces semantically closest to a trace (TRACE_ID or --like) or a free text (--semantic).",
    "drift": "Compare two time windows: refusals (raw and mix-adjusted), topics, semantics, lengths, latency, "
    "stop reasons, and the variance sources behind one model name.",
    "weekly": "The weekly drift summary: a week against the one before, with an 8-week refusal trend.",
    "explain": "Why one user finds the model worse: their traffic, what changed underneath, a ranked verdict.",
    "eval-refusal": "Score the refusal detector against a labelled CSV/JSONL FILE.",
    "replay": "Replay traces against their pinned snapshot N times and give a verdict.",
    "canary": "Canary sets: suites of traces graded by 'behaves like the recorded response', run on their pinned snapshots.",
    "eval": "Task evals from your own traffic: suites, graded runs on any target, regression tests.",
    "models": "List the model catalog: which ids are dated snapshots, aliases or fixed models.",
    "tui": "Find a trace from a complaint, read it in context and replay it.",
}


class MissingExtraError(click.ClickException):
    """An optional extra is missing: one line naming the install command, exit code 3."""

    exit_code = 3


class _StderrWarnings(logging.Handler):
    """Warnings of the core (a damaged file skipped, a journal set aside) as ``warning: ...`` lines on stderr."""

    def emit(self, record: logging.LogRecord) -> None:
        try:
            click.echo(f"warning: {record.getMessage()}", err=True)
        except Exception:
            self.handleError(record)


def _route_core_warnings() -> None:
    logger = logging.getLogger("tracelens")
    if not any(isinstance(h, _StderrWarnings) for h in logger.handlers):
        handler = _StderrWarnings(logging.WARNING)
        logger.addHandler(handler)
    if logger.level == logging.NOTSET or logger.level > logging.WARNING:
        logger.setLevel(logging.WARNING)


class LazyGroup(click.Group):
    def invoke(self, ctx: click.Context):
        from tracelens.extras import MissingExtra
        from tracelens.textsafe import visible

        _route_core_warnings()
        try:
            return super().invoke(ctx)
        except MissingExtra as e:
            raise MissingExtraError(str(e)) from None
        except click.ClickException as e:
            # messages quote ids, paths and values from the logs: shown, never interpreted by the terminal
            e.message = visible(e.message)
            raise
        except Exception as e:
            # e.g. a damaged file met while reading: one line naming it and the way to repair it. A command
            # that never imported the store cannot raise its errors, so `formats` does not pay for polars here.
            store = sys.modules.get("tracelens.store")
            if store is not None and isinstance(e, store.StoreError):
                raise click.ClickException(visible(str(e))) from None
            raise

    def list_commands(self, ctx: click.Context) -> list[str]:
        return list(COMMANDS)

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        """The command list from ``SHORT_HELP``: `tracelens --help` loads no command module (no SDK, no polars)."""
        limit = formatter.width - 6 - max(len(n) for n in COMMANDS)
        rows = []
        for name in COMMANDS:
            text = SHORT_HELP.get(name)
            if text is None:
                cmd = self.get_command(ctx, name)
                if cmd is None or cmd.hidden:
                    continue
                text = cmd.get_short_help_str(limit)
            elif len(text) > limit:  # cut at a word, as click shortens a command's own help
                text = text[: max(text.rfind(" ", 0, limit - 2), 1)].rstrip(" ,;:") + "..."
            rows.append((name, text))
        if rows:
            with formatter.section("Commands"):
                formatter.write_dl(rows)

    def get_command(self, ctx: click.Context, name: str) -> click.Command | None:
        module = COMMANDS.get(name)
        if module is None:
            return None
        mod = importlib.import_module(f"tracelens.cli.{module}")
        for cmd in mod.commands:
            if cmd.name == name:
                return cmd
        return None

    @property
    def commands(self) -> dict[str, click.Command]:  # used by docs generation and tests
        return {n: self.get_command(None, n) for n in COMMANDS}  # type: ignore[arg-type]

    @commands.setter
    def commands(self, value) -> None:  # click's constructor assigns it
        pass


@click.group(cls=LazyGroup, context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
@click.version_option(__version__, prog_name="tracelens")
@click.option("--store", "store_path", type=click.Path(file_okay=False), default=None, metavar="PATH",
              help=f"Store directory for the command (as its own --store, which wins; or set {STORE_ENV}).")
@click.pass_context
def cli(ctx: click.Context, store_path: str | None):
    """tracelens: evidence for "the model got worse" from your production LLM logs.

    \b
    Typical flow:
      tracelens ingest logs/            # read exports into ./tracelens-store
      tracelens weekly                  # drift summary: did the model change, or the traffic?
      tracelens search --user 4411 --since yesterday
      tracelens replay TRACE_ID --n 5   # does today's pinned snapshot still do that?
      tracelens tui                     # find, inspect and replay interactively
    """
    if store_path is not None:
        # Every command reads its --store from this variable when not given on its own, so the top-level
        # option becomes each command's default (beating an inherited variable); restored when the command ends.
        before = os.environ.get(STORE_ENV)
        os.environ[STORE_ENV] = store_path

        def restore() -> None:
            if before is None:
                os.environ.pop(STORE_ENV, None)
            else:
                os.environ[STORE_ENV] = before

        ctx.call_on_close(restore)


class _SafeFormatter(logging.Formatter):
    """Log records (warnings from the core quote paths and values) made safe for the terminal."""

    def format(self, record: logging.LogRecord) -> str:
        from tracelens.textsafe import visible

        return visible(super().format(record))


def main() -> None:
    handler = logging.StreamHandler()
    handler.setFormatter(_SafeFormatter("%(levelname)s: %(message)s"))
    logging.basicConfig(level=logging.WARNING, handlers=[handler])
    cli(prog_name="tracelens")


if __name__ == "__main__":
    main()
