"""The weekly job on windows larger than its embedding sample: what it embeds, and what the report reads.

Above ``sample_cap`` traces per window only the sample is embedded (prompts and
responses), the topic clusters are fitted and assigned from the vectors that
exist, and the analysis gets the sample's vectors as ``RowVectors``; the
results equal those of a full NaN-padded array.
"""

from __future__ import annotations

import numpy as np
import polars as pl
import pyarrow as pa
import pytest

from tracelens.analysis import DriftConfig, analyze
from tracelens.analysis.strata import EmbPair, RowVectors
from tracelens.embed.models import FakeEmbedder
from tracelens.samples.synthetic import Scenario, make_pair
from tracelens.schema import TRACE_SCHEMA
from tracelens.store import Store, write_parquet_file
from tracelens.storeopen import open_store
from tracelens.timeexpr import TimeWindow
from tracelens.weekly import load_window, run_drift


class CountingEmbedder(FakeEmbedder):
    """The fake embedder, remembering every text it was asked to embed."""

    def __init__(self):
        super().__init__()
        self.texts: list[str] = []

    def encode(self, texts):
        self.texts += list(texts)
        return super().encode(texts)


def _store(root, sp) -> Store:
    """A store holding the synthetic pair's traces as day partitions (no vectors, no clusters)."""
    Store(root, create=True)
    df = pl.concat([sp.baseline, sp.current], how="diagonal_relaxed").drop("cluster_id")
    for (day,), part in df.group_by(pl.col("timestamp").dt.date(), maintain_order=True):
        tbl = part.with_columns(source_format=pl.lit("synthetic"), source_file=pl.lit("synthetic"),
                                source_locator=pl.col("trace_id"), ingested_at=pl.col("timestamp"),
                                content_hash=pl.col("trace_id")).to_arrow()
        cols = {f.name: tbl.column(f.name).cast(f.type) if f.name in tbl.column_names else pa.nulls(part.height, f.type)
                for f in TRACE_SCHEMA}
        write_parquet_file(pa.table(cols, schema=TRACE_SCHEMA), root / "traces" / f"date={day}" / "part-t.parquet",
                           "traces")
    return open_store(root)


@pytest.fixture(scope="module")
def pair():
    topics = 6
    shares_c = np.full(topics, 1 / topics)
    shares_c[0] *= 2
    return make_pair(Scenario(n_baseline=600, n_current=300, topics=topics, embeddings=False, seed=5,
                              shares_c=tuple(shares_c / shares_c.sum())))


def _windows(sp):
    (b0, b1), (c0, c1) = sp.baseline_window, sp.current_window
    return TimeWindow(b0, b1, "baseline"), TimeWindow(c0, c1, "current")


def test_a_sampled_week_embeds_its_sample_only_and_reads_no_mix_shift_into_it(tmp_path, pair):
    store = _store(tmp_path / "store", pair)
    bw, cw = _windows(pair)
    emb = CountingEmbedder()
    cap = 140  # 20 per day: 140 of 600 baseline and 140 of 300 current traces
    r = run_drift(store, bw, cw, config=DriftConfig(seed=0), model="fake", embedder=emb, sample_cap=cap)
    # the sample's prompts and responses, nothing more (before: every prompt of both windows, for the clusters)
    assert 0 < len(emb.texts) <= 4 * cap
    assert len(set(emb.texts)) == len(emb.texts)
    assert any("day-stratified sample" in n and "topic clusters" in n for n in r.notes)
    mix = [f for f in r.findings if f.kind == "prompt_mix"]
    assert mix, "prompt_mix runs on the sampled traces"
    # traces outside the sample are no topic: the windows' different sampling fractions are no mix shift
    assert "cluster=-1" not in {f.segment for f in mix}
    assert r.cluster_shares and all(c.cluster != "cluster=-1" for c in r.cluster_shares)
    # a second run embeds nothing new and gives the same findings
    emb2 = CountingEmbedder()
    r2 = run_drift(store, bw, cw, config=DriftConfig(seed=0), model="fake", embedder=emb2, sample_cap=cap)
    assert emb2.texts == []
    assert [(f.kind, f.segment, f.p_value) for f in r2.findings] == [(f.kind, f.segment, f.p_value) for f in r.findings]


def test_below_the_cap_every_prompt_gets_a_cluster(tmp_path, pair):
    store = _store(tmp_path / "store", pair)
    bw, cw = _windows(pair)
    emb = CountingEmbedder()
    r = run_drift(store, bw, cw, config=DriftConfig(seed=0), model="fake", embedder=emb)
    assert not any("day-stratified sample" in n for n in r.notes)
    n_prompts = load_window(store, bw)["prompt_text"].n_unique() + load_window(store, cw)["prompt_text"].n_unique()
    assert len(set(emb.texts)) >= n_prompts - 5  # every distinct prompt (a few repeat across the windows)
    assert "cluster=-1" not in {f.segment for f in r.findings if f.kind == "prompt_mix"}


def test_row_vectors_give_the_same_report_as_nan_padded_arrays():
    sp = make_pair(Scenario(n_baseline=700, n_current=500, seed=2, response_shift=0.08))
    rng = np.random.default_rng(0)
    full, compact = {}, {}
    for name, pairs in (("prompt_emb", sp.prompt_emb), ("response_emb", sp.response_emb)):
        fp, cp = [], []
        for x in pairs:
            keep = np.sort(rng.choice(x.shape[0], size=x.shape[0] // 3, replace=False))
            padded = np.full(x.shape, np.nan, dtype=np.float32)
            padded[keep] = x[keep]
            fp.append(padded)
            cp.append(RowVectors(x.shape[0], keep, x[keep].astype(np.float32)))
        full[name], compact[name] = tuple(fp), tuple(cp)
    cfg = DriftConfig(seed=1)
    kw = dict(baseline_window=sp.baseline_window, current_window=sp.current_window, config=cfg)
    a = analyze(sp.baseline, sp.current, **full, **kw).to_dict()
    b = analyze(sp.baseline, sp.current, **compact, **kw).to_dict()
    for d in (a, b):
        d.pop("generator", None)
    assert a == b
    assert any(f["kind"] == "response_semantic" for f in a["findings"])


def test_row_vectors_take_and_valid_match_a_padded_array():
    x = np.arange(12, dtype=np.float32).reshape(6, 2)
    padded = np.full((6, 2), np.nan, dtype=np.float32)
    padded[[1, 4]] = x[[1, 4]]
    rv = RowVectors(6, [1, 4], x[[1, 4]])
    c = np.ones((3, 2), dtype=np.float32)
    p1, p2 = EmbPair(padded, c), EmbPair(rv, c)
    assert p1.valid.tolist() == p2.valid.tolist() == [False, True, False, False, True, False, True, True, True]
    idx = np.array([7, 4, 0, 1, 5, 8])
    assert np.array_equal(p1.take(idx), p2.take(idx))
    with pytest.raises(ValueError):
        RowVectors(6, [4, 1], x[[4, 1]])
    with pytest.raises(ValueError):
        RowVectors(3, [1, 4], x[[1, 4]])


def test_repeats_of_a_sampled_prompt_do_not_weigh_the_mix_by_window_size(tmp_path):
    # Half of each window is one canned prompt, half distinct prompts; the mix is the same, the windows are not
    # (2,400 vs 1,200 traces), so the cap samples them at different fractions. Every repeat of the canned prompt
    # gets a cluster (its prompt has a vector) while a distinct prompt outside the sample does not: counting the
    # clustered rows puts the canned prompt at about 90% of each window, and a little more of the larger one.
    sp = make_pair(Scenario(n_baseline=2400, n_current=1200, topics=6, embeddings=False, seed=11))
    canned = "Please reset the password on my account, I am locked out."
    sp.baseline = sp.baseline.with_columns(
        pl.when(pl.int_range(pl.len()) % 2 == 0).then(pl.lit(canned)).otherwise(pl.col("prompt_text")).alias("prompt_text"))
    sp.current = sp.current.with_columns(
        pl.when(pl.int_range(pl.len()) % 2 == 0).then(pl.lit(canned)).otherwise(pl.col("prompt_text")).alias("prompt_text"))
    store = _store(tmp_path / "store", sp)
    bw, cw = _windows(sp)
    r = run_drift(store, bw, cw, config=DriftConfig(seed=0), model="fake", embedder=CountingEmbedder(), sample_cap=140)
    assert any("day-stratified sample" in n for n in r.notes)
    mix = [f for f in r.findings if f.kind == "prompt_mix"]
    assert mix, "prompt_mix runs on the sampled traces"
    assert not [f for f in mix if f.significant], [(f.segment, f.summary) for f in mix if f.significant]
    canned_share = max(r.cluster_shares, key=lambda c: c.baseline_share)
    assert abs(canned_share.baseline_share - 0.5) < 0.15 and abs(canned_share.current_share - 0.5) < 0.15, canned_share


# --------------------------------------------------------------------------- windows read without their text


def _features_only(df: pl.DataFrame) -> pl.DataFrame:
    """``df`` with its text columns replaced by their features (what load_window_features keeps)."""
    from tracelens.analysis.textfeatures import TEXT_COLUMNS, text_features

    return df.drop([c for c in TEXT_COLUMNS if c in df.columns]).hstack(text_features(df))


def test_analyze_on_text_features_gives_the_report_of_the_texts():
    from tracelens.analysis.textfeatures import TextSummary

    sp = make_pair(Scenario(n_baseline=900, n_current=700, seed=4, response_shift=0.08))
    # a few broken outputs, so the corruption features are exercised
    bad = pl.int_range(pl.len()) % 37 == 0
    cur = sp.current.with_columns(pl.when(bad).then(pl.lit('{"answer": "cut')).otherwise(pl.col("response_text"))
                                  .alias("response_text"))
    kw = dict(baseline_window=sp.baseline_window, current_window=sp.current_window, config=DriftConfig(seed=3),
              prompt_emb=sp.prompt_emb, response_emb=sp.response_emb)
    a = analyze(sp.baseline, cur, **kw).to_dict()
    summary = TextSummary.of(sp.baseline).merge(TextSummary.of(cur))
    b = analyze(_features_only(sp.baseline), _features_only(cur), text_summary=summary, **kw).to_dict()
    for d in (a, b):
        d.pop("generator", None)
    assert a["findings"] == b["findings"]
    assert a == b
    assert any(f["kind"] == "output_corruption" for f in a["findings"])


def test_a_window_read_by_day_holds_the_features_of_its_texts(tmp_path, pair):
    from tracelens.analysis.textfeatures import TextSummary
    from tracelens.weekly import _sample_mask, load_window_features

    store = _store(tmp_path / "store", pair)
    bw, _ = _windows(pair)
    full = load_window(store, bw)
    wf = load_window_features(store, bw, sample_cap=140)
    assert wf.frame.get_column("trace_id").to_list() == full.get_column("trace_id").to_list()
    assert not {"prompt_text", "response_text", "system_prompt"} & set(wf.frame.columns)
    want = _features_only(full)
    for col in ("_resp_len", "_resp_hash", "_prompt_len", "_ask", "_bad"):
        assert wf.frame.get_column(col).to_list() == want.get_column(col).to_list(), col
    assert wf.summary.present == {c: full.get_column(c).null_count() < full.height
                                  for c in ("prompt_text", "response_text", "system_prompt", "tool_definitions")}
    assert wf.summary.texts == TextSummary.of(full).texts
    # the sample's texts are those of the rows _sample_mask picks, in the frame's order
    mask = _sample_mask(wf.frame, 140)
    per_day = 140 // full.get_column("timestamp").dt.date().n_unique()
    got = wf.candidates.filter(pl.col("_r") <= per_day)
    assert got.get_column("trace_id").to_list() == full.filter(pl.Series(mask)).get_column("trace_id").to_list()
    assert got.get_column("prompt_text").to_list() == full.filter(pl.Series(mask)).get_column("prompt_text").to_list()


def test_a_week_read_without_its_text_labels_the_fallback_topics_with_sampled_prompts(tmp_path, pair, monkeypatch):
    # No topic-cluster model can be fitted: the engine clusters the prompt vectors itself and labels each topic
    # with its most central prompt. The frames hold no prompt text (read a day at a time); the sample's texts
    # are kept, and the labels are those the same run gives on frames with their text.
    import tracelens.cluster as cl

    def cannot_fit(*a, **k):
        raise ValueError("too few prompts to cluster")

    monkeypatch.setattr(cl, "fit_clusters", cannot_fit)
    store = _store(tmp_path / "store", pair)
    bw, cw = _windows(pair)
    r = run_drift(store, bw, cw, config=DriftConfig(seed=0), model="fake", embedder=CountingEmbedder(), sample_cap=140)
    assert any("topic clusters not fitted" in n for n in r.notes)
    assert r.cluster_shares
    prompts = pl.concat([load_window(store, bw), load_window(store, cw)]).get_column("prompt_text").to_list()
    for share in r.cluster_shares:
        head = share.label.removesuffix("...")
        assert head and any(p.startswith(head) for p in prompts), (share.cluster, share.label)


def test_topics_clustered_on_a_sample_are_labelled_alike_with_or_without_the_frames_text():
    # The engine's own clusters on a sample's vectors (RowVectors), without cluster_id: frames with their text,
    # and the same frames as text features with the sample's prompts in the summary, give the same report.
    from tracelens.analysis.textfeatures import TextSummary

    sp = make_pair(Scenario(n_baseline=800, n_current=600, seed=6, topics=5))
    b, c = sp.baseline.drop("cluster_id"), sp.current.drop("cluster_id")
    rng = np.random.default_rng(1)
    keep = [np.sort(rng.choice(f.height, size=f.height // 3, replace=False)) for f in (b, c)]
    emb = {name: tuple(RowVectors(x.shape[0], k, x[k]) for x, k in zip(pairs, keep, strict=True))
           for name, pairs in (("prompt_emb", sp.prompt_emb), ("response_emb", sp.response_emb))}
    kw = dict(baseline_window=sp.baseline_window, current_window=sp.current_window, config=DriftConfig(seed=2), **emb)
    a = analyze(b, c, **kw).to_dict()
    sample = pl.concat([f[k] for f, k in zip((b, c), keep, strict=True)])
    summary = TextSummary.of(b).merge(TextSummary.of(c)).with_prompts(sample)
    lean = analyze(_features_only(b), _features_only(c), text_summary=summary, **kw).to_dict()
    for d in (a, lean):
        d.pop("generator", None)
    assert a["cluster_shares"] and all(s["label"] for s in a["cluster_shares"])
    assert lean == a
