"""`tracelens tui`: the interactive browser (Textual is imported only when the command runs)."""

from __future__ import annotations

from pathlib import Path

import click

from tracelens.cli.common import bound_callback, open_store, store_option, window_callback, zone_callback


@click.command(name="tui")
@store_option
@click.option("--report", "report_path", type=click.Path(dir_okay=False, exists=True),
              help="Drift report JSON (`tracelens drift --json`) for the This-week screen, instead of computing it.")
@click.option("--week", callback=window_callback, help="ISO week for the This-week screen, e.g. 2026-W47 (default: the last complete week).")
@click.option("--export-dir", type=click.Path(file_okay=False), envvar="TRACELENS_EXPORT_DIR",
              default="tracelens-exports", show_default=True,
              help="Where `c` (trace JSON) and `x` (reproduction scripts) write (or set TRACELENS_EXPORT_DIR).")
@click.option("--tz", default="UTC", show_default=True, callback=zone_callback(),
              help="Zone for typed times without one, e.g. Europe/Paris (display stays UTC).")
@click.option("--base-url", help="Messages API base URL for replays (default: $ANTHROPIC_BASE_URL, else the API).")
@click.option("--api-key-env", default="ANTHROPIC_API_KEY", show_default=True,
              help="Environment variable holding the API key for replays (the key is never shown).")
@click.option("--now", "now", metavar="INSTANT", callback=bound_callback(),
              help="Read relative times ('yesterday 3pm', '7d', the default week) as if the clock said this, e.g. "
                   "\"2026-11-22 10:00\" for the sample data (UTC unless zoned).")
def tui(store_path, report_path, week, export_dir, tz, base_url, api_key_env, now):
    """Find a trace from a complaint, read it in context and replay it.

    \b
    Keys: / search text · enter open · r replay · d prompt diff · s similar
          c copy JSON · x export curl/Python · w this week · ? help · q quit
    Example: tracelens tui --store ./tracelens-store
    """
    from tracelens.extras import require

    require("tui", "tracelens tui")
    store = open_store(store_path, needs="replays and eval results kept beside a local store")
    from tracelens.tui.app import TuiConfig, make_app

    config = TuiConfig(tz=tz, export_dir=Path(export_dir), report_path=Path(report_path) if report_path else None,
                       week=week, replay_base_url=base_url, replay_api_key_env=api_key_env,
                       now=(lambda: now) if now is not None else None)
    make_app(store, config).run()


commands = [tui]
