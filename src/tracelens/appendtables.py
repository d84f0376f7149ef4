"""Append-only tables beside the traces (replay results, eval results), in the layout of the store they are in.

Contract: ``append(store_root, name, table, day_column)`` adds ``table``'s rows to the table ``name`` (a
``/``-separated path below the store, e.g. ``replays`` or ``evals/results``) in one atomic step;
``read(store_root, name)`` returns every row (an Arrow table, None when nothing was ever written). Rows are
partitioned by the UTC day of their ``day_column`` (a timestamp).

- In a Delta Lake store (``tracelens.storeopen.store_format`` is "delta", every store tracelens creates) the
  table is a Delta table, ``date``-partitioned: each ``append`` is one commit (all or nothing, concurrent
  appenders both land: appends never conflict), readable by anything that reads Delta. Columns added to a
  schema in a later tracelens are merged into the table's schema on append.
- In a store of the older file layout, each ``append`` writes one Parquet file per day,
  ``NAME/date=YYYY-MM-DD/part-<uuid>.parquet``, to a temporary name then renamed into place, under the store's
  writer lock, as the older layout always did.

Rows are never rewritten here: these tables record what happened (a replay, a graded answer), and their
keys (``replay_id``, ``run_id``) are fresh per write, so there is nothing to deduplicate.
"""

from __future__ import annotations

import contextlib
import os
import time
import uuid
from collections.abc import Callable
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from tracelens.atomic import atomic_path
from tracelens.storefiles import StoreError, one_line, store_lock
from tracelens.storeopen import DELTA, store_format


def _dir(store_root: str | os.PathLike, name: str) -> Path:
    return Path(store_root).joinpath(*[p for p in name.split("/") if p])


def _days(table: pa.Table, day_column: str) -> pa.Array:
    ts = table.column(day_column)
    if pa.types.is_timestamp(ts.type) and ts.type.tz is not None:
        ts = pc.cast(ts, pa.timestamp(ts.type.unit, tz="UTC"))
    return pc.cast(pc.cast(ts, pa.timestamp("us")), pa.date32())


def append(store_root: str | os.PathLike, name: str, table: pa.Table, day_column: str,
           lock: Callable[[str | os.PathLike], contextlib.AbstractContextManager] = store_lock) -> list[Path]:
    """Add ``table``'s rows to ``name`` in one atomic step (see the module docstring); what was written (the
    Delta table's directory, or the Parquet files of the older layout, written holding ``lock(store_root)``:
    the writer lock, or a caller's variant of it that the caller may already hold)."""
    if not table.num_rows:
        return []
    path = _dir(store_root, name)
    if store_format(store_root) == DELTA:
        _append_delta(path, table.append_column("date", _days(table, day_column)))
        return [path]
    days = _days(table, day_column)
    written = []
    with lock(store_root):
        for day in sorted(set(days.to_pylist())):
            d = path / f"date={day.isoformat()}"
            d.mkdir(parents=True, exist_ok=True)
            dest = d / f"part-{uuid.uuid4().hex}.parquet"
            with atomic_path(dest) as tmp:
                pq.write_table(table.filter(pc.equal(days, pa.scalar(day, pa.date32()))), tmp, compression="zstd")
            written.append(dest)
    return written


def _append_delta(path: Path, rows: pa.Table) -> None:
    from deltalake import write_deltalake

    for attempt in range(5):
        try:
            write_deltalake(str(path), rows, mode="append", partition_by=["date"], schema_mode="merge")
            return
        except Exception as e:  # two first writers raced to create version 0: the loser appends to the winner's
            if attempt == 4:
                raise StoreError(f"{path}: appending {rows.num_rows} rows: {one_line(e)}") from None
            time.sleep(0.05 * (attempt + 1))


def read(store_root: str | os.PathLike, name: str) -> pa.Table | None:
    """Every row of ``name`` (without the ``date`` partition column), None when it was never written."""
    path = _dir(store_root, name)
    if store_format(store_root) == DELTA:
        if not (path / "_delta_log").is_dir():
            return None
        from deltalake import DeltaTable

        try:
            t = DeltaTable(str(path)).to_pyarrow_table()
        except Exception as e:
            raise StoreError(f"{path}: {one_line(e)}") from None
        return t.drop_columns(["date"]) if "date" in t.column_names else t
    files = sorted(p for p in path.glob("date=*/part-*.parquet") if not p.name.startswith(".")) if path.is_dir() else []
    if not files:
        return None
    return pa.concat_tables([pq.read_table(f) for f in files], promote_options="permissive")

