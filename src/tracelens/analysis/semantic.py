"""Embedding two-sample tests: ``prompt_semantic`` and ``response_semantic``.

Contract: :func:`semantic_drafts` takes the combined frame (``_w``, ``_ok``,
``trace_id``), the prompt / response :class:`EmbPair` (either may be None) and
the topic codes, subsamples at most ``cfg.semantic_max_per_window`` rows per
window and runs two tests of "same distribution" with no fixed threshold:

* a classifier two-sample test (cross-fitted logistic regression; p-value
  from a van Elteren rank test of held-out scores, valid by exchangeability);
* an MMD^2 permutation test (RBF kernel, median-heuristic bandwidth).

The two p-values are combined by Bonferroni (2 x min p), which is valid under
any dependence between them. For responses, the embedding is first
residualised on what the prompt explains (ridge regression on the prompt
embedding plus topic indicators, fitted on both windows pooled without
window labels) and both tests compare windows within prompt topics only
(stratified ranks, within-topic permutations), so a prompt-mix change alone
does not read as a model change.
"""

from __future__ import annotations

import numpy as np
import polars as pl

from tracelens.analysis import fmt
from tracelens.analysis.draft import Draft
from tracelens.analysis.stats import auc_se, bonferroni_min, classifier_two_sample_test, mmd_permutation_test, z_crit
from tracelens.analysis.strata import EmbPair

MIN_ROWS = 20  # per window, below which a two-sample test on embeddings is not attempted


def _sample(rows_b: np.ndarray, rows_c: np.ndarray, m: int, rng) -> np.ndarray:
    sb = rows_b if rows_b.size <= m else np.sort(rng.choice(rows_b, m, replace=False))
    sc = rows_c if rows_c.size <= m else np.sort(rng.choice(rows_c, m, replace=False))
    return np.concatenate([sb, sc])


def _residualise(y: np.ndarray, x: np.ndarray | None, topic: np.ndarray | None, ridge: float = 1.0) -> np.ndarray:
    """Residual of y after a pooled ridge fit on [x, one-hot(topic)] (label-free, so permutation tests stay exact)."""
    cols = []
    if x is not None:
        cols.append(x.astype(np.float64))
    if topic is not None:
        _, inv = np.unique(topic, return_inverse=True)
        cols.append(np.eye(int(inv.max()) + 1)[inv])
    if not cols:
        return y - y.mean(axis=0, keepdims=True)
    z = np.hstack(cols)
    z = np.hstack([z, np.ones((z.shape[0], 1))])
    a = z.T @ z + ridge * np.eye(z.shape[1])
    beta = np.linalg.solve(a, z.T @ y.astype(np.float64))
    return y - z @ beta


def _draft(kind: str, c2, mmd2: float, p_mmd: float, nb: int, nc: int, ev: tuple[str, ...], cfg, what: str) -> Draft:
    p = bonferroni_min(c2.p, p_mmd)
    eff = c2.auc - 0.5
    h = z_crit(cfg.alpha) * auc_se(c2.auc, nb, nc)
    return Draft(
        kind=kind,
        segment="",
        baseline_value=0.5,
        current_value=c2.auc,
        effect=eff,
        ci_low=eff - h,
        ci_high=eff + h,
        p_value=p,
        direction="changed",
        summary=(
            f"{what}: held-out classifier AUC {c2.auc:.3f} (C2ST {fmt.pval(c2.p)}), "
            f"MMD² {mmd2:.4f} (permutation {fmt.pval(p_mmd)}), combined by Bonferroni {fmt.pval(p)} "
            f"on {nb:,} + {nc:,} sampled traces."
        ),
        evidence=ev,
        practical=eff >= cfg.thresholds["prompt_semantic" if kind == "prompt_semantic" else "response_semantic"],
    )


def _evidence(df: pl.DataFrame, rows: np.ndarray, g: np.ndarray, scores: np.ndarray, k: int = 20) -> tuple[str, ...]:
    cur = np.flatnonzero(g)
    top = cur[np.lexsort((rows[cur], -scores[cur]))][:k]
    ids = df.get_column("trace_id").gather(rows[top]).to_list()
    return tuple(str(t) for t in ids)


def semantic_drafts(
    df: pl.DataFrame, prompt: EmbPair | None, response: EmbPair | None, topics: np.ndarray | None, cfg, kinds
) -> tuple[list[Draft], list[str]]:
    """Drafts for prompt_semantic / response_semantic, plus notes for what was skipped."""
    drafts: list[Draft] = []
    notes: list[str] = []
    w = df.get_column("_w").to_numpy()
    ok = df.get_column("_ok").to_numpy()
    rng = np.random.default_rng(cfg.seed + 7)
    m = cfg.semantic_max_per_window

    def pick(kind: str, usable: np.ndarray):
        rows = _sample(np.flatnonzero((w == 0) & usable), np.flatnonzero((w == 1) & usable), m, rng)
        g = w[rows] == 1
        if min(int(g.sum()), int((~g).sum())) < MIN_ROWS:
            notes.append(f"{kind} skipped: fewer than {MIN_ROWS} traces with vectors in a window.")
            return None, None
        return rows, g

    if "prompt_semantic" in kinds:
        rows, g = (None, None) if prompt is None else pick("prompt_semantic", prompt.valid)
        if prompt is None:
            notes.append("prompt_semantic skipped: no prompt embeddings.")
        elif rows is not None:
            x = prompt.take(rows)
            c2 = classifier_two_sample_test(x, g, None, rng=rng)
            mmd2, p_mmd = mmd_permutation_test(x, g, None, cfg.semantic_permutations, rng)
            ev = _evidence(df, rows, g, c2.scores)
            what = "Prompts differ between windows"
            drafts.append(_draft("prompt_semantic", c2, mmd2, p_mmd, int((~g).sum()), int(g.sum()), ev, cfg, what))
    if "response_semantic" in kinds:
        usable = ok if response is None else ok & response.valid & (prompt.valid if prompt is not None else True)
        rows, g = (None, None) if response is None else pick("response_semantic", usable)
        if response is None:
            notes.append("response_semantic skipped: no response embeddings.")
        elif rows is not None:
            y = response.take(rows).astype(np.float64)
            t = None if topics is None else topics[rows]
            xp = None if prompt is None else prompt.take(rows)
            r = _residualise(y, xp, t)
            strata = None
            if t is not None:
                _, strata = np.unique(t, return_inverse=True)
            c2 = classifier_two_sample_test(r, g, strata, rng=rng)
            mmd2, p_mmd = mmd_permutation_test(r, g, strata, cfg.semantic_permutations, rng)
            ev = _evidence(df, rows, g, c2.scores)
            how = []
            if xp is not None:
                how.append("after removing what the prompt explains")
            if t is not None:
                how.append("within prompt topics")
            what = "Responses differ between windows" + (" " + " and ".join(how) if how else "")
            if not how:
                notes.append("response_semantic is not adjusted for prompt mix (no prompt embeddings or clusters).")
            drafts.append(_draft("response_semantic", c2, mmd2, p_mmd, int((~g).sum()), int(g.sum()), ev, cfg, what))
    return drafts, notes
