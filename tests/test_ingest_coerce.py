"""tracelens.ingest.coerce: any JSON value an importer read ends up as a value of its schema field's Arrow type."""

from __future__ import annotations

import datetime as dt
import decimal

import pyarrow as pa

from tracelens.ingest.coerce import FIELD_TYPES, attr_text, coerce_fields, json_text, safe_text
from tracelens.schema import FIELDS, TRACE_SCHEMA


def test_coerce_fields_makes_any_json_writable():
    rec = coerce_fields({
        "prompt_text": {"a": 1}, "input_tokens": 2**70, "latency_ms": "12.5", "model_is_alias": "yes",
        "messages": [{"role": 5, "text": ["x"], "tool_calls": [{"id": 1, "arguments": {"a": 1}}, "junk"]}, "junk"],
        "stop_sequences": "END", "attributes": {"k": 1, "n": None}, "response_text": "bad \ud800 surrogate",
    })
    assert rec["prompt_text"] == '{"a":1}' and rec["input_tokens"] is None and rec["latency_ms"] == 12.5
    assert rec["model_is_alias"] is None and rec["stop_sequences"] == ["END"] and rec["attributes"] == {"k": "1"}
    assert rec["messages"] == [{"role": "5", "text": '["x"]', "tool_calls": [{"id": "1", "name": None, "arguments": '{"a":1}'}],
                                "tool_call_id": None, "name": None}]
    assert rec["response_text"] == "bad \ufffd surrogate"
    pa.Table.from_pylist([{k: rec.get(k) for k in ("prompt_text", "messages", "response_text")}],
                         schema=pa.schema([TRACE_SCHEMA.field(k) for k in ("prompt_text", "messages", "response_text")]))



def test_coerce_fields_leaves_non_schema_keys_and_the_timestamp_alone():
    raw = object()
    rec = coerce_fields({"_raw": raw, "note": 3, "timestamp": 1700000000, "top_k": True, "seed": "7",
                         "tool_calls": None, "provider": None})
    assert rec["note"] == 3 and rec["_raw"] is raw and rec["timestamp"] == 1700000000
    assert rec["top_k"] is None  # a bool is not a count
    assert rec["seed"] == 7 and rec["tool_calls"] is None and rec["provider"] is None


def test_field_types_cover_the_schema():
    assert set(FIELD_TYPES) == {f.name for f in FIELDS}


def test_one_value_helpers():
    assert safe_text(None) is None and safe_text("plain") == "plain" and safe_text({"a": [1]}) == '{"a":[1]}'
    assert safe_text("\ud83d\ude00 and \ud800") == "\U0001f600 and \ufffd"  # a pair joins, a lone half is replaced
    assert attr_text(True) == "true" and attr_text(3) == "3" and attr_text("x") == "x"
    assert attr_text({"b": dt.date(2026, 10, 1)}) == '{"b":"2026-10-01"}'
    assert attr_text(dt.datetime(2026, 10, 1, 8, 0, tzinfo=dt.UTC)) == "2026-10-01T08:00:00+00:00"
    assert attr_text(b"bytes\xff") == "bytes\ufffd"
    assert json_text([decimal.Decimal("1.50"), b"x", "é"]) == '["1.50","x","é"]'
