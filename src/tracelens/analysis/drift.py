"""The drift engine: "did the model change, or did our traffic?".

Contract::

    analyze(baseline, current, *, baseline_window=None, current_window=None,
            prompt_emb=None, response_emb=None, cluster_labels=None,
            history=None, config=DriftConfig(), catalog=None) -> DriftReport

* ``baseline`` / ``current``: polars frames with the trace columns of
  :mod:`tracelens.schema` (any may be missing or null) plus an optional
  ``cluster_id`` (int topic cluster). Missing columns are treated as null.
* ``prompt_emb`` / ``response_emb``: ``(baseline_array, current_array)``,
  each n x d, L2-normalised, row-aligned with the frames (float16 storage is
  fine; a :class:`~tracelens.analysis.strata.RowVectors` holds the vectors of
  a sample of rows only), or None -- then the tests that need them are
  skipped with a note.
* ``history``: optional frame covering earlier weeks (e.g. the last 8) for
  the weekly refusal trend and for "seen before" checks of the deterministic
  variance sources.
* ``catalog``: the :class:`~tracelens.modelcatalog.ModelCatalog` that decides
  which requested ids are aliases and knows release/deprecation/retirement
  dates (default: the shipped model data; ``run_drift`` passes the store's).
* ``text_summary``: a :class:`~tracelens.analysis.textfeatures.TextSummary`
  when the frames carry the text features
  (:data:`~tracelens.analysis.textfeatures.FEATURE_COLUMNS`) in place of the
  text columns (``tracelens.weekly`` reads large windows that way, a day at a
  time); the findings are those of the same frames with their text, and so
  are the labels of topics clustered here when its ``prompts`` hold the
  texts of the rows with a prompt vector.
* Pure and deterministic given ``config.seed``: no I/O, no global state; the
  frames are not modified.

Every statistical test contributes one p-value to a single Benjamini-Hochberg
family per report; see ``docs/drift.md`` for each method and its assumptions.
Refusal tests run globally, per model/family and per topic (segment
``cluster=<id> (<label>)``; topics with ``min_topic_n`` labelled traces per
window that pass Tarone's screen). When a family gets a new returned snapshot,
``snapshot_behaviour`` compares the traffic the new snapshot served with the
traffic its predecessor(s) served, within prompt strata, overall and per topic
(segment ``snapshot=<new>[ cluster=...]``; output length under
``response_length``).
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta

import numpy as np
import polars as pl
from threadpoolctl import threadpool_limits

from tracelens.analysis.config import DEFAULT_DETERMINISTIC_SEVERITY, DEFAULT_THRESHOLDS, DriftConfig
from tracelens.analysis.corruption import corruption_flags
from tracelens.analysis.detectors import run_detectors
from tracelens.analysis.detectors.cohort import cohort_attribute_keys, cohort_column
from tracelens.analysis.detectors.context import DetectorContext, model_segments
from tracelens.analysis.detectors.refusal import topic_refusal_segments
from tracelens.analysis.draft import finalise
from tracelens.analysis.findings import (
    DETERMINISTIC_KINDS,
    KINDS,
    ClusterShare,
    Distribution,
    DriftReport,
    Generator,
    SeriesPoint,
    Window,
)
from tracelens.analysis.sources import variance_table
from tracelens.analysis.stats import wilson
from tracelens.analysis.strata import EmbPair, RowVectors, Topics, build_topics
from tracelens.analysis.textfeatures import FEATURE_COLUMNS, FEATURE_TYPES, TextSummary, feature_exprs
from tracelens.analysis.variance import alias_decisions, family_of, text_lookup
from tracelens.modelcatalog import ModelCatalog, default_catalog

ANALYSIS_VERSION = "1"

__all__ = ["ANALYSIS_VERSION", "DEFAULT_DETERMINISTIC_SEVERITY", "DEFAULT_THRESHOLDS", "DriftConfig", "analyze"]


# --------------------------------------------------------------------------- input normalisation

_STR = pl.String
_COLS: dict[str, pl.DataType] = {
    "trace_id": _STR,
    "timestamp": pl.Datetime("us", "UTC"),
    "provider": _STR,
    "model_requested": _STR,
    "model_returned": _STR,
    "model_family": _STR,
    "model_snapshot": _STR,
    "model_is_alias": pl.Boolean,
    "app": _STR,
    "user_id": _STR,
    "system_prompt": _STR,
    "system_prompt_hash": _STR,
    "tools_hash": _STR,
    "tool_definitions": _STR,
    "prompt_hash": _STR,
    "prompt_text": _STR,
    "response_text": _STR,
    "stop_reason": _STR,
    "temperature": pl.Float64,
    "top_p": pl.Float64,
    "max_tokens": pl.Int64,
    "output_tokens": pl.Int64,
    "input_tokens": pl.Int64,
    "cache_read_tokens": pl.Int64,
    "cache_creation_tokens": pl.Int64,
    "latency_ms": pl.Float64,
    "time_to_first_token_ms": pl.Float64,
    "status": _STR,
    "error_type": _STR,
    "service_tier": _STR,
    "refusal": _STR,
    "refusal_score": pl.Float64,
    "cluster_id": pl.Int64,
}


_TEXT_COLS = ("prompt_text", "response_text", "system_prompt", "tool_definitions")
#: columns the deterministic variance checks read
_DET = (
    "trace_id",
    "timestamp",
    "_w",
    "_family",
    "_alias",
    "app",
    "model_requested",
    "model_returned",
    "system_prompt_hash",
    "tools_hash",
    "temperature",
    "top_p",
    "max_tokens",
    "service_tier",
    "_fp",
)


#: columns of the reference (baseline plus earlier history) that the deterministic checks read: sets of values
_REF = ("model_returned", "model_requested", "app", "system_prompt_hash", "tools_hash", "temperature", "top_p",
        "max_tokens", "service_tier", "_fp")


def _attribute(frame: pl.DataFrame, key: str, alias: str) -> pl.Expr:
    """``attributes.<key>`` as a string column ``alias`` (null where absent or empty).

    The store's ``attributes`` is a map; frames built in memory may carry it
    as a list of key/value structs, a struct or a JSON string.
    """
    dtype = frame.schema.get("attributes")
    col = pl.col("attributes")
    if isinstance(dtype, pl.Map):
        expr = col.map.get(key)
    elif isinstance(dtype, pl.List) and isinstance(dtype.inner, pl.Struct):
        fields = {f.name for f in dtype.inner.fields}
        if not {"key", "value"} <= fields:
            return pl.lit(None, dtype=pl.String).alias(alias)
        el = pl.element()
        expr = col.list.eval(el.filter(el.struct.field("key") == key).struct.field("value")).list.first()
    elif isinstance(dtype, pl.Struct) and key in {f.name for f in dtype.fields}:
        expr = col.struct.field(key)
    elif dtype == pl.String:
        expr = col.str.json_path_match(f"$.{key}")
    else:
        return pl.lit(None, dtype=pl.String).alias(alias)
    # an empty value is no value
    expr = expr.cast(pl.String, strict=False)
    return pl.when(expr != "").then(expr).alias(alias)


def _fingerprint(frame: pl.DataFrame) -> pl.Expr:
    """The backend fingerprint (``attributes.system_fingerprint``) as a string column ``_fp``."""
    return _attribute(frame, "system_fingerprint", "_fp")


def _prepare(frame: pl.DataFrame | None, w: int, attr_keys: tuple[str, ...] = (), features: bool = False) -> pl.DataFrame:
    """Select and type the columns the engine reads; missing ones become null.

    ``attr_keys``: attribute keys extracted as string columns (``cohort_column``
    names them) for the cohort tests.
    """
    frame = pl.DataFrame() if frame is None else frame
    exprs = []
    for name, dtype in _COLS.items():
        if name not in frame.columns:
            exprs.append(pl.lit(None, dtype=dtype).alias(name))
            continue
        col = pl.col(name)
        src = frame.schema[name]
        if name == "timestamp":
            if isinstance(src, pl.Datetime):
                col = col.dt.replace_time_zone("UTC") if src.time_zone is None else col.dt.convert_time_zone("UTC")
                col = col.dt.cast_time_unit("us")
            else:
                col = col.cast(pl.Datetime("us", "UTC"), strict=False)
        elif src != dtype:
            col = col.cast(dtype, strict=False)
        exprs.append(col.alias(name))
    if "tool_calls" in frame.columns and isinstance(frame.schema["tool_calls"], pl.List):
        exprs.append(pl.col("tool_calls").list.len().cast(pl.Int64).alias("_ntools"))
    else:
        exprs.append(pl.lit(None, dtype=pl.Int64).alias("_ntools"))
    exprs.append(_fingerprint(frame))
    exprs.extend(_attribute(frame, k, cohort_column(k)) for k in attr_keys)
    empty = {**_COLS, "_ntools": pl.Int64, "_fp": pl.String, **{cohort_column(k): pl.String for k in attr_keys}}
    if features:  # the text features computed where the text was read (textfeatures)
        if "_ntools" in frame.columns and "tool_calls" not in frame.columns:  # counted where it was read
            exprs = [pl.col("_ntools").cast(pl.Int64) if e.meta.output_name() == "_ntools" else e for e in exprs]
        for name, dtype in FEATURE_TYPES.items():
            exprs.append(pl.col(name).cast(dtype) if name in frame.columns else pl.lit(None, dtype=dtype).alias(name))
            empty[name] = dtype
    out = frame.select(exprs) if frame.width else pl.DataFrame(schema=empty)
    out = out.with_row_index("_row").with_columns(
        pl.lit(w, dtype=pl.Int8).alias("_w"),
        pl.col("trace_id").fill_null(pl.format("{}:{}", pl.lit("bc"[w]), pl.col("_row"))),
    )
    return out


def _derive(df: pl.DataFrame, cfg: DriftConfig, catalog: ModelCatalog | None = None) -> pl.DataFrame:
    """Per-row helper columns used by every test."""
    model = pl.coalesce("model_returned", "model_requested")
    uniq = df.select(model.alias("m")).unique().get_column("m").drop_nulls().to_list()
    fam_map = {m: family_of(m) for m in uniq}
    requested = df.get_column("model_requested").drop_nulls().unique().to_list()
    aliases, pinned = (sorted(x) for x in alias_decisions(requested, cfg.alias_patterns, catalog))
    ok = pl.col("status").fill_null("ok") != "error"
    return df.with_columns(
        model.alias("_model"),
        pl.coalesce(pl.col("model_family"), model.replace_strict(fam_map, default=None, return_dtype=pl.String)).alias(
            "_family"
        ),
        # the catalog's data settles an id either way (a store ingested before it knew claude-opus-4-6 is fixed
        # still says alias); ids it only knows by shape keep the ingested flag
        pl.when(pl.col("model_requested").is_in(aliases).fill_null(False))
        .then(True)
        .when(pl.col("model_requested").is_in(pinned).fill_null(False))
        .then(False)
        .otherwise(pl.col("model_is_alias").fill_null(False))
        .alias("_alias"),
        ok.alias("_ok"),
        (~ok | pl.col("error_type").is_not_null()).alias("_err"),
        pl.when(ok & pl.col("refusal").is_not_null()).then(pl.col("refusal") != "none").otherwise(None).alias("_refused"),
    )


def _as_window(win, frame: pl.DataFrame) -> Window:
    n = frame.height
    if isinstance(win, Window):
        return Window(win.start, win.end, n)
    if win is not None:
        start, end = win
        return Window(start, end, n)
    ts = frame.get_column("timestamp").drop_nulls()
    if ts.len() == 0:
        return Window(None, None, n)
    return Window(ts.min(), ts.max(), n)


def _emb_pair(pair, nb: int, nc: int, what: str) -> EmbPair | None:
    if pair is None:
        return None
    b, c = pair
    if b is None or c is None:
        return None
    b, c = (x if isinstance(x, RowVectors) else np.asarray(x) for x in (b, c))
    if b.shape[0] != nb or c.shape[0] != nc:
        raise ValueError(f"{what} rows ({b.shape[0]}, {c.shape[0]}) do not match the frames ({nb}, {nc})")
    return EmbPair(b, c)



#: kinds whose tests read prompt topics (clusters); the topics are built only when one is asked for
_NEED_TOPICS = frozenset(
    {
        "prompt_mix",
        "response_semantic",
        "response_length",
        "latency",
        "tool_call_rate",
        "refusal_rate",
        "refusal_rate_adjusted",
        "snapshot_behaviour",
        "cohort",
        "context_length",
    }
)


# --------------------------------------------------------------------------- series for trends and charts


@dataclasses.dataclass(frozen=True)
class SeriesCounts:
    """The refusal counts behind the report's daily series and weekly trend, computed outside ``analyze``.

    ``daily``: one row per UTC day (``_d``) with ``n`` labelled traces, ``x``
    refused, and the lowest and highest window code of its rows (``w0``,
    ``w1``: -1 history, 0 baseline, 1 current); ``trend``: one row per 7-day
    period (``_p``, counted from ``trend_start``) with ``n`` and ``x``. Both
    count the rows ``analyze`` would count itself: the two windows' traces and
    the history's traces before the earliest of them (``refusal_counts``
    states the rule). ``tracelens.engines`` computes them with Ray Data over
    the store's files; a ``trend_start`` other than the report's own is
    ignored (the trend is then counted from the frames).
    """

    daily: pl.DataFrame
    trend: pl.DataFrame
    trend_start: datetime | None


def _refused_expr(status: bool = True) -> pl.Expr:
    """``_derive``'s ``_refused``: null unless labelled and (``status``) not an error; else refused or not."""
    ok = (pl.col("status").fill_null("ok") != "error") if status else pl.lit(True)
    return pl.when(ok & pl.col("refusal").is_not_null()).then(pl.col("refusal") != "none").otherwise(None)


def refusal_counts(frame: pl.DataFrame, windows: tuple[tuple[int, datetime, datetime], ...],
                   history: tuple[datetime, datetime] | None, before: datetime | None,
                   trend_start: datetime | None, history_status: bool = False) -> pl.DataFrame:
    """Partial refusal counts of some stored rows (``timestamp``, ``status``, ``refusal``): ``_d``, ``_p``, ``_w``,
    ``n``, ``x``, summable over any split of the rows into parts (``SeriesCounts`` is their sum, regrouped).

    A row counts once per window ``(w, start, end)`` it falls in (start
    inclusive, end exclusive), and as history (``_w`` -1) when it falls in
    ``history`` and before ``before`` (the earliest timestamp of the windows'
    rows; no bound when None), exactly as ``analyze`` stacks the history under
    the windows; rows without a refusal label (or with an error status) count
    nowhere. History rows are counted by their label alone unless
    ``history_status``: the history ``weekly.prepare`` gives ``analyze`` has no
    ``status`` column, so its error rows count as labelled there too.
    ``_p`` is the 7-day period from ``trend_start`` (null before it).
    """
    ts = pl.col("timestamp")
    base = frame.select(ts.dt.convert_time_zone("UTC").dt.cast_time_unit("us").alias("timestamp"),
                        _refused_expr().alias("_refused"), _refused_expr(history_status).alias("_refused_h"))
    rows = base.filter(ts.is_not_null())
    parts = [rows.filter(pl.col("_refused").is_not_null() & (ts >= start) & (ts < end))
             .select("timestamp", "_refused", pl.lit(w, dtype=pl.Int8).alias("_w"))
             for w, start, end in windows]
    if history is not None:
        h = rows.filter(pl.col("_refused_h").is_not_null() & (ts >= history[0]) & (ts < history[1]))
        h = h.select("timestamp", pl.col("_refused_h").alias("_refused"))
        if before is not None:
            h = h.filter(ts < before)
        parts.append(h.with_columns(pl.lit(-1, dtype=pl.Int8).alias("_w")))
    rows = pl.concat(parts, how="vertical")
    period = pl.lit(None, dtype=pl.Int64)
    if trend_start is not None:
        step = timedelta(days=7).total_seconds()
        period = (pl.when(ts >= trend_start)
                  .then(((ts - pl.lit(trend_start)).dt.total_seconds() // step).cast(pl.Int64)))
    return (
        rows.with_columns(ts.dt.truncate("1d").alias("_d"), period.alias("_p"))
        .group_by("_d", "_p", "_w")
        .agg(pl.len().cast(pl.Int64).alias("n"), pl.col("_refused").sum().cast(pl.Int64).alias("x"))
    )


def series_counts(parts: pl.DataFrame, trend_start: datetime | None) -> SeriesCounts:
    """``SeriesCounts`` from the sum of ``refusal_counts`` parts (any number of rows per key)."""
    daily = (
        parts.group_by("_d")
        .agg(pl.col("n").sum().alias("n"), pl.col("x").sum().alias("x"), pl.col("_w").min().alias("w0"),
             pl.col("_w").max().alias("w1"))
        .filter(pl.col("n") > 0)
        .sort("_d")
    )
    trend = (
        parts.filter(pl.col("_p").is_not_null())
        .group_by("_p")
        .agg(pl.col("n").sum().alias("n"), pl.col("x").sum().alias("x"))
        .sort("_p")
    )
    return SeriesCounts(daily, trend, trend_start)


def _series(df: pl.DataFrame, every: str, start: datetime | None, periods: int | None, window_of,
            counts: SeriesCounts | None = None) -> tuple[SeriesPoint, ...]:
    if counts is not None:
        if counts.daily.height == 0:
            return ()
        if periods is not None and start is not None:
            got = {row["_p"]: (row["n"], row["x"]) for row in counts.trend.iter_rows(named=True)}
            return _trend_points(got, start, periods, window_of)
        return _daily_points(counts.daily)
    r = df.select("timestamp", "_refused", "_w").filter(pl.col("_refused").is_not_null() & pl.col("timestamp").is_not_null())
    if r.height == 0:
        return ()
    if periods is not None and start is not None:
        step = timedelta(days=7)
        r = r.filter(pl.col("timestamp") >= start)
        r = r.with_columns(((pl.col("timestamp") - pl.lit(start)).dt.total_seconds() // step.total_seconds()).cast(pl.Int64).alias("_p"))
        agg = r.group_by("_p").agg(pl.len().alias("n"), pl.col("_refused").sum().alias("x")).sort("_p")
        got = {row["_p"]: (row["n"], row["x"]) for row in agg.iter_rows(named=True)}
        return _trend_points(got, start, periods, window_of)
    agg = (
        r.with_columns(pl.col("timestamp").dt.truncate(every).alias("_d"))
        .group_by("_d")
        .agg(pl.len().alias("n"), pl.col("_refused").sum().alias("x"), pl.col("_w").min().alias("w0"), pl.col("_w").max().alias("w1"))
        .sort("_d")
    )
    return _daily_points(agg)


def _trend_points(got: dict, start: datetime, periods: int, window_of) -> tuple[SeriesPoint, ...]:
    step = timedelta(days=7)
    pts = []
    for i in range(periods):
        n, x = got.get(i, (0, 0))
        s0 = start + i * step
        lo, hi = wilson(x, n)
        pts.append(
            SeriesPoint(s0, s0 + step, int(n), int(x), x / n if n else None, _f(lo), _f(hi), window_of(s0, s0 + step))
        )
    return tuple(pts)


def _daily_points(agg: pl.DataFrame) -> tuple[SeriesPoint, ...]:
    pts = []
    for row in agg.iter_rows(named=True):
        n, x = int(row["n"]), int(row["x"])
        lo, hi = wilson(x, n)
        w0, w1 = row["w0"], row["w1"]
        win = "" if w1 < 0 else "baseline" if w0 == w1 == 0 else "current" if w0 == w1 == 1 else "both"
        pts.append(SeriesPoint(row["_d"], row["_d"] + timedelta(days=1), n, x, x / n, _f(lo), _f(hi), win))
    return tuple(pts)


def _f(v) -> float | None:
    v = float(v)
    return v if math.isfinite(v) else None


def _distribution(df: pl.DataFrame, metric: str, value: pl.Expr) -> Distribution | None:
    s = df.select("_ok", "_w", value.cast(pl.Float64).alias("v")).filter(pl.col("_ok") & pl.col("v").is_finite() & (pl.col("v") > 0))
    vb = s.filter(pl.col("_w") == 0).get_column("v").to_numpy()
    vc = s.filter(pl.col("_w") == 1).get_column("v").to_numpy()
    if vb.size < 2 or vc.size < 2:
        return None
    allv = np.concatenate([vb, vc])
    lo, hi = np.quantile(allv, [0.005, 0.995])
    lo = max(lo, 1e-3)
    if hi <= lo:
        hi = lo * 10
    edges = np.geomspace(lo, hi, 31)
    cb, _ = np.histogram(np.clip(vb, lo, hi), edges)
    cc, _ = np.histogram(np.clip(vc, lo, hi), edges)
    qb = tuple(float(x) for x in np.quantile(vb, [0.1, 0.5, 0.9]))
    qc = tuple(float(x) for x in np.quantile(vc, [0.1, 0.5, 0.9]))
    return Distribution(metric, tuple(float(e) for e in edges), tuple(int(x) for x in cb), tuple(int(x) for x in cc), qb, qc)


def _repeats(df: pl.DataFrame) -> dict:
    rep = (
        df.lazy()
        .filter(pl.col("prompt_hash").is_not_null() & pl.col("_ok"))
        .group_by("_w", "prompt_hash")
        .agg(pl.len().alias("n"), pl.col("_resp_hash").n_unique().alias("u"))
        .filter(pl.col("n") > 1)
        .collect()
    )
    temp = df.get_column("temperature")
    share_pos = float((temp.drop_nulls() > 0).mean()) if temp.drop_nulls().len() else None
    conc = (
        df.lazy()
        .filter((pl.col("_w") == 1) & pl.col("model_requested").is_not_null() & pl.col("model_returned").is_not_null())
        .group_by("model_requested", pl.col("timestamp").dt.truncate("1h"))
        .agg(pl.col("model_returned").n_unique().alias("k"))
        .filter(pl.col("k") > 1)
        .group_by("model_requested")
        .agg(pl.len().alias("hours"))
        # one mixed hour is just the moment of a rollover; several mean interleaved cohorts
        .filter(pl.col("hours") >= 3)
        .collect()
        .get_column("model_requested")
        .sort()
        .to_list()
    )
    return {
        "n_prompts": rep.height,
        "n_differing": int((rep.get_column("u") > 1).sum()) if rep.height else 0,
        "share_temp_pos": share_pos,
        "concurrent_snapshots": conc,
    }


def _generator() -> Generator:
    try:
        from importlib.metadata import version

        v = version("tracelens")
    except Exception:  # not installed (running from a checkout)
        v = "0+unknown"
    return Generator("tracelens", v, ANALYSIS_VERSION)


# --------------------------------------------------------------------------- entry point


def analyze(
    baseline: pl.DataFrame,
    current: pl.DataFrame,
    *,
    baseline_window=None,
    current_window=None,
    prompt_emb=None,
    response_emb=None,
    cluster_labels: Mapping[int, str] | None = None,
    history: pl.DataFrame | None = None,
    config: DriftConfig | None = None,
    catalog: ModelCatalog | None = None,
    series: SeriesCounts | None = None,
    text_summary: TextSummary | None = None,
) -> DriftReport:
    """Compare a current window of traces against a baseline window; see the module docstring.

    ``baseline_window`` / ``current_window`` are ``(start, end)`` datetimes (or
    :class:`Window`); when None they are taken from the data. ``catalog``: the
    model catalog (default: the shipped model data). ``series``: the refusal
    counts of the daily series and trend, counted elsewhere (``SeriesCounts``;
    None: counted here from the frames). Returns a
    :class:`DriftReport` whose findings are sorted by severity, kind, segment.
    """
    cfg = config or DriftConfig()
    # One BLAS thread: the engine's matrix products are small (KMeans fits on samples, C2ST/MMD on
    # <= 2,000 rows per window) or memory-bound (assigning rows to ~10 centres), and on small products
    # multi-threaded BLAS loses several-fold to thread hand-off. Polars keeps its own thread pool.
    with threadpool_limits(1):
        return _analyze(
            baseline, current, baseline_window, current_window, prompt_emb, response_emb, cluster_labels, history, cfg,
            catalog or default_catalog(), series, text_summary,
        )  # fmt: skip


def _analyze(
    baseline, current, baseline_window, current_window, prompt_emb, response_emb, cluster_labels, history, cfg, catalog,
    series=None,
    text_summary=None,
):
    kinds = frozenset(KINDS if cfg.kinds is None else cfg.kinds)
    unknown = kinds - set(KINDS)
    if unknown:
        raise ValueError(f"unknown finding kinds: {sorted(unknown)}")
    keys = cohort_attribute_keys(cfg) if "cohort" in kinds else ()
    lean = text_summary is not None
    b = _prepare(baseline, 0, keys, features=lean)
    c = _prepare(current, 1, keys, features=lean)
    bw, cw = _as_window(baseline_window, b), _as_window(current_window, c)
    prompt = _emb_pair(prompt_emb, b.height, c.height, "prompt_emb")
    response = _emb_pair(response_emb, b.height, c.height, "response_emb")
    df = _derive(pl.concat([b, c], how="vertical"), cfg, catalog)
    df = _with_hash(_with_hash(df, "system_prompt_hash", "system_prompt"), "tools_hash", "tool_definitions")
    cur_start = cw.start if cw.start is not None else None
    if isinstance(cur_start, datetime) and cur_start.tzinfo is None:
        cur_start = cur_start.replace(tzinfo=UTC)
    notes: list[str] = []
    topics = (
        build_topics(df, prompt, cluster_labels, cfg.topic_clusters, cfg.seed, cfg.strata_fit_sample,
                     texts=text_summary.prompts if lean else None)
        if kinds & _NEED_TOPICS
        else Topics(None, {}, "none")
    )
    # Text columns are read once here (features, version texts, corruption flags) and then dropped:
    # every later filter/join copies whole rows, and at a million traces the text is gigabytes.
    if lean:
        # the features were computed where the text was read (textfeatures); the frames hold no text
        present = {col: bool(text_summary.present.get(col)) for col in _TEXT_COLS}
        texts = {k: dict(text_summary.texts.get(k, {})) for k in ("system_prompt", "tool_definitions")}
        keep = [c for c in FEATURE_COLUMNS if c not in ("_bad", "_why")]
        if "output_corruption" in kinds and present["response_text"]:
            keep += ["_bad", "_why"]
        extra = df.select(keep)
        df = df.drop(FEATURE_COLUMNS)
    else:
        present = {col: df.get_column(col).null_count() < df.height for col in _TEXT_COLS}
        texts = {
            "system_prompt": text_lookup(df, "system_prompt_hash", "system_prompt"),
            "tool_definitions": text_lookup(df, "tools_hash", "tool_definitions"),
        }
        extra = df.select(feature_exprs())
    if topics.codes is not None:
        extra = extra.with_columns(pl.Series("_topic", topics.codes, dtype=pl.Int64))
    if not lean and "output_corruption" in kinds and present["response_text"]:
        cf = corruption_flags(df)
        extra = extra.with_columns(cf.get_column("corrupt").alias("_bad"), cf.get_column("corrupt_reason").alias("_why"))
        del cf
    # drop first, then attach: adding columns to the two-chunk frame would re-chunk the text columns too
    # (features frames are not re-chunked: their columns are the loaded windows' own buffers, and a copy of
    # twenty million rows is gigabytes; polars operations work on the two chunks as they are)
    df = (df.drop(_TEXT_COLS) if lean else df.drop(_TEXT_COLS).rechunk()).hstack(extra.rechunk())
    ctx = DetectorContext(
        df, cfg, kinds, cur_start, topics, prompt, response, notes, model_segments(df, cfg.min_segment_n),
        n_baseline=b.height, n_current=c.height, present=present, texts=texts, catalog=catalog,
    )  # fmt: skip
    if b.height and c.height and kinds & {"refusal_rate", "refusal_rate_adjusted"}:
        ctx.topic_segments = topic_refusal_segments(ctx)
    if b.height == 0 or c.height == 0:
        notes.append("One window has no traces; nothing to compare.")
    ctx.has_refusal = df.get_column("_refused").null_count() < df.height
    if not ctx.has_refusal and kinds & {"refusal_rate", "refusal_rate_adjusted", "matched_prompt_refusal"}:
        notes.append("Refusal findings skipped: no refusal labels (run the refusal detector over these traces).")
    # what the deterministic variance checks compare with: the baseline plus earlier history
    det = df.select(_DET)  # the deterministic checks read a few columns; filtering all of them would copy GBs
    # they ask of the reference only which values (and value pairs) occurred: its distinct rows, not a copy of
    # every baseline and history trace
    refs = [det.lazy().filter(pl.col("_w") == 0).select(_REF)]
    hist = None
    if history is not None and history.height:
        # of _derive's columns the history needs only ``_refused`` (the reference reads raw columns, the series
        # the label): model and family strings for every history row would be a copy of the windows' own
        hist = _prepare(history, 0).with_columns(_refused_expr().alias("_refused"))
        hist = _with_hash(_with_hash(hist, "system_prompt_hash", "system_prompt"), "tools_hash", "tool_definitions")
        for kind, hcol in (("system_prompt", "system_prompt_hash"), ("tool_definitions", "tools_hash")):
            texts[kind] = {**text_lookup(hist, hcol, kind), **texts[kind]}
        hist = hist.with_columns(
            pl.lit(None, dtype=pl.UInt32).alias("_resp_len"), pl.lit(None, dtype=pl.UInt64).alias("_resp_hash")
        ).drop(_TEXT_COLS)
        h = hist.lazy() if cur_start is None else hist.lazy().filter(pl.col("timestamp") < cur_start)
        refs.append(h.select(_REF))
        hist = hist.select("timestamp", "_refused")  # what the daily series and trend read of it
    ref = pl.concat(refs, how="vertical").unique(maintain_order=True).collect()
    del refs
    ctx.det, ctx.ref = det, ref
    if c.height:
        end = cw.end if cw.end is not None else c.get_column("timestamp").max()
        # the status on the window's last day (window ends are exclusive)
        ctx.last_day = (end - timedelta(microseconds=1)).date() if isinstance(end, datetime) else None
    active = kinds
    if b.height == 0 and ref.height == 0:
        active = kinds - DETERMINISTIC_KINDS  # nothing before the current window to compare with
    drafts = run_detectors(ctx, active)

    findings = finalise(drafts, cfg.alpha, dict(cfg.deterministic_severity))
    qmap = {f.segment: f.q_value for f in findings if f.kind == "prompt_mix"}
    shares = tuple(
        ClusterShare(seg, label, sb, sc, qmap.get(seg))
        for seg, label, sb, sc in sorted(ctx.cluster_rows, key=lambda r: (-abs(r[3] - r[2]), r[0]))[:15]
    )
    variance = variance_table(df, list(findings), _repeats(df), present)
    if not b.height or not c.height:
        # an empty window says nothing about any source: "stable" would reassure where nothing was compared
        empty = " and ".join(n for n, f in (("current", c), ("baseline", b)) if not f.height)
        variance = tuple(dataclasses.replace(v, status="unknown", findings=(),
                                             observation=f"No traces in the {empty} window: nothing to compare.")
                         for v in variance)
    # the rows of the daily series and trend: the windows', under the history's before them (not built when
    # the counts come from elsewhere)
    daily_src = _daily_source(hist, df) if series is None else df
    daily = _series(daily_src, "1d", None, None, None, series)
    trend = None
    if history is not None and history.height:
        end = cw.end
        if end is None:
            last = df.get_column("timestamp").max()
            end = None if last is None else last.replace(hour=0, minute=0, second=0, microsecond=0) + timedelta(days=1)
        if end is not None:
            end = end if end.tzinfo else end.replace(tzinfo=UTC)
            start = end - timedelta(days=56)

            def window_of(s0, s1):
                if cur_start is not None and s1 > cur_start:
                    return "current"
                return ""

            if series is not None and series.trend_start != start:
                series = None  # counted from another start: count here (the history is stacked as above)
                daily_src = _daily_source(hist, df)
            trend = _series(daily_src, "1w", start, 8, window_of, series)
    dists = tuple(
        d
        for d in (
            _distribution(df, "output_tokens", pl.col("output_tokens")),
            _distribution(df, "latency_ms", pl.col("latency_ms")),
        )
        if d is not None
    )
    return DriftReport(
        baseline=bw,
        current=cw,
        findings=findings,
        variance=variance,
        trend=trend,
        daily=daily,
        cluster_shares=shares,
        distributions=dists,
        details=tuple(sorted(ctx.details, key=lambda d: (d.kind, d.segment, d.title))),
        notes=tuple(notes),
        evals=None,
        generator=_generator(),
        config=cfg.to_dict(),
    )


def _daily_source(hist: pl.DataFrame | None, df: pl.DataFrame) -> pl.DataFrame:
    """``df`` under the history's rows before its earliest timestamp (window -1), on their common columns."""
    if hist is None:
        return df
    hh = hist.with_columns(pl.lit(-1, dtype=pl.Int8).alias("_w"))
    lo = df.get_column("timestamp").min()
    if lo is not None:
        hh = hh.filter(pl.col("timestamp") < lo)
    cols = [c for c in hh.columns if c in df.columns]
    return pl.concat([hh.select(cols), df.select(cols)], how="vertical")


def _with_hash(df: pl.DataFrame, hcol: str, tcol: str) -> pl.DataFrame:
    """Fill a missing hash from the text (polars hash; only used when ingest did not hash)."""
    if df.get_column(hcol).null_count() < df.height or df.get_column(tcol).null_count() == df.height:
        return df
    return df.with_columns(
        pl.when(pl.col(tcol).is_not_null()).then(pl.col(tcol).hash(seed=0).cast(pl.String)).otherwise(None).alias(hcol)
    )

