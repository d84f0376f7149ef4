"""backend_fingerprint: a serving configuration new under the same model id, and how its traffic behaves.

Two kinds of input: OpenAI Chat Completions log lines ingested through the
pipeline (the fingerprint travels response -> attributes.system_fingerprint ->
the engine), and seeded synthetic windows (samples.synthetic) with a
fingerprint assigned at random, for the calibration figures quoted in
docs/drift.md.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import numpy as np
import polars as pl
import pyarrow as pa
import pytest

from tests.test_formats_openai import completion, req
from tracelens.analysis import DriftConfig, analyze
from tracelens.analysis.drift import _fingerprint
from tracelens.ingest.base import IngestOptions
from tracelens.ingest.pipeline import ingest
from tracelens.samples.synthetic import Scenario, make_pair
from tracelens.store import Store
from tracelens.storeopen import open_store
from tracelens.timeexpr import TimeWindow
from tracelens.weekly import load_window, run_drift

KIND = "backend_fingerprint"
CFG = DriftConfig(semantic=False, kinds=(KIND,))
MODEL = "gpt-4o-2024-08-06"
B0 = datetime(2026, 10, 5, tzinfo=UTC)  # a Monday
C0 = B0 + timedelta(days=7)
QUESTIONS = [f"Plan day {i} of a trip to city number {i % 7}." for i in range(25)]


# --------------------------------------------------------------------------- extraction


@pytest.mark.parametrize(
    "col",
    [
        pl.from_arrow(pa.table({"attributes": pa.array([[("system_fingerprint", "fp_a"), ("k", "v")], None, [("k", "")]],
                                                        type=pa.map_(pa.string(), pa.string()))})).to_series(),
        pl.Series("attributes", [[{"key": "system_fingerprint", "value": "fp_a"}], None, [{"key": "k", "value": ""}]]),
        pl.Series("attributes", [{"system_fingerprint": "fp_a", "k": "v"}, None, {"system_fingerprint": "", "k": "v"}]),
        pl.Series("attributes", [json.dumps({"system_fingerprint": "fp_a"}), None, "{}"]),
    ],
    ids=["map", "list-of-structs", "struct", "json"],
)
def test_fingerprint_column_from_every_attributes_shape(col):
    df = pl.DataFrame([col])
    assert df.select(_fingerprint(df)).to_series().to_list() == ["fp_a", None, None]


def test_no_attributes_no_fingerprint():
    df = pl.DataFrame({"x": [1]})
    assert df.select(_fingerprint(df)).to_series().to_list() == [None]


# --------------------------------------------------------------------------- OpenAI log lines through the pipeline


def _lines(start: datetime, n: int, fp_of, words_of, seed: int) -> list[dict]:
    rng = np.random.default_rng(seed)
    out = []
    for i in range(n):
        ts = start + timedelta(minutes=97 * i)
        fp = fp_of(i)
        words = int(words_of(fp) * rng.uniform(0.7, 1.3))
        text = " ".join(["word"] * words)
        q = QUESTIONS[int(rng.integers(len(QUESTIONS)))]
        cid = f"chatcmpl-{start:%m%d}-{i}"
        resp = completion(cid, text, created=int(ts.timestamp()), system_fingerprint=fp,
                          usage={"prompt_tokens": 30, "completion_tokens": words, "total_tokens": 30 + words})
        out.append({"timestamp": ts.isoformat().replace("+00:00", "Z"), "latency_ms": 800,
                    "metadata": {"app": "trips"}, "request": req(q), "response": resp})
    return out


def _ingested(tmp_path, lines):
    p = tmp_path / "openai_log.jsonl"
    p.write_text("".join(json.dumps(x) + "\n" for x in lines))
    store = Store(tmp_path / "store", create=True)
    summary = ingest(store, [str(p)], IngestOptions(), enricher=False)
    assert summary.files[0].reconciles and summary.files[0].quarantined == 0
    bw, cw = TimeWindow(B0, C0), TimeWindow(C0, C0 + timedelta(days=7))
    return load_window(store, bw), load_window(store, cw), bw, cw


def _report(base, cur, bw, cw, cfg=CFG):
    return analyze(base, cur, baseline_window=(bw.start, bw.end), current_window=(cw.start, cw.end), config=cfg)


def test_openai_log_new_fingerprint_with_longer_answers_is_an_alert(tmp_path):
    # baseline: fp_a (and fp_z, a second fingerprint OpenAI serves in parallel); current: fp_a and the new fp_b,
    # whose answers are three times longer
    lines = _lines(B0, 100, lambda i: "fp_a" if i % 4 else "fp_z", lambda fp: 40, seed=1)
    lines += _lines(C0, 100, lambda i: "fp_b" if i % 5 >= 2 else ("fp_a" if i % 5 else "fp_z"),
                    lambda fp: 120 if fp == "fp_b" else 40, seed=2)
    base, cur, bw, cw = _ingested(tmp_path, lines)
    r = _report(base, cur, bw, cw)
    found = [f for f in r.findings if f.kind == KIND]
    assert [f.segment for f in found] == [f"model={MODEL} fingerprint=fp_b"]  # fp_a / fp_z were already in use
    f = found[0]
    first_b = min(datetime.fromisoformat(x["timestamp"]) for x in lines[100:] if x["response"]["system_fingerprint"] == "fp_b")
    assert f.first_seen == first_b
    assert f.current_value == "fp_b" and f.baseline_value == "fp_a, fp_z"
    assert f.effect == pytest.approx(60 / 100)
    assert f.significant and f.p_value is None and f.severity == "alert"
    assert "median output" in f.summary and "behaviour differs" in f.summary
    by_id = {x["response"]["id"]: x["response"]["system_fingerprint"] for x in lines}
    assert f.evidence and all(by_id[t] == "fp_b" for t in f.evidence)
    row = {v.source: v for v in r.variance}["backend configuration"]
    assert row.status == "changed" and row.findings == (KIND,)


def test_openai_log_new_fingerprint_same_behaviour_is_info(tmp_path):
    lines = _lines(B0, 100, lambda i: "fp_a", lambda fp: 40, seed=3)
    lines += _lines(C0, 100, lambda i: "fp_b" if i % 2 else "fp_a", lambda fp: 40, seed=4)
    base, cur, bw, cw = _ingested(tmp_path, lines)
    found = [f for f in _report(base, cur, bw, cw).findings if f.kind == KIND]
    assert len(found) == 1 and found[0].severity == "info" and found[0].significant
    assert "no significant behaviour difference" in found[0].summary
    # the severity of the bare fact is configurable
    cfg = DriftConfig(semantic=False, kinds=(KIND,), deterministic_severity={KIND: "warn"})
    assert [f.severity for f in _report(base, cur, bw, cw, cfg).findings if f.kind == KIND] == ["warn"]


def test_openai_log_known_fingerprints_and_first_logging_are_not_new(tmp_path):
    # current uses only fingerprints from the baseline -> nothing; gpt-4o-mini logs a fingerprint for the first
    # time (none before) -> nothing either: that is logging starting, not a backend change
    lines = _lines(B0, 60, lambda i: "fp_a" if i % 2 else "fp_z", lambda fp: 40, seed=5)
    mini = _lines(B0 + timedelta(hours=1), 30, lambda i: None, lambda fp: 40, seed=6)
    mini += _lines(C0 + timedelta(hours=1), 30, lambda i: "fp_m", lambda fp: 40, seed=7)
    for x in mini:
        x["response"]["model"] = "gpt-4o-mini-2024-07-18"
        x["response"]["id"] += "-mini"
        if x["response"]["system_fingerprint"] is None:
            del x["response"]["system_fingerprint"]
    lines += _lines(C0, 60, lambda i: "fp_z" if i % 3 else "fp_a", lambda fp: 40, seed=8)
    base, cur, bw, cw = _ingested(tmp_path, lines + mini)
    r = _report(base, cur, bw, cw)
    assert not [f for f in r.findings if f.kind == KIND]
    assert {v.source: v for v in r.variance}["backend configuration"].status == "stable"


def test_weekly_path_labels_refusals_and_finds_the_new_fingerprint_refusing_more(tmp_path):
    # through ingest and the weekly path (which runs the refusal detector over the stored traces): the new
    # fingerprint refuses a third of its traffic, the known one almost nothing
    refuse = "I'm sorry, but I can't help with that request."

    def lines(start, n, fp_of, seed):
        out = _lines(start, n, fp_of, lambda fp: 40, seed)
        for i, x in enumerate(out):
            if x["response"]["system_fingerprint"] == "fp_b" and i % 3 == 0:
                x["response"]["choices"][0]["message"]["content"] = refuse
        return out

    all_lines = lines(B0, 120, lambda i: "fp_a", 12) + lines(C0, 120, lambda i: "fp_b" if i % 2 else "fp_a", 13)
    _, _, bw, cw = _ingested(tmp_path, all_lines)
    r = run_drift(open_store(tmp_path / "store"), bw, cw, config=CFG, embed=False)
    (f,) = [f for f in r.findings if f.kind == KIND]
    assert f.severity == "alert" and "refusals" in f.summary and "behaviour differs" in f.summary
    by_id = {x["response"]["id"]: x["response"]["choices"][0]["message"]["content"] for x in all_lines}
    assert f.evidence and all(by_id[t] == refuse for t in f.evidence)


def test_history_counts_as_seen_before(tmp_path):
    # a fingerprint absent from the baseline but served the week before is not new -- also on the weekly path,
    # whose history frame must carry the attributes
    old = _lines(B0 - timedelta(days=7), 40, lambda i: "fp_b", lambda fp: 40, seed=9)
    lines = old + _lines(B0, 60, lambda i: "fp_a", lambda fp: 40, seed=10)
    lines += _lines(C0, 60, lambda i: "fp_b", lambda fp: 40, seed=11)
    base, cur, bw, cw = _ingested(tmp_path, lines)
    assert [f.segment for f in _report(base, cur, bw, cw).findings if f.kind == KIND] == [f"model={MODEL} fingerprint=fp_b"]
    store = open_store(tmp_path / "store")
    r = run_drift(store, bw, cw, config=CFG, embed=False)
    assert not [f for f in r.findings if f.kind == KIND]
    assert {v.source: v for v in r.variance}["backend configuration"].status == "stable"


def test_no_fingerprint_logged_is_not_observable():
    sp = make_pair(Scenario(n_baseline=200, n_current=200, embeddings=False, seed=1))
    r = analyze(sp.baseline, sp.current, config=CFG)
    row = {v.source: v for v in r.variance}["backend configuration"]
    assert row.status == "not observable" and "system_fingerprint" in row.what_to_log
    assert not [f for f in r.findings if f.kind == KIND]


# --------------------------------------------------------------------------- calibration on synthetic windows

RUNS = 200
N = 400  # traces per window; the current window is split evenly between the known and the new fingerprint


def _windows(seed: int, refusal_add: float = 0.0, length_factor: float = 1.0):
    """A seeded synthetic pair: baseline on fp_a, current half fp_a, half the new fp_b (planted effects on fp_b)."""
    sp = make_pair(Scenario(n_baseline=N, n_current=N, embeddings=False, refusal_b=(0.08,) * 8, refusal_c=(0.08,) * 8,
                            seed=seed))
    rng = np.random.default_rng(10_000 + seed)
    new = rng.random(sp.current.height) < 0.5
    cur = sp.current.with_columns(
        pl.Series("attributes", [{"system_fingerprint": "fp_b" if x else "fp_a"} for x in new]),
        pl.Series("_new", new),
    )
    if refusal_add:
        flip = pl.Series(rng.random(cur.height) < refusal_add)
        cur = cur.with_columns(
            pl.when(pl.col("_new") & flip & (pl.col("status") != "error")).then(pl.lit("model")).otherwise("refusal")
            .alias("refusal")
        )
    if length_factor != 1.0:
        cur = cur.with_columns(
            pl.when(pl.col("_new")).then((pl.col("output_tokens") * length_factor).round().cast(pl.Int64))
            .otherwise("output_tokens").alias("output_tokens")
        )
    base = sp.baseline.with_columns(pl.lit({"system_fingerprint": "fp_a"}).alias("attributes"))
    return sp, base, cur.drop("_new")


def _severity(seed: int, **plant) -> str:
    sp, base, cur = _windows(seed, **plant)
    r = analyze(base, cur, baseline_window=sp.baseline_window, current_window=sp.current_window, config=CFG)
    found = [f for f in r.findings if f.kind == KIND]
    assert [f.segment for f in found] == ["model=claude-sonnet-4-5-20250929 fingerprint=fp_b"]
    return found[0].severity


def test_calibration_no_behaviour_change_stays_info():
    raised = sum(_severity(seed) != "info" for seed in range(RUNS))
    assert raised / RUNS <= 0.05, raised


@pytest.mark.parametrize(("plant", "what"), [({"refusal_add": 0.10}, "refusal"), ({"length_factor": 1.25}, "length")])
def test_calibration_power(plant, what):
    hits = sum(_severity(seed, **plant) in ("warn", "alert") for seed in range(RUNS // 2))
    assert hits / (RUNS // 2) >= 0.8, (what, hits)
