"""The vector store: one embedding per distinct text, keyed by ``hashing.text_hash``.

Layout::

    STORE/embeddings/<model-slug>/part-<txn>.parquet

Columns: ``text_hash`` (string) and ``vector`` (fixed-size list of float16,
``dim`` long, L2-normalised). A text is a text: the key carries no kind
(prompt, response, system prompt), so a string that is both a prompt and a
response is embedded once. Each file's Parquet key-value metadata records
``tracelens.embed.model_id``, ``.dim``, ``.dtype`` and ``.normalised``; the
directory is chosen by the model id's slug, and a file whose recorded model
id differs from the one asked for is refused, so vectors of different models
never mix.

Writes go through ``Store.transaction()`` (staged, journalled, renamed in under
the writer lock): a file under ``embeddings/`` is always complete. Under the
lock, hashes already stored (by a concurrent run) are dropped before writing,
so each hash is stored once.

float16 halves the size (768 bytes per 384-dim vector instead of 1,536); the
rounding error per component is below 2^-11 relative, which moves cosine
similarities of unit vectors by about 1e-4 (measured, docs/embeddings.md),
far below anything a drift statistic or a nearest-neighbour ranking reacts
to. Readers get float32.

Texts that are None, empty or whitespace only are never embedded; they come
back as missing (NaN rows).

On a Delta Lake store (``tracelens.deltastore.DeltaStore``: the layout of every
new store, local or at a URL) ``VectorStore(store, model)`` is a ``DeltaVectorStore`` with the same
methods and results: the model's vectors are the Delta table
``STORE/embeddings/<model-slug>/`` with ``text_hash`` (string) and ``vector``
(binary: the ``dim`` float16 components, little-endian, L2-normalised; Delta
has no half-float or fixed-size list type, the bytes are the same as in a local
file). The table's description (JSON) records the model id, dim, dtype and
normalisation, and a table of another model is refused as above. Rows go in
through a MERGE on ``text_hash`` that inserts only absent hashes, retried when a
concurrent writer committed first (``DeltaStore.insert_absent``), so
concurrent embedders never store a hash twice.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path

import numpy as np
import polars as pl
import pyarrow as pa
import pyarrow.parquet as pq

from tracelens import atomic
from tracelens.embed.models import Embedder, ModelSpec, l2_normalise, resolve_model
from tracelens.hashing import text_hash
from tracelens.store import Store

VECTOR_DTYPE = "float16"
META_MODEL = "tracelens.embed.model_id"
META_DIM = "tracelens.embed.dim"
META_DTYPE = "tracelens.embed.dtype"
META_NORMALISED = "tracelens.embed.normalised"
TABLE = "embeddings"
# Merge a model's files into one once there are this many (many small incremental runs).
COMPACT_AT = 64
# Decoded float16 vectors a VectorStore keeps in memory for repeated searches (long-lived processes: TUI).
CACHE_BYTES = 256 * 1024 * 1024


class VectorStoreError(Exception):
    """Vectors that cannot be read or written as asked (message is user-facing)."""


def embeddable(text: str | None) -> bool:
    """True for texts that get an embedding (not None, not blank)."""
    return bool(text) and not text.isspace()


def vector_schema(dim: int) -> pa.Schema:
    """Arrow schema of a vector file: ``text_hash`` (string) and ``vector`` (float16 list of ``dim``), neither
    nullable.
    """
    return pa.schema([pa.field("text_hash", pa.string(), nullable=False),
                      pa.field("vector", pa.list_(pa.float16(), dim), nullable=False)])


def _as_spec(model: str | ModelSpec | None) -> ModelSpec:
    return model if isinstance(model, ModelSpec) else resolve_model(model)


def _f32(m: np.ndarray) -> np.ndarray:
    return np.asarray(m, dtype=np.float32)


def _picked(hcol: pl.Series, m: np.ndarray, want: pl.Series | None) -> tuple[list[str], np.ndarray] | None:
    """One chunk of ``iter_chunks``: the rows whose hash is in ``want`` (all when None), None when none is."""
    if want is not None:
        mask = hcol.is_in(want)
        if not mask.any():
            return None
        if not mask.all():
            keep = mask.arg_true().to_numpy()
            hcol, m = hcol.gather(keep), m[keep]
    return hcol.to_list(), _f32(m)


def on_delta(store) -> bool:
    """True for a Delta Lake store (``tracelens.deltastore``), local or at a URL: its vectors and cluster
    assignments are Delta tables beside the trace tables, not files of the older layout."""
    return getattr(store, "format", None) == "delta"


class VectorStore:
    """Vectors of one model in one store. Cheap to construct; caches hash columns (and, within
    ``cache_bytes``, decoded vectors) per file, so keep one instance for repeated queries.

    For a store at a URL the instance is a ``DeltaVectorStore`` (see the module docstring)."""

    def __new__(cls, store: Store, model: str | ModelSpec | None = None, cache_bytes: int = CACHE_BYTES):
        if cls is VectorStore and on_delta(store):
            cls = DeltaVectorStore
        return super().__new__(cls)

    def __init__(self, store: Store, model: str | ModelSpec | None = None, cache_bytes: int = CACHE_BYTES):
        self.store = store
        self.spec = _as_spec(model)
        self.dir = store.root / TABLE / self.spec.slug
        self._hashes: dict[str, pl.Series] = {}  # file name -> text_hash column
        self._f16: dict[str, np.ndarray] = {}  # file name -> float16 vectors, kept while under cache_bytes
        self._cached_bytes = 0
        self.cache_bytes = cache_bytes
        self._dim: int | None = None

    # ------------------------------------------------------------------ reading

    def files(self) -> list[Path]:
        """The model's vector Parquet files, sorted by name; [] when it has none yet."""
        if not self.dir.exists():
            return []
        return sorted(p for p in self.dir.glob("part-*.parquet"))

    def _check(self, path: Path) -> int:
        meta = pq.read_schema(path).metadata or {}
        mid = meta.get(META_MODEL.encode(), b"").decode()
        if mid != self.spec.model_id:
            raise VectorStoreError(f"{path} holds vectors of model {mid!r}, not {self.spec.model_id!r}")
        return int(meta.get(META_DIM.encode(), b"0"))

    @property
    def dim(self) -> int | None:
        """Vector dimension of the stored vectors (None when nothing is stored)."""
        if self._dim is None:
            files = self.files()
            if files:
                self._dim = self._check(files[0])
        return self._dim

    def _hash_columns(self) -> list[tuple[Path, pl.Series]]:
        files = self.files()
        names = {p.name for p in files}
        for gone in set(self._hashes) - names:
            del self._hashes[gone]
            self._f16.pop(gone, None)
        out = []
        for p in files:
            if p.name not in self._hashes:
                self._check(p)
                self._hashes[p.name] = pl.read_parquet(p, columns=["text_hash"]).get_column("text_hash")
            out.append((p, self._hashes[p.name]))
        return out

    def known_hashes(self) -> set[str]:
        """Every text hash that has a vector."""
        out: set[str] = set()
        for _, h in self._hash_columns():
            out.update(h.to_list())
        return out

    def count(self) -> int:
        """Number of vectors stored for the model (rows over all its files)."""
        return sum(len(h) for _, h in self._hash_columns())

    def _read_rows(self, path: Path, offset: int, n: int) -> np.ndarray:
        """float16 (n, dim) rows [offset, offset + n) of one file (polars decodes lists ~3x faster than pyarrow)."""
        cached = self._f16.get(path.name)
        if cached is not None:
            return cached[offset:offset + n]
        if offset == 0 and n >= self._rows(path) and self._cached_bytes + n * (self.dim or 0) * 2 <= self.cache_bytes:
            m = pl.read_parquet(path, columns=["vector"]).get_column("vector").to_numpy()
            self._f16[path.name] = m
            self._cached_bytes += m.nbytes
            return m
        df = pl.scan_parquet(path).select("vector").slice(offset, n).collect()
        return df.get_column("vector").to_numpy()

    def _rows(self, path: Path) -> int:
        return len(self._hashes[path.name]) if path.name in self._hashes else pq.ParquetFile(path).metadata.num_rows

    def load(self, hashes: Iterable[str]) -> tuple[list[str], np.ndarray]:
        """Vectors for ``hashes``: (the hashes found, in first-seen input order, float32 (m, dim))."""
        wanted = list(dict.fromkeys(h for h in hashes if h is not None))
        dim = self.dim
        if not wanted or dim is None:
            return [], np.zeros((0, dim or 0), dtype=np.float32)
        want = pl.Series(wanted, dtype=pl.String).implode()
        got: dict[str, np.ndarray] = {}
        for path, col in self._hash_columns():
            idx = col.is_in(want).arg_true().to_numpy()
            if not len(idx):
                continue
            rows = self._rows_at(path, len(col), idx)
            for i, h in enumerate(col.gather(idx).to_list()):
                got.setdefault(h, rows[i])
        found = [h for h in wanted if h in got]
        if not found:
            return [], np.zeros((0, dim), dtype=np.float32)
        return found, _f32(np.stack([got[h] for h in found]))

    def _rows_at(self, path: Path, n: int, idx: np.ndarray) -> np.ndarray:
        """The float16 vectors at row positions ``idx`` of the file ``path`` (``n`` rows)."""
        if len(idx) * 20 >= n or path.name in self._f16:  # dense: one read of the whole file
            return self._read_rows(path, 0, n)[idx]
        rows = np.empty((len(idx), self.dim), dtype=np.float16)  # sparse: only the row groups holding matches
        md = pq.ParquetFile(path).metadata
        start = 0
        for g in range(md.num_row_groups):
            size = md.row_group(g).num_rows
            sel = (idx >= start) & (idx < start + size)
            if sel.any():
                rows[sel] = self._read_rows(path, start, size)[idx[sel] - start]
            start += size
        return rows

    def iter_chunks(self, only: set[str] | None = None, chunk_rows: int = 65_536) -> Iterator[tuple[list[str], np.ndarray]]:
        """All stored vectors (or those whose hash is in ``only``) as (hashes, float32 matrix) chunks."""
        if self.dim is None:
            return
        want = pl.Series(sorted(only), dtype=pl.String).implode() if only is not None else None
        for path, col in self._hash_columns():
            n = len(col)
            whole = self._read_rows(path, 0, n) if n <= chunk_rows or path.name in self._f16 or (
                self._cached_bytes + n * self.dim * 2 <= self.cache_bytes) else None
            for off in range(0, n, chunk_rows):
                hcol = col.slice(off, chunk_rows)
                m = whole[off:off + chunk_rows] if whole is not None else self._read_rows(path, off, chunk_rows)
                picked = _picked(hcol, m, want)
                if picked is not None:
                    yield picked

    # ------------------------------------------------------------------ writing

    def _meta(self, dim: int) -> dict[str, str]:
        return {META_MODEL: self.spec.model_id, META_DIM: str(dim), META_DTYPE: VECTOR_DTYPE, META_NORMALISED: "true"}

    def append(self, hashes: Sequence[str], vectors: np.ndarray) -> int:
        """Store vectors for ``hashes`` atomically; hashes already stored are skipped. Returns rows written."""
        vectors = np.asarray(vectors, dtype=np.float32)
        if len(hashes) != len(vectors):
            raise ValueError(f"{len(hashes)} hashes but {len(vectors)} vectors")
        if not len(hashes):
            return 0
        dim = int(vectors.shape[1])
        if self.dim is not None and self.dim != dim:
            raise VectorStoreError(f"model {self.spec.model_id} has {self.dim}-dim vectors stored, got {dim}")
        with self.store.transaction() as txn:
            known = self.known_hashes()  # refreshed under the lock: a concurrent run may have stored some
            seen: set[str] = set()
            keep = []
            for i, h in enumerate(hashes):
                if h not in known and h not in seen:
                    seen.add(h)
                    keep.append(i)
            if not keep:
                return 0
            table = self._table([hashes[i] for i in keep], vectors[keep], dim)
            txn.stage(table, f"{TABLE}/{self.spec.slug}/part-{txn.txn_id}.parquet", TABLE, self._meta(dim))
        self._dim = dim
        return len(keep)

    def _table(self, hashes: list[str], vectors: np.ndarray, dim: int) -> pa.Table:
        vecs = l2_normalise(vectors).astype(np.float16)
        arr = pa.FixedSizeListArray.from_arrays(pa.array(vecs.ravel(), type=pa.float16()), dim)
        return pa.Table.from_arrays([pa.array(hashes, type=pa.string()), arr], schema=vector_schema(dim))

    def compact(self, min_files: int = COMPACT_AT) -> bool:
        """Merge all files into one when there are at least ``min_files``. Returns whether it did."""
        if len(self.files()) < min_files:
            return False
        with self.store.transaction() as txn:
            files = self.files()
            if len(files) < min_files:
                return False
            dim = self.dim
            for f in files:
                self._check(f)
            t = pa.concat_tables(pq.read_table(f, columns=["text_hash", "vector"]) for f in files)
            t = t.replace_schema_metadata(None).cast(vector_schema(dim))
            txn.stage(t, f"{TABLE}/{self.spec.slug}/part-{txn.txn_id}.parquet", TABLE, self._meta(dim))
            for f in files:
                txn.delete(str(f.relative_to(self.store.root)))
        self._hashes.clear()
        self._f16.clear()
        self._cached_bytes = 0
        return True

    def read_note(self, name: str) -> bytes | None:
        """A small file kept with the model's vectors (e.g. the embed job's ``_complete.json``), None if absent."""
        try:
            return (self.dir / name).read_bytes()
        except OSError:
            return None

    def write_note(self, name: str, data: bytes) -> None:
        """Atomically write a small file kept with the model's vectors."""
        self.dir.mkdir(parents=True, exist_ok=True)
        atomic.write_bytes(self.dir / name, data)

    def info(self) -> dict:
        """Model id, slug, dimension, dtype, number of vectors, files and their total bytes, as JSON-ready data."""
        files = self.files()
        return {
            "model_id": self.spec.model_id,
            "slug": self.spec.slug,
            "dim": self.dim,
            "dtype": VECTOR_DTYPE,
            "vectors": self.count(),
            "files": len(files),
            "bytes": sum(os.path.getsize(f) for f in files),
        }


def _decode(col: pa.ChunkedArray | pa.Array, dim: int) -> np.ndarray:
    """float16 (n, dim) from a binary column of ``dim * 2``-byte values (one copy, no per-row Python)."""
    arr = col.combine_chunks() if isinstance(col, pa.ChunkedArray) else col
    arr = arr.cast(pa.large_binary())
    n = len(arr)
    if n == 0:
        return np.zeros((0, dim), dtype=np.float16)
    offsets = np.frombuffer(arr.buffers()[1], dtype=np.int64)[arr.offset:arr.offset + n + 1]
    if offsets[-1] - offsets[0] != n * dim * 2 or arr.null_count:
        raise VectorStoreError(f"stored vectors are not {dim} float16 components each")
    data = np.frombuffer(arr.buffers()[2], dtype=np.uint8)[offsets[0]:offsets[-1]]
    return data.view("<f2").astype(np.float16, copy=False).reshape(n, dim)


class DeltaVectorStore(VectorStore):
    """``VectorStore`` on a Delta Lake store at a URL: one Delta table per model (see the module docstring).

    Hash columns and (within ``cache_bytes``) decoded vectors are cached per data file of the table; data
    files are immutable, so a later snapshot only adds the new files' columns."""

    def __init__(self, store, model: str | ModelSpec | None = None, cache_bytes: int = CACHE_BYTES):
        self.store = store
        self.spec = _as_spec(model)
        self.path = f"{TABLE}/{self.spec.slug}"
        self.dir = None  # no local directory
        self._hashes: dict[str, pl.Series] = {}
        self._f16: dict[str, np.ndarray] = {}
        self._frags: dict[str, object] = {}  # data file -> pyarrow dataset fragment of the latest snapshot
        self._cached_bytes = 0
        self.cache_bytes = cache_bytes
        self._dim: int | None = None

    def _snap(self):
        snap = self.store.side_table(self.path)
        if snap is not None:
            self._check_table(snap)
        return snap

    def _check_table(self, snap) -> int:
        try:
            meta = json.loads(snap.metadata().description or "{}")
        except ValueError:
            meta = {}
        mid = meta.get("model_id", "")
        if mid != self.spec.model_id:
            raise VectorStoreError(f"{self.store.url}/{self.path} holds vectors of model {mid!r}, "
                                   f"not {self.spec.model_id!r}")
        return int(meta.get("dim") or 0)

    def _table_meta(self, dim: int) -> str:
        return json.dumps({"model_id": self.spec.model_id, "dim": dim, "dtype": VECTOR_DTYPE, "normalised": True,
                           "layout": "vector: dim float16 components, little-endian"}, sort_keys=True)

    def files(self) -> list[str]:
        """The data files of the model's vector table (paths relative to it), sorted; [] when it has none."""
        snap = self._snap()
        if snap is None:
            return []
        self._frags = {f.path: f for f in snap.to_pyarrow_dataset().get_fragments()}
        return sorted(self._frags)

    @property
    def dim(self) -> int | None:
        """Vector dimension of the stored vectors (None when nothing is stored)."""
        if self._dim is None:
            snap = self._snap()
            if snap is not None:
                self._dim = self._check_table(snap) or None
        return self._dim

    def _hash_columns(self) -> list[tuple[str, pl.Series]]:
        files = self.files()
        for gone in set(self._hashes) - set(files):
            del self._hashes[gone]
            f = self._f16.pop(gone, None)
            self._cached_bytes -= f.nbytes if f is not None else 0
        out = []
        for p in files:
            if p not in self._hashes:
                t = self._frags[p].to_table(columns=["text_hash"])
                self._hashes[p] = pl.from_arrow(t.column("text_hash")).cast(pl.String).rename("text_hash")
            out.append((p, self._hashes[p]))
        return out

    def _file_vectors(self, path: str) -> np.ndarray:
        cached = self._f16.get(path)
        if cached is not None:
            return cached
        m = _decode(self._frags[path].to_table(columns=["vector"]).column("vector"), self.dim or 0)
        if self._cached_bytes + m.nbytes <= self.cache_bytes:
            self._f16[path] = m
            self._cached_bytes += m.nbytes
        return m

    def _rows_at(self, path: str, n: int, idx: np.ndarray) -> np.ndarray:
        return self._file_vectors(path)[idx]  # a remote file is read whole: one GET, not one per row group

    def iter_chunks(self, only: set[str] | None = None, chunk_rows: int = 65_536) -> Iterator[tuple[list[str], np.ndarray]]:
        """All stored vectors (or those whose hash is in ``only``) as (hashes, float32 matrix) chunks."""
        if self.dim is None:
            return
        want = pl.Series(sorted(only), dtype=pl.String).implode() if only is not None else None
        for path, col in self._hash_columns():
            if want is not None and not col.is_in(want).any():
                continue
            whole = self._file_vectors(path)
            for off in range(0, len(col), chunk_rows):
                hcol, m = col.slice(off, chunk_rows), whole[off:off + chunk_rows]
                picked = _picked(hcol, m, want)
                if picked is not None:
                    yield picked

    def append(self, hashes: Sequence[str], vectors: np.ndarray, exact: bool = False) -> int:
        """Store vectors for ``hashes`` in one Delta commit; hashes already stored are skipped (a MERGE that
        inserts absent hashes only, so a concurrent writer's vectors are never duplicated). Returns rows written.
        ``exact``: the vectors are stored values already (L2-normalised, float16-valued, as another store's
        ``iter_chunks`` gives them) and are written bit for bit, not normalised and rounded again."""
        vectors = np.asarray(vectors, dtype=np.float32)
        if len(hashes) != len(vectors):
            raise ValueError(f"{len(hashes)} hashes but {len(vectors)} vectors")
        if not len(hashes):
            return 0
        dim = int(vectors.shape[1])
        if self.dim is not None and self.dim != dim:
            raise VectorStoreError(f"model {self.spec.model_id} has {self.dim}-dim vectors stored, got {dim}")
        known = self.known_hashes()
        seen: set[str] = set()
        keep = []
        for i, h in enumerate(hashes):
            if h not in known and h not in seen:
                seen.add(h)
                keep.append(i)
        if not keep:
            return 0
        if self.store.side_table(self.path) is None:
            self._check_table(self.store.create_side_table(self.path, DELTA_VECTOR_SCHEMA, self._table_meta(dim)))
        vecs = (vectors[keep] if exact else l2_normalise(vectors[keep])).astype("<f2")
        data = pa.py_buffer(vecs.tobytes())
        offsets = pa.py_buffer(np.arange(0, (len(keep) + 1) * dim * 2, dim * 2, dtype=np.int64).tobytes())
        col = pa.Array.from_buffers(pa.large_binary(), len(keep), [None, offsets, data]).cast(pa.binary())
        rows = pa.Table.from_arrays([pa.array([hashes[i] for i in keep], pa.string()), col],
                                    schema=DELTA_VECTOR_SCHEMA)
        written = self.store.insert_absent(self.path, rows, "text_hash")
        self._dim = dim
        return written

    def compact(self, min_files: int = COMPACT_AT) -> bool:
        """Rewrite the table's small files into large ones (Delta OPTIMIZE, one commit, retried on conflict)
        when it has at least ``min_files``. Returns whether it did."""
        if len(self.files()) < min_files:
            return False
        self.store._retrying(f"compacting {self.path}", lambda: self.store.side_table(self.path).optimize.compact())
        self._hashes.clear()
        self._f16.clear()
        self._cached_bytes = 0
        return True

    def read_note(self, name: str) -> bytes | None:
        """A small object kept with the model's vectors (e.g. the embed job's ``_complete.json``), None if absent."""
        return self.store.get_object(f"{self.path}/{name}")

    def write_note(self, name: str, data: bytes) -> None:
        """Write (replace) a small object kept with the model's vectors: one PUT, never half written."""
        self.store.put_object(f"{self.path}/{name}", data)

    def info(self) -> dict:
        """Model id, slug, dimension, dtype, number of vectors, files and their total bytes, as JSON-ready data."""
        snap = self._snap()
        files = nbytes = 0
        if snap is not None:
            acts = pa.table(snap.get_add_actions(flatten=True))
            files, nbytes = acts.num_rows, sum(acts.column("size_bytes").to_pylist())
        return {"model_id": self.spec.model_id, "slug": self.spec.slug, "dim": self.dim, "dtype": VECTOR_DTYPE,
                "vectors": self.count(), "files": files, "bytes": nbytes}


DELTA_VECTOR_SCHEMA = pa.schema([pa.field("text_hash", pa.string(), nullable=False),
                                 pa.field("vector", pa.binary(), nullable=False)])


def load_vectors(store: Store, model: str | ModelSpec | None, hashes: Iterable[str]) -> tuple[list[str], np.ndarray]:
    """(hashes found, float32 vectors) for the given text hashes and model."""
    return VectorStore(store, model).load(hashes)


def hashes_of(texts: Iterable[str | None]) -> list[str | None]:
    """``text_hash`` of each embeddable text, None for the others."""
    return [text_hash(t) if embeddable(t) else None for t in texts]


def ensure_vectors(vs: VectorStore, texts: Sequence[str | None], embedder: Embedder,
                   commit_every: int = 4096) -> int:
    """Embed and store the distinct embeddable ``texts`` that have no vector yet. Returns texts embedded."""
    known = vs.known_hashes()
    pending: dict[str, str] = {}
    for t in texts:
        if embeddable(t):
            h = text_hash(t)
            if h not in known and h not in pending:
                pending[h] = t
    items = list(pending.items())
    done = 0
    stream = getattr(embedder, "encode_chunks", None)
    if stream is not None:
        # an embedder that encodes many chunks in one go (``tracelens.engines``: Ray actors), in order
        chunks = [items[i:i + commit_every] for i in range(0, len(items), commit_every)]
        for chunk, vecs in zip(chunks, stream([t for _, t in c] for c in chunks), strict=True):
            vs.append([h for h, _ in chunk], vecs)
            done += len(chunk)
        return done
    for i in range(0, len(items), commit_every):
        chunk = items[i:i + commit_every]
        vecs = embedder([t for _, t in chunk])
        vs.append([h for h, _ in chunk], vecs)
        done += len(chunk)
    return done


def trace_embeddings(
    store: Store,
    df: pl.DataFrame,
    column: str = "prompt_text",
    model: str | ModelSpec | None = None,
    *,
    compute_missing: bool | Embedder = False,
) -> np.ndarray:
    """Embeddings of ``df[column]`` aligned with the rows of ``df``: float32 (n, dim), NaN rows where missing.

    A row is missing when its text is blank or has no stored vector. With
    ``compute_missing`` (True, or a loaded embedder: any ``(list[str]) -> array`` callable) the missing
    texts are embedded first and stored, so the work is never repeated.
    ``np.isnan(out[:, 0])`` is the mask of missing rows.
    """
    spec = _as_spec(model)
    vs = VectorStore(store, spec)
    texts = df.get_column(column).to_list() if column in df.columns else [None] * df.height
    if compute_missing:
        from tracelens.embed.models import get_embedder

        embedder = compute_missing if callable(compute_missing) else None  # any (list[str]) -> array callable
        if embedder is None:
            known = vs.known_hashes()
            if any(embeddable(t) and text_hash(t) not in known for t in texts):
                embedder = get_embedder(spec.name)
        if embedder is not None:
            ensure_vectors(vs, texts, embedder)
    hashes = hashes_of(texts)
    found, vecs = vs.load(hashes)
    dim = vs.dim or (vecs.shape[1] if vecs.size else 0)
    out = np.full((len(texts), dim), np.nan, dtype=np.float32)
    if found:
        pos = {h: i for i, h in enumerate(found)}
        rows = [i for i, h in enumerate(hashes) if h in pos]
        out[rows] = vecs[[pos[hashes[i]] for i in rows]]
    return out


def list_models(store: Store) -> list[dict]:
    """Models with vectors in ``store``: model id, slug, dim, counts."""
    if on_delta(store):
        out = []
        for slug in store.list_dirs(TABLE):
            snap = store.side_table(f"{TABLE}/{slug}")
            if snap is None:
                continue
            try:
                mid = json.loads(snap.metadata().description or "{}").get("model_id", "")
            except ValueError:
                continue
            out.append(VectorStore(store, ModelSpec(mid, mid, slug, "stored")).info())
        return out
    base = store.root / TABLE
    out = []
    if not base.exists():
        return out
    for d in sorted(p for p in base.iterdir() if p.is_dir()):
        files = sorted(d.glob("part-*.parquet"))
        if not files:
            continue
        meta = pq.read_schema(files[0]).metadata or {}
        mid = meta.get(META_MODEL.encode(), b"").decode()
        out.append(VectorStore(store, ModelSpec(mid, mid, d.name, "stored")).info())
    return out
