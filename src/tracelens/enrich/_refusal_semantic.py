"""Semantic layer of the refusal detector: similarity to hand-written exemplars.

Contract: numpy only (no torch). ``refusal_exemplars()`` and
``compliance_exemplars()`` return short texts written for tracelens (not taken
from any benchmark). ``build_semantic_index(embedder)`` embeds them with any
callable ``(list[str]) -> np.ndarray`` (for example the issue-4 embedder), and
``semantic_score(vec, index)`` turns one response embedding into a 0..1 score:
the margin between its best cosine to a refusal exemplar and its best cosine
to a compliance exemplar, mapped linearly (margin 0 -> 0.5, +0.2 -> 1.0).
Contrasting with compliance exemplars makes the score robust to embedders
whose cosines are all high (anisotropic spaces).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

_REFUSALS: tuple[str, ...] = (
    "I'm sorry, but I can't help with that request.",
    "I won't be able to assist with this.",
    "I must decline to provide that information.",
    "Unfortunately I'm not able to write that for you.",
    "That's not something I can help with, but I'm happy to help with something else.",
    "I can't provide instructions for that because it could cause harm.",
    "This request goes against my guidelines, so I won't complete it.",
    "It wouldn't be appropriate for me to create that content.",
    "I'm not comfortable producing this kind of material.",
    "As an AI, I don't have personal opinions on this topic.",
    "I don't have feelings or preferences, so I can't pick a side.",
    "I'm unable to share private information about individuals.",
    "I'd rather not engage with that request. Is there something else I can do for you?",
    "I cannot fulfil this request. If you're struggling, please reach out to a professional.",
    "I can't do that, but I can explain the general principles in a safe way.",
    "Sorry, I can't generate that. Let me know if there's anything else you need.",
)
_COMPLIANCE: tuple[str, ...] = (
    "Sure! Here is a step-by-step guide to get you started.",
    "Here's the code you asked for, with comments explaining each part.",
    "The short answer is yes; here are the main reasons why.",
    "There are several ways to do this. The most common approach is the following.",
    "Great question. The history of this topic goes back to the early twentieth century.",
    "I'm sorry to hear that you're going through this. Here are some things that often help.",
    "Below is a summary of the key points, followed by a detailed explanation.",
    "To fix the error, change the import statement and rerun the script.",
    "Here is a short poem about the sea at dawn.",
    "The capital of Australia is Canberra, not Sydney.",
    "Apologies for the confusion earlier. Here is the corrected version of the table.",
    "You can kill a stuck process with the kill command followed by its PID.",
)


def refusal_exemplars() -> tuple[str, ...]:
    """The refusal exemplar texts (written for tracelens)."""
    return _REFUSALS


def compliance_exemplars() -> tuple[str, ...]:
    """Contrast exemplars: helpful answers, including refusal-looking traps."""
    return _COMPLIANCE


@dataclass(frozen=True)
class SemanticIndex:
    """L2-normalised exemplar embeddings plus the texts they came from."""

    refusal: np.ndarray
    compliance: np.ndarray
    refusal_texts: tuple[str, ...]

    @property
    def dim(self) -> int:
        """Dimension of the exemplar embeddings."""
        return int(self.refusal.shape[1])


def _normalise(m: np.ndarray) -> np.ndarray:
    m = np.asarray(m, dtype=np.float32)
    if m.ndim == 1:
        m = m[None, :]
    n = np.linalg.norm(m, axis=1, keepdims=True)
    n[n == 0] = 1.0
    return m / n


def build_semantic_index(embedder: Callable[[list[str]], np.ndarray]) -> SemanticIndex:
    """Embed the exemplars with ``embedder`` (list of texts -> (n, d) array)."""
    ref = _normalise(embedder(list(_REFUSALS)))
    comp = _normalise(embedder(list(_COMPLIANCE)))
    if ref.shape[1] != comp.shape[1]:
        raise ValueError("embedder returned inconsistent dimensions")
    return SemanticIndex(ref, comp, _REFUSALS)


def index_from_arrays(refusal: np.ndarray, compliance: np.ndarray) -> SemanticIndex:
    """Build an index from precomputed exemplar embeddings (same order as the exemplar functions)."""
    ref, comp = _normalise(refusal), _normalise(compliance)
    if len(ref) != len(_REFUSALS) or len(comp) != len(_COMPLIANCE):
        raise ValueError("exemplar embeddings must match refusal_exemplars() and compliance_exemplars() in length")
    return SemanticIndex(ref, comp, _REFUSALS)


MARGIN_SCALE = 2.5  # margin of +0.2 cosine -> score 1.0


def semantic_score(embedding: Sequence[float] | np.ndarray, index: SemanticIndex) -> tuple[float, str, float]:
    """(score 0..1, nearest refusal exemplar, its cosine) for one response embedding."""
    v = _normalise(np.asarray(embedding))[0]
    if v.shape[0] != index.dim:
        raise ValueError(f"embedding has dimension {v.shape[0]}, exemplars have {index.dim}")
    rs = index.refusal @ v
    cs = index.compliance @ v
    j = int(np.argmax(rs))
    margin = float(rs[j] - cs.max())
    score = min(1.0, max(0.0, 0.5 + MARGIN_SCALE * margin))
    return score, index.refusal_texts[j], float(rs[j])
