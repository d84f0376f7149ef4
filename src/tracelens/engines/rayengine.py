"""The Ray engine: ingest, embeddings and the drift report's refusal counts on a Ray cluster.

The only module of tracelens that imports ray (``tracelens.engines.get_engine``
loads it). Results are those of the local engine; only where the work runs
changes:

* Ingest: the run is planned in the driver (``plan_inputs``: paths expanded,
  formats sniffed, batch-request companions paired), then each file is one
  Ray task (``num_cpus=1``) running ``ingest_file``, the local pipeline's own
  per-file code, which commits its batches to the store itself (one
  transaction per batch; the store is safe for concurrent writer processes:
  the duplicate index is refreshed under the writer lock before each commit).
  The driver merges the tasks' ``FileResult``s into the ``IngestSummary`` in
  plan order, then counts the log events still waiting for their span, as
  the local engine does. The store must be a path every Ray node can reach
  (one machine, or a shared file system). Stdin cannot be shipped to a task:
  ``-`` is refused (ingest it with the local engine).
* Embeddings: ``encode_chunks`` takes the commit chunks of ``embed_store``
  (distinct texts with no vector yet; deduplicated in the driver, so each
  text goes to Ray once), and for each wave of up to ``WAVE_TEXTS`` texts runs
  ``ray.data.from_arrow(...).map_batches(EmbedActor, concurrency=N, ...)``:
  each actor loads the model once with ``get_embedder`` (offline, the same
  loader as the local path) and encodes its batches; a GPU per actor when
  ``ray.cluster_resources()`` reports GPUs, else CPU actors of
  ``ACTOR_CPUS`` cores. Vectors come back by row index, so the driver stores
  them through the same ``VectorStore.append`` in the same chunks and order.
* Drift: ``series_counts`` reads the window's and history's trace files
  (``ray.data.read_parquet`` over the store's file list, taken under the
  store's shared apply lock so no commit moves a file meanwhile), counts each
  block where it is read with ``analysis.drift.refusal_counts`` and sums the
  parts in the driver (a few rows per day and window: a Ray ``groupby`` would
  shuffle them through aggregator actors for nothing; measured 60-100 s of
  overhead on a 2-core machine); ``analyze`` then builds the daily series and
  8-week trend from them. Files under ``COUNT_ON_RAY_BYTES`` in all are
  counted in the driver by the same function: Ray Data's start costs more
  than reading them. ``embedder`` gives ``weekly``/``drift`` an embedder that encodes on
  the actors.

``ray_address``: None starts (or joins) a Ray instance on this machine with
the CPUs available; ``auto`` or ``ray://host:port`` connects to a cluster. A
Ray instance already initialised in this process (a test's, a notebook's) is
used as it is. ``workers`` caps the Ray tasks and actors in flight (default:
the cluster's CPUs, or its GPUs for embedding).
"""

from __future__ import annotations

import contextlib
import datetime as dt
import itertools
import math
import os
import warnings
from collections.abc import Iterable, Iterator

import numpy as np
import pyarrow as pa
import ray

# Texts per Ray Data run when embedding: each run starts its actors (and they load the model), so a run
# should be long enough to pay for that, and short enough that commits follow the work (an interrupted run
# keeps every committed chunk).
WAVE_TEXTS = 262_144
# CPU cores per embedding actor when the cluster has no GPUs (torch uses them as its threads).
ACTOR_CPUS = 1
# Texts per map_batches batch handed to an actor (the actor's encoder cuts it into its own batches).
ACTOR_BATCH = 1024
# The drift report's refusal counts go to Ray Data from this many bytes of trace files (the window's and the
# 8-week history's); below it they are counted in the driver by the same function (benchmarks/scale_ray.py:
# Ray Data's fixed start cost is tens of seconds on a small machine, the driver reads ~100 MB in about a second).
COUNT_ON_RAY_BYTES = 256 * 1024 * 1024


class EmbedActor:
    """A Ray Data actor: loads the embedding model once, then encodes each batch of texts it is given."""

    def __init__(self, model: str | None, device: str, batch_size: int, backend: str, threads: int | None = None):
        if threads:
            try:
                import torch

                torch.set_num_threads(threads)
            except ImportError:  # the fake model needs no torch
                pass
        from tracelens.embed.models import get_embedder

        self.embedder = get_embedder(model, device=device, batch_size=batch_size, backend=backend)

    def __call__(self, batch: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        vectors = self.embedder([str(t) for t in batch["text"]])
        return {"i": batch["i"], "vec": np.asarray(vectors, dtype=np.float32)}


@ray.remote(num_cpus=1)
def _ingest_task(root: str, path: str, fmt_name: str, res, options, batch_size: int):
    """One planned file ingested by ``ingest_file`` in a Ray worker, committing to the store at ``root`` (a store
    directory, or the URL of a Delta Lake store: each worker commits its own batches either way)."""
    from tracelens.ingest.pipeline import ingest_file
    from tracelens.storeopen import open_store

    store = open_store(root, write=True)
    return ingest_file(store, path, fmt_name, res, options, batch_size, workers=0)


class RayEmbedder:
    """An embedder (``(list[str]) -> float32 (n, dim)``) that encodes on the engine's Ray actors.

    ``encode_chunks`` encodes many chunks in one Ray Data run (``ensure_vectors`` uses it when present).
    """

    def __init__(self, engine: RayEngine, model: str | None, device: str = "auto", batch_size: int | None = None,
                 backend: str | None = None):
        from tracelens.embed.models import DEFAULT_BACKEND, DEFAULT_BATCH_SIZE, resolve_model

        self.engine, self.model = engine, model
        self.model_id = resolve_model(model).model_id
        self.device, self.batch_size = device, batch_size or DEFAULT_BATCH_SIZE
        self.backend = backend or DEFAULT_BACKEND

    def encode_chunks(self, chunks: Iterable[list[str]]) -> Iterator[np.ndarray]:
        """One array per chunk, in order."""
        return self.engine.encode_chunks(chunks, model=self.model, device=self.device, batch_size=self.batch_size,
                                         backend=self.backend)

    def __call__(self, texts: list[str]) -> np.ndarray:
        return next(iter(self.encode_chunks([list(texts)])))


class RayEngine:
    """See the module docstring."""

    name = "ray"

    def __init__(self, ray_address: str | None = None, workers: int | None = None):
        if workers is not None and workers < 1:
            raise ValueError(f"workers must be at least 1, got {workers}")
        self.ray_address = ray_address
        self.workers = workers
        self._started = False  # whether this engine called ray.init (and so shuts it down)

    # ------------------------------------------------------------------ connection

    def connect(self) -> None:
        """Join the Ray instance of this process, or start/connect one (see ``ray_address``)."""
        _quiet_ray_data()
        if ray.is_initialized():
            return
        kw: dict = {"include_dashboard": False, "log_to_driver": False, "configure_logging": False}
        # The workers import tracelens: on this machine from wherever the driver does (a checkout included).
        src = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
        if self.ray_address is None:
            kw["runtime_env"] = {"env_vars": {"PYTHONPATH": os.pathsep.join(
                p for p in (src, os.environ.get("PYTHONPATH", "")) if p)}}
        ray.init(address=self.ray_address, **kw)
        self._started = True

    def close(self) -> None:
        """Shut down the Ray instance this engine started (a joined one is left alone)."""
        if self._started and ray.is_initialized():
            ray.shutdown()
        self._started = False

    def _cpus(self) -> int:
        return max(1, int(ray.cluster_resources().get("CPU", 1)))

    def _gpus(self) -> int:
        return int(ray.cluster_resources().get("GPU", 0))

    # ------------------------------------------------------------------ ingest

    def ingest(self, store, paths: list[str], options=None, force_format: str | None = None,
               batch_size: int | None = None, progress=None):
        """The local engine's ``ingest``, one Ray task per file (see the module docstring)."""
        from tracelens.ingest.normalize import check_zone
        from tracelens.ingest.pipeline import BATCH_SIZE, _prepare, count_waiting, plan_inputs
        from tracelens.ingest.summary import IngestSummary

        batch_size = batch_size or BATCH_SIZE
        if batch_size < 1:
            raise ValueError(f"batch_size must be at least 1, got {batch_size}")
        if options is not None:
            check_zone(options.naive_tz, allow_reject=True)
        if "-" in paths:
            raise ValueError("--engine ray reads files, not stdin ('-'): ingest stdin with the local engine")
        plan = plan_inputs(store, paths, options, force_format)
        # the redaction salt exists before any task needs it (tasks read it; none races to create it)
        options, _, _ = _prepare(store, plan.options, False)
        summary = IngestSummary(files=list(plan.done))
        if plan.files:
            self.connect()
            root = str(store.root)
            limit = self.workers or self._cpus()
            results: dict[int, object] = {}
            queue = list(enumerate(plan.files))
            pending: dict = {}
            # at most ``limit`` tasks in flight: a long list of files does not flood the scheduler
            while queue or pending:
                while queue and len(pending) < limit:
                    i, (path, fmt, res) = queue.pop(0)
                    ref = _ingest_task.remote(root, path, fmt.name, res, options, batch_size)
                    pending[ref] = i
                ready, _ = ray.wait(list(pending), num_returns=1)
                for ref in ready:
                    i = pending.pop(ref)
                    results[i] = ray.get(ref)
                    if progress:
                        progress(results[i])
            summary.files.extend(results[i] for i in range(len(plan.files)))
        count_waiting(store, summary)
        return summary

    # ------------------------------------------------------------------ embeddings

    def embed(self, store, model: str | None = None, **kw):
        """``embed_store`` with the texts encoded on Ray actors."""
        from tracelens.embed.run import embed_store

        return embed_store(store, model, engine=self, **kw)

    def embedder(self, model: str | None = None, device: str = "auto", batch_size: int | None = None,
                 backend: str | None = None) -> RayEmbedder:
        """An embedder that encodes on this engine's actors (nothing starts until it encodes)."""
        return RayEmbedder(self, model, device, batch_size, backend)

    def encode_chunks(self, chunks: Iterable[list[str]], *, model: str | None = None, device: str = "auto",
                      batch_size: int = 64, backend: str = "torch", result=None) -> Iterator[np.ndarray]:
        """One float32 array per chunk of texts, in order; chunks are encoded in waves of ``WAVE_TEXTS`` texts."""
        self.connect()
        gpus = self._gpus()
        if gpus:
            actors, per_actor = min(self.workers or gpus, gpus), {"num_gpus": 1}
            threads = None
        else:
            threads = min(ACTOR_CPUS, self._cpus())
            actors = self.workers or max(1, self._cpus() // threads)
            per_actor = {"num_cpus": threads}
        if result is not None:
            result.device = f"ray: {actors} {'GPU' if gpus else 'CPU'} actor(s)"
            result.backend = backend
        it = iter(chunks)
        while True:
            wave: list[list[str]] = []
            size = 0
            for chunk in it:
                wave.append(chunk)
                size += len(chunk)
                if size >= WAVE_TEXTS:
                    break
            if not wave:
                return
            texts = list(itertools.chain.from_iterable(wave))
            vectors = self._encode_wave(texts, actors, per_actor, threads, model, device, batch_size, backend)
            off = 0
            for chunk in wave:
                yield vectors[off:off + len(chunk)]
                off += len(chunk)

    def _encode_wave(self, texts: list[str], actors: int, per_actor: dict, threads: int | None, model, device: str,
                     batch_size: int, backend: str) -> np.ndarray:
        n = len(texts)
        if n == 0:
            return np.zeros((0, 0), dtype=np.float32)
        actors = max(1, min(actors, math.ceil(n / 64)))  # no actor (and model load) for a handful of texts
        # several blocks per actor, so the actors share the work (one block goes to one actor)
        rows = max(1, min(ACTOR_BATCH, math.ceil(n / (actors * 4))))
        blocks = [pa.table({"i": pa.array(range(s, min(n, s + rows)), pa.int64()),
                            "text": pa.array(texts[s:s + rows], pa.large_string())})
                  for s in range(0, n, rows)]
        ds = ray.data.from_arrow(blocks).map_batches(
            EmbedActor,
            fn_constructor_kwargs={"model": model, "device": device, "batch_size": batch_size, "backend": backend,
                                   "threads": threads},
            batch_size=rows, batch_format="numpy", compute=ray.data.ActorPoolStrategy(size=actors), **per_actor,
        )
        out: np.ndarray | None = None
        for batch in ds.iter_batches(batch_format="numpy", batch_size=None):
            vec = np.asarray(batch["vec"], dtype=np.float32)
            if out is None:
                out = np.empty((n, vec.shape[1]), dtype=np.float32)
            out[np.asarray(batch["i"])] = vec
        assert out is not None
        return out

    # ------------------------------------------------------------------ drift

    def drift_run(self, store, baseline, current, **kw):
        """``tracelens.weekly.drift_run`` with this engine's embeddings and refusal counts."""
        from tracelens.weekly import drift_run

        return drift_run(store, baseline, current, engine=self, **kw)

    def weekly_run(self, store, week=None, now=None, **kw):
        """``tracelens.weekly.weekly_run`` with this engine's embeddings and refusal counts."""
        from tracelens.weekly import weekly_run

        return weekly_run(store, week, now, engine=self, **kw)

    def series_counts(self, store, baseline, current, prep):
        """``analysis.drift.SeriesCounts`` of the report on ``prep`` (see the module docstring)."""
        import polars as pl

        from tracelens.analysis.drift import refusal_counts, series_counts
        from tracelens.schema import TRACE_SCHEMA

        utc = dt.UTC
        windows = ((0, _utc(baseline.start), _utc(baseline.end)), (1, _utc(current.start), _utc(current.end)))
        hist_start = _utc(current.end) - dt.timedelta(weeks=8)
        history = (hist_start, _utc(current.end))
        stamps = [f.get_column("timestamp").min() for f in (prep.baseline, prep.current) if f.height]
        stamps = [s for s in stamps if s is not None]
        before = min(stamps).astimezone(utc) if stamps else None
        trend_start = _utc(current.end) - dt.timedelta(days=56)
        lo = min(hist_start, windows[0][1], windows[1][1]).date()
        hi = (max(history[1], windows[0][2], windows[1][2]) - dt.timedelta(microseconds=1)).date()
        cols = ["timestamp", "status", "refusal"]
        schema = pa.schema([TRACE_SCHEMA.field(c) for c in cols])
        self.connect()

        def count(batch: pa.Table) -> pa.Table:
            return refusal_counts(pl.from_arrow(batch), windows, history, before, trend_start).to_arrow()

        parts = refusal_counts(pl.from_arrow(schema.empty_table()), windows, history, before, trend_start)
        with _readable_files(store, lo, hi) as sizes:
            files = list(sizes or {})
            if sizes is None:  # a Delta store at a URL: counted here, through the store's own reader
                rows = store.scan("traces", lo, hi).select(cols).collect()
                parts = pl.concat([parts, refusal_counts(rows, windows, history, before, trend_start)])
            elif files and sum(sizes.values()) < COUNT_ON_RAY_BYTES:
                # too little to pay for Ray Data's start (read tasks, worker processes: ~20 s on 2 busy cores
                # for 20,000 traces, against 0.1 s here): the same function over the same files, here
                lf = pl.scan_parquet(files, hive_partitioning=False, missing_columns="insert",
                                     extra_columns="ignore", schema=pl.from_arrow(schema.empty_table()).schema)
                files = []
                parts = pl.concat([parts, refusal_counts(lf.collect(), windows, history, before, trend_start)])
            if files:
                with warnings.catch_warnings():  # ``columns=``: deprecated in later Ray, the way to prune in 2.40
                    warnings.simplefilter("ignore", DeprecationWarning)
                    ds = ray.data.read_parquet(files, columns=cols, schema=schema, partitioning=None)
                # each read task counts its rows (the read and the count fuse into one task per file); the parts
                # are a few rows per day and window, so they are summed here rather than shuffled by a groupby
                tables = [t for t in ray.get(ds.map_batches(count, batch_format="pyarrow", batch_size=None)
                                             .to_arrow_refs()) if t.num_rows]
                if tables:
                    parts = pl.concat([parts, pl.from_arrow(pa.concat_tables(tables)).cast(parts.schema)])
        return series_counts(parts, trend_start)


@contextlib.contextmanager
def _readable_files(store, lo: dt.date, hi: dt.date):
    """The traces data files of days [lo, hi] -> their size in bytes, readable while the block runs.

    A store of the older layout holds its apply lock (shared), so no commit renames or deletes a file while
    the tasks read; a Delta Lake snapshot's files are immutable and stay until ``vacuum`` (7 days by default),
    so its latest snapshot needs no lock. A Delta store at a URL gives {}: its rows are counted in the driver
    through ``scan`` (Ray workers would need the store's credentials and endpoint for their own reads): None.
    """
    if getattr(store, "format", None) == "delta":
        yield store.data_files("traces", lo, hi) if store.local_root is not None else None
        return
    with store.apply_lock(shared=True):
        yield {str(f): os.path.getsize(f) for f in store.files("traces", lo, hi)}


def _quiet_ray_data() -> None:
    """Keep stdout for data: Ray Data's progress bars and per-dataset INFO lines are off, and the warnings the
    Ray driver relays from its raylets (printed on stdout by ``ray._private.worker.print_to_stdstream``) go to
    stderr, where the commands' diagnostics are."""
    import logging

    ctx = ray.data.DataContext.get_current()
    ctx.enable_progress_bars = False
    ctx.enable_operator_progress_bars = False
    logging.getLogger("ray.data").setLevel(logging.WARNING)
    from ray._private import worker

    relay = getattr(worker, "print_to_stdstream", None)
    if relay is None or getattr(relay, "to_stderr", False):
        return

    def to_stderr(data, *args, **kw):
        return relay({**data, "is_err": True}, *args, **kw)

    to_stderr.to_stderr = True
    worker.print_to_stdstream = to_stderr


def _utc(t: dt.datetime) -> dt.datetime:
    return t.replace(tzinfo=dt.UTC) if t.tzinfo is None else t.astimezone(dt.UTC)


__all__ = ["EmbedActor", "RayEmbedder", "RayEngine"]
