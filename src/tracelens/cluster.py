"""Topic clusters over prompt embeddings, stable from week to week.

Contract:

* ``fit_clusters(store, since=..., until=..., k=None, algorithm="kmeans")
  -> ClusterModel`` fits clusters on the prompt embeddings of a reference
  window (default: the last 28 days of data in the store), labels them, saves
  the model in the store and makes it current for its embedding model.
  Prompts of the window that have no vector yet are embedded first (and
  stored, so never again).
* ``assign_clusters(store, df) -> pl.Series`` (``cluster_id``, Int32, aligned
  with ``df``; null where the row has no prompt text) assigns rows with the
  current model. Assignments are keyed by the prompt's ``text_hash`` and
  stored, so a prompt is assigned once; prompts never seen are embedded and
  assigned on the fly (``embed_missing``).
* ``cluster_labels(store) -> {cluster_id: label}``; ``cluster_summary(store)``
  gives per-week sizes and refusal rates per cluster (`tracelens clusters`).

Method:

* Points are the distinct prompt texts of the window (not traces): a prompt
  repeated by a retry loop or a cron job must not pull the centroids. At most
  ``FIT_SAMPLE`` distinct prompts are used, chosen by text-hash order
  (deterministic, unbiased because the hash is uniform). ``traces=`` fits
  on given traces instead of the window's (the weekly job passes its
  embedding sample).
* ``kmeans`` (default): scikit-learn MiniBatchKMeans, ``random_state=seed``,
  ``n_init=3``. With ``k=None``, k is the grid value with the best mean
  silhouette (cosine) on a sample of ``SILHOUETTE_SAMPLE`` points over
  ``K_GRID`` (bounded by the number of points); docs/embeddings.md has the
  measurements behind this choice. Every point gets a cluster.
* ``hdbscan``: scikit-learn HDBSCAN, ``min_cluster_size`` = max(5, 0.5 % of
  the points), noise is -1. New prompts get the nearest centroid when they lie
  within that cluster's radius (95th percentile of its members' distances),
  else -1.
* Cluster ids are renumbered by size (0 = largest) so they read the same way
  across refits of similar data; the model id is a hash of the fit (same data
  and settings give the same id).
* Labels (``tracelens.topiclabels``): class-based TF-IDF (c-TF-IDF, as in BERTopic) over the words and
  word pairs of each cluster's prompts, without English stop words, tokens
  without letters, or template words (in 30 % of the prompts of half the
  clusters, 3 at least); each term's score is scaled by how much more the cluster uses
  it than its two nearest clusters, so the label names what separates it.
  The top 4 terms form the label; with none, the most central prompt's first
  six words. Examples: the 3 prompts closest to the centroid.

Storage::

    STORE/clusters/CURRENT.json                   {embedding model id: cluster model id}
    STORE/clusters/<id>/model.json                parameters, labels, examples, k selection
    STORE/clusters/<id>/centroids.npy             float32 (k, dim)
    STORE/clusters/<id>/assignments/part-*.parquet  text_hash, cluster_id, distance

The model directory is built aside and renamed into place; CURRENT.json is
replaced atomically; assignments go through ``Store.transaction()``.

On a Delta Lake store (local or at a URL) the same names are objects under ``STORE/clusters/``
(centroids, then model.json created once, then CURRENT.json replaced by one PUT),
and a model's assignments are the Delta table ``clusters/<id>/assignments/``,
written by a MERGE that inserts absent hashes only (``DeltaStore.insert_absent``).
Later assignments reuse the saved model until ``refit``, so ids stay stable.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import math
import os
import shutil
import uuid
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import polars as pl
import pyarrow as pa

from tracelens import atomic
from tracelens.embed.models import Embedder, ModelSpec, get_embedder, resolve_model
from tracelens.embed.vectors import VectorStore, embeddable, ensure_vectors, hashes_of, on_delta
from tracelens.store import Store
from tracelens.topiclabels import N_NEIGHBOURS, N_TERMS, ctfidf_terms, fallback_label  # noqa: F401 - public here too

DEFAULT_WINDOW_DAYS = 28
ALGORITHMS = ("kmeans", "hdbscan")
K_GRID = (4, 6, 8, 12, 16, 24, 32, 50)
# below this many points exact KMeans (Lloyd) is faster than MiniBatchKMeans and as deterministic
EXACT_KMEANS_MAX = 10_000
K_MIN, K_MAX = 4, 50
FIT_SAMPLE = 50_000
HDBSCAN_SAMPLE = 10_000
SILHOUETTE_SAMPLE = 2_000
SILHOUETTE_N_INIT = 2
SILHOUETTE_MIN = 0.10
N_EXAMPLES = 3
HDBSCAN_RADIUS_QUANTILE = 0.95
TABLE = "clusters"
ASSIGNMENT_SCHEMA = pa.schema([
    pa.field("text_hash", pa.string(), nullable=False),
    pa.field("cluster_id", pa.int32(), nullable=False),
    pa.field("distance", pa.float32(), nullable=False),
])


class ClusterError(Exception):
    """Clusters that cannot be fitted or found (message is user-facing)."""


@dataclass
class ClusterInfo:
    """One cluster of a fitted model."""

    cluster_id: int
    label: str
    terms: list[str]
    size: int  # distinct prompts of the fit in this cluster
    traces: int  # traces of the reference window in this cluster
    examples: list[dict]  # [{"trace_id", "text"}], closest to the centroid first
    radius: float | None = None  # hdbscan: assignment radius


@dataclass
class ClusterModel:
    """A fitted, saved cluster model."""

    id: str
    algorithm: str
    k: int
    embedding_model_id: str
    embedding_slug: str
    created_at: str
    window_since: str | None
    window_until: str | None
    seed: int
    n_traces: int  # traces of the window with an embeddable prompt
    n_distinct: int
    n_fit: int
    noise: int
    k_selection: dict
    clusters: list[ClusterInfo] = field(default_factory=list)
    centroids: np.ndarray | None = None

    def to_dict(self) -> dict:
        """The model's fields as JSON-ready data, without the centroid matrix."""
        d = asdict(self)
        d.pop("centroids")
        return d

    @property
    def labels(self) -> dict[int, str]:
        """Label of each cluster, by cluster id."""
        return {c.cluster_id: c.label for c in self.clusters}

    def assign(self, vectors: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(cluster ids int32, euclidean distances to the assigned centroid) for unit vectors."""
        x = np.asarray(vectors, dtype=np.float32)
        c = self.centroids
        if x.shape[0] == 0:
            return np.zeros(0, dtype=np.int32), np.zeros(0, dtype=np.float32)
        ids = np.empty(x.shape[0], dtype=np.int32)
        dist = np.empty(x.shape[0], dtype=np.float32)
        c2 = (c * c).sum(1)
        for i in range(0, x.shape[0], 65_536):
            xb = x[i:i + 65_536]
            d2 = (xb * xb).sum(1)[:, None] - 2 * xb @ c.T + c2[None, :]
            j = np.argmin(d2, axis=1)
            ids[i:i + len(xb)] = j
            dist[i:i + len(xb)] = np.sqrt(np.maximum(d2[np.arange(len(xb)), j], 0))
        if self.algorithm == "hdbscan":
            radius = np.array([cl.radius or 0.0 for cl in self.clusters], dtype=np.float32)
            ids = np.where(dist <= radius[ids] + 1e-6, ids, -1).astype(np.int32)
        return ids, dist

    @property
    def dir_name(self) -> str:
        """Name of the model's directory under the store's clusters folder (its id)."""
        return self.id


# ---------------------------------------------------------------------- fitting


def reference_window(store: Store, since=None, until=None) -> tuple[dt.datetime | dt.date | None,
                                                                    dt.datetime | dt.date | None]:
    """The fit window: (since, until) as given, else the DEFAULT_WINDOW_DAYS whole days up to the newest trace."""
    if since is not None or until is not None:
        return since, until
    last = store.scan().select(pl.col("timestamp").max()).collect().item()
    if last is None:
        return None, None
    # whole days: the day of the newest trace and the DEFAULT_WINDOW_DAYS - 1 before it (date bounds are inclusive)
    return last.date() - dt.timedelta(days=DEFAULT_WINDOW_DAYS - 1), last.date()


def _kmeans(k: int, seed: int, n_init: int, n: int):
    from sklearn.cluster import KMeans, MiniBatchKMeans

    if n <= EXACT_KMEANS_MAX:
        return KMeans(n_clusters=k, random_state=seed, n_init=n_init)
    return MiniBatchKMeans(n_clusters=k, random_state=seed, n_init=n_init, batch_size=4096)


def rule_k(n: int) -> int:
    """The sqrt(n/2) rule of thumb, bounded to [K_MIN, K_MAX] and to n."""
    return int(max(1, min(n, max(K_MIN, min(K_MAX, round(math.sqrt(n / 2)))))))


def choose_k(x: np.ndarray, seed: int = 0, grid: tuple[int, ...] = K_GRID) -> tuple[int, dict]:
    """Pick k: the best cosine silhouette over ``grid`` when the data has clear structure, else ``rule_k``.

    Real, diverse prompts have no natural cluster count: their silhouette is
    flat (0.02-0.04 on ShareGPT prompts) and creeps up with k, so maximising
    it just returns the largest k tried. Only when the best silhouette reaches
    ``SILHOUETTE_MIN`` (templated traffic, distinct features) is its k used.
    """
    from sklearn.metrics import silhouette_score

    n = x.shape[0]
    fallback = rule_k(n)
    cands = [k for k in grid if 2 <= k < n]
    if not cands:
        return fallback, {"method": "rule (too few points)", "rule_k": fallback, "scores": {}}
    rng = np.random.default_rng(seed)
    sample = x if n <= SILHOUETTE_SAMPLE else x[np.sort(rng.choice(n, SILHOUETTE_SAMPLE, replace=False))]
    scores = {}
    for k in cands:
        if k >= sample.shape[0]:
            continue
        km = _kmeans(k, seed, SILHOUETTE_N_INIT, sample.shape[0]).fit(sample)
        if len(set(km.labels_.tolist())) < 2:
            continue
        scores[k] = float(silhouette_score(sample, km.labels_, metric="cosine"))
    info = {"rule_k": fallback, "sample": int(sample.shape[0]), "scores": {str(k): round(v, 4) for k, v in scores.items()}}
    if scores:
        best = max(scores, key=lambda k: (round(scores[k], 3), -k))
        if scores[best] >= SILHOUETTE_MIN:
            return best, {"method": "silhouette", **info}
    return fallback, {"method": "rule sqrt(n/2) (no clear structure)", **info}


def _renumber(labels: np.ndarray, x: np.ndarray) -> tuple[np.ndarray, np.ndarray, list[int]]:
    """Renumber labels by cluster size (0 = largest; ties by centroid bytes); -1 stays.

    Returns (new labels, member-mean centroids in the new order, old id of each new id).
    """
    ids = sorted(set(labels.tolist()) - {-1})
    cents = {i: x[labels == i].mean(0) for i in ids}
    order = sorted(ids, key=lambda i: (-int((labels == i).sum()), cents[i].tobytes()))
    remap = {old: new for new, old in enumerate(order)}
    new = np.array([remap.get(int(v), -1) for v in labels], dtype=np.int32)
    centroids = np.stack([cents[o] for o in order]).astype(np.float32) if order else np.zeros((0, x.shape[1]), np.float32)
    return new, centroids, order


def _model_id(algorithm: str, k: int, spec: ModelSpec, window: tuple, seed: int, centroids: np.ndarray,
              hashes: list[str]) -> str:
    h = hashlib.sha256()
    for part in (algorithm, str(k), spec.model_id, str(window), str(seed)):
        h.update(part.encode())
        h.update(b"\0")
    h.update(np.round(centroids, 5).tobytes())
    h.update("".join(hashes[:1000]).encode())
    return f"{algorithm}-k{k}-{h.hexdigest()[:10]}"


def fit_clusters(
    store: Store,
    *,
    since: dt.date | dt.datetime | None = None,
    until: dt.date | dt.datetime | None = None,
    k: int | None = None,
    algorithm: str = "kmeans",
    model: str | ModelSpec | None = None,
    seed: int = 0,
    embedder: Embedder | None = None,
    embed_missing: bool = True,
    save: bool = True,
    traces: pl.DataFrame | None = None,
) -> ClusterModel:
    """Fit topic clusters on the prompts of a window and (by default) save them as current. See module docstring.

    ``traces`` (``trace_id``, ``timestamp``, ``prompt_text``): fit on these traces instead of reading the
    window from the store (e.g. the embedding sample of the weekly job); ``since``/``until`` then only
    name the window they were drawn from.
    """
    from sklearn.cluster import HDBSCAN

    if algorithm not in ALGORITHMS:
        raise ClusterError(f"unknown algorithm {algorithm!r}; use one of {', '.join(ALGORITHMS)}")
    if k is not None and k < 1:
        raise ClusterError("k must be at least 1")
    spec = model if isinstance(model, ModelSpec) else resolve_model(model)
    vs = VectorStore(store, spec)
    since, until = reference_window(store, since, until)
    if traces is not None:
        win = traces.select("trace_id", "timestamp", "prompt_text")
    else:
        win = store.scan(since=since, until=until).select("trace_id", "timestamp", "prompt_text").collect()
    texts = win.get_column("prompt_text").to_list()
    if embed_missing:
        known = vs.known_hashes()
        if any(embeddable(t) and h not in known for t, h in zip(texts, hashes_of(texts), strict=True)):
            ensure_vectors(vs, texts, embedder or get_embedder(spec.name))
    win = win.with_columns(pl.Series("text_hash", hashes_of(texts), dtype=pl.String)).filter(
        pl.col("text_hash").is_not_null())
    distinct = sorted(set(win.get_column("text_hash").to_list()))
    cap = HDBSCAN_SAMPLE if algorithm == "hdbscan" else FIT_SAMPLE
    fit_hashes = distinct[:cap]  # hash order is a uniform, deterministic sample
    found, x = vs.load(fit_hashes)
    if not found:
        raise ClusterError(
            f"no prompt embeddings for {spec.model_id} in the window"
            + ("" if win.height else " (no traces with a prompt in the window)")
            + "; run `tracelens embed` first"
        )
    n = len(found)
    if algorithm == "kmeans":
        if k is None:
            k, selection = choose_k(x, seed)
        else:
            selection = {"method": "given", "scores": {}}
        k = min(k, n)
        km = _kmeans(k, seed, 3, n).fit(x)
        labels, _, order = _renumber(km.predict(x).astype(np.int32), x)
        # keep the fitted centres (what predict uses), renumbered; a centre left without members is dropped
        centroids = km.cluster_centers_[order].astype(np.float32)
        k = centroids.shape[0]
    else:
        selection = {"method": "hdbscan", "min_cluster_size": max(5, round(n * 0.005)), "scores": {}}
        if n <= selection["min_cluster_size"]:
            raise ClusterError(f"HDBSCAN needs more than {selection['min_cluster_size']} distinct prompts, the window "
                               f"has {n}; use --algorithm kmeans or a longer window")
        hd = HDBSCAN(min_cluster_size=selection["min_cluster_size"], copy=True).fit(x)
        labels, centroids, _ = _renumber(hd.labels_.astype(np.int32), x)
        k = centroids.shape[0]
        if k == 0:
            raise ClusterError(f"HDBSCAN found no cluster among {n} prompts (all noise); try --algorithm kmeans")
    window = (since.isoformat() if since else None, until.isoformat() if until else None)
    cm = ClusterModel(
        id=_model_id(algorithm, k, spec, window, seed, centroids, found),
        algorithm=algorithm, k=k, embedding_model_id=spec.model_id, embedding_slug=spec.slug,
        created_at=dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        window_since=window[0], window_until=window[1], seed=seed, n_traces=win.height, n_distinct=len(distinct),
        n_fit=n, noise=int((labels == -1).sum()), k_selection=selection, centroids=centroids,
    )
    _describe(cm, win, found, x, labels)
    if save:
        save_model(store, cm)
    return cm


def _describe(cm: ClusterModel, win: pl.DataFrame, found: list[str], x: np.ndarray, labels: np.ndarray) -> None:
    """Fill labels, examples, sizes and radii of ``cm`` from its fit points."""
    text_of = dict(win.select("text_hash", "prompt_text").unique("text_hash").iter_rows())
    newest = dict(win.sort(["timestamp", "trace_id"], descending=[True, False])
                  .unique("text_hash", keep="first").select("text_hash", "trace_id").iter_rows())
    counts = dict(win.group_by("text_hash").len().iter_rows())
    dist = np.sqrt(((x - cm.centroids[np.maximum(labels, 0)]) ** 2).sum(1))
    by_cluster: dict[int, list[str]] = {}
    for h, lab in zip(found, labels.tolist(), strict=True):
        if lab >= 0:
            by_cluster.setdefault(lab, []).append(text_of[h])
    # the nearest centroids (cosine) of each cluster: the topics its label must be told apart from
    unit = cm.centroids / np.maximum(np.linalg.norm(cm.centroids, axis=1, keepdims=True), 1e-12)
    sim = unit @ unit.T
    np.fill_diagonal(sim, -np.inf)
    neighbours = {cid: np.argsort(-sim[cid], kind="stable")[:N_NEIGHBOURS].tolist() for cid in range(cm.k)}
    terms = ctfidf_terms(by_cluster, neighbours=neighbours)
    for cid in range(cm.k):
        members = np.flatnonzero(labels == cid)
        closest = members[np.argsort(dist[members], kind="stable")[:N_EXAMPLES]]
        examples = [{"trace_id": newest[found[i]], "text": text_of[found[i]][:300]} for i in closest]
        radius = None
        if cm.algorithm == "hdbscan" and len(members):
            radius = float(np.quantile(dist[members], HDBSCAN_RADIUS_QUANTILE))
        t = terms.get(cid, [])
        if t:
            label = ", ".join(t)
        elif len(closest):
            label = fallback_label(text_of[found[closest[0]]])
        else:
            label = f"cluster {cid}"
        cm.clusters.append(ClusterInfo(
            cluster_id=cid, label=label, terms=t, size=int(len(members)),
            traces=int(sum(counts[found[i]] for i in members)), examples=examples, radius=radius,
        ))


# ---------------------------------------------------------------------- storage


def _clusters_dir(store: Store) -> Path:
    return store.root / TABLE


def _current_path(store: Store) -> Path:
    return _clusters_dir(store) / "CURRENT.json"


def _read_current(store: Store) -> dict[str, str]:
    if on_delta(store):
        raw = store.get_object(f"{TABLE}/CURRENT.json")
        try:
            return json.loads(raw) if raw else {}
        except ValueError:
            return {}
    p = _current_path(store)
    if not p.exists():
        return {}
    try:
        return json.loads(p.read_text())
    except ValueError:
        return {}


def current_ids(store: Store) -> dict[str, str]:
    """``{embedding model id: current cluster model id}`` of ``store`` (``clusters/CURRENT.json``)."""
    return _read_current(store)


def save_model(store: Store, cm: ClusterModel, make_current: bool = True) -> Path | str:
    """Write ``cm`` under clusters/<id>/ (built aside, renamed in) and make it current for its embedding model."""
    if on_delta(store):
        return _save_model_objects(store, cm, make_current)
    base = _clusters_dir(store)
    base.mkdir(parents=True, exist_ok=True)
    dest = base / cm.id
    with store.lock():
        if not (dest / "model.json").exists():
            tmp = base / f".tmp-{uuid.uuid4().hex[:12]}"
            tmp.mkdir()
            try:
                np.save(tmp / "centroids.npy", cm.centroids.astype(np.float32))
                atomic.write_json(tmp / "model.json", cm.to_dict())
                if dest.exists():  # a half-written dir from a crash before the rename cannot exist; an empty one can
                    shutil.rmtree(dest)
                os.rename(tmp, dest)
                atomic.fsync_dir(base)
            finally:
                shutil.rmtree(tmp, ignore_errors=True)
        if make_current:
            cur = _read_current(store)
            cur[cm.embedding_model_id] = cm.id
            atomic.write_json(_current_path(store), cur)
    return dest


def _save_model_objects(store, cm: ClusterModel, make_current: bool) -> str:
    """``save_model`` on a Delta Lake store: centroids then model.json (created once: the id is a hash of the
    fit, so concurrent fitters of the same model write the same bytes), then CURRENT.json (one PUT, last
    writer wins, as the local rename). A reader that finds model.json finds the centroids."""
    import io

    buf = io.BytesIO()
    np.save(buf, cm.centroids.astype(np.float32))
    base = f"{TABLE}/{cm.id}"
    if store.get_object(f"{base}/model.json") is None:
        store.put_object(f"{base}/centroids.npy", buf.getvalue())
        store.put_object_if_absent(f"{base}/model.json", json.dumps(cm.to_dict(), indent=2).encode())
    if make_current:
        cur = _read_current(store)
        cur[cm.embedding_model_id] = cm.id
        store.put_object(f"{TABLE}/CURRENT.json", json.dumps(cur, indent=2).encode())
    return store.loc.child(base)


def load_model(store: Store, cluster_model_id: str) -> ClusterModel:
    """The saved cluster model ``cluster_model_id`` of ``store``; raises ``ClusterError`` when there is none."""
    if on_delta(store):
        import io

        raw = store.get_object(f"{TABLE}/{cluster_model_id}/model.json")
        cents = store.get_object(f"{TABLE}/{cluster_model_id}/centroids.npy") if raw is not None else None
        if raw is None or cents is None:
            raise ClusterError(f"no cluster model {cluster_model_id!r} in {store.root}")
        info = json.loads(raw)
        clusters = [ClusterInfo(**c) for c in info.pop("clusters")]
        return ClusterModel(**info, clusters=clusters, centroids=np.load(io.BytesIO(cents)))
    d = _clusters_dir(store) / cluster_model_id
    try:
        info = json.loads((d / "model.json").read_text())
    except FileNotFoundError:
        raise ClusterError(f"no cluster model {cluster_model_id!r} in {store.root}") from None
    clusters = [ClusterInfo(**c) for c in info.pop("clusters")]
    return ClusterModel(**info, clusters=clusters, centroids=np.load(d / "centroids.npy"))


def current_model(store: Store, model: str | ModelSpec | None = None) -> ClusterModel | None:
    """The current cluster model for an embedding model (default model when None), or None."""
    spec = model if isinstance(model, ModelSpec) else resolve_model(model)
    cid = _read_current(store).get(spec.model_id)
    return load_model(store, cid) if cid else None


def list_models(store: Store) -> list[dict]:
    """Saved cluster models (id, algorithm, k, embedding model, created_at, current)."""
    cur = set(_read_current(store).values())
    out = []
    if on_delta(store):
        for name in store.list_dirs(TABLE):
            raw = store.get_object(f"{TABLE}/{name}/model.json")
            if raw is not None:
                info = json.loads(raw)
                out.append({k: info.get(k) for k in ("id", "algorithm", "k", "embedding_model_id", "created_at",
                                                     "window_since", "window_until")} | {"current": name in cur})
        return out
    base = _clusters_dir(store)
    if base.exists():
        for d in sorted(base.iterdir()):
            if d.is_dir() and (d / "model.json").exists():
                info = json.loads((d / "model.json").read_text())
                out.append({k: info.get(k) for k in ("id", "algorithm", "k", "embedding_model_id", "created_at",
                                                     "window_since", "window_until")} | {"current": d.name in cur})
    return out


def _assignment_files(store: Store, cm: ClusterModel) -> list[Path]:
    d = _clusters_dir(store) / cm.id / "assignments"
    return sorted(d.glob("part-*.parquet")) if d.exists() else []


def stored_assignments(store: Store, cm: ClusterModel) -> pl.DataFrame:
    """Every stored assignment of ``cm``: text_hash, cluster_id, distance (one row per hash)."""
    if on_delta(store):
        snap = store.side_table(f"{TABLE}/{cm.id}/assignments")
        if snap is None or not len(snap.get_add_actions(flatten=True)):
            return pl.DataFrame(schema={"text_hash": pl.String, "cluster_id": pl.Int32, "distance": pl.Float32})
        t = snap.to_pyarrow_dataset().to_table(columns=ASSIGNMENT_SCHEMA.names)
        return pl.from_arrow(t.cast(ASSIGNMENT_SCHEMA)).unique("text_hash", keep="first", maintain_order=True)
    files = _assignment_files(store, cm)
    if not files:
        return pl.DataFrame(schema={"text_hash": pl.String, "cluster_id": pl.Int32, "distance": pl.Float32})
    return pl.read_parquet([str(f) for f in files]).unique("text_hash", keep="first")


def store_assignments(store: Store, cm: ClusterModel, hashes: list[str], ids: np.ndarray, dist: np.ndarray) -> int:
    """Store the assignments of ``hashes`` not stored yet (each hash once, whoever writes concurrently); rows written."""
    if not hashes:
        return 0
    if on_delta(store):  # a MERGE inserting absent hashes only: concurrent assigners never duplicate one
        path = f"{TABLE}/{cm.id}/assignments"
        if store.side_table(path) is None:
            store.create_side_table(path, ASSIGNMENT_SCHEMA, json.dumps({"cluster_model_id": cm.id}))
        seen: set[str] = set()
        keep = [i for i, h in enumerate(hashes) if not (h in seen or seen.add(h))]
        t = pa.Table.from_arrays(
            [pa.array([hashes[i] for i in keep], pa.string()), pa.array(ids[keep], pa.int32()),
             pa.array(dist[keep], pa.float32())], schema=ASSIGNMENT_SCHEMA)
        return store.insert_absent(path, t, "text_hash")
    with store.transaction() as txn:
        known = set(stored_assignments(store, cm).get_column("text_hash").to_list())
        keep = [i for i, h in enumerate(hashes) if h not in known]
        if not keep:
            return 0
        t = pa.Table.from_arrays(
            [pa.array([hashes[i] for i in keep], pa.string()), pa.array(ids[keep], pa.int32()),
             pa.array(dist[keep], pa.float32())], schema=ASSIGNMENT_SCHEMA)
        txn.stage(t, f"{TABLE}/{cm.id}/assignments/part-{txn.txn_id}.parquet", TABLE,
                  {"tracelens.cluster.model_id": cm.id})
    return len(keep)


# ---------------------------------------------------------------------- assigning


def _require_model(store: Store, model, cluster_model: ClusterModel | str | None) -> ClusterModel:
    if isinstance(cluster_model, ClusterModel):
        return cluster_model
    if isinstance(cluster_model, str):
        return load_model(store, cluster_model)
    cm = current_model(store, model)
    if cm is None:
        spec = model if isinstance(model, ModelSpec) else resolve_model(model)
        raise ClusterError(f"no cluster model for {spec.model_id} in {store.root}; run `tracelens cluster` first")
    return cm


def assign_hashes(
    store: Store,
    texts: list[str | None],
    *,
    model: str | ModelSpec | None = None,
    cluster_model: ClusterModel | str | None = None,
    embed_missing: bool | Embedder = True,
    persist: bool = True,
) -> pl.DataFrame:
    """Assignments for the distinct embeddable ``texts``: text_hash, cluster_id, distance.

    Stored assignments are reused; the rest are computed from stored vectors
    (embedding texts that have none when ``embed_missing``) and stored when
    ``persist``. Texts that end up with no vector are left out.
    """
    cm = _require_model(store, model, cluster_model)
    if model is None:
        model = cm.embedding_model_id
    spec = model if isinstance(model, ModelSpec) else resolve_model(model)
    if spec.model_id != cm.embedding_model_id:
        raise ClusterError(f"cluster model {cm.id} was fitted on {cm.embedding_model_id}, not {spec.model_id}")
    hashes = hashes_of(texts)
    want = list(dict.fromkeys(h for h in hashes if h is not None))
    have = stored_assignments(store, cm)
    have = have.filter(pl.col("text_hash").is_in(want)) if want else have.clear()
    todo = sorted(set(want) - set(have.get_column("text_hash").to_list()))
    if not todo:
        return have
    vs = VectorStore(store, spec)
    if embed_missing:
        todo_set = set(todo)
        missing_texts = [t for t, h in zip(texts, hashes, strict=True) if h in todo_set]
        known = vs.known_hashes()
        if any(h not in known for h in todo):
            emb = embed_missing if callable(embed_missing) else get_embedder(spec.name)
            ensure_vectors(vs, missing_texts, emb)
    found, x = vs.load(todo)
    ids, dist = cm.assign(x)
    if persist:
        store_assignments(store, cm, found, ids, dist)
    new = pl.DataFrame({"text_hash": found, "cluster_id": ids, "distance": dist},
                       schema={"text_hash": pl.String, "cluster_id": pl.Int32, "distance": pl.Float32})
    return pl.concat([have, new])


def assign_clusters(
    store: Store,
    df: pl.DataFrame,
    *,
    model: str | ModelSpec | None = None,
    cluster_model: ClusterModel | str | None = None,
    embed_missing: bool | Embedder = True,
    persist: bool = True,
    column: str = "prompt_text",
) -> pl.Series:
    """``cluster_id`` (Int32) for each row of ``df`` from its prompt text; null when it has none or no vector."""
    texts = df.get_column(column).to_list() if column in df.columns else [None] * df.height
    a = assign_hashes(store, texts, model=model, cluster_model=cluster_model, embed_missing=embed_missing,
                      persist=persist)
    lookup = dict(zip(a.get_column("text_hash").to_list(), a.get_column("cluster_id").to_list(), strict=True))
    return pl.Series("cluster_id", [lookup.get(h) if h else None for h in hashes_of(texts)], dtype=pl.Int32)


def assign_store(store: Store, *, model: str | ModelSpec | None = None, cluster_model: ClusterModel | str | None = None,
                 embed_missing: bool | Embedder = True, since=None, until=None) -> dict:
    """Assign every trace of the store (or window) with the current model; returns counts.

    Works on the distinct prompt texts (polars dedupes them while scanning), so
    memory follows the number of distinct prompts, not of traces.
    """
    cm = _require_model(store, model, cluster_model)
    before = stored_assignments(store, cm).height
    lf = store.scan(since=since, until=until)
    traces, with_prompt = lf.select(pl.len(), pl.col("prompt_text").is_not_null().sum()).collect().row(0)
    texts = lf.select(pl.col("prompt_text").unique()).collect().get_column("prompt_text").to_list()
    a = assign_hashes(store, texts, model=model, cluster_model=cm, embed_missing=embed_missing)
    return {"cluster_model_id": cm.id, "traces": traces, "with_prompt": with_prompt, "distinct_prompts": a.height,
            "newly_assigned": stored_assignments(store, cm).height - before,
            "noise": int((a.get_column("cluster_id") == -1).sum())}


def cluster_labels(store: Store, model: str | ModelSpec | None = None) -> dict[int, str]:
    """``{cluster_id: label}`` of the current cluster model (empty when there is none)."""
    cm = current_model(store, model)
    return cm.labels if cm else {}


# ---------------------------------------------------------------------- summary


@dataclass
class ClusterWeek:
    """One ISO week of one cluster in a summary: traces and refused traces."""

    week: str  # Monday, ISO date
    traces: int
    refusals: int

    @property
    def refusal_rate(self) -> float | None:
        """Refused share of the week's traces, 0..1; None when the week has no trace."""
        return self.refusals / self.traces if self.traces else None

    def to_dict(self) -> dict:
        """The week as JSON-ready data, the rate rounded to 4 places."""
        return {"week": self.week, "traces": self.traces, "refusals": self.refusals,
                "refusal_rate": None if self.refusal_rate is None else round(self.refusal_rate, 4)}


@dataclass
class ClusterRow:
    """One cluster in a summary: label, top terms, example prompts, traces in the window and per-week counts.

    ``cluster_id`` -1 is the noise row (traces no cluster claims).
    """

    cluster_id: int
    label: str
    terms: list[str]
    traces: int
    examples: list[dict]
    weeks: list[ClusterWeek]

    def to_dict(self) -> dict:
        """The row as JSON-ready data."""
        return {"cluster_id": self.cluster_id, "label": self.label, "terms": self.terms, "traces": self.traces,
                "examples": self.examples, "weeks": [w.to_dict() for w in self.weeks]}


@dataclass
class ClusterSummary:
    """What ``cluster_summary`` returns: the current model's clusters, with per-week counts over the window."""

    cluster_model_id: str
    algorithm: str
    k: int
    embedding_model_id: str
    weeks: list[str]
    clusters: list[ClusterRow]
    unassigned: int  # traces in the window with no prompt text or no vector

    def to_dict(self) -> dict:
        """The summary as JSON-ready data."""
        return {"cluster_model_id": self.cluster_model_id, "algorithm": self.algorithm, "k": self.k,
                "embedding_model_id": self.embedding_model_id, "weeks": self.weeks,
                "clusters": [c.to_dict() for c in self.clusters], "unassigned": self.unassigned}


def summary_window(store: Store, since=None, until=None, weeks: int = 8):
    """(since, until) as given, else the last ``weeks`` ISO weeks (Monday start) up to the newest trace."""
    if since is None and until is None:
        last = store.scan().select(pl.col("timestamp").max()).collect().item()
        if last is not None:
            monday = (last - dt.timedelta(days=last.weekday())).date()
            since = dt.datetime.combine(monday - dt.timedelta(weeks=weeks - 1), dt.time(0), dt.UTC)
    return since, until


def cluster_summary(store: Store, *, since=None, until=None, weeks: int = 8, model: str | ModelSpec | None = None,
                    embed_missing: bool | Embedder = True) -> ClusterSummary:
    """Per cluster: label, examples, traces and refusals (``refusal`` not 'none') per ISO week.

    Default window: the last ``weeks`` weeks of data in the store.
    """
    cm = _require_model(store, model, None)
    since, until = summary_window(store, since, until, weeks)
    df = store.scan(since=since, until=until).select("timestamp", "prompt_text", "refusal").collect()
    cid = assign_clusters(store, df, model=model, cluster_model=cm, embed_missing=embed_missing)
    df = df.with_columns(cid, pl.col("timestamp").dt.truncate("1w").dt.date().alias("week"),
                         (pl.col("refusal").is_not_null() & (pl.col("refusal") != "none")).alias("refused"))
    week_list = sorted({w.isoformat() for w in df.get_column("week").drop_nulls().to_list()})
    agg = (df.filter(pl.col("cluster_id").is_not_null()).group_by("cluster_id", "week")
           .agg(pl.len().alias("n"), pl.col("refused").sum().alias("r")))
    cells = {(c, w.isoformat()): (n, r) for c, w, n, r in agg.iter_rows()}
    infos = {c.cluster_id: c for c in cm.clusters}
    ids = sorted(infos) + ([-1] if any(c == -1 for c, _ in cells) else [])
    rows = []
    for c in ids:
        info = infos.get(c)
        wk = [ClusterWeek(w, *cells.get((c, w), (0, 0))) for w in week_list]
        rows.append(ClusterRow(
            cluster_id=c, label=info.label if info else "noise", terms=info.terms if info else [],
            traces=sum(x.traces for x in wk), examples=info.examples if info else [], weeks=wk,
        ))
    rows.sort(key=lambda r: (r.cluster_id < 0, r.cluster_id))  # stable ids: 0 = largest at fit time; noise last
    return ClusterSummary(cm.id, cm.algorithm, cm.k, cm.embedding_model_id, week_list, rows,
                          unassigned=int(df.get_column("cluster_id").is_null().sum()))

