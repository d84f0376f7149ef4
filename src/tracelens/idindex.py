"""Which partition days hold a trace id, answered from memory instead of a scan of the store.

Contract:

* ``TraceIdIndex(store)`` maps every stored ``trace_id`` to the ``date=``
  partition of its file. It reads each traces file's id column once: files
  are immutable once committed (a rewrite brings a new file and deletes the
  old one), so a file is known by its path, size, mtime and inode.
* ``refresh()`` brings it up to date with the files the store lists now
  (under the store's shared apply lock, a consistent snapshot): new files are
  read, files gone are dropped. ``days()`` refreshes first, so an id committed
  a moment ago is found; the cost is listing the partitions plus reading the
  new files only.
* ``days(trace_id)`` lists the days holding that exact id; ``days(prefix,
  prefix=True)`` the days holding an id that starts with it. An empty list
  means no stored trace has it. ``None`` means the index cannot say (not built
  yet, or a file it could not read): the caller then scans as it would without
  an index, and that scan reports a damaged file as usual.
* It narrows which partitions a lookup opens; the query on those partitions
  stays the answer, so a stale index can cost a lookup time, never rows.
* In memory only: nothing is written to the store (no format change, nothing
  to keep in step with commits). At a million traces it holds about 30 MB
  and is built in well under a second; the TUI builds it in the background
  after its first page is shown. Thread-safe.

Why: the store's Parquet statistics prune a lookup by id only when ids
happen to follow file order. Ids from providers are random, and a prefix
(an id typed in part) never prunes, so without this index every lookup
reads the id column of the whole store.
"""

from __future__ import annotations

import datetime as dt
import os
import threading
from pathlib import Path

import polars as pl

from tracelens.store import CorruptStoreError, Store

_FileKey = tuple[str, int, int, int]  # path, size, mtime_ns, inode


class TraceIdIndex:
    """trace_id → partition day of every stored trace (see the module docstring)."""

    def __init__(self, store: Store) -> None:
        self.store = store
        self._lock = threading.Lock()
        self._files: dict[_FileKey, pl.DataFrame] = {}  # per file: trace_id, day
        self._all: pl.DataFrame | None = None  # the files' frames together, rebuilt when the files change
        self._unreadable = False  # a file could not be read: the index cannot say what it holds

    @property
    def ready(self) -> bool:
        """True once built (``refresh`` ran) and every file was readable."""
        return self._all is not None and not self._unreadable

    def refresh(self) -> None:
        """Read the id column of files committed since the last refresh; forget files that are gone."""
        with self._lock:
            with self.store.apply_lock(shared=True):
                listed = []
                for path in self.store.files("traces"):
                    try:
                        st = os.stat(path)
                    except FileNotFoundError:
                        continue
                    listed.append((str(path), st.st_size, st.st_mtime_ns, st.st_ino))
                new = [k for k in listed if k not in self._files]
                read = {k: self._read(Path(k[0])) for k in new}
            # an unreadable file is never kept, so it is read (and found unreadable) again until it is gone
            self._unreadable = any(v is None for v in read.values())
            if not new and len(listed) == len(self._files) and self._all is not None:
                return
            current = set(listed)
            self._files = {k: v for k, v in self._files.items() if k in current}
            self._files.update({k: v for k, v in read.items() if v is not None})
            frames = list(self._files.values())
            # not rechunked: the chunks stay the files' own frames, so the ids are held once
            self._all = (pl.concat(frames, rechunk=False) if frames
                         else pl.DataFrame(schema={"trace_id": pl.String, "day": pl.Date}))

    def _read(self, path: Path) -> pl.DataFrame | None:
        day = dt.date.fromisoformat(path.parent.name[5:])
        try:
            # what a scan refuses (a damaged footer, foreign columns, a link) the index does not answer for
            self.store.check_files("traces", [path])
            # polars rather than pyarrow: the ids land in the allocator the index keeps them in
            ids = pl.read_parquet(path, columns=["trace_id"])
        except FileNotFoundError:  # deleted by a commit since it was listed: the next refresh drops it
            return pl.DataFrame(schema={"trace_id": pl.String, "day": pl.Date})
        except (CorruptStoreError, OSError, pl.exceptions.PolarsError):  # the store's scan says what is wrong
            return None
        return ids.select(pl.col("trace_id").cast(pl.String), pl.lit(day, dtype=pl.Date).alias("day"))

    def days(self, trace_id: str, prefix: bool = False) -> list[dt.date] | None:
        """Days holding ``trace_id`` (or an id starting with it, when ``prefix``), sorted; None if unknown."""
        if self._all is None:  # not built yet (or being built): never wait for it
            return None
        self.refresh()  # also notices a damaged file set aside since, and then answers again
        all_ = self._all
        if self._unreadable or all_ is None:
            return None
        col = pl.col("trace_id")
        hit = all_.filter(col.str.starts_with(trace_id) if prefix else col == trace_id)
        return sorted(set(hit["day"].to_list()))

    def __len__(self) -> int:
        all_ = self._all
        return 0 if all_ is None else all_.height
