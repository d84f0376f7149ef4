"""simonw_llm: the llm CLI's logs.db (legacy responses table and threads/turns/messages/parts) -> traces.

``build_sample_db`` writes sample_logs/llm_logs.db (a test checks the committed file holds exactly what it
writes); regenerate with ``python -m tests.test_formats_simonw_llm sample_logs/llm_logs.db``.
"""

from __future__ import annotations

import gzip
import io
import json
import sqlite3
import sys
from pathlib import Path

import pytest

from tests.conftest import REPO
from tracelens.ingest.base import FormatError, IngestOptions, Quarantined, Skipped, Source
from tracelens.ingest.pipeline import ingest
from tracelens.ingest.registry import FORMATS, get_format, sniff_format

SAMPLE = REPO / "sample_logs" / "llm_logs.db"

# The tables of llm's schema that the importer reads (docs: llm "Logging to SQLite", SQL schema section).
SCHEMA = """
CREATE TABLE "conversations" ("id" TEXT PRIMARY KEY, "name" TEXT, "model" TEXT);
CREATE TABLE "responses" ("id" TEXT PRIMARY KEY, "model" TEXT, "prompt" TEXT, "system" TEXT, "prompt_json" TEXT,
  "options_json" TEXT, "response" TEXT, "response_json" TEXT, "conversation_id" TEXT REFERENCES "conversations"("id"),
  "duration_ms" INTEGER, "datetime_utc" TEXT, "input_tokens" INTEGER, "output_tokens" INTEGER, "token_details" TEXT,
  "schema_id" TEXT, "resolved_model" TEXT, "reasoning" TEXT);
CREATE TABLE "fragments" ("id" INTEGER PRIMARY KEY, "hash" TEXT, "content" TEXT, "datetime_utc" TEXT, "source" TEXT);
CREATE TABLE "prompt_fragments" ("response_id" TEXT, "fragment_id" INTEGER, "order" INTEGER,
  PRIMARY KEY ("response_id", "fragment_id", "order"));
CREATE TABLE "system_fragments" ("response_id" TEXT, "fragment_id" INTEGER, "order" INTEGER,
  PRIMARY KEY ("response_id", "fragment_id", "order"));
CREATE TABLE "tools" ("id" INTEGER PRIMARY KEY, "hash" TEXT, "name" TEXT, "description" TEXT, "input_schema" TEXT,
  "plugin" TEXT);
CREATE TABLE "tool_responses" ("tool_id" INTEGER, "response_id" TEXT, PRIMARY KEY ("tool_id", "response_id"));
CREATE TABLE "tool_calls" ("id" INTEGER PRIMARY KEY, "response_id" TEXT, "tool_id" INTEGER, "name" TEXT,
  "arguments" TEXT, "tool_call_id" TEXT);
CREATE TABLE "tool_results" ("id" INTEGER PRIMARY KEY, "response_id" TEXT, "tool_id" INTEGER, "name" TEXT,
  "output" TEXT, "tool_call_id" TEXT, "instance_id" INTEGER, "exception" TEXT);
CREATE TABLE "messages" ("hash" TEXT PRIMARY KEY, "parent_hash" TEXT REFERENCES "messages"("hash"), "role" TEXT,
  "provider_metadata" TEXT);
CREATE TABLE "parts" ("id" INTEGER PRIMARY KEY, "message_hash" TEXT REFERENCES "messages"("hash"), "position" INTEGER,
  "type" TEXT, "tool_name" TEXT, "text" TEXT, "payload" TEXT);
CREATE TABLE "part_fragments" ("part_id" INTEGER, "fragment_id" INTEGER, "order" INTEGER,
  PRIMARY KEY ("part_id", "fragment_id", "order"));
CREATE TABLE "threads" ("id" TEXT PRIMARY KEY, "name" TEXT, "tip_message_hash" TEXT, "forked_from" TEXT,
  "datetime_utc" TEXT);
CREATE TABLE "turns" ("id" TEXT PRIMARY KEY, "thread_id" TEXT REFERENCES "threads"("id"), "parent_message_hash" TEXT,
  "tip_message_hash" TEXT, "model" TEXT, "resolved_model" TEXT, "options_json" TEXT, "schema_id" TEXT,
  "input_tokens" INTEGER, "output_tokens" INTEGER, "token_details" TEXT, "duration_ms" INTEGER, "datetime_utc" TEXT,
  "response_json" TEXT);
CREATE TABLE "turn_tools" ("turn_id" TEXT, "tool_id" INTEGER, "instance_id" INTEGER, PRIMARY KEY ("turn_id", "tool_id"));
"""

SYS_SHOP = "You are a helpful assistant for an outdoor-gear shop."
STOCK_TOOL = (1, "b2:tool-stock", "stock_level", "Units in stock for a SKU.",
              json.dumps({"type": "object", "properties": {"sku": {"type": "string"}}, "required": ["sku"]}), None)


def _responses() -> list[tuple]:
    """Legacy rows: (id, model, prompt, system, prompt_json, options_json, response, response_json, conversation_id,
    duration_ms, datetime_utc, input_tokens, output_tokens, token_details, schema_id, resolved_model, reasoning)."""
    pj1 = {"messages": [{"role": "system", "content": SYS_SHOP}, {"role": "user", "content": "Three names for a 2-person tent"}]}
    pj2 = {"messages": pj1["messages"] + [
        {"role": "assistant", "content": "Ridgeline, Driftwood, Lumen."},
        {"role": "user", "content": "Which one sounds lightest?"}]}

    def oai(cid, finish="stop"):
        return json.dumps({"id": cid, "object": "chat.completion.chunk", "model": "gpt-4o-mini-2024-07-18",
                           "created": 1790841600, "finish_reason": finish, "usage": {"prompt_tokens": 25}})

    return [
        ("01k6a0c1r1tentnames000000a", "gpt-4o-mini", "Three names for a 2-person tent", SYS_SHOP, json.dumps(pj1),
         json.dumps({"temperature": 0.7}), "Ridgeline, Driftwood, Lumen.", oai("chatcmpl-Lg1"), "01k6a0c1c1convtent0000000a",
         910, "2026-10-01T08:00:00.120000+00:00", 25, 9, None, None, "gpt-4o-mini-2024-07-18", None),
        ("01k6a0c1r2tentnames000000b", "gpt-4o-mini", "Which one sounds lightest?", SYS_SHOP, json.dumps(pj2), None,
         "Lumen - it sounds airy.", oai("chatcmpl-Lg2"), "01k6a0c1c1convtent0000000a", 640,
         "2026-10-01T08:01:10.500000+00:00", 41, 7, json.dumps({"prompt_tokens_details": {"cached_tokens": 0}}), None,
         "gpt-4o-mini-2024-07-18", None),
        ("01k6b1d2r3merinocare00000a", "anthropic/claude-3-5-haiku-latest", "How do I wash it?", "Answer in two sentences.",
         None, json.dumps({"max_tokens": 200}), "Hand-wash cold with wool detergent. Dry flat, away from heat.",
         json.dumps({"id": "msg_01Llm3", "type": "message", "model": "claude-3-5-haiku-20241022",
                     "stop_reason": "end_turn", "usage": {"input_tokens": 60, "output_tokens": 16,
                                                          "cache_read_input_tokens": 0}}),
         "01k6b1d2c2convmerino00000a", 1200, "2026-10-02T19:30:00", 60, 16,
         json.dumps({"cache_read_input_tokens": 0}), None, "claude-3-5-haiku-20241022", None),
        ("01k6b1d2r4merinocare00000b", "anthropic/claude-3-5-haiku-latest", "Can it go in the dryer?", None, None, None,
         "No - tumble drying shrinks merino.", json.dumps({"id": "msg_01Llm4", "stop_reason": "end_turn"}),
         "01k6b1d2c2convmerino00000a", 700, "2026-10-02T19:31:30", 38, 9, None, None, "claude-3-5-haiku-20241022", None),
        ("01k6c2e3r5stockcheck00000a", "gpt-4o-mini", "Is SKU RL-2-GRN in stock?", None, None, None, "",
         json.dumps({"id": "chatcmpl-Lg5", "finish_reason": "tool_calls"}), "01k6c2e3c3convstock000000a", 820,
         "2026-10-04T11:00:00.000000+00:00", 55, 14, None, None, None, None),
        ("01k6c2e3r6stockcheck00000b", "gpt-4o-mini", None, None, None, None, "Yes - 14 units of RL-2-GRN are in stock.",
         json.dumps({"id": "chatcmpl-Lg6", "finish_reason": "stop"}), "01k6c2e3c3convstock000000a", 560,
         "2026-10-04T11:00:02.000000+00:00", 90, 13, None, None, None, None),
        ("01k6d3f4u1packinglist0000a", "gpt-4o-mini", "Packing list for a 2-day hike", None, None, None,
         "Tent, stove, layers, water filter.", None, None, 800, "2026-10-05T07:00:00+00:00", 20, 9, None, None, None,
         "copied into turns by an upgrade"),
    ]


def _messages() -> tuple[list[tuple], list[tuple]]:
    """(messages rows, parts rows) of the content-addressed store."""
    m = [
        ("b2:01", None, "system", None), ("b2:02", "b2:01", "user", None), ("b2:03", "b2:02", "assistant", None),
        ("b2:04", "b2:03", "user", None), ("b2:05", "b2:04", "assistant", None),
        ("b2:11", None, "user", None), ("b2:12", "b2:11", "assistant", None), ("b2:13", "b2:12", "user", None),
        ("b2:14", "b2:13", "assistant", None),
    ]
    p = [
        (1, "b2:01", 0, "text", None, "You plan hikes. Be brief.", None),
        (2, "b2:02", 0, "text", None, "Packing list for a 2-day hike", None),
        (3, "b2:03", 0, "reasoning", None, None, json.dumps({"text": "thinking about weight"})),
        (4, "b2:03", 1, "text", None, "Tent, stove, layers, water filter.", None),
        (5, "b2:04", 0, "text", None, None, json.dumps({"text_ref": [{"fragment": 2}, {"literal": "\nWhat about food?"}]})),
        (6, "b2:05", 0, "text", None, "Two dinners, trail mix, oats.", None),
        (7, "b2:11", 0, "text", None, "Check stock for RL-2-GRN.", None),
        (8, "b2:12", 0, "tool_call", "stock_level", None,
         json.dumps({"arguments": {"sku": "RL-2-GRN"}, "tool_call_id": "call_st1"})),
        (9, "b2:13", 0, "tool_result", "stock_level", "14", json.dumps({"tool_call_id": "call_st1"})),
        (10, "b2:14", 0, "text", None, "RL-2-GRN: 14 in stock.", None),
    ]
    return m, p


def build_sample_db(path: Path) -> None:
    """Write the sample logs.db: both schema generations, small pages, deterministic content."""
    path = Path(path)
    if path.exists():
        path.unlink()
    conn = sqlite3.connect(path)
    conn.execute("pragma page_size = 1024")
    conn.executescript(SCHEMA)
    conn.executemany('insert into conversations values (?, ?, ?)', [
        ("01k6a0c1c1convtent0000000a", "Three names for a 2-person tent", "gpt-4o-mini"),
        ("01k6b1d2c2convmerino00000a", "Merino care", "anthropic/claude-3-5-haiku-latest"),
        ("01k6c2e3c3convstock000000a", "Stock check", "gpt-4o-mini")])
    conn.executemany("insert into responses values (" + ", ".join("?" * 17) + ")", _responses())
    conn.executemany("insert into fragments values (?, ?, ?, ?, ?)", [
        (1, "sha256:merino", "Product: Merino crew base layer, 200 g/m2.", "2026-10-02T19:29:00", "catalog/merino.md"),
        (2, "sha256:route", "Route: Ridge Loop, 24 km, one night at Lake Camp.", "2026-10-05T07:00:30", "route.txt"),
        (3, "sha256:tone", "Use a friendly tone.", "2026-10-02T19:29:00", "tone.txt")])
    conn.execute('insert into prompt_fragments values (?, ?, ?)', ("01k6b1d2r3merinocare00000a", 1, 0))
    conn.execute('insert into system_fragments values (?, ?, ?)', ("01k6b1d2r3merinocare00000a", 3, 0))
    conn.execute("insert into tools values (?, ?, ?, ?, ?, ?)", STOCK_TOOL)
    conn.executemany("insert into tool_responses values (?, ?)", [(1, "01k6c2e3r5stockcheck00000a"),
                                                                  (1, "01k6c2e3r6stockcheck00000b")])
    conn.execute("insert into tool_calls values (?, ?, ?, ?, ?, ?)",
                 (1, "01k6c2e3r5stockcheck00000a", 1, "stock_level", json.dumps({"sku": "RL-2-GRN"}), "call_r5"))
    conn.execute("insert into tool_results values (?, ?, ?, ?, ?, ?, ?, ?)",
                 (1, "01k6c2e3r6stockcheck00000b", 1, "stock_level", "14", "call_r5", None, None))
    msgs, parts = _messages()
    conn.executemany("insert into messages values (?, ?, ?, ?)", msgs)
    conn.executemany("insert into parts values (?, ?, ?, ?, ?, ?, ?)", parts)
    conn.execute("insert into part_fragments values (?, ?, ?)", (5, 2, 0))
    conn.executemany("insert into threads values (?, ?, ?, ?, ?)", [
        ("01k6d3f4t1threadhike00000a", "Packing list for a 2-day hike", "b2:05", None, "2026-10-05T07:00:00+00:00"),
        ("01k6e4g5t2threadstock0000a", "Check stock for RL-2-GRN.", "b2:14", None, "2026-10-06T15:00:00+00:00")])
    turn = ("insert into turns values (" + ", ".join("?" * 14) + ")")
    conn.executemany(turn, [
        ("01k6d3f4u1packinglist0000a", "01k6d3f4t1threadhike00000a", "b2:02", "b2:03", "gpt-4o-mini",
         "gpt-4o-mini-2024-07-18", json.dumps({"temperature": 0.5}), None, 20, 9, None, 800, "2026-10-05T07:00:00+00:00",
         json.dumps({"id": "chatcmpl-Lt1", "finish_reason": "stop", "model": "gpt-4o-mini-2024-07-18"})),
        ("01k6d3f4u2packinglist0000b", "01k6d3f4t1threadhike00000a", "b2:04", "b2:05", "gpt-4o-mini",
         "gpt-4o-mini-2024-07-18", None, None, 48, 8, None, 650, "2026-10-05T07:02:00+00:00",
         json.dumps({"id": "chatcmpl-Lt2", "finish_reason": "stop", "usage": {"$": "usage.default"}})),
        ("01k6e4g5u3stockturn00000a", "01k6e4g5t2threadstock0000a", "b2:11", "b2:12", "claude-haiku-4.5",
         "claude-haiku-4-5-20251001", None, None, 70, 20, json.dumps({"cache_creation_input_tokens": 0}), 900,
         "2026-10-06T15:00:00+00:00", json.dumps({"id": "msg_01Lt3", "stop_reason": "tool_use"})),
        ("01k6e4g5u4stockturn00000b", "01k6e4g5t2threadstock0000a", "b2:13", "b2:14", "claude-haiku-4.5",
         "claude-haiku-4-5-20251001", None, None, 95, 10, None, 700, "2026-10-06T15:00:03+00:00",
         json.dumps({"id": "msg_01Lt4", "stop_reason": "end_turn"})),
    ])
    conn.executemany("insert into turn_tools values (?, ?, ?)", [("01k6e4g5u3stockturn00000a", 1, None),
                                                                  ("01k6e4g5u4stockturn00000b", 1, None)])
    conn.commit()
    conn.execute("vacuum")
    conn.close()


def dump(path: Path) -> dict[str, list]:
    conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    try:
        tables = [r[0] for r in conn.execute("select name from sqlite_master where type='table' order by name")]
        return {t: sorted(conn.execute(f'select * from "{t}"').fetchall(), key=repr) for t in tables}
    finally:
        conn.close()


def parse_db(path: Path) -> list:
    return list(get_format("simonw_llm").parse(Source(str(path), io.BytesIO(b""), IngestOptions(),
                                                      path.read_bytes()[:262144])))


@pytest.fixture(scope="module")
def sample_store(tmp_path_factory):
    from tracelens.store import Store

    store = Store(tmp_path_factory.mktemp("llm") / "s", create=True)
    return store, ingest(store, [str(SAMPLE)], enricher=False)


def test_committed_sample_matches_the_generator(tmp_path):
    fresh = tmp_path / "logs.db"
    build_sample_db(fresh)
    assert dump(SAMPLE) == dump(fresh)
    assert SAMPLE.stat().st_size < 40_000


def test_sample_reconciles_and_is_auto_detected(sample_store):
    _, summary = sample_store
    f = summary.files[0]
    assert (f.format, f.read, f.stored, f.skipped, f.quarantined) == ("simonw_llm", 11, 10, 1, 0) and f.reconciles
    assert sniff_format(SAMPLE.read_bytes()[:262144], str(SAMPLE)).name == "simonw_llm"


def test_legacy_prompt_json_and_identity(sample_store):
    store, _ = sample_store
    t = store.get("llm:01k6a0c1r2tentnames000000b")
    assert [(m["role"], m["text"]) for m in t["messages"]] == [
        ("user", "Three names for a 2-person tent"), ("assistant", "Ridgeline, Driftwood, Lumen."),
        ("user", "Which one sounds lightest?")]
    assert t["system_prompt"] == SYS_SHOP
    assert (t["model_requested"], t["model_returned"], t["model_family"], t["model_is_alias"], t["provider"]) == (
        "gpt-4o-mini", "gpt-4o-mini-2024-07-18", "gpt-4o-mini", True, "openai")
    assert (t["response_id"], t["stop_reason"], t["stop_reason_raw"]) == ("chatcmpl-Lg2", "end_turn", "stop")
    assert (t["input_tokens"], t["output_tokens"], t["cache_read_tokens"], t["latency_ms"]) == (41, 7, 0, 640.0)
    assert t["conversation_id"] == "01k6a0c1c1convtent0000000a"
    assert t["attributes"]["conversation_name"] == "Three names for a 2-person tent"
    assert t["attributes"]["messages_source"] == "prompt_json"
    assert json.loads(t["request_raw"])["messages"][-1]["content"] == "Which one sounds lightest?"
    assert t["request_is_exact"] is False
    first = store.get("llm:01k6a0c1r1tentnames000000a")
    assert first["temperature"] == 0.7 and first["timestamp"].isoformat() == "2026-10-01T08:00:00.120000+00:00"


def test_legacy_fragments_history_and_plugin_prefixed_models(sample_store):
    store, _ = sample_store
    t = store.get("llm:01k6b1d2r3merinocare00000a")
    assert t["prompt_text"] == "Product: Merino crew base layer, 200 g/m2.\nHow do I wash it?"  # fragments first
    assert t["system_prompt"] == "Use a friendly tone.\n\nAnswer in two sentences."
    assert (t["model_requested"], t["model_returned"]) == ("anthropic/claude-3-5-haiku-latest", "claude-3-5-haiku-20241022")
    assert (t["model_family"], t["model_snapshot"], t["model_is_alias"], t["provider"]) == (
        "claude-3-5-haiku", "2024-10-22", True, "anthropic")
    assert t["max_tokens"] == 200 and t["timestamp"].isoformat() == "2026-10-02T19:30:00+00:00"  # naive = UTC
    follow = store.get("llm:01k6b1d2r4merinocare00000b")
    assert follow["attributes"]["messages_source"] == "reconstructed"
    assert [(m["role"], m["text"][:20]) for m in follow["messages"]] == [
        ("user", "Product: Merino crew"), ("assistant", "Hand-wash cold with "), ("user", "Can it go in the dry")]


def test_legacy_tools(sample_store):
    store, _ = sample_store
    call = store.get("llm:01k6c2e3r5stockcheck00000a")
    assert call["tool_calls"] == [{"id": "call_r5", "name": "stock_level", "arguments": '{"sku": "RL-2-GRN"}'}]
    assert (call["stop_reason"], call["response_text"]) == ("tool_use", "")
    assert json.loads(call["tool_definitions"]) == [{"name": "stock_level", "description": "Units in stock for a SKU.",
                                                     "input_schema": json.loads(STOCK_TOOL[4])}]
    result = store.get("llm:01k6c2e3r6stockcheck00000b")
    assert [(m["role"], m["text"], m["tool_call_id"]) for m in result["messages"]][-2:] == [
        ("assistant", "", None), ("tool", "14", "call_r5")]
    assert result["messages"][-2]["tool_calls"][0]["id"] == "call_r5"
    assert result["prompt_text"] == "Is SKU RL-2-GRN in stock?"  # the tool-result turn has no new user text


def test_turns_split_the_chain_at_the_parent(sample_store):
    store, _ = sample_store
    t1 = store.get("llm:01k6d3f4u1packinglist0000a")
    assert t1["system_prompt"] == "You plan hikes. Be brief."
    assert [(m["role"], m["text"]) for m in t1["messages"]] == [("user", "Packing list for a 2-day hike")]
    assert t1["response_text"] == "Tent, stove, layers, water filter."  # reasoning part is not response text
    assert (t1["conversation_id"], t1["attributes"]["conversation_name"]) == ("01k6d3f4t1threadhike00000a",
                                                                              "Packing list for a 2-day hike")
    assert (t1["temperature"], t1["response_id"], t1["stop_reason"]) == (0.5, "chatcmpl-Lt1", "end_turn")
    t2 = store.get("llm:01k6d3f4u2packinglist0000b")
    assert [m["role"] for m in t2["messages"]] == ["user", "assistant", "user"]
    assert t2["prompt_text"] == "Route: Ridge Loop, 24 km, one night at Lake Camp.\nWhat about food?"  # text_ref
    assert t2["response_text"] == "Two dinners, trail mix, oats."
    assert t2["attributes"]["response_json_condensed"] == "true"


def test_turn_tool_parts(sample_store):
    store, _ = sample_store
    call = store.get("llm:01k6e4g5u3stockturn00000a")
    assert call["tool_calls"] == [{"id": "call_st1", "name": "stock_level", "arguments": '{"sku":"RL-2-GRN"}'}]
    assert (call["stop_reason"], call["model_family"], call["model_snapshot"]) == ("tool_use", "claude-haiku-4-5",
                                                                                     "2025-10-01")
    assert json.loads(call["tool_definitions"])[0]["name"] == "stock_level"
    done = store.get("llm:01k6e4g5u4stockturn00000b")
    assert [(m["role"], m["text"], m["tool_call_id"]) for m in done["messages"]][-1] == ("tool", "14", "call_st1")
    assert done["response_text"] == "RL-2-GRN: 14 in stock."


def test_legacy_row_also_in_turns_is_skipped():
    items = parse_db(SAMPLE)
    skipped = [i for i in items if isinstance(i, Skipped)]
    assert [(s.locator, s.reason) for s in skipped] == [
        ("responses:01k6d3f4u1packinglist0000a",
         "response 01k6d3f4u1packinglist0000a is also logged in the turns table (stored from turns:01k6d3f4u1packinglist0000a)")]


def test_reingest_is_idempotent(store):
    a = ingest(store, [str(SAMPLE)], enricher=False).files[0]
    b = ingest(store, [str(SAMPLE)], enricher=False).files[0]
    assert (a.stored, b.stored, b.duplicates) == (10, 0, 10)


def test_llm_anthropic_rows_model_from_response_json_and_no_stray_whitespace(tmp_path):
    # llm-anthropic leaves resolved_model NULL (the model is in response_json) and may log a whitespace-only
    # text part after the answer
    p = tmp_path / "logs.db"
    build_sample_db(p)
    conn = sqlite3.connect(p)
    rj = json.dumps({"id": "msg_01Lt4", "type": "message", "model": "claude-haiku-4-5-20251001", "stop_reason": "end_turn"})
    conn.execute("update turns set resolved_model = null, response_json = ? where id = '01k6e4g5u4stockturn00000b'", (rj,))
    conn.execute("insert into parts values (?, ?, ?, ?, ?, ?, ?)", (11, "b2:14", 1, "text", None, "\n ", None))
    legacy = json.dumps({"id": "msg_01Llm4", "model": "claude-3-5-haiku-20241022", "stop_reason": "end_turn"})
    conn.execute("update responses set resolved_model = null, response_json = ? where id = '01k6b1d2r4merinocare00000b'",
                 (legacy,))
    conn.commit()
    conn.close()
    recs = {r["trace_id"]: r for r in parse_db(p) if isinstance(r, dict)}
    turn = recs["llm:01k6e4g5u4stockturn00000b"]
    assert (turn["model_requested"], turn["model_returned"]) == ("claude-haiku-4.5", "claude-haiku-4-5-20251001")
    assert turn["response_text"] == "RL-2-GRN: 14 in stock."
    old = recs["llm:01k6b1d2r4merinocare00000b"]
    assert old["model_returned"] == "claude-3-5-haiku-20241022" and old["model_snapshot"] == "2024-10-22"


def test_broken_rows_are_quarantined(tmp_path):
    p = tmp_path / "logs.db"
    build_sample_db(p)
    conn = sqlite3.connect(p)
    conn.execute("update responses set datetime_utc = null where id = '01k6a0c1r1tentnames000000a'")
    conn.execute("update turns set tip_message_hash = 'b2:missing' where id = '01k6e4g5u4stockturn00000b'")
    conn.execute("update turns set parent_message_hash = 'b2:13' where id = '01k6e4g5u3stockturn00000a'")
    conn.commit()
    conn.close()
    q = {i.locator: i.reason for i in parse_db(p) if isinstance(i, Quarantined)}
    assert q == {
        "responses:01k6a0c1r1tentnames000000a": "row has no datetime_utc",
        "turns:01k6e4g5u4stockturn00000b": "tip message b2:missing is not in the messages table",
        "turns:01k6e4g5u3stockturn00000a": "parent_message_hash b2:13 is not on the chain to the tip b2:12",
    }


def test_only_one_schema_generation(tmp_path):
    legacy = tmp_path / "legacy.db"
    conn = sqlite3.connect(legacy)
    conn.executescript(SCHEMA.split('CREATE TABLE "fragments"')[0])  # conversations + responses only, as llm 0.1x wrote
    conn.executemany("insert into responses values (" + ", ".join("?" * 17) + ")", _responses()[:2])
    conn.commit()
    conn.close()
    items = parse_db(legacy)
    assert [i["trace_id"] for i in items] == ["llm:01k6a0c1r1tentnames000000a", "llm:01k6a0c1r2tentnames000000b"]
    assert "conversation_name" not in items[0]["attributes"]  # no conversations rows


def test_unusable_inputs_are_file_errors(store, tmp_path):
    fmt = get_format("simonw_llm")
    with pytest.raises(FormatError, match="cannot be read from stdin"):
        list(fmt.parse(Source("-", io.BytesIO(b""), IngestOptions(), b"SQLite format 3\x00")))
    gz = tmp_path / "logs.db.gz"
    gz.write_bytes(gzip.compress(SAMPLE.read_bytes()))
    f = ingest(store, [str(gz)], enricher=False).files[0]  # sniffed through the decompressed head
    assert f.format == "simonw_llm" and "decompress it first" in f.error
    other = tmp_path / "other.db"
    conn = sqlite3.connect(other)
    conn.execute("create table notes (id integer primary key, body text)")
    conn.commit()
    conn.close()
    assert FORMATS["simonw_llm"].sniff(other.read_bytes()[:262144], str(other)) == 0.0
    f = ingest(store, [str(other)], force_format="simonw_llm", enricher=False).files[0]
    assert "without llm's 'responses' or 'turns' table" in f.error


def test_sniffer_claims_only_llm_databases():
    fmt = FORMATS["simonw_llm"]
    for p in sorted((REPO / "sample_logs").glob("*.*")):
        score = fmt.sniff(p.read_bytes()[:262144], str(p))
        assert score == (0.95 if p.name == SAMPLE.name else 0.0), p.name


if __name__ == "__main__":  # python -m tests.test_formats_simonw_llm sample_logs/llm_logs.db
    build_sample_db(Path(sys.argv[1] if len(sys.argv) > 1 else SAMPLE))
