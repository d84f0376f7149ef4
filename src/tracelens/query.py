"""Reading the store: search filters, result pages, one trace as JSON, stats.

Contract:

* ``search`` builds one lazy polars query: partitions outside the time window
  are never opened (pruning by ``date=``), only the requested columns are
  read (projection), and row filters are pushed into the Parquet scan. The
  CLI ``search`` command, the TUI's find screen and replay selection all use it.
* ``FindQuery`` is the TUI filter bar's query; ``build_filters`` turns it into
  ``SearchFilters`` (its time field read by ``tracelens.timeexpr``, the same
  reader as every ``--since``/``--until``).
* ``ResultSet`` pages through the matches of a search without loading the
  store: it counts matches per ``date=`` partition once, then answers
  ``page(offset, limit)`` by querying only the partitions that hold that page,
  ordered by ``(timestamp, trace_id)`` so pages never overlap or skip rows
  with equal timestamps.
* ``semantic_results`` answers "like:" searches from stored embeddings and
  raises ``NotAvailable`` (naming the command to run) when there are none.
* ``trace_jsonable``/``trace_json`` are the one JSON form of a trace, for
  `tracelens show --json`, the TUI's copy and the JSON export: timestamps ISO
  8601, NaN and infinities null, bytes base64, attributes an object.
"""

from __future__ import annotations

import base64
import dataclasses
import datetime as dt
import json
import math
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

import polars as pl

from tracelens.extras import NotAvailable
from tracelens.idindex import TraceIdIndex
from tracelens.schema import TRACE_SCHEMA
from tracelens.store import Store
from tracelens.timeexpr import TimeWindow, parse_window

LIST_COLUMNS = (
    "trace_id",
    "timestamp",
    "user_id",
    "session_id",
    "app",
    "model_requested",
    "model_returned",
    "model_is_alias",
    "stop_reason",
    "refusal",
    "prompt_text",
    "response_text",
)

# Where a text search looks, by the name `--in` takes; prompt and response unless the system prompt is asked for.
TEXT_COLUMNS = {"prompt": "prompt_text", "response": "response_text", "system": "system_prompt"}
TEXT_FIELDS = ("prompt", "response")


@dataclass
class SearchFilters:
    """Filters of `tracelens search` (and of every search the TUI runs); optional fields combined with AND."""

    user: str | None = None
    session: str | None = None
    trace_ids: list[str] = field(default_factory=list)
    model: str | None = None  # substring of requested or returned model
    app: str | None = None
    since: dt.datetime | None = None
    until: dt.datetime | None = None
    text: str | None = None  # case-insensitive substring over the fields in ``text_in``
    regex: str | None = None  # regular expression over the fields in ``text_in``
    text_in: tuple[str, ...] = TEXT_FIELDS  # of TEXT_COLUMNS: where --text and --regex look
    stop_reason: str | None = None
    refusal_only: bool = False
    prompt_hash: str | None = None
    limit: int | None = 50
    offset: int = 0
    newest_first: bool = True


def search_lazy(store: Store, f: SearchFilters, columns: tuple[str, ...] | list[str] | None = LIST_COLUMNS) -> pl.LazyFrame:
    """The lazy query behind ``search``: pruned by partition, filtered, ordered by (timestamp, trace_id)."""
    lf = store.scan(since=f.since, until=f.until)
    preds = []
    if f.user:
        preds.append(pl.col("user_id") == f.user)
    if f.session:
        preds.append((pl.col("session_id") == f.session) | (pl.col("conversation_id") == f.session))
    if f.trace_ids:
        preds.append(pl.col("trace_id").is_in(list(f.trace_ids)))
    if f.model:
        preds.append(
            pl.col("model_requested").str.contains(f.model, literal=True).fill_null(False)
            | pl.col("model_returned").str.contains(f.model, literal=True).fill_null(False)
        )
    if f.app:
        preds.append(pl.col("app") == f.app)
    if f.stop_reason:
        preds.append((pl.col("stop_reason") == f.stop_reason) | (pl.col("stop_reason_raw") == f.stop_reason))
    if f.refusal_only:
        preds.append(pl.col("refusal").is_in(["partial", "full"]))
    if f.prompt_hash:
        preds.append(pl.col("prompt_hash") == f.prompt_hash)
    if f.text:
        preds.append(text_match(f.text, regex=False, fields=f.text_in))
    if f.regex:
        preds.append(text_match(f.regex, regex=True, fields=f.text_in))
    for p in preds:
        lf = lf.filter(p)
    # trace_id breaks ties so pages are stable (offset paging re-runs the query)
    lf = lf.sort(["timestamp", "trace_id"], descending=f.newest_first)
    if f.offset:
        lf = lf.slice(f.offset)
    if f.limit is not None:
        lf = lf.head(f.limit)
    if columns is not None:
        lf = lf.select(list(columns))
    return lf


def search(store: Store, f: SearchFilters, columns: tuple[str, ...] | list[str] | None = LIST_COLUMNS) -> pl.DataFrame:
    """Traces matching ``f``, newest first."""
    return search_lazy(store, f, columns).collect()


# --------------------------------------------------------------------------- the find screen's search and its pages


@dataclass
class FindQuery:
    """What the filter bar holds; every field optional, combined with AND."""

    user: str = ""
    session: str = ""
    trace_id: str = ""
    time: str = ""
    model: str = ""
    app: str = ""
    refusal_only: bool = False
    text: str = ""  # substring, or /regex/ (prompt and response only)
    like: str = ""  # semantic search text
    newest_first: bool = True

    def is_empty(self) -> bool:
        """True when no field is set (the search lists every trace)."""
        return not any((self.user, self.session, self.trace_id, self.time, self.model, self.app, self.refusal_only,
                        self.text, self.like))


def text_match(text: str, regex: bool = False, fields: tuple[str, ...] = TEXT_FIELDS) -> pl.Expr:
    """Rows whose ``fields`` (of ``TEXT_COLUMNS``: prompt, response, system) hold ``text``: a case-insensitive
    substring, or a regular expression when ``regex``. ValueError for an invalid expression or an unknown field.

    The one text match of `tracelens search` and the TUI. Prompt and response
    by default; the system prompt only when asked (``--in system``): a word in
    it (say "refund") matches every trace of the app and buries the one being
    looked for.
    """
    unknown = [f for f in fields if f not in TEXT_COLUMNS]
    if unknown or not fields:
        raise ValueError(f"unknown text field(s) {unknown or fields}; choose from {', '.join(TEXT_COLUMNS)}")
    if regex:
        try:
            re.compile(text)
        except re.error as e:
            raise ValueError(f"invalid regular expression {text!r}: {e}") from None

        def match(c: str) -> pl.Expr:
            return pl.col(c).str.contains(text)
    elif text.isascii():
        # Aho-Corasick literal search: much faster than a (?i) regex on long texts
        def match(c: str) -> pl.Expr:
            return pl.col(c).str.contains_any([text], ascii_case_insensitive=True)
    else:
        def match(c: str) -> pl.Expr:
            return pl.col(c).str.contains("(?i)" + re.escape(text))
    return pl.any_horizontal([match(TEXT_COLUMNS[f]).fill_null(False) for f in fields])


def text_predicate(text: str, fields: tuple[str, ...] = TEXT_FIELDS) -> pl.Expr | None:
    """The TUI filter bar's text: a case-insensitive substring, or ``/regex/``, read by ``text_match``."""
    t = text.strip()
    if not t:
        return None
    if len(t) >= 2 and t.startswith("/") and t.endswith("/"):
        return text_match(t[1:-1], regex=True, fields=fields)
    return text_match(t, fields=fields)


def build_filters(q: FindQuery, now: dt.datetime | None = None,
                  tz: dt.tzinfo | str = "UTC") -> tuple[SearchFilters, list[pl.Expr], TimeWindow | None]:
    """Filter-bar fields -> (``SearchFilters``, extra row predicates, the time window read)."""
    window = parse_window(q.time, now=now, tz=tz)
    f = SearchFilters(
        user=q.user.strip() or None,
        session=q.session.strip() or None,
        model=q.model.strip() or None,
        app=q.app.strip() or None,
        since=window.since if window else None,
        until=window.until if window else None,
        refusal_only=q.refusal_only,
        limit=None,
        newest_first=q.newest_first,
    )
    extra = []
    if q.trace_id.strip():
        extra.append(pl.col("trace_id").str.starts_with(q.trace_id.strip()))
    tp = text_predicate(q.text)
    if tp is not None:
        extra.append(tp)
    return f, extra, window


def _has_row_filters(f: SearchFilters, extra: list[pl.Expr]) -> bool:
    return bool(extra or f.user or f.session or f.trace_ids or f.model or f.app or f.text or f.regex
                or f.stop_reason or f.refusal_only or f.prompt_hash or f.since or f.until)


def _day_bounds(day: dt.date) -> tuple[dt.datetime, dt.datetime]:
    start = dt.datetime.combine(day, dt.time(0), dt.UTC)
    return start, start + dt.timedelta(days=1)


SMALL_RESULT = 2_000


class ResultSet:
    """The matches of one search, paged by ``date=`` partition; the store is never loaded whole.

    ``counts()`` costs one query over the filter columns of the partitions in
    the window (or nothing but Parquet footers when there are no filters);
    ``page(offset, limit)`` then opens only the partitions holding that page.
    A selective search (a user, a session, a trace id) is answered in one
    pass instead: when it matches at most ``SMALL_RESULT`` traces they are all
    kept, already in order, and pages are slices of them.
    """

    def __init__(self, store: Store, filters: SearchFilters, extra: Iterable[pl.Expr] = (),
                 columns: tuple[str, ...] | list[str] = LIST_COLUMNS, selective: bool | None = None):
        self.store = store
        self.filters = dataclasses.replace(filters, limit=None, offset=0)
        self.extra = list(extra)
        self.columns = list(columns)
        self.newest_first = filters.newest_first
        f = self.filters
        self.selective = bool(f.user or f.session or f.trace_ids) if selective is None else selective
        self._counts: list[tuple[dt.date, int]] | None = None
        self._rows: pl.DataFrame | None = None  # every match, when the search was selective and small

    def _lazy(self, f: SearchFilters) -> pl.LazyFrame:
        lf = search_lazy(self.store, f, columns=None)
        for p in self.extra:
            lf = lf.filter(p)
        return lf

    def _order(self) -> list[pl.Expr]:
        return [pl.col("timestamp"), pl.col("trace_id")]

    def counts(self) -> list[tuple[dt.date, int]]:
        """Matches per partition day, in display order (newest day first unless ascending)."""
        if self._counts is None:
            f = self.filters
            rows: list[tuple[dt.date, int]] | None = None
            if not _has_row_filters(f, self.extra):
                per_day: dict[dt.date, int] = {}
                for p, n in self.store.row_counts("traces").items():  # footers, one consistent snapshot
                    day = dt.date.fromisoformat(p.parent.name[5:])
                    per_day[day] = per_day.get(day, 0) + n
                rows = list(per_day.items())
            elif self.selective:
                cols = list(dict.fromkeys([*self.columns, "timestamp", "trace_id", "date"]))
                df = self._lazy(f).select(cols).head(SMALL_RESULT + 1).collect()
                if df.height <= SMALL_RESULT:
                    self._rows = df.sort(self._order(), descending=self.newest_first)
                    per = self._rows.group_by("date").agg(pl.len().alias("n"))
                    rows = [(d, n) for d, n in per.iter_rows() if d is not None]
            if rows is None:
                df = self._lazy(f).group_by("date").agg(pl.len().alias("n")).collect()
                rows = [(d, n) for d, n in df.iter_rows() if d is not None and n]
            rows.sort(key=lambda r: r[0], reverse=self.newest_first)
            self._counts = [(d, n) for d, n in rows if n]
        return self._counts

    @classmethod
    def empty(cls, store: Store, filters: SearchFilters, extra: Iterable[pl.Expr] = (),
              columns: tuple[str, ...] | list[str] = LIST_COLUMNS) -> ResultSet:
        """A result set known to match nothing (no partition is opened)."""
        rs = cls(store, filters, extra, columns)
        rs._counts = []
        return rs

    @property
    def total(self) -> int:
        """How many traces match (from the per-partition counts; no row is read)."""
        return sum(n for _, n in self.counts())

    def page(self, offset: int, limit: int) -> pl.DataFrame:
        """Rows ``[offset, offset+limit)`` of the ordered matches, with ``self.columns``."""
        self.counts()
        if self._rows is not None:
            return self._rows.slice(offset, limit).select(self.columns)
        chosen: list[dt.date] = []
        skip = 0
        seen = 0
        for day, n in self.counts():
            if seen + n <= offset:
                seen += n
                continue
            if not chosen:
                skip = offset - seen
            chosen.append(day)
            seen += n
            if seen >= offset + limit:
                break
        if not chosen:
            return empty_frame(self.columns)
        lo, hi = min(chosen), max(chosen)
        since, until = _day_bounds(lo)[0], _day_bounds(hi)[1]
        f = self.filters
        f = dataclasses.replace(
            f,
            since=max(since, f.since) if f.since else since,
            # the last microsecond of the day: keeps the scan from opening the next partition
            until=min(until, f.until) if f.until else until - dt.timedelta(microseconds=1),
        )
        lf = self._lazy(f).sort(self._order(), descending=self.newest_first)
        return lf.slice(skip, limit).select(self.columns).collect()


def find_results(store: Store, q: FindQuery, now: dt.datetime | None = None,
                 tz: dt.tzinfo | str = "UTC", ids: TraceIdIndex | None = None) -> tuple[ResultSet, TimeWindow | None]:
    """The find screen's search (everything but "like:"): a ``ResultSet`` and the time window read.

    A trace id is first looked up exactly (one cheap pass over the id
    column, which Parquet statistics can prune); only when nothing has that
    exact id is it used as a prefix, as git does with hashes. With ``ids``
    (a built ``TraceIdIndex``) both passes open only the partitions that
    index names, and a prefix nothing starts with opens none.
    """
    f, extra, window = build_filters(q, now=now, tz=tz)
    selective = bool(q.user.strip() or q.session.strip() or q.trace_id.strip()) or None
    tid = q.trace_id.strip()
    if tid:
        f0, extra0, _ = build_filters(dataclasses.replace(q, trace_id=""), now=now, tz=tz)
        days = ids.days(tid) if ids is not None else None
        if days is None or days:
            rs = ResultSet(store, _within_days(dataclasses.replace(f0, trace_ids=[tid]), days), extra0,
                           selective=True)
            if rs.total:
                return rs, window
        days = ids.days(tid, prefix=True) if ids is not None else None
        if days == []:
            return ResultSet.empty(store, f, extra), window
        return ResultSet(store, _within_days(f, days), extra, selective=selective), window
    return ResultSet(store, f, extra, selective=selective), window


def _within_days(f: SearchFilters, days: list[dt.date] | None) -> SearchFilters:
    """``f`` narrowed to the partitions from the first to the last of ``days`` (unchanged for None).

    A row lives in the partition of its timestamp's UTC day, so the day
    bounds as a time window select exactly those partitions' rows.
    """
    if not days:
        return f
    since, until = _day_bounds(days[0])[0], _day_bounds(days[-1])[1]
    return dataclasses.replace(f, since=max(since, f.since) if f.since else since,
                               until=min(until, f.until) if f.until else until)


def empty_frame(columns: Iterable[str]) -> pl.DataFrame:
    """An empty frame with the trace schema's types for ``columns``."""
    return pl.from_arrow(TRACE_SCHEMA.empty_table()).select(list(columns))


def load_trace(store: Store, trace_id: str, day: dt.date | None = None) -> dict | None:
    """One whole trace; ``day`` (its partition, when known) avoids scanning the other partitions."""
    if day is not None:
        df = store.scan(since=day, until=day).filter(pl.col("trace_id") == trace_id).head(1).collect()
        if df.height:
            row = df.row(0, named=True)
            row.pop("date", None)
            return row
    return store.get(trace_id)


def jsonable(value: Any) -> Any:
    """``value`` with every part JSON can hold: dates ISO 8601, NaN/inf null, bytes base64, tuples lists."""
    if isinstance(value, dict):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [jsonable(v) for v in value]
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dt.datetime | dt.date | dt.time):
        return value.isoformat()
    if isinstance(value, dt.timedelta):
        return value.total_seconds()
    if isinstance(value, bytes | bytearray | memoryview):
        return base64.b64encode(bytes(value)).decode("ascii")
    return value


def trace_jsonable(row: dict) -> dict:
    """A trace as JSON-ready values (see ``jsonable``; attributes as an object, the partition column dropped)."""
    out: dict[str, Any] = {}
    for k, v in row.items():
        if k == "date":
            continue
        if k == "attributes" and isinstance(v, list):
            v = {kv[0]: kv[1] for kv in v} if v and isinstance(v[0], tuple) else {d["key"]: d["value"] for d in v}
        out[k] = jsonable(v)
    return out


def trace_json(row: dict) -> str:
    """The trace as pretty JSON text (what the TUI copies); secrets a store from before the scrubber holds are removed."""
    from tracelens.secrets import scrub_value

    return json.dumps(scrub_value(trace_jsonable(row)), indent=2, ensure_ascii=False, default=str)


def embedding_model(store: Store, what: str) -> tuple[Any, str]:
    """The embed module and the model whose vectors this store holds; NotAvailable otherwise."""
    try:
        import tracelens.embed as embed
    except ImportError:
        raise NotAvailable(f"{what} not available: this build has no tracelens.embed") from None
    models = embed.list_models(store)
    if not models:
        raise NotAvailable(f"{what} not available: no embeddings in this store (run `tracelens embed`)")
    ids = [m["model_id"] for m in models]
    preferred = embed.resolve_model(None).model_id
    return embed, preferred if preferred in ids else ids[0]


def semantic_search(store: Store, text: str, k: int = 200, since: dt.datetime | None = None,
                    until: dt.datetime | None = None) -> pl.DataFrame:
    """Traces whose prompt is semantically like ``text`` (best first, with a ``similarity`` column).

    Embeds ``text`` with the store's embedding model (loading it on first use).
    """
    embed, model = embedding_model(store, "semantic search")
    try:
        hits = embed.nearest(store, text, k=k, since=since, until=until, model=model)
    except (ValueError, RuntimeError, OSError) as e:
        raise NotAvailable(f"semantic search not available: {e}") from None
    return hits_frame(store, hits)


def semantic_results(store: Store, q: FindQuery, now: dt.datetime | None = None, tz: dt.tzinfo | str = "UTC",
                     k: int = 200) -> tuple[pl.DataFrame, TimeWindow | None]:
    """The find screen's "like:" search: ``k`` nearest prompts in the window, then the other filters."""
    f, extra, window = build_filters(q, now=now, tz=tz)
    df = semantic_search(store, q.like.strip(), k=k, since=f.since, until=f.until)
    if df.height and (extra or f.user or f.session or f.model or f.app or f.refusal_only):
        f.trace_ids = df["trace_id"].to_list()
        keep = ResultSet(store, f, extra).page(0, df.height)["trace_id"]
        df = df.filter(pl.col("trace_id").is_in(keep.implode()))
    return df, window


def hits_frame(store: Store, hits: list[tuple[str, float]], exclude: str | None = None) -> pl.DataFrame:
    """``[(trace_id, cosine), ...]`` joined to the list columns of those traces, best first."""
    pairs = pl.DataFrame({"trace_id": [a for a, _ in hits], "similarity": [float(b) for _, b in hits]},
                         schema={"trace_id": pl.String, "similarity": pl.Float64})
    if exclude:
        pairs = pairs.filter(pl.col("trace_id") != exclude)
    if pairs.height == 0:
        return pairs.join(empty_frame(LIST_COLUMNS), on="trace_id", how="inner")
    rows = search_lazy(store, SearchFilters(trace_ids=pairs["trace_id"].to_list(), limit=None),
                       columns=list(LIST_COLUMNS)).collect()
    return pairs.join(rows, on="trace_id", how="inner").sort("similarity", descending=True, nulls_last=True)


def trace_rows(store: Store, trace_ids: list[str]) -> pl.DataFrame:
    """List columns of the given traces, in the order given (missing ids are dropped)."""
    ids = list(dict.fromkeys(trace_ids))
    if not ids:
        return empty_frame(LIST_COLUMNS)
    rows = search_lazy(store, SearchFilters(trace_ids=ids, limit=None)).collect()
    order = pl.DataFrame({"trace_id": ids, "_i": list(range(len(ids)))})
    return order.join(rows, on="trace_id", how="inner").sort("_i").drop("_i")

# --------------------------------------------------------------------------- stats


@dataclass
class StoreStats:
    """What `tracelens stats` reports: traces per day, per model and per source format; quarantine."""

    traces: int
    quarantined: int
    first: dt.datetime | None
    last: dt.datetime | None
    per_day: list[tuple[str, int, int]]  # (date, traces, refusals)
    per_model: list[tuple[str | None, str | None, int]]  # (requested, returned, traces); None: not recorded
    per_format: list[tuple[str, int]]
    quarantine_reasons: list[tuple[str, int]]

    def to_dict(self) -> dict:
        """JSON form (`tracelens stats --json`); a model that was not recorded is null."""
        return {
            "traces": self.traces,
            "quarantined": self.quarantined,
            "first": self.first.isoformat() if self.first else None,
            "last": self.last.isoformat() if self.last else None,
            "per_day": [{"date": d, "traces": n, "refusals": r} for d, n, r in self.per_day],
            "per_model": [{"model_requested": a, "model_returned": b, "traces": n} for a, b, n in self.per_model],
            "per_format": [{"source_format": a, "traces": n} for a, n in self.per_format],
            "quarantine_reasons": [{"reason": a, "records": n} for a, n in self.quarantine_reasons],
        }


def stats(store: Store) -> StoreStats:
    """Counts per day, per model (requested vs returned) and per source format; quarantine summary."""
    lf = store.scan().select("timestamp", "model_requested", "model_returned", "source_format", "refusal")
    df = lf.collect()
    q = store.scan("quarantine").select("reason").collect()
    per_day = (
        df.group_by(pl.col("timestamp").dt.date().alias("d"))
        .agg(pl.len().alias("n"), pl.col("refusal").is_in(["partial", "full"]).sum().alias("r"))
        .sort("d")
    )
    per_model = (
        df.group_by("model_requested", "model_returned")
        .len()
        .sort(["len", "model_requested", "model_returned"], descending=[True, False, False], nulls_last=True)
    )
    per_format = df.group_by("source_format").len().sort(["len", "source_format"], descending=[True, False])
    # group quarantine reasons by their general shape (numbers stripped) so the list stays short
    qr = (
        q.with_columns(pl.col("reason").str.replace_all(r"\d+", "N").str.slice(0, 100).alias("reason"))
        .group_by("reason")
        .len()
        .sort(["len", "reason"], descending=[True, False])
    )
    return StoreStats(
        traces=df.height,
        quarantined=q.height,
        first=df["timestamp"].min() if df.height else None,
        last=df["timestamp"].max() if df.height else None,
        per_day=[(d.isoformat(), n, r) for d, n, r in per_day.iter_rows()],
        # a missing model stays None (JSON null): "" would read as a model named ""
        per_model=[(a or None, b or None, n) for a, b, n in per_model.iter_rows()],
        per_format=[(a, n) for a, n in per_format.iter_rows()],
        quarantine_reasons=[(a, n) for a, n in qr.iter_rows()],
    )
