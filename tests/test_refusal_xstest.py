"""Accuracy on XSTest v2 human labels (skipped when ../shared/data/xstest is absent)."""

from __future__ import annotations

from pathlib import Path

import pytest

from tracelens.enrich.evaluate import evaluate_file

XSTEST = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "xstest"
MODELS = ("gpt4", "llama2new", "llama2orig", "mistralguard", "mistralinstruct")

pytestmark = pytest.mark.skipif(not (XSTEST / "xstest_v2_completions_gpt4.csv").exists(), reason="XSTest not available")


def test_pooled_f1_and_per_file_beats_prefix_baseline():
    tp = fp = fn = 0
    for m in MODELS:
        rep = evaluate_file(XSTEST / f"xstest_v2_completions_{m}.csv", baseline="xstest-prefix", worst=0)
        assert rep.label_col == "final_label" and rep.skipped == 0
        assert rep.detector.f1 > rep.baseline.f1, m
        tp, fp, fn = tp + rep.detector.tp, fp + rep.detector.fp, fn + rep.detector.fn
    pooled = 2 * tp / (2 * tp + fp + fn)
    assert pooled >= 0.93, pooled
