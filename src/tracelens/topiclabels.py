"""Topic labels for clusters of prompts: the words and word pairs that name each cluster's topic.

``ctfidf_terms(texts_by_cluster, n_terms, neighbours)`` is class-based TF-IDF
(as in BERTopic) over the words and adjacent word pairs of each cluster's
prompts, without English stop words, tokens without letters, or template
words (text a prompt template puts around every topic), each term scaled by
how much more the cluster uses it than its nearest clusters; a pair stands
in for its word when it carries most of the word's uses. A term must occur in
``MIN_PROMPT_SHARE`` of the cluster's prompts: the odd words of a few prompts
(a customer's name, a phrase one user typed) never name the topic. ``fallback_label``
labels a cluster no term describes with its central prompt's first words.
Pure functions: scikit-learn's vectorizer and numpy, no store.
"""

from __future__ import annotations

import math
import re

import numpy as np

N_TERMS = 4

# A word is template text, not topic, when it is in at least this share of the prompts of at least this share
# of the clusters (and at least 3): boilerplate ("as a", "example", "answering") that a prompt template puts around every topic.
TEMPLATE_PROMPT_SHARE = 0.3
TEMPLATE_CLUSTER_SHARE = 0.5
# A word pair replaces its word when it carries at least this share of the word's uses in the cluster.
PAIR_SHARE = 0.6
# Neighbours each cluster's terms are contrasted with (nearest centroids).
N_NEIGHBOURS = 2
# A term must occur in at least this share of the cluster's prompts: a few prompts' odd words (a name,
# one user's phrase) score high on c-TF-IDF because nothing else uses them, yet say nothing about the topic.
MIN_PROMPT_SHARE = 0.1
# Words of the most central prompt used as the label when no term describes the cluster.
FALLBACK_WORDS = 6
# A word of letters, with an apostrophe inside it kept ("don't", "dad's", "I've"): split there, a contraction
# would leave stems such as "don" or "ve" that read as topic words.
_TOKEN_RE = re.compile(r"(?u)\b[^\W\d_][^\W\d_]*(?:['\u2019][^\W\d_]+)*\b")


def _words(text: str) -> list[str]:
    """The lower-cased words of ``text``: a possessive is its noun ("dad's": "dad"); any other contraction ("don't",
    "haven't", "I've") is a function word and left out, as are one-letter words."""
    out = []
    for m in _TOKEN_RE.findall(text):
        w = m.lower().replace("\u2019", "'")
        if "'" in w:
            stem, _, tail = w.partition("'")
            if tail != "s":
                continue
            w = stem
        if len(w) > 1:
            out.append(w)
    return out


def ctfidf_terms(texts_by_cluster: dict[int, list[str]], n_terms: int = N_TERMS,
                 neighbours: dict[int, list[int]] | None = None) -> dict[int, list[str]]:
    """The terms that name each cluster's topic: class-based TF-IDF over words and word pairs.

    English stop words, tokens without letters and template words (see
    ``TEMPLATE_PROMPT_SHARE``) are left out. A term's c-TF-IDF score is
    scaled by how much more often the cluster uses it than its
    ``neighbours`` (cluster ids; nearest centroids) do, so a label says what
    separates a topic from the ones it is confused with. A word pair
    ("reset password") stands in for a chosen word when it carries
    ``PAIR_SHARE`` of that word's uses; no word is repeated across the terms.
    """
    from sklearn.feature_extraction.text import CountVectorizer

    ids = sorted(texts_by_cluster)
    if not ids:
        return {}
    drop = _english_stop_words() | _template_words(texts_by_cluster)
    cv = CountVectorizer(analyzer=lambda text: _terms(text, drop), max_features=50_000)
    docs = [" \n".join(texts_by_cluster[i]) for i in ids]
    try:
        counts = cv.fit_transform(docs)
    except ValueError:  # empty vocabulary
        return {i: [] for i in ids}
    counts = counts.toarray().astype(np.float64)
    words = cv.get_feature_names_out()
    per_class = counts.sum(1, keepdims=True)
    tf = np.divide(counts, per_class, out=np.zeros_like(counts), where=per_class > 0)
    avg = per_class.mean()
    idf = np.log(1 + avg / np.maximum(counts.sum(0), 1))
    score = tf * idf
    row_of = {cid: r for r, cid in enumerate(ids)}
    pairs_of: dict[str, list[int]] = {}
    for j, term in enumerate(words):
        if " " in term:
            for w in set(term.split()):
                pairs_of.setdefault(w, []).append(j)
    out = {}
    for row, i in enumerate(ids):
        s = score[row]
        near = [row_of[n] for n in (neighbours or {}).get(i, []) if n in row_of and n != i]
        if near:
            rival = tf[near].max(0)
            s = s * tf[row] / np.maximum(tf[row] + rival, 1e-12)
        term_sets = [set(_terms(t, drop)) for t in texts_by_cluster[i]]
        need = MIN_PROMPT_SHARE * len(term_sets)
        chosen: list[str] = []
        for j in np.lexsort((words, -s)):
            if s[j] <= 0 or len(chosen) == n_terms:
                break
            term = str(words[j])
            # the phrase a topic is known by: a pair that carries most uses of the word stands in for it
            pairs = [p for p in pairs_of.get(term, ()) if counts[row, p] >= PAIR_SHARE * counts[row, j]]
            if pairs:
                term = str(words[max(pairs, key=lambda p: (counts[row, p], s[p]))])
            parts = set(term.split())
            # a pair and its own words say the same thing: keep whichever came first (scored higher)
            if any(parts & set(c.split()) for c in chosen):
                continue
            if sum(term in ts for ts in term_sets) < need:
                continue
            chosen.append(term)
        out[i] = chosen
    return out


def _terms(text: str, drop: frozenset[str] | set[str]) -> list[str]:
    """The words of ``text`` not in ``drop``, and the pairs of such words that stand next to each other in a line.

    A pair is only made of neighbours in the text itself ("card payment"), never across a dropped word, so
    no pair reads as a phrase nobody wrote ("invoice cancelled" from "invoice after I cancelled").
    """
    out: list[str] = []
    for line in text.splitlines():  # a cluster's prompts are joined by newlines: no pair spans two
        prev: str | None = None
        for w in _words(line):
            if w in drop:
                prev = None
                continue
            out.append(w)
            if prev is not None:
                out.append(f"{prev} {w}")
            prev = w
    return out


def _english_stop_words() -> frozenset[str]:
    from sklearn.feature_extraction.text import ENGLISH_STOP_WORDS

    return frozenset(ENGLISH_STOP_WORDS)


def _template_words(texts_by_cluster: dict[int, list[str]]) -> set[str]:
    """Words in ``TEMPLATE_PROMPT_SHARE`` of the prompts of ``TEMPLATE_CLUSTER_SHARE`` of the clusters (3 or more)."""
    # at least 3 clusters: with fewer, a word two topics share cannot be told from a template
    need = max(3, math.ceil(TEMPLATE_CLUSTER_SHARE * len(texts_by_cluster)))
    if len(texts_by_cluster) < need:
        return set()
    seen_in: dict[str, int] = {}
    for texts in texts_by_cluster.values():
        share: dict[str, int] = {}
        for t in texts:
            for w in set(_words(t)):
                share[w] = share.get(w, 0) + 1
        for w, n in share.items():
            if n >= TEMPLATE_PROMPT_SHARE * len(texts):
                seen_in[w] = seen_in.get(w, 0) + 1
    return {w for w, n in seen_in.items() if n >= need}


def fallback_label(text: str, n_words: int = FALLBACK_WORDS) -> str:
    """The first ``n_words`` words of a prompt, for a cluster no term describes."""
    words = text.split()
    return " ".join(words[:n_words]) + (" …" if len(words) > n_words else "")
