"""Reading the store: search filters, stats and time-window parsing.

``search`` builds one lazy polars query: partitions outside the time window
are never opened (pruning by ``date=``), only the requested columns are read
(projection), and row filters are pushed into the Parquet scan. The CLI
``search`` command, the TUI's find screen and replay selection all use it.
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass, field

import polars as pl

from tracelens.store import Store

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

_REL = re.compile(r"^(?P<n>\d+)\s*(?P<u>[smhdw])$")
# datetime.fromisoformat stops at an embedded NUL, so '2026-11-18T10:00\x00junk' would read as a time
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


def parse_when(value: str | None, now: dt.datetime | None = None, end: bool = False) -> dt.datetime | None:
    """Parse a CLI time bound: ISO date or datetime (UTC unless zoned), 'today', 'yesterday', or '7d'/'12h' ago.

    A bare date as an ``end`` bound means the end of that day (exclusive next midnight).
    """
    if value is None or value == "":
        return None
    if _CONTROL.search(value.strip()):
        raise ValueError(f"cannot read time {value!r}: it contains control characters")
    now = now or dt.datetime.now(dt.UTC)
    v = value.strip().lower()
    today = now.replace(hour=0, minute=0, second=0, microsecond=0)
    if v == "now":
        return now
    if v == "today":
        return today + (dt.timedelta(days=1) if end else dt.timedelta(0))
    if v == "yesterday":
        return today - dt.timedelta(days=1) + (dt.timedelta(days=1) if end else dt.timedelta(0))
    m = _REL.fullmatch(v)
    if m:
        n = int(m.group("n"))
        unit = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days", "w": "weeks"}[m.group("u")]
        return now - dt.timedelta(**{unit: n})
    try:
        if re.fullmatch(r"\d{4}-\d{2}-\d{2}", v):
            d = dt.datetime.fromisoformat(v).replace(tzinfo=dt.UTC)
            return d + dt.timedelta(days=1) if end else d
        s = value.strip().replace("Z", "+00:00").replace(" ", "T", 1)
        t = dt.datetime.fromisoformat(s)
        return t.replace(tzinfo=dt.UTC) if t.tzinfo is None else t.astimezone(dt.UTC)
    except ValueError:
        raise ValueError(f"cannot read time {value!r}: use YYYY-MM-DD, an ISO datetime, 'yesterday' or e.g. '7d'") from None


@dataclass
class SearchFilters:
    """Filters of `tracelens search`; every field is optional and they combine with AND."""

    user: str | None = None
    session: str | None = None
    trace_ids: list[str] = field(default_factory=list)
    model: str | None = None  # substring of requested or returned model
    app: str | None = None
    since: dt.datetime | None = None
    until: dt.datetime | None = None
    text: str | None = None  # case-insensitive substring over prompt, response and system prompt
    regex: str | None = None
    stop_reason: str | None = None
    refusal_only: bool = False
    prompt_hash: str | None = None
    limit: int | None = 50
    offset: int = 0
    newest_first: bool = True


def search_lazy(store: Store, f: SearchFilters, columns: tuple[str, ...] | list[str] | None = LIST_COLUMNS) -> pl.LazyFrame:
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
    text_cols = ("prompt_text", "response_text", "system_prompt")
    if f.text:
        pat = "(?i)" + re.escape(f.text)
        preds.append(pl.any_horizontal([pl.col(c).str.contains(pat).fill_null(False) for c in text_cols]))
    if f.regex:
        try:
            re.compile(f.regex)
        except re.error as e:
            raise ValueError(f"invalid --regex: {e}") from None
        preds.append(pl.any_horizontal([pl.col(c).str.contains(f.regex).fill_null(False) for c in text_cols]))
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


@dataclass
class StoreStats:
    traces: int
    quarantined: int
    first: dt.datetime | None
    last: dt.datetime | None
    per_day: list[tuple[str, int, int]]  # (date, traces, refusals)
    per_model: list[tuple[str | None, str | None, int]]  # (requested, returned, traces); None: not recorded
    per_format: list[tuple[str, int]]
    quarantine_reasons: list[tuple[str, int]]

    def to_dict(self) -> dict:
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
