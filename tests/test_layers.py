"""The import-linter contracts in pyproject.toml cover the whole package.

``lint-imports`` (run by ``make test``) checks the contracts; this test checks
that the contracts name every core module, so a module added to the package
is not silently outside the "core imports neither click nor Textual" rule.
"""

from __future__ import annotations

import pkgutil
import tomllib
from pathlib import Path

import tracelens

ROOT = Path(__file__).resolve().parents[1]
FRONT_ENDS = {"cli", "tui", "demo", "data"}  # demo: runs the CLI; data: package data, not code


def _contracts() -> list[dict]:
    config = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
    return config["tool"]["importlinter"]["contracts"]


def test_core_contract_lists_every_module_but_the_front_ends():
    core = next(c for c in _contracts() if "click" in c.get("forbidden_modules", []) and "textual" in c["forbidden_modules"])
    listed = {m.removeprefix("tracelens.") for m in core["source_modules"]}
    modules = {m.name for m in pkgutil.iter_modules(tracelens.__path__)} - FRONT_ENDS - {"__main__"}
    assert listed == modules, (
        f"add to the core contract: {sorted(modules - listed)}; remove: {sorted(listed - modules)}"
    )

