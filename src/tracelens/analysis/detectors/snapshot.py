"""The snapshot split: did the model change? (``snapshot_behaviour``, and ``response_length`` per new snapshot).

Contract: :func:`detect_snapshot_behaviour` takes the
:class:`~tracelens.analysis.detectors.context.DetectorContext` after the
deterministic detectors ran (it reads their drafts: the new snapshots to split
on, and configuration changes that share the new snapshot's period) and
returns drafts that compare the traffic each new snapshot served with the
traffic its predecessor(s) served, within prompt strata. Pure: no I/O.
"""

from __future__ import annotations

import math
from datetime import UTC, datetime

import numpy as np
import polars as pl

from tracelens.analysis import fmt
from tracelens.analysis.detectors.context import BASE, DetectorContext, evidence_ids, seg_phrase
from tracelens.analysis.detectors.refusal import cmh_split
from tracelens.analysis.draft import Draft
from tracelens.analysis.stats import min_attainable_p, stratified_rank_test, z_crit
from tracelens.analysis.strata import identity_strata

#: deterministic changes that, when they start after a rollover, share the new snapshot's period
_CONFOUNDERS = ("system_prompt", "tool_definitions", "sampling_params")


def split_strata(sub: pl.DataFrame, groups: str = "snapshots", one: str = "one snapshot") -> tuple[np.ndarray, int, str]:
    """Strata for an old-vs-new comparison on column ``_new``: identity strata between the groups, else app x topic.

    Identity strata are those of :func:`~tracelens.analysis.strata.identity_strata`
    with ``_new`` as the group (the same prompt or question sent to both; a
    prompt repeated on one side only stands alone). ``groups`` / ``one`` name
    the two sides in the description (snapshots here; the backend-fingerprint
    split reuses it).
    """
    ident = identity_strata(sub, "_new")
    rest = [pl.lit("t"), pl.col("app").fill_null("")]
    how = "app"
    if "_topic" in sub.columns:
        rest.append(pl.col("_topic").cast(pl.String).fill_null(""))
        how = "app x topic cluster"
    other = sub.select(pl.concat_str(rest, separator=":").rank("dense").cast(pl.Int64)).to_series().to_numpy()
    codes = np.where(ident.codes >= 0, ident.codes, ident.n + other)
    return codes, ident.n_exact + ident.n_ask, f"{ident.describe(groups, one)} + {how} for the rest"


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
        hits.append(f"{d.kind.replace('_', ' ')} change{seg_phrase(d.segment)} at {fmt.ts(d.first_seen)}")
    if not hits:
        return ""
    hits = sorted(set(hits))
    return (
        " Also in the new snapshot's period: " + "; ".join(hits[:3]) + (" ..." if len(hits) > 3 else "")
        + " -- this comparison cannot separate them from the snapshot."
    )


def _snapshot_behaviour(ctx: DetectorContext, snaps: list[Draft], drafts: list[Draft]) -> list[Draft]:
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
    cols = [*BASE, "model_returned", "app", "prompt_hash", "_ask", "_refused", "_ok", length_col]
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
            codes, _, strata_desc = split_strata(sub)
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
                                evidence=evidence_ids(lsub, [length_col, "trace_id"], descending=[rt.delta > 0, False]),
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
    res = cmh_split(codes, g, y, ctx.cfg.alpha)
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
        res = cmh_split(codes[m], gm, ym, ctx.cfg.alpha)
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


def detect_snapshot_behaviour(ctx: DetectorContext) -> list[Draft]:
    """``snapshot_behaviour``: the new snapshot's traffic against its predecessors', per new snapshot of a family."""
    return _snapshot_behaviour(ctx, ctx.snapshots(), ctx.drafts)
