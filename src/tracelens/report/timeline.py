"""Daily series for the HTML report's time charts, computed from the two windows' trace frames.

Contract: :func:`build_timeline` takes the baseline and current frames that
``tracelens.weekly.prepare`` loaded (columns ``timestamp``, ``status``,
``refusal``, ``model_returned``/``model_requested`` and, when topics were
assigned, ``cluster_id``) plus the :class:`~tracelens.analysis.findings.DriftReport`
built from them, and returns a :class:`Timeline`:

* per UTC day and served snapshot (``model_returned``, else the requested
  name): traces, refusal-labelled traces and refusals -- the refusal rate per
  snapshot and each snapshot's share of the day's traffic;
* per UTC day and topic, for the topics that have a significant refusal
  finding (segments ``cluster=N (label)``): the same counts.

A refusal is counted the way the drift engine counts it: a successful trace
(``status`` not ``error``) whose label is present and not ``none``. Nothing
here tests anything or changes the analysis; the report's JSON is unaffected.
Output is deterministic (sorted by day, then key). Headless: polars only.
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass

import polars as pl

from tracelens.analysis.findings import DriftReport

#: snapshots drawn individually; the rest of the traffic is summed into "other"
MAX_SNAPSHOTS = 6
#: topics drawn as small multiples
MAX_TOPICS = 6
OTHER = "other"

_CLUSTER = re.compile(r"^cluster=(-?\d+)")


@dataclass(frozen=True)
class DayCount:
    """One UTC day of one group (a snapshot or a topic)."""

    day: dt.date
    key: str
    traces: int
    labelled: int  #: successful traces with a refusal label
    refusals: int

    @property
    def rate(self) -> float | None:
        return self.refusals / self.labelled if self.labelled else None


@dataclass(frozen=True)
class Timeline:
    """What the time charts draw; ``start``/``boundary``/``end`` frame the baseline and current windows."""

    start: dt.datetime
    boundary: dt.datetime
    end: dt.datetime
    snapshots: tuple[DayCount, ...] = ()
    snapshot_order: tuple[str, ...] = ()  #: by first trace, "other" last
    topics: tuple[DayCount, ...] = ()
    topic_order: tuple[str, ...] = ()  #: topic segments, most severe finding first


def topic_segments(report: DriftReport, limit: int = MAX_TOPICS) -> list[str]:
    """Segments ``cluster=N (label)`` with a significant refusal finding, most severe (then largest) first."""
    best: dict[str, tuple] = {}
    for f in report.findings:
        if f.significant and f.kind in ("refusal_rate", "refusal_rate_adjusted") and _CLUSTER.match(f.segment):
            rank = ({"alert": 0, "warn": 1, "info": 2}[f.severity], -abs(f.effect or 0.0), f.segment)
            if f.segment not in best or rank < best[f.segment]:
                best[f.segment] = rank
    return sorted(best, key=lambda s: best[s])[:limit]


def _counts(df: pl.DataFrame, key: pl.Expr) -> pl.DataFrame:
    ok = pl.col("status").fill_null("ok") != "error" if "status" in df.columns else pl.lit(True)
    labelled = ok & pl.col("refusal").is_not_null() if "refusal" in df.columns else pl.lit(False)
    refused = labelled & (pl.col("refusal") != "none") if "refusal" in df.columns else pl.lit(False)
    return (
        df.select(
            pl.col("timestamp").dt.convert_time_zone("UTC").dt.date().alias("day"),
            key.alias("key"),
            labelled.alias("_l"),
            refused.fill_null(False).alias("_r"),
        )
        .group_by("day", "key")
        .agg(pl.len().alias("traces"), pl.col("_l").sum().alias("labelled"), pl.col("_r").sum().alias("refusals"))
        .sort("day", "key")
    )


def _rows(df: pl.DataFrame) -> tuple[DayCount, ...]:
    return tuple(
        DayCount(r["day"], str(r["key"]), int(r["traces"]), int(r["labelled"]), int(r["refusals"]))
        for r in df.iter_rows(named=True)
    )


def build_timeline(baseline: pl.DataFrame, current: pl.DataFrame, report: DriftReport) -> Timeline | None:
    """The daily series behind the time charts (None when neither window has a timestamped trace)."""
    frames = [f for f in (baseline, current) if f is not None and f.height and "timestamp" in f.columns]
    if not frames:
        return None
    cols = ["timestamp"] + [c for c in ("status", "refusal", "model_returned", "model_requested", "cluster_id")
                            if all(c in f.columns for f in frames)]
    df = pl.concat([f.select(cols) for f in frames], how="vertical_relaxed").filter(pl.col("timestamp").is_not_null())
    if df.is_empty():
        return None
    start = report.baseline.start or df["timestamp"].min()
    boundary = report.current.start or report.baseline.end or df["timestamp"].min()
    end = report.current.end or df["timestamp"].max()

    model_cols = [c for c in ("model_returned", "model_requested") if c in df.columns]
    model = pl.coalesce(model_cols).fill_null("unknown") if model_cols else pl.lit("unknown")
    # snapshots in order of their first trace; the largest MAX_SNAPSHOTS keep their own colour
    first = (
        df.select(model.alias("m"), "timestamp")
        .group_by("m")
        .agg(pl.col("timestamp").min().alias("t"), pl.len().alias("n"))
        .sort("t", "m")
    )
    big = set(first.sort(["n", "m"], descending=[True, False]).head(MAX_SNAPSHOTS)["m"].to_list())
    order = [m for m in first["m"].to_list() if m in big]
    if first.height > len(order):
        order.append(OTHER)
    snap_key = pl.when(model.is_in(sorted(big))).then(model).otherwise(pl.lit(OTHER))
    snapshots = _rows(_counts(df, snap_key))

    topics: tuple[DayCount, ...] = ()
    segs = topic_segments(report) if "cluster_id" in df.columns else []
    if segs:
        ids = {int(_CLUSTER.match(s).group(1)): s for s in segs}
        sub = df.filter(pl.col("cluster_id").is_in(list(ids)))
        if sub.height:
            key = pl.col("cluster_id").cast(pl.Int64).replace_strict(ids, return_dtype=pl.String)
            topics = _rows(_counts(sub, key))
    return Timeline(
        start=start,
        boundary=boundary,
        end=end,
        snapshots=snapshots,
        snapshot_order=tuple(order),
        topics=topics,
        topic_order=tuple(s for s in segs if any(t.key == s for t in topics)),
    )
