"""`make demo`: the main job on the bundled sample logs, end to end.

1. ingest every file in ``sample_logs/`` (all supported formats plus six weeks
   of generated production traffic with planted variance sources);
2. the weekly drift summary for 2026-W47 against W46 (terminal, plus HTML
   and Markdown files under ``.demo/``), which embeds, clusters and labels
   whatever is missing first;
3. the complaint walk-through: find user 4411's refusal around 15:00 on
   2026-11-21 and replay it 5 times against its pinned snapshot;
4. task evals: 60 answered support-bot calls of W45 (refund and account
   questions) become a suite; it runs on their pinned snapshot, the upgrade
   verdict compares that with the new snapshot, an OpenAI-compatible model
   runs it too, and the eval report (HTML) ranks them;
5. a second complaint explained: the dossier for summarizer user ``agent-052``
   (``tracelens explain``), whose own pasted context grew while the model did
   not change.

Every step runs the real CLI in-process. The replay goes to the Anthropic API
when ``ANTHROPIC_API_KEY`` is set and ``--live`` is given; otherwise it goes
to the local fake Messages API server (``tracelens.testing.fake_anthropic``),
and says so: its answers are synthetic, so its verdict shows the mechanics,
not a finding about any real model. The eval runs always go to local fake
servers (Anthropic and OpenAI-compatible), scripted so that the new snapshot
refuses refund questions, and say so.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def banner(text: str) -> None:
    """Print ``text`` between two rules on stderr, as a step heading."""
    print(f"\n{'=' * 100}\n{text}\n{'=' * 100}", file=sys.stderr, flush=True)


def run(args: list[str], capture: bool = False) -> tuple[int, str]:
    """Run one tracelens command in-process; returns (exit code, stdout if captured)."""
    from click.testing import CliRunner

    from tracelens.cli.main import cli

    print(f"\n$ tracelens {' '.join(args)}", file=sys.stderr, flush=True)
    if capture:
        r = CliRunner().invoke(cli, args, catch_exceptions=False)
        return r.exit_code, r.stdout
    try:
        cli.main(args=args, prog_name="tracelens", standalone_mode=False)
        return 0, ""
    except SystemExit as e:
        return int(e.code or 0), ""


# The clock docs/tui.md's walk-through is pinned to: the Sunday morning after the complaint, so "yesterday 3pm"
# is the complaint's Saturday afternoon. The demo week is still running then (it ends that midnight), so the TUI
# is told the week too, or its This-week screen would show the last complete week instead of the one reported.
TUI_NOW = "2026-11-22 10:00"


def next_steps(store: Path, html: Path, md: Path, week: str = "2026-W47", evals: Path | None = None) -> str:
    """What the demo produced, how to explore it (docs/tui.md's walk-through) and the commands for your own logs."""
    return (
        f"  Reports: {html} (open in a browser), {md}" + (f", {evals} (the eval report)" if evals else "") + "\n"
        f"  Explore the demo store (docs/tui.md walks through it):\n"
        f"    .venv/bin/tracelens tui --store {store} --now \"{TUI_NOW}\" --week {week}\n"
        "\n"
        "  Next, on your own logs (the commands are in .venv/bin/):\n"
        "    tracelens ingest --store my-store path/to/your/logs/      # provider logs, OTel/OpenInference spans, "
        "Langfuse, LangSmith, CSV/JSONL...\n"
        "    tracelens weekly --store my-store --html weekly.html      # did the model change, or did your traffic?\n"
        "    tracelens tui --store my-store                            # find the trace behind a complaint, replay it\n"
        "    tracelens eval add my-suite --app my-app --time 7d --sample 200 --answered --expect not-refused "
        "--store my-store\n"
        "    tracelens eval run my-suite --n 3 --store my-store         # your tasks on the pinned snapshot, "
        "every week (docs/evals.md)\n"
        "  `tracelens formats` lists what ingest reads; README.md and docs/ say more."
    )


EVAL_BASELINE = "claude-sonnet-4-5-20250929"
EVAL_CANDIDATE = "claude-sonnet-4-5-20261112"


def evals_demo(store: Path, out_dir: Path) -> Path:
    """Step 5: a suite from W45's answered support-bot calls, run on fake servers; returns the eval report's path."""
    from tracelens.testing.fake_anthropic_cli import server_for
    from tracelens.testing.fake_openai import FakeOpenAIServer

    banner("5. Task evals: last month's answered support questions become a suite. Is the new snapshot safe?")
    for text, task in (("refund", "refund"), ("password", "account")):
        run(["eval", "add", "support", "--store", str(store), "--app", "support-bot", "--time", "2026-W45",
             "--text", text, "--answered", "--sample", "30", "--seed", "7", "--expect", "not-refused",
             "--tag", f"task={task}"])
    print(
        "\n  The eval runs go to LOCAL FAKE servers: the Anthropic one is scripted by\n"
        "  docs/examples/demo_fake_replies.json to refuse refund questions on the new snapshot, the\n"
        "  OpenAI-compatible one echoes. Their answers are synthetic: the verdicts show how evals work,\n"
        "  not how any real model behaves.",
        file=sys.stderr,
    )
    rules_file = REPO / "docs" / "examples" / "demo_fake_replies.json"
    report = out_dir / "evals.html"
    key_env = "TRACELENS_DEMO_FAKE_KEY"
    saved = {k: os.environ.get(k) for k in (key_env, "ANTHROPIC_BASE_URL")}
    with server_for(str(store), rules=str(rules_file)) as anth, FakeOpenAIServer() as oai:
        os.environ[key_env] = "fake-key-for-the-local-server"
        os.environ["ANTHROPIC_BASE_URL"] = anth.base_url
        try:
            run(["eval", "run", "support", "--store", str(store), "--yes", "--label", "2026-W47",
                 "--target", f"pinned#{key_env}"])
            run(["eval", "compare", "support", "--store", str(store), "--baseline", EVAL_BASELINE, "--candidate",
                 f"anthropic:{EVAL_CANDIDATE}#{key_env}", "--run-missing", "--yes"])
            run(["eval", "run", "support", "--store", str(store), "--yes",
                 "--target", f"compatible:gpt-4o-mini@{oai.base_url}#{key_env}"])
            run(["eval", "report", "support", "--store", str(store), "--format", "html", "--out", str(report)])
        finally:
            for k, v in saved.items():
                if v is None:
                    os.environ.pop(k, None)
                else:
                    os.environ[k] = v
    return report


def main(argv: list[str] | None = None) -> int:
    """Run the demo (ingest, weekly summary, complaint walk-through and replay) and return the exit status."""
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--store", default=".demo/store")
    ap.add_argument("--samples", default=str(REPO / "sample_logs"))
    ap.add_argument("--week", default="2026-W47")
    ap.add_argument("--live", action="store_true", help="Replay against the real Anthropic API (needs ANTHROPIC_API_KEY).")
    ap.add_argument("--keep", action="store_true", help="Reuse an existing demo store instead of starting fresh.")
    a = ap.parse_args(argv)
    store = Path(a.store)
    out_dir = store.parent
    if store.exists() and not a.keep:
        shutil.rmtree(store)
    out_dir.mkdir(parents=True, exist_ok=True)

    banner("1. Ingest the bundled sample logs (every supported format + 6 weeks of production traffic)")
    rc, _ = run(["ingest", "--store", str(store), "--no-progress", a.samples])
    if rc not in (0, 1):
        return rc
    run(["stats", "--store", str(store)])

    banner(f"2. Weekly drift summary for {a.week}: did the model change, or did our traffic?")
    html = out_dir / "weekly.html"
    md = out_dir / "weekly.md"
    rc_weekly, _ = run(["weekly", "--store", str(store), "--week", a.week, "--html", str(html), "--fail-on", "never"])
    # the Markdown summary (short enough for Slack) points to the HTML report, which this run writes again
    run(["weekly", "--store", str(store), "--week", a.week, "--format", "markdown", "-o", str(md), "--html", str(html),
         "--fail-on", "never"])

    banner('3. A complaint: "user 4411 says the assistant refused to help with their refund around 3pm on Saturday"')
    _, out = run(
        ["search", "--store", str(store), "--user", "4411", "--since", "2026-11-21T13:00", "--until", "2026-11-21T17:00",
         "--json"],
        capture=True,
    )
    rows = json.loads(out or "[]")
    for r in rows:
        print(f"  {r['timestamp']}  {r['trace_id']}  refusal={r['refusal']}  prompt={r['prompt_text'][:60]!r}")
    hits = [r for r in rows if r.get("refusal") in ("partial", "full")] or rows
    if not hits:
        print("no matching trace found", file=sys.stderr)
        return 0
    trace_id = hits[0]["trace_id"]
    run(["show", "--store", str(store), trace_id])

    banner("4. Replay it 5 times against the pinned snapshot it returned")
    live = a.live and bool(os.environ.get("ANTHROPIC_API_KEY"))
    if live:
        run(["replay", "--store", str(store), trace_id, "--n", "5", "--yes"])
    else:
        from tracelens.testing.fake_anthropic_cli import server_for

        rules_file = REPO / "docs" / "examples" / "demo_fake_replies.json"
        print(
            "\n  No live replay requested (pass --live with ANTHROPIC_API_KEY set): replaying against the LOCAL FAKE\n"
            "  Messages API server instead, scripted by docs/examples/demo_fake_replies.json to refuse refund\n"
            "  questions on the new snapshot, in five wordings as sampling would give. Its answers are synthetic:\n"
            "  the verdict below shows how replay works, not how any real model behaves. docs/replay.md runs the\n"
            "  same server and replay by hand.",
            file=sys.stderr,
        )
        with server_for(str(store), rules=str(rules_file)) as server:
            env_key = "TRACELENS_DEMO_FAKE_KEY"
            os.environ[env_key] = "fake-key-for-the-local-server"
            run(["replay", "--store", str(store), trace_id, "--n", "5", "--yes", "--base-url", server.base_url,
                 "--api-key-env", env_key])
    evals_html = evals_demo(store, out_dir)

    banner('6. Another complaint: "agent-052 says the summarizer got slow and worse this week" -- the model, or them?')
    # the context-growth user planted in sample_logs/production (truth.json: complaint_context)
    run(["explain", "--store", str(store), "--user", "agent-052", "--since", "2026-11-16", "--until", "2026-11-22"])
    banner("Done")
    print(next_steps(store, html, md, a.week, evals_html), file=sys.stderr)
    return 0 if rc_weekly in (0, 1) else rc_weekly


if __name__ == "__main__":
    sys.exit(main())
