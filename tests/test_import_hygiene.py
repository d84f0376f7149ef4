"""The headless core never imports the TUI or CLI frameworks."""

import subprocess
import sys

CORE = [
    "tracelens.schema", "tracelens.store", "tracelens.query", "tracelens.ingest.pipeline", "tracelens.modelid",
    "tracelens.modelcatalog",
    "tracelens.hashing", "tracelens.textsafe", "tracelens.tui_core", "tracelens.weekly", "tracelens.capture",
    "tracelens.redact",
]
OPTIONAL_CORE = ["tracelens.enrich.refusal", "tracelens.analysis.drift", "tracelens.replay", "tracelens.embed",
                 "tracelens.cluster", "tracelens.report", "tracelens.samples"]


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
