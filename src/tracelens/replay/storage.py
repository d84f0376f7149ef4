"""Replay results in the store: the append-only table ``<store>/replays``, by UTC day of ``created_at``.

Each ``write_replays`` call is one atomic append (``tracelens.appendtables``: a Delta Lake commit in a Delta
store, one Parquet file per day renamed into place in the older layout), so readers only ever see whole
calls. ``load_replays`` reads the table into one polars frame with ``REPLAY_SCHEMA``'s columns, optionally
filtered to some trace ids; an empty frame when none.
Text that came back from the server (response, raw body, error) is scrubbed
of secrets before it is written (``tracelens.secrets``), like ingested traces.

This module does not need ``tracelens.store``: replays live beside the trace
tables under the same root, and have their own schema.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Sequence
from pathlib import Path

import polars as pl
import pyarrow as pa

from tracelens.appendtables import append, read
from tracelens.replay.client import ReplayResult
from tracelens.secrets import scrub_text

REPLAYS_DIR = "replays"

REPLAY_SCHEMA = pa.schema(
    [
        pa.field("trace_id", pa.string(), nullable=False),
        pa.field("replay_id", pa.string(), nullable=False),
        pa.field("created_at", pa.timestamp("us", tz="UTC"), nullable=False),
        pa.field("model_requested", pa.string()),
        pa.field("model_returned", pa.string()),
        pa.field("request_id", pa.string()),
        pa.field("response_text", pa.string()),
        pa.field("response_raw", pa.string()),
        pa.field("stop_reason", pa.string()),
        pa.field("refusal", pa.string()),
        pa.field("input_tokens", pa.int64()),
        pa.field("output_tokens", pa.int64()),
        pa.field("latency_ms", pa.float64()),
        pa.field("error", pa.string()),
        pa.field("reconstructed", pa.bool_()),
        pa.field("base_url_is_default", pa.bool_()),
        pa.field("canary", pa.string()),
        pa.field("canary_run_id", pa.string()),
    ]
)

COLUMNS = tuple(REPLAY_SCHEMA.names)


_SCRUBBED = frozenset({"model_returned", "request_id", "response_text", "response_raw", "error"})


def _table(results: Sequence[ReplayResult]) -> pa.Table:
    rows = {
        name: [scrub_text(v) if name in _SCRUBBED and isinstance(v, str) else v for v in (getattr(r, name) for r in results)]
        for name in COLUMNS
    }
    return pa.Table.from_pydict(rows, schema=REPLAY_SCHEMA)


def write_replays(store_path: str | os.PathLike, results: Iterable[ReplayResult]) -> list[Path]:
    """Append ``results`` to the replays table in one atomic step; returns what was written."""
    results = list(results)
    return append(store_path, REPLAYS_DIR, _table(results), "created_at") if results else []


def empty_replays() -> pl.DataFrame:
    """An empty frame with ``REPLAY_SCHEMA``'s columns."""
    return pl.from_arrow(REPLAY_SCHEMA.empty_table())  # type: ignore[return-value]


def load_replays(store_path: str | os.PathLike, trace_ids: Iterable[str] | None = None) -> pl.DataFrame:
    """All stored replays (optionally only for ``trace_ids``), oldest first."""
    t = read(store_path, REPLAYS_DIR)
    if t is None or not t.num_rows:
        return empty_replays()
    # rows written by an older tracelens may lack newer columns: they read as nulls
    for fld in REPLAY_SCHEMA:
        if fld.name not in t.column_names:
            t = t.append_column(fld.name, pa.nulls(t.num_rows, fld.type))
    df = pl.from_arrow(t.select(list(COLUMNS)).cast(REPLAY_SCHEMA))
    if trace_ids is not None:
        df = df.filter(pl.col("trace_id").is_in(list(trace_ids)))
    return df.sort("created_at")
