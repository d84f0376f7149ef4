"""Semantic search: the traces nearest to a free text, a vector or another trace.

``nearest(store, query, k=10, since=..., until=..., model=...)`` returns
``[(trace_id, cosine), ...]`` best first; ``nearest_frame`` returns the same
hits as a polars frame with the timestamp, the text and how many traces in
the window share that exact text (``copies``).

Method: exact search. The texts of the window's traces are hashed, the
vector store is read in chunks of 65,536 rows (float16 on disk, float32 in
memory) keeping only the hashes in the window, and each chunk is scored with
one matrix-vector product; a running top-k is kept. Cost is linear in stored
vectors (measured in docs/embeddings.md: a few ms per 100k vectors for the
product, dominated by reading and converting the chunk), which is fine up to
a few million vectors. Traces whose text has no vector are not found; the
frame's ``missing`` attribute counts them (run ``tracelens embed``).

By default each distinct text is one hit (the newest trace carrying it, with
``copies``), so one prompt repeated a thousand times does not fill the list;
``distinct=False`` lists every trace.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

import numpy as np
import polars as pl

from tracelens.embed.models import Embedder, get_embedder, l2_normalise, resolve_model
from tracelens.embed.vectors import VectorStore, embeddable, hashes_of
from tracelens.hashing import text_hash
from tracelens.store import Store

FIELDS = {"prompt": "prompt_text", "response": "response_text", "system": "system_prompt"}


@dataclass
class SearchResult:
    """Hits plus what the search could not see."""

    hits: pl.DataFrame  # trace_id, score, timestamp, text_hash, copies, text
    window_texts: int  # distinct embeddable texts in the window
    missing: int  # of those, how many have no vector
    query_text: str | None = None


def _query_vector(store: Store, vs: VectorStore, query, like: str | None, column: str,
                  embedder: Embedder | None) -> tuple[np.ndarray, str | None, str | None]:
    """(unit query vector, the query trace id if any, its text hash if any)."""
    if like is not None:
        row = store.get(like)
        if row is None:
            raise ValueError(f"no trace {like!r} in the store")
        text = row.get(column)
        if not embeddable(text):
            raise ValueError(f"trace {row['trace_id']} has no {column} to compare with")
        h = text_hash(text)
        found, vecs = vs.load([h])
        if not found:
            embedder = embedder or get_embedder(vs.spec.name)
            vecs = embedder([text])
            vs.append([h], vecs)
        return l2_normalise(vecs[0]), row["trace_id"], h
    if isinstance(query, str):
        if not embeddable(query):
            raise ValueError("empty query text")
        embedder = embedder or get_embedder(vs.spec.name)
        return l2_normalise(embedder([query])[0]), None, text_hash(query)
    vec = np.asarray(query, dtype=np.float32).ravel()
    return l2_normalise(vec), None, None


def search(
    store: Store,
    query: str | np.ndarray | None = None,
    *,
    like: str | None = None,
    k: int = 10,
    since: dt.date | dt.datetime | None = None,
    until: dt.date | dt.datetime | None = None,
    model: str | None = None,
    field: str = "prompt",
    distinct: bool = True,
    embedder: Embedder | None = None,
    chunk_rows: int = 65_536,
) -> SearchResult:
    """Nearest traces to ``query`` (text or vector) or to trace ``like``; see the module docstring."""
    if (query is None) == (like is None):
        raise ValueError("give either a query (text or vector) or like=TRACE_ID")
    column = FIELDS.get(field, field)
    spec = resolve_model(model)
    vs = VectorStore(store, spec)
    if vs.dim is None:
        raise ValueError(f"no embeddings for {spec.model_id} in the store; run `tracelens embed` first")
    q, self_id, _ = _query_vector(store, vs, query, like, column, embedder)
    if vs.dim is not None and q.shape[0] != vs.dim:
        raise ValueError(f"query vector has {q.shape[0]} dims, stored vectors of {spec.model_id} have {vs.dim}")

    win = store.scan(since=since, until=until).select("trace_id", "timestamp", column).collect()
    hashes = hashes_of(win.get_column(column).to_list())
    win = win.with_columns(pl.Series("text_hash", hashes, dtype=pl.String)).filter(pl.col("text_hash").is_not_null())
    if self_id is not None:
        win = win.filter(pl.col("trace_id") != self_id)
    wanted = set(win.get_column("text_hash").to_list())

    # running top: enough distinct hashes to fill k hits
    keep = k + 1
    best_h: list[str] = []
    best_s = np.zeros(0, dtype=np.float32)
    have: set[str] = set()
    for hs, m in vs.iter_chunks(only=wanted, chunk_rows=chunk_rows):
        s = m @ q
        have.update(hs)
        if len(s) > keep:
            idx = np.argpartition(-s, keep)[:keep]
            hs, s = [hs[i] for i in idx], s[idx]
        best_h += list(hs)
        best_s = np.concatenate([best_s, s])
        if len(best_h) > 4 * keep:
            idx = np.argsort(-best_s, kind="stable")[:keep]
            best_h, best_s = [best_h[i] for i in idx], best_s[idx]
    missing = len(wanted - have)

    scores = pl.DataFrame({"text_hash": best_h, "score": best_s.astype(np.float64)}, schema={
        "text_hash": pl.String, "score": pl.Float64}).unique("text_hash", keep="first")
    hits = win.join(scores, on="text_hash", how="inner")
    copies = win.group_by("text_hash").len("copies")
    hits = hits.join(copies, on="text_hash", how="left").sort(
        ["score", "timestamp", "trace_id"], descending=[True, True, False])
    if distinct:
        hits = hits.unique("text_hash", keep="first", maintain_order=True)
    hits = hits.head(k).select("trace_id", "score", "timestamp", "text_hash", "copies",
                               pl.col(column).alias("text"))
    return SearchResult(hits=hits, window_texts=len(wanted), missing=missing,
                        query_text=query if isinstance(query, str) else None)


def nearest(
    store: Store,
    query: str | np.ndarray | None = None,
    k: int = 10,
    since: dt.date | dt.datetime | None = None,
    until: dt.date | dt.datetime | None = None,
    model: str | None = None,
    *,
    like: str | None = None,
    field: str = "prompt",
    distinct: bool = True,
    embedder: Embedder | None = None,
) -> list[tuple[str, float]]:
    """``[(trace_id, cosine), ...]`` best first: nearest traces to a text, a vector or trace ``like``."""
    r = search(store, query, like=like, k=k, since=since, until=until, model=model, field=field,
               distinct=distinct, embedder=embedder)
    return [(t, float(s)) for t, s in r.hits.select("trace_id", "score").iter_rows()]
