"""The `tracelens` command: a thin click group over the headless core.

Each command group lives in its own module under ``tracelens.cli`` and
exports ``commands``. The group imports a module only when one of its
commands runs (or help lists them), so `tracelens search` does not pay for
loading the refusal detector, the Anthropic SDK or torch.
"""

from __future__ import annotations

import importlib
import logging
import sys

import click

from tracelens import __version__

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
    "enrich": "enrich",
    "embed": "embed",
    "cluster": "embed",
    "clusters": "embed",
    "similar": "embed",
    "drift": "drift",
    "weekly": "drift",
    "eval-refusal": "refusal",
    "replay": "replay",
    "canary": "replay",
    "models": "models",
    "tui": "tui",
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
def cli():
    """tracelens: evidence for "the model got worse" from your production LLM logs.

    \b
    Typical flow:
      tracelens ingest logs/            # read exports into ./tracelens-store
      tracelens weekly                  # drift summary: did the model change, or the traffic?
      tracelens search --user 4411 --since yesterday
      tracelens replay TRACE_ID --n 5   # does today's pinned snapshot still do that?
      tracelens tui                     # find, inspect and replay interactively
    """


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
