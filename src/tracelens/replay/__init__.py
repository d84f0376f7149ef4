"""Replay stored traces against their pinned snapshots and judge the outcome.

Headless core (no click/textual). The pieces:

* ``request.build_plan(trace, n=, model=)`` -> ``ReplayPlan``: the exact body
  bytes to send, the target snapshot, warnings and a cost estimate.
* ``client.ReplayClient(...).run(plans)`` -> ``ReplayRun`` of ``ReplayResult``:
  bounded concurrency, retries with backoff honouring ``retry-after``,
  timeouts, partial results on interruption; the API key is never exposed.
* ``verdict.compute_verdict(trace, results)`` -> ``Verdict``:
  reproduces / within_variance / differs / inconclusive with the numbers.
* ``session.plan_session`` / ``run_session`` / ``replay_traces`` ->
  ``ReplaySession``: plans, skipped traces with reasons, results, verdicts and
  what was saved; what `tracelens replay`, canary runs and the TUI all run.
* ``reproduce``: a trace's request as curl and Python scripts.
* ``storage.write_replays`` / ``load_replays``: the replays Parquet table.
* ``canary``: named trace sets, runs, and run-to-run comparisons.

See docs/replay.md for what is sent and the verdict rules.
"""

from tracelens.replay.canary import (
    CanaryComparison,
    CanaryError,
    CanaryRun,
    CanarySet,
    PromptComparison,
    add_to_canary,
    compare_runs,
    list_canaries,
    load_canary,
    run_canary,
)
from tracelens.replay.client import ReplayClient, ReplayResult, ReplayRun
from tracelens.replay.pricing import CostEstimate, PriceError, PriceTable, load_prices
from tracelens.replay.request import AliasOnlyError, NotReplayableError, ReplayError, ReplayPlan, build_plan
from tracelens.replay.session import ReplaySession, plan_session, replay_traces, run_session
from tracelens.replay.storage import REPLAY_SCHEMA, load_replays, write_replays
from tracelens.replay.verdict import Verdict, compute_verdict, replay_similarities

__all__ = [
    "REPLAY_SCHEMA",
    "AliasOnlyError",
    "CanaryComparison",
    "CanaryError",
    "CanaryRun",
    "CanarySet",
    "CostEstimate",
    "NotReplayableError",
    "PriceError",
    "PriceTable",
    "PromptComparison",
    "ReplayClient",
    "ReplayError",
    "ReplayPlan",
    "ReplayResult",
    "ReplayRun",
    "ReplaySession",
    "Verdict",
    "add_to_canary",
    "build_plan",
    "compare_runs",
    "compute_verdict",
    "list_canaries",
    "load_canary",
    "load_prices",
    "load_replays",
    "plan_session",
    "replay_similarities",
    "replay_traces",
    "run_canary",
    "run_session",
    "write_replays",
]
