"""The `tracelens` command: a thin click group over the headless core.

Each command group lives in its own module under ``tracelens.cli`` and
exports ``commands``. The group imports a module only when one of its
commands runs (or help lists them), so `tracelens search` does not pay for
loading the refusal detector, the Anthropic SDK or torch.
"""

from __future__ import annotations

import importlib
import logging

import click

from tracelens import __version__

# command name -> module under tracelens.cli, in help order (a test checks this matches the modules)
COMMANDS: dict[str, str] = {
    "ingest": "ingest",
    "formats": "ingest",
    "stats": "read",
    "show": "read",
    "search": "read",
    "quarantine": "read",
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


class LazyGroup(click.Group):
    def invoke(self, ctx: click.Context):
        from tracelens.extras import MissingExtra
        from tracelens.textsafe import visible

        try:
            return super().invoke(ctx)
        except MissingExtra as e:
            raise MissingExtraError(str(e)) from None
        except click.ClickException as e:
            # messages quote ids, paths and values from the logs: shown, never interpreted by the terminal
            e.message = visible(e.message)
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
