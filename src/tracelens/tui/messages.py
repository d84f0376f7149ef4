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
    """Search ``query_id`` failed; ``error`` says why."""

    query_id: int
    error: str
    keep_rows: bool = False  # a later page failed: the rows already shown stay


@dataclass
class SearchProgress(Message):
    """Search ``query_id`` is still working: ``text`` says on what (e.g. loading the embedding model)."""

    query_id: int
    text: str


@dataclass
class TraceLoaded(Message):
    """The trace screen's trace was read."""

    trace: dict


@dataclass
class CostEstimated(Message):
    """The list-price cost line of the trace on screen."""

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
    """The trace could not be read; ``error`` says why."""

    trace_id: str
    error: str


@dataclass
class ContextLoaded(Message):
    """The trace's prompt and snapshot history (``context`` None and ``error`` set on failure)."""

    context: Any  # tracelens.context.TraceContext, None on failure
    error: str | None = None


@dataclass
class SamePromptLoaded(Message):
    """Traces with the same prompt in other weeks, and a per-week summary."""

    rows: list[dict]
    weeks: list[Any]  # tracelens.context.WeekSummary
    error: str | None = None


@dataclass
class SimilarLoaded(Message):
    """Traces with similar prompts (``error`` says why there are none, e.g. no embeddings)."""

    rows: list[dict]
    error: str | None = None


@dataclass
class ReplayPlanned(Message):
    """A replay plan for the inputs ``requested`` (or why there is none), and where it would go."""

    plan: Any | None  # tracelens.replay.ReplayPlan
    destination: str
    error: str | None = None
    requested: tuple = ()  # (n, model) the plan was made for


@dataclass
class ReplayProgress(Message):
    """One more replay finished (``done`` of ``total``)."""

    done: int
    total: int
    result: Any  # tracelens.replay.ReplayResult


@dataclass
class ReplayFinished(Message):
    """A replay run ended: its results, the verdict, whether it was stopped, what was saved."""

    results: list[Any]
    verdict: Any | None  # tracelens.replay.Verdict
    interrupted: bool = False
    saved: list[str] = field(default_factory=list)
    error: str | None = None


@dataclass
class FindingsLoaded(Message):
    """This week's findings (or why there are none), their source and window."""

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
    """The evidence traces of finding ``finding_index``, as list rows."""

    finding_index: int
    rows: list[dict]


@dataclass
class ExportDone(Message):
    """An export was written (``kind`` json or repro) and its text is ready for the clipboard."""

    kind: str  # "json" or "repro"
    paths: list[str]
    text: str


@dataclass
class ExportFailed(Message):
    """An export could not be written; ``error`` says why."""

    kind: str
    error: str
