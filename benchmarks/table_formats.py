"""Delta Lake (deltalake) against Apache Iceberg (pyiceberg + SQL catalog) as the trace store's table format.

    python benchmarks/table_formats.py                 # full run: local disk and a local S3 server
    python benchmarks/table_formats.py --quick         # shorter run, same measurements
    python benchmarks/table_formats.py --smoke --storage local   # the smallest run (the test's)
    python benchmarks/table_formats.py --quick --json out.json
    python benchmarks/table_formats.py --only concurrency --storage s3   # chosen sections only

What it measures, for each format on each storage (a local directory; a local
S3-compatible server, ``moto.server`` started on 127.0.0.1 with dummy
credentials), on a table of ``tracelens.schema.TRACE_SCHEMA`` rows plus a
``date`` partition column (timestamps over 7 days, prompt and response texts
of a few hundred characters, raw bodies that embed them):

* commit latency: ``--commits`` appends of a 1,000-row batch and of a 1-row
  batch, each timed; the baseline, interleaved with the two formats in the
  same loop, writes the same batch as one plain Parquet file to the same
  storage (what a commit costs beyond writing its data);
* concurrent writers: two OS processes append ``--concurrent`` batches each,
  released together; errors, retries (Iceberg: pyiceberg's retry warnings;
  Delta: the ``num_retries`` each commit records in its operationMetrics),
  exact final row count, unique
  ids, and a contiguous history. Then both processes insert-if-absent
  overlapping ``trace_id`` batches (Delta ``MERGE ... WHEN NOT MATCHED INSERT``,
  Iceberg ``upsert`` without the update clause): are duplicates stored?
  Writers re-run a refused operation after a jittered pause (up to 20 tries).
  On S3, Delta's append test is repeated without ``conditional_put`` (and with
  ``AWS_S3_ALLOW_UNSAFE_RENAME``); the server's 412 (precondition failed)
  answers on commit files are counted, and so are commit files it stored twice;
* reads through polars (``pl.scan_delta`` / ``pl.scan_iceberg``) after
  ``--read-commits`` small commits totalling ``--read-rows`` rows, and again
  after compaction (Delta ``optimize.compact`` + ``vacuum``; pyiceberg 0.12 has
  no compaction, so an ``overwrite`` of the table with its own rows stands in
  for it): a whole-table aggregate over three columns, a full read of every
  column, and a one-day, partition-pruned read of every column; the baseline,
  alternated with them, is ``pl.scan_parquet`` over the same data files
  (the table's current files, hive-partitioned: tracelens's present layout);
* a killed writer: a process that loops committing 100-row batches is sent
  SIGKILL after a random delay; the table must open, its row count must be
  that of a committed version, and the files no version references are
  listed before and after the format's cleanup (Delta ``vacuum``, lite and
  full; Iceberg ``expire_snapshots``, the only maintenance pyiceberg offers);
* other engines: whether DuckDB's delta/iceberg extensions load offline, and
  DuckDB's count through the Arrow dataset each library exposes;
* operational facts: install size (wheel files, and the packages each adds
  to a tracelens install) and import time against ``python -c pass``.

Everything runs in temporary directories and is removed afterwards. Figures
are medians; the machine's load average is recorded at start and end.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import logging
import os
import platform
import random
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.fs as pafs
import pyarrow.parquet as pq

HERE = Path(__file__).resolve()
REPO = HERE.parents[1]
if str(REPO / "src") not in sys.path:  # run as a script from a checkout
    sys.path.insert(0, str(REPO / "src"))

from tracelens.schema import TRACE_SCHEMA  # noqa: E402

FORMATS = ("delta", "iceberg")
STORAGES = ("local", "s3")
BUCKET = "bench"
KEY = "testing"  # dummy credentials for the local S3 server
DAY0 = datetime(2026, 11, 2, tzinfo=UTC)
MAX_ATTEMPTS = 20  # a writer's tries at one commit before it gives up (each failure is recorded)
SCHEMA = TRACE_SCHEMA.append(pa.field("date", pa.date32(), nullable=False))


@dataclass(frozen=True)
class Sizes:
    commits: int  # appends per batch size in the latency test
    concurrent: int  # appends per writer in the concurrency test
    concurrent_rows: int
    merge_rounds: int
    merge_rows: int
    read_rows: int
    read_commits: int
    read_repeat: int
    kill_trials: int
    import_repeat: int


SIZES = {
    "full": Sizes(30, 20, 100, 8, 60, 500_000, 200, 3, 3, 5),
    "quick": Sizes(12, 10, 100, 5, 60, 100_000, 200, 3, 2, 3),
    "smoke": Sizes(3, 3, 10, 2, 20, 2_000, 10, 1, 1, 0),
}


# ---------------------------------------------------------------------------------------------- rows

WORDS = ["the", "model", "answer", "request", "user", "latency", "token", "refusal", "policy", "cluster", "prompt", "response", "drift", "support", "billing", "account", "invoice", "summary", "customer", "order", "shipping", "error", "timeout", "retry", "cache", "vector", "search", "translate", "explain", "rewrite", "improve", "concise", "detail", "example", "reason", "step"]


def _texts(rng: np.random.Generator, n: int, lo: int, hi: int) -> list[str]:
    out = []
    for _ in range(n):
        target = int(rng.integers(lo, hi))
        words: list[str] = []
        length = 0
        while length < target:
            w = WORDS[int(rng.integers(len(WORDS)))]
            words.append(w)
            length += len(w) + 1
        out.append(" ".join(words).capitalize() + ".")
    return out


_POOLS: dict[str, list[str]] = {}


def _pool(name: str, lo: int, hi: int) -> pa.Array:
    if name not in _POOLS:
        _POOLS[name] = _texts(np.random.default_rng(len(name)), 256, lo, hi)
    return pa.array(_POOLS[name])


def make_rows(ids: np.ndarray, seed: int) -> pa.Table:
    """Rows shaped like stored traces for the given integer ids (trace_id ``t<id>``)."""
    n = len(ids)
    rng = np.random.default_rng(seed)
    str_ids = pc.binary_join_element_wise("t", pa.array(ids.astype(np.int64)).cast(pa.string()), "")
    ts_us = (DAY0.timestamp() * 1e6 + rng.integers(0, 7 * 86_400 * 1_000_000, n)).astype(np.int64)
    ts = pa.array(ts_us, pa.timestamp("us", tz="UTC"))
    prompts = _pool("prompt", 150, 400).take(pa.array(rng.integers(0, 256, n)))
    responses = _pool("response_text", 200, 600).take(pa.array(rng.integers(0, 256, n)))
    systems = _pool("system", 60, 200).take(pa.array(rng.integers(0, 256, n)))
    families = pa.array(["claude-sonnet-4-5", "claude-haiku-4-5", "gpt-4o", "gpt-4o-mini"]).take(
        pa.array(rng.integers(0, 4, n)))
    stops = pa.array(["end_turn", "max_tokens", "tool_use", "refusal"]).take(pa.array(rng.choice(4, n, p=[.85, .07, .06, .02])))
    hexes = os.urandom(32 * n).hex() if seed < 0 else rng.bytes(32 * n).hex()
    content_hash = pa.array([hexes[i * 64:(i + 1) * 64] for i in range(n)])
    now = pa.array(np.full(n, int(time.time() * 1e6), dtype=np.int64), pa.timestamp("us", tz="UTC"))
    msg_type = TRACE_SCHEMA.field("messages").type.value_type
    tool_type = TRACE_SCHEMA.field("tool_calls").type
    null_tools = pa.nulls(n, tool_type)
    messages = pa.ListArray.from_arrays(
        pa.array(np.arange(n + 1, dtype=np.int32)),
        pa.StructArray.from_arrays(
            [pa.array(["user"] * n), prompts, null_tools, pa.nulls(n, pa.string()), pa.nulls(n, pa.string())],
            fields=list(msg_type)),
    )
    request_raw = pc.binary_join_element_wise('{"model":"', families, '","messages":[{"role":"user","content":"',
                                              prompts, '"}],"max_tokens":1024}', "")
    response_raw = pc.binary_join_element_wise('{"type":"message","content":[{"type":"text","text":"', responses,
                                               '"}],"stop_reason":"', stops, '"}', "")
    attributes = pa.MapArray.from_arrays(pa.array(np.arange(0, 2 * n + 1, 2, dtype=np.int32)),
                                         pa.array(["env", "region"] * n), pa.array(["prod", "eu-west-1"] * n))
    tokens_in = rng.integers(20, 4000, n)
    cols: dict[str, Any] = {
        "trace_id": str_ids,
        "source_format": pa.array(["anthropic_log"] * n),
        "source_file": pa.array(["/var/log/llm/2026-11-02.jsonl"] * n),
        "source_locator": pc.binary_join_element_wise("line:", pa.array(ids.astype(np.int64)).cast(pa.string()), ""),
        "ingested_at": now,
        "timestamp": ts,
        "provider": pc.if_else(pc.starts_with(families, "claude"), "anthropic", "openai"),
        "model_requested": families,
        "model_returned": families,
        "model_family": families,
        "model_snapshot": pa.nulls(n, pa.string()),
        "model_is_alias": pa.array(np.ones(n, dtype=bool)),
        "request_id": pc.binary_join_element_wise("req_", str_ids, ""),
        "response_id": pc.binary_join_element_wise("msg_", str_ids, ""),
        "session_id": pa.nulls(n, pa.string()),
        "conversation_id": pa.nulls(n, pa.string()),
        "user_id": pc.binary_join_element_wise("u", pa.array(rng.integers(0, 500, n)).cast(pa.string()), ""),
        "app": pa.array(["support"] * n),
        "service": pa.array(["chat-api"] * n),
        "system_prompt": systems,
        "messages": messages,
        "prompt_text": prompts,
        "response_text": responses,
        "tool_calls": null_tools,
        "tool_definitions": pa.nulls(n, pa.string()),
        "stop_reason": stops,
        "stop_reason_raw": stops,
        "stop_details": pa.nulls(n, pa.string()),
        "temperature": pa.array(rng.choice([0.0, 0.7, 1.0], n)),
        "top_p": pa.nulls(n, pa.float64()),
        "top_k": pa.nulls(n, pa.int64()),
        "max_tokens": pa.array(np.full(n, 1024, dtype=np.int64)),
        "seed": pa.nulls(n, pa.int64()),
        "stop_sequences": pa.nulls(n, pa.list_(pa.string())),
        "input_tokens": pa.array(tokens_in),
        "output_tokens": pa.array(rng.integers(5, 1200, n)),
        "cache_read_tokens": pa.array(np.zeros(n, dtype=np.int64)),
        "cache_creation_tokens": pa.array(np.zeros(n, dtype=np.int64)),
        "latency_ms": pa.array(rng.gamma(2.0, 600.0, n)),
        "time_to_first_token_ms": pa.nulls(n, pa.float64()),
        "status": pa.array(["ok"] * n),
        "error_type": pa.nulls(n, pa.string()),
        "error_message": pa.nulls(n, pa.string()),
        "http_status": pa.array(np.full(n, 200, dtype=np.int64)),
        "cost": pa.array(tokens_in * 3e-6),
        "service_tier": pa.array(["standard"] * n),
        "attributes": attributes,
        "request_raw": request_raw,
        "response_raw": response_raw,
        "request_is_exact": pa.array(np.ones(n, dtype=bool)),
        "redacted": pa.array(np.zeros(n, dtype=bool)),
        "system_prompt_hash": pc.utf8_slice_codeunits(content_hash, 0, 16),
        "tools_hash": pa.nulls(n, pa.string()),
        "prompt_hash": pc.utf8_slice_codeunits(content_hash, 16, 32),
        "content_hash": content_hash,
        "refusal": pc.if_else(pc.equal(stops, "refusal"), "full", "none"),
        "refusal_score": pa.array(rng.random(n) * 0.1),
        "refusal_source": pa.array(["text"] * n),
        "refusal_category": pa.nulls(n, pa.string()),
        "refusal_evidence": pa.nulls(n, pa.string()),
        "refusal_version": pa.array(["1"] * n),
        "date": pc.cast(pc.cast(ts, pa.timestamp("us")), pa.date32()),
    }
    return pa.Table.from_arrays([pa.array(cols[f.name]).cast(f.type) if not isinstance(cols[f.name], pa.ChunkedArray)
                                 else cols[f.name].cast(f.type) for f in SCHEMA], schema=SCHEMA)


# ------------------------------------------------------------------------------------------ storage

@dataclass
class Storage:
    """Where tables live: a local directory, or a bucket on the local S3 server."""

    kind: str
    root: str  # local path, or s3://bucket/prefix
    endpoint: str | None = None
    conditional_put: bool = True
    unsafe_rename: bool = False

    def delta_options(self) -> dict[str, str]:
        if self.kind == "local":
            return {}
        opts = {"AWS_ENDPOINT_URL": self.endpoint, "AWS_ALLOW_HTTP": "true", "AWS_REGION": "us-east-1",
                "AWS_ACCESS_KEY_ID": KEY, "AWS_SECRET_ACCESS_KEY": KEY}
        if self.conditional_put:
            opts["conditional_put"] = "etag"
        if self.unsafe_rename:
            opts["AWS_S3_ALLOW_UNSAFE_RENAME"] = "true"
        return opts

    def polars_options(self) -> dict[str, str] | None:
        if self.kind == "local":
            return None
        return {"aws_endpoint_url": self.endpoint, "aws_allow_http": "true", "aws_region": "us-east-1",
                "aws_access_key_id": KEY, "aws_secret_access_key": KEY}

    def iceberg_props(self) -> dict[str, str]:
        if self.kind == "local":
            return {}
        return {"s3.endpoint": self.endpoint, "s3.access-key-id": KEY, "s3.secret-access-key": KEY,
                "s3.region": "us-east-1"}

    def uri(self, name: str) -> str:
        return f"{self.root}/{name}" if self.kind == "s3" else str(Path(self.root) / name)

    def fs(self) -> pafs.FileSystem:
        if self.kind == "local":
            return pafs.LocalFileSystem()
        host = self.endpoint.split("://", 1)[1]
        return pafs.S3FileSystem(access_key=KEY, secret_key=KEY, region="us-east-1", endpoint_override=host,
                                 scheme="http")

    def fs_path(self, uri: str) -> str:
        for prefix in ("s3://", "file://"):
            if uri.startswith(prefix):
                return uri[len(prefix):]
        return uri

    def list_files(self, uri: str) -> list[str]:
        """Every file under a table's root, as a path relative to it."""
        fs, base = self.fs(), self.fs_path(uri).rstrip("/")
        try:
            infos = fs.get_file_info(pafs.FileSelector(base, recursive=True))
        except (FileNotFoundError, OSError):
            return []
        return sorted(i.path[len(base) + 1:] for i in infos if i.type == pafs.FileType.File)

    def to_dict(self) -> dict[str, Any]:
        return {"kind": self.kind, "root": self.root, "endpoint": self.endpoint, "conditional_put": self.conditional_put,
                "unsafe_rename": self.unsafe_rename}


class MotoServer:
    """``python -m moto.server`` on a free loopback port, with one bucket; its request log kept to count 412s."""

    def __init__(self, workdir: Path) -> None:
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            self.port = s.getsockname()[1]
        self.endpoint = f"http://127.0.0.1:{self.port}"
        self.log_path = workdir / "moto.log"
        self._log = open(self.log_path, "w")  # noqa: SIM115 - closed in stop()
        self.proc = subprocess.Popen([sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(self.port)],
                                     stdout=self._log, stderr=subprocess.STDOUT, env={**os.environ, **_aws_env()})
        deadline = time.monotonic() + 30
        while True:
            try:
                urllib.request.urlopen(f"{self.endpoint}/moto-api/", timeout=1).read()
                break
            except OSError:
                if time.monotonic() > deadline or self.proc.poll() is not None:
                    raise RuntimeError("moto.server did not start") from None
                time.sleep(0.1)
        import boto3

        boto3.client("s3", endpoint_url=self.endpoint, aws_access_key_id=KEY, aws_secret_access_key=KEY,
                     region_name="us-east-1").create_bucket(Bucket=BUCKET)

    def count_412(self, needle: str) -> int:
        """Requests the server refused with 412 Precondition Failed whose path contains ``needle``."""
        self._log.flush()
        return sum(1 for line in self.log_path.read_text(errors="replace").splitlines()
                   if needle in line and '" 412 ' in line)

    def accepted_twice(self, needle: str) -> int:
        """Objects whose path contains ``needle`` that the server stored more than once with 200 OK. For commit
        files, which are only ever written with ``If-None-Match: *``, each is a conditional create the server
        should have refused: moto checks and stores in two steps on a threaded server, so two racing creates can
        both pass (AWS S3 makes the check atomic)."""
        self._log.flush()
        seen: dict[str, int] = {}
        for line in self.log_path.read_text(errors="replace").splitlines():
            if needle in line and '" 200 ' in line and "PUT /" in line:
                path = line.split("PUT ", 1)[1].split(" HTTP/", 1)[0]
                seen[path] = seen.get(path, 0) + 1
        return sum(1 for n in seen.values() if n > 1)

    def stop(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
        self._log.close()


def _aws_env() -> dict[str, str]:
    return {"AWS_ACCESS_KEY_ID": KEY, "AWS_SECRET_ACCESS_KEY": KEY, "AWS_DEFAULT_REGION": "us-east-1",
            "AWS_EC2_METADATA_DISABLED": "true"}


# -------------------------------------------------------------------------------------------- tables

class DeltaStore:
    """One Delta table through deltalake (delta-rs)."""

    fmt = "delta"

    def __init__(self, storage: Storage, name: str, **_: Any) -> None:
        self.storage, self.uri, self.opts = storage, storage.uri(f"delta_{name}"), storage.delta_options()
        self._dt = None

    def spec(self) -> dict[str, Any]:
        return {"fmt": self.fmt, "storage": self.storage.to_dict(), "uri": self.uri}

    def create(self, batch: pa.Table) -> None:
        from deltalake import write_deltalake

        write_deltalake(self.uri, batch, partition_by=["date"], mode="append", storage_options=self.opts)

    def table(self):
        from deltalake import DeltaTable

        if self._dt is None:
            self._dt = DeltaTable(self.uri, storage_options=self.opts)
        return self._dt

    def append(self, batch: pa.Table) -> None:
        from deltalake import write_deltalake

        write_deltalake(self.table(), batch, partition_by=["date"], mode="append")

    def insert_if_absent(self, batch: pa.Table) -> dict[str, Any]:
        from deltalake import DeltaTable

        dt = DeltaTable(self.uri, storage_options=self.opts)
        return (dt.merge(batch, "t.trace_id = s.trace_id", source_alias="s", target_alias="t")
                .when_not_matched_insert_all().execute())

    def reload(self) -> None:
        self._dt = None

    def scan(self):
        import polars as pl

        return pl.scan_delta(self.uri, storage_options=self.opts or None)

    def data_files(self) -> list[str]:
        """The current version's data files, as paths relative to the table root."""
        root = self.uri.rstrip("/") + "/"
        return [u.split(root, 1)[-1] if root in u else u for u in self.table().file_uris()]

    def full_uri(self, rel: str) -> str:
        return f"{self.uri.rstrip('/')}/{rel}"

    def count(self) -> int:
        return self.scan().select("trace_id").collect().height

    def history(self) -> dict[str, Any]:
        """Versions, operations and how many commits were rebased over a concurrent one (readVersion != v - 1)."""
        hist = sorted(self.table().history(), key=lambda h: h["version"])
        versions = [h["version"] for h in hist]
        # delta-rs retries a commit whose version another writer took (after checking the two do not conflict) and
        # records how many times in the commit's operationMetrics
        retries = sum(int((h.get("operationMetrics") or {}).get("num_retries", 0) or 0) for h in hist)
        rows_added = 0
        for h in hist:
            metrics = h.get("operationMetrics") or {}
            rows_added += int(metrics.get("num_added_rows", metrics.get("numOutputRows", 0)) or 0)
        return {"versions": len(versions), "latest": versions[-1] if versions else None,
                "contiguous": versions == list(range(versions[0], versions[0] + len(versions))) if versions else False,
                "operations": sorted({h.get("operation", "?") for h in hist}), "retries_logged": retries,
                "rows_added_by_log": rows_added}

    def compact(self) -> dict[str, Any]:
        dt = self.table()
        t0 = time.perf_counter()
        metrics = dt.optimize.compact()
        t1 = time.perf_counter()
        removed = dt.vacuum(retention_hours=0, enforce_retention_duration=False, dry_run=False)
        t2 = time.perf_counter()
        self.reload()
        return {"how": "optimize.compact() then vacuum(retention_hours=0)", "compact_s": round(t1 - t0, 3),
                "cleanup_s": round(t2 - t1, 3), "files_removed": metrics.get("numFilesRemoved"),
                "files_added": metrics.get("numFilesAdded"), "vacuumed": len(removed)}

    def cleanup(self) -> dict[str, Any]:
        """Vacuum with no retention: first the default (lite) mode, then full (lists the directory)."""
        dt = self.table()
        lite = dt.vacuum(retention_hours=0, enforce_retention_duration=False, dry_run=False)
        full = dt.vacuum(retention_hours=0, enforce_retention_duration=False, dry_run=False, full=True)
        return {"how": "vacuum(retention_hours=0) then vacuum(..., full=True)", "lite_removed": len(lite),
                "full_removed": len(full)}

    def arrow_dataset(self):
        return self.table().to_pyarrow_dataset()

    def version_counts(self) -> list[int]:
        """Row count at every version (time travel), for the killed-writer check."""
        from deltalake import DeltaTable

        latest = self.table().version()
        out = []
        for v in range(max(0, latest - 3), latest + 1):
            dt = DeltaTable(self.uri, storage_options=self.opts, version=v)
            out.append(dt.to_pyarrow_dataset().count_rows())
        return out


class IcebergStore:
    """One Iceberg table through pyiceberg, its catalog a SQLite file (pyiceberg's SqlCatalog)."""

    fmt = "iceberg"

    def __init__(self, storage: Storage, name: str, catalog_dir: str) -> None:
        self.storage, self.name = storage, name
        self.catalog_file = str(Path(catalog_dir) / f"catalog_{name}.db")
        self.warehouse = storage.uri(f"iceberg_{name}") if storage.kind == "s3" else \
            "file://" + storage.uri(f"iceberg_{name}")
        self.ident = f"bench.{name}"
        self._tbl = None

    def spec(self) -> dict[str, Any]:
        return {"fmt": self.fmt, "storage": self.storage.to_dict(), "name": self.name,
                "catalog_dir": str(Path(self.catalog_file).parent)}

    def catalog(self):
        from pyiceberg.catalog.sql import SqlCatalog

        return SqlCatalog("bench", uri=f"sqlite:///{self.catalog_file}", warehouse=self.warehouse,
                          **self.storage.iceberg_props())

    def create(self, batch: pa.Table) -> None:
        cat = self.catalog()
        cat.create_namespace_if_not_exists("bench")
        tbl = cat.create_table(self.ident, schema=batch.schema)
        with tbl.update_spec() as spec:
            spec.add_identity("date")
        tbl.append(batch)

    def table(self):
        if self._tbl is None:
            self._tbl = self.catalog().load_table(self.ident)
        return self._tbl

    def append(self, batch: pa.Table) -> None:
        self.table().append(batch)

    def insert_if_absent(self, batch: pa.Table) -> Any:
        tbl = self.catalog().load_table(self.ident)
        return tbl.upsert(batch, join_cols=["trace_id"], when_matched_update_all=False, when_not_matched_insert_all=True)

    def reload(self) -> None:
        self._tbl = None

    @property
    def uri(self) -> str:
        return self.table().location()

    def scan(self):
        import polars as pl

        return pl.scan_iceberg(self.table(), storage_options=self.storage.polars_options())

    def data_files(self) -> list[str]:
        root = self.uri.rstrip("/") + "/"
        return [t.file.file_path.split(root, 1)[-1] for t in self.table().scan().plan_files()]

    def full_uri(self, rel: str) -> str:
        return f"{self.uri.rstrip('/')}/{rel}"

    def count(self) -> int:
        return self.scan().select("trace_id").collect().height

    def history(self) -> dict[str, Any]:
        """Snapshots, whether each one's parent is the one before it, and rows added by the snapshot summaries."""
        md = self.table().metadata
        snaps = sorted(md.snapshots, key=lambda s: s.sequence_number)
        chain = all(s.parent_snapshot_id == p.snapshot_id for p, s in zip(snaps, snaps[1:], strict=False))
        seqs = [s.sequence_number for s in snaps]
        rows_added = sum(int((s.summary or {}).get("added-records", 0)) for s in snaps
                         if s.summary and s.summary.operation.value == "append")
        return {"versions": len(snaps), "latest": seqs[-1] if seqs else None,
                "contiguous": chain and seqs == list(range(seqs[0], seqs[0] + len(seqs))) if seqs else False,
                "operations": sorted({s.summary.operation.value for s in snaps if s.summary}),
                "rows_added_by_log": rows_added}

    def compact(self) -> dict[str, Any]:
        tbl = self.table()
        t0 = time.perf_counter()
        tbl.overwrite(tbl.scan().to_arrow())
        t1 = time.perf_counter()
        tbl.maintenance.expire_snapshots().older_than(datetime.now(UTC) + timedelta(seconds=1)).commit()
        t2 = time.perf_counter()
        self.reload()
        return {"how": "overwrite(scan().to_arrow()) (no compaction in pyiceberg 0.12) then expire_snapshots()",
                "compact_s": round(t1 - t0, 3), "cleanup_s": round(t2 - t1, 3)}

    def cleanup(self) -> dict[str, Any]:
        tbl = self.table()
        tbl.maintenance.expire_snapshots().older_than(datetime.now(UTC) + timedelta(seconds=1)).commit()
        return {"how": "expire_snapshots() (pyiceberg 0.12 has no orphan-file removal)"}

    def arrow_dataset(self):
        return self.table().scan().to_arrow()

    def version_counts(self) -> list[int]:
        tbl = self.table()
        snaps = sorted(tbl.metadata.snapshots, key=lambda s: s.sequence_number)[-4:]
        return [tbl.scan(snapshot_id=s.snapshot_id).to_arrow().num_rows for s in snaps]


def open_store(spec: dict[str, Any]):
    st = spec["storage"]
    storage = Storage(st["kind"], st["root"], st["endpoint"], st["conditional_put"], st["unsafe_rename"])
    if spec["fmt"] == "delta":
        store = DeltaStore(storage, "x")
        store.uri = spec["uri"]
        return store
    return IcebergStore(storage, spec["name"], spec["catalog_dir"])


def make_store(fmt: str, storage: Storage, name: str, catalog_dir: Path):
    cls = DeltaStore if fmt == "delta" else IcebergStore
    return cls(storage, name, catalog_dir=str(catalog_dir))


# ------------------------------------------------------------------------------------------- workers

class _RetryCounter(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.retries = 0

    def emit(self, record: logging.LogRecord) -> None:
        if "retrying" in record.getMessage():
            self.retries += 1


def worker(args: dict[str, Any]) -> dict[str, Any]:
    """Runs in a child process: appends, insert-if-absent rounds, or a commit loop that the parent kills."""
    counter = _RetryCounter()
    logging.getLogger("pyiceberg").addHandler(counter)
    store = open_store(args["spec"])
    op, wid = args["op"], args["writer"]
    if op == "loop":
        batches = [make_rows(np.arange(i * 100, (i + 1) * 100) + 10_000_000 * (wid + 1), seed=i) for i in range(4)]
    elif op == "append":
        n = args["rows"]
        batches = [make_rows(np.arange(n) + 1_000_000 * (wid + 1) + i * n, seed=wid * 1000 + i)
                   for i in range(args["count"])]
    else:  # merge: writer 0 inserts ids [base, base+3n/5), writer 1 [base+2n/5, base+n): a fifth of the ids overlap
        n = args["rows"]
        lo, hi = (0, 3 * n // 5) if wid == 0 else (2 * n // 5, n)
        batches = [make_rows(np.arange(r * n + lo, r * n + hi) + 5_000_000, seed=wid * 1000 + r)
                   for r in range(args["count"])]
    store.table()
    Path(args["ready"]).touch()
    while not Path(args["go"]).exists():
        time.sleep(0.002)
    ok, errors, retries, times = 0, [], 0, []
    if op == "loop":
        i = 0
        while True:  # until killed
            batch = make_rows(np.arange(i * 100, (i + 1) * 100) + 10_000_000 * (wid + 1), seed=i) if i >= 4 \
                else batches[i]
            store.append(batch)
            i += 1
    jitter = random.Random(wid)
    most = 0
    for batch in batches:
        t0 = time.perf_counter()
        for attempt in range(MAX_ATTEMPTS):
            try:
                if op == "append":
                    store.append(batch)
                else:
                    store.insert_if_absent(batch)
                ok += 1
                most = max(most, attempt + 1)
                break
            except Exception as e:  # what the format raises on a conflict is part of the result
                errors.append(f"{type(e).__name__}: {' '.join(str(e).split())[:200]}")
                retries += 1
                store.reload()
                # re-run the operation after a jittered, growing pause, as a store would: immediate re-runs of a
                # slow MERGE keep losing to a writer with a faster one
                time.sleep(jitter.uniform(0, 0.02 * 2 ** min(attempt, 5)))
        else:
            most = MAX_ATTEMPTS
        times.append(time.perf_counter() - t0)
    return {"writer": wid, "ok": ok, "errors": errors, "caller_retries": retries, "most_attempts": most,
            "library_retries": counter.retries, "seconds": round(sum(times), 3)}


def run_workers(spec: dict[str, Any], op: str, work: Path, n_writers: int = 2, **kw: Any) -> list[dict[str, Any]]:
    """Starts the writers, waits until each has imported and opened the table, then releases them together."""
    tag = f"{op}_{time.monotonic_ns()}"
    go = work / f"{tag}.go"
    procs, readies = [], []
    for w in range(n_writers):
        ready = work / f"{tag}.{w}.ready"
        readies.append(ready)
        payload = json.dumps({"spec": spec, "op": op, "writer": w, "ready": str(ready), "go": str(go), **kw})
        procs.append(subprocess.Popen([sys.executable, str(HERE), "--worker", payload], stdout=subprocess.PIPE,
                                      stderr=subprocess.PIPE, text=True, env={**os.environ, **_aws_env()}))
    _wait_ready(readies, procs)
    go.touch()
    results = []
    for p in procs:
        out, err = p.communicate(timeout=600)
        if p.returncode != 0:
            results.append({"ok": 0, "errors": [f"worker exited {p.returncode}: {err.strip()[-400:]}"],
                            "caller_retries": 0, "library_retries": 0})
            continue
        results.append(json.loads(out.strip().splitlines()[-1]))
    return results


def _wait_ready(readies: list[Path], procs: list[subprocess.Popen]) -> None:
    deadline = time.monotonic() + 120
    while not all(r.exists() for r in readies):
        for p in procs:
            if p.poll() is not None:
                raise RuntimeError(f"worker failed to start: {p.stderr.read()[-2000:] if p.stderr else ''}")
        if time.monotonic() > deadline:
            raise RuntimeError("workers did not get ready")
        time.sleep(0.01)


# ---------------------------------------------------------------------------------------- measures

def _ms(xs: list[float]) -> dict[str, float]:
    xs = sorted(xs)
    p90 = xs[min(len(xs) - 1, int(round(0.9 * (len(xs) - 1))))]
    return {"median_ms": round(statistics.median(xs) * 1000, 2), "p90_ms": round(p90 * 1000, 2)}


def plain_parquet_write(storage: Storage, name: str, batch: pa.Table, i: int) -> None:
    """The baseline commit: the batch as one Parquet file, written to a temporary name and renamed (local) or
    put (S3), i.e. the data a commit must write anyway, without any table protocol."""
    fs = storage.fs()
    base = storage.fs_path(storage.uri(f"plain_{name}"))
    if storage.kind == "local":
        Path(base).mkdir(parents=True, exist_ok=True)
        tmp = f"{base}/.tmp-{i}.parquet"
        pq.write_table(batch, tmp, filesystem=fs, compression="zstd")
        os.replace(tmp, f"{base}/part-{i:05d}.parquet")
    else:
        pq.write_table(batch, f"{base}/part-{i:05d}.parquet", filesystem=fs, compression="zstd")


def measure_commits(storage: Storage, sizes: Sizes, work: Path, formats: tuple[str, ...]) -> list[dict[str, Any]]:
    out = []
    for rows in (1000, 1):
        batches = [make_rows(np.arange(i * rows, (i + 1) * rows) + 100_000_000, seed=i) for i in range(sizes.commits + 1)]
        stores = {f: make_store(f, storage, f"commit{rows}", work) for f in formats}
        for s in stores.values():
            s.create(batches[0])
        times: dict[str, list[float]] = {"plain parquet (baseline)": [], **{f: [] for f in formats}}
        for i, batch in enumerate(batches[1:], 1):
            t0 = time.perf_counter()
            plain_parquet_write(storage, f"commit{rows}", batch, i)
            times["plain parquet (baseline)"].append(time.perf_counter() - t0)
            for f, s in stores.items():
                t0 = time.perf_counter()
                s.append(batch)
                times[f].append(time.perf_counter() - t0)
        base = statistics.median(times["plain parquet (baseline)"])
        for name, xs in times.items():
            rec = {"storage": storage.kind, "format": name, "batch_rows": rows, "commits": len(xs), **_ms(xs),
                   "x_baseline": round(statistics.median(xs) / base, 1)}
            if name in stores:
                rec["rows_after"] = stores[name].count()
                rec["rows_expected"] = rows * (sizes.commits + 1)
            out.append(rec)
    return out


def measure_concurrency(fmt: str, storage: Storage, sizes: Sizes, work: Path, moto: MotoServer | None,
                        label: str = "") -> dict[str, Any]:
    name = "conc" + "".join(c for c in label if c.isalnum())
    store = make_store(fmt, storage, name, work)
    store.create(make_rows(np.arange(10), seed=1))
    before_412 = moto.count_412(f"{name}/_delta_log/") if moto and fmt == "delta" else None
    results = run_workers(store.spec(), "append", work, count=sizes.concurrent, rows=sizes.concurrent_rows)
    store.reload()
    expected = 10 + 2 * sizes.concurrent * sizes.concurrent_rows
    ids = store.scan().select("trace_id").collect()["trace_id"]
    hist = store.history()
    rec = {"storage": storage.kind + label, "format": fmt, "test": "append", "writers": 2,
           "commits_per_writer": sizes.concurrent, "rows_per_commit": sizes.concurrent_rows,
           "commits_ok": sum(r["ok"] for r in results), "errors": [e for r in results for e in r["errors"]][:6],
           "error_count": sum(len(r["errors"]) for r in results),
           "library_retries": sum(r["library_retries"] for r in results),
           "rows_expected": expected, "rows": len(ids), "exact": len(ids) == expected,
           "distinct_ids": ids.n_unique(), "history": hist,
           "history_consistent": hist["contiguous"] and hist["versions"] == 1 + 2 * sizes.concurrent,
           "writer_seconds": [r.get("seconds") for r in results]}
    if before_412 is not None:
        rec["server_412_on_commit_files"] = moto.count_412(f"{name}/_delta_log/") - before_412
        rec["commit_files_stored_twice"] = moto.accepted_twice(f"{name}/_delta_log/0")
    return rec


def measure_merge(fmt: str, storage: Storage, sizes: Sizes, work: Path) -> dict[str, Any]:
    store = make_store(fmt, storage, "merge", work)
    store.create(make_rows(np.arange(10) + 4_000_000, seed=2))
    results = run_workers(store.spec(), "merge", work, count=sizes.merge_rounds, rows=sizes.merge_rows)
    store.reload()
    ids = store.scan().select("trace_id").collect()["trace_id"]
    expected = 10 + sizes.merge_rounds * sizes.merge_rows
    dup = len(ids) - ids.n_unique()
    return {"storage": storage.kind, "format": fmt,
            "test": "insert-if-absent (MERGE)" if fmt == "delta" else "insert-if-absent (upsert)",
            "writers": 2, "rounds": sizes.merge_rounds, "ids_per_round": sizes.merge_rows,
            "overlapping_ids_per_round": sizes.merge_rows // 5,
            "merges_ok": sum(r["ok"] for r in results), "error_count": sum(len(r["errors"]) for r in results),
            "most_attempts_for_one_merge": max(r.get("most_attempts", 0) for r in results),
            "errors": [e for r in results for e in r["errors"]][:6],
            "library_retries": sum(r["library_retries"] for r in results),
            "distinct_ids_expected": expected, "rows": len(ids), "distinct_ids": ids.n_unique(),
            "duplicate_rows": dup, "no_duplicates": dup == 0 and ids.n_unique() == expected}


def _timed(fn) -> float:
    t0 = time.perf_counter()
    fn()
    return time.perf_counter() - t0


def measure_reads(fmt: str, storage: Storage, sizes: Sizes, work: Path) -> list[dict[str, Any]]:
    import polars as pl

    store = make_store(fmt, storage, "read", work)
    per = sizes.read_rows // sizes.read_commits
    t0 = time.perf_counter()
    for i in range(sizes.read_commits):
        batch = make_rows(np.arange(i * per, (i + 1) * per), seed=i)
        store.create(batch) if i == 0 else store.append(batch)
    write_s = time.perf_counter() - t0
    store.reload()
    day = (DAY0 + timedelta(days=3)).date()
    out = []
    for phase in ("after_commits", "after_compaction"):
        extra: dict[str, Any] = {}
        if phase == "after_compaction":
            extra = store.compact()
        files = store.data_files()
        file_uris = [store.full_uri(f) for f in files]

        def fmt_scan():
            return store.scan()

        def base_scan(file_uris=file_uris):
            return pl.scan_parquet(file_uris, hive_partitioning=True, storage_options=storage.polars_options())

        queries = {
            "aggregate_3_columns": lambda lf: lf.select(pl.len(), pl.col("output_tokens").sum(),
                                                        pl.col("response_text").str.len_bytes().sum(),
                                                        pl.col("model_family").n_unique()).collect(),
            "full_read_all_columns": lambda lf: lf.collect(),
            "one_day_all_columns": lambda lf: lf.filter(pl.col("date") == day).collect(),
        }
        rec: dict[str, Any] = {"storage": storage.kind, "format": fmt, "phase": phase, "data_files": len(files),
                               "commits": sizes.read_commits, **extra}
        plan = []  # opening the table and listing its current files: the fixed cost of a read through the format
        for _ in range(sizes.read_repeat):
            store.reload()
            plan.append(_timed(store.data_files))
        rec["open_and_plan_s"] = round(statistics.median(plan), 3)
        if phase == "after_commits":
            rec["write_s"] = round(write_s, 2)
        for qname, q in queries.items():
            cand, base = [], []
            for _ in range(sizes.read_repeat):
                base.append(_timed(lambda q=q: q(base_scan())))
                cand.append(_timed(lambda q=q: q(fmt_scan())))
            res_f, res_b = q(fmt_scan()), q(base_scan())
            rows_f = res_f.item(0, 0) if qname.startswith("aggregate") else res_f.height
            rows_b = res_b.item(0, 0) if qname.startswith("aggregate") else res_b.height
            rec[qname] = {"s": round(statistics.median(cand), 3), "baseline_s": round(statistics.median(base), 3),
                          "x_baseline": round(statistics.median(cand) / statistics.median(base), 2),
                          "rows": rows_f, "rows_baseline": rows_b}
        rec["rows"] = rec["aggregate_3_columns"]["rows"]
        rec["rows_expected"] = per * sizes.read_commits
        out.append(rec)
    return out


def measure_kill(fmt: str, storage: Storage, sizes: Sizes, work: Path, seed: int) -> list[dict[str, Any]]:
    rng = random.Random(seed)
    out = []
    for trial in range(sizes.kill_trials):
        store = make_store(fmt, storage, f"kill{trial}", work)
        store.create(make_rows(np.arange(100) + 9_000_000, seed=3))
        tag = f"kill_{fmt}_{trial}_{time.monotonic_ns()}"
        ready, go = work / f"{tag}.ready", work / f"{tag}.go"
        payload = json.dumps({"spec": store.spec(), "op": "loop", "writer": trial, "ready": str(ready), "go": str(go)})
        proc = subprocess.Popen([sys.executable, str(HERE), "--worker", payload], stdout=subprocess.DEVNULL,
                                stderr=subprocess.PIPE, env={**os.environ, **_aws_env()})
        _wait_ready([ready], [proc])
        delay = rng.uniform(0.3, 1.5) if sizes.kill_trials > 1 else rng.uniform(0.2, 0.5)
        go.touch()
        time.sleep(delay)
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        store.reload()
        rec: dict[str, Any] = {"storage": storage.kind, "format": fmt, "trial": trial, "killed_after_s": round(delay, 2)}
        try:
            rows = store.count()
            hist = store.history()
            recent = store.version_counts()
            rec.update(opens=True, rows=rows, committed_batches=(rows - 100) // 100, whole_batches=rows % 100 == 0,
                       rows_match_log=rows == hist["rows_added_by_log"], latest_version=hist["latest"],
                       history_contiguous=hist["contiguous"], rows_at_recent_versions=recent,
                       rows_match_latest_version=rows == recent[-1])
        except Exception as e:  # a table that does not open is the finding
            rec.update(opens=False, error=f"{type(e).__name__}: {str(e)[:300]}")
            out.append(rec)
            continue
        rec.update(_orphans(store))
        rec["cleanup"] = store.cleanup()
        store.reload()
        after = _orphans(store)
        rec["after_cleanup"] = {"orphan_data_files": len(after["orphan_data_files"]),
                                "rows": store.count(), "other_files": after["all_files"]}
        rec["orphan_data_files"] = len(rec["orphan_data_files"])
        out.append(rec)
    return out


def _orphans(store) -> dict[str, Any]:
    """Data files on storage that the current version does not reference, and the count of every file."""
    files = store.storage.list_files(store.uri)
    referenced = set(store.data_files())
    data = [f for f in files if f.endswith(".parquet") and not f.startswith(("_delta_log", "metadata"))]
    return {"orphan_data_files": sorted(set(data) - referenced), "all_files": len(files),
            "metadata_files": len([f for f in files if f.startswith(("_delta_log", "metadata"))])}


def measure_engines(formats: tuple[str, ...], storage: Storage, work: Path) -> dict[str, Any]:
    import duckdb

    out: dict[str, Any] = {"duckdb": duckdb.__version__}
    con = duckdb.connect()
    for ext in ("delta", "iceberg"):
        try:
            con.execute(f"LOAD {ext}")
            out[f"extension_{ext}"] = "loaded"
        except Exception as e:  # offline: the extension cannot be downloaded
            out[f"extension_{ext}"] = f"{type(e).__name__}: {str(e).splitlines()[0][:160]}"
    for fmt in formats:
        store = make_store(fmt, storage, "engines", work)
        store.create(make_rows(np.arange(1000), seed=4))
        store.append(make_rows(np.arange(1000, 2000), seed=5))
        store.reload()
        ds = store.arrow_dataset()  # noqa: F841 - DuckDB finds it by its Python name
        n = con.execute("SELECT count(*), count(DISTINCT trace_id) FROM ds").fetchone()
        day = con.execute("SELECT count(*) FROM ds WHERE date = DATE '2026-11-05'").fetchone()[0]
        out[f"{fmt}_via_arrow"] = {"how": "DeltaTable.to_pyarrow_dataset()" if fmt == "delta"
                                   else "Table.scan().to_arrow()", "rows": n[0], "distinct": n[1],
                                   "one_day_rows": day, "exact": n[0] == 2000}
    return out


def measure_operational(repeat: int) -> dict[str, Any]:
    from importlib import metadata

    def dist_size(name: str) -> int:
        try:
            d = metadata.distribution(name)
        except metadata.PackageNotFoundError:
            return 0
        return sum((d.locate_file(f).stat().st_size for f in d.files or [] if d.locate_file(f).exists()), 0)

    def closure(name: str, extras: tuple[str, ...] = ()) -> set[str]:
        import re

        seen, todo = set(), [(name, extras)]
        while todo:
            n, ex = todo.pop()
            key = re.sub(r"[-_.]+", "-", n).lower()
            if key in seen:
                continue
            try:
                reqs = metadata.requires(n) or []
            except metadata.PackageNotFoundError:
                continue
            seen.add(key)
            for r in reqs:
                m = re.match(r"([A-Za-z0-9_.\-]+)(\[[^\]]*\])?", r)
                marker = r.split(";", 1)[1] if ";" in r else ""
                if "extra" in marker and not any(f'"{e}"' in marker or f"'{e}'" in marker for e in ex):
                    continue
                if "python_version" in marker or "sys_platform" in marker or "platform_" in marker:
                    try:
                        from packaging.markers import Marker

                        if not Marker(marker.replace(' and extra == "sql-sqlite"', "")).evaluate({"extra": ""}):
                            continue
                    except Exception:  # noqa: S112 - unparseable marker: count the requirement
                        pass
                sub = tuple(x.strip() for x in m.group(2)[1:-1].split(",")) if m.group(2) else ()
                todo.append((m.group(1), sub))
        return seen

    base = closure("tracelens")
    sizes = {}
    for label, name, extras in (("delta", "deltalake", ()), ("iceberg", "pyiceberg", ("sql-sqlite",))):
        added = sorted(closure(name, extras) - base)
        sizes[label] = {"package": name, "wheel_mb": round(dist_size(name) / 1e6, 1),
                        "adds_to_tracelens": added,
                        "added_mb": round(sum(dist_size(a) for a in added) / 1e6, 1),
                        "version": metadata.version(name)}
    cmds = {"python -c pass (baseline)": "pass", "import deltalake": "import deltalake",
            "import pyiceberg SqlCatalog": "from pyiceberg.catalog.sql import SqlCatalog; import pyiceberg.table",
            "import polars, pyarrow (both need them)": "import polars, pyarrow"}
    times: dict[str, list[float]] = {k: [] for k in cmds}
    if repeat < 1:  # the smoke run skips the interpreter start-ups
        return {"install": sizes, "import_time": {}}
    for _ in range(repeat):
        for k, code in cmds.items():
            t0 = time.perf_counter()
            subprocess.run([sys.executable, "-c", code], check=True)
            times[k].append(time.perf_counter() - t0)
    base_t = statistics.median(times["python -c pass (baseline)"])
    imports = {k: {"median_s": round(statistics.median(v), 3), "minus_python_s": round(statistics.median(v) - base_t, 3)}
               for k, v in times.items()}
    return {"install": sizes, "import_time": imports}


# -------------------------------------------------------------------------------------------- main

def machine() -> dict[str, Any]:
    import deltalake
    import duckdb
    import polars
    import pyiceberg

    cpu = platform.processor() or platform.machine()
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.lower().startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    return {"cpu": cpu, "cpus": os.cpu_count(), "python": platform.python_version(),
            "loadavg_start": os.getloadavg()[0], "deltalake": deltalake.__version__, "pyiceberg": pyiceberg.__version__,
            "polars": polars.__version__, "pyarrow": pa.__version__, "duckdb": duckdb.__version__}


SECTIONS = ("commits", "concurrency", "reads", "kill", "engines", "operational")


def run(mode: str, storages: tuple[str, ...], formats: tuple[str, ...], seed: int = 7, log=None,
        only: tuple[str, ...] = SECTIONS) -> dict[str, Any]:
    t_start = time.perf_counter()
    if log is None:
        def log(msg: str) -> None:
            print(f"{time.perf_counter() - t_start:7.1f}s {msg}", file=sys.stderr, flush=True)
    sizes = SIZES[mode]
    result: dict[str, Any] = {"mode": mode, "sizes": sizes.__dict__, "machine": machine(), "storages": list(storages),
                              "formats": list(formats), "commit_latency": [], "concurrency": [], "reads": [],
                              "kill": [], "engines": {}, "operational": {}, "sections": list(only)}
    started = time.perf_counter()
    work = Path(tempfile.mkdtemp(prefix="tl-formats-"))
    moto = None
    try:
        for kind in storages:
            run_dir = work / kind
            run_dir.mkdir()
            if kind == "s3":
                moto = MotoServer(work)
                storage = Storage("s3", f"s3://{BUCKET}/run", moto.endpoint)
            else:
                storage = Storage("local", str(run_dir / "tables"))
            if "commits" in only:
                log(f"[{kind}] commit latency")
                result["commit_latency"] += measure_commits(storage, sizes, run_dir, formats)
            for fmt in formats if "concurrency" in only else ():
                log(f"[{kind}] {fmt}: concurrent writers")
                result["concurrency"].append(measure_concurrency(fmt, storage, sizes, run_dir, moto))
                log(f"[{kind}] {fmt}: insert-if-absent from two writers")
                result["concurrency"].append(measure_merge(fmt, storage, sizes, run_dir))
            if kind == "s3" and "delta" in formats and "concurrency" in only:
                # which option makes Delta's S3 commits safe: the same test without conditional_put, and with the
                # unsafe-rename opt-out as well
                for label, variant in ((" (no conditional_put)", {"conditional_put": False}),
                                       (" (+ ALLOW_UNSAFE_RENAME)", {"conditional_put": False, "unsafe_rename": True})):
                    log(f"[s3] delta: concurrent writers{label}")
                    alt = Storage("s3", f"s3://{BUCKET}/run", moto.endpoint, **variant)
                    result["concurrency"].append(measure_concurrency("delta", alt, sizes, run_dir, moto, label=label))
            for fmt in formats:
                if "reads" in only:
                    log(f"[{kind}] {fmt}: reads")
                    result["reads"] += measure_reads(fmt, storage, sizes, run_dir)
                if "kill" in only:
                    log(f"[{kind}] {fmt}: killed writer")
                    result["kill"] += measure_kill(fmt, storage, sizes, run_dir, seed)
            if kind == storages[0] and "engines" in only:
                log(f"[{kind}] other engines")
                result["engines"] = measure_engines(formats, storage, run_dir)
            if moto:
                moto.stop()
                moto = None
        if "operational" in only:
            log("install size and import time")
            result["operational"] = measure_operational(sizes.import_repeat)
        log("done")
    finally:
        if moto:
            moto.stop()
        shutil.rmtree(work, ignore_errors=True)
    result["machine"]["loadavg_end"] = os.getloadavg()[0]
    result["seconds"] = round(time.perf_counter() - started, 1)
    return result


def render(r: dict[str, Any]) -> str:
    m = r["machine"]
    lines = [f"{m['cpu']} x{m['cpus']}, Python {m['python']}, deltalake {m['deltalake']}, pyiceberg {m['pyiceberg']}, "
             f"polars {m['polars']}; load {m['loadavg_start']:.2f} -> {m['loadavg_end']:.2f}; mode {r['mode']}, "
             f"{r['seconds']} s", "", "Commit latency (ms; baseline: the same batch as one plain Parquet file)",
             f"{'storage':8} {'format':26} {'rows':>5} {'median':>8} {'p90':>8} {'x base':>7} {'rows ok':>8}"]
    for c in r["commit_latency"]:
        ok = "" if "rows_after" not in c else ("yes" if c["rows_after"] == c["rows_expected"] else "NO")
        lines.append(f"{c['storage']:8} {c['format']:26} {c['batch_rows']:5} {c['median_ms']:8.1f} {c['p90_ms']:8.1f} "
                     f"{c['x_baseline']:7.1f} {ok:>8}")
    lines += ["", "Concurrent writers (2 processes)",
              f"{'storage':26} {'format':8} {'test':26} {'ok':>4} {'errors':>6} {'retries':>7} {'rows':>7} "
              f"{'expected':>8} {'dupes':>6} {'history':>8}"]
    for c in r["concurrency"]:
        if c["test"] == "append":
            dup, hist, ok = c["rows"] - c["distinct_ids"], "ok" if c["history_consistent"] else "BROKEN", c["commits_ok"]
            exp = c["rows_expected"]
            retries = c["library_retries"] if c["format"] == "iceberg" else c["history"]["retries_logged"]
        else:
            dup, hist, ok, exp, retries = c["duplicate_rows"], "", c["merges_ok"], c["distinct_ids_expected"], \
                c["library_retries"]
        lines.append(f"{c['storage']:26} {c['format']:8} {c['test']:26} {ok:4} {c['error_count']:6} {retries:7} "
                     f"{c['rows']:7} {exp:8} {dup:6} {hist:>8}")
        for e in sorted(set(c["errors"]))[:2]:
            lines.append(f"{'':36}error: {e[:110]}")
        if "most_attempts_for_one_merge" in c:
            lines.append(f"{'':36}most attempts one writer needed for one merge: {c['most_attempts_for_one_merge']}")
        if "server_412_on_commit_files" in c:
            lines.append(f"{'':36}S3 server answered 412 (precondition failed) to {c['server_412_on_commit_files']} "
                         f"commit-file PUTs; stored {c['commit_files_stored_twice']} commit file(s) twice")
    lines += ["", "Reads through polars (median s; baseline: pl.scan_parquet over the same current data files)",
              f"{'storage':8} {'format':8} {'phase':17} {'files':>6} {'rows':>8} {'open+plan':>9} {'aggregate':>14} "
              f"{'full read':>14} {'one day':>14}"]
    for c in r["reads"]:
        cells = [f"{c[q]['s']:6.3f} x{c[q]['x_baseline']:<5.2f}" for q in
                 ("aggregate_3_columns", "full_read_all_columns", "one_day_all_columns")]
        lines.append(f"{c['storage']:8} {c['format']:8} {c['phase']:17} {c['data_files']:6} {c['rows']:8} "
                     f"{c['open_and_plan_s']:9.3f} " + " ".join(f"{x:>14}" for x in cells))
    lines += ["", "Killed writer (SIGKILL while looping 100-row commits)",
              f"{'storage':8} {'format':8} {'after s':>7} {'opens':>5} {'rows':>6} {'=log':>5} {'orphans':>7} "
              f"{'after cleanup':>13}"]
    for c in r["kill"]:
        if not c.get("opens"):
            lines.append(f"{c['storage']:8} {c['format']:8} {c['killed_after_s']:7} {'NO':>5}  {c.get('error', '')}")
            continue
        lines.append(f"{c['storage']:8} {c['format']:8} {c['killed_after_s']:7} {'yes':>5} {c['rows']:6} "
                     f"{'yes' if c['rows_match_log'] and c['whole_batches'] else 'NO':>5} {c['orphan_data_files']:7} "
                     f"{c['after_cleanup']['orphan_data_files']:13}")
    e = r["engines"]
    lines += [] if not e else ["", f"DuckDB {e.get('duckdb')}: delta extension: {e.get('extension_delta', '')[:80]}",
              f"{'':14}iceberg extension: {e.get('extension_iceberg', '')[:80]}"]
    for f in r["formats"]:
        v = e.get(f"{f}_via_arrow")
        if v:
            lines.append(f"  {f} via {v['how']}: {v['rows']} rows (exact: {v['exact']})")
    op = r["operational"]
    if op:
        lines += ["", "Install and import"]
        for f, s in op["install"].items():
            lines.append(f"  {f}: {s['package']} {s['version']} {s['wheel_mb']} MB; adds {len(s['adds_to_tracelens'])} "
                         f"packages, {s['added_mb']} MB in all: {', '.join(s['adds_to_tracelens'])}")
        for k, t in op["import_time"].items():
            lines.append(f"  {k:42} {t['median_s']:.3f} s ({t['minus_python_s']:+.3f} s over python)")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    size = ap.add_mutually_exclusive_group()
    size.add_argument("--quick", action="store_true", help="100k rows read table, fewer commits")
    size.add_argument("--smoke", action="store_true", help="the smallest run (seconds): for the test")
    ap.add_argument("--storage", default="local,s3", help="comma-separated: local, s3")
    ap.add_argument("--formats", default="delta,iceberg", help="comma-separated: delta, iceberg")
    ap.add_argument("--only", default=",".join(SECTIONS), help="comma-separated sections: " + ", ".join(SECTIONS))
    ap.add_argument("--json", metavar="PATH", help="also write the results as JSON to PATH")
    ap.add_argument("--worker", help=argparse.SUPPRESS)
    a = ap.parse_args(argv)
    if a.worker:
        print(json.dumps(worker(json.loads(a.worker))))
        return 0
    storages = tuple(s for s in a.storage.split(",") if s)
    formats = tuple(f for f in a.formats.split(",") if f)
    only = tuple(x for x in a.only.split(",") if x)
    bad = [s for s in storages if s not in STORAGES] + [f for f in formats if f not in FORMATS] + \
        [x for x in only if x not in SECTIONS]
    if bad:
        ap.error(f"unknown storage or format: {', '.join(bad)}")
    os.environ.update(_aws_env())
    # polars plans Iceberg scans with pyiceberg when its optional polars_iceberg planner is absent (it is here)
    os.environ.setdefault("POLARS_ICEBERG_PLANNER", "pyiceberg")
    result = run("smoke" if a.smoke else "quick" if a.quick else "full", storages, formats, only=only)
    print(render(result))
    if a.json:
        Path(a.json).write_text(json.dumps(result, indent=2, default=str))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
