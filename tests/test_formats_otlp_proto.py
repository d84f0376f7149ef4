"""OTLP protobuf importer (otlp_proto): the same spans as OTLP JSON, read from binary files.

The messages are built with opentelemetry-proto's generated classes and the
same spans written as OTLP JSON with the JSON tests' helpers, from one
description of each span; both files are ingested and every stored field
compared.
"""

from __future__ import annotations

import json

import pytest

from tests.test_formats_otlp import CHAT, TRACE, _ns, _parts, lines, request, span
from tracelens.ingest.pipeline import ingest
from tracelens.ingest.registry import sniff_format

pytest.importorskip("opentelemetry.proto")

from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest  # noqa: E402
from opentelemetry.proto.common.v1.common_pb2 import (  # noqa: E402
    AnyValue,
    ArrayValue,
    InstrumentationScope,
    KeyValue,
    KeyValueList,
)
from opentelemetry.proto.resource.v1.resource_pb2 import Resource  # noqa: E402
from opentelemetry.proto.trace.v1.trace_pb2 import ResourceSpans, ScopeSpans, Span, Status  # noqa: E402

END = "2026-10-01T09:00:01.500Z"

# (span id, attributes, name, parent, status, events): one description, written both ways
SPANS = [
    ("a000000000000001", {"gen_ai.operation.name": "invoke_agent", "gen_ai.agent.name": "Till"}, "agent", "", {}, []),
    ("a000000000000002", CHAT, "chat claude-sonnet-4-5", "a000000000000001", {}, []),
    ("a000000000000003", {"gen_ai.operation.name": "execute_tool", "gen_ai.tool.name": "price"}, "tool", "", {}, []),
    ("a000000000000004", {
        "gen_ai.operation.name": "chat", "gen_ai.provider.name": "openai", "gen_ai.request.model": "gpt-4o-mini",
        "gen_ai.usage.input_tokens": 9, "gen_ai.request.temperature": 0.5, "gen_ai.request.stream": True,
        "gen_ai.request.stop_sequences": ["END"], "gen_ai.request.meta": {"tier": "gold", "n": 2},
        "error.type": "RateLimitError",
    }, "chat gpt-4o-mini", "", {"code": 2, "message": "429 Too Many Requests"},
     [("gen_ai.user.message", {"content": "Hello?"}),
      ("exception", {"exception.type": "RateLimitError", "exception.message": "slow down"})]),
]


def _anyvalue(v) -> AnyValue:
    if isinstance(v, bool):
        return AnyValue(bool_value=v)
    if isinstance(v, int):
        return AnyValue(int_value=v)
    if isinstance(v, float):
        return AnyValue(double_value=v)
    if isinstance(v, list):
        return AnyValue(array_value=ArrayValue(values=[_anyvalue(x) for x in v]))
    if isinstance(v, dict):
        return AnyValue(kvlist_value=KeyValueList(values=_kvs(v)))
    return AnyValue(string_value=v)


def _kvs(d: dict) -> list[KeyValue]:
    return [KeyValue(key=k, value=_anyvalue(v)) for k, v in d.items()]


def proto_request(specs=SPANS, service: str = "checkout-assistant") -> ExportTraceServiceRequest:
    spans = []
    for sid, attrs, name, parent, status, events in specs:
        spans.append(Span(
            trace_id=bytes.fromhex(TRACE), span_id=bytes.fromhex(sid),
            parent_span_id=bytes.fromhex(parent) if parent else b"", name=name, kind=Span.SPAN_KIND_CLIENT,
            start_time_unix_nano=int(_ns("2026-10-01T09:00:00Z")), end_time_unix_nano=int(_ns(END)),
            attributes=_kvs(attrs), status=Status(**status),
            events=[Span.Event(time_unix_nano=int(_ns("2026-10-01T09:00:00Z")), name=n, attributes=_kvs(a))
                    for n, a in events],
        ))
    return ExportTraceServiceRequest(resource_spans=[ResourceSpans(
        resource=Resource(attributes=_kvs({"service.name": service})),
        scope_spans=[ScopeSpans(scope=InstrumentationScope(name="test.instrumentation"), spans=spans)],
    )])


def json_request(specs=SPANS, service: str = "checkout-assistant") -> dict:
    return request(*[span(sid, attrs, name=name, parent=parent, status=status, events=events or None)
                     for sid, attrs, name, parent, status, events in specs], service=service)


def framed(*msgs) -> bytes:
    """What the Collector file exporter writes with ``format: proto``: a 4-byte big-endian length per message."""
    out = b""
    for m in msgs:
        data = m.SerializeToString()
        out += len(data).to_bytes(4, "big") + data
    return out


def _stored(store) -> dict:
    return {r["trace_id"]: r for r in store.scan().collect().to_dicts()}


def _comparable(rows: dict) -> dict:
    # where a trace came from differs by design (the file, its physical record); everything else must match
    # (and source_format, which content_hash covers today)
    skip = {"source_file", "source_locator", "ingested_at", "source_format", "content_hash"}
    return {k: {f: v for f, v in r.items() if f not in skip} for k, r in rows.items()}


@pytest.mark.parametrize("layout", ["framed", "bare"])
def test_protobuf_spans_store_the_same_fields_as_otlp_json(tmp_path, layout):
    from tracelens.store import Store

    pb = tmp_path / "traces.binpb"
    pb.write_bytes(framed(proto_request()) if layout == "framed" else proto_request().SerializeToString())
    js = tmp_path / "traces.jsonl"
    js.write_text(lines(json_request()))
    s_pb, s_js = Store(tmp_path / "pb", create=True), Store(tmp_path / "js", create=True)
    f_pb = ingest(s_pb, [str(pb)], enricher=False).files[0]
    f_js = ingest(s_js, [str(js)], enricher=False).files[0]
    assert (f_pb.format, f_pb.records, f_pb.read, f_pb.stored, f_pb.skipped, f_pb.quarantined) == (
        "otlp_proto", 1, 4, 2, 2, 0)
    assert (f_js.stored, f_js.skipped) == (2, 2)
    assert f_pb.reconciles
    got, want = _stored(s_pb), _stored(s_js)
    assert set(got) == {f"otel:{TRACE}:a000000000000002", f"otel:{TRACE}:a000000000000004"}
    assert _comparable(got) == _comparable(want)
    chat = got[f"otel:{TRACE}:a000000000000002"]
    assert (chat["model_returned"], chat["input_tokens"], chat["response_text"]) == (
        "claude-sonnet-4-5-20250929", 120, "That is 7.00.")
    assert chat["source_locator"] == "message:1/span:a000000000000002"
    assert (chat["source_format"], want[f"otel:{TRACE}:a000000000000002"]["source_format"]) == (
        "otlp_proto", "otlp_json")
    err = got[f"otel:{TRACE}:a000000000000004"]
    assert err["status"] == "error"


def test_several_messages_and_reingest_gives_duplicates(store, tmp_path):
    one = [SPANS[1]]
    other = [("b000000000000001", {**CHAT, "gen_ai.input.messages": json.dumps([_parts("user", "And tea?")])},
              "chat", "", {}, [])]
    pb = tmp_path / "export.binpb"
    pb.write_bytes(framed(proto_request(one), ExportTraceServiceRequest(), proto_request(other, service="till")))
    f = ingest(store, [str(pb)], enricher=False).files[0]
    assert (f.format, f.records, f.read, f.stored, f.skipped, f.quarantined) == ("otlp_proto", 3, 3, 2, 1, 0)
    assert f.reconciles
    rows = _stored(store)
    assert rows[f"otel:{TRACE}:b000000000000001"]["service"] == "till"
    assert rows[f"otel:{TRACE}:b000000000000001"]["source_locator"] == "message:3/span:b000000000000001"
    f2 = ingest(store, [str(pb)], enricher=False).files[0]
    assert (f2.stored, f2.duplicates, f2.quarantined) == (0, 2, 0)


def test_sniffed_by_content_not_by_name(tmp_path):
    body = proto_request().SerializeToString()
    small = proto_request([SPANS[2]]).SerializeToString()
    assert len(small) < 256  # its length prefix starts with three zero bytes, like UTF-32-BE text
    for data in (framed(proto_request()), body, framed(proto_request([SPANS[2]])), small):
        assert sniff_format(data, "export.dat").name == "otlp_proto"
    # the logs request has the same outer structure; its records are not spans
    from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import ExportLogsServiceRequest
    from opentelemetry.proto.logs.v1.logs_pb2 import LogRecord, ResourceLogs, ScopeLogs

    logs = ExportLogsServiceRequest(resource_logs=[ResourceLogs(scope_logs=[ScopeLogs(log_records=[
        LogRecord(time_unix_nano=1, trace_id=bytes.fromhex(TRACE), body=AnyValue(string_value="hi"))])])])
    for data in (logs.SerializeToString(), framed(logs)):
        fmt = sniff_format(data, "logs.binpb")
        assert fmt is None or fmt.name != "otlp_proto"
    # nor are metrics, whose Metric starts with its name: here 16 bytes, like a trace id
    from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import ExportMetricsServiceRequest
    from opentelemetry.proto.metrics.v1.metrics_pb2 import Metric, NumberDataPoint, ResourceMetrics, ScopeMetrics, Sum

    metrics = ExportMetricsServiceRequest(resource_metrics=[ResourceMetrics(scope_metrics=[ScopeMetrics(metrics=[
        Metric(name="gen_ai.client.op", description="duration", unit="s",
               sum=Sum(data_points=[NumberDataPoint(as_double=1.5, time_unix_nano=7)]))])])])
    assert b"\x0a\x10gen_ai.client.op\x12\x08duration" in metrics.SerializeToString()
    for data in (metrics.SerializeToString(), framed(metrics)):
        fmt = sniff_format(data, "metrics.binpb")
        assert fmt is None or fmt.name != "otlp_proto"
    assert sniff_format(lines(json_request()).encode(), "x.binpb").name == "otlp_json"


def test_small_framed_file_is_not_read_as_utf32(store, tmp_path):
    pb = tmp_path / "small.binpb"
    pb.write_bytes(framed(proto_request([SPANS[2]]), proto_request([SPANS[1]])))
    f = ingest(store, [str(pb)], enricher=False).files[0]
    assert (f.format, f.records, f.read, f.stored, f.skipped) == ("otlp_proto", 2, 2, 1, 1)


def test_damaged_messages_are_quarantined_and_the_rest_kept(store, tmp_path):
    good = framed(proto_request([SPANS[1]]))
    garbage = b"\x0a\x05\xff\xff\xff\xff\xff"
    pb = tmp_path / "damaged.binpb"
    # a message that is not a request, a good one, then a message cut short by a crash
    pb.write_bytes(len(garbage).to_bytes(4, "big") + garbage + good + good[:-10])
    f = ingest(store, [str(pb)], enricher=False).files[0]
    assert f.format == "otlp_proto"
    assert (f.records, f.read, f.stored, f.quarantined) == (3, 3, 1, 2)
    assert f.reconciles
    q = {r["source_locator"]: r for r in store.scan("quarantine").collect().to_dicts()}
    assert "not a protobuf ExportTraceServiceRequest" in q["message:1"]["reason"]
    assert q["message:1"]["raw"].startswith("base64:")
    assert "input ends inside message 3" in q["message:3"]["reason"]


def test_without_the_extra_one_line_names_the_install(store, tmp_path, monkeypatch):
    from tracelens import extras

    monkeypatch.setitem(extras.EXTRAS, "otlp", ("google.protobuf", "no_such_module_for_otlp"))
    pb = tmp_path / "traces.binpb"
    pb.write_bytes(framed(proto_request()))
    f = ingest(store, [str(pb)], enricher=False).files[0]
    assert f.format == "otlp_proto"
    assert f.error == (f"{pb}: reading OTLP protobuf needs the 'otlp' extra (no_such_module_for_otlp not installed): "
                       "pip install 'tracelens[otlp]'")


@pytest.mark.parametrize("encoding", ["proto", "json"])
def test_file_exporter_zstd_compresses_each_message(tmp_path, encoding):
    # `compression: zstd` in the Collector file exporter: every message compressed on its own, then framed
    # (also in JSON mode); the spans stored are those of the plain files
    import zstandard

    from tracelens.store import Store

    z = zstandard.ZstdCompressor()
    reqs = [proto_request([SPANS[1]]), proto_request([SPANS[3]])]
    if encoding == "proto":
        bodies = [r.SerializeToString() for r in reqs]
    else:
        bodies = [json.dumps(json_request([SPANS[1]])).encode(), json.dumps(json_request([SPANS[3]])).encode()]
    pb = tmp_path / "traces.zst.bin"
    pb.write_bytes(b"".join(len(c).to_bytes(4, "big") + c for c in (z.compress(b) for b in bodies)))
    s_z, s_plain = Store(tmp_path / "z", create=True), Store(tmp_path / "plain", create=True)
    f = ingest(s_z, [str(pb)], enricher=False).files[0]
    assert (f.format, f.records, f.stored, f.quarantined) == ("otlp_proto", 2, 2, 0)
    plain = tmp_path / "traces.binpb"
    plain.write_bytes(framed(*reqs))
    ingest(s_plain, [str(plain)], enricher=False)
    assert _comparable(_stored(s_z)) == _comparable(_stored(s_plain))
