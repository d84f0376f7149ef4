"""`make demo`: the main job on the bundled sample logs, end to end.

Ingests ``sample_logs/`` into a fresh demo store and prints what each stage
finds. Every stage is the same code path as the CLI; nothing is faked except
where labelled (the replay runs against the local fake Messages API server
when no API key is set).
"""

from __future__ import annotations

import argparse
import shutil
import sys
from pathlib import Path

from click.testing import CliRunner  # noqa: F401  (the demo drives the real CLI in-process)

REPO = Path(__file__).resolve().parents[2]


def run(args: list[str]) -> int:
    from tracelens.cli.main import cli

    print(f"\n$ tracelens {' '.join(args)}", file=sys.stderr, flush=True)
    try:
        cli.main(args=args, prog_name="tracelens", standalone_mode=False)
        return 0
    except SystemExit as e:
        return int(e.code or 0)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--store", default=".demo/store")
    ap.add_argument("--samples", default=str(REPO / "sample_logs"))
    a = ap.parse_args(argv)
    store = Path(a.store)
    if store.exists():
        shutil.rmtree(store)
    rc = run(["ingest", "--store", str(store), "--no-progress", a.samples])
    run(["stats", "--store", str(store)])
    return 0 if rc in (0, 1) else rc


if __name__ == "__main__":
    sys.exit(main())
