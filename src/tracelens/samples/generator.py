"""The sample generator: records of one seeded run, the truth document, and the files written.

Contract (see :mod:`tracelens.samples` for what is planted):

* Deterministic: the same :class:`~tracelens.samples.plan.Config` gives
  byte-identical output (one seeded ``random.Random`` stream, no wall clock,
  gzip mtime 0). The draws follow the corpus (:mod:`.corpus`) and the plan
  (:mod:`.plan`) in order, so a change to either changes the logs.
* :func:`write_sample` removes earlier generator output in the target
  directory first, then writes one file per ISO week and ``truth.json``; each
  file is written to a temporary name and renamed into place.
"""

from __future__ import annotations

import argparse
import bisect
import datetime as dt
import gzip
import hashlib
import io
import itertools
import json
import math
import os
import random
import sys
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from pathlib import Path

from tracelens.hashing import system_prompt_hash
from tracelens.samples import plants
from tracelens.samples.corpus import (
    AGENT_LINES,
    CODE_CLOSERS,
    CODE_ERRORS,
    CODE_FAQ,
    CODE_OPENERS,
    CODE_PHRASING,
    CODE_QA,
    CODE_REFUSALS,
    CODE_RISKY,
    CODE_SYSTEM,
    COMPLAINT_PROMPT,
    COMPLAINT_REPLY,
    CUSTOMER_CHASERS,
    MORE,
    MORE_CODE,
    MORE_SUPPORT,
    SUMMARIZER_SYSTEM,
    SUMMARY,
    SUMMARY_MOOD,
    SUPPORT,
    SUPPORT_SYSTEM,
    SUPPORT_SYSTEM_ADDITION,
    SUPPORT_TOOLS,
    TICKET_INSTRUCTIONS,
    Intent,
    Slots,
    Topic,
)
from tracelens.samples.plan import (
    APP,
    APPS,
    CARD_IN_TICKET_RATE,
    COMPLAINT_USER,
    DEFAULT_END,
    ERROR_RATE,
    FAQ_RATE,
    GENERATOR_VERSION,
    HAIKU_ALIAS,
    HAIKU_PINNED,
    MULTI_TURN_RATE,
    PLANTED_TOPIC,
    REFUSAL_AFTER,
    REFUSAL_BEFORE,
    REFUSAL_RATES,
    SNAPSHOT_NEW,
    SNAPSHOT_OLD,
    SONNET_ALIAS,
    STRUCTURED_REFUSAL_SHARE,
    SUMMARIZER_PINNED,
    TOOL_FLOW_RATE,
    TRUNCATION_RATE,
    Config,
    iso,
    make_plan,
    week_name,
)

# ---------------------------------------------------------------- ids, tokens, timing

_B62 = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"


def _deck_size(weights: list[float]) -> int:
    """Smallest deck (at least 10 cards) in which every weight is a whole number of cards."""
    for size in range(10, 1001):
        if all(abs(w * size - round(w * size)) < 1e-6 for w in weights):
            return size
    return 1000


def _tokens(text: str, rng: random.Random, per: float = 3.7) -> int:
    return max(1, round(len(text) / per * rng.uniform(0.93, 1.07)))


@dataclass
class Record:
    """One generated log line: the JSON object written, plus its ground truth for tests."""

    ts: dt.datetime
    obj: dict
    app: str
    topic: str
    label: str | None  # synthetic refusal label; None for error lines


@dataclass
class Generated:
    """The records of one run (sorted by timestamp) and its truth document."""

    lines: list[Record]
    truth: dict


class _Generator:
    def __init__(self, cfg: Config):
        self.cfg = cfg
        self.plan = make_plan(cfg)
        self.rng = random.Random(cfg.seed)
        self.rng2 = plants.second_stream(cfg.seed)  # every planted variance source draws from this one
        self.context_complaint: dict | None = None
        self.lines: list[Record] = []
        self.seen_ids: set[str] = set()
        # customers: Zipf-like activity; 4411 is a moderately active customer with a history
        customers = [str(1001 + i) for i in range(900)]
        self.rng.shuffle(customers)  # activity rank is unrelated to the id
        customers.insert(30, COMPLAINT_USER)
        self.customers = customers
        self.customer_cum = list(itertools.accumulate(1.0 / (i + 1) ** 0.8 for i in range(len(customers))))
        self.agents = [f"agent-{i:03d}" for i in range(1, 41)]
        self.engineers = [f"eng-{i:03d}" for i in range(1, 61)]
        self.complaint: dict | None = None
        self.decks: dict[tuple, list] = {}

    # ------------------------------------------------------------ helpers
    def _id(self, prefix: str, n: int) -> str:
        while True:
            v = prefix + "".join(self.rng.choice(_B62) for _ in range(n))
            if v not in self.seen_ids:
                self.seen_ids.add(v)
                return v

    def _user(self, app: str) -> str:
        if app == "support-bot":
            x = self.rng.random() * self.customer_cum[-1]
            return self.customers[bisect.bisect_left(self.customer_cum, x)]
        return self.rng.choice(self.agents if app == "summarizer" else self.engineers)

    def _models(self, app: str, ts: dt.datetime) -> tuple[str, str]:
        """(model requested, model returned) for one call."""
        if app == "support-bot":
            return SONNET_ALIAS, (SNAPSHOT_NEW if ts >= self.plan.rollover_at else SNAPSHOT_OLD)
        if app == "summarizer":
            return SUMMARIZER_PINNED, SUMMARIZER_PINNED
        return (HAIKU_ALIAS if ts >= self.plan.alias_adoption_at else HAIKU_PINNED), HAIKU_PINNED

    def _system(self, app: str, ts: dt.datetime) -> str:
        if app == "support-bot":
            if ts >= self.plan.system_prompt_at:
                return SUPPORT_SYSTEM + "\n\n" + SUPPORT_SYSTEM_ADDITION
            return SUPPORT_SYSTEM
        return SUMMARIZER_SYSTEM if app == "summarizer" else CODE_SYSTEM

    def refusal_rate(self, app: str, topic: str, ts: dt.datetime) -> float:
        """Planted refusal probability of ``topic`` in ``app`` at ``ts`` (raised for the planted topic after the
        rollover).
        """
        if app == "support-bot" and topic == PLANTED_TOPIC and ts >= self.plan.rollover_at:
            return REFUSAL_AFTER
        return REFUSAL_RATES[topic]

    def _refuse(self, app: str, topic: str, ts: dt.datetime) -> bool:
        """Whether this call is refused.

        Draws come from shuffled decks holding exactly rate x size refusals, not independent coin flips: the
        order stays random, but the realised rate of a stationary topic matches its configured rate in any
        window of a few hundred calls, so the bundled sample has no chance "changes" a drift report could
        rightly flag.
        """
        rate = self.refusal_rate(app, topic, ts)
        return self._deck(("refusal", app, topic, rate), [(True, rate), (False, 1.0 - rate)])

    def _deck(self, key: tuple, weights: list[tuple[object, float]]) -> object:
        deck = self.decks.get(key)
        if not deck:
            size = _deck_size([w for _, w in weights])
            deck = [v for v, w in weights for _ in range(round(w * size))]
            self.rng.shuffle(deck)
            self.decks[key] = deck
        return deck.pop()

    # ------------------------------------------------------------ one call
    def emit(self, app: str, ts: dt.datetime, meta: dict, topic: str, messages: list, content: list, stop: str,
             label: str, *, truncated_text: bool = False) -> dt.datetime:
        """Log one call (maybe preceded by a failed attempt). Returns when the response finished."""
        spec = APP[app]
        rng = self.rng
        meta = plants.with_region(app, meta)
        tier = plants.tier(app, meta)
        if rng.random() < ERROR_RATE:
            ts = self._emit_error(app, ts, meta, topic, messages)
        _, returned = self._models(app, ts)
        system = self._system(app, ts)
        request = self._request(app, ts, messages)
        prefix_tokens = _tokens(system, rng) + (330 if app == "support-bot" else 0)
        msg_tokens = _tokens(json.dumps(messages, ensure_ascii=False), rng) + 4
        cache_read = cache_create = 0
        if app == "support-bot":
            if rng.random() < 0.8:
                cache_read = prefix_tokens
            else:
                cache_create = prefix_tokens
            input_tokens = msg_tokens
        else:
            input_tokens = prefix_tokens + msg_tokens
        out_text = "".join(b["text"] if b["type"] == "text" else json.dumps(b["input"]) for b in content)
        per = 3.0 if app == "code-helper" else 3.7
        output_tokens = spec.max_tokens if truncated_text else (_tokens(out_text, rng, per) if content else rng.randint(1, 4))
        ttft = math.exp(rng.gauss(math.log(spec.ttft_ms), 0.3)) + 0.04 * (input_tokens + cache_create)
        latency = ttft + output_tokens * spec.ms_per_token * math.exp(rng.gauss(0.0, 0.15))
        latency *= plants.latency_factor(self.plan, app, tier, meta, ts)
        response = {
            "id": self._id("msg_01", 22),
            "type": "message",
            "role": "assistant",
            "model": returned,
            "content": content,
            "stop_reason": stop,
            "stop_sequence": None,
            "usage": {
                "input_tokens": input_tokens,
                "cache_creation_input_tokens": cache_create,
                "cache_read_input_tokens": cache_read,
                "output_tokens": output_tokens,
                "service_tier": tier,
            },
        }
        obj = {
            "timestamp": iso(ts),
            "request_id": self._id("req_011C", 20),
            "latency_ms": round(latency, 1),
            "status_code": 200,
            "metadata": {**meta, "synthetic_topic": topic, "synthetic_refusal": label},
            "request": request,
            "response": response,
        }
        self.lines.append(Record(ts, obj, app, topic, label))
        return ts + dt.timedelta(milliseconds=latency)

    def _request(self, app: str, ts: dt.datetime, messages: list) -> dict:
        """The Messages API request body an app sends at ``ts``."""
        spec = APP[app]
        request: dict = {"model": self._models(app, ts)[0], "max_tokens": spec.max_tokens,
                         "temperature": spec.temperature}
        system = self._system(app, ts)
        if app == "support-bot":  # the long, stable prefix (tools + system) is cached
            request["system"] = [{"type": "text", "text": system, "cache_control": {"type": "ephemeral"}}]
            request["tools"] = SUPPORT_TOOLS
        else:
            request["system"] = system
        request["messages"] = messages
        return request

    def _emit_error(self, app, ts, meta, topic, messages) -> dt.datetime:
        rng = self.rng
        request = self._request(app, ts, messages)
        if rng.random() < 0.6:
            status, etype, msg, lat = 429, "rate_limit_error", (
                "Number of request tokens has exceeded your per-minute rate limit. Please try again later."
            ), rng.uniform(40, 180)
        else:
            status, etype, msg, lat = 529, "overloaded_error", "Overloaded", rng.uniform(300, 2500)
        rid = self._id("req_011C", 20)
        obj = {
            "timestamp": iso(ts),
            "request_id": rid,
            "latency_ms": round(lat, 1),
            "status_code": status,
            "metadata": {**meta, "synthetic_topic": topic},
            "request": request,
            "error": {"type": "error", "error": {"type": etype, "message": msg}, "request_id": rid},
        }
        self.lines.append(Record(ts, obj, app, topic, None))
        # the client retries after a backoff
        return ts + dt.timedelta(milliseconds=lat + rng.uniform(800, 4000))

    # ------------------------------------------------------------ content helpers
    def _answer(self, topic: Topic, slots: Slots, intent: Intent | None, body: str | None = None) -> str:
        rng = self.rng
        opener = slots.fill(rng.choice(intent.openers)) if intent else ""
        text = slots.fill(body if body is not None else rng.choice(intent.bodies))
        # "Good news: your order ..." but "Sorry for the wait. Your order ..."
        text = (text[0].lower() if opener.endswith(": ") else text[0].upper()) + text[1:]
        return opener + text + rng.choice(topic.closers)

    def _long(self, text: str, max_tokens: int, per: float, pool: tuple[str, ...]) -> str:
        """Extend ``text`` past ``max_tokens`` and cut it mid-sentence, as a truncated answer looks."""
        rng = self.rng
        limit = int(max_tokens * per)
        parts = [text, "\n\n", rng.choice(MORE)]
        while sum(map(len, parts)) < limit + 50:
            parts.append(rng.choice(pool))
        out = "".join(parts)[:limit]
        return out.rsplit(" ", 1)[0]

    # ------------------------------------------------------------ interactions
    def support(self, ts: dt.datetime, topic_name: str) -> None:
        """Emit one support-bot conversation on ``topic_name`` at ``ts``: a tool flow, or one to three turns."""
        rng = self.rng
        topic = SUPPORT[topic_name]
        user = self._user("support-bot")
        meta = {"app": "support-bot", "user_id": user, "session_id": self._id("sess_", 16)}
        slots = Slots(rng, ts)
        if topic_name in TOOL_FLOW_RATE and rng.random() < TOOL_FLOW_RATE[topic_name]:
            self._tool_flow(ts, topic_name, meta, slots)
            return
        turns = 1
        if topic.followups and rng.random() < MULTI_TURN_RATE:
            turns = rng.choice((2, 2, 3))
        history: list = []
        followups = rng.sample(topic.followups, min(turns - 1, len(topic.followups))) if turns > 1 else []
        turns = 1 + len(followups)
        intent: Intent | None = None
        t = ts
        for turn in range(turns):
            refuse = self._refuse("support-bot", topic_name, t)
            if turn == 0:
                faq = None
                if topic.risky_prompts and refuse:
                    prompt = rng.choice(topic.risky_prompts)
                elif topic.faq and rng.random() < FAQ_RATE:
                    faq = rng.choice(topic.faq)
                    prompt = faq[0]
                else:
                    intent = rng.choice(topic.intents)
                    prompt = slots.fill(rng.choice(intent.prompts))
            else:
                fu = followups[turn - 1]
                prompt = fu[0]
            history.append({"role": "user", "content": prompt})
            if refuse:
                pool = intent.refusals if (intent and intent.refusals and turn == 0) else topic.refusals
                label, text = rng.choice(pool)
                text = slots.fill(text)
                stop = "end_turn"
                if topic_name == "policy_sensitive" and label == "full" and rng.random() < STRUCTURED_REFUSAL_SHARE:
                    stop = "refusal"
                    text = rng.choice(("", "", "I can't help with that."))
                content = [{"type": "text", "text": text}] if text else []
            else:
                label = "none"
                stop = "end_turn"
                if turn == 0:
                    text = self._answer(topic, slots, intent, body=faq[1] if faq else None)
                else:
                    text = slots.fill(fu[1])
                truncated = rng.random() < TRUNCATION_RATE["support-bot"]
                if truncated:
                    text = self._long(text, APP["support-bot"].max_tokens, 3.7, MORE_SUPPORT)
                    stop = "max_tokens"
                content = [{"type": "text", "text": text}]
            done = self.emit("support-bot", t, meta, topic_name, list(history), content, stop, label,
                             truncated_text=stop == "max_tokens")
            if stop == "refusal":  # the provider ended the conversation
                break
            history.append({"role": "assistant", "content": text})
            t = done + dt.timedelta(seconds=rng.uniform(15, 240))  # the customer reads and types

    def _tool_flow(self, ts: dt.datetime, topic_name: str, meta: dict, slots: Slots) -> None:
        rng = self.rng
        topic = SUPPORT[topic_name]
        order = slots["order"]
        if topic_name == "order_status":
            prompt = slots.fill(rng.choice(topic.intents[0].prompts + topic.intents[2].prompts))
            tool, pre = "lookup_order", rng.choice(("Let me look that up.", "Let me check on that order for you.",
                                                     "One moment while I check."))
            status = rng.choice(("in_transit", "in_transit", "delayed", "out_for_delivery"))
            result = {"order_id": order, "status": status, "carrier": slots["carrier"], "tracking": slots["tracking"],
                      "last_scan": slots["city"], "estimated_delivery": slots["eta"]}
            final = {
                "in_transit": "Your order {order} is on its way with {carrier} (tracking {tracking}). It was last "
                              "scanned in {city} and should arrive by {eta}.",
                "delayed": "I'm sorry to hear that your order is late — here is what I found: {carrier} has {order} "
                           "marked as delayed at {city}, with a new delivery estimate of {eta}. If it hasn't arrived "
                           "by then, reply here and I'll send a replacement.",
                "out_for_delivery": "Good news: {order} is out for delivery with {carrier} today. You can follow it "
                                    "live with tracking number {tracking}.",
            }[status]
        else:
            prompt = slots.fill("i returned {order} on {date}, when do i get my refund??")
            tool, pre = "get_refund_status", rng.choice(("Let me check the refund status.", "I'll check that for you."))
            state = rng.choice(("processing", "paid", "awaiting_return"))
            result = {"order_id": order, "state": state, "amount": slots["amount"], "updated": slots["date"]}
            final = {
                "processing": "Your return for {order} has arrived and the refund of {amount} is being processed. "
                              "You should see it on your statement within 5-10 business days.",
                "paid": "The refund of {amount} for {order} was paid on {date}. Depending on your bank it can take a "
                        "few more days to show up.",
                "awaiting_return": "I'm sorry for the wait — we haven't received the return for {order} yet. Once "
                                   "the courier delivers it to our warehouse, the refund of {amount} is issued within "
                                   "two business days.",
            }[state]
        tool_id = self._id("toolu_01", 22)
        call_blocks = [{"type": "text", "text": pre},
                       {"type": "tool_use", "id": tool_id, "name": tool, "input": {"order_id": order}}]
        msgs1 = [{"role": "user", "content": prompt}]
        done = self.emit("support-bot", ts, meta, topic_name, msgs1, call_blocks, "tool_use", "none")
        msgs2 = msgs1 + [
            {"role": "assistant", "content": call_blocks},
            {"role": "user", "content": [{"type": "tool_result", "tool_use_id": tool_id,
                                          "content": json.dumps(result)}]},
        ]
        text = slots.fill(final)
        t2 = done + dt.timedelta(milliseconds=rng.uniform(80, 600))
        self.emit("support-bot", t2, meta, topic_name, msgs2, [{"type": "text", "text": text}], "end_turn", "none")

    def summarizer(self, ts: dt.datetime) -> None:
        """Emit one summarizer call at ``ts``: a ticket thread to summarise (sometimes with a card number to leave
        out).
        """
        rng = self.rng
        slots = Slots(rng, ts)
        issue = rng.choice(tuple(SUMMARY))
        problems, done, nexts = SUMMARY[issue]
        name = slots["fullname"]
        lines = [f"Ticket #{slots['ticket']}", f"Customer: {name}", f"Opened: {slots['old_date']}", "---"]
        card = rng.random() < CARD_IN_TICKET_RATE
        lines.append("Customer: " + slots.fill(rng.choice(SUPPORT[issue].prompts)))
        if card:  # the summary leaves it out and says so: a compliant answer that sounds like a refusal
            lines.append(slots.fill("Customer: my card is {card}, expiry 08/28, just charge it again"))
        for i in range(rng.randint(1, 4)):
            lines.append(("Agent: " + rng.choice(AGENT_LINES)) if i % 2 == 0 else
                         ("Customer: " + slots.fill(rng.choice(CUSTOMER_CHASERS))))
        prompt = slots.fill(rng.choice(TICKET_INSTRUCTIONS)) + "\n\n" + "\n".join(lines)
        bullets = [f"- Customer ({name}) " + slots.fill(rng.choice(problems)) + ".",
                   "- " + slots.fill(rng.choice(done))]
        mood = rng.choice(SUMMARY_MOOD)
        if mood:
            bullets.append("- " + mood)
        bullets.append("- " + slots.fill(rng.choice(nexts)))
        text = "\n".join(bullets)
        label, stop = "none", "end_turn"
        if card:
            text = (rng.choice(("I've left out the full card number the customer pasted into the ticket; please ask "
                                "them to remove it and never take card details over chat.",
                                "I won't repeat the card number from this ticket in the summary. Please delete it "
                                "from the ticket.")) + "\n\n" + text)
        elif rng.random() < TRUNCATION_RATE["summarizer"]:
            text, stop = self._long(text, APP["summarizer"].max_tokens, 3.7, MORE_SUPPORT), "max_tokens"
        meta = {"app": "summarizer", "user_id": self._user("summarizer"), "session_id": self._id("sess_", 16)}
        self.emit("summarizer", ts, meta, "ticket_summary", [{"role": "user", "content": prompt}],
                  [{"type": "text", "text": text}], stop, label, truncated_text=stop == "max_tokens")

    def code(self, ts: dt.datetime) -> None:
        """Emit one code-helper call at ``ts``, refused at the configured rate of its topic (drawn from a deck)."""
        rng = self.rng
        slots = Slots(rng, ts)
        refuse = self._refuse("code-helper", "code_question", ts)
        stop = "end_turn"
        if refuse:
            i = rng.randrange(len(CODE_RISKY))
            prompt, (label, text) = CODE_RISKY[i], CODE_REFUSALS[i]
        else:
            label = "none"
            r = rng.random()
            if r < FAQ_RATE:
                prompt = rng.choice(CODE_FAQ)
                task = prompt[len("How do I "):-1]
                answer = next(a for t, a in CODE_QA if t == task)
            elif r < 0.8:
                task, answer = rng.choice(CODE_QA)
                prompt = slots.fill(rng.choice(CODE_PHRASING).replace("{task}", task))
            else:
                prompt, answer = rng.choice(CODE_ERRORS)
            opener = rng.choice(CODE_OPENERS)
            if opener and answer.startswith("```"):
                opener = opener.rstrip() + "\n\n"
            text = opener + answer + rng.choice(CODE_CLOSERS)
            if rng.random() < TRUNCATION_RATE["code-helper"]:
                text, stop = self._long(text, APP["code-helper"].max_tokens, 3.0, MORE_CODE), "max_tokens"
            label, text, stop = plants.silent_step(self, ts, label, text, stop)
        meta = {"app": "code-helper", "user_id": self._user("code-helper"), "session_id": self._id("sess_", 16)}
        self.emit("code-helper", ts, meta, "code_question", [{"role": "user", "content": prompt}],
                  [{"type": "text", "text": text}], stop, label, truncated_text=stop == "max_tokens")

    def planted_complaint(self) -> None:
        """Emit the planted complaint: the refused support call of the complaint user, and record it for the truth
        document.
        """
        rng = self.rng
        ts = self.plan.complaint_at + dt.timedelta(minutes=rng.randint(1, 9), seconds=rng.randint(0, 59),
                                                   milliseconds=rng.randint(0, 999))
        slots = Slots(rng, ts)
        meta = {"app": "support-bot", "user_id": COMPLAINT_USER, "session_id": self._id("sess_", 16),
                "synthetic_planted": "complaint"}
        prompt = slots.fill(COMPLAINT_PROMPT)
        self.emit("support-bot", ts, meta, "refund", [{"role": "user", "content": prompt}],
                  [{"type": "text", "text": COMPLAINT_REPLY}], "end_turn", "full")
        line = self.lines[-1]
        self.complaint = {
            "kind": "complaint",
            "app": "support-bot",
            "user_id": COMPLAINT_USER,
            "segment": {"app": "support-bot", "user_id": COMPLAINT_USER, "synthetic_topic": "refund"},
            "at": iso(line.ts),
            "message_id": line.obj["response"]["id"],
            "request_id": line.obj["request_id"],
            "model_returned": line.obj["response"]["model"],
            "prompt": prompt,
            "response": COMPLAINT_REPLY,
            "synthetic_refusal": "full",
        }

    # ------------------------------------------------------------ traffic
    def run(self) -> Generated:
        """Draw the whole run, day by day and app by app, plus the planted complaint; returns the records and the
        truth.
        """
        cfg, rng = self.cfg, self.rng
        weekly = sum(a.share * (5 + 2 * a.weekend) for a in APPS)
        scale = 7.0 / weekly  # so the mean over a week is per_day lines a day
        hour_cum = {a.name: list(itertools.accumulate(a.hours)) for a in APPS}
        day = self.plan.start
        while day < self.plan.stop:
            noise = math.exp(rng.gauss(0.0, 0.07))
            weekend = day.isoweekday() >= 6
            for app in APPS:
                mean = cfg.per_day * scale * app.share * (app.weekend if weekend else 1.0) * noise
                target = max(0, round(rng.gauss(mean, math.sqrt(mean))))
                start = len(self.lines)
                while len(self.lines) - start < target:  # counts every line: retries and follow-ups too
                    cum = hour_cum[app.name]
                    hour = bisect.bisect_left(cum, rng.random() * cum[-1])
                    ts = day + dt.timedelta(hours=hour, seconds=rng.uniform(0, 3600))
                    ts = ts.replace(microsecond=ts.microsecond // 1000 * 1000)
                    if app.name == "support-bot":  # topic mix from a deck too: stationary by construction
                        self.support(ts, self._deck(("topic", app.name), list(app.topics)))
                    elif app.name == "summarizer":
                        self.summarizer(ts)
                    else:
                        self.code(ts)
            day += dt.timedelta(days=1)
        self.planted_complaint()
        plants.context_user(self)
        # follow-up turns can run past the end of the window; a real export would cut them there
        kept = [ln for ln in self.lines if self.plan.start <= ln.ts < self.plan.stop]
        kept.sort(key=lambda ln: (ln.ts, ln.obj["request_id"]))
        return Generated(kept, self._truth(kept))

    # ------------------------------------------------------------ truth
    def _truth(self, lines: list[Record]) -> dict:
        p = self.plan
        old_sys, new_sys = SUPPORT_SYSTEM, SUPPORT_SYSTEM + "\n\n" + SUPPORT_SYSTEM_ADDITION

        def rate(pred) -> dict:
            return plants.refusal_counts([ln for ln in lines if ln.label is not None and pred(ln)])

        observed_topics: dict[str, dict] = {}
        for app in APPS:
            for topic, _ in app.topics:
                observed_topics[f"{app.name}/{topic}"] = {
                    "before": rate(lambda ln, a=app.name, t=topic: ln.app == a and ln.topic == t and ln.ts < p.rollover_at),
                    "after": rate(lambda ln, a=app.name, t=topic: ln.app == a and ln.topic == t and ln.ts >= p.rollover_at),
                }
        changes = [
            {
                "id": "snapshot_rollover",
                "kind": "snapshot_rollover",
                "app": "support-bot",
                "segment": {"app": "support-bot", "model_requested": SONNET_ALIAS},
                "field": "model_returned",
                "at": iso(p.rollover_at),
                "before": SNAPSHOT_OLD,
                "after": SNAPSHOT_NEW,
            },
            {
                "id": "alias_adoption",
                "kind": "alias_adoption",
                "app": "code-helper",
                "segment": {"app": "code-helper"},
                "field": "model_requested",
                "at": iso(p.alias_adoption_at),
                "before": HAIKU_PINNED,
                "after": HAIKU_ALIAS,
                "note": "model_is_alias goes from false to true; model_returned stays " + HAIKU_PINNED,
            },
            {
                "id": "system_prompt_change",
                "kind": "system_prompt_change",
                "app": "support-bot",
                "segment": {"app": "support-bot"},
                "field": "system_prompt_hash",
                "at": iso(p.system_prompt_at),
                "before": system_prompt_hash(old_sys),
                "after": system_prompt_hash(new_sys),
                "added_paragraph": SUPPORT_SYSTEM_ADDITION,
                "note": "changes prompt_hash of every support-bot prompt and adds ~40 cached input tokens; "
                        "no behaviour change is planted with it",
            },
            {
                "id": "refusal_rate",
                "kind": "refusal_rate",
                "app": "support-bot",
                "segment": {"app": "support-bot", "synthetic_topic": PLANTED_TOPIC},
                "field": "refusal_rate",
                "at": iso(p.rollover_at),
                "before": REFUSAL_BEFORE,
                "after": REFUSAL_AFTER,
                "observed": observed_topics[f"support-bot/{PLANTED_TOPIC}"],
                "cause": "snapshot_rollover",
                "note": "topic mix and every other topic's refusal rate are unchanged; refusals are shorter, so "
                        "this topic's output tokens and latency drop with it",
            },
        ] + plants.truth(self, lines)
        facts = [
            {"kind": "alias_in_use", "app": "support-bot", "field": "model_requested", "value": SONNET_ALIAS,
             "note": "named all along: model_is_alias is true for every support-bot call"},
            {"kind": "pinned_snapshot", "app": "summarizer", "field": "model_requested", "value": SUMMARIZER_PINNED,
             "note": "pinned all along; unaffected by the rollover"},
        ]
        counts = Counter(ln.app for ln in lines)
        errors = Counter(ln.obj["error"]["error"]["type"] for ln in lines if ln.label is None)
        stops = Counter(ln.obj["response"]["stop_reason"] for ln in lines if ln.label is not None)
        labels = Counter(ln.label for ln in lines if ln.label is not None)
        weeks = defaultdict(int)
        for ln in lines:
            weeks[week_name(ln.ts)] += 1
        return {
            "generator": "tracelens.samples",
            "generator_version": GENERATOR_VERSION,
            "format": "anthropic_log",
            "options": {"weeks": self.cfg.weeks, "per_day": self.cfg.per_day, "end": self.cfg.end.isoformat(),
                        "seed": self.cfg.seed, "compress": self.cfg.compress},
            "window": {"start": iso(p.start), "stop": iso(p.stop), "stop_is_exclusive": True},
            "labels": {
                "where": "request metadata, stored by tracelens as attributes",
                "synthetic_topic": "topic the prompt was generated from",
                "synthetic_refusal": "intended refusal label of the response (none/partial/full); absent on errors",
                "synthetic_planted": "'complaint' on the planted complaint, 'complaint_context' on the context-growth "
                                     "user's",
            },
            "changes": changes,
            "complaint": self.complaint,
            "complaint_context": self.context_complaint,
            "facts": facts,
            "stationary": [
                "daily volume (weekly cycle + noise)", "app mix", "topic mix per app", "diurnal pattern",
                "refusal rate of every topic except the planted ones", "response length per topic",
                "latency model per app (but the peak-hours and cohort slowdowns)", "temperature and max_tokens per app",
                "tool definitions", "error rate (429/529)", "max_tokens truncation rate",
            ],
            "apps": {
                a.name: {"temperature": a.temperature, "max_tokens": a.max_tokens,
                         "topics": {t: w for t, w in a.topics}}
                for a in APPS
            },
            "refusal_rates": {**REFUSAL_RATES, PLANTED_TOPIC: {"before": REFUSAL_BEFORE, "after": REFUSAL_AFTER}},
            "observed": {
                "traces": len(lines),
                "by_app": dict(sorted(counts.items())),
                "by_week": dict(sorted(weeks.items())),
                "errors": dict(sorted(errors.items())),
                "stop_reasons": dict(sorted(stops.items())),
                "synthetic_refusal": dict(sorted(labels.items())),
                "refusal_by_topic": observed_topics,
            },
        }


# ---------------------------------------------------------------- public API


def generate(cfg: Config | None = None) -> Generated:
    """Generate the records and truth for ``cfg`` in memory (no files written)."""
    return _Generator(cfg or Config()).run()


@dataclass
class WriteResult:
    """What ``write_sample`` wrote: the log files, the truth document, and the traces and bytes written."""

    files: list[Path] = field(default_factory=list)
    truth_path: Path | None = None
    traces: int = 0
    bytes: int = 0


def _dump_line(obj: dict) -> str:
    return json.dumps(obj, ensure_ascii=False) + "\n"


def week_files(gen: Generated) -> dict[str, bytes]:
    """Uncompressed JSONL content per ISO week, keyed ``anthropic-YYYY-Www.jsonl``, in week order."""
    by_week: dict[str, list[Record]] = defaultdict(list)
    for ln in gen.lines:
        by_week[week_name(ln.ts)].append(ln)
    return {f"anthropic-{w}.jsonl": "".join(_dump_line(ln.obj) for ln in by_week[w]).encode("utf-8")
            for w in sorted(by_week)}


def _write_atomic(path: Path, data: bytes) -> None:
    """Write ``data`` to a hidden temporary file beside ``path``, then rename it into place."""
    tmp = path.with_name(f".{path.name}.tmp")
    try:
        tmp.write_bytes(data)
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def write_sample(out: Path, cfg: Config | None = None) -> WriteResult:
    """Generate ``cfg`` into directory ``out``: one file per ISO week plus truth.json.

    Earlier generator output in ``out`` (``anthropic-*.jsonl[.gz]``, ``truth.json``) is removed first so a
    run with fewer weeks leaves no stale files; nothing else in the directory is touched.
    """
    cfg = cfg or Config()
    gen = generate(cfg)
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    for old in sorted(out.glob("anthropic-*.jsonl*")):
        old.unlink()
    res = WriteResult(traces=len(gen.lines))
    file_info = []
    for name, data in week_files(gen).items():
        if cfg.compress == "gz":
            buf = io.BytesIO()
            with gzip.GzipFile(filename=name, mode="wb", fileobj=buf, mtime=0, compresslevel=9) as gz:
                gz.write(data)
            blob, fname = buf.getvalue(), name + ".gz"
        else:
            blob, fname = data, name
        path = out / fname
        _write_atomic(path, blob)
        res.files.append(path)
        res.bytes += len(blob)
        file_info.append({"name": fname, "week": name[len("anthropic-"):-len(".jsonl")], "traces": data.count(b"\n"),
                          "sha256_uncompressed": hashlib.sha256(data).hexdigest()})
    truth = dict(gen.truth)
    truth["files"] = file_info
    res.truth_path = out / "truth.json"
    _write_atomic(res.truth_path, (json.dumps(truth, indent=2, ensure_ascii=False) + "\n").encode("utf-8"))
    return res


def main(argv: list[str] | None = None) -> int:
    """Command-line entry point (``python -m tracelens.samples``): write a sample, print the paths written on stdout
    and return 0.
    """
    ap = argparse.ArgumentParser(
        prog="python -m tracelens.samples",
        description="Write a synthetic multi-week Anthropic request/response log with planted drift, plus truth.json.",
    )
    ap.add_argument("--out", default="sample_logs/production", help="output directory (default: %(default)s)")
    ap.add_argument("--weeks", type=int, default=6, help="number of whole ISO weeks (default: %(default)s)")
    ap.add_argument("--per-day", type=int, default=200, help="mean traces per day (default: %(default)s)")
    ap.add_argument("--end", default=DEFAULT_END.isoformat(),
                    help="the Sunday that ends the last week, YYYY-MM-DD (default: %(default)s)")
    ap.add_argument("--seed", type=int, default=7, help="random seed (default: %(default)s)")
    ap.add_argument("--compress", choices=("gz", "none"), default="gz", help="file compression (default: %(default)s)")
    a = ap.parse_args(argv)
    try:
        cfg = Config(weeks=a.weeks, per_day=a.per_day, end=dt.date.fromisoformat(a.end), seed=a.seed,
                     compress=a.compress)
    except ValueError as e:
        ap.error(str(e))
    res = write_sample(Path(a.out), cfg)
    for p in res.files:
        print(p)
    print(res.truth_path)
    print(f"{res.traces} traces in {len(res.files)} files, {res.bytes / 1e6:.2f} MB", file=sys.stderr)
    return 0
