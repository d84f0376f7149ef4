"""Checking and repairing a Delta Lake store (`tracelens doctor` on the layout every new store has).

``check_delta(store, deep)`` changes nothing and returns the same ``tracelens.doctor.DoctorReport`` as the
older layout's check. It looks at every table of the store: the trace tables (``traces``, ``quarantine``,
``otlp_events``), the side tables (vectors per embedding model, topic-cluster assignments) and, where they
exist, ``replays`` and ``evals/results``. For each table:

- its log loads (kind ``log``; not repairable here: the log is the table);
- every data file the latest version lists exists (kind ``missing``), has a readable footer (kind
  ``parquet``) and, unless ``deep`` is off, reads page by page with as many rows as the log says (kind
  ``rows``);
- a keyed trace table holds each key once (kind ``duplicates``; tracelens never writes one, so this means a
  writer outside tracelens appended rows; not repaired: which copy is right is the user's call).

``repair_delta(store, deep)`` moves each damaged data file to ``corrupt/<table>/<path>`` (never deleting
one), then commits, per table, the removal of the files the latest version lists but that are gone (delta-rs'
``repair``, Delta Lake's FSCK): readers then see every other row, and the report counts what left. Each
repair is one Delta commit, so a reader sees the table before or after it, and a concurrent writer's commit
is kept (delta-rs checks the conflict). Files no version lists (a killed writer's) are harmless to readers;
``tracelens store vacuum`` deletes them.
"""

from __future__ import annotations

import datetime as dt
import re

import pyarrow as pa

from tracelens.doctor import DoctorReport, Moved, Problem, TableCount
from tracelens.storefiles import TABLES, one_line

KEYS = {"traces": "trace_id", "quarantine": "quarantine_id", "otlp_events": "event_id"}
APPEND_TABLES = ("replays", "evals/results")
_ANSI = re.compile(r"\x1b\[[0-9;]*[A-Za-z]")
DROPPED = "(dropped from the table's latest version)"


def _tables(store) -> list[tuple[str, object]]:
    out: list[tuple[str, object]] = []
    for name in TABLES:
        out.append((name, store.table(name)))
    for name in [*store.side_tables(), *APPEND_TABLES]:
        snap = store.side_table(name)
        if snap is not None:
            out.append((name, snap))
    return out


def _words(e: BaseException) -> str:
    """The error's text on one line, without the terminal colours delta-rs puts in its messages."""
    return one_line(_ANSI.sub("", str(e)).replace("\u21b3", ""), 200)


def _missing(frag) -> bool:
    from pyarrow.fs import FileType

    try:
        return frag.filesystem.get_file_info(frag.path).type == FileType.NotFound
    except FileNotFoundError:
        return True
    except Exception:
        return False


def _file_problem(frag, expected_rows: int | None, deep: bool) -> tuple[str, str] | None:
    """(kind, reason) for a data file that cannot be read as the log describes it, else None."""
    try:
        frag.ensure_complete_metadata()  # reads the footer
    except Exception as e:  # pyarrow raises ArrowInvalid / OSError for a damaged footer, and for a missing file
        if _missing(frag):
            return "missing", "listed by the table's latest version but not found"
        return "parquet", f"unreadable footer ({_words(e)})"
    if not deep:
        return None
    try:
        rows = frag.to_table().num_rows
    except Exception as e:
        return "parquet", f"unreadable pages ({_words(e)})"
    if expected_rows is not None and rows != expected_rows:
        return "rows", f"{rows} rows read, the table's log says {expected_rows}"
    return None


def check_delta(store, deep: bool = True) -> DoctorReport:
    """Everything wrong with the Delta Lake store ``store`` (see the module docstring). Changes nothing."""
    report = DoctorReport(store=str(store.root), checked_at=dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
                          deep=deep)
    from tracelens.storefiles import StoreError

    try:
        tables = _tables(store)
    except StoreError as e:
        report.problems.append(Problem(".", "log", str(e), False))
        return report
    for name, snap in tables:
        acts = pa.table(snap.get_add_actions(flatten=True))
        rows = dict(zip(acts.column("path").to_pylist(), acts.column("num_records").to_pylist(), strict=True))
        sizes = dict(zip(acts.column("path").to_pylist(), acts.column("size_bytes").to_pylist(), strict=True))
        count = TableCount()
        for frag in snap.to_pyarrow_dataset().get_fragments():
            problem = _file_problem(frag, rows.get(frag.path), deep)
            if problem is None:
                count.files += 1
                count.rows += int(rows.get(frag.path) or 0)
                count.bytes += int(sizes.get(frag.path) or 0)
            else:
                report.problems.append(Problem(f"{name}/{frag.path}", problem[0], problem[1], True))
        report.tables[name] = count
        key = KEYS.get(name)
        if key and count.files and not any(p.path.startswith(f"{name}/") for p in report.problems):
            _check_keys(store, name, key, report)
    return report


def _check_keys(store, name: str, key: str, report: DoctorReport) -> None:
    import polars as pl

    ids = pl.from_arrow(store.table(name).to_pyarrow_dataset().to_table(columns=[key])).get_column(key)
    dup = ids.len() - ids.n_unique()
    if dup:
        report.problems.append(Problem(name, "duplicates", f"{dup} row(s) repeat a {key} already in the table "
                                                           "(written by something other than tracelens)", False))


def repair_delta(store, deep: bool = True) -> DoctorReport:
    """Move damaged data files to ``corrupt/`` and commit the removal of every listed file that is gone; then
    check again. Returns the second check, with what moved."""
    before = check_delta(store, deep=deep)
    moved: list[Moved] = []
    touched: set[str] = set()
    for p in before.problems:
        if not p.repairable:
            continue
        table = _table_of(p.path, before)
        touched.add(table)
        if p.kind == "missing":
            moved.append(Moved(p.path, DROPPED, p.reason))
            continue
        dest = f"corrupt/{p.path}"
        store.objects.move(p.path, dest)
        moved.append(Moved(p.path, dest, p.reason))
    for table in sorted(touched):
        snap = store.table(table) if table in TABLES else store.side_table(table)
        if snap is not None:
            snap.repair(dry_run=False)
    after = check_delta(store, deep=deep)
    after.repaired = True
    after.moved = moved
    return after


def _table_of(path: str, report: DoctorReport) -> str:
    """The table a problem's path belongs to (the longest table name that prefixes it)."""
    names = sorted(report.tables, key=len, reverse=True)
    return next(n for n in names if path.startswith(n + "/"))
