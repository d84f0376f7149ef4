"""GenAI events sent as OTLP log records (otlp_logs, otlp_logs_proto), joined to their spans.

The inputs are made by the OpenTelemetry SDK itself: spans and event log
records emitted in the shape the openai-v2 instrumentation (event mode) and
OpenLLMetry (``use_attributes=False``) write, exported in memory and
serialised with the OTLP exporter's own encoders, to JSON (``MessageToJson``,
what the Collector file exporter writes) and to protobuf. The spans carry no
content (one not even its model); the trace rows must get it from the events
whichever file is ingested first, and re-ingesting must change nothing.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

pytest.importorskip("opentelemetry.sdk")
pytest.importorskip("opentelemetry.exporter.otlp.proto.common")

from google.protobuf.json_format import MessageToDict  # noqa: E402
from opentelemetry import trace  # noqa: E402
from opentelemetry.exporter.otlp.proto.common._log_encoder import encode_logs  # noqa: E402
from opentelemetry.exporter.otlp.proto.common.trace_encoder import encode_spans  # noqa: E402
from opentelemetry.sdk._logs import LoggerProvider  # noqa: E402
from opentelemetry.sdk._logs.export import InMemoryLogRecordExporter, SimpleLogRecordProcessor  # noqa: E402
from opentelemetry.sdk.resources import Resource  # noqa: E402
from opentelemetry.sdk.trace import TracerProvider  # noqa: E402
from opentelemetry.sdk.trace.export import SimpleSpanProcessor  # noqa: E402
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter  # noqa: E402

from tracelens.ingest.base import LogEvent, Skipped  # noqa: E402
from tracelens.ingest.formats.otlp_logs import log_doc_items  # noqa: E402
from tracelens.ingest.pipeline import ingest  # noqa: E402
from tracelens.ingest.registry import sniff_format  # noqa: E402
from tracelens.store import Store  # noqa: E402

SCOPE = "opentelemetry.instrumentation.openai_v2"
T0 = 1_790_000_000_000_000_000  # 2026-09-21, in nanoseconds
TOOL_CALL = {"id": "call_1", "type": "function", "function": {"name": "get_weather", "arguments": '{"city": "Paris"}'}}


def _emit(logger, name: str, body, t: int, **attrs) -> None:
    logger.emit(event_name=name, body=body, timestamp=t, observed_timestamp=t, attributes={"gen_ai.system": "openai",
                                                                                           **attrs})


def _record() -> dict:
    """Spans and log records of four calls, a tool span and two stray log records, made by the SDK."""
    spans_out, logs_out = InMemorySpanExporter(), InMemoryLogRecordExporter()
    resource = Resource.create({"service.name": "support-bot"})
    tp = TracerProvider(resource=resource)
    tp.add_span_processor(SimpleSpanProcessor(spans_out))
    lp = LoggerProvider(resource=resource)
    lp.add_log_record_processor(SimpleLogRecordProcessor(logs_out))
    tracer, logger = tp.get_tracer(SCOPE), lp.get_logger(SCOPE)
    kind = trace.SpanKind.CLIENT

    def chat(model: str | None, finish: str, t: int):
        attrs = {"gen_ai.operation.name": "chat", "gen_ai.system": "openai", "gen_ai.usage.input_tokens": 12,
                 "gen_ai.usage.output_tokens": 7, "gen_ai.response.finish_reasons": [finish]}
        if model:
            attrs.update({"gen_ai.request.model": model, "gen_ai.response.model": model + "-2024-07-18"})
        return tracer.start_as_current_span(f"chat {model or ''}".strip(), kind=kind, attributes=attrs, start_time=t,
                                            end_on_exit=False)

    with chat("gpt-4o-mini", "stop", T0) as s:
        _emit(logger, "gen_ai.system.message", {"content": "You are terse."}, T0 + 1)
        _emit(logger, "gen_ai.user.message", {"content": "Name three primary colours."}, T0 + 2)
        _emit(logger, "gen_ai.choice", {"index": 0, "finish_reason": "stop",
                                        "message": {"role": "assistant", "content": "Red, yellow, blue."}}, T0 + 3)
        s.end(T0 + 900_000_000)
    with chat("gpt-4o-mini", "tool_calls", T0 + 10**9) as s:
        _emit(logger, "gen_ai.user.message", {"content": "Weather in Paris?"}, T0 + 10**9 + 1)
        # OpenLLMetry writes a choice's tool calls beside its message
        _emit(logger, "gen_ai.choice", {"index": 0, "finish_reason": "tool_calls", "message": {"content": None},
                                        "tool_calls": [TOOL_CALL]}, T0 + 10**9 + 2)
        s.end(T0 + 10**9 + 500_000_000)
    with chat(None, "stop", T0 + 2 * 10**9) as s:  # OpenLLMetry: no model on the span; the newer details event
        logger.emit(event_name="gen_ai.client.inference.operation.details", timestamp=T0 + 2 * 10**9 + 5, attributes={
            "gen_ai.operation.name": "chat", "gen_ai.request.model": "gpt-4.1-mini",
            "gen_ai.input.messages": json.dumps([{"role": "user", "parts": [{"type": "text", "content": "Hi there"}]}]),
            "gen_ai.output.messages": json.dumps([{"role": "assistant", "finish_reason": "stop",
                                                   "parts": [{"type": "text", "content": "Hello!"}]}]),
        })
        s.end(T0 + 2 * 10**9 + 300_000_000)
    with tracer.start_as_current_span("execute_tool get_weather", attributes={
            "gen_ai.operation.name": "execute_tool", "gen_ai.tool.name": "get_weather"}, start_time=T0 + 4 * 10**9,
            end_on_exit=False) as s:
        logger.emit(body="tool called", timestamp=T0 + 4 * 10**9 + 1)  # an application log line, not an event
        s.end(T0 + 4 * 10**9 + 10)
    with chat("gpt-4o-mini", "stop", T0 + 5 * 10**9) as lost:  # its span is never exported
        _emit(logger, "gen_ai.user.message", {"content": "Anyone there?"}, T0 + 5 * 10**9 + 1)
        lost.end(T0 + 5 * 10**9 + 10)
    _emit(logger, "gen_ai.user.message", {"content": "no span"}, T0 + 6 * 10**9)  # no span context at all
    spans = [s for s in spans_out.get_finished_spans() if s.context.span_id != lost.get_span_context().span_id]
    return {"spans": encode_spans(spans), "logs": encode_logs(logs_out.get_finished_logs())}


@pytest.fixture(scope="module")
def messages() -> dict:
    return _record()


def _jsonl(msg, snake: bool = False) -> bytes:
    return (json.dumps(MessageToDict(msg, preserving_proto_field_name=snake)) + "\n").encode()


def _framed(msg) -> bytes:
    data = msg.SerializeToString()
    return len(data).to_bytes(4, "big") + data


@pytest.fixture
def files(tmp_path, messages) -> dict[str, Path]:
    out = {}
    for name, data in {
        "logs.jsonl": _jsonl(messages["logs"]), "spans.jsonl": _jsonl(messages["spans"]),
        "logs_snake.jsonl": _jsonl(messages["logs"], snake=True),
        "logs.binpb": _framed(messages["logs"]), "logs_bare.binpb": messages["logs"].SerializeToString(),
        "spans.binpb": _framed(messages["spans"]),
    }.items():
        (tmp_path / name).write_bytes(data)
        out[name] = tmp_path / name
    return out


def _rows(store: Store) -> dict[str, dict]:
    df = store.scan().drop("date", "ingested_at").collect()
    return {r["trace_id"]: r for r in df.iter_rows(named=True)}


def _run(make_store, name: str, *runs: list[Path]) -> tuple[Store, list]:
    store = make_store(name)
    summaries = [ingest(store, [str(p) for p in paths], workers=0) for paths in runs]
    for s in summaries:
        assert not s.errors, [f.error for f in s.errors]
        assert all(f.reconciles for f in s.files)
    return store, summaries


def _by_prompt(rows: dict) -> dict:
    return {r["prompt_text"]: r for r in rows.values()}


def test_sniffing_tells_logs_from_spans_and_metrics(files, tmp_path):
    from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import ExportMetricsServiceRequest
    from opentelemetry.proto.metrics.v1.metrics_pb2 import Metric, ResourceMetrics, ScopeMetrics, Sum

    def fmt(path: Path):
        f = sniff_format(path.read_bytes()[:65536], str(path))
        return f.name if f else None

    assert fmt(files["logs.jsonl"]) == "otlp_logs"
    assert fmt(files["logs_snake.jsonl"]) == "otlp_logs"
    assert fmt(files["spans.jsonl"]) == "otlp_json"
    assert fmt(files["logs.binpb"]) == "otlp_logs_proto"
    assert fmt(files["logs_bare.binpb"]) == "otlp_logs_proto"
    assert fmt(files["spans.binpb"]) == "otlp_proto"
    # a metric whose name and description are 16 and 8 bytes long, on the same path as a span or a log record
    metrics = ExportMetricsServiceRequest(resource_metrics=[ResourceMetrics(scope_metrics=[ScopeMetrics(
        metrics=[Metric(name="gen_ai.client.op", description="duration", sum=Sum(is_monotonic=True))])])])
    m = tmp_path / "metrics.binpb"
    m.write_bytes(_framed(metrics))
    assert fmt(m) is None
    mj = tmp_path / "metrics.jsonl"
    mj.write_bytes(_jsonl(metrics))
    assert fmt(mj) is None
    # the other request's key inside an attribute's text does not decide
    doc = json.loads(files["logs.jsonl"].read_text())
    doc["resourceLogs"][0]["resource"]["attributes"].append({"key": "note", "value": {"stringValue": '"resourceSpans"'}})
    mixed = tmp_path / "mixed.jsonl"
    mixed.write_text(json.dumps(doc) + "\n")
    assert fmt(mixed) == "otlp_logs"


def test_logs_first_spans_first_and_one_command_store_the_same_rows(files, tmp_path, make_store):
    logs, spans = files["logs.jsonl"], files["spans.jsonl"]
    a, (la, sa) = _run(make_store, "a", [logs], [spans])
    b, (sb, lb) = _run(make_store, "b", [spans], [logs])
    c, _ = _run(make_store, "c", [logs, spans])
    d, _ = _run(make_store, "d", [spans, logs])
    rows = _rows(a)
    assert rows == _rows(b) == _rows(c) == _rows(d)

    by = _by_prompt(rows)
    assert set(by) == {"Name three primary colours.", "Weather in Paris?", "Hi there"}
    first = by["Name three primary colours."]
    assert first["system_prompt"] == "You are terse."
    assert first["response_text"] == "Red, yellow, blue."
    assert first["stop_reason"] == "end_turn"
    assert first["model_requested"] == "gpt-4o-mini" and first["input_tokens"] == 12
    tool = by["Weather in Paris?"]
    assert [(c["id"], c["name"], json.loads(c["arguments"])) for c in tool["tool_calls"]] == [
        ("call_1", "get_weather", {"city": "Paris"})]
    assert tool["stop_reason"] == "tool_use"
    details = by["Hi there"]
    assert details["response_text"] == "Hello!"
    assert details["model_requested"] == "gpt-4.1-mini"  # the span had none
    assert details["model_family"] is not None and details["provider"] == "openai"
    attrs = dict(first["attributes"])
    assert attrs["otel.log_events"] == "3"
    assert attrs["otel.log_event_fields"] == "system_prompt,messages,response_text"

    # what each run said: events kept, traces completed later, events still waiting for a span
    assert (la.files[0].events, la.files[0].waiting, la.files[0].joined) == (7, 7, 0)
    assert (sa.files[0].stored, sa.files[0].skipped) == (3, 1)
    assert (lb.files[0].events, lb.files[0].joined, lb.files[0].waiting) == (7, 3, 1)
    assert lb.files[0].skipped == 2  # the application log line and the event without a span
    assert lb.to_dict()["totals"]["waiting"] == 1


def test_reingest_is_idempotent(files, tmp_path, make_store):
    logs, spans = files["logs.jsonl"], files["spans.jsonl"]
    store, _ = _run(make_store, "s", [spans], [logs])
    before = (_rows(store), store.count("otlp_events"), store.count("quarantine"))
    for order in ([logs, spans], [spans], [logs]):
        s = ingest(store, [str(p) for p in order], workers=0)
        t = s.to_dict()["totals"]
        assert (t["stored"], t["events"], t["joined"], t["quarantined"]) == (0, 0, 0, 0)
        assert t["duplicates"] == sum(f.read - f.skipped for f in s.files)
    assert (_rows(store), store.count("otlp_events"), store.count("quarantine")) == before
    assert before[1] == 7 and before[2] == 0


def test_protobuf_and_json_store_the_same_rows(files, tmp_path, make_store):
    j, _ = _run(make_store, "j", [files["logs.jsonl"]], [files["spans.jsonl"]])
    p, (_, lp) = _run(make_store, "p", [files["spans.binpb"]], [files["logs.binpb"]])
    q, _ = _run(make_store, "q", [files["logs_bare.binpb"], files["logs_snake.jsonl"], files["spans.binpb"]])
    assert lp.files[0].format == "otlp_logs_proto"

    def content(store):
        return {k: {f: v for f, v in r.items() if f not in ("source_format", "source_file", "source_locator")}
                for k, r in _rows(store).items()}

    assert content(j) == content(p) == content(q)
    # the same events from JSON and protobuf are one set of events
    assert j.count("otlp_events") == p.count("otlp_events") == q.count("otlp_events") == 7


def test_events_without_a_span_wait_in_the_store_until_it_comes(files, tmp_path, make_store):
    store, (s,) = _run(make_store, "w", [files["logs.jsonl"]])
    f = s.files[0]
    assert (f.read, f.events, f.waiting, f.skipped, f.stored) == (9, 7, 7, 2, 0)
    assert store.count("traces") == 0 and store.count("otlp_events") == 7
    assert store.count("quarantine") == 0  # kept, not quarantined
    events = store.scan("otlp_events").collect()
    assert set(events["name"]) == {"gen_ai.system.message", "gen_ai.user.message", "gen_ai.choice",
                                   "gen_ai.client.inference.operation.details"}
    again = ingest(store, [str(files["spans.jsonl"])], workers=0)
    assert again.files[0].stored == 3
    assert _by_prompt(_rows(store))["Name three primary colours."]["response_text"] == "Red, yellow, blue."


def test_events_arriving_in_two_files_give_the_row_of_all_of_them(files, tmp_path, make_store):
    """Events of one span split over two log files: the row is the same as from one file, in any order."""
    doc = json.loads(files["logs.jsonl"].read_text())
    records = doc["resourceLogs"][0]["scopeLogs"][0]["logRecords"]
    halves = []
    for i, part in enumerate((records[::2], records[1::2])):
        d = json.loads(json.dumps(doc))
        d["resourceLogs"][0]["scopeLogs"][0]["logRecords"] = part
        path = tmp_path / f"half{i}.jsonl"
        path.write_text(json.dumps(d) + "\n")
        halves.append(path)
    whole, _ = _run(make_store, "whole", [files["spans.jsonl"], files["logs.jsonl"]])
    split, _ = _run(make_store, "split", [halves[1]], [files["spans.jsonl"]], [halves[0]])

    def content(store):
        return {k: {f: v for f, v in r.items() if f not in ("source_locator",)} for k, r in _rows(store).items()}

    assert content(whole) == content(split)


def test_log_doc_items_maps_a_decoded_request(messages):
    """The entry point for a receiver holding a decoded ExportLogsServiceRequest (base64 ids, as MessageToDict)."""
    items = list(log_doc_items("request:1", MessageToDict(messages["logs"])))
    events = [i for i in items if isinstance(i, LogEvent)]
    skipped = [i for i in items if isinstance(i, Skipped)]
    assert len(events) == 7 and len(skipped) == 2
    assert all(len(e.trace_id) == 32 and len(e.span_id) == 16 for e in events)
    assert events[0].name == "gen_ai.system.message" and events[0].attributes["event.body"] == {
        "content": "You are terse."}
    assert events[0].scope == SCOPE
    assert sorted(s.reason.split(" (")[0] for s in skipped) == [
        "GenAI event 'gen_ai.user.message' has no span context", "log record is not a GenAI event"]


def test_cli_summary_counts_events_waiting_for_their_span(files, tmp_path):
    from click.testing import CliRunner

    from tracelens.cli.main import cli

    store = str(tmp_path / "cli")
    res = CliRunner().invoke(cli, ["ingest", "--store", store, "--json", "--no-progress", str(files["logs.jsonl"])])
    assert res.exit_code == 0, res.output
    out = json.loads(res.stdout)
    assert out["reconciles"] is True and out["files"][0]["format"] == "otlp_logs"
    assert {k: out["totals"][k] for k in ("read", "events", "waiting", "skipped", "stored")} == {
        "read": 9, "events": 7, "waiting": 7, "skipped": 2, "stored": 0}
    res = CliRunner().invoke(cli, ["ingest", "--store", store, "--no-progress", str(files["spans.jsonl"])])
    assert res.exit_code == 0, res.output
    assert "waiting for their span" not in res.stderr  # the stray event's span was never exported, but not in this file
    res = CliRunner().invoke(cli, ["ingest", "--store", store, "--no-progress", str(files["logs.jsonl"])])
    assert "1 log event(s) are waiting for their span" in res.stderr


def test_concurrent_writers_of_events_and_of_their_spans_still_join(files, tmp_path, make_store):
    """One process ingests the log events while another ingests their spans: the rows end joined, as in order."""
    import os
    import subprocess
    import sys

    from tests.conftest import REPO
    from tracelens.storeopen import open_store

    reference, _ = _run(make_store, "ref", [files["spans.jsonl"], files["logs.jsonl"]])
    make_store("race")
    url = make_store.url("race")
    code = ("import sys; from tracelens.storeopen import open_store; from tracelens.ingest.pipeline import ingest\n"
            "s = open_store(sys.argv[1]); r = ingest(s, [sys.argv[2]], workers=0)\n"
            "sys.exit(1 if r.errors else 0)\n")
    env = {**os.environ, "PYTHONPATH": str(REPO / "src")}
    procs = [subprocess.Popen([sys.executable, "-c", code, url, str(files[name])], env=env, stderr=subprocess.PIPE,
                              text=True) for name in ("logs.jsonl", "spans.jsonl")]
    for p in procs:
        _, err = p.communicate(timeout=180)
        assert p.returncode == 0, err
    race = open_store(url)
    assert _rows(race) == _rows(reference)
    assert race.count("otlp_events") == 7
