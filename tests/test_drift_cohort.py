"""The ``cohort`` kind: one cohort diverging from the rest of its dimension on comparable prompts.

Calibration runs call the detector on seeded two-window frames built here
(three regions eu/us/apac at 50/30/20%, six prompt topics, refusal labels,
errors, output tokens and latency) and finalise its drafts the way the engine
does. The regions differ PERMANENTLY (apac answers 20% shorter and refuses
more, us is faster, in both windows): under no change the kind must fire at
warn/alert in at most 5% of 200 runs. A planted divergence (apac's output
tokens x0.65 in the current window, 750 traces per window, ~150 apac) must be
found in at least 80% of 100 runs, on the right cohort and metric. End-to-end
runs go through :func:`analyze` on the synthetic generator's windows with a
region attribute, and through ``tracelens drift --cohort-by``.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import numpy as np
import polars as pl
from click.testing import CliRunner

from tests.conftest import anthropic_line
from tracelens.analysis import DriftConfig, analyze
from tracelens.analysis.detectors.cohort import cohort_column, detect_cohort
from tracelens.analysis.detectors.context import DetectorContext
from tracelens.analysis.draft import finalise
from tracelens.analysis.strata import Topics
from tracelens.cli.main import cli
from tracelens.samples.synthetic import Scenario, make_pair

T0 = datetime(2026, 1, 5, tzinfo=UTC)
REGIONS = np.array(["apac", "eu", "us"])
SHARES = (0.2, 0.5, 0.3)
# permanent differences between regions (both windows): log-length offset, latency factor, refusal factor
LEN_OFF = np.array([-0.2, 0.0, 0.05])
LAT_F = np.array([1.0, 1.0, 0.7])
REF_F = np.array([1.5, 1.0, 1.0])


def _window(rng, w: int, n: int, length_factor: float = 1.0, refusal_add: float = 0.0) -> pl.DataFrame:
    """One window; ``length_factor`` / ``refusal_add`` apply to apac in this window only."""
    region = rng.choice(3, size=n, p=SHARES)
    topic = rng.integers(0, 6, n)
    apac = region == 0
    p_ref = 0.04 * (1 + topic / 3) * REF_F[region] + np.where(apac, refusal_add, 0.0)
    refused = rng.random(n) < p_ref
    err = rng.random(n) < 0.01
    tokens = np.exp(5 + 0.2 * topic + LEN_OFF[region] + 0.5 * rng.standard_normal(n))
    tokens = np.where(apac, tokens * length_factor, tokens)
    tokens = np.where(refused, 25.0, np.round(np.maximum(tokens, 1)))
    latency = (300 + 15 * tokens) * LAT_F[region] * np.exp(0.2 * rng.standard_normal(n))
    start = T0 + timedelta(days=7 * w)
    secs = np.sort(rng.random(n)) * 7 * 86400
    return pl.DataFrame(
        {
            "trace_id": [f"{'bc'[w]}{i}" for i in range(n)],
            "timestamp": pl.Series([start] * n) + pl.Series(secs * 1e6).cast(pl.Duration("us")),
            "_w": np.full(n, w, dtype=np.int8),
            "_model": ["m-2026-01-01"] * n,
            "app": ["support-bot"] * n,
            "_topic": topic.astype(np.int64),
            "_refused": pl.Series(refused).set(pl.Series(err), None),
            "_err": err,
            "_ok": ~err,
            "output_tokens": np.where(err, np.nan, tokens),
            "latency_ms": latency,
            cohort_column("region"): REGIONS[region],
        }
    )


def _frame(seed: int, n: int = 750, **current) -> pl.DataFrame:
    rng = np.random.default_rng(seed)
    return pl.concat([_window(rng, 0, n), _window(rng, 1, n, **current)])


def _findings(df: pl.DataFrame, cfg: DriftConfig | None = None):
    cfg = cfg or DriftConfig()
    ctx = DetectorContext(df, cfg, frozenset({"cohort"}), T0 + timedelta(days=7), Topics(None, {}, "none"), None, None,
                          [], [], has_refusal=True)  # fmt: skip
    return finalise(detect_cohort(ctx), cfg.alpha, {}), ctx


def _fired(findings) -> list:
    return [f for f in findings if f.severity in ("warn", "alert")]


def test_permanent_gap_is_not_a_finding():
    """200 seeded runs with stable regional differences: warn/alert in at most 5%."""
    fired = sum(bool(_fired(_findings(_frame(seed))[0])) for seed in range(200))
    assert fired / 200 <= 0.05, fired


def test_planted_divergence_found():
    """apac's output tokens x0.65 in the current week: found on region=apac, output length, in >= 80% of 100 runs."""
    hits = 0
    for seed in range(100):
        fs, _ = _findings(_frame(1000 + seed, length_factor=0.65))
        hits += any(f.segment == "region=apac metric=response_length" and f.effect < 0 for f in _fired(fs))
    assert hits / 100 >= 0.8, hits


def test_finding_contract_and_scope():
    fs, ctx = _findings(_frame(7, length_factor=0.5))
    (f,) = _fired(fs)
    assert (f.kind, f.segment, f.severity, f.direction) == ("cohort", "region=apac metric=response_length", "alert", "down")
    assert f.baseline_value is not None and f.effect == f.current_value - f.baseline_value
    assert f.ci_low < f.effect < f.ci_high < -0.2
    assert "in the baseline" in f.summary and "x3 for 3 cohorts tested" in f.summary
    assert 0 < len(f.evidence) <= 20 and all(t.startswith("c") for t in f.evidence)
    assert any("region (3 of 3 values tested)" in n for n in ctx.notes)
    # one draft per dimension and metric; the drafts carry what folding reads
    drafts = detect_cohort(ctx)
    assert sorted(d.metric for d in drafts) == ["error", "latency", "refusal", "response_length"]
    df = _frame(7, length_factor=0.5)
    apac_now = set(df.filter((pl.col("_w") == 1) & (pl.col(cohort_column("region")) == "apac"))["trace_id"])
    d = next(d for d in drafts if d.metric == "response_length")
    assert d.scope <= apac_now and len(d.scope) > 0.9 * len(apac_now) and set(d.evidence) <= d.scope


def test_two_cohorts_are_one_comparison():
    df = _frame(3).with_columns(
        pl.when(pl.col(cohort_column("region")) == "eu").then(pl.lit("eu")).otherwise(pl.lit("other"))
        .alias(cohort_column("region"))
    )  # fmt: skip
    fs, _ = _findings(df)
    assert {f.segment.split(" ")[0] for f in fs} == {"region=other"}  # the smaller one, once per metric
    assert not any("cohorts tested" in f.summary for f in fs)


def test_a_dimension_of_ids_is_not_tested():
    df = _frame(3)
    df = df.with_columns(pl.Series(cohort_column("api_key_id"), [f"k{i % 25}" for i in range(df.height)]))
    fs, ctx = _findings(df, DriftConfig(cohort_by=("api_key_id",)))
    assert fs == () and any("api_key_id not tested (25 values" in n for n in ctx.notes)
    fs, ctx = _findings(df, DriftConfig(cohort_by=("no_such_key",)))
    assert fs == () and any("'no_such_key' skipped" in n for n in ctx.notes)


def test_a_new_cohort_is_tested_on_its_current_gap():
    df = _frame(5).with_columns(
        pl.when((pl.col("_w") == 0) & (pl.col(cohort_column("region")) == "apac")).then(pl.lit("eu"))
        .otherwise(pl.col(cohort_column("region"))).alias(cohort_column("region"))
    )  # fmt: skip
    fs, _ = _findings(df)
    f = next(f for f in fs if f.segment == "region=apac metric=response_length")
    assert f.baseline_value is None and f.effect == f.current_value and "is new" in f.summary
    assert f.significant and f.effect < 0  # apac's permanent 20% shorter answers, seen for the first time


def _with_region(df: pl.DataFrame, w: int, factor: float, as_list: bool) -> pl.DataFrame:
    """Support traffic gets a region attribute; apac's output tokens are multiplied by ``factor``."""
    rng = np.random.default_rng(7 + w)
    region = pl.Series("_r", REGIONS[rng.choice(3, size=df.height, p=(0.3, 0.4, 0.3))])
    pair = pl.struct(pl.lit("region").alias("key"), pl.col("_r").alias("value"))
    attrs = pl.concat_list(pair) if as_list else pl.struct(pl.col("_r").alias("region"))
    apac = pl.col("_r") == "apac"
    tok = pl.when(apac).then((pl.col("output_tokens") * factor).round().cast(pl.Int64).clip(1))
    # the generator's latency is (300 + 15 ms per output token) x noise: shorter answers finish sooner
    lat = pl.col("latency_ms") * (300 + 15 * tok) / (300 + 15 * pl.col("output_tokens"))
    return df.with_columns(region).with_columns(
        attrs.alias("attributes"),
        tok.otherwise(pl.col("output_tokens")).alias("output_tokens"),
        pl.when(apac & pl.col("output_tokens").is_not_null()).then(lat).otherwise(pl.col("latency_ms")).alias("latency_ms"),
    ).drop("_r")  # fmt: skip


def test_engine_finds_the_cohort_and_folds_the_weekly_length_finding():
    """Through analyze: the attribute read from a list of key/value pairs or a struct; the week-over-week
    output-length drop, carried by apac's traces, is reported once (as part of the cohort finding)."""
    sp = make_pair(Scenario(n_baseline=1500, n_current=1500, embeddings=False, refusal_b=(0.0,) * 8), seed=3)
    for as_list in (True, False):
        b = _with_region(sp.baseline, 0, 1.0, as_list)
        c = _with_region(sp.current, 1, 0.5, as_list)
        r = analyze(b, c, baseline_window=sp.baseline_window, current_window=sp.current_window,
                    cluster_labels=sp.cluster_labels, config=DriftConfig(semantic=False))  # fmt: skip
        fired = [(f.kind, f.segment) for f in r.findings if f.kind == "cohort" and f.severity != "info"]
        assert fired == [("cohort", "region=apac metric=response_length")]
        (length,) = [f for f in r.findings if f.kind == "response_length" and not f.segment]
        assert length.significant and length.severity == "info" and "Part of the cohort finding" in length.summary
        (row,) = [v for v in r.variance if v.source == "A/B cohorts"]
        assert row.status == "changed" and row.findings == ("cohort",)


def test_engine_without_cohorts_adds_nothing():
    """The synthetic apps share no prompt topic and carry no cohort attribute: no draft, the row says why."""
    sp = make_pair(Scenario(n_baseline=600, n_current=600, embeddings=False), seed=1)
    r = analyze(sp.baseline, sp.current, baseline_window=sp.baseline_window, current_window=sp.current_window,
                cluster_labels=sp.cluster_labels, config=DriftConfig(semantic=False, kinds=("cohort",)))  # fmt: skip
    assert r.findings == ()
    (row,) = [v for v in r.variance if v.source == "A/B cohorts"]
    assert row.status == "not observable" and "--cohort-by" in row.what_to_log


def test_cli_cohort_by(tmp_path):
    """``tracelens drift --cohort-by region`` on ingested logs whose metadata carries the region."""
    rng = np.random.default_rng(0)
    lines = []
    for week, day in ((0, 10), (1, 17)):
        for i in range(360):
            region = ("apac", "eu", "us")[i % 3]
            rec = json.loads(anthropic_line(week * 1000 + i, ts=f"2026-11-{day + i % 5:02d}T{8 + i % 10:02d}:00:00Z"))
            rec["metadata"]["region"] = region
            tokens = float(np.exp(5 + 0.5 * rng.standard_normal()))
            rec["response"]["usage"]["output_tokens"] = max(1, round(tokens * (0.5 if week and region == "apac" else 1)))
            lines.append(json.dumps(rec))
    logs = tmp_path / "logs.jsonl"
    logs.write_text("\n".join(lines) + "\n")
    store = str(tmp_path / "store")
    assert CliRunner().invoke(cli, ["ingest", "--store", store, "--no-progress", str(logs)]).exit_code == 0
    args = ["drift", "--store", store, "--baseline", "2026-W46", "--current", "2026-W47", "--no-embed", "--json",
            "--fail-on", "never"]
    r = CliRunner().invoke(cli, [*args, "--cohort-by", "region", "--cohort-by", "tenant"])
    assert r.exit_code == 0, r.output
    rep = json.loads(r.stdout)
    fired = [f["segment"] for f in rep["findings"] if f["kind"] == "cohort" and f["severity"] != "info"]
    assert fired == ["region=apac metric=response_length"]
    assert rep["config"]["cohort_by"] == ["region", "tenant"]
    assert any("'tenant' skipped" in n for n in rep["notes"])
