"""Hostile input files for the ingest fuzz benchmark.

    python benchmarks/fuzz_inputs.py OUT_DIR [--n 600] [--seed 0]

``generate_hostile_files(out_dir, n, seed)`` writes ``n`` generated hostile
files (every format ``tracelens formats`` lists, in each of its layouts,
damaged one way per file: truncations, garbage, BOMs and UTF-16/32, NULs,
invalid UTF-8, deep nesting, wrong types, huge lines, broken gzip/zstd) and
returns ``(path, format, expected physical records)`` for each. The files
and the list depend only on ``n`` and ``seed``; the first 23 already cover
every format and layout, and ``n`` of at least ``len(pairs())`` (593; the
default 600) covers every (format layout, damage) pair.

What "expected physical records" means, and how to check a file: read it on
its own with ``ingest(store, [path], force_format=format)``; the file's
``FileResult.records`` must equal the expected count and ``reconciles`` must
hold (a count of 0 means nothing in the file can be decoded: the file is
reported as an error). The generator lives in ``tracelens.testing.hostile``
(shared with the test suite); its ``hostile_files`` also gives each file's
damage kind and how many intact records must be stored.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from tracelens.testing.hostile import ALL_SPECS, KINDS, UNSNIFFABLE, HostileFile, hostile_files, kinds_for

__all__ = ["ALL_SPECS", "KINDS", "UNSNIFFABLE", "HostileFile", "generate_hostile_files", "hostile_files", "pairs"]


def generate_hostile_files(out_dir: str | Path, n: int = 600, seed: int = 0) -> list[tuple[Path, str, int]]:
    """Write ``n`` hostile files under ``out_dir``; returns ``(path, format, expected physical records)`` each."""
    return [(f.path, f.fmt, f.records) for f in hostile_files(out_dir, n, seed)]


def pairs() -> list[tuple[str, str]]:
    """Every (format layout, damage kind) the generator knows."""
    return [(key, kind) for key, spec in ALL_SPECS.items() for kind in kinds_for(spec)]


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("out_dir", type=Path)
    ap.add_argument("--n", type=int, default=600, help="files to write (default 600: every pair at least once)")
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args(argv)
    for f in hostile_files(args.out_dir, args.n, args.seed):
        print(json.dumps({"path": str(f.path), "format": f.fmt, "kind": f.kind, "records": f.records,
                          "min_stored": f.min_stored}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
