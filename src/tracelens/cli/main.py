"""The `tracelens` command: a thin click group over the headless core.

Each command group lives in its own module under ``tracelens.cli`` and
exports ``commands``; this module only assembles them.
"""

from __future__ import annotations

import importlib

import click

from tracelens import __version__

# command-group modules, in help order
_GROUPS = (
    "ingest",
    "read",
    "enrich",
    "embed",
    "drift",
    "refusal",
    "replay",
    "tui",
)


@click.group(context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
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


def _register() -> None:
    for name in _GROUPS:
        try:
            mod = importlib.import_module(f"tracelens.cli.{name}")
        except ModuleNotFoundError as e:
            if e.name == f"tracelens.cli.{name}":
                continue  # command group not part of this build yet
            raise
        for cmd in mod.commands:
            cli.add_command(cmd)


_register()


def main() -> None:
    cli(prog_name="tracelens")


if __name__ == "__main__":
    main()
