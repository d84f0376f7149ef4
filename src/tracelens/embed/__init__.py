"""Embeddings of prompts, responses and system prompts, stored once per distinct text.

* ``models``: embedders (bundled all-MiniLM-L6-v2 by default, any
  sentence-transformers model, ``fake`` for tests), ``resolve_model``.
* ``vectors``: the vector store keyed by ``text_hash`` (float16 Parquet under
  ``STORE/embeddings/<model-slug>/``), ``load_vectors``, ``trace_embeddings``.
* ``run``: the incremental, resumable embed job (``embed_store``).
* ``search``: exact semantic search (``nearest``).

Importing this package loads neither torch nor sentence-transformers; the
first real model does. See docs/embeddings.md.
"""

from tracelens.embed.models import (
    DEFAULT_MODEL,
    FAKE_MODEL,
    Embedder,
    FakeEmbedder,
    ModelSpec,
    get_embedder,
    resolve_model,
)
from tracelens.embed.run import EmbedResult, embed_store
from tracelens.embed.search import SearchResult, nearest, search
from tracelens.embed.vectors import VectorStore, ensure_vectors, list_models, load_vectors, trace_embeddings

__all__ = [
    "DEFAULT_MODEL",
    "FAKE_MODEL",
    "EmbedResult",
    "Embedder",
    "FakeEmbedder",
    "ModelSpec",
    "SearchResult",
    "VectorStore",
    "embed_store",
    "ensure_vectors",
    "get_embedder",
    "list_models",
    "load_vectors",
    "nearest",
    "resolve_model",
    "search",
    "trace_embeddings",
]
