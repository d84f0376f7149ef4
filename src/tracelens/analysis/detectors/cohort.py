"""The ``cohort`` kind: one cohort behaving differently from the rest, on comparable prompts, compared with before.

Contract: :func:`detect_cohort` takes a
:class:`~tracelens.analysis.detectors.context.DetectorContext` and returns at
most one draft per cohort dimension and metric. Pure: no I/O.

* Dimensions: ``DriftConfig.cohort_by`` when given (each a trace column or an
  ``attributes`` key; the engine extracts the keys named by
  :func:`cohort_attribute_keys` into :func:`cohort_column` columns), else the
  columns ``service_tier`` and ``app`` and the attribute keys of
  :data:`~tracelens.analysis.config.DEFAULT_COHORT_ATTRIBUTES`. A dimension is
  tested when 2 to ``cohort_max_values`` of its values have at least
  ``cohort_min_n`` current traces; each such value is one cohort, compared with
  the other (non-null) values of the dimension. With exactly two, the two
  comparisons are one: only the smaller cohort is tested.
* Comparable prompts: strata model x app x prompt topic (a component equal to
  the dimension is left out); only strata where both the cohort and the rest
  have traffic in a window inform that window's gap.
* Metrics: refusal rate and error rate (gap = Kitagawa behaviour part, cohort
  minus rest, standardised over the shared strata), output length and latency
  (gap = van Elteren Cliff's delta, cohort against rest within strata).
* Diverging, not different: the effect is the current gap minus the baseline
  gap (difference in differences), z-test with the two windows' standard
  errors; a permanent gap (a priority tier that is always faster) is not a
  finding. A cohort with fewer than ``cohort_min_n`` comparable baseline traces
  is tested on its current gap alone (CMH / van Elteren), and the summary says
  so.
* Per dimension and metric one draft: the cohort with the smallest p-value,
  its p-value multiplied by the number of cohorts tested (Bonferroni), so at
  most one cohort per dimension and metric reaches warn or alert. The draft's
  ``metric`` and ``scope`` (the cohort's current traces) let the
  week-over-week finding of the same traffic fold into it.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import polars as pl

from tracelens.analysis import fmt
from tracelens.analysis.config import DEFAULT_COHORT_ATTRIBUTES, DEFAULT_COHORT_COLUMNS, DriftConfig
from tracelens.analysis.detectors.context import DetectorContext, dater, evidence_ids
from tracelens.analysis.detectors.refusal import _stratum_tables
from tracelens.analysis.draft import Draft, Scope, scope_ids
from tracelens.analysis.stats import cmh_test, kitagawa, stratified_rank_test, z_crit

_ATTR = "_attr."
LENGTH_BINS = 5  #: latency is compared within prompt strata x fifths of output length
#: metric -> (label, binary)
_METRICS = {
    "refusal": ("refusal rate", True),
    "error": ("error rate", True),
    "response_length": ("output length", False),
    "latency": ("latency", False),
}
#: columns a dimension may not be (engine-internal, or one value per trace)
_NOT_DIMENSIONS = frozenset({"trace_id", "timestamp", "prompt_hash", "prompt_text", "response_text", "_row", "_w"})


def cohort_column(key: str) -> str:
    """The engine column holding ``attributes.<key>``."""
    return _ATTR + key


def cohort_attribute_keys(cfg: DriftConfig) -> tuple[str, ...]:
    """The attribute keys the engine extracts for the cohort tests (a named column is looked up as a key too)."""
    if cfg.cohort_by is None:
        return DEFAULT_COHORT_ATTRIBUTES
    return tuple(dict.fromkeys(k for k in cfg.cohort_by if k))


@dataclass
class _Gap:
    """One window's gap, cohort minus rest, on comparable prompts."""

    value: float
    se: float
    p: float  # of "no gap" in this window
    n_cohort: int
    n_rest: int


def _dimensions(ctx: DetectorContext) -> list[tuple[str, str]]:
    """(name, column) of the dimensions to try: a trace column with values wins over an attribute key."""
    names = ctx.cfg.cohort_by if ctx.cfg.cohort_by is not None else DEFAULT_COHORT_COLUMNS + DEFAULT_COHORT_ATTRIBUTES
    out = []
    for name in dict.fromkeys(names):
        col = None
        for c in (name, cohort_column(name)):
            usable = c in ctx.df.columns and (
                c == cohort_column(name) or not (c in _NOT_DIMENSIONS or c.startswith("_"))
            )
            if col is None and usable and ctx.df.get_column(c).null_count() < ctx.df.height:
                col = c
        if col is None:
            if ctx.cfg.cohort_by is not None:
                ctx.notes.append(f"Cohort dimension '{name}' skipped: no trace carries it (column or attribute).")
            continue
        out.append((name, col))
    return out


def _strata(ctx: DetectorContext, col: str, by_length: bool) -> pl.Expr:
    """Stratum key: model x app x topic, without the dimension itself (and output-length fifths for latency)."""
    parts = [
        pl.col(c).cast(pl.String)
        for c in ("_model", "app")
        if c != col and not (col in ("model_returned", "model_requested") and c == "_model")
    ]
    if "_topic" in ctx.df.columns:
        parts.append(pl.col("_topic"))
    if by_length and ctx.df.get_column("output_tokens").null_count() < ctx.df.height:
        # latency follows output length: a cohort whose answers got shorter is not a slower fleet
        tok = pl.col("output_tokens")
        parts.append(((tok.rank("average") - 1) * LENGTH_BINS / tok.count()).floor().cast(pl.Int64).fill_null(-1))
    return pl.struct(parts).hash(seed=0).alias("_s")


def _binary_gap(s: np.ndarray, g: np.ndarray, y: np.ndarray) -> _Gap:
    xr, nr, xc, nc = _stratum_tables(s, g.astype(np.int8), y)
    both = (nr > 0) & (nc > 0)
    xr, nr, xc, nc = xr[both], nr[both], xc[both], nc[both]
    kg = kitagawa(xr, nr, xc, nc)
    _, p = cmh_test(xr, nr, xc, nc)
    # The Kitagawa SE pools cohort and rest (right for "no gap"); a gap that is there in both windows is the
    # null of the difference in differences, so each group keeps its own variance (each stratum's rate shrunk
    # by one pseudo-trace towards the window's overall rate, so that a stratum with no event still counts).
    wbar = (nr / nr.sum() + nc / nc.sum()) / 2
    prior = (xr.sum() + xc.sum()) / (nr.sum() + nc.sum())
    pr, pc = (xr + prior) / (nr + 1), (xc + prior) / (nc + 1)
    se = float(np.sqrt(np.sum(wbar**2 * (pr * (1 - pr) / nr + pc * (1 - pc) / nc))))
    return _Gap(kg.behaviour, se, p, int(nc.sum()), int(nr.sum()))


def _gap(binary: bool, s: np.ndarray, g: np.ndarray, y: np.ndarray, min_n: int) -> _Gap | None:
    """The gap of cohort ``g`` on strata ``s`` (dense codes) both groups share; None below ``min_n`` a side."""
    k = int(s.max()) + 1 if s.size else 0
    shared = (np.bincount(s[g], minlength=k) > 0) & (np.bincount(s[~g], minlength=k) > 0)
    keep = shared[s]
    s, g, y = s[keep], g[keep], y[keep]
    n_c = int(g.sum())
    if n_c < min_n or s.size - n_c < min_n:
        return None
    if binary:
        return _binary_gap(s, g, y)
    rt = stratified_rank_test(y, g, s)
    if not math.isfinite(rt.delta):
        return None
    return _Gap(rt.delta, rt.delta_se, rt.p, n_c, s.size - n_c)


@dataclass
class _Test:
    value: str
    p: float
    effect: float
    se: float
    cur: _Gap
    base: _Gap | None  # None: tested on the current gap alone


def _test(binary: bool, data: dict[int, tuple], value: str, code: int, min_n: int) -> _Test | None:
    cs, cc, cy = data[1]
    cur = _gap(binary, cs, cc == code, cy, min_n)
    if cur is None:
        return None
    base = None
    if 0 in data:
        bs, bc, by = data[0]
        base = _gap(binary, bs, bc == code, by, min_n)
    if base is None:
        return _Test(value, cur.p, cur.value, cur.se, cur, None)
    eff = cur.value - base.value
    se = math.hypot(cur.se, base.se)
    if not (se > 0 and math.isfinite(eff)):
        return None
    p = float(math.erfc(abs(eff / se) / math.sqrt(2.0)))
    return _Test(value, p, eff, se, cur, base)


def _metric_frame(ctx: DetectorContext, metric: str) -> tuple[pl.Expr, pl.Expr, str] | None:
    """(value, row filter, unit) of a metric, or None when these traces do not carry it."""

    def has(col: str) -> bool:
        return ctx.df.get_column(col).null_count() < ctx.df.height

    if metric == "refusal":
        return (pl.col("_refused").cast(pl.Float64), pl.col("_refused").is_not_null(), "") if ctx.has_refusal else None
    if metric == "error":
        return pl.col("_err").cast(pl.Float64), pl.lit(True), ""
    if metric == "latency":
        return (pl.col("latency_ms"), pl.col("_ok"), "ms") if has("latency_ms") else None
    if has("output_tokens"):
        return pl.col("output_tokens").cast(pl.Float64), pl.col("_ok"), "tokens"
    if ctx.present.get("response_text"):
        return pl.col("_resp_len").cast(pl.Float64), pl.col("_ok"), "characters"
    return None


def _fmt_gap(binary: bool, x: float) -> str:
    return fmt.pp(x) if binary else f"{x:+.2f}"


def _draft(ctx, name, col, metric, unit, sub: pl.DataFrame, t: _Test, n_tested: int, others: list[str],
           frame: Callable[[], pl.DataFrame]) -> Draft:
    """The draft of cohort test ``t``; ``frame()`` selects ``sub`` again for the dating (a draft holds no copy)."""
    label, binary = _METRICS[metric]
    z = z_crit(ctx.cfg.alpha)
    p = min(1.0, t.p * n_tested)
    lo, hi = t.effect - z * t.se, t.effect + z * t.se
    coh = sub.filter(pl.col(col) == t.value)
    cur = coh.filter(pl.col("_w") == 1)
    seg = f"{name}={t.value}"
    rest = f"the rest of {name} ({', '.join(others[:4])}{', ...' if len(others) > 4 else ''})"
    stat = "rate gap" if binary else "Cliff's delta"
    adj = f", x{n_tested} for {n_tested} cohorts tested" if n_tested > 1 else ""
    if binary:
        ev = evidence_ids(
            cur.filter(pl.col("_y") == (1.0 if t.effect > 0 else 0.0)),
            ["timestamp", "trace_id"],
            descending=[True, False],
        )
        tail = ""
    else:
        ev = evidence_ids(cur, ["_y", "trace_id"], descending=[t.effect > 0, False])
        mc = cur.get_column("_y").median()
        mr = sub.filter((pl.col("_w") == 1) & (pl.col(col) != t.value)).get_column("_y").median()
        tail = f"; median {fmt.num(mc)} against {fmt.num(mr)} {unit} now" if mc is not None and mr is not None else ""
    if t.base is not None:
        summary = (
            f"{label.capitalize()} of {seg} against {rest} on comparable prompts: {stat} {_fmt_gap(binary, t.base.value)} "
            f"in the baseline, {_fmt_gap(binary, t.cur.value)} now (change {_fmt_gap(binary, t.effect)}, 95% CI "
            f"{_fmt_gap(binary, lo)} to {_fmt_gap(binary, hi)}; z-test {fmt.pval(p)}{adj}){tail}; "
            f"{t.cur.n_cohort:,} cohort traces now, {t.base.n_cohort:,} before."
        )
    else:
        summary = (
            f"{seg} is new (fewer than {ctx.cfg.cohort_min_n} comparable traces in the baseline), so its gap is "
            f"tested in the current window alone: {label} against {rest} on comparable prompts, {stat} "
            f"{_fmt_gap(binary, t.effect)} (95% CI {_fmt_gap(binary, lo)} to {_fmt_gap(binary, hi)}; "
            f"{'CMH' if binary else 'van Elteren'} {fmt.pval(p)}{adj}){tail}; {t.cur.n_cohort:,} cohort traces."
        )
    value = pl.col("_y") if binary else pl.col("_y").rank()
    return Draft(
        kind="cohort",
        segment=f"{seg} metric={metric}",
        baseline_value=None if t.base is None else t.base.value,
        current_value=t.cur.value,
        effect=t.effect,
        ci_low=lo,
        ci_high=hi,
        p_value=p,
        summary=summary,
        evidence=ev,
        practical=abs(t.effect) >= ctx.thr("cohort_rate" if binary else "cohort"),
        dater=dater(ctx, lambda: frame().filter(pl.col(col) == t.value), value),
        metric=metric,
        scope=Scope(cur.get_column("trace_id")),
    )


def _dimension(ctx: DetectorContext, name: str, col: str) -> tuple[list[Draft], str | None]:
    """Drafts of one dimension, and its line for the note (None when it was not tested)."""
    min_n, cap = ctx.cfg.cohort_min_n, ctx.cfg.cohort_max_values
    cnt = (
        ctx.df.lazy()
        .filter((pl.col("_w") == 1) & pl.col(col).is_not_null())
        .group_by(col)
        .agg(pl.len().alias("n"))
        .collect()
    )
    big = cnt.filter(pl.col("n") >= min_n).sort(["n", col], descending=[False, False])
    values = big.get_column(col).cast(pl.String).to_list()
    if len(values) < 2:
        return [], None
    if len(values) > cap:
        return [], f"{name} not tested ({len(values)} values with {min_n}+ traces: more than {cap}, not a cohort)"
    alls = sorted(cnt.get_column(col).cast(pl.String).to_list())
    # two cohorts are one comparison: test the smaller one against the other
    tested = values[:1] if len(values) == 2 else values
    out: list[Draft] = []
    index = {v: i for i, v in enumerate(alls)}
    for metric, (_, binary) in _METRICS.items():
        strata = _strata(ctx, col, metric == "latency")
        spec = _metric_frame(ctx, metric)
        if spec is None:
            continue
        value, keep, unit = spec

        def frame(strata=strata, value=value, keep=keep) -> pl.DataFrame:
            # the metric's rows; selected again when a retest or the dating asks (a draft holds no copy)
            return (
                ctx.df.lazy()
                .filter(pl.col(col).is_not_null() & keep.fill_null(False))
                .select("trace_id", "timestamp", "_w", pl.col(col).cast(pl.String), value.alias("_y"), strata)
                .filter(pl.col("_y").is_finite())
                .with_columns(
                    (pl.col("_s").rank("dense") - 1).cast(pl.Int64),
                    pl.col(col).replace_strict(index, default=-1, return_dtype=pl.Int64).alias("_c"),
                )
                .collect()
            )

        sub = frame()
        data = {}
        for w in (0, 1):
            part = sub.filter(pl.col("_w") == w)
            if part.height:
                data[w] = tuple(part.get_column(c).to_numpy() for c in ("_s", "_c", "_y"))
        if 1 not in data:
            continue
        tests = [t for t in (_test(binary, data, v, index[v], min_n) for v in tested) if t is not None]
        if not tests:
            continue
        best = min(tests, key=lambda t: (t.p, -abs(t.effect), t.value))
        others = [v for v in alls if v != best.value]
        d = _draft(ctx, name, col, metric, unit, sub, best, len(tests), others, frame)
        del sub, data

        def retest(ids: frozenset[str], frame=frame, binary=binary, best=best, n=len(tests)) -> float:
            # the same cohort's test with those current-window traces left out (see draft.fold)
            sub = frame()
            rest = sub.filter(~((pl.col("_w") == 1) & pl.col("trace_id").cast(pl.String).is_in(scope_ids(ids).implode())))
            parts = {w: rest.filter(pl.col("_w") == w) for w in (0, 1)}
            data2 = {w: tuple(p.get_column(c).to_numpy() for c in ("_s", "_c", "_y")) for w, p in parts.items() if p.height}
            t = _test(binary, data2, best.value, index[best.value], min_n) if 1 in data2 else None
            return float("nan") if t is None else min(1.0, t.p * n)

        d.retest = retest
        out.append(d)
    line = f"{name} ({len(tested)} of {len(alls)} values tested)" if out else None
    return out, line


def detect_cohort(ctx: DetectorContext) -> list[Draft]:
    """``cohort``: a cohort diverging from the rest of its dimension on comparable prompts (see module docstring)."""
    out: list[Draft] = []
    lines = []
    for name, col in _dimensions(ctx):
        drafts, line = _dimension(ctx, name, col)
        out.extend(drafts)
        if line:
            lines.append(line)
    if lines:
        ctx.notes.append(
            "Cohort tests (each cohort against the rest of its dimension on comparable prompts, change since the "
            f"baseline): {'; '.join(lines)}."
        )
    return out
