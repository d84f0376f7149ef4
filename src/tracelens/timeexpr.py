"""Time expressions: the one reader behind every time option of the CLI and the TUI's time filter.

Contract:

* ``parse_window(text, now=, tz=, point_width=)`` reads an expression into a
  half-open UTC ``TimeWindow`` ``[start, end)`` (None for an empty one). It
  backs ``--week``, ``--baseline`` and ``--current`` (which pass
  ``point_width=None``: a bare instant is not a window there) and the TUI's
  time field (an instant means ±``point_width``, one hour by default).
* ``parse_bound(text, now=, tz=, end=)`` reads the same expressions as one
  bound of a window, for ``--since`` (``end=False``) and ``--until``
  (``end=True``): an instant is itself; a span back from now (``7d``) is its
  start either way, as it always was; a day, a week, a range or a point with a
  width gives its start for ``--since`` and its (exclusive) end for
  ``--until``, so ``--until 2026-11-18`` includes that whole day.
* ``iso_week(year, week)`` is the ISO week as a window labelled
  ``2026-W47``; ``week_of(t)`` is the ISO week holding ``t``.
* Anything unreadable raises ``TimeExprError`` (a ``ValueError``) whose
  message quotes the input and lists forms that work; the CLI turns it into
  a usage error naming the option, the TUI shows it in its status line.

Accepted (case-insensitive; a time without a zone is in ``tz``, UTC unless
the caller says otherwise):

* an instant: ``now``, ``2026-11-18T15:00Z``, ``2026-11-18 15:00``,
  ``yesterday 3pm``, ``around 3:30pm yesterday``, ``mon 15:00``, ``15:00``;
* an instant with a width: ``2026-11-18 15:00 ±2h`` (also ``+-2h``, ``+/-30m``);
* a whole day: ``today``, ``yesterday``, ``tuesday``, ``last friday``, ``2026-11-18``;
* an ISO week: ``2026-W47`` (also ``2026w47``);
* a range: ``A .. B`` (also ``to``, ``until``, an en or em dash), each side any
  of the above; a day or a week on the right means its end, and a bare clock
  on the right is on the left side's day (``2026-11-18 13:00 .. 17:00``);
* a span back from now: ``7d``, ``12h``, ``90 min``, ``last 2h``, ``past 3 days``.

Control characters are refused outright: ``datetime.fromisoformat`` would
stop at an embedded NUL and read a prefix as a valid time.
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass

UTC = dt.UTC

#: an instant typed without a width ("yesterday 3pm") means "around then" in a window
DEFAULT_HALF_WIDTH = dt.timedelta(hours=1)

HINT = ("try 'yesterday 3pm', '2026-11-18 15:00 ±2h', '2026-11-18 13:00 .. 17:00', '2026-11-18', "
        "'2026-W47' or '7d'")


class TimeExprError(ValueError):
    """A time expression that cannot be read; the message is user-facing."""


@dataclass(frozen=True)
class TimeWindow:
    """A half-open UTC window ``[start, end)``; either side may be open (None) where a caller allows it."""

    start: dt.datetime | None
    end: dt.datetime | None
    label: str = ""

    # the names search filters use for the same two bounds
    @property
    def since(self) -> dt.datetime | None:
        """Alias of ``start``."""
        return self.start

    @property
    def until(self) -> dt.datetime | None:
        """Alias of ``end``."""
        return self.end

    @property
    def days(self) -> tuple[dt.date, dt.date]:
        """First and last calendar day (UTC) the window touches; both bounds must be set."""
        assert self.start is not None and self.end is not None
        return self.start.date(), (self.end - dt.timedelta(microseconds=1)).date()

    def describe(self) -> str:
        """``2026-11-21 14:00 → 2026-11-21 16:00 UTC`` (an open side shows as …)."""

        def f(t: dt.datetime | None) -> str:
            return "…" if t is None else t.strftime("%Y-%m-%d %H:%M")

        return f"{f(self.start)} → {f(self.end)} UTC"


def iso_week(year: int, week: int, tz: dt.tzinfo = UTC) -> TimeWindow:
    """ISO week ``year``-W``week`` (Monday 00:00 in ``tz`` to the next Monday), labelled ``2026-W47``."""
    try:
        monday = dt.date.fromisocalendar(year, week, 1)
    except ValueError:
        raise TimeExprError(f"no ISO week {year}-W{week:02d}") from None
    start = dt.datetime.combine(monday, dt.time(0), tz).astimezone(UTC)
    return TimeWindow(start, start + dt.timedelta(days=7), f"{year}-W{week:02d}")


def week_of(t: dt.datetime | dt.date) -> TimeWindow:
    """The ISO week (UTC) that holds ``t``."""
    y, w, _ = t.isocalendar()
    return iso_week(y, w)


_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
_DUR = re.compile(r"^(?P<n>\d+(?:\.\d+)?)\s*(?P<u>s|sec|secs|m|min|mins|h|hr|hrs|hours?|d|days?|w|weeks?)$")
_PLUSMINUS = re.compile(r"\s*(?:±|\+/-|\+-|\+/−)\s*(?P<d>[\d.]+\s*[a-z]+)\s*$")
_RANGE = re.compile(r"\s+(?:\.\.|to|until|–|—)\s+|\s*\.\.\s*")
_ISO_WEEK = re.compile(r"^(?P<y>\d{4})-?w(?P<w>\d{1,2})$")
_LAST = re.compile(r"^(?:last|past)\s+(?P<d>[\d.]+\s*[a-z]+)$")
_CLOCK = re.compile(
    r"^(?P<h>\d{1,2})(?::(?P<m>\d{2}))?(?::(?P<s>\d{2}))?\s*(?P<ampm>am|pm|a\.m\.|p\.m\.|h)?$"
)
_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")
_WEEKDAYS = ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")
_FILLER = ("around", "about", "approx", "approximately", "at", "~", "circa", "ca.")


def parse_duration(text: str) -> dt.timedelta:
    """'2h', '30m', '90 min', '1.5 hours', '3d', '1w' -> timedelta; ``TimeExprError`` otherwise."""
    m = _DUR.match(text.strip().lower())
    if not m:
        raise TimeExprError(f"cannot read duration {text!r}: use e.g. 30m, 2h, 1d")
    n = float(m.group("n"))
    unit = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days", "w": "weeks"}[m.group("u")[0]]
    return dt.timedelta(**{unit: n})


def _zone(tz: dt.tzinfo | str) -> dt.tzinfo:
    if not isinstance(tz, str):
        return tz
    if tz.upper() == "UTC":
        return UTC
    from zoneinfo import ZoneInfo

    try:
        return ZoneInfo(tz)
    except (ValueError, OSError) as e:  # ZoneInfoNotFoundError is a KeyError, caught below
        raise TimeExprError(f"unknown time zone {tz!r}") from e
    except KeyError:
        raise TimeExprError(f"unknown time zone {tz!r}") from None


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


def _day(word: str, today: dt.date) -> dt.date | None:
    w = word.strip().lower()
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
    if _DATE.match(w):
        try:
            return dt.date.fromisoformat(w)
        except ValueError:
            return None
    return None


def _iso_datetime(text: str, tz: dt.tzinfo) -> dt.datetime | None:
    s = text.strip()
    if not re.match(r"^\d{4}-\d{2}-\d{2}[tT ]", s):
        return None
    try:
        t = dt.datetime.fromisoformat(s.replace(" ", "T", 1))
    except ValueError:
        return None
    # a zone-less datetime is in the caller's zone (UTC unless it says otherwise)
    return t.replace(tzinfo=tz).astimezone(UTC) if t.tzinfo is None else t.astimezone(UTC)


@dataclass(frozen=True)
class _Span:
    start: dt.datetime
    end: dt.datetime | None = None  # None: an instant


def _point(text: str, now: dt.datetime, tz: dt.tzinfo) -> _Span:
    """One side of an expression: an instant, a whole day or an ISO week."""
    words = [w for w in text.strip().split() if w.lower() not in _FILLER]
    s = " ".join(words)
    low = s.lower()
    if low == "now":
        return _Span(now)
    m = _ISO_WEEK.match(low)
    if m:
        w = iso_week(int(m.group("y")), int(m.group("w")), tz)
        assert w.start is not None
        return _Span(w.start, w.end)
    today = now.astimezone(tz).date()
    day = _day(low, today)
    if day is not None:
        start = dt.datetime.combine(day, dt.time(0), tz).astimezone(UTC)
        return _Span(start, dt.datetime.combine(day + dt.timedelta(days=1), dt.time(0), tz).astimezone(UTC))
    # "<day> <clock>" or "<clock> <day>" or just "<clock>" (today)
    for split in range(len(words) + 1):
        head, tail = " ".join(words[:split]), " ".join(words[split:])
        for d_part, c_part in ((head, tail), (tail, head)):
            d = _day(d_part, today) if d_part else today
            c = _clock(c_part) if c_part else None
            if d is not None and c is not None:
                return _Span(dt.datetime.combine(d, c, tz).astimezone(UTC))
    t = _iso_datetime(s, tz)
    if t is not None:
        return _Span(t)
    raise TimeExprError(f"cannot read time {text.strip()!r}")


@dataclass(frozen=True)
class _Expr:
    start: dt.datetime
    end: dt.datetime | None  # None: an instant (``start``)
    ago: bool = False  # a span back from now ("7d")
    label: str = ""


def _parse(text: str, now: dt.datetime, tz: dt.tzinfo) -> _Expr:
    raw = text.strip()
    if _CONTROL.search(raw):
        raise TimeExprError(f"cannot read time {text!r}: it contains control characters")
    low = raw.lower()
    m = _ISO_WEEK.match(low)
    if m:
        w = iso_week(int(m.group("y")), int(m.group("w")), tz)
        assert w.start is not None
        return _Expr(w.start, w.end, label=w.label)
    m = _LAST.match(low)
    if m:
        return _Expr(now - parse_duration(m.group("d")), now, ago=True, label=raw)
    if _DUR.match(low):
        return _Expr(now - parse_duration(low), now, ago=True, label=raw)
    parts = _RANGE.split(raw, maxsplit=1)
    if len(parts) == 2 and parts[0].strip() and parts[1].strip():
        a = _point(parts[0], now, tz)
        right_clock = _clock(" ".join(w for w in parts[1].split() if w.lower() not in _FILLER))
        if right_clock is not None and a.end is None:  # "2026-11-18 13:00 .. 17:00": same day as the start
            until = dt.datetime.combine(a.start.astimezone(tz).date(), right_clock, tz).astimezone(UTC)
        else:
            b = _point(parts[1], now, tz)
            until = b.end if b.end is not None else b.start
        if until <= a.start:
            raise TimeExprError(f"the window {raw!r} ends before it starts")
        return _Expr(a.start, until, label=raw)
    m = _PLUSMINUS.search(raw)
    if m:
        width = parse_duration(m.group("d"))
        p = _point(raw[: m.start()], now, tz)
        return _Expr(p.start - width, p.start + width, label=raw)
    p = _point(raw, now, tz)
    return _Expr(p.start, p.end, label=raw)


def _read(text: str, now: dt.datetime | None, tz: dt.tzinfo | str) -> _Expr:
    now = (now or dt.datetime.now(UTC)).astimezone(UTC)
    try:
        return _parse(text, now, _zone(tz))
    except TimeExprError as e:
        msg = str(e)
        if msg.startswith(("cannot read time", "cannot read duration")) and "control characters" not in msg:
            raise TimeExprError(f"cannot read time {text.strip()!r}: {HINT}") from None
        raise


def parse_window(
    text: str | None,
    now: dt.datetime | None = None,
    tz: dt.tzinfo | str = "UTC",
    point_width: dt.timedelta | None = DEFAULT_HALF_WIDTH,
) -> TimeWindow | None:
    """Read a time expression (see the module docstring) into a UTC window; None for an empty one.

    An instant becomes ``[t − point_width, t + point_width)``; with
    ``point_width=None`` an instant is refused (drift windows need a span).
    Raises ``TimeExprError`` with a user-facing message.
    """
    if text is None or not text.strip():
        return None
    e = _read(text, now, tz)
    if e.end is None:
        if point_width is None:
            raise TimeExprError(
                f"{text.strip()!r} is a point in time, not a window: give a day, an ISO week (2026-W47), "
                "START..END, or a width such as '±2h'"
            )
        return TimeWindow(e.start - point_width, e.start + point_width, e.label)
    return TimeWindow(e.start, e.end, e.label)


def parse_bound(
    text: str | None,
    now: dt.datetime | None = None,
    tz: dt.tzinfo | str = "UTC",
    end: bool = False,
) -> dt.datetime | None:
    """Read a time expression as the start (or, with ``end``, the exclusive end) of a window; None when empty.

    See the module docstring for how each form maps to a bound. Raises
    ``TimeExprError`` with a user-facing message.
    """
    if text is None or not text.strip():
        return None
    e = _read(text, now, tz)
    if e.end is None or e.ago:
        return e.start
    return e.end if end else e.start
