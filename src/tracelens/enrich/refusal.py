"""Layered, offline, explainable refusal detector.

Contract:

* ``detect(response_text, *, stop_reason=..., ..., embedding=None, semantic=None)
  -> RefusalResult`` classifies one LLM response as ``none``, ``partial`` or
  ``full`` refusal with a 0..1 ``score``, the ``source`` layer that decided
  (``structured``, ``text``, ``semantic``; ``None`` when nothing fired), a
  coarse ``category`` and the ``evidence`` (matched span or provider signal).
* ``detect_frame(df, embeddings=None, *, semantic=None)`` returns ``df`` with
  the ``refusal*`` columns of the trace schema filled from whichever input
  columns exist. Ingest calls it on each batch.
* ``DETECTOR_VERSION`` is stored with every label so stores can be re-enriched
  when the detector changes.

Layers, first decisive one wins:

1. structured (``_refusal_structured``): the provider said so (Anthropic
   ``stop_reason: refusal``, OpenAI ``message.refusal`` / ``content_filter``,
   Bedrock guardrail intervention, Gemini safety stop, HTTP 400 content-policy
   error, refusal stop with an empty stream).
2. text (``_refusal_text``): general English patterns plus separate French,
   German and Spanish tables, weighted by position and by how much answer
   follows. Linear time; analyses at most the first 4,000 and last 1,000
   characters.
3. semantic (``_refusal_semantic``, optional): when a response embedding and a
   ``SemanticIndex`` of exemplar embeddings are supplied, cosine similarity to
   hand-written refusal exemplars (contrasted with compliance exemplars) can
   promote a response the text layer left at ``none``.

Every threshold is a named constant; docs/refusal.md describes the method and
its known limits. This module never imports click or textual.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import polars as pl

from tracelens.enrich._refusal_semantic import (
    SemanticIndex,
    build_semantic_index,
    compliance_exemplars,
    index_from_arrays,
    refusal_exemplars,
    semantic_score,
)
from tracelens.enrich._refusal_structured import structured
from tracelens.enrich._refusal_text import (
    HEAD_CHARS,
    REFUSAL_THRESHOLD,
    SHORT_ANSWER,
    TAIL_CHARS,
    TextVerdict,
    analyse,
    classify,
    classify_many,
)

__all__ = [
    "DETECTOR_VERSION",
    "HEAD_CHARS",
    "TAIL_CHARS",
    "REFUSAL_COLUMNS",
    "RefusalResult",
    "SemanticIndex",
    "build_semantic_index",
    "compliance_exemplars",
    "detect",
    "detect_columns",
    "detect_frame",
    "index_from_arrays",
    "is_refusal",
    "refusal_exemplars",
]

DETECTOR_VERSION = "refusal-1.0.0"

REFUSAL_COLUMNS = (
    "refusal",
    "refusal_score",
    "refusal_source",
    "refusal_category",
    "refusal_evidence",
    "refusal_version",
)

# Semantic layer: it only decides when the text layer said "none". A response
# is promoted when its semantic score is at least SEMANTIC_MIN and the blend
# with the text score reaches the refusal threshold (so a bare embedding hit
# needs a clear margin, while a weak lexical hint needs less).
SEMANTIC_MIN = 0.8
SEMANTIC_BLEND = 0.5

INPUT_COLUMNS = (
    "response_text",
    "stop_reason",
    "stop_reason_raw",
    "stop_details",
    "status",
    "http_status",
    "error_type",
    "error_message",
    "provider",
    "response_raw",
)


@dataclass(frozen=True)
class RefusalResult:
    """One refusal decision. ``label`` is none/partial/full; ``score`` is 0..1."""

    label: str
    score: float
    source: str | None
    category: str | None
    evidence: str | None

    @property
    def is_refusal(self) -> bool:
        """True for a ``partial`` or ``full`` refusal."""
        return self.label != "none"


_NONE = RefusalResult("none", 0.0, None, None, None)


def detect(
    response_text: str | None,
    *,
    stop_reason: str | None = None,
    stop_reason_raw: str | None = None,
    stop_details: Any = None,
    status: str | None = None,
    http_status: int | None = None,
    error_type: str | None = None,
    error_message: str | None = None,
    provider: str | None = None,
    response_raw: Any = None,
    embedding: Sequence[float] | np.ndarray | None = None,
    semantic: SemanticIndex | None = None,
) -> RefusalResult:
    """Classify one response. Keyword arguments mirror the trace schema columns."""
    sv = structured(
        response_text,
        stop_reason=stop_reason,
        stop_reason_raw=stop_reason_raw,
        stop_details=stop_details,
        status=status,
        http_status=http_status,
        error_type=error_type,
        error_message=error_message,
        provider=provider,
        response_raw=response_raw,
    )
    if sv is not None:
        return RefusalResult(sv.label, sv.score, "structured", sv.category, sv.evidence)
    # Without the semantic layer only the label, score, category and evidence matter: the gated text layer
    # gives the same ones, skipping most answers (docs/refusal.md, "Speed").
    semantic_on = embedding is not None and semantic is not None
    tv = analyse(response_text) if semantic_on else classify(response_text)
    if not semantic_on:
        return _text_result(tv)
    if tv.label != "none":
        return RefusalResult(tv.label, tv.score, "text", tv.category, tv.evidence)
    if semantic_on and response_text and response_text.strip():
        sem, nearest, cos = semantic_score(embedding, semantic)
        blended = SEMANTIC_BLEND * tv.score + (1 - SEMANTIC_BLEND) * sem
        if sem >= SEMANTIC_MIN and blended >= REFUSAL_THRESHOLD:
            label = "full" if tv.substantive_chars <= SHORT_ANSWER else "partial"
            ev = f'semantic: nearest refusal exemplar "{nearest}" (cosine {cos:.2f}, score {sem:.2f})'
            return RefusalResult(label, round(blended, 4), "semantic", "semantic", ev)
    if tv.score > 0:
        return RefusalResult("none", tv.score, None, None, None)
    return _NONE


def _text_result(tv: TextVerdict) -> RefusalResult:
    """``detect``'s result from the text layer's verdict when the semantic layer is off."""
    if tv.label != "none":
        return RefusalResult(tv.label, tv.score, "text", tv.category, tv.evidence)
    if tv.score > 0:
        return RefusalResult("none", tv.score, None, None, None)
    return _NONE


def is_refusal(response_text: str | None, **kwargs: Any) -> bool:
    """Convenience: True when ``detect`` labels the response partial or full."""
    return detect(response_text, **kwargs).is_refusal


def _embedding_rows(embeddings: Any, n: int) -> list[Any]:
    if embeddings is None:
        return [None] * n
    if isinstance(embeddings, pl.Series):
        rows = embeddings.to_list()
    elif isinstance(embeddings, np.ndarray):
        rows = list(embeddings)
    else:
        rows = list(embeddings)
    if len(rows) != n:
        raise ValueError(f"embeddings has {len(rows)} rows, frame has {n}")
    return rows


def detect_frame(df: pl.DataFrame, embeddings: Any = None, *, semantic: SemanticIndex | None = None) -> pl.DataFrame:
    """Return ``df`` with the ``refusal*`` columns filled (replacing any present).

    Uses whichever of ``INPUT_COLUMNS`` exist. ``embeddings`` (optional) is an
    (n, d) array, a list of vectors (``None`` allowed per row) or a polars list
    Series aligned with the rows; it is only used together with ``semantic``.
    """
    cols = {c: df.get_column(c).to_list() for c in INPUT_COLUMNS if c in df.columns}
    out = detect_columns(cols, df.height, embeddings, semantic=semantic)
    return df.with_columns(
        pl.Series("refusal", out["refusal"], dtype=pl.String),
        pl.Series("refusal_score", out["refusal_score"], dtype=pl.Float64),
        pl.Series("refusal_source", out["refusal_source"], dtype=pl.String),
        pl.Series("refusal_category", out["refusal_category"], dtype=pl.String),
        pl.Series("refusal_evidence", out["refusal_evidence"], dtype=pl.String),
        pl.lit(DETECTOR_VERSION, dtype=pl.String).alias("refusal_version"),
    )


def detect_columns(cols: dict[str, list], n: int, embeddings: Any = None, *,
                   semantic: SemanticIndex | None = None) -> dict[str, list]:
    """``detect_frame`` on plain columns: ``cols`` maps some of ``INPUT_COLUMNS`` to lists of ``n`` values;
    returns the ``REFUSAL_COLUMNS`` as lists.

    Needs no dataframe, so callers holding Arrow tables (ingest) neither copy
    their large text columns into one nor depend on polars.
    """
    if embeddings is not None and semantic is None:
        raise ValueError("embeddings need a SemanticIndex (build_semantic_index(embedder)) to compare against")
    emb = _embedding_rows(embeddings, n)
    none_col = [None] * n
    get = {c: cols.get(c, none_col) for c in INPUT_COLUMNS}
    # Logs repeat themselves (canned refusals, evals at temperature 0): identical
    # inputs get the identical decision, computed once per batch.
    memo: dict[tuple, RefusalResult] = {}
    results: list[RefusalResult | None] = [None] * n
    # Rows the text layer decides alone (no provider signal, no semantic layer): classified together at the end
    # (``classify_many``: one prefilter pass over the batch), grouped per distinct input and classified once per
    # distinct response text. That layer reads the text only, and texts repeat where whole inputs do not (each
    # raw body holds its own message id).
    pending: dict[tuple, list[int]] = {}
    for i in range(n):
        hs = get["http_status"][i]
        args = (
            get["response_text"][i],
            get["stop_reason"][i],
            get["stop_reason_raw"][i],
            get["stop_details"][i],
            get["status"][i],
            int(hs) if hs is not None else None,
            get["error_type"][i],
            get["error_message"][i],
            get["provider"][i],
            get["response_raw"][i],
        )
        key = args if emb[i] is None and all(a is None or isinstance(a, (str, int)) for a in args) else None
        if key is not None:
            r = memo.get(key)
            if r is not None:
                results[i] = r
                continue
            rows = pending.get(key)
            if rows is not None:
                rows.append(i)
                continue
        semantic_on = emb[i] is not None and semantic is not None
        fields = dict(zip(INPUT_COLUMNS[1:], args[1:], strict=True))  # args follow INPUT_COLUMNS
        if not semantic_on:
            sv = structured(args[0], **fields)
            if sv is None:
                pending.setdefault(key if key is not None else ("row", i), []).append(i)
                continue
            r = RefusalResult(sv.label, sv.score, "structured", sv.category, sv.evidence)
        else:
            r = detect(args[0], **fields, embedding=emb[i], semantic=semantic)
        if key is not None:
            memo[key] = r
        results[i] = r
    if pending:
        by_text: dict[object, list[int]] = {}
        for j, rows in enumerate(pending.values()):
            t = get["response_text"][rows[0]]
            by_text.setdefault(t if t is None or isinstance(t, str) else ("row", j), []).extend(rows)
        verdicts = classify_many([get["response_text"][rows[0]] for rows in by_text.values()])
        for rows, tv in zip(by_text.values(), verdicts, strict=True):
            r = _text_result(tv)
            for i in rows:
                results[i] = r
    labels: list[str] = []
    scores: list[float] = []
    sources: list[str | None] = []
    categories: list[str | None] = []
    evidence: list[str | None] = []
    for r in results:
        assert r is not None
        labels.append(r.label)
        scores.append(float(r.score))
        sources.append(r.source)
        categories.append(r.category)
        evidence.append(r.evidence)
    return {"refusal": labels, "refusal_score": scores, "refusal_source": sources, "refusal_category": categories,
            "refusal_evidence": evidence, "refusal_version": [DETECTOR_VERSION] * n}
