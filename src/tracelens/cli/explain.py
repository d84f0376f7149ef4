"""`tracelens explain --user ID`: thin CLI over ``tracelens.explain`` (a user's complaint dossier).

Parses the options, calls ``explain_user`` and renders the dossier on stdout:
Rich in a terminal (``--format terminal``, default), Markdown
(``--format markdown``) or JSON (``--json``). Diagnostics go to stderr.
Exit codes: 0 done, 2 usage, 4 when the user (and session) has no traces
(as `drift`/`weekly` when a window holds none).
"""

from __future__ import annotations

import sys

import click

from tracelens.cli.common import diag, emit_json, json_option, open_store, out_console, store_option, when_option

#: the user has no traces: same code as `drift`/`weekly` when a window holds none (nothing was compared)
NO_DATA_EXIT = 4


@click.command()
@click.option("--user", "user_id", required=True, help="The user id (user_id) who complained.")
@click.option("--session", "session_id", default=None, help="Only this session of the user.")
@when_option("since")
@when_option("until", end=True)
@click.option("--baseline-weeks", default=4, show_default=True, type=click.IntRange(1, 52),
              help="Weeks of the user's earlier traffic to compare with.")
@click.option("--format", "fmt", type=click.Choice(["terminal", "markdown"]), default="terminal", show_default=True,
              help="Output format (--json for JSON).")
@store_option
@json_option
def explain(user_id, session_id, since, until, baseline_weeks, fmt, store_path, as_json):
    """Why one user finds the model worse: their traffic, what changed underneath, a ranked verdict.

    Sections: the user's own traffic per week, what changed underneath (snapshots, system prompts,
    tools, sampling, service tier), the user against comparable traffic, the same prompts in other
    weeks with a replay command, and the ranked verdict.

    The complaint window is the user's last 7 days of traffic unless --since/--until say otherwise; the
    baseline is the user's own traffic in the weeks before it. Exit code 4 when the user has no traces.

    \b
    Examples:
      tracelens explain --user 4411
      tracelens explain --user 4411 --since 2026-W47 --format markdown > dossier.md
    """
    from tracelens.explain import explain_user, render_markdown

    if since is not None and until is not None and since >= until:
        raise click.BadParameter("--since must be before --until", param_hint="--since")
    d = explain_user(open_store(store_path, url_ok=True), user_id, session_id=session_id, since=since, until=until,
                     baseline_weeks=baseline_weeks)
    if not d.traces:
        diag(d.notes[0] if d.notes else "No traces for this user.")
        sys.exit(NO_DATA_EXIT)
    if as_json:
        emit_json(d.to_dict())
    elif fmt == "markdown":
        click.echo(render_markdown(d), nl=False)
    else:
        from rich.console import Console
        from rich.markdown import Markdown

        # the weekly table has ten columns: below ~140 columns rich would cut week labels and tool names with an
        # ellipsis; a narrower terminal wraps the lines instead, and nothing shown is cut to look whole
        console = out_console()
        Console(highlight=False, soft_wrap=False, width=max(console.width, 140)).print(Markdown(render_markdown(d)))


commands = [explain]
