"""Every command has help text and docs/cli.md is current."""

import re

from tests.conftest import REPO
from tracelens.cli.docgen import _walk
from tracelens.cli.main import cli


def test_every_command_has_help():
    missing = [" ".join(p) for p, cmd in _walk(cli, ["tracelens"]) if not (cmd.help or "").strip()]
    assert not missing, f"commands without help: {missing}"


def test_cli_reference_is_current():
    # a fresh interpreter: click caches each command's help option, so earlier tests could change the layout
    import subprocess
    import sys

    out = subprocess.run([sys.executable, "-m", "tracelens.cli.docgen"], capture_output=True, text=True, check=True)
    doc = (REPO / "docs" / "cli.md").read_text()
    assert doc == out.stdout, "docs/cli.md is stale: run `python -m tracelens.cli.docgen > docs/cli.md`"


def test_lazy_command_map_matches_the_modules():
    import importlib

    from tracelens.cli.main import COMMANDS

    found = {}
    for module in set(COMMANDS.values()):
        for cmd in importlib.import_module(f"tracelens.cli.{module}").commands:
            found[cmd.name] = module
    assert found == COMMANDS


def test_search_does_not_load_the_heavy_parts():
    import subprocess
    import sys

    code = (
        "import sys\nfrom click.testing import CliRunner\nfrom tracelens.cli.main import cli\n"
        "CliRunner().invoke(cli, ['search', '--help'])\n"
        "heavy = [m for m in ('tracelens.enrich.refusal', 'anthropic', 'torch', 'textual') if m in sys.modules]\n"
        "assert not heavy, heavy\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


def test_listed_short_help_is_each_commands_own():
    import click

    from tracelens.cli.main import COMMANDS, SHORT_HELP

    ctx = click.Context(cli)
    for name, text in SHORT_HELP.items():
        assert name in COMMANDS, f"SHORT_HELP lists {name!r}, which is not a command"
        assert cli.get_command(ctx, name).get_short_help_str(limit=10_000) == text, name


def test_top_level_help_loads_no_command_module():
    import subprocess
    import sys

    code = (
        "import sys\nfrom click.testing import CliRunner\nfrom tracelens.cli.main import cli\n"
        "r = CliRunner().invoke(cli, ['--help'])\nassert r.exit_code == 0 and 'ingest' in r.output, r.output\n"
        "loaded = [m for m in sys.modules if m.startswith('tracelens.cli.') and m != 'tracelens.cli.main']\n"
        "heavy = [m for m in ('polars', 'pyarrow', 'anthropic', 'tracelens.enrich.refusal') if m in sys.modules]\n"
        "assert not loaded and not heavy, (loaded, heavy)\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


def test_usage_lines_name_the_command_path_once():
    """Every usage line in docs/cli.md is ``tracelens <path>`` exactly as its heading, as a user types it."""
    text = (REPO / "docs" / "cli.md").read_text(encoding="utf-8")
    headings = re.findall(r"^## `(.+)`$", text, flags=re.M)
    usages = re.findall(r"^Usage: (.+?) \[OPTIONS\]", text, flags=re.M)
    assert usages == headings
