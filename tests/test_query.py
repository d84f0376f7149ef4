"""Search and result pages (``tracelens.query``): the find screen's filters, paging and the one trace JSON form."""

from __future__ import annotations

import datetime as dt
import json
import math

import polars as pl
import pytest

from tests.test_tui_data import NOW, build_tui_store
from tracelens.query import (
    FindQuery,
    ResultSet,
    SearchFilters,
    build_filters,
    find_results,
    trace_json,
    trace_jsonable,
)

UTC = dt.UTC


def T(s: str) -> dt.datetime:
    return dt.datetime.fromisoformat(s).replace(tzinfo=UTC)


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    return build_tui_store(tmp_path_factory.mktemp("query"))


def _all(rs: ResultSet, page: int) -> list[str]:
    out: list[str] = []
    while True:
        df = rs.page(len(out), page)
        if df.height == 0:
            return out
        out += df["trace_id"].to_list()


def test_pages_cover_the_matches_exactly_once_in_order(store):
    full = store.scan().sort(["timestamp", "trace_id"], descending=True).select("trace_id").collect()
    rs = ResultSet(store, SearchFilters(limit=None))
    assert rs.total == full.height == 79
    assert _all(rs, 7) == full["trace_id"].to_list()
    asc = ResultSet(store, SearchFilters(limit=None, newest_first=False))
    assert _all(asc, 11) == full["trace_id"].to_list()[::-1]


def test_pages_with_filters_and_the_complaint_query(store):
    f, extra, window = build_filters(FindQuery(user="4411", time="yesterday 3pm"), now=NOW)
    assert window.since == T("2026-11-21 14:00")
    rs = ResultSet(store, f, extra)
    rows = rs.page(0, 50)
    assert rows["trace_id"].to_list() == ["msg_complaint", "msg_000901"]
    assert rs.counts() == [(dt.date(2026, 11, 21), 2)]


def test_text_filter_searches_prompt_and_response_not_the_system_prompt(store):
    # "refunds" is in the v2 system prompt of every later support trace; only one prompt/response has it
    f, extra, _ = build_filters(FindQuery(text="REFUND"), now=NOW)
    assert ResultSet(store, f, extra).page(0, 100)["trace_id"].to_list() == ["msg_complaint"]
    f, extra, _ = build_filters(FindQuery(text="/order #88\\d\\d/"), now=NOW)
    assert set(ResultSet(store, f, extra).page(0, 100)["trace_id"]) == {"msg_complaint", "msg_000900", "msg_000901"}
    with pytest.raises(ValueError, match="invalid regular expression"):
        build_filters(FindQuery(text="/(unclosed/"), now=NOW)
    f, extra, _ = build_filters(FindQuery(trace_id="msg_triage"), now=NOW)
    assert ResultSet(store, f, extra).total == 2


def test_find_results_exact_id_then_prefix_and_one_pass_matches_paging(store):
    rs, _ = find_results(store, FindQuery(trace_id="msg_complaint"), now=NOW)
    assert rs.page(0, 10)["trace_id"].to_list() == ["msg_complaint"] and rs.filters.trace_ids == ["msg_complaint"]
    rs, _ = find_results(store, FindQuery(trace_id="msg_triage"), now=NOW)
    assert rs.page(0, 10)["trace_id"].to_list() == ["msg_triage_w47", "msg_triage_w46"]
    # a selective search answered in one pass pages exactly like the partition-by-partition way
    f, extra, _ = build_filters(FindQuery(text="order"), now=NOW)
    one = ResultSet(store, f, extra, selective=True)
    many = ResultSet(store, f, extra, selective=False)
    assert one.total == many.total > 50
    assert _all(one, 9) == _all(many, 9)
    assert one.counts() == many.counts()


def test_unfiltered_counts_come_from_parquet_footers(store, monkeypatch):
    # no row filter: counting must not run a query over the data
    def boom(*a, **k):
        raise AssertionError("scanned data to count")

    rs = ResultSet(store, SearchFilters(limit=None))
    monkeypatch.setattr(pl.LazyFrame, "collect", boom)
    assert rs.total == 79


def test_trace_json_handles_nan_dates_bytes_and_attributes():
    row = {"trace_id": "t1", "timestamp": dt.datetime(2026, 11, 18, 15, tzinfo=UTC), "date": dt.date(2026, 11, 18),
           "latency_ms": math.nan, "refusal_score": math.inf, "raw": b"\x00\xffok",
           "attributes": [("k", "v")], "messages": [{"role": "user", "at": dt.date(2026, 11, 18)}]}
    d = trace_jsonable(row)
    assert "date" not in d and d["timestamp"] == "2026-11-18T15:00:00+00:00"
    assert d["latency_ms"] is None and d["refusal_score"] is None and d["raw"] == "AP9vaw=="
    assert d["attributes"] == {"k": "v"} and d["messages"][0]["at"] == "2026-11-18"
    assert json.loads(trace_json(row)) == d  # strict JSON: no NaN


def test_show_json_is_the_same_serialiser(store):
    from click.testing import CliRunner

    from tracelens.cli.read import show

    r = CliRunner().invoke(show, ["msg_complaint", "--json", "--store", str(store.root)])
    assert r.exit_code == 0, r.output
    assert json.loads(r.stdout) == json.loads(trace_json(store.get("msg_complaint")))
