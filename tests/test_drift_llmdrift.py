"""Optional check on real data: GPT-4 0314 vs 0613 answers to the same queries (../shared/data/llmdrift).

Baseline = gpt-4-0314 traces, current = gpt-4-0613 traces, both requested as
the alias ``gpt-4``. Refusal labels come from SENSITIVEQ's ``Response Rate``
column (1 = answered); the other datasets carry no refusal label. Output
length is measured from the answer text (characters). Timestamps are laid out
one minute apart in two consecutive weeks (the CSVs record one evaluation
run, not production traffic). The files are read in place, never copied.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import polars as pl

from tests.conftest import shared_path
from tracelens.analysis import DriftConfig, analyze

DATASETS = ("SENSITIVEQ_EVAL", "PRIME_FULL_EVAL", "LEETCODE_EASY_EVAL")


def _window(folder, model: str, start: datetime) -> pl.DataFrame:
    frames = []
    for i, name in enumerate(DATASETS):
        d = pl.read_csv(folder / f"{name}.csv", infer_schema_length=10000)
        d = d.filter(pl.col("model") == f"openaichat/{model}")
        refusal = (
            pl.when(pl.col("Response Rate") == 1).then(pl.lit("none")).otherwise(pl.lit("full"))
            if "Response Rate" in d.columns
            else pl.lit(None, dtype=pl.String)
        )
        frames.append(
            d.select(
                pl.format("{}-{}-{}", pl.lit(model), pl.lit(name), pl.col("id")).alias("trace_id"),
                pl.lit("openai").alias("provider"),
                pl.lit("gpt-4").alias("model_requested"),
                pl.lit(model).alias("model_returned"),
                pl.lit("gpt-4").alias("model_family"),
                pl.lit(True).alias("model_is_alias"),
                pl.lit(name.split("_")[0].lower()).alias("app"),
                pl.col("query").alias("prompt_text"),
                pl.col("query").hash(seed=7).cast(pl.String).alias("prompt_hash"),
                pl.col("answer").cast(pl.String).alias("response_text"),
                pl.col("temperature").cast(pl.Float64),
                pl.col("max_tokens").cast(pl.Int64),
                (pl.col("latency") * 1000).alias("latency_ms"),
                refusal.alias("refusal"),
                pl.lit(i, dtype=pl.Int64).alias("cluster_id"),
            )
        )
    df = pl.concat(frames)
    ts = [start + timedelta(minutes=k) for k in range(df.height)]
    return df.with_columns(pl.Series("timestamp", ts, dtype=pl.Datetime("us", "UTC")))


def test_gpt4_0314_vs_0613():
    folder = shared_path("llmdrift")
    t0 = datetime(2023, 6, 5, tzinfo=UTC)
    base = _window(folder, "gpt-4-0314", t0)
    cur = _window(folder, "gpt-4-0613", t0 + timedelta(days=7))
    report = analyze(base, cur, config=DriftConfig(semantic=False))
    sig = {(f.kind, f.segment): f for f in report.findings if f.significant}

    snap = sig[("model_snapshot", "family=gpt-4")]
    assert snap.baseline_value == "gpt-4-0314" and snap.current_value == "gpt-4-0613"
    assert snap.first_seen == t0 + timedelta(days=7)

    refusal = sig[("refusal_rate", "")]
    assert refusal.direction == "up" and refusal.baseline_value < refusal.current_value  # 79% -> 95% refused
    matched = sig[("matched_prompt_refusal", "")]
    assert matched.direction == "up"

    length = sig[("response_length", "")]
    assert length.direction == "down" and length.current_value < 0.5 * length.baseline_value
    assert length.severity == "alert"
