"""`tracelens store migrate` copies the embedding vectors and topic clusters with the tables.

After migrating a local store that `weekly` has embedded and clustered, into a ``file://`` store and into S3 (moto's
server on 127.0.0.1), `similar` and `clusters` answer on the new store as on the old one with no embedder at hand,
the vectors are the old store's bit for bit, the counts reconcile per model and per cluster model, a second run
copies nothing, and a current cluster model the new store already has for the same embedding model is a conflict.
"""

from __future__ import annotations

import json

import numpy as np
import pytest
from click.testing import CliRunner

from tracelens.cli.main import cli

pytest.importorskip("deltalake")

MODEL = "fake"


def _json(args: list[str], ok=(0,)) -> dict:
    r = CliRunner().invoke(cli, [*args, "--json"], catch_exceptions=False)
    assert r.exit_code in ok, r.output
    return json.loads(r.stdout)


def _without(obj, names: tuple[str, ...]):
    if isinstance(obj, dict):
        return {k: _without(v, names) for k, v in obj.items() if not (isinstance(v, str) and any(n in v for n in names))}
    if isinstance(obj, list):
        return [_without(v, names) for v in obj]
    return obj


@pytest.fixture(scope="module")
def embedded_store(tmp_path_factory):
    """A local store of two generated weeks, clustered by `weekly` and every text embedded (the fake embedder)."""
    from tracelens.samples.generator import main as generate

    base = tmp_path_factory.mktemp("old")
    generate(["--out", str(base / "logs"), "--weeks", "2", "--per-day", "6"])
    root = str(base / "store")
    r = CliRunner().invoke(cli, ["ingest", "--store", root, "--no-progress", str(base / "logs")])
    assert r.exit_code == 0, r.output
    _json(["weekly", "--store", root, "--model", MODEL], ok=(0, 1))
    assert _json(["embed", "--store", root, "--model", MODEL, "--no-progress"])["embedded"] >= 0  # system prompts too
    return root


def _answers(store: str) -> dict:
    """What `similar` (by trace, by text) and `clusters` say about ``store``."""
    from tracelens.deltastore import open_any

    tid = open_any(store).scan().select("trace_id").sort("trace_id").collect()["trace_id"][0]
    return {
        "similar": _json(["similar", "--like", tid, "--store", store, "--model", MODEL, "--k", "5"]),
        "semantic": _json(["similar", "--semantic", "refund charged twice", "--store", store, "--model", MODEL]),
        "clusters": _json(["clusters", "--store", store, "--model", MODEL, "--no-embed", "--weeks", "8"]),
    }


@pytest.mark.parametrize("kind", ["file", "s3"])
def test_migrate_copies_vectors_and_clusters(kind, embedded_store, tmp_path, request, monkeypatch):
    from tracelens import cluster as cl
    from tracelens.deltastore import open_any
    from tracelens.embed import models as M
    from tracelens.embed.vectors import VectorStore, list_models

    old = embedded_store
    new = f"file://{tmp_path}/new" if kind == "file" else f"s3://{request.getfixturevalue('s3_env').bucket()}/new"
    want = _answers(old)
    assert want["similar"]["hits"] and want["clusters"]["clusters"]

    out = _json(["store", "migrate", old, new])
    assert out["reconciles"] is True
    tables = {t["table"]: t for t in out["tables"]}
    src = open_any(old)
    (vinfo,) = list_models(src)
    vec = tables[f"embeddings/{vinfo['slug']}"]
    assert vec["read"] == vec["written"] == vinfo["vectors"] > 0 and vec["missing"] == 0
    (cinfo,) = cl.list_models(src)
    assert (tables["clusters"]["read"], tables["clusters"]["written"]) == (1, 1)
    assign = tables[f"clusters/{cinfo['id']}/assignments"]
    assert assign["read"] == assign["written"] == cl.stored_assignments(src, cl.load_model(src, cinfo["id"])).height > 0
    assert (tables["clusters/CURRENT.json"]["read"], tables["clusters/CURRENT.json"]["written"]) == (1, 1)

    # the vectors are the old store's, bit for bit
    dst = open_any(new)
    old_vs, new_vs = VectorStore(src, vinfo["model_id"]), VectorStore(dst, vinfo["model_id"])
    for hashes, vecs in old_vs.iter_chunks():
        found, got = new_vs.load(hashes)
        assert found == hashes and np.array_equal(got.astype(np.float16), vecs.astype(np.float16))
    assert cl.current_ids(dst) == cl.current_ids(src)

    # `similar` by trace and `clusters` answer alike with no embedder at hand: nothing is embedded or fitted again
    def no_embedder(*a, **kw):
        raise AssertionError("the migrated store needed an embedder")

    names = (old, new)
    with monkeypatch.context() as m:
        for mod in (M, cl):  # cluster.py holds its own reference
            m.setattr(mod, "get_embedder", no_embedder)
        tid = dst.scan().select("trace_id").sort("trace_id").collect()["trace_id"][0]
        assert _without(_json(["similar", "--like", tid, "--store", new, "--model", MODEL, "--k", "5"]), names) == \
            _without(want["similar"], names)
        assert _without(_json(["clusters", "--store", new, "--model", MODEL, "--no-embed", "--weeks", "8"]), names) == \
            _without(want["clusters"], names)
    semantic = _json(["similar", "--semantic", "refund charged twice", "--store", new, "--model", MODEL])
    assert _without(semantic, names) == _without(want["semantic"], names)
    embed = _json(["embed", "--store", new, "--model", MODEL, "--no-progress"])
    assert embed["embedded"] == 0
    assert VectorStore(open_any(new), vinfo["model_id"]).count() == vinfo["vectors"]
    assert [c["id"] for c in cl.list_models(open_any(new))] == [cinfo["id"]]  # nothing fitted again

    # a second run copies nothing and still reconciles
    again = _json(["store", "migrate", old, new])
    assert again["reconciles"] is True
    assert all(t["written"] == 0 and t["already"] == t["read"] for t in again["tables"]), again["tables"]


def test_a_different_current_cluster_model_in_new_is_a_conflict(embedded_store, tmp_path):
    from tracelens import cluster as cl
    from tracelens.deltastore import DeltaStore
    from tracelens.storemigrate import migrate

    url = f"file://{tmp_path}/new"
    dst = DeltaStore(url, create=True)
    (emb,) = cl.current_ids(_local(embedded_store))
    dst.put_object(f"{cl.TABLE}/CURRENT.json", json.dumps({emb: "another-model"}).encode())
    r = migrate(embedded_store, url)
    cur = {c.table: c for c in r.tables}[f"{cl.TABLE}/CURRENT.json"]
    assert (cur.read, cur.conflicts, cur.written) == (1, 1, 0) and not r.reconciles
    assert cl.current_ids(DeltaStore(url)) == {emb: "another-model"}  # kept as it was
    r = CliRunner().invoke(cli, ["store", "migrate", embedded_store, url])
    assert r.exit_code == 1 and "does not reconcile" in r.stderr


def _local(root: str):
    from tracelens.store import Store

    return Store(root)


def test_a_migration_interrupted_in_the_vectors_finishes_when_run_again(embedded_store, tmp_path, monkeypatch):
    from tracelens.deltastore import DeltaStore
    from tracelens.embed.vectors import DeltaVectorStore, VectorStore, list_models
    from tracelens.storemigrate import migrate

    url = f"file://{tmp_path}/new"
    real = DeltaVectorStore.append
    calls = {"n": 0}

    def dies_on_the_second_chunk(self, *a, **kw):
        calls["n"] += 1
        if calls["n"] == 2:
            raise KeyboardInterrupt
        return real(self, *a, **kw)

    monkeypatch.setattr(DeltaVectorStore, "append", dies_on_the_second_chunk)
    with pytest.raises(KeyboardInterrupt):
        migrate(embedded_store, url, batch_rows=20)
    monkeypatch.setattr(DeltaVectorStore, "append", real)
    (info,) = list_models(_local(embedded_store))
    assert VectorStore(DeltaStore(url), info["model_id"]).count() == 20  # the first chunk only
    r = migrate(embedded_store, url, batch_rows=20)
    vec = {c.table: c for c in r.tables}[f"embeddings/{info['slug']}"]
    assert r.reconciles and (vec.written, vec.already) == (info["vectors"] - 20, 20)
    assert VectorStore(DeltaStore(url), info["model_id"]).count() == info["vectors"]
