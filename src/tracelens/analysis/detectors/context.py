"""What a detector sees: :class:`DetectorContext`, and the helpers detectors share.

Contract: ``_analyze`` in :mod:`tracelens.analysis.drift` normalises both
windows into one frame (``_w`` = 0 baseline, 1 current; text columns replaced
by derived ``_resp_len`` / ``_resp_hash`` / ``_ask`` / ``_topic`` / ``_bad``
columns), computes what several detectors need once (topics, model and topic
segments, the deterministic reference frame) and hands it to every detector
in a :class:`DetectorContext`. Detectors read the context and return drafts;
the only context fields they may append to are ``notes``, ``details`` and
``cluster_rows`` (side outputs of the report), and the engine appends each
detector's drafts to ``drafts`` before the next one runs. Nothing here does
I/O.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import date, datetime

import numpy as np
import polars as pl

from tracelens.analysis import fmt
from tracelens.analysis.config import DEFAULT_THRESHOLDS, DriftConfig
from tracelens.analysis.draft import Draft
from tracelens.analysis.findings import Detail
from tracelens.analysis.stats import changepoint
from tracelens.analysis.strata import EmbPair, Topics
from tracelens.analysis.variance import snapshot_drafts
from tracelens.modelcatalog import ModelCatalog

#: columns every statistical test carries (segments, evidence, dating); each test adds its own
BASE = ("trace_id", "timestamp", "_w", "_model", "_family")


@dataclass
class DetectorContext:
    """Both windows of one comparison and the options, as every detector sees them."""

    df: pl.DataFrame  #: both windows, one row per trace; ``_w`` is 0 (baseline) or 1 (current)
    cfg: DriftConfig
    kinds: frozenset[str]  #: the finding kinds asked for
    current_start: datetime | None
    topics: Topics
    prompt: EmbPair | None
    response: EmbPair | None
    notes: list[str]  #: report notes, in the order they were added
    segments: list[tuple[str, pl.Expr]]  #: per-model / per-family segments
    topic_segments: list[tuple[str, pl.Expr]] = field(default_factory=list)  #: per-topic refusal segments
    n_baseline: int = 0
    n_current: int = 0
    has_refusal: bool = False  #: some trace carries a refusal label
    present: Mapping[str, bool] = field(default_factory=dict)  #: text column -> has any value
    det: pl.DataFrame | None = None  #: the columns the deterministic checks read, both windows
    #: what "seen before" means: the distinct values (of ``drift._REF``) of the baseline plus earlier history
    ref: pl.DataFrame | None = None
    texts: dict[str, dict] = field(default_factory=dict)  #: kind -> hash -> text (system prompts, tools)
    catalog: ModelCatalog | None = None
    last_day: date | None = None  #: the current window's last day (window ends are exclusive)
    drafts: list[Draft] = field(default_factory=list)  #: drafts of the detectors that already ran
    details: list[Detail] = field(default_factory=list)
    cluster_rows: list[tuple[str, str, float, float]] = field(default_factory=list)  #: prompt-mix chart rows
    _snapshots: list[Draft] | None = None

    def thr(self, kind: str) -> float:
        """The practical threshold of ``kind`` (config, else the default, else 0)."""
        return float(self.cfg.thresholds.get(kind, DEFAULT_THRESHOLDS.get(kind, 0.0)))

    def topic_name(self, code: int) -> str:
        """Segment name of a topic: ``cluster=<id> (<label>)``, or ``cluster=<id>`` without a label."""
        label = topic_label(self, code)
        return f"cluster={code}" + (f" ({fmt.clip(label, 40)})" if label else "")

    def snapshots(self) -> list[Draft]:
        """The new-snapshot drafts (computed once: ``model_snapshot`` reports them, ``snapshot_behaviour`` splits on them)."""
        if self._snapshots is None:
            self._snapshots = snapshot_drafts(self.det, self.ref, self.catalog)
        return self._snapshots


def counts(sub: pl.DataFrame, flag: str) -> tuple[int, int, int, int]:
    """(flagged, rows) per window of ``sub``: ``(xb, nb, xc, nc)``."""
    agg = sub.group_by("_w").agg(pl.col(flag).sum().alias("x"), pl.len().alias("n"))
    d = {r["_w"]: (int(r["x"] or 0), int(r["n"])) for r in agg.iter_rows(named=True)}
    xb, nb = d.get(0, (0, 0))
    xc, nc = d.get(1, (0, 0))
    return xb, nb, xc, nc


def counts_where(df: pl.DataFrame, keep: pl.Expr, flag: str) -> tuple[int, int, int, int]:
    """:func:`counts` of the rows of ``df`` where ``keep`` holds, without a copy of them."""
    agg = df.lazy().filter(keep).group_by("_w").agg(pl.col(flag).sum().alias("x"), pl.len().alias("n")).collect()
    d = {r["_w"]: (int(r["x"] or 0), int(r["n"])) for r in agg.iter_rows(named=True)}
    xb, nb = d.get(0, (0, 0))
    xc, nc = d.get(1, (0, 0))
    return xb, nb, xc, nc


def dater(ctx: DetectorContext, sub: pl.DataFrame | Callable[[], pl.DataFrame], value: pl.Expr):
    """Closure that dates a change by a one-change-point scan over both windows in time order.

    The new regime is constrained to start in the current window: a step at
    the window boundary is dated at the first current trace, a change in the
    middle of the current window at the trace where it began. ``sub`` may be a
    function that selects the rows when the date is asked for (only
    significant findings are dated): a draft then holds no copy of them.
    """

    def run():
        rows = sub() if callable(sub) else sub
        s = rows.select("timestamp", "_w", value.cast(pl.Float64).alias("v")).drop_nulls().sort("timestamp", "_w")
        w = s.get_column("_w").to_numpy()
        first_cur = int(np.argmax(w == 1)) if (w == 1).any() else s.height
        k = changepoint(s.get_column("v").to_numpy(), min_index=first_cur)
        if k is None:
            return None
        return s.get_column("timestamp")[k]

    return run


def evidence_ids(sub: pl.DataFrame, by: list[str] | None = None, descending=False, k: int = 20) -> tuple[str, ...]:
    """Up to ``k`` trace ids of ``sub`` in the order of ``by`` (default: oldest first) -- a finding's evidence."""
    by = by or ["timestamp", "trace_id"]
    # lazy sort + head lets polars run a top-k instead of sorting the whole window
    top = sub.lazy().select(*dict.fromkeys([*by, "trace_id"])).sort(by, descending=descending).head(k).collect()
    return tuple(str(t) for t in top.get_column("trace_id").to_list())


def seg_phrase(seg: str) -> str:
    """' for <segment>' in a summary sentence; '' for the whole traffic."""
    return f" for {seg}" if seg else ""


def model_segments(df: pl.DataFrame, min_n: int) -> list[tuple[str, pl.Expr]]:
    """Per-model segments (present in both windows), and per-family ones where a family spans several models."""
    segs: list[tuple[str, pl.Expr]] = []
    tot = df.group_by("_w").agg(pl.len().alias("n"))
    totals = {r["_w"]: r["n"] for r in tot.iter_rows(named=True)}
    for col, prefix in (("_model", "model"), ("_family", "family")):
        # lazy: only the two columns are read (drop_nulls on the frame would copy every column of every row)
        c = df.lazy().select(col, "_w").drop_nulls(col).group_by(col, "_w").agg(pl.len().alias("n")).sort([col, "_w"]).collect()
        if c.get_column(col).n_unique() < 1:
            continue
        if col == "_model" and df.get_column("_model").drop_nulls().n_unique() < 2:
            continue
        for name in c.get_column(col).unique().sort().to_list():
            rows = {r["_w"]: r["n"] for r in c.filter(pl.col(col) == name).iter_rows(named=True)}
            if rows.get(0, 0) < min_n or rows.get(1, 0) < min_n:
                continue
            if rows == totals:
                continue  # same as the global test
            if col == "_family":
                n_models = df.lazy().filter(pl.col("_family") == name).select(pl.col("_model").n_unique()).collect().item()
                if n_models < 2:
                    continue
            segs.append((f"{prefix}={name}", pl.col(col) == name))
    return segs


def topic_label(ctx: DetectorContext, code: int) -> str:
    """The label of topic ``code`` ('unclustered' for -1, '' when it has none)."""
    if code < 0:
        return "unclustered"
    return ctx.topics.labels.get(code, "")
