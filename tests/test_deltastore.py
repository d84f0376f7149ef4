"""Delta Lake stores at a URL (tracelens.deltastore): the store guarantees on file:// and on a local S3 server.

Concurrent writers are real processes, kills are SIGKILL, S3 is moto's server on 127.0.0.1 (tests/s3server.py).
"""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import polars as pl
import pyarrow as pa
import pytest
from click.testing import CliRunner

from tests.conftest import REPO, anthropic_line, cli_line
from tracelens.cli.main import cli
from tracelens.deltastore import DeltaStore
from tracelens.ingest.pipeline import ingest
from tracelens.schema import EVENTS_SCHEMA, TRACE_SCHEMA
from tracelens.store import Store, StoreError
from tracelens.storeopen import open_store

pytest.importorskip("deltalake")


@pytest.fixture(params=["delta-file", "delta-s3"])
def delta_url(request, tmp_path):
    """The URL of a store location that does not exist yet, on a local disk or on the S3 server."""
    if request.param == "delta-file":
        return f"file://{tmp_path}/dstore"
    return f"s3://{request.getfixturevalue('s3_env').bucket()}/dstore"


def _lines(path: Path, ids: range, ts=lambda i: "2026-11-18T15:00:00Z", **kw) -> Path:
    path.write_text("".join(anthropic_line(i, ts=ts(i), **kw) + "\n" for i in ids))
    return path


def _ids(url: str) -> list[str]:
    return DeltaStore(url).scan().select("trace_id").collect()["trace_id"].to_list()


def _storage(url: str) -> dict:
    from tracelens import objstore

    return objstore.storage_options(objstore.parse(url))


# ---------------------------------------------------------------------------------------------------- the CLI


def test_cli_ingest_twice_same_counts_second_all_duplicates(delta_url, tmp_path):
    src = _lines(tmp_path / "a.jsonl", range(12))
    r1 = CliRunner().invoke(cli, ["ingest", "--store", delta_url, "--json", "--no-progress", str(src)])
    assert r1.exit_code == 0, r1.output
    t1 = json.loads(r1.stdout)["totals"]
    r2 = CliRunner().invoke(cli, ["ingest", "--store", delta_url, "--json", "--no-progress", str(src)])
    t2 = json.loads(r2.stdout)["totals"]
    assert (t1["stored"], t1["duplicates"]) == (12, 0)
    assert (t2["stored"], t2["duplicates"], t2["read"]) == (0, 12, 12)
    ids = _ids(delta_url)
    assert len(ids) == 12 == len(set(ids))
    stats = CliRunner().invoke(cli, ["stats", "--store", delta_url, "--json"])
    assert stats.exit_code == 0, stats.output
    show = CliRunner().invoke(cli, ["show", "--store", delta_url, "--json", "msg_000003"])
    assert show.exit_code == 0 and json.loads(show.stdout)["trace_id"] == "msg_000003"


def test_env_variable_names_a_url_store(delta_url, tmp_path, monkeypatch):
    monkeypatch.setenv("TRACELENS_STORE", delta_url)
    src = _lines(tmp_path / "a.jsonl", range(3))
    assert CliRunner().invoke(cli, ["ingest", "--no-progress", str(src)]).exit_code == 0
    r = CliRunner().invoke(cli, ["search", "--json"])
    assert r.exit_code == 0, r.output
    assert len(json.loads(r.stdout)) == 3


def test_weekly_on_a_url_store_reports_every_kind_of_finding(tmp_path):
    """The bundled sample generator's logs, end to end, the semantic findings included (vectors and topic
    clusters are kept in the URL store: tests/test_embed_delta.py compares them with a local store's)."""
    from tracelens.samples.generator import main as generate

    logs = tmp_path / "logs"
    generate(["--out", str(logs), "--weeks", "2", "--per-day", "8"])
    url = f"file://{tmp_path}/w"
    r = CliRunner().invoke(cli, ["ingest", "--store", url, "--no-progress", str(logs)])
    assert r.exit_code == 0, r.output
    r = CliRunner().invoke(cli, ["weekly", "--store", url, "--json", "--model", "fake"])
    assert r.exit_code in (0, 1), r.output
    report = json.loads(r.stdout)
    assert not any("object-storage" in n or "embeddings" in n for n in report["notes"]), report["notes"]
    assert report["cluster_shares"], "topic clusters fitted and assigned on the URL store"
    assert report["windows"]["baseline"]["n"] > 0 and report["windows"]["current"]["n"] > 0
    kinds = {f["kind"] for f in report["findings"]}
    assert "refusal_rate" in kinds or any("refusal" in k for k in kinds), kinds


@pytest.mark.parametrize(("argv", "what"), [
    (["tui"], "replays and eval results"), (["eval", "list"], "eval suites"),
    (["canary", "list"], "eval suites"), (["collect", "--port", "0"], "spool"),
    (["models", "refresh"], "override"),
])
def test_commands_that_need_a_local_store_say_so_in_one_line(argv, what):
    # a store at a bucket URL has no local directory (a file:// URL or a path has one: those commands work there)
    r = CliRunner().invoke(cli, [*argv, "--store", "s3://no-such-bucket/x"])
    assert r.exit_code != 0
    assert what in r.stderr and "Traceback" not in r.output
    assert len(r.stderr.strip().splitlines()) == 1


# ---------------------------------------------------------------------------------------------------- bad input



def test_missing_credentials_unreachable_endpoint_missing_bucket_fail_fast(s3_env, tmp_path):
    from tests.s3server import free_port

    src = _lines(tmp_path / "a.jsonl", range(2))
    cases = {
        "no AWS credentials": {"AWS_ACCESS_KEY_ID": "", "AWS_SECRET_ACCESS_KEY": "",
                               "AWS_SHARED_CREDENTIALS_FILE": str(tmp_path / "none"),
                               "AWS_CONFIG_FILE": str(tmp_path / "none")},
        "endpoint unreachable": {"AWS_ENDPOINT_URL": f"http://127.0.0.1:{free_port()}"},
        "does not exist": {},
    }
    for expected, env in cases.items():
        bucket = "no-such-bucket" if expected == "does not exist" else s3_env.bucket()
        rc, err, took = cli_line(["ingest", "--store", f"s3://{bucket}/s", "--no-progress", str(src)], env)
        assert rc != 0 and expected in err, (expected, err)
        assert len(err.strip().splitlines()) == 1 and "Traceback" not in err
        assert took < 20


def test_read_only_bucket_is_one_line():
    from tests.s3server import S3Server

    with S3Server.denying("s3:PutObject", "readonly") as (_, env):
        rc, err, took = cli_line(["ingest", "--store", "s3://readonly/s", "--no-progress", str(REPO / "sample_logs"
                                                                                                / "anthropic_log.jsonl")],
                                  env)
        assert rc != 0 and "no write permission" in err and len(err.strip().splitlines()) == 1
        assert took < 20


def test_opening_a_missing_store_or_a_local_layout_store_by_url(tmp_path):
    with pytest.raises(StoreError, match="no tracelens store"):
        DeltaStore(f"file://{tmp_path}/nothing")
    from tracelens.store import Store

    Store(tmp_path / "old", create=True)
    with pytest.raises(StoreError, match="local-layout"):
        DeltaStore(f"file://{tmp_path}/old")


# ---------------------------------------------------------------------------------------------------- readers


def test_tables_read_by_polars_pyarrow_and_duckdb(delta_url, tmp_path):
    store = DeltaStore(delta_url, create=True)
    ingest(store, [str(_lines(tmp_path / "a.jsonl", range(7), ts=lambda i: f"2026-11-{10 + i % 3}T10:00:00Z"))])
    opts = _storage(delta_url)
    df = pl.scan_delta(store.table_url("traces"), storage_options=opts or None).collect()
    assert df.height == 7 and set(df["date"].cast(pl.String)) == {"2026-11-10", "2026-11-11", "2026-11-12"}
    from deltalake import DeltaTable

    ds = DeltaTable(store.table_url("traces"), storage_options=opts).to_pyarrow_dataset()
    assert ds.to_table(columns=["trace_id"]).num_rows == 7
    duckdb = pytest.importorskip("duckdb")
    n = duckdb.connect().execute("select count(distinct trace_id) from ds where date = '2026-11-11'").fetchone()[0]
    assert n == len([i for i in range(7) if i % 3 == 1])
    # the store's own scan: same columns and dtypes as the local store, partitions pruned
    from tracelens.store import Store

    local = Store(tmp_path / "local", create=True)
    ingest(local, [str(tmp_path / "a.jsonl")])
    assert store.scan().collect_schema() == local.scan().collect_schema()
    assert store.scan(since=dt_(2026, 11, 11), until=dt_(2026, 11, 11)).collect().height == 2
    assert store.dates() == local.dates()
    assert store.count() == 7 and sum(store.row_counts(since=dt_(2026, 11, 12)).values()) == 2
    assert store.get("msg_00000") is None and "traces match" in store.not_found("msg_00000")


def dt_(*a):
    import datetime

    return datetime.date(*a)


# ---------------------------------------------------------------------------------------------------- secrets


def test_secret_first_writer_wins(delta_url):
    a = DeltaStore(delta_url, create=True)
    b = DeltaStore(delta_url)
    assert a.secret("salt") == b.secret("salt") == DeltaStore(delta_url).secret("salt")
    assert len(a.secret("salt")) == 32 and a.secret("other") != a.secret("salt")


# ---------------------------------------------------------------------------------------------------- commits


def _trace_rows(tmp_path: Path, n: int, prefix: str = "otel:t") -> pa.Table:
    """``n`` trace rows made by the ingest pipeline, renamed to span ids ``otel:tI:sI``."""
    from tracelens.store import Store

    st = Store(tmp_path / f"rows{n}{prefix.replace(':', '')}", create=True)
    ingest(st, [str(_lines(tmp_path / f"rows{n}.jsonl", range(n)))])
    tbl = st.scan().drop("date").collect().sort("trace_id").to_arrow().cast(TRACE_SCHEMA)
    return tbl.set_column(0, "trace_id", pa.array([f"{prefix}{i}:s{i}" for i in range(n)])).cast(TRACE_SCHEMA)


def _events(keys: list[tuple[str, str]], tag: str) -> pa.Table:
    import datetime

    rows = [{"event_id": f"{tag}-{t}-{s}", "trace_id": t, "span_id": s, "name": "gen_ai.choice",
             "time_unix_nano": 1, "ordinal": 0, "attributes": "{}", "scope": None, "source_format": "otlp_logs",
             "source_file": "f", "source_locator": tag, "ingested_at": datetime.datetime.now(datetime.UTC)}
            for t, s in keys]
    return pa.Table.from_pylist(rows, schema=EVENTS_SCHEMA)


def _rejoin(rows: pa.Table, by_key: dict[str, list[dict]]) -> pa.Table:
    """A stand-in for the ingest pipeline's join: the row's hash follows the set of its events (idempotent)."""
    hashes = []
    for tid, h in zip(rows.column("trace_id").to_pylist(), rows.column("content_hash").to_pylist(), strict=True):
        base = h.split("+")[0]
        evs = sorted(e["event_id"] for e in by_key.get(tid, []))
        hashes.append(base + ("+" + ",".join(evs) if evs else ""))
    i = rows.schema.get_field_index("content_hash")
    return rows.set_column(i, "content_hash", pa.array(hashes))


def _state(store: DeltaStore) -> tuple:
    t = store.scan().select("trace_id", "content_hash").collect().sort("trace_id").rows()
    e = sorted(store.scan("otlp_events").select("event_id").collect()["event_id"].to_list())
    q = sorted(store.scan("quarantine").select("quarantine_id").collect()["quarantine_id"].to_list())
    return t, e, q


@pytest.mark.parametrize("crash_at", ["otlp_events", "traces", "quarantine", "join"])
def test_a_crash_between_the_tables_of_a_batch_is_completed_by_committing_it_again(delta_url, tmp_path, crash_at,
                                                                                   monkeypatch):
    rows = _trace_rows(tmp_path, 6)
    # a clash in the batch (quarantined), events for a batch span and for a span stored by an earlier batch
    clash = rows.slice(0, 1).set_column(rows.schema.get_field_index("content_hash"), "content_hash", pa.array(["x"])).cast(TRACE_SCHEMA)
    first, batch = rows.slice(0, 3), pa.concat_tables([rows.slice(3, 3), clash])
    events = _events([("t1", "s1"), ("t4", "s4"), ("t9", "s9")], "e")
    reference = DeltaStore(delta_url.replace("dstore", "ref"), create=True)
    reference.commit_batch(first, rejoin=_rejoin)
    ref_out = reference.commit_batch(batch, events=events, rejoin=_rejoin)
    assert (ref_out.stored, ref_out.conflicts, ref_out.events, ref_out.joined) == (3, 1, 3, 1)

    store = DeltaStore(delta_url, create=True)
    store.commit_batch(first, rejoin=_rejoin)
    real_insert, real_join = DeltaStore._merge_insert, DeltaStore._join_pass

    class Killed(Exception):
        pass

    def insert(self, table, tbl, snap=None):
        if table == crash_at:
            raise Killed
        return real_insert(self, table, tbl, snap)

    def join(self, keys, rejoin):
        if crash_at == "join":
            raise Killed
        return real_join(self, keys, rejoin)

    monkeypatch.setattr(DeltaStore, "_merge_insert", insert)
    monkeypatch.setattr(DeltaStore, "_join_pass", join)
    with pytest.raises((Killed, StoreError)):
        store.commit_batch(batch, events=events, rejoin=_rejoin)
    monkeypatch.setattr(DeltaStore, "_merge_insert", real_insert)
    monkeypatch.setattr(DeltaStore, "_join_pass", real_join)
    partial = _state(DeltaStore(delta_url))
    assert len(partial[0]) in (3, 6)  # all of the batch's traces or none of them
    store.commit_batch(batch, events=events, rejoin=_rejoin)
    assert _state(DeltaStore(delta_url))[:2] == _state(reference)[:2]
    assert len(_state(DeltaStore(delta_url))[2]) == 1  # the clash is quarantined once


def test_conflict_reason_text_matches_the_local_store(make_store, tmp_path):
    a = _lines(tmp_path / "a.jsonl", range(1), text="original")
    b = _lines(tmp_path / "b.jsonl", range(1), text="tampered")
    store = make_store()
    ingest(store, [str(a)])
    ingest(store, [str(b)])
    assert store.scan("quarantine").collect()["reason"].to_list() == [
        "duplicate trace_id msg_000000 with different content"]


def test_rewrite_partition_replaces_one_day(delta_url, tmp_path):
    store = DeltaStore(delta_url, create=True)
    ingest(store, [str(_lines(tmp_path / "a.jsonl", range(6), ts=lambda i: f"2026-11-{10 + i % 2}T10:00:00Z"))])
    n = store.rewrite_partition(dt_(2026, 11, 10), lambda df: df.with_columns(pl.lit("x").alias("app")))
    assert n == 3
    df = store.scan().collect()
    assert df.height == 6 and df.filter(pl.col("app") == "x").height == 3
    assert set(df.filter(pl.col("app") == "x")["date"].to_list()) == {dt_(2026, 11, 10)}


# ---------------------------------------------------------------------------------------------------- processes


def _ingest_proc(url: str, files: list[Path], batch: int) -> subprocess.Popen:
    code = (
        "from tracelens.storeopen import open_store; from tracelens.ingest.pipeline import ingest\n"
        f"s = open_store({url!r}, create=True)\n"
        f"r = ingest(s, {[str(f) for f in files]!r}, batch_size={batch}, enricher=False, workers=0)\n"
        "print(r.total('stored'), r.total('duplicates'))\n"
    )
    return subprocess.Popen([sys.executable, "-c", code], env={**os.environ, "PYTHONPATH": str(REPO / "src")},
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def test_two_writer_processes_with_overlapping_inputs(delta_url, tmp_path):
    a = _lines(tmp_path / "a.jsonl", range(0, 60))
    b = _lines(tmp_path / "b.jsonl", range(30, 90))
    DeltaStore(delta_url, create=True)
    procs = [_ingest_proc(delta_url, [a, b], 15), _ingest_proc(delta_url, [b, a], 15)]
    outs = []
    for p in procs:
        out, err = p.communicate(timeout=240)
        assert p.returncode == 0, err
        outs.append(tuple(int(x) for x in out.split()))
    ids = _ids(delta_url)
    assert len(ids) == 90 == len(set(ids))  # no duplicate, no lost row
    assert sum(s for s, _ in outs) == 90  # each row stored by exactly one writer
    assert sum(s + d for s, d in outs) == 240  # and every record read is counted once, as stored or duplicate
    assert DeltaStore(delta_url).count() == 90


def test_sigkilled_writer_leaves_whole_batches_and_a_reingest_completes(delta_url, tmp_path):
    src = _lines(tmp_path / "a.jsonl", range(80))
    batch = 10
    rng = random.Random(7)
    for _ in range(3):
        p = _ingest_proc(delta_url, [src], batch)
        time.sleep(rng.uniform(1.0, 3.5))  # interpreter start-up and preflight take about a second
        p.send_signal(signal.SIGKILL)
        p.wait()
        try:
            store = DeltaStore(delta_url)
        except StoreError:
            continue  # killed before the store existed
        ids = store.scan().select("trace_id").collect()["trace_id"].to_list()
        assert len(ids) == len(set(ids)) == store.count()  # the log and the data agree
        assert len(ids) % batch == 0  # whole batches only
    p = _ingest_proc(delta_url, [src], batch)
    out, err = p.communicate(timeout=240)
    assert p.returncode == 0, err
    store = DeltaStore(delta_url)
    ids = _ids(delta_url)
    assert len(ids) == 80 == len(set(ids)) == store.count()
    # files a killed writer left are in no version; vacuum deletes them (zero retention: no writer is running)
    store.vacuum(retention_hours=0)
    if delta_url.startswith("file://"):
        on_disk = {p.relative_to(Path(delta_url[7:]) / "traces").as_posix()
                   for p in (Path(delta_url[7:]) / "traces").rglob("*.parquet")}
        assert on_disk == {str(f) for f in store.row_counts()}
    assert DeltaStore(delta_url).count() == 80


# ---------------------------------------------------------------------------------------------------- migrate


def test_migrate_local_to_file_to_s3_reconciles_and_is_idempotent(s3_env, tmp_path):
    from tracelens.store import Store
    from tracelens.storemigrate import migrate

    old = Store(tmp_path / "old", create=True)
    src = _lines(tmp_path / "a.jsonl", range(25), ts=lambda i: f"2026-11-{10 + i % 4}T10:00:00Z")
    with src.open("a") as fh:
        fh.write("{not json\n")  # one quarantined record
    ingest(old, [str(src)])
    old.secret("redaction_salt")
    file_url = f"file://{tmp_path}/new"
    s3_url = f"s3://{s3_env.bucket()}/new"
    r1 = migrate(str(tmp_path / "old"), file_url, batch_rows=7)
    assert r1.reconciles and r1.secrets_copied == ["redaction_salt"]
    assert {c.table: (c.read, c.written) for c in r1.tables} == {"traces": (25, 25), "quarantine": (1, 1),
                                                                  "otlp_events": (0, 0)}
    r2 = migrate(file_url, s3_url, batch_rows=100)
    assert r2.reconciles and {c.table: c.written for c in r2.tables}["traces"] == 25
    again = migrate(file_url, s3_url)
    assert again.reconciles and {c.table: (c.written, c.already) for c in again.tables}["traces"] == (0, 25)
    dst = DeltaStore(s3_url)
    assert dst.secret("redaction_salt") == old.secret("redaction_salt")
    assert dst.scan().drop("date").collect().sort("trace_id").equals(old.scan().drop("date").collect().sort("trace_id"))
    assert dst.dates() == old.dates()
    # the CLI: a table, exit 0; the old store is still a working local store
    r = CliRunner().invoke(cli, ["store", "migrate", str(tmp_path / "old"), s3_url, "--json"])
    assert r.exit_code == 0, r.output
    assert json.loads(r.stdout)["reconciles"] is True
    assert open_store(tmp_path / "old").count() == 25


def test_migrate_into_a_directory_and_an_interrupted_run_finishes(tmp_path, monkeypatch):
    from tracelens.storemigrate import migrate

    old = Store(tmp_path / "old", create=True)
    ingest(old, [str(_lines(tmp_path / "a.jsonl", range(20), ts=lambda i: f"2026-11-{10 + i % 4}T10:00:00Z"))])
    assert migrate(str(tmp_path / "old"), str(tmp_path / "plain")).reconciles  # a directory: the default layout
    assert isinstance(open_store(tmp_path / "plain"), DeltaStore) and open_store(tmp_path / "plain").count() == 20
    url = f"file://{tmp_path}/new"
    real = DeltaStore.commit_batch
    calls = {"n": 0}

    def dies_on_the_second_batch(self, *a, **kw):
        calls["n"] += 1
        if calls["n"] == 2:
            raise KeyboardInterrupt
        return real(self, *a, **kw)

    monkeypatch.setattr(DeltaStore, "commit_batch", dies_on_the_second_batch)
    with pytest.raises(KeyboardInterrupt):
        migrate(str(tmp_path / "old"), url, batch_rows=5)
    monkeypatch.setattr(DeltaStore, "commit_batch", real)
    assert 0 < DeltaStore(url).count() < 20
    r = migrate(str(tmp_path / "old"), url, batch_rows=5)
    assert r.reconciles and DeltaStore(url).count() == 20
    assert open_store(url).count() == 20


def test_store_vacuum_and_migrate_help(tmp_path):
    url = f"file://{tmp_path}/v"
    ingest(DeltaStore(url, create=True), [str(_lines(tmp_path / "a.jsonl", range(3)))])
    r = CliRunner().invoke(cli, ["store", "vacuum", url, "--dry-run", "--json"])
    assert r.exit_code == 0, r.output
    assert set(json.loads(r.stdout)["files"]) == {"traces", "quarantine", "otlp_events"}
    r = CliRunner().invoke(cli, ["store", "vacuum", f"{tmp_path}/v", "--dry-run", "--json"])  # by its directory
    assert r.exit_code == 0 and set(json.loads(r.stdout)["files"]) == {"traces", "quarantine", "otlp_events"}
    Store(tmp_path / "old", create=True)
    r = CliRunner().invoke(cli, ["store", "vacuum", str(tmp_path / "old")])
    assert r.exit_code != 0 and "older layout" in r.stderr
    help_text = CliRunner().invoke(cli, ["store", "migrate", "--help"]).stdout
    assert "older file layout" in help_text and "run again" in help_text
