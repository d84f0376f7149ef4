"""Generate docs/cli.md from the commands' own help texts (``python -m tracelens.cli.docgen > docs/cli.md``).

A test checks that docs/cli.md matches, so every command is documented and
the reference never drifts from the code.
"""

from __future__ import annotations

import click

from tracelens.cli.main import cli


def _walk(cmd: click.Command, path: list[str]):
    yield path, cmd
    if isinstance(cmd, click.Group):
        for name in sorted(cmd.commands):
            yield from _walk(cmd.commands[name], [*path, name])


def cli_markdown() -> str:
    out = [
        "# Command reference",
        "",
        "Generated from the commands' help texts by `python -m tracelens.cli.docgen`; do not edit by hand.",
        "Every command that prints data has `--json`; data goes to stdout, diagnostics to stderr.",
        "",
    ]
    settings = {**cli.context_settings, "terminal_width": 100, "max_content_width": 100}
    root = click.Context(cli, info_name="tracelens", **settings)
    # one context per command, its parent the group's: the usage line reads "tracelens canary add", as when run
    contexts = {("tracelens",): root}
    for path, cmd in _walk(cli, ["tracelens"]):
        if cmd is not cli:
            # subcommands inherit the root's settings (e.g. -h as well as --help), as they do when run
            contexts[tuple(path)] = click.Context(cmd, info_name=path[-1], parent=contexts[tuple(path[:-1])],
                                                  terminal_width=100, max_content_width=100)
        help_text = cmd.get_help(contexts[tuple(path)]).rstrip()
        out += [f"## `{' '.join(path)}`", "", "```text", help_text, "```", ""]
    return "\n".join(out)


if __name__ == "__main__":
    print(cli_markdown(), end="")
