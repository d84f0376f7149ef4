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

# Names load with the submodule that defines them, on first use: importing one part (say the pricing table,
# or the request builder for a --dry-run) does not load the Anthropic SDK that the client needs.
_WHERE = {
    "AliasOnlyError": "tracelens.replay.request",
    "CanaryComparison": "tracelens.replay.canary",
    "CanaryError": "tracelens.replay.canary",
    "CanaryRun": "tracelens.replay.canary",
    "CanarySet": "tracelens.replay.canary",
    "CostEstimate": "tracelens.replay.pricing",
    "NotReplayableError": "tracelens.replay.request",
    "PriceError": "tracelens.replay.pricing",
    "PriceTable": "tracelens.replay.pricing",
    "PromptComparison": "tracelens.replay.canary",
    "REPLAY_SCHEMA": "tracelens.replay.storage",
    "ReplayClient": "tracelens.replay.client",
    "ReplayError": "tracelens.replay.request",
    "ReplayPlan": "tracelens.replay.request",
    "ReplayResult": "tracelens.replay.client",
    "ReplayRun": "tracelens.replay.client",
    "ReplaySession": "tracelens.replay.session",
    "Verdict": "tracelens.replay.verdict",
    "add_to_canary": "tracelens.replay.canary",
    "build_plan": "tracelens.replay.request",
    "compare_runs": "tracelens.replay.canary",
    "compute_verdict": "tracelens.replay.verdict",
    "list_canaries": "tracelens.replay.canary",
    "load_canary": "tracelens.replay.canary",
    "load_prices": "tracelens.replay.pricing",
    "load_replays": "tracelens.replay.storage",
    "plan_session": "tracelens.replay.session",
    "replay_similarities": "tracelens.replay.verdict",
    "replay_traces": "tracelens.replay.session",
    "run_canary": "tracelens.replay.canary",
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
