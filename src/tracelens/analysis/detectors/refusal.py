"""Refusal detectors: raw and mix-adjusted refusal rate, and the matched-prompt tests.

Contract: each public ``detect_*`` function takes a
:class:`~tracelens.analysis.detectors.context.DetectorContext` and returns
drafts of its kind(s); ``topic_refusal_segments`` chooses the topics that get
their own refusal tests (called once by the engine, before any detector);
``cmh_split`` / ``adjusted_binary`` are the stratified binary test the
snapshot split and the tool-call rate reuse. Pure: no I/O.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import polars as pl

from tracelens.analysis import fmt
from tracelens.analysis.detectors.context import (
    BASE,
    DetectorContext,
    counts,
    counts_where,
    dater,
    evidence_ids,
    seg_phrase,
)
from tracelens.analysis.draft import Draft, scope_ids
from tracelens.analysis.stats import (
    cmh_test,
    kitagawa,
    mcnemar,
    min_attainable_p,
    newcombe_diff,
    paired_diff_ci,
    signed_rank_p,
    two_proportion_test,
    z_crit,
)
from tracelens.analysis.strata import build_strata


def topic_refusal_segments(ctx: DetectorContext) -> list[tuple[str, pl.Expr]]:
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


def _refusal_rate_drafts(ctx: DetectorContext) -> list[Draft]:
    cols = (*BASE, "_refused", *(["_topic"] if ctx.topic_segments else []))
    labelled = pl.col("_refused").is_not_null()
    out = []
    for seg, cond in [("", None)] + ctx.segments + ctx.topic_segments:
        keep = labelled if cond is None else labelled & cond

        def rows(keep=keep) -> pl.DataFrame:
            # the segment's rows, selected again when a retest or the dating asks (a draft holds no copy)
            return ctx.df.lazy().select(cols).filter(keep).collect()

        xb, nb, xc, nc = counts_where(ctx.df, keep, "_refused")
        if nb == 0 or nc == 0:
            continue
        p, test = two_proportion_test(xb, nb, xc, nc)
        d, lo, hi = newcombe_diff(xb, nb, xc, nc, ctx.cfg.alpha)
        cur_ref = ctx.df.lazy().select(cols).filter(keep & (pl.col("_w") == 1) & pl.col("_refused"))

        def retest(ids: frozenset[str], rows=rows) -> float:
            rest = rows().filter(~((pl.col("_w") == 1) & pl.col("trace_id").cast(pl.String).is_in(scope_ids(ids).implode())))
            xb, nb, xc, nc = counts(rest, "_refused")
            return two_proportion_test(xb, nb, xc, nc)[0] if nb and nc else float("nan")

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
                    f"Refusal rate{seg_phrase(seg)} "
                    f"{fmt.moved(fmt.pct(xb / nb), fmt.pct(xc / nc), d > 0, f'{xb:,}/{nb:,}', f'{xc:,}/{nc:,}')}, "
                    f"{fmt.pp(d)} (95% CI {fmt.pp(lo)} to {fmt.pp(hi)}; "
                    f"{test} {fmt.pval(p)})."
                ),
                evidence=evidence_ids(cur_ref, ["timestamp", "trace_id"], descending=[True, False]),
                practical=abs(d) >= ctx.thr("refusal_rate"),
                dater=dater(ctx, rows, pl.col("_refused")),
                retest=retest,
            )
        )
    return out


def _stratum_tables(codes: np.ndarray, w: np.ndarray, y: np.ndarray):
    """Refusals and rows per stratum, per window: ``(xb, nb, xc, nc)`` arrays."""
    k = int(codes.max()) + 1 if codes.size else 0
    b, c = w == 0, w == 1
    nb = np.bincount(codes[b], minlength=k).astype(float)
    nc = np.bincount(codes[c], minlength=k).astype(float)
    xb = np.bincount(codes[b], weights=y[b], minlength=k)
    xc = np.bincount(codes[c], weights=y[c], minlength=k)
    return xb, nb, xc, nc


@dataclass
class CmhSplit:
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
        """Number of strata seen in both groups (the ones that inform the test)."""
        return int(self.both.sum())

    def evidence_rows(self, g: np.ndarray, y: np.ndarray, k: int = 20) -> np.ndarray:
        """Group-1 rows that carry the change: refused (or answered, for a fall) in strata pushing that way."""
        sign = 1.0 if self.kg.behaviour >= 0 else -1.0
        rows = np.flatnonzero(g & (y == (1.0 if sign > 0 else 0.0)) & (self.row_contrib * sign > 0))
        return rows[np.lexsort((rows, -self.row_contrib[rows] * sign))][:k]


def cmh_split(codes: np.ndarray, g: np.ndarray, y: np.ndarray, alpha: float) -> CmhSplit:
    """CMH test and Kitagawa split of outcome ``y`` between groups ``g`` (bool) over strata ``codes``."""
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
    return CmhSplit(p, kg, float(xb.sum() / nb.sum()), beh - z * kg.behaviour_se, beh + z * kg.behaviour_se, codes, both,
                contrib[codes], pooled)


def adjusted_binary(
    ctx: DetectorContext, kind: str, flag: str, codes_all: np.ndarray, base_mask: pl.Expr, name: str, strata_desc: str, tail: str
) -> list[Draft]:
    """CMH test + Kitagawa decomposition of a 0/1 outcome over strata, globally and per segment.

    For the refusal rate the segments are the model/family segments and the
    topics of :func:`_topic_refusal_segments`; a topic whose traffic sits in a
    single informative stratum is skipped (its test would repeat the raw one).
    """
    out = []
    keep = ctx.df.select((base_mask & pl.col(flag).is_not_null()).fill_null(False)).to_series()
    topical = kind == "refusal_rate_adjusted" and bool(ctx.topic_segments)
    cols = (*BASE, flag, *(["_topic"] if topical else []))

    def rows(cond: pl.Expr | None) -> pl.DataFrame:
        # a segment's rows; drafts select them again when a retest or the dating asks, rather than hold a copy
        x = ctx.df.select(cols).with_columns(pl.Series("_code", codes_all)).filter(keep)
        return x if cond is None else x.filter(cond)

    def arrays(sub: pl.DataFrame) -> tuple[np.ndarray, np.ndarray]:
        return sub.get_column("_w").to_numpy(), sub.get_column(flag).cast(pl.Float64).to_numpy()

    r = rows(None)
    segs = [("", None)]
    if kind == "refusal_rate_adjusted":
        segs += ctx.segments + ctx.topic_segments
    topic_names = {s for s, _ in ctx.topic_segments}
    for seg, cond in segs:
        sub = r if cond is None else r.filter(cond)
        if sub.height == 0:
            continue
        w, y = arrays(sub)
        if not (w == 0).any() or not (w == 1).any():
            continue
        res = cmh_split(sub.get_column("_code").to_numpy(), w == 1, y, ctx.cfg.alpha)
        if seg in topic_names and res.informative < 2:
            continue
        kg, beh, lo, hi, pb = res.kg, res.kg.behaviour, res.lo, res.hi, res.base_rate
        ev_rows = res.evidence_rows(w == 1, y)
        ev = tuple(str(t) for t in sub.get_column("trace_id").gather(ev_rows).to_list())
        unmatched = f", {fmt.pp(kg.unmatched)} from strata seen in one window only" if abs(kg.unmatched) >= 5e-4 else ""
        del sub, w, y

        def dsub(cond=cond) -> pl.DataFrame:
            sub = rows(cond)
            w, y = arrays(sub)
            res = cmh_split(sub.get_column("_code").to_numpy(), w == 1, y, ctx.cfg.alpha)
            return sub.with_columns(pl.Series("_res", y - res.pooled[res.codes])).filter(pl.Series(res.both[res.codes]))

        def retest(ids: frozenset[str], cond=cond) -> float:
            sub = rows(cond)
            w, y = arrays(sub)
            keep = ~((w == 1) & sub.get_column("trace_id").cast(pl.String).is_in(scope_ids(ids).implode()).to_numpy())
            if not (w[keep] == 0).any() or not (w[keep] == 1).any():
                return float("nan")
            return cmh_split(sub.get_column("_code").to_numpy()[keep], w[keep] == 1, y[keep], ctx.cfg.alpha).p

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
                    f"With prompt mix held fixed, the {name}{seg_phrase(seg)} moved {fmt.pp(beh)} "
                    f"(95% CI {fmt.pp(lo)} to {fmt.pp(hi)}; CMH {fmt.pval(res.p)}) of a raw {fmt.pp(kg.raw)} change "
                    f"({fmt.pp(kg.mix)} from prompt mix{unmatched}; strata: {strata_desc}){'.' if seg in topic_names else tail}"
                ),
                evidence=ev,
                practical=abs(beh) >= ctx.thr(kind),
                dater=dater(ctx, dsub, pl.col("_res")),
                retest=retest,
            )
        )
    return out


def _matched(ctx: DetectorContext) -> list[Draft]:
    """Identical prompts in both windows: paired refusal test and response-similarity test."""
    out: list[Draft] = []
    df = ctx.df.select(*BASE, "prompt_hash", "_refused", "_ok", "_row").filter(pl.col("prompt_hash").is_not_null())
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
            ev = evidence_ids(pairs.filter(~pl.col("rb") & pl.col("rc")))

            def retest(ids: frozenset[str], pairs=pairs) -> float:
                rest = pairs.filter(~pl.col("trace_id").cast(pl.String).is_in(scope_ids(ids).implode()))
                nb2 = int((rest.get_column("rb") & ~rest.get_column("rc")).sum())
                return mcnemar(nb2, int((~rest.get_column("rb") & rest.get_column("rc")).sum()))[0]

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
                    metric="refusal",
                    retest=retest,
                )
            )
    if "matched_prompt_similarity" in ctx.kinds:
        if ctx.response is None:
            ctx.notes.append("matched_prompt_similarity skipped: no response embeddings.")
        else:
            out.extend(_matched_similarity(ctx, m))
    return out


def _matched_similarity(ctx: DetectorContext, m: pl.DataFrame) -> list[Draft]:
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


# --------------------------------------------------------------------------- detectors


def detect_refusal_rate(ctx: DetectorContext) -> list[Draft]:
    """``refusal_rate``: two-proportion test of the raw refusal rate, globally, per model/family and per topic."""
    return _refusal_rate_drafts(ctx) if ctx.has_refusal else []


def detect_refusal_rate_adjusted(ctx: DetectorContext) -> list[Draft]:
    """``refusal_rate_adjusted``: CMH + Kitagawa over prompt strata (the refusal change with prompt mix held fixed)."""
    if not ctx.has_refusal:
        return []
    st = build_strata(ctx.df, ctx.prompt, ctx.topics, ctx.cfg)
    tail = (
        f"; {fmt.pct(st.coverage)} of current traffic had its prompt or a close neighbour in the baseline "
        f"({st.coverage_note}), and a shift towards risky prompts never seen before cannot be told apart "
        "from a model change."
    )
    return adjusted_binary(ctx, "refusal_rate_adjusted", "_refused", st.codes, pl.lit(True), "refusal rate", st.method, tail)


def detect_matched(ctx: DetectorContext) -> list[Draft]:
    """``matched_prompt_refusal`` / ``matched_prompt_similarity``: identical prompts sent in both windows."""
    return _matched(ctx)
