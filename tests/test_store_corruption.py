"""A damaged store is explained and repairable.

A corpus of damaged Parquet files, generated here from the store's own
files: empty, truncated (half, and just the footer's magic), junk, junk
between Parquet magic, another program's table, a column of a foreign type,
the other table's file, and a file whose every page is damaged behind a
valid footer. Each is put in a `traces/` partition and in `quarantine/`;
every read command must then name the file and point to `tracelens doctor`
(never a traceback), ingest must work around it, and `doctor --repair` must
move it to `corrupt/` after which every command works again with the
counts the doctor reports.
"""

from __future__ import annotations

import json
import random
from collections.abc import Callable
from pathlib import Path

import polars as pl
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from click.testing import CliRunner

from tests.conftest import anthropic_line
from tracelens.cli.main import cli
from tracelens.ingest.pipeline import ingest
from tracelens.store import MARKER, Store

N = 30  # traces over three days of ISO week 2026-W47
BAD_DAY = "date=2026-11-17"


def _good(root: Path, table: str) -> Path:
    """A file the store wrote (not one planted by these tests)."""
    return sorted(p for p in (root / table).rglob("*.parquet") if p.stem.removeprefix("part-") not in KINDS)[0]


def _damage_pages(data: bytes, path: Path) -> bytes:
    """The file with the first bytes of every data page overwritten: the footer still reads, no column does."""
    md = pq.ParquetFile(path).metadata
    buf = bytearray(data)
    for rg in range(md.num_row_groups):
        for c in range(md.num_columns):
            off = md.row_group(rg).column(c).data_page_offset
            buf[off:off + 16] = b"\xff" * 16
    return bytes(buf)


def _retyped(path: Path, table: str) -> bytes:
    col = "timestamp" if table == "traces" else "quarantined_at"
    t = pq.read_table(path)
    t = t.set_column(t.schema.get_field_index(col), col, pa.array(["yesterday"] * t.num_rows))
    sink = pa.BufferOutputStream()
    pq.write_table(t, sink)
    return sink.getvalue().to_pybytes()


def _foreign() -> bytes:
    sink = pa.BufferOutputStream()
    pq.write_table(pa.table({"user": ["a", "b"], "score": [1.0, 2.0]}), sink)
    return sink.getvalue().to_pybytes()


# kind -> builder(store root, table) -> bytes of the damaged file
KINDS: dict[str, Callable[[Path, str], bytes]] = {
    "zero-byte": lambda r, t: b"",
    "truncated-half": lambda r, t: (d := _good(r, t).read_bytes())[: len(d) // 2],
    "truncated-footer-magic": lambda r, t: _good(r, t).read_bytes()[:-2],
    "junk": lambda r, t: random.Random(7).randbytes(4096),
    "junk-between-magic": lambda r, t: b"PAR1" + random.Random(8).randbytes(4096) + b"PAR1",
    "foreign-schema": lambda r, t: _foreign(),
    "foreign-column-type": lambda r, t: _retyped(_good(r, t), t),
    "other-table": lambda r, t: _good(r, "quarantine" if t == "traces" else "traces").read_bytes(),
    "damaged-pages": lambda r, t: _damage_pages(_good(r, t).read_bytes(), _good(r, t)),
}
# A file whose footer reads is only found damaged when read; the doctor's --quick check does not read pages.
PAGE_LEVEL = {"damaged-pages"}


def _build(tmp_path: Path) -> tuple[Path, dict]:
    src = tmp_path / "log.jsonl"
    lines = [anthropic_line(i, ts=f"2026-11-{16 + i % 3}T12:00:00Z") for i in range(N)]
    src.write_text("\n".join(lines) + "\n{not json\n")  # one quarantined record, so quarantine/ has a file
    root = tmp_path / "store"
    ingest(Store(root, create=True), [str(src)], enricher=False)
    stats = json.loads(CliRunner().invoke(cli, ["stats", "--store", str(root), "--json"]).stdout)
    assert stats["traces"] == N and stats["quarantined"] == 1
    return root, stats


@pytest.fixture
def store_root(tmp_path):
    return _build(tmp_path)


def _plant(root: Path, kind: str, table: str) -> Path:
    data = KINDS[kind](root, table)
    bad = root / table / BAD_DAY / f"part-{kind}.parquet"
    bad.parent.mkdir(parents=True, exist_ok=True)
    bad.write_bytes(data)
    return bad


def _run(root: Path, *args: str):
    res = CliRunner().invoke(cli, [*args, "--store", str(root)])
    assert "Traceback" not in res.output, res.output
    assert res.exception is None or isinstance(res.exception, SystemExit), repr(res.exception)
    return res


TRACE_READERS = [
    ["stats"], ["search"], ["search", "--text", "answer", "--json"], ["show", "msg_000004"], ["enrich", "--force"],
    ["replay", "--user", "u1", "--dry-run", "--json"],
]
QUARANTINE_READERS = [["stats", "--json"], ["quarantine"], ["quarantine", "--json"]]


@pytest.mark.parametrize("table", ["traces", "quarantine"])
@pytest.mark.parametrize("kind", sorted(KINDS))
def test_every_read_command_names_the_damaged_file(store_root, kind, table):
    root, _ = store_root
    bad = _plant(root, kind, table)
    for args in TRACE_READERS if table == "traces" else QUARANTINE_READERS:
        res = _run(root, *args)
        assert res.exit_code == 1, (args, res.output)
        assert str(bad) in res.stderr, (args, res.stderr)
        assert "tracelens doctor" in res.stderr, (args, res.stderr)
    if table == "quarantine":  # commands that never read the quarantine are not stopped by it
        assert _run(root, "search", "--json").exit_code == 0


@pytest.mark.parametrize("kind", sorted(KINDS))
def test_weekly_and_drift_name_the_damaged_file(store_root, kind):
    root, _ = store_root
    bad = _plant(root, kind, "traces")
    for args in (["weekly", "--week", "2026-W47", "--no-embed", "--json"],
                 ["drift", "--baseline", "2026-W46", "--current", "2026-W47", "--no-embed", "--json"]):
        res = _run(root, *args)
        assert res.exit_code == 1 and str(bad) in res.stderr and "tracelens doctor" in res.stderr, (args, res.output)


@pytest.mark.parametrize("table", ["traces", "quarantine"])
@pytest.mark.parametrize("kind", sorted(KINDS))
def test_ingest_works_around_a_damaged_file_and_says_so(store_root, tmp_path, kind, table):
    root, _ = store_root
    bad = _plant(root, kind, table)
    more = tmp_path / "more.jsonl"
    more.write_text("\n".join(anthropic_line(i, ts="2026-11-18T13:00:00Z") for i in range(N, N + 5)) + "\n{bad\n")
    res = _run(root, "ingest", str(more), "--json")
    assert res.exit_code == 0, res.output
    assert json.loads(res.stdout)["totals"] == {"records": 6, "read": 6, "stored": 5, "duplicates": 0, "quarantined": 1,
                                                "skipped": 0, "naive_timestamps": 0, "events": 0, "joined": 0, "waiting": 0}
    assert f"warning: skipped damaged file {bad}" in res.stderr and "tracelens doctor" in res.stderr, res.stderr


def test_doctor_on_a_healthy_store(store_root):
    root, stats = store_root
    res = _run(root, "doctor", "--json")
    assert res.exit_code == 0, res.output
    rep = json.loads(res.stdout)
    assert rep["healthy"] and rep["problems"] == [] and rep["deep"]
    assert rep["tables"]["traces"]["rows"] == N and rep["tables"]["quarantine"]["rows"] == 1
    res = _run(root, "doctor")
    assert res.exit_code == 0 and "healthy" in res.stdout
    assert _run(root, "doctor", "--repair").exit_code == 0
    assert not (root / "corrupt").exists()  # nothing to move, no report


def test_doctor_finds_everything_and_repair_makes_every_command_work_again(store_root, tmp_path):
    root, stats = store_root
    planted = {}
    for table in ("traces", "quarantine"):
        for kind in KINDS:
            planted[_plant(root, kind, table).relative_to(root).as_posix()] = kind
    (root / "embeddings" / "m").mkdir(parents=True)
    (root / "embeddings" / "m" / "part-x.parquet").write_bytes(b"junk")
    planted["embeddings/m/part-x.parquet"] = "stage"
    (root / "models.json").write_text("{not json")
    planted["models.json"] = "override"
    txn = root / "_txn" / "20261118T000000-0123456789ab"
    txn.mkdir(parents=True)
    (txn / "journal.json").write_text(json.dumps({"puts": [], "deletes": ["../outside.txt"]}))
    planted["_txn/20261118T000000-0123456789ab"] = "journal"
    (root / "traces" / "date=2026-11-19").symlink_to(tmp_path, target_is_directory=True)
    planted["traces/date=2026-11-19"] = "link"

    res = _run(root, "doctor", "--json")
    assert res.exit_code == 1
    rep = json.loads(res.stdout)
    found = {p["path"]: p for p in rep["problems"]}
    assert set(found) == set(planted), set(found) ^ set(planted)
    assert all(p["repairable"] for p in rep["problems"])
    assert {found[p]["kind"] for p, k in planted.items() if k in ("foreign-schema", "other-table")} == {"schema"}
    assert found["_txn/20261118T000000-0123456789ab"]["kind"] == "journal"
    assert rep["tables"]["traces"] == {"files": 3, "rows": N, "bytes": rep["tables"]["traces"]["bytes"]}

    quick = json.loads(_run(root, "doctor", "--quick", "--json").stdout)
    assert {p["path"] for p in quick["problems"]} == {p for p, k in planted.items() if k not in PAGE_LEVEL}

    human = _run(root, "doctor")
    assert human.exit_code == 1 and "doctor --repair" in human.stderr
    assert all(p in human.stdout for p in planted)

    res = _run(root, "doctor", "--repair", "--json")
    assert res.exit_code == 0, res.output
    rep = json.loads(res.stdout)
    assert rep["healthy"] and rep["repaired"]
    assert {m["path"] for m in rep["moved"]} == set(planted)
    for m in rep["moved"]:  # same relative path under corrupt/, nothing deleted
        assert m["to"] == f"corrupt/{m['path']}"
        assert (root / m["to"]).exists() or (root / m["to"]).is_symlink()
    assert tmp_path.exists()  # the link was moved, not what it pointed to
    saved = json.loads((root / rep["report_file"]).read_text())
    assert saved["report_file"].startswith("corrupt/doctor-") and len(saved["before"]["problems"]) == len(planted)

    # every command works again, and answers with exactly the rows the doctor counted
    assert rep["tables"]["traces"]["rows"] == N and rep["tables"]["quarantine"]["rows"] == 1
    after = json.loads(_run(root, "stats", "--json").stdout)
    assert (after["traces"], after["quarantined"]) == (N, 1) == (stats["traces"], stats["quarantined"])
    for args in (*TRACE_READERS, *QUARANTINE_READERS, ["weekly", "--week", "2026-W47", "--no-embed", "--json"]):
        res = _run(root, *args)
        # the fixture has no week before 2026-W47: weekly runs and says "no data" (exit 4), not a failure
        assert res.exit_code == (4 if args[0] == "weekly" else 0), (args, res.output)
        assert "damaged" not in res.stderr and "warning" not in res.stderr, (args, res.stderr)
    assert _run(root, "doctor").exit_code == 0


@pytest.mark.parametrize("marker", [b"{not json", b"[1, 2]", b'{"schema_version": "one"}', b"\xff\xfe", b""])
def test_a_damaged_marker_is_a_clear_error(store_root, marker):
    root, _ = store_root
    (root / MARKER).write_bytes(marker)
    for args in (["stats"], ["search"], ["ingest", "nothing.jsonl"]):
        res = _run(root, *args)
        assert res.exit_code == 1 and MARKER in res.output, (args, res.output)
    res = _run(root, "doctor", "--json")
    assert res.exit_code == 1
    problems = json.loads(res.stdout)["problems"]
    assert problems[0]["kind"] == "marker" and not problems[0]["repairable"]
    res = _run(root, "doctor", "--repair")
    assert res.exit_code == 1 and MARKER in res.output


def test_files_from_an_older_writer_are_not_damaged(store_root):
    """A partition file lacking columns added since reads (null-filled), and the doctor agrees."""
    root, _ = store_root
    part = _good(root, "traces")
    old = pq.read_table(part).drop_columns(["service_tier", "refusal_score"]).slice(0, 2)
    old = old.set_column(old.schema.get_field_index("trace_id"), "trace_id", pa.array(["old-1", "old-2"]))
    pq.write_table(old, part.with_name("older-writer.parquet"))
    assert json.loads(_run(root, "doctor", "--json").stdout)["healthy"]
    df = Store(root).scan().filter(pl.col("trace_id").str.starts_with("old-")).collect()
    assert df["service_tier"].to_list() == [None, None]
