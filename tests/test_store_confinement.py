"""The store is confined to its directory: hostile `_txn` journals and links are set aside, never executed.

Each case builds, in a real store, what a dead writer never leaves: journals
with absolute or `..` paths, paths outside the places a commit writes, links
that would carry a rename or a delete out of the store, unparsable or
wrongly typed JSON. A read-only `tracelens stats` then opens the store (which
rolls `_txn` forward): nothing outside the store may change, the store's own
data and marker must be intact, and the entry must be set aside under
`corrupt/_txn/` with a warning naming it.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from click.testing import CliRunner

from tests.conftest import anthropic_line
from tracelens.cli.main import cli
from tracelens.ingest.pipeline import ingest
from tracelens.store import MARKER, Store

N = 20


@pytest.fixture
def world(tmp_path):
    """A store with N traces over two days, and an 'outside' tree a hostile journal would like to touch."""
    src = tmp_path / "log.jsonl"
    src.write_text("\n".join(anthropic_line(i, ts=f"2026-11-{18 + i % 2}T12:00:00Z") for i in range(N)) + "\n")
    root = tmp_path / "store"
    ingest(Store(root, create=True), [str(src)], enricher=False)
    outside = tmp_path / "outside"
    (outside / "files").mkdir(parents=True)
    (outside / "part").mkdir()
    victim = Store(root).files()[0]
    (outside / "victim.parquet").write_bytes(victim.read_bytes())  # a valid trace file: rolling it in would count
    (outside / "victim.txt").write_text("keep me")
    (outside / "files" / "00000.parquet").write_bytes(victim.read_bytes())
    (outside / "part" / "victim.parquet").write_bytes(victim.read_bytes())
    return root, outside


def _tree(base: Path) -> dict[str, object]:
    """Every entry under ``base``: file bytes, link targets, directories (the thing that must not change)."""
    out: dict[str, object] = {}
    for dirpath, dirnames, filenames in os.walk(base):
        for name in dirnames + filenames:
            p = Path(dirpath) / name
            rel = p.relative_to(base).as_posix()
            out[rel] = ("link", os.readlink(p)) if p.is_symlink() else ("dir",) if p.is_dir() else p.read_bytes()
    return out


def _txn(root: Path, name: str = "20261118T120000-deadbeef0001", staged: bool = True) -> Path:
    data = (root.parent / "outside" / "victim.parquet").read_bytes()  # a copy of one of the store's files
    d = root / "_txn" / name
    (d / "files").mkdir(parents=True)
    if staged:  # a complete staged file, as a real commit leaves it
        (d / "files" / "00000.parquet").write_bytes(data)
    return d


def _journal(root: Path, doc, name: str = "20261118T120000-deadbeef0001", staged: bool = True) -> Path:
    d = _txn(root, name, staged)
    (d / "journal.json").write_bytes(doc if isinstance(doc, bytes) else json.dumps(doc).encode())
    return d


def _put(dest: str, staged: str = "files/00000.parquet") -> dict:
    return {"puts": [[staged, dest]], "deletes": []}


def _delete(*dests: str) -> dict:
    return {"puts": [], "deletes": list(dests)}


DAY = "traces/date=2026-11-18"


def _cases() -> dict[str, Callable[[Path, Path], Path]]:
    """name -> builder(root, outside) returning the _txn entry that must be set aside."""
    c: dict[str, Callable[[Path, Path], Path]] = {
        # destinations outside the store
        "put-absolute": lambda r, o: _journal(r, _put(str(o / "victim.parquet"))),
        "put-dotdot": lambda r, o: _journal(r, _put("../outside/victim.parquet")),
        "put-dotdot-inside-a-place": lambda r, o: _journal(r, _put(f"{DAY}/../../../outside/victim.parquet")),
        "put-backslash": lambda r, o: _journal(r, _put("..\\outside\\victim.parquet")),
        "put-nul": lambda r, o: _journal(r, _put(f"{DAY}/x\x00.parquet")),
        "delete-absolute": lambda r, o: _journal(r, _delete(str(o / "victim.parquet"))),
        "delete-dotdot": lambda r, o: _journal(r, _delete("../outside/victim.txt")),
        "delete-dot-component": lambda r, o: _journal(r, _delete(f"{DAY}/./x.parquet")),
        # inside the store, but not where a commit writes
        "put-over-marker": lambda r, o: _journal(r, _put(MARKER)),
        "delete-marker": lambda r, o: _journal(r, _delete(MARKER)),
        "delete-lock": lambda r, o: _journal(r, _delete(".lock")),
        "put-outside-partitions": lambda r, o: _journal(r, _put("traces/x.parquet")),
        "delete-a-partition-dir": lambda r, o: _journal(r, _delete(DAY)),
        # staged files that are not the entry's own
        "staged-absolute": lambda r, o: _journal(r, _put(f"{DAY}/part-x.parquet", str(o / "victim.parquet"))),
        "staged-dotdot": lambda r, o: _journal(r, _put(f"{DAY}/part-x.parquet", "../../../outside/victim.parquet")),
        "staged-other-name": lambda r, o: _journal(r, _put(f"{DAY}/part-x.parquet", "files/evil.parquet")),
        # unparsable or wrongly typed journals
        "junk-json": lambda r, o: _journal(r, b"{not json"),
        "empty-journal": lambda r, o: _journal(r, b""),
        "binary-journal": lambda r, o: _journal(r, b"\xff\xfe\x00\x01garbage"),
        "deeply-nested-json": lambda r, o: _journal(r, b"[" * 100_000 + b"]" * 100_000),
        "journal-is-a-list": lambda r, o: _journal(r, []),
        "journal-is-null": lambda r, o: _journal(r, None),
        "puts-is-an-object": lambda r, o: _journal(r, {"puts": {}, "deletes": []}),
        "puts-is-a-string": lambda r, o: _journal(r, {"puts": "files", "deletes": []}),
        "put-is-one-path": lambda r, o: _journal(r, {"puts": [["files/00000.parquet"]], "deletes": []}),
        "put-has-three-paths": lambda r, o: _journal(r, {"puts": [["files/00000.parquet", f"{DAY}/a.parquet", "x"]],
                                                         "deletes": []}),
        "put-of-numbers": lambda r, o: _journal(r, {"puts": [[1, 2]], "deletes": []}),
        "deletes-is-a-string": lambda r, o: _journal(r, {"puts": [], "deletes": DAY}),
        "delete-of-null": lambda r, o: _journal(r, {"puts": [], "deletes": [None]}),
        "extra-key": lambda r, o: _journal(r, {"puts": [], "deletes": [], "run": "rm -rf /"}),
        "missing-deletes": lambda r, o: _journal(r, {"puts": []}),
    }

    def staged_link(r: Path, o: Path) -> Path:
        d = _journal(r, _put(f"{DAY}/part-x.parquet"), staged=False)
        (d / "files" / "00000.parquet").symlink_to(o / "victim.parquet")
        return d

    def files_dir_link(r: Path, o: Path) -> Path:
        d = _journal(r, _put(f"{DAY}/part-x.parquet"), staged=False)
        (d / "files").rmdir()
        (d / "files").symlink_to(o / "files", target_is_directory=True)
        return d

    def entry_link(r: Path, o: Path) -> Path:
        # a journal outside the store, reached through a link: rolling it forward would move the outside file in,
        # and removing the entry afterwards would delete the outside directory's contents
        evil = o / "evil_txn"
        (evil / "files").mkdir(parents=True)
        (evil / "files" / "00000.parquet").write_bytes((o / "victim.parquet").read_bytes())
        (evil / "journal.json").write_text(json.dumps(_put(f"{DAY}/part-evil.parquet")))
        (r / "_txn").mkdir(exist_ok=True)
        link = r / "_txn" / "20261118T120000-deadbeef0001"
        link.symlink_to(evil, target_is_directory=True)
        return link

    def txn_root_link(r: Path, o: Path) -> Path:
        evil = o / "txnroot" / "20261118T120000-deadbeef0001"
        (evil / "files").mkdir(parents=True)
        (evil / "files" / "00000.parquet").write_bytes((o / "victim.parquet").read_bytes())
        (evil / "journal.json").write_text(json.dumps(_put(f"{DAY}/part-evil.parquet")))
        if (r / "_txn").exists():
            (r / "_txn").rmdir()  # (empty after the ingest that built the store)
        (r / "_txn").symlink_to(o / "txnroot", target_is_directory=True)
        return r / "_txn"

    def journal_link(r: Path, o: Path) -> Path:
        (o / "journal.json").write_text(json.dumps(_delete(f"{DAY}/" + sorted((r / DAY).glob("*.parquet"))[0].name)))
        d = _txn(r)
        (d / "journal.json").symlink_to(o / "journal.json")
        return d

    def partition_link_put(r: Path, o: Path) -> Path:
        # a valid-looking put into a partition directory that is really a link out of the store
        (r / "traces" / "date=2026-11-20").symlink_to(o / "files", target_is_directory=True)
        return _journal(r, _put("traces/date=2026-11-20/part-x.parquet"))

    def partition_link_delete(r: Path, o: Path) -> Path:
        (r / "traces" / "date=2026-11-21").symlink_to(o / "part", target_is_directory=True)
        return _journal(r, _delete("traces/date=2026-11-21/victim.parquet"))

    def entry_is_a_file(r: Path, o: Path) -> Path:
        (r / "_txn").mkdir(exist_ok=True)
        p = r / "_txn" / "stray"
        p.write_text("not a transaction")
        return p

    c.update({
        "staged-file-is-a-link": staged_link, "files-dir-is-a-link": files_dir_link, "txn-entry-is-a-link": entry_link,
        "txn-dir-is-a-link": txn_root_link, "journal-is-a-link": journal_link,
        "put-through-partition-link": partition_link_put, "delete-through-partition-link": partition_link_delete,
        "txn-entry-is-a-file": entry_is_a_file,
    })
    return c


CASES = _cases()
LINKED_PARTITION = {"put-through-partition-link", "delete-through-partition-link"}


@pytest.mark.parametrize("case", sorted(CASES))
def test_hostile_txn_entry_is_set_aside_not_executed(world, case):
    root, outside = world
    entry = CASES[case](root, outside)
    rel = entry.relative_to(root).as_posix()
    before_outside = _tree(outside)
    marker = (root / MARKER).read_bytes()
    files_before = sorted(p.name for p in (root / "traces").rglob("*.parquet") if not p.parent.is_symlink())

    res = CliRunner().invoke(cli, ["stats", "--store", str(root), "--json"])

    assert "Traceback" not in res.output and not isinstance(res.exception, Exception), res.output
    assert _tree(outside) == before_outside, "something outside the store changed"
    assert (root / MARKER).read_bytes() == marker
    assert sorted(p.name for p in (root / "traces").rglob("*.parquet") if not p.parent.is_symlink()) == files_before
    assert f"warning: store {root}: did not roll forward {rel}" in res.stderr, res.stderr
    assert "See `tracelens doctor`" in res.stderr
    assert not os.path.lexists(entry), "the hostile entry is still where recovery would look again"
    assert os.path.lexists(root / "corrupt" / rel), "set aside under corrupt/ with its relative path"
    if case in LINKED_PARTITION:
        # the link itself is then reported by every read (and moved aside by doctor --repair), never followed
        assert res.exit_code == 1 and "symbolic link" in res.stderr and "tracelens doctor" in res.stderr
    else:
        assert res.exit_code == 0, res.output
        assert json.loads(res.stdout)["traces"] == N
    # and the store keeps working: a later writer commits normally
    more = root.parent / "more.jsonl"
    more.write_text(anthropic_line(999, ts="2026-11-18T13:00:00Z") + "\n")
    if case not in LINKED_PARTITION:
        assert ingest(Store(root), [str(more)], enricher=False).files[0].stored == 1
        assert Store(root).count() == N + 1


def test_a_dead_writers_journal_is_still_rolled_forward(world):
    """The validation refuses only what tracelens never writes: a genuine crashed commit completes."""
    root, outside = world
    t = pq.read_table(Store(root).files()[0])
    staged = root / "_txn" / "20261118T120000-feedface0001" / "files"
    staged.mkdir(parents=True)
    new = t.set_column(t.schema.get_field_index("trace_id"), "trace_id", pa.array([f"new-{i}" for i in range(t.num_rows)]))
    pq.write_table(new, staged / "00000.parquet")
    (staged.parent / "journal.json").write_text(json.dumps(_put("traces/date=2026-11-22/part-x.parquet")))
    res = CliRunner().invoke(cli, ["stats", "--store", str(root), "--json"])
    assert res.exit_code == 0 and "warning" not in res.stderr, res.output
    assert json.loads(res.stdout)["traces"] == N + new.num_rows
    assert not any((root / "_txn").iterdir())


@pytest.mark.parametrize("lock", [".lock", ".apply.lock"])
def test_lock_files_are_never_followed(world, lock):
    root, outside = world
    target = outside / "created-through-a-link"
    (root / lock).unlink(missing_ok=True)
    (root / lock).symlink_to(target)
    src = root.parent / "more.jsonl"
    src.write_text(anthropic_line(500) + "\n")
    # writers take both locks, readers only the apply lock
    refused = (["ingest", str(src)], ["stats"], ["search"]) if lock == ".apply.lock" else (["ingest", str(src)],)
    for args in (["ingest", str(src)], ["stats"], ["search"]):
        res = CliRunner().invoke(cli, [*args, "--store", str(root)])
        assert "Traceback" not in res.output and not isinstance(res.exception, Exception), res.output
        if args in refused:
            assert res.exit_code == 1 and "symbolic link" in res.output, res.output
        else:
            assert res.exit_code == 0, res.output
    assert not target.exists()
    res = CliRunner().invoke(cli, ["doctor", "--store", str(root), "--json"])
    assert res.exit_code == 1 and json.loads(res.stdout)["problems"][0]["kind"] == "lock"
    res = CliRunner().invoke(cli, ["doctor", "--repair", "--store", str(root), "--json"])
    assert res.exit_code == 0, res.output
    assert not target.exists() and (root / "corrupt" / lock).is_symlink()
    assert CliRunner().invoke(cli, ["stats", "--store", str(root)]).exit_code == 0


def test_a_live_commit_refuses_what_recovery_would_refuse(world):
    from tracelens.store import JournalError

    root, outside = world
    store = Store(root)
    for bad in ("../outside/x.parquet", "/tmp/x.parquet", MARKER, "traces/x.parquet"):
        with pytest.raises(JournalError), store.transaction() as txn:
            txn.delete(bad)
    (root / "traces" / "date=2026-11-23").symlink_to(outside / "part", target_is_directory=True)
    with pytest.raises(JournalError), store.transaction() as txn:
        txn.stage(pq.read_table(store.files()[0]), "traces/date=2026-11-23/part-x.parquet", "traces")
    assert _tree(outside)["part/victim.parquet"] == (outside / "part" / "victim.parquet").read_bytes()
    assert sorted(os.listdir(outside / "part")) == ["victim.parquet"]
    assert not any((root / "_txn").iterdir())  # nothing left staged
