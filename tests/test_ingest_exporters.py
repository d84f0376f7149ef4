"""The same spans from two exporters are duplicates, not conflicts.

The OTLP JSON file exporter writes nanosecond times and the instrumentation
scope; the OpenTelemetry SDK console exporter (``ReadableSpan.to_json``,
indent 4, one object after another) writes ISO times rounded to the
microsecond through a float, ``0x`` ids, ``SpanKind.CLIENT`` and no scope.
What the call was (request, response, model, usage, times to the
millisecond) is the same, so the second file's spans must count as
duplicates; a span whose response differs is still a conflict.
"""

from __future__ import annotations

import datetime as dt
import json

from tracelens.ingest.pipeline import ingest

TRACE = "5b8efff798038103d269b633813fc60c"
SCOPE = "opentelemetry.instrumentation.anthropic"
BASE_NS = 1790845200_000_000_000


def spans(n: int = 8) -> list[dict]:
    """n chat spans with sub-microsecond start/end times (as a real clock gives them)."""
    out = []
    for i in range(n):
        start = BASE_NS + i * 2_000_000_000 + 123_456_789 + i * 111
        out.append({
            "span_id": f"{0xEEE19B7EC3C1B170 + i:016x}",
            "name": "chat claude-sonnet-4-5",
            "start_ns": start,
            "end_ns": start + 1_234_567_891 + i * 7,
            "attributes": {
                "gen_ai.operation.name": "chat", "gen_ai.provider.name": "anthropic",
                "gen_ai.request.model": "claude-sonnet-4-5", "gen_ai.response.model": "claude-sonnet-4-5-20250929",
                "gen_ai.response.id": f"msg_01Exp{i:04d}", "gen_ai.request.max_tokens": 512,
                "gen_ai.request.temperature": 0.2,
                "gen_ai.input.messages": json.dumps([{"role": "user", "parts": [{"type": "text",
                                                                                 "content": f"Question {i}?"}]}]),
                "gen_ai.output.messages": json.dumps([{"role": "assistant", "parts": [{"type": "text",
                                                                                       "content": f"Answer {i}."}],
                                                       "finish_reason": "end_turn"}]),
                "gen_ai.response.finish_reasons": ["end_turn"],
                "gen_ai.usage.input_tokens": 40 + i, "gen_ai.usage.output_tokens": 9,
            },
        })
    return out


def _anyvalue(v) -> dict:
    if isinstance(v, bool):
        return {"boolValue": v}
    if isinstance(v, int):
        return {"intValue": str(v)}
    if isinstance(v, float):
        return {"doubleValue": v}
    if isinstance(v, list):
        return {"arrayValue": {"values": [_anyvalue(x) for x in v]}}
    return {"stringValue": v}


def otlp_json(items: list[dict]) -> str:
    """The Collector file exporter: one ExportTraceServiceRequest per line."""
    otlp = [{"traceId": TRACE, "spanId": s["span_id"], "parentSpanId": "", "name": s["name"], "kind": 3,
             "startTimeUnixNano": str(s["start_ns"]), "endTimeUnixNano": str(s["end_ns"]),
             "attributes": [{"key": k, "value": _anyvalue(v)} for k, v in s["attributes"].items()],
             "status": {}} for s in items]
    req = {"resourceSpans": [{"resource": {"attributes": [{"key": "service.name",
                                                           "value": {"stringValue": "shop-bot"}}]},
                              "scopeSpans": [{"scope": {"name": SCOPE, "version": "0.51b0"}, "spans": otlp}]}]}
    return json.dumps(req) + "\n"


def _iso(ns: int) -> str:
    # opentelemetry.sdk.util.ns_to_iso_str: through a float, so rounded (not truncated) to the microsecond
    ts = dt.datetime.fromtimestamp(ns / 1e9, tz=dt.UTC)
    return ts.strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def console(items: list[dict]) -> str:
    """ConsoleSpanExporter: ``span.to_json()`` (indent 4) plus a newline, per span."""
    out = []
    for s in items:
        out.append(json.dumps({
            "name": s["name"],
            "context": {"trace_id": f"0x{TRACE}", "span_id": f"0x{s['span_id']}", "trace_state": "[]"},
            "kind": "SpanKind.CLIENT",
            "parent_id": None,
            "start_time": _iso(s["start_ns"]),
            "end_time": _iso(s["end_ns"]),
            "status": {"status_code": "UNSET"},
            "attributes": s["attributes"],
            "events": [],
            "links": [],
            "resource": {"attributes": {"telemetry.sdk.language": "python", "telemetry.sdk.name": "opentelemetry",
                                        "telemetry.sdk.version": "1.38.0", "service.name": "shop-bot"},
                         "schema_url": ""},
        }, indent=4) + "\n")
    return "".join(out)


def _write(tmp_path, name: str, text: str) -> str:
    p = tmp_path / name
    p.write_text(text)
    return str(p)


def test_renderings_differ_only_in_spelling():
    # the premise: the console form loses sub-microsecond digits and rounds, so times differ by a microsecond
    (s,) = spans(1)
    assert _iso(s["start_ns"]).endswith(".123457Z")  # 123_456_789 ns rounds up; OTLP's reader truncates to ...456


def test_same_spans_from_two_exporters_are_duplicates(store, tmp_path):
    items = spans()
    first = ingest(store, [_write(tmp_path, "spans.otlp.jsonl", otlp_json(items))], enricher=False)
    assert (first.total("stored"), first.total("quarantined")) == (8, 0)
    second = ingest(store, [_write(tmp_path, "spans.console.json", console(items))], enricher=False)
    (f,) = second.files
    assert f.format == "openinference"  # the console form is read by the span importer that knows it
    assert (f.stored, f.duplicates, f.quarantined) == (0, 8, 0)
    assert store.scan("quarantine").collect().height == 0


def test_console_first_then_otlp_is_also_duplicates(store, tmp_path):
    items = spans(3)
    ingest(store, [_write(tmp_path, "a.console.json", console(items))], enricher=False)
    second = ingest(store, [_write(tmp_path, "b.otlp.jsonl", otlp_json(items))], enricher=False)
    assert (second.total("stored"), second.total("duplicates"), second.total("quarantined")) == (0, 3, 0)


def test_a_different_response_is_still_a_conflict(store, tmp_path):
    items = spans(3)
    ingest(store, [_write(tmp_path, "spans.otlp.jsonl", otlp_json(items))], enricher=False)
    changed = json.loads(json.dumps(items))
    changed[1]["attributes"]["gen_ai.output.messages"] = json.dumps(
        [{"role": "assistant", "parts": [{"type": "text", "content": "A different answer."}], "finish_reason": "end_turn"}])
    changed[2]["attributes"]["gen_ai.usage.output_tokens"] = 10
    second = ingest(store, [_write(tmp_path, "spans.console.json", console(changed))], enricher=False)
    (f,) = second.files
    assert (f.stored, f.duplicates, f.quarantined) == (0, 1, 2)
    reasons = store.scan("quarantine").collect()["reason"].to_list()
    assert all("different content" in r for r in reasons) and len(reasons) == 2


def test_times_that_differ_by_a_millisecond_are_a_conflict(store, tmp_path):
    items = spans(1)
    ingest(store, [_write(tmp_path, "a.otlp.jsonl", otlp_json(items))], enricher=False)
    later = [{**items[0], "start_ns": items[0]["start_ns"] + 5_000_000, "end_ns": items[0]["end_ns"] + 5_000_000}]
    second = ingest(store, [_write(tmp_path, "b.otlp.jsonl", otlp_json(later))], enricher=False)
    assert second.total("quarantined") == 1


def test_rows_hashed_by_an_older_tracelens_are_still_duplicates(store, tmp_path, monkeypatch):
    # a store written before content_hash ignored the importer's name and sub-millisecond digits
    from tracelens.ingest import pipeline, records

    def old_hash(rec: dict) -> str:
        return "legacy-" + str(rec.get("source_format")) + str(rec.get("timestamp"))

    items = spans(3)
    with monkeypatch.context() as m:
        m.setattr(records, "_content_hash", old_hash)
        m.setattr(pipeline, "same_call", lambda a, b: False)
        ingest(store, [_write(tmp_path, "a.otlp.jsonl", otlp_json(items))], enricher=False)
    again = ingest(store, [_write(tmp_path, "a.otlp.jsonl", otlp_json(items))], enricher=False)
    assert (again.total("stored"), again.total("duplicates"), again.total("quarantined")) == (0, 3, 0)
    other = ingest(store, [_write(tmp_path, "b.console.json", console(items))], enricher=False)
    assert (other.total("duplicates"), other.total("quarantined")) == (3, 0)
    changed = json.loads(json.dumps(items))
    changed[0]["attributes"]["gen_ai.usage.output_tokens"] = 99
    last = ingest(store, [_write(tmp_path, "c.otlp.jsonl", otlp_json(changed))], enricher=False)
    assert (last.total("duplicates"), last.total("quarantined")) == (2, 1)
