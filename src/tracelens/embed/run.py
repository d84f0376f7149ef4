"""The incremental embed job behind `tracelens embed`.

``embed_store(store, model, ...) -> EmbedResult`` embeds the prompt, response
and system-prompt texts of the traces in a window that have no vector yet for
the chosen model:

* Each distinct text (by ``text_hash``) is embedded once, whatever column or
  how many traces it appears in; texts that already have a vector are not
  touched. A run with nothing to do does not even load the model.
* Two passes over the window: the first only hashes texts to find what is
  missing (cheap: hashing runs at ~1M texts/s, embedding at ~100/s on a CPU),
  which gives the progress total; the second embeds, in commit chunks of
  ``commit_every`` texts, each stored atomically (``VectorStore.append``), so an
  interrupted run keeps every finished chunk and the next run continues.
* Each commit chunk is sorted by text length before it is cut into encoder
  batches, so batches pad to similar lengths.
* A run that finishes records, per column, which trace files (day
  partitions are immutable Parquet files) are now fully embedded, in
  ``embeddings/<model-slug>/_complete.json`` (an object beside the vector
  table on a Delta Lake store, naming its data files). Later runs skip those days
  without reading them (``skipped_days``), so re-running over a complete
  store reads no text at all. New ingests add new files, so their days are
  read again; losing the file only costs one rescan.
* ``sample_per_day=N`` keeps N traces per day (all when fewer), chosen by the
  order of ``sha256(seed:trace_id)``: deterministic, stratified by day, and a
  larger N is a superset of a smaller one.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import time
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass

import polars as pl
import pyarrow.parquet as pq

from tracelens.embed.models import DEFAULT_BACKEND, DEFAULT_BATCH_SIZE, Embedder, get_embedder, resolve_model
from tracelens.embed.vectors import VectorStore, embeddable, on_delta
from tracelens.hashing import text_hash
from tracelens.store import Store

DEFAULT_COLUMNS = ("prompt_text", "response_text", "system_prompt")
COMMIT_EVERY = 4096
PROGRESS_CHUNK = 512
DONE_FILE = "_complete.json"

Progress = Callable[[int, int, float], None]  # (embedded so far, total to embed, seconds spent embedding)


@dataclass
class EmbedResult:
    """What one embed run did."""

    model_id: str
    slug: str
    columns: list[str]
    traces: int = 0  # traces considered (after sampling)
    texts: int = 0  # non-blank text cells considered
    distinct: int = 0  # distinct texts among them
    already: int = 0  # distinct texts that had a vector before this run
    embedded: int = 0  # texts embedded and stored by this run
    commits: int = 0
    seconds: float = 0.0  # whole run
    embed_seconds: float = 0.0  # model load excluded, encode + store included
    load_seconds: float = 0.0
    device: str | None = None
    batch_size: int | None = None
    backend: str | None = None  # what ran: torch | pipeline | openvino | onnx | fake
    compacted: bool = False
    interrupted: bool = False
    days: int = 0  # stored days in the window that were read
    skipped_days: int = 0  # days skipped unread: all their texts had vectors at the end of an earlier run
    first_day: str | None = None
    last_day: str | None = None

    @property
    def texts_per_s(self) -> float | None:
        """Texts embedded per second of embedding time; None when nothing was embedded."""
        return self.embedded / self.embed_seconds if self.embed_seconds > 0 else None

    def to_dict(self) -> dict:
        """The result as JSON-ready data, with ``texts_per_s`` and the times in seconds rounded."""
        d = asdict(self)
        d["texts_per_s"] = round(self.texts_per_s, 1) if self.texts_per_s else None
        for k in ("seconds", "embed_seconds", "load_seconds"):
            d[k] = round(d[k], 3)
        return d


def _day_bounds(day: dt.date, since: dt.date | dt.datetime | None, until: dt.date | dt.datetime | None):
    lo = since if isinstance(since, dt.datetime) and since.date() == day else day
    hi = until if isinstance(until, dt.datetime) and until.date() == day else day
    return lo, hi


def _in_window(day: dt.date, since, until) -> bool:
    if since is not None and day < (since.date() if isinstance(since, dt.datetime) else since):
        return False
    if until is not None:
        u = until.date() if isinstance(until, dt.datetime) else until
        # a datetime bound is exclusive: midnight of day u excludes day u
        if day > u or (isinstance(until, dt.datetime) and day == u and until.time() == dt.time(0)):
            return False
    return True


def sample_rows(df: pl.DataFrame, n: int, seed: int = 0) -> pl.DataFrame:
    """``n`` rows of ``df`` chosen by ``sha256(seed:trace_id)`` order (all rows when fewer)."""
    if df.height <= n:
        return df
    keys = [hashlib.sha256(f"{seed}:{t}".encode()).hexdigest() for t in df.get_column("trace_id").to_list()]
    return (
        df.with_columns(pl.Series("_k", keys)).sort("_k").head(n).drop("_k")
    )


def day_frames(store: Store, columns: list[str], since=None, until=None, sample_per_day: int | None = None,
               seed: int = 0, skip_days: set[dt.date] | None = None) -> Iterator[tuple[dt.date, pl.DataFrame]]:
    """One frame per stored day in the window with ``trace_id`` and ``columns``, sampled per day if asked."""
    cols = list(dict.fromkeys(["trace_id", *columns]))
    for day in store.dates():
        if not _in_window(day, since, until) or (skip_days and day in skip_days):
            continue
        lo, hi = _day_bounds(day, since, until)
        df = store.scan(since=lo, until=hi).select(cols).collect()
        if sample_per_day is not None:
            df = sample_rows(df, sample_per_day, seed)
        if df.height:
            yield day, df


def _load_done(vs: VectorStore) -> dict[str, set[str]]:
    try:
        return {c: set(v) for c, v in json.loads(vs.read_note(DONE_FILE) or b"{}").items()}
    except (OSError, ValueError, AttributeError, TypeError):
        return {}


def _save_done(vs: VectorStore, done: dict[str, set[str]]) -> None:
    """Atomically record which trace files are fully embedded, per column (a cache: losing it costs a rescan)."""
    vs.write_note(DONE_FILE, json.dumps({c: sorted(v) for c, v in sorted(done.items())}).encode())


def _trace_files(store: Store, day: dt.date | None = None) -> dict[str, int | None]:
    """The trace data files (of ``day``, or all) by store-relative name, with their rows where known for free.

    Local store: the day partition files (rows: None, read from the footer when needed). Delta Lake store:
    the data files of the traces table's latest snapshot, with the row counts its log records.
    """
    if on_delta(store):
        return {str(p): n for p, n in store.row_counts("traces", day, day).items()}
    return {str(f.relative_to(store.root)): None for f in store.files("traces", day, day)}


def _rows(store: Store, name: str, known: int | None) -> int:
    return known if known is not None else pq.ParquetFile(store.root / name).metadata.num_rows


def _full_day(day: dt.date, since, until) -> bool:
    """True when the window covers the whole day (so its files can be marked complete)."""
    lo, hi = _day_bounds(day, since, until)
    return not isinstance(lo, dt.datetime) and not isinstance(hi, dt.datetime)


def embed_store(
    store: Store,
    model: str | None = None,
    *,
    since: dt.date | dt.datetime | None = None,
    until: dt.date | dt.datetime | None = None,
    sample_per_day: int | None = None,
    seed: int = 0,
    columns: tuple[str, ...] | list[str] = DEFAULT_COLUMNS,
    device: str = "auto",
    batch_size: int = DEFAULT_BATCH_SIZE,
    backend: str = DEFAULT_BACKEND,
    commit_every: int = COMMIT_EVERY,
    embedder: Embedder | None = None,
    progress: Progress | None = None,
    result: EmbedResult | None = None,
    engine=None,
) -> EmbedResult:
    """Embed every distinct text of ``columns`` in the window that has no vector yet (see module docstring).

    ``embedder`` overrides loading ``model`` (its ``model_id`` must match).
    ``result`` may be passed in to observe counts if the run is interrupted.
    ``engine``: where the texts are encoded when no ``embedder`` is given (None: this process). An engine
    has ``encode_chunks(chunks, model=, device=, batch_size=, backend=)``, which takes an iterable of
    commit chunks (lists of texts) and yields one float32 array per chunk, in order (``tracelens.engines``:
    Ray actors); it also sets ``device`` and ``backend`` on the result. Everything else (what is missing,
    the commit chunks, their order, the writes) is the same whoever encodes.
    """
    t_start = time.perf_counter()
    spec = resolve_model(model)
    if embedder is not None and embedder.model_id != spec.model_id:
        raise ValueError(f"embedder is {embedder.model_id!r} but model {spec.model_id!r} was asked for")
    cols = [c for c in columns]
    res = result or EmbedResult(model_id=spec.model_id, slug=spec.slug, columns=cols)
    res.model_id, res.slug, res.columns = spec.model_id, spec.slug, cols
    vs = VectorStore(store, spec)
    known = vs.known_hashes()

    # Days whose trace files were all fully embedded by an earlier run (for these columns) are skipped
    # without reading them: a re-run over a complete store reads no text at all.
    done = _load_done(vs) if known else {}
    live = set(_trace_files(store))
    skip: set[dt.date] = set()
    day_files: dict[dt.date, list[str]] = {}
    for day in store.dates():
        if not _in_window(day, since, until):
            continue
        with_rows = _trace_files(store, day)
        files = list(with_rows)
        day_files[day] = files
        if _full_day(day, since, until) and all(set(files) <= done.get(c, set()) for c in cols):
            skip.add(day)
            res.skipped_days += 1
            if sample_per_day is None:
                res.traces += sum(_rows(store, f, n) for f, n in with_rows.items())

    # pass 1: what is missing
    pending: set[str] = set()
    seen: set[str] = set()
    scanned: list[dt.date] = []
    for day, df in day_frames(store, cols, since, until, sample_per_day, seed, skip):
        scanned.append(day)
        res.days += 1
        res.first_day = res.first_day or day.isoformat()
        res.last_day = day.isoformat()
        res.traces += df.height
        for c in cols:
            for t in df.get_column(c).to_list():
                if not embeddable(t):
                    continue
                res.texts += 1
                h = text_hash(t)
                if h in seen:
                    continue
                seen.add(h)
                if h not in known:
                    pending.add(h)
    res.distinct = len(seen)
    res.already = len(seen) - len(pending)
    total = len(pending)

    def mark_done() -> None:
        if sample_per_day is not None:  # a sample leaves texts out: its days are not complete
            return
        full = [f for d in scanned if _full_day(d, since, until) for f in day_files.get(d, [])]
        if not full:
            return
        for c in cols:
            done[c] = (done.get(c, set()) & live) | set(full)
        _save_done(vs, done)

    if not pending:
        mark_done()
        res.seconds = time.perf_counter() - t_start
        return res

    def commit_chunks() -> Iterator[list[tuple[str, str]]]:
        """The missing texts as commit chunks of ``commit_every``, each sorted by length (longest first)."""
        buf: list[tuple[str, str]] = []
        for _day, df in day_frames(store, cols, since, until, sample_per_day, seed):
            for c in cols:
                for t in df.get_column(c).to_list():
                    if not embeddable(t):
                        continue
                    h = text_hash(t)
                    if h in pending:
                        pending.discard(h)
                        buf.append((h, t))
                        if len(buf) >= commit_every:
                            buf.sort(key=lambda ht: -len(ht[1]))
                            yield buf
                            buf = []
        if buf:
            buf.sort(key=lambda ht: -len(ht[1]))
            yield buf

    def store_chunk(buf: list[tuple[str, str]], vectors, t0: float) -> None:
        written = vs.append([h for h, _ in buf], vectors)
        res.embed_seconds += time.perf_counter() - t0
        res.embedded += len(buf)
        res.commits += 1 if written else 0

    if embedder is None and engine is not None:
        def embed_all() -> None:
            _embed_on(engine, commit_chunks(), store_chunk, res, total, progress, model, device, batch_size, backend)
    else:
        if embedder is None:
            t0 = time.perf_counter()
            embedder = get_embedder(model, device=device, batch_size=batch_size, backend=backend)
            res.load_seconds = time.perf_counter() - t0
        res.device = embedder.device
        res.batch_size = getattr(embedder, "batch_size", None)
        res.backend = getattr(embedder, "backend", None)

        def embed_all() -> None:
            import numpy as np

            for buf in commit_chunks():
                t0 = time.perf_counter()
                parts = []
                for i in range(0, len(buf), PROGRESS_CHUNK):
                    piece = buf[i:i + PROGRESS_CHUNK]
                    parts.append(embedder([t for _, t in piece]))
                    if progress:
                        progress(res.embedded + i + len(piece), total, res.embed_seconds + time.perf_counter() - t0)
                store_chunk(buf, np.concatenate(parts), t0)

    # pass 2: embed in commit chunks, here or on the engine
    try:
        embed_all()
        mark_done()
    except KeyboardInterrupt:
        res.interrupted = True
        raise
    finally:
        res.seconds = time.perf_counter() - t_start
    res.compacted = vs.compact()
    res.seconds = time.perf_counter() - t_start
    return res


def _embed_on(engine, chunks: Iterator[list[tuple[str, str]]], store_chunk, res: EmbedResult, total: int,
              progress: Progress | None, model, device: str, batch_size: int, backend: str) -> None:
    """Pass 2 with an engine encoding the texts: chunks go out in order, their vectors come back in order and
    are stored as each arrives (the engine may encode several chunks at once)."""
    from collections import deque

    sent: deque[list[tuple[str, str]]] = deque()

    def texts() -> Iterator[list[str]]:
        for buf in chunks:
            sent.append(buf)
            yield [t for _, t in buf]

    res.batch_size = batch_size
    t0 = time.perf_counter()
    for vectors in engine.encode_chunks(texts(), model=model, device=device, batch_size=batch_size, backend=backend,
                                        result=res):
        store_chunk(sent.popleft(), vectors, t0)
        if progress:
            progress(res.embedded, total, res.embed_seconds)
        t0 = time.perf_counter()
