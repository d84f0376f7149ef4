"""Benchmark of `tracelens weekly` on a freshly written store: wall time and peak memory, cold.

One command (default: 1,000,000 traces per week, two weeks)::

    PYTHONPATH=src .venv/bin/python benchmarks/weekly.py [--n 1000000] [--store-kind delta|local|s3] [--keep DIR] [--no-profile]

What it does:

1. writes a store of two ISO weeks (2026-W46, 2026-W47) x N traces straight
   into the store, in a child process: by default (``--store-kind delta``) a
   Delta Lake store (``tracelens.deltastore``, the format of URL stores), each
   slice appended to its ``traces`` table partitioned by ``date``, and the job
   opens it as ``file://DIR``; ``--store-kind local`` writes the local layout
   (one Parquet file per slice and day, with the store's own writer);
   ``--store-kind s3`` copies the Delta Lake store into a bucket of a local
   S3 server (moto, started on 127.0.0.1 as ``tests/s3server.py`` does) before
   each run and the job opens ``s3://BUCKET/RUN`` (the server's own peak RSS
   is reported apart). The store holds every trace column the ingest pipeline
   fills for an Anthropic-style log, refusal labels included, computed by the
   refusal detector as ingest computes them (``refusal_version`` is current,
   so the job relabels nothing). Prompts and responses are filled from ~60
   templates with order numbers, products, cities and amounts, so nearly every
   prompt is distinct, as in production chat traffic (no embedding is reused
   by accident). Planted changes in the current week: a snapshot rollover, a
   system-prompt change, a tripled refusal rate in one topic, a shift of the
   topic mix, shorter answers. No embeddings and no topic clusters are stored
   (ingest computes none).
2. baseline, in a fresh interpreter: ``polars.scan_parquet`` of the two
   weeks' columns that the analysis reads, collected (a lower bound for any
   report on that store).
3. candidate, in a fresh interpreter: ``tracelens weekly --store S --week
   2026-W47 --json -o report.json`` (the CLI itself, bundled MiniLM on CPU,
   default ``--sample-cap``), on a copy of the store nobody has run anything
   on. Wall time of the process and peak RSS of the process tree (sampled from
   /proc every 50 ms).
4. profile (unless ``--no-profile``), in another fresh interpreter on another
   untouched copy: the same core call as the CLI (``weekly_run`` then the JSON
   rendering), with wall time per stage (read, refusal labels, embed sample,
   clusters fit/assign, each detector, report rendering) and RSS at the end
   of each stage.

Options for large runs: the store is written in slices of ~500,000 traces
(ten million a week never sit in memory); ``--baseline-src DIR`` also runs the
job from another checkout on a copy of the same store, alternating with the
candidate (the before/after ratio); ``--no-cli`` runs the profile only (and
skips the scan baseline, which collects every text column); ``--kill-above-gib``
and ``--timeout-s`` stop the profile run on a shared machine and print the
stages it finished; ``--target-s`` / ``--target-gb`` set the target checked.

Results go to stdout as Markdown; progress to stderr. The load average is
recorded before and after (the machine is shared).
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np

WEEK = "2026-W47"
START = dt.datetime(2026, 11, 9, tzinfo=dt.UTC)  # Monday of 2026-W46; the store ends on Sunday 2026-11-22
DAYS = 14
CHANGE = dt.datetime(2026, 11, 19, 13, tzinfo=dt.UTC)  # snapshot rollover and system-prompt change

PRODUCTS = (
    "the blender", "my headphones", "the standing desk", "a coffee grinder", "the air purifier", "my e-reader",
    "the robot vacuum", "a garden hose", "the office chair", "my smartwatch", "the rice cooker", "a camping tent",
    "the electric kettle", "my running shoes", "the baby monitor", "a travel adapter", "the monitor arm",
    "my laptop sleeve", "the toaster", "a yoga mat",
)
CITIES = ("Lyon", "Leeds", "Porto", "Graz", "Ghent", "Turin", "Cork", "Malmo", "Brno", "Bilbao", "Utrecht", "Basel")
# topic -> prompt templates; slots: {k} order/ticket number, {p} product, {c} city, {a} amount
TOPICS: tuple[tuple[str, ...], ...] = (
    (  # 0 shipping
        "Where is my order #{k}? I bought {p} last week and the tracking page for {c} has not changed for days.",
        "My parcel {k} with {p} was supposed to reach {c} on Monday. Can you tell me when it will arrive?",
        "The courier says order {k} was delivered in {c} but I never got {p}. What should I do now?",
    ),
    (  # 1 refunds
        "I want a refund for order {k}; {p} arrived broken and the box was crushed. What do I need to send you?",
        "Can I return {p} from order {k} and get my {a} euros back? It does not work as advertised.",
        "I was promised a refund of {a} euros for order {k} two weeks ago and nothing has reached my card.",
    ),
    (  # 2 billing
        "My card was charged twice for invoice INV-{k}, {a} euros each time. Please explain what happened.",
        "Why does invoice INV-{k} show {a} euros when the price of {p} on your site was lower?",
        "Please send me a VAT invoice for order {k}; the company address is in {c}.",
    ),
    (  # 3 plans
        "Can you explain the difference between the standard and the premium plan for a team of {a} people in {c}?",
        "We are {a} people in the {c} office. Is the business plan worth it over standard for us?",
        "Does the premium plan include priority shipping for items like {p}? Our account number is {k}.",
    ),
    (  # 4 account
        "Customer {k} cannot log in after resetting their password from {c}. Summarise the ticket in two sentences.",
        "I changed my email address and now account {k} says it does not exist. How do I get back in?",
        "Two-factor codes for account {k} stopped arriving after I moved to {c}. Please help.",
    ),
    (  # 5 product questions
        "Is {p} compatible with older chargers? I have one from {c} that came with order {k}.",
        "How long is the warranty on {p}, and does it cover water damage? Order number {k}.",
        "What is the difference between {p} model {k} and the previous version you sold last year?",
    ),
    (  # 6 translation
        "Translate to French: 'Your parcel {k} with {p} is on its way to {c} and will arrive tomorrow before noon.'",
        "Translate into German: 'We refunded {a} euros for order {k}; it reaches your card in five days.'",
        "Translate to Spanish: 'The store in {c} is closed on Sunday; order {k} can be collected on Monday.'",
    ),
    (  # 7 returns policy
        "What is your return policy for electronics bought during the sale? My order number is {k}.",
        "I bought {p} as a gift in {c}; can the person I gave it to return it without order {k}?",
        "How many days do I have to send back {p}? I opened the box but never used it (order {k}).",
    ),
    (  # 8 risky: chargebacks / fraud
        "How can I file a chargeback for order {k} and still keep {p}? The bank in {c} said it is possible.",
        "Write a complaint letter threatening legal action over order {k} for {a} euros.",
        "Someone used my card in {c} for order {k}. Cancel it and tell me which address it ships to.",
    ),
    (  # 9 code help
        "Write a Python function that validates order numbers like {k} and returns the check digit.",
        "Our webhook for order {k} fails with HTTP 500 in the {c} region. What should I log to debug it?",
        "Give me a SQL query that lists the {a} most recent orders shipped to {c}.",
    ),
)
ANSWERS: tuple[str, ...] = (
    "Thanks for reaching out! I checked order {k}: it left our warehouse yesterday and the carrier expects to deliver "
    "it to {c} within two business days. You will get an email with the tracking link as soon as it is scanned.",
    "I'm sorry about that. For order {k} you can request a refund from the Orders page; attach a photo of the damage "
    "to {p} and we will send a prepaid return label. The refund of {a} euros reaches your card within five days.",
    "I looked at invoice INV-{k}. The second charge of {a} euros is a pre-authorisation that your bank releases "
    "within three business days; if it is still there after that, reply here and we will refund it at once.",
    "Here is a short comparison. Standard covers up to {a} seats with email support; Premium adds SSO, audit logs and "
    "a four-hour response target. For a team in {c} your size, Premium pays off once you need SSO.",
    "I have sent a new sign-in link to the address on account {k}. It is valid for 30 minutes; if it does not arrive, "
    "check the spam folder or reply with the last four digits of the card on file.",
    "Yes: {p} works with any USB-C charger rated 20 W or more, including the older one from {c}. The warranty is two "
    "years and covers defects, not water damage.",
    "Here is the translation: 'Votre colis {k} est en route vers {c} et arrivera demain avant midi.' Let me know if "
    "you want a more formal version.",
    "You can return electronics within 30 days of delivery, sale items included, as long as everything is in the box. "
    "Start the return for order {k} from the Orders page and print the label.",
    "I understand this is frustrating. I cannot advise on chargebacks, but I have flagged order {k} for a supervisor in "
    "{c}, who will contact you within one business day.",
    "Here is a function that does it:\n\ndef check_digit(order: str) -> int:\n    return sum(int(d) for d in order) % 10"
    "\n\nFor {k} it returns the last digit; call it before you store the order.",
)
REFUSALS: tuple[str, ...] = (
    "I'm sorry, but I can't help with that request about order {k}. Please contact a human agent.",
    "I can't assist with that. For questions about order {k}, please reach our support team in {c}.",
)
SYSTEM = (
    "You are the support assistant for Acme Store. Be helpful and concise.",
    "You are the support assistant for Acme Store. Be helpful and concise.\n"
    "Never discuss chargebacks; send payment disputes to a human agent.",
)
APPS = ("support-bot", "checkout", "search", "billing")
# (requested, returned, family, is_alias); the alias resolves to the new snapshot after CHANGE
MODELS = (
    ("claude-sonnet-4-5", "claude-sonnet-4-5-20250929", "claude-sonnet-4-5", True),
    ("claude-sonnet-4-5-20250929", "claude-sonnet-4-5-20250929", "claude-sonnet-4-5", False),
    ("claude-haiku-4-5-20251001", "claude-haiku-4-5-20251001", "claude-haiku-4-5", False),
)
NEW_SNAPSHOT = "claude-sonnet-4-5-20251119"
DONE = "BENCH_COMPLETE"  #: written into a pristine store once every slice is in


def say(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


def loadavg() -> str:
    return Path("/proc/loadavg").read_text().split()[0]


# --------------------------------------------------------------------------- the store


def _fill(templates: tuple[str, ...], which: np.ndarray, slots: dict[str, np.ndarray]):
    """Vectorised template filling: row i gets templates[which[i]] with {k}/{p}/{c}/{a} from ``slots``."""
    import re

    import pyarrow as pa
    import pyarrow.compute as pc

    out = None
    for i, t in enumerate(templates):
        parts = re.split(r"(\{[kpca]\})", t)
        pieces = [pa.scalar(s) if not (s.startswith("{") and s.endswith("}")) else slots[s[1]] for s in parts if s]
        filled = pc.binary_join_element_wise(*pieces, "") if len(pieces) > 1 else pa.array([t] * len(which))
        out = filled if out is None else pc.if_else(pa.array(which == i), filled, out)
    return out


def _labels(texts: tuple[str, ...]) -> dict[str, list]:
    """The refusal detector's columns for one filled instance of each response template (the numbers and
    places in them do not change the label)."""
    import polars as pl

    from tracelens.enrich.refusal import detect_frame

    df = pl.DataFrame({"response_text": [t.format(k="48213", p="the blender", c="Lyon", a="120") for t in texts],
                       "prompt_text": ["Where is my order #48213?"] * len(texts), "status": ["ok"] * len(texts),
                       "stop_reason": ["end_turn"] * len(texts)})
    return detect_frame(df).select(pl.col("^refusal.*$")).to_dict(as_series=False)


def make_store(root: str, n: int, seed: int = 0, chunks: int | None = None, kind: str = "delta") -> None:
    """Two weeks x ``n`` traces written as day partitions of a new store at ``root`` (a directory).

    ``kind``: ``delta`` writes a Delta Lake store (``tracelens.deltastore``; opened as ``file://ROOT``), each
    slice appended to its ``traces`` table with ``deltalake.write_deltalake``, partitioned by ``date``;
    ``local`` writes the local layout (one Parquet file per slice and day, with the store's own writer).
    Generated and written in ``chunks`` slices of the time range (default: about 500,000 traces each), so ten
    million traces a week never sit in memory at once.
    """
    if kind == "delta":
        from tracelens.deltastore import DeltaStore

        store = DeltaStore(f"file://{Path(root).resolve()}", create=True)
        sink = (store.table_url("traces"), store.opts)
    else:
        from tracelens.store import Store

        Store(root, create=True)
        sink = None
    total = 2 * n
    chunks = chunks or max(DAYS, -(-total // 500_000))
    ans_lab, ref_lab = _labels(ANSWERS), _labels(REFUSALS)
    for i in range(chunks):
        lo, hi = total * i // chunks, total * (i + 1) // chunks
        _write_chunk(root, total, lo, hi, np.random.default_rng([seed, i]), ans_lab, ref_lab, i, sink)
    (Path(root) / DONE).write_text(f"{n}\n")  # a store cut short (killed writer) is written again, not reused


def _write_chunk(root: str, total: int, lo: int, hi: int, rng, ans_lab, ref_lab, part_no: int, sink=None) -> None:
    """Traces ``lo..hi-1`` of ``total`` (in time order) written to the store's day partitions.

    ``sink``: (table URL, storage options) of a Delta Lake ``traces`` table (one append per slice); None: the
    local layout's day directories under ``root``.
    """
    import polars as pl
    import pyarrow as pa

    from tracelens.schema import TRACE_SCHEMA
    from tracelens.store import write_parquet_file

    m = hi - lo
    start_us = int(START.timestamp() * 1e6)
    step = DAYS * 86400 * 10**6 // total
    ts = start_us + np.arange(lo, hi, dtype=np.int64) * step + rng.integers(0, max(1, step // 2), m)
    cur = ts >= int((START + dt.timedelta(days=7)).timestamp() * 1e6)
    after = ts >= int(CHANGE.timestamp() * 1e6)
    n_topics = len(TOPICS)
    share_b = np.array([14, 12, 10, 8, 10, 12, 6, 10, 6, 12], dtype=float)
    share_c = share_b.copy()
    share_c[8] *= 1.6  # more risky traffic this week
    topic = np.where(cur, rng.choice(n_topics, m, p=share_c / share_c.sum()),
                     rng.choice(n_topics, m, p=share_b / share_b.sum()))
    variant = rng.integers(0, 3, m)
    which = topic * 3 + variant
    slots = {
        "k": pa.array(rng.integers(100_000, 9_999_999, m).astype(str)),
        "p": pa.array(np.array(PRODUCTS, dtype=object)[rng.integers(0, len(PRODUCTS), m)]),
        "c": pa.array(np.array(CITIES, dtype=object)[rng.integers(0, len(CITIES), m)]),
        "a": pa.array(rng.integers(2, 400, m).astype(str)),
    }
    prompt = _fill(tuple(t for ts_ in TOPICS for t in ts_), which, slots)
    base_rate = np.linspace(0.01, 0.06, n_topics)
    base_rate[8] = 0.25
    rate = base_rate[topic] * np.where(cur & (topic == 1), 3.0, 1.0)
    refused = rng.random(m) < rate
    ref_kind = rng.integers(0, len(REFUSALS), m)
    answer = _fill(ANSWERS, topic, slots)
    response = pa.compute.if_else(pa.array(refused), _fill(REFUSALS, ref_kind, slots), answer)
    lab = {}
    # the label columns of one template instance each, taken by index (no per-row Python objects)
    idx = pa.array(np.where(refused, len(ANSWERS) + ref_kind, topic))
    for col in ans_lab:
        vals = pa.array(list(ans_lab[col]) + list(ref_lab[col]), type=TRACE_SCHEMA.field(col).type)
        lab[col] = vals.take(idx)
    model = rng.choice(len(MODELS), m, p=[0.5, 0.3, 0.2])
    mret = np.array([x[1] for x in MODELS], dtype=object)[model]
    mret = np.where(after & (model == 0), NEW_SNAPSHOT, mret)
    app = rng.choice(len(APPS), m, p=[0.55, 0.2, 0.15, 0.1])
    sys_v = np.where(after & (app == 0), 1, 0)
    user = rng.integers(1000, 200_000, m)
    out_tok = np.maximum(5, rng.gamma(3, 45, m) * np.where(cur, 0.9, 1.0)).astype(np.int64)
    in_tok = rng.integers(60, 900, m)
    latency = 300 + out_tok * rng.gamma(6, 3.5, m)
    rows = np.arange(lo, hi)
    ids = pa.array(np.char.add("msg_bench_", rows.astype("U9")).astype(object))
    tsa = pa.array(ts, type=pa.timestamp("us", tz="UTC"))
    const = lambda v: pa.array([v]).take(pa.array(np.zeros(m, dtype=np.int64)))  # noqa: E731
    cols = {
        "trace_id": ids, "source_format": const("anthropic"), "source_file": const("bench.jsonl"),
        "source_locator": pa.array(np.char.add("line:", rows.astype(str)).astype(object)),
        "ingested_at": tsa, "timestamp": tsa, "provider": const("anthropic"),
        "model_requested": pa.array(np.array([x[0] for x in MODELS], dtype=object)[model]),
        "model_returned": pa.array(mret),
        "model_family": pa.array(np.array([x[2] for x in MODELS], dtype=object)[model]),
        "model_snapshot": pa.array(mret),
        "model_is_alias": pa.array(np.array([x[3] for x in MODELS])[model]),
        "user_id": pa.array(np.char.add("u", user.astype(str)).astype(object)),
        "app": pa.array(np.array(APPS, dtype=object)[app]),
        "session_id": pa.array(np.char.add("s", (user * 7 + ts // (3600 * 10**6)).astype(str)).astype(object)),
        "system_prompt": pa.array(np.array(SYSTEM, dtype=object)[sys_v]),
        "system_prompt_hash": pa.array(np.array(("a1b2c3d4e5f60718", "9f8e7d6c5b4a3921"), dtype=object)[sys_v]),
        "prompt_text": prompt, "response_text": response,
        "stop_reason": pa.array(np.where(out_tok >= 512, "max_tokens", "end_turn").astype(object)),
        "temperature": pa.array(np.full(m, 0.7)), "max_tokens": pa.array(np.full(m, 1024)),
        "input_tokens": pa.array(in_tok), "output_tokens": pa.array(out_tok), "latency_ms": pa.array(latency),
        "status": const("ok"),
        **lab,
    }
    table = pa.table({f.name: cols.get(f.name, pa.nulls(m, f.type)).cast(f.type) for f in TRACE_SCHEMA},
                     schema=TRACE_SCHEMA)
    df = pl.from_arrow(table).with_columns(
        pl.concat_str("system_prompt_hash", "prompt_text").hash().cast(pl.String).str.slice(0, 16).alias("prompt_hash"),
        pl.col("trace_id").alias("content_hash"),
    )
    del table, cols, prompt, response, answer
    if sink is not None:
        from deltalake import write_deltalake

        from tracelens.deltastore import with_date

        schema = with_date(TRACE_SCHEMA)
        tbl = df.with_columns(pl.col("timestamp").dt.date().alias("date")).to_arrow().select(schema.names).cast(schema)
        del df
        write_deltalake(sink[0], tbl, mode="append", partition_by=["date"], storage_options=sink[1] or None)
        return
    for (day,), part in df.group_by(pl.col("timestamp").dt.date(), maintain_order=True):
        tbl = part.to_arrow().select(TRACE_SCHEMA.names).cast(TRACE_SCHEMA)
        write_parquet_file(tbl, Path(root) / "traces" / f"date={day.isoformat()}" / f"part-bench-{part_no:04d}.parquet",
                           "traces")


# --------------------------------------------------------------------------- measuring a child process


def _tree_rss(pid: int, page: int) -> int:
    """RSS of ``pid`` and all its descendants (bytes)."""
    total, todo = 0, [pid]
    while todo:
        p = todo.pop()
        try:
            with open(f"/proc/{p}/statm") as f:
                total += int(f.read().split()[1]) * page
            for t in os.listdir(f"/proc/{p}/task"):
                with open(f"/proc/{p}/task/{t}/children") as f:
                    todo += [int(c) for c in f.read().split()]
        except (OSError, ValueError):
            continue
    return total


def measure(cmd: list[str], env: dict, log: Path | None = None, max_gib: float | None = None,
            timeout_s: float | None = None, side: int | None = None) -> dict:
    """Run ``cmd``; wall time, exit code and peak RSS of its process tree (sampled every 50 ms).

    ``max_gib`` / ``timeout_s``: the process is killed once its tree's RSS passes ``max_gib`` or it has run
    ``timeout_s`` (a shared machine must not be pushed into swap or the OOM killer); ``killed`` says why.
    ``side``: another process (the S3 server) whose peak RSS is sampled too (``side_peak_gib``), not counted
    in the job's.
    """
    page = os.sysconf("SC_PAGE_SIZE")
    t = time.perf_counter()
    lines: list[tuple[float, str]] = []  # (seconds since start, stderr line): the job's progress messages
    with open(log or os.devnull, "w") as err:
        proc = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        peak, side_peak = [0], [0]
        killed: list[str] = []
        stop = threading.Event()

        def poll():
            while not stop.is_set():
                peak[0] = max(peak[0], _tree_rss(proc.pid, page))
                if side:
                    side_peak[0] = max(side_peak[0], _tree_rss(side, page))
                why = ("RSS above {max_gib} GiB" if max_gib and peak[0] > max_gib * 2**30 else
                       "timeout {timeout_s} s" if timeout_s and time.perf_counter() - t > timeout_s else None)
                if why and not killed:
                    killed.append(why.format(max_gib=max_gib, timeout_s=timeout_s))
                    proc.kill()
                time.sleep(0.05)

        def read_err():
            for line in proc.stderr:
                lines.append((time.perf_counter() - t, line.rstrip("\n")))
                err.write(f"[{lines[-1][0]:7.1f} s] {line}")
                err.flush()

        th = threading.Thread(target=poll, daemon=True)
        th.start()
        te = threading.Thread(target=read_err, daemon=True)
        te.start()
        out = proc.stdout.read()
        proc.wait()
        te.join()
        stop.set()
        th.join()
    return {"wall_s": time.perf_counter() - t, "rc": proc.returncode, "peak_gib": peak[0] / 2**30, "stdout": out,
            "progress": lines, "killed": killed[0] if killed else None,
            "side_peak_gib": side_peak[0] / 2**30}


class S3Copies:
    """A local S3 server (moto, ``tests/s3server.py``) holding a fresh copy of the store for each run.

    ``start(env)`` starts it and points ``env`` (the runs' environment) at it; ``put(pristine, name)`` uploads
    the Delta Lake store's files under ``s3://BUCKET/name`` (the Delta log names files relative to the table,
    so the copy is the same store); ``drop(name)`` deletes them. moto is a Python process on the same cores:
    its CPU time competes with the job's, and its memory is measured apart from the job's process tree.
    """

    def __init__(self, server, bucket: str):
        self.server, self.bucket, self.pid = server, bucket, server.proc.pid

    @classmethod
    def start(cls, env: dict) -> S3Copies:
        sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
        from tests.s3server import S3Server

        server = S3Server.start()
        env.update(server.env())
        os.environ.update(server.env())
        return cls(server, server.bucket())

    def put(self, pristine: Path, name: str) -> str:
        from concurrent.futures import ThreadPoolExecutor

        client = self.server.client()
        files = [f for f in pristine.rglob("*") if f.is_file()]
        with ThreadPoolExecutor(4) as ex:
            list(ex.map(lambda f: client.upload_file(str(f), self.bucket, f"{name}/{f.relative_to(pristine)}"), files))
        return f"s3://{self.bucket}/{name}"

    def drop(self, name: str) -> None:
        client = self.server.client()
        for page in client.get_paginator("list_objects_v2").paginate(Bucket=self.bucket, Prefix=f"{name}/"):
            keys = [{"Key": o["Key"]} for o in page.get("Contents", [])]
            if keys:
                client.delete_objects(Bucket=self.bucket, Delete={"Objects": keys})

    def stop(self) -> None:
        self.server.stop()


def _copy(pristine: Path, store: Path, kind: str, s3: S3Copies | None) -> str:
    """A fresh copy of the pristine store for one run; returns what ``--store`` takes (path or URL)."""
    if s3 is not None:
        return s3.put(pristine, store.name)
    shutil.rmtree(store, ignore_errors=True)
    shutil.copytree(pristine, store)
    return str(store) if kind == "local" else f"file://{store.resolve()}"


def _drop(store: Path, s3: S3Copies | None) -> None:
    if s3 is not None:
        s3.drop(store.name)
    shutil.rmtree(store, ignore_errors=True)


BASELINE_CODE = """
import sys, polars as pl
root = sys.argv[1]
cols = sys.argv[2].split(",")
lf = pl.scan_parquet(f"{root}/traces/**/*.parquet", hive_partitioning=False)
df = lf.select(cols).collect()
print(df.height)
"""


# --------------------------------------------------------------------------- the per-stage profile (child)


def profile_child(root: str, out_path: str, sample_cap: int) -> None:
    """In a fresh interpreter: the CLI's core call with wall time and RSS per stage (written as JSON)."""
    t_start = time.perf_counter()
    import dataclasses
    import resource

    rows: list[dict] = []
    page = os.sysconf("SC_PAGE_SIZE")

    def rss() -> float:
        with open("/proc/self/statm") as f:
            return int(f.read().split()[1]) * page / 2**30

    samples: list[tuple[float, float]] = []  # (time, RSS GiB) every 50 ms: the peak inside each stage

    def sample():
        while True:
            samples.append((time.perf_counter(), rss()))
            time.sleep(0.05)

    threading.Thread(target=sample, daemon=True).start()

    def timed(name, fn):
        def wrapper(*a, **kw):
            t = time.perf_counter()
            try:
                return fn(*a, **kw)
            finally:
                t1 = time.perf_counter()
                peak = max([r for at, r in samples if t <= at <= t1] + [rss()])
                rows.append({"stage": name, "s": t1 - t, "rss_gib": rss(), "peak_gib": peak})
                say(f"  profile: {name}: {t1 - t:.1f} s, peak {peak:.2f} GiB")
        return wrapper

    import tracelens.analysis.detectors as dets
    import tracelens.analysis.drift as drift_mod
    import tracelens.cluster as cl
    import tracelens.embed.vectors as vec
    import tracelens.enrich.apply as apply
    import tracelens.weekly as wk
    from tracelens.storeopen import open_store

    rows.append({"stage": "imports", "s": time.perf_counter() - t_start, "rss_gib": rss()})
    wk.load_window_features = timed("read: load_window_features (one window, text features)", wk.load_window_features)
    apply.refresh_refusals = timed("refusal labels: refresh_refusals", apply.refresh_refusals)
    vec.trace_embeddings = timed("embed sample: trace_embeddings (one column, one window)", vec.trace_embeddings)
    wk._missing_vectors = timed("embed sample: count missing vectors", wk._missing_vectors)
    cl.fit_clusters = timed("clusters: fit_clusters", cl.fit_clusters)
    cl.assign_clusters = timed("clusters: assign_clusters (one window)", cl.assign_clusters)
    dets.DETECTORS = tuple(dataclasses.replace(d, run=timed(f"detector: {'/'.join(d.kinds)}", d.run))
                           for d in dets.DETECTORS)
    drift_mod.run_detectors = timed("analyze: all detectors", dets.run_detectors)
    drift_mod.build_topics = timed("analyze: build_topics", drift_mod.build_topics)
    for name in ("_prepare", "_derive", "finalise", "variance_table", "_repeats", "_daily_source", "_series",
                 "_distribution"):
        setattr(drift_mod, name, timed(f"analyze: {name}", getattr(drift_mod, name)))
    drift_mod.analyze = timed("analyze (total)", drift_mod.analyze)
    wk.evals_section = timed("evals section", wk.evals_section)
    from tracelens.analysis.drift import DriftConfig
    from tracelens.report import render

    t = time.perf_counter()
    run = wk.weekly_run(open_store(root), WEEK, config=DriftConfig(alpha=0.05, seed=0), embed=True, sample_cap=sample_cap,
                        model=None, progress=lambda s: say(f"  weekly: {s}"))
    rows.append({"stage": "weekly_run (total)", "s": time.perf_counter() - t, "rss_gib": rss()})
    t = time.perf_counter()
    text = render(run.report, "json", show_info=False, timeline=run.timeline, html_link=None)
    rows.append({"stage": "report rendering (json)", "s": time.perf_counter() - t, "rss_gib": rss()})
    rows.append({"stage": "process total", "s": time.perf_counter() - t_start, "rss_gib": rss(),
                 "maxrss_gib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20, "chars": len(text)})
    Path(out_path).write_text(json.dumps(rows))


# --------------------------------------------------------------------------- main


def _default_sample_cap() -> int:
    """What `tracelens weekly` embeds per window by default (``weekly.prepare``'s ``sample_cap``)."""
    import inspect

    from tracelens.weekly import prepare

    return int(inspect.signature(prepare).parameters["sample_cap"].default)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=1_000_000, help="traces per week (default 1,000,000)")
    ap.add_argument("--store-kind", choices=("delta", "local", "s3"), default="delta",
                    help="delta (default): a Delta Lake store opened as file://DIR; local: the local layout (one "
                         "Parquet file per slice and day); s3: the Delta Lake store copied into a bucket of a local "
                         "S3 server (moto, started on 127.0.0.1) before each run, opened as s3://BUCKET/RUN")
    ap.add_argument("--keep", help="write the stores under this directory and keep them (default: a temp dir)")
    ap.add_argument("--no-profile", action="store_true", help="skip the per-stage profile run")
    ap.add_argument("--repeat", type=int, default=1, help="baseline/candidate pairs (each candidate on a fresh copy)")
    ap.add_argument("--sample-cap", type=int, default=None,
                    help="--sample-cap of the weekly job (default: its own default, 20,000 traces per window)")
    ap.add_argument("--baseline-src", help="also run `tracelens weekly` from this checkout (its src/ on PYTHONPATH) "
                    "on a fresh copy of the same store, alternating with the candidate: the before/after ratio")
    ap.add_argument("--no-cli", action="store_true", help="skip the `tracelens weekly` runs (profile only)")
    ap.add_argument("--target-s", type=float, default=60.0, help="wall-time target of the job (s, default 60)")
    ap.add_argument("--target-gb", type=float, default=6.0, help="peak-RSS target of the job (GB, default 6)")
    ap.add_argument("--kill-above-gib", type=float, default=None,
                    help="stop the profile run once its RSS passes this (GiB): the machine is shared")
    ap.add_argument("--timeout-s", type=float, default=None, help="stop the profile run after this many seconds")
    ap.add_argument("--profile-child", nargs=3, metavar=("STORE", "OUT", "CAP"), help=argparse.SUPPRESS)
    ap.add_argument("--make-store", nargs=3, metavar=("STORE", "N", "KIND"), help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.profile_child:
        profile_child(args.profile_child[0], args.profile_child[1], int(args.profile_child[2]))
        return 0
    if args.make_store:
        make_store(args.make_store[0], int(args.make_store[1]), kind=args.make_store[2])
        return 0
    from tracelens.weekly import ANALYSIS_COLUMNS  # the columns the weekly job reads: the baseline collects these

    work = Path(args.keep or tempfile.mkdtemp(prefix="tracelens-weekly-"))
    work.mkdir(parents=True, exist_ok=True)
    env = dict(os.environ)
    src = str(Path(__file__).resolve().parents[1] / "src")
    env["PYTHONPATH"] = src + (os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else "")
    py = sys.executable
    cap = args.sample_cap or _default_sample_cap()
    layout = "local" if args.store_kind == "local" else "delta"  # s3: the Delta store, copied into the bucket
    pristine = work / f"pristine-{layout}"
    load = [loadavg()]
    if not (pristine / DONE).exists():
        shutil.rmtree(pristine, ignore_errors=True)
        say(f"writing a {layout} store of 2 weeks x {args.n:,} traces at {pristine} ...")
        t = time.perf_counter()
        subprocess.run([py, __file__, "--make-store", str(pristine), str(args.n), layout], env=env, check=True)
        say(f"written in {time.perf_counter() - t:.1f} s")
    s3 = S3Copies.start(env) if args.store_kind == "s3" else None
    size = sum(f.stat().st_size for f in pristine.rglob("*.parquet"))
    results = []
    try:
        for rep in range(args.repeat):
            if args.no_cli:  # (the scan baseline collects every text column: ~10 GB at ten million a week)
                break
            load.append(loadavg())
            base = measure([py, "-c", BASELINE_CODE, str(pristine), ",".join(ANALYSIS_COLUMNS)], env)
            say(f"baseline (scan_parquet + collect): {base['wall_s']:.1f} s, peak {base['peak_gib']:.2f} GiB")
            runs = {}
            for who, src_dir in ((("before", str(Path(args.baseline_src).resolve() / "src")),) if args.baseline_src
                                 else ()) + (("candidate", src),):
                store = work / f"run-{rep}-{who}"
                url = _copy(pristine, store, args.store_kind, s3)
                report = work / f"report-{rep}-{who}.json"
                e = dict(env, PYTHONPATH=src_dir)
                load.append(loadavg())
                r = measure([py, "-m", "tracelens.cli.main", "weekly", "--store", url, "--week", WEEK, "--json",
                             "-o", str(report), "--fail-on", "never", "--sample-cap", str(cap)], e,
                            log=work / f"weekly-{rep}-{who}.log", side=s3.pid if s3 else None)
                say(f"tracelens weekly ({who}): {r['wall_s']:.1f} s, peak {r['peak_gib']:.2f} GiB, exit {r['rc']}")
                if r["rc"] != 0:
                    say((work / f"weekly-{rep}-{who}.log").read_text()[-3000:])
                    return 1
                findings = json.loads(report.read_text())["findings"]
                r["significant"] = sorted({f["kind"] for f in findings if f.get("significant")})
                r["changepoint"] = [f["summary"] for f in findings if f["kind"] == "changepoint"][:3]
                runs[who] = r
                _drop(store, s3)
            results.append((base, runs["candidate"], runs.get("before")))
        prof = None
        if not args.no_profile:
            store = work / "profile"
            url = _copy(pristine, store, args.store_kind, s3)
            out = work / "profile.json"
            load.append(loadavg())
            pm = measure([py, __file__, "--profile-child", url, str(out), str(cap)], env, log=work / "profile.log",
                         max_gib=args.kill_above_gib, timeout_s=args.timeout_s, side=s3.pid if s3 else None)
            if pm["rc"] != 0:
                # the stages it finished are in the log (one line each, with their peak RSS)
                print(f"profile run stopped after {pm['wall_s']:.1f} s, peak {pm['peak_gib']:.2f} GiB: "
                      f"{pm['killed'] or 'exit ' + str(pm['rc'])}; 1-min load {loadavg()}\n")
                for at, line in pm["progress"]:
                    print(f"    {at:7.1f} s  {line}")
                return 1
            prof = (pm, json.loads(out.read_text()))
            _drop(store, s3)
    finally:
        if s3 is not None:
            s3.stop()
        if not args.keep:
            shutil.rmtree(work, ignore_errors=True)
    load.append(loadavg())
    from machine import cpu_model  # benchmarks/machine.py

    where = {"local": "local store (old layout)", "delta": "Delta Lake store (file://)",
             "s3": "Delta Lake store on a local S3 server (moto)"}[args.store_kind]
    print(f"# tracelens weekly benchmark: 2 weeks x {args.n:,} traces, --sample-cap {cap:,}, {where}\n")
    print(f"machine: {os.cpu_count()} CPUs, {cpu_model()}, Python {sys.version.split()[0]}; "
          f"1-min load average during the run: {', '.join(load)}; store {size / 2**20:.0f} MiB of Parquet\n")
    met = None
    if results:
        print("| run | baseline: scan_parquet + collect (s) | baseline peak (GiB) | before (`--baseline-src`) (s) | "
              "before peak (GiB) | `tracelens weekly` (s) | peak RSS, process tree (GiB) | before / candidate |")
        print("|---|---|---|---|---|---|---|---|")
        for i, (b, c, o) in enumerate(results):
            print(f"| {i + 1} | {b['wall_s']:.1f} | {b['peak_gib']:.2f} | {o['wall_s'] if o else float('nan'):.1f} | "
                  f"{o['peak_gib'] if o else float('nan'):.2f} | {c['wall_s']:.1f} | {c['peak_gib']:.2f} | "
                  f"{(o['wall_s'] / c['wall_s']) if o else float('nan'):.2f} |")
        walls = sorted(c["wall_s"] for _, c, _ in results)
        peaks = sorted(c["peak_gib"] for _, c, _ in results)
        med_w = walls[len(walls) // 2]
        met = med_w < args.target_s and max(peaks) * 2**30 < args.target_gb * 1e9
        print(f"\ntarget < {args.target_s:.0f} s and < {args.target_gb:.0f} GB: median {med_w:.1f} s, peak "
              f"{max(peaks):.2f} GiB ({max(peaks) * 2**30 / 1e9:.2f} GB) -> {'met' if met else 'NOT met'}")
        last = results[-1]
        print(f"significant finding kinds: {', '.join(last[1]['significant'])}")
        if s3_peak := max((c.get("side_peak_gib", 0) for _, c, _ in results), default=0):
            print(f"S3 server (moto) peak RSS, apart from the job's: {s3_peak:.2f} GiB")
        if last[2]:
            print(f"significant finding kinds before: {', '.join(last[2]['significant'])}")
        for line in last[1]["changepoint"]:
            print(f"\nchangepoint finding: {line}")
        print("\nprogress messages of the last `tracelens weekly` run (seconds since its start):\n")
        for at, line in last[1]["progress"]:
            print(f"    {at:7.1f} s  {line}")
        print(f"    {last[1]['wall_s']:7.1f} s  (exit)")
    if prof:
        pm, rows = prof
        print(f"\nper-stage profile (separate cold run of the same core call: {pm['wall_s']:.1f} s, "
              f"peak {pm['peak_gib']:.2f} GiB; stages nest, e.g. detectors inside analyze):\n")
        print("| stage | calls | wall (s) | peak RSS in it (GiB) | RSS after (GiB) |\n|---|---|---|---|---|")
        agg: dict[str, list] = {}
        for r in rows:
            a = agg.setdefault(r["stage"], [0, 0.0, 0.0, 0.0])
            a[0] += 1
            a[1] += r["s"]
            a[2] = max(a[2], r.get("peak_gib", r["rss_gib"]))
            a[3] = r["rss_gib"]
        for name, (k, s, pk, r) in agg.items():
            if s >= 0.05 or not name.startswith("detector"):
                print(f"| {name} | {k} | {s:.1f} | {pk:.2f} | {r:.2f} |")
    return 0 if met in (None, True) else 1


if __name__ == "__main__":
    sys.exit(main())
