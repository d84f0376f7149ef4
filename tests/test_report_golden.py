"""Golden tests of the four report renderers on one fixed, seeded synthetic comparison.

Regenerate after an intended change with::

    TRACELENS_UPDATE_GOLDEN=1 PYTHONPATH=src .venv/bin/python -m pytest tests/test_report_golden.py

and review the diff of tests/golden/. The HTML golden has its inline image
payloads replaced by '...'; the charts themselves are checked for
determinism and well-formedness separately.
"""

from __future__ import annotations

import base64
import dataclasses
import difflib
import json
import os
import re
from datetime import timedelta
from pathlib import Path

import numpy as np
import pytest
from rich.console import Console

from tracelens.analysis import DriftConfig, analyze
from tracelens.analysis.synthetic import T0, WEEK, Scenario, make_history, make_pair
from tracelens.report import FORMATS, render, render_html, render_terminal, strip_images
from tracelens.report.timeline import build_timeline

GOLDEN = Path(__file__).parent / "golden"
UPDATE = os.environ.get("TRACELENS_UPDATE_GOLDEN") == "1"


def fixture_scenario() -> Scenario:
    """The planted world behind every golden file."""
    rates = np.linspace(0.01, 0.12, 8)
    cur = rates * np.array([1, 1, 1, 1, 1, 2.5, 2.5, 2.5])
    return Scenario(
        n_baseline=1200,
        n_current=1200,
        dim=8,
        seed=11,
        refusal_b=tuple(rates),
        refusal_c=tuple(cur),
        length_factor_c=0.75,
        corrupt_rate_c=0.02,
        snapshot_change_at=T0 + WEEK + timedelta(days=2, hours=5, minutes=17),
        system_prompt_change_at=T0 + WEEK + timedelta(days=3, hours=9, minutes=41),
    )


def build_fixture_report():
    """The fixed comparison behind every golden file (also used by docs/drift.md examples)."""
    sc = fixture_scenario()
    sp = make_pair(sc)
    hist = make_history(sc, weeks=8, n_per_week=300)
    report = analyze(
        sp.baseline,
        sp.current,
        baseline_window=sp.baseline_window,
        current_window=sp.current_window,
        prompt_emb=sp.prompt_emb,
        response_emb=sp.response_emb,
        cluster_labels=sp.cluster_labels,
        history=hist,
        config=DriftConfig(semantic_max_per_window=300, semantic_permutations=100),
    )
    # The package version changes with every release; the goldens must not.
    return dataclasses.replace(report, generator={**report.generator, "version": "golden"}, canary=CANARY)


def build_fixture_timeline(report):
    """The HTML time charts' daily series for the fixture, from the same (seeded) trace frames."""
    sp = make_pair(fixture_scenario())
    return build_timeline(sp.baseline, sp.current, report)


def _prompt(trace_id: str, changed: bool, reasons: list[str], rc: float = 0.0, rp: float = 0.0) -> dict:
    """One prompt of ``CanaryComparison.to_dict()`` (tracelens.replay.canary.PromptComparison fields)."""
    return {
        "trace_id": trace_id,
        "n_current": 3,
        "n_previous": 3,
        "refusal_rate_current": rc,
        "refusal_rate_previous": rp,
        "refusal_flip": ("answered->refused" if rc > rp else "refused->answered") if rc != rp else None,
        "similarity_cross": 0.91,
        "similarity_current": 0.95,
        "similarity_previous": 0.94,
        "length_ratio": 1.0,
        "changed": changed,
        "reasons": reasons,
    }


#: what tracelens.weekly.canary_section puts in report.canary: CanaryComparison.to_dict() plus "changed"
CANARY = [
    {
        "name": "support-borderline",
        "run_id": "a1b2c3d4e5f6",
        "previous_run_id": "0f9e8d7c6b5a",
        "prompts": [
            _prompt("b-11-17", True, ["refusal rate 0% -> 100%"], rc=1.0),
            _prompt("b-11-42", True, ["answers moved: similarity across runs 0.612 < within-run 0.940 − 0.05"]),
            _prompt("b-11-99", False, []),
        ],
        "changed": 2,
    },
    {"name": "code-smoke", "run_id": "123456abcdef", "previous_run_id": None, "prompts": [
        {**_prompt("b-11-3", False, ["no successful replays in the previous run"]), "n_previous": 0}
    ], "changed": 0},
]


@pytest.fixture(scope="module")
def report():
    return build_fixture_report()


def _check(name: str, text: str) -> None:
    path = GOLDEN / name
    if UPDATE:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
        return
    assert path.exists(), f"{path} missing: run with TRACELENS_UPDATE_GOLDEN=1"
    want = path.read_text(encoding="utf-8")
    if text != want:
        diff = "".join(difflib.unified_diff(want.splitlines(True), text.splitlines(True), "golden", "now", n=1))
        pytest.fail(f"{name} differs from the golden file (TRACELENS_UPDATE_GOLDEN=1 to accept):\n{diff[:4000]}")


def test_fixture_shows_the_planted_changes(report):
    sig = {(f.kind, f.segment) for f in report.findings if f.significant}
    assert ("model_snapshot", "family=claude-sonnet-4-5") in sig
    assert ("system_prompt", "app=support") in sig
    assert ("refusal_rate", "") in sig and ("response_length", "") in sig and ("output_corruption", "") in sig
    # the planted refusal rise (x2.5 on topics 5-7) shows per topic, with the topic label in the segment
    assert any(k == "refusal_rate" and s.startswith("cluster=7 (recipe ideas)") for k, s in sig)


def test_canary_section_in_every_format(report):
    md = render(report, "markdown")
    assert "**Canary sets**" in md
    assert "**support-borderline**: run a1b2c3d4e5f6 vs 0f9e8d7c6b5a -- 2 of 3 prompts changed" in md
    assert "**code-smoke**: run 123456abcdef (no earlier run) -- 0 of 1 prompt changed" in md
    assert "b-11-99" not in md and "b-11-3" not in md  # unchanged prompts are counted, not listed
    assert "b-11-17" not in md  # the short post counts changed prompts; the HTML lists them
    txt = render(report, "terminal", width=120)
    assert "Canary sets" in txt and "[canary support-borderline] b-11-42: answers moved" in txt
    html = render_html(report)
    assert "<h2>Canary sets</h2>" in html and "<code>b-11-17</code>: refusal rate 0% -&gt; 100%" in html
    assert json.loads(render(report, "json"))["canary"][0]["changed"] == 2


def test_canary_section_tolerates_partial_dicts(report):
    odd = dataclasses.replace(report, canary=[{"name": "x", "prompts": [{"changed": True}, "junk"]}, "junk"])
    md = render(odd, "markdown")
    assert "**x**: run ? (no earlier run) -- 1 of 1 prompt changed" in md
    assert "<code>?</code>: changed" in render_html(odd)
    none = dataclasses.replace(report, canary=None)
    assert "Canary" not in render(none, "markdown") and "Canary" not in render(none, "terminal")


def test_golden_json(report):
    text = render(report, "json")
    json.loads(text)
    _check("drift_report.json", text)


def test_golden_markdown(report):
    _check("drift_report.md", render(report, "markdown"))


def test_golden_terminal(report):
    _check("drift_report.txt", render(report, "terminal", width=120))


def test_golden_html(report):
    _check("drift_report.html", strip_images(render(report, "html")))


def test_golden_html_with_timeline(report):
    _check("drift_report_timeline.html", strip_images(render_html(report, timeline=build_fixture_timeline(report))))


def test_html_charts_are_deterministic_svg(report):
    a, b = render_html(report), render_html(report)
    assert a == b
    imgs = re.findall(r"data:image/svg\+xml;base64,([A-Za-z0-9+/=]+)", a)
    assert len(imgs) == 4  # daily refusal rate, cluster shares, output tokens, latency
    for data in imgs:
        svg = base64.b64decode(data).decode("utf-8")
        assert svg.lstrip().startswith("<?xml") and "</svg>" in svg
        assert "dc:date" not in svg


def test_terminal_renders_into_given_console(report):
    console = Console(width=100, record=True, color_system=None, file=open(os.devnull, "w"))  # noqa: SIM115
    render_terminal(report, console, show_info=True)
    out = console.export_text()
    assert "Variance sources at a glance" in out and "INFO" in out
    assert set(FORMATS) == {"terminal", "markdown", "html", "json"}
    with pytest.raises(ValueError):
        render(report, "pdf")


def test_html_escapes_trace_text(report):
    f = report.findings[0]
    evil = dataclasses.replace(f, summary="<script>alert(1)</script>")
    html = render_html(dataclasses.replace(report, findings=(evil,)))
    assert "<script>alert(1)</script>" not in html and "&lt;script&gt;" in html
