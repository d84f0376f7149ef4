"""Traffic detectors: did what we send change? (``prompt_mix``, and the embedding two-sample tests).

Contract: :func:`detect_prompt_mix` compares topic shares between the windows
and leaves the per-topic shares for the cluster chart in
``ctx.cluster_rows``; :func:`detect_semantic` runs the classifier / MMD tests
of :mod:`tracelens.analysis.semantic` on prompt and response embeddings. Both
take a :class:`~tracelens.analysis.detectors.context.DetectorContext`, add
a note when they cannot run, and return drafts. Pure: no I/O.
"""

from __future__ import annotations

import numpy as np
import polars as pl

from tracelens.analysis import fmt
from tracelens.analysis.detectors.context import BASE, DetectorContext, evidence_ids, topic_label
from tracelens.analysis.draft import Draft
from tracelens.analysis.semantic import semantic_drafts
from tracelens.analysis.stats import chi2_table, newcombe_diff, total_variation, two_proportion_test


def _prompt_mix(ctx: DetectorContext) -> tuple[list[Draft], list[tuple[str, str, float, float]]]:
    t = ctx.topics.codes
    df = ctx.df.select(*BASE).with_columns(pl.Series("_t", t))
    if ctx.topics.source == "kmeans":
        # -1 marks rows without a prompt vector (e.g. outside an embedding sample): not a topic.
        df = df.filter(pl.col("_t") >= 0)
    elif ctx.prompt is not None and not ctx.prompt.valid.all():
        # Some prompts have no vector: the windows were sampled for embedding. The mix is then read from the
        # sample alone. Counting the rows outside it as one "cluster -1" would read the two windows' sampling
        # fractions as a mix shift; counting the repeats of a sampled prompt (they get its cluster) would
        # weigh repeated prompts more in the window sampled more thinly. Rows without a prompt stay in -1.
        outside = ~ctx.prompt.valid & ctx.df.get_column("_ask").is_not_null().to_numpy()
        if outside.any():
            df = df.filter(pl.Series(~outside))
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
        label = topic_label(ctx, c)
        name = f"cluster {c}" + (f" ('{fmt.clip(label, 50)}')" if label else "")
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
                    f"Prompt {name} {fmt.moved(fmt.pct(sb[i]), fmt.pct(sc[i]), d > 0, verbs=('grew', 'shrank'))} of traffic "
                    f"({fmt.pp(d)}; {test} {fmt.pval(pc)})."
                ),
                evidence=evidence_ids(cur.filter(pl.col("_t") == c)),
                practical=abs(d) >= ctx.thr("prompt_mix_cluster"),
            )
        )
        per.append((f"cluster={c}", label, float(sb[i]), float(sc[i])))
    top = sorted(range(len(codes)), key=lambda i: (-abs(sc[i] - sb[i]), codes[i]))[:3]
    tops = ", ".join(
        f"cluster {codes[i]}{' (' + fmt.clip(topic_label(ctx, codes[i]), 30) + ')' if topic_label(ctx, codes[i]) else ''} "
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
            evidence=evidence_ids(cur.filter(pl.col("_t") == codes[top[0]])),
            practical=tvd >= ctx.thr("prompt_mix"),
        )
    )
    return out, per


def detect_prompt_mix(ctx: DetectorContext) -> list[Draft]:
    """``prompt_mix``: chi-square over topic shares (global) and a two-proportion test per topic."""
    if ctx.topics.codes is None:
        ctx.notes.append("prompt_mix skipped: no cluster_id column and no prompt embeddings.")
        return []
    drafts, ctx.cluster_rows = _prompt_mix(ctx)
    return drafts


def detect_semantic(ctx: DetectorContext) -> list[Draft]:
    """``prompt_semantic`` / ``response_semantic``: held-out classifier and MMD tests on embeddings."""
    if not ctx.cfg.semantic:
        ctx.notes.append("Semantic tests skipped (config.semantic is False).")
        return []
    drafts, notes = semantic_drafts(ctx.df, ctx.prompt, ctx.response, ctx.topics.codes, ctx.cfg, ctx.kinds)
    ctx.notes.extend(notes)
    return drafts
