"""What the sample generator plants, and where: options, planted timestamps, apps, rates and model ids.

Contract: constants and pure functions only (no text corpus, no I/O). The
planted changes are placed relative to the last week of the run (see the
package docstring of :mod:`tracelens.samples`); :func:`make_plan` gives their
timestamps for a :class:`Config`. Changing a value here changes the generated
logs and ``truth.json``.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

GENERATOR_VERSION = "1"
DEFAULT_END = dt.date(2026, 11, 22)
UTC = dt.UTC

SNAPSHOT_OLD = "claude-sonnet-4-5-20250929"
SNAPSHOT_NEW = "claude-sonnet-4-5-20261112"
SONNET_ALIAS = "claude-sonnet-4-5"
HAIKU_PINNED = "claude-haiku-4-5-20251001"
# A different family from support-bot's, so "model=..." segments do not mix the two apps (whose shares
# within a shared snapshot would shift at the rollover and make lengths look changed).
SUMMARIZER_PINNED = "claude-sonnet-4-20250514"
HAIKU_ALIAS = "claude-haiku-4-5"

PLANTED_TOPIC = "account_access"
REFUSAL_BEFORE = 0.04
REFUSAL_AFTER = 0.45
ERROR_RATE = 0.005
COMPLAINT_USER = "4411"

# Variance behind one snapshot id, planted in the last week (drawn from a second random stream: see .plants).
PRIORITY_AGENTS = 16  # summarizer agents agent-001 .. agent-016 run on the priority tier, the rest on standard
PEAK_HOURS = (12, 13, 14, 15, 16)  # weekday UTC hours in which the standard tier slows down
PEAK_LATENCY_FACTOR = 1.8  # summarizer latency on the standard tier at peak hours, last week only
COHORT_REGION = "apac"  # support-bot customers of this region are served more slowly from the last Monday 08:00
COHORT_LATENCY_FACTOR = 2.5
STEP_APP, STEP_TOPIC, STEP_RATE = "code-helper", "code_question", 0.30  # refusal rate after the silent step
CONTEXT_USER = "agent-052"  # a summarizer user whose pasted ticket threads grow; the model does not change
CONTEXT_TICKETS = (1, 1, 1, 1, 2.5, 5.5)  # mean tickets per prompt in the last six weeks, oldest first

# ---------------------------------------------------------------- configuration


@dataclass(frozen=True)
class Config:
    """Generator options (the CLI flags)."""

    weeks: int = 6
    per_day: int = 200
    end: dt.date = DEFAULT_END
    seed: int = 7
    compress: str = "gz"  # "gz" or "none"

    def __post_init__(self):
        if self.weeks < 1:
            raise ValueError("weeks must be at least 1")
        if self.per_day < 1:
            raise ValueError("per_day must be at least 1")
        if self.end.isoweekday() != 7:
            raise ValueError(f"end must be a Sunday (the last day of an ISO week); {self.end} is a {self.end:%A}")
        if self.compress not in ("gz", "none"):
            raise ValueError("compress must be 'gz' or 'none'")


@dataclass(frozen=True)
class Plan:
    """Where the planted changes fall for one configuration (all UTC)."""

    start: dt.datetime  # Monday 00:00 of the first week
    stop: dt.datetime  # Monday 00:00 after the last week (exclusive)
    alias_adoption_at: dt.datetime  # last Tuesday 10:00
    rollover_at: dt.datetime  # last Wednesday 14:00
    system_prompt_at: dt.datetime  # last Thursday 09:00
    complaint_at: dt.datetime  # last Saturday 15:00 (+ a few minutes)
    peak_from: dt.datetime  # last Monday 00:00: the standard tier's peak-hours slowdown starts
    cohort_from: dt.datetime  # last Monday 08:00: the region cohort's calls slow down
    step_at: dt.datetime  # last Wednesday 11:00: code-helper's refusal rate steps up, same snapshot
    context_complaint_at: dt.datetime  # last Friday 16:00: the context-growth user's complaint


def iso(ts: dt.datetime) -> str:
    """A timestamp as the logs and truth.json write it: ISO 8601 UTC with milliseconds."""
    return ts.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.") + f"{ts.microsecond // 1000:03d}Z"


def week_name(ts: dt.datetime) -> str:
    """The ISO week of ``ts`` ('2026-W47')."""
    y, w, _ = ts.isocalendar()
    return f"{y}-W{w:02d}"


def make_plan(cfg: Config) -> Plan:
    """The planted timestamps implied by ``cfg`` (complaint minute not yet jittered)."""
    last_monday = dt.datetime.combine(cfg.end - dt.timedelta(days=6), dt.time(), UTC)
    return Plan(
        start=last_monday - dt.timedelta(weeks=cfg.weeks - 1),
        stop=last_monday + dt.timedelta(days=7),
        alias_adoption_at=last_monday + dt.timedelta(days=1, hours=10),
        rollover_at=last_monday + dt.timedelta(days=2, hours=14),
        system_prompt_at=last_monday + dt.timedelta(days=3, hours=9),
        complaint_at=last_monday + dt.timedelta(days=5, hours=15),
        peak_from=last_monday,
        cohort_from=last_monday + dt.timedelta(hours=8),
        step_at=last_monday + dt.timedelta(days=2, hours=11),
        context_complaint_at=last_monday + dt.timedelta(days=4, hours=16),
    )


@dataclass(frozen=True)
class AppSpec:
    """One simulated application: traffic share and daily/hourly shape, request parameters, topic mix, timing."""

    name: str
    share: float  # share of weekday traffic
    weekend: float  # weekend volume relative to a weekday
    hours: tuple[float, ...]  # relative traffic per UTC hour
    temperature: float
    max_tokens: int
    topics: tuple[tuple[str, float], ...]
    ms_per_token: float
    ttft_ms: float


# Consumer traffic (Europe + Americas): a broad day with a dip in the small hours.
_SUPPORT_HOURS = (0.45, 0.35, 0.3, 0.28, 0.3, 0.4, 0.6, 0.85, 1.1, 1.3, 1.45, 1.55,
                  1.6, 1.7, 1.8, 1.8, 1.75, 1.6, 1.45, 1.3, 1.15, 0.95, 0.75, 0.55)
# Internal tools: staff working hours (Europe then US East).
_STAFF_HOURS = (0.05, 0.04, 0.03, 0.03, 0.04, 0.1, 0.3, 0.8, 1.4, 1.8, 1.9, 1.8,
                1.6, 1.8, 1.9, 1.9, 1.7, 1.3, 0.9, 0.6, 0.4, 0.25, 0.12, 0.07)

APPS: tuple[AppSpec, ...] = (
    AppSpec("support-bot", 0.55, 0.9, _SUPPORT_HOURS, 0.3, 800, (
        ("order_status", 0.22), ("refund", 0.14), ("account_access", 0.15), ("billing_dispute", 0.10),
        ("product_question", 0.14), ("shipping_change", 0.08), ("small_talk", 0.09), ("policy_sensitive", 0.08),
    ), 13.0, 650.0),
    AppSpec("summarizer", 0.25, 0.5, _STAFF_HOURS, 0.0, 400, (("ticket_summary", 1.0),), 12.0, 700.0),
    AppSpec("code-helper", 0.20, 0.15, _STAFF_HOURS, 0.2, 1024, (("code_question", 1.0),), 6.0, 380.0),
)
APP = {a.name: a for a in APPS}

# Stationary refusal probability per call, by topic (the planted topic changes at the rollover).
REFUSAL_RATES = {
    "order_status": 0.005, "refund": 0.03, "account_access": REFUSAL_BEFORE, "billing_dispute": 0.02,
    "product_question": 0.01, "shipping_change": 0.02, "small_talk": 0.01, "policy_sensitive": 0.5,
    "ticket_summary": 0.0, "code_question": 0.012,
}
CARD_IN_TICKET_RATE = 0.01  # tickets with a pasted card number; the summary omits it (labelled none)
TOOL_FLOW_RATE = {"order_status": 0.35, "refund": 0.2}
MULTI_TURN_RATE = 0.22  # support-bot conversations with follow-up turns
FAQ_RATE = 0.25  # support-bot / code-helper first turns that use an exact recurring prompt
TRUNCATION_RATE = {"support-bot": 0.003, "summarizer": 0.008, "code-helper": 0.008}
STRUCTURED_REFUSAL_SHARE = 0.25  # of policy_sensitive full refusals: Anthropic stop_reason "refusal"

