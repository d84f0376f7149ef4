"""Replay results on disk: ``<store>/replays/date=YYYY-MM-DD/part-<uuid>.parquet``.

Each ``write_replays`` call writes one Parquet file per UTC date of the
results' ``created_at``, first to a hidden temporary name in the same
directory and then ``os.replace``-d into place, so readers only ever see
complete files. ``load_replays`` reads every ``part-*.parquet`` (hidden and
temporary files are ignored) into one polars frame with ``REPLAY_SCHEMA``'s
columns, optionally filtered to some trace ids; an empty frame when none.
Text that came back from the server (response, raw body, error) is scrubbed
of secrets before it is written (``tracelens.secrets``), like ingested traces.

This module does not need ``tracelens.store``: replays live beside the trace
tables under the same root, and have their own schema.
"""

from __future__ import annotations

import datetime as dt
import os
import uuid
from collections import defaultdict
from collections.abc import Iterable, Sequence
from pathlib import Path

import polars as pl
import pyarrow as pa
import pyarrow.parquet as pq

from tracelens.atomic import atomic_path
from tracelens.replay.client import ReplayResult
from tracelens.secrets import scrub_text
from tracelens.store import store_lock

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
    """Append ``results`` to the replays table atomically; returns the files written."""
    by_day: dict[dt.date, list[ReplayResult]] = defaultdict(list)
    for r in results:
        by_day[r.created_at.astimezone(dt.UTC).date()].append(r)
    written = []
    with store_lock(store_path):
        for day, rows in sorted(by_day.items()):
            d = Path(store_path) / REPLAYS_DIR / f"date={day.isoformat()}"
            d.mkdir(parents=True, exist_ok=True)
            dest = d / f"part-{uuid.uuid4().hex}.parquet"
            with atomic_path(dest) as tmp:
                pq.write_table(_table(rows), tmp, compression="zstd")
            written.append(dest)
    return written


def replay_files(store_path: str | os.PathLike) -> list[Path]:
    root = Path(store_path) / REPLAYS_DIR
    if not root.is_dir():
        return []
    return sorted(p for p in root.glob("date=*/part-*.parquet") if not p.name.startswith("."))


def empty_replays() -> pl.DataFrame:
    return pl.from_arrow(REPLAY_SCHEMA.empty_table())  # type: ignore[return-value]


def load_replays(store_path: str | os.PathLike, trace_ids: Iterable[str] | None = None) -> pl.DataFrame:
    """All stored replays (optionally only for ``trace_ids``), oldest first."""
    files = replay_files(store_path)
    if not files:
        return empty_replays()
    frames = []
    for f in files:
        t = pq.read_table(f)
        # Files written by an older tracelens may lack newer columns: add them as nulls.
        for fld in REPLAY_SCHEMA:
            if fld.name not in t.column_names:
                t = t.append_column(fld.name, pa.nulls(t.num_rows, fld.type))
        frames.append(pl.from_arrow(t.select(list(COLUMNS)).cast(REPLAY_SCHEMA)))
    df = pl.concat(frames, how="vertical")
    if trace_ids is not None:
        df = df.filter(pl.col("trace_id").is_in(list(trace_ids)))
    return df.sort("created_at")
