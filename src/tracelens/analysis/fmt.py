"""Small, deterministic text formatters shared by finding summaries and renderers."""

from __future__ import annotations

import math
from datetime import UTC, datetime


def pct(x: float | None, digits: int = 1) -> str:
    """0.0123 -> '1.2%' (more digits for tiny rates so they do not read as 0.0%)."""
    if x is None or not math.isfinite(x):
        return "n/a"
    v = 100.0 * x
    if v != 0 and abs(v) < 0.1:
        return f"{v:.{digits + 1}f}%"
    return f"{v:.{digits}f}%"


def pp(x: float | None, digits: int = 1) -> str:
    """Signed percentage points: 0.015 -> '+1.5 pp'."""
    if x is None or not math.isfinite(x):
        return "n/a"
    v = 100.0 * x
    if v != 0 and abs(v) < 0.1:
        return f"{v:+.{digits + 1}f} pp"
    return f"{v:+.{digits}f} pp"


def pval(p: float | None) -> str:
    """p-value for humans: 'p=0.03', 'p=2e-07', 'p<1e-300'."""
    if p is None or not math.isfinite(p):
        return "p=n/a"
    if p == 0:
        return "p<1e-300"
    if p < 0.001:
        return f"p={p:.0e}"
    return f"p={p:.3f}" if p < 0.1 else f"p={p:.2f}"


def num(x: float | None, digits: int = 3) -> str:
    """Compact number with ``digits`` significant digits."""
    if x is None or (isinstance(x, float) and not math.isfinite(x)):
        return "n/a"
    if isinstance(x, str):
        return x
    if abs(x) >= 10 ** digits:
        return f"{x:,.0f}"
    return f"{x:.{digits}g}"


def ts(t: datetime | None) -> str:
    """'2024-05-02 14:03 UTC'."""
    if t is None:
        return "n/a"
    if t.tzinfo is None:
        t = t.replace(tzinfo=UTC)
    return t.astimezone(UTC).strftime("%Y-%m-%d %H:%M UTC")


def short(h: str | None, n: int = 8) -> str:
    """Shortened hash for display."""
    if h is None:
        return "(none)"
    return h[:n]


def clip(text: str | None, n: int = 60) -> str:
    """One-line excerpt of at most n characters."""
    t = " ".join(str(text or "").split())
    return t if len(t) <= n else t[: n - 3] + "..."


def moved(before: str, after: str, up: bool, before_detail: str = "", after_detail: str = "", unit: str = "",
          verbs: tuple[str, str] = ("rose", "fell")) -> str:
    """'rose from 1.2% to 3.4%' / 'fell from ...', or 'unchanged at 1.3%' when both values read the same.

    ``before`` and ``after`` are the values as shown; when rounding makes them
    equal the sentence must not say "fell from 1.3% to 1.3%". Details (counts)
    follow each value in parentheses; ``unit`` follows the values; ``verbs``
    say up and down (a share of traffic "grew" and "shrank").
    """
    u = f" {unit}" if unit else ""
    bd = f" ({before_detail})" if before_detail else ""
    ad = f" ({after_detail})" if after_detail else ""
    if before == after:
        both = f" ({before_detail}, then {after_detail})" if before_detail or after_detail else ""
        return f"unchanged at {after}{u}{both}"
    return f"{verbs[0] if up else verbs[1]} from {before}{bd} to {after}{u}{ad}"
