"""Where the heavy steps run: in this process (``local``, the default) or on a Ray cluster (``ray``).

Contract::

    get_engine("local") -> LocalEngine
    get_engine("ray", ray_address=None | "auto" | "ray://host:port", workers=None) -> RayEngine

An engine runs three steps, each with the same result whichever engine runs it:

* ``ingest(store, paths, options, ...) -> IngestSummary``: the local engine is
  ``tracelens.ingest.pipeline.ingest``; the Ray engine plans the run here (the
  same ``plan_inputs``), ingests each file in its own Ray task with the same
  pipeline code (``ingest_file``: every task commits its batches to the store
  itself, one transaction per batch) and merges the per-file results into the
  same summary, in the same order.
* ``embed(store, model, ...) -> EmbedResult``: ``tracelens.embed.run.embed_store``;
  the Ray engine sends the distinct texts that have no vector yet to Ray Data
  actors (``map_batches``, the model loaded once per actor, one GPU per actor
  when the cluster has GPUs) and writes the vectors through the same
  ``VectorStore.append``, in the same commit chunks and order.
* ``drift_run(store, baseline, current, ...)``: ``tracelens.weekly.drift_run``;
  the Ray engine computes the refusal counts behind the report's daily series
  and 8-week trend with Ray Data over the store's Parquet files, and embeds
  missing vectors on the Ray actors. Everything else, which needs the rows
  themselves, runs in this process (docs/ray.md lists what and why).

Importing this package never imports ray: ``get_engine("ray")`` does, and
without ray installed it raises ``tracelens.extras.MissingExtra`` naming
``pip install 'tracelens[ray]'`` (the CLI prints that one line, exit code 3).
"""

from __future__ import annotations

from typing import Any

from tracelens.extras import require

ENGINES = ("local", "ray")
DEFAULT_ENGINE = "local"


class LocalEngine:
    """Today's code paths, in this process (and the ingest worker processes it forks)."""

    name = "local"

    def ingest(self, store, paths: list[str], options=None, force_format: str | None = None, batch_size: int | None = None,
               progress=None):
        """``tracelens.ingest.pipeline.ingest`` as it is."""
        from tracelens.ingest.pipeline import BATCH_SIZE, ingest

        return ingest(store, paths, options, force_format=force_format, batch_size=batch_size or BATCH_SIZE,
                      progress=progress)

    def embed(self, store, model: str | None = None, **kw: Any):
        """``tracelens.embed.run.embed_store`` as it is."""
        from tracelens.embed.run import embed_store

        return embed_store(store, model, **kw)

    def drift_run(self, store, baseline, current, **kw: Any):
        """``tracelens.weekly.drift_run`` as it is."""
        from tracelens.weekly import drift_run

        return drift_run(store, baseline, current, **kw)

    def weekly_run(self, store, week=None, now=None, **kw: Any):
        """``tracelens.weekly.weekly_run`` as it is."""
        from tracelens.weekly import weekly_run

        return weekly_run(store, week, now, **kw)

    def close(self) -> None:
        """Nothing to release."""


def get_engine(name: str = DEFAULT_ENGINE, *, ray_address: str | None = None, workers: int | None = None):
    """The engine called ``name``; ``ray_address``/``workers`` only apply to ``ray`` (see ``RayEngine``).

    Raises ValueError for an unknown name, ``MissingExtra`` for ``ray`` without ray installed.
    """
    if name == "local":
        return LocalEngine()
    if name == "ray":
        require("ray", "--engine ray")
        try:
            from tracelens.engines.rayengine import RayEngine
        except ImportError as e:  # found but broken (a half-installed ray): the same one line
            from tracelens.extras import MissingExtra

            raise MissingExtra("ray", "--engine ray", [getattr(e, "name", None) or "ray"]) from None
        return RayEngine(ray_address=ray_address, workers=workers)
    raise ValueError(f"unknown engine {name!r}; use one of {', '.join(ENGINES)}")
