"""`tracelens collect` on loopback: spans/s and request latency, against `tracelens ingest` of the same spans.

    python benchmarks/collect.py [--n 20000] [--batch 100] [--clients 4] [--repeat 3] [--gzip] [--json]
                                 [--max-pending SIZE] [--commit-interval S]

Makes N GenAI chat spans with the OpenTelemetry SDK and encodes them as the
SDK's OTLP/HTTP exporter does (``ExportTraceServiceRequest`` protobuf,
``--batch`` spans a request, as a ``BatchSpanProcessor`` sends them). Then,
``--repeat`` times, in rotation (so load on a shared machine hits both
alike):

1. baseline: the same requests written to one ``.binpb`` file (length-prefixed,
   the Collector file exporter's framing) and read by ``tracelens ingest``
   (the real CLI, a fresh store; wall time of the whole command);
2. ``tracelens collect --port 0`` (the real CLI, a fresh store) receiving the
   requests from ``--clients`` concurrent keep-alive HTTP connections on
   127.0.0.1. Each request's latency is measured from its first send to its
   2xx (a 429/503 is retried after its Retry-After and counted, as the OTel
   exporter does). After the last 2xx the receiver gets SIGTERM, which
   commits what it holds; the end-to-end time runs from the first request to
   the receiver's exit, so every span is in the store when it stops. The
   receiver's start-up (interpreter, imports, loading the refusal detector,
   until it prints that it listens) is measured apart: a receiver runs for
   long, so it is paid once, while the baseline's wall time includes it.
   Both ratios are reported: end-to-end, and start-up plus end-to-end.

Both run the refusal detector (as users run them) and the store is checked
to hold every span afterwards. Reports the median over repeats of: ingest
spans/s; collect acknowledged spans/s (first send to last 2xx), end-to-end
spans/s and its ratio to ingest's spans/s in the same repeat (also with the
receiver's start-up counted); request latency
p50/p99; refused requests. The clients are pre-encoded bodies on plain
``http.client`` connections, so the client side costs little of the two
shared cores; the receiver is measured, not the SDK. ``--max-pending 2M``
(passed to ``collect``) makes the spool smaller than the load, to measure
backpressure: refused requests wait their Retry-After and count in latency.
"""

from __future__ import annotations

import argparse
import gzip
import http.client
import json
import os
import queue
import re
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from machine import cpu_model  # noqa: E402

PROTO = "application/x-protobuf"


def make_requests(n: int, batch: int) -> list[bytes]:
    """``n`` chat spans, made by the SDK, encoded ``batch`` to an ExportTraceServiceRequest."""
    from opentelemetry.exporter.otlp.proto.common.trace_encoder import encode_spans
    from opentelemetry.sdk.resources import Resource
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import SimpleSpanProcessor
    from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

    topics = ["refund", "order status", "password reset", "billing", "shipping", "warranty", "invoice", "discount"]
    mem = InMemorySpanExporter()
    tp = TracerProvider(resource=Resource.create({"service.name": "support-bot"}))
    tp.add_span_processor(SimpleSpanProcessor(mem))
    tracer = tp.get_tracer("bench.instrumentation")
    for i in range(n):
        topic = topics[i % len(topics)]
        with tracer.start_as_current_span("chat claude-sonnet-4-5") as s:
            s.set_attribute("gen_ai.operation.name", "chat")
            s.set_attribute("gen_ai.provider.name", "anthropic")
            s.set_attribute("gen_ai.request.model", "claude-sonnet-4-5")
            s.set_attribute("gen_ai.response.model", "claude-sonnet-4-5-20250929")
            s.set_attribute("gen_ai.usage.input_tokens", 200 + i % 300)
            s.set_attribute("gen_ai.usage.output_tokens", 50 + i % 200)
            s.set_attribute("user.id", f"user-{i % 5000}")
            s.set_attribute("gen_ai.input.messages", json.dumps([
                {"role": "system", "parts": [{"type": "text", "content": "You are a helpful support assistant."}]},
                {"role": "user", "parts": [{"type": "text", "content": f"Question {i} about my {topic}: what can "
                                            "I do, and how long will it take?"}]}]))
            s.set_attribute("gen_ai.output.messages", json.dumps([
                {"role": "assistant", "finish_reason": "stop", "parts": [{"type": "text", "content":
                 f"About your {topic} (case {i}): here is what you can do. " + "Step by step, in detail. " * 8}]}]))
    tp.shutdown()
    spans = list(mem.get_finished_spans())
    return [encode_spans(spans[i:i + batch]).SerializeToString() for i in range(0, len(spans), batch)]


def cli(*args: str) -> list[str]:
    return [sys.executable, "-m", "tracelens.cli.main", *args]


def stored(store: Path) -> int:
    from tracelens.store import Store

    return Store(store).scan().select("trace_id").collect().height


def run_ingest(requests: list[bytes], work: Path, n: int) -> dict:
    f = work / "spans.binpb"
    with f.open("wb") as fh:
        for body in requests:
            fh.write(len(body).to_bytes(4, "big") + body)
    store = work / "ingest-store"
    t0 = time.perf_counter()
    r = subprocess.run(cli("ingest", str(f), "--store", str(store), "--no-progress", "--json"), capture_output=True,
                       text=True)
    wall = time.perf_counter() - t0
    if r.returncode != 0:
        raise SystemExit(f"ingest failed: {r.stderr[-2000:]}")
    got = stored(store)
    assert got == n, f"ingest stored {got} of {n}"
    return {"wall_s": wall, "spans_per_s": n / wall, "bytes": f.stat().st_size}


def run_collect(requests: list[bytes], work: Path, n: int, clients: int, use_gzip: bool,
                extra: tuple[str, ...] = ()) -> dict:
    store = work / "collect-store"
    t_start = time.perf_counter()
    p = subprocess.Popen(cli("collect", "--port", "0", "--store", str(store), "--quiet", "--json", *extra),
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    line = p.stderr.readline()
    m = re.search(r"listening on http://(127\.0\.0\.1):(\d+)", line)
    if not m:
        p.kill()
        raise SystemExit(f"collect did not start: {line!r} {p.communicate()[1][-2000:]!r}")
    host, port = m.group(1), int(m.group(2))
    startup = time.perf_counter() - t_start
    bodies = [gzip.compress(b, 1) if use_gzip else b for b in requests]
    todo: queue.Queue = queue.Queue()
    for b in bodies:
        todo.put(b)
    latencies: list[float] = []
    refused = [0]
    lock = threading.Lock()
    errors: list[str] = []

    def client() -> None:
        conn = http.client.HTTPConnection(host, port, timeout=60)
        headers = {"Content-Type": PROTO, **({"Content-Encoding": "gzip"} if use_gzip else {})}
        while True:
            try:
                body = todo.get_nowait()
            except queue.Empty:
                break
            t = time.perf_counter()
            while True:
                try:
                    conn.request("POST", "/v1/traces", body=body, headers=headers)
                    r = conn.getresponse()
                    r.read()
                except (OSError, http.client.HTTPException):
                    conn.close()
                    conn = http.client.HTTPConnection(host, port, timeout=60)
                    continue
                if r.status == 200:
                    break
                if r.status in (429, 503):
                    with lock:
                        refused[0] += 1
                    conn.close()
                    conn = http.client.HTTPConnection(host, port, timeout=60)
                    time.sleep(float(r.getheader("Retry-After") or 1))
                    continue
                errors.append(f"HTTP {r.status}")
                return
            with lock:
                latencies.append(time.perf_counter() - t)
        conn.close()

    threads = [threading.Thread(target=client) for _ in range(clients)]
    t0 = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    acked = time.perf_counter() - t0
    p.send_signal(signal.SIGTERM)
    out, err = p.communicate(timeout=600)
    e2e = time.perf_counter() - t0
    if errors or p.returncode != 0:
        raise SystemExit(f"collect failed: {errors[:3]} rc={p.returncode} {err[-2000:]}")
    summary = json.loads(out)
    got = stored(store)
    assert got == n == summary["stored"], f"collect stored {got} ({summary['stored']}) of {n}"
    q = statistics.quantiles(latencies, n=100, method="inclusive")
    return {"startup_s": startup, "acked_s": acked, "e2e_s": e2e, "acked_spans_per_s": n / acked,
            "e2e_spans_per_s": n / e2e, "with_startup_spans_per_s": n / (startup + e2e),
            "p50_ms": q[49] * 1000, "p99_ms": q[98] * 1000, "max_ms": max(latencies) * 1000,
            "refused": refused[0], "commits": summary["commits"], "requests": len(bodies)}


def fs_type(path: Path) -> str:
    try:
        return subprocess.run(["stat", "-f", "-c", "%T", str(path)], capture_output=True, text=True).stdout.strip()
    except OSError:
        return "?"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--n", type=int, default=20_000, help="spans")
    ap.add_argument("--batch", type=int, default=100, help="spans per request")
    ap.add_argument("--clients", type=int, default=4, help="concurrent connections")
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--gzip", action="store_true", help="gzip the request bodies (Content-Encoding: gzip)")
    ap.add_argument("--workdir", default=None, help="where the stores go (its file system decides what fsync costs)")
    ap.add_argument("--max-pending", help="collect's --max-pending (default: its own, 256M)")
    ap.add_argument("--commit-interval", help="collect's --commit-interval (default: its own, 1 s)")
    ap.add_argument("--json", action="store_true")
    a = ap.parse_args()

    requests = make_requests(a.n, a.batch)
    mb = sum(len(b) for b in requests) / 1e6
    base = Path(tempfile.mkdtemp(prefix="tracelens-bench-collect-", dir=a.workdir))
    load0 = os.getloadavg()
    runs = []
    try:
        for i in range(a.repeat):
            work = base / f"r{i}"
            work.mkdir()
            ing = run_ingest(requests, work, a.n)
            extra = (("--max-pending", a.max_pending) if a.max_pending else ()) + (
                ("--commit-interval", a.commit_interval) if a.commit_interval else ())
            col = run_collect(requests, work, a.n, a.clients, a.gzip, extra)
            runs.append({"ingest": ing, "collect": col, "ratio": col["e2e_spans_per_s"] / ing["spans_per_s"],
                         "ratio_with_startup": col["with_startup_spans_per_s"] / ing["spans_per_s"]})
            shutil.rmtree(work)
            if not a.json:
                print(f"repeat {i + 1}: ingest {ing['spans_per_s']:,.0f} spans/s; collect acked "
                      f"{col['acked_spans_per_s']:,.0f}/s, end-to-end {col['e2e_spans_per_s']:,.0f}/s "
                      f"(x{runs[-1]['ratio']:.2f}; start-up {col['startup_s']:.1f} s, with it "
                      f"x{runs[-1]['ratio_with_startup']:.2f}), p50 {col['p50_ms']:.1f} ms, p99 {col['p99_ms']:.1f} ms, "
                      f"{col['refused']} refused", file=sys.stderr)
        fs = fs_type(base)
    finally:
        shutil.rmtree(base, ignore_errors=True)

    def med(get) -> float:
        return statistics.median(get(r) for r in runs)

    result = {
        "n": a.n, "batch": a.batch, "clients": a.clients, "gzip": a.gzip, "repeat": a.repeat,
        "max_pending": a.max_pending, "commit_interval": a.commit_interval,
        "requests": len(requests), "mb": round(mb, 1), "workdir_fs": fs,
        "machine": {"cpu": cpu_model(), "usable_cores": len(os.sched_getaffinity(0)),
                    "load_avg_at_start": [round(x, 2) for x in load0],
                    "load_avg_at_end": [round(x, 2) for x in os.getloadavg()]},
        "median": {
            "ingest_spans_per_s": med(lambda r: r["ingest"]["spans_per_s"]),
            "collect_acked_spans_per_s": med(lambda r: r["collect"]["acked_spans_per_s"]),
            "collect_e2e_spans_per_s": med(lambda r: r["collect"]["e2e_spans_per_s"]),
            "ratio_e2e_to_ingest": med(lambda r: r["ratio"]),
            "collect_startup_s": med(lambda r: r["collect"]["startup_s"]),
            "collect_with_startup_spans_per_s": med(lambda r: r["collect"]["with_startup_spans_per_s"]),
            "ratio_with_startup_to_ingest": med(lambda r: r["ratio_with_startup"]),
            "ingest_wall_s": med(lambda r: r["ingest"]["wall_s"]),
            "p50_ms": med(lambda r: r["collect"]["p50_ms"]),
            "p99_ms": med(lambda r: r["collect"]["p99_ms"]),
            "refused": med(lambda r: r["collect"]["refused"]),
        },
        "runs": runs,
    }
    if a.json:
        print(json.dumps(result, indent=2))
        return
    m = result["median"]
    print(f"{a.n:,} spans in {len(requests):,} requests of {a.batch} ({mb:.1f} MB protobuf"
          f"{', gzip' if a.gzip else ''}), {a.clients} connections, median of {a.repeat}, spool on {fs}"
          f"{f', --max-pending {a.max_pending}' if a.max_pending else ''}"
          f"{f', --commit-interval {a.commit_interval}' if a.commit_interval else ''}; "
          f"{result['machine']['cpu']}, {result['machine']['usable_cores']} cores, load "
          f"{load0[0]:.1f} -> {os.getloadavg()[0]:.1f}")
    print("| | spans/s | x ingest (median of per-repeat ratios) |")
    print("|---|---:|---:|")
    print(f"| baseline: `tracelens ingest` of the same requests from a .binpb file ({m['ingest_wall_s']:.1f} s) "
          f"| {m['ingest_spans_per_s']:,.0f} | 1.00 |")
    print(f"| `tracelens collect`: acknowledged (first request to last 2xx) | {m['collect_acked_spans_per_s']:,.0f} | "
          f"{statistics.median(r['collect']['acked_spans_per_s'] / r['ingest']['spans_per_s'] for r in runs):.2f} |")
    print(f"| `tracelens collect`: end-to-end (first request to all committed) | {m['collect_e2e_spans_per_s']:,.0f} "
          f"| {m['ratio_e2e_to_ingest']:.2f} |")
    print(f"| `tracelens collect`: its start-up ({m['collect_startup_s']:.1f} s) plus end-to-end | "
          f"{m['collect_with_startup_spans_per_s']:,.0f} | {m['ratio_with_startup_to_ingest']:.2f} |")
    print(f"request latency (send to 2xx): p50 {m['p50_ms']:.1f} ms, p99 {m['p99_ms']:.1f} ms; "
          f"{m['refused']:.0f} requests refused (429/503) and retried")


if __name__ == "__main__":
    main()
