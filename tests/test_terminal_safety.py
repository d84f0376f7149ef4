"""Nothing from the logs reaches the terminal raw: every command, run for real in a pseudo-terminal.

Hostile values (a file name, trace ids, user ids, model ids, prompts, a
canary name, an eval file) carry Rich markup (``[bold red]``, ``[link=…]``),
a screen clear (``ESC[2J``), an OSC 8 hyperlink, BEL, C1 controls and bidi
overrides. The real ``tracelens`` entry point runs in a subprocess whose
stdin, stdout and stderr are a pty, so every isatty() branch (progress line,
Rich consoles) is taken. ``TERM=dumb`` makes Rich itself emit no escape
sequence, so *any* ESC, BEL or C1 byte in the output came from the data.
Markup must show literally; ``--json`` output must be valid JSON holding the
raw values.
"""

from __future__ import annotations

import json
import os
import pty
import select
import subprocess
import sys
import time
from pathlib import Path

import pytest

ESC_CLEAR = "\x1b[2J"
OSC8 = "\x1b]8;;https://evil.example\x07click\x1b]8;;\x07"
MARKUP = "[bold red]RED[/]"
LINK = "[link=https://evil.example]L[/link]"
FILE_MARKUP = "[bold red]RED[blink]"  # markup without "/", for file names
EVIL = f"{MARKUP}{ESC_CLEAR}{OSC8}\x9b31m\u202eevil\u202c{LINK}"
TRACE_ID = f"msg_{ESC_CLEAR}{OSC8}[bold]B[/]"
USER = f"[red]u[/red]\x1b[31m{OSC8}"
BAD_BYTES = ("\x1b", "\x07", "\x9b", "\x9d", "\u202e", "\u202c")
SRC = str(Path(__file__).resolve().parents[1] / "src")


def run_in_pty(argv_list: list[list[str]], cwd: Path, timeout: float = 120.0) -> list[str]:
    """Run ``tracelens ARGS`` for each ARGS in one interpreter attached to a pty; the output of each, in order."""
    driver = (
        "import sys\n"
        "from tracelens.cli.main import main\n"
        f"for i, args in enumerate({argv_list!r}):\n"
        "    sys.argv = ['tracelens', *args]\n"
        "    print(f'@@begin {i}@@', flush=True)\n"
        "    try:\n"
        "        main()\n"
        "    except SystemExit:\n"
        "        pass\n"
        "    except Exception:\n"
        "        import traceback; traceback.print_exc()\n"
        "    sys.stdout.flush(); sys.stderr.flush()\n"
        "    print(f'@@end {i}@@', flush=True)\n"
    )
    master, slave = pty.openpty()
    env = {**os.environ, "TERM": "dumb", "COLUMNS": "400", "LINES": "50", "PYTHONPATH": SRC,
           "TRACELENS_INGEST_WORKERS": "0", "ANTHROPIC_API_KEY": "", "NO_COLOR": ""}
    env.pop("NO_COLOR")
    proc = subprocess.Popen([sys.executable, "-c", driver], stdin=slave, stdout=slave, stderr=slave, cwd=cwd,
                            env=env, close_fds=True)
    os.close(slave)
    chunks = []
    deadline = time.monotonic() + timeout
    try:
        while time.monotonic() < deadline:
            ready, _, _ = select.select([master], [], [], 0.5)
            if ready:
                try:
                    data = os.read(master, 65536)
                except OSError:  # EIO: the child closed the pty
                    break
                if not data:
                    break
                chunks.append(data)
            elif proc.poll() is not None:
                break
    finally:
        os.close(master)
        proc.kill() if proc.poll() is None else None
        proc.wait(timeout=10)
    out = b"".join(chunks).decode("utf-8", "replace").replace("\r\n", "\n")
    parts = []
    for i in range(len(argv_list)):
        start, end = out.find(f"@@begin {i}@@"), out.find(f"@@end {i}@@")
        assert start >= 0 and end > start, f"command {argv_list[i]} did not finish:\n{out[-3000:]}"
        parts.append(out[start + len(f"@@begin {i}@@"):end])
    return parts


def assert_inert(name: str, text: str, *literal: str) -> None:
    for bad in BAD_BYTES:
        assert bad not in text, f"{name}: {bad!r} reached the terminal:\n{text[:2000]!r}"
    for lit in literal:
        assert lit in text, f"{name}: {lit!r} not shown literally:\n{text[:3000]}"


def _line(i: int, trace_id: str, *, user: str = "u1", model: str = "claude-sonnet-4-5-20250929",
          prompt: str = "hello", app: str = "support") -> str:
    return json.dumps({
        "timestamp": f"2026-11-{10 + i % 12:02d}T10:00:00Z", "latency_ms": 400, "request_id": f"req_{i}",
        "metadata": {"user_id": user, "app": app, "session_id": f"s-{EVIL}"},
        "request": {"model": "claude-sonnet-4-5-20250929", "max_tokens": 64,
                    "messages": [{"role": "user", "content": prompt}]},
        "response": {"id": trace_id, "type": "message", "role": "assistant", "model": model,
                     "content": [{"type": "text", "text": f"answer {EVIL}"}], "stop_reason": "end_turn",
                     "usage": {"input_tokens": 5, "output_tokens": 3}},
    })


@pytest.fixture(scope="module")
def hostile(tmp_path_factory):
    root = tmp_path_factory.mktemp("tty")
    d = root / "in"
    d.mkdir()
    path = d / f"logs {FILE_MARKUP}{ESC_CLEAR}{OSC8.replace('/', '')}\x07.jsonl"  # (no "/" in a file name)
    lines = [_line(0, TRACE_ID, user=USER, prompt=f"prompt {EVIL}", app=f"app{MARKUP}")]
    lines += [_line(i, f"msg_{i:04d}", model=f"claude-sonnet-4-5-20250929{MARKUP}\x1b[5m", prompt=EVIL)
              for i in range(1, 30)]
    lines.append('{"not json ' + EVIL)
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    evalf = d / f"eval {FILE_MARKUP}{ESC_CLEAR}.csv"
    evalf.write_text("response,label\n" + "\n".join(f'"I cannot help {EVIL} {i}",refusal' for i in range(3))
                     + '\n"Sure thing",compliance\n', encoding="utf-8")
    return root, path, evalf


def test_every_command_shows_hostile_values_literally(hostile):
    root, path, evalf = hostile
    s = ["--store", str(root / "store")]
    commands = {
        "ingest": ["ingest", str(path), *s],
        # (no "[" here: a missing path with one is taken for a glob pattern)
        "ingest missing file": ["ingest", str(path.with_name(f"missing{OSC8.replace('/', '')}.jsonl")), *s],
        "stats": ["stats", *s],
        "search": ["search", *s],
        "search --json": ["search", "--json", *s],
        "show": ["show", TRACE_ID, *s],
        "show missing id": ["show", f"nope{ESC_CLEAR}{MARKUP}", *s],
        "quarantine": ["quarantine", *s],
        "models show": ["models", "show", f"claude-x{ESC_CLEAR}{MARKUP}", *s],
        "replay --dry-run": ["replay", TRACE_ID, "--dry-run", *s],
        "replay unknown id": ["replay", f"zz{OSC8}", "--dry-run", *s],
        "canary add": ["canary", "add", f"set{MARKUP}{ESC_CLEAR}", TRACE_ID, *s],
        "canary list": ["canary", "list", *s],
        "drift": ["drift", "--baseline", "2026-11-10..2026-11-15", "--current", "2026-11-16..2026-11-21",
                  "--no-embed", "--fail-on", "never", *s],
        "drift markdown": ["drift", "--baseline", "2026-11-10..2026-11-15", "--current", "2026-11-16..2026-11-21",
                           "--no-embed", "--fail-on", "never", "--format", "markdown", *s],
        "eval-refusal": ["eval-refusal", str(evalf), "--text-col", "response", "--label-col", "label"],
        "enrich": ["enrich", *s],
        "bad option value": ["search", "--since", f"yesterday{ESC_CLEAR}{MARKUP}", *s],
    }
    outs = dict(zip(commands, run_in_pty(list(commands.values()), root), strict=True))
    for name, text in outs.items():
        assert "Traceback" not in text, (name, text[-3000:])
        assert_inert(name, text)
    # the values were shown, as text: markup literal, escapes as visible symbols
    assert_inert("ingest", outs["ingest"], FILE_MARKUP, "␛[2J")
    assert "read" in outs["ingest"] or "stored" in outs["ingest"]  # the progress line ran (stderr is a tty)
    assert_inert("ingest missing file", outs["ingest missing file"], "missing␛]8;;https:evil.example␇click")
    assert_inert("search", outs["search"], "msg_␛[2J")
    assert_inert("show", outs["show"], "[red]u[/red]", "␛]8;;https://evil.example␇click", LINK)
    assert_inert("show missing id", outs["show missing id"], "nope")
    assert_inert("quarantine", outs["quarantine"], FILE_MARKUP)
    assert_inert("models show", outs["models show"], MARKUP)
    assert_inert("canary add", outs["canary add"], MARKUP)
    assert_inert("stats", outs["stats"], MARKUP)
    assert_inert("eval-refusal", outs["eval-refusal"], FILE_MARKUP)
    assert_inert("bad option value", outs["bad option value"], MARKUP)
    # --json: valid JSON whose strings are the raw values (escaped by JSON, not by us)
    body = outs["search --json"]
    rows = json.loads(body[body.index("["):body.rindex("]") + 1])
    assert TRACE_ID in {r["trace_id"] for r in rows} and USER in {r["user_id"] for r in rows}
    # replay --dry-run prints the body as JSON: the same document, hostile characters escaped
    dry = outs["replay --dry-run"]
    doc = json.loads(dry[dry.index("{"):dry.rindex("}") + 1])
    assert doc["messages"][0]["content"] == f"prompt {EVIL}"
