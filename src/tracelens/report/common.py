"""Presentation helpers shared by the renderers (pure functions of a DriftReport).

Contract: nothing here computes statistics; it only orders, groups and words
what :func:`tracelens.analysis.analyze` already decided, so every renderer
says the same thing.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from tracelens.analysis import fmt
from tracelens.analysis.draft import part_of_step
from tracelens.analysis.findings import DriftReport, EvalResult, Finding, eval_regressions, no_data

#: Kinds that speak to the model's behaviour (as opposed to traffic or configuration).
BEHAVIOUR_KINDS = (
    "snapshot_behaviour",
    "refusal_rate_adjusted",
    "matched_prompt_refusal",
    "matched_prompt_similarity",
    "response_semantic",
    "response_length",
    "stop_reason",
    "output_corruption",
    "tool_call_rate",
    "context_length",
    "changepoint",
    "time_of_day",
    "load",
    "cohort",
)
TRAFFIC_KINDS = ("prompt_mix", "prompt_semantic")
CONFIG_KINDS = (
    "model_snapshot", "alias_usage", "system_prompt", "tool_definitions", "sampling_params", "service_tier",
    "backend_fingerprint",
)

RATE_KINDS = frozenset(
    {
        "refusal_rate",
        "refusal_rate_adjusted",
        "snapshot_behaviour",
        "matched_prompt_refusal",
        "prompt_mix",
        "stop_reason",
        "tool_call_rate",
        "error_rate",
        "output_corruption",
        "alias_usage",
    }
)


def window_line(report: DriftReport) -> str:
    """'baseline 2025-01-06 00:00 UTC .. 2025-01-13 00:00 UTC (2,000 traces) vs current ...'."""
    b, c = report.baseline, report.current
    return (
        f"baseline {fmt.ts(b.start)} .. {fmt.ts(b.end)} ({b.n:,} traces) vs "
        f"current {fmt.ts(c.start)} .. {fmt.ts(c.end)} ({c.n:,} traces)"
    )


def topic_phrase(segment: str) -> str:
    """'cluster=18 (account, login)' -> 'cluster 18 (account, login)'."""
    return segment.replace("=", " ", 1)


def _rank(f: Finding) -> tuple:
    return (SEVERITY_RANK[f.severity], -abs(f.effect or 0.0), f.segment)


SEVERITY_RANK = {"alert": 0, "warn": 1, "info": 2}
#: a topic's change point this close to a rollover (either side) counts as "starting with the new snapshot"
LINK_WINDOW_S = 12 * 3600


def _new_snapshots(sig: list[Finding]) -> list[Finding]:
    return [f for f in sig if f.kind == "model_snapshot" and not f.segment.startswith("model=") and f.first_seen]


def topic_lines(report: DriftReport, limit: int = 2) -> list[str]:
    """Which topics' refusal rates changed, by how much, since when, and whether that came with a new snapshot.

    Uses the significant per-topic refusal findings (segment ``cluster=...``):
    the raw rate where it is significant (it reads as plain numbers), else the
    mix-adjusted one. A topic is tied to a snapshot when its change point
    falls within 12 hours of the snapshot's first trace, or after it with the
    old-vs-new snapshot comparison on that topic significant; a change point
    more than 12 hours before the rollover is said to predate the snapshot.
    Only snapshots the topic's traffic ran on count (the old-vs-new comparison
    on the topic was run, significant or not): a step in another app's model
    half a day before a rollover is not the rollover's. A topic whose change is
    part of a step inside one snapshot (``changepoint``) says so instead.
    """
    sig = [f for f in report.findings if f.significant]
    per: dict[str, Finding] = {}
    for f in sorted(sig, key=_rank):
        if (
            f.kind in ("refusal_rate", "refusal_rate_adjusted")
            and f.segment.startswith("cluster=")
            and (f.segment not in per or (f.kind == "refusal_rate" and per[f.segment].kind != "refusal_rate"))
        ):
            per[f.segment] = f
    snaps = _new_snapshots(sig)
    split = {f.segment: f for f in sig if f.kind == "snapshot_behaviour"}
    tested = {f.segment for f in report.findings if f.kind == "snapshot_behaviour"}
    lines = []
    for f in sorted(per.values(), key=_rank)[:limit]:
        held = " with prompt mix held fixed" if f.kind == "refusal_rate_adjusted" else ""
        line = (
            f"Refusals on topic {topic_phrase(f.segment)}{held} "
            f"{fmt.moved(fmt.pct(f.baseline_value), fmt.pct(f.current_value), (f.effect or 0) > 0)} "
            f"({fmt.pp(f.effect)})"
        )
        if f.first_seen:
            line += f", starting {fmt.ts(f.first_seen)}"
        step = part_of_step(f.summary)
        if step:  # folded into a step inside one snapshot (analysis.draft)
            lines.append(line + f" -- a step inside snapshot {step}, which did not change.")
            continue
        for s in snaps:
            if f"snapshot={s.current_value} {f.segment}" not in tested:
                continue  # this topic's traffic did not run on that snapshot
            on_topic = split.get(f"snapshot={s.current_value} {f.segment}")
            # seconds from the rollover to the topic's change point (None: the change could not be dated)
            lag = None if f.first_seen is None else (f.first_seen - s.first_seen).total_seconds()
            if lag is not None and lag < -LINK_WINDOW_S:
                # the topic moved well before the rollover: the snapshot cannot have started it
                line += f" (before the new snapshot {s.current_value} arrived at {fmt.ts(s.first_seen)})"
                break
            if lag is not None and (abs(lag) <= LINK_WINDOW_S or on_topic is not None):
                line += f" -- with the new snapshot {s.current_value} (first seen {fmt.ts(s.first_seen)})"
                if on_topic is not None:
                    line += (
                        f", which refuses {fmt.pct(on_topic.current_value)} of this topic against "
                        f"{fmt.pct(on_topic.baseline_value)} for the previous snapshot at the same prompt mix"
                    )
                break
        lines.append(line + ".")
    return lines


def snapshot_lines(report: DriftReport) -> list[str]:
    """One sentence per new snapshot whose traffic is refused differently from its predecessor's (significant).

    When a significant refusal change in the same direction was dated more than
    12 hours before the rollover, the sentence says so: the old-vs-new split
    then also carries a change that predates the snapshot.
    """
    out = []
    sig = [f for f in report.findings if f.significant]
    for f in sig:
        if f.kind != "snapshot_behaviour" or " " in f.segment:
            continue
        new = f.segment.removeprefix("snapshot=")
        up = (f.effect or 0) > 0
        since = f" (since {fmt.ts(f.first_seen)})" if f.first_seen else ""
        nums = f"{fmt.pct(f.current_value)} vs {fmt.pct(f.baseline_value)} at the same prompt mix, {fmt.pp(f.effect)}"
        earlier = sorted(
            g.first_seen
            for g in sig
            if g.kind in ("refusal_rate", "refusal_rate_adjusted")
            and g.first_seen is not None
            and f.first_seen is not None
            and ((g.effect or 0) > 0) == up
            and (f.first_seen - g.first_seen).total_seconds() > LINK_WINDOW_S
        )
        if earlier:
            out.append(
                f"Traffic on the new snapshot {new}{since} is refused {'more' if up else 'less'} often than on the one "
                f"before it ({nums}), but refusals began moving before it arrived (from {fmt.ts(earlier[0])}): the "
                "snapshot is not the whole story."
            )
        else:
            out.append(
                f"The new snapshot {new}{since} refuses {'more' if up else 'less'} often than the one before it on "
                f"comparable prompts: {nums}."
            )
    return out


def headline(report: DriftReport) -> list[str]:
    """A few plain sentences answering "did the model change, or did our traffic?".

    When a window holds no traces the first (and only) sentence says so: no
    "no significant change" where nothing was compared.
    """
    empty = no_data(report)
    if empty:
        which = " and ".join(f"the {w} window ({_window_days(getattr(report, w).start, getattr(report, w).end)})"
                             for w in empty)
        return [f"No data: {which} {'holds' if len(empty) == 1 else 'hold'} no traces, so nothing was compared."]
    sig = [f for f in report.findings if f.significant]
    kinds = {f.kind for f in sig}
    lines: list[str] = topic_lines(report) + snapshot_lines(report)
    beh = [k for k in BEHAVIOUR_KINDS if k in kinds]
    cfg = [k for k in CONFIG_KINDS if k in kinds]
    if beh:
        lines.append("The model's behaviour changed on comparable traffic (" + ", ".join(beh) + ").")
    raw = [f for f in sig if f.kind == "refusal_rate" and f.segment == ""]
    adj = [f for f in report.findings if f.kind == "refusal_rate_adjusted" and f.segment == ""]
    behaviour_refusals = any(
        f.kind in ("snapshot_behaviour", "refusal_rate_adjusted", "matched_prompt_refusal") for f in sig
    )
    if raw and adj and not adj[0].significant and not behaviour_refusals:
        lines.append(
            f"The refusal rate moved ({fmt.pp(raw[0].effect)}) but not once prompt mix is held fixed "
            f"({fmt.pp(adj[0].effect)}): the traffic changed, not the model."
        )
    if any(k in kinds for k in TRAFFIC_KINDS):
        lines.append("The traffic changed (" + ", ".join(k for k in TRAFFIC_KINDS if k in kinds) + ").")
    if cfg:
        lines.append("Configuration changed (" + ", ".join(cfg) + ") -- check these first.")
    regressed = eval_regressions(report)
    if regressed:
        names = ", ".join(dict.fromkeys(f"{e.suite} ({e.target})" for e in regressed))
        lines.append(f"Evals regressed against their previous run: {names}.")
    if not lines:
        lines.append("No significant change between the windows.")
    return lines


def counts(report: DriftReport) -> dict[str, int]:
    """Number of findings per severity."""
    out = {"alert": 0, "warn": 0, "info": 0}
    for f in report.findings:
        out[f.severity] += 1
    return out


#: kinds whose segment ends in ``metric=<name>``, one finding per metric: proportions unless length or latency
PER_METRIC_KINDS = frozenset({"context_length", "changepoint", "time_of_day", "load", "cohort"})


def _is_rate(f: Finding) -> bool:
    """Whether the finding's values are proportions (per-metric kinds: all their signals but length and latency)."""
    if f.kind in PER_METRIC_KINDS:
        return f.segment.rsplit("metric=", 1)[-1] not in ("response_length", "latency")
    return f.kind in RATE_KINDS


def value(f: Finding, v) -> str:
    """A baseline/current value as text, in the kind's natural unit."""
    if v is None:
        return "-"
    if isinstance(v, str):
        return fmt.clip(v, 40)
    if _is_rate(f) or f.kind in ("model_snapshot", "system_prompt", "tool_definitions", "sampling_params"):
        return fmt.pct(v)
    if f.kind in ("prompt_semantic", "response_semantic"):
        return f"AUC {v:.3f}"
    if f.kind == "matched_prompt_similarity":
        return f"cos {v:.3f}"
    return fmt.num(v)


def effect(f: Finding) -> str:
    """Effect with interval, in the kind's natural unit."""
    if f.effect is None:
        return "-"
    if _is_rate(f) and not (f.kind in ("prompt_mix", "stop_reason") and f.segment == ""):
        s = fmt.pp(f.effect)
        if f.ci_low is not None and f.ci_high is not None:
            s += f" [{fmt.pp(f.ci_low)}, {fmt.pp(f.ci_high)}]"
        return s
    if f.kind in ("prompt_mix", "stop_reason", "service_tier") and f.segment == "":
        return f"TV {fmt.pct(f.effect)}"
    if f.kind in ("model_snapshot", "system_prompt", "tool_definitions", "sampling_params", "service_tier",
                  "backend_fingerprint"):
        return f"{fmt.pct(f.effect)} of traffic"
    s = f"{f.effect:+.3f}"
    if f.ci_low is not None and f.ci_high is not None:
        s += f" [{f.ci_low:+.3f}, {f.ci_high:+.3f}]"
    return s


def qtext(f: Finding) -> str:
    """q-value text, or 'certain' for deterministic findings."""
    if f.p_value is None:
        return "certain" if f.significant else "-"
    return fmt.pval(f.q_value).replace("p", "q", 1)


def by_severity(report: DriftReport) -> dict[str, list[Finding]]:
    """Findings grouped by severity, in report order."""
    out: dict[str, list[Finding]] = {"alert": [], "warn": [], "info": []}
    for f in report.findings:
        out[f.severity].append(f)
    return out


def info_summary(info: list[Finding]) -> str:
    """'refusal_rate (3 tests), prompt_mix (9 tests), ...' for the quiet findings."""
    seen: dict[str, int] = {}
    for f in info:
        seen[f.kind] = seen.get(f.kind, 0) + 1
    return ", ".join(f"{k} ({n} test{'s' if n > 1 else ''})" for k, n in seen.items())


def eval_results(report: DriftReport) -> tuple[EvalResult, ...]:
    """The report's eval rows, regressions first, then by suite and target (none when no suite has a run)."""
    return tuple(sorted(report.evals or (), key=lambda e: (not e.regressed, e.suite, e.target)))


def eval_name(e: EvalResult) -> str:
    """'support-core (pinned)', with '[canary]' for a canary set."""
    return f"{e.suite}{f' [{e.kind}]' if e.kind else ''} ({e.target})"


def eval_rate(e: EvalResult) -> str:
    """'70.0% [52.1%, 83.3%]' (the pass rate with its interval)."""
    if e.pass_rate is None:
        return "n/a"
    ci = f" [{fmt.pct(e.pass_rate_low)}, {fmt.pct(e.pass_rate_high)}]" if e.pass_rate_low is not None else ""
    return fmt.pct(e.pass_rate) + ci


def eval_delta(e: EvalResult) -> str:
    """'-25.0 pp [-41.2 pp, -8.8 pp], p=0.004' against the previous run ('first run' when there is none)."""
    if e.previous_run_id is None:
        return "first run"
    if e.delta is None:
        return e.verdict
    ci = f" [{fmt.pp(e.delta_low)}, {fmt.pp(e.delta_high)}]" if e.delta_low is not None else ""
    return fmt.pp(e.delta) + ci + (f", {fmt.pval(e.p_value)}" if e.p_value is not None else "")


def eval_verdict(e: EvalResult) -> str:
    """'regression', 'regression on task=refund' (only some tag/grader groups), 'no significant change', ..."""
    if e.regressed and e.verdict != "regression":
        return "regression on " + (", ".join(e.regressed_groups) or "a group")
    return e.verdict


def eval_flipped(e: EvalResult, k: int = 3) -> str:
    """'5 cases passed before and fail now: a, b, c, ...' ('' when none did)."""
    if not e.n_pass_to_fail:
        return ""
    ids = ", ".join(e.pass_to_fail[:k]) + (", ..." if e.n_pass_to_fail > k else "")
    return f"{e.n_pass_to_fail} case{'s' if e.n_pass_to_fail != 1 else ''} passed before and fail now: {ids}"


def eval_line(e: EvalResult) -> str:
    """One line: 'support (pinned): pass 70.0% [..] (was 95.0%), -25.0 pp [..], p=0.004 -- regression; 5 cases ...'."""
    was = f" (was {fmt.pct(e.previous_pass_rate)})" if e.previous_pass_rate is not None else ""
    delta = f", {eval_delta(e)}" if e.previous_run_id is not None else ""
    line = f"{eval_name(e)}: pass {eval_rate(e)}{was}{delta} -- {eval_verdict(e)}"
    flipped = eval_flipped(e)
    return line + (f"; {flipped}" if flipped else "") + (f"; {e.errors} error(s)" if e.errors else "")


def _window_days(start, end) -> str:
    """'2026-11-16 .. 2026-11-22' (end exclusive, shown as the last day it covers)."""
    if start is None or end is None:
        return "?"
    last = end - timedelta(microseconds=1)
    return f"{start:%Y-%m-%d} .. {last:%Y-%m-%d}"


def _iso_week(start, end) -> str | None:
    """'2026-W47' when [start, end) is exactly one ISO week, else None."""
    if start is None or end is None:
        return None
    s = start.astimezone(UTC) if start.tzinfo else start
    if end - start != timedelta(days=7) or s.weekday() != 0 or (s.hour, s.minute, s.second, s.microsecond) != (0, 0, 0, 0):
        return None
    y, w, _ = s.isocalendar()
    return f"{y}-W{w:02d}"


def title(report: DriftReport) -> str:
    """The report's title naming the windows: 'Weekly drift report 2026-W47 (2026-11-16 .. 2026-11-22) vs 2026-W46'."""
    b, c = report.baseline, report.current
    cw, bw = _iso_week(c.start, c.end), _iso_week(b.start, b.end)
    if cw:
        return f"Weekly drift report {cw} ({_window_days(c.start, c.end)}) vs {bw or _window_days(b.start, b.end)}"
    return f"Drift report {_window_days(c.start, c.end)} vs {_window_days(b.start, b.end)}"


@dataclass(frozen=True)
class Mark:
    """A configuration change to mark on the time axis (changes within an hour share one mark)."""

    at: datetime
    kinds: tuple[str, ...]  #: 'snapshot', 'alias', 'system_prompt'
    labels: tuple[str, ...]


def _event(f: Finding) -> tuple[str, str] | None:
    if not f.significant or f.first_seen is None:
        return None
    seg = topic_phrase(f.segment) if f.segment else "all traffic"
    if f.kind == "model_snapshot" and not f.segment.startswith("model=") and isinstance(f.current_value, str):
        return "snapshot", f"new snapshot {f.current_value} ({seg})"
    if f.kind == "alias_usage" and f.segment.startswith("model=") and isinstance(f.current_value, str):
        return "alias", f"alias {f.segment.removeprefix('model=')} re-resolved to {f.current_value}"
    if f.kind == "system_prompt":
        return "system_prompt", f"system prompt changed ({seg})"
    return None


def marks(report: DriftReport) -> list[Mark]:
    """Snapshot rollovers, alias re-resolutions and system-prompt changes the report found, in time order."""
    evs = sorted({(f.first_seen, *ev) for f in report.findings if (ev := _event(f))})
    out: list[Mark] = []
    for at, kind, label in evs:
        if out and (at - out[-1].at).total_seconds() <= 3600:
            last = out[-1]
            out[-1] = Mark(last.at, last.kinds + ((kind,) if kind not in last.kinds else ()), last.labels + (label,))
        else:
            out.append(Mark(at, (kind,), (label,)))
    return out


def change_line(f: Finding) -> str:
    """One line for a finding: 'refusal_rate cluster=5 (medical symptoms): 1.9% -> 26.5%, +24.7 pp [...], since ...'."""
    seg = f" {f.segment}" if f.segment else ""
    line = f"{f.kind}{seg}: {value(f, f.baseline_value)} -> {value(f, f.current_value)}, {effect(f)}"
    if f.first_seen:
        line += f", since {fmt.ts(f.first_seen)}"
    return line
