"""Time expressions (``tracelens.timeexpr``): the one reader behind --since/--until/--week/--baseline/--current
and the TUI's time field. Every accepted form, the bound semantics, and the errors."""

from __future__ import annotations

import datetime as dt

import pytest

from tests.test_tui_data import NOW
from tracelens.timeexpr import TimeExprError, TimeWindow, iso_week, parse_bound, parse_window, week_of

UTC = dt.UTC


def T(s: str) -> dt.datetime:
    return dt.datetime.fromisoformat(s).replace(tzinfo=UTC)


@pytest.mark.parametrize(
    ("text", "since", "until"),
    [
        ("yesterday 3pm", "2026-11-21 14:00", "2026-11-21 16:00"),
        ("around 3pm yesterday", "2026-11-21 14:00", "2026-11-21 16:00"),
        ("2026-11-18 15:00 ±2h", "2026-11-18 13:00", "2026-11-18 17:00"),
        ("2026-11-18 15:00 +-30m", "2026-11-18 14:30", "2026-11-18 15:30"),
        ("2026-11-18 15:00 +/- 90 min", "2026-11-18 13:30", "2026-11-18 16:30"),
        ("yesterday 3pm ±2h", "2026-11-21 13:00", "2026-11-21 17:00"),
        ("2026-11-18T15:00Z", "2026-11-18 14:00", "2026-11-18 16:00"),
        ("2026-11-18 13:00 .. 17:00", "2026-11-18 13:00", "2026-11-18 17:00"),
        ("2026-11-18 .. 2026-11-20", "2026-11-18 00:00", "2026-11-21 00:00"),
        ("2026-11-16..2026-11-22", "2026-11-16 00:00", "2026-11-23 00:00"),
        ("2026-11-18T10:00..2026-11-18T12:30", "2026-11-18 10:00", "2026-11-18 12:30"),
        ("2026-W46..2026-W47", "2026-11-09 00:00", "2026-11-23 00:00"),
        ("2026-11-18", "2026-11-18 00:00", "2026-11-19 00:00"),
        ("yesterday", "2026-11-21 00:00", "2026-11-22 00:00"),
        ("tue 9:30", "2026-11-17 08:30", "2026-11-17 10:30"),
        ("last friday 15:00", "2026-11-20 14:00", "2026-11-20 16:00"),
        ("2026-W47", "2026-11-16 00:00", "2026-11-23 00:00"),
        ("2026w47", "2026-11-16 00:00", "2026-11-23 00:00"),
        ("7d", "2026-11-15 10:00", "2026-11-22 10:00"),
        ("last 3 days", "2026-11-19 10:00", "2026-11-22 10:00"),
    ],
)
def test_windows(text, since, until):
    w = parse_window(text, now=NOW)
    assert (w.since, w.until) == (w.start, w.end) == (T(since), T(until))


@pytest.mark.parametrize(
    ("text", "since", "until"),
    [
        # what --since/--until always accepted, read as before
        ("2026-11-18", "2026-11-18 00:00", "2026-11-19 00:00"),
        ("2026-11-18T10:00", "2026-11-18 10:00", "2026-11-18 10:00"),
        ("2026-11-18 10:00:00+02:00", "2026-11-18 08:00", "2026-11-18 08:00"),
        ("today", "2026-11-22 00:00", "2026-11-23 00:00"),
        ("yesterday", "2026-11-21 00:00", "2026-11-22 00:00"),
        ("7d", "2026-11-15 10:00", "2026-11-15 10:00"),
        ("12h", "2026-11-21 22:00", "2026-11-21 22:00"),
        ("now", "2026-11-22 10:00", "2026-11-22 10:00"),
        # and what only the TUI accepted until now
        ("yesterday 3pm", "2026-11-21 15:00", "2026-11-21 15:00"),
        ("yesterday 3pm ±2h", "2026-11-21 13:00", "2026-11-21 17:00"),
        ("2026-W47", "2026-11-16 00:00", "2026-11-23 00:00"),
        ("2026-11-18 13:00 .. 17:00", "2026-11-18 13:00", "2026-11-18 17:00"),
    ],
)
def test_bounds(text, since, until):
    assert parse_bound(text, now=NOW) == T(since)
    assert parse_bound(text, now=NOW, end=True) == T(until)


def test_empty_zones_and_weeks():
    assert parse_window("  ", now=NOW) is None and parse_bound(None) is None and parse_bound("") is None
    w = parse_window("yesterday 3pm", now=NOW, tz="Europe/Paris")  # 15:00 CET = 14:00 UTC
    assert w.since == T("2026-11-21 13:00")
    assert parse_bound("2026-11-18 10:00", tz="Europe/Paris") == T("2026-11-18 09:00")
    assert iso_week(2026, 47) == TimeWindow(T("2026-11-16 00:00"), T("2026-11-23 00:00"), "2026-W47")
    assert week_of(T("2026-11-22 23:59")).label == "2026-W47" and week_of(dt.date(2026, 11, 23)).label == "2026-W48"
    assert iso_week(2026, 47).days == (dt.date(2026, 11, 16), dt.date(2026, 11, 22))
    assert iso_week(2026, 47).describe() == "2026-11-16 00:00 → 2026-11-23 00:00 UTC"


def test_errors_are_one_clear_message():
    for bad in ("3", "blah", "3pm ±2x", "2026-13-45", "yesterday 25:00", "2026-11-18T10:00..soon"):
        with pytest.raises(TimeExprError, match="cannot read time .*try 'yesterday 3pm'"):
            parse_window(bad, now=NOW)
        with pytest.raises(TimeExprError, match="cannot read time"):
            parse_bound(bad, now=NOW)
    with pytest.raises(TimeExprError, match="ends before it starts"):
        parse_window("2026-11-18 17:00 .. 13:00", now=NOW)
    with pytest.raises(TimeExprError, match="no ISO week 2026-W60"):
        parse_window("2026-W60", now=NOW)
    with pytest.raises(TimeExprError, match="point in time, not a window"):
        parse_window("2026-11-18T10:00", now=NOW, point_width=None)
    assert issubclass(TimeExprError, ValueError)


def test_embedded_nul_and_control_characters_are_refused():
    # datetime.fromisoformat stops at an embedded NUL: a prefix must never be read as a valid time
    for bad in ("2026-11-18T10:00:00\x00", "2026-11-18T10:00:00+00:00\x00tail", "\x002026-11-18T10:00:00Z",
                "yesterday\x1b[2J"):
        with pytest.raises(TimeExprError, match="control characters"):
            parse_bound(bad)
        with pytest.raises(TimeExprError, match="control characters"):
            parse_window(f"{bad}..2026-11-20")


def test_every_time_option_uses_the_one_reader():
    """--since/--until take the TUI's forms; --week/--baseline/--current refuse a bare instant, as a usage error."""
    from click.testing import CliRunner

    from tracelens.cli.main import cli

    runner = CliRunner()
    r = runner.invoke(cli, ["search", "--since", "yesterday 3pm ±2h", "--store", "/nonexistent-store", "--json"])
    assert "cannot read time" not in r.output
    r = runner.invoke(cli, ["search", "--since", "blah"])
    assert r.exit_code == 2 and "cannot read time 'blah'" in r.output and "--since" in r.output
    r = runner.invoke(cli, ["weekly", "--week", "2026-11-18T10:00"])
    assert r.exit_code == 2 and "not a window" in r.output
    r = runner.invoke(cli, ["drift", "--baseline", "2026-W46", "--current", "nonsense"])
    assert r.exit_code == 2 and "cannot read time 'nonsense'" in r.output
