"""Messages posted by the TUI's workers back to the UI thread (one dataclass each).

Workers never touch widgets: they call the core and post one of these to
the screen that started them; the screen's ``on_<message>`` handler updates
the widgets. Messages that answer a search carry its ``query_id`` so that a
late answer to a superseded search is dropped.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from textual.message import Message


@dataclass
class PageLoaded(Message):
    """Rows ``[offset, offset+len(rows))`` of search ``query_id``."""

    query_id: int
    offset: int
    rows: list[dict]
    total: int
    seconds: float
    window: str = ""
    ranked: bool = False  # rows are ranked by semantic similarity, not by time
    result_set: Any = None  # tracelens.query.ResultSet, to fetch the next pages


@dataclass
class SearchFailed(Message):
    query_id: int
    error: str
    keep_rows: bool = False  # a later page failed: the rows already shown stay


@dataclass
class TraceLoaded(Message):
    trace: dict


@dataclass
class CostEstimated(Message):
    text: str | None  # list-price cost of the trace's tokens


@dataclass
class TraceReady(Message):
    """A trace to open was read (or not: ``trace`` None, ``error`` says why); the app then pushes its screen."""

    trace_id: str
    trace: dict | None
    then: str | None = None
    error: str | None = None


@dataclass
class TraceFailed(Message):
    trace_id: str
    error: str


@dataclass
class ContextLoaded(Message):
    context: Any  # tracelens.context.TraceContext, None on failure
    error: str | None = None


@dataclass
class SamePromptLoaded(Message):
    rows: list[dict]
    weeks: list[Any]  # tracelens.context.WeekSummary
    error: str | None = None


@dataclass
class SimilarLoaded(Message):
    rows: list[dict]
    error: str | None = None


@dataclass
class ReplayPlanned(Message):
    plan: Any | None  # tracelens.replay.ReplayPlan
    destination: str
    error: str | None = None
    requested: tuple = ()  # (n, model) the plan was made for


@dataclass
class ReplayProgress(Message):
    done: int
    total: int
    result: Any  # tracelens.replay.ReplayResult


@dataclass
class ReplayFinished(Message):
    results: list[Any]
    verdict: Any | None  # tracelens.replay.Verdict
    interrupted: bool = False
    saved: list[str] = field(default_factory=list)
    error: str | None = None


@dataclass
class FindingsLoaded(Message):
    findings: list[Any]  # tracelens.analysis.findings.Finding
    source: str = ""
    window: str = ""
    error: str | None = None
    notes: list[str] = field(default_factory=list)


@dataclass
class FindingsProgress(Message):
    """A step of the weekly analysis while it runs."""

    text: str


@dataclass
class EvidenceLoaded(Message):
    finding_index: int
    rows: list[dict]


@dataclass
class ExportDone(Message):
    kind: str  # "json" or "repro"
    paths: list[str]
    text: str


@dataclass
class ExportFailed(Message):
    kind: str
    error: str
