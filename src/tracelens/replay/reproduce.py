"""Reproduction export: a trace's request as a ready-to-run curl script and Python script, or as JSON.

Contract:

* ``reproduction(trace)`` builds the replay body (``request.build_plan``:
  the recorded request with the model pinned and ``stream`` removed) and
  wraps it in a curl script and a standard-library Python script.
* The API key is referenced as ``$ANTHROPIC_API_KEY`` and never inlined; the
  body is pure-ASCII JSON (same values, non-ASCII as ``\\uXXXX``) so that
  ``cat``-ing a script cannot drive the terminal, whatever the user typed.
* ``export_reproduction`` / ``export_trace_json`` write the files under a
  directory with names made safe by ``safe_name`` (trace ids come from logs
  and may contain anything); the trace JSON is ``query.trace_json``, the same
  form `tracelens show --json` prints.
"""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass
from pathlib import Path

from tracelens.query import trace_json
from tracelens.replay.request import ReplayError, build_plan


def safe_name(trace_id: str) -> str:
    """A file-name-safe form of a trace id (ids come from logs and may contain anything)."""
    clean = re.sub(r"[^A-Za-z0-9._-]", "_", trace_id).strip("._")[:80] or "trace"
    if clean != trace_id:
        clean += "-" + hashlib.sha256(trace_id.encode("utf-8", "surrogatepass")).hexdigest()[:8]
    return clean


@dataclass
class Reproduction:
    """A ready-to-run reproduction of one trace's request."""

    trace_id: str
    model: str
    body: str  # ASCII-only compact JSON
    curl: str
    python: str
    notes: list[str]


ANTHROPIC_VERSION = "2023-06-01"


def reproduction(trace: dict, model: str | None = None) -> Reproduction:
    """curl and Python scripts that resend the trace's request to its pinned snapshot.

    The body is the replay body (``tracelens.replay.request.build_plan``):
    the recorded request with the model pinned and ``stream`` removed. It is
    written as ASCII-only JSON (same values, non-ASCII as ``\\uXXXX``), so the
    scripts contain no raw control or bidi characters from the logs.
    Raises ``ValueError`` when the trace cannot be replayed (the message says why).
    """
    try:
        plan = build_plan(trace, n=1, model=model)
    except ReplayError as e:
        raise ValueError(str(e)) from None
    body = json.dumps(plan.body_json, ensure_ascii=True, separators=(",", ":"))
    tid = str(trace.get("trace_id"))
    notes = list(plan.warnings)
    header = [
        f"trace {json.dumps(tid)[1:-1]} at {trace.get('timestamp')}",
        f"model pinned to {plan.model} (requested {trace.get('model_requested')})",
    ]
    header += notes
    comment = "".join(f"# {ascii_line(h)}\n" for h in header)
    curl = (
        "#!/bin/sh\n"
        "# Reproduce a tracelens trace with curl. Needs ANTHROPIC_API_KEY (and optionally ANTHROPIC_BASE_URL).\n"
        + comment
        + 'curl -sS "${ANTHROPIC_BASE_URL:-https://api.anthropic.com}/v1/messages" \\\n'
        '  -H "x-api-key: $ANTHROPIC_API_KEY" \\\n'
        f"  -H 'anthropic-version: {ANTHROPIC_VERSION}' \\\n"
        "  -H 'content-type: application/json' \\\n"
        "  --data-binary @- <<'TRACELENS_BODY'\n"
        f"{body}\n"
        "TRACELENS_BODY\n"
    )
    python = (
        '"""Reproduce a tracelens trace: POST the exact request body (standard library only).\n\n'
        'Reads ANTHROPIC_API_KEY (never written here) and optionally ANTHROPIC_BASE_URL.\n"""\n'
        + comment
        + "import json\nimport os\nimport sys\nimport urllib.error\nimport urllib.request\n\n"
        + f"BODY = {body!r}\n\n"
        + "url = os.environ.get('ANTHROPIC_BASE_URL', 'https://api.anthropic.com').rstrip('/') + '/v1/messages'\n"
        + "headers = {\n"
        + "    'x-api-key': os.environ['ANTHROPIC_API_KEY'],\n"
        + f"    'anthropic-version': '{ANTHROPIC_VERSION}',\n"
        + "    'content-type': 'application/json',\n"
        + "}\n"
        + "request = urllib.request.Request(url, data=BODY.encode('ascii'), headers=headers, method='POST')\n"
        + "try:\n"
        + "    with urllib.request.urlopen(request, timeout=600) as response:\n"
        + "        print(json.dumps(json.load(response), indent=2))\n"
        + "except urllib.error.HTTPError as e:\n"
        + "    print(e.code, e.read().decode('utf-8', 'replace'), file=sys.stderr)\n"
        + "    sys.exit(1)\n"
    )
    return Reproduction(tid, plan.model, body, curl, python, notes)


def ascii_line(text: str) -> str:
    """One line of pure printable ASCII (for comments in generated scripts)."""
    s = json.dumps(" ".join(str(text).split()), ensure_ascii=True)[1:-1]
    return re.sub(r"[^\x20-\x7e]", "?", s)


@dataclass
class Export:
    """Files written by an export, and the text a front end puts on the clipboard."""

    paths: list[Path]
    text: str  # what goes to the clipboard


def export_trace_json(trace: dict, directory: Path) -> Export:
    """Write the trace as JSON to ``directory/<id>.json``; returns the path and the JSON text."""
    text = trace_json(trace)
    directory.mkdir(parents=True, exist_ok=True)
    p = directory / f"{safe_name(str(trace['trace_id']))}.json"
    p.write_text(text + "\n", encoding="utf-8")
    return Export([p], text)


def export_reproduction(trace: dict, directory: Path, model: str | None = None) -> Export:
    """Write ``<id>.repro.sh`` (curl) and ``<id>.repro.py`` into ``directory``."""
    r = reproduction(trace, model=model)
    directory.mkdir(parents=True, exist_ok=True)
    stem = safe_name(str(trace["trace_id"]))
    sh = directory / f"{stem}.repro.sh"
    py = directory / f"{stem}.repro.py"
    sh.write_text(r.curl, encoding="ascii")
    sh.chmod(0o755)
    py.write_text(r.python, encoding="ascii")
    return Export([sh, py], r.curl)
