"""`tracelens collect`: OTLP/HTTP in, store rows out, nothing acknowledged before it is durable.

Spans and log records are sent by the real OpenTelemetry SDK exporters
(``OTLPSpanExporter``, ``OTLPLogExporter``: protobuf over HTTP) and JSON
bodies are posted directly, all to a receiver on 127.0.0.1 and an ephemeral
port: in this process (``Collector``) or as the CLI in a subprocess, which
the durability test SIGKILLs mid-stream, restarts and SIGTERMs.
"""

from __future__ import annotations

import base64
import gzip
import http.client
import json
import os
import queue
import re
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time

import pytest

from tests.test_formats_otlp import CHAT, request, span
from tracelens.collect import CollectConfig, Collector, SpoolBusy, gunzip, is_loopback
from tracelens.ingest.pipeline import ingest
from tracelens.store import Store

pytest.importorskip("opentelemetry.proto")
pytest.importorskip("opentelemetry.sdk")
pytest.importorskip("opentelemetry.exporter.otlp.proto.http")

from opentelemetry.exporter.otlp.proto.http import Compression  # noqa: E402
from opentelemetry.exporter.otlp.proto.http._log_exporter import OTLPLogExporter  # noqa: E402
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter  # noqa: E402
from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import ExportLogsServiceRequest  # noqa: E402
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (  # noqa: E402
    ExportTraceServiceResponse,
)
from opentelemetry.sdk._logs import LoggerProvider  # noqa: E402
from opentelemetry.sdk._logs.export import (  # noqa: E402
    InMemoryLogRecordExporter,
    LogRecordExportResult,
    SimpleLogRecordProcessor,
)
from opentelemetry.sdk.resources import Resource  # noqa: E402
from opentelemetry.sdk.trace import TracerProvider  # noqa: E402
from opentelemetry.sdk.trace.export import SimpleSpanProcessor, SpanExportResult  # noqa: E402
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter  # noqa: E402

from tracelens.storeopen import open_store

PROTO = "application/x-protobuf"


def genai_spans(n: int, tag: str = "q", tools: int = 0) -> list:
    """``n`` finished chat spans (each with its own prompt) and ``tools`` tool spans, made by the SDK."""
    mem = InMemorySpanExporter()
    tp = TracerProvider(resource=Resource.create({"service.name": "checkout-assistant"}))
    tp.add_span_processor(SimpleSpanProcessor(mem))
    tracer = tp.get_tracer("test.instrumentation")
    for i in range(n):
        with tracer.start_as_current_span(f"chat claude-sonnet-4-5 {i}") as s:
            s.set_attribute("gen_ai.operation.name", "chat")
            s.set_attribute("gen_ai.provider.name", "anthropic")
            s.set_attribute("gen_ai.request.model", "claude-sonnet-4-5")
            s.set_attribute("gen_ai.response.model", "claude-sonnet-4-5-20250929")
            s.set_attribute("gen_ai.usage.input_tokens", 100 + i)
            s.set_attribute("gen_ai.usage.output_tokens", 7)
            s.set_attribute("user.id", f"user-{i % 3}")
            s.set_attribute("gen_ai.input.messages", json.dumps(
                [{"role": "user", "parts": [{"type": "text", "content": f"{tag} question {i}?"}]}]))
            s.set_attribute("gen_ai.output.messages", json.dumps(
                [{"role": "assistant", "parts": [{"type": "text", "content": f"answer {i}"}], "finish_reason": "stop"}]))
    for _ in range(tools):
        with tracer.start_as_current_span("tool") as s:
            s.set_attribute("gen_ai.operation.name", "execute_tool")
    tp.shutdown()
    return list(mem.get_finished_spans())


def export(url: str, spans: list, per_request: int = 1, **kw) -> list:
    """Send ``spans`` through the SDK's OTLP/HTTP protobuf exporter, ``per_request`` spans a request."""
    exp = OTLPSpanExporter(endpoint=f"{url}/v1/traces", **kw)
    try:
        return [exp.export(spans[i:i + per_request]) for i in range(0, len(spans), per_request)]
    finally:
        exp.shutdown()


def post(url: str, path: str, body: bytes = b"", headers: dict | None = None, method: str = "POST"):
    host, port = url.removeprefix("http://").split(":")
    conn = http.client.HTTPConnection(host, int(port), timeout=30)
    try:
        conn.request(method, path, body=body, headers=headers or {})
        r = conn.getresponse()
        return r.status, dict(r.getheaders()), r.read()
    finally:
        conn.close()


def proto_body(n: int = 1, tag: str = "raw") -> bytes:
    """One ExportTraceServiceRequest, serialized as the SDK exporter does."""
    from opentelemetry.exporter.otlp.proto.common.trace_encoder import encode_spans

    return encode_spans(genai_spans(n, tag)).SerializeToString()


@pytest.fixture
def receiver(tmp_path):
    """Start a Collector on an ephemeral port; yields (collector, url, store). Stopped at the end."""
    started = []

    def start(**kw):
        store = Store(tmp_path / "store", create=True)
        c = Collector(store, CollectConfig(port=0, **{"commit_interval": 0.05, **kw}))
        host, port = c.start()
        started.append(c)
        return c, f"http://{host}:{port}", store

    yield start
    for c in started:
        c.stop()


def rows(store: Store):
    return store.scan().collect().sort("trace_id")


def quarantine(store: Store):
    return store.scan("quarantine").collect()


def spooled(store_root) -> list[str]:
    """Names of the request files in a store's spool (not its lock)."""
    return sorted(p.name for p in (store_root / "spool" / "collect").iterdir() if not p.name.startswith("."))


# ---------------------------------------------------------------- what lands in the store


def test_sdk_exporter_protobuf_spans_land_with_their_fields(receiver):
    c, url, store = receiver()
    spans = genai_spans(5, tools=2)
    assert export(url, spans, per_request=3) == [SpanExportResult.SUCCESS] * 3
    stats = c.stop()
    assert (stats.accepted, stats.records, stats.stored, stats.skipped, stats.pending_files) == (3, 7, 5, 2, 0)
    df = rows(store)
    assert df.height == 5
    by_prompt = {r["prompt_text"]: r for r in df.to_dicts()}
    r = by_prompt["q question 3?"]
    llm = [s for s in spans if s.name.endswith(" 3")][0]
    assert r["trace_id"] == f"otel:{llm.context.trace_id:032x}:{llm.context.span_id:016x}"
    assert (r["provider"], r["model_requested"], r["model_returned"]) == (
        "anthropic", "claude-sonnet-4-5", "claude-sonnet-4-5-20250929")
    assert (r["input_tokens"], r["output_tokens"], r["user_id"]) == (103, 7, "user-0")
    assert r["response_text"] == "answer 3"
    assert r["source_format"] == "otlp_proto" and r["source_file"] == "otlp-http:/v1/traces"
    assert re.fullmatch(r"\d{20}-\d{8}\.traces\.binpb/message:1/span:[0-9a-f]{16}", r["source_locator"])
    assert not spooled(store.root)


def test_gzip_exporter_and_many_requests_make_few_commits(receiver):
    c, url, store = receiver(commit_interval=0.5)
    spans = genai_spans(40, "gz")
    assert set(export(url, spans, per_request=2, compression=Compression.Gzip)) == {SpanExportResult.SUCCESS}
    stats = c.stop()
    assert (stats.accepted, stats.stored) == (20, 40)
    assert stats.commits < stats.accepted  # batched: 20 requests, a handful of commits
    assert rows(store).height == 40


def test_json_body_stores_what_ingest_of_the_same_file_stores(receiver, tmp_path):
    c, url, store = receiver()
    req = request(span("a000000000000002", CHAT, name="chat claude-sonnet-4-5"),
                  span("a000000000000003", {"gen_ai.operation.name": "execute_tool"}, name="tool"))
    body = json.dumps(req, indent=2).encode()  # pretty-printed: newlines between tokens
    status, headers, answer = post(url, "/v1/traces", body, {"Content-Type": "application/json"})
    assert (status, headers["Content-Type"], answer) == (200, "application/json", b"{}")
    status, _, _ = post(url, "/v1/traces", gzip.compress(body), {"Content-Type": "application/json; charset=utf-8",
                                                                  "Content-Encoding": "gzip"})
    assert status == 200
    stats = c.stop()
    assert (stats.stored, stats.duplicates, stats.skipped) == (1, 1, 2)
    # the same request ingested from a file by `tracelens ingest`'s pipeline: the same row
    f = tmp_path / "export.jsonl"
    f.write_text(json.dumps(req) + "\n")
    other = Store(tmp_path / "other", create=True)
    ingest(other, [str(f)], workers=0)
    got, want = rows(store).to_dicts()[0], rows(other).to_dicts()[0]
    for k in ("source_file", "source_locator", "ingested_at", "refusal_version"):
        got.pop(k), want.pop(k)
    assert got == want
    assert got["source_format"] == "otlp_json" and got["prompt_text"] == "Total for two coffees?"


def test_protobuf_answer_is_an_empty_export_response(receiver):
    c, url, store = receiver()
    status, headers, answer = post(url, "/v1/traces", proto_body(), {"Content-Type": PROTO})
    assert (status, headers["Content-Type"]) == (200, PROTO)
    assert ExportTraceServiceResponse.FromString(answer) == ExportTraceServiceResponse()
    c.stop()
    assert rows(store).height == 1


# ---------------------------------------------------------------- refusals


def test_error_statuses(receiver):
    c, url, store = receiver(max_body=4096)
    big = b"x" * 5000
    assert post(url, "/v1/metrics", b"{}", {"Content-Type": "application/json"})[0] == 404
    assert post(url, "/", method="GET")[0] == 404
    status, headers, _ = post(url, "/v1/traces", method="GET")
    assert (status, headers["Allow"]) == (405, "POST")
    assert post(url, "/v1/traces", b"{}", method="PUT")[0] == 405
    status, _, answer = post(url, "/v1/traces", b"{}", {"Content-Type": "text/plain"})
    assert status == 415 and "application/x-protobuf" in json.loads(answer)["message"]
    assert post(url, "/v1/traces", b"{}", {"Content-Type": "application/json", "Content-Encoding": "br"})[0] == 415
    status, _, answer = post(url, "/v1/traces", big, {"Content-Type": "application/json"})
    assert status == 413 and "4,096" in json.loads(answer)["message"]
    bomb = gzip.compress(b" " * 1_000_000)  # 1 MB of JSON whitespace in about 1 KB
    assert len(bomb) < 4096
    assert post(url, "/v1/traces", bomb, {"Content-Type": "application/json", "Content-Encoding": "gzip"})[0] == 413
    # a google.rpc.Status in protobuf for a protobuf request: code 8, then the message
    status, headers, answer = post(url, "/v1/traces", big, {"Content-Type": PROTO})
    assert (status, headers["Content-Type"], answer[:2]) == (413, PROTO, b"\x08\x08")
    stats = c.stop()
    assert stats.accepted == 0 and stats.other_errors == 9 and stats.pending_files == 0
    assert not (store.root / "traces").exists() or rows(store).height == 0


@pytest.mark.parametrize(("ctype", "encoding", "body", "reason"), [
    (PROTO, None, b"\xff\xff\xff garbage", "not a protobuf ExportTraceServiceRequest"),
    ("application/json", None, b'{"resourceSpans": [', "body is not JSON"),
    ("application/json", None, b"[1, 2]", "not an object"),
    ("application/json", None, b'{"resourceLogs": []}', "has no 'resourceSpans'"),
    ("application/json", "gzip", b"\x1f\x8b\x08\x00broken", "gzip"),
])
def test_undecodable_bodies_get_400_and_are_quarantined_with_the_reason(receiver, ctype, encoding, body, reason):
    c, url, store = receiver()
    headers = {"Content-Type": ctype, **({"Content-Encoding": encoding} if encoding else {})}
    status, _, answer = post(url, "/v1/traces", body, headers)
    message = json.loads(answer)["message"] if ctype == "application/json" else answer.decode("utf-8", "replace")
    assert status == 400 and reason in message
    stats = c.stop()
    assert (stats.rejected, stats.quarantined, stats.pending_files) == (1, 1, 0)
    (q,) = quarantine(store).to_dicts()
    assert reason in q["reason"] and q["reason"].startswith("request rejected (400)")
    assert q["source_file"] == "otlp-http:/v1/traces" and q["source_locator"].endswith(".traces.rejected")
    assert base64.b64decode(q["raw"].removeprefix("base64:")) == body  # kept as it came, nothing lost


def test_bearer_token(receiver):
    c, url, store = receiver(token="s3cret-token")
    spans = genai_spans(2, "tok")
    assert export(url, spans[:1]) == [SpanExportResult.FAILURE]
    status, headers, _ = post(url, "/v1/traces", proto_body(), {"Content-Type": PROTO})
    assert status == 401 and headers["WWW-Authenticate"].startswith("Bearer")
    assert post(url, "/v1/traces", proto_body(), {"Content-Type": PROTO, "Authorization": "Bearer s3cret-tokeN"})[0] == 401
    assert post(url, "/v1/traces", proto_body(), {"Content-Type": PROTO, "Authorization": "Basic s3cret-token"})[0] == 401
    assert export(url, spans[1:], headers={"Authorization": "Bearer s3cret-token"}) == [SpanExportResult.SUCCESS]
    stats = c.stop()
    assert (stats.unauthorized, stats.accepted, stats.stored) == (4, 1, 1)
    assert rows(store)["prompt_text"].to_list() == ["tok question 1?"]


def test_backpressure_429_with_retry_after_then_the_exporter_gets_through(receiver):
    c, url, store = receiver(max_pending_files=1, retry_after=1, enrich=False)  # commits take milliseconds
    spans, results = genai_spans(3, "retried"), []
    exporter = threading.Thread(target=lambda: results.extend(export(url, spans, per_request=3)))
    with store.lock():  # the store is busy (another writer): the committer cannot make room yet
        assert post(url, "/v1/traces", proto_body(1, "first"), {"Content-Type": PROTO})[0] == 200
        status, headers, _ = post(url, "/v1/traces", proto_body(1, "second"), {"Content-Type": PROTO})
        assert status == 429 and headers["Retry-After"] == "1"
        # the real exporter is refused too, and waits Retry-After before it retries
        t0 = time.monotonic()
        exporter.start()
        deadline = time.monotonic() + 20
        while c.snapshot().refused < 2 and time.monotonic() < deadline:
            time.sleep(0.01)
        assert c.snapshot().refused == 2
    exporter.join(30)
    assert results == [SpanExportResult.SUCCESS] and time.monotonic() - t0 >= 0.9
    stats = c.stop()
    assert stats.refused >= 2 and stats.stored == 4
    assert sorted(rows(store)["prompt_text"]) == ["first question 0?", "retried question 0?",
                                                  "retried question 1?", "retried question 2?"]


def test_recommitting_spool_files_after_a_crash_before_their_deletion_gives_duplicates(receiver, tmp_path):
    c, url, store = receiver(commit_interval=3600)
    good = proto_body(3, "dup")
    stale = request(span("a000000000000009", {**CHAT, "gen_ai.input.messages": "[]"}, start="1980-01-01T00:00:00Z",
                         end="1980-01-01T00:00:01Z"))  # an implausible time: quarantined by the pipeline
    assert post(url, "/v1/traces", good, {"Content-Type": PROTO})[0] == 200
    assert post(url, "/v1/traces", json.dumps(stale).encode(), {"Content-Type": "application/json"})[0] == 200
    assert post(url, "/v1/traces", b"\x00junk", {"Content-Type": PROTO})[0] == 400
    spool = store.root / "spool" / "collect"
    saved = tmp_path / "saved"
    shutil.copytree(spool, saved)
    first = c.stop()
    assert (first.stored, first.quarantined, first.pending_files) == (3, 2, 0)
    q_before = quarantine(store).height
    # as if the process had died after the commit and before deleting the files
    for p in saved.iterdir():
        shutil.copy(p, spool / p.name)
    again = Collector(store, CollectConfig(port=0))
    again.start()
    second = again.stop()
    assert second.recovered_files == 3
    assert (second.stored, second.duplicates, second.pending_files) == (0, 3, 0)
    assert rows(store).height == 3 and quarantine(store).height == q_before == 2


def test_protobuf_without_the_otlp_extra_is_415_and_json_still_works(tmp_path):
    code = f"""
import sys
class _Absent:
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in ("google", "opentelemetry"):
            raise ModuleNotFoundError(name, name=name)
sys.meta_path.insert(0, _Absent())
from tracelens.collect import CollectConfig, Collector
from tracelens.store import Store
# enrich=False: the refusal detector is not what this is about, and its start-up would slow this test
c = Collector(Store({str(tmp_path / "store")!r}, create=True), CollectConfig(port=0, commit_interval=0.05, enrich=False))
print(c.start()[1], flush=True)
sys.stdin.readline()
print(c.stop().stored, flush=True)
"""
    p = subprocess.Popen([sys.executable, "-c", code], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        url = f"http://127.0.0.1:{p.stdout.readline().strip()}"
        status, _, answer = post(url, "/v1/traces", proto_body(), {"Content-Type": PROTO})
        assert status == 415 and "pip install 'tracelens[otlp]'" in answer.decode()
        req = request(span("a000000000000002", CHAT))
        assert post(url, "/v1/traces", json.dumps(req).encode(), {"Content-Type": "application/json"})[0] == 200
        out, _ = p.communicate("\n", timeout=60)
    finally:
        p.kill()
    assert out.strip() == "1"


def test_loopback_detection():
    assert all(is_loopback(h) for h in ("127.0.0.1", "127.3.0.1", "::1", "[::1]", "localhost"))
    assert not any(is_loopback(h) for h in ("0.0.0.0", "192.168.1.5", "::", "example.com"))


def test_gunzip_is_bounded_and_reads_concatenated_members():
    assert gunzip(gzip.compress(b"ab") + gzip.compress(b"cd"), 10) == b"abcd"
    with pytest.raises(Exception, match="more than 3"):
        gunzip(gzip.compress(b"abcd"), 3)




def test_in_flight_limit_answers_503_before_reading_the_body(receiver):
    c, url, store = receiver(max_in_flight=1, retry_after=2)
    body = proto_body(1, "slow")
    host, port = url.removeprefix("http://").split(":")
    slow = socket.create_connection((host, int(port)), timeout=30)
    try:  # a client that sends its headers and half its body, then stalls: it holds the one slot
        slow.sendall(b"POST /v1/traces HTTP/1.1\r\nHost: x\r\nContent-Type: application/x-protobuf\r\n"
                     + f"Content-Length: {len(body)}\r\n\r\n".encode() + body[:10])
        deadline = time.monotonic() + 10
        # the slow request must hold the slot before the others ask: under load its handler may start late
        while c._in_flight < 1 and time.monotonic() < deadline:
            time.sleep(0.01)
        assert c._in_flight == 1
        while c.snapshot().refused == 0 and time.monotonic() < deadline:
            status, headers, _ = post(url, "/v1/traces", proto_body(1, "other"), {"Content-Type": PROTO})
            if status != 200:
                break
        assert status == 503 and headers["Retry-After"] == "2"
        slow.sendall(body[10:])
        assert slow.recv(100).startswith(b"HTTP/1.1 200 ")
    finally:
        slow.close()
    # the slot is released once the slow request's handler returns, which can be just after its answer is read
    while c._in_flight and time.monotonic() < deadline:
        time.sleep(0.01)
    assert post(url, "/v1/traces", proto_body(1, "after"), {"Content-Type": PROTO})[0] == 200
    c.stop()
    assert "slow question 0?" in rows(store)["prompt_text"].to_list()


def test_one_collector_per_store(receiver):
    c, url, store = receiver()
    with pytest.raises(SpoolBusy, match="another tracelens collect"):
        Collector(store, CollectConfig(port=0))
    c.stop()
    again = Collector(store, CollectConfig(port=0))  # the lock went with the first one
    again.start()
    again.stop()


# ---------------------------------------------------------------- logs


def genai_logs(n: int, tag: str = "log") -> list:
    """``n`` log records (GenAI events, each inside its own chat span), made by the SDK."""
    mem = InMemoryLogRecordExporter()
    lp = LoggerProvider(resource=Resource.create({"service.name": "checkout-assistant"}))
    lp.add_log_record_processor(SimpleLogRecordProcessor(mem))
    logger = lp.get_logger("test.instrumentation")
    tracer = TracerProvider().get_tracer("test.instrumentation")
    for i in range(n):
        with tracer.start_as_current_span(f"chat claude-sonnet-4-5 {i}"):
            logger.emit(event_name="gen_ai.user.message", attributes={"gen_ai.provider.name": "anthropic"},
                        body={"content": f"{tag} message {i}"})
    lp.shutdown()
    return list(mem.get_finished_logs())


def export_logs(url: str, records: list, per_request: int = 1) -> list:
    exp = OTLPLogExporter(endpoint=f"{url}/v1/logs", timeout=10)
    try:
        return [exp.export(records[i:i + per_request]) for i in range(0, len(records), per_request)]
    finally:
        exp.shutdown()


LOGS_JSON = {"resourceLogs": [{"resource": {"attributes": []}, "scopeLogs": [{"scope": {"name": "raw"}, "logRecords": [
    {"timeUnixNano": "1764000000000000000", "eventName": "gen_ai.user.message",
     "body": {"stringValue": "json log message"},
     "traceId": "5b8efff798038103d269b633813fc60c", "spanId": "eee19b7ec3c1b174"}]}]}]}


def logs_in_spool(store: Store) -> list:
    return sorted(p for p in (store.root / "spool" / "collect").iterdir() if ".logs." in p.name)


def test_logs_without_their_importer_are_acknowledged_held_and_committed_by_a_later_start(tmp_path):
    """A tracelens without the OTLP logs importer (simulated by taking it out of the registry in a child
    process) acknowledges and keeps logs requests; the next start of one that has it commits them."""
    code = """
import sys
from tracelens.ingest.registry import FORMATS
for name in ("otlp_logs", "otlp_logs_proto"):
    del FORMATS[name]
from tracelens.collect import CollectConfig, Collector
from tracelens.store import Store
from tracelens.storeopen import open_store
c = Collector(Store(sys.argv[1], create=True),
              CollectConfig(port=0, commit_interval=0.05, max_pending_files=3, enrich=False))
print(c.start()[1], flush=True)
sys.stdin.readline()
s = c.stop()
print(s.accepted, s.rejected, s.held_files, s.pending_files, s.stored, flush=True)
"""
    store_dir = tmp_path / "store"
    p = subprocess.Popen([sys.executable, "-c", code, str(store_dir)], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                         text=True)
    try:
        url = f"http://127.0.0.1:{p.stdout.readline().strip()}"
        assert post(url, "/v1/logs", b"\x07junk", {"Content-Type": PROTO})[0] == 400  # checked all the same
        assert export_logs(url, genai_logs(4, "held"), per_request=2) == [LogRecordExportResult.SUCCESS] * 2
        status, _, answer = post(url, "/v1/logs", json.dumps(LOGS_JSON).encode(), {"Content-Type": "application/json"})
        assert (status, answer) == (200, b"{}")
        # held requests have their own bucket under the limits: a fourth is refused, traces are not held up
        status, headers, _ = post(url, "/v1/logs", json.dumps(LOGS_JSON).encode(),
                                  {"Content-Type": "application/json"})
        assert status == 429 and headers["Retry-After"] == "1"
        assert post(url, "/v1/traces", proto_body(1, "beside logs"), {"Content-Type": PROTO})[0] == 200
        out, _ = p.communicate("\n", timeout=60)
    finally:
        p.kill()
    assert out.split() == ["4", "1", "3", "0", "1"]  # accepted, rejected, held, pending, stored
    store = open_store(store_dir)
    held = logs_in_spool(store)
    assert [p.name.split(".", 1)[1] for p in held] == ["logs.binpb", "logs.binpb", "logs.json"]
    bodies = [lr.body.kvlist_value.values[0].value.string_value for p in held[:2]
              for rl in ExportLogsServiceRequest.FromString(p.read_bytes()).resource_logs
              for sl in rl.scope_logs for lr in sl.log_records]
    assert bodies == [f"held message {i}" for i in range(4)]  # exactly what the exporter sent
    assert json.loads(held[2].read_bytes()) == LOGS_JSON
    assert [r["source_locator"].split(".", 1)[1] for r in quarantine(store).to_dicts()] == ["logs.rejected"]
    # this tracelens has the importer: the next start commits them
    again = Collector(store, CollectConfig(port=0, commit_interval=0.05, enrich=False))
    again.start()
    stats = again.stop()
    assert (stats.recovered_files, stats.held_files, stats.pending_files) == (3, 0, 0)
    assert not logs_in_spool(store)
    text = store_strings(store)
    assert all(f"held message {i}" in text for i in range(4)) and "json log message" in text


def store_strings(store: Store) -> str:
    """Every string value of every table the store holds (the spool aside)."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    out = []
    for f in store.root.rglob("*.parquet"):
        if "spool" in f.relative_to(store.root).parts:
            continue
        for col in pq.read_table(f).columns:
            if pa.types.is_string(col.type) or pa.types.is_large_string(col.type):
                out.extend(v for v in col.to_pylist() if v)
    return "\n".join(out)


def test_sdk_log_records_reach_the_store(receiver):
    c, url, store = receiver()
    assert export_logs(url, genai_logs(3, "stored")) == [LogRecordExportResult.SUCCESS] * 3
    stats = c.stop()
    assert (stats.accepted, stats.held_files, stats.pending_files) == (3, 0, 0) and not logs_in_spool(store)
    text = store_strings(store)
    assert all(f"stored message {i}" in text for i in range(3))


# ---------------------------------------------------------------- the CLI, killed and stopped


def start_cli(store, *args: str) -> tuple[subprocess.Popen, str]:
    p = subprocess.Popen([sys.executable, "-m", "tracelens.cli.main", "collect", "--port", "0", "--store", str(store),
                          "--quiet", *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    lines: queue.Queue = queue.Queue()
    threading.Thread(target=lambda: lines.put(p.stderr.readline()), daemon=True).start()
    try:
        line = lines.get(timeout=60)
    except queue.Empty:
        line = "(nothing within 60 s)"
    m = re.search(r"listening on (http://127\.0\.0\.1:\d+)", line)
    if not m:
        p.kill()
        raise AssertionError(f"no listening line: {line!r} {p.communicate(timeout=30)[1]!r}")
    return p, m.group(1)


def test_sigkill_mid_stream_loses_nothing_acknowledged_and_sigterm_commits_the_rest(tmp_path):
    store_dir = tmp_path / "store"
    token = tmp_path / "token"
    token.write_text("from-a-file\n")
    p, url = start_cli(store_dir, "--commit-interval", "3600")  # acknowledged, not committed before the kill
    spans = genai_spans(200, "kill")
    acked: list = []
    killed = threading.Event()

    def stream():  # an application exporting 2 spans a request until its receiver dies
        exp = OTLPSpanExporter(endpoint=f"{url}/v1/traces", timeout=2)
        for i in range(0, len(spans), 2):
            if killed.is_set() or exp.export(spans[i:i + 2]) != SpanExportResult.SUCCESS:
                break
            acked.extend(spans[i:i + 2])
        exp.shutdown()

    sender = threading.Thread(target=stream, daemon=True)
    try:
        sender.start()
        deadline = time.monotonic() + 30
        while len(acked) < 20 and sender.is_alive() and time.monotonic() < deadline:
            time.sleep(0.005)
    finally:
        p.send_signal(signal.SIGKILL)  # mid-stream: the exporter is still sending
        killed.set()
        p.communicate(timeout=30)
    sender.join(30)
    assert 20 <= len(acked) < len(spans)
    files = spooled(store_dir)
    assert len(files) >= len(acked) // 2  # one more when the kill came between the fsync and the answer
    assert not (store_dir / "traces").exists() or rows(open_store(store_dir)).height == 0

    p, url = start_cli(store_dir, "--commit-interval", "3600", "--json", "--token-file", str(token), "--redact",
                       "emails")
    try:
        more = genai_spans(3, "mail bob@example.com:")
        assert export(url, more[:1]) == [SpanExportResult.FAILURE]  # 401: no token
        assert post(url, "/v1/traces", proto_body(), {"Content-Type": PROTO,
                                                      "Authorization": "Bearer from-a-fil"})[0] == 401
        assert export(url, more, per_request=3, headers={"Authorization": "Bearer from-a-file"}) == [
            SpanExportResult.SUCCESS]
    finally:
        p.send_signal(signal.SIGTERM)
        out, err = p.communicate(timeout=60)
    assert p.returncode == 0, err
    summary = json.loads(out)
    assert (summary["recovered_files"], summary["unauthorized"], summary["accepted"]) == (len(files), 2, 1)
    assert (summary["stored"], summary["pending_files"]) == (2 * len(files) + 3, 0)
    df = rows(open_store(store_dir))
    assert df.height == 2 * len(files) + 3 and df["trace_id"].n_unique() == df.height
    ids = set(df["trace_id"].to_list())
    for s in acked + more:  # every span the exporter got a 2xx for
        assert f"otel:{s.context.trace_id:032x}:{s.context.span_id:016x}" in ids
    assert "stopped;" in err and f"{df.height} stored" in err
    mailed = [t for t in df["prompt_text"].to_list() if t.startswith("mail ")]
    assert len(mailed) == 3 and not any("bob@example.com" in t for t in mailed)  # --redact applies as in ingest
    assert not spooled(store_dir)


def test_token_comes_from_env_or_file_never_the_command_line(tmp_path):
    env = {**os.environ, "COLLECT_TOKEN": ""}
    r = subprocess.run([sys.executable, "-m", "tracelens.cli.main", "collect", "--port", "0", "--store",
                        str(tmp_path / "s"), "--token-env", "COLLECT_TOKEN"], capture_output=True, text=True, env=env,
                       timeout=60)
    assert r.returncode == 2 and "COLLECT_TOKEN is not set or empty" in r.stderr
    assert not (tmp_path / "s").exists()
    r = subprocess.run([sys.executable, "-m", "tracelens.cli.main", "collect", "--token", "x"], capture_output=True,
                       text=True, timeout=60)
    assert r.returncode == 2 and "No such option" in r.stderr
    r = subprocess.run([sys.executable, "-m", "tracelens.cli.main", "collect", "--store", str(tmp_path / "s"),
                        "--redact", "shoe-sizes"], capture_output=True, text=True, timeout=60)
    assert r.returncode == 2 and "shoe-sizes" in r.stderr and not (tmp_path / "s").exists()


def test_event_mode_app_spans_and_log_events_join_into_one_trace(receiver):
    """An app in event mode: content-free spans to /v1/traces, its prompts and answers as log events to /v1/logs."""
    spans_mem, logs_mem = InMemorySpanExporter(), InMemoryLogRecordExporter()
    tp = TracerProvider(resource=Resource.create({"service.name": "checkout-assistant"}))
    tp.add_span_processor(SimpleSpanProcessor(spans_mem))
    lp = LoggerProvider(resource=Resource.create({"service.name": "checkout-assistant"}))
    lp.add_log_record_processor(SimpleLogRecordProcessor(logs_mem))
    tracer, logger = tp.get_tracer("events.app"), lp.get_logger("events.app")
    for i in range(2):
        with tracer.start_as_current_span("chat gpt-4o-mini") as s:
            s.set_attribute("gen_ai.operation.name", "chat")
            s.set_attribute("gen_ai.system", "openai")
            s.set_attribute("gen_ai.request.model", "gpt-4o-mini")
            s.set_attribute("gen_ai.response.model", "gpt-4o-mini-2024-07-18")
            logger.emit(event_name="gen_ai.user.message", attributes={"gen_ai.system": "openai"},
                        body={"content": f"where is parcel {i}?"})
            logger.emit(event_name="gen_ai.choice", attributes={"gen_ai.system": "openai"},
                        body={"index": 0, "finish_reason": "stop",
                              "message": {"role": "assistant", "content": f"parcel {i} ships today"}})
    tp.shutdown()
    lp.shutdown()
    c, url, store = receiver()
    assert export_logs(url, list(logs_mem.get_finished_logs()), per_request=4) == [LogRecordExportResult.SUCCESS]
    assert export(url, list(spans_mem.get_finished_spans()), per_request=2) == [SpanExportResult.SUCCESS]
    c.stop()  # logs first, spans after: joined whichever arrives first
    got = sorted((r["prompt_text"], r["response_text"]) for r in rows(store).to_dicts())
    assert got == [("where is parcel 0?", "parcel 0 ships today"), ("where is parcel 1?", "parcel 1 ships today")]
