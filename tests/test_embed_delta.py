"""The vector cache and topic clusters on Delta Lake stores (``file://`` and S3 on a local moto server).

`tracelens weekly` on the bundled sample logs gives the same findings JSON on a local store and on both
kinds of URL store (with the bundled all-MiniLM-L6-v2); `tracelens embed` on a URL store twice embeds
nothing the second time; concurrent embed processes never store a text's vector twice.
"""

from __future__ import annotations

import json
import multiprocessing as mp
from pathlib import Path

import numpy as np
import polars as pl
import pytest
from click.testing import CliRunner

from tests.conftest import without_names
from tracelens.cli.main import cli
from tracelens.embed import models as M
from tracelens.embed.vectors import DeltaVectorStore, VectorStore, VectorStoreError, list_models
from tracelens.storeopen import open_store

REPO = Path(__file__).resolve().parents[1]
PRODUCTION = REPO / "sample_logs" / "production"
WEEK_FILES = [PRODUCTION / "anthropic-2026-W46.jsonl.gz", PRODUCTION / "anthropic-2026-W47.jsonl.gz"]
SAMPLE_CAP = "60"  # the semantic tests' sample per window: keeps the real model's work to a few hundred texts


def _run(args: list[str]):
    r = CliRunner().invoke(cli, args, catch_exceptions=False)
    return r


def _ingest(url: str, files) -> None:
    r = _run(["ingest", "--store", url, "--no-progress", *map(str, files)])
    assert r.exit_code == 0, r.output


def _weekly(url: str) -> dict:
    r = _run(["weekly", "--store", url, "--week", "2026-W47", "--json", "--sample-cap", SAMPLE_CAP])
    assert r.exit_code in (0, 1), r.output  # 1: findings at or above --fail-on
    return json.loads(r.stdout)



@pytest.fixture(scope="module")
def local_weekly(tmp_path_factory):
    """The weekly report of the two sample weeks in a local store (the reference)."""
    root = tmp_path_factory.mktemp("local") / "store"
    _ingest(str(root), WEEK_FILES)
    return str(root), _weekly(str(root))


@pytest.mark.parametrize("kind", ["delta-file", "delta-s3"])
def test_weekly_findings_on_url_stores_equal_the_local_store(kind, local_weekly, tmp_path, request):
    root, want = local_weekly
    if kind == "delta-s3":
        url = f"s3://{request.getfixturevalue('s3_env').bucket()}/store"
    else:
        url = f"file://{tmp_path}/store"
    _ingest(url, WEEK_FILES)
    got = _weekly(url)
    kinds = {f["kind"] for f in got["findings"]}
    # the semantic, topic and prompt-mix findings are computed (they need the vector cache and the clusters)
    assert {"prompt_mix", "prompt_semantic", "response_semantic"} & kinds, kinds
    assert "prompt_mix" in {f["kind"] for f in want["findings"]}
    assert not any("object-storage" in n for n in got["notes"]), got["notes"]
    assert without_names(got, (url, root)) == without_names(want, (url, root))

    # what the weekly job persisted: the vectors (a Delta table per model), the cluster model and assignments
    store = open_store(url)
    from tracelens import cluster as cl

    cm = cl.current_model(store)
    assert cm is not None and cl.stored_assignments(store, cm).height > 0
    assert [m["model_id"] for m in list_models(store)] == [M.MINILM_ID]
    assert [m["id"] for m in cl.list_models(store)] == [cm.id]
    # a second run reuses them: same report, nothing embedded, the same cluster model
    assert without_names(_weekly(url), (url, root)) == without_names(got, (url, root))
    assert cl.current_model(open_store(url)).id == cm.id


@pytest.fixture(params=["delta-file", "delta-s3"])
def url_store_url(request, tmp_path):
    if request.param == "delta-s3":
        return f"s3://{request.getfixturevalue('s3_env').bucket()}/store"
    return f"file://{tmp_path}/store"


def test_embed_on_a_url_store_twice_embeds_nothing_the_second_time(url_store_url):
    _ingest(url_store_url, [REPO / "sample_logs" / "anthropic_log.jsonl"])
    r = _run(["embed", "--store", url_store_url, "--json", "--no-progress"])
    assert r.exit_code == 0, r.output
    first = json.loads(r.stdout)
    assert first["model_id"] == M.MINILM_ID and first["embedded"] > 0 and first["embedded"] == first["distinct"]
    r = _run(["embed", "--store", url_store_url, "--json", "--no-progress"])
    assert r.exit_code == 0, r.output
    second = json.loads(r.stdout)
    assert second["embedded"] == 0 and second["days"] == 0 and second["skipped_days"] >= 1
    assert second["traces"] == first["traces"]
    vs = VectorStore(open_store(url_store_url), "all-MiniLM-L6-v2")
    assert isinstance(vs, DeltaVectorStore) and vs.count() == first["embedded"] and vs.dim == 384
    # the vectors are those of the model: a text's stored vector is its embedding, float16-rounded
    texts = open_store(url_store_url).scan().select("prompt_text").collect()["prompt_text"].drop_nulls().to_list()[:3]
    from tracelens.hashing import text_hash

    found, got = vs.load([text_hash(t) for t in texts])
    want = M.get_embedder("all-MiniLM-L6-v2")(texts)
    assert len(found) == 3 and np.allclose(got, want, atol=2e-3)


def test_delta_vectors_round_trip_like_local_ones(any_store):
    """Same results on every store kind: float16 rounding, dedupe, load order, chunks, compaction."""
    rng = np.random.default_rng(0)
    v = rng.normal(size=(50, 384)).astype(np.float32)
    hs = [f"h{i}" for i in range(50)]
    vs = VectorStore(any_store, "fake")
    assert vs.dim is None and vs.count() == 0 and vs.load(["h0"])[0] == []
    assert vs.append(hs[:30], v[:30]) == 30
    assert vs.append(hs[20:], v[20:]) == 20  # the 10 already stored are skipped
    assert vs.append(hs[:5] + hs[:5], np.concatenate([v[:5], v[:5]])) == 0
    fresh = VectorStore(any_store, "fake", cache_bytes=0)
    assert fresh.count() == 50 and fresh.known_hashes() == set(hs)
    found, got = fresh.load(["h42", "nope", "h3", "h42"])
    assert found == ["h42", "h3"]
    want = M.l2_normalise(v[[42, 3]]).astype(np.float16).astype(np.float32)
    assert got.dtype == np.float32 and np.array_equal(got, want)
    chunks = list(fresh.iter_chunks(only={"h1", "h44"}, chunk_rows=7))
    assert sorted(h for c in chunks for h in c[0]) == ["h1", "h44"]
    assert vs.compact(min_files=2) and len(vs.files()) == 1 and VectorStore(any_store, "fake").count() == 50
    assert np.array_equal(VectorStore(any_store, "fake").load(["h42", "h3"])[1], want)
    other = VectorStore(any_store, M.ModelSpec("x", "someone/else", M.resolve_model("fake").slug, "fake"))
    with pytest.raises(VectorStoreError, match="someone/else"):
        other.count()


class SlowFake(M.FakeEmbedder):
    """The fake embedder, slowed down so that concurrent runs overlap: each has found what is missing (all of
    it) before any of them commits."""

    def encode(self, texts):
        import time

        time.sleep(0.5)
        return super().encode(texts)


def _embed_worker(url: str, env: dict, barrier, out) -> None:
    import os

    os.environ.update(env)
    from tracelens.embed.run import embed_store
    from tracelens.storeopen import open_store as _open

    store = _open(url, write=True)
    barrier.wait()
    r = embed_store(store, "fake", embedder=SlowFake(), commit_every=16)
    out.put(r.embedded)


def test_concurrent_embed_processes_store_each_vector_once(url_store_url, request):
    _ingest(url_store_url, [REPO / "sample_logs" / "anthropic_log.jsonl", REPO / "sample_logs" / "openai_log.jsonl"])
    env = request.getfixturevalue("s3_env").env() if url_store_url.startswith("s3://") else {}
    ctx = mp.get_context("spawn")
    barrier, out = ctx.Barrier(3), ctx.Queue()
    procs = [ctx.Process(target=_embed_worker, args=(url_store_url, env, barrier, out)) for _ in range(3)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(180)
        assert p.exitcode == 0
    embedded = [out.get(timeout=5) for _ in procs]
    store = open_store(url_store_url)
    vs = VectorStore(store, "fake")
    snap = store.side_table(vs.path)
    hashes = pl.from_arrow(snap.to_pyarrow_dataset().to_table(columns=["text_hash"]))["text_hash"]
    # every process embedded every text (they overlapped), and each text's vector is stored once
    assert embedded == [hashes.n_unique()] * 3 and hashes.n_unique() > 0
    assert hashes.len() == hashes.n_unique()
    # and every text of the store has its vector: a later run finds nothing to embed
    assert VectorStore(store, "fake").count() == hashes.len()
    from tracelens.embed.run import embed_store

    assert embed_store(store, "fake", embedder=M.FakeEmbedder()).embedded == 0


def _append_worker(url: str, env: dict, barrier, rotate: int) -> None:
    import os

    os.environ.update(env)
    from tracelens.storeopen import open_store as _open

    vs = VectorStore(_open(url, write=True), "fake")
    hs = [f"h{i:03d}" for i in range(60)]
    v = M.FakeEmbedder()(hs)
    order = hs[rotate * 20:] + hs[:rotate * 20]
    # straight to the MERGE, past append's own check of the known hashes: what keeps them unique is the commit
    vs.known_hashes = set
    barrier.wait()
    for i in range(0, 60, 10):
        batch = order[i:i + 10]
        vs.append(batch, v[[hs.index(h) for h in batch]])


def test_concurrent_vector_commits_never_store_a_hash_twice(url_store_url, request):
    open_store(url_store_url, create=True)
    VectorStore(open_store(url_store_url), "fake").append(["seed"], M.FakeEmbedder()(["seed"]))
    env = request.getfixturevalue("s3_env").env() if url_store_url.startswith("s3://") else {}
    ctx = mp.get_context("spawn")
    barrier = ctx.Barrier(3)
    procs = [ctx.Process(target=_append_worker, args=(url_store_url, env, barrier, r)) for r in range(3)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(180)
        assert p.exitcode == 0
    store = open_store(url_store_url)
    snap = store.side_table(VectorStore(store, "fake").path)
    hashes = pl.from_arrow(snap.to_pyarrow_dataset().to_table(columns=["text_hash"]))["text_hash"]
    assert hashes.n_unique() == 61 and hashes.len() == 61
