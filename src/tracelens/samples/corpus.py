"""The sample generator's text corpus: templates, answers, refusals and slot values, read from package data.

Contract:

* All text lives in ``data/corpus.json`` (shipped in the wheel as package
  data); this module only reads it, once, at import, and gives it the typed
  shape the generator walks (:class:`Topic` / :class:`Intent`, tuples). A
  field left out of a topic or intent in the file takes the dataclass default.
* Order matters: the generator draws from these sequences with one seeded
  random stream, so reordering, adding or removing an entry changes the
  generated logs (``tests/test_samples.py`` compares them with the bundled
  sample; regenerate it with ``python -m tracelens.samples`` on purpose).
* :class:`Slots` fills ``{slot}`` placeholders: each slot is drawn on first
  use in a conversation (from the slot values here, or a generated id, date
  or amount) and reused after that.

All text is templated; nothing is copied from real data sets.
"""

from __future__ import annotations

import datetime as dt
import json
import math
import random
from dataclasses import dataclass, fields, replace
from importlib import resources
from typing import Any


@dataclass(frozen=True)
class Intent:
    """Prompts that mean the same thing, and answers that fit all of them."""

    prompts: tuple[str, ...]
    bodies: tuple[str, ...]
    openers: tuple[str, ...] = ("",)
    refusals: tuple[tuple[str, str], ...] = ()  # (label, text) fitting these prompts; else the topic's


@dataclass(frozen=True)
class Topic:
    """A support topic: intents (prompt templates x fitting answers), exact recurring FAQ prompts, follow-up turns
    and refusals. Answers are opener + body + closer, each chosen at random, with slots filled per conversation."""

    intents: tuple[Intent, ...]
    faq: tuple[tuple[str, str], ...] = ()  # exact recurring prompts and their answers
    closers: tuple[str, ...] = ("",)
    followups: tuple[tuple[str, str], ...] = ()  # (user turn, answer) for multi-turn conversations
    refusals: tuple[tuple[str, str], ...] = ()  # (label, text)
    risky_prompts: tuple[str, ...] = ()  # prompts used when a refusal is drawn (empty: any prompt)

    @property
    def prompts(self) -> tuple[str, ...]:
        return tuple(p for i in self.intents for p in i.prompts)


def _tuples(x: Any) -> Any:
    """JSON arrays -> tuples, recursively (the generator's sequences are immutable)."""
    if isinstance(x, list):
        return tuple(_tuples(v) for v in x)
    if isinstance(x, dict):
        return {k: _tuples(v) for k, v in x.items()}
    return x


def _record(cls: type, obj: dict) -> Any:
    unknown = set(obj) - {f.name for f in fields(cls)}
    if unknown:
        raise ValueError(f"corpus.json: unknown {cls.__name__} field(s) {sorted(unknown)}")
    return cls(**{k: _tuples(v) for k, v in obj.items()})


def _topic(obj: dict) -> Topic:
    topic = _record(Topic, {**obj, "intents": []})
    return replace(topic, intents=tuple(_record(Intent, i) for i in obj["intents"]))


def load_corpus() -> dict[str, Any]:
    """The parsed ``data/corpus.json`` (JSON types; see the module docstring for the typed view)."""
    text = resources.files("tracelens.samples").joinpath("data", "corpus.json").read_text(encoding="utf-8")
    return json.loads(text)


_C = load_corpus()

# ---------------------------------------------------------------- prompts and tools

SUPPORT_SYSTEM: str = _C["system_prompts"]["support"]
SUPPORT_SYSTEM_ADDITION: str = _C["system_prompts"]["support_addition"]
SUMMARIZER_SYSTEM: str = _C["system_prompts"]["summarizer"]
CODE_SYSTEM: str = _C["system_prompts"]["code"]
SUPPORT_TOOLS: list[dict] = _C["support_tools"]  # written into requests as they are (JSON, not tuples)

# ---------------------------------------------------------------- support topics

SUPPORT: dict[str, Topic] = {name: _topic(t) for name, t in _C["support_topics"].items()}
# The planted complaint's refusal: natural, full, in the refund topic.
COMPLAINT_PROMPT: str = _C["complaint"]["prompt"]
COMPLAINT_REPLY: str = _C["complaint"]["reply"]

# ---------------------------------------------------------------- summarizer

# issue -> (summary of the problem, things already done, next steps)
SUMMARY: dict[str, tuple[tuple[str, ...], tuple[str, ...], tuple[str, ...]]] = _tuples(_C["summarizer"]["summaries"])
SUMMARY_MOOD: tuple[str, ...] = _tuples(_C["summarizer"]["moods"])
AGENT_LINES: tuple[str, ...] = _tuples(_C["summarizer"]["agent_lines"])
CUSTOMER_CHASERS: tuple[str, ...] = _tuples(_C["summarizer"]["customer_chasers"])
TICKET_INSTRUCTIONS: tuple[str, ...] = _tuples(_C["summarizer"]["ticket_instructions"])

# ---------------------------------------------------------------- code-helper

CODE_QA: tuple[tuple[str, str], ...] = _tuples(_C["code_helper"]["qa"])
CODE_PHRASING: tuple[str, ...] = _tuples(_C["code_helper"]["phrasing"])
CODE_FAQ: tuple[str, ...] = _tuples(_C["code_helper"]["faq"])
CODE_ERRORS: tuple[tuple[str, str], ...] = _tuples(_C["code_helper"]["errors"])
CODE_OPENERS: tuple[str, ...] = _tuples(_C["code_helper"]["openers"])
CODE_CLOSERS: tuple[str, ...] = _tuples(_C["code_helper"]["closers"])
CODE_RISKY: tuple[str, ...] = _tuples(_C["code_helper"]["risky"])
CODE_REFUSALS: tuple[tuple[str, str], ...] = _tuples(_C["code_helper"]["refusals"])

# ---------------------------------------------------------------- filler for long (truncated) answers

MORE: tuple[str, ...] = _tuples(_C["filler"]["more"])
MORE_SUPPORT: tuple[str, ...] = _tuples(_C["filler"]["more_support"])
MORE_CODE: tuple[str, ...] = _tuples(_C["filler"]["more_code"])

# ---------------------------------------------------------------- slot values

SLOT_VALUES: dict[str, tuple[str, ...]] = _tuples(_C["slot_values"])
_V = SLOT_VALUES


def _digits(rng: random.Random, n: int) -> str:
    return "".join(rng.choice("0123456789") for _ in range(n))


def _day(d: dt.datetime) -> str:
    return f"{d:%A} {d.day} {d:%B}"


def _money(rng: random.Random, median: float = 60.0) -> str:
    return f"${math.exp(rng.gauss(math.log(median), 0.7)):.2f}"


_SLOTS = {
    "order": lambda r, t: f"FB-{_digits(r, 6)}",
    "order2": lambda r, t: f"FB-{_digits(r, 6)}",
    "product": lambda r, t: r.choice(_V["products"]),
    "product2": lambda r, t: r.choice(_V["products"]),
    "gadget": lambda r, t: r.choice(_V["gadgets"]),
    "gadget2": lambda r, t: r.choice(_V["gadgets"]),
    "gear": lambda r, t: r.choice(_V["gear"]),
    "gear2": lambda r, t: r.choice(_V["gear"]),
    "garment": lambda r, t: r.choice(_V["garments"]),
    "category": lambda r, t: r.choice(_V["categories"]),
    "amount": lambda r, t: _money(r),
    "amount2": lambda r, t: _money(r, 25.0),
    "date": lambda r, t: _day(t - dt.timedelta(days=r.randint(1, 9))),
    "old_date": lambda r, t: _day(t - dt.timedelta(days=r.randint(12, 40))),
    "eta": lambda r, t: _day(t + dt.timedelta(days=r.randint(1, 5))),
    "carrier": lambda r, t: r.choice(_V["carriers"]),
    "tracking": lambda r, t: "1Z" + "".join(r.choice("0123456789ABCDEFGHJKLMNPRSTUVWXYZ") for _ in range(16)),
    "city": lambda r, t: r.choice(_V["cities"]),
    "warehouse": lambda r, t: r.choice(_V["warehouses"]),
    "n": lambda r, t: str(r.randint(3, 12)),
    "rma": lambda r, t: f"RMA-{_digits(r, 5)}",
    "name": lambda r, t: r.choice(_V["first"]),
    "fullname": lambda r, t: f"{r.choice(_V['first'])} {r.choice(_V['last'])}",
    "email": lambda r, t: f"{r.choice(_V['first']).lower()}.{r.choice(_V['last']).lower().replace(chr(39), '')}"
                          f"{r.choice(('', '', '82', '.home', '7'))}@{r.choice(('example.com', 'mail.example', 'example.org'))}",
    "month": lambda r, t: (t - dt.timedelta(days=r.randint(20, 80))).strftime("%B"),
    "compat": lambda r, t: r.choice(_V["compat"]),
    "address": lambda r, t: f"{r.randint(2, 240)} {r.choice(_V['streets'])}, {r.choice(_V['towns'])}",
    "ticket": lambda r, t: _digits(r, 6),
    "day_ref": lambda r, t: r.choice(_V["day_ref"]),
    "supplement": lambda r, t: r.choice(_V["supplements"]),
    "last4": lambda r, t: _digits(r, 4),
    "card": lambda r, t: "4" + _digits(r, 3) + " " + " ".join(_digits(r, 4) for _ in range(3)),
    "stack": lambda r, t: r.choice(_V["stack"]),
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
