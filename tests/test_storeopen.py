"""The default store layout (Delta Lake in a local directory), the older layout still opened with a one-line
hint, and the files beside the tables of a local Delta store (replays, eval results, doctor)."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap

import polars as pl
import pyarrow as pa
import pytest
from click.testing import CliRunner

from tests.conftest import anthropic_line
from tracelens.appendtables import append, read
from tracelens.cli.main import cli
from tracelens.deltastore import DeltaStore
from tracelens.store import Store
from tracelens.storefiles import StoreError
from tracelens.storeobjects import LocalObjects
from tracelens.storeopen import DELTA, FILES, open_store, store_format


def test_a_new_local_store_is_delta_lake_and_reads_like_any_delta_table(tmp_path, anthropic_file):
    path = tmp_path / "store"
    r = CliRunner().invoke(cli, ["ingest", "--store", str(path), str(anthropic_file())])
    assert r.exit_code == 0, r.output
    assert store_format(path) == DELTA and json.loads((path / "STORE.json").read_text())["format"] == "delta"
    store = open_store(path)
    assert isinstance(store, DeltaStore) and store.local_root == path and store.root == path
    n = store.count()
    assert n > 0
    # any Delta reader sees the rows, without tracelens
    assert pl.scan_delta(str(path / "traces")).select(pl.len()).collect().item() == n
    assert "note:" not in r.stderr  # no hint for the current layout


def test_the_older_layout_is_still_read_and_written_with_a_one_line_hint(tmp_path, anthropic_file):
    path = tmp_path / "old"
    Store(path, create=True)
    assert store_format(path) == FILES
    r = CliRunner().invoke(cli, ["ingest", "--store", str(path), str(anthropic_file())])
    assert r.exit_code == 0, r.output
    hints = [line for line in r.stderr.splitlines() if "older file layout" in line]
    assert len(hints) == 1 and f"tracelens store migrate {path} NEW_DIR" in hints[0]
    assert isinstance(open_store(path), Store) and Store(path).count() > 0
    r = CliRunner().invoke(cli, ["stats", "--store", str(path), "--json"])
    assert r.exit_code == 0 and json.loads(r.stdout)["traces"] == Store(path).count()
    assert sum("older file layout" in line for line in r.stderr.splitlines()) == 1


def test_the_file_layout_class_refuses_a_delta_store_instead_of_reading_it_as_empty(tmp_path):
    open_store(tmp_path / "s", create=True)
    with pytest.raises(StoreError, match="Delta Lake store"):
        Store(tmp_path / "s")
    with pytest.raises(StoreError, match="no tracelens store"):
        open_store(tmp_path / "none")
    (tmp_path / "junk").mkdir()
    (tmp_path / "junk" / "x").write_text("x")
    with pytest.raises(StoreError, match="not a tracelens store"):
        open_store(tmp_path / "junk", create=True)


def test_local_objects_first_writer_wins_and_puts_are_whole(tmp_path):
    objs = LocalObjects(tmp_path)
    assert objs.get("a/b") is None
    assert objs.put_if_absent("a/b", b"one") is True
    assert objs.put_if_absent("a/b", b"two") is False and objs.get("a/b") == b"one"
    objs.put("a/b", b"three")
    assert objs.get("a/b") == b"three"
    assert objs.list_dirs("") == ["a"] and not list(tmp_path.glob("a/.*"))  # no temporary files left
    objs.move("a/b", "c/d")
    assert objs.get("a/b") is None and objs.get("c/d") == b"three"
    with pytest.raises(StoreError):
        objs.get("../x")


def test_concurrent_secret_creation_agrees_on_one_value(tmp_path):
    open_store(tmp_path / "s", create=True)
    code = textwrap.dedent("""
        import sys
        from tracelens.storeopen import open_store
        print(open_store(sys.argv[1], write=True).secret("salt").hex())
    """)
    procs = [subprocess.Popen([sys.executable, "-c", code, str(tmp_path / "s")], stdout=subprocess.PIPE, text=True)
             for _ in range(4)]
    values = {p.communicate(timeout=120)[0].strip() for p in procs}
    assert len(values) == 1 and len(values.pop()) == 64


ROWS = pa.schema([("id", pa.string()), ("at", pa.timestamp("us", tz="UTC")), ("v", pa.int64())])


def _rows(ids, day="2026-11-18T10:00:00+00:00"):
    import datetime as dt

    at = dt.datetime.fromisoformat(day)
    return pa.Table.from_pylist([{"id": i, "at": at, "v": n} for n, i in enumerate(ids)], schema=ROWS)


@pytest.mark.parametrize("layout", ["delta", "files"])
def test_append_tables_follow_the_store_layout(tmp_path, layout):
    root = tmp_path / "s"
    if layout == "delta":
        open_store(root, create=True)
    else:
        Store(root, create=True)
    assert read(root, "evals/results") is None
    written = append(root, "evals/results", _rows(["a", "b"]), "at")
    append(root, "evals/results", _rows(["c"], "2026-11-19T23:59:00+00:00"), "at")
    t = read(root, "evals/results")
    assert sorted(t.column("id").to_pylist()) == ["a", "b", "c"] and "date" not in t.column_names
    if layout == "delta":
        assert written == [root / "evals" / "results"] and (root / "evals" / "results" / "_delta_log").is_dir()
        assert sorted(p.name for p in (root / "evals" / "results").glob("date=*")) == ["date=2026-11-18",
                                                                                         "date=2026-11-19"]
    else:
        assert all(p.suffix == ".parquet" for p in written)


def test_two_processes_appending_to_a_delta_append_table_both_land(tmp_path):
    root = tmp_path / "s"
    open_store(root, create=True)
    code = textwrap.dedent("""
        import sys, datetime as dt, pyarrow as pa
        from tracelens.appendtables import append
        schema = pa.schema([("id", pa.string()), ("at", pa.timestamp("us", tz="UTC"))])
        at = dt.datetime(2026, 11, 18, tzinfo=dt.UTC)
        for i in range(5):
            append(sys.argv[1], "replays", pa.Table.from_pylist([{"id": f"{sys.argv[2]}-{i}", "at": at}], schema=schema), "at")
    """)
    procs = [subprocess.Popen([sys.executable, "-c", code, str(root), w]) for w in ("a", "b")]
    assert [p.wait(timeout=180) for p in procs] == [0, 0]
    ids = sorted(read(root, "replays").column("id").to_pylist())
    assert ids == sorted(f"{w}-{i}" for w in "ab" for i in range(5))


def test_doctor_finds_and_repairs_damaged_and_missing_files_of_a_delta_store(tmp_path):
    path = tmp_path / "store"
    log = tmp_path / "log.jsonl"  # three days: three data files
    log.write_text("".join(anthropic_line(i, ts=f"2026-11-{18 + i % 3}T15:00:00Z") + "\n" for i in range(30)))
    assert CliRunner().invoke(cli, ["ingest", "--store", str(path), str(log)]).exit_code == 0
    run = lambda *a: CliRunner().invoke(cli, ["doctor", "--store", str(path), "--json", *a])  # noqa: E731
    r = run()
    assert r.exit_code == 0, r.output
    healthy = json.loads(r.stdout)
    total = healthy["tables"]["traces"]["rows"]
    assert healthy["healthy"] and total == open_store(path).count()
    files = sorted((path / "traces").glob("date=*/*.parquet"))
    assert len(files) == 3
    damaged, gone = files[0], files[1]
    damaged.write_bytes(damaged.read_bytes()[:64])
    gone.unlink()
    r = run()
    report = json.loads(r.stdout)
    rel = lambda f: "traces/" + f.relative_to(path / "traces").as_posix()  # noqa: E731
    assert r.exit_code == 1
    assert sorted((p["kind"], p["path"]) for p in report["problems"]) == [("missing", rel(gone)),
                                                                           ("parquet", rel(damaged))]
    assert report["tables"]["traces"] == {"files": 1, "rows": 10, "bytes": files[2].stat().st_size}
    r = run("--repair")
    after = json.loads(r.stdout)
    assert r.exit_code == 0 and after["healthy"] and after["repaired"] and len(after["moved"]) == 2
    assert (path / "corrupt" / rel(damaged)).exists() and not damaged.exists()
    left = open_store(path).count()
    assert left == after["tables"]["traces"]["rows"] == 10 < total
    assert open_store(path).scan().select(pl.len()).collect().item() == left  # every command reads the rest


def test_doctor_checks_a_store_at_a_bucket_url(s3_env, tmp_path, anthropic_file):
    url = f"s3://{s3_env.bucket()}/doc"
    assert CliRunner().invoke(cli, ["ingest", "--store", url, str(anthropic_file())]).exit_code == 0
    r = CliRunner().invoke(cli, ["doctor", "--store", url, "--json"])
    report = json.loads(r.stdout)
    assert r.exit_code == 0 and report["healthy"] and report["tables"]["traces"]["rows"] == 10, r.output
