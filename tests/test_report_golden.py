"""Golden tests of the four report renderers on one fixed, seeded synthetic comparison.

Every section is real output: the findings come from ``analyze`` on seeded
synthetic windows, the Evals section from the run summaries of fixed eval
runs graded and stored by the evals code, so a change in what the code
produces or in the report's shape shows as a golden diff.

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
from tracelens.analysis.findings import exit_code
from tracelens.evals.graders import grade_all
from tracelens.evals.model import Case, Response, Suite, case_outcome
from tracelens.evals.runner import CaseResult, EvalRun, write_results
from tracelens.evals.suite import parse_expect, save_suite
from tracelens.report import FORMATS, render, render_html, render_terminal, strip_images
from tracelens.report.timeline import build_timeline
from tracelens.samples.synthetic import T0, WEEK, Scenario, make_history, make_pair
from tracelens.store import Store
from tracelens.weekly import evals_section

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

    The drift findings come from :func:`analyze` on a seeded synthetic pair; the Evals section comes
    from the real run summaries (:func:`tracelens.weekly.evals_section`) over fixed eval runs
    written to a store at ``store_root`` (see :func:`write_eval_runs`).
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
    evals = evals_section(write_eval_runs(store_root))
    # The package version changes with every release; the goldens must not.
    return dataclasses.replace(report, generator=dataclasses.replace(report.generator, version="golden"), evals=evals)


def build_fixture_timeline(report):
    """The HTML time charts' daily series for the fixture, from the same (seeded) trace frames."""
    sp = make_pair(fixture_scenario())
    return build_timeline(sp.baseline, sp.current, report)


#: (suite, kind, grader, run id, start, answers per case) of the eval runs behind the Evals section
_REFUND = "Your refund for order {} is on its way."
_MOVED = "Please phone our billing desk about order {}."
EVAL_RUNS = [
    ("support-refunds", None, "contains:refund", "0f9e8d7c6b5a", T0 + 4 * WEEK,
     {f"r-{i:02d}": _REFUND.format(1000 + i) for i in range(12)}),
    ("support-refunds", None, "contains:refund", "a1b2c3d4e5f6", T0 + 4 * WEEK + timedelta(days=7),
     {f"r-{i:02d}": (_MOVED if i < 6 else _REFUND).format(1000 + i) for i in range(12)}),
    ("code-smoke", "canary", "not-refused", "123456abcdef", T0 + 4 * WEEK + timedelta(days=1),
     {"c-1": "def add(a, b):\n    return a + b", "c-2": "I can't help with that."}),
]


def write_eval_runs(root: Path) -> Store:
    """A store holding two suites and their runs (fixed ids, times and answers), graded and stored by the evals code."""
    store = Store(root, create=True)
    for name, kind, grader, run_id, started, answers in EVAL_RUNS:
        graders = parse_expect([grader])
        suite = Suite(name, [Case(cid, {"max_tokens": 64, "messages": [{"role": "user", "content": f"ask {cid}"}]},
                                  graders, {"task": name.split("-")[-1]}, model="claude-sonnet-4-5-20250929")
                             for cid in answers], kind=kind, created_at="2026-11-01T00:00:00+00:00")
        save_suite(root, suite)
        run = EvalRun(run_id, name, "pinned", "pinned", 1, started, started + timedelta(minutes=1))
        for k, (cid, text) in enumerate(answers.items()):
            resp = Response(text=text, stop_reason="end_turn", refusal="full" if "can't" in text else "none",
                            input_tokens=20, output_tokens=10, latency_ms=400.0 + 10 * k)
            grades = grade_all(graders, resp, suite.case(cid))
            run.results.append(CaseResult(cid, 0, *case_outcome(resp, grades), resp, grades, "claude-sonnet-4-5-20250929"))
        write_results(root, run, suite)
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


def test_evals_section_in_every_format(report):
    md = render(report, "markdown")
    assert "**Evals** (latest run per target vs the previous one)" in md
    assert "🔴 support-refunds (pinned): pass 50.0% [" in md and "(was 100.0%), -50.0 pp [" in md
    assert "-- regression; 6 cases passed before and fail now: r-00, r-01, r-02, ..." in md
    assert "🟢 code-smoke [canary] (pinned): pass 50.0% [" in md and "first run" in md
    assert md.index("support-refunds") < md.index("code-smoke")  # regressions first
    assert "Evals regressed against their previous run: support-refunds (pinned)." in md  # in the headline too
    txt = render(report, "terminal", width=120)
    assert "Evals (latest run per target vs the previous one)" in txt
    assert "[eval support-refunds pinned] 6 cases passed before and fail now: r-00, r-01, r-02, r-03, r-04, r-05" in txt
    html = render_html(report)
    assert '<section id="evals"><h2>Evals</h2>' in html and '<td class="alert">regression</td>' in html
    assert "6: <code>r-00</code>, <code>r-01</code>" in html
    doc = json.loads(render(report, "json"))
    assert [(e["suite"], e["kind"], e["verdict"], e["n_pass_to_fail"]) for e in doc["evals"]] == [
        ("code-smoke", "canary", "first run", 0), ("support-refunds", None, "regression", 6)  # by suite
    ]


def test_evals_section_is_the_real_summary_and_absent_when_no_suite_has_run(report):
    smoke, refunds = report.evals
    assert (refunds.run_id, refunds.previous_run_id, refunds.cases) == ("a1b2c3d4e5f6", "0f9e8d7c6b5a", 12)
    assert refunds.regressed and refunds.delta == -0.5 and refunds.p_value < 0.05 and refunds.pass_to_fail[0] == "r-00"
    assert refunds.latency_p50_ms == pytest.approx(455.0) and refunds.refusal_rate == 0.0 and refunds.errors == 0
    assert smoke.previous_run_id is None and smoke.refusal_rate == 0.5 and not smoke.regressed
    assert exit_code(report, "never") == 0 and exit_code(dataclasses.replace(report, findings=()), "alert") == 1
    none = dataclasses.replace(report, evals=None)
    assert "Evals" not in render(none, "markdown") and "Evals" not in render(none, "terminal")
    assert json.loads(render(none, "json"))["evals"] is None
    assert exit_code(dataclasses.replace(none, findings=()), "alert") == 0


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
