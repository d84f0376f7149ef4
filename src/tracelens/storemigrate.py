"""Copy a store into a Delta Lake store (``tracelens store migrate OLD NEW``), batch by batch, and reconcile.

Contract:

- ``OLD`` is a store in either layout: a local directory (the older file layout, ``tracelens.store``, or a
  Delta Lake one) or a store URL; ``NEW`` is a Delta Lake store, a local directory or a URL (``s3://``,
  ``gs://``, ``az://``, ``file:///abs/path``), created when absent.
  ``OLD`` is only read: it stays usable as it was.
- ``traces`` go through ``DeltaStore.commit_batch`` (the path ingest takes), one day partition at a time in
  slices of ``batch_rows``; ``quarantine`` and ``otlp_events`` through the same keyed insert, keeping each row's
  ``date`` partition. The per-store secrets (the redaction salt) are copied first, so pseudonyms that later
  ingests into ``NEW`` compute match those already stored.
- The embedding vectors and topic clusters come after the tables, so ``similar``, ``clusters`` and the
  semantic findings answer on ``NEW`` as on ``OLD`` without embedding or fitting again: each model's vectors
  (``embeddings/<slug>``, keyed by ``text_hash``, the stored float16 values bit for bit), each cluster model
  (``clusters/<id>/model.json`` and centroids, created once), its assignments (``clusters/<id>/assignments``,
  keyed by ``text_hash``), and ``clusters/CURRENT.json``'s entries that ``NEW`` lacks. An entry ``NEW`` already
  has for the same embedding model with another cluster model is a conflict (kept as it is). The embed job's
  ``_complete.json`` is not copied: it names ``OLD``'s data files, and the next ``embed`` on ``NEW`` rescans
  once, embedding nothing.
- Idempotent: every insert is keyed (``trace_id``, ``quarantine_id``, ``event_id``), so a run interrupted at any
  point and run again copies what is missing and counts the rest as already there; nothing is duplicated.
- Reconciliation per table: rows read from ``OLD`` must equal rows written plus rows already in ``NEW`` (with
  the same content: a trace id stored in ``NEW`` with other content is a conflict), and every key read must be
  present in ``NEW`` afterwards. ``MigrateResult.reconciles`` is False otherwise (the CLI exits 1). The side
  data is counted the same way: vectors per model, cluster models, assignments per cluster model, and the
  ``CURRENT.json`` entries.
- From a local ``OLD`` into a local ``NEW``, what a store keeps beside its tables comes too: the replays and
  eval results (appended rows whose key ``NEW`` lacks: ``replay_id``; ``run_id``, ``case_id``, ``repeat``) and
  the files (``evals/suites/``, old ``canaries/``, ``models.json``, ``spool/``; a file ``NEW`` has with other
  bytes is a conflict, kept). A store at a URL keeps none of these yet: migrating into one leaves them
  behind, listed in ``MigrateResult.left_behind`` and counted as missing, so the counts do not reconcile and
  nothing is lost silently.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import asdict, dataclass, field

import polars as pl
import pyarrow as pa

from tracelens.deltastore import KEYS, SCHEMAS, DeltaStore, with_date
from tracelens.objstore import is_url
from tracelens.storefiles import TABLES, StoreError
from tracelens.storeobjects import LocalObjects
from tracelens.storeopen import DELTA, open_store, store_format

SECRET_NAMES = ("redaction_salt",)


@dataclass
class TableCount:
    """What one table's copy did: rows read from OLD, written to NEW, found already there, missing after."""

    table: str
    read: int = 0
    written: int = 0
    already: int = 0
    conflicts: int = 0
    missing: int = 0

    @property
    def reconciles(self) -> bool:
        """read == written + already, no conflicts, and every key read is in NEW."""
        return self.read == self.written + self.already and not self.conflicts and not self.missing


@dataclass
class MigrateResult:
    """Per-table counts of one migration and whether they all reconcile."""

    source: str
    destination: str
    tables: list[TableCount]
    secrets_copied: list[str]
    left_behind: list[str] = field(default_factory=list)  # what was not copied, and why

    @property
    def reconciles(self) -> bool:
        """Every table reconciles."""
        return all(t.reconciles for t in self.tables)

    def to_dict(self) -> dict:
        """JSON-ready form (each table with its ``reconciles``)."""
        return {"source": self.source, "destination": self.destination, "reconciles": self.reconciles,
                "secrets_copied": self.secrets_copied, "left_behind": self.left_behind,
                "tables": [{**asdict(t), "reconciles": t.reconciles} for t in self.tables]}


def _read_secret(store, name: str) -> bytes | None:
    """``store``'s secret ``name`` if it has one (never creates it)."""
    if isinstance(store, DeltaStore):
        return store._get(f"_tracelens/secrets/{name}")
    p = store.root / f".{name}"
    return p.read_bytes() if p.is_file() else None


def migrate(old: str, new: str, batch_rows: int = 20_000,
            progress: Callable[[str, int, int], None] | None = None) -> MigrateResult:
    """Copy the store at ``old`` into the Delta Lake store at ``new`` (see the module docstring)."""
    src = open_store(old)
    dst = DeltaStore(new, create=True, write=True)
    if isinstance(src, DeltaStore) and src.url == dst.url:
        raise StoreError(f"{old} and {new} are the same store")
    copied = []
    for name in SECRET_NAMES:
        value = _read_secret(src, name)
        if value is None:
            continue
        if dst._put_if_absent(f"_tracelens/secrets/{name}", value):
            copied.append(name)
        elif dst.secret(name) != value:
            raise StoreError(f"{new} already has a different {name}: values pseudonymised in {old} would not match "
                             "those of later ingests; migrate into a new location")
    counts = [_copy_traces(src, dst, batch_rows, progress)]
    counts += [_copy_keyed(src, dst, t, batch_rows, progress) for t in TABLES if t != "traces"]
    counts += _copy_vectors(src, dst, batch_rows, progress)
    counts += _copy_clusters(src, dst, batch_rows, progress)
    left: list[str] = []
    if src.local_root is not None:
        counts += _copy_append_tables(src, dst, left)
        counts += _copy_files(src, dst, left)
    return MigrateResult(str(old), dst.url, counts, copied, left)


# Append-only tables beside the traces (tracelens.appendtables) and the key that makes each row unique.
APPEND_KEYS = {"replays": ("replay_id",), "evals/results": ("run_id", "case_id", "repeat")}
# Files a local store keeps beside its tables: suites and canary sets, the catalog override, the collect spool.
SIDE_FILES = ("evals/suites", "canaries", "models.json", "spool")


def _copy_append_tables(src, dst: DeltaStore, left: list[str]) -> list[TableCount]:
    """Replays and eval results: the rows of ``src`` whose key ``dst`` lacks, appended in one commit per table
    (a re-run appends nothing). Into a store at a URL they stay behind (``left``): it keeps none yet."""
    from tracelens.appendtables import append, read

    out = []
    for name, key in APPEND_KEYS.items():
        rows = read(src.local_root, name)
        if rows is None or not rows.num_rows:
            continue
        c = TableCount(name, read=rows.num_rows)
        if dst.local_root is None:
            left.append(f"{name} ({rows.num_rows:,} rows): a store at a URL does not keep them yet")
            c.missing = rows.num_rows
            out.append(c)
            continue
        df = pl.from_arrow(rows)
        have = read(dst.local_root, name)
        if have is not None and have.num_rows:
            df = df.join(pl.from_arrow(have.select(list(key))).unique(), on=list(key), how="anti")
        c.already = c.read - df.height
        day = "created_at" if name == "replays" else "run_started_at"
        append(dst.local_root, name, df.to_arrow(), day)
        c.written = df.height
        out.append(c)
    return out


def _copy_files(src, dst: DeltaStore, left: list[str]) -> list[TableCount]:
    """Eval suites, canary sets, the model catalog override and the collect spool, file by file: a file ``dst``
    already holds with the same bytes is counted as already there, with other bytes as a conflict (kept)."""
    files = []
    for rel in SIDE_FILES:
        p = src.local_root / rel
        files += [p] if p.is_file() else sorted(f for f in p.rglob("*") if f.is_file()) if p.is_dir() else []
    if not files:
        return []
    c = TableCount("files", read=len(files))
    if dst.local_root is None:
        left.append(f"{len(files)} file(s) (eval suites, canary sets, model catalog override, collect spool): a "
                    "store at a URL does not keep them yet")
        c.missing = len(files)
        return [c]
    objects = LocalObjects(dst.local_root)
    for f in files:
        rel = f.relative_to(src.local_root).as_posix()
        data = f.read_bytes()
        if objects.put_if_absent(rel, data):
            c.written += 1
        elif objects.get(rel) == data:
            c.already += 1
        else:
            c.conflicts += 1
            left.append(f"{rel}: {dst.url} already has a different file of that name (kept)")
    return [c]


def _slices(df: pl.DataFrame, n: int):
    for start in range(0, df.height, n):
        yield df.slice(start, n)


def _batches(src, table: str, batch_rows: int):
    """``table``'s rows (with ``date``) in frames of about ``batch_rows``: small days share a batch."""
    pending: list[pl.DataFrame] = []
    size = 0
    for day in src.dates(table):
        df = src.scan(table, since=day, until=day).collect()
        for part in _slices(df, batch_rows):
            pending.append(part)
            size += part.height
            if size >= batch_rows:
                yield pl.concat(pending, how="vertical_relaxed")
                pending, size = [], 0
    if pending:
        yield pl.concat(pending, how="vertical_relaxed")


def _copy_traces(src, dst: DeltaStore, batch_rows: int, progress) -> TableCount:
    c = TableCount("traces")
    for part in _batches(src, "traces", batch_rows):
        tbl = part.drop("date").to_arrow().select(SCHEMAS["traces"].names).cast(SCHEMAS["traces"])
        out = dst.commit_batch(tbl)
        c.read += tbl.num_rows
        c.written += out.stored
        c.already += out.duplicates
        c.conflicts += out.conflicts
        ids = part["trace_id"].to_list()
        c.missing += len(set(ids) - dst.stored_ids(ids))
        if progress:
            progress("traces", c.read, c.written)
    return c


def _copy_keyed(src, dst: DeltaStore, table: str, batch_rows: int, progress) -> TableCount:
    c = TableCount(table)
    key = KEYS[table]
    schema = with_date(SCHEMAS[table])
    for part in _batches(src, table, batch_rows):
        tbl = pa.Table.from_batches(part.to_arrow().select(schema.names).cast(schema).to_batches(), schema)
        written = dst._retrying(f"copying {table}", lambda tbl=tbl: dst._merge_insert(table, tbl))
        c.read += tbl.num_rows
        c.written += written
        c.already += tbl.num_rows - written
        if progress:
            progress(table, c.read, c.written)
    # every key read is in NEW (one pass over NEW's keys: these tables are small next to traces)
    if c.read:
        have = set(dst.scan(table).select(key).collect()[key].to_list())
        for day in src.dates(table):
            keys = src.scan(table, since=day, until=day).select(key).collect()[key].to_list()
            c.missing += sum(1 for k in keys if k not in have)
    return c


def _copy_vectors(src, dst: DeltaStore, batch_rows: int, progress) -> list[TableCount]:
    """Each model's vectors, chunk by chunk, as stored (one ``TableCount`` per model: ``embeddings/<slug>``)."""
    from tracelens.embed.models import ModelSpec
    from tracelens.embed.vectors import TABLE, VectorStore, list_models

    out = []
    for info in list_models(src):
        spec = ModelSpec(info["model_id"], info["model_id"], info["slug"], "stored")
        c = TableCount(f"{TABLE}/{spec.slug}")
        old, new = VectorStore(src, spec), VectorStore(dst, spec)
        for hashes, vecs in old.iter_chunks(chunk_rows=batch_rows):
            c.read += len(hashes)
            c.written += new.append(hashes, vecs, exact=True)
            if progress:
                progress(c.table, c.read, c.written)
        c.already = c.read - c.written
        if c.read:
            c.missing = len(old.known_hashes() - VectorStore(dst, spec).known_hashes())
        out.append(c)
    return out


def _copy_clusters(src, dst: DeltaStore, batch_rows: int, progress) -> list[TableCount]:
    """Cluster models (``clusters``), each one's assignments (``clusters/<id>/assignments``) and the current
    model per embedding model (``clusters/CURRENT.json``)."""
    from tracelens import cluster as cl

    models = TableCount(f"{cl.TABLE}")
    out = [models]
    for info in cl.list_models(src):
        cm = cl.load_model(src, info["id"])
        key = f"{cl.TABLE}/{cm.id}/model.json"
        models.read += 1
        if dst.get_object(key) is None:
            cl.save_model(dst, cm, make_current=False)
            models.written += 1
        else:
            models.already += 1  # the id is a hash of the fit: the same id is the same model
        models.missing += dst.get_object(key) is None
        stored = cl.stored_assignments(src, cm)
        a = TableCount(f"{cl.TABLE}/{cm.id}/assignments", read=stored.height)
        for part in _slices(stored, batch_rows):
            a.written += cl.store_assignments(dst, cm, part["text_hash"].to_list(), part["cluster_id"].to_numpy(),
                                              part["distance"].to_numpy())
            if progress:
                progress(a.table, a.read, a.written)
        a.already = a.read - a.written
        if a.read:
            have = set(cl.stored_assignments(dst, cm)["text_hash"].to_list())
            a.missing = sum(1 for h in stored["text_hash"].to_list() if h not in have)
        out.append(a)
    want, have = cl.current_ids(src), cl.current_ids(dst)
    cur = TableCount(f"{cl.TABLE}/CURRENT.json", read=len(want))
    merged = dict(have)
    for emb, cid in want.items():
        if have.get(emb) == cid:
            cur.already += 1
        elif emb in have:
            cur.conflicts += 1  # NEW has its own current model for this embedding model: kept, and reported
        else:
            merged[emb] = cid
            cur.written += 1
    if cur.written:
        dst.put_object(f"{cl.TABLE}/CURRENT.json", json.dumps(merged, indent=2).encode())
    after = cl.current_ids(dst)
    cur.missing = sum(1 for emb in want if emb not in after)
    out.append(cur)
    return out if models.read or cur.read else []  # a store that never clustered: nothing to list


def vacuum(url: str, retention_hours: int | None = None, dry_run: bool = False) -> dict[str, list[str]]:
    """Delete the data files of the Delta store at ``url`` (a URL or a local directory) that no version within
    the retention refers to."""
    if not is_url(url) and store_format(url) != DELTA:
        raise StoreError(f"vacuum works on Delta Lake stores; {url!r} is not one (a store of the older layout: "
                         "`tracelens doctor`)")
    return DeltaStore(url, write=not dry_run).vacuum(retention_hours=retention_hours, dry_run=dry_run)

