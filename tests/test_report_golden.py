"""Golden tests of the four report renderers on one fixed, seeded synthetic comparison.

Every section is real output: the findings come from ``analyze`` on seeded
synthetic windows, the canary section from the canary comparison over fixed
replays stored by the replay code, so a change in what the code produces or
in the report's shape shows as a golden diff.

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
from tracelens.replay.canary import add_to_canary
from tracelens.replay.client import ReplayResult
from tracelens.replay.storage import write_replays
from tracelens.report import FORMATS, render, render_html, render_terminal, strip_images
from tracelens.report.timeline import build_timeline
from tracelens.samples.synthetic import T0, WEEK, Scenario, make_history, make_pair
from tracelens.store import Store
from tracelens.weekly import canary_section

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


def build_fixture_report(store_root: Path):
    """The fixed comparison behind every golden file (also used by docs/drift.md examples).

    The drift findings come from :func:`analyze` on a seeded synthetic pair; the canary section comes
    from the real canary comparison (:func:`tracelens.weekly.canary_section`) over fixed replays
    written to a store at ``store_root`` (see :func:`write_canary_runs`).
    """
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
    canary = canary_section(write_canary_runs(store_root))
    # The package version changes with every release; the goldens must not.
    return dataclasses.replace(report, generator=dataclasses.replace(report.generator, version="golden"), canary=canary)


def build_fixture_timeline(report):
    """The HTML time charts' daily series for the fixture, from the same (seeded) trace frames."""
    sp = make_pair(fixture_scenario())
    return build_timeline(sp.baseline, sp.current, report)


#: (canary set, run id, trace id, refusal label, response texts) of the replays behind the canary section
_ANSWER = "To reset your password, open Settings, choose Security and follow the emailed link{}."
_MOVED_BEFORE = "Refunds are issued to the original card within 30 days of delivery{}."
_MOVED_AFTER = "Sorry -- please phone our billing desk; refund questions are not handled in chat{}."
_STABLE = "Our opening hours are 9:00 to 17:00, Monday to Friday."
CANARY_REPLAYS = [
    ("support-borderline", "0f9e8d7c6b5a", "b-11-17", "none", [_ANSWER.format(s) for s in ("", " now", " today")]),
    ("support-borderline", "0f9e8d7c6b5a", "b-11-42", "none", [_MOVED_BEFORE.format(s) for s in ("", " or so", " at most")]),
    ("support-borderline", "0f9e8d7c6b5a", "b-11-99", "none", [_STABLE] * 3),
    ("support-borderline", "a1b2c3d4e5f6", "b-11-17", "full", ["I can't help with account access requests."] * 3),
    ("support-borderline", "a1b2c3d4e5f6", "b-11-42", "none", [_MOVED_AFTER.format(s) for s in ("", " today", " now")]),
    ("support-borderline", "a1b2c3d4e5f6", "b-11-99", "none", [_STABLE] * 3),
    ("code-smoke", "123456abcdef", "b-11-3", "none", ["def add(a, b):\n    return a + b"] * 2),
]


def write_canary_runs(root: Path) -> Store:
    """A store holding two canary sets and their replays (fixed ids and times), written by the real replay code."""
    store = Store(root, create=True)
    for name in dict.fromkeys(r[0] for r in CANARY_REPLAYS):
        add_to_canary(root, name, list(dict.fromkeys(r[2] for r in CANARY_REPLAYS if r[0] == name)), n=3)
    at = T0 + 4 * WEEK
    results = []
    for name, run_id, trace_id, refusal, texts in CANARY_REPLAYS:
        for text in texts:
            at += timedelta(minutes=1)  # distinct times: replays are read oldest first
            results.append(
                ReplayResult(
                    replay_id=f"{run_id}-{len(results)}", trace_id=trace_id, created_at=at,
                    model_requested="claude-sonnet-4-5-20250929", response_text=text, stop_reason="end_turn",
                    refusal=refusal, canary=name, canary_run_id=run_id,
                )
            )
    write_replays(root, results)
    return store


@pytest.fixture(scope="module")
def report(tmp_path_factory):
    return build_fixture_report(tmp_path_factory.mktemp("golden-store"))



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
    assert [(c["name"], c["changed"]) for c in json.loads(render(report, "json"))["canary"]] == [
        ("code-smoke", 0), ("support-borderline", 2)  # sets in name order
    ]


def test_canary_section_is_the_real_comparison_and_absent_when_no_set_has_run(report):
    smoke, borderline = report.canary
    assert [(p.trace_id, p.changed) for p in borderline.prompts] == [("b-11-17", True), ("b-11-42", True), ("b-11-99", False)]
    assert borderline.prompts[0].refusal_flip == "answered->refused" and borderline.n_changed == 2
    assert smoke.previous_run_id is None and smoke.prompts[0].reasons == ("no successful replays in the previous run",)
    none = dataclasses.replace(report, canary=None)
    assert "Canary" not in render(none, "markdown") and "Canary" not in render(none, "terminal")
    assert json.loads(render(none, "json"))["canary"] is None


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
