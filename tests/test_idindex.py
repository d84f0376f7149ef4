"""The trace-id index: the partitions holding an id or a prefix, kept in step with commits, and lookups through
it answering exactly what a scan answers."""

from __future__ import annotations

import datetime as dt

import polars as pl
import pytest

from tests.test_tui_data import NOW, build_tui_store, line
from tracelens.idindex import TraceIdIndex
from tracelens.query import FindQuery, find_results
from tracelens.store import CorruptStoreError


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    return build_tui_store(tmp_path_factory.mktemp("ids"), files_layout=True)


def stored(store) -> pl.DataFrame:
    return store.scan().select("trace_id", "date").collect()


def test_days_of_every_id_and_prefix(store):
    ix = TraceIdIndex(store)
    assert ix.days("msg_complaint") is None  # not built: the caller scans
    ix.refresh()
    rows = stored(store)
    assert len(ix) == rows.height
    for tid, day in rows.head(40).iter_rows():
        assert ix.days(tid) == [day]
    day_of = dict(rows.iter_rows())
    assert ix.days("msg_0000", prefix=True) == sorted({d for t, d in day_of.items() if t.startswith("msg_0000")})
    assert ix.days("msg_complain") == []  # exact only, unless asked for a prefix
    assert ix.days("msg_complain", prefix=True) == [day_of["msg_complaint"]]
    assert ix.days("no-such-trace") == [] and ix.days("no-such", prefix=True) == []


def test_a_later_commit_is_found_and_a_deleted_file_forgotten(tmp_path):
    from tracelens.ingest.pipeline import ingest

    store = build_tui_store(tmp_path, files_layout=True)
    ix = TraceIdIndex(store)
    ix.refresh()
    late = tmp_path / "late.jsonl"
    late.write_text(line(990, dt.datetime(2026, 11, 22, 8, 30, tzinfo=dt.UTC), user="77", prompt="hello again",
                         response="hi", msg_id="msg_late_commit") + "\n", encoding="utf-8")
    assert ingest(store, [str(late)]).total("stored") == 1
    assert ix.days("msg_late_commit") == [dt.date(2026, 11, 22)]  # refreshed by the lookup itself
    for f in store.files("traces", dt.date(2026, 11, 22), dt.date(2026, 11, 22)):
        f.unlink()  # what a rewrite does to the file it replaces
    assert ix.days("msg_late_commit") == []


@pytest.mark.parametrize("q", [
    FindQuery(trace_id="msg_complaint"),
    FindQuery(trace_id="msg_0000"),  # a prefix: many traces over several days
    FindQuery(trace_id="msg_complain"),  # no exact match: read as a prefix
    FindQuery(trace_id="msg_nothing"),
    FindQuery(trace_id="msg_complaint", time="2026-W46"),  # its day is outside the window
    FindQuery(trace_id="msg_0000", user="4411"),
    FindQuery(trace_id="msg_0000", newest_first=False),
])
def test_lookup_through_the_index_answers_what_a_scan_answers(store, q):
    ix = TraceIdIndex(store)
    ix.refresh()
    plain, _ = find_results(store, q, now=NOW)
    indexed, _ = find_results(store, q, now=NOW, ids=ix)
    assert indexed.total == plain.total
    assert indexed.page(0, 500).to_dicts() == plain.page(0, 500).to_dicts()
    assert indexed.page(3, 5).to_dicts() == plain.page(3, 5).to_dicts()


def test_a_damaged_file_leaves_the_lookup_to_the_scan(tmp_path):
    store = build_tui_store(tmp_path, files_layout=True)
    ix = TraceIdIndex(store)
    ix.refresh()
    assert ix.ready
    bad = store.root / "traces" / "date=2026-11-01" / "part-damaged.parquet"
    bad.parent.mkdir(parents=True, exist_ok=True)
    bad.write_bytes(b"PAR1 not really parquet")
    assert ix.days("msg_complaint") is None
    with pytest.raises(CorruptStoreError):  # the scan names the file, as without an index
        find_results(store, FindQuery(trace_id="msg_complaint"), now=NOW, ids=ix)
    assert ix.days("no-such-trace") is None  # not "no such trace": the damaged file might hold it
    bad.unlink()  # set aside (tracelens doctor --repair): the index answers again
    assert ix.days("msg_complaint") == [stored(store).filter(pl.col("trace_id") == "msg_complaint")["date"][0]]


def test_a_linked_file_is_not_answered_for(tmp_path):
    store = build_tui_store(tmp_path / "a", files_layout=True)
    other = build_tui_store(tmp_path / "b", files_layout=True)
    ix = TraceIdIndex(store)
    ix.refresh()
    src = other.files("traces")[0]
    link = store.root / "traces" / src.parent.name / "part-linked.parquet"
    link.parent.mkdir(parents=True, exist_ok=True)
    link.symlink_to(src)
    assert ix.days("msg_complaint") is None  # the scan reports the link; the index does not vouch for it
