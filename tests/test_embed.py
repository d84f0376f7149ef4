"""Embeddings: fake embedder, vector store, incremental embed job, semantic search (all with --model fake)."""

from __future__ import annotations

import datetime as dt
import json

import numpy as np
import polars as pl
import pyarrow.parquet as pq
import pytest
from click.testing import CliRunner

from tests.conftest import anthropic_line
from tracelens.embed import models as M
from tracelens.embed.run import embed_store, sample_rows
from tracelens.embed.search import nearest, search
from tracelens.embed.vectors import (
    META_DIM,
    META_DTYPE,
    META_MODEL,
    VectorStore,
    VectorStoreError,
    load_vectors,
    trace_embeddings,
)
from tracelens.hashing import text_hash
from tracelens.ingest.pipeline import ingest


@pytest.fixture
def store(files_store):
    """These tests look at the files and the id index of the older file layout (still read and written)."""
    return files_store

TOPICS = {
    "billing": ["refund for my order", "I was charged twice on my credit card", "the invoice amount is wrong"],
    "code": ["python function to sort a list", "fix this javascript undefined error", "sql query joining two tables"],
    "travel": ["cheap flights to tokyo in spring", "best hotels near the eiffel tower", "train from london to edinburgh"],
}


class CountingEmbedder(M.FakeEmbedder):
    """Fake embedder that records every text it is asked to embed, and can fail on a given call."""

    def __init__(self, fail_on_call: int | None = None):
        super().__init__()
        self.seen: list[str] = []
        self.calls = 0
        self.fail_on_call = fail_on_call

    def encode(self, texts):
        self.calls += 1
        if self.fail_on_call is not None and self.calls == self.fail_on_call:
            raise KeyboardInterrupt
        self.seen.extend(texts)
        return super().encode(texts)


def write_log(path, rows, start=0):
    """rows: (timestamp, prompt, response) -> Anthropic log lines with ids from ``start``."""
    path.write_text("\n".join(
        anthropic_line(start + i, ts=ts, prompt=p, text=r, system="You are a support bot.")
        for i, (ts, p, r) in enumerate(rows)
    ) + "\n")
    return path


def topic_rows(days=(1, 2, 3), repeats=2):
    rows = []
    for d in days:
        for topic, prompts in TOPICS.items():
            for j, p in enumerate(prompts):
                for r in range(repeats):  # every prompt repeats: dedupe must embed it once
                    rows.append((f"2026-11-{d:02d}T{8 + j:02d}:{r:02d}:00Z", p, f"{topic} answer {d}-{j}-{r}"))
    return rows


@pytest.fixture
def tstore(store, tmp_path):
    ingest(store, [str(write_log(tmp_path / "a.jsonl", topic_rows()))], enricher=False)
    return store


# ---------------------------------------------------------------------- models


def test_fake_embedder_is_deterministic_normalised_and_similarity_aware():
    a, b = M.FakeEmbedder(), M.FakeEmbedder()
    texts = ["refund for my order", "refund for my orders please", "python function to sort a list", ""]
    va, vb = a(texts), b(texts)
    assert va.shape == (4, 384) and va.dtype == np.float32
    assert np.array_equal(va, vb)
    assert np.allclose(np.linalg.norm(va[:3], axis=1), 1, atol=1e-5)
    assert va[0] @ va[1] > 0.6 > va[0] @ va[2] + 0.3


def test_resolve_model_ids_slugs_and_round_trip(tmp_path):
    d = M.resolve_model(None)
    assert d.model_id == M.MINILM_ID and "/" not in d.slug
    assert M.resolve_model("all-MiniLM-L6-v2").model_id == M.MINILM_ID
    assert M.resolve_model(M.MINILM_ID).slug == d.slug  # a recorded id resolves to the same model
    f = M.resolve_model("fake")
    assert f.model_id == M.FAKE_ID and f.kind == "fake" and M.resolve_model(f.model_id) == M.resolve_model(f.model_id)
    local = M.resolve_model(str(tmp_path))
    assert local.model_id.startswith("local:") and M.resolve_model(local.model_id).slug == local.slug
    assert M.resolve_model("org/some-model").slug == "org--some-model"
    assert M.get_embedder("fake").model_id == M.FAKE_ID


# ---------------------------------------------------------------------- vector store


def test_vector_store_round_trip_float16_metadata_and_dedupe(store):
    vs = VectorStore(store, "fake")
    rng = np.random.default_rng(0)
    v = M.l2_normalise(rng.normal(size=(5, 384)))
    hs = [f"h{i}" for i in range(5)]
    assert vs.append(hs, v) == 5
    assert vs.append(["h0", "h5", "h5"], M.l2_normalise(rng.normal(size=(3, 384)))) == 1  # known and repeated skipped
    found, got = load_vectors(store, "fake", ["h4", "nope", "h0", "h4"])
    assert found == ["h4", "h0"] and got.dtype == np.float32
    assert np.abs(got - v[[4, 0]]).max() < 1e-3  # float16 storage
    cos32 = v @ v.T
    _, all5 = vs.load(hs)
    assert np.abs(all5 @ all5.T - cos32).max() < 2e-3
    files = vs.files()
    assert len(files) == 2 and all(f.parent.name == M.resolve_model("fake").slug for f in files)
    meta = pq.read_schema(files[0]).metadata
    assert meta[META_MODEL.encode()] == M.FAKE_ID.encode()
    assert meta[META_DIM.encode()] == b"384" and meta[META_DTYPE.encode()] == b"float16"
    assert vs.count() == 6 and vs.known_hashes() == {*hs, "h5"}
    # other models never see these vectors
    assert load_vectors(store, "all-MiniLM-L6-v2", hs) == ([], pytest.approx(np.zeros((0, 0))))
    with pytest.raises(VectorStoreError):
        vs.append(["x"], np.ones((1, 8)))  # wrong dimension for this model


@pytest.mark.parametrize("cache_bytes", [0, 10**9])
def test_sparse_dense_and_chunked_reads_agree(store, cache_bytes):
    v = M.l2_normalise(np.random.default_rng(1).normal(size=(300, 384)))
    hs = [f"{i:04d}" for i in range(300)]
    VectorStore(store, "fake").append(hs, v)
    vs = VectorStore(store, "fake", cache_bytes=cache_bytes)
    found, got = vs.load([hs[250], hs[7]])  # sparse: reads only the row groups holding them
    assert found == [hs[250], hs[7]] and np.abs(got - v[[250, 7]]).max() < 1e-3
    found, got = vs.load(hs[::-1])  # dense: one read of the file
    assert found == hs[::-1] and np.abs(got - v[::-1]).max() < 1e-3
    chunks = list(vs.iter_chunks(chunk_rows=64))
    assert [len(h) for h, _ in chunks] == [64, 64, 64, 64, 44]
    assert sum((h for h, _ in chunks), []) == hs
    assert np.abs(np.vstack([m for _, m in chunks]) - v).max() < 1e-3
    some = list(vs.iter_chunks(only=set(hs[::50]), chunk_rows=64))
    assert sum((h for h, _ in some), []) == hs[::50] and all(m.dtype == np.float32 for _, m in some)
    assert (vs._cached_bytes > 0) == (cache_bytes > 0)


def test_vector_store_refuses_files_of_another_model(store):
    VectorStore(store, "fake").append(["a"], np.ones((1, 384)))
    other = VectorStore(store, M.ModelSpec("x", "someone/else", M.resolve_model("fake").slug, "fake"))
    with pytest.raises(VectorStoreError, match="holds vectors of model"):
        other.load(["a"])


def test_compact_merges_files_and_keeps_every_vector(store):
    vs = VectorStore(store, "fake")
    for i in range(5):
        vs.append([f"h{i}"], M.l2_normalise(np.full((1, 384), i + 1.0)))
    assert len(vs.files()) == 5
    assert not vs.compact(min_files=6)
    assert vs.compact(min_files=5)
    assert len(vs.files()) == 1 and vs.count() == 5
    found, v = vs.load(["h3"])
    assert found == ["h3"] and np.allclose(v, 1 / np.sqrt(384), atol=1e-3)
    assert not list((store.root / "_txn").iterdir())


# ---------------------------------------------------------------------- embed job


def test_embed_embeds_each_distinct_text_once_and_second_run_does_nothing(tstore):
    df = tstore.scan().select("prompt_text", "response_text", "system_prompt").collect()
    distinct = set(df["prompt_text"]) | set(df["response_text"]) | set(df["system_prompt"])
    emb = CountingEmbedder()
    r = embed_store(tstore, "fake", embedder=emb)
    assert sorted(emb.seen) == sorted(distinct)  # each distinct text exactly once, across columns and traces
    assert r.embedded == r.distinct == len(distinct) and r.already == 0
    assert r.texts == 3 * df.height and r.traces == df.height
    again = CountingEmbedder()
    r2 = embed_store(tstore, "fake", embedder=again)
    assert r2.embedded == 0 and again.calls == 0
    assert r2.skipped_days == 3 and r2.days == 0 and r2.traces == df.height  # complete days are not even read
    (VectorStore(tstore, "fake").dir / "_complete.json").unlink()  # the marker is only a cache
    r3 = embed_store(tstore, "fake", embedder=again)
    assert r3.embedded == 0 and r3.already == len(distinct) and r3.days == 3 and again.calls == 0
    assert embed_store(tstore, "fake", embedder=again, columns=["prompt_text"]).skipped_days == 3


def test_partial_days_and_samples_are_not_marked_complete(tstore):
    embed_store(tstore, "fake", embedder=M.FakeEmbedder(), sample_per_day=2)
    assert embed_store(tstore, "fake", embedder=M.FakeEmbedder(), sample_per_day=2).skipped_days == 0
    embed_store(tstore, "fake", embedder=M.FakeEmbedder(), since=dt.datetime(2026, 11, 1, 9, tzinfo=dt.UTC))
    emb = CountingEmbedder()
    r = embed_store(tstore, "fake", embedder=emb)
    assert r.skipped_days == 2 and r.days == 1 and r.embedded == len(emb.seen) > 0  # day 1 began before 09:00


def test_embed_new_traces_only_embeds_new_texts(tstore, tmp_path):
    embed_store(tstore, "fake", embedder=CountingEmbedder())
    rows = [("2026-11-04T10:00:00Z", "refund for my order", "brand new answer"),
            ("2026-11-01T11:00:00Z", "a brand new question", "billing answer 1-0-0")]  # a new file in a done day
    ingest(tstore, [str(write_log(tmp_path / "b.jsonl", rows, start=1000))], enricher=False)
    emb = CountingEmbedder()
    r = embed_store(tstore, "fake", embedder=emb)
    assert sorted(emb.seen) == ["a brand new question", "brand new answer"] and r.embedded == 2
    assert r.skipped_days == 2 and r.days == 2  # day 1 (new file) and day 4 (new day) were read


def test_interrupted_embed_keeps_finished_chunks_and_resumes(tstore):
    failing = CountingEmbedder(fail_on_call=3)
    with pytest.raises(KeyboardInterrupt):
        embed_store(tstore, "fake", embedder=failing, commit_every=8)
    kept = VectorStore(tstore, "fake").count()
    assert kept == 16  # two finished commits of 8
    emb = CountingEmbedder()
    r = embed_store(tstore, "fake", embedder=emb, commit_every=8)
    assert r.already == 16 and r.embedded == r.distinct - 16
    assert not set(emb.seen) & set(failing.seen)  # nothing embedded twice
    assert not list((tstore.root / "_txn").iterdir())


def test_embed_progress_reports_totals(tstore):
    calls = []
    r = embed_store(tstore, "fake", embedder=M.FakeEmbedder(), progress=lambda d, t, s: calls.append((d, t)))
    assert calls and calls[-1] == (r.embedded, r.embedded)
    assert all(t == r.embedded for _, t in calls)


def test_embed_window_and_sample(tstore):
    r = embed_store(tstore, "fake", embedder=M.FakeEmbedder(), since=dt.date(2026, 11, 2), until=dt.date(2026, 11, 2),
                    columns=["prompt_text"])
    assert r.days == 1 and r.traces == 18 and r.embedded == 9
    r = embed_store(tstore, "fake", embedder=M.FakeEmbedder(), sample_per_day=4, columns=["response_text"])
    assert r.traces == 12 and r.days == 3


def test_sample_rows_is_deterministic_and_nested():
    df = pl.DataFrame({"trace_id": [f"t{i}" for i in range(100)]})
    a, b = sample_rows(df, 10, seed=1), sample_rows(df, 10, seed=1)
    assert a.equals(b) and a.height == 10
    assert set(a["trace_id"]) <= set(sample_rows(df, 20, seed=1)["trace_id"])
    assert set(a["trace_id"]) != set(sample_rows(df, 10, seed=2)["trace_id"])
    assert sample_rows(df, 500).height == 100


def test_embed_rejects_embedder_of_another_model(tstore):
    with pytest.raises(ValueError, match="embedder is"):
        embed_store(tstore, "all-MiniLM-L6-v2", embedder=M.FakeEmbedder())


# ---------------------------------------------------------------------- reading embeddings for traces


def test_trace_embeddings_align_with_rows_and_mark_missing(tstore):
    embed_store(tstore, "fake", embedder=M.FakeEmbedder(), columns=["prompt_text"])
    df = pl.DataFrame({"prompt_text": ["refund for my order", None, "never embedded text", "   ",
                                       "refund for my order"]})
    out = trace_embeddings(tstore, df, model="fake")
    assert out.shape == (5, 384)
    assert np.isnan(out[:, 0]).tolist() == [False, True, True, True, False]
    assert np.allclose(out[0], M.FakeEmbedder()(["refund for my order"])[0], atol=1e-3)
    filled = trace_embeddings(tstore, df, model="fake", compute_missing=M.FakeEmbedder())
    assert np.isnan(filled[:, 0]).tolist() == [False, True, False, True, False]
    assert text_hash("never embedded text") in VectorStore(tstore, "fake").known_hashes()


# ---------------------------------------------------------------------- semantic search


def test_nearest_finds_the_topic_and_collapses_copies(tstore):
    embed_store(tstore, "fake", embedder=M.FakeEmbedder())
    emb = M.FakeEmbedder()
    r = search(tstore, "refund of my order", model="fake", k=3, embedder=emb)
    top = r.hits.row(0, named=True)
    assert top["text"] == "refund for my order" and top["copies"] == 6  # 3 days x 2 repeats, one hit
    assert r.hits["text_hash"].n_unique() == r.hits.height and r.missing == 0
    every = search(tstore, "refund of my order", model="fake", k=6, distinct=False, embedder=emb).hits
    assert every["text"].to_list() == ["refund for my order"] * 6
    assert every["timestamp"].is_sorted(descending=True)
    pairs = nearest(tstore, "refund of my order", k=2, model="fake", embedder=emb)
    assert isinstance(pairs[0], tuple) and pairs[0][0] == top["trace_id"] and 0 < pairs[0][1] <= 1.0001


def test_nearest_like_a_trace_excludes_itself_and_respects_the_window(tstore):
    embed_store(tstore, "fake", embedder=M.FakeEmbedder())
    tid = tstore.scan().filter(pl.col("prompt_text") == "python function to sort a list").select("trace_id").head(
        1).collect().item()
    hits = search(tstore, like=tid, model="fake", k=5, distinct=False, since=dt.date(2026, 11, 3),
                  until=dt.date(2026, 11, 3)).hits
    assert tid not in hits["trace_id"].to_list()
    assert hits["text"][0] == "python function to sort a list"
    assert all(t.date() == dt.date(2026, 11, 3) for t in hits["timestamp"])
    resp = search(tstore, like=tid, model="fake", k=1, field="response").hits
    assert resp["text"][0].startswith("code answer")


def test_nearest_with_a_vector_and_counts_missing(tstore):
    embed_store(tstore, "fake", embedder=M.FakeEmbedder(), until=dt.date(2026, 11, 1), columns=["prompt_text"])
    q = M.FakeEmbedder()(["cheap flights to tokyo in spring"])[0]
    r = search(tstore, q, model="fake", k=1)
    assert r.hits["text"][0] == "cheap flights to tokyo in spring"
    assert r.window_texts == 9 and r.missing == 0  # prompts are the same each day
    r = search(tstore, q, model="fake", k=1, field="response")
    assert r.hits.height == 0 and r.missing == r.window_texts > 0


# ---------------------------------------------------------------------- CLI


def run_cli(*args):
    from tracelens.cli.main import cli

    res = CliRunner().invoke(cli, list(args), catch_exceptions=False)
    return res


def test_cli_embed_twice_and_similar(tstore):
    s = str(tstore.root)
    r1 = run_cli("embed", "--store", s, "--model", "fake", "--json")
    assert r1.exit_code == 0, r1.output
    d1 = json.loads(r1.stdout)
    assert d1["embedded"] == d1["distinct"] > 0 and d1["model_id"] == M.FAKE_ID
    d2 = json.loads(run_cli("embed", "--store", s, "--model", "fake", "--json").stdout)
    assert d2["embedded"] == 0 and d2["skipped_days"] == 3 and d2["traces"] == d1["traces"]
    out = run_cli("similar", "--store", s, "--model", "fake", "--semantic", "hotel near eiffel tower", "--k", "2",
                  "--json")
    hits = json.loads(out.stdout)["hits"]
    assert hits[0]["text"] == "best hotels near the eiffel tower" and len(hits) == 2
    human = run_cli("embed", "--store", s, "--model", "fake")
    assert "0 embedded now" in human.stdout


def test_cli_usage_errors(tstore):
    s = str(tstore.root)
    assert run_cli("similar", "--store", s, "--model", "fake").exit_code == 2
    assert run_cli("embed", "--store", s, "--model", "fake", "--fields", "nope").exit_code == 2
    r = run_cli("similar", "--store", s, "--model", "fake", "--semantic", "anything")
    assert r.exit_code == 1 and "run `tracelens embed` first" in r.output
    run_cli("embed", "--store", s, "--model", "fake")
    r = run_cli("similar", "--store", s, "--model", "fake", "--like", "no-such-trace")
    assert r.exit_code == 1 and "no trace" in r.output
