"""Headless helpers behind the TUI: time expressions, lazy result pages, trace context, exports.

Contract:

* Nothing here imports textual or click; every function is callable from a
  plain script or a test, and the TUI calls them from thread workers.
* ``parse_time_window(text, now)`` reads the time expressions an engineer types
  when a complaint arrives ("yesterday 3pm", "2026-11-18 15:00 ±2h",
  "mon 9:30 .. mon 11:00", "2026-W47", and everything ``query.parse_when``
  accepts) into a half-open UTC window ``[since, until)``.
* ``ResultSet`` pages through the matches of a search without loading the
  store: it counts matches per ``date=`` partition once, then answers
  ``page(offset, limit)`` by querying only the partitions that hold that page
  (via ``query.search_lazy``), ordered by ``(timestamp, trace_id)`` so pages
  never overlap or skip rows with equal timestamps.
* ``trace_context`` tells whether the system prompt or the served snapshot had
  just changed when a trace was made (versions, first/last seen, a unified
  diff to the previous prompt); ``same_prompt_traces`` lists traces with the
  identical ``prompt_hash`` in any week; ``similar_traces`` asks
  ``tracelens.embed`` for nearest neighbours and raises ``NotAvailable`` with
  the command to run when there are no embeddings.
* ``reproduction`` writes a ready-to-run curl script and Python script for a
  trace: the API key is referenced as ``$ANTHROPIC_API_KEY`` and never
  inlined; the body is pure-ASCII JSON so that ``cat``-ing the script cannot
  drive the terminal, whatever the user typed.
* ``weekly_findings`` loads the drift findings of the last complete week
  from a saved drift report, or computes them with
  ``tracelens.weekly.run_weekly`` (without computing new embeddings).

All timestamps are UTC.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import difflib
import hashlib
import json
import math
import re
import shlex
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import polars as pl

from tracelens.query import LIST_COLUMNS, SearchFilters, parse_when, search_lazy
from tracelens.schema import TRACE_SCHEMA
from tracelens.store import Store
from tracelens.textsafe import visible

UTC = dt.UTC

# A point in time typed without a width ("yesterday 3pm") means "around then".
DEFAULT_HALF_WIDTH = dt.timedelta(hours=1)


class NotAvailable(Exception):  # noqa: N818 - a condition shown to the user, not a bug
    """A feature whose data or module is missing; the message says what to run."""


# --------------------------------------------------------------------------- time expressions


@dataclass(frozen=True)
class TimeWindow:
    """A half-open UTC window ``[since, until)``; either side may be open (None)."""

    since: dt.datetime | None
    until: dt.datetime | None

    def describe(self) -> str:
        def f(t: dt.datetime | None) -> str:
            return "…" if t is None else t.strftime("%Y-%m-%d %H:%M")

        return f"{f(self.since)} → {f(self.until)} UTC"


_DUR = re.compile(r"^(?P<n>\d+(?:\.\d+)?)\s*(?P<u>s|sec|secs|m|min|mins|h|hr|hrs|hours?|d|days?|w|weeks?)$")
_PLUSMINUS = re.compile(r"\s*(?:±|\+/-|\+-|\+/−)\s*(?P<d>[\d.]+\s*[a-z]+)\s*$")
_RANGE = re.compile(r"\s+(?:\.\.|to|until|–|—)\s+|\s*\.\.\s*")
_ISO_WEEK = re.compile(r"^(?P<y>\d{4})-?w(?P<w>\d{1,2})$")
_LAST = re.compile(r"^(?:last|past)\s+(?P<d>[\d.]+\s*[a-z]+)$")
_CLOCK = re.compile(
    r"^(?P<h>\d{1,2})(?::(?P<m>\d{2}))?(?::(?P<s>\d{2}))?\s*(?P<ampm>am|pm|a\.m\.|p\.m\.|h)?$"
)
_WEEKDAYS = ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")
_FILLER = ("around", "about", "approx", "approximately", "at", "~", "circa", "ca.")


def parse_duration(text: str) -> dt.timedelta:
    """'2h', '30m', '90 min', '1.5 hours', '3d', '1w' -> timedelta."""
    m = _DUR.match(text.strip().lower())
    if not m:
        raise ValueError(f"cannot read duration {text!r}: use e.g. 30m, 2h, 1d")
    n = float(m.group("n"))
    unit = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days", "w": "weeks"}[m.group("u")[0]]
    return dt.timedelta(**{unit: n})


def _clock(text: str) -> dt.time | None:
    t = text.strip().lower()
    if t == "noon":
        return dt.time(12)
    if t == "midnight":
        return dt.time(0)
    m = _CLOCK.match(t)
    if not m:
        return None
    h, mi, s = int(m.group("h")), int(m.group("m") or 0), int(m.group("s") or 0)
    ampm = (m.group("ampm") or "").replace(".", "")
    if ampm in ("am", "pm"):
        if not 1 <= h <= 12:
            return None
        h = h % 12 + (12 if ampm == "pm" else 0)
    elif m.group("m") is None and ampm != "h":
        return None  # a bare number is not a time of day
    if h > 23 or mi > 59 or s > 59:
        return None
    return dt.time(h, mi, s)


def _day(word: str, now: dt.datetime) -> dt.date | None:
    w = word.strip().lower()
    today = now.date()
    if w == "today":
        return today
    if w == "yesterday":
        return today - dt.timedelta(days=1)
    if w.startswith("last "):
        w = w[5:].strip()
    for i, name in enumerate(_WEEKDAYS):
        if len(w) >= 3 and name.startswith(w):
            back = (today.weekday() - i) % 7 or 7  # the most recent past one, never today
            return today - dt.timedelta(days=back)
    if re.fullmatch(r"\d{4}-\d{2}-\d{2}", w):
        return dt.date.fromisoformat(w)
    return None


def _point(text: str, now: dt.datetime, tz: dt.tzinfo) -> tuple[dt.datetime, bool]:
    """One point: returns (UTC datetime, is_whole_day)."""
    words = [w for w in text.strip().split() if w.lower() not in _FILLER]
    s = " ".join(words)
    low = s.lower()
    local_now = now.astimezone(tz)
    day = _day(low, local_now)
    if day is not None:
        return dt.datetime.combine(day, dt.time(0), tz).astimezone(UTC), True
    # "<day> <clock>" or "<clock> <day>" or just "<clock>" (today)
    for split in range(len(words) + 1):
        head, tail = " ".join(words[:split]), " ".join(words[split:])
        for d_part, c_part in ((head, tail), (tail, head)):
            d = _day(d_part, local_now) if d_part else local_now.date()
            c = _clock(c_part) if c_part else None
            if d is not None and c is not None:
                return dt.datetime.combine(d, c, tz).astimezone(UTC), False
    # ISO datetimes with a 'T' or a zone, and whatever parse_when knows
    v = parse_when(s, now=now)
    assert v is not None
    whole_day = bool(re.fullmatch(r"\d{4}-\d{2}-\d{2}", low)) or low in ("today", "yesterday")
    if not whole_day and v.tzinfo is not None and re.fullmatch(r"\d{4}-\d{2}-\d{2}[t ][\d:.]+", low):
        # a zone-less datetime is in the display zone, not necessarily UTC
        v = v.replace(tzinfo=None).replace(tzinfo=tz).astimezone(UTC)
    return v, whole_day


def parse_time_window(
    text: str | None,
    now: dt.datetime | None = None,
    tz: dt.tzinfo | str = "UTC",
    default_half_width: dt.timedelta = DEFAULT_HALF_WIDTH,
) -> TimeWindow | None:
    """Read a time expression into a UTC window; None for an empty expression.

    Accepted (case-insensitive, times in ``tz``, UTC by default):

    * a point with a width: ``2026-11-18 15:00 ±2h`` (also ``+-2h``, ``+/-30m``);
    * a point alone, meaning ±``default_half_width``: ``yesterday 3pm``,
      ``around 3:30pm yesterday``, ``mon 15:00``, ``2026-11-18T15:00Z``;
    * a whole day: ``yesterday``, ``today``, ``tuesday``, ``2026-11-18``;
    * an ISO week: ``2026-W47``;
    * a range: ``2026-11-18 13:00 .. 2026-11-18 17:00`` (also ``to``), each
      side any of the above (a day on the right side means its end);
    * a span back from now: ``7d``, ``12h``, ``last 2h``, ``last 3 days``.

    Raises ``ValueError`` with a user-facing message otherwise.
    """
    if text is None or not text.strip():
        return None
    if isinstance(tz, str):
        from zoneinfo import ZoneInfo

        tz = UTC if tz.upper() == "UTC" else ZoneInfo(tz)
    now = (now or dt.datetime.now(UTC)).astimezone(UTC)
    raw = text.strip()
    low = raw.lower()
    try:
        m = _ISO_WEEK.match(low)
        if m:
            monday = dt.date.fromisocalendar(int(m.group("y")), int(m.group("w")), 1)
            start = dt.datetime.combine(monday, dt.time(0), tz).astimezone(UTC)
            return TimeWindow(start, start + dt.timedelta(days=7))
        m = _LAST.match(low)
        if m:
            return TimeWindow(now - parse_duration(m.group("d")), now)
        try:
            return TimeWindow(now - parse_duration(low), now)
        except ValueError:
            pass
        parts = _RANGE.split(raw, maxsplit=1)
        if len(parts) == 2 and parts[0].strip() and parts[1].strip():
            a, a_day = _point(parts[0], now, tz)
            right_clock = _clock(" ".join(w for w in parts[1].split() if w.lower() not in _FILLER))
            if right_clock is not None and not a_day:  # "2026-11-18 13:00 .. 17:00": same day as the start
                b = dt.datetime.combine(a.astimezone(tz).date(), right_clock, tz).astimezone(UTC)
                b_day = False
            else:
                b, b_day = _point(parts[1], now, tz)
            until = b + dt.timedelta(days=1) if b_day else b
            if until <= a:
                raise ValueError(f"the window {raw!r} ends before it starts")
            return TimeWindow(a, until)
        m = _PLUSMINUS.search(raw)
        if m:
            width = parse_duration(m.group("d"))
            p, _ = _point(raw[: m.start()], now, tz)
            return TimeWindow(p - width, p + width)
        p, whole_day = _point(raw, now, tz)
        if whole_day:
            return TimeWindow(p, p + dt.timedelta(days=1))
        return TimeWindow(p - default_half_width, p + default_half_width)
    except ValueError as e:
        msg = str(e)
        if msg.startswith("cannot read time") or msg.startswith("cannot read duration"):
            raise ValueError(
                f"cannot read time {raw!r}: try 'yesterday 3pm', '2026-11-18 15:00 ±2h', "
                "'2026-11-18 13:00 .. 17:00', '2026-W47' or '7d'"
            ) from None
        raise


# --------------------------------------------------------------------------- finding traces


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
        return not any((self.user, self.session, self.trace_id, self.time, self.model, self.app, self.refusal_only,
                        self.text, self.like))


def text_predicate(text: str) -> pl.Expr | None:
    """Case-insensitive substring, or ``/regex/``, over prompt and response (not the system prompt).

    The system prompt is left out on purpose: a word in it (say "refund")
    would match every trace of the app and bury the one being looked for.
    """
    t = text.strip()
    if not t:
        return None
    if len(t) >= 2 and t.startswith("/") and t.endswith("/"):
        pat = t[1:-1]
        try:
            re.compile(pat)
        except re.error as e:
            raise ValueError(f"invalid regular expression /{pat}/: {e}") from None

        def match(c: str) -> pl.Expr:
            return pl.col(c).str.contains(pat)
    elif t.isascii():
        # Aho-Corasick literal search: much faster than a (?i) regex on long texts
        def match(c: str) -> pl.Expr:
            return pl.col(c).str.contains_any([t], ascii_case_insensitive=True)
    else:
        def match(c: str) -> pl.Expr:
            return pl.col(c).str.contains("(?i)" + re.escape(t))
    return pl.any_horizontal([match(c).fill_null(False) for c in ("prompt_text", "response_text")])


def build_filters(q: FindQuery, now: dt.datetime | None = None,
                  tz: dt.tzinfo | str = "UTC") -> tuple[SearchFilters, list[pl.Expr], TimeWindow | None]:
    """Filter-bar fields -> (``SearchFilters``, extra row predicates, the time window read)."""
    window = parse_time_window(q.time, now=now, tz=tz)
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
    start = dt.datetime.combine(day, dt.time(0), UTC)
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

    @property
    def total(self) -> int:
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
                 tz: dt.tzinfo | str = "UTC") -> tuple[ResultSet, TimeWindow | None]:
    """The find screen's search (everything but "like:"): a ``ResultSet`` and the time window read.

    A trace id is first looked up exactly (one cheap pass over the id
    column, which Parquet statistics can prune); only when nothing has that
    exact id is it used as a prefix, as git does with hashes.
    """
    f, extra, window = build_filters(q, now=now, tz=tz)
    selective = bool(q.user.strip() or q.session.strip() or q.trace_id.strip()) or None
    tid = q.trace_id.strip()
    if tid:
        f0, extra0, _ = build_filters(dataclasses.replace(q, trace_id=""), now=now, tz=tz)
        rs = ResultSet(store, dataclasses.replace(f0, trace_ids=[tid]), extra0, selective=True)
        if rs.total:
            return rs, window
    return ResultSet(store, f, extra, selective=selective), window


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


def trace_jsonable(row: dict) -> dict:
    """A trace as JSON-ready values (timestamps ISO 8601, attributes as an object)."""
    out: dict[str, Any] = {}
    for k, v in row.items():
        if k == "date":
            continue
        if k == "attributes" and isinstance(v, list):
            v = {kv[0]: kv[1] for kv in v} if v and isinstance(v[0], tuple) else {d["key"]: d["value"] for d in v}
        if isinstance(v, dt.datetime | dt.date):
            v = v.isoformat()
        if isinstance(v, float) and math.isnan(v):
            v = None
        out[k] = v
    return out


def trace_json(row: dict) -> str:
    """The trace as pretty JSON text (what ``c`` copies); secrets a store from before the scrubber holds are removed."""
    from tracelens.secrets import scrub_value

    return json.dumps(scrub_value(trace_jsonable(row)), indent=2, ensure_ascii=False, default=str)


# --------------------------------------------------------------------------- refusal explanation


@dataclass(frozen=True)
class RefusalExplanation:
    label: str
    score: float | None
    source: str | None
    category: str | None
    evidence: str | None
    spans: tuple[tuple[int, int], ...]  # spans of ``visible(response_text)`` to highlight
    explanation: str


_QUOTED = re.compile(r'"([^"]{2,})"')


def refusal_explanation(trace: dict) -> RefusalExplanation | None:
    """Why a trace is labelled a refusal, and where in the response; None when it is not one."""
    label = trace.get("refusal")
    if label not in ("partial", "full"):
        return None
    evidence = trace.get("refusal_evidence") or ""
    source = trace.get("refusal_source")
    text = visible(trace.get("response_text") or "")
    spans: list[tuple[int, int]] = []
    low = text.lower()
    for snippet in _QUOTED.findall(evidence) or ([evidence] if evidence and source != "structured" else []):
        s = visible(snippet).strip(" .…").lower()
        if not s:
            continue
        i = low.find(s)
        while i >= 0 and len(spans) < 10:
            spans.append((i, i + len(s)))
            i = low.find(s, i + len(s))
    score = trace.get("refusal_score")
    how = {
        "structured": "the provider itself signalled a refusal",
        "text": "the response text matches refusal phrasing",
        "semantic": "the response is semantically close to known refusals",
    }.get(source or "", "the refusal detector fired")
    kind = "a partial refusal (it declines part and answers part)" if label == "partial" else "a full refusal"
    explanation = f"Labelled {kind}: {how}"
    if score is not None:
        explanation += f" (score {score:.2f})"
    if trace.get("refusal_category"):
        explanation += f"; category {trace['refusal_category']}"
    explanation += "."
    if trace.get("refusal_version"):
        explanation += f" Detector {trace['refusal_version']}."
    return RefusalExplanation(label, score, source, trace.get("refusal_category"), evidence or None,
                              tuple(sorted(set(spans))), explanation)


# --------------------------------------------------------------------------- context: prompt and snapshot history


@dataclass(frozen=True)
class Version:
    """One distinct value (a system prompt or a served model) over time."""

    number: int  # 1 = oldest
    key: str | None  # system_prompt_hash or model id
    first_seen: dt.datetime
    last_seen: dt.datetime
    traces: int


@dataclass
class TraceContext:
    """What had changed around a trace: its system prompt version and served snapshot."""

    segment: str  # the app the histories are computed over
    prompt_versions: list[Version]
    prompt_current: int | None  # index into prompt_versions
    prompt_text: str | None
    previous_prompt_text: str | None
    prompt_diff: str  # unified diff previous -> this version ('' when no previous)
    models: list[Version]
    model_current: int | None
    notes: list[str] = field(default_factory=list)
    templated: bool = False  # too many distinct prompts to list: probably templated per request

    @property
    def prompt_version(self) -> Version | None:
        return None if self.prompt_current is None else self.prompt_versions[self.prompt_current]

    @property
    def previous_version(self) -> Version | None:
        i = self.prompt_current
        return None if i is None or i == 0 else self.prompt_versions[i - 1]


MAX_VERSIONS = 40
RECENT_CHANGE = dt.timedelta(days=7)


def _ago(d: dt.timedelta) -> str:
    s = d.total_seconds()
    if s < 3600:
        return f"{max(1, round(s / 60))} min"
    if s < 2 * 86400:
        h, m = divmod(round(s / 60), 60)
        return f"{h} h {m:02d} min" if m else f"{h} h"
    return f"{s / 86400:.1f} days"


def _versions(df: pl.DataFrame, key: str) -> list[Version]:
    df = df.sort("first", key, nulls_last=True)
    return [
        Version(i + 1, k, first, last, n)
        for i, (k, first, last, n) in enumerate(df.select(key, "first", "last", "n").iter_rows())
    ]


def unified_diff(old: str | None, new: str | None, old_name: str, new_name: str, max_lines: int = 400) -> str:
    """A unified diff of two texts ('' when equal), capped at ``max_lines`` lines."""
    a = (old or "").splitlines()
    b = (new or "").splitlines()
    lines = list(difflib.unified_diff(a, b, old_name, new_name, n=2, lineterm=""))
    if len(lines) > max_lines:
        lines = lines[:max_lines] + [f"… {len(lines) - max_lines} more diff lines"]
    return "\n".join(lines)


def trace_context(store: Store, trace: dict) -> TraceContext:
    """System-prompt and snapshot history of the trace's app, positioned at the trace."""
    app = trace.get("app")
    ts: dt.datetime = trace["timestamp"]
    seg = pl.col("app").is_null() if app is None else pl.col("app") == app
    base = store.scan().filter(seg)
    agg = [pl.col("timestamp").min().alias("first"), pl.col("timestamp").max().alias("last"), pl.len().alias("n")]
    prompts_lf = base.group_by("system_prompt_hash").agg(agg)
    family = trace.get("model_family")
    mbase = base.filter(pl.col("model_family") == family) if family else base
    # errors carry no returned model: they are not a "snapshot" in this history
    models_lf = mbase.filter(pl.col("model_returned").is_not_null()).group_by("model_returned").agg(agg)
    prompts, models = pl.collect_all([prompts_lf, models_lf])
    versions = _versions(prompts, "system_prompt_hash")
    mversions = _versions(models, "model_returned")
    h = trace.get("system_prompt_hash")
    cur = next((i for i, v in enumerate(versions) if v.key == h), None)
    mcur = next((i for i, v in enumerate(mversions) if v.key == trace.get("model_returned")), None)
    templated = len(versions) > MAX_VERSIONS
    prev_text = None
    diff = ""
    notes: list[str] = []
    label = f"app {app}" if app else "traces without an app"
    if cur is not None and cur > 0:
        prev = versions[cur - 1]
        row = (
            store.scan(since=prev.first_seen, until=prev.first_seen + dt.timedelta(microseconds=1))
            .filter(seg & ((pl.col("system_prompt_hash") == prev.key) if prev.key else pl.col("system_prompt_hash").is_null()))
            .select("system_prompt").head(1).collect()
        )
        prev_text = row.item(0, 0) if row.height else None
        diff = unified_diff(prev_text, trace.get("system_prompt"), f"v{prev.number}", f"v{cur + 1}")
    if cur is not None:
        v = versions[cur]
        since = ts - v.first_seen
        if cur > 0 and since <= RECENT_CHANGE:
            notes.append(
                f"The system prompt changed {_ago(since)} before this trace: v{v.number} first seen "
                f"{v.first_seen:%Y-%m-%d %H:%M} UTC ({label})."
            )
        later = [x for x in versions if x.first_seen > v.first_seen]
        if later:
            notes.append(f"It was replaced later: v{later[0].number} from {later[0].first_seen:%Y-%m-%d %H:%M} UTC.")
    if templated:
        notes.append(f"{len(versions):,} distinct system prompts in {label}: probably templated per request.")
    if mcur is not None:
        mv = mversions[mcur]
        since = ts - mv.first_seen
        if mcur > 0 and since <= RECENT_CHANGE:
            notes.append(
                f"The served snapshot changed {_ago(since)} before this trace: {mv.key} first seen "
                f"{mv.first_seen:%Y-%m-%d %H:%M} UTC (previously {mversions[mcur - 1].key})."
            )
    if trace.get("model_is_alias"):
        notes.append(
            f"The request named the alias {trace.get('model_requested')!s}: the snapshot behind it can change "
            "without any change on your side."
        )
    if not notes:
        notes.append("No system-prompt or snapshot change in the week before this trace.")
    return TraceContext(
        segment=label,
        prompt_versions=versions,
        prompt_current=cur,
        prompt_text=trace.get("system_prompt"),
        previous_prompt_text=prev_text,
        prompt_diff=diff,
        models=mversions,
        model_current=mcur,
        notes=notes,
        templated=templated,
    )


# --------------------------------------------------------------------------- related traces

RELATED_COLUMNS = ("trace_id", "timestamp", "user_id", "model_returned", "refusal", "prompt_text", "response_text")


def iso_week(t: dt.datetime) -> str:
    y, w, _ = t.isocalendar()
    return f"{y}-W{w:02d}"


@dataclass
class WeekSummary:
    week: str
    traces: int
    refusals: int


def same_prompt_traces(store: Store, trace: dict, limit: int = 500) -> tuple[pl.DataFrame, list[WeekSummary]]:
    """Other traces with the identical ``prompt_hash`` (any week), newest first, and a per-week summary."""
    h = trace.get("prompt_hash")
    if not h:
        return empty_frame(RELATED_COLUMNS), []
    lf = store.scan().filter((pl.col("prompt_hash") == h) & (pl.col("trace_id") != trace["trace_id"]))
    df = lf.select(list(RELATED_COLUMNS)).sort(["timestamp", "trace_id"], descending=True).collect()
    weeks = (
        df.with_columns(pl.col("timestamp").dt.strftime("%G-W%V").alias("week"))
        .group_by("week")
        .agg(pl.len().alias("n"), pl.col("refusal").is_in(["partial", "full"]).sum().alias("r"))
        .sort("week")
    )
    summary = [WeekSummary(w, n, r) for w, n, r in weeks.iter_rows()]
    return df.head(limit), summary


SIMILAR_WINDOW = dt.timedelta(days=28)


def _embedding_model(store: Store, what: str) -> tuple[Any, str]:
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


def similar_traces(store: Store, trace: dict, k: int = 20, window: dt.timedelta = SIMILAR_WINDOW) -> pl.DataFrame:
    """Nearest neighbours of the trace's prompt by embedding (within ±``window``), with a ``similarity`` column.

    Uses only vectors already in the store: browsing never loads a model or
    writes a vector. Raises ``NotAvailable`` (naming the command to run) when
    the store, or this trace's prompt, has no embedding.
    """
    embed, model = _embedding_model(store, "similar traces")
    from tracelens.hashing import text_hash

    prompt = trace.get("prompt_text")
    if not prompt or not prompt.strip():
        raise NotAvailable("similar traces not available: this trace has no prompt text")
    found, _ = embed.load_vectors(store, model, [text_hash(prompt)])
    if not found:
        raise NotAvailable("similar traces not available: this trace's prompt has no embedding yet "
                           "(run `tracelens embed`)")
    ts = trace["timestamp"]
    try:
        hits = embed.nearest(store, like=trace["trace_id"], k=k, since=ts - window, until=ts + window, model=model)
    except (ValueError, RuntimeError, OSError) as e:
        raise NotAvailable(f"similar traces not available: {e}") from None
    return _hits_frame(store, hits, exclude=trace["trace_id"]).head(k)


def semantic_search(store: Store, text: str, k: int = 200, since: dt.datetime | None = None,
                    until: dt.datetime | None = None) -> pl.DataFrame:
    """Traces whose prompt is semantically like ``text`` (best first, with a ``similarity`` column).

    Embeds ``text`` with the store's embedding model (loading it on first use).
    """
    embed, model = _embedding_model(store, "semantic search")
    try:
        hits = embed.nearest(store, text, k=k, since=since, until=until, model=model)
    except (ValueError, RuntimeError, OSError) as e:
        raise NotAvailable(f"semantic search not available: {e}") from None
    return _hits_frame(store, hits)


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


def _hits_frame(store: Store, hits: list[tuple[str, float]], exclude: str | None = None) -> pl.DataFrame:
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


# --------------------------------------------------------------------------- word diff


_TOKEN = re.compile(r"\s+|\w+(?:['’-]\w+)*|[^\w\s]", re.UNICODE)
MAX_DIFF_TOKENS = 6000


def word_diff(a: str | None, b: str | None) -> list[tuple[str, str]]:
    """Word-level diff of ``a`` -> ``b`` as (op, text) runs; op is 'equal', 'delete' or 'insert'.

    Very long texts (over ``MAX_DIFF_TOKENS`` tokens) fall back to a line diff
    to keep the cost bounded.
    """
    a, b = a or "", b or ""
    ta, tb = _TOKEN.findall(a), _TOKEN.findall(b)
    if len(ta) > MAX_DIFF_TOKENS or len(tb) > MAX_DIFF_TOKENS:
        ta, tb = a.splitlines(keepends=True), b.splitlines(keepends=True)
    sm = difflib.SequenceMatcher(None, ta, tb, autojunk=False)
    out: list[tuple[str, str]] = []
    for op, i1, i2, j1, j2 in sm.get_opcodes():
        if op == "equal":
            out.append(("equal", "".join(ta[i1:i2])))
        else:
            if i2 > i1:
                out.append(("delete", "".join(ta[i1:i2])))
            if j2 > j1:
                out.append(("insert", "".join(tb[j1:j2])))
    return out


# --------------------------------------------------------------------------- exports


def safe_name(trace_id: str) -> str:
    """A file-name-safe form of a trace id (ids come from logs and may contain anything)."""
    clean = re.sub(r"[^A-Za-z0-9._-]", "_", trace_id).strip("._")[:80] or "trace"
    if clean != trace_id:
        clean += "-" + hashlib.sha256(trace_id.encode("utf-8", "surrogatepass")).hexdigest()[:8]
    return clean


@dataclass
class Reproduction:
    """A ready-to-run reproduction of one trace's request."""

    trace_id: str
    model: str
    body: str  # ASCII-only compact JSON
    curl: str
    python: str
    notes: list[str]


ANTHROPIC_VERSION = "2023-06-01"


def reproduction(trace: dict, model: str | None = None) -> Reproduction:
    """curl and Python scripts that resend the trace's request to its pinned snapshot.

    The body is the replay body (``tracelens.replay.request.build_plan``):
    the recorded request with the model pinned and ``stream`` removed. It is
    written as ASCII-only JSON (same values, non-ASCII as ``\\uXXXX``), so the
    scripts contain no raw control or bidi characters from the logs.
    Raises ``ValueError`` when the trace cannot be replayed (the message says why).
    """
    try:
        from tracelens.replay.request import ReplayError, build_plan
    except ImportError:  # pragma: no cover - the replay core ships with tracelens
        raise NotAvailable("reproduction export needs tracelens.replay") from None
    try:
        plan = build_plan(trace, n=1, model=model)
    except ReplayError as e:
        raise ValueError(str(e)) from None
    body = json.dumps(plan.body_json, ensure_ascii=True, separators=(",", ":"))
    tid = str(trace.get("trace_id"))
    notes = list(plan.warnings)
    header = [
        f"trace {json.dumps(tid)[1:-1]} at {trace.get('timestamp')}",
        f"model pinned to {plan.model} (requested {trace.get('model_requested')})",
    ]
    header += notes
    comment = "".join(f"# {ascii_line(h)}\n" for h in header)
    curl = (
        "#!/bin/sh\n"
        "# Reproduce a tracelens trace with curl. Needs ANTHROPIC_API_KEY (and optionally ANTHROPIC_BASE_URL).\n"
        + comment
        + 'curl -sS "${ANTHROPIC_BASE_URL:-https://api.anthropic.com}/v1/messages" \\\n'
        '  -H "x-api-key: $ANTHROPIC_API_KEY" \\\n'
        f"  -H 'anthropic-version: {ANTHROPIC_VERSION}' \\\n"
        "  -H 'content-type: application/json' \\\n"
        "  --data-binary @- <<'TRACELENS_BODY'\n"
        f"{body}\n"
        "TRACELENS_BODY\n"
    )
    python = (
        '"""Reproduce a tracelens trace: POST the exact request body (standard library only).\n\n'
        'Reads ANTHROPIC_API_KEY (never written here) and optionally ANTHROPIC_BASE_URL.\n"""\n'
        + comment
        + "import json\nimport os\nimport sys\nimport urllib.error\nimport urllib.request\n\n"
        + f"BODY = {body!r}\n\n"
        + "url = os.environ.get('ANTHROPIC_BASE_URL', 'https://api.anthropic.com').rstrip('/') + '/v1/messages'\n"
        + "headers = {\n"
        + "    'x-api-key': os.environ['ANTHROPIC_API_KEY'],\n"
        + f"    'anthropic-version': '{ANTHROPIC_VERSION}',\n"
        + "    'content-type': 'application/json',\n"
        + "}\n"
        + "request = urllib.request.Request(url, data=BODY.encode('ascii'), headers=headers, method='POST')\n"
        + "try:\n"
        + "    with urllib.request.urlopen(request, timeout=600) as response:\n"
        + "        print(json.dumps(json.load(response), indent=2))\n"
        + "except urllib.error.HTTPError as e:\n"
        + "    print(e.code, e.read().decode('utf-8', 'replace'), file=sys.stderr)\n"
        + "    sys.exit(1)\n"
    )
    return Reproduction(tid, plan.model, body, curl, python, notes)


def ascii_line(text: str) -> str:
    """One line of pure printable ASCII (for comments in generated scripts)."""
    s = json.dumps(" ".join(str(text).split()), ensure_ascii=True)[1:-1]
    return re.sub(r"[^\x20-\x7e]", "?", s)


@dataclass
class Export:
    paths: list[Path]
    text: str  # what goes to the clipboard


def export_trace_json(trace: dict, directory: Path) -> Export:
    """Write the trace as JSON to ``directory/<id>.json``; returns the path and the JSON text."""
    text = trace_json(trace)
    directory.mkdir(parents=True, exist_ok=True)
    p = directory / f"{safe_name(str(trace['trace_id']))}.json"
    p.write_text(text + "\n", encoding="utf-8")
    return Export([p], text)


def export_reproduction(trace: dict, directory: Path, model: str | None = None) -> Export:
    """Write ``<id>.repro.sh`` (curl) and ``<id>.repro.py`` into ``directory``."""
    r = reproduction(trace, model=model)
    directory.mkdir(parents=True, exist_ok=True)
    stem = safe_name(str(trace["trace_id"]))
    sh = directory / f"{stem}.repro.sh"
    py = directory / f"{stem}.repro.py"
    sh.write_text(r.curl, encoding="ascii")
    sh.chmod(0o755)
    py.write_text(r.python, encoding="ascii")
    return Export([sh, py], r.curl)


def shell_quote(path: Path) -> str:
    return shlex.quote(str(path))


# --------------------------------------------------------------------------- weekly findings


@dataclass
class WeeklyFindings:
    """Findings of the latest week, with where they came from."""

    findings: list[Any]  # tracelens.analysis.findings.Finding
    source: str
    window: str = ""
    notes: list[str] = field(default_factory=list)


def weekly_findings(store: Store, report_path: str | Path | None = None, now: dt.datetime | None = None,
                    progress: Callable[[str], None] | None = None, embed: bool = False,
                    week: str | None = None) -> WeeklyFindings:
    """Findings from a saved drift report JSON, else computed by ``tracelens.weekly.run_weekly``.

    Computing runs the weekly analysis on ``week`` (e.g. ``2026-W47``; default
    the last complete ISO week) against the week before (it may refresh stored refusal labels, as `tracelens
    weekly` does). ``embed=False`` (the default here) skips computing new
    embeddings, so the screen answers in seconds; semantic findings then
    need a full `tracelens weekly` run, and the report's notes say so.
    """
    if report_path:
        return load_findings_report(report_path)
    try:
        from tracelens.weekly import run_weekly
    except ImportError:
        raise NotAvailable(
            "drift findings not available in this build: run `tracelens weekly --json > report.json` and start "
            "`tracelens tui --report report.json`"
        ) from None
    report = run_weekly(store, week, now=now, embed=embed, progress=progress)
    return WeeklyFindings(list(report.findings), "tracelens weekly (computed now)", _window_label(report),
                          list(report.notes))


def _window_label(report: Any) -> str:
    try:
        c, b = report.current, report.baseline
        return f"{c.start:%Y-%m-%d} → {c.end:%Y-%m-%d} ({c.n:,} traces) vs the week before ({b.n:,})"
    except (AttributeError, TypeError):
        return ""


def load_findings_report(path: str | Path) -> WeeklyFindings:
    """Findings from a drift report JSON file (``DriftReport.to_dict()`` form)."""
    from tracelens.analysis.findings import Finding

    p = Path(path)
    try:
        obj = json.loads(p.read_text(encoding="utf-8"))
    except (OSError, ValueError) as e:
        raise NotAvailable(f"cannot read drift report {p}: {e}") from None
    out = []
    for d in obj.get("findings") or []:
        fs = d.get("first_seen")
        out.append(Finding(
            kind=d.get("kind", "?"), segment=d.get("segment", ""), direction=d.get("direction", "changed"),
            baseline_value=d.get("baseline_value"), current_value=d.get("current_value"), effect=d.get("effect"),
            ci_low=d.get("ci_low"), ci_high=d.get("ci_high"), p_value=d.get("p_value"), q_value=d.get("q_value"),
            significant=bool(d.get("significant")), severity=d.get("severity", "info"),
            first_seen=dt.datetime.fromisoformat(fs.replace("Z", "+00:00")) if fs else None,
            summary=d.get("summary", ""), evidence=tuple(d.get("evidence") or ()),
        ))
    w = (obj.get("windows") or {}).get("current") or {}
    return WeeklyFindings(out, str(p), f"{w.get('start', '?')} → {w.get('end', '?')}" if w else "",
                          [str(n) for n in obj.get("notes") or []])
