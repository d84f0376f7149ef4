"""Deterministic detectors: changes the logs show for certain (no p-value).

Contract: each ``detect_*`` function takes a
:class:`~tracelens.analysis.detectors.context.DetectorContext` and returns
drafts of its kind, comparing the current window's ``ctx.det`` rows with what
was seen before (``ctx.ref``: the baseline plus earlier history). The checks
themselves live in :mod:`tracelens.analysis.variance`; this module adapts them
to the detector interface. ``detect_config_text`` also leaves the unified
diffs of new versions in ``ctx.details``. Pure: no I/O.
"""

from __future__ import annotations

from tracelens.analysis.detectors.context import DetectorContext
from tracelens.analysis.draft import Draft
from tracelens.analysis.findings import Detail
from tracelens.analysis.variance import alias_drafts, config_drafts, lifecycle_drafts, sampling_drafts, tier_drafts

#: configuration-text kinds and the hash column that versions them
_CONFIG_TEXT = (("system_prompt", "system_prompt_hash"), ("tool_definitions", "tools_hash"))


def detect_model_snapshot(ctx: DetectorContext) -> list[Draft]:
    """``model_snapshot``: new returned snapshots, requested/returned mismatches, and deprecated or retired models."""
    drafts = list(ctx.snapshots())
    if ctx.n_current:
        drafts += lifecycle_drafts(ctx.det, ctx.last_day, ctx.catalog)
    return drafts


def detect_alias_usage(ctx: DetectorContext) -> list[Draft]:
    """``alias_usage``: the share of traffic that named a moving alias."""
    return alias_drafts(ctx.det, ctx.cfg.alias_share_threshold)


def detect_config_text(ctx: DetectorContext) -> list[Draft]:
    """``system_prompt`` / ``tool_definitions``: new versions of the text, per app."""
    drafts: list[Draft] = []
    for kind, hcol in _CONFIG_TEXT:
        if kind in ctx.kinds:
            dd, dets = config_drafts(ctx.det, ctx.ref, kind, hcol, ctx.texts[kind], ctx.cfg.templated_limit)
            drafts += dd
            ctx.details.extend(Detail(*x) for x in dets)
    return drafts


def detect_sampling_params(ctx: DetectorContext) -> list[Draft]:
    """``sampling_params``: new temperature / top_p / max_tokens values."""
    return sampling_drafts(ctx.det, ctx.ref, ctx.cfg.templated_limit)


def detect_service_tier(ctx: DetectorContext) -> list[Draft]:
    """``service_tier``: new tiers and shifts of the tier mix."""
    return tier_drafts(ctx.det, ctx.ref, ctx.cfg.tier_tvd_threshold)
