"""Checking and repairing a store (`tracelens doctor`).

``check_store(root)`` looks at everything a tracelens command reads and
changes nothing (it does not even roll journals forward): the marker
(``STORE.json``), the lock files, every ``_txn`` entry (``read_journal``,
the same validation recovery applies), every Parquet file of ``traces/`` and
``quarantine/`` (footer, schema, key-value metadata and, unless ``deep`` is
off, every page, read exactly as a scan reads it), the Parquet files of the
later stages (``embeddings/``, ``clusters/``, ``replays/``: footer), the
model catalog override (``models.json``) and symbolic links anywhere in the
store (a store never contains any: a link could make a read or a write leave
it). It returns one ``DoctorReport``: the problems, the commits pending roll
forward, and per table the files and rows that read cleanly.

``repair_store(root)`` holds the writer lock and the apply lock (so no
commit and no scan runs meanwhile), rolls valid journals forward, and moves
every damaged file, foreign journal and link to ``corrupt/`` under its
relative path (``corrupt/traces/date=.../part-x.parquet``), never deleting
anything; the report is checked again afterwards and written as JSON to
``corrupt/doctor-<time>.json`` when anything moved. Every command reads the
store again after a repair; the rows of the moved files are gone from its
answers, which is why the report counts them. A damaged marker is reported
but not repaired: it is the one file whose content cannot be guessed.
"""

from __future__ import annotations

import datetime as dt
import os
import shutil
import stat
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path

import pyarrow.parquet as pq

from tracelens import __version__, atomic
from tracelens.schema import SCHEMA_VERSION
from tracelens.store import (
    CORRUPT_DIR,
    MARKER,
    TABLES,
    JournalError,
    Store,
    StoreError,
    corrupt_destination,
    footer_problem,
    read_journal,
    read_marker,
    read_problem,
)

# Directories of later stages whose Parquet files are checked by footer (their own modules read them).
STAGE_DIRS = ("embeddings", "clusters", "replays")
# Entries at the root that tracelens itself never makes links of; a link here could redirect reads or writes.
_LOCKS = (".lock", ".apply.lock")


@dataclass(frozen=True)
class Problem:
    """One thing that stops a command from reading the store as it should."""

    path: str  # relative to the store root
    kind: str  # marker, lock, link, journal, parquet, schema, metadata
    reason: str
    repairable: bool  # --repair can move it aside


@dataclass(frozen=True)
class Moved:
    path: str
    to: str
    reason: str


@dataclass
class TableCount:
    files: int = 0
    rows: int = 0
    bytes: int = 0


@dataclass
class DoctorReport:
    """What ``check_store`` found (and, after ``repair_store``, what it moved)."""

    store: str
    checked_at: str
    deep: bool
    tables: dict[str, TableCount] = field(default_factory=dict)  # healthy files and their rows, per table
    problems: list[Problem] = field(default_factory=list)
    pending_commits: list[str] = field(default_factory=list)  # journalled _txn entries the next open rolls forward
    abandoned: list[str] = field(default_factory=list)  # unjournalled _txn entries the next open deletes
    repaired: bool = False
    moved: list[Moved] = field(default_factory=list)
    rolled_forward: list[str] = field(default_factory=list)
    report_file: str | None = None

    @property
    def healthy(self) -> bool:
        return not self.problems

    def to_dict(self) -> dict:
        return {
            "store": self.store,
            "checked_at": self.checked_at,
            "deep": self.deep,
            "healthy": self.healthy,
            "tables": {k: asdict(v) for k, v in self.tables.items()},
            "problems": [asdict(p) for p in self.problems],
            "pending_commits": self.pending_commits,
            "abandoned": self.abandoned,
            "repaired": self.repaired,
            "moved": [asdict(m) for m in self.moved],
            "rolled_forward": self.rolled_forward,
            "report_file": self.report_file,
        }


def _rel(root: Path, p: Path) -> str:
    return p.relative_to(root).as_posix()


def _walk(base: Path) -> Iterator[tuple[Path, os.stat_result]]:
    """Every entry under ``base`` with its lstat, never following links."""
    stack = [base]
    while stack:
        d = stack.pop()
        try:
            entries = sorted(os.scandir(d), key=lambda e: e.name)
        except OSError:
            continue
        for e in entries:
            p = Path(e.path)
            st = e.stat(follow_symlinks=False)
            yield p, st
            if stat.S_ISDIR(st.st_mode):
                stack.append(p)


def _partition_table_files(root: Path, table: str) -> Iterator[Path]:
    """The files a scan of ``table`` reads (``Store.files``), without opening the store."""
    base = root / table
    if base.is_symlink() or not base.is_dir():  # a link is reported as such, not followed
        return
    for part in sorted(base.iterdir()):
        if part.is_dir() and not part.is_symlink() and part.name.startswith("date="):
            try:
                dt.date.fromisoformat(part.name[5:])
            except ValueError:
                continue
            yield from sorted(p for p in part.glob("*.parquet") if not p.name.startswith(".") and not p.is_symlink())


def _metadata_problem(path: Path, table: str) -> str | None:
    """A tracelens file that says it belongs to another table, or to a newer schema."""
    try:
        meta = pq.read_schema(path).metadata or {}
    except Exception:  # footer_problem already judged the footer
        return None
    written_for = meta.get(b"tracelens.table")
    if written_for is not None and written_for.decode("utf-8", "replace") != table:
        return f"written as a {written_for.decode('utf-8', 'replace')} file, found in {table}/"
    version = meta.get(b"tracelens.schema_version")
    if version is not None:
        try:
            newer = int(version) > SCHEMA_VERSION
        except ValueError:
            return f"tracelens.schema_version {version!r} is not a number"
        if newer:
            return f"schema version {int(version)} is newer than this tracelens ({SCHEMA_VERSION})"
    return None


def check_store(root: str | os.PathLike, deep: bool = True) -> DoctorReport:
    """Everything wrong with the store at ``root`` (see the module docstring). Changes nothing."""
    root = Path(root)
    report = DoctorReport(store=str(root), checked_at=dt.datetime.now(dt.UTC).isoformat(timespec="seconds"), deep=deep)
    add = report.problems.append
    marker = root / MARKER
    if not root.is_dir():
        add(Problem(".", "marker", f"{root} is not a directory", False))
        return report
    if marker.is_symlink():
        add(Problem(MARKER, "link", "the store marker is a symbolic link", False))
    elif not marker.exists():
        add(Problem(MARKER, "marker", "no store marker: not a tracelens store (or its marker was deleted)", False))
    else:
        try:
            info = read_marker(marker)
            if info.get("schema_version", 0) > SCHEMA_VERSION:
                add(Problem(MARKER, "marker", f"schema version {info['schema_version']} is newer than this tracelens "
                                              f"({SCHEMA_VERSION}); upgrade tracelens", False))
        except StoreError as e:
            add(Problem(MARKER, "marker", str(e), False))

    for name in _LOCKS:
        if (root / name).is_symlink():
            add(Problem(name, "lock", "a lock file is a symbolic link (locking through it could create files elsewhere)",
                        True))
    if (root / CORRUPT_DIR).is_symlink():
        add(Problem(CORRUPT_DIR, "link", f"is a symbolic link to {os.readlink(root / CORRUPT_DIR)}; remove it, --repair "
                                         "moves files there", False))

    # links anywhere inside the store: the entries themselves, not what they point to, are what --repair moves
    for base in [root / d for d in (*TABLES, "_txn", *STAGE_DIRS, "canaries")]:
        if base.is_symlink():
            add(Problem(_rel(root, base), "link", f"is a symbolic link to {os.readlink(base)}", True))
            continue
        for p, st in _walk(base):
            if stat.S_ISLNK(st.st_mode) and not _rel(root, p).startswith("_txn/"):
                add(Problem(_rel(root, p), "link", f"is a symbolic link to {os.readlink(p)}", True))

    txn = root / "_txn"
    if txn.is_dir() and not txn.is_symlink():
        for d in sorted(txn.iterdir()):
            try:
                plan = read_journal(root, d)
            except JournalError as e:
                add(Problem(_rel(root, d), "journal", f"foreign or damaged journal, never rolled forward: {e}", True))
                continue
            except OSError as e:
                add(Problem(_rel(root, d), "journal", f"cannot be read: {e}", True))
                continue
            (report.pending_commits if plan is not None else report.abandoned).append(_rel(root, d))

    for table in TABLES:
        count = report.tables.setdefault(table, TableCount())
        for f in _partition_table_files(root, table):
            problem = read_problem(f, table) if deep else footer_problem(f, table)
            kind = "parquet"
            if problem is None:
                problem, kind = _metadata_problem(f, table), "metadata"
            elif problem.startswith(("not a ", "column ")) and "Parquet" not in problem:
                kind = "schema"
            if problem is not None:
                add(Problem(_rel(root, f), kind, problem, True))
                continue
            try:
                count.rows += pq.ParquetFile(f).metadata.num_rows
                count.files += 1
                count.bytes += f.stat().st_size
            except FileNotFoundError:  # moved by a concurrent repair or rewrite since it was listed
                continue

    for stage in STAGE_DIRS:
        base = root / stage
        if not base.is_dir() or base.is_symlink():
            continue
        for p, st in _walk(base):
            if stat.S_ISREG(st.st_mode) and p.suffix == ".parquet" and not p.name.startswith("."):
                problem = footer_problem(p, stage)
                if problem is not None:
                    add(Problem(_rel(root, p), "parquet", problem, True))

    override = root / "models.json"
    if override.exists() and not override.is_symlink():
        from tracelens.modelcatalog import load_catalog

        cat = load_catalog(root, warn=lambda _msg: None)
        if cat.warnings:
            add(Problem("models.json", "metadata", cat.warnings[0], True))
    elif override.is_symlink():
        add(Problem("models.json", "link", f"is a symbolic link to {os.readlink(override)}", True))
    return report


def repair_store(root: str | os.PathLike, deep: bool = True) -> DoctorReport:
    """Move everything ``check_store`` finds repairable to ``corrupt/``, roll valid journals forward, check again.

    Needs a readable marker (StoreError otherwise: the marker is not
    repaired). Holds the writer lock and the apply lock throughout.
    """
    root = Path(root)
    store = Store(root, recover=False)  # raises StoreError for a damaged marker
    for name in _LOCKS:  # the locks themselves must be safe to take
        if (root / name).is_symlink():
            os.rename(root / name, corrupt_destination(root, name))
    moved: list[Moved] = []
    rolled: list[str] = []
    with store.lock(), store.apply_lock(shared=False):
        before = check_store(root, deep=deep)
        for p in before.problems:
            if not p.repairable:
                continue
            src = root / p.path
            if not os.path.lexists(src):
                continue
            dest = corrupt_destination(root, p.path)
            os.rename(src, dest)  # a link is moved itself, never what it points to
            moved.append(Moved(p.path, _rel(root, dest), p.reason))
        for rel in before.pending_commits:
            d = root / rel
            plan = read_journal(root, d)
            if plan is not None:
                store._apply_journal(d, plan)
                rolled.append(rel)
            shutil.rmtree(d, ignore_errors=True)
        for rel in before.abandoned:
            shutil.rmtree(root / rel, ignore_errors=True)
    after = check_store(root, deep=deep)
    after.repaired = True
    after.moved = moved
    after.rolled_forward = rolled
    if moved:
        stamp = dt.datetime.now(dt.UTC).strftime("%Y%m%dT%H%M%SZ")
        path = corrupt_destination(root, f"doctor-{stamp}.json")
        doc = {**after.to_dict(), "before": before.to_dict(), "tracelens": __version__}
        doc["report_file"] = _rel(root, path)
        atomic.write_json(path, doc)
        after.report_file = _rel(root, path)
    return after
