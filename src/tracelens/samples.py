"""Sample production-log generator: ``python -m tracelens.samples``.

Writes a realistic multi-week production log of a fictional in-house
Claude-powered product (Fernbrook Outfitters: a customer ``support-bot``, a
ticket ``summarizer`` for agents and an internal ``code-helper``) in the
Anthropic request/response log JSONL format (``anthropic_log``), one file per
ISO week (``anthropic-2026-W47.jsonl.gz``), plus ``truth.json`` describing the
variance sources planted in it.

Contract:

* Deterministic: the same options give byte-identical files (one seeded
  ``random.Random`` stream, no wall clock, gzip mtime 0).
* ``--end`` is the Sunday ending the last complete ISO week; the data covers
  ``--weeks`` whole weeks ending there. Planted changes are placed relative to
  the last week (Monday = ``end - 6 days``):

  1. ``snapshot_rollover``: support-bot's alias ``claude-sonnet-4-5`` resolves
     to ``claude-sonnet-4-5-20250929`` until Wednesday 14:00 UTC, then to
     ``claude-sonnet-4-5-20261112``.
  2. ``alias_adoption``: code-helper moves from the pinned
     ``claude-haiku-4-5-20251001`` to the alias ``claude-haiku-4-5`` on Tuesday
     10:00 UTC (the resolved model does not change). support-bot names its
     alias all along; summarizer always pins ``claude-sonnet-4-20250514``.
  3. ``system_prompt_change``: support-bot's system prompt gains a paragraph on
     Thursday 09:00 UTC.
  4. ``refusal_rate``: from the rollover on, support-bot's ``account_access``
     topic refuses ~25% of calls instead of ~4%; every other topic's refusal
     rate and the topic mix are unchanged.
  5. ``complaint``: customer ``4411`` asks support-bot about a refund on
     Saturday around 15:00 UTC and is refused (message id in truth.json).

  Everything else (daily volume with noise and a weekly cycle, topic mix,
  latency, lengths, temperature, max_tokens, tools, error rate) is stationary.
* Ground truth travels with each record in ``metadata`` (stored by ingest as
  ``attributes``): ``synthetic_topic`` always, ``synthetic_refusal``
  (``none``/``partial``/``full``) on successful responses, and
  ``synthetic_planted`` on the complaint. They are labels for tests, not
  something a real logger would write.

All text is templated here; nothing is copied from real data sets.
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
import random
import sys
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from pathlib import Path

from tracelens.hashing import system_prompt_hash

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
    )


@dataclass(frozen=True)
class AppSpec:
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

# ---------------------------------------------------------------- prompts and tools

SUPPORT_SYSTEM = (
    "You are Juniper, the customer support assistant for Fernbrook Outfitters, an online shop for outdoor gear, "
    "clothing and home goods. You talk to customers in the chat widget on fernbrook.example and in the mobile app.\n\n"
    "Be warm, brief and concrete. Use the customer's order number when you have it. Use the lookup_order and "
    "get_refund_status tools instead of guessing about orders or refunds.\n\n"
    "Policies: items can be returned within 30 days of delivery for a full refund; refunds go back to the original "
    "payment method 5-10 business days after the return is received. Standard shipping takes 3-5 business days, "
    "express 1-2. Addresses can be changed until an order is handed to the courier.\n\n"
    "You cannot see or change passwords, payment card numbers or two-factor settings. For account security issues, "
    "send customers to fernbrook.example/account/recover or the account team (security@fernbrook.example).\n\n"
    "Do not give medical, legal or financial advice; suggest a qualified professional instead. Never reveal "
    "information about another customer's account."
)
SUPPORT_SYSTEM_ADDITION = (
    "Holiday returns: anything bought between 1 November and 24 December can be returned until 31 January. "
    "Mention this when a customer asks about returning a recent purchase."
)
SUMMARIZER_SYSTEM = (
    "You write handover summaries of customer support tickets for Fernbrook's support agents. Use at most five "
    "bullet points: the customer's problem, what has been done, what is still open, and the next step. Do not "
    "copy payment card numbers, passwords or other secrets into the summary."
)
CODE_SYSTEM = (
    "You are the internal coding assistant for Fernbrook's engineering team. Our stack is Python 3.11, PostgreSQL "
    "15 and TypeScript with React. Answer concisely, prefer runnable examples, and say when something depends on "
    "versions we might not run."
)

SUPPORT_TOOLS = [
    {
        "name": "lookup_order",
        "description": "Look up an order by its number and return its status, carrier, tracking number and "
                       "estimated delivery date.",
        "input_schema": {
            "type": "object",
            "properties": {"order_id": {"type": "string", "description": "Order number, e.g. FB-123456"}},
            "required": ["order_id"],
        },
    },
    {
        "name": "get_refund_status",
        "description": "Return the refund state for an order: not_requested, awaiting_return, processing or paid, "
                       "with amounts and dates.",
        "input_schema": {
            "type": "object",
            "properties": {"order_id": {"type": "string", "description": "Order number, e.g. FB-123456"}},
            "required": ["order_id"],
        },
    },
]

# ---------------------------------------------------------------- slot values

_PRODUCTS = (
    "Alder 2-person tent", "Ridgeline trail running shoes", "merino base layer", "insulated water bottle",
    "Summit down jacket", "Cascade rain shell", "carbon hiking poles", "rechargeable headlamp", "three-season sleeping bag",
    "wool hiking socks (3-pack)", "cast-iron skillet", "linen duvet cover", "stoneware mug set", "24L daypack",
    "fleece hoodie", "camping stove", "packable hammock", "kids' snow boots", "waterproof gloves",
    "Bluetooth camp speaker", "solar power bank", "folding camp chair", "trekking backpack 55L", "flannel shirt",
)
_CATEGORIES = ("footwear", "tents", "jackets", "kitchenware", "electronics", "bedding", "kids' clothing")
_CARRIERS = ("UPS", "DHL", "FedEx", "USPS", "DPD", "Royal Mail")
_CITIES = ("Memphis", "Louisville", "Leipzig", "East Midlands", "Columbus", "Sacramento", "Reno", "Newark")
_WAREHOUSES = ("Reno", "Columbus", "Leeds")
_FIRST = ("Maya", "Tom", "Priya", "Lukas", "Sofia", "Daniel", "Aisha", "Ben", "Chloe", "Mateo", "Hannah", "Omar",
          "Grace", "Ravi", "Elena", "Sam", "Noah", "Zoe", "Kenji", "Fatima", "Jonas", "Leah", "Ivan", "Nora")
_LAST = ("Patel", "Nguyen", "Schmidt", "Garcia", "O'Brien", "Kowalski", "Okafor", "Rossi", "Lindqvist", "Tanaka",
         "Moreau", "Hughes", "Silva", "Khan", "Fischer", "Walsh")
_STREETS = ("Maple Avenue", "Harbour Road", "Elm Street", "Station Lane", "Birch Close", "Riverside Drive", "King Street")
_TOWNS = ("Portland", "Leeds", "Austin", "Bristol", "Denver", "Galway", "Boise", "York")
_GADGETS = ("Bluetooth camp speaker", "solar power bank", "rechargeable headlamp", "GPS watch", "e-bike light set")
_GEAR = ("Summit down jacket", "Cascade rain shell", "Alder 2-person tent", "Ridgeline trail running shoes",
         "three-season sleeping bag", "waterproof gloves", "24L daypack", "kids' snow boots")
_GARMENTS = ("Summit down jacket", "fleece hoodie", "merino base layer", "flannel shirt", "Cascade rain shell",
             "Ridgeline trail running shoes")
_COMPAT = ("an iPhone 15", "Android phones", "a 12V car socket", "USB-C chargers", "Garmin apps", "older Micro-USB "
           "cables")
_DAY_REF = ("yesterday", "on Monday", "two days ago", "last week", "on Friday", "this morning")
_SUPPLEMENTS = ("electrolyte tablets", "caffeine gels", "melatonin gummies", "iron supplements", "altitude sickness pills")
_STACK = ("Postgres", "React", "pandas", "FastAPI", "pytest", "TypeScript", "SQLAlchemy", "Docker")


def _digits(rng: random.Random, n: int) -> str:
    return "".join(rng.choice("0123456789") for _ in range(n))


def _day(d: dt.datetime) -> str:
    return f"{d:%A} {d.day} {d:%B}"


def _money(rng: random.Random, median: float = 60.0) -> str:
    return f"${math.exp(rng.gauss(math.log(median), 0.7)):.2f}"


_SLOTS = {
    "order": lambda r, t: f"FB-{_digits(r, 6)}",
    "order2": lambda r, t: f"FB-{_digits(r, 6)}",
    "product": lambda r, t: r.choice(_PRODUCTS),
    "product2": lambda r, t: r.choice(_PRODUCTS),
    "gadget": lambda r, t: r.choice(_GADGETS),
    "gadget2": lambda r, t: r.choice(_GADGETS),
    "gear": lambda r, t: r.choice(_GEAR),
    "gear2": lambda r, t: r.choice(_GEAR),
    "garment": lambda r, t: r.choice(_GARMENTS),
    "category": lambda r, t: r.choice(_CATEGORIES),
    "amount": lambda r, t: _money(r),
    "amount2": lambda r, t: _money(r, 25.0),
    "date": lambda r, t: _day(t - dt.timedelta(days=r.randint(1, 9))),
    "old_date": lambda r, t: _day(t - dt.timedelta(days=r.randint(12, 40))),
    "eta": lambda r, t: _day(t + dt.timedelta(days=r.randint(1, 5))),
    "carrier": lambda r, t: r.choice(_CARRIERS),
    "tracking": lambda r, t: "1Z" + "".join(r.choice("0123456789ABCDEFGHJKLMNPRSTUVWXYZ") for _ in range(16)),
    "city": lambda r, t: r.choice(_CITIES),
    "warehouse": lambda r, t: r.choice(_WAREHOUSES),
    "n": lambda r, t: str(r.randint(3, 12)),
    "rma": lambda r, t: f"RMA-{_digits(r, 5)}",
    "name": lambda r, t: r.choice(_FIRST),
    "fullname": lambda r, t: f"{r.choice(_FIRST)} {r.choice(_LAST)}",
    "email": lambda r, t: f"{r.choice(_FIRST).lower()}.{r.choice(_LAST).lower().replace(chr(39), '')}"
                          f"{r.choice(('', '', '82', '.home', '7'))}@{r.choice(('example.com', 'mail.example', 'example.org'))}",
    "month": lambda r, t: (t - dt.timedelta(days=r.randint(20, 80))).strftime("%B"),
    "compat": lambda r, t: r.choice(_COMPAT),
    "address": lambda r, t: f"{r.randint(2, 240)} {r.choice(_STREETS)}, {r.choice(_TOWNS)}",
    "ticket": lambda r, t: _digits(r, 6),
    "day_ref": lambda r, t: r.choice(_DAY_REF),
    "supplement": lambda r, t: r.choice(_SUPPLEMENTS),
    "last4": lambda r, t: _digits(r, 4),
    "card": lambda r, t: "4" + _digits(r, 3) + " " + " ".join(_digits(r, 4) for _ in range(3)),
    "stack": lambda r, t: r.choice(_STACK),
    "pct": lambda r, t: str(r.choice((10, 15, 20))),
}


class Slots(dict):
    """Slot values drawn on first use and then reused, so one conversation stays consistent."""

    def __init__(self, rng: random.Random, ts: dt.datetime):
        super().__init__()
        self.rng = rng
        self.ts = ts

    def __missing__(self, key):
        value = _SLOTS[key](self.rng, self.ts)
        self[key] = value
        return value

    def fill(self, template: str) -> str:
        return template.format_map(self)


# ---------------------------------------------------------------- support topics
# A topic is a set of intents (prompt templates x fitting answers), exact recurring FAQ prompts, follow-up turns
# and refusals. Answers are opener + body + closer, each chosen at random, with slots filled per conversation.


@dataclass(frozen=True)
class Intent:
    """Prompts that mean the same thing, and answers that fit all of them."""

    prompts: tuple[str, ...]
    bodies: tuple[str, ...]
    openers: tuple[str, ...] = ("",)
    refusals: tuple[tuple[str, str], ...] = ()  # (label, text) fitting these prompts; else the topic's


@dataclass(frozen=True)
class Topic:
    intents: tuple[Intent, ...]
    faq: tuple[tuple[str, str], ...] = ()  # exact recurring prompts and their answers
    closers: tuple[str, ...] = ("",)
    followups: tuple[tuple[str, str], ...] = ()  # (user turn, answer) for multi-turn conversations
    refusals: tuple[tuple[str, str], ...] = ()  # (label, text)
    risky_prompts: tuple[str, ...] = ()  # prompts used when a refusal is drawn (empty: any prompt)

    @property
    def prompts(self) -> tuple[str, ...]:
        return tuple(p for i in self.intents for p in i.prompts)


_CLOSERS = (
    "", "", "", " Anything else I can help with?", " Let me know if there's anything else.",
    " Is there anything else I can do for you?", " Happy to help with anything else.",
)
_NEUTRAL = ("", "", "Thanks for getting in touch. ", "Let me help with that. ", "Sure. ")

SUPPORT: dict[str, Topic] = {
    "order_status": Topic(
        intents=(
            Intent(
                prompts=(
                    "Where is my order {order}?",
                    "Hi, my order {order} was supposed to arrive {day_ref} and it still hasn't come. Can you check?",
                    "can u tell me when {order} will get here",
                    "I ordered the {product} last week, order number {order}. Any update on delivery?",
                    "hello, still waiting on {order}. it says in transit since {date}",
                ),
                bodies=(
                    "order {order} left our {warehouse} warehouse on {date} and is with {carrier}. The latest scan "
                    "shows it at the {city} depot, so it should reach you by {eta}.",
                    "{order} shipped on {date} via {carrier} (tracking {tracking}). The estimated delivery date is "
                    "{eta}.",
                    "{carrier} shows {order} as delayed at their {city} hub after bad weather. They expect to deliver "
                    "it by {eta}. If it hasn't arrived by then, reply here and I'll send a replacement or refund it.",
                ),
                openers=("I'm sorry to hear that your order is late — here is what I found: ",
                         "I'm sorry to hear that your order is late — here is what I found: ",
                         "Thanks for your patience! ", "Sorry for the wait. ", "I'm sorry about the delay. ",
                         "I apologise for the wait. ", ""),
            ),
            Intent(
                prompts=("Has my {product} shipped yet? Order {order}", "has {order} been sent yet?"),
                bodies=(
                    "your {product} is packed and waiting for {carrier} to collect it; it should be on its way "
                    "within a day and arrive by {eta}.",
                    "yes, {order} went out with {carrier} on {date} (tracking {tracking}) and should arrive by {eta}.",
                ),
                openers=("Good news: ", "Let me check. ", ""),
            ),
            Intent(
                prompts=("Tracking for {order} hasn't moved in {n} days. Is it lost?",
                         "my tracking has said the same thing for {n} days, order {order}"),
                bodies=(
                    "{order} isn't lost: {carrier} has it at their {city} hub, where parcels are backed up this week. "
                    "Their new estimate is {eta}. If it hasn't moved by then, I'll open a lost-parcel claim and send "
                    "a replacement.",
                    "it looks like {carrier} missed a scan at {city}, which happens when a depot is busy. The parcel "
                    "is still expected by {eta}; if it doesn't arrive, reply here and I'll replace it.",
                ),
                openers=("I'm sorry for the worry. ", "I understand that's frustrating. ", ""),
            ),
            Intent(
                prompts=("My parcel {order} says delivered but there's nothing here. What do I do?",
                         "{carrier} says delivered {day_ref} but I never got it"),
                bodies=(
                    "when a parcel shows as delivered but isn't there, it has usually been left with a neighbour or in "
                    "a safe place. Please check around for 24 hours; if it still hasn't turned up, reply here and "
                    "I'll open a claim with {carrier} and send a replacement.",
                ),
                openers=("I'm so sorry about this. ", "Sorry to hear that! ", ""),
            ),
        ),
        faq=(
            ("How long does shipping take?",
             "Standard shipping takes 3-5 business days after your order is packed, and express takes 1-2. You'll get "
             "an email with a tracking link as soon as the parcel is handed to the courier."),
            ("Do you ship internationally?",
             "Yes, we ship to the US, Canada, the UK and most of the EU. Delivery outside the US usually takes 5-9 "
             "business days, and any import duties are shown at checkout."),
        ),
        closers=_CLOSERS,
        followups=(
            ("ok thanks. can it be left with a neighbour if I'm out?",
             "Yes. {carrier} will try a neighbour first, and if nobody answers they'll leave a card so you can "
             "rearrange delivery or collect it from a pickup point."),
            ("And if it doesn't show up by then?",
             "If it hasn't arrived by {eta}, message us and we'll either send a replacement straight away or refund "
             "you in full, whichever you prefer."),
            ("Can you send me the tracking link?",
             "Of course. The tracking number is {tracking} and you can follow it on the {carrier} website. I've also "
             "emailed the link to the address on your account."),
            ("thanks!", "You're welcome! I hope it arrives soon."),
        ),
        refusals=(
            ("partial", "I can't share delivery details for an order that isn't linked to your account, but if you "
                        "sign in and open Orders you'll see the tracking link there. If the order was a gift, the "
                        "person who placed it can forward you the tracking email."),
        ),
    ),
    "refund": Topic(
        intents=(
            Intent(
                prompts=("I want a refund for the {product}", "How do I return the {product} I bought?",
                         "can i send back the {product}? changed my mind"),
                bodies=(
                    "You can return the {product} within 30 days of delivery. Start the return from Orders in your "
                    "account and we'll email you a prepaid label; once it's back with us the refund of {amount} goes "
                    "to your original payment method.",
                    "I've opened return {rma} for the {product}. You'll get a prepaid label by email in the next few "
                    "minutes, and the refund of {amount} will be issued as soon as the warehouse checks the item in.",
                ),
                openers=("I'm sorry the {product} didn't work out. ", "Sure, I can help with that. ", "", ""),
            ),
            Intent(
                prompts=("It's been {n} days since I sent back {order} and I haven't got my money yet",
                         "i returned {order} on {date}, when do i get my refund??"),
                bodies=(
                    "Your return for {order} was received on {date} and the refund of {amount} was issued the same "
                    "day. Banks usually take 5-10 business days to show it, so it should appear by {eta}.",
                    "The warehouse checked in your return yesterday, and the refund of {amount} for {order} is being "
                    "processed now. You'll get an email the moment it's sent.",
                ),
                openers=("Unfortunately refunds can take a little while to appear, so let me explain where things "
                         "are. ", "Thanks for your patience. ", "Sorry for the wait! ", ""),
            ),
            Intent(
                prompts=("The {product} arrived broken, can I get my money back?",
                         "my {product} came damaged. what now"),
                bodies=(
                    "I've refunded {amount} for the {product} in full, and you don't need to send it back. It should "
                    "reach your account within 5-10 business days.",
                    "I've opened return {rma} and emailed you a prepaid label. As soon as the courier scans it, I'll "
                    "refund {amount} or send a replacement, whichever you prefer.",
                ),
                openers=("I'm sorry to hear it arrived damaged — that's not the experience we want. ",
                         "Oh no, I'm sorry about that. ", "I apologise for that. "),
            ),
            Intent(
                prompts=("What's your return policy for {category}?",
                         "Can I return the {product} if I've already used it once?"),
                bodies=(
                    "For {category}, the standard 30-day window applies as long as the item is unused. Worn footwear "
                    "and opened bedding can't be resold, so those are refunded only if they're faulty.",
                    "Items that have been used once can still be returned within 30 days if they're clean and "
                    "undamaged; we'll inspect them and refund in full if they can be resold.",
                ),
                openers=_NEUTRAL,
            ),
            Intent(
                prompts=("I got the wrong size, can I swap it instead of getting a refund?",
                         "can I exchange the {product} for a bigger size"),
                bodies=(
                    "Yes, exchanges are free. Start a return from Orders, pick 'exchange' and choose the new size; "
                    "we'll send the replacement as soon as the courier scans your parcel.",
                ),
                openers=("Of course! ", "Absolutely. ", ""),
            ),
        ),
        faq=(
            ("What is your return policy?",
             "You can return most items within 30 days of delivery for a full refund, as long as they're unused and "
             "in their original packaging. Start a return from Orders in your account and we'll email you a prepaid "
             "label."),
            ("How long do refunds take?",
             "Once the return reaches our warehouse we check it within two business days. The refund then goes back to "
             "your original payment method, which usually takes 5-10 business days to show up."),
        ),
        closers=_CLOSERS,
        followups=(
            ("Do I need the original box?",
             "The original packaging helps, but any sturdy box is fine as long as the item is protected."),
            ("ok, and will I get the shipping cost back too?",
             "If the item was faulty or we sent the wrong thing, yes, the original shipping is refunded as well. For "
             "change-of-mind returns the return label is free but the original shipping isn't refunded."),
            ("thanks, that's helpful", "Glad I could help! Your reference is {rma} if you need it later."),
        ),
        refusals=(
            ("partial", "I'm sorry, but I can't issue a refund for an order delivered more than 90 days ago. What I can "
                        "do is pass this to a specialist who reviews exceptions for faulty items; would you like me to?"),
            ("full", "I can't send a refund to a different card from the one used for the purchase."),
            ("partial", "I'm not able to approve a refund before the item has been returned, but I can email you a "
                        "prepaid return label right now so the refund is issued as soon as it arrives."),
        ),
    ),
    "account_access": Topic(
        intents=(
            Intent(
                prompts=("I forgot my password and the reset email never arrives",
                         "the login page keeps saying my password is wrong but I know it's right",
                         "password reset link says expired"),
                bodies=(
                    "Go to Sign in and choose 'Forgot password'. The reset link is valid for 30 minutes; if it doesn't "
                    "arrive within a few minutes, check your spam folder and make sure you're using the address you "
                    "signed up with.",
                    "Reset links expire after 30 minutes, so request a fresh one from 'Forgot password' and use it "
                    "straight away. If the email doesn't come, check spam or any filters on your inbox.",
                ),
                openers=("No problem. ", "Sorry about the trouble signing in. ", "I can help with that. ", ""),
            ),
            Intent(
                prompts=("I'm locked out after too many login attempts", "it says my account is locked??"),
                bodies=(
                    "After five failed attempts the account is locked for 15 minutes to protect it. Wait until then, "
                    "or use 'Forgot password' to set a new password straight away, which also unlocks it.",
                ),
                openers=("Sorry about that! ", "No worries. ", ""),
            ),
            Intent(
                prompts=("How do I change the email on my account?",
                         "I need to update the phone number on my account but I can't receive the code on the old one",
                         "I don't have access to {email} any more, how do I get into my account?"),
                bodies=(
                    "You can change your email and phone number under Account > Profile. We'll send a confirmation "
                    "link to the new address and a notice to the old one.",
                    "If you can't receive codes on the old number or email, fernbrook.example/account/recover confirms "
                    "it's you with a few questions about recent orders, and then lets you update your details.",
                ),
                openers=("Sure. ", "I can help with that. ", ""),
            ),
            Intent(
                prompts=("Can you turn off two-factor on my account? I lost my phone",
                         "new phone, how do i move my 2fa"),
                bodies=(
                    "If you've lost the phone you use for two-factor, use one of the backup codes you saved when you "
                    "set it up. If you don't have them, fernbrook.example/account/recover will take you through "
                    "identity checks.",
                ),
                openers=("Sorry to hear about your phone. ", ""),
            ),
            Intent(
                prompts=("someone changed my password, i think i've been hacked",
                         "I got an email about a login I didn't make"),
                bodies=(
                    "Please reset your password now from the Sign in page and then check Orders and Addresses for "
                    "anything you don't recognise. Our account team can also lock the account while they look into "
                    "it: security@fernbrook.example.",
                ),
                openers=("I'm sorry, that sounds worrying. ", "Thanks for telling us straight away. "),
            ),
            Intent(
                prompts=("My account says it's suspended, why?", "Can I merge my two accounts? One uses {email}"),
                bodies=(
                    "The account team can look at this for you and reply within one business day; write to "
                    "security@fernbrook.example from the address on the account.",
                ),
                openers=_NEUTRAL,
            ),
        ),
        faq=(
            ("How do I reset my password?",
             "Go to Sign in and choose 'Forgot password', then enter the email address on your account. We'll send a "
             "reset link that works for 30 minutes. If it doesn't arrive, check your spam folder."),
        ),
        closers=_CLOSERS,
        followups=(
            ("ok I'll try that. what if it still doesn't work?",
             "Then the recovery page at fernbrook.example/account/recover is the next step. It asks a few questions "
             "about recent orders to confirm it's you."),
            ("Why can't you just do it? It's my own account.",
             "I understand it's frustrating. The recovery page at fernbrook.example/account/recover can confirm it's "
             "you with a few questions about recent orders, and then you can change it yourself."),
            ("how long does the recovery take?",
             "Usually under ten minutes if you can answer the questions about your recent orders; otherwise the "
             "account team replies within a day."),
        ),
        refusals=(
            ("full", "I'm sorry, but I can't make changes to account security settings from this chat."),
            ("partial", "For your security, I'm not able to reset passwords or change sign-in details here. You can do "
                        "it yourself from the 'Forgot password' link on the Sign in page, or the account team can "
                        "verify your identity at security@fernbrook.example."),
            ("full", "I can't help with getting into an account without verifying the owner first."),
            ("full", "I'm unable to assist with changes to sign-in details."),
            ("partial", "That isn't something I can do over chat, I'm afraid. What I can do is point you to "
                        "fernbrook.example/account/recover, which walks you through it."),
            ("full", "Sorry, I won't be able to help with account access requests here."),
            ("partial", "I can't change account details myself. Once you're signed in you can update them under "
                        "Account > Profile, or the account team can do it after they've confirmed it's you."),
            ("full", "I'm not able to look into sign-in problems or account suspensions. Please contact "
                     "security@fernbrook.example."),
        ),
    ),
    "billing_dispute": Topic(
        intents=(
            Intent(
                prompts=("I was charged twice for order {order}", "why did you take money twice for {order}??"),
                bodies=(
                    "I checked and I can't see a second charge on order {order} — only one payment of {amount} on "
                    "{date}. Pending authorisations sometimes look like duplicates and drop off within 3-5 days.",
                    "You're right, {order} was charged twice because of a payment retry. I've refunded the duplicate "
                    "{amount}; it should be back on your card within 5-10 business days.",
                ),
                openers=("Thanks for flagging this. ", "Sorry for the confusion. ", "I understand, let me check. ", ""),
            ),
            Intent(
                prompts=("Why is there a charge of {amount} on my card from you?",
                         "I don't recognise a payment of {amount} on {date}"),
                bodies=(
                    "The charge of {amount} is order {order}, placed on {date} for the {product}. If you don't "
                    "recognise the order, let me know and I'll pass it to the billing team to investigate.",
                    "That {amount} is your Fernbrook Plus membership renewal from {date}. You can see it, and cancel "
                    "future renewals, under Account > Membership.",
                ),
                openers=("Let me check. ", "Thanks for asking. ", ""),
            ),
            Intent(
                prompts=("My subscription renewed but I cancelled it in {month}",),
                bodies=(
                    "I can see the cancellation from {month}, so the renewal shouldn't have happened. I've refunded "
                    "the {amount} in full; you'll see it back on your card in 5-10 business days.",
                ),
                openers=("I'm sorry about that. ", "Apologies for the mix-up. "),
            ),
            Intent(
                prompts=("you charged me {amount} but my order total was {amount2}",),
                bodies=(
                    "The difference is shipping and tax: the item total was {amount2} and express delivery plus tax "
                    "brought it to {amount}. The full breakdown is on the invoice in your Orders page.",
                ),
                openers=_NEUTRAL,
            ),
            Intent(
                prompts=("Can I get an invoice with my company name for {order}?",),
                bodies=(
                    "Yes. Open {order} in Orders, choose 'Download invoice' and add your company name and VAT number "
                    "before downloading; the PDF updates straight away.",
                ),
                openers=("Of course. ", ""),
            ),
        ),
        faq=(
            ("How do I cancel my subscription?",
             "You can cancel Fernbrook Plus any time under Account > Membership. You keep the benefits until the end "
             "of the period you've paid for and won't be charged again."),
        ),
        closers=_CLOSERS,
        refusals=(
            ("partial", "I'm not able to reverse card charges myself, but I've flagged this for the billing team and "
                        "they'll email you within one business day."),
            ("full", "I can't give out details about payments made with a card that isn't on your account."),
        ),
    ),
    "product_question": Topic(
        intents=(
            Intent(
                prompts=("Does the {gadget} work with {compat}?", "will the {gadget} charge from {compat}"),
                bodies=("Yes, the {gadget} works with {compat}. Everything you need is in the box.",
                        "I'm afraid the {gadget} isn't compatible with {compat}; the {gadget2} is, and it's "
                        "currently in stock."),
                openers=("Good question! ", "Happy to help. ", ""),
            ),
            Intent(
                prompts=("When will the {product} be back in stock?", "is the {product} sold out?"),
                bodies=("Unfortunately the {product} is out of stock right now, but we expect more by {eta}. You can "
                        "tap 'Notify me' on the product page and we'll email you the moment it's back.",
                        "It's back in stock as of today, in all sizes except XS."),
                openers=("", "Thanks for asking. "),
            ),
            Intent(
                prompts=("What size should I get in the {garment}? I'm usually a medium",
                         "does the {garment} run small?"),
                bodies=("The {garment} fits true to size, so a medium should be right. If you're between sizes or like "
                        "to layer underneath, go one size up.",),
                openers=("Sure. ", ""),
            ),
            Intent(
                prompts=("Is the {gear} waterproof?", "is the {gear} any good for winter camping",
                         "would the {gear} hold up in Scottish weather?"),
                bodies=("The {gear} is water-resistant rather than fully waterproof: it handles showers well but "
                        "not hours of heavy rain. For that, the Cascade rain shell is the better choice.",
                        "The {gear} is made for three-season use, so it's fine down to about -2°C. For real winter "
                        "use I'd look at something rated lower.",
                        "Yes, the {gear} is built for wet, windy conditions, with taped seams and a durable water "
                        "repellent finish."),
                openers=("Great question! ", ""),
            ),
            Intent(
                prompts=("What's the difference between the {gear} and the {gear2}?",),
                bodies=("The {gear} is the lighter option and packs smaller, while the {gear2} is sturdier and better "
                        "for heavy use. Both come with a two-year warranty.",),
                openers=("Great question! ", ""),
            ),
            Intent(
                prompts=("Do you do gift wrapping?",),
                bodies=("Yes, we offer gift wrapping for $4.50 per order; tick 'This is a gift' at checkout and you "
                        "can add a message too.",),
            ),
        ),
        faq=(
            ("Do you have a store I can visit?",
             "We're online only, but you can try things at home: returns are free within 30 days."),
            ("Do you price match?",
             "We don't price match, but Fernbrook Plus members get 10% off everything and free express shipping."),
        ),
        closers=_CLOSERS,
        refusals=(
            ("partial", "I can't speculate about products that haven't been announced yet, but I can tell you about "
                        "what's in stock now if that helps."),
        ),
    ),
    "shipping_change": Topic(
        intents=(
            Intent(
                prompts=("Can I change the delivery address for {order}?",
                         "Please deliver {order} to my office instead: {address}",
                         "I put the wrong postcode on {order}"),
                bodies=("I've updated the delivery address for {order} to {address}. You'll get a confirmation email "
                        "shortly.",
                        "{order} hasn't been labelled yet, so I've corrected the address; nothing else is needed."),
                openers=("Sure thing. ", "No problem. ", "Done! ", ""),
                refusals=(("partial", "I can't redirect a parcel once it's with the courier, but you can change the "
                                      "delivery on the {carrier} website with tracking number {tracking}."),),
            ),
            Intent(
                prompts=("Can I upgrade {order} to express shipping?",),
                bodies=("{order} hasn't left the warehouse yet, so I've upgraded it to express for {amount2}. It "
                        "should arrive by {eta}.",),
                openers=("Sure thing. ", ""),
            ),
            Intent(
                prompts=("can you hold my parcel at the depot? I'm away until {eta}",),
                bodies=("I've asked {carrier} to hold the parcel at their {city} depot until {eta}. They'll text you "
                        "a collection code.",),
                openers=("No problem. ", ""),
            ),
        ),
        faq=(
            ("Can I change my delivery address?",
             "Yes, as long as the order hasn't been handed to the courier yet. Open the order in your account and "
             "choose 'Change address', or tell me the order number and new address here."),
        ),
        closers=_CLOSERS,
        refusals=(
            ("partial", "I can't make changes to an order once it's with the courier, but {carrier} can: use tracking "
                        "number {tracking} on their website."),
        ),
    ),
    "small_talk": Topic(
        intents=(
            Intent(("hi", "hello?", "good morning", "is anyone there"),
                   ("Hi! I'm Juniper, Fernbrook's support assistant. How can I help today?",
                    "I'm here! What can I help you with?", "Hello! What can I do for you today?")),
            Intent(("are you a bot?", "am i talking to a real person"),
                   ("Yes, I'm an AI assistant. I can help with orders, returns and your account, and I can pass you "
                    "to a person whenever you like.",)),
            Intent(("you were really helpful, thanks", "thank you so much!!", "lol ok"),
                   ("You're very welcome! Have a lovely day.", "Glad I could help!")),
            Intent(("what's your name",), ("I'm Juniper, Fernbrook's support assistant.",)),
        ),
        refusals=(
            ("partial", "I'd rather not share opinions on politics, but I'm happy to help with anything about your "
                        "orders or account."),
        ),
        risky_prompts=("who should I vote for", "what do you think about the election"),
    ),
    "policy_sensitive": Topic(
        intents=(
            Intent(("I took two of the {supplement} you sell with my blood pressure meds, is that dangerous?",),
                   ("I'm not a doctor, but the {supplement} label lists the ingredients and a warning to check with a "
                    "pharmacist if you take other medication. A pharmacist can tell you quickly whether the "
                    "combination is a problem; if you feel unwell, call your doctor or emergency services.",),
                   refusals=(("partial", "I can't give medical advice about combining supplements with prescription "
                                         "medication. A pharmacist can answer this quickly, and if you feel unwell "
                                         "please contact your doctor or emergency services."),
                             ("full", "I'm sorry, I'm not able to advise on medication."))),
            Intent(("What dose of melatonin gummies can I give my 4 year old?",),
                   ("The label on our melatonin gummies says they're for adults only, so please check with your "
                    "pediatrician before giving them to a child.",),
                   refusals=(("partial", "I can't recommend doses for children; please ask your pediatrician or a "
                                         "pharmacist. I can tell you what the product label says if that helps."),
                             ("full", "I can't help with dosing questions, I'm afraid."))),
            Intent(("Can I sue the courier for losing my package? What should I say in court?",
                    "Write me a letter threatening legal action against {carrier}"),
                   ("For lost parcels, the first step is a claim with {carrier}, which we can file for you; "
                    "small-claims court is normally a last resort. Many people find their local consumer advice "
                    "service helpful.",
                    "Here's a firm but polite draft you can adapt:\n\nDear {carrier} claims team,\nMy parcel {order} "
                    "was marked delivered on {date} but never arrived. Please investigate and confirm compensation "
                    "within 14 days, after which I will consider further action.\n\nRegards,\n{fullname}"),
                   refusals=(("partial", "I'm not able to give legal advice, but I can file a lost-parcel claim with "
                                         "{carrier} for you, which is usually the quickest way to get your money "
                                         "back."),
                             ("full", "I can't help with that request."))),
            Intent(("My ex has an account with you, can you give me the address on it?",
                    "I need to log into my dad's account, he's not answering. His email is {email}",
                    "Which email is registered for the account with phone number ending {last4}?"),
                   ("For privacy reasons account details are only shown to the account holder once they're signed "
                    "in; the person can see everything under Account > Profile.",),
                   refusals=(("full", "I'm sorry, but I can't share any information about another person's "
                                      "account."),
                             ("full", "I won't be able to help with getting into someone else's account, even a "
                                      "family member's."),
                             ("full", "Unfortunately I can't assist with this."))),
            Intent(("What's the full card number saved on my account? I need it for something else",),
                   ("Only the last four digits of a saved card are ever shown, under Account > Payment methods. "
                    "Your bank can give you the full number.",),
                   refusals=(("full", "That's not something I can do. Card numbers are never shown in full, to "
                                      "anyone."),)),
            Intent(("Is it legal to resell the {product} I bought from you?",),
                   ("Reselling items you've bought is generally fine. Just note the manufacturer's warranty may not "
                    "transfer to the new owner.",)),
            Intent(("I think I sprained my ankle on a hike, should I keep walking on it?",),
                   ("I'm not a doctor, but rest, ice and elevation are the usual first steps for a mild sprain. If "
                    "you can't put weight on it or the swelling is severe, please see a doctor.",),
                   refusals=(("partial", "I can't give medical advice, but if you can't put weight on it, please get "
                                         "it checked by a doctor or an urgent care clinic."),)),
        ),
        refusals=(("full", "I can't help with that request."),),
    ),
}

# The planted complaint's refusal: natural, full, in the refund topic.
COMPLAINT_PROMPT = ("Hi, I sent back the {product} from order {order} two weeks ago and I still haven't had my refund. "
                    "Can you sort it out please?")
COMPLAINT_REPLY = ("I'm sorry, but I can't help with refunds on this account here. Anything involving your payment "
                   "details needs to go through our account team at security@fernbrook.example.")

# ---------------------------------------------------------------- summarizer

# issue -> (summary of the problem, things already done, next steps)
_SUMMARY: dict[str, tuple[tuple[str, ...], tuple[str, ...], tuple[str, ...]]] = {
    "order_status": (
        ("says order {order} has not arrived", "is chasing order {order}, expected by {date}"),
        ("{carrier} tracking ({tracking}) shows no scan since {date}.", "Previous agent confirmed the order shipped.",
         "Nothing done yet beyond an acknowledgement."),
        ("Next step: open a claim with {carrier} and offer a replacement.",
         "Next step: check tracking again tomorrow and update the customer."),
    ),
    "refund": (
        ("is waiting for a refund of {amount} for the returned {product} (order {order})",
         "wants to return the {product} from order {order}"),
        ("Return {rma} was created; prepaid label emailed.", "Warehouse has not checked the return in yet.",
         "Nothing done yet beyond an acknowledgement."),
        ("Next step: chase the warehouse for the return check-in.", "Next step: issue the refund once the return "
         "is scanned."),
    ),
    "billing_dispute": (
        ("disputes a charge of {amount} linked to order {order}", "reports being charged twice for order {order}"),
        ("Agent confirmed a single settled payment; the second is a pending authorisation.",
         "Nothing done yet beyond an acknowledgement."),
        ("Next step: billing team to confirm whether a refund is due.",
         "Next step: confirm with the customer once the authorisation drops off, then close."),
    ),
    "shipping_change": (
        ("wants order {order} delivered to a different address", "asked to upgrade order {order} to express"),
        ("Order has not been labelled yet.", "Nothing done yet beyond an acknowledgement."),
        ("Next step: update the address and confirm by email.", "Next step: confirm with the customer and close."),
    ),
    "account_access": (
        ("cannot sign in and asks for help recovering the account", "reports a password change they didn't make"),
        ("Customer was sent the standard recovery article.", "Nothing done yet beyond an acknowledgement."),
        ("Next step: send the account recovery link and follow up in 24h.",
         "Next step: account team to verify identity and lock the account if needed."),
    ),
}
_SUMMARY_MOOD = ("Customer is polite.", "Customer is frustrated and has written in twice.",
                 "Customer asked for a call back.", "", "", "")
_AGENT_LINES = (
    "Thanks for contacting Fernbrook, I'm looking into this now.",
    "I've checked with the warehouse and will update you within 24 hours.",
    "Could you confirm the email address on the order?",
    "Sorry for the wait, I've passed this to the right team.",
)
_CUSTOMER_CHASERS = (
    "Any update?", "It's been {n} days, please reply.", "I still haven't heard back from anyone.",
    "ok thanks, let me know", "Hello?? This is the third time I'm writing.", "Thanks, that's my email address.",
)
_TICKET_INSTRUCTIONS = (
    "Summarise this support ticket for the next agent.",
    "Summarize this ticket:",
    "Please write a handover summary of the following ticket.",
    "Summarise ticket #{ticket} in a few bullet points.",
)

# ---------------------------------------------------------------- code-helper

_CODE_QA: tuple[tuple[str, str], ...] = (
    ("reverse a list in Python",
     "Slicing gives a reversed copy, `reverse()` works in place:\n\n```python\nitems = [3, 1, 2]\nnewest_first = "
     "items[::-1]   # new list\nitems.reverse()            # in place\n```\n\nUse `reversed(items)` if you only need "
     "to iterate."),
    ("parse JSON in TypeScript with types",
     "`JSON.parse` returns `any`, so validate before trusting the shape:\n\n```ts\ntype Order = { id: string; total: "
     "number };\n\nfunction parseOrder(text: string): Order {\n  const v = JSON.parse(text);\n  if (typeof v?.id !== "
     "\"string\" || typeof v?.total !== \"number\") throw new Error(\"bad order\");\n  return v as Order;\n}\n```\n\n"
     "For anything bigger, a schema library such as zod saves a lot of hand-written checks."),
    ("get the top 10 customers by order value in the last 30 days in Postgres",
     "```sql\nSELECT customer_id, SUM(total_cents) / 100.0 AS total\nFROM orders\nWHERE created_at >= now() - "
     "interval '30 days'\n  AND status <> 'cancelled'\nGROUP BY customer_id\nORDER BY total DESC\nLIMIT 10;\n```\n\n"
     "An index on `orders (created_at)` keeps this fast as the table grows."),
    ("retry an HTTP call with exponential backoff in Python",
     "A small loop is enough when you don't want another dependency:\n\n```python\nimport random, time\n\ndef "
     "with_retries(call, attempts=5, base=0.5):\n    for i in range(attempts):\n        try:\n            return call()\n"
     "        except TimeoutError:\n            if i == attempts - 1:\n                raise\n            time.sleep(base * "
     "2 ** i + random.random() * base)\n```\n\nRetry only idempotent requests, and honour `Retry-After` when the "
     "server sends it."),
    ("debounce an input in React",
     "Keep the timer in an effect keyed on the value:\n\n```tsx\nfunction useDebounced<T>(value: T, ms = 300) {\n  "
     "const [v, setV] = useState(value);\n  useEffect(() => {\n    const t = setTimeout(() => setV(value), ms);\n    "
     "return () => clearTimeout(t);\n  }, [value, ms]);\n  return v;\n}\n```\n\nThen search with the debounced value "
     "instead of the raw input."),
    ("group a pandas DataFrame by week and sum a column",
     "Use `resample` on a datetime index, or `Grouper` if the date is a column:\n\n```python\nweekly = df.groupby("
     "pd.Grouper(key=\"created_at\", freq=\"W-MON\"))[\"total\"].sum()\n```\n\n`W-MON` labels each week by the "
     "Monday it ends on; use `W-SUN` for weeks ending on Sunday."),
    ("write a pytest fixture that gives each test a temporary database",
     "Create the schema once per session and wrap each test in a transaction you roll back:\n\n```python\n"
     "@pytest.fixture\ndef db(engine):\n    conn = engine.connect()\n    tx = conn.begin()\n    yield conn\n    "
     "tx.rollback()\n    conn.close()\n```\n\nTests then run in isolation without recreating tables each time."),
    ("add a column with a default to a big Postgres table without locking it",
     "Since Postgres 11, adding a column with a constant default is metadata-only and fast:\n\n```sql\nALTER TABLE "
     "orders ADD COLUMN gift_wrap boolean NOT NULL DEFAULT false;\n```\n\nA volatile default such as `now()` still "
     "rewrites the table, so add those as nullable, backfill in batches, then set the default."),
    ("read a large CSV in chunks in Python",
     "```python\nimport pandas as pd\n\nfor chunk in pd.read_csv(\"orders.csv\", chunksize=100_000):\n    "
     "process(chunk)\n```\n\nOr, without pandas, `csv.DictReader` streams one row at a time."),
    ("type a FastAPI endpoint that returns a list of orders",
     "Declare a response model and FastAPI validates and documents it:\n\n```python\nclass OrderOut(BaseModel):\n    "
     "id: str\n    total: float\n\n@app.get(\"/orders\", response_model=list[OrderOut])\ndef list_orders(limit: int = "
     "20):\n    return repo.latest_orders(limit)\n```"),
    ("squash my last three commits in git",
     "```bash\ngit rebase -i HEAD~3\n```\n\nIn the editor, keep `pick` on the first line and change the other two to "
     "`squash` (or `fixup` to drop their messages). If the branch was already pushed, push with "
     "`--force-with-lease`."),
    ("find slow queries in Postgres",
     "Enable `pg_stat_statements` and sort by total time:\n\n```sql\nSELECT query, calls, round(total_exec_time) AS "
     "total_ms, round(mean_exec_time) AS mean_ms\nFROM pg_stat_statements\nORDER BY total_exec_time DESC\nLIMIT 20;"
     "\n```\n\nThen run `EXPLAIN (ANALYZE, BUFFERS)` on the worst offenders."),
)
_CODE_PHRASING = (
    "How do I {task}?", "how do i {task}", "What's the cleanest way to {task}?", "Quick one: how to {task}?",
    "Can you show me how to {task}?", "Best way to {task}? We're on {stack} if that matters.",
)
_CODE_FAQ = (
    "How do I reverse a list in Python?",
    "How do I squash my last three commits in git?",
    "How do I find slow queries in Postgres?",
)
_CODE_ERRORS: tuple[tuple[str, str], ...] = (
    ("Why does this raise KeyError: 'id'?\n\n```python\nfor row in rows:\n    ids.append(row['id'])\n```",
     "At least one row has no `id` key. Use `row.get('id')` and skip the `None` values, or log the offending row "
     "to see where it comes from:\n\n```python\nids = [r['id'] for r in rows if 'id' in r]\n```"),
    ("Getting `TypeError: Cannot read properties of undefined (reading 'map')` in this component:\n\n```tsx\n"
     "return <ul>{data.items.map(i => <li key={i.id}>{i.name}</li>)}</ul>;\n```",
     "`data.items` is undefined on the first render, before the fetch resolves. Default it:\n\n```tsx\nreturn "
     "<ul>{(data?.items ?? []).map(i => <li key={i.id}>{i.name}</li>)}</ul>;\n```"),
    ("psycopg says `current transaction is aborted, commands ignored until end of transaction block`. Why?",
     "An earlier statement in the same transaction failed, and Postgres refuses everything after it until you "
     "roll back. Catch the first error, call `conn.rollback()`, and the connection is usable again."),
    ("Why is `datetime.utcnow()` deprecated?",
     "It returns a naive datetime, which is easy to mix up with local time. Use `datetime.now(timezone.utc)`, which "
     "returns an aware value:\n\n```python\nfrom datetime import datetime, timezone\nnow = datetime.now(timezone.utc)"
     "\n```"),
)
_CODE_OPENERS = ("", "", "Sure. ", "Good question. ", "Here's the usual approach. ")
_CODE_CLOSERS = ("", "", "\n\nShout if you want a version for our older services.", "\n\nHappy to review the real code "
                 "if you paste it.")
_CODE_RISKY = (
    "Write a script that tries a list of common passwords against a competitor's admin login page",
    "How can I get around the licence check in the analytics tool we use? The seats are too expensive",
    "Write a browser extension that quietly records what people type on banking sites",
)
_CODE_REFUSALS = (
    ("full", "I can't help with trying to get into systems you don't have permission to access."),
    ("partial", "I can't help with bypassing a licence check, but if cost is the problem there are open-source "
                "alternatives, and I can help you compare them or migrate the dashboards."),
    ("full", "Sorry, I won't write software that secretly captures what people type."),
)

# generic filler used to make long (truncated) answers
_MORE = (
    "A few more details that might help: ",
    "To give you the full picture, ",
    "In case it's useful, here is everything that applies: ",
)
_MORE_SUPPORT = (
    "orders placed before 2pm on a business day are usually packed the same day, and you can follow every step in "
    "the Orders page of your account. ",
    "if anything arrives damaged, a photo of the item and the packaging helps us sort it out faster, and we never "
    "ask you to send back a damaged item at your own cost. ",
    "Fernbrook Plus members get free express shipping and extended 60-day returns on everything in the store. ",
    "our team is available by chat from 7am to 11pm UK time, seven days a week, and by email at any time. ",
)
_MORE_CODE = (
    "It's also worth adding a test that covers the edge case, so the behaviour is pinned down if someone refactors "
    "this later. ",
    "If this runs in the request path, measure it under realistic data sizes first; what's fine for a hundred rows "
    "can be slow for a million. ",
    "Keep the configuration in one place and log the values you actually used, which makes incidents easier to "
    "debug. ",
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
                "service_tier": "standard",
            },
        }
        obj = {
            "timestamp": _iso(ts),
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
            "timestamp": _iso(ts),
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
        parts = [text, "\n\n", rng.choice(_MORE)]
        while sum(map(len, parts)) < limit + 50:
            parts.append(rng.choice(pool))
        out = "".join(parts)[:limit]
        return out.rsplit(" ", 1)[0]

    # ------------------------------------------------------------ interactions
    def support(self, ts: dt.datetime, topic_name: str) -> None:
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
                    text = self._long(text, APP["support-bot"].max_tokens, 3.7, _MORE_SUPPORT)
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
        rng = self.rng
        slots = Slots(rng, ts)
        issue = rng.choice(tuple(_SUMMARY))
        problems, done, nexts = _SUMMARY[issue]
        name = slots["fullname"]
        lines = [f"Ticket #{slots['ticket']}", f"Customer: {name}", f"Opened: {slots['old_date']}", "---"]
        card = rng.random() < CARD_IN_TICKET_RATE
        lines.append("Customer: " + slots.fill(rng.choice(SUPPORT[issue].prompts)))
        if card:  # the summary leaves it out and says so: a compliant answer that sounds like a refusal
            lines.append(slots.fill("Customer: my card is {card}, expiry 08/28, just charge it again"))
        for i in range(rng.randint(1, 4)):
            lines.append(("Agent: " + rng.choice(_AGENT_LINES)) if i % 2 == 0 else
                         ("Customer: " + slots.fill(rng.choice(_CUSTOMER_CHASERS))))
        prompt = slots.fill(rng.choice(_TICKET_INSTRUCTIONS)) + "\n\n" + "\n".join(lines)
        bullets = [f"- Customer ({name}) " + slots.fill(rng.choice(problems)) + ".",
                   "- " + slots.fill(rng.choice(done))]
        mood = rng.choice(_SUMMARY_MOOD)
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
            text, stop = self._long(text, APP["summarizer"].max_tokens, 3.7, _MORE_SUPPORT), "max_tokens"
        meta = {"app": "summarizer", "user_id": self._user("summarizer"), "session_id": self._id("sess_", 16)}
        self.emit("summarizer", ts, meta, "ticket_summary", [{"role": "user", "content": prompt}],
                  [{"type": "text", "text": text}], stop, label, truncated_text=stop == "max_tokens")

    def code(self, ts: dt.datetime) -> None:
        rng = self.rng
        slots = Slots(rng, ts)
        refuse = self._refuse("code-helper", "code_question", ts)
        stop = "end_turn"
        if refuse:
            i = rng.randrange(len(_CODE_RISKY))
            prompt, (label, text) = _CODE_RISKY[i], _CODE_REFUSALS[i]
        else:
            label = "none"
            r = rng.random()
            if r < FAQ_RATE:
                prompt = rng.choice(_CODE_FAQ)
                task = prompt[len("How do I "):-1]
                answer = next(a for t, a in _CODE_QA if t == task)
            elif r < 0.8:
                task, answer = rng.choice(_CODE_QA)
                prompt = slots.fill(rng.choice(_CODE_PHRASING).replace("{task}", task))
            else:
                prompt, answer = rng.choice(_CODE_ERRORS)
            opener = rng.choice(_CODE_OPENERS)
            if opener and answer.startswith("```"):
                opener = opener.rstrip() + "\n\n"
            text = opener + answer + rng.choice(_CODE_CLOSERS)
            if rng.random() < TRUNCATION_RATE["code-helper"]:
                text, stop = self._long(text, APP["code-helper"].max_tokens, 3.0, _MORE_CODE), "max_tokens"
        meta = {"app": "code-helper", "user_id": self._user("code-helper"), "session_id": self._id("sess_", 16)}
        self.emit("code-helper", ts, meta, "code_question", [{"role": "user", "content": prompt}],
                  [{"type": "text", "text": text}], stop, label, truncated_text=stop == "max_tokens")

    def planted_complaint(self) -> None:
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
            "at": _iso(line.ts),
            "message_id": line.obj["response"]["id"],
            "request_id": line.obj["request_id"],
            "model_returned": line.obj["response"]["model"],
            "prompt": prompt,
            "response": COMPLAINT_REPLY,
            "synthetic_refusal": "full",
        }

    # ------------------------------------------------------------ traffic
    def run(self) -> Generated:
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
        # follow-up turns can run past the end of the window; a real export would cut them there
        kept = [ln for ln in self.lines if self.plan.start <= ln.ts < self.plan.stop]
        kept.sort(key=lambda ln: (ln.ts, ln.obj["request_id"]))
        return Generated(kept, self._truth(kept))

    # ------------------------------------------------------------ truth
    def _truth(self, lines: list[Record]) -> dict:
        p = self.plan
        old_sys, new_sys = SUPPORT_SYSTEM, SUPPORT_SYSTEM + "\n\n" + SUPPORT_SYSTEM_ADDITION

        def rate(pred) -> dict:
            sel = [ln for ln in lines if ln.label is not None and pred(ln)]
            ref = sum(1 for ln in sel if ln.label != "none")
            return {"calls": len(sel), "refusals": ref, "rate": round(ref / len(sel), 4) if sel else None}

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
                "at": _iso(p.rollover_at),
                "before": SNAPSHOT_OLD,
                "after": SNAPSHOT_NEW,
            },
            {
                "id": "alias_adoption",
                "kind": "alias_adoption",
                "app": "code-helper",
                "segment": {"app": "code-helper"},
                "field": "model_requested",
                "at": _iso(p.alias_adoption_at),
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
                "at": _iso(p.system_prompt_at),
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
                "at": _iso(p.rollover_at),
                "before": REFUSAL_BEFORE,
                "after": REFUSAL_AFTER,
                "observed": observed_topics[f"support-bot/{PLANTED_TOPIC}"],
                "cause": "snapshot_rollover",
                "note": "topic mix and every other topic's refusal rate are unchanged; refusals are shorter, so "
                        "this topic's output tokens and latency drop with it",
            },
        ]
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
            weeks[_week_name(ln.ts)] += 1
        return {
            "generator": "tracelens.samples",
            "generator_version": GENERATOR_VERSION,
            "format": "anthropic_log",
            "options": {"weeks": self.cfg.weeks, "per_day": self.cfg.per_day, "end": self.cfg.end.isoformat(),
                        "seed": self.cfg.seed, "compress": self.cfg.compress},
            "window": {"start": _iso(p.start), "stop": _iso(p.stop), "stop_is_exclusive": True},
            "labels": {
                "where": "request metadata, stored by tracelens as attributes",
                "synthetic_topic": "topic the prompt was generated from",
                "synthetic_refusal": "intended refusal label of the response (none/partial/full); absent on errors",
                "synthetic_planted": "set to 'complaint' on the planted complaint",
            },
            "changes": changes,
            "complaint": self.complaint,
            "facts": facts,
            "stationary": [
                "daily volume (weekly cycle + noise)", "app mix", "topic mix per app", "diurnal pattern",
                "refusal rate of every topic except the planted one", "response length per topic",
                "latency model per app", "temperature and max_tokens per app", "tool definitions",
                "error rate (429/529)", "max_tokens truncation rate",
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


def _iso(ts: dt.datetime) -> str:
    return ts.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.") + f"{ts.microsecond // 1000:03d}Z"


def _week_name(ts: dt.datetime) -> str:
    y, w, _ = ts.isocalendar()
    return f"{y}-W{w:02d}"


# ---------------------------------------------------------------- public API


def generate(cfg: Config | None = None) -> Generated:
    """Generate the records and truth for ``cfg`` in memory (no files written)."""
    return _Generator(cfg or Config()).run()


@dataclass
class WriteResult:
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
        by_week[_week_name(ln.ts)].append(ln)
    return {f"anthropic-{w}.jsonl": "".join(_dump_line(ln.obj) for ln in by_week[w]).encode("utf-8")
            for w in sorted(by_week)}


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
        path.write_bytes(blob)
        res.files.append(path)
        res.bytes += len(blob)
        file_info.append({"name": fname, "week": name[len("anthropic-"):-len(".jsonl")], "traces": data.count(b"\n"),
                          "sha256_uncompressed": hashlib.sha256(data).hexdigest()})
    truth = dict(gen.truth)
    truth["files"] = file_info
    res.truth_path = out / "truth.json"
    res.truth_path.write_text(json.dumps(truth, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    return res


def main(argv: list[str] | None = None) -> int:
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


if __name__ == "__main__":
    sys.exit(main())
