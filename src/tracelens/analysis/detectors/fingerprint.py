"""Backend fingerprint detector: a serving configuration that is new under the same model id (``backend_fingerprint``).

Contract: :func:`detect_backend_fingerprint` takes a
:class:`~tracelens.analysis.detectors.context.DetectorContext` and returns one
deterministic draft per (returned model, fingerprint) pair whose fingerprint
serves current traffic and was never seen with that model before the current
window (``ctx.ref``: baseline plus earlier history). The fingerprint is
OpenAI's ``system_fingerprint`` (the importers store it as
``attributes.system_fingerprint``; the engine extracts it into ``_fp``), the
provider's documented signal that the backend configuration changed while the
model id stayed the same.

The fact is certain (``changed=True``, ``p_value`` None): first seen, share of
the model's current traffic, evidence = the first traces it served (or, when
its behaviour differs, the traces that carry the difference: refusals in
strata that refuse more, the longest or shortest answers). The draft
also compares the traffic the new fingerprint served with the traffic the
model's already-known fingerprints served (either window), within the same
prompt strata as the snapshot split: refusal rate by CMH + Kitagawa, output
length by van Elteren. Those p-values are Bonferroni-corrected over every
comparison this detector makes in one report (two per new fingerprint), so
that a new fingerprint with unchanged behaviour stays at the configured
deterministic severity (``info`` by default: a fingerprint rotation alone is
routine) in at least 95% of cases; a significant behaviour difference raises
it to ``warn``, and to ``alert`` when the difference is also beyond the
practical threshold (``backend_fingerprint`` for the refusal rate in
proportion points, ``backend_fingerprint_length`` for Cliff's delta).

A model that had no fingerprint logged before the current window is skipped:
its first fingerprint says that logging started, not that the backend changed
(a model seen for the first time is a ``model_snapshot`` finding). Pure: no I/O.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import polars as pl

from tracelens.analysis import fmt
from tracelens.analysis.detectors.context import BASE, DetectorContext, evidence_ids
from tracelens.analysis.detectors.refusal import cmh_split
from tracelens.analysis.detectors.snapshot import split_strata
from tracelens.analysis.draft import Draft
from tracelens.analysis.stats import stratified_rank_test

KIND = "backend_fingerprint"
_SEVERITY_ORDER = ("info", "warn", "alert")


@dataclass
class _Test:
    """One behaviour comparison between the new fingerprint's traffic and the known fingerprints'."""

    what: str  # "refusal" or "length"
    p: float
    effect: float
    practical: bool
    text: str
    evidence: tuple[str, ...]  # the new fingerprint's traces that carry the difference


def _raise(base: str, to: str) -> str:
    """The more severe of two severities."""
    return max(base, to, key=lambda s: _SEVERITY_ORDER.index(s) if s in _SEVERITY_ORDER else 0)


def new_fingerprints(det: pl.DataFrame, ref: pl.DataFrame) -> list[tuple[str, str, list[str]]]:
    """``(model, new fingerprint, fingerprints seen before)`` for every fingerprint new to its model in the current window.

    The model is the returned model id (the requested one where the response
    did not name it); models without any fingerprint before are left out.
    """
    if "_fp" not in det.columns or det.get_column("_fp").null_count() == det.height:
        return []
    model = pl.coalesce("model_returned", "model_requested").alias("_m")
    seen = ref.select(model, "_fp").drop_nulls().unique()
    known: dict[str, list[str]] = {}
    for m, fp in seen.sort("_m", "_fp").iter_rows():
        known.setdefault(m, []).append(fp)
    cur = det.filter(pl.col("_w") == 1).select(model, "_fp").drop_nulls().unique().sort("_m", "_fp")
    return [(m, fp, known[m]) for m, fp in cur.iter_rows() if m in known and fp not in known[m]]


def _refusal_test(ctx: DetectorContext, sub: pl.DataFrame, g_all: np.ndarray, codes: np.ndarray) -> _Test | None:
    keep = sub.get_column("_refused").is_not_null().to_numpy()
    g = g_all[keep]
    if min(int(g.sum()), int((~g).sum())) < ctx.cfg.min_segment_n:
        return None
    rr = sub.filter(pl.Series(keep))
    y = rr.get_column("_refused").cast(pl.Float64).to_numpy()
    res = cmh_split(codes[keep], g, y, ctx.cfg.alpha)
    ev = tuple(str(t) for t in rr.get_column("trace_id").gather(res.evidence_rows(g, y)).to_list())
    beh = res.kg.behaviour
    xo, no, xn, nn = int(y[~g].sum()), int((~g).sum()), int(y[g].sum()), int(g.sum())
    text = (
        f"refusals {fmt.pct(xn / nn)} ({xn:,}/{nn:,}) against {fmt.pct(xo / no)} ({xo:,}/{no:,}), "
        f"{fmt.pp(beh)} at the same prompt mix (CMH {fmt.pval(res.p)})"
    )
    return _Test("refusal", res.p, beh, abs(beh) >= ctx.thr(KIND), text, ev)


def _length_test(ctx: DetectorContext, sub: pl.DataFrame, g_all: np.ndarray, codes: np.ndarray, col: str) -> _Test | None:
    v = sub.get_column(col).cast(pl.Float64).to_numpy()
    ok = sub.get_column("_ok").to_numpy() & np.isfinite(v)
    g, v, cv = g_all[ok], v[ok], codes[ok]
    if min(int(g.sum()), int((~g).sum())) < ctx.cfg.min_segment_n:
        return None
    rt = stratified_rank_test(v, g, cv)
    if not math.isfinite(rt.delta):
        return None
    mo, mn = float(np.median(v[~g])), float(np.median(v[g]))
    unit = "tokens" if col == "output_tokens" else "characters"
    text = (
        f"median output {fmt.num(mn)} {unit} against {fmt.num(mo)}, Cliff's delta {rt.delta:+.2f} "
        f"within prompt strata (van Elteren {fmt.pval(rt.p)})"
    )
    lsub = sub.filter(pl.Series(ok)).filter(pl.col("_new"))
    ev = evidence_ids(lsub, [col, "trace_id"], descending=[rt.delta > 0, False])
    return _Test("length", rt.p, rt.delta, abs(rt.delta) >= ctx.thr("backend_fingerprint_length"), text, ev)


def detect_backend_fingerprint(ctx: DetectorContext) -> list[Draft]:
    """``backend_fingerprint``: fingerprints new to their model, with the behaviour of the traffic they served."""
    found = new_fingerprints(ctx.det, ctx.ref)
    if not found:
        return []
    df = ctx.df
    length_col = "output_tokens" if df.get_column("output_tokens").null_count() < df.height else "_resp_len"
    cols = [*BASE, "model_returned", "model_requested", "app", "prompt_hash", "_ask", "_fp", "_refused", "_ok", length_col]
    if "_topic" in df.columns:
        cols.append("_topic")
    frame = df.select(list(dict.fromkeys(cols))).with_columns(pl.coalesce("model_returned", "model_requested").alias("_m"))
    news_by_model: dict[str, set[str]] = {}
    for m, fp, _ in found:
        news_by_model.setdefault(m, set()).add(fp)
    planned = []
    for m, fp, known in found:
        # the new fingerprint's rows against the rows of fingerprints known before; other new ones stay out
        sub = frame.filter((pl.col("_m") == m) & ((pl.col("_fp") == fp) | pl.col("_fp").is_in(known)))
        sub = sub.with_columns((pl.col("_fp") == fp).alias("_new"))
        g = sub.get_column("_new").to_numpy()
        codes, _, strata_desc = split_strata(sub, "fingerprints", "one fingerprint")
        tests = [t for t in (_refusal_test(ctx, sub, g, codes), _length_test(ctx, sub, g, codes, length_col)) if t]
        planned.append((m, fp, known, sub, tests, strata_desc))
    n_tests = sum(len(p[4]) for p in planned)
    base_sev = ctx.cfg.deterministic_severity.get(KIND, "info")
    out: list[Draft] = []
    for m, fp, known, sub, tests, strata_desc in planned:
        cur_m = sub.filter(pl.col("_w") == 1)
        n_model = int(frame.filter((pl.col("_m") == m) & (pl.col("_w") == 1)).height)
        cur_new = cur_m.filter(pl.col("_new"))
        share = cur_new.height / n_model if n_model else 0.0
        first = cur_new.get_column("timestamp").min()
        sig = [t for t in tests if min(1.0, t.p * n_tests) < ctx.cfg.alpha]
        severity = base_sev
        if sig:
            severity = _raise(base_sev, "alert" if any(t.practical for t in sig) else "warn")
        known_txt = ", ".join(known[:3]) + (" ..." if len(known) > 3 else "")
        if tests:
            verdict = (
                "behaviour differs: " + "; ".join(t.text for t in sig)
                if sig
                else "no significant behaviour difference: " + "; ".join(t.text for t in tests)
            )
            beh = (
                f" Against the traffic of {known_txt} (strata: {strata_desc}; Bonferroni over {n_tests} "
                f"comparison{'s' if n_tests != 1 else ''}), {verdict}."
            )
        else:
            beh = f" Too little traffic on one side (under {ctx.cfg.min_segment_n} traces) to compare behaviour."
        out.append(
            Draft(
                kind=KIND,
                segment=f"model={m} fingerprint={fp}",
                baseline_value=known_txt,
                current_value=fp,
                effect=share,
                direction="changed",
                summary=(
                    f"Backend fingerprint {fp} is new for {m}: first seen {fmt.ts(first)}, it served "
                    f"{fmt.pct(share)} of the model's current traffic ({cur_new.height:,}/{n_model:,}).{beh}"
                ),
                first_seen=first,
                # the traces that carry the most significant difference, else the first it served
                evidence=min(sig, key=lambda t: t.p).evidence if sig else evidence_ids(cur_new),
                changed=True,
                severity=severity,
            )
        )
    return out
