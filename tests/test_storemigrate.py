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

from tests.conftest import without_names
from tracelens.cli.main import cli
from tracelens.storeopen import open_store

pytest.importorskip("deltalake")

MODEL = "fake"


def _json(args: list[str], ok=(0,)) -> dict:
    r = CliRunner().invoke(cli, [*args, "--json"], catch_exceptions=False)
    assert r.exit_code in ok, r.output
    return json.loads(r.stdout)



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
    from tracelens.storeopen import open_store

    tid = open_store(store).scan().select("trace_id").sort("trace_id").collect()["trace_id"][0]
    return {
        "similar": _json(["similar", "--like", tid, "--store", store, "--model", MODEL, "--k", "5"]),
        "semantic": _json(["similar", "--semantic", "refund charged twice", "--store", store, "--model", MODEL]),
        "clusters": _json(["clusters", "--store", store, "--model", MODEL, "--no-embed", "--weeks", "8"]),
    }


@pytest.mark.parametrize("kind", ["file", "s3"])
def test_migrate_copies_vectors_and_clusters(kind, embedded_store, tmp_path, request, monkeypatch):
    from tracelens import cluster as cl
    from tracelens.embed import models as M
    from tracelens.embed.vectors import VectorStore, list_models
    from tracelens.storeopen import open_store

    old = embedded_store
    new = f"file://{tmp_path}/new" if kind == "file" else f"s3://{request.getfixturevalue('s3_env').bucket()}/new"
    want = _answers(old)
    assert want["similar"]["hits"] and want["clusters"]["clusters"]

    out = _json(["store", "migrate", old, new])
    assert out["reconciles"] is True
    tables = {t["table"]: t for t in out["tables"]}
    src = open_store(old)
    (vinfo,) = list_models(src)
    vec = tables[f"embeddings/{vinfo['slug']}"]
    assert vec["read"] == vec["written"] == vinfo["vectors"] > 0 and vec["missing"] == 0
    (cinfo,) = cl.list_models(src)
    assert (tables["clusters"]["read"], tables["clusters"]["written"]) == (1, 1)
    assign = tables[f"clusters/{cinfo['id']}/assignments"]
    assert assign["read"] == assign["written"] == cl.stored_assignments(src, cl.load_model(src, cinfo["id"])).height > 0
    assert (tables["clusters/CURRENT.json"]["read"], tables["clusters/CURRENT.json"]["written"]) == (1, 1)

    # the vectors are the old store's, bit for bit
    dst = open_store(new)
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
        assert without_names(_json(["similar", "--like", tid, "--store", new, "--model", MODEL, "--k", "5"]), names) == \
            without_names(want["similar"], names)
        assert without_names(_json(["clusters", "--store", new, "--model", MODEL, "--no-embed", "--weeks", "8"]), names) == \
            without_names(want["clusters"], names)
    semantic = _json(["similar", "--semantic", "refund charged twice", "--store", new, "--model", MODEL])
    assert without_names(semantic, names) == without_names(want["semantic"], names)
    embed = _json(["embed", "--store", new, "--model", MODEL, "--no-progress"])
    assert embed["embedded"] == 0
    assert VectorStore(open_store(new), vinfo["model_id"]).count() == vinfo["vectors"]
    assert [c["id"] for c in cl.list_models(open_store(new))] == [cinfo["id"]]  # nothing fitted again

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

    return open_store(root)


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
        calls["first"] = real(self, *a, **kw)  # a chunk is at most 20 rows of one source file: maybe fewer
        return calls["first"]

    monkeypatch.setattr(DeltaVectorStore, "append", dies_on_the_second_chunk)
    with pytest.raises(KeyboardInterrupt):
        migrate(embedded_store, url, batch_rows=20)
    monkeypatch.setattr(DeltaVectorStore, "append", real)
    (info,) = list_models(_local(embedded_store))
    first = calls["first"]
    assert 0 < first <= 20 and VectorStore(DeltaStore(url), info["model_id"]).count() == first  # the first chunk only
    r = migrate(embedded_store, url, batch_rows=20)
    vec = {c.table: c for c in r.tables}[f"embeddings/{info['slug']}"]
    assert r.reconciles and (vec.written, vec.already) == (info["vectors"] - first, first)
    assert VectorStore(DeltaStore(url), info["model_id"]).count() == info["vectors"]


def _old_store_with_side_data(tmp_path):
    """A store of the older layout with traces, replays, eval results, a suite file and a catalog override."""
    import datetime as dt

    import pyarrow as pa

    from tests.conftest import anthropic_line
    from tracelens.appendtables import append
    from tracelens.evals.runner import RESULT_SCHEMA
    from tracelens.ingest.pipeline import ingest
    from tracelens.replay.storage import REPLAY_SCHEMA
    from tracelens.store import Store

    old = tmp_path / "old"
    store = Store(old, create=True)
    log = tmp_path / "log.jsonl"
    log.write_text("".join(anthropic_line(i) + "\n" for i in range(8)))
    ingest(store, [str(log)], workers=0)
    at = dt.datetime(2026, 11, 18, 10, tzinfo=dt.UTC)
    replays = [{"trace_id": f"t{i}", "replay_id": f"r{i}", "created_at": at} for i in range(3)]
    append(old, "replays", pa.Table.from_pylist(replays, schema=REPLAY_SCHEMA), "created_at")
    results = [{"suite": "s", "run_id": "run1", "run_started_at": at, "target": "m", "provider": "anthropic", "n": 1,
                "case_id": f"c{i}", "repeat": 0, "outcome": "pass", "score": 1.0} for i in range(4)]
    append(old, "evals/results", pa.Table.from_pylist(results, schema=RESULT_SCHEMA), "run_started_at")
    (old / "evals" / "suites").mkdir(parents=True)
    (old / "evals" / "suites" / "s.yaml").write_text("name: s\ncases: []\n")
    (old / "models.json").write_text('{"models": []}\n')
    return old


def test_migrating_into_a_directory_brings_replays_eval_results_and_side_files(tmp_path):
    from tracelens.evals.runner import load_results
    from tracelens.replay.storage import load_replays

    old = _old_store_with_side_data(tmp_path)
    new = tmp_path / "new"
    out = _json(["store", "migrate", str(old), str(new)])
    counts = {t["table"]: t for t in out["tables"]}
    assert out["reconciles"] and not out["left_behind"]
    assert (counts["replays"]["written"], counts["evals/results"]["written"], counts["files"]["written"]) == (3, 4, 2)
    assert (new / "replays" / "_delta_log").is_dir() and (new / "evals" / "results" / "_delta_log").is_dir()
    assert load_replays(new).equals(load_replays(old))
    assert load_results(new).equals(load_results(old))
    assert (new / "evals" / "suites" / "s.yaml").read_text() == "name: s\ncases: []\n"
    assert (new / "models.json").read_text() == '{"models": []}\n'
    again = {t["table"]: t for t in _json(["store", "migrate", str(old), str(new)])["tables"]}
    assert (again["replays"]["written"], again["evals/results"]["already"], again["files"]["already"]) == (0, 4, 2)
    assert len(load_replays(new)) == 3  # nothing appended twice
    r = CliRunner().invoke(cli, ["eval", "list", "--store", str(new), "--json"])
    assert r.exit_code == 0 and "older file layout" not in r.stderr, r.output


def test_migrating_into_a_bucket_lists_what_it_leaves_behind_and_fails(tmp_path, s3_env):
    old = _old_store_with_side_data(tmp_path)
    r = CliRunner().invoke(cli, ["store", "migrate", str(old), f"s3://{s3_env.bucket()}/m"])
    assert r.exit_code == 1
    left = [line for line in r.stderr.splitlines() if line.startswith("not copied:")]
    assert len(left) == 3 and all("does not keep them yet" in line for line in left), r.stderr
