"""One replay session: plan, send, judge, save. The same steps for `tracelens replay`, canary runs and the TUI.

Contract:

* ``plan_session(traces, n=, model=, prices=, catalog=)`` builds a
  ``ReplaySession`` holding one ``ReplayPlan`` per replayable trace and, for
  every other trace, the reason it is skipped (never silently dropped). Nothing
  is sent: a front end shows the plans (destination, parameters, cost) and asks
  before spending money.
* ``run_session(session, client, ...)`` sends every plan through the
  ``ReplayClient`` (bounded concurrency, retries; ``cancel`` stops early and
  keeps what finished), optionally tags the results with a canary name and run
  id, saves them to ``<store>/replays`` when ``save_to`` is given (a failed
  save is recorded in ``save_error``, the results are kept), and judges each
  trace with ``verdict.compute_verdict``. It fills the same session in place
  and returns it.
* ``replay_traces(store, trace_ids, ...)`` does both for a caller that has no
  plan to show (scripts, tests).
* ``ReplaySession.similarities(trace_id)`` gives each replay's similarity to
  the original with the measure the verdict uses
  (``verdict.similarity_matrix``: cosine of character 3-gram TF-IDF vectors),
  so the per-replay numbers a front end lists and the verdict can never
  disagree. ``ReplaySession.to_dict()`` is the JSON form `tracelens replay
  --json` prints.

Errors: ``ReplayError`` (no API key, an unreachable endpoint before any
request) propagates from ``run_session``; per-request failures are results
with an ``error`` and count as failed replays in the verdict.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tracelens.replay.client import ReplayClient, ReplayResult
from tracelens.replay.pricing import PriceTable
from tracelens.replay.request import ReplayError, ReplayPlan, build_plan
from tracelens.replay.storage import write_replays
from tracelens.replay.verdict import Embedder, Verdict, compute_verdict, replay_similarities


@dataclass
class ReplaySession:
    """Plans, skipped traces with reasons, results, verdicts and what was saved, for one replay of N traces."""

    plans: list[ReplayPlan] = field(default_factory=list)
    skipped: dict[str, str] = field(default_factory=dict)  # trace id -> why it cannot be replayed
    traces: dict[str, dict[str, Any]] = field(default_factory=dict)  # the originals of the plans, by trace id
    results: list[ReplayResult] = field(default_factory=list)
    verdicts: list[Verdict] = field(default_factory=list)  # one per plan, in plan order, once run
    interrupted: bool = False
    saved: list[Path] = field(default_factory=list)
    save_error: str | None = None
    ran: bool = False

    @property
    def requests(self) -> int:
        """Requests the plans send in all."""
        return sum(p.n for p in self.plans)

    def results_for(self, trace_id: str) -> list[ReplayResult]:
        """Results of one trace, in the order they finished."""
        return [r for r in self.results if r.trace_id == trace_id]

    def verdict_for(self, trace_id: str) -> Verdict | None:
        """The verdict of one trace (None before the session ran, or for a skipped trace)."""
        return next((v for v in self.verdicts if v.trace_id == trace_id), None)

    def similarities(self, trace_id: str) -> list[float | None]:
        """Each result's similarity to the original, in result order (None for a failed request)."""
        trace = self.traces.get(trace_id) or {}
        return replay_similarities(trace.get("response_text"), self.results_for(trace_id))

    def to_dict(self) -> dict[str, Any]:
        """JSON form: plans, skipped, results, verdicts, interrupted, saved (paths as strings)."""
        return {
            "plans": [p.to_dict() for p in self.plans],
            "skipped": dict(self.skipped),
            "results": [r.to_dict() for r in self.results],
            "verdicts": [v.to_dict() for v in self.verdicts],
            "interrupted": self.interrupted,
            "saved": [str(p) for p in self.saved],
        }


def plan_session(
    traces: Iterable[dict[str, Any] | tuple[str, None]],
    *,
    n: int,
    model: str | None = None,
    prices: PriceTable | None = None,
    catalog: Any = None,
) -> ReplaySession:
    """Plan ``n`` replays of each trace; a trace that cannot be replayed is listed in ``skipped`` with the reason.

    A ``(trace_id, None)`` pair stands for a trace that was asked for but is
    not in the store: it is skipped as "trace not found in the store".
    """
    session = ReplaySession()
    for t in traces:
        if isinstance(t, tuple):
            session.skipped[t[0]] = "trace not found in the store"
            continue
        tid = t.get("trace_id") or "?"
        try:
            session.plans.append(build_plan(t, n=n, model=model, prices=prices, catalog=catalog))
        except ReplayError as e:
            session.skipped[tid] = str(e)
            continue
        session.traces[tid] = t
    return session


def run_session(
    session: ReplaySession,
    client: ReplayClient,
    *,
    cancel: threading.Event | None = None,
    on_result: Callable[[ReplayResult], None] | None = None,
    save_to: str | os.PathLike | None = None,
    canary: str | None = None,
    canary_run_id: str | None = None,
    embedder: Embedder | None = None,
) -> ReplaySession:
    """Send the session's plans, save and judge the results; fills ``session`` in place and returns it."""
    run = client.run(session.plans, cancel=cancel, on_result=on_result)
    for r in run.results:
        if canary is not None:
            r.canary = canary
            r.canary_run_id = canary_run_id
    session.results = list(run.results)
    session.interrupted = run.interrupted
    session.ran = True
    if save_to is not None and run.results:
        try:
            session.saved = write_replays(save_to, run.results)
        except OSError as e:
            session.save_error = f"not saved: {e}"
    session.verdicts = [
        compute_verdict(session.traces[p.trace_id], run.for_trace(p.trace_id), embedder=embedder)
        for p in session.plans
    ]
    return session


def replay_traces(
    store: Any,
    trace_ids: Iterable[str],
    *,
    n: int = 5,
    model: str | None = None,
    client: ReplayClient | None = None,
    prices: PriceTable | None = None,
    save: bool = True,
    cancel: threading.Event | None = None,
    on_result: Callable[[ReplayResult], None] | None = None,
    embedder: Embedder | None = None,
) -> ReplaySession:
    """Plan and run ``n`` replays of each trace of ``store`` (ids or unambiguous prefixes) in one call.

    ``model`` replays on another snapshot than the recorded one; ``client``
    defaults to ``ReplayClient()`` (key from ``$ANTHROPIC_API_KEY``, base URL
    from ``$ANTHROPIC_BASE_URL``). Results are saved under the store unless
    ``save`` is false.
    """
    from tracelens.modelcatalog import load_catalog
    from tracelens.replay.pricing import load_prices

    found: list[dict[str, Any] | tuple[str, None]] = []
    for tid in trace_ids:
        t = store.get(tid)
        found.append((tid, None) if t is None else t)
    session = plan_session(found, n=n, model=model, prices=prices if prices is not None else load_prices(),
                           catalog=load_catalog(store.root))
    return run_session(session, client or ReplayClient(), cancel=cancel, on_result=on_result,
                       save_to=store.root if save else None, embedder=embedder)
