"""Topic clusters: fit, labels, stable assignments, HDBSCAN noise, weekly summary (all with --model fake)."""

from __future__ import annotations

import datetime as dt
import json

import numpy as np
import polars as pl
import pytest
from click.testing import CliRunner

from tests.test_embed import write_log
from tracelens import cluster as C
from tracelens.embed.models import FakeEmbedder
from tracelens.embed.vectors import VectorStore
from tracelens.ingest.pipeline import ingest

# two levels of structure: 3 topics (shared phrase) x 4 templates (own phrase) x suffix variants
TOPICS = {
    "billing": ("my credit card payment was charged twice, please refund the invoice",
                ["for order 1234", "on the annual plan", "from last monday", "after I cancelled"]),
    "code": ("my python function raises an exception when sorting the list",
             ["of dictionaries by key", "with None values", "in pandas dataframes", "using a lambda"]),
    "travel": ("book cheap flights and a hotel for a holiday trip",
               ["to tokyo in spring", "to paris near the eiffel tower", "from london to edinburgh",
                "to a beach in greece"]),
}
SUFFIXES = ["", " please", " thanks"]
REFUSAL = "I'm sorry, but I can't help with that request."


def rows_for(days, seed=0):
    """Every template of every topic with 1-3 suffix variants per day; billing answers are often refusals."""
    rng = np.random.default_rng(seed)
    rows = []
    for d in days:
        for topic, (base, variants) in TOPICS.items():
            for j, v in enumerate(variants):
                for s in SUFFIXES[: 1 + (d.day + j) % 3]:
                    refused = topic == "billing" and rng.random() < 0.5
                    rows.append((f"{d.isoformat()}T{8 + j:02d}:{len(s):02d}:00Z", f"{base} {v}{s}",
                                 REFUSAL if refused else f"Here is help with {topic}."))
    return rows


DAYS = [dt.date(2026, 11, 2) + dt.timedelta(days=i) for i in range(14)]


@pytest.fixture
def cstore(store, tmp_path):
    ingest(store, [str(write_log(tmp_path / "a.jsonl", rows_for(DAYS)))])  # with the refusal detector
    return store


def topic_of(text: str) -> str:
    return next((t for t, (base, _) in TOPICS.items() if text.startswith(base)), "other")


def test_fit_finds_the_templates_labels_them_and_saves(cstore):
    cm = C.fit_clusters(cstore, model="fake", embedder=FakeEmbedder())
    assert cm.algorithm == "kmeans" and cm.k_selection["method"] == "silhouette"
    assert cm.k == 12  # one cluster per prompt template, suffixes ignored
    assert cm.window_since == "2026-10-19" and cm.window_until == "2026-11-15"  # 28 days up to the newest
    df = cstore.scan().select("trace_id", "prompt_text").collect()
    ids = C.assign_clusters(cstore, df, model="fake")
    assert ids.dtype == pl.Int32 and ids.null_count() == 0
    base = df.with_columns(ids, pl.col("prompt_text").str.replace(r" (please|thanks)$", "").alias("base"))
    assert base.group_by("base").agg(pl.col("cluster_id").n_unique())["cluster_id"].max() == 1  # a template = a cluster
    for c in cm.clusters:
        assert len(c.terms) == 4 and c.label == ", ".join(c.terms)
        assert len(c.examples) == 3 and all(cstore.get(e["trace_id"]) for e in c.examples)
        # the distinctive terms come from the cluster's own prompts
        ex = c.examples[0]["text"].lower()
        assert any(t in ex for t in c.terms), (c.terms, ex)
    assert [c.size for c in cm.clusters] == sorted((c.size for c in cm.clusters), reverse=True)  # 0 = largest
    d = cstore.root / "clusters" / cm.id
    assert (d / "model.json").exists() and np.load(d / "centroids.npy").shape == (12, 384)
    assert json.loads((cstore.root / "clusters" / "CURRENT.json").read_text()) == {cm.embedding_model_id: cm.id}
    assert C.cluster_labels(cstore, "fake") == {c.cluster_id: c.label for c in cm.clusters}
    assert C.load_model(cstore, cm.id).to_dict() == cm.to_dict()


def test_fit_is_deterministic(cstore):
    a = C.fit_clusters(cstore, model="fake", embedder=FakeEmbedder(), k=5, save=False)
    b = C.fit_clusters(cstore, model="fake", embedder=FakeEmbedder(), k=5, save=False)
    assert a.id == b.id and np.array_equal(a.centroids, b.centroids) and a.labels == b.labels
    assert C.current_model(cstore, "fake") is None  # save=False leaves nothing behind


def test_assignments_are_stable_and_reused_until_refit(cstore, tmp_path):
    cm = C.fit_clusters(cstore, model="fake", embedder=FakeEmbedder(), k=3)
    first = C.assign_store(cstore, model="fake")
    assert first["newly_assigned"] == first["distinct_prompts"] > 0
    assert C.assign_store(cstore, model="fake")["newly_assigned"] == 0  # keyed by prompt hash, stored once
    # a later week arrives: the same model assigns it, old ids do not move
    later = [dt.date(2026, 11, 23) + dt.timedelta(days=i) for i in range(3)]
    ingest(cstore, [str(write_log(tmp_path / "b.jsonl", rows_for(later, seed=1) +
                                  [("2026-11-24T12:00:00Z", TOPICS["billing"][0] + " tomorrow", "ok")], start=5000))])
    df = cstore.scan().select("timestamp", "prompt_text").collect()
    ids = C.assign_clusters(cstore, df, model="fake", embed_missing=FakeEmbedder())
    assert C.current_model(cstore, "fake").id == cm.id
    topics = df.with_columns(ids, pl.col("prompt_text").map_elements(topic_of, return_dtype=pl.String).alias("t"))
    per_topic = topics.group_by("t").agg(pl.col("cluster_id").n_unique().alias("n"), pl.col("cluster_id").first())
    assert per_topic["n"].to_list() == [1, 1, 1] and per_topic["cluster_id"].n_unique() == 3
    stored = C.stored_assignments(cstore, cm)
    assert stored["text_hash"].is_unique().all() and stored.height == df["prompt_text"].n_unique()
    refit = C.fit_clusters(cstore, model="fake", embedder=FakeEmbedder(), k=4)
    assert refit.id != cm.id and C.current_model(cstore, "fake").id == refit.id
    assert {m["id"] for m in C.list_models(cstore)} == {cm.id, refit.id}


def test_assign_without_vectors_and_without_embedding_gives_nulls(cstore):
    C.fit_clusters(cstore, model="fake", embedder=FakeEmbedder(), k=3)
    df = pl.DataFrame({"prompt_text": ["a prompt never seen before", None, TOPICS["code"][0] + " using a lambda"]})
    ids = C.assign_clusters(cstore, df, model="fake", embed_missing=False, persist=False)
    assert ids.to_list()[:2] == [None, None] and ids[2] is not None
    ids = C.assign_clusters(cstore, df, model="fake", embed_missing=FakeEmbedder())
    assert ids.null_count() == 1


def test_no_model_and_no_vectors_are_explained(cstore):
    with pytest.raises(C.ClusterError, match="run `tracelens cluster`"):
        C.assign_clusters(cstore, pl.DataFrame({"prompt_text": ["x"]}), model="fake")
    with pytest.raises(C.ClusterError, match="no prompt embeddings"):
        C.fit_clusters(cstore, model="fake", embed_missing=False)
    with pytest.raises(C.ClusterError, match="unknown algorithm"):
        C.fit_clusters(cstore, model="fake", algorithm="dbscan")


def test_hdbscan_marks_outliers_as_noise(cstore, tmp_path):
    outliers = [("2026-11-10T03:00:00Z", t, "ok") for t in
                ["zzz qqq xxyy vvww", "0987 !!! ###", "quantum chromodynamics lattice gauge"]]
    ingest(cstore, [str(write_log(tmp_path / "o.jsonl", outliers, start=9000))])
    cm = C.fit_clusters(cstore, model="fake", embedder=FakeEmbedder(), algorithm="hdbscan")
    assert cm.algorithm == "hdbscan" and cm.k >= 3 and cm.noise >= 3
    assert all(c.radius and c.radius > 0 for c in cm.clusters)
    ids = C.assign_clusters(cstore, pl.DataFrame({"prompt_text": ["zzz qqq xxyy vvww", TOPICS["travel"][0] + " now",
                                                                  "completely different words entirely"]}),
                            model="fake", embed_missing=FakeEmbedder())
    assert ids[0] == -1 and ids[1] >= 0 and ids[2] == -1


def test_summary_counts_traces_and_refusals_per_week(cstore):
    C.fit_clusters(cstore, model="fake", embedder=FakeEmbedder(), k=3)
    s = C.cluster_summary(cstore, model="fake")
    assert s.weeks == ["2026-11-02", "2026-11-09"] and s.unassigned == 0
    df = cstore.scan().select("timestamp", "prompt_text", "refusal").collect()
    assert sum(r.traces for r in s.clusters) == df.height
    billing = [r for r in s.clusters if topic_of(r.examples[0]["text"]) == "billing"]
    assert len(billing) == 1
    b = billing[0]
    want = (df.filter(pl.col("prompt_text").map_elements(topic_of, return_dtype=pl.String) == "billing")
            .group_by(pl.col("timestamp").dt.truncate("1w").dt.date().alias("w"))
            .agg(pl.len(), (pl.col("refusal") != "none").sum().alias("r")).sort("w"))
    assert [(w.traces, w.refusals) for w in b.weeks] == list(zip(want["len"], want["r"], strict=True))
    assert 0 < b.weeks[0].refusal_rate < 1
    others = [r for r in s.clusters if r is not b]
    assert all(w.refusals == 0 for r in others for w in r.weeks)
    js = s.to_dict()
    assert js["clusters"][0]["weeks"][0]["refusal_rate"] is not None


def test_ctfidf_prefers_distinctive_terms():
    terms = C.ctfidf_terms({0: ["refund order refund", "order status"], 1: ["python code", "python list order"]}, 2)
    assert terms[0][0] == "refund" and terms[1][0] == "python"
    assert C.ctfidf_terms({0: ["the and of", "123 456"]}) == {0: []}


def test_choose_k_uses_silhouette_only_with_structure():
    rng = np.random.default_rng(0)
    centres = rng.normal(size=(6, 32))
    x = np.vstack([c + 0.05 * rng.normal(size=(40, 32)) for c in centres])
    x /= np.linalg.norm(x, axis=1, keepdims=True)
    k, info = C.choose_k(x, seed=0, grid=(4, 6, 8, 12))
    assert k == 6 and info["method"] == "silhouette"
    noise = rng.normal(size=(400, 32))
    k, info = C.choose_k(noise / np.linalg.norm(noise, axis=1, keepdims=True), seed=0, grid=(4, 6, 8, 12))
    assert info["method"].startswith("rule") and k == C.rule_k(400) == 14
    assert C.rule_k(3) == 3 and C.rule_k(10**7) == C.K_MAX


def run_cli(*args):
    from tracelens.cli.main import cli

    return CliRunner().invoke(cli, list(args), catch_exceptions=False)


def test_cli_cluster_then_clusters(cstore):
    s = str(cstore.root)
    VectorStore(cstore, "fake")  # nothing embedded yet: `cluster` embeds the window's prompts itself
    r = run_cli("cluster", "--store", s, "--model", "fake", "--k", "3", "--json")
    assert r.exit_code == 0, r.output
    d = json.loads(r.stdout)
    assert d["fitted"] and d["model"]["k"] == 3 and d["assignment"]["traces"] == cstore.count()
    again = json.loads(run_cli("cluster", "--store", s, "--model", "fake", "--json").stdout)
    assert not again["fitted"] and again["model"]["id"] == d["model"]["id"]
    out = json.loads(run_cli("clusters", "--store", s, "--model", "fake", "--json").stdout)
    assert out["cluster_model_id"] == d["model"]["id"] and len(out["clusters"]) == 3
    table = run_cli("clusters", "--store", s, "--model", "fake")
    assert table.exit_code == 0 and "11-09" in table.stdout
    refit = json.loads(run_cli("cluster", "--store", s, "--model", "fake", "--refit", "--k", "4", "--json").stdout)
    assert refit["fitted"] and refit["model"]["id"] != d["model"]["id"]


def test_cli_clusters_without_model_fails_cleanly(cstore):
    r = run_cli("clusters", "--store", str(cstore.root), "--model", "fake")
    assert r.exit_code == 1 and "tracelens cluster" in r.output


def test_tiny_windows(store, tmp_path):
    ingest(store, [str(write_log(tmp_path / "t.jsonl", [("2026-11-02T08:00:00Z", "only one prompt here", "ok"),
                                                        ("2026-11-02T09:00:00Z", "   ", "ok")]))])
    cm = C.fit_clusters(store, model="fake", embedder=FakeEmbedder())
    assert cm.k == 1 and cm.clusters[0].label == "prompt" and cm.n_traces == 1 and cm.n_distinct == 1  # traces with a prompt
    assert C.assign_clusters(store, store.scan().collect(), model="fake").to_list() == [0, None]
    with pytest.raises(C.ClusterError, match="HDBSCAN needs more than"):
        C.fit_clusters(store, model="fake", algorithm="hdbscan")


def test_labels_leave_out_template_words_and_prefer_word_pairs():
    """A prompt template around every topic must not name the topics; a pair that names the topic is kept whole."""
    template = "As a busy parent I am asking for an example answer: {}"
    topics = {
        0: ["how do I reset my password", "reset password link expired", "cannot reset password on the app",
            "reset password email never came"],
        1: ["where is my parcel tracking", "parcel tracking number missing", "parcel tracking says delivered",
            "parcel tracking not updating"],
        2: ["invoice shows wrong vat", "wrong vat on my invoice", "invoice vat number", "vat invoice for company"],
    }
    terms = C.ctfidf_terms({cid: [template.format(t) for t in ts] for cid, ts in topics.items()})
    template_words = {"busy", "parent", "asking", "example", "answer"}
    for cid, ts in terms.items():
        assert not template_words & {w for t in ts for w in t.split()}, (cid, ts)
    assert terms[0][0] == "reset password" and terms[1][0] == "parcel tracking"
    assert not {"reset", "password"} & set(terms[0][1:])  # the pair's own words are not repeated


def test_labels_leave_out_words_only_a_few_prompts_use():
    """A name one customer typed is rare everywhere, so c-TF-IDF rates it high; it names no topic and is left out."""
    invoice = [f"can I get an invoice for order {i} with my company name" for i in range(20)]
    invoice[0] += " thanks elena fischer"
    texts = {0: invoice, 1: [f"where is my parcel {i}, tracking says delivered" for i in range(20)],
             2: [f"how do I reset my password, attempt {i}" for i in range(20)]}
    terms = C.ctfidf_terms(texts, n_terms=6)
    assert "invoice" in " ".join(terms[0]) and "company" in " ".join(terms[0])
    assert not any("elena" in t or "fischer" in t for t in terms[0]), terms[0]
    # the same name in a tenth of the prompts is part of the topic's text and may name it
    invoice[1] += " thanks elena fischer"
    assert any("fischer" in t for t in C.ctfidf_terms(texts, n_terms=6)[0])


def test_labels_name_what_separates_a_cluster_from_its_neighbours():
    """Two neighbouring clusters share 'refund'; each label leads with the word only it uses."""
    texts = {
        0: ["refund for shoes", "refund shoes size", "shoes refund please"],
        1: ["refund for jacket", "jacket refund", "refund the jacket now"],
        2: ["python list sort", "python dict keys"],
    }
    terms = C.ctfidf_terms(texts, n_terms=2, neighbours={0: [1], 1: [0], 2: [0]})
    assert terms[0][0] == "shoes" and terms[1][0] == "jacket"
    assert terms[2][0] == "python"


def test_fallback_label_is_the_prompt_start():
    assert C.fallback_label("one two three four five six seven") == "one two three four five six …"
    assert C.fallback_label("short prompt") == "short prompt"


def test_labels_read_contractions_and_possessives_as_people_write_them():
    """'don't' and 'I've' are function words, not the stems 'don' and 've'; "dad's account" is about a dad."""
    texts = {
        0: ["I don't recognise this payment", "don't recognise the payment on my card", "I've a payment I don't know"],
        1: ["my dad's account is locked", "log into my dad's account", "dad's account password"],
        2: ["python list sort", "python dict keys", "python loop"],
    }
    terms = C.ctfidf_terms(texts)
    words = {w for ts in terms.values() for t in ts for w in t.split()}
    assert not {"don", "ve", "t", "s"} & words
    assert "dad" in words or "dad account" in " ".join(terms[1])
