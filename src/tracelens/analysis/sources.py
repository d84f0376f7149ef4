"""The "variance sources at a glance" table: one row per source of variance behind a model name.

Contract: ``variance_table(df, findings, repeats, present)`` takes the
combined frame ``drift.analyze`` builds, the report's findings, the repeated
prompts' figures and the columns present, and returns one
:class:`~tracelens.analysis.findings.VarianceSource` per source, in display
order: observed, changed, stable or not observable, with the findings that
back it and, when not observable, what to log to make it so. The
deterministic findings themselves are built in
:mod:`tracelens.analysis.variance`.
"""

from __future__ import annotations

import polars as pl

from tracelens.analysis import fmt
from tracelens.analysis.findings import Finding, VarianceSource
from tracelens.analysis.variance import is_lifecycle_segment


def _backing(findings: list[Finding], kinds: tuple[str, ...]) -> tuple[list[Finding], tuple[str, ...]]:
    hits = [f for f in findings if f.kind in kinds and f.significant]
    return hits, tuple(sorted({f.kind for f in hits}, key=kinds.index))


def _brief(f: Finding) -> str:
    """One short clause for the table: kind, segment, baseline -> current, q."""
    def v(x):
        if isinstance(x, float):
            return fmt.pct(x) if f.kind not in ("latency", "latency_per_token", "time_to_first_token", "response_length") else fmt.num(x)
        return str(x)

    seg = f" ({f.segment})" if f.segment else ""
    q = f", q={f.q_value:.2g}" if f.q_value is not None else ""
    return f"{f.kind.replace('_', ' ')}{seg} {v(f.baseline_value)} -> {v(f.current_value)}{q}"


def _split_clause(findings: list[Finding], snap: Finding) -> str:
    """' Refusals on the new snapshot: x% vs y% ...' from the snapshot_behaviour findings of ``snap``'s new model."""
    seg = f"snapshot={snap.current_value}"
    overall = [f for f in findings if f.kind == "snapshot_behaviour" and f.segment == seg]
    if not overall:
        return ""
    f = overall[0]
    q = f", q={f.q_value:.2g}" if f.q_value is not None else ""
    out = (
        f" Refusals on the new snapshot: {fmt.pct(f.current_value)} vs {fmt.pct(f.baseline_value)} on the previous "
        f"one at the same prompt mix ({fmt.pp(f.effect)}{q}{'' if f.significant else ', not significant'})."
    )
    topics = sorted(
        (t for t in findings if t.kind == "snapshot_behaviour" and t.segment.startswith(seg + " ") and t.significant),
        key=lambda t: -abs(t.effect or 0.0),
    )
    if topics:
        out += " By topic: " + "; ".join(
            f"{t.segment[len(seg) + 1:].replace('=', ' ', 1)} {fmt.pct(t.current_value)} vs {fmt.pct(t.baseline_value)}"
            for t in topics[:3]
        ) + "."
    return out


def variance_table(
    df: pl.DataFrame, findings: list[Finding], repeats: dict, present: dict[str, bool] | None = None
) -> tuple[VarianceSource, ...]:
    """One row per variance source an engineer suspects, saying what these logs can show.

    ``repeats`` carries the within-window repeat statistics computed by the
    engine (``n_prompts``, ``n_differing``, ``share_temp_pos``); ``present``
    says which text columns had values before the engine dropped them.
    """
    rows: list[VarianceSource] = []

    present = present or {}

    def nonnull(col: str) -> float:
        if col not in df.columns:
            return 1.0 if present.get(col) else 0.0
        return 1.0 - df.get_column(col).null_count() / max(df.height, 1)

    # sampling nondeterminism
    if repeats.get("n_prompts", 0) > 0:
        hits, kinds = _backing(findings, ("matched_prompt_similarity",))
        obs = (
            f"{repeats['n_differing']:,} of {repeats['n_prompts']:,} prompts sent more than once in a window got "
            f"different responses; {fmt.pct(repeats.get('share_temp_pos'))} of traffic ran at temperature > 0."
        )
        rows.append(VarianceSource("sampling nondeterminism", "changed" if hits else "observed", obs, kinds))
    else:
        rows.append(
            VarianceSource(
                "sampling nondeterminism",
                "not observable",
                "No prompt was sent twice within a window, so run-to-run variation cannot be separated from change.",
                (),
                "Send a fixed canary set (identical prompts) on a schedule; log temperature, top_p and seed.",
            )
        )
    # snapshot rollover
    if nonnull("model_returned") > 0:
        hits, kinds = _backing(
            [f for f in findings if not is_lifecycle_segment(f.segment)], ("model_snapshot", "snapshot_behaviour")
        )
        snaps = [f for f in hits if f.kind == "model_snapshot"]
        obs = snaps[0].summary + _split_clause(findings, snaps[0]) if snaps else "The same snapshots served both windows."
        rows.append(VarianceSource("snapshot rollover", "changed" if hits else "stable", obs, kinds))
    else:
        rows.append(
            VarianceSource(
                "snapshot rollover",
                "not observable",
                "The responses' model ids were not logged.",
                (),
                "Log the response's `model` field (the resolved snapshot), not only the requested model.",
            )
        )
    # alias resolution
    if nonnull("model_requested") > 0:
        hits, kinds = _backing(findings, ("alias_usage",))
        glob = [f for f in findings if f.kind == "alias_usage" and f.segment == ""]
        share = glob[0].current_value if glob else 0.0
        obs = (
            hits[0].summary
            if hits
            else f"{fmt.pct(share if isinstance(share, float) else 0.0)} of current traffic named an alias; resolution unchanged."
        )
        rows.append(VarianceSource("alias resolution", "changed" if hits else "stable", obs, kinds))
    else:
        rows.append(
            VarianceSource(
                "alias resolution",
                "not observable",
                "The requested model ids were not logged.",
                (),
                "Log the request's `model` field alongside the response's.",
            )
        )
    # system prompts, tools
    for source, kind, col, text_col, advice in (
        ("system prompt changes", "system_prompt", "system_prompt_hash", "system_prompt", "Log the system prompt (or its hash)."),
        ("tool changes", "tool_definitions", "tools_hash", "tool_definitions", "Log the tool definitions sent (or their hash)."),
    ):
        if nonnull(col) > 0 or nonnull(text_col) > 0:
            hits, kinds = _backing(findings, (kind,))
            obs = hits[0].summary if hits else "No version that was not already in use before."
            rows.append(VarianceSource(source, "changed" if hits else "stable", obs, kinds))
        else:
            rows.append(VarianceSource(source, "not observable", "Not present in these logs.", (), advice))
    # safety classifier changes
    sr = df.get_column("stop_reason")
    filt = int(sr.is_in(["refusal", "content_filter"]).sum()) if sr.null_count() < df.height else 0
    hits, kinds = _backing(findings, ("matched_prompt_refusal", "refusal_rate_adjusted", "stop_reason"))
    split = [f for f in findings if f.kind == "snapshot_behaviour" and f.significant]
    if hits:
        what = "; ".join(_brief(f) for f in hits[:2])
    elif split:
        # the refusal change is tied to a rollover; a classifier change shipped with it would look the same
        what = (
            "refusals on comparable prompts changed with the new snapshot (see snapshot rollover); a classifier "
            "change that shipped with it cannot be told apart."
        )
    else:
        what = "refusals on comparable prompts did not change."
    if filt or hits:
        obs = (
            f"{filt:,} responses stopped with a provider refusal or content filter. "
            if filt
            else "No provider refusal signal; model-written refusals: "
        ) + what
        rows.append(
            VarianceSource(
                "safety classifier changes",
                "changed" if hits else "observed",
                obs,
                kinds,
                "Provider-side classifiers are only visible through their effects; log stop_details / refusal categories.",
            )
        )
    else:
        rows.append(
            VarianceSource(
                "safety classifier changes",
                "not observable",
                "No provider refusal signal in these logs; only model-written refusals can be counted.",
                (),
                "Log stop_reason and stop_details (refusal category) and run a fixed canary set of borderline prompts.",
            )
        )
    # capacity / tier routing; a metric that depends on the hour or the traffic volume inside one snapshot and
    # tier (time_of_day, load) is what routing peak traffic to other capacity looks like
    peak, _ = _backing(findings, ("time_of_day", "load"))
    steady = "no metric depends on the hour or the load within a snapshot and tier."
    if nonnull("service_tier") > 0:
        hits, kinds = _backing(findings, ("service_tier", "time_of_day", "load", "latency", "latency_per_token", "time_to_first_token"))
        if peak:
            obs = peak[0].summary + (f" ({len(peak)} such findings in all)" if len(peak) > 1 else "")
        else:
            obs = "; ".join(_brief(f) for f in hits[:2]) if hits else f"Tier mix and latency stable; {steady}"
        rows.append(VarianceSource("capacity or tier routing", "changed" if hits else "stable", obs, kinds))
    else:
        hits, kinds = _backing(findings, ("time_of_day", "load", "latency", "latency_per_token", "time_to_first_token"))
        lat = [f for f in hits if f not in peak]
        obs = "Service tier not logged" + (
            "; " + peak[0].summary
            if peak
            else "; latency moved: " + _brief(lat[0]) if lat else f"; latency is the only (indirect) signal; {steady}"
        )
        rows.append(
            VarianceSource(
                "capacity or tier routing",
                "changed" if peak else "not observable",
                obs,
                kinds,
                "Log the response's service_tier (usage.service_tier) and the provider's response headers.",
            )
        )
    # backend configuration under the same model id (OpenAI's system_fingerprint)
    if nonnull("_fp") > 0:
        hits, kinds = _backing(findings, ("backend_fingerprint",))
        if hits:
            worst = max(hits, key=lambda f: ("info", "warn", "alert").index(f.severity))
            more = f" ({len(hits)} new fingerprints in all)" if len(hits) > 1 else ""
            obs = worst.summary + more
        else:
            obs = "Every backend fingerprint of the current window was already in use with its model."
        rows.append(VarianceSource("backend configuration", "changed" if hits else "stable", obs, kinds))
    else:
        rows.append(
            VarianceSource(
                "backend configuration",
                "not observable",
                "No backend fingerprint in these logs; a serving change under the same model id is invisible.",
                (),
                "Log the response's system_fingerprint (OpenAI and OpenAI-compatible gateways return it).",
            )
        )
    # silent change inside one snapshot (same model id, same system prompt, behaviour steps mid-window)
    if nonnull("model_returned") > 0:
        hits, kinds = _backing(findings, ("changepoint",))
        obs = (
            hits[0].summary
            if hits
            else "No step in refusals, output length or latency inside one snapshot and system prompt this window."
        )
        rows.append(VarianceSource("silent in-snapshot change", "changed" if hits else "stable", obs, kinds))
    else:
        rows.append(
            VarianceSource(
                "silent in-snapshot change",
                "not observable",
                "The responses' model ids were not logged, so a step cannot be placed inside one snapshot.",
                (),
                "Log the response's `model` field (the resolved snapshot) and the system prompt (or its hash).",
            )
        )
    # long-context behaviour: a provider-side change that degrades long inputs only (quality vs input size)
    if nonnull("input_tokens") > 0 or nonnull("_prompt_len") > 0:
        hits, kinds = _backing(findings, ("context_length",))
        if hits:
            worst = max(hits, key=lambda f: (("info", "warn", "alert").index(f.severity), abs(f.effect or 0.0)))
            obs = worst.summary + (f" ({len(hits)} such changes in all)" if len(hits) > 1 else "")
        else:
            obs = "Truncation, refusals, errors and output length changed alike on long and on short inputs."
        rows.append(VarianceSource("long-context behaviour", "changed" if hits else "stable", obs, kinds))
    else:
        rows.append(
            VarianceSource(
                "long-context behaviour",
                "not observable",
                "Neither input token counts nor prompt text were logged, so input size is unknown.",
                (),
                "Log usage input tokens, including the cache read and cache creation tokens.",
            )
        )
    # A/B cohorts: a cohort (region, account, tier, ...) diverging from the rest, and concurrent snapshots
    rows.append(_cohort_row(findings, repeats.get("concurrent_snapshots", [])))
    return tuple(rows)


def _cohort_row(findings: list[Finding], conc: list[str]) -> VarianceSource:
    """The "A/B cohorts" row: backed by the ``cohort`` tests, and by snapshots served side by side."""
    tested = [f for f in findings if f.kind == "cohort"]
    dims = sorted({f.segment.split("=", 1)[0] for f in tested})
    hits, kinds = _backing(findings, ("cohort",))
    both = (
        f" Requests for {', '.join(conc[:3])} were served by more than one snapshot in the same hour "
        "(staged rollout or cohort)."
        if conc
        else ""
    )
    advice = (
        "Log the cohort as request metadata (region, api_key_id, account_id, ...; --cohort-by names others), "
        "and provider request ids and model version headers."
    )
    if hits:
        worst = max(hits, key=lambda f: (("info", "warn", "alert").index(f.severity), -(f.q_value or 1.0)))
        more = f" ({len(hits)} cohort findings in all)" if len(hits) > 1 else ""
        return VarianceSource("A/B cohorts", "changed", worst.summary + more + both, kinds)
    if dims:
        obs = (
            f"No cohort of {', '.join(dims)} diverged from the rest of its dimension on comparable prompts "
            "(refusals, errors, output length, latency)." + both
        )
        return VarianceSource("A/B cohorts", "observed" if conc else "stable", obs, ("model_snapshot",) if conc else ())
    if conc:
        return VarianceSource("A/B cohorts", "observed", both.strip(), ("model_snapshot",), advice)
    return VarianceSource(
        "A/B cohorts",
        "not observable",
        "No cohort dimension (service tier, app, a region or account attribute) had two cohorts with enough "
        "comparable traffic, and no snapshots were served side by side.",
        (),
        advice,
    )
