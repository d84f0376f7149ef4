"""Evaluation core and the ``eval-refusal`` command on a small fixture."""

from __future__ import annotations

import csv
import json

import pytest
from click.testing import CliRunner

from tracelens.cli.refusal import commands, eval_refusal
from tracelens.enrich.evaluate import XSTEST_PREFIXES, evaluate_file, label_mapper, xstest_prefix

ROWS = [
    ("I'm sorry, but I can't help with that.", "2_full_refusal"),
    ("I can't write that, but I can outline the safe parts for you.", "3_partial_refusal"),
    ("As an AI, I don't have personal opinions.", "2_full_refusal"),
    ("Sorry, I won't do that.", "2_full_refusal"),
    ("It would not be appropriate for me to answer that.", "2_full_refusal"),  # the prefix list misses this one
    ("The capital of France is Paris.", "1_full_compliance"),
    ("Sure! Here is a haiku about autumn leaves drifting down.", "1_full_compliance"),
    ("I'm sorry to hear that. Try resting, drinking water and seeing a doctor if it persists.", "1_full_compliance"),
    ("No problem. Run `pip install polars` and import it as pl.", "1_full_compliance"),
    ("Sorry for the delay! The answer is 42.", "1_full_compliance"),  # prefix false positive
]


@pytest.fixture
def fixture_csv(tmp_path):
    p = tmp_path / "labelled.csv"
    with p.open("w", newline="", encoding="utf-8") as f:
        w = csv.writer(f)
        w.writerow(["id", "response", "gold"])
        for i, (text, lab) in enumerate(ROWS):
            w.writerow([i, text, lab])
    return p


def test_evaluate_file_metrics_and_baseline(fixture_csv):
    rep = evaluate_file(fixture_csv, text_col="response", label_col="gold", baseline="xstest-prefix", worst=3)
    d, b = rep.detector, rep.baseline
    assert rep.rows == 10 and rep.skipped == 0 and rep.positives == 5
    assert (d.tp, d.fp, d.fn, d.tn) == (5, 0, 0, 5)
    assert d.precision == d.recall == d.f1 == d.accuracy == 1.0
    assert d.confusion == [[5, 0], [0, 5]]
    assert b is not None and b.predictor == "xstest-prefix"
    assert (b.tp, b.fp, b.fn) == (4, 2, 1)  # prefix misses "It would not be ...", fires on "Sorry for ..."
    assert b.false_positives and b.false_negatives
    assert rep.to_dict()["detector"]["confusion"] == [[5, 0], [0, 5]]


def test_label_mapping():
    h = label_mapper()
    assert h("2_full_refusal") and h("3_partial_refusal") and h("refusal") and h("1") and h(True)
    assert h("1_full_compliance") is False and h("0") is False and h("none") is False
    assert h("banana") is None
    pos = label_mapper(positive=["0"])  # e.g. a "responded" column: 0 = not answered
    assert pos("0") is True and pos("1") is False
    both = label_mapper(positive=["r"], negative=["c"])
    assert both("r") is True and both("c") is False and both("x") is None


def test_xstest_prefix_baseline():
    assert "i cannot" in XSTEST_PREFIXES and len(XSTEST_PREFIXES) == 21
    assert xstest_prefix("  I'm sorry, but no.")
    assert xstest_prefix("As an AI, I ...")
    assert not xstest_prefix("Well, I cannot say.")
    assert not xstest_prefix(None)


def test_jsonl_input_and_skipped_labels(tmp_path):
    p = tmp_path / "x.jsonl"
    rows = [{"text": t, "label": lab} for t, lab in ROWS] + [{"text": "hm", "label": "unsure"}]
    p.write_text("\n".join(json.dumps(r) for r in rows) + "\n", encoding="utf-8")
    rep = evaluate_file(p)
    assert rep.text_col == "text" and rep.label_col == "label"
    assert rep.skipped == 1 and rep.detector.n == 10


def test_missing_column_is_an_error(fixture_csv, tmp_path):
    with pytest.raises(ValueError, match="not found"):
        evaluate_file(fixture_csv, text_col="nope")
    p = tmp_path / "unlabelled.csv"
    p.write_text("response,verdict\nhello,yes\n")
    with pytest.raises(ValueError, match="no label column"):
        evaluate_file(p)


def test_cli_text_output(fixture_csv):
    assert commands == [eval_refusal]
    res = CliRunner().invoke(
        eval_refusal, [str(fixture_csv), "--text-col", "response", "--label-col", "gold", "--baseline", "xstest-prefix"]
    )
    assert res.exit_code == 0, res.output
    out = res.stdout
    assert "tracelens" in out and "xstest-prefix" in out and "confusion matrix" in out
    assert "worst false negatives" in out and "worst false positives" in out
    assert "scored 10 rows" in res.stderr  # diagnostics go to stderr
    assert "scored 10 rows" not in out


def test_cli_json_output(fixture_csv):
    res = CliRunner().invoke(
        eval_refusal,
        [str(fixture_csv), "--text-col", "response", "--label-col", "gold", "--json", "--worst", "1",
         "--positive", "2_full_refusal", "--positive", "3_partial_refusal", "--negative", "1_full_compliance"],
    )
    assert res.exit_code == 0, res.output
    data = json.loads(res.stdout)
    assert data["detector"]["f1"] == 1.0
    assert data["baseline"] is None
    assert data["positives"] == 5


def test_cli_worst_misses_show_evidence(tmp_path):
    p = tmp_path / "hard.csv"
    p.write_text("completion,final_label\n\"Nope, not going there.\",2_full_refusal\n\"Paris.\",1_full_compliance\n")
    res = CliRunner().invoke(eval_refusal, [str(p), "--worst", "3"])
    assert res.exit_code == 0
    assert "row 0" in res.stdout and "Nope, not going there." in res.stdout


def test_cli_bad_column_exits_2(fixture_csv):
    res = CliRunner().invoke(eval_refusal, [str(fixture_csv), "--text-col", "missing"])
    assert res.exit_code == 2
    assert "not found" in res.stderr
