"""Long-context behaviour (``context_length``): did quality change more on long inputs than on short ones?

Contract: :func:`detect_context_length` takes a
:class:`~tracelens.analysis.detectors.context.DetectorContext` and returns at
most one draft per quality signal (truncation, refusal, output length, errors)
and segment (all traffic, then the per-model / per-family segments; the
finding's segment is ``metric=<signal>``, after the model segment where there
is one), or none when the windows lack input sizes or the signal. Drafts carry
``metric`` and, as ``scope``, the segment's current-window long-input traces.
Pure: no I/O.

The question is an interaction, not a level: a model that got worse on every
input is the other kinds' business (``refusal_rate``, ``stop_reason``,
``response_length``, ``error_rate``); this kind asks whether the change
between the windows differs between long and short inputs. So that a user
whose prompts grew (the input-size *distribution* moving while the relation
of quality to size stays the same) is not a finding:

* input size is the whole context the model read (``input_tokens +
  cache_read_tokens + cache_creation_tokens``; a model family with no token
  counts at all falls back to the characters of system prompt plus last user
  turn), cut into :data:`BINS` quantile bins pooled over both windows per
  model family (tokenisers differ); the top :data:`LONG_SHARE` is "long";
* traffic is split into contexts (model family x app x prompt topic, where
  topics are known); within a context the long part and the short part each
  get a window difference at a fixed bin mix (Kitagawa's behaviour part for
  rates, van Elteren's Cliff's delta for output length), and the context's
  effect is long minus short (a difference in differences). A context with no
  long or no short traffic in either window says nothing and is left out;
  a change confined to one topic or app, uniform in size, cancels.
* the contexts' effects are averaged with weights 1 / (1/n_long + 1/n_short)
  and tested with a z-test (variances from the pooled per-bin rates, or the
  rank test's null variance).
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass

import numpy as np
import polars as pl
from scipy import stats as sps

from tracelens.analysis import fmt
from tracelens.analysis.detectors.context import BASE, DetectorContext, dater, seg_phrase
from tracelens.analysis.draft import Draft, Scope
from tracelens.analysis.stats import kitagawa, stratified_rank_test, z_crit

KIND = "context_length"
BINS = 8  #: pooled quantile bins of input size per model family
LONG_SHARE = 0.25  #: the top share of input sizes (pooled over both windows, per family) that counts as long
TRUNCATED = ("max_tokens", "length")  #: stop reasons that mean the output hit its token limit
MIN_EXPECTED = 3.0  #: fewest expected events (and non-events) per window in each part for a rate to be tested

#: (metric, flag column or None for output length, what the summary calls it)
_SIGNALS = (
    ("stop_reason", "_trunc", "Truncation (stop reason max_tokens)"),
    ("refusal", "_refused", "Refusal rate"),
    ("error", "_err", "Error rate"),
    ("response_length", None, "Output length"),
)


@dataclass(frozen=True)
class _Did:
    """A long-minus-short difference in window differences, pooled over contexts."""

    effect: float
    se: float
    values: tuple[float, float, float, float]  #: raw baseline-long, current-long, baseline-short, current-short

    @property
    def p(self) -> float:
        """Two-sided p-value of the z-test."""
        return float(2 * sps.norm.sf(abs(self.effect / self.se)))


@dataclass(frozen=True)
class _Rows:
    """The sized rows as arrays (one select, then numpy: the detector runs per segment and signal)."""

    frame: pl.DataFrame  #: BASE columns plus ``_size``, ``_len`` and the flags, for evidence and dating
    w: np.ndarray  #: 1 = current window
    long: np.ndarray
    bins: np.ndarray
    ctx: np.ndarray  #: context code (family x app x topic)
    size: np.ndarray
    ids: pl.Series  #: trace ids (a polars Series: millions of Python strings would be gigabytes)
    unit: str


def _sized(ctx: DetectorContext) -> _Rows | None:
    """Rows with an input size, their size bin, long flag and context code (see the module docstring)."""
    df = ctx.df
    fam = pl.col("_family").fill_null("")
    tokens = (
        pl.col("input_tokens") + pl.col("cache_read_tokens").fill_null(0) + pl.col("cache_creation_tokens").fill_null(0)
    )
    has_tok = pl.col("input_tokens").is_not_null().any().over(fam)
    length = "output_tokens" if df.get_column("output_tokens").null_count() < df.height else "_resp_len"
    ctx_cols = [fam.alias("f"), pl.col("app").alias("a")]
    if "_topic" in df.columns:
        ctx_cols.append(pl.col("_topic").alias("t"))
    x = df.select(
        *BASE,
        "_err",
        "_refused",
        pl.when(pl.col("_ok") & pl.col("stop_reason").is_not_null())
        .then(pl.col("stop_reason").is_in(TRUNCATED))
        .alias("_trunc"),
        pl.when(pl.col("_ok")).then(pl.col(length)).cast(pl.Float64).alias("_len"),
        fam.alias("_fam"),
        pl.when(has_tok).then(tokens).otherwise(pl.col("_prompt_len")).cast(pl.Float64).alias("_size"),
        has_tok.alias("_tok"),
        pl.struct(ctx_cols).hash(seed=0).alias("_ctxkey"),  # a hash, not a joined string: cheap at 1M rows
    ).filter(pl.col("_size").is_finite() & (pl.col("_size") >= 0))
    if x.height == 0 or x.get_column("_w").n_unique() < 2:
        return None
    # pooled quantile of the size within the family: the same bin edges for both windows
    r = (pl.col("_size").rank("average").over("_fam") - 0.5) / pl.len().over("_fam")
    x = x.with_columns(
        (r * BINS).floor().clip(0, BINS - 1).cast(pl.Int64).alias("_bin"),
        (pl.col("_ctxkey").rank("dense").cast(pl.Int64) - 1).alias("_ctx"),
    ).drop("_ctxkey")
    bins = x.get_column("_bin").to_numpy()
    toks = x.get_column("_tok")
    unit = "tokens" if toks.all() else "characters" if not toks.any() else "tokens (characters where not logged)"
    return _Rows(
        frame=x,
        w=x.get_column("_w").to_numpy() == 1,
        long=bins >= round(BINS * (1 - LONG_SHARE)),
        bins=bins,
        ctx=x.get_column("_ctx").to_numpy(),
        size=x.get_column("_size").to_numpy(),
        ids=x.get_column("trace_id").cast(pl.String),
        unit=unit,
    )


def _groups(codes: np.ndarray) -> list[np.ndarray]:
    """Row positions per code."""
    order = np.argsort(codes, kind="stable")
    return np.split(order, np.flatnonzero(np.diff(codes[order])) + 1)


def _pool(parts: list[tuple[float, float, float]]) -> tuple[float, float] | None:
    """Weighted mean of the contexts' (effect, variance, weight) and its standard error; None when nothing is left."""
    if not parts:
        return None
    d, v, w = (np.array(a, dtype=float) for a in zip(*parts, strict=True))
    tw = w.sum()
    var = float(np.sum(w * w * v)) / (tw * tw)
    if var <= 0:
        return None
    return float(np.sum(w * d) / tw), math.sqrt(var)


def _cells(rows: _Rows, k: np.ndarray, y: np.ndarray, stat) -> tuple[float, float, float, float]:
    """``stat`` of ``y`` per (window, part) over positions ``k``: b-long, c-long, b-short, c-short."""
    out = []
    for long in (True, False):
        for cur in (False, True):
            v = y[k[(rows.long[k] == long) & (rows.w[k] == cur)]]
            out.append(float(stat(v)) if v.size else float("nan"))
    return out[0], out[1], out[2], out[3]


def _contexts(rows: _Rows, k: np.ndarray, side) -> list[tuple[float, float, float]]:
    """Per context with both parts in both windows: (long minus short effect, variance, weight)."""
    parts = []
    for idx in _groups(rows.ctx[k]):
        pos = k[idx]
        got = [side(pos[rows.long[pos] == long]) for long in (True, False)]
        if None in got:
            continue
        (dl, vl, nl), (ds, vs, ns) = got
        parts.append((dl - ds, vl + vs, 1.0 / (1.0 / nl + 1.0 / ns)))
    return parts


def _binary_did(rows: _Rows, k: np.ndarray, y: np.ndarray) -> _Did | None:
    """Long-minus-short Kitagawa behaviour difference of a 0/1 flag, within contexts, at a fixed size-bin mix.

    Screened on the margins (Tarone): a part whose pooled events leave fewer
    than :data:`MIN_EXPECTED` expected in either window is too sparse for the
    normal approximation, and the signal is not tested.
    """
    for long in (True, False):
        p = k[rows.long[k] == long]
        m, n, nc = y[p].sum(), p.size, rows.w[p].sum()
        if min(m * nc / n, m * (n - nc) / n, (n - m) * nc / n, (n - m) * (n - nc) / n) < MIN_EXPECTED:
            return None

    def side(pos: np.ndarray):
        cur = rows.w[pos]
        b = rows.bins[pos]
        nb = np.bincount(b[~cur], minlength=BINS).astype(float)
        nc = np.bincount(b[cur], minlength=BINS).astype(float)
        both = (nb > 0) & (nc > 0)
        if not both.any():
            return None
        xb = np.bincount(b[~cur], weights=y[pos][~cur], minlength=BINS)
        xc = np.bincount(b[cur], weights=y[pos][cur], minlength=BINS)
        kg = kitagawa(xb[both], nb[both], xc[both], nc[both])
        return kg.behaviour, kg.behaviour_se**2, float(nb[both].sum() + nc[both].sum())

    pooled = _pool(_contexts(rows, k, side))
    if pooled is None:
        return None
    return _Did(*pooled, _cells(rows, k, y, np.mean))


def _rank_did(rows: _Rows, k: np.ndarray, y: np.ndarray) -> _Did | None:
    """Long-minus-short Cliff's delta (current vs baseline, within size bins) of output length, within contexts."""

    def side(pos: np.ndarray):
        g = rows.w[pos]
        if not g.any() or g.all():
            return None
        rt = stratified_rank_test(y[pos], g, rows.bins[pos])
        if not (math.isfinite(rt.delta) and math.isfinite(rt.delta_se)):
            return None
        return rt.delta, rt.delta_se**2, float(pos.size)

    pooled = _pool(_contexts(rows, k, side))
    if pooled is None:
        return None
    return _Did(*pooled, _cells(rows, k, y, np.median))


def _long_from(rows: _Rows, k: np.ndarray) -> str:
    """' (>= 12,345 tokens)' when the rows are one family's; else each family's own top quarter."""
    fams = rows.frame.get_column("_fam").to_numpy()[k]
    if fams.size and (fams == fams[0]).all():
        lo = rows.size[k][rows.long[k]]
        if lo.size:
            return f" (>= {fmt.num(float(lo.min()))} {rows.unit.split(' ')[0]})"
    return " (each model family's own top quarter)"


def detect_context_length(ctx: DetectorContext) -> list[Draft]:
    """``context_length``: the long-minus-short change of truncation, refusals, errors and output length."""
    rows = _sized(ctx)
    if rows is None:
        return []
    # the drafts' dating reads the sized rows again (once, the first time a date is asked): holding the frame
    # until the report is final would keep a copy of every row through the other detectors
    sized = functools.cache(lambda: _sized(ctx))
    x = rows.frame
    signals = {}
    for metric, flag, label in _SIGNALS:
        col = x.get_column(flag or "_len")
        vals = col.cast(pl.Float64).to_numpy()
        signals[metric] = (flag, label, np.nan_to_num(vals), np.isfinite(vals))
    z = z_crit(ctx.cfg.alpha)
    out: list[Draft] = []
    for seg, cond in [("", None), *ctx.segments]:
        in_seg = np.ones(x.height, dtype=bool) if cond is None else x.select(cond.fill_null(False)).to_series().to_numpy()
        where = _long_from(rows, np.flatnonzero(in_seg))
        # the finding's scope: the segment's current-window traces on long inputs (one set for all signals)
        scope = Scope(rows.ids.filter(pl.Series(in_seg & rows.w & rows.long)))
        for metric, (flag, label, y, ok) in signals.items():
            k = np.flatnonzero(in_seg & ok)
            part = rows.long[k] * 2 + rows.w[k]
            if np.bincount(part, minlength=4).min() < ctx.cfg.min_segment_n:
                continue
            did = _binary_did(rows, k, y) if flag else _rank_did(rows, k, y)
            if did is not None:
                out.append(_draft(ctx, rows, seg, metric, flag, label, where, k, y, did, z, scope, sized))
    return out


def _first(rows: _Rows, pos: np.ndarray, key: np.ndarray, descending: bool, n: int = 20) -> list[str]:
    """Trace ids of ``pos`` ordered by ``key`` (then by id), the first ``n``."""
    top = (pl.DataFrame({"k": key, "id": rows.ids.gather(pos)})
           .sort(["k", "id"], descending=[descending, False]).head(n))
    return top.get_column("id").to_list()


def _draft(ctx, rows: _Rows, seg, metric, flag, label, where, k, y, did: _Did, z: float, scope, sized) -> Draft:
    bl, cl, bs, cs = did.values
    lo, hi = did.effect - z * did.se, did.effect + z * did.se
    p = did.p
    cur_long = k[rows.w[k] & rows.long[k]]
    if flag:
        show, diff, thr = fmt.pct, fmt.pp, ctx.thr(KIND)
        hit = cur_long[y[cur_long] > 0]
        ev = _first(rows, hit, rows.size[hit], True)  # the longest inputs that show it first
        value = pl.col(flag)
        gap = "gap between long and short inputs"
    else:
        show, diff, thr = fmt.num, lambda d: f"{d:+.2f}", ctx.thr(f"{KIND}_length")
        ev = _first(rows, cur_long, y[cur_long], did.effect > 0)
        value = pl.col("_len").rank()
        gap = "long-minus-short Cliff's delta"
    summary = (
        f"{label} on long inputs{where}{seg_phrase(seg)} {fmt.moved(show(bl), show(cl), cl > bl)}, "
        f"on shorter ones {fmt.moved(show(bs), show(cs), cs > bs)}: the {gap} changed by {diff(did.effect)} "
        f"(95% CI {diff(lo)} to {diff(hi)}; within size bins, app and topic; z-test {fmt.pval(p)})."
    )
    longs = k[rows.long[k]]
    when = dater(ctx, lambda: sized().frame[longs], value)  # dated on the long inputs' traffic
    return Draft(
        kind=KIND,
        segment=f"{seg} metric={metric}".lstrip(),  # one finding per signal: the segment names it, as changepoint's
        baseline_value=bl,
        current_value=cl,
        effect=did.effect,
        ci_low=lo,
        ci_high=hi,
        p_value=p,
        summary=summary,
        evidence=tuple(ev),
        practical=abs(did.effect) >= thr,
        dater=when,
        metric=metric,
        scope=scope,
    )
