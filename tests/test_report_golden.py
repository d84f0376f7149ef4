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

GOLDEN = Path(__file__).parent / "golden"
UPDATE = os.environ.get("TRACELENS_UPDATE_GOLDEN") == "1"


def build_fixture_report():
    """The fixed comparison behind every golden file (also used by docs/drift.md examples)."""
    rates = np.linspace(0.01, 0.12, 8)
    cur = rates * np.array([1, 1, 1, 1, 1, 2.5, 2.5, 2.5])
    sc = Scenario(
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
    return dataclasses.replace(report, generator={**report.generator, "version": "golden"})


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
