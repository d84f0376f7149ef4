"""Peak hours and load inside one snapshot and tier: ``time_of_day`` and ``load``.

Contract: :func:`detect_peak` takes the
:class:`~tracelens.analysis.detectors.context.DetectorContext` and looks only
at the current window. It asks whether refusals, output length, latency,
errors or truncation (``max_tokens`` stops) depend on when a request was sent
-- at the busy hours of the week, or when traffic was heavy -- with the prompt
mix held fixed. Known causes: capacity-tier routing and quantised or smaller
fleets that take over under peak load.

* Segments hold the known causes of a difference fixed: one returned snapshot
  (``model_returned``) and one service tier (no tier logged is its own
  segment); a segment needs :data:`MIN_N` current traces.
* Two splits of every segment, both fixed from the window's traffic alone
  (all apps, all models) before any metric is read, so neither is a search:

  - ``time_of_day``: peak hours are the busiest UTC hours of weekdays
    (Monday-Friday), taken in order of their weekday traffic until they hold
    :data:`PEAK_SHARE` of the window's traffic; everything else (other hours,
    weekends) is off-peak;
  - ``load``: each trace's load is the number of requests (all traffic) in
    the :data:`LOAD_MINUTES` minutes up to and including it, per minute; the
    high-load side is the top quarter (at or above the window's 75th
    percentile).

* Metrics: refusal (0/1, labelled traces), error (``status`` error or an
  error type, all traces), truncation (share of ``max_tokens`` among the
  successful traces with a stop reason), output length (tokens, else
  characters) and latency (ms) of the successful traces. Binary metrics:
  CMH test with the Kitagawa behaviour part as the effect (peak minus
  off-peak, prompt mix held fixed, with its interval); continuous ones: van
  Elteren's stratified rank test with Cliff's delta within strata. Strata are
  app x topic cluster (``_topic``), as ``changepoint`` uses. A binary test
  whose events could not reach significance however they split (Tarone's
  screen on the margins) is not run; each side of a split needs
  :data:`MIN_SIDE` traces.
* One finding per segment x metric: both splits ask one question (does the
  metric depend on when the request ran?) and are correlated, so the split
  with the smaller p-value gives the kind, its p-value is doubled (Bonferroni
  over the two) and the summary quotes the other. Then Bonferroni over the
  segment's metrics, as ``changepoint`` does; BH across the report happens in
  :func:`~tracelens.analysis.draft.finalise`.

``scope`` is the traces on the peak / high-load side (what a week-over-week
finding would be part of); ``metric`` names the metric. Pure: no I/O.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import polars as pl

from tracelens.analysis import fmt
from tracelens.analysis.detectors.changepoint import _metrics as step_metrics
from tracelens.analysis.detectors.context import DetectorContext
from tracelens.analysis.detectors.refusal import cmh_split
from tracelens.analysis.draft import Draft, Scope
from tracelens.analysis.stats import min_attainable_p, stratified_rank_test, z_crit

MIN_N = 150  #: current traces a snapshot x tier segment needs to be tested
MIN_SIDE = 30  #: traces each side of a split needs (per segment and metric)
PEAK_SHARE = 1 / 3  #: share of the window's traffic the peak hours hold (at least)
LOAD_MINUTES = 30  #: trailing window of the load proxy (requests per minute)
LOAD_QUANTILE = 0.75  #: high load: at or above this quantile of the window's per-trace load
KINDS = ("time_of_day", "load")

_BINARY = {"refusal", "error", "stop_reason"}
_LABELS = {"refusal": "Refusal rate", "response_length": "Output length", "latency": "Latency"}


@dataclass(frozen=True)
class Side:
    """One split's result on one segment x metric."""

    kind: str
    p: float
    effect: float
    lo: float
    hi: float
    off: float  #: off-peak / lower-load value (rate or median)
    on: float  #: peak / high-load value
    detail: str  #: the moved clause of the summary
    g: np.ndarray  #: rows on the peak / high-load side
    evidence: np.ndarray  #: row indices of the evidence


def peak_hours(ts: pl.Series, share: float = PEAK_SHARE) -> list[int]:
    """The busiest weekday UTC hours, in order of traffic, until they hold ``share`` of all traces in ``ts``."""
    ts = ts.drop_nulls()
    if ts.len() == 0:
        return []
    f = pl.DataFrame({"t": ts}).select(pl.col("t").dt.weekday().alias("d"), pl.col("t").dt.hour().alias("h"))
    wd = f.filter(pl.col("d") <= 5).group_by("h").agg(pl.len().alias("n")).sort(["n", "h"], descending=[True, False])
    need, got, out = share * ts.len(), 0, []
    for h, n in wd.iter_rows():
        if got >= need:
            break
        out.append(int(h))
        got += n
    return sorted(out)


def hours_phrase(hours: list[int]) -> str:
    """'weekdays 12:00-18:00 UTC' (runs of consecutive hours joined by commas)."""
    runs: list[list[int]] = []
    for h in hours:
        if runs and h == runs[-1][1]:
            runs[-1][1] = h + 1
        else:
            runs.append([h, h + 1])
    return "weekdays " + ", ".join(f"{a:02d}:00-{b:02d}:00" for a, b in runs) + " UTC"


def load_per_minute(ts_us: np.ndarray, minutes: int = LOAD_MINUTES) -> np.ndarray:
    """Per timestamp (microseconds): requests in the ``minutes`` up to and including it, per minute."""
    s = np.sort(ts_us)
    width = minutes * 60_000_000
    n = np.searchsorted(s, ts_us, side="right") - np.searchsorted(s, ts_us - width, side="right")
    return n / minutes


def _metrics(df: pl.DataFrame) -> list[tuple[str, str, str, pl.Expr, pl.Expr]]:
    """(name, label, unit, value, filter) of the metrics these logs carry: ``changepoint``'s, plus errors and truncation."""
    out = [(name, _LABELS[name], unit, value, keep) for name, unit, value, keep in step_metrics(df)]
    at = 1 if out and out[0][0] == "refusal" else 0
    extra = [("error", "Error rate", "", pl.col("_err").cast(pl.Float64), pl.col("_err").is_not_null())]
    if df.get_column("stop_reason").null_count() < df.height:
        extra.append(("stop_reason", "Share of max_tokens stops", "", (pl.col("stop_reason") == "max_tokens").cast(pl.Float64),
                      pl.col("_ok") & pl.col("stop_reason").is_not_null()))  # fmt: skip
    return out[:at] + extra + out[at:]


def _side(kind: str, name: str, unit: str, v: np.ndarray, g: np.ndarray, codes: np.ndarray, alpha: float) -> Side | None:
    """Test one split (``g`` = peak / high-load rows) of one metric; None when it cannot be run."""
    n_on, n_off = int(g.sum()), int((~g).sum())
    if n_on < MIN_SIDE or n_off < MIN_SIDE:
        return None
    if name in _BINARY:
        m = int(v.sum())
        if min_attainable_p(n_off, n_on, m) > alpha:
            return None  # the events cannot reach significance however they split (margins only: the test stays valid)
        res = cmh_split(codes, g, v, alpha)
        eff = res.kg.behaviour
        if not math.isfinite(eff):
            return None
        x_on, x_off = int(v[g].sum()), int(v[~g].sum())
        detail = (
            f"{fmt.pct(x_on / n_on)} ({x_on:,}/{n_on:,}) against {fmt.pct(x_off / n_off)} ({x_off:,}/{n_off:,}); "
            f"with prompt mix held fixed {fmt.pp(eff)} (95% CI {fmt.pp(res.lo)} to {fmt.pp(res.hi)}; CMH {fmt.pval(res.p)})"
        )
        return Side(kind, res.p, eff, res.lo, res.hi, res.base_rate, res.base_rate + eff, detail, g, res.evidence_rows(g, v))
    rt = stratified_rank_test(v, g, codes)
    if not math.isfinite(rt.delta):
        return None
    h = z_crit(alpha) * rt.delta_se
    lo, hi = max(-1.0, rt.delta - h), min(1.0, rt.delta + h)
    on, off = float(np.median(v[g])), float(np.median(v[~g]))
    detail = (
        f"median {fmt.num(on)} {unit} against {fmt.num(off)} {unit}; Cliff's delta within prompt strata "
        f"{rt.delta:+.2f} (95% CI {lo:+.2f} to {hi:+.2f}; van Elteren {fmt.pval(rt.p)})"
    )
    rows = np.flatnonzero(g)
    ev = rows[np.lexsort((rows, -v[rows] if rt.delta > 0 else v[rows]))][:20]
    return Side(kind, rt.p, rt.delta, lo, hi, off, on, detail, g, ev)


def _effect_clause(s: Side, name: str) -> str:
    if name in _BINARY:
        return f"{fmt.pp(s.effect)}, {fmt.pval(s.p)}"
    return f"Cliff's delta {s.effect:+.2f}, {fmt.pval(s.p)}"


def _draft(ctx: DetectorContext, seg: str, name: str, label: str, sides: list[Side], where: dict[str, str],
           s: pl.DataFrame) -> Draft:  # fmt: skip
    best = min(sides, key=lambda x: (x.p, KINDS.index(x.kind)))
    other = [x for x in sides if x is not best]
    on_word, off_word = where[best.kind].split("|")
    word = "higher than" if best.effect > 0 else "lower than" if best.effect < 0 else "the same as"
    tail = ""
    if other:
        o = other[0]
        tail = f"; the {o.kind.replace('_', ' ')} split gives {_effect_clause(o, name)}"
    n_tests = len(sides)
    thr = ctx.thr(f"{best.kind}_rate") if name in _BINARY else ctx.thr(best.kind)
    return Draft(
        kind=best.kind,
        segment=seg,
        baseline_value=best.off,
        current_value=best.on,
        effect=best.effect,
        ci_low=best.lo,
        ci_high=best.hi,
        p_value=min(1.0, best.p * n_tests),
        summary=(
            f"{label} at {on_word} is {word} {off_word} on {seg.rsplit(' metric=', 1)[0]}: {best.detail}{tail}; p-values before "
            f"adjusting for the {n_tests} split{'s' if n_tests > 1 else ''} and the segment's metrics."
        ),
        evidence=tuple(str(t) for t in s.get_column("trace_id").gather(best.evidence).to_list()),
        practical=abs(best.effect) >= thr,
        metric=name,
        scope=Scope(s.get_column("trace_id").cast(pl.String).filter(pl.Series(best.g))),
    )


def _current(ctx: DetectorContext) -> tuple[pl.DataFrame, dict[str, str]]:
    """The current window with ``_peak`` / ``_high`` split columns, and the phrases naming each split's sides."""
    df = ctx.df
    cols = ["trace_id", "timestamp", "_w", "model_returned", "service_tier", "app", "_refused", "_ok", "_err",
            "stop_reason", "output_tokens", "_resp_len", "latency_ms"] + (["_topic"] if "_topic" in df.columns else [])  # fmt: skip
    cur = df.select(cols).filter((pl.col("_w") == 1) & pl.col("timestamp").is_not_null())
    hours = peak_hours(cur.get_column("timestamp"))
    load = load_per_minute(cur.get_column("timestamp").dt.epoch("us").to_numpy())
    cut = float(np.quantile(load, LOAD_QUANTILE)) if load.size else 0.0
    cur = cur.with_columns(
        ((pl.col("timestamp").dt.weekday() <= 5) & pl.col("timestamp").dt.hour().is_in(hours)).alias("_peak"),
        pl.Series("_high", load >= cut),
    )
    where = {
        "time_of_day": f"peak hours ({hours_phrase(hours)})|off-peak" if hours else "peak hours|off-peak",
        "load": f"high load (at least {fmt.num(cut)} requests/min over the trailing {LOAD_MINUTES} min)|at lower load",
    }
    return cur, where


def _segments(cur: pl.DataFrame) -> list[tuple[str, pl.DataFrame]]:
    """(segment name, rows) per snapshot x tier with at least MIN_N current traces, largest first."""
    g = cur.filter(pl.col("model_returned").is_not_null())
    sizes = g.group_by("model_returned", "service_tier").agg(pl.len().alias("n")).filter(pl.col("n") >= MIN_N)
    sizes = sizes.sort(["n", "model_returned", "service_tier"], descending=[True, False, False], nulls_last=True)
    out = []
    for m, t, _ in sizes.iter_rows():
        tier = pl.col("service_tier").is_null() if t is None else pl.col("service_tier") == t
        out.append((f"snapshot={m}" + (f" tier={t}" if t is not None else ""), g.filter((pl.col("model_returned") == m) & tier)))
    return out


def detect_peak(ctx: DetectorContext) -> list[Draft]:
    """``time_of_day`` / ``load``: a metric that differs at peak hours or under high load, one snapshot and tier, current window."""
    cur, where = _current(ctx)
    if cur.height < MIN_N:
        return []
    kinds = [k for k in KINDS if k in ctx.kinds]
    strata_cols = [pl.col("app").fill_null(""), *([pl.col("_topic").cast(pl.String).fill_null("")] if "_topic" in cur.columns else [])]
    out: list[Draft] = []
    for seg, rows in _segments(cur):
        seg_drafts: list[Draft] = []
        for name, label, unit, value, keep in _metrics(rows):
            s = rows.filter(keep.fill_null(False)).with_columns(value.alias("_v")).filter(pl.col("_v").is_finite())
            v = s.get_column("_v").to_numpy()
            codes = s.select(pl.concat_str(strata_cols, separator=":").rank("dense")).to_series().to_numpy()
            col = {"time_of_day": "_peak", "load": "_high"}
            sides = [x for k in kinds if (x := _side(k, name, unit, v, s.get_column(col[k]).to_numpy(), codes, ctx.cfg.alpha))]
            if sides:
                seg_drafts.append(_draft(ctx, f"{seg} metric={name}", name, label, sides, where, s))
        # one question per segment ("does it depend on when?") asked of several metrics: Bonferroni within, BH across
        for d in seg_drafts:
            d.p_value = min(1.0, d.p_value * len(seg_drafts))
        out += seg_drafts
    return out
