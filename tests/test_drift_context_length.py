"""``context_length``: quality that changes with input size more in the current window than in the baseline.

Calibration (detector-level, vectorised, like the change-point tests): seeded
windows in which truncation, refusals and output length depend on input size
through a known relation that holds in both windows. Under no change, and
under a threefold growth of the inputs with the same relation, the kind fires
(warn or alert) in at most 5% of 200 runs each; a truncation rate that rises
from about 2% to 10% on the longest quarter of the baseline's inputs (shorter
inputs unchanged) is found in at least 80% of runs. Then end to end through
:func:`tracelens.analysis.analyze` on the ``samples.synthetic`` world: the
finding contract, cached prompt tokens counted as input, and the fallback to
prompt characters. Figures measured at commit time are in docs/drift.md.
"""

from __future__ import annotations

from datetime import UTC, datetime

import numpy as np
import polars as pl
import pytest

from tracelens.analysis import DriftConfig, analyze
from tracelens.analysis.detectors.context import DetectorContext
from tracelens.analysis.detectors.ctxlen import detect_context_length
from tracelens.analysis.draft import finalise
from tracelens.analysis.strata import Topics
from tracelens.samples.synthetic import make_pair

T0 = datetime(2026, 1, 5, tzinfo=UTC)
MU, SIGMA = np.log(2000.0), 0.8  # baseline input size: log-normal around 2,000 tokens
Q75 = float(np.exp(MU + SIGMA * 0.6745))  # the baseline's 75th percentile: where "the longest quarter" starts
APPS = np.array(["support", "rag", "coding"])


def _logit(p):
    return np.log(p / (1 - p))


def _sigmoid(x):
    return 1.0 / (1.0 + np.exp(-x))


def _outcomes(rng, logsize, topic, planted: bool | None):
    """Truncation, refusal and output length from the relation to input size (and topic) both windows share.

    ``planted`` None: truncation rises with input size (about 1% to 6%); False: a flat 2%; True: 2% but 10%
    on the longest quarter of (baseline) inputs, whatever the topic.
    """
    n = logsize.size
    z = (logsize - MU) / SIGMA
    p_trunc = _sigmoid(_logit(0.02) + 0.5 * z) if planted is None else np.full(n, 0.02)
    if planted:
        p_trunc = np.where(np.exp(logsize) >= Q75, 0.10, p_trunc)
    trunc = rng.random(n) < p_trunc
    refused = rng.random(n) < _sigmoid(_logit(0.04) + 0.4 * z + 0.5 * (topic == 0))
    tokens = np.exp(5.0 + 0.3 * z + 0.2 * topic + 0.5 * rng.standard_normal(n))
    tokens = np.where(trunc, 1024, np.where(refused, 25, np.minimum(tokens, 1023))).astype(np.int64)
    return trunc, refused, tokens


def _window(seed: int, w: int, n: int, scale: float = 1.0, planted: bool | None = None) -> pl.DataFrame:
    """One window in the engine's shape (the derived columns a detector reads)."""
    rng = np.random.default_rng([seed, w])
    topic = rng.integers(0, 4, n)
    # topics differ in input size (a RAG app reads long documents); the current window may read ``scale`` x more
    logsize = MU + 0.3 * (topic - 1.5) + np.log(scale) + SIGMA * rng.standard_normal(n)
    trunc, refused, tokens = _outcomes(rng, logsize, topic, planted)
    ok = rng.random(n) >= 0.01
    size = np.exp(logsize)
    cached = np.where(rng.random(n) < 0.5, np.floor(0.6 * size), 0).astype(np.int64)  # half the calls hit the cache
    ts = np.datetime64(T0.replace(tzinfo=None), "us") + np.sort(rng.integers(0, 7 * 86400 * 10**6, n)).astype("timedelta64[us]")
    ts = ts + np.timedelta64(7 * 86400 * w, "s")
    df = pl.DataFrame(
        {
            "_i": np.arange(n),
            "timestamp": ts,
            "_w": np.full(n, w, dtype=np.int8),
            "_ok": ok,
            "_err": ~ok,
            "_refused": refused,
            "stop_reason": np.where(trunc, "max_tokens", "end_turn"),
            "output_tokens": tokens,
            "input_tokens": np.maximum(1, np.round(size) - cached).astype(np.int64),
            "cache_read_tokens": cached,
            "app": APPS[np.minimum(topic, 2)],
            "_topic": topic.astype(np.int64),
        }
    )
    return df.select(
        pl.format("{}-{}-{}", pl.lit("bc"[w]), pl.lit(seed), pl.col("_i")).alias("trace_id"),
        pl.col("timestamp").dt.replace_time_zone("UTC"),
        "_w",
        pl.lit("claude-sonnet-4-5-20250929").alias("_model"),
        pl.lit("claude-sonnet-4-5").alias("_family"),
        "_ok",
        "_err",
        pl.when(pl.col("_ok")).then(pl.col("_refused")).alias("_refused"),
        pl.when(pl.col("_ok")).then(pl.col("stop_reason")).otherwise(pl.lit("error")).alias("stop_reason"),
        pl.when(pl.col("_ok")).then(pl.col("output_tokens")).alias("output_tokens"),
        pl.lit(None, dtype=pl.UInt32).alias("_resp_len"),
        "input_tokens",
        "cache_read_tokens",
        pl.lit(0, dtype=pl.Int64).alias("cache_creation_tokens"),
        pl.lit(None, dtype=pl.UInt32).alias("_prompt_len"),
        "app",
        "_topic",
    )


def _findings(seed: int, n: int = 2000, scale: float = 1.0, planted: bool | None = None):
    base = None if planted is None else False
    df = pl.concat([_window(seed, 0, n, planted=base), _window(seed, 1, n, scale, planted)])
    cfg = DriftConfig(seed=seed)
    ctx = DetectorContext(df, cfg, frozenset({"context_length"}), T0, Topics(None, {}, "none"), None, None, [], [])
    return finalise(detect_context_length(ctx), cfg.alpha, {})


def _fires(findings, metric: str | None = None) -> bool:
    return any(
        f.severity in ("warn", "alert") and (metric is None or f.summary.startswith(metric)) for f in findings
    )


@pytest.mark.parametrize("scale", [1.0, 3.0], ids=["no change", "inputs grew 3x, same relation"])
def test_no_change_false_alarms_at_most_5_percent(scale):
    fired = 0
    for seed in range(200):
        fs = _findings(seed, scale=scale)
        assert {f.summary.split(" on ")[0] for f in fs} >= {"Truncation (stop reason max_tokens)", "Output length"}
        fired += _fires(fs)
    print(f"context_length false alarms (scale {scale}): {fired}/200")
    assert fired / 200 <= 0.05, fired


def test_truncation_on_long_inputs_is_found():
    """Truncation 2% -> 10% on the longest quarter of inputs, 1,000 traces per window: found in >= 80% of runs."""
    hits = 0
    for seed in range(100):
        fs = [f for f in _findings(1000 + seed, n=1000, planted=True) if f.summary.startswith("Truncation")]
        hits += _fires(fs) and fs[0].direction == "up"
    print(f"context_length power (truncation 2% -> 10% on the longest quarter): {hits}/100")
    assert hits / 100 >= 0.80, hits


def test_a_level_change_at_every_size_is_not_this_kind():
    """Refusals up by the same amount at every input size: refusal_rate's finding, not a context_length one."""
    fired = 0
    for seed in range(50):
        df = pl.concat([_window(seed, 0, 1000), _window(seed, 1, 1000)])
        rng = np.random.default_rng([seed, 5])
        extra = (df.get_column("_w").to_numpy() == 1) & (rng.random(df.height) < 0.05)
        df = df.with_columns(pl.col("_refused") | pl.Series(extra))
        ctx = DetectorContext(df, DriftConfig(), frozenset({"context_length"}), T0, Topics(None, {}, "none"),
                              None, None, [], [])
        fired += _fires(finalise(detect_context_length(ctx), 0.05, {}), "Refusal")
    assert fired <= 5, fired


# --------------------------------------------------------------------------- end to end


def _redraw(frame: pl.DataFrame, seed: int, w: int, planted: bool, cache: bool = True) -> pl.DataFrame:
    """The synthetic world's frame with input sizes and outcomes redrawn from the relation above."""
    rng = np.random.default_rng([seed, w, 3])
    n = frame.height
    topic = frame.get_column("cluster_id").to_numpy() % 4
    logsize = MU + SIGMA * rng.standard_normal(n)
    trunc, refused, tokens = _outcomes(rng, logsize, topic, planted)
    size = np.round(np.exp(logsize)).astype(np.int64)
    cached = (size * 3) // 4 if cache else np.zeros(n, dtype=np.int64)
    ok = frame.get_column("status").to_numpy() == "ok"
    return frame.with_columns(
        pl.Series("input_tokens", size - cached),
        pl.Series("cache_read_tokens", cached),
        pl.lit(None, dtype=pl.Int64).alias("cache_creation_tokens"),
        pl.Series("stop_reason", np.where(ok, np.where(trunc, "max_tokens", "end_turn"), "error")),
        pl.Series("output_tokens", np.where(ok, tokens, 0)),
        pl.Series("refusal", np.where(refused, "full", "none")),
    )


def _report(seed: int, planted: bool, cache: bool = True, tokens: bool = True):
    sp = make_pair(n_baseline=1500, n_current=1500, embeddings=False, seed=seed)
    b, c = (_redraw(f, seed, w, planted and w == 1, cache) for w, f in ((0, sp.baseline), (1, sp.current)))
    if not tokens:
        b, c = (f.drop("input_tokens", "cache_read_tokens", "cache_creation_tokens") for f in (b, c))
    return analyze(b, c, baseline_window=sp.baseline_window, current_window=sp.current_window,
                   cluster_labels=sp.cluster_labels, config=DriftConfig(semantic=False, kinds=("context_length",)))


def test_finding_contract_end_to_end():
    report = _report(3, planted=True)
    (f,) = [f for f in report.findings if f.summary.startswith("Truncation")]
    assert f.kind == "context_length" and f.segment == "metric=stop_reason" and f.direction == "up"
    assert f.severity == "alert" and f.significant and f.p_value is not None and f.q_value is not None
    assert f.ci_low < f.effect < f.ci_high and f.ci_low > 0.02
    assert f.baseline_value < 0.05 < f.current_value  # the long inputs' truncation rate
    assert "tokens)" in f.summary and "\n" not in f.summary
    # evidence: truncated current-window traces, all on long inputs
    assert 10 <= len(f.evidence) <= 20 and all(t.startswith("c-") for t in f.evidence)
    assert f.first_seen is not None and f.first_seen >= datetime(2025, 1, 13, tzinfo=UTC)
    # the variance-sources table names the kind
    (row,) = [v for v in report.variance if v.source == "long-context behaviour"]
    assert row.status == "changed" and row.findings == ("context_length",)


def test_cached_prompt_tokens_count_as_input():
    """Three quarters of each prompt read from the cache: sizes are input + cache read, so the threshold says so."""
    with_cache = _report(3, planted=True, cache=True)
    (f,) = [f for f in with_cache.findings if f.summary.startswith("Truncation")]
    # the long part starts near the 75th percentile of the whole context (~3,400 tokens), not of the uncached rest
    start = float(f.summary.split("(>= ")[1].split(" ")[0].replace(",", ""))
    assert 2500 < start < 4500, f.summary


def test_without_token_counts_input_size_is_prompt_characters():
    report = _report(4, planted=False, tokens=False)
    fs = report.by_kind("context_length")
    assert fs and all("characters)" in f.summary for f in fs)
    assert not any(f.severity in ("warn", "alert") for f in fs)


def test_quiet_without_input_sizes():
    sp = make_pair(n_baseline=300, n_current=300, embeddings=False)
    b, c = (f.drop("input_tokens", "prompt_text") for f in (sp.baseline, sp.current))
    report = analyze(b, c, config=DriftConfig(semantic=False, kinds=("context_length",)))
    assert report.by_kind("context_length") == []


def test_drafts_carry_metric_scope_and_model_segments():
    """Two models, only one degrades on long inputs: its segment finds it; drafts say what they measure."""
    a = pl.concat([_window(7, 0, 1500, planted=False), _window(7, 1, 1500, planted=True)])
    b = pl.concat([_window(8, 0, 1500, planted=False), _window(8, 1, 1500, planted=False)])
    b = b.with_columns(pl.lit("claude-haiku-4-5-20251001").alias("_model"), pl.lit("claude-haiku-4-5").alias("_family"),
                       ("h" + pl.col("trace_id")).alias("trace_id"))
    df = pl.concat([a, b])
    segs = [(f"model={m}", pl.col("_model") == m) for m in ("claude-haiku-4-5-20251001", "claude-sonnet-4-5-20250929")]
    ctx = DetectorContext(df, DriftConfig(), frozenset({"context_length"}), T0, Topics(None, {}, "none"),
                          None, None, [], segs)
    drafts = detect_context_length(ctx)
    assert {d.metric for d in drafts} <= {"stop_reason", "refusal", "error", "response_length"}
    by_seg = {d.segment: d for d in drafts}
    assert {"metric=stop_reason", "model=claude-sonnet-4-5-20250929 metric=stop_reason"} <= set(by_seg)
    fs = {f.segment: f for f in finalise(drafts, 0.05, {})}
    assert fs["model=claude-sonnet-4-5-20250929 metric=stop_reason"].severity == "alert"
    assert fs["model=claude-haiku-4-5-20251001 metric=stop_reason"].severity == "info"
    d = by_seg["model=claude-sonnet-4-5-20250929 metric=stop_reason"]
    # scope: the segment's current-window traces on long inputs; evidence: truncated ones among them
    assert d.scope and all(t.startswith("c-7-") for t in d.scope)
    assert set(d.evidence) <= d.scope
    truncated = set(df.filter(pl.col("stop_reason") == "max_tokens").get_column("trace_id").to_list())
    assert set(d.evidence) <= truncated and len(d.evidence) == 20
    size = df.get_column("input_tokens") + df.get_column("cache_read_tokens")
    sizes = dict(zip(df.get_column("trace_id"), size, strict=True))
    assert min(sizes[t] for t in d.scope) > Q75 * 0.8  # long = the pooled top quarter
