"""The OpenVINO CPU backend: a sentence-transformers model compiled by OpenVINO, exported locally once.

Contract:

* ``OpenVinoEmbedder(spec, batch_size=...)`` embeds with OpenVINO's CPU
  plugin: same ``(list[str]) -> float32 (n, dim)`` L2-normalised rows as the
  torch embedder, cosine >= 0.999 to its vectors (checked at export, see
  below). OpenVINO picks the precision the CPU runs fastest (bfloat16 on CPUs
  with AVX-512 BF16 or AMX, float32 elsewhere); the precision used is
  ``OpenVinoEmbedder.precision``.
* The model is never downloaded. The first use converts the local weights
  (``spec.location``) with ``openvino.convert_model`` (torch and
  sentence-transformers are needed for this step only) and saves the graph
  with the tokenizer under ``cache_dir()/openvino/<slug>-<key>/``; later
  loads read that directory and need neither torch nor sentence-transformers.
  ``<key>`` hashes the weights' paths, sizes and mtimes and the OpenVINO
  version, so new weights or a new OpenVINO export again.
* The export is checked before it is kept: a fixed set of probe texts (short
  to over-long) is embedded by torch and by the compiled graph, and any
  cosine below ``MIN_PROBE_COSINE`` refuses the export
  (:class:`ExportRefused`; ``get_embedder``'s ``auto`` backend then stays on
  torch). The directory is written aside and renamed into place, so parallel
  first uses and interrupted exports never leave a half-written model.
* The graph runs the model's whole sentence-transformers pipeline
  (transformer, pooling, normalisation), traced from the loaded model, so any
  model whose modules trace works, not only mean-pooled ones.

``cache_dir()`` is ``$TRACELENS_CACHE_DIR``, else ``$XDG_CACHE_HOME/tracelens``,
else ``~/.cache/tracelens``.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import sys
import tempfile
import threading
import time
import warnings
from pathlib import Path

import numpy as np

from tracelens.embed.models import DEFAULT_BATCH_SIZE, Embedder, ModelSpec

EXPORT_VERSION = 1  # bump when the exported graph or the meta file changes
MIN_PROBE_COSINE = 0.999
PROBE_TEXTS = (
    "hi",
    "How do I get a refund for my order?",
    "Write a haiku about autumn leaves falling on a quiet pond.",
    "Traceback (most recent call last): File \"app.py\", line 3, in <module> KeyError: 'user_id'",
    "Résumé en français : la réunion est reportée à jeudi 14 h, salle 2.",
    "def quicksort(xs):\n    return xs if len(xs) < 2 else quicksort([x for x in xs[1:] if x < xs[0]]) + [xs[0]]",
    " ".join(["The quarterly report covers revenue, churn, hiring plans and the migration to the new billing "
              "system, with risks and owners for each item."] * 12),  # past the 256 word-piece limit
)


class ExportRefused(RuntimeError):
    """The exported graph's vectors differ from torch's on the probe texts; the export is not kept."""


def _openvino():
    """``import openvino`` with its usage telemetry switched off.

    Importing openvino imports its model converter, which reports usage to a web analytics service through the
    ``openvino_telemetry`` package whenever no consent file exists (it never asks when run as a library). tracelens
    sends nothing anywhere, so that package is hidden before the first import and the converter falls back to its
    own no-op stub. A process that imported openvino earlier keeps whatever it chose.
    """
    if "openvino" not in sys.modules:
        sys.modules.setdefault("openvino_telemetry", None)  # None in sys.modules: the import raises ImportError
    import openvino

    return openvino


def cache_dir() -> Path:
    """Where exported models are cached (see the module docstring)."""
    if os.environ.get("TRACELENS_CACHE_DIR"):
        return Path(os.environ["TRACELENS_CACHE_DIR"]).expanduser()
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base).expanduser() / "tracelens"


def _weights_key(spec: ModelSpec) -> str:
    openvino = _openvino()
    h = hashlib.sha256(f"v{EXPORT_VERSION}|{openvino.__version__}|{spec.model_id}".encode())
    loc = Path(spec.location or "")
    if loc.is_dir():
        for p in sorted(loc.rglob("*")):
            if p.is_file():
                st = p.stat()
                h.update(f"|{p.relative_to(loc)}:{st.st_size}:{st.st_mtime_ns}".encode())
    else:  # a hub name resolved from the local cache: the name is all we know cheaply
        h.update(f"|{spec.location}".encode())
    return h.hexdigest()[:16]


def export_dir(spec: ModelSpec) -> Path:
    """The cache directory of ``spec``'s OpenVINO export (it may not exist yet)."""
    return cache_dir() / "openvino" / f"{spec.slug}-{_weights_key(spec)}"


def _say(msg: str) -> None:
    # A one-off step that takes seconds: say so on stderr (never stdout, which carries data).
    print(f"tracelens: {msg}", file=sys.stderr, flush=True)


def export(spec: ModelSpec, target: Path | None = None) -> Path:
    """Convert ``spec``'s local weights to an OpenVINO graph under ``target`` (default ``export_dir``).

    Checks the graph against torch on ``PROBE_TEXTS`` first (:class:`ExportRefused` if it disagrees). Returns the
    directory; an existing export is returned as is.
    """
    import torch
    from sentence_transformers import SentenceTransformer

    ov = _openvino()
    target = target or export_dir(spec)
    if (target / "meta.json").exists():
        return target
    t0 = time.perf_counter()
    _say(f"exporting {spec.name} to OpenVINO once, from the local weights (cached in {target})")
    try:  # transformers' own "Loading weights" bar would clutter stderr
        from transformers.utils import logging as hf_logging

        hf_logging.disable_progress_bar()
    except Exception:  # pragma: no cover - older/newer transformers without it
        pass
    st = SentenceTransformer(spec.location or spec.model_id, device="cpu")
    st.eval()
    tok = st.tokenizer
    max_len = int(st.max_seq_length or tok.model_max_length)
    sample = tok(["hello world", "a slightly longer sentence"], padding=True, truncation=True, max_length=max_len,
                 return_tensors="pt")
    names = [k for k in ("input_ids", "attention_mask", "token_type_ids") if k in sample]

    class Whole(torch.nn.Module):
        """The sentence-transformers pipeline with named tensor inputs, normalised like ``encode(..., normalize)``."""

        def __init__(self, model):
            super().__init__()
            self.model = model

        def forward(self, input_ids, attention_mask, token_type_ids=None):
            feats = {"input_ids": input_ids, "attention_mask": attention_mask}
            if token_type_ids is not None:
                feats["token_type_ids"] = token_type_ids
            v = self.model(feats)["sentence_embedding"]
            return torch.nn.functional.normalize(v, p=2, dim=1)

    with torch.no_grad(), warnings.catch_warnings():
        # tracing warns that shape checks become constants: they compare lengths that are equal for every batch
        warnings.simplefilter("ignore")
        graph = ov.convert_model(Whole(st), example_input={k: sample[k] for k in names},
                                 input=[(k, [-1, -1], ov.Type.i64) for k in names])
    got = [sorted(p.get_names()) for p in graph.inputs]
    if [n[0] if len(n) == 1 else n for n in got] != names:
        raise ExportRefused(f"OpenVINO export of {spec.name} has inputs {got}, expected {names}")
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{target.name}-", dir=target.parent))
    try:
        ov.save_model(graph, str(tmp / "model.xml"), compress_to_fp16=False)
        tok.save_pretrained(str(tmp / "tokenizer"))
        meta = {"export_version": EXPORT_VERSION, "model_id": spec.model_id, "location": spec.location,
                "inputs": names, "max_seq_length": max_len, "dim": int((getattr(st, "get_embedding_dimension", None) or st.get_sentence_embedding_dimension)()),
                "openvino": ov.__version__}
        # the check: torch and the compiled graph on the probe texts
        probe = OpenVinoEmbedder.from_dir(tmp, meta=meta)
        ref = st.encode(list(PROBE_TEXTS), normalize_embeddings=True, convert_to_numpy=True)
        cos = float((probe(list(PROBE_TEXTS)) * ref).sum(1).min())
        meta.update(probe_min_cosine=round(cos, 6), probe_precision=probe.precision,
                    export_seconds=round(time.perf_counter() - t0, 1))
        if not cos >= MIN_PROBE_COSINE:
            raise ExportRefused(f"OpenVINO export of {spec.name} gives cosine {cos:.4f} < {MIN_PROBE_COSINE} to torch "
                                f"on the probe texts ({probe.precision}); not used")
        (tmp / "meta.json").write_text(json.dumps(meta, indent=1))
        try:
            os.rename(tmp, target)  # atomic: a parallel export that finished first wins, ours is dropped
        except OSError:
            if not (target / "meta.json").exists():
                raise
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    _say(f"exported in {time.perf_counter() - t0:.0f} s (probe cosine to torch {cos:.5f}, {probe.precision})")
    return target


class OpenVinoEmbedder(Embedder):
    """A sentence-transformers model run by OpenVINO on the CPU (see the module docstring)."""

    backend = "openvino"

    def __init__(self, spec: ModelSpec, batch_size: int = DEFAULT_BATCH_SIZE, threads: int | None = None):
        d = export(spec)
        self._init(d, json.loads((d / "meta.json").read_text()), batch_size, threads)
        self.spec = spec

    @classmethod
    def from_dir(cls, d: Path, meta: dict | None = None, batch_size: int = DEFAULT_BATCH_SIZE,
                 threads: int | None = None) -> OpenVinoEmbedder:
        """Load an export directory as is (no export, no check)."""
        self = cls.__new__(cls)
        self._init(Path(d), meta or json.loads((Path(d) / "meta.json").read_text()), batch_size, threads)
        return self

    def _init(self, d: Path, meta: dict, batch_size: int, threads: int | None) -> None:
        from transformers import AutoTokenizer

        ov = _openvino()
        self.dir = d
        self.model_id = meta["model_id"]
        self.dim = int(meta["dim"])
        self.max_seq_length = int(meta["max_seq_length"])
        self.inputs = list(meta["inputs"])
        self.device = "cpu"
        self.batch_size = batch_size
        self.tokenizer = AutoTokenizer.from_pretrained(str(d / "tokenizer"))
        config = {"INFERENCE_NUM_THREADS": threads} if threads else {}
        self.compiled = ov.Core().compile_model(str(d / "model.xml"), "CPU", config)
        hint = self.compiled.get_property("INFERENCE_PRECISION_HINT")
        self.precision = hint.get_type_name() if hasattr(hint, "get_type_name") else str(hint)  # "bf16" | "f32"
        self._request = self.compiled.create_infer_request()
        self._lock = threading.Lock()  # one infer request: callers on several threads take turns

    def encode(self, texts: list[str]) -> np.ndarray:
        """L2-normalised float32 rows in the caller's order; batches cut from the texts sorted by length."""
        out = np.zeros((len(texts), self.dim), dtype=np.float32)
        if not texts:
            return out
        order = np.argsort([-len(t) for t in texts], kind="stable")
        with self._lock:
            self._run(texts, order, out)
        return out

    def _run(self, texts: list[str], order: np.ndarray, out: np.ndarray) -> None:
        for i in range(0, len(texts), self.batch_size):
            idx = order[i:i + self.batch_size]
            enc = self.tokenizer([texts[j] for j in idx], padding=True, truncation="longest_first",
                                 max_length=self.max_seq_length, return_tensors="np")
            res = self._request.infer({k: enc[k].astype(np.int64) for k in self.inputs})
            out[idx] = res[0]
