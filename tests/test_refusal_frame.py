"""detect_frame over polars frames, and the optional semantic layer."""

from __future__ import annotations

import hashlib
import json
import re

import numpy as np
import polars as pl
import pytest

from tracelens.enrich import DETECTOR_VERSION, detect_frame
from tracelens.enrich.refusal import (
    REFUSAL_COLUMNS,
    build_semantic_index,
    compliance_exemplars,
    detect,
    index_from_arrays,
    refusal_exemplars,
)


def fake_embedder(texts: list[str]) -> np.ndarray:
    """Deterministic hashed bag-of-words vectors: no model, no torch."""
    out = np.zeros((len(texts), 256), dtype=np.float32)
    for i, t in enumerate(texts):
        for w in re.findall(r"[a-z']+", t.lower()):
            h = int(hashlib.md5(w.encode()).hexdigest(), 16)
            out[i, h % 256] += 1.0 if (h >> 8) % 2 else -1.0
    return out


def test_detect_frame_fills_all_refusal_columns():
    df = pl.DataFrame(
        {
            "trace_id": ["a", "b", "c", "d", "e"],
            "provider": ["anthropic", "openai", "openai", "anthropic", "bedrock"],
            "response_text": [
                "The capital of France is Paris.",
                "I'm sorry, but I can't help with that.",
                None,
                "",
                "Sorry, the model cannot answer this question.",
            ],
            "stop_reason": ["end_turn", "end_turn", "error", "refusal", "other"],
            "stop_reason_raw": ["end_turn", "stop", None, "refusal", "guardrail_intervened"],
            "stop_details": [None, None, None, json.dumps({"category": "bio"}), None],
            "status": ["ok", "ok", "error", "ok", "ok"],
            "http_status": [200, 200, 400, 200, 200],
            "error_type": [None, None, "invalid_request_error", None, None],
            "error_message": [None, None, "Your request was flagged by our content policy.", None, None],
            "response_raw": [None, None, None, None, None],
        },
        schema_overrides={"response_raw": pl.String, "http_status": pl.Int64},
    )
    out = detect_frame(df)
    assert out.columns[: len(df.columns)] == df.columns
    for c in REFUSAL_COLUMNS:
        assert c in out.columns
    assert out.schema["refusal"] == pl.String
    assert out.schema["refusal_score"] == pl.Float64
    assert out["refusal"].to_list() == ["none", "full", "full", "full", "full"]
    assert out["refusal_source"].to_list() == [None, "text", "structured", "structured", "structured"]
    assert out["refusal_category"][3] == "bio"
    assert out["refusal_category"][2].startswith("content_policy_error")
    assert set(out["refusal_version"].to_list()) == {DETECTOR_VERSION}
    assert out["refusal_evidence"][0] is None and out["refusal_evidence"][1]
    assert all(0.0 <= s <= 1.0 for s in out["refusal_score"].to_list())


def test_detect_frame_with_only_response_text():
    df = pl.DataFrame({"response_text": ["ok, here you go: 42", "I won't do that."]})
    out = detect_frame(df)
    assert out["refusal"].to_list() == ["none", "full"]


def test_detect_frame_without_any_input_columns():
    out = detect_frame(pl.DataFrame({"x": [1, 2]}))
    assert out["refusal"].to_list() == ["none", "none"]


def test_detect_frame_replaces_existing_refusal_columns():
    df = pl.DataFrame({"response_text": ["I can't help with that."], "refusal": ["none"], "refusal_version": ["old"]})
    out = detect_frame(df)
    assert out["refusal"].to_list() == ["full"]
    assert out["refusal_version"].to_list() == [DETECTOR_VERSION]
    assert out.columns.count("refusal") == 1


def test_detect_frame_empty():
    out = detect_frame(pl.DataFrame({"response_text": []}, schema={"response_text": pl.String}))
    assert out.height == 0 and "refusal" in out.columns


# --- semantic layer ----------------------------------------------------------------------------------


def test_exemplars_are_ours_and_nonempty():
    assert len(refusal_exemplars()) >= 10 and len(compliance_exemplars()) >= 5
    assert all(isinstance(t, str) and t for t in refusal_exemplars())


def test_semantic_layer_promotes_a_refusal_like_embedding():
    index = build_semantic_index(fake_embedder)
    text = "Nope, not going there."  # no rule fires on this
    assert detect(text).label == "none"
    refusal_vec = fake_embedder([refusal_exemplars()[0]])[0]
    r = detect(text, embedding=refusal_vec, semantic=index)
    assert r.label == "full" and r.source == "semantic"
    assert "nearest refusal exemplar" in r.evidence


def test_semantic_layer_leaves_answers_alone():
    index = build_semantic_index(fake_embedder)
    text = "Here is a short poem about the sea at dawn."
    vec = fake_embedder([text])[0]
    assert detect(text, embedding=vec, semantic=index).label == "none"


def test_semantic_layer_never_overrides_text_or_structured():
    index = build_semantic_index(fake_embedder)
    vec = fake_embedder(["Here is the code you asked for."])[0]
    assert detect("I can't help with that.", embedding=vec, semantic=index).source == "text"
    assert detect("ok", stop_reason="refusal", embedding=vec, semantic=index).source == "structured"


def test_embedding_without_index_is_ignored_and_dimension_checked():
    vec = np.ones(256, dtype=np.float32)
    assert detect("hello", embedding=vec).label == "none"
    index = build_semantic_index(fake_embedder)
    with pytest.raises(ValueError):
        detect("hello", embedding=np.ones(8), semantic=index)


def test_index_from_precomputed_arrays():
    ref = fake_embedder(list(refusal_exemplars()))
    comp = fake_embedder(list(compliance_exemplars()))
    index = index_from_arrays(ref, comp)
    assert index.dim == 256
    with pytest.raises(ValueError):
        index_from_arrays(ref[:3], comp)


def test_detect_frame_with_embeddings():
    index = build_semantic_index(fake_embedder)
    texts = ["Nope, not going there.", "Here is a short poem about the sea at dawn."]
    vecs = np.stack([fake_embedder([refusal_exemplars()[0]])[0], fake_embedder([texts[1]])[0]])
    out = detect_frame(pl.DataFrame({"response_text": texts}), embeddings=vecs, semantic=index)
    assert out["refusal"].to_list() == ["full", "none"]
    assert out["refusal_source"].to_list() == ["semantic", None]
    with pytest.raises(ValueError):
        detect_frame(pl.DataFrame({"response_text": texts}), embeddings=vecs)  # no index to compare against
    with pytest.raises(ValueError):
        detect_frame(pl.DataFrame({"response_text": texts}), embeddings=vecs[:1], semantic=index)


def test_enrich_core_does_not_import_ui_libraries():
    from pathlib import Path

    import tracelens.enrich

    for f in Path(tracelens.enrich.__file__).parent.glob("*.py"):
        src = f.read_text(encoding="utf-8")
        assert not re.search(r"^\s*(?:import|from)\s+(?:click|textual)\b", src, re.M), f


def test_detect_columns_batch_path_is_detect_row_by_row():
    """detect_columns classifies the text-only rows together (classify_many); every row still gets what detect
    gives it, with provider signals, repeats, empty and missing texts mixed in."""
    import random
    import sys
    from pathlib import Path

    sys.path.insert(0, str(Path(__file__).resolve().parent / "fixtures" / "refusal"))
    from generate_gate_corpus import corpus

    from tracelens.enrich.refusal import detect_columns

    rng = random.Random(5)
    texts = corpus(400, seed=11)
    rows = []
    for _ in range(600):
        r = rng.random()
        text = rng.choice(texts) if r < 0.8 else rng.choice([None, "", "  \n", "I can't help with that."])
        stop = rng.choice([None, None, None, "refusal", "end_turn", "content_filter"])
        provider = rng.choice([None, "anthropic", "openai"])
        http = rng.choice([None, None, 200, 400])
        rows.append((text, stop, provider, http))
    cols = {
        "response_text": [r[0] for r in rows],
        "stop_reason": [r[1] for r in rows],
        "provider": [r[2] for r in rows],
        "http_status": [r[3] for r in rows],
    }
    out = detect_columns(cols, len(rows))
    for i, (text, stop, provider, http) in enumerate(rows):
        want = detect(text, stop_reason=stop, provider=provider, http_status=http)
        got = (out["refusal"][i], out["refusal_score"][i], out["refusal_source"][i], out["refusal_category"][i],
               out["refusal_evidence"][i])
        assert got == (want.label, float(want.score), want.source, want.category, want.evidence), (i, rows[i])
