"""Where a TUI trace-id lookup's time goes, from the keypress to the painted answer.

    python benchmarks/tui_lookup_split.py                # the 1,000,000-trace store benchmarks/tui.py cached
    python benchmarks/tui_lookup_split.py --store PATH --lookups 20

Drives the real app headlessly (Pilot) like ``benchmarks/tui.py``: for each
of ``--lookups`` ids spread over the store, focus the trace field, press
enter, wait for the painted answer, then list everything again (so each
lookup replaces a full table). Reports the median and best time from the
keypress to: the search submitted, the worker started, the query done (the
answer posted), the answer handled on the main thread, the frame with the
answer written; and the main thread's CPU time over that span
(``time.thread_time``), which a loaded machine stretches far less than wall
time. The marks come from wrapping the app's own methods; nothing else is
changed.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))

import tui as bench  # noqa: E402 - the benchmark's store and Pilot helpers

from tracelens.store import Store  # noqa: E402

MARKS = ("submitted", "worker started", "query done", "answer handled", "painted", "main-thread CPU")


def instrument(marks: dict[str, float], cpu: dict[str, float]) -> None:
    """Wrap the find screen's steps so that each records the first time it is reached."""
    import tracelens.tui.screens.find as find

    screen = find.FindScreen

    def first(name: str) -> None:
        marks.setdefault(name, time.perf_counter())

    def wrap(owner, attr: str, name: str) -> None:
        real = getattr(owner, attr)

        def wrapped(*a, **kw):
            first(name)
            return real(*a, **kw)

        setattr(owner, attr, wrapped)

    wrap(screen, "run_search", "submitted")
    wrap(find, "find_results", "worker started")
    wrap(screen, "on_page_loaded", "answer handled")
    real_post = screen.post_message

    def post_message(self, message):
        if type(message).__name__ == "PageLoaded":
            first("query done")
        return real_post(self, message)

    screen.post_message = post_message
    real_painted = screen._painted

    def painted(self):
        cpu["painted"] = time.thread_time()
        return real_painted(self)

    screen._painted = painted


async def run(store: Store, lookups: int) -> list[dict[str, float]]:
    from tracelens.tui.app import TuiConfig, make_app

    marks: dict[str, float] = {}
    cpu: dict[str, float] = {}
    instrument(marks, cpu)
    n = store.count()
    app = make_app(store, TuiConfig(now=lambda: bench.NOW, cursor_blink=False, export_dir=Path(tempfile.mkdtemp())))
    rows = []
    async with app.run_test(size=(160, 50)) as pilot:
        await bench._until(pilot, lambda: getattr(app.screen, "painted_at", 0) > 0)
        await bench._settle(pilot)
        step = max(1, n // (lookups + 2))
        ids = store.scan().select("trace_id").gather_every(step).collect()["trace_id"].to_list()[1:lookups + 1]
        screen = app.screen
        box = screen.query_one("#f-trace_id")
        for tid in ids:
            box.value = tid
            box.focus()
            await pilot.pause(0.1)  # the user types the id: the footer has followed the focus
            await bench._settle(pilot)
            marks.clear()
            t0, c0 = time.perf_counter(), time.thread_time()
            await pilot.press("enter")
            await bench._until(pilot, lambda t0=t0: screen.painted_at > t0)
            marks["painted"] = screen.painted_at
            row = {k: v - t0 for k, v in marks.items()}
            row["main-thread CPU"] = cpu["painted"] - c0
            rows.append(row)
            await bench._settle(pilot)
            assert [r["trace_id"] for r in screen.query_one("#results").traces] == [tid], "lookup failed"
            box.value = ""
            box.focus()
            await pilot.pause()
            await pilot.press("enter")
            await bench._settle(pilot)
    return rows


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--store", default=os.path.join(tempfile.gettempdir(), "tracelens-bench", "store-1000000"))
    ap.add_argument("--lookups", type=int, default=10)
    args = ap.parse_args(argv)
    store = Store(Path(args.store))
    rows = asyncio.run(run(store, args.lookups))
    print(f"{len(rows)} lookups, {store.count():,} traces, load average {os.getloadavg()[0]:.1f}; "
          "ms from the keypress\n")
    print("| mark | median | best |\n|---|---:|---:|")
    for k in MARKS:
        values = [r[k] for r in rows if k in r]
        print(f"| {k} | {1000 * statistics.median(values):.1f} | {1000 * min(values):.1f} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
