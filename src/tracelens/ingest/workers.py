"""Worker processes of the parallel ingest path, and the chunk of raw lines they are sent.

* ``default_workers()``: how many (``TRACELENS_INGEST_WORKERS``, else one per
  CPU up to ``MAX_DEFAULT_WORKERS``; 0 means the serial path).
* ``Chunk`` (raw lines of one batch) goes to a worker, ``ChunkResult`` (its
  Arrow table and quarantine rows) comes back; lines longer than
  ``KEEP_LINE`` are let go of once parsed (``Released``).
* ``exit_with_parent(pid)``: a worker ends when the ingest process that
  started it dies, however it dies (no orphan holds the store's files).
"""

from __future__ import annotations

import contextlib
import os
import signal
import sys
import time
from dataclasses import dataclass

import pyarrow as pa

from tracelens.ingest.base import Quarantined

# Workers for the parallel path when not given: one per CPU, up to this many.
MAX_DEFAULT_WORKERS = 4
WORKERS_ENV = "TRACELENS_INGEST_WORKERS"


def default_workers() -> int:
    """Worker processes for the parallel path: ``TRACELENS_INGEST_WORKERS``, else one per CPU (max 4); 0 = serial."""
    env = os.environ.get(WORKERS_ENV, "").strip()
    if env:
        try:
            return max(0, int(env))
        except ValueError:
            pass
    try:
        cpus = len(os.sched_getaffinity(0))
    except (AttributeError, OSError):  # not Linux
        cpus = os.cpu_count() or 1
    return min(cpus, MAX_DEFAULT_WORKERS) if cpus > 1 else 0



# Lines longer than this are let go of once parsed (see _process_chunk).
KEEP_LINE = 1024 * 1024


@dataclass(frozen=True)
class Released:
    """Stands for a chunk line let go of after parsing (its size is kept for the failure report)."""

    size: int


@dataclass
class Chunk:
    """Raw lines of one batch: ``batch_size`` records or CHUNK_BYTES of lines (fewer at the end), blank lines included."""

    index: int
    lines: list[bytes]
    first_line: int  # 1-based number of lines[0]
    offset: int  # byte offset of lines[0] in the (decompressed) input
    tail: Quarantined | None = None  # the reading error that ended the input, after these lines
    nbytes: int = 0  # bytes of ``lines``


@dataclass
class ChunkResult:
    """What a worker sends back for one ``Chunk``: its rows as an Arrow table (not yet enriched), quarantine rows and counts."""

    traces: pa.Table  # enriched when ``enriched``
    quarantine: list[dict]
    records: int  # physical records: non-blank lines, and the tail
    read: int
    skipped: int
    naive_timestamps: int
    enriched: bool = False  # the refusal labels are set (the built-in enricher ran with the chunk)



def exit_with_parent(parent: int) -> None:
    """Make this worker end when the ingest process that started it dies, however it dies.

    A worker blocks reading the task queue, and every worker inherits the
    queue's write end from the fork, so a SIGKILLed parent never gives it EOF:
    without this it would wait forever. On Linux the kernel sends SIGKILL at
    the parent's death (``PR_SET_PDEATHSIG``); everywhere a daemon thread
    polls the parent pid as well (reparenting changes ``getppid``), which also
    covers a parent that died before the signal was armed.
    """
    if sys.platform.startswith("linux"):
        with contextlib.suppress(Exception):  # no libc, or a kernel that refuses: the watchdog still runs
            import ctypes

            pr_set_pdeathsig = 1
            ctypes.CDLL(None, use_errno=True).prctl(pr_set_pdeathsig, signal.SIGKILL, 0, 0, 0)
    if os.getppid() != parent:
        os._exit(1)

    def watch() -> None:
        while os.getppid() == parent:
            time.sleep(WATCHDOG_INTERVAL)
        os._exit(1)

    import threading

    threading.Thread(target=watch, name="tracelens-parent-watchdog", daemon=True).start()


WATCHDOG_INTERVAL = 0.5  # seconds between parent checks in a worker (the fallback where PDEATHSIG is missing)
