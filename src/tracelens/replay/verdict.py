"""Verdict: does a trace's original response still reproduce on its snapshot?

Inputs: the original trace (dict) and its N replays (``ReplayResult`` or
rows of the replays table). Replays with an error are counted and left out.
Output: a ``Verdict`` dataclass with the numbers behind it. The exact rules
(documented in docs/replay.md, kept in sync with the constants below):

* Refusal: original and replays are labelled with the same detector
  (``replay.labels.refusal_label``); ``partial`` and ``full`` count as
  refused. ``refusal_flip_share`` = share of replays whose refused/answered
  state differs from the original's.
* Similarity: texts are compared pairwise with the caller's embedder
  (cosine of ``embedder(texts)`` rows) or, by default, cosine of character
  3-gram TF-IDF vectors (scikit-learn, deterministic). Identical texts have
  similarity 1. ``original_similarity`` = mean similarity of the original to
  the replays; ``replay_similarity`` = mean pairwise similarity among replays.
* Conformal rank: over the bag {original} ∪ replays, each item's
  nonconformity is ``1 − mean similarity to the other items``; the p-value is
  the share of items (original included) at least as nonconforming as the
  original, i.e. ``p = #{k: a_k ≥ a_0} / (N + 1)``. Under exchangeability
  (original drawn like a replay) it is a valid p-value; its smallest possible
  value is ``1/(N+1)``, so it is reported and used only when N ≥ 19
  (``p ≤ 0.05`` reachable). Below that the verdict is ``descriptive``.

Rules, first match wins:

1. no successful replay → ``inconclusive``;
2. ``refusal_flip_share > 0.5`` → ``differs`` (refusal flip);
3. N ≥ 19 and ``p ≤ 0.05`` → ``differs`` (original atypical);
   N < 19, N ≥ 2 and ``original_similarity < min_i r_i − 0.10``, where
   ``r_i`` is replay i's mean similarity to the other replays → ``differs``
   (original outside the replays' spread);
4. ``refusal_flip_share < 0.5`` and (``exact_match_rate ≥ 0.5`` or, with
   N ≥ 2, ``original_similarity ≥ replay_similarity − 0.05``) →
   ``reproduces``;
5. otherwise → ``within_variance``.

``length_ratio`` (median replay length / original length, in characters) is
reported but not used by the rules.

Why character 3-gram TF-IDF cosine, and why it is the only measure: it is
the one similarity every front end shows (the verdict, `tracelens replay`'s
table, the TUI's per-replay column via ``replay_similarities``), so the same
replay cannot look different in two places. It was preferred over a word
sequence ratio (difflib over word tokens) because a replay that rewords the
original ("refund" / "refunds", "can't" / "cannot", reordered clauses,
changed punctuation) keeps most of its character 3-grams but loses most of
its in-order word matches; the ratio's score falls with any reordering and is
quadratic in the text length, while TF-IDF cosine is symmetric, bounded in
[0, 1], linear in the length and deterministic (no model, no randomness).
IDF is fitted on the texts being compared, so shared boilerplate weighs less
than what distinguishes the answers.
"""

from __future__ import annotations

import statistics
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np

from tracelens.replay.labels import is_refused, refusal_label

Embedder = Callable[[list[str]], np.ndarray]

ALPHA = 0.05
MIN_CONFORMAL_N = 19
SIM_TOLERANCE = 0.05
OUTSIDE_MARGIN = 0.10
EXACT_REPRODUCES = 0.5
FLIP_MAJORITY = 0.5

VERDICTS = ("reproduces", "within_variance", "differs", "inconclusive")


@dataclass
class Verdict:
    """Verdict for one trace with the numbers behind it."""

    trace_id: str
    verdict: str
    descriptive: bool
    n_replays: int
    n_errors: int
    exact_match_rate: float | None = None
    original_refusal: str | None = None
    replay_refusals: dict[str, int] = field(default_factory=dict)
    refusal_flip: str | None = None  # "refused->answered" | "answered->refused" | None
    refusal_flip_share: float | None = None
    length_ratio: float | None = None
    original_similarity: float | None = None
    replay_similarity: float | None = None
    replay_similarity_min: float | None = None
    p_value: float | None = None
    similarity_method: str = "char3-tfidf"
    reasons: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        """JSON form (`tracelens replay --json`)."""
        return asdict(self)


def _field(r: Any, name: str) -> Any:
    return r.get(name) if isinstance(r, dict) else getattr(r, name, None)


def similarity_matrix(texts: Sequence[str], embedder: Embedder | None = None) -> tuple[np.ndarray, str]:
    """Pairwise cosine similarity of ``texts``; identical texts are 1 regardless of method."""
    n = len(texts)
    if n == 0:
        return np.zeros((0, 0)), "none"
    if embedder is not None:
        emb = np.asarray(embedder(list(texts)), dtype=float)
        norms = np.linalg.norm(emb, axis=1, keepdims=True)
        emb = np.divide(emb, norms, out=np.zeros_like(emb), where=norms > 0)
        sim = emb @ emb.T
        method = "embedder"
    else:
        from sklearn.feature_extraction.text import TfidfVectorizer

        try:
            vec = TfidfVectorizer(analyzer="char_wb", ngram_range=(3, 3), lowercase=True, sublinear_tf=True)
            x = vec.fit_transform(texts)
            sim = (x @ x.T).toarray()  # rows are L2-normalised, so this is cosine
        except ValueError:  # no text has a 3-gram (all empty or tiny)
            sim = np.zeros((n, n))
        method = "char3-tfidf"
    sim = np.clip(sim, -1.0, 1.0)
    for i in range(n):
        for j in range(n):
            if texts[i] == texts[j]:
                sim[i, j] = 1.0
    return sim, method


def replay_similarities(original_text: str | None, replays: Sequence[Any]) -> list[float | None]:
    """Each replay's similarity to the original (None for a failed one), by the measure ``judge`` uses.

    The matrix is fitted on the original and the successful replays exactly as
    in ``judge``, so the mean of these numbers is the verdict's ``original_similarity``.
    """
    ok = [i for i, r in enumerate(replays) if not _field(r, "error")]
    out: list[float | None] = [None] * len(replays)
    if not ok:
        return out
    texts = [original_text or "", *[_field(replays[i], "response_text") or "" for i in ok]]
    sim, _ = similarity_matrix(texts)
    for j, i in enumerate(ok, start=1):
        out[i] = float(sim[0, j])
    return out


def conformal_p(sim: np.ndarray) -> float:
    """Rank p-value of item 0 in the bag described by ``sim`` (nonconformity = 1 − mean similarity to the others)."""
    m = sim.shape[0]
    if m < 2:
        return 1.0
    off = (sim.sum(axis=1) - np.diag(sim)) / (m - 1)
    scores = 1.0 - off
    # A small tolerance keeps float noise from breaking ties between equal scores.
    return float(np.sum(scores >= scores[0] - 1e-12) / m)


def judge(
    trace_id: str,
    original_text: str | None,
    original_refusal: str,
    replay_texts: Sequence[str],
    replay_refusals: Sequence[str],
    *,
    n_errors: int = 0,
    embedder: Embedder | None = None,
) -> Verdict:
    """Apply the documented rules to an original and its successful replays."""
    n = len(replay_texts)
    v = Verdict(
        trace_id=trace_id,
        verdict="inconclusive",
        descriptive=n < MIN_CONFORMAL_N,
        n_replays=n,
        n_errors=n_errors,
        original_refusal=original_refusal,
        replay_refusals=dict(Counter(replay_refusals)),
    )
    if n == 0:
        v.reasons.append(f"no successful replay ({n_errors} failed)")
        return v
    orig = original_text or ""
    texts = [orig, *[t or "" for t in replay_texts]]
    v.exact_match_rate = sum(t == orig for t in texts[1:]) / n
    if orig:
        v.length_ratio = statistics.median(len(t) for t in texts[1:]) / len(orig)
    orig_refused = is_refused(original_refusal)
    flips = sum(is_refused(lbl) != orig_refused for lbl in replay_refusals)
    v.refusal_flip_share = flips / n

    sim, v.similarity_method = similarity_matrix(texts, embedder)
    v.original_similarity = float(sim[0, 1:].mean())
    if n >= 2:
        rep = sim[1:, 1:]
        pair_means = (rep.sum(axis=1) - np.diag(rep)) / (n - 1)
        v.replay_similarity = float(pair_means.mean())
        v.replay_similarity_min = float(pair_means.min())
    p = conformal_p(sim)
    if not v.descriptive:
        v.p_value = p
    else:
        v.reasons.append(
            f"descriptive: N={n} replays < {MIN_CONFORMAL_N}, too few for a rank p-value ≤ {ALPHA} (min is 1/(N+1))"
        )

    if v.refusal_flip_share > FLIP_MAJORITY:
        v.refusal_flip = "refused->answered" if orig_refused else "answered->refused"
        v.verdict = "differs"
        v.reasons.append(
            f"refusal flip: original {'refused' if orig_refused else 'answered'}, "
            f"{flips}/{n} replays {'answered' if orig_refused else 'refused'}"
        )
        return v
    if not v.descriptive and p <= ALPHA:
        v.verdict = "differs"
        v.reasons.append(f"original is atypical among {n} replays: conformal p={p:.3f} ≤ {ALPHA}")
        return v
    if v.descriptive and n >= 2 and v.original_similarity < v.replay_similarity_min - OUTSIDE_MARGIN:
        v.verdict = "differs"
        v.reasons.append(
            f"original lies outside the replays' spread: similarity to replays {v.original_similarity:.3f} < "
            f"least typical replay {v.replay_similarity_min:.3f} − {OUTSIDE_MARGIN}"
        )
        return v
    content_typical = v.exact_match_rate >= EXACT_REPRODUCES or (
        n >= 2 and v.original_similarity >= v.replay_similarity - SIM_TOLERANCE
    )
    if v.refusal_flip_share < FLIP_MAJORITY and content_typical:
        v.verdict = "reproduces"
        if v.exact_match_rate >= EXACT_REPRODUCES:
            v.reasons.append(f"{v.exact_match_rate:.0%} of replays match the original exactly")
        else:
            v.reasons.append(
                f"original is as close to the replays ({v.original_similarity:.3f}) as they are to each other "
                f"({v.replay_similarity:.3f})"
            )
        return v
    v.verdict = "within_variance"
    if v.refusal_flip_share == FLIP_MAJORITY:
        v.reasons.append(f"refusal split: {flips}/{n} replays differ from the original")
    if n < 2 and v.exact_match_rate < EXACT_REPRODUCES:
        v.reasons.append("one replay, not an exact match: too few replays to judge content typicality")
    elif v.replay_similarity is not None:
        v.reasons.append(
            f"original is less close to the replays ({v.original_similarity:.3f}) than they are to each other "
            f"({v.replay_similarity:.3f}) but within their spread"
        )
    return v


def compute_verdict(trace: dict[str, Any], replays: Sequence[Any], *, embedder: Embedder | None = None) -> Verdict:
    """Verdict for ``trace`` from its replays (``ReplayResult`` objects or replay-table rows)."""
    ok = [r for r in replays if not _field(r, "error")]
    n_errors = len(replays) - len(ok)
    # Both sides are labelled by the same detector so a detector version change cannot fake a flip.
    original_label = refusal_label(trace.get("response_text"), trace.get("stop_reason"), trace.get("stop_details"))
    texts = [_field(r, "response_text") or "" for r in ok]
    labels = [_field(r, "refusal") or refusal_label(_field(r, "response_text"), _field(r, "stop_reason")) for r in ok]
    return judge(
        trace.get("trace_id") or "?",
        trace.get("response_text"),
        original_label,
        texts,
        labels,
        n_errors=n_errors,
        embedder=embedder,
    )
