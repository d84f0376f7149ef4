"""Response and service detectors: length, latency, stop reasons, tool calls, errors, corrupted output.

Contract: each ``detect_*`` function takes a
:class:`~tracelens.analysis.detectors.context.DetectorContext` and returns
the drafts of its kind, or none when the columns it needs are empty;
``rank_metric`` / ``category_shift`` / ``binary_simple`` are the shared
tests. Pure: no I/O.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable

import numpy as np
import polars as pl

from tracelens.analysis import fmt
from tracelens.analysis.detectors.context import BASE, DetectorContext, counts, dater, evidence_ids, seg_phrase
from tracelens.analysis.detectors.refusal import adjusted_binary
from tracelens.analysis.draft import Draft, scope_ids
from tracelens.analysis.stats import (
    chi2_table,
    newcombe_diff,
    stratified_rank_test,
    total_variation,
    two_proportion_test,
    z_crit,
)


def rank_metric(ctx: DetectorContext, kind: str, value: pl.Expr, unit: str, label: str, stratify: bool) -> list[Draft]:
    """Cliff's delta with a (van Elteren or Mann-Whitney) rank test of a continuous metric, globally and per segment."""
    topical = ctx.topics.codes is not None and stratify

    def rows(cond: pl.Expr | None) -> pl.DataFrame:
        # a segment's rows; drafts select them again when a retest or the dating asks, rather than hold a copy
        df = ctx.df.select(*BASE, "_ok", value.cast(pl.Float64).alias("_v"))
        if topical:
            df = df.with_columns(pl.Series("_t", ctx.topics.codes))
        else:
            df = df.with_columns(pl.lit(0, dtype=pl.Int64).alias("_t"))
        df = df.filter(pl.col("_ok") & pl.col("_v").is_finite())
        return df if cond is None else df.filter(cond)

    sub = rows(None)
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
        ev_sub = s.filter(pl.col("_w") == 1)
        ev = evidence_ids(ev_sub, ["_v", "trace_id"], descending=[rt.delta > 0, False])
        del s, v, g, strata, ev_sub

        def retest(ids: frozenset[str], cond=cond) -> float:
            s = rows(cond)
            v = s.get_column("_v").to_numpy()
            strata = s.get_column("_t").to_numpy() if topical else None
            keep = ~((s.get_column("_w") == 1) & s.get_column("trace_id").cast(pl.String).is_in(scope_ids(ids).implode())).to_numpy()
            gk = s.get_column("_w").to_numpy()[keep] == 1
            if gk.sum() < 2 or (~gk).sum() < 2:
                return float("nan")
            return stratified_rank_test(v[keep], gk, None if strata is None else strata[keep]).p

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
                    f"Median {label}{seg_phrase(seg)} {fmt.moved(fmt.num(mb), fmt.num(mc), mc > mb, unit=unit)} "
                    f"(x{ratio:.2f}); Cliff's delta{within} {rt.delta:+.2f} "
                    f"(95% CI {max(-1.0, rt.delta - h):+.2f} to {min(1.0, rt.delta + h):+.2f}; "
                    f"{'van Elteren' if within else 'Mann-Whitney'} {fmt.pval(rt.p)})."
                ),
                evidence=ev,
                practical=abs(rt.delta) >= ctx.thr(kind),
                dater=dater(ctx, lambda cond=cond: rows(cond), pl.col("_v").rank()),
                retest=retest,
            )
        )
    return out


def category_shift(ctx: DetectorContext, kind: str, col: str, what: str) -> list[Draft]:
    """Chi-square over the shares of a categorical column (global) and a two-proportion test per category."""
    df = ctx.df.select(*BASE, col).filter(pl.col(col).is_not_null())
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
                summary=f"Share of {what} '{c}' {fmt.moved(fmt.pct(sb[i]), fmt.pct(sc[i]), d > 0)} ({fmt.pp(d)}; {test} {fmt.pval(pc)}).",
                evidence=evidence_ids(cur.filter(pl.col(col) == c), ["timestamp", "trace_id"], descending=[True, False]),
                practical=abs(d) >= ctx.thr(f"{kind}_share"),
                dater=dater(ctx, lambda: ctx.df.select(*BASE, col).filter(pl.col(col).is_not_null()), pl.col(col) == c),
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


def binary_simple(ctx: DetectorContext, kind: str, rows: Callable[[], pl.DataFrame], flag: str, what: str,
                  extra=None) -> list[Draft]:
    """Two-proportion test of a 0/1 flag over the frame ``rows()`` selects; ``extra(sub)`` appends a clause to the
    global summary. The drafts' dating selects the rows again (a draft holds no copy of them)."""
    out = []
    sub = rows()
    for seg, cond in [("", None)] + (ctx.segments if kind == "error_rate" else []):
        s = sub if cond is None else sub.filter(cond)
        xb, nb, xc, nc = counts(s, flag)
        if nb == 0 or nc == 0:
            continue
        p, test = two_proportion_test(xb, nb, xc, nc)
        d, lo, hi = newcombe_diff(xb, nb, xc, nc, ctx.cfg.alpha)
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
                    f"{what}{seg_phrase(seg)} "
                    f"{fmt.moved(fmt.pct(xb / nb), fmt.pct(xc / nc), d > 0, f'{xb:,}/{nb:,}', f'{xc:,}/{nc:,}')}, "
                    f"{fmt.pp(d)} (95% CI {fmt.pp(lo)} to {fmt.pp(hi)}; {test} {fmt.pval(p)}){tail}."
                ),
                evidence=evidence_ids(s.filter((pl.col("_w") == 1) & pl.col(flag)), ["timestamp", "trace_id"], descending=[True, False]),
                practical=abs(d) >= ctx.thr(kind),
                dater=dater(ctx, lambda cond=cond: rows() if cond is None else rows().filter(cond), pl.col(flag)),
            )
        )
    return out


def top_values(col: str):
    """An ``extra`` for :func:`binary_simple`: the current window's three commonest values of ``col``."""
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


# --------------------------------------------------------------------------- detectors


def _has(ctx: DetectorContext, col: str) -> bool:
    return ctx.df.get_column(col).null_count() < ctx.df.height


def detect_response_length(ctx: DetectorContext) -> list[Draft]:
    """``response_length``: output tokens (else response characters) within prompt clusters."""
    if _has(ctx, "output_tokens"):
        return rank_metric(ctx, "response_length", pl.col("output_tokens"), "tokens", "output length", True)
    if ctx.present.get("response_text"):
        return rank_metric(ctx, "response_length", pl.col("_resp_len"), "characters", "response length", True)
    return []


def detect_latency(ctx: DetectorContext) -> list[Draft]:
    """``latency``: latency_ms within prompt clusters."""
    if not _has(ctx, "latency_ms"):
        return []
    return rank_metric(ctx, "latency", pl.col("latency_ms"), "ms", "latency", True)


def detect_latency_per_token(ctx: DetectorContext) -> list[Draft]:
    """``latency_per_token``: latency_ms / output_tokens where tokens were produced."""
    if not _has(ctx, "latency_ms"):
        return []
    per_tok = pl.when(pl.col("output_tokens") > 0).then(pl.col("latency_ms") / pl.col("output_tokens"))
    if not ctx.df.select(per_tok.is_not_null().any()).item():
        return []
    return rank_metric(ctx, "latency_per_token", per_tok, "ms/token", "latency per output token", False)


def detect_time_to_first_token(ctx: DetectorContext) -> list[Draft]:
    """``time_to_first_token``: time_to_first_token_ms (streamed calls)."""
    if not _has(ctx, "time_to_first_token_ms"):
        return []
    return rank_metric(ctx, "time_to_first_token", pl.col("time_to_first_token_ms"), "ms", "time to first token", False)


def detect_stop_reason(ctx: DetectorContext) -> list[Draft]:
    """``stop_reason``: the stop-reason mix."""
    return category_shift(ctx, "stop_reason", "stop_reason", "stop reason")


def detect_tool_call_rate(ctx: DetectorContext) -> list[Draft]:
    """``tool_call_rate``: share of successful responses with a tool call, within prompt clusters where known."""
    if not _has(ctx, "_ntools"):
        return []
    # tools_hash is filled from tool_definitions by the engine, so it marks every trace that offered tools
    has_tools = ctx.df.select(pl.col("tools_hash").is_not_null().any()).item()
    mask = pl.col("_ok") & pl.col("_ntools").is_not_null()
    if has_tools:
        mask = mask & pl.col("tools_hash").is_not_null()
    sub_df = ctx.df.with_columns((pl.col("_ntools") > 0).alias("_tool"))
    ctx2 = dataclasses.replace(ctx, df=sub_df)
    if ctx.topics.codes is not None:
        return adjusted_binary(
            ctx2, "tool_call_rate", "_tool", ctx.topics.codes, mask, "tool-call rate", f"{ctx.topics.source} topics", "."
        )
    keep = sub_df.select(mask.fill_null(False)).to_series()
    return binary_simple(ctx2, "tool_call_rate", lambda: sub_df.select(*BASE, "_tool").filter(keep), "_tool",
                         "Tool-call rate")


def detect_error_rate(ctx: DetectorContext) -> list[Draft]:
    """``error_rate``: share of calls that failed, with the commonest error types."""
    return binary_simple(ctx, "error_rate", lambda: ctx.df.select(*BASE, "_err", "error_type"), "_err", "Error rate",
                         top_values("error_type"))


def detect_output_corruption(ctx: DetectorContext) -> list[Draft]:
    """``output_corruption``: share of successful responses flagged as corrupted, with the commonest reasons."""
    if not ctx.present.get("response_text") or "_bad" not in ctx.df.columns:
        return []
    keep = pl.col("_ok") & pl.col("_bad").is_not_null()
    return binary_simple(ctx, "output_corruption", lambda: ctx.df.select(*BASE, "_bad", "_why", keep.alias("_k"))
                         .filter("_k").drop("_k"), "_bad", "Share of corrupted responses", top_values("_why"))
