"""The fixed store the TUI tests run on (built from JSONL through the real ingest pipeline), and ``settle``.

``build_tui_store(path)`` writes Anthropic request/response log lines (the
shape of ``tests.conftest.anthropic_line``, extended with tools, sessions,
stop details and hostile text) and ingests them. Everything is fixed, so
rendered screens are identical on every run. The story it holds:

* user 4411 asked for a refund on 2026-11-21 15:02:11 UTC and was refused
  (``msg_complaint``); the support app's system prompt had changed on
  2026-11-20 09:00 (v1 → v2 added "Never discuss refunds"); the request named
  the alias ``claude-sonnet-4-5``;
* ``msg_triage_w46`` / ``msg_triage_w47``: the identical triage prompt in two
  ISO weeks, answered the first week and refused the second;
* ``msg_tools``: a conversation with a tool call and its result;
* ``msg_hostile``: markup, ANSI/OSC escapes, OSC 8 links, a screen clear, NUL
  and bidi overrides in the user id, system prompt, prompt and response.
"""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

NOW = dt.datetime(2026, 11, 22, 10, 0, tzinfo=dt.UTC)  # Sunday of ISO week 2026-W47

SYSTEM_V1 = "You are the support assistant for Acme Store.\nBe concise and friendly."
SYSTEM_V2 = ("You are the support assistant for Acme Store.\nBe concise and friendly.\n"
             "Never discuss refunds; hand refund questions to a human agent.")
PROMPT_CHANGE = dt.datetime(2026, 11, 20, 9, 0, tzinfo=dt.UTC)
TRIAGE_SYSTEM = "You triage support tickets."
TRIAGE_PROMPT = "Summarise this ticket: the customer cannot log in after a password reset."
COMPLAINT_PROMPT = "I want a refund for order #8812, the blender arrived broken."
COMPLAINT_RESPONSE = "I'm sorry, but I can't help with refund requests. Please contact a human agent."

HOSTILE = (
    "[red]RED[/red] [link=https://evil.example]link[/link] [@click=app.quit]quit[/] "
    "\x1b[31mANSI\x1b[0m \x1b]8;;https://evil.example\x1b\\osc8\x1b]8;;\x1b\\ \x1b[2J\x1b[Hclear "
    "nul\x00byte \u202eevil\u202c bidi"
)


def line(i: int, ts: dt.datetime, *, user: str, prompt: str, response: str | None = None,
          system: str = SYSTEM_V1, model: str = "claude-sonnet-4-5", returned: str = "claude-sonnet-4-5-20250929",
          app: str = "support", msg_id: str | None = None, session: str | None = None, stop: str = "end_turn",
          messages: list | None = None, content: list | None = None, tools: list | None = None,
          stop_details: dict | None = None, temperature: float | None = 0.7) -> str:
    request = {"model": model, "max_tokens": 512, "system": system,
               "messages": messages or [{"role": "user", "content": prompt}]}
    if temperature is not None:
        request["temperature"] = temperature
    if tools:
        request["tools"] = tools
    resp = {
        "id": msg_id or f"msg_{i:06d}", "type": "message", "role": "assistant", "model": returned,
        "content": content if content is not None else ([{"type": "text", "text": response}] if response else []),
        "stop_reason": stop, "usage": {"input_tokens": 40 + i % 17, "output_tokens": 20 + i % 23},
    }
    if stop_details:
        resp["stop_details"] = stop_details
    meta = {"user_id": user, "app": app}
    if session:
        meta["session_id"] = session
    return json.dumps({
        "timestamp": ts.isoformat().replace("+00:00", "Z"), "latency_ms": 400 + (i * 37) % 900,
        "request_id": f"req_{(msg_id or f'{i:06d}')}", "metadata": meta, "request": request, "response": resp,
    })


ORDER_QUESTIONS = (
    "Where is my order #{n}?",
    "Can I change the delivery address for order #{n}?",
    "Do you ship order #{n} to Canada?",
    "What is the warranty on the blender in order #{n}?",
)
ORDER_ANSWERS = (
    "Order #{n} shipped yesterday and should arrive within three days.",
    "Yes: open order #{n} in your account and choose Change address before it ships.",
    "We ship to Canada; order #{n} will take five to seven business days.",
    "The blender in order #{n} has a two-year warranty.",
)


def fixture_lines() -> list[str]:
    lines = []
    start = dt.datetime(2026, 11, 9, 8, 0, tzinfo=dt.UTC)
    for i in range(72):  # background traffic, two weeks, every ~4.4 hours
        ts = start + dt.timedelta(minutes=265 * i + 7)
        k = i % len(ORDER_QUESTIONS)
        n = 1000 + i
        pinned = i % 3 == 0
        lines.append(line(
            i, ts, user=f"u{100 + i % 12}", prompt=ORDER_QUESTIONS[k].format(n=n),
            response=ORDER_ANSWERS[k].format(n=n), system=SYSTEM_V1 if ts < PROMPT_CHANGE else SYSTEM_V2,
            model="claude-sonnet-4-5-20250929" if pinned else "claude-sonnet-4-5", session=f"s-{i // 3}",
        ))
    # user 4411: an earlier question, one shortly before, then the refused refund
    lines.append(line(900, dt.datetime(2026, 11, 18, 11, 5, 30, tzinfo=dt.UTC), user="4411",
                       prompt="Where is my order #8812?", response="Order #8812 is out for delivery today.",
                       session="sess-4411-a"))
    lines.append(line(901, dt.datetime(2026, 11, 21, 14, 40, 2, tzinfo=dt.UTC), user="4411", system=SYSTEM_V2,
                       prompt="My blender from order #8812 arrived broken.",
                       response="I'm sorry to hear that! Could you describe the damage?", session="sess-4411-b"))
    lines.append(line(902, dt.datetime(2026, 11, 21, 15, 2, 11, tzinfo=dt.UTC), user="4411", system=SYSTEM_V2,
                       prompt=COMPLAINT_PROMPT, response=COMPLAINT_RESPONSE, msg_id="msg_complaint",
                       session="sess-4411-b"))
    # the same triage prompt in two weeks: answered, then refused by the provider
    lines.append(line(910, dt.datetime(2026, 11, 12, 9, 30, tzinfo=dt.UTC), user="agent-7", system=TRIAGE_SYSTEM,
                       prompt=TRIAGE_PROMPT, response="Customer locked out after a password reset; needs a new link.",
                       app="triage", msg_id="msg_triage_w46", model="claude-haiku-4-5-20251001",
                       returned="claude-haiku-4-5-20251001"))
    lines.append(line(911, dt.datetime(2026, 11, 19, 9, 30, tzinfo=dt.UTC), user="agent-7", system=TRIAGE_SYSTEM,
                       prompt=TRIAGE_PROMPT, response="", stop="refusal", app="triage", msg_id="msg_triage_w47",
                       model="claude-haiku-4-5-20251001", returned="claude-haiku-4-5-20251001",
                       stop_details={"type": "refusal", "category": "cyber", "explanation": "declined"}))
    # a tool call and its result
    tools = [{"name": "lookup_order", "description": "Find an order",
              "input_schema": {"type": "object", "properties": {"order": {"type": "string"}}}}]
    lines.append(line(
        920, dt.datetime(2026, 11, 21, 9, 15, tzinfo=dt.UTC), user="u200", system=SYSTEM_V2,
        prompt="Thanks, and the total?", msg_id="msg_tools", tools=tools, stop="end_turn",
        messages=[
            {"role": "user", "content": "What did I pay for order #5521?"},
            {"role": "assistant", "content": [{"type": "tool_use", "id": "toolu_01", "name": "lookup_order",
                                                "input": {"order": "5521"}}]},
            {"role": "user", "content": [{"type": "tool_result", "tool_use_id": "toolu_01",
                                          "content": "order 5521: 2 items, total 84.90 EUR"}]},
        ],
        content=[{"type": "text", "text": "You paid 84.90 EUR for order #5521."}],
    ))
    # hostile content everywhere a user can put text
    lines.append(line(930, dt.datetime(2026, 11, 21, 12, 0, tzinfo=dt.UTC), user="[bold]evil[/bold]\x1b[2J",
                       system="Be helpful. " + HOSTILE, prompt="Tell me " + HOSTILE,
                       response="Here: " + HOSTILE, msg_id="msg_hostile", app="playground"))
    return lines


# Refusal labels are pinned here rather than taken from the detector, so that
# the screens do not change when the detector is tuned (it has its own tests).
LABELS = {
    "msg_complaint": ("full", 0.94, "text", "declined", 'en.decline.unable_verb: "I can\'t help"'),
    "msg_triage_w47": ("full", 1.0, "structured", "cyber", "stop_reason=refusal"),
}


def fixture_labels(tbl):
    """Ingest enricher: the pinned refusal labels above, ``none`` for everything else."""
    import polars as pl

    from tracelens.schema import TRACE_SCHEMA

    df = pl.from_arrow(tbl)
    ids = df["trace_id"].to_list()
    cols = list(zip(*[LABELS.get(i, ("none", 0.0, None, None, None)) for i in ids], strict=True)) or [[]] * 5
    df = df.with_columns(
        pl.Series("refusal", cols[0], dtype=pl.String), pl.Series("refusal_score", cols[1], dtype=pl.Float64),
        pl.Series("refusal_source", cols[2], dtype=pl.String), pl.Series("refusal_category", cols[3], dtype=pl.String),
        pl.Series("refusal_evidence", cols[4], dtype=pl.String),
        pl.lit("fixture-1").alias("refusal_version"),
    )
    return df.to_arrow().select(TRACE_SCHEMA.names).cast(TRACE_SCHEMA)


def build_tui_store(root: Path, extra_lines: list[str] = (), files_layout: bool = False):
    """Ingest the fixture lines (plus ``extra_lines``) into a new store at ``root / "store"``: the default layout
    (Delta Lake), or with ``files_layout`` the older one (whose id index some tests look at)."""
    from tracelens.ingest.pipeline import ingest
    from tracelens.storeopen import open_store

    root.mkdir(parents=True, exist_ok=True)
    src = root / "support.jsonl"  # a fixed name: the trace view shows it
    src.write_text("\n".join([*fixture_lines(), *extra_lines]) + "\n", encoding="utf-8")
    if files_layout:
        from tracelens.store import Store

        store = Store(root / "store", create=True)
    else:
        store = open_store(root / "store", create=True)
    summary = ingest(store, [str(src)], enricher=fixture_labels)
    assert not summary.errors and summary.total("quarantined") == 0, summary.to_dict()
    return store


async def settle(pilot, extra: int = 2) -> None:
    """Wait until no worker runs and every message they posted has been handled (tests never sleep)."""
    app = pilot.app
    for _ in range(50):
        await app.workers.wait_for_complete()
        await pilot.pause()
        if not any(w.is_running for w in app.workers):
            break
    for _ in range(extra):
        await pilot.pause()


def test_fixture_store_holds_the_story(tmp_path):
    import polars as pl

    store = build_tui_store(tmp_path / "s")
    df = store.scan().collect()
    assert df.height == 79
    complaint = store.get("msg_complaint")
    assert complaint["user_id"] == "4411" and complaint["refusal"] == "full"
    assert complaint["model_is_alias"] and complaint["model_returned"] == "claude-sonnet-4-5-20250929"
    triage = df.filter(pl.col("app") == "triage")
    assert triage["prompt_hash"].n_unique() == 1 and sorted(triage["refusal"]) == ["full", "none"]
    tools = store.get("msg_tools")
    assert [m["role"] for m in tools["messages"]][:2] == ["user", "assistant"]
    assert "\x1b" in store.get("msg_hostile")["prompt_text"]
