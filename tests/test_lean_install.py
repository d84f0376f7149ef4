"""The lean install: ``pip install tracelens`` without extras.

Ingest, capture, refusal labelling and the non-semantic drift findings must
work without torch, sentence-transformers, Textual or matplotlib. The commands
run in a subprocess where those modules cannot be imported at all (a meta-path
blocker stands in for their absence, so the test needs no second environment);
commands that need an extra must fail with one line naming the install command.
"""

import json
import subprocess
import sys

import jsonschema
import pytest

from tests.conftest import REPO, anthropic_line
from tests.test_import_hygiene import HEAVY

_BLOCKER = f"""
import sys
HEAVY = {HEAVY!r}
class _Absent:
    '''Makes the extras' modules unimportable, as in a base install.'''
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in HEAVY:
            raise ModuleNotFoundError(f"No module named {{name!r}}", name=name)
        return None
sys.meta_path.insert(0, _Absent())
"""


def _lean(args: list[str], cwd, blocker: str = _BLOCKER) -> subprocess.CompletedProcess:
    code = blocker + f"from tracelens.cli.main import cli\ncli({args!r}, prog_name='tracelens')\n"
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=cwd, timeout=300)


@pytest.fixture(scope="module")
def lean_store(tmp_path_factory):
    """Two ISO weeks of traffic ingested by a process without any extra."""
    d = tmp_path_factory.mktemp("lean")
    log = d / "log.jsonl"
    lines = []
    for i in range(120):
        day = 9 + (i % 14)  # 2026-11-09 .. 2026-11-22: W46 and W47
        refused = i >= 60 and i % 4 == 0
        lines.append(anthropic_line(i, ts=f"2026-11-{day:02d}T10:{i % 60:02d}:00Z",
                                    text="I can't help with that request." if refused else None))
    log.write_text("\n".join(lines) + "\n")
    r = _lean(["ingest", str(log), "--store", str(d / "store")], d)
    assert r.returncode == 0, r.stderr
    return d


def test_lean_install_ingests_and_reports_without_semantic_findings(lean_store):
    d = lean_store
    r = _lean(["weekly", "--week", "2026-W47", "--store", str(d / "store"), "--json"], d)
    assert r.returncode in (0, 1), r.stderr
    report = json.loads(r.stdout)
    # the command's real output is what the committed (generated) schema describes
    jsonschema.validate(report, json.loads((REPO / "schemas" / "drift_report.schema.json").read_text()))
    assert report["windows"]["baseline"]["n"] + report["windows"]["current"]["n"] == 120
    kinds = {f["kind"] for f in report["findings"]}
    assert {"refusal_rate", "response_length", "latency", "alias_usage"} <= kinds  # the non-semantic findings ran
    assert not kinds & {"prompt_semantic", "response_semantic", "prompt_mix"}
    skipped = [n for n in report["notes"] if "'embed' extra is not installed" in n]
    assert skipped and "pip install 'tracelens[embed]'" in skipped[0] and "prompt_mix" in skipped[0]
    assert "'embed' extra is not installed" in r.stderr  # said where the person running it sees it


def test_lean_install_html_report_says_where_the_charts_went(lean_store):
    d = lean_store
    r = _lean(["drift", "--baseline", "2026-W46", "--current", "2026-W47", "--store", str(d / "store"),
               "--format", "html", "-o", str(d / "r.html")], d)
    assert r.returncode in (0, 1), r.stderr
    html = (d / "r.html").read_text()
    assert "Charts left out" in html and "tracelens[charts]" in html and "<img" not in html
    assert "pip install 'tracelens[charts]'" in r.stderr


@pytest.mark.parametrize(("args", "extra"), [(["tui"], "tui"), (["embed"], "embed"),
                                             (["similar", "--semantic", "refund"], "embed")])
def test_commands_needing_a_missing_extra_fail_in_one_line(lean_store, args, extra):
    d = lean_store
    r = _lean([*args, "--store", str(d / "store")], d)
    assert r.returncode == 3, (r.stdout, r.stderr)
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and f"pip install 'tracelens[{extra}]'" in lines[0], r.stderr
    assert "Traceback" not in r.stderr


def _ld(field: int, body: bytes) -> bytes:
    """One length-delimited protobuf field (lengths here stay below 128: a one-byte varint)."""
    return bytes([field << 3 | 2, len(body)]) + body


def test_otlp_protobuf_without_the_extra_is_recognised_and_names_the_install(tmp_path):
    # a framed ExportTraceServiceRequest holding one span (ids, name, start), written byte by byte because
    # this test runs without opentelemetry-proto too
    start = bytes([7 << 3 | 1]) + (1_790_845_200 * 10**9).to_bytes(8, "little")  # start_time_unix_nano, fixed64
    span = _ld(1, bytes(range(1, 17))) + _ld(2, bytes(range(1, 9))) + _ld(5, b"chat") + start
    msg = _ld(1, _ld(2, _ld(2, span)))
    pb = tmp_path / "traces.binpb"
    pb.write_bytes(len(msg).to_bytes(4, "big") + msg)
    # opentelemetry itself may be there (the anthropic SDK's dependencies bring its API): the extra's modules are not
    blocker = _BLOCKER.replace('if name.split(".")[0] in HEAVY:',
                               'if name.startswith(("google.protobuf", "opentelemetry.proto")):')
    assert blocker != _BLOCKER
    r = _lean(["ingest", str(pb), "--store", str(tmp_path / "store")], tmp_path, blocker)
    assert r.returncode != 0, (r.stdout, r.stderr)
    assert "Traceback" not in r.stderr
    line = [ln for ln in r.stderr.splitlines() if "otlp" in ln]
    assert len(line) == 1 and "pip install 'tracelens[otlp]'" in line[0] and str(pb) in line[0], r.stderr
