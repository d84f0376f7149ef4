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
  what was saved; what `tracelens replay` and the TUI run.
* ``reproduce``: a trace's request as curl and Python scripts.
* ``storage.write_replays`` / ``load_replays``: the replays Parquet table.

Canary sets are eval suites now (``tracelens.evals.canary``); the replays
table keeps its ``canary``/``canary_run_id`` columns for the runs older
versions stored, which that module migrates.

See docs/replay.md for what is sent and the verdict rules.
"""

# Names load with the submodule that defines them, on first use: importing one part (say the pricing table,
# or the request builder for a --dry-run) does not load the Anthropic SDK that the client needs.
_WHERE = {
    "AliasOnlyError": "tracelens.replay.request",
    "CostEstimate": "tracelens.replay.pricing",
    "NotReplayableError": "tracelens.replay.request",
    "PriceError": "tracelens.replay.pricing",
    "PriceTable": "tracelens.replay.pricing",
    "REPLAY_SCHEMA": "tracelens.replay.storage",
    "ReplayClient": "tracelens.replay.client",
    "ReplayError": "tracelens.replay.request",
    "ReplayPlan": "tracelens.replay.request",
    "ReplayResult": "tracelens.replay.client",
    "ReplayRun": "tracelens.replay.client",
    "ReplaySession": "tracelens.replay.session",
    "Verdict": "tracelens.replay.verdict",
    "build_plan": "tracelens.replay.request",
    "compute_verdict": "tracelens.replay.verdict",
    "load_prices": "tracelens.replay.pricing",
    "load_replays": "tracelens.replay.storage",
    "plan_session": "tracelens.replay.session",
    "replay_similarities": "tracelens.replay.verdict",
    "replay_traces": "tracelens.replay.session",
    "run_session": "tracelens.replay.session",
    "write_replays": "tracelens.replay.storage",
}


def __getattr__(name: str):
    """The public name ``name`` from its submodule (PEP 562)."""
    import importlib

    try:
        module = _WHERE[name]
    except KeyError:
        raise AttributeError(f"module 'tracelens.replay' has no attribute {name!r}") from None
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(__all__)


__all__ = [
    "REPLAY_SCHEMA",
    "AliasOnlyError",
    "CostEstimate",
    "NotReplayableError",
    "PriceError",
    "PriceTable",
    "ReplayClient",
    "ReplayError",
    "ReplayPlan",
    "ReplayResult",
    "ReplayRun",
    "ReplaySession",
    "Verdict",
    "build_plan",
    "compute_verdict",
    "load_prices",
    "load_replays",
    "plan_session",
    "replay_similarities",
    "replay_traces",
    "run_session",
    "write_replays",
]
