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
  fine), or None -- then the tests that need them are skipped with a note.
* ``history``: optional frame covering earlier weeks (e.g. the last 8) for
  the weekly refusal trend and for "seen before" checks of the deterministic
  variance sources.
* ``catalog``: the :class:`~tracelens.modelcatalog.ModelCatalog` that decides
  which requested ids are aliases and knows release/deprecation/retirement
  dates (default: the shipped model data; ``run_drift`` passes the store's).
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
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

import numpy as np
import polars as pl
from threadpoolctl import threadpool_limits

from tracelens.analysis import fmt
from tracelens.analysis.corruption import corruption_flags
from tracelens.analysis.draft import Draft, finalise
from tracelens.analysis.findings import (
    DETERMINISTIC_KINDS,
    KINDS,
    ClusterShare,
    Detail,
    Distribution,
    DriftReport,
    SeriesPoint,
    Window,
)
from tracelens.analysis.semantic import semantic_drafts
from tracelens.analysis.stats import (
    changepoint,
    chi2_table,
    cmh_test,
    kitagawa,
    mcnemar,
    min_attainable_p,
    newcombe_diff,
    paired_diff_ci,
    signed_rank_p,
    stratified_rank_test,
    total_variation,
    two_proportion_test,
    wilson,
    z_crit,
)
from tracelens.analysis.strata import EmbPair, Topics, build_strata, build_topics, identity_strata
from tracelens.analysis.variance import (
    DEFAULT_ALIAS_PATTERNS,
    alias_decisions,
    alias_drafts,
    config_drafts,
    family_of,
    lifecycle_drafts,
    sampling_drafts,
    snapshot_drafts,
    text_lookup,
    tier_drafts,
    variance_table,
)
from tracelens.modelcatalog import ModelCatalog, default_catalog

ANALYSIS_VERSION = "1"

#: Practical thresholds on |effect| per kind: significant and beyond -> alert, significant but smaller -> warn.
DEFAULT_THRESHOLDS: dict[str, float] = {
    "refusal_rate": 0.01,
    "refusal_rate_adjusted": 0.01,
    "snapshot_behaviour": 0.01,
    "matched_prompt_refusal": 0.01,
    "matched_prompt_similarity": 0.02,
    "prompt_mix": 0.10,
    "prompt_mix_cluster": 0.05,
    "prompt_semantic": 0.05,
    "response_semantic": 0.05,
    "response_length": 0.2,
    "latency": 0.2,
    "latency_per_token": 0.2,
    "time_to_first_token": 0.2,
    "stop_reason": 0.05,
    "stop_reason_share": 0.02,
    "tool_call_rate": 0.02,
    "error_rate": 0.01,
    "output_corruption": 0.005,
}

DEFAULT_DETERMINISTIC_SEVERITY: dict[str, str] = {
    "model_snapshot": "alert",
    "alias_usage": "warn",
    "system_prompt": "warn",
    "tool_definitions": "warn",
    "sampling_params": "warn",
    "service_tier": "warn",
}


@dataclass(frozen=True)
class DriftConfig:
    """Knobs of :func:`analyze`. Defaults are what ``tracelens drift`` uses."""

    alpha: float = 0.05  #: BH level for "significant"
    seed: int = 0  #: seeds every random step (subsamples, KMeans, permutations)
    kinds: tuple[str, ...] | None = None  #: compute only these kinds (None = all); a reduced path for speed
    semantic: bool = True  #: run the embedding two-sample tests (the expensive part)
    semantic_max_per_window: int = 1000  #: subsample size per window for C2ST / MMD
    semantic_permutations: int = 200  #: MMD permutations
    topic_clusters: int = 20  #: KMeans topics when frames carry no cluster_id
    strata_max_clusters: int = 200  #: cap on fine clusters for the adjusted refusal test (k ~ sqrt(n))
    strata_fit_sample: int = 10000  #: rows used to fit KMeans (all rows are assigned)
    neighbour_similarity: float = 0.85  #: cosine for "a close neighbour was seen in the baseline"
    coverage_sample: int = 2000  #: current prompts used to estimate neighbour coverage
    coverage_reference: int = 20000  #: baseline prompts searched for neighbours
    min_segment_n: int = 30  #: per-window minimum for a per-model segment test (and per snapshot for the split)
    min_topic_n: int = 30  #: per-window minimum of refusal-labelled traces for a per-topic refusal test
    matched_max_triples: int = 20000  #: cap on prompt triples for the response-similarity test
    templated_limit: int = 5  #: more new system-prompt versions than this per app -> one "templated" finding
    alias_patterns: tuple[str, ...] = DEFAULT_ALIAS_PATTERNS  #: extra regexes (re.search) on model_requested meaning "alias"; the model catalog decides the rest
    alias_share_threshold: float = 0.05  #: alias share change that counts as a change
    tier_tvd_threshold: float = 0.10  #: service-tier mix shift that counts as a change
    thresholds: Mapping[str, float] = field(default_factory=lambda: dict(DEFAULT_THRESHOLDS))
    deterministic_severity: Mapping[str, str] = field(default_factory=lambda: dict(DEFAULT_DETERMINISTIC_SEVERITY))

    def to_dict(self) -> dict:
        """Plain dict (JSON-safe) of the configuration."""
        d = dataclasses.asdict(self)
        d["kinds"] = None if self.kinds is None else list(self.kinds)
        d["alias_patterns"] = list(self.alias_patterns)
        d["thresholds"] = dict(sorted(self.thresholds.items()))
        d["deterministic_severity"] = dict(sorted(self.deterministic_severity.items()))
        return d


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
#: columns every statistical test carries (segments, evidence, dating); each test adds its own
_BASE = ("trace_id", "timestamp", "_w", "_model", "_family")
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
)


def _prepare(frame: pl.DataFrame | None, w: int) -> pl.DataFrame:
    """Select and type the columns the engine reads; missing ones become null."""
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
    out = frame.select(exprs) if frame.width else pl.DataFrame(schema={**_COLS, "_ntools": pl.Int64})
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
    b, c = np.asarray(b), np.asarray(c)
    if b.shape[0] != nb or c.shape[0] != nc:
        raise ValueError(f"{what} rows ({b.shape[0]}, {c.shape[0]}) do not match the frames ({nb}, {nc})")
    return EmbPair(b, c)


# --------------------------------------------------------------------------- shared helpers


@dataclass
class _Ctx:
    df: pl.DataFrame
    cfg: DriftConfig
    kinds: frozenset[str]
    current_start: datetime | None
    topics: Topics
    prompt: EmbPair | None
    response: EmbPair | None
    notes: list[str]
    segments: list[tuple[str, pl.Expr]]
    topic_segments: list[tuple[str, pl.Expr]] = field(default_factory=list)  #: per-topic refusal segments

    def thr(self, kind: str) -> float:
        return float(self.cfg.thresholds.get(kind, DEFAULT_THRESHOLDS.get(kind, 0.0)))

    def topic_name(self, code: int) -> str:
        """Segment name of a topic: ``cluster=<id> (<label>)``, or ``cluster=<id>`` without a label."""
        label = _topic_label(self, code)
        return f"cluster={code}" + (f" ({fmt.clip(label, 40)})" if label else "")


def _counts(sub: pl.DataFrame, flag: str) -> tuple[int, int, int, int]:
    agg = sub.group_by("_w").agg(pl.col(flag).sum().alias("x"), pl.len().alias("n"))
    d = {r["_w"]: (int(r["x"] or 0), int(r["n"])) for r in agg.iter_rows(named=True)}
    xb, nb = d.get(0, (0, 0))
    xc, nc = d.get(1, (0, 0))
    return xb, nb, xc, nc


def _dater(ctx: _Ctx, sub: pl.DataFrame, value: pl.Expr):
    """Closure that dates a change by a one-change-point scan over both windows in time order.

    The new regime is constrained to start in the current window: a step at
    the window boundary is dated at the first current trace, a change in the
    middle of the current window at the trace where it began.
    """

    def run():
        s = sub.select("timestamp", "_w", value.cast(pl.Float64).alias("v")).drop_nulls().sort("timestamp", "_w")
        w = s.get_column("_w").to_numpy()
        first_cur = int(np.argmax(w == 1)) if (w == 1).any() else s.height
        k = changepoint(s.get_column("v").to_numpy(), min_index=first_cur)
        if k is None:
            return None
        return s.get_column("timestamp")[k]

    return run


def _ids(sub: pl.DataFrame, by: list[str] | None = None, descending=False, k: int = 20) -> tuple[str, ...]:
    by = by or ["timestamp", "trace_id"]
    # lazy sort + head lets polars run a top-k instead of sorting the whole window
    top = sub.lazy().select(*dict.fromkeys([*by, "trace_id"])).sort(by, descending=descending).head(k).collect()
    return tuple(str(t) for t in top.get_column("trace_id").to_list())


def _seg_phrase(seg: str) -> str:
    return f" for {seg}" if seg else ""


def _model_segments(df: pl.DataFrame, min_n: int) -> list[tuple[str, pl.Expr]]:
    """Per-model segments (present in both windows), and per-family ones where a family spans several models."""
    segs: list[tuple[str, pl.Expr]] = []
    tot = df.group_by("_w").agg(pl.len().alias("n"))
    totals = {r["_w"]: r["n"] for r in tot.iter_rows(named=True)}
    for col, prefix in (("_model", "model"), ("_family", "family")):
        c = df.drop_nulls(col).group_by(col, "_w").agg(pl.len().alias("n")).sort([col, "_w"])
        if c.get_column(col).n_unique() < 1:
            continue
        if col == "_model" and df.get_column("_model").drop_nulls().n_unique() < 2:
            continue
        for name in c.get_column(col).unique().sort().to_list():
            rows = {r["_w"]: r["n"] for r in c.filter(pl.col(col) == name).iter_rows(named=True)}
            if rows.get(0, 0) < min_n or rows.get(1, 0) < min_n:
                continue
            if rows == totals:
                continue  # same as the global test
            if col == "_family":
                n_models = df.filter(pl.col("_family") == name).get_column("_model").n_unique()
                if n_models < 2:
                    continue
            segs.append((f"{prefix}={name}", pl.col(col) == name))
    return segs


# --------------------------------------------------------------------------- refusal kinds


def _topic_refusal_segments(ctx: _Ctx) -> list[tuple[str, pl.Expr]]:
    """Topics that get their own refusal tests: enough labelled traffic in both windows, and enough refusals.

    A topic qualifies with at least ``min_topic_n`` refusal-labelled traces in
    each window whose pooled refusal count could reach significance at all
    (Tarone's screen, :func:`~tracelens.analysis.stats.min_attainable_p`); the
    screen reads margins only, so the tests that remain keep valid p-values and
    topics that never refuse do not dilute the BH family.
    """
    if ctx.topics.codes is None or "_topic" not in ctx.df.columns:
        return []
    agg = (
        ctx.df.lazy()
        .filter(pl.col("_refused").is_not_null() & (pl.col("_topic") >= 0))
        .group_by("_topic", "_w")
        .agg(pl.len().alias("n"), pl.col("_refused").sum().alias("x"))
        .collect()
    )
    cnt = {(r["_topic"], r["_w"]): (int(r["n"]), int(r["x"] or 0)) for r in agg.iter_rows(named=True)}
    codes = sorted({c for c, _ in cnt})
    if len(codes) < 2:
        return []  # one topic: the global test already covers it
    out, skipped = [], 0
    for code in codes:
        nb, xb = cnt.get((code, 0), (0, 0))
        nc, xc = cnt.get((code, 1), (0, 0))
        if nb < ctx.cfg.min_topic_n or nc < ctx.cfg.min_topic_n:
            skipped += 1
            continue
        if min_attainable_p(nb, nc, xb + xc) > ctx.cfg.alpha:
            skipped += 1
            continue
        out.append((ctx.topic_name(code), pl.col("_topic") == code))
    ctx.notes.append(
        f"Per-topic refusal tests: {len(out)} of {len(codes)} prompt clusters ({ctx.topics.source}) had at least "
        f"{ctx.cfg.min_topic_n} refusal-labelled traces in each window and enough refusals to reach significance."
    )
    return out


def _refusal_rate(ctx: _Ctx) -> list[Draft]:
    r = ctx.df.select(*_BASE, "_refused", *(["_topic"] if ctx.topic_segments else [])).filter(
        pl.col("_refused").is_not_null()
    )
    out = []
    for seg, cond in [("", None)] + ctx.segments + ctx.topic_segments:
        sub = r if cond is None else r.filter(cond)
        xb, nb, xc, nc = _counts(sub, "_refused")
        if nb == 0 or nc == 0:
            continue
        p, test = two_proportion_test(xb, nb, xc, nc)
        d, lo, hi = newcombe_diff(xb, nb, xc, nc, ctx.cfg.alpha)
        verb = "rose" if d > 0 else "fell" if d < 0 else "stayed"
        cur_ref = sub.filter((pl.col("_w") == 1) & pl.col("_refused"))
        out.append(
            Draft(
                kind="refusal_rate",
                segment=seg,
                baseline_value=xb / nb,
                current_value=xc / nc,
                effect=d,
                ci_low=lo,
                ci_high=hi,
                p_value=p,
                summary=(
                    f"Refusal rate{_seg_phrase(seg)} {verb} from {fmt.pct(xb / nb)} ({xb:,}/{nb:,}) to "
                    f"{fmt.pct(xc / nc)} ({xc:,}/{nc:,}), {fmt.pp(d)} (95% CI {fmt.pp(lo)} to {fmt.pp(hi)}; "
                    f"{test} {fmt.pval(p)})."
                ),
                evidence=_ids(cur_ref, ["timestamp", "trace_id"], descending=[True, False]),
                practical=abs(d) >= ctx.thr("refusal_rate"),
                dater=_dater(ctx, sub, pl.col("_refused")),
            )
        )
    return out


def _stratum_tables(codes: np.ndarray, w: np.ndarray, y: np.ndarray):
    k = int(codes.max()) + 1 if codes.size else 0
    b, c = w == 0, w == 1
    nb = np.bincount(codes[b], minlength=k).astype(float)
    nc = np.bincount(codes[c], minlength=k).astype(float)
    xb = np.bincount(codes[b], weights=y[b], minlength=k)
    xc = np.bincount(codes[c], weights=y[c], minlength=k)
    return xb, nb, xc, nc


@dataclass
class _Cmh:
    """CMH test and Kitagawa decomposition of a 0/1 outcome between two groups over strata."""

    p: float
    kg: object  # stats.Kitagawa
    base_rate: float  # raw rate of group 0
    lo: float
    hi: float
    codes: np.ndarray  # dense stratum code per row
    both: np.ndarray  # per stratum: seen in both groups
    row_contrib: np.ndarray  # per row: its stratum's contribution to the behaviour part
    pooled: np.ndarray  # per stratum: pooled rate

    @property
    def informative(self) -> int:
        return int(self.both.sum())

    def evidence_rows(self, g: np.ndarray, y: np.ndarray, k: int = 20) -> np.ndarray:
        """Group-1 rows that carry the change: refused (or answered, for a fall) in strata pushing that way."""
        sign = 1.0 if self.kg.behaviour >= 0 else -1.0
        rows = np.flatnonzero(g & (y == (1.0 if sign > 0 else 0.0)) & (self.row_contrib * sign > 0))
        return rows[np.lexsort((rows, -self.row_contrib[rows] * sign))][:k]


def _cmh(codes: np.ndarray, g: np.ndarray, y: np.ndarray, alpha: float) -> _Cmh:
    _, codes = np.unique(codes, return_inverse=True)
    w = g.astype(np.int8)
    xb, nb, xc, nc = _stratum_tables(codes, w, y)
    _, p = cmh_test(xb, nb, xc, nc)
    kg = kitagawa(xb, nb, xc, nc)
    z = z_crit(alpha)
    beh = kg.behaviour
    both = (nb > 0) & (nc > 0)
    with np.errstate(invalid="ignore", divide="ignore"):
        contrib = np.where(both, (nb / nb.sum() + nc / nc.sum()) / 2 * (xc / np.maximum(nc, 1) - xb / np.maximum(nb, 1)), 0.0)
    pooled = (xb + xc) / np.maximum(nb + nc, 1)
    return _Cmh(p, kg, float(xb.sum() / nb.sum()), beh - z * kg.behaviour_se, beh + z * kg.behaviour_se, codes, both,
                contrib[codes], pooled)


def _adjusted_binary(
    ctx: _Ctx, kind: str, flag: str, codes_all: np.ndarray, base_mask: pl.Expr, name: str, strata_desc: str, tail: str
) -> list[Draft]:
    """CMH test + Kitagawa decomposition of a 0/1 outcome over strata, globally and per segment.

    For the refusal rate the segments are the model/family segments and the
    topics of :func:`_topic_refusal_segments`; a topic whose traffic sits in a
    single informative stratum is skipped (its test would repeat the raw one).
    """
    out = []
    keep = ctx.df.select((base_mask & pl.col(flag).is_not_null()).fill_null(False)).to_series()
    topical = kind == "refusal_rate_adjusted" and bool(ctx.topic_segments)
    r = ctx.df.select(*_BASE, flag, *(["_topic"] if topical else [])).with_columns(pl.Series("_code", codes_all)).filter(keep)
    segs = [("", None)]
    if kind == "refusal_rate_adjusted":
        segs += ctx.segments + ctx.topic_segments
    topic_names = {s for s, _ in ctx.topic_segments}
    for seg, cond in segs:
        sub = r if cond is None else r.filter(cond)
        if sub.height == 0:
            continue
        w = sub.get_column("_w").to_numpy()
        y = sub.get_column(flag).cast(pl.Float64).to_numpy()
        if not (w == 0).any() or not (w == 1).any():
            continue
        res = _cmh(sub.get_column("_code").to_numpy(), w == 1, y, ctx.cfg.alpha)
        if seg in topic_names and res.informative < 2:
            continue
        kg, beh, lo, hi, pb = res.kg, res.kg.behaviour, res.lo, res.hi, res.base_rate
        ev_rows = res.evidence_rows(w == 1, y)
        ev = tuple(str(t) for t in sub.get_column("trace_id").gather(ev_rows).to_list())
        unmatched = f", {fmt.pp(kg.unmatched)} from strata seen in one window only" if abs(kg.unmatched) >= 5e-4 else ""
        resid = pl.Series("_res", y - res.pooled[res.codes])
        dsub = sub.with_columns(resid).filter(pl.Series(res.both[res.codes]))
        out.append(
            Draft(
                kind=kind,
                segment=seg,
                baseline_value=float(pb),
                current_value=float(pb + beh),
                effect=beh,
                ci_low=lo,
                ci_high=hi,
                p_value=res.p,
                summary=(
                    f"With prompt mix held fixed, the {name}{_seg_phrase(seg)} moved {fmt.pp(beh)} "
                    f"(95% CI {fmt.pp(lo)} to {fmt.pp(hi)}; CMH {fmt.pval(res.p)}) of a raw {fmt.pp(kg.raw)} change "
                    f"({fmt.pp(kg.mix)} from prompt mix{unmatched}; strata: {strata_desc}){'.' if seg in topic_names else tail}"
                ),
                evidence=ev,
                practical=abs(beh) >= ctx.thr(kind),
                dater=_dater(ctx, dsub, pl.col("_res")),
            )
        )
    return out


def _matched(ctx: _Ctx) -> list[Draft]:
    """Identical prompts in both windows: paired refusal test and response-similarity test."""
    out: list[Draft] = []
    df = ctx.df.select(*_BASE, "prompt_hash", "_refused", "_ok", "_row").filter(pl.col("prompt_hash").is_not_null())
    inboth = df.group_by("prompt_hash").agg(pl.col("_w").n_unique().alias("k")).filter(pl.col("k") == 2).select("prompt_hash")
    m = df.join(inboth, on="prompt_hash", how="semi").sort(["prompt_hash", "_w", "timestamp", "trace_id"])
    if m.height == 0:
        ctx.notes.append("matched_prompt_refusal skipped: no prompt occurs in both windows.")
        return out
    m = m.with_columns(pl.int_range(pl.len()).over(["prompt_hash", "_w"]).alias("_k"))
    if "matched_prompt_refusal" in ctx.kinds:
        mr = m.filter(pl.col("_refused").is_not_null())
        b = mr.filter(pl.col("_w") == 0).select("prompt_hash", "_k", pl.col("_refused").alias("rb"))
        c = mr.filter(pl.col("_w") == 1).select("prompt_hash", "_k", pl.col("_refused").alias("rc"), "trace_id", "timestamp")
        pairs = b.join(c, on=["prompt_hash", "_k"], how="inner")
        n = pairs.height
        if n:
            nb_ = int((pairs.get_column("rb") & ~pairs.get_column("rc")).sum())
            nc_ = int((~pairs.get_column("rb") & pairs.get_column("rc")).sum())
            rb = float(pairs.get_column("rb").mean())
            rc = float(pairs.get_column("rc").mean())
            p, test = mcnemar(nb_, nc_)
            d, lo, hi = paired_diff_ci(nb_, nc_, n, ctx.cfg.alpha)
            ev = _ids(pairs.filter(~pl.col("rb") & pl.col("rc")))
            out.append(
                Draft(
                    kind="matched_prompt_refusal",
                    segment="",
                    baseline_value=rb,
                    current_value=rc,
                    effect=d,
                    ci_low=lo,
                    ci_high=hi,
                    p_value=p,
                    summary=(
                        f"On {n:,} identical prompts sent in both windows the refusal rate went from {fmt.pct(rb)} to "
                        f"{fmt.pct(rc)} ({nc_:,} newly refused, {nb_:,} newly answered; {test} {fmt.pval(p)})."
                    ),
                    evidence=ev,
                    practical=abs(d) >= ctx.thr("matched_prompt_refusal"),
                )
            )
    if "matched_prompt_similarity" in ctx.kinds:
        if ctx.response is None:
            ctx.notes.append("matched_prompt_similarity skipped: no response embeddings.")
        else:
            out.extend(_matched_similarity(ctx, m))
    return out


def _matched_similarity(ctx: _Ctx, m: pl.DataFrame) -> list[Draft]:
    nb_all = ctx.response.nb
    mo = m.filter(pl.col("_ok") & (pl.col("_k") <= 1)).with_columns(
        (pl.col("_row").cast(pl.Int64) + pl.when(pl.col("_w") == 1).then(nb_all).otherwise(0)).alias("_g")
    )
    wide = mo.group_by("prompt_hash").agg(
        pl.col("_g").filter((pl.col("_w") == 0) & (pl.col("_k") == 0)).first().alias("b0"),
        pl.col("_g").filter((pl.col("_w") == 0) & (pl.col("_k") == 1)).first().alias("b1"),
        pl.col("_g").filter((pl.col("_w") == 1) & (pl.col("_k") == 0)).first().alias("c0"),
        pl.col("_g").filter((pl.col("_w") == 1) & (pl.col("_k") == 1)).first().alias("c1"),
    ).sort("prompt_hash")
    # anchor/same/other: a repeat within one window is the reference for run-to-run variation
    trip = wide.select(
        pl.when(pl.col("b1").is_not_null()).then(pl.col("b0")).otherwise(pl.col("c0")).alias("a"),
        pl.when(pl.col("b1").is_not_null()).then(pl.col("b1")).otherwise(pl.col("c1")).alias("s"),
        pl.when(pl.col("b1").is_not_null()).then(pl.col("c0")).otherwise(pl.col("b0")).alias("o"),
    ).drop_nulls()
    if trip.height < 10:
        ctx.notes.append(
            "matched_prompt_similarity skipped: fewer than 10 prompts repeated within a window and seen in both windows."
        )
        return []
    if trip.height > ctx.cfg.matched_max_triples:
        trip = trip.sample(ctx.cfg.matched_max_triples, seed=ctx.cfg.seed)
    a, s, o = (trip.get_column(c).to_numpy() for c in ("a", "s", "o"))
    keep = ctx.response.valid[a] & ctx.response.valid[s] & ctx.response.valid[o]
    a, s, o = a[keep], s[keep], o[keep]
    if a.size < 10:
        ctx.notes.append("matched_prompt_similarity skipped: fewer than 10 repeated prompts have response vectors.")
        return []
    ea, es, eo = ctx.response.take(a), ctx.response.take(s), ctx.response.take(o)
    within = np.einsum("ij,ij->i", ea, es).astype(float)
    cross = np.einsum("ij,ij->i", ea, eo).astype(float)
    d = cross - within
    p = signed_rank_p(d)
    mean = float(d.mean())
    h = z_crit(ctx.cfg.alpha) * float(d.std(ddof=1)) / math.sqrt(d.size)
    cur_side = np.where(a >= nb_all, a, o) - nb_all
    order = np.lexsort((cur_side, cross))[:20]
    ids = ctx.df.get_column("trace_id").filter(ctx.df.get_column("_w") == 1).gather(cur_side[order]).to_list()
    return [
        Draft(
            kind="matched_prompt_similarity",
            segment="",
            baseline_value=float(within.mean()),
            current_value=float(cross.mean()),
            effect=mean,
            ci_low=mean - h,
            ci_high=mean + h,
            p_value=p,
            summary=(
                f"Responses to {d.size:,} repeated prompts are {'less' if mean < 0 else 'no less'} similar across "
                f"windows (mean cosine {cross.mean():.3f}) than two responses within a window ({within.mean():.3f}); "
                f"Wilcoxon signed-rank {fmt.pval(p)}."
            ),
            evidence=tuple(str(t) for t in ids),
            practical=abs(mean) >= ctx.thr("matched_prompt_similarity"),
        )
    ]


# --------------------------------------------------------------------------- snapshot split: did the model change?

#: deterministic changes that, when they start after a rollover, share the new snapshot's period
_CONFOUNDERS = ("system_prompt", "tool_definitions", "sampling_params")


def _snapshot_strata(sub: pl.DataFrame) -> tuple[np.ndarray, int, str]:
    """Strata for the old-vs-new snapshot comparison: identity strata between the snapshots, else app x topic.

    Identity strata are those of :func:`~tracelens.analysis.strata.identity_strata`
    with the snapshot as the group (the same prompt or question sent to both;
    a prompt repeated on one snapshot only stands alone).
    """
    ident = identity_strata(sub, "_new")
    rest = [pl.lit("t"), pl.col("app").fill_null("")]
    how = "app"
    if "_topic" in sub.columns:
        rest.append(pl.col("_topic").cast(pl.String).fill_null(""))
        how = "app x topic cluster"
    other = sub.select(pl.concat_str(rest, separator=":").rank("dense").cast(pl.Int64)).to_series().to_numpy()
    codes = np.where(ident.codes >= 0, ident.codes, ident.n + other)
    return codes, ident.n_exact + ident.n_ask, f"{ident.describe('snapshots', 'one snapshot')} + {how} for the rest"


def _confounders(drafts: list[Draft], apps: set, since: datetime | None) -> str:
    """A clause naming configuration changes that began in the new snapshot's period (they share its window)."""
    if since is None:
        return ""
    hits = []
    for d in drafts:
        if d.kind not in _CONFOUNDERS or not d.changed or d.first_seen is None or d.first_seen < since:
            continue
        app = d.segment.split(" ", 1)[0].removeprefix("app=") if d.segment.startswith("app=") else None
        if app is not None and app not in apps:
            continue
        hits.append(f"{d.kind.replace('_', ' ')} change{_seg_phrase(d.segment)} at {fmt.ts(d.first_seen)}")
    if not hits:
        return ""
    hits = sorted(set(hits))
    return (
        " Also in the new snapshot's period: " + "; ".join(hits[:3]) + (" ..." if len(hits) > 3 else "")
        + " -- this comparison cannot separate them from the snapshot."
    )


def _snapshot_behaviour(ctx: _Ctx, snaps: list[Draft], drafts: list[Draft]) -> list[Draft]:
    """Compare the traffic a new snapshot served with the traffic its family's previous snapshot(s) served.

    For each new returned snapshot (a ``model_snapshot`` draft per family), rows
    of that family served by the new snapshot form group 1 and rows served by
    snapshots that were already in use form group 0, whichever window they fall
    in. Refusals: CMH + Kitagawa over strata (exact prompt where it was sent to
    both, else app x topic), overall and per topic with enough traffic on both
    sides; output length: van Elteren over the same strata. ``first_seen`` is the
    rollover time.
    """
    out: list[Draft] = []
    fams: dict = {}
    for d in snaps:
        if d.kind == "model_snapshot" and d.changed and isinstance(d.current_value, str) and not d.segment.startswith("model="):
            fams.setdefault(d.segment.removeprefix("family=") or None, []).append(d)
    if not fams:
        return out
    df = ctx.df
    has_ref = df.get_column("_refused").null_count() < df.height
    length_col = "output_tokens" if df.get_column("output_tokens").null_count() < df.height else "_resp_len"
    cols = [*_BASE, "model_returned", "app", "prompt_hash", "_ask", "_refused", "_ok", length_col]
    if "_topic" in df.columns:
        cols.append("_topic")
    for fam, items in fams.items():
        new_models = sorted({d.current_value for d in items})
        famrows = df.select(list(dict.fromkeys(cols))).filter(
            pl.col("_family").eq_missing(fam) & pl.col("model_returned").is_not_null()
        )
        for d in sorted(items, key=lambda x: (x.first_seen is None, x.first_seen or datetime.min.replace(tzinfo=UTC))):
            new = d.current_value
            sub = famrows.filter((pl.col("model_returned") == new) | ~pl.col("model_returned").is_in(new_models))
            sub = sub.with_columns((pl.col("model_returned") == new).alias("_new"))
            g_all = sub.get_column("_new").to_numpy()
            if g_all.all() or not g_all.any():
                continue
            codes, _, strata_desc = _snapshot_strata(sub)
            old_names = (
                sub.filter(~pl.col("_new")).group_by("model_returned").agg(pl.len().alias("n"))
                .sort(["n", "model_returned"], descending=[True, False]).get_column("model_returned").to_list()
            )
            old_txt = ", ".join(old_names[:2]) + (" ..." if len(old_names) > 2 else "")
            apps = set(sub.get_column("app").drop_nulls().unique().to_list())
            also = _confounders(drafts, apps, d.first_seen)
            seg0 = f"snapshot={new}"
            if has_ref:
                keep = sub.get_column("_refused").is_not_null().to_numpy()
                rr = sub.filter(pl.Series(keep))
                g, y, cr = g_all[keep], rr.get_column("_refused").cast(pl.Float64).to_numpy(), codes[keep]
                n_new, n_old = int(g.sum()), int((~g).sum())
                if min(n_new, n_old) >= ctx.cfg.min_segment_n:
                    out.append(_snapshot_refusal_draft(ctx, seg0, rr, g, y, cr, d, new, old_txt, strata_desc, also))
                    out += _snapshot_topic_drafts(ctx, seg0, rr, g, y, cr, d, new, old_txt)
            if "response_length" in ctx.kinds:
                v = sub.get_column(length_col).cast(pl.Float64).to_numpy()
                ok = sub.get_column("_ok").to_numpy() & np.isfinite(v)
                g, v, cv = g_all[ok], v[ok], codes[ok]
                if min(int(g.sum()), int((~g).sum())) >= ctx.cfg.min_segment_n:
                    rt = stratified_rank_test(v, g, cv)
                    if math.isfinite(rt.delta):
                        mb, mc = float(np.median(v[~g])), float(np.median(v[g]))
                        h = z_crit(ctx.cfg.alpha) * rt.delta_se
                        lo, hi = max(-1.0, rt.delta - h), min(1.0, rt.delta + h)
                        unit = "tokens" if length_col == "output_tokens" else "characters"
                        lsub = sub.filter(pl.Series(ok)).filter(pl.col("_new"))
                        out.append(
                            Draft(
                                kind="response_length",
                                segment=seg0,
                                baseline_value=mb,
                                current_value=mc,
                                effect=rt.delta,
                                ci_low=lo,
                                ci_high=hi,
                                p_value=rt.p,
                                summary=(
                                    f"Median output length on the new snapshot {new} is {fmt.num(mc)} {unit} against "
                                    f"{fmt.num(mb)} on {old_txt} (x{(mc / mb if mb else float('nan')):.2f}); Cliff's delta "
                                    f"within prompt strata {rt.delta:+.2f} (95% CI {lo:+.2f} to {hi:+.2f}; van Elteren "
                                    f"{fmt.pval(rt.p)}; strata: {strata_desc}).{also}"
                                ),
                                first_seen=d.first_seen,
                                evidence=_ids(lsub, [length_col, "trace_id"], descending=[rt.delta > 0, False]),
                                practical=abs(rt.delta) >= ctx.thr("response_length"),
                            )
                        )
    return out


def _old_in_current(rr: pl.DataFrame, g: np.ndarray, y: np.ndarray) -> str:
    """' (x% (k/n) in the current window)': the old snapshot's rate next to the rollover, to see when a change began."""
    m = ~g & (rr.get_column("_w").to_numpy() == 1)
    n = int(m.sum())
    if n == 0:
        return ""
    x = int(y[m].sum())
    return f"; {fmt.pct(x / n)} = {x:,}/{n:,} in the current window"


def _snapshot_refusal_draft(ctx, seg, rr, g, y, codes, snap: Draft, new, old_txt, strata_desc, also) -> Draft:
    res = _cmh(codes, g, y, ctx.cfg.alpha)
    kg, beh = res.kg, res.kg.behaviour
    xo, no, xn, nn = int(y[~g].sum()), int((~g).sum()), int(y[g].sum()), int(g.sum())
    near = _old_in_current(rr, g, y)
    ev = tuple(str(t) for t in rr.get_column("trace_id").gather(res.evidence_rows(g, y)).to_list())
    unmatched = f", {fmt.pp(kg.unmatched)} from strata one snapshot never saw" if abs(kg.unmatched) >= 5e-4 else ""
    return Draft(
        kind="snapshot_behaviour",
        segment=seg,
        baseline_value=res.base_rate,
        current_value=res.base_rate + beh,
        effect=beh,
        ci_low=res.lo,
        ci_high=res.hi,
        p_value=res.p,
        summary=(
            f"The new snapshot {new} (first seen {fmt.ts(snap.first_seen)}) refused {fmt.pct(xn / nn)} of its traffic "
            f"({xn:,}/{nn:,}) against {fmt.pct(xo / no)} ({xo:,}/{no:,}{near}) on {old_txt}; with prompt mix held fixed the "
            f"difference is {fmt.pp(beh)} (95% CI {fmt.pp(res.lo)} to {fmt.pp(res.hi)}; CMH {fmt.pval(res.p)}) of a raw "
            f"{fmt.pp(kg.raw)} ({fmt.pp(kg.mix)} from prompt mix{unmatched}; strata: {strata_desc}).{also}"
        ),
        first_seen=snap.first_seen,
        evidence=ev,
        practical=abs(beh) >= ctx.thr("snapshot_behaviour"),
    )


def _snapshot_topic_drafts(ctx, seg0, rr, g, y, codes, snap: Draft, new, old_txt) -> list[Draft]:
    """Per-topic breakdown of the snapshot split (topics with enough traffic on both snapshots; Tarone-screened)."""
    if "_topic" not in rr.columns:
        return []
    t = rr.get_column("_topic").fill_null(-1).to_numpy()
    known = np.unique(t[t >= 0])
    if known.size < 2:
        return []
    out = []
    for code in known.tolist():
        m = t == code
        gm, ym = g[m], y[m]
        nn, no = int(gm.sum()), int((~gm).sum())
        if min(nn, no) < ctx.cfg.min_topic_n or min_attainable_p(no, nn, int(ym.sum())) > ctx.cfg.alpha:
            continue
        res = _cmh(codes[m], gm, ym, ctx.cfg.alpha)
        beh = res.kg.behaviour
        xo, xn = int(ym[~gm].sum()), int(ym[gm].sum())
        sub = rr.filter(pl.Series(m))
        near = _old_in_current(sub, gm, ym)
        name = ctx.topic_name(code)
        out.append(
            Draft(
                kind="snapshot_behaviour",
                segment=f"{seg0} {name}",
                baseline_value=res.base_rate,
                current_value=res.base_rate + beh,
                effect=beh,
                ci_low=res.lo,
                ci_high=res.hi,
                p_value=res.p,
                summary=(
                    f"On {name.replace('=', ' ', 1)} the new snapshot {new} refused {fmt.pct(xn / nn)} ({xn:,}/{nn:,}) "
                    f"against {fmt.pct(xo / no)} ({xo:,}/{no:,}{near}) on {old_txt}; with prompt mix held fixed "
                    f"{fmt.pp(beh)} (95% CI {fmt.pp(res.lo)} to {fmt.pp(res.hi)}; CMH {fmt.pval(res.p)})."
                ),
                first_seen=snap.first_seen,
                evidence=tuple(str(x) for x in sub.get_column("trace_id").gather(res.evidence_rows(gm, ym)).to_list()),
                practical=abs(beh) >= ctx.thr("snapshot_behaviour"),
            )
        )
    return out


# --------------------------------------------------------------------------- prompt mix


def _topic_label(ctx: _Ctx, code: int) -> str:
    if code < 0:
        return "unclustered"
    return ctx.topics.labels.get(code, "")


def _prompt_mix(ctx: _Ctx) -> tuple[list[Draft], list[tuple[str, str, float, float]]]:
    t = ctx.topics.codes
    df = ctx.df.select(*_BASE).with_columns(pl.Series("_t", t))
    if ctx.topics.source == "kmeans":
        # -1 marks rows without a prompt vector (e.g. outside an embedding sample): not a topic.
        df = df.filter(pl.col("_t") >= 0)
    tab = df.group_by("_t", "_w").agg(pl.len().alias("n")).sort(["_t", "_w"])
    codes = sorted(set(tab.get_column("_t").to_list()))
    cnt = {(r["_t"], r["_w"]): r["n"] for r in tab.iter_rows(named=True)}
    nb = sum(cnt.get((c, 0), 0) for c in codes)
    nc = sum(cnt.get((c, 1), 0) for c in codes)
    if nb == 0 or nc == 0:
        return [], []
    table = np.array([[cnt.get((c, 0), 0), cnt.get((c, 1), 0)] for c in codes], dtype=float)
    sb, sc = table[:, 0] / nb, table[:, 1] / nc
    _, _, p = chi2_table(table)
    tvd = total_variation(sb, sc)
    out: list[Draft] = []
    per = []
    cur = df.filter(pl.col("_w") == 1)
    for i, c in enumerate(codes):
        xb, xc = int(table[i, 0]), int(table[i, 1])
        pc, test = two_proportion_test(xb, nb, xc, nc)
        d, lo, hi = newcombe_diff(xb, nb, xc, nc, ctx.cfg.alpha)
        label = _topic_label(ctx, c)
        name = f"cluster {c}" + (f" ('{fmt.clip(label, 50)}')" if label else "")
        verb = "grew" if d > 0 else "shrank" if d < 0 else "kept"
        out.append(
            Draft(
                kind="prompt_mix",
                segment=f"cluster={c}",
                baseline_value=float(sb[i]),
                current_value=float(sc[i]),
                effect=d,
                ci_low=lo,
                ci_high=hi,
                p_value=pc,
                summary=(
                    f"Prompt {name} {verb} from {fmt.pct(sb[i])} to {fmt.pct(sc[i])} of traffic "
                    f"({fmt.pp(d)}; {test} {fmt.pval(pc)})."
                ),
                evidence=_ids(cur.filter(pl.col("_t") == c)),
                practical=abs(d) >= ctx.thr("prompt_mix_cluster"),
            )
        )
        per.append((f"cluster={c}", label, float(sb[i]), float(sc[i])))
    top = sorted(range(len(codes)), key=lambda i: (-abs(sc[i] - sb[i]), codes[i]))[:3]
    tops = ", ".join(
        f"cluster {codes[i]}{' (' + fmt.clip(_topic_label(ctx, codes[i]), 30) + ')' if _topic_label(ctx, codes[i]) else ''} "
        f"{fmt.pp(sc[i] - sb[i])}"
        for i in top
    )
    out.append(
        Draft(
            kind="prompt_mix",
            segment="",
            baseline_value=None,
            current_value=None,
            effect=tvd,
            p_value=p,
            direction="changed",
            summary=(
                f"The prompt mix over {len(codes)} clusters ({ctx.topics.source}) moved by {fmt.pct(tvd)} "
                f"(total variation; chi-square {fmt.pval(p)}); largest shifts: {tops}."
            ),
            evidence=_ids(cur.filter(pl.col("_t") == codes[top[0]])),
            practical=tvd >= ctx.thr("prompt_mix"),
        )
    )
    return out, per


# --------------------------------------------------------------------------- continuous metrics


def _rank_metric(ctx: _Ctx, kind: str, value: pl.Expr, unit: str, label: str, stratify: bool) -> list[Draft]:
    df = ctx.df.select(*_BASE, "_ok", value.cast(pl.Float64).alias("_v"))
    if ctx.topics.codes is not None and stratify:
        df = df.with_columns(pl.Series("_t", ctx.topics.codes))
    else:
        df = df.with_columns(pl.lit(0, dtype=pl.Int64).alias("_t"))
    sub = df.filter(pl.col("_ok") & pl.col("_v").is_finite())
    out: list[Draft] = []
    segs = [("", None)] + (ctx.segments if kind in ("response_length", "latency") else [])
    for seg, cond in segs:
        s = sub if cond is None else sub.filter(cond)
        v = s.get_column("_v").to_numpy()
        g = s.get_column("_w").to_numpy() == 1
        if (~g).sum() < 2 or g.sum() < 2:
            continue
        strata = s.get_column("_t").to_numpy() if stratify and ctx.topics.codes is not None else None
        rt = stratified_rank_test(v, g, strata)
        if not math.isfinite(rt.delta):
            continue
        mb, mc = float(np.median(v[~g])), float(np.median(v[g]))
        ratio = mc / mb if mb else float("nan")
        h = z_crit(ctx.cfg.alpha) * rt.delta_se
        within = " within prompt clusters" if strata is not None else ""
        verb = "rose" if mc > mb else "fell" if mc < mb else "stayed"
        ev_sub = s.filter(pl.col("_w") == 1)
        ev = _ids(ev_sub, ["_v", "trace_id"], descending=[rt.delta > 0, False])
        out.append(
            Draft(
                kind=kind,
                segment=seg,
                baseline_value=mb,
                current_value=mc,
                effect=rt.delta,
                ci_low=max(-1.0, rt.delta - h),
                ci_high=min(1.0, rt.delta + h),
                p_value=rt.p,
                summary=(
                    f"Median {label}{_seg_phrase(seg)} {verb} from {fmt.num(mb)} to {fmt.num(mc)} {unit} "
                    f"(x{ratio:.2f}); Cliff's delta{within} {rt.delta:+.2f} "
                    f"(95% CI {max(-1.0, rt.delta - h):+.2f} to {min(1.0, rt.delta + h):+.2f}; "
                    f"{'van Elteren' if strata is not None else 'Mann-Whitney'} {fmt.pval(rt.p)})."
                ),
                evidence=ev,
                practical=abs(rt.delta) >= ctx.thr(kind),
                dater=_dater(ctx, s, pl.col("_v").rank()),
            )
        )
    return out


def _category_shift(ctx: _Ctx, kind: str, col: str, what: str) -> list[Draft]:
    df = ctx.df.select(*_BASE, col).filter(pl.col(col).is_not_null())
    if df.height == 0:
        return []
    tab = df.group_by(col, "_w").agg(pl.len().alias("n")).sort([col, "_w"])
    cats = sorted(set(tab.get_column(col).to_list()))
    cnt = {(r[col], r["_w"]): r["n"] for r in tab.iter_rows(named=True)}
    nb = sum(cnt.get((c, 0), 0) for c in cats)
    nc = sum(cnt.get((c, 1), 0) for c in cats)
    if nb == 0 or nc == 0 or len(cats) < 2:
        return []
    table = np.array([[cnt.get((c, 0), 0), cnt.get((c, 1), 0)] for c in cats], dtype=float)
    sb, sc = table[:, 0] / nb, table[:, 1] / nc
    _, _, p = chi2_table(table)
    tvd = total_variation(sb, sc)
    out = []
    cur = df.filter(pl.col("_w") == 1)
    for i, c in enumerate(cats):
        xb, xc = int(table[i, 0]), int(table[i, 1])
        pc, test = two_proportion_test(xb, nb, xc, nc)
        d, lo, hi = newcombe_diff(xb, nb, xc, nc, ctx.cfg.alpha)
        verb = "rose" if d > 0 else "fell" if d < 0 else "stayed"
        out.append(
            Draft(
                kind=kind,
                segment=f"{col}={c}",
                baseline_value=float(sb[i]),
                current_value=float(sc[i]),
                effect=d,
                ci_low=lo,
                ci_high=hi,
                p_value=pc,
                summary=f"Share of {what} '{c}' {verb} from {fmt.pct(sb[i])} to {fmt.pct(sc[i])} ({fmt.pp(d)}; {test} {fmt.pval(pc)}).",
                evidence=_ids(cur.filter(pl.col(col) == c), ["timestamp", "trace_id"], descending=[True, False]),
                practical=abs(d) >= ctx.thr(f"{kind}_share"),
                dater=_dater(ctx, df, pl.col(col) == c),
            )
        )
    mix_c = ", ".join(f"{c} {fmt.pct(sc[i])}" for i, c in enumerate(cats))
    out.append(
        Draft(
            kind=kind,
            segment="",
            baseline_value=None,
            current_value=None,
            effect=tvd,
            p_value=p,
            direction="changed",
            summary=f"The {what} distribution moved by {fmt.pct(tvd)} (total variation; chi-square {fmt.pval(p)}); now {mix_c}.",
            practical=tvd >= ctx.thr(kind),
        )
    )
    return out


def _binary_simple(ctx: _Ctx, kind: str, sub: pl.DataFrame, flag: str, what: str, extra=None) -> list[Draft]:
    out = []
    for seg, cond in [("", None)] + (ctx.segments if kind == "error_rate" else []):
        s = sub if cond is None else sub.filter(cond)
        xb, nb, xc, nc = _counts(s, flag)
        if nb == 0 or nc == 0:
            continue
        p, test = two_proportion_test(xb, nb, xc, nc)
        d, lo, hi = newcombe_diff(xb, nb, xc, nc, ctx.cfg.alpha)
        verb = "rose" if d > 0 else "fell" if d < 0 else "stayed"
        tail = extra(s) if extra is not None and not seg else ""
        out.append(
            Draft(
                kind=kind,
                segment=seg,
                baseline_value=xb / nb,
                current_value=xc / nc,
                effect=d,
                ci_low=lo,
                ci_high=hi,
                p_value=p,
                summary=(
                    f"{what}{_seg_phrase(seg)} {verb} from {fmt.pct(xb / nb)} ({xb:,}/{nb:,}) to {fmt.pct(xc / nc)} "
                    f"({xc:,}/{nc:,}), {fmt.pp(d)} (95% CI {fmt.pp(lo)} to {fmt.pp(hi)}; {test} {fmt.pval(p)}){tail}."
                ),
                evidence=_ids(s.filter((pl.col("_w") == 1) & pl.col(flag)), ["timestamp", "trace_id"], descending=[True, False]),
                practical=abs(d) >= ctx.thr(kind),
                dater=_dater(ctx, s, pl.col(flag)),
            )
        )
    return out


def _top_values(col: str):
    def run(s: pl.DataFrame) -> str:
        c = (
            s.filter((pl.col("_w") == 1) & pl.col(col).is_not_null())
            .group_by(col)
            .agg(pl.len().alias("n"))
            .sort(["n", col], descending=[True, False])
            .head(3)
        )
        if c.height == 0:
            return ""
        return "; current: " + ", ".join(f"{r[col]} {r['n']:,}" for r in c.iter_rows(named=True))

    return run


# --------------------------------------------------------------------------- series for trends and charts


def _series(df: pl.DataFrame, every: str, start: datetime | None, periods: int | None, window_of) -> tuple[SeriesPoint, ...]:
    r = df.select("timestamp", "_refused", "_w").filter(pl.col("_refused").is_not_null() & pl.col("timestamp").is_not_null())
    if r.height == 0:
        return ()
    if periods is not None and start is not None:
        step = timedelta(days=7)
        r = r.filter(pl.col("timestamp") >= start)
        r = r.with_columns(((pl.col("timestamp") - pl.lit(start)).dt.total_seconds() // step.total_seconds()).cast(pl.Int64).alias("_p"))
        agg = r.group_by("_p").agg(pl.len().alias("n"), pl.col("_refused").sum().alias("x")).sort("_p")
        got = {row["_p"]: (row["n"], row["x"]) for row in agg.iter_rows(named=True)}
        pts = []
        for i in range(periods):
            n, x = got.get(i, (0, 0))
            s0 = start + i * step
            lo, hi = wilson(x, n)
            pts.append(
                SeriesPoint(s0, s0 + step, int(n), int(x), x / n if n else None, _f(lo), _f(hi), window_of(s0, s0 + step))
            )
        return tuple(pts)
    agg = (
        r.with_columns(pl.col("timestamp").dt.truncate(every).alias("_d"))
        .group_by("_d")
        .agg(pl.len().alias("n"), pl.col("_refused").sum().alias("x"), pl.col("_w").min().alias("w0"), pl.col("_w").max().alias("w1"))
        .sort("_d")
    )
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


def _generator() -> dict:
    try:
        from importlib.metadata import version

        v = version("tracelens")
    except Exception:  # not installed (running from a checkout)
        v = "0+unknown"
    return {"name": "tracelens", "version": v, "analysis_version": ANALYSIS_VERSION}


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
) -> DriftReport:
    """Compare a current window of traces against a baseline window; see the module docstring.

    ``baseline_window`` / ``current_window`` are ``(start, end)`` datetimes (or
    :class:`Window`); when None they are taken from the data. ``catalog``: the
    model catalog (default: the shipped model data). Returns a
    :class:`DriftReport` whose findings are sorted by severity, kind, segment.
    """
    cfg = config or DriftConfig()
    # One BLAS thread: the engine's matrix products are small (KMeans fits on samples, C2ST/MMD on
    # <= 2,000 rows per window) or memory-bound (assigning rows to ~10 centres), and on small products
    # multi-threaded BLAS loses several-fold to thread hand-off. Polars keeps its own thread pool.
    with threadpool_limits(1):
        return _analyze(
            baseline, current, baseline_window, current_window, prompt_emb, response_emb, cluster_labels, history, cfg,
            catalog or default_catalog(),
        )  # fmt: skip


def _analyze(
    baseline, current, baseline_window, current_window, prompt_emb, response_emb, cluster_labels, history, cfg, catalog
):
    kinds = frozenset(KINDS if cfg.kinds is None else cfg.kinds)
    unknown = kinds - set(KINDS)
    if unknown:
        raise ValueError(f"unknown finding kinds: {sorted(unknown)}")
    b = _prepare(baseline, 0)
    c = _prepare(current, 1)
    bw, cw = _as_window(baseline_window, b), _as_window(current_window, c)
    prompt = _emb_pair(prompt_emb, b.height, c.height, "prompt_emb")
    response = _emb_pair(response_emb, b.height, c.height, "response_emb")
    df = _derive(pl.concat([b, c], how="vertical"), cfg, catalog)
    df = _with_hash(_with_hash(df, "system_prompt_hash", "system_prompt"), "tools_hash", "tool_definitions")
    cur_start = cw.start if cw.start is not None else None
    if isinstance(cur_start, datetime) and cur_start.tzinfo is None:
        cur_start = cur_start.replace(tzinfo=UTC)
    notes: list[str] = []
    need_topics = bool(
        kinds
        & {
            "prompt_mix",
            "response_semantic",
            "response_length",
            "latency",
            "tool_call_rate",
            "refusal_rate",
            "refusal_rate_adjusted",
            "snapshot_behaviour",
        }
    )
    topics = (
        build_topics(df, prompt, cluster_labels, cfg.topic_clusters, cfg.seed, cfg.strata_fit_sample)
        if need_topics
        else Topics(None, {}, "none")
    )
    # Text columns are read once here (features, version texts, corruption flags) and then dropped:
    # every later filter/join copies whole rows, and at a million traces the text is gigabytes.
    present = {col: df.get_column(col).null_count() < df.height for col in _TEXT_COLS}
    texts = {
        "system_prompt": text_lookup(df, "system_prompt_hash", "system_prompt"),
        "tool_definitions": text_lookup(df, "tools_hash", "tool_definitions"),
    }
    feats = [
        pl.col("response_text").str.len_chars().alias("_resp_len"),
        pl.col("response_text").hash(seed=0).alias("_resp_hash"),
    ]
    # the ask (app + last user turn): matches the same question across system-prompt versions and histories
    feats.append(
        pl.when(pl.col("prompt_text").is_not_null())
        .then(pl.struct(pl.col("app"), pl.col("prompt_text")).hash(seed=0))
        .alias("_ask")
    )
    extra = df.select(feats)
    if topics.codes is not None:
        extra = extra.with_columns(pl.Series("_topic", topics.codes, dtype=pl.Int64))
    if "output_corruption" in kinds and present["response_text"]:
        cf = corruption_flags(df)
        extra = extra.with_columns(cf.get_column("corrupt").alias("_bad"), cf.get_column("corrupt_reason").alias("_why"))
        del cf
    # drop first, then attach: adding columns to the two-chunk frame would re-chunk the text columns too
    df = df.drop(_TEXT_COLS).rechunk().hstack(extra.rechunk())
    ctx = _Ctx(df, cfg, kinds, cur_start, topics, prompt, response, notes, _model_segments(df, cfg.min_segment_n))
    if b.height and c.height and kinds & {"refusal_rate", "refusal_rate_adjusted"}:
        ctx.topic_segments = _topic_refusal_segments(ctx)
    drafts: list[Draft] = []
    details: list[Detail] = []
    if b.height == 0 or c.height == 0:
        notes.append("One window has no traces; nothing to compare.")
    has_refusal = df.get_column("_refused").null_count() < df.height
    if not has_refusal and kinds & {"refusal_rate", "refusal_rate_adjusted", "matched_prompt_refusal"}:
        notes.append("Refusal findings skipped: no refusal labels (run the refusal detector over these traces).")
    if b.height and c.height:
        if has_refusal and "refusal_rate" in kinds:
            drafts += _refusal_rate(ctx)
        if has_refusal and "refusal_rate_adjusted" in kinds:
            st = build_strata(df, prompt, topics, cfg)
            tail = (
                f"; {fmt.pct(st.coverage)} of current traffic had its prompt or a close neighbour in the baseline "
                f"({st.coverage_note}), and a shift towards risky prompts never seen before cannot be told apart "
                "from a model change."
            )
            drafts += _adjusted_binary(ctx, "refusal_rate_adjusted", "_refused", st.codes, pl.lit(True), "refusal rate", st.method, tail)
        if kinds & {"matched_prompt_refusal", "matched_prompt_similarity"}:
            drafts += _matched(ctx)
        cluster_rows: list[tuple[str, str, float, float]] = []
        if "prompt_mix" in kinds:
            if topics.codes is None:
                notes.append("prompt_mix skipped: no cluster_id column and no prompt embeddings.")
            else:
                d, cluster_rows = _prompt_mix(ctx)
                drafts += d
        if cfg.semantic and kinds & {"prompt_semantic", "response_semantic"}:
            d, n = semantic_drafts(df, prompt, response, topics.codes, cfg, kinds)
            drafts += d
            notes += n
        elif kinds & {"prompt_semantic", "response_semantic"}:
            notes.append("Semantic tests skipped (config.semantic is False).")
        if "response_length" in kinds:
            if df.get_column("output_tokens").null_count() < df.height:
                drafts += _rank_metric(ctx, "response_length", pl.col("output_tokens"), "tokens", "output length", True)
            elif present["response_text"]:
                drafts += _rank_metric(ctx, "response_length", pl.col("_resp_len"), "characters", "response length", True)
        if "latency" in kinds and df.get_column("latency_ms").null_count() < df.height:
            drafts += _rank_metric(ctx, "latency", pl.col("latency_ms"), "ms", "latency", True)
        if "latency_per_token" in kinds and df.get_column("latency_ms").null_count() < df.height:
            per_tok = pl.when(pl.col("output_tokens") > 0).then(pl.col("latency_ms") / pl.col("output_tokens"))
            if df.select(per_tok.is_not_null().any()).item():
                drafts += _rank_metric(ctx, "latency_per_token", per_tok, "ms/token", "latency per output token", False)
        if "time_to_first_token" in kinds and df.get_column("time_to_first_token_ms").null_count() < df.height:
            drafts += _rank_metric(ctx, "time_to_first_token", pl.col("time_to_first_token_ms"), "ms", "time to first token", False)
        if "stop_reason" in kinds:
            drafts += _category_shift(ctx, "stop_reason", "stop_reason", "stop reason")
        if "tool_call_rate" in kinds and df.get_column("_ntools").null_count() < df.height:
            # tools_hash is filled from tool_definitions above, so it marks every trace that offered tools
            has_tools = df.select(pl.col("tools_hash").is_not_null().any()).item()
            mask = pl.col("_ok") & pl.col("_ntools").is_not_null()
            if has_tools:
                mask = mask & pl.col("tools_hash").is_not_null()
            sub_df = ctx.df.with_columns((pl.col("_ntools") > 0).alias("_tool"))
            ctx2 = dataclasses.replace(ctx, df=sub_df)
            if topics.codes is not None:
                drafts += _adjusted_binary(ctx2, "tool_call_rate", "_tool", topics.codes, mask, "tool-call rate", f"{topics.source} topics", ".")
            else:
                keep = sub_df.select(mask.fill_null(False)).to_series()
                drafts += _binary_simple(ctx2, "tool_call_rate", sub_df.select(*_BASE, "_tool").filter(keep), "_tool", "Tool-call rate")
        if "error_rate" in kinds:
            drafts += _binary_simple(ctx, "error_rate", df.select(*_BASE, "_err", "error_type"), "_err", "Error rate", _top_values("error_type"))
        if "output_corruption" in kinds and present["response_text"]:
            keep = df.select(pl.col("_ok") & pl.col("_bad").is_not_null()).to_series()
            sub = df.select(*_BASE, "_bad", "_why").filter(keep)
            drafts += _binary_simple(ctx, "output_corruption", sub, "_bad", "Share of corrupted responses", _top_values("_why"))
    # deterministic variance sources
    det = df.select(_DET)  # the deterministic checks read a few columns; filtering all of them would copy GBs
    ref = det.filter(pl.col("_w") == 0)
    hist = None
    if history is not None and history.height:
        hist = _derive(_prepare(history, 0), cfg, catalog)
        hist = _with_hash(_with_hash(hist, "system_prompt_hash", "system_prompt"), "tools_hash", "tool_definitions")
        for kind, hcol in (("system_prompt", "system_prompt_hash"), ("tool_definitions", "tools_hash")):
            texts[kind] = {**text_lookup(hist, hcol, kind), **texts[kind]}
        hist = hist.with_columns(
            pl.lit(None, dtype=pl.UInt32).alias("_resp_len"), pl.lit(None, dtype=pl.UInt64).alias("_resp_hash")
        ).drop(_TEXT_COLS)
        h = hist if cur_start is None else hist.filter(pl.col("timestamp") < cur_start)
        ref = pl.concat([ref, h.select(_DET)], how="vertical")
    if b.height == 0 and ref.height == 0:
        kinds = kinds - DETERMINISTIC_KINDS  # nothing before the current window to compare with
    snaps = snapshot_drafts(det, ref, catalog) if kinds & {"model_snapshot", "snapshot_behaviour"} else []
    if "model_snapshot" in kinds:
        drafts += snaps
    if "model_snapshot" in kinds and c.height:
        end = cw.end if cw.end is not None else c.get_column("timestamp").max()
        # the status on the window's last day (window ends are exclusive)
        last = (end - timedelta(microseconds=1)).date() if isinstance(end, datetime) else None
        drafts += lifecycle_drafts(det, last, catalog)
    if "alias_usage" in kinds:
        drafts += alias_drafts(det, cfg.alias_share_threshold)
    for kind, hcol in (("system_prompt", "system_prompt_hash"), ("tool_definitions", "tools_hash")):
        if kind in kinds:
            dd, dets = config_drafts(det, ref, kind, hcol, texts[kind], cfg.templated_limit)
            drafts += dd
            details += [Detail(*x) for x in dets]
    if "sampling_params" in kinds:
        drafts += sampling_drafts(det, ref, cfg.templated_limit)
    if "service_tier" in kinds:
        drafts += tier_drafts(det, ref, cfg.tier_tvd_threshold)
    if "snapshot_behaviour" in kinds and b.height and c.height:
        drafts += _snapshot_behaviour(ctx, snaps, drafts)

    findings = finalise(drafts, cfg.alpha, dict(cfg.deterministic_severity))
    qmap = {f.segment: f.q_value for f in findings if f.kind == "prompt_mix"}
    shares = tuple(
        ClusterShare(seg, label, sb, sc, qmap.get(seg))
        for seg, label, sb, sc in sorted(cluster_rows if b.height and c.height else [], key=lambda r: (-abs(r[3] - r[2]), r[0]))[:15]
    )
    variance = variance_table(df, list(findings), _repeats(df), present)
    daily_src = df
    if hist is not None:
        hh = hist.with_columns(pl.lit(-1, dtype=pl.Int8).alias("_w"))
        lo = df.get_column("timestamp").min()
        if lo is not None:
            hh = hh.filter(pl.col("timestamp") < lo)
        cols = [c for c in hh.columns if c in df.columns]
        daily_src = pl.concat([hh.select(cols), df.select(cols)], how="vertical")
    daily = _series(daily_src, "1d", None, None, None)
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

            trend = _series(daily_src, "1w", start, 8, window_of)
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
        details=tuple(sorted(details, key=lambda d: (d.kind, d.segment, d.title))),
        notes=tuple(notes),
        canary=None,
        generator=_generator(),
        config=cfg.to_dict(),
    )


def _with_hash(df: pl.DataFrame, hcol: str, tcol: str) -> pl.DataFrame:
    """Fill a missing hash from the text (polars hash; only used when ingest did not hash)."""
    if df.get_column(hcol).null_count() < df.height or df.get_column(tcol).null_count() == df.height:
        return df
    return df.with_columns(
        pl.when(pl.col(tcol).is_not_null()).then(pl.col(tcol).hash(seed=0).cast(pl.String)).otherwise(None).alias(hcol)
    )
