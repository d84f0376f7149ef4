"""Langfuse importers: trace download JSON (langfuse_trace) and blob-storage export (langfuse_blob)."""

from __future__ import annotations

import csv
import datetime as dt
import gzip
import io
import json
from pathlib import Path

import pytest

from tests.conftest import REPO, shared_path
from tracelens.ingest.base import IngestOptions, Quarantined, Skipped, Source
from tracelens.ingest.pipeline import ingest
from tracelens.ingest.registry import get_format, sniff_format


def parse(fmt_name: str, data: str | bytes) -> list:
    raw = data.encode() if isinstance(data, str) else data
    fmt = get_format(fmt_name)
    return list(fmt.parse(Source("mem", io.BytesIO(raw), IngestOptions(), raw[:262144])))


def obs(oid: str, typ: str = "GENERATION", **kw) -> dict:
    o = {"id": oid, "traceId": "tr-1", "type": typ, "name": f"{typ.lower()}-{oid}",
         "startTime": "2026-10-02T08:00:00.000Z", "endTime": "2026-10-02T08:00:01.200Z", "level": "DEFAULT",
         "statusMessage": None, "input": None, "output": None, "model": None, "modelParameters": None,
         "completionStartTime": None, "usageDetails": {}, "costDetails": {}, "totalCost": 0, "metadata": "{}"}
    o.update(kw)
    return o


TRACE = {"id": "tr-1", "name": "support-bot", "userId": "u-1", "sessionId": "s-1", "tags": ["prod", "eu"],
         "release": "r42", "environment": "production", "metadata": "{}"}

OPENAI_GEN = obs(
    "gen-openai",
    model="gpt-4o-mini",
    modelParameters={"temperature": "0.2", "max_tokens": "256", "top_p": 1, "seed": "", "stop_sequences": '["END"]'},
    input=[{"role": "system", "content": "Be brief."},
           {"role": "user", "content": [{"type": "text", "text": "Order status FW-1?"}]},
           {"role": "assistant", "content": None, "tool_calls": [
               {"id": "call_a", "type": "function", "function": {"name": "lookup", "arguments": '{"o":"FW-1"}'}}]},
           {"role": "tool", "tool_call_id": "call_a", "content": "shipped"}],
    output={"role": "assistant", "content": "It shipped."},
    completionStartTime="2026-10-02T08:00:00.300Z",
    usageDetails={"input": 40, "output": 5, "input_cached_tokens": 16, "total": 45},
    costDetails={"input": 0.00001, "output": 0.00002, "total": 0.00003},
    metadata=json.dumps({"thread_id": "th-1", "feature": "orders", "resourceAttributes": {"service.name": "bot-api"}}),
)

ANTHROPIC_REQ = {"model": "claude-sonnet-4-5", "max_tokens": 400, "temperature": 0.5, "top_k": 20,
                 "system": [{"type": "text", "text": "You are Fernbot."}],
                 "messages": [{"role": "user", "content": [{"type": "text", "text": "Is it raining?"}]},
                              {"role": "assistant", "content": [{"type": "tool_use", "id": "tu_1", "name": "wx",
                                                                 "input": {"city": "Oslo"}}]},
                              {"role": "user", "content": [{"type": "tool_result", "tool_use_id": "tu_1",
                                                            "content": [{"type": "text", "text": "rain"}]}]}],
                 "tools": [{"name": "wx", "input_schema": {"type": "object"}}]}
ANTHROPIC_RESP = {"id": "msg_01X", "type": "message", "role": "assistant", "model": "claude-sonnet-4-5-20250929",
                  "content": [{"type": "text", "text": "Yes, it is raining in Oslo."}], "stop_reason": "end_turn",
                  "usage": {"input_tokens": 60, "output_tokens": 9, "cache_read_input_tokens": 500}}
ANTHROPIC_GEN = obs("gen-anthropic", model="claude-sonnet-4-5", input=json.dumps(ANTHROPIC_REQ),
                    output=json.dumps(ANTHROPIC_RESP), modelParameters={"max_tokens": 400},
                    usageDetails={"input": 60, "output": 9, "cache_read_input_tokens": 500,
                                  "cache_creation_input_tokens": 0, "total": 569},
                    costDetails={"total": 0.0012})


def download(*observations: dict, trace: dict | None = None) -> str:
    return json.dumps({"trace": trace or TRACE, "observations": list(observations)}, indent=2)


def test_openai_shaped_generation_maps_every_field():
    (rec,) = parse("langfuse_trace", download(OPENAI_GEN))
    expected = {
        "trace_id": "langfuse:gen-openai",
        "source_locator": "document/observation:gen-openai",
        "model_requested": "gpt-4o-mini",
        "system_prompt": "Be brief.",
        "messages": [
            {"role": "user", "text": "Order status FW-1?", "tool_calls": [], "tool_call_id": None, "name": None},
            {"role": "assistant", "text": None, "tool_calls": [{"id": "call_a", "name": "lookup",
                                                               "arguments": '{"o":"FW-1"}'}],
             "tool_call_id": None, "name": None},
            {"role": "tool", "text": "shipped", "tool_calls": [], "tool_call_id": "call_a", "name": None},
        ],
        "response_text": "It shipped.",
        "tool_calls": [],
        "temperature": 0.2,
        "top_p": 1.0,
        "max_tokens": 256,
        "seed": None,
        "stop_sequences": ["END"],
        "input_tokens": 40,
        "output_tokens": 5,
        "cache_read_tokens": 16,
        "cost": 0.00003,
        "latency_ms": 1200.0,
        "time_to_first_token_ms": 300.0,
        "timestamp": dt.datetime(2026, 10, 2, 8, 0, tzinfo=dt.UTC),
        "user_id": "u-1",
        "session_id": "s-1",
        "conversation_id": "th-1",
        "app": "support-bot",
        "service": "bot-api",
        "status": "ok",
        "request_raw": None,  # a message list is not a complete request body
        "request_is_exact": False,
    }
    assert {k: rec.get(k) for k in expected} == expected
    assert rec["attributes"] == {
        "langfuse.trace_id": "tr-1", "langfuse.observation_name": "generation-gen-openai",
        "langfuse.environment": "production", "langfuse.release": "r42", "tags": '["prod","eu"]',
        "metadata.feature": "orders",
    }


def test_anthropic_shaped_generation_keeps_request_and_response_bodies():
    (rec,) = parse("langfuse_trace", download(ANTHROPIC_GEN))
    assert rec["system_prompt"] == "You are Fernbot."
    assert [(m["role"], m["text"]) for m in rec["messages"]] == [("user", "Is it raining?"), ("assistant", None),
                                                                 ("tool", "rain")]
    assert rec["messages"][1]["tool_calls"] == [{"id": "tu_1", "name": "wx", "arguments": '{"city":"Oslo"}'}]
    assert (rec["model_requested"], rec["model_returned"], rec["response_id"]) == (
        "claude-sonnet-4-5", "claude-sonnet-4-5-20250929", "msg_01X")
    assert (rec["response_text"], rec["stop_reason"], rec["temperature"], rec["top_k"], rec["max_tokens"]) == (
        "Yes, it is raining in Oslo.", "end_turn", 0.5, 20, 400)
    assert (rec["input_tokens"], rec["cache_read_tokens"], rec["cache_creation_tokens"]) == (60, 500, 0)
    assert json.loads(rec["tool_definitions"]) == ANTHROPIC_REQ["tools"]
    assert rec["request_raw"] == ANTHROPIC_GEN["input"] and rec["request_is_exact"] is False
    assert rec["response_raw"] == ANTHROPIC_GEN["output"]


def test_non_generation_observations_are_skipped_and_counted(store, tmp_path):
    doc = download(obs("root", "SPAN"), OPENAI_GEN, obs("t1", "TOOL"), obs("e1", "EVENT", endTime=None),
                   obs("a1", "AGENT"), ANTHROPIC_GEN)
    items = parse("langfuse_trace", doc)
    assert [type(i).__name__ for i in items] == ["Skipped", "dict", "Skipped", "Skipped", "Skipped", "dict"]
    assert "Langfuse TOOL observation" in items[2].reason
    p = tmp_path / "t.trace.json"
    p.write_text(doc)
    f = ingest(store, [str(p)], enricher=False).files[0]
    assert (f.format, f.read, f.stored, f.skipped, f.quarantined) == ("langfuse_trace", 6, 2, 4, 0) and f.reconciles
    f2 = ingest(store, [str(p)], enricher=False).files[0]
    assert (f2.stored, f2.duplicates) == (0, 2)


def test_error_level_generation():
    gen = obs("gen-err", model="gpt-4o", input="Do you ship to Norway?", level="ERROR",
              statusMessage="Request timed out", endTime="2026-10-02T08:00:30.000Z")
    (rec,) = parse("langfuse_trace", download(gen))
    assert (rec["status"], rec["error_message"], rec["stop_reason"], rec["latency_ms"]) == (
        "error", "Request timed out", "error", 30000.0)
    assert rec["messages"][0]["text"] == "Do you ship to Norway?" and rec.get("response_text") is None
    assert rec["attributes"]["langfuse.level"] == "ERROR"


def test_metadata_span_attributes_fill_what_the_observation_lacks():
    attrs = {"gen_ai.system": "openai", "gen_ai.request.model": "gpt-4o", "gen_ai.response.model": "gpt-4o-2024-08-06",
             "gen_ai.prompt.0.role": "user", "gen_ai.prompt.0.content": "from span attributes",
             "gen_ai.completion.0.role": "assistant", "gen_ai.completion.0.content": "answer from attributes",
             "gen_ai.response.finish_reasons": '["stop"]', "gen_ai.usage.input_tokens": "12",
             "session.id": "s-attr"}
    gen = obs("gen-meta", model=None, metadata=json.dumps({"attributes": attrs,
                                                           "resourceAttributes": {"service.name": "unknown_service"}}))
    (rec,) = parse("langfuse_trace", download(gen, trace={"id": "tr-2", "name": "n"}))
    assert (rec["model_requested"], rec["model_returned"], rec["provider"]) == ("gpt-4o", "gpt-4o-2024-08-06", "openai")
    assert (rec["messages"][0]["text"], rec["response_text"], rec["stop_reason"]) == (
        "from span attributes", "answer from attributes", "end_turn")
    assert (rec["input_tokens"], rec["session_id"], rec["service"]) == (12, "s-attr", None)


def test_trace_with_full_details_array_and_observation_ids():
    full = {**TRACE, "observations": [OPENAI_GEN]}
    ids_only = {**TRACE, "id": "tr-9", "observations": ["obs-a"]}
    items = parse("langfuse_trace", json.dumps([full, ids_only]))
    assert isinstance(items[0], dict) and items[0]["source_locator"] == "index:0/observation:gen-openai"
    assert isinstance(items[1], Quarantined) and "full details" in items[1].reason
    page = parse("langfuse_trace", json.dumps({"data": [OPENAI_GEN, obs("s", "SPAN")], "meta": {"page": 1}}))
    assert [type(i).__name__ for i in page] == ["dict", "Skipped"]
    assert page[0]["user_id"] is None  # an observations page carries no trace-level fields


def test_bad_observations_are_quarantined():
    items = parse("langfuse_trace", download(obs("no-start", startTime=None), obs("bad-time", startTime="soon"),
                                             OPENAI_GEN))
    assert [type(i).__name__ for i in items] == ["Quarantined", "Quarantined", "dict"]
    assert "no startTime" in items[0].reason and "startTime" in items[1].reason


# ---------------------------------------------------------------- blob-storage export

BLOB_COLS = ["id", "trace_id", "project_id", "environment", "type", "parent_observation_id", "start_time", "end_time",
             "name", "metadata", "level", "status_message", "version", "input", "output", "provided_model_name",
             "model_parameters", "usage_details", "cost_details", "completion_start_time", "prompt_name",
             "prompt_version", "total_cost", "latency", "time_to_first_token"]


def blob_row(oid: str, typ: str = "GENERATION", **kw) -> dict:
    r = {c: None for c in BLOB_COLS}
    r.update(id=oid, trace_id="bt-1", project_id="p", environment="production", type=typ, name="faq",
             start_time="2026-10-05 09:00:00.000000", end_time="2026-10-05 09:00:02.000000", level="DEFAULT",
             metadata="{}", usage_details="{}", cost_details="{}", total_cost=0, latency=2.0)
    r.update(kw)
    return r


BLOB_ROWS = [
    blob_row("b-span", "SPAN"),
    blob_row("b-gen", provided_model_name="claude-haiku-4-5", completion_start_time="2026-10-05 09:00:00.400000",
             input=json.dumps({"system": "FAQ bot.", "messages": [{"role": "user", "content": "Line one.\n\nLine three."}]}),
             output=json.dumps({"role": "assistant", "content": [{"type": "text", "text": "Answer."}],
                                "stop_reason": "end_turn"}),
             model_parameters=json.dumps({"temperature": 0.1, "max_tokens": -1}),
             usage_details=json.dumps({"input": 30, "output": 4, "total": 34}), cost_details=json.dumps({"total": 1e-05}),
             total_cost=1e-05, metadata=json.dumps({"faq_id": "faq-1"})),
    blob_row("b-err", provided_model_name="gpt-4o-mini", input=json.dumps("Ship to Norway?"), level="ERROR",
             status_message="timeout"),
]


def _csv(rows: list[dict]) -> str:
    buf = io.StringIO()
    w = csv.DictWriter(buf, fieldnames=BLOB_COLS, lineterminator="\n")
    w.writeheader()
    for r in rows:
        w.writerow({k: "" if v is None else v for k, v in r.items()})
    return buf.getvalue()


def _jsonl(rows: list[dict]) -> str:
    return "\n".join(json.dumps(r) for r in rows) + "\n"


def test_blob_jsonl_fields():
    items = parse("langfuse_blob", _jsonl(BLOB_ROWS))
    assert isinstance(items[0], Skipped)
    gen, err = items[1], items[2]
    expected = {
        "trace_id": "langfuse:b-gen",
        "source_locator": "line:2/observation:b-gen",
        "model_requested": "claude-haiku-4-5",
        "system_prompt": "FAQ bot.",
        "response_text": "Answer.",
        "stop_reason": "end_turn",
        "temperature": 0.1,
        "max_tokens": None,  # -1 means "not set"
        "input_tokens": 30,
        "output_tokens": 4,
        "cost": 1e-05,
        "latency_ms": 2000.0,
        "time_to_first_token_ms": 400.0,
        "timestamp": dt.datetime(2026, 10, 5, 9, 0, tzinfo=dt.UTC),  # naive blob timestamps are UTC by definition
        "status": "ok",
    }
    assert {k: gen.get(k) for k in expected} == expected
    assert gen["messages"][0]["text"] == "Line one.\n\nLine three."
    assert gen["attributes"]["metadata.faq_id"] == "faq-1"
    assert (err["status"], err["error_message"], err["messages"][0]["text"]) == ("error", "timeout", "Ship to Norway?")


def test_blob_csv_and_jsonl_give_identical_traces(store, tmp_path):
    j = tmp_path / "export.jsonl"
    c = tmp_path / "export.csv"
    j.write_text(_jsonl(BLOB_ROWS))
    c.write_text(_csv(BLOB_ROWS))
    assert sniff_format(c.read_bytes(), str(c)).name == "langfuse_blob"
    assert sniff_format(j.read_bytes(), str(j)).name == "langfuse_blob"
    s = ingest(store, [str(j), str(c)], enricher=False)
    got = [(f.format, f.read, f.stored, f.duplicates, f.skipped, f.quarantined) for f in s.files]
    assert got == [("langfuse_blob", 3, 2, 0, 1, 0), ("langfuse_blob", 3, 0, 2, 1, 0)]
    assert store.get("langfuse:b-gen")["messages"][0]["text"] == "Line one.\n\nLine three."  # blank line kept


def test_blob_csv_bad_rows_are_quarantined_and_others_kept():
    text = _csv(BLOB_ROWS)
    lines = text.split("\n")
    lines.insert(2, "short,row")
    data = "\n".join(lines).encode()
    data = data.replace(b"Ship to Norway?", b"Ship to Norw\xff?")  # invalid UTF-8 inside one record
    items = parse("langfuse_blob", data)
    assert [type(i).__name__ for i in items] == ["Skipped", "Quarantined", "dict", "Quarantined"]
    assert "has 2 fields, the header has" in items[1].reason
    assert "invalid UTF-8" in items[3].reason and items[3].locator == "row:4"


def test_blob_csv_encodings_and_truncated_gzip(store, tmp_path):
    text = _csv(BLOB_ROWS)
    (tmp_path / "u16.csv").write_bytes(text.encode("utf-16"))
    (tmp_path / "bom.csv").write_bytes(b"\xef\xbb\xbf" + text.encode())
    filler = "x" * 2000
    rows = [blob_row(f"g{i}", provided_model_name="gpt-4o-mini", input=json.dumps(f"q{i} {filler}")) for i in range(200)]
    data = gzip.compress(_csv(rows).encode())
    (tmp_path / "cut.csv.gz").write_bytes(data[: len(data) * 3 // 4])
    s = ingest(store, [str(tmp_path / n) for n in ("u16.csv", "bom.csv", "cut.csv.gz")], enricher=False)
    u16, bom, cut = s.files
    assert (u16.format, u16.stored, u16.skipped, u16.quarantined) == ("langfuse_blob", 2, 1, 0)
    assert (bom.format, bom.duplicates, bom.skipped) == ("langfuse_blob", 2, 1)
    assert cut.format == "langfuse_blob" and cut.reconciles and 0 < cut.stored < 200
    q = store.scan("quarantine").collect()["reason"].to_list()
    assert any("input ends unexpectedly" in r for r in q)


def test_blob_csv_without_observation_columns_is_a_file_error(store, tmp_path):
    p = tmp_path / "x.csv"
    p.write_text("id,trace_id,type\n1,2,GENERATION\n")
    f = ingest(store, [str(p)], force_format="langfuse_blob", enricher=False).files[0]
    assert f.error and "start_time" in f.error and f.read == 0


def test_sample_files_ingest_cleanly(store):
    names = ["langfuse_trace.json", "langfuse_blob_export.jsonl", "langfuse_blob_export.csv"]
    s = ingest(store, [str(REPO / "sample_logs" / n) for n in names], enricher=False)
    got = [(f.format, f.read, f.stored, f.duplicates, f.skipped, f.quarantined) for f in s.files]
    assert got == [("langfuse_trace", 6, 3, 0, 3, 0), ("langfuse_blob", 11, 6, 0, 5, 0),
                   ("langfuse_blob", 11, 0, 6, 5, 0)]


# ---------------------------------------------------------------- optional: the 20 real trace downloads


@pytest.mark.shared
def test_real_langfuse_trace_downloads(store):
    base = shared_path("formats", "langfuse", "trace_downloads")
    files = sorted(base.glob("*.trace.json"))
    assert len(files) == 20
    s = ingest(store, [str(p) for p in files], enricher=False)
    assert s.total("quarantined") == 0 and all(f.reconciles and f.error is None for f in s.files)
    assert all(f.format == "langfuse_trace" for f in s.files)
    df = store.scan().collect()
    for f in s.files:
        raw = json.loads(Path(f.path).read_text())
        n_gen = sum(1 for o in raw["observations"] if o.get("type") == "GENERATION")
        assert f.stored + f.duplicates == n_gen and f.skipped == len(raw["observations"]) - n_gen
        rows = df.filter(df["source_file"] == f.path)
        good = rows.filter(rows["model_family"].is_not_null()
                           & (rows["prompt_text"].is_not_null() | rows["response_text"].is_not_null()
                              | (rows["tool_calls"].list.len() > 0)))
        assert f.stored == 0 or good.height >= 1, f.path
