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
    for path, cmd in _walk(cli, ["tracelens"]):
        name = " ".join(path)
        # subcommands inherit the root's settings (e.g. -h as well as --help), as they do when run
        parent = None if cmd is cli else root
        ctx = root if parent is None else click.Context(cmd, info_name=name, parent=parent, terminal_width=100,
                                                        max_content_width=100)
        help_text = cmd.get_help(ctx).rstrip()
        out += [f"## `{name}`", "", "```text", help_text, "```", ""]
    return "\n".join(out)


if __name__ == "__main__":
    print(cli_markdown(), end="")
