"""Variance the sample hides behind one snapshot id: a tier slowed at peak hours, a diverging cohort, a silent
refusal step, and a user whose own context grew.

Contract: helpers the sample generator (:mod:`.generator`) calls while it draws the run. Every random draw made
here comes from the generator's second stream (``rng2``, seeded from the same seed), and the context-growth
user's calls are drawn with that stream swapped in; so planting these leaves every draw of the main stream, and
with it every other record's ids, texts and timings, as they were without them. What each plant does, and when,
is in :mod:`.plan` (``PRIORITY_AGENTS`` .. ``CONTEXT_TICKETS``, the ``Plan`` times); :func:`truth` describes them
for ``truth.json``.

1. ``peak_degradation``: summarizer agents ``agent-001`` .. ``agent-016`` run on the ``priority`` service tier,
   the rest on ``standard`` (all weeks). In the last week, standard-tier calls on weekdays at the
   ``PEAK_HOURS`` take ``PEAK_LATENCY_FACTOR`` times as long.
2. ``cohort_divergence``: every support-bot customer has a stable ``region`` (request metadata, stored as an
   attribute): about 20% ``apac``, 30% ``us``, 50% ``eu``. From the last Monday 08:00 on, ``apac`` customers'
   calls take ``COHORT_LATENCY_FACTOR`` times as long (their traffic is served from another fleet); prompts
   and answers do not change.
3. ``refusal_step``: from the last Wednesday 11:00, code-helper refuses about ``STEP_RATE`` of ordinary
   questions (it refused about 1% before), with the same returned snapshot and system prompt.
4. ``context_growth``: summarizer user ``CONTEXT_USER`` sends a few calls every weekday; the ticket threads
   they paste grow from one ticket to several over the last weeks (``CONTEXT_TICKETS``), so their input
   tokens grow about threefold, and they complain on the last Friday. The model, tier and the relation of
   every outcome to input size are unchanged.
"""

from __future__ import annotations

import datetime as dt
import random
from contextlib import contextmanager
from typing import TYPE_CHECKING

from tracelens.samples.corpus import (
    AGENT_LINES,
    CUSTOMER_CHASERS,
    MORE_SUPPORT,
    SUMMARY,
    SUMMARY_MOOD,
    SUPPORT,
    TICKET_INSTRUCTIONS,
    Slots,
)
from tracelens.samples.plan import (
    APP,
    COHORT_LATENCY_FACTOR,
    COHORT_REGION,
    CONTEXT_TICKETS,
    CONTEXT_USER,
    HAIKU_PINNED,
    PEAK_HOURS,
    PEAK_LATENCY_FACTOR,
    PRIORITY_AGENTS,
    REFUSAL_RATES,
    STEP_APP,
    STEP_RATE,
    STEP_TOPIC,
    SUMMARIZER_PINNED,
    TRUNCATION_RATE,
    Plan,
    iso,
    week_name,
)

if TYPE_CHECKING:
    from tracelens.samples.generator import Record, _Generator


#: what code-helper says after the step to questions it used to answer (label, text)
CODE_STEP_REFUSALS = (
    ("full", "I'm sorry, but I can't help with this request."),
    ("full", "I can't assist with that. If you have a different question, I'm happy to help."),
    ("full", "I'm not able to help with this one."),
    ("partial", "I can't provide code for that, but in general you should check the library's documentation for "
                "the supported way to do it."),
)


def second_stream(seed: int) -> random.Random:
    """The random stream every plant draws from, independent of the main one."""
    return random.Random(f"plants-{seed}")


def region(user_id: str) -> str:
    """A support-bot customer's region, stable per customer (about 20% apac, 30% us, 50% eu)."""
    n = int(user_id) if user_id.isdigit() else sum(map(ord, user_id))
    return COHORT_REGION if n % 5 == 3 else ("us" if n % 10 in (0, 4, 7) else "eu")


def with_region(app: str, meta: dict) -> dict:
    """``meta`` with the customer's region added (support-bot only)."""
    if app != "support-bot" or "region" in meta or "user_id" not in meta:
        return meta
    return {**meta, "region": region(str(meta["user_id"]))}


def tier(app: str, meta: dict) -> str:
    """The service tier a call runs on: summarizer's first agents and the context-growth user on priority."""
    if app == "summarizer":
        user = str(meta.get("user_id", ""))
        if user == CONTEXT_USER:
            return "priority"
        if user.startswith("agent-") and user[6:].isdigit() and int(user[6:]) <= PRIORITY_AGENTS:
            return "priority"
    return "standard"


def peak(plan: Plan, ts: dt.datetime) -> bool:
    """Whether ``ts`` falls in the planted peak-hours slowdown (last week, weekdays, ``PEAK_HOURS`` UTC)."""
    return ts >= plan.peak_from and ts.isoweekday() <= 5 and ts.hour in PEAK_HOURS


def latency_factor(plan: Plan, app: str, service_tier: str, meta: dict, ts: dt.datetime) -> float:
    """How much slower a call is than the stationary latency model says (1.0 outside the planted slowdowns)."""
    if app == "summarizer" and service_tier == "standard" and peak(plan, ts):
        return PEAK_LATENCY_FACTOR
    if app == "support-bot" and meta.get("region") == COHORT_REGION and ts >= plan.cohort_from:
        return COHORT_LATENCY_FACTOR
    return 1.0


def silent_step(g: _Generator, ts: dt.datetime, label: str, text: str, stop: str) -> tuple[str, str, str]:
    """code-helper after the step: an ordinary answer becomes a refusal often enough that the topic's rate is
    about ``STEP_RATE``. Returns (label, text, stop).
    """
    if ts < g.plan.step_at or label != "none" or stop != "end_turn":
        return label, text, stop
    base = REFUSAL_RATES[STEP_TOPIC]
    if g.rng2.random() >= (STEP_RATE - base) / (1.0 - base):
        return label, text, stop
    label, text = g.rng2.choice(CODE_STEP_REFUSALS)
    return label, text, stop


@contextmanager
def _second_stream(g: _Generator):
    main = g.rng
    g.rng = g.rng2
    try:
        yield g.rng
    finally:
        g.rng = main


def _tickets(week_index: int, weeks: int) -> float:
    """Mean tickets per prompt of the context-growth user in week ``week_index`` (0 = first) of ``weeks``."""
    back = weeks - 1 - week_index
    return CONTEXT_TICKETS[-1 - back] if back < len(CONTEXT_TICKETS) else CONTEXT_TICKETS[0]


def _thread(rng: random.Random, slots: Slots) -> tuple[list[str], list[str]]:
    """One ticket thread and the summary bullets for it."""
    issue = rng.choice(tuple(SUMMARY))
    problems, done, nexts = SUMMARY[issue]
    name = slots["fullname"]
    lines = [f"Ticket #{slots['ticket']}", f"Customer: {name}", f"Opened: {slots['old_date']}", "---",
             "Customer: " + slots.fill(rng.choice(SUPPORT[issue].prompts))]
    for i in range(rng.randint(1, 4)):
        lines.append(("Agent: " + rng.choice(AGENT_LINES)) if i % 2 == 0 else
                     ("Customer: " + slots.fill(rng.choice(CUSTOMER_CHASERS))))
    bullets = [f"- Customer ({name}) " + slots.fill(rng.choice(problems)) + ".", "- " + slots.fill(rng.choice(done))]
    mood = rng.choice(SUMMARY_MOOD)
    if mood:
        bullets.append("- " + mood)
    bullets.append("- " + slots.fill(rng.choice(nexts)))
    return lines, bullets


def _context_call(g: _Generator, ts: dt.datetime, mean_tickets: float, planted: bool = False) -> None:
    rng = g.rng
    n = max(1, round(rng.gauss(mean_tickets, 0.4 if mean_tickets > 1 else 0.0)))
    slots = Slots(rng, ts)
    parts, summary = [], []
    for i in range(n):
        lines, bullets = _thread(rng, Slots(rng, ts) if i else slots)
        parts.append("\n".join(lines))
        if i == 0:  # the summary is of the latest ticket; the earlier ones pasted with it get one line
            summary += bullets
    if n > 1:
        summary.append(f"- {n - 1} earlier ticket{'s' if n > 2 else ''} from the same customer are included for context.")
    prompt = slots.fill(rng.choice(TICKET_INSTRUCTIONS)) + "\n\n" + "\n\n".join(parts)
    text, stop = "\n".join(summary), "end_turn"
    if rng.random() < TRUNCATION_RATE["summarizer"]:
        text, stop = g._long(text, APP["summarizer"].max_tokens, 3.7, MORE_SUPPORT), "max_tokens"
    meta = {"app": "summarizer", "user_id": CONTEXT_USER, "session_id": g._id("sess_", 16)}
    if planted:
        meta["synthetic_planted"] = "complaint_context"
    g.emit("summarizer", ts, meta, "ticket_summary", [{"role": "user", "content": prompt}],
           [{"type": "text", "text": text}], stop, "none", truncated_text=stop == "max_tokens")


def context_user(g: _Generator) -> None:
    """Emit the context-growth user's calls (every weekday, staff hours) and their complaint."""
    with _second_stream(g) as rng:
        day, week = g.plan.start, 0
        while day < g.plan.stop:
            if day.isoweekday() <= 5:
                for _ in range(rng.randint(2, 4)):
                    ts = day + dt.timedelta(hours=rng.uniform(8.5, 17.5))
                    _context_call(g, ts.replace(microsecond=ts.microsecond // 1000 * 1000), _tickets(week, g.cfg.weeks))
            day += dt.timedelta(days=1)
            week = (day - g.plan.start).days // 7
        at = g.plan.context_complaint_at + dt.timedelta(minutes=rng.randint(1, 40), seconds=rng.randint(0, 59))
        _context_call(g, at, CONTEXT_TICKETS[-1], planted=True)
        line = g.lines[-1]
        g.context_complaint = {
            "kind": "complaint_context",
            "app": "summarizer",
            "user_id": CONTEXT_USER,
            "at": line.obj["timestamp"],
            "message_id": line.obj["response"]["id"],
            "request_id": line.obj["request_id"],
            "model_returned": line.obj["response"]["model"],
            "expected_explanation": "the user's own context grew (input tokens about 3x their earlier weeks); "
                                    "model snapshot, system prompt, tier and behaviour at a given input size "
                                    "are unchanged",
        }


def refusal_counts(sel: list[Record]) -> dict:
    """Calls, refusals (any label but ``none``) and their rate among labelled records ``sel``, for truth.json."""
    ref = sum(1 for ln in sel if ln.label != "none")
    return {"calls": len(sel), "refusals": ref, "rate": round(ref / len(sel), 4) if sel else None}


def truth(g: _Generator, lines: list[Record]) -> list[dict]:
    """The ``changes`` entries of ``truth.json`` for the plants, with what the run realised."""
    p = g.plan

    step = [ln for ln in lines if ln.app == STEP_APP and ln.label is not None and ln.ts >= p.start + dt.timedelta(
        weeks=g.cfg.weeks - 1)]

    ctx = [ln for ln in lines if ln.obj.get("metadata", {}).get("user_id") == CONTEXT_USER and ln.label is not None]
    by_week: dict[str, list[int]] = {}
    for ln in ctx:
        by_week.setdefault(week_name(ln.ts), []).append(ln.obj["response"]["usage"]["input_tokens"])
    return [
        {"id": "peak_degradation", "kind": "peak_degradation", "app": "summarizer",
         "segment": {"app": "summarizer", "service_tier": "standard", "model_returned": SUMMARIZER_PINNED},
         "field": "latency_ms", "at": iso(p.peak_from),
         "when": f"weekdays {PEAK_HOURS[0]:02d}:00-{PEAK_HOURS[-1] + 1:02d}:00 UTC, last week only",
         "factor": PEAK_LATENCY_FACTOR,
         "note": f"agent-001..agent-{PRIORITY_AGENTS:03d} run on the priority tier all along and are not slowed"},
        {"id": "cohort_divergence", "kind": "cohort_divergence", "app": "support-bot",
         "segment": {"app": "support-bot", "region": COHORT_REGION}, "field": "latency_ms",
         "at": iso(p.cohort_from), "factor": COHORT_LATENCY_FACTOR,
         "note": "every call of the region, all day; prompts, answers and refusals unchanged"},
        {"id": "refusal_step", "kind": "refusal_step", "app": STEP_APP,
         "segment": {"app": STEP_APP, "model_returned": HAIKU_PINNED, "synthetic_topic": STEP_TOPIC},
         "field": "refusal_rate", "at": iso(p.step_at), "before": REFUSAL_RATES[STEP_TOPIC], "after": STEP_RATE,
         "observed": {"before": refusal_counts([ln for ln in step if ln.ts < p.step_at]),
                      "after": refusal_counts([ln for ln in step if ln.ts >= p.step_at])},
         "note": "same returned snapshot and system prompt on both sides of the step"},
        {"id": "context_growth", "kind": "context_growth", "app": "summarizer",
         "segment": {"app": "summarizer", "user_id": CONTEXT_USER}, "field": "input_tokens",
         "tickets_per_prompt": list(CONTEXT_TICKETS),
         "observed": {"mean_input_tokens_by_week": {k: round(sum(v) / len(v)) for k, v in sorted(by_week.items())}},
         "note": "not a change of the model: the user's own prompts grew"},
    ]
