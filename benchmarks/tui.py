"""Benchmark the TUI on a large store: startup, lookups, searches, memory.

    python benchmarks/tui.py                 # 1,000,000 traces (store built once, cached)
    python benchmarks/tui.py --n 100000      # quick run
    python benchmarks/tui.py --store PATH    # use an existing store instead
    python benchmarks/tui.py --random-ids    # ids in no order, as providers' are (statistics cannot prune)

The "on screen" times end when the frame holding the new rows has been
written (``TraceTable.when_painted``), not when a callback scheduled after
the update runs (that can come before the table is drawn).

The store is generated directly as Parquet partitions from vectorised
template columns (seconds for a million rows), not through the ingest
pipeline, and cached under ``--cache`` keyed by N. Every measurement drives
the real app headlessly through Textual's Pilot and waits on its workers;
the times are wall clock around the user-visible step.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import polars as pl
import pyarrow as pa

from tracelens.schema import TRACE_SCHEMA
from tracelens.store import Store, write_parquet_file

END = dt.datetime(2026, 11, 23, tzinfo=dt.UTC)  # stores end on Sunday 2026-11-22
DAYS = 28
APPS = ("support-bot", "checkout", "search", "billing")
MODELS = (
    ("claude-sonnet-4-5-20250929", "claude-sonnet-4-5-20250929", False),
    ("claude-sonnet-4-5", "claude-sonnet-4-5-20250929", True),
    ("claude-haiku-4-5-20251001", "claude-haiku-4-5-20251001", False),
)
TOPICS = (
    "Where is my order #{k}? It was supposed to arrive on Monday and the tracking page has not changed for days.",
    "I want a refund for order {k}; the blender arrived broken and the box was crushed. What do I need to send you?",
    "Can you explain the difference between the standard and the premium plan for a team of {k} people?",
    "My card was charged twice for invoice INV-{k}. Please help me understand what happened and fix it.",
    "Summarise this support ticket in two sentences: customer {k} cannot log in after resetting their password.",
    "Write a friendly reply to a customer who asks whether product {k} is compatible with older chargers.",
    "Translate to French: 'Your parcel {k} is on its way and will be delivered tomorrow before noon.'",
    "What is your return policy for electronics bought during the sale? My order number is {k}.",
)
ANSWERS = (
    "Thanks for reaching out! I checked order {k}: it left our warehouse yesterday and the carrier expects to deliver "
    "it within two business days. You will get an email with the tracking link as soon as it is scanned.",
    "I'm sorry about that. For order {k} you can request a refund from the Orders page; attach a photo of the damage "
    "and we will send a prepaid return label. The refund reaches your card within five business days.",
    "Here is a short comparison. Standard covers up to {k} seats with email support; Premium adds SSO, audit logs and "
    "a four-hour response target. For most teams your size Premium pays off once you need SSO.",
)
REFUSAL = "I'm sorry, but I can't help with that request about order {k}. Please contact a human agent."


def _fmt(templates: tuple[str, ...], which: np.ndarray, k: np.ndarray) -> pa.Array:
    """Vectorised template filling: every row gets template[which] with {k} replaced by its number."""
    ks = pa.array(k.astype(str))
    out = None
    for i, t in enumerate(templates):
        pre, post = t.split("{k}")
        filled = pa.compute.binary_join_element_wise(pa.scalar(pre), ks, pa.scalar(post), "")
        mask = pa.array(which == i)
        out = filled if out is None else pa.compute.if_else(mask, filled, out)
    return out


def make_store(root: Path, n: int, seed: int = 7, random_ids: bool = False) -> Store:
    """A store of ``n`` synthetic traces over 28 days; user 4411 has a refund refusal on 2026-11-21 15:02 UTC.

    Ids follow time (and so file order) unless ``random_ids``: then every
    file's id range spans nearly the whole store, as with real provider ids,
    and Parquet min/max statistics prune nothing in a lookup by id.
    """
    import pyarrow.compute  # noqa: F401 - registers pa.compute

    Store(root, create=True)  # writes the store marker
    rng = np.random.default_rng(seed)
    start_us = int((END - dt.timedelta(days=DAYS)).timestamp() * 1e6)
    span_us = DAYS * 86400 * 10**6
    # unique, sorted timestamps: an even grid plus jitter smaller than the grid step
    step = span_us // n
    ts = start_us + np.arange(n, dtype=np.int64) * step + rng.integers(0, max(1, step // 2), n)
    topic = rng.integers(0, len(TOPICS), n)
    k = rng.integers(1000, 99999, n)
    answer = np.where(topic % 3 == 0, 0, np.where(topic % 3 == 1, 1, 2))
    refused = rng.random(n) < 0.03
    model = rng.choice(len(MODELS), n, p=[0.6, 0.3, 0.1])
    app = rng.integers(0, len(APPS), n)
    user = rng.integers(1000, 30000, n)
    # the planted complaint: user 4411, refund, refused, 2026-11-21 15:02 UTC
    planted_t = int(dt.datetime(2026, 11, 21, 15, 2, tzinfo=dt.UTC).timestamp() * 1e6)
    i0 = int(np.searchsorted(ts, planted_t))
    i0 = min(i0, n - 1)
    user[i0], topic[i0], refused[i0], app[i0] = 4411, 1, True, 0
    prompt = _fmt(TOPICS, topic, k)
    response = pa.compute.if_else(pa.array(refused), _fmt((REFUSAL,), np.zeros(n, int), k), _fmt(ANSWERS, answer, k))
    # the support-bot system prompt changed on 2026-11-20 09:00 UTC
    change = int(dt.datetime(2026, 11, 20, 9, tzinfo=dt.UTC).timestamp() * 1e6)
    sys_v = np.where(ts >= change, 1, 0)
    sys_texts = ("You are the support assistant for Acme Store. Be helpful and concise.",
                 "You are the support assistant for Acme Store. Be helpful and concise.\n"
                 "Never discuss refunds; send refund questions to a human agent.")
    system = pa.array(np.array(sys_texts, dtype=object)[sys_v])
    sys_hash = pa.array(np.array(("a1b2c3d4e5f60718", "9f8e7d6c5b4a3921"), dtype=object)[sys_v])
    numbers = rng.permutation(n) if random_ids else range(n)
    ids = pa.array([f"msg_bench_{i:09d}" for i in numbers])
    mreq = pa.array(np.array([m[0] for m in MODELS], dtype=object)[model])
    mret = pa.array(np.array([m[1] for m in MODELS], dtype=object)[model])
    alias = pa.array(np.array([m[2] for m in MODELS])[model])
    role = pa.array(["user"] * n)
    msg_struct = pa.StructArray.from_arrays(
        [role, prompt, pa.nulls(n, TRACE_SCHEMA.field("messages").type.value_type.field("tool_calls").type),
         pa.nulls(n, pa.string()), pa.nulls(n, pa.string())],
        fields=list(TRACE_SCHEMA.field("messages").type.value_type),
    )
    messages = pa.ListArray.from_arrays(pa.array(np.arange(n + 1, dtype=np.int32)), msg_struct)
    tsa = pa.array(ts, type=pa.timestamp("us", tz="UTC"))
    cols = {
        "trace_id": ids, "source_format": pa.array(["bench"] * n), "source_file": pa.array(["bench"] * n),
        "source_locator": pa.array(np.char.add("row:", np.arange(n).astype(str))), "ingested_at": tsa,
        "timestamp": tsa, "provider": pa.array(["anthropic"] * n), "model_requested": mreq, "model_returned": mret,
        "model_family": pa.array(np.array(["claude-sonnet-4-5", "claude-sonnet-4-5", "claude-haiku-4-5"],
                                          dtype=object)[model]),
        "model_is_alias": alias, "user_id": pa.array(user.astype(str)), "app": pa.array(np.array(APPS)[app]),
        "session_id": pa.array(np.char.add("s", (user * 7 + ts // (3600 * 10**6)).astype(str))),
        "system_prompt": system, "system_prompt_hash": sys_hash, "messages": messages, "prompt_text": prompt,
        "response_text": response, "stop_reason": pa.array(["end_turn"] * n), "max_tokens": pa.array(np.full(n, 512)),
        "input_tokens": pa.array(rng.integers(40, 400, n)), "output_tokens": pa.array(rng.integers(20, 300, n)),
        "latency_ms": pa.array(rng.gamma(4, 250, n)), "status": pa.array(["ok"] * n),
        "refusal": pa.array(np.where(refused, "full", "none")),
        "refusal_score": pa.array(np.where(refused, 0.94, 0.0)),
        "refusal_evidence": pa.array(np.where(refused, 'en.decline.unable_verb: "I can\'t help"', None)),
        "refusal_source": pa.array(np.where(refused, "text", None)),
        "content_hash": ids,
    }
    table = pa.table({f.name: cols.get(f.name, pa.nulls(n, f.type)).cast(f.type) for f in TRACE_SCHEMA},
                     schema=TRACE_SCHEMA)
    # prompt_hash only needs to be equal for equal prompts here
    df = pl.from_arrow(table).with_columns(
        pl.concat_str("system_prompt_hash", "prompt_text").hash().cast(pl.String).str.slice(0, 16).alias("prompt_hash")
    )
    for (day,), part in df.group_by(pl.col("timestamp").dt.date(), maintain_order=True):
        tbl = part.to_arrow().select(TRACE_SCHEMA.names).cast(TRACE_SCHEMA)
        write_parquet_file(tbl, root / "traces" / f"date={day.isoformat()}" / "part-bench.parquet", "traces")
    return Store(root)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=1_000_000)
    ap.add_argument("--store", help="use this existing store")
    ap.add_argument("--cache", default=os.path.join(tempfile.gettempdir(), "tracelens-bench"))
    ap.add_argument("--repeat", type=int, default=3, help="runs of every step; the median is reported")
    ap.add_argument("--random-ids", action="store_true", help="ids in no order (a store of its own in the cache)")
    args = ap.parse_args(argv)
    if args.store:
        root = Path(args.store)
    else:
        root = Path(args.cache) / f"store-{args.n}{'-random-ids' if args.random_ids else ''}"
        if not (root / "STORE.json").exists():
            import multiprocessing

            t0 = time.perf_counter()
            # in a child process, so that the memory measured below is the app's, not the generator's
            child = multiprocessing.get_context("spawn").Process(target=make_store, args=(root, args.n, 7, args.random_ids))
            child.start()
            child.join()
            if child.exitcode != 0:
                raise SystemExit(f"building the store failed (exit {child.exitcode})")
            print(f"built {args.n:,}-trace store in {time.perf_counter() - t0:.1f} s at {root}", file=sys.stderr)
    return asyncio.run(run(root, args.repeat))


NOW = dt.datetime(2026, 11, 22, 10, tzinfo=dt.UTC)
TARGETS = {
    "app ready, first page of results": 1.5,
    "trace-id lookup (to the results row)": 0.2,
    "trace-id prefix (no exact match)": None,
    "open that trace (conversation shown)": None,
    "its context (prompt history, same prompt)": None,
    "user + time window search": 1.0,
    "free text over one week": 2.0,
    "next page (scroll to the end)": None,
    "resident memory (MB)": 1024,
}


async def _settle(pilot) -> None:
    app = pilot.app
    for _ in range(200):
        await app.workers.wait_for_complete()
        await pilot.pause()
        if not any(w.is_running for w in app.workers):
            return


async def _until(pilot, cond) -> None:
    """Process messages until ``cond()`` holds (no sleeping: each pause handles what is queued)."""
    for _ in range(100_000):
        if cond():
            return
        await pilot.pause()
    raise TimeoutError("condition never held")


async def _search(pilot, **fields: str) -> float:
    screen = pilot.app.screen
    for name in ("user", "session", "trace_id", "time", "model", "app", "text", "like"):
        screen.query_one(f"#f-{name}").value = fields.get(name, "")
    box = screen.query_one("#f-" + next(iter(fields)))
    box.focus()
    # a user takes a while to type into the field: what focusing it sets off (the footer showing the field's
    # keys instead of the table's) is over before enter is pressed, not part of the answer's time
    await pilot.pause(0.1)
    await _settle(pilot)
    t0 = time.perf_counter()
    await pilot.press("enter")
    await _until(pilot, lambda: screen.painted_at > t0)
    took = screen.painted_at - t0  # keypress to the first page painted
    await _settle(pilot)
    return took, screen._seconds  # and the query itself, in its worker


async def one_pass(store: Store) -> dict[str, tuple[float, float | None, str]]:
    """Every step once, in one app session; returns {step: (seconds on screen, seconds of the query, note)}."""
    from tracelens.tui.app import TuiConfig, make_app

    n = store.count()
    results: dict[str, tuple[float, float | None, str]] = {}
    t0 = time.perf_counter()
    app = make_app(store, TuiConfig(now=lambda: NOW, cursor_blink=False, export_dir=Path(tempfile.mkdtemp())))
    async with app.run_test(size=(160, 50)) as pilot:
        await _until(pilot, lambda: getattr(app.screen, "painted_at", 0) > 0)
        table = app.screen.query_one("#results")
        results["app ready, first page of results"] = (app.screen.painted_at - t0, app.screen._seconds,
                                                       f"{len(table.traces)} rows")
        await _settle(pilot)  # includes the background import of the replay core
        # a trace from the middle of the store, far from the first page
        mid = store.scan().select("trace_id").slice(n // 2, 1).collect().item()
        secs, core = await _search(pilot, trace_id=mid)
        assert [r["trace_id"] for r in table.traces] == [mid], "lookup failed"
        results["trace-id lookup (to the results row)"] = (secs, core, "a trace from mid-store")
        # an id typed in part: no exact match, then a prefix search (Parquet statistics cannot prune that)
        secs, core = await _search(pilot, trace_id=mid[:-2])
        assert all(r["trace_id"].startswith(mid[:-2]) for r in table.traces) and table.traces, "prefix failed"
        results["trace-id prefix (no exact match)"] = (secs, core, f"{app.screen.total:,} matches")
        table.focus()
        await pilot.pause()
        t1 = time.perf_counter()
        await pilot.press("enter")
        await _until(pilot, lambda: getattr(app.screen, "painted_at", 0) > t1)
        results["open that trace (conversation shown)"] = (app.screen.painted_at - t1, None, "keypress to painted")
        await _until(pilot, lambda: app.screen.context is not None)
        await _settle(pilot)
        results["its context (prompt history, same prompt)"] = (time.perf_counter() - t1, None, "all panels filled")
        await pilot.press("escape")
        await _settle(pilot)
        secs, core = await _search(pilot, user="4411", time="2026-11-21 15:00 ±2h")
        results["user + time window search"] = (secs, core, f"{len(table.traces)} row(s)")
        secs, core = await _search(pilot, text="refund", time="2026-W47")
        results["free text over one week"] = (secs, core, f"{app.screen.total:,} matches")
        table.focus()
        await pilot.pause()
        t2 = time.perf_counter()
        before = len(table.traces)
        await pilot.press("ctrl+end")
        await _until(pilot, lambda: len(table.traces) > before)
        results["next page (scroll to the end)"] = (time.perf_counter() - t2, None,
                                                    f"{before} → {len(table.traces)} rows")
    return results


async def run(root: Path, repeat: int = 3) -> int:
    import statistics

    import psutil

    store = Store(root)
    n = store.count()
    runs = [await one_pass(store) for _ in range(repeat)]
    rss = psutil.Process().memory_info().rss / 2**20
    load = os.getloadavg()[0]
    print(f"TUI benchmark: {n:,} traces in {len(store.dates())} daily partitions; {os.cpu_count()} CPUs, "
          f"load average {load:.1f}; median of {repeat} runs (best in brackets)\n")
    print("Seconds from the keypress to the result painted on screen; 'query' is the part spent in the worker.\n")
    print(f"| {'step':42} | {'on screen':>17} | {'query':>7} | {'target':>9} | note |")
    print(f"|{'-' * 44}|{'-' * 19}|{'-' * 9}|{'-' * 11}|------|")
    ok = True
    for step in runs[0]:
        values = [r[step][0] for r in runs]
        cores = [r[step][1] for r in runs if r[step][1] is not None]
        value, best, note = statistics.median(values), min(values), runs[0][step][2]
        target = TARGETS.get(step)
        miss = target is not None and value >= target
        ok &= not miss
        shown = f"{value:.3f} s ({best:.3f})"
        core = f"{statistics.median(cores):.3f} s" if cores else "-"
        tshown = f"< {target} s" if target else "-"
        print(f"| {step:42} | {shown:>17} | {core:>7} | {tshown:>9} | {note}{'  MISSED' if miss else ''} |")
    target = TARGETS["resident memory (MB)"]
    print(f"| {'resident memory (MB)':42} | {rss:>14,.0f} MB | {'-':>7} | {'< ' + str(target) + ' MB':>9} | "
          f"the whole process after all runs{'  MISSED' if rss >= target else ''} |")
    return 0 if ok and rss < target else 1


if __name__ == "__main__":
    sys.exit(main())
