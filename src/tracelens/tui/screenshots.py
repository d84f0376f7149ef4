"""Replay the complaint walk-through of docs/tui.md and save one SVG screenshot per step.

    python -m tracelens.tui.screenshots --store STORE --out docs/img

It drives the real app headlessly (Textual's Pilot) on the store ``make demo``
builds (``.demo/store``: the bundled sample logs, with the weekly analysis
run): find user 4411 around 3pm
"yesterday", open the refused trace, look at the system-prompt history and
related traces, plan a replay, run it against the local fake Messages API
(``tracelens.testing.fake_anthropic``, scripted replies: no network, no key),
and open this week's findings. The clock is fixed (``--now``) so the time
expressions resolve as in the document. Waits on the app's workers; never sleeps.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import sys
from pathlib import Path

SIZE = (120, 40)
DEFAULT_NOW = "2026-11-22T10:00:00+00:00"
COMPLAINT_USER = "4411"
COMPLAINT_TIME = "yesterday 3pm"

# Scripted replies of the fake API for the replay step: the refusal mostly reproduces, in other words.
REPLIES = (
    "I'm sorry, but I can't help with refunds on this account here. Anything involving payment details has to go "
    "through our account team at security@fernbrook.example.",
    "I'm sorry, I can't help with refund questions in this chat. Please contact our account team at "
    "security@fernbrook.example and they will look into it.",
    "I'm sorry, but I can't help with refunds on this account. Please reach out to the account team at "
    "security@fernbrook.example.",
    "Thanks for your patience! Refunds go back to the original payment method 5-10 business days after we receive "
    "the return. Could you share the order number so I can check its status with get_refund_status?",
    "I'm sorry, but I can't help with refunds here. The account team (security@fernbrook.example) can help you.",
)


async def settle(pilot) -> None:
    """Wait until no worker runs and their messages are handled."""
    app = pilot.app
    for _ in range(200):
        await app.workers.wait_for_complete()
        await pilot.pause()
        if not any(w.is_running for w in app.workers):
            break
    await pilot.pause()


async def walk(store_path: str, out: Path, now: dt.datetime, with_replay: bool = True,
               week: str | None = "2026-W47", user: str = COMPLAINT_USER, when: str = COMPLAINT_TIME) -> list[Path]:
    """Drive the app through the documented walk-through and write one SVG per step; returns the files."""
    from tracelens.testing.fake_anthropic import DEFAULT_MODELS, FakeAnthropicServer, Reply
    from tracelens.tui.app import TuiConfig, make_app

    out.mkdir(parents=True, exist_ok=True)
    written: list[Path] = []

    def shot(app, name: str) -> None:
        p = out / f"tui-{name}.svg"
        p.write_text(app.export_screenshot(title=f"tracelens tui — {name.replace('-', ' ')}"), encoding="utf-8")
        written.append(p)
        print(p, file=sys.stderr)

    server = FakeAnthropicServer(port=47123, models=(*DEFAULT_MODELS, "claude-sonnet-4-5-20261112"))
    for text in REPLIES:
        server.enqueue(Reply.message(text))
    with server:
        config = TuiConfig(now=lambda: now, cursor_blink=False, show_timings=False, subtitle="demo store",
                           export_dir=out / ".exports", replay_base_url=server.base_url,
                           replay_env={"ANTHROPIC_API_KEY": "fake-key-for-screenshots"}, save_replays=False,
                           replay_concurrency=1,  # scripted replies then arrive in script order
                           week=week)
        app = make_app(store_path, config)
        async with app.run_test(size=SIZE) as pilot:
            await settle(pilot)
            shot(app, "1-find")
            screen = app.screen
            screen.query_one("#f-user").value = user
            screen.query_one("#f-time").value = when
            screen.query_one("#f-time").focus()
            await pilot.press("enter")
            await settle(pilot)
            shot(app, "2-find-complaint")
            table = screen.query_one("#results")
            refused = [i for i, r in enumerate(table.traces) if r.get("refusal") in ("partial", "full")]
            if not refused:
                raise SystemExit(f"no refused trace of user {user} around {when!r} in {store_path}")
            table.move_cursor(row=refused[0])
            await pilot.press("enter")
            await settle(pilot)
            shot(app, "3-trace")
            await pilot.press("d")
            await settle(pilot)
            shot(app, "4-prompt-history")
            await pilot.press("s")
            await settle(pilot)
            shot(app, "5-related")
            if with_replay:
                await pilot.press("r")
                await settle(pilot)
                shot(app, "6-replay-plan")
                await pilot.press("enter")  # in N: re-plan and focus Send
                await settle(pilot)
                await pilot.press("enter")  # Send
                await settle(pilot)
                shot(app, "7-replay-result")
                await pilot.press("escape")
                await settle(pilot)
            await pilot.press("escape")
            await settle(pilot)
            await pilot.press("w")
            await settle(pilot)
            shot(app, "8-this-week")
            await pilot.press("question_mark")
            await settle(pilot)
            shot(app, "9-help")
    return written


def main(argv: list[str] | None = None) -> int:
    """Command line: write the documentation screenshots of a store."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--store", required=True, help="the store make demo builds (.demo/store)")
    ap.add_argument("--out", default="docs/img", help="directory for the SVG files (default: %(default)s)")
    ap.add_argument("--now", default=DEFAULT_NOW, help="the clock 'yesterday' is relative to (default: %(default)s)")
    ap.add_argument("--no-replay", action="store_true", help="skip the replay steps")
    ap.add_argument("--week", default="2026-W47", help="week of the This-week step (default: %(default)s)")
    args = ap.parse_args(argv)
    now = dt.datetime.fromisoformat(args.now)
    asyncio.run(walk(args.store, Path(args.out), now, with_replay=not args.no_replay, week=args.week))
    return 0


if __name__ == "__main__":
    sys.exit(main())
