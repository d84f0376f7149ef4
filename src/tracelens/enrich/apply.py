"""Re-running enrichment over a stored table, one date partition at a time.

``refresh_refusals(store)`` recomputes the refusal columns of every partition
holding rows whose ``refusal_version`` differs from the current detector's
(or all partitions with ``force``). Each partition is rewritten atomically
through ``Store.rewrite_partition``, so an interrupted run leaves every
partition either old or new, and re-running continues where it stopped: the
operation is idempotent and records the detector version in every row.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass

import polars as pl

from tracelens.store import Store


@dataclass
class EnrichResult:
    """What ``refresh_refusals`` did: partitions looked at and rewritten, rows rewritten, the detector version written,
    and how many rows' refusal labels changed.
    """

    partitions_total: int
    partitions_rewritten: int
    rows_rewritten: int
    detector_version: str
    changed_labels: int

    def to_dict(self) -> dict:
        """The result as JSON-ready data."""
        return self.__dict__.copy()


def refresh_refusals(
    store: Store,
    since: dt.date | None = None,
    until: dt.date | None = None,
    force: bool = False,
    progress: Callable[[dt.date, int], None] | None = None,
) -> EnrichResult:
    """Bring the refusal columns of ``store`` up to the current detector version."""
    from tracelens.enrich.refusal import DETECTOR_VERSION, detect_frame

    days = [d for d in store.dates() if (since is None or d >= since) and (until is None or d <= until)]
    rewritten = rows = changed = 0
    for day in days:
        if not force:
            stale = (
                store.scan(since=day, until=day)
                .filter(pl.col("refusal_version").is_null() | (pl.col("refusal_version") != DETECTOR_VERSION))
                .select(pl.len())
                .collect()
                .item()
            )
            if stale == 0:
                continue
        counter = {"changed": 0}

        def transform(df: pl.DataFrame, counter=counter) -> pl.DataFrame:
            before = df["refusal"]
            out = detect_frame(df)
            counter["changed"] = int((out["refusal"].fill_null("") != before.fill_null("")).sum())
            return out

        n = store.rewrite_partition(day, transform)
        rewritten += 1
        rows += n
        changed += counter["changed"]
        if progress:
            progress(day, n)
    return EnrichResult(len(days), rewritten, rows, DETECTOR_VERSION, changed)
