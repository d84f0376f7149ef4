"""A step inside one pinned snapshot: ``changepoint`` (refusal rate, response length, latency).

Contract: :func:`detect_changepoint` takes the
:class:`~tracelens.analysis.detectors.context.DetectorContext` and looks only
at the current window. It splits the current traffic into segments that hold
the two obvious causes of a step fixed -- one returned snapshot
(``model_returned``) and one system-prompt version (``system_prompt_hash``) --
and, in each segment with at least :data:`MIN_N` traces, scans the
time-ordered traces for a single step in each metric:

* refusal (0/1, traces with a refusal label), output length (tokens, else
  characters) and latency (ms), the last two on ranks (a few huge values do not
  make a step);
* the values are residualised by app x topic-cluster means first, so a shift
  in the prompt mix during the window is not read as a step;
* the statistic is the maximum standardised CUSUM over splits that leave at
  least :func:`_trim` traces on each side; its p-value comes from a seeded
  permutation null that shuffles the residuals within strata (time order is
  what is tested; under no change every order is as likely);
* the located split is dated (``first_seen``) with a residual-bootstrap
  interval on the change time (in the summary), and the effect before vs after
  is the refusal-rate difference with prompt mix held fixed (Kitagawa
  behaviour part, CMH interval) or Cliff's delta within strata (van Elteren
  interval). That interval is conditional on the located split (it is wider
  in truth); the p-value is the scan's and accounts for the search.

Cost bound at large n: the permutation null costs ``n x permutations`` (at
ten million traces in a segment, hours). A segment metric with more than
:data:`SCAN_MAX` values is scanned on a seeded uniform random subsample of
:data:`SCAN_MAX` of its rows, kept in time order (``subsample_positions``);
the scan, its permutation p-value and the bootstrap interval are those of the
subsample, and the located split and its interval are mapped back to the
full segment's rows. The p-value stays valid: the subsample is drawn
independently of the values, so under "no change" (every within-stratum
order equally likely) the subsample's order is exchangeable within strata
too, and the permutation test on it is exact. It loses power only for steps
too small to show in ``SCAN_MAX`` traces, which are far below the practical
thresholds. The effect and its interval before/after the located split are
computed on every row of the segment. The finding's summary says when the
scan ran on a subsample, and of how many traces.

Every segment x metric is one test in the report's Benjamini-Hochberg family,
its scan p-value first Bonferroni-adjusted over the metrics scanned in that
segment (they share its traces and ask one question: did this segment step?).
A snapshot rollover or a system-prompt change is never a changepoint here
(each side of it is a different segment); those have their own kinds. Pure:
no I/O; seeded by ``DriftConfig.seed``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import polars as pl

from tracelens.analysis import fmt
from tracelens.analysis.detectors.context import DetectorContext, seg_phrase
from tracelens.analysis.detectors.refusal import cmh_split
from tracelens.analysis.draft import Draft, Scope
from tracelens.analysis.stats import stratified_rank_test, z_crit

MIN_N = 200  #: traces a snapshot x system-prompt segment needs in the current window to be scanned
N_PERM = 499  #: permutations of the scan's null (p-values down to 0.002)
N_PERM_MAX = 4999  #: permutations when the first N_PERM leave fewer than REFINE_BELOW exceedances
REFINE_BELOW = 10  #: below this many exceedances p is resolution-bound: refine it (p down to 0.0002)
N_BOOT = 200  #: bootstrap replicates for the change-time interval
_CHUNK = 64  #: permutations per vectorised block (bounds memory at n x 64 floats)
SCAN_MAX = 50_000  #: above this many values a segment metric is scanned on a random subsample of this size


def subsample_positions(n: int, m: int, rng) -> np.ndarray:
    """``m`` of the positions ``0..n-1`` drawn uniformly without replacement, sorted (all of them when n <= m)."""
    if n <= m:
        return np.arange(n)
    return np.sort(rng.choice(n, size=m, replace=False))


@dataclass(frozen=True)
class StepScan:
    """Result of :func:`step_scan`: the first index of the new regime, the statistic and its permutation p-value."""

    k: int
    stat: float
    p: float
    k_low: int  #: bootstrap interval on ``k``
    k_high: int


def _trim(n: int) -> int:
    """Fewest traces either side of a split: 5% of the segment, at least 20."""
    return max(20, n // 20)


def _residuals(y: np.ndarray, strata: np.ndarray | None) -> np.ndarray:
    if strata is None:
        return y - y.mean()
    _, s = np.unique(strata, return_inverse=True)
    mean = np.bincount(s, weights=y) / np.bincount(s)
    return y - mean[s]


def _cusum_max(r: np.ndarray, lo: int, hi: int) -> tuple[np.ndarray, np.ndarray]:
    """Max over splits k in [lo, hi] of the standardised CUSUM of mean-zero rows ``r`` (..., n); and its argmax."""
    n = r.shape[-1]
    s = np.cumsum(r, axis=-1)[..., lo - 1 : hi]
    k = np.arange(lo, hi + 1, dtype=float)
    stat = s * s / (k * (n - k) / n)
    return stat.max(axis=-1), stat.argmax(axis=-1) + lo


def _cusum_max_inplace(x: np.ndarray, lo: int, hi: int, want_k: bool = False):
    """:func:`_cusum_max` of the rows of ``x`` (m, n), overwriting ``x``: the same values without the
    four (m, n) temporaries, which at a million traces are gigabytes per block of permutations."""
    n = x.shape[-1]
    np.cumsum(x, axis=-1, out=x)
    s = x[..., lo - 1 : hi]
    k = np.arange(lo, hi + 1, dtype=float)
    np.multiply(s, s, out=s)
    np.divide(s, k * (n - k) / n, out=s)
    return s.max(axis=-1), (s.argmax(axis=-1) + lo if want_k else None)


def _groups(strata: np.ndarray | None, n: int) -> list[np.ndarray]:
    """Positions of each stratum (one group of all positions when ``strata`` is None)."""
    if strata is None:
        return [np.arange(n)]
    _, s = np.unique(strata, return_inverse=True)
    order = np.argsort(s, kind="stable")
    return np.split(order, np.cumsum(np.bincount(s))[:-1])


def _shuffle_within(r: np.ndarray, groups: list[np.ndarray], m: int, rng) -> np.ndarray:
    """``m`` copies of ``r`` with values shuffled among the positions of their stratum (rows = copies)."""
    out = np.empty((m, r.size))
    for idx in groups:  # a Fisher-Yates shuffle per row and stratum: O(n), no sort
        out[:, idx] = rng.permuted(np.broadcast_to(r[idx], (m, idx.size)), axis=1)
    return out


def step_scan(
    y, strata=None, rng=None, n_perm: int = N_PERM, n_boot: int = N_BOOT, n_perm_max: int = N_PERM_MAX
) -> StepScan | None:
    """Single-step scan of time-ordered ``y`` with a permutation p-value and a bootstrap interval on the step.

    ``y`` is in time order; ``strata`` (optional) are prompt-mix strata whose
    means are removed first and within which the null shuffles. ``n_perm``
    permutations first, continued to ``n_perm_max`` when fewer than
    :data:`REFINE_BELOW` of them reach the observed statistic. Returns None
    when ``y`` is too short to leave :func:`_trim` values on each side.
    """
    rng = rng if rng is not None else np.random.default_rng(0)
    y = np.asarray(y, dtype=float)
    n = y.size
    t = _trim(n)
    lo, hi = t, n - t
    if hi < lo:
        return None
    r = _residuals(y, strata)
    if not np.any(r):
        return StepScan(n // 2, 0.0, 1.0, lo, hi)
    obs, k = _cusum_max(r, lo, hi)
    obs, k = float(obs), int(k)
    exceed = 0
    groups = _groups(strata, n)

    def run(first: int, last: int) -> int:
        hits = 0
        for start in range(first, last, _CHUNK):
            m = min(_CHUNK, last - start)
            hits += int((_cusum_max_inplace(_shuffle_within(r, groups, m, rng), lo, hi)[0] >= obs * (1 - 1e-12)).sum())
        return hits

    exceed, done = run(0, n_perm), n_perm
    # a strong step leaves few exceedances and a p-value bound by the permutation count (0.002 at 499, and
    # ~0.006 after the per-segment adjustment), which the report's BH family can then drown: refine it
    if exceed < REFINE_BELOW and n_perm_max > n_perm:
        exceed, done = exceed + run(n_perm, n_perm_max), n_perm_max
    p = (1 + exceed) / (1 + done)
    # residual bootstrap around the fitted step: where would the scan put it again?
    step = np.where(np.arange(n) < k, r[:k].mean(), r[k:].mean())
    e = r - step
    ks = []
    for start in range(0, n_boot, _CHUNK):
        m = min(_CHUNK, n_boot - start)
        b = e[rng.integers(0, n, size=(m, n))]
        b += step
        b -= b.mean(axis=1, keepdims=True)
        ks.append(_cusum_max_inplace(b, lo, hi, want_k=True)[1])
    kb = np.concatenate(ks)
    return StepScan(k, obs, p, int(np.quantile(kb, 0.025, method="lower")), int(np.quantile(kb, 0.975, method="higher")))


def _segments(cur: pl.DataFrame) -> list[tuple[str, str, pl.DataFrame]]:
    """(snapshot, system-prompt hash, rows) of the current window with at least MIN_N traces, largest first."""
    g = cur.filter(pl.col("model_returned").is_not_null()).with_columns(pl.col("system_prompt_hash").fill_null(""))
    sizes = g.group_by("model_returned", "system_prompt_hash").agg(pl.len().alias("n"))
    sizes = sizes.filter(pl.col("n") >= MIN_N).sort(["n", "model_returned", "system_prompt_hash"], descending=[True, False, False])
    out = []
    for row in sizes.iter_rows(named=True):
        m, h = row["model_returned"], row["system_prompt_hash"]
        rows = g.filter((pl.col("model_returned") == m) & (pl.col("system_prompt_hash") == h)).sort("timestamp", "trace_id")
        out.append((m, h, rows))
    return out


def _metrics(df: pl.DataFrame) -> list[tuple[str, str, pl.Expr, pl.Expr]]:
    """(name, unit, value, filter) of the metrics these logs carry."""
    out = []
    if df.get_column("_refused").null_count() < df.height:
        out.append(("refusal", "", pl.col("_refused").cast(pl.Float64), pl.col("_refused").is_not_null()))
    length = "output_tokens" if df.get_column("output_tokens").null_count() < df.height else "_resp_len"
    unit = "tokens" if length == "output_tokens" else "characters"
    out.append(("response_length", unit, pl.col(length).cast(pl.Float64), pl.col("_ok")))
    out.append(("latency", "ms", pl.col("latency_ms").cast(pl.Float64), pl.col("_ok")))
    return out


def _draft(ctx: DetectorContext, seg: str, name: str, unit: str, s: pl.DataFrame, sc: StepScan, codes: np.ndarray,
           scanned: int | None = None) -> Draft | None:
    v = s.get_column("_v").to_numpy()
    after = np.arange(v.size) >= sc.k
    ts = s.get_column("timestamp")
    at, t_lo, t_hi = ts[sc.k], ts[sc.k_low], ts[sc.k_high]
    where = f"at {fmt.ts(at)} (95% interval {fmt.ts(t_lo)} to {fmt.ts(t_hi)}; {int((~after).sum()):,} traces before, {int(after.sum()):,} after)"
    if name == "refusal":
        res = cmh_split(codes, after, v, ctx.cfg.alpha)
        eff, lo, hi = res.kg.behaviour, res.lo, res.hi
        base, curv = res.base_rate, res.base_rate + eff
        xb, nb, xa, na = int(v[~after].sum()), int((~after).sum()), int(v[after].sum()), int(after.sum())
        moved = (
            f"refused {fmt.pct(xa / na)} ({xa:,}/{na:,}) after against {fmt.pct(xb / nb)} ({xb:,}/{nb:,}) before; "
            f"with prompt mix held fixed {fmt.pp(eff)} (95% CI {fmt.pp(lo)} to {fmt.pp(hi)})"
        )
        practical = abs(eff) >= ctx.thr("changepoint_refusal")
        flag = v > 0.5 if eff > 0 else v < 0.5
    else:
        rt = stratified_rank_test(v, after, codes)
        if not math.isfinite(rt.delta):
            return None
        h = z_crit(ctx.cfg.alpha) * rt.delta_se
        eff, lo, hi = rt.delta, max(-1.0, rt.delta - h), min(1.0, rt.delta + h)
        base, curv = float(np.median(v[~after])), float(np.median(v[after]))
        label = "output length" if name == "response_length" else "latency"
        moved = (
            f"median {label} {fmt.num(curv)} {unit} after against {fmt.num(base)} before; Cliff's delta within "
            f"prompt strata {eff:+.2f} (95% CI {lo:+.2f} to {hi:+.2f})"
        )
        practical = abs(eff) >= ctx.thr("changepoint")
        flag = v > base if eff > 0 else v < base
    # evidence: the first traces after the change that show the new regime, then the last ones before it
    idx = np.flatnonzero(after & flag)[:15].tolist() + np.flatnonzero(~after)[-5:].tolist()
    return Draft(
        kind="changepoint",
        segment=seg,
        baseline_value=base,
        current_value=curv,
        effect=eff,
        ci_low=lo,
        ci_high=hi,
        p_value=sc.p,
        summary=(
            f"{name.replace('_', ' ').capitalize()} stepped inside the current window{seg_phrase(seg)} "
            f"{where}: {moved}; scan permutation {fmt.pval(sc.p)} before adjusting for the segment's metrics"
            + (f" (scan on a random subsample of {scanned:,} of the {v.size:,} traces, in time order)."
               if scanned else ".")
        ),
        first_seen=at,
        evidence=tuple(str(x) for x in s.get_column("trace_id").gather(idx).to_list()),
        practical=practical,
    )


def detect_changepoint(ctx: DetectorContext) -> list[Draft]:
    """``changepoint``: one step in refusal, output length or latency inside one snapshot and system prompt, current window."""
    df = ctx.df
    cols = ["trace_id", "timestamp", "_w", "model_returned", "system_prompt_hash", "app", "_refused", "_ok",
            "output_tokens", "_resp_len", "latency_ms"] + (["_topic"] if "_topic" in df.columns else [])  # fmt: skip
    cur = df.select(cols).filter((pl.col("_w") == 1) & pl.col("timestamp").is_not_null())
    if cur.height < MIN_N:
        return []
    segs = _segments(cur)
    per_snapshot: dict[str, int] = {}
    for m, _, _ in segs:
        per_snapshot[m] = per_snapshot.get(m, 0) + 1
    rng = np.random.default_rng(ctx.cfg.seed)
    strata_cols = [pl.col("app").fill_null(""), *([pl.col("_topic").cast(pl.String).fill_null("")] if "_topic" in cols else [])]
    out: list[Draft] = []
    for m, h, rows in segs:
        seg = f"snapshot={m}" + (f" system_prompt={h[:8]}" if per_snapshot[m] > 1 and h else "")
        seg_drafts: list[Draft] = []
        seg_ids: Scope | None = None
        for name, unit, value, keep in _metrics(rows):
            s = rows.filter(keep.fill_null(False)).with_columns(value.alias("_v")).filter(pl.col("_v").is_finite())
            if s.height < MIN_N:
                continue
            v = s.get_column("_v").to_numpy()
            codes = s.select(pl.concat_str(strata_cols, separator=":").rank("dense")).to_series().to_numpy()
            y = v if name == "refusal" else s.get_column("_v").rank("average").to_numpy().astype(float)
            # above SCAN_MAX values the scan runs on a uniform subsample in time order (module docstring)
            pos = subsample_positions(y.size, SCAN_MAX, rng)
            sub = pos.size < y.size
            sc = step_scan(y[pos], codes[pos], rng) if sub else step_scan(y, codes, rng)
            if sc is None:
                continue
            if sub:
                sc = StepScan(int(pos[sc.k]), sc.stat, sc.p, int(pos[sc.k_low]), int(pos[sc.k_high]))
            d = _draft(ctx, f"{seg} metric={name}", name, unit, s, sc, codes, scanned=pos.size if sub else None)
            if d is not None:
                if seg_ids is None or s.height != rows.height:
                    ids = Scope(s.get_column("trace_id"))
                    if s.height == rows.height:
                        seg_ids = ids
                else:
                    ids = seg_ids  # the same rows as the segment's: one set, not one per metric
                d.metric, d.scope = name, ids
                seg_drafts.append(d)
        # one question per segment ("did it step?") asked of several metrics: Bonferroni within, BH across the report
        for d in seg_drafts:
            d.p_value = min(1.0, d.p_value * len(seg_drafts))
        out += seg_drafts
    return out
