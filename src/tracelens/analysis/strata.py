"""Prompt strata and topic clusters shared by the drift tests.

Contract:

* :class:`EmbPair` wraps the (baseline, current) embedding arrays without
  concatenating them (at 1M traces per window a concatenated float32 copy
  would cost gigabytes); rows are addressed by a global index
  ``0..n_b + n_c - 1`` (baseline first). Any float dtype is accepted
  (float16 storage works); computations use float32 chunks. Either array may
  also be a :class:`RowVectors`: an n x d matrix of which only some rows hold
  a vector (an embedding sample of a large window), stored compactly; the
  other rows are missing, exactly as NaN rows of a full array are.
* :func:`build_topics` gives every trace a coarse topic code (for prompt-mix,
  stratified rank tests and response tests): ``cluster_id`` when the frames
  carry it, else KMeans on the prompt embeddings, else none. A KMeans topic
  is labelled with its most central prompt: from ``prompt_text``, else (frames
  read without their text) from ``texts``, the prompts of the rows with a
  vector by ``trace_id``.
* :func:`identity_strata` groups traces by what was asked between two groups
  (windows, or old/new snapshot): the exact prompt (``prompt_hash``) where it
  occurs in both, else the ask (``_ask``: app + last user turn) where it
  occurs in both, and a prompt repeated within one group only as its own
  stratum.
* :func:`build_strata` gives every trace a fine stratum for the
  prompt-mix-adjusted refusal test: its identity stratum, else a fine KMeans
  cluster (k ~ sqrt(n), capped) fitted on the remaining prompts of both
  windows together, else ``cluster_id``, else a single stratum.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import polars as pl
from scipy import sparse

_CHUNK = 65536


def _finite_rows(x) -> np.ndarray:
    # A missing vector is a row of NaN (how the embedding pipeline marks traces outside its sample), so
    # the first component decides; a full scan of a million float16 rows costs seconds. Rows with a stray
    # NaN further in are zero-filled by take() rather than allowed to poison sklearn.
    if x.shape[0] == 0 or x.shape[1] == 0:
        return np.zeros(x.shape[0], dtype=bool)
    if isinstance(x, RowVectors):
        return x.finite_rows()
    return np.isfinite(x[:, 0])


class RowVectors:
    """An ``n`` x d matrix of which only ``rows`` hold vectors: the embeddings of a sample of a window.

    ``rows``: strictly increasing row indices (int), ``vectors``: one row per index (any float dtype).
    The other rows are missing, as the NaN rows of a full array are; a full float32 array of a
    million-trace window with a 20,000-trace sample would be 1.5 GB of NaN.
    """

    ndim = 2

    def __init__(self, n: int, rows, vectors: np.ndarray):
        self.rows = np.asarray(rows, dtype=np.int64)
        self.vectors = np.asarray(vectors)
        if self.vectors.ndim != 2 or self.vectors.shape[0] != self.rows.size:
            raise ValueError("RowVectors needs one vector per row index")
        if self.rows.size and (self.rows[0] < 0 or self.rows[-1] >= n or np.any(np.diff(self.rows) <= 0)):
            raise ValueError("RowVectors row indices must be increasing and within 0..n-1")
        self.shape = (int(n), self.vectors.shape[1])

    def __len__(self) -> int:
        return self.shape[0]

    def finite_rows(self) -> np.ndarray:
        """Boolean mask of the rows that hold a vector (first component finite, as for a full array)."""
        out = np.zeros(self.shape[0], dtype=bool)
        if self.shape[1]:
            out[self.rows] = np.isfinite(self.vectors[:, 0])
        return out

    def gather(self, idx: np.ndarray, out: np.ndarray) -> None:
        """``out[i] = self[idx[i]]`` for local row indices ``idx``; rows without a vector get NaN."""
        pos = np.searchsorted(self.rows, idx)
        pos_c = np.minimum(pos, max(self.rows.size - 1, 0))
        hit = (pos < self.rows.size) & (self.rows[pos_c] == idx) if self.rows.size else np.zeros(idx.size, bool)
        out[hit] = self.vectors[pos_c[hit]]
        out[~hit] = np.nan


class EmbPair:
    """Row-aligned embeddings of the two windows, addressed by a global row index."""

    def __init__(self, b: np.ndarray | RowVectors, c: np.ndarray | RowVectors):
        if b.ndim != 2 or c.ndim != 2 or b.shape[1] != c.shape[1]:
            raise ValueError("embeddings must be 2-D arrays with the same dimension")
        self.b, self.c = b, c
        self.nb, self.nc = b.shape[0], c.shape[0]
        self.dim = b.shape[1]
        # Rows without a vector (NaN first component, e.g. traces outside an embedding sample) are missing.
        self.valid = np.concatenate([_finite_rows(b), _finite_rows(c)])
        self.n_valid = int(self.valid.sum())

    @property
    def n(self) -> int:
        """Rows of both windows together (``nb + nc``), valid or not."""
        return self.nb + self.nc

    def take(self, idx) -> np.ndarray:
        """Rows ``idx`` (global indices) as float32, in the order given."""
        idx = np.asarray(idx, dtype=np.int64)
        out = np.empty((idx.size, self.dim), dtype=np.float32)
        inb = idx < self.nb
        for sel, m, local in ((inb, self.b, idx), (~inb, self.c, idx - self.nb)):
            if not sel.any():
                continue
            if isinstance(m, RowVectors):
                part = np.empty((int(sel.sum()), self.dim), dtype=np.float32)
                m.gather(local[sel], part)
                out[sel] = part
            else:
                out[sel] = m[local[sel]]
        if not np.isfinite(out.sum()):
            np.nan_to_num(out, copy=False, nan=0.0, posinf=0.0, neginf=0.0)
        return out


def fit_centres(x: np.ndarray, k: int, seed: int, max_iter: int = 12) -> np.ndarray:
    """KMeans centres: k-means++ seeding then Lloyd iterations (numpy; k is lowered to the sample size).

    A small numpy implementation rather than sklearn's: on the few-thousand-row
    samples the calibration suite runs hundreds of times, sklearn's threaded
    Lloyd loop costs ~100x more than the arithmetic.
    """
    x = np.ascontiguousarray(x, dtype=np.float32)
    n = x.shape[0]
    k = max(1, min(k, n))
    if k == 1:
        return x.mean(axis=0, keepdims=True)
    rng = np.random.default_rng(seed)
    xn = np.einsum("ij,ij->i", x, x)
    idx = [int(rng.integers(n))]
    d2 = np.maximum(xn - 2.0 * (x @ x[idx[0]]) + xn[idx[0]], 0.0)
    for _ in range(1, k):
        tot = float(d2.sum())
        nxt = int(rng.integers(n)) if tot <= 0 else int(np.searchsorted(np.cumsum(d2), rng.random() * tot))
        nxt = min(nxt, n - 1)
        idx.append(nxt)
        d2 = np.minimum(d2, np.maximum(xn - 2.0 * (x @ x[nxt]) + xn[nxt], 0.0))
    c = x[idx].copy()
    labels = np.full(n, -1)
    for _ in range(max_iter):
        new = np.argmin(np.einsum("ij,ij->i", c, c)[None, :] - 2.0 * (x @ c.T), axis=1)
        if np.array_equal(new, labels):
            break
        labels = new
        # centre update as a one-hot product: O(n d) instead of sorting the rows each iteration; dense for the
        # small fits (scipy's sparse constructors cost more than the arithmetic there), sparse for large ones
        if k * n <= 2_000_000:
            onehot = np.zeros((k, n), dtype=np.float32)
            onehot[labels, np.arange(n)] = 1.0
            cnt = onehot.sum(axis=1)
            sums = onehot @ x
        else:
            onehot = sparse.csr_matrix((np.ones(n, dtype=np.float32), (labels, np.arange(n))), shape=(k, n))
            cnt = np.asarray(onehot.sum(axis=1)).ravel()
            sums = np.asarray(onehot @ x)
        keep = cnt > 0
        c[keep] = sums[keep] / cnt[keep, None]
    return c


def assign(emb: EmbPair, idx: np.ndarray, centres: np.ndarray) -> np.ndarray:
    """Nearest centre (squared Euclidean) for rows ``idx``, in chunks to bound memory."""
    out = np.empty(idx.size, dtype=np.int64)
    cn = np.einsum("ij,ij->i", centres, centres)
    for s in range(0, idx.size, _CHUNK):
        x = emb.take(idx[s : s + _CHUNK])
        out[s : s + _CHUNK] = np.argmin(cn[None, :] - 2.0 * (x @ centres.T), axis=1)
    return out


@dataclass
class Topics:
    """Coarse topic per trace (global row order) and a label per topic code."""

    codes: np.ndarray | None  # int64 per row, -1 = unclustered; None when unavailable
    labels: dict[int, str]
    source: str  # "cluster_id", "kmeans", or "none"


def build_topics(df: pl.DataFrame, emb: EmbPair | None, cluster_labels, k: int, seed: int, fit_sample: int,
                 texts: pl.DataFrame | None = None) -> Topics:
    """Topic codes from ``cluster_id`` (preferred) or KMeans on prompt embeddings.

    ``texts``: ``trace_id``, ``prompt_text`` of the rows with a prompt vector, for the labels where ``df``
    holds no prompt text (only rows with a vector are clustered, so only theirs can label a topic).
    """
    labels = {int(k_): str(v) for k_, v in (cluster_labels or {}).items()}
    cid = df.get_column("cluster_id")
    if cid.null_count() < df.height:
        codes = cid.fill_null(-1).cast(pl.Int64).to_numpy()
        return Topics(codes, labels, "cluster_id")
    if emb is None or emb.n_valid < 4:
        return Topics(None, labels, "none")
    rng = np.random.default_rng(seed)
    n = emb.n
    ok = np.flatnonzero(emb.valid)
    sample = ok if ok.size <= fit_sample else np.sort(rng.choice(ok, size=fit_sample, replace=False))
    centres = fit_centres(emb.take(sample), min(k, max(2, int(math.sqrt(ok.size / 2)))), seed)
    codes = np.full(n, -1, dtype=np.int64)  # -1: no embedding, unclustered
    codes[ok] = assign(emb, ok, centres)
    # Label each automatic topic with its most central prompt so a human can read it.
    best: dict[int, int] = {}
    for c in range(centres.shape[0]):
        members = np.flatnonzero(codes[sample] == c)
        if members.size == 0:
            continue
        rows = sample[members]
        x = emb.take(rows)
        best[c] = int(rows[np.argmax(x @ centres[c])])
    prompts = df.get_column("prompt_text") if "prompt_text" in df.columns else None
    found = {r: prompts[r] for r in best.values()} if prompts is not None else {}
    missing = [r for r in best.values() if found.get(r) is None]
    if missing and texts is not None and texts.height:
        # a frame read without its text: the label rows' prompts are looked up by trace id
        ids = df.get_column("trace_id").gather(missing)
        by_id = dict(texts.filter(pl.col("trace_id").is_in(ids.implode())).select("trace_id", "prompt_text").iter_rows())
        found.update({r: by_id.get(t) for r, t in zip(missing, ids.to_list(), strict=True)})
    auto: dict[int, str] = {}
    for c, row in best.items():
        text = " ".join(str(found.get(row) or "").split())
        auto[c] = (text[:57] + "...") if len(text) > 60 else text
    return Topics(codes, auto, "kmeans")


def _fine_clusters(emb: EmbPair, rows: np.ndarray, parent: np.ndarray | None, cfg) -> tuple[np.ndarray, str]:
    """Fine KMeans clusters (about sqrt(n) in all, capped), fitted on both windows together, nested in parents.

    Two levels keep the cost of assigning millions of rows low: each row is
    compared with the centres of its own parent only. Parents are the topic
    clusters when the frames carry ``cluster_id``, else a coarse KMeans (16).
    """
    rng = np.random.default_rng(cfg.seed + 1)
    n = rows.size
    k_total = int(min(cfg.strata_max_clusters, max(2, round(math.sqrt(n)))))
    how = "prompt-embedding clusters within topic clusters"
    if parent is None:
        fit = rows if n <= cfg.strata_fit_sample else np.sort(rng.choice(rows, cfg.strata_fit_sample, replace=False))
        coarse = fit_centres(emb.take(fit), min(16, k_total), cfg.seed)
        parent = assign(emb, rows, coarse)
        how = "prompt-embedding clusters"
    _, parent = np.unique(parent, return_inverse=True)
    out = np.empty(n, dtype=np.int64)
    off = 0
    order = np.argsort(parent, kind="stable")
    bounds = np.flatnonzero(np.diff(parent[order])) + 1
    for grp in np.split(order, bounds):
        k = max(1, round(k_total * grp.size / n))
        members = rows[grp]
        cap = max(k * 50, 1000)
        fit = members if members.size <= cap else np.sort(rng.choice(members, cap, replace=False))
        centres = fit_centres(emb.take(fit), k, cfg.seed)
        out[grp] = off + (assign(emb, members, centres) if centres.shape[0] > 1 else 0)
        off += centres.shape[0]
    _, out = np.unique(out, return_inverse=True)
    return out, how


@dataclass
class Strata:
    """Fine strata for the adjusted refusal test (global row order)."""

    codes: np.ndarray
    method: str  # description for the summary
    n_prompt_strata: int
    n_cluster_strata: int
    exact_coverage: float  # share of current traffic whose exact prompt occurs in the baseline
    coverage: float  # exact or close-neighbour coverage (see build_strata)
    coverage_note: str


@dataclass
class Identity:
    """Strata by what was asked (see :func:`identity_strata`); ``codes`` is -1 where no identity stratum applies."""

    codes: np.ndarray
    matched: np.ndarray  # bool per row: in a stratum seen in both groups (tiers 1 and 2)
    n_exact: int
    n_ask: int
    n_solo: int

    @property
    def n(self) -> int:
        """The counts of all three tiers summed: exact prompt, same ask, repeated within one group only."""
        return self.n_exact + self.n_ask + self.n_solo

    def describe(self, groups: str, one: str) -> str:
        """'12 exact prompts seen in both windows + 3 user prompts ... + 5 prompts repeated in one window only'."""
        out = f"{self.n_exact:,} exact prompts seen in both {groups}"
        if self.n_ask:
            out += f" + {self.n_ask:,} user prompts seen in both under a different full prompt"
        if self.n_solo:
            out += f" + {self.n_solo:,} prompts repeated in {one} only (own strata)"
        return out


def identity_strata(df: pl.DataFrame, group: str) -> Identity:
    """Strata of traces by what was asked, between the two groups (0/1) of column ``group``.

    1. the exact prompt (``prompt_hash``) where it occurs in both groups;
    2. for the rest, the ask (``_ask``: app + last user turn, when the frame
       has it) where it occurs in both groups -- the same question under a
       new system prompt or history still matches;
    3. an ask (or prompt) repeated within one group only is its own stratum:
       it is known new (or vanished) traffic and carries no information,
       rather than lending its rate to a cluster of comparable prompts
       (otherwise a surge of a few recurring risky prompts first seen this
       week reads as behaviour).

    Strata depend on which prompts were sent where, never on outcomes, so the
    tests over them keep their null distribution.
    """
    ask = pl.col("_ask").cast(pl.String) if "_ask" in df.columns else pl.lit(None, dtype=pl.String)
    f = df.select(pl.col("prompt_hash").alias("ph"), ask.alias("ask"), pl.col(group).cast(pl.Int8).alias("g"))

    def in_both(frame: pl.DataFrame, col: str) -> pl.Series:
        return (
            frame.lazy()
            .filter(pl.col(col).is_not_null())
            .group_by(col)
            .agg(pl.col("g").n_unique().alias("k"))
            .filter(pl.col("k") == 2)
            .select(col)
            .collect()
            .get_column(col)
        )

    s1 = in_both(f, "ph")
    t1 = f.select(pl.col("ph").is_in(s1.implode()).fill_null(False)).to_series()
    s2 = in_both(f.filter(~t1), "ask")
    t2 = f.select(pl.col("ask").is_in(s2.implode()).fill_null(False)).to_series() & ~t1
    key = pl.coalesce("ask", "ph")
    rest = f.filter(~t1 & ~t2)
    s3 = (
        rest.lazy()
        .select(key.alias("k"))
        .drop_nulls()
        .group_by("k")
        .agg(pl.len().alias("n"))
        .filter(pl.col("n") >= 2)
        .select("k")
        .collect()
        .get_column("k")
    )
    t3 = f.select(key.is_in(s3.implode()).fill_null(False)).to_series() & ~t1 & ~t2
    label = (
        pl.when(pl.Series(t1))
        .then(pl.concat_str([pl.lit("p"), pl.col("ph")], separator=":"))
        .when(pl.Series(t2))
        .then(pl.concat_str([pl.lit("a"), pl.col("ask")], separator=":"))
        .when(pl.Series(t3))
        .then(pl.concat_str([pl.lit("s"), key], separator=":"))
        .otherwise(None)
    )
    codes = f.select(label.rank("dense").cast(pl.Int64).fill_null(0) - 1).to_series().to_numpy()
    return Identity(codes, (t1 | t2).to_numpy(), s1.len(), s2.len(), s3.len())


def build_strata(df: pl.DataFrame, emb: EmbPair | None, topics: Topics, cfg) -> Strata:
    """Identity strata (:func:`identity_strata`) where they apply, fine prompt-embedding clusters for the rest."""
    w = df.get_column("_w").to_numpy()
    ident = identity_strata(df, "_w")
    codes = ident.codes.copy()
    n_prompt = ident.n_exact + ident.n_ask
    n_solo = ident.n_solo
    rest = np.flatnonzero(codes < 0)
    n_cur = int((w == 1).sum())
    exact_cov = float(((w == 1) & ident.matched).sum() / n_cur) if n_cur else 0.0
    off = n_prompt + n_solo  # next free stratum code
    parts = []
    topic_ok = topics.codes is not None and topics.source == "cluster_id"
    with_vec = rest if emb is None else rest[emb.valid[rest]]
    if emb is not None and with_vec.size >= 4:
        fine, how = _fine_clusters(emb, with_vec, topics.codes[with_vec] if topic_ok else None, cfg)
        codes[with_vec] = off + fine
        off += int(fine.max()) + 1
        parts.append(f"{int(fine.max()) + 1} {how}")
        no_vec = rest[~emb.valid[rest]]
    else:
        no_vec = rest
    if no_vec.size:
        # Rows without a prompt vector fall back to their topic cluster, else to one shared stratum.
        if topic_ok:
            _, inv = np.unique(topics.codes[no_vec], return_inverse=True)
            codes[no_vec] = off + inv
            parts.append(f"{int(inv.max()) + 1} topic clusters (cluster_id)")
            off += int(inv.max()) + 1
        else:
            codes[no_vec] = off
            parts.append("one stratum")
            off += 1
    n_cluster = off - n_prompt - n_solo
    method_rest = " + ".join(parts) if parts else "nothing"
    # neighbour coverage is estimated on every current row without a match (one-window prompts included)
    rest = np.flatnonzero(~ident.matched)
    rest = rest if emb is None else rest[emb.valid[rest]]
    method = f"{ident.describe('windows', 'one window')} + {method_rest} for the rest"
    coverage, note = exact_cov, "exact prompt matches only (no prompt embeddings)"
    cur_rest = rest[w[rest] == 1]
    if emb is not None and cur_rest.size and emb.valid[: emb.nb].any():
        rng = np.random.default_rng(cfg.seed + 2)
        q = cur_rest if cur_rest.size <= cfg.coverage_sample else rng.choice(cur_rest, cfg.coverage_sample, replace=False)
        ref = np.flatnonzero(emb.valid[: emb.nb])
        if ref.size > cfg.coverage_reference:
            ref = np.sort(rng.choice(ref, cfg.coverage_reference, replace=False))
        xr = emb.take(ref)
        best = np.full(q.size, -np.inf, dtype=np.float32)
        for s in range(0, q.size, 1024):
            best[s : s + 1024] = (emb.take(q[s : s + 1024]) @ xr.T).max(axis=1)
        near = float((best >= cfg.neighbour_similarity).mean())
        coverage = exact_cov + (1 - exact_cov) * near
        note = (
            f"exact prompt or a neighbour with cosine >= {cfg.neighbour_similarity:g} among "
            f"{ref.size:,} baseline prompts (estimated on {q.size:,} current prompts)"
        )
    return Strata(codes, method, n_prompt, n_cluster, exact_cov, coverage, note)
