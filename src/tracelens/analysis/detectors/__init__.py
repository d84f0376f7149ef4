"""The registry of drift detectors: finding kind -> detector(context) -> drafts.

Contract:

* A detector is a function ``detector(ctx: DetectorContext) -> list[Draft]``
  (drafts become :class:`~tracelens.analysis.findings.Finding` objects once
  :func:`~tracelens.analysis.draft.finalise` has computed q-values across the
  whole report). A :class:`Detector` entry names the kinds it produces and
  whether it needs traces in both windows.
* :data:`DETECTORS` is the one registry, and its order is the order the engine
  runs them in: statistical detectors first, then the deterministic ones, then
  the snapshot split (it reads the snapshot and configuration drafts). The
  order is fixed because notes and details are reported in the order they are
  added; findings themselves are sorted afterwards.
* Every kind of :data:`~tracelens.analysis.findings.KINDS` is produced by
  exactly one entry (checked by :func:`detector_for` and a test).

Adding a finding kind: add it to ``KINDS`` / ``EFFECT_DOCS`` in
``findings.py`` (display order and the schema's description), write one
detector in the theme module it belongs to, and add one line here.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass

from tracelens.analysis.detectors import (
    changepoint,
    cohort,
    ctxlen,
    deterministic,
    fingerprint,
    metrics,
    peak,
    refusal,
    snapshot,
    traffic,
)
from tracelens.analysis.detectors.context import DetectorContext
from tracelens.analysis.draft import Draft


@dataclass(frozen=True)
class Detector:
    """One registry entry: the kinds a detector produces and how to run it."""

    kinds: tuple[str, ...]
    run: Callable[[DetectorContext], list[Draft]]
    needs_both_windows: bool = True  #: statistical detectors compare two non-empty windows

    def active(self, kinds: Iterable[str]) -> bool:
        """Whether any of this detector's kinds is asked for."""
        return not set(self.kinds).isdisjoint(kinds)


DETECTORS: tuple[Detector, ...] = (
    Detector(("refusal_rate",), refusal.detect_refusal_rate),
    Detector(("refusal_rate_adjusted",), refusal.detect_refusal_rate_adjusted),
    Detector(("matched_prompt_refusal", "matched_prompt_similarity"), refusal.detect_matched),
    Detector(("prompt_mix",), traffic.detect_prompt_mix),
    Detector(("prompt_semantic", "response_semantic"), traffic.detect_semantic),
    Detector(("response_length",), metrics.detect_response_length),
    Detector(("latency",), metrics.detect_latency),
    Detector(("latency_per_token",), metrics.detect_latency_per_token),
    Detector(("time_to_first_token",), metrics.detect_time_to_first_token),
    Detector(("stop_reason",), metrics.detect_stop_reason),
    Detector(("tool_call_rate",), metrics.detect_tool_call_rate),
    Detector(("error_rate",), metrics.detect_error_rate),
    Detector(("output_corruption",), metrics.detect_output_corruption),
    Detector(("context_length",), ctxlen.detect_context_length),
    Detector(("changepoint",), changepoint.detect_changepoint),
    Detector(("time_of_day", "load"), peak.detect_peak),
    Detector(("cohort",), cohort.detect_cohort),
    Detector(("model_snapshot",), deterministic.detect_model_snapshot, needs_both_windows=False),
    Detector(("alias_usage",), deterministic.detect_alias_usage, needs_both_windows=False),
    Detector(("system_prompt", "tool_definitions"), deterministic.detect_config_text, needs_both_windows=False),
    Detector(("sampling_params",), deterministic.detect_sampling_params, needs_both_windows=False),
    Detector(("service_tier",), deterministic.detect_service_tier, needs_both_windows=False),
    Detector(("backend_fingerprint",), fingerprint.detect_backend_fingerprint, needs_both_windows=False),
    Detector(("snapshot_behaviour",), snapshot.detect_snapshot_behaviour),
)


def detector_for(kind: str) -> Detector:
    """The registry entry that produces ``kind`` (KeyError when none does)."""
    for d in DETECTORS:
        if kind in d.kinds:
            return d
    raise KeyError(kind)


def run_detectors(ctx: DetectorContext, kinds: frozenset[str]) -> list[Draft]:
    """Run every detector one of whose kinds is in ``kinds``, in registry order; returns all drafts.

    Each detector's drafts are appended to ``ctx.drafts`` before the next one
    runs (the snapshot split reads the configuration changes found before it).
    """
    both = bool(ctx.n_baseline and ctx.n_current)
    for det in DETECTORS:
        if det.active(kinds) and (both or not det.needs_both_windows):
            ctx.drafts.extend(det.run(ctx))
    return ctx.drafts


__all__ = ["DETECTORS", "Detector", "DetectorContext", "detector_for", "run_detectors"]
