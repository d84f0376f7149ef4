"""A stranger's first hour: README → `make demo` → docs/tui.md's walk-through → the HTML report, as written.

One module fixture runs the demo exactly as `make demo` does (``python -m tracelens.demo``) on a fresh store,
then drives the TUI through docs/tui.md's walk-through (``tracelens.tui.screenshots.walk``, Textual's Pilot)
at the clock and week the document's follow-along command pins. Every figure is read from the markdown, never
copied here: change a doc without the code (or the code without the doc) and a test below fails. Slow: the
demo ingests six weeks of traffic and embeds the prompts its weekly analysis needs (about a minute).
"""

from __future__ import annotations

import asyncio
import contextlib
import html
import io
import re
import shlex
from collections import defaultdict
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow

REPO = Path(__file__).resolve().parent.parent
DOCS = REPO / "docs"
NUMBER_WORDS = {"one": 1, "two": 2, "three": 3, "four": 4, "five": 5, "six": 6}


def doc(name: str) -> str:
    return (REPO / name).read_text(encoding="utf-8")


def flat(text: str) -> str:
    """Terminal output as one line of words: wrapping, panel borders and runs of spaces do not count."""
    return " ".join(re.sub(r"[│╭╮╰╯─]", " ", text).split())


def svg_text(path: Path) -> str:
    """The text of a Textual SVG screenshot, one screen row per line, cells in column order."""
    rows: dict[float, list[tuple[float, str]]] = defaultdict(list)
    for m in re.finditer(r'<text class="[^"]*" x="([\d.]+)" y="([\d.]+)"[^>]*>(.*?)</text>',
                         path.read_text(encoding="utf-8")):
        rows[float(m.group(2))].append((float(m.group(1)), html.unescape(re.sub(r"<[^>]+>", "", m.group(3)))))
    lines = []
    for y in sorted(rows):
        line = ""
        for x, t in sorted(rows[y]):
            line = line.ljust(round(x / 12.2)) + t
        lines.append(line.rstrip())
    return "\n".join(lines).replace("\xa0", " ")


def follow_along_command() -> list[str]:
    """docs/tui.md's command for following the walk-through on the demo store."""
    m = re.search(r"```\n(\.venv/bin/tracelens tui [^\n]+)\n```", doc("docs/tui.md"))
    assert m, "docs/tui.md lost its follow-along command"
    return shlex.split(m.group(1))


def option(args: list[str], name: str) -> str:
    return args[args.index(name) + 1]


@pytest.fixture(scope="module")
def walk(tmp_path_factory):
    """Run the demo, then the TUI walk-through on its store; returns the demo's output, the store and the screens."""
    from tracelens import demo
    from tracelens.timeexpr import parse_bound
    from tracelens.tui import screenshots

    root = tmp_path_factory.mktemp("demo")
    store = root / ".demo" / "store"
    out = io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(out):
        assert demo.main(["--store", str(store)]) == 0
    text = out.getvalue()

    args = follow_along_command()
    assert option(args, "--store") == ".demo/store"
    now = parse_bound(option(args, "--now"))  # as `tracelens tui --now` reads it
    tui = doc("docs/tui.md")
    m = re.search(r"For the complaint: user `([^`]+)`, time `([^`]+)`, `enter`", tui)
    assert m, "docs/tui.md lost the complaint's search"
    shots = root / "img"
    asyncio.run(screenshots.walk(str(store), shots, now, week=option(args, "--week"), user=m.group(1),
                                 when=m.group(2)))
    screens = {p.stem.removeprefix("tui-").split("-", 1)[1]: svg_text(p) for p in sorted(shots.glob("tui-*.svg"))}
    return {"out": text, "flat": flat(text), "store": store, "screens": screens}


def test_the_demo_prints_the_command_docs_tui_follows(walk):
    printed = [ln.strip() for ln in walk["out"].splitlines() if ln.strip().startswith(".venv/bin/tracelens tui")]
    assert len(printed) == 1
    assert shlex.split(printed[0].replace(str(walk["store"]), ".demo/store")) == follow_along_command()


def test_find_the_complaint_as_docs_tui_says(walk):
    tui = doc("docs/tui.md")
    m = re.search(r"(\w+) traces? in the window, labelled `(\w+)`", tui)
    n, label = NUMBER_WORDS[m.group(1).lower()], m.group(2)
    found = walk["screens"]["find-complaint"]
    assert f"{n} trace{'s' if n != 1 else ''} · showing 1–{n}" in found
    rows = [ln for ln in found.splitlines() if re.match(r" \d{4}-\d\d-\d\d \d\d:\d\d:\d\d ", ln)]
    assert len(rows) == n and all(f" {label} " in r for r in rows)
    # the window the caption names
    cap = re.search(r"!\[User (\S+) between (\d\d:\d\d) and (\d\d:\d\d) yesterday", tui)
    assert f"user {cap.group(1)}" in found and f"{cap.group(2)} → 2026-11-21 {cap.group(3)}" in found


def test_the_trace_banner_and_history_as_docs_tui_says(walk):
    tui = doc("docs/tui.md")
    trace = walk["screens"]["trace"]
    m = re.search(r"the system prompt of `([^`]+)`\s+changed ([\d.]+) days before this trace", tui)
    assert m, "docs/tui.md lost the banner's system-prompt sentence"
    assert f"The system prompt changed {m.group(2)} days before this trace" in trace
    assert f"(app {m.group(1)})" in trace
    m = re.search(r"the alias `([^`]+)` had\s+started resolving to a new snapshot, `([^`]+)`, (\w+) days\s+before", tui)
    assert m, "docs/tui.md lost the banner's snapshot sentence"
    assert f"The served snapshot changed {NUMBER_WORDS[m.group(3)]}.0 days before this trace: {m.group(2)}" in trace
    assert f"The request named the alias {m.group(1)}" in trace

    history = walk["screens"]["prompt-history"]
    m = re.search(r"(v\d+) added a holiday-returns paragraph on (\S+ \S+); the snapshot rolled over on (\S+ \S+)\]", tui)
    version, changed, rollover = m.groups()
    assert re.search(rf"▶ {version}\s+{changed}", history)
    assert re.search(rf"claude-sonnet-4-5-20261112\s+{rollover}", history)
    m = re.search(r"the complaint used (v\d+) of (\d+)", tui)
    assert m.group(1) == version and f"This trace used system prompt {version} of {m.group(2)}" in history


def test_related_traces_as_docs_tui_says(walk):
    tui = doc("docs/tui.md")
    related = walk["screens"]["related"]
    assert "no identical prompt elsewhere" in tui and "same prompt in other weeks: none" in related
    m = re.search(r"The similar prompts, all asked before it, were all answered \(`(\w+)`\)", tui)
    similar = re.findall(r"\s0\.\d\d\s+(\d\d-\d\d) \d\d:\d\d\s+(\w+)\s", related)
    assert similar and all(label == m.group(1) for _, label in similar)
    assert all(day < "11-21" for day, _ in similar)  # all earlier than the complaint


def test_replay_as_docs_tui_says(walk):
    tui = doc("docs/tui.md")
    plan = walk["screens"]["replay-plan"]
    n = int(re.search(r"Replay plan: (\d+) requests to the pinned snapshot", tui).group(1))
    assert f"{n} requests to http://127.0.0.1:" in plan and "model claude-sonnet-4-5-20261112" in plan
    assert "Send" in plan and "no replay yet" in plan  # nothing sent yet
    result = walk["screens"]["replay-result"]
    refused, total = map(int, re.search(r"\((\d) of (\d) replays refused\)", tui).groups())
    assert total == n and re.search(rf"replays full {refused}, none {total - refused}\b", result)
    assert "the refusal reproduces on the pinned snapshot" in tui and re.search(r"verdict\s+reproduces", result)


def test_this_week_as_docs_tui_and_the_demo_say(walk):
    tui = doc("docs/tui.md")
    m = re.search(r"these are the (\d+) findings `make demo` printed for\s+(\S+) \((\d+) alert, (\d+) warn, (\d+) info\)",
                  tui)
    total, week, alert, warn, info = m.groups()
    assert int(alert) + int(warn) + int(info) == int(total)
    assert f"{alert} alert, {warn} warn, {info} info" in walk["flat"]
    week_screen = walk["screens"]["this-week"]
    assert f"This week: {total} findings · 2026-11-16 → 2026-11-23" in week_screen
    assert week == "2026-W47" and f"--week {week}" in walk["flat"]
    cluster = re.search(r"overall and on topic cluster\s+(\d+)\)", tui).group(1)
    rows = [tuple(ln.split()[:2]) for ln in week_screen.splitlines() if ln.startswith((" alert", " warn"))]
    assert [r[0] for r in rows] == ["alert"] * int(alert) + ["warn"] * int(warn)
    # "in the same order" as the demo printed them
    assert rows == re.findall(r"^\[(alert|warn)\] (\w+)", walk["out"], flags=re.M)
    assert [k for _, k in rows[:4]] == ["model_snapshot", "snapshot_behaviour", "snapshot_behaviour", "refusal_rate"]
    assert f"cluster={cluster} (" in week_screen and f"cluster={cluster} (" in walk["flat"]


def test_the_help_screen_and_the_keys_table_agree(walk):
    helptext = walk["screens"]["help"]
    tui = doc("docs/tui.md")
    q_row = re.search(r"^\| `q` \| anywhere \| (.*) \|$", tui, flags=re.M).group(1)
    assert "ctrl+q" in q_row and "ctrl+q quits" in helptext


def test_replay_md_and_the_demo_agree(walk):
    replay = doc("docs/replay.md")
    m = re.search(r"tracelens replay (msg_\w+) --store \.demo/store --n (\d+)", replay)
    trace_id, n = m.group(1), int(m.group(2))
    assert f"$ tracelens show --store {walk['store']} {trace_id}" in walk["out"]
    quoted = re.search(r"\(`(full→full:\d)`\), and\s+the verdict is `(\w+)`", replay)
    assert quoted.group(1) == f"full→full:{n}" and quoted.group(1) in walk["flat"]
    # the replay table's row: trace, verdict (cut to the column's width, '*' = descriptive), ok/err
    verdict = re.search(rf"{trace_id[:8]}\S*\s+(\w+)[*…]*\s+\d+/\d+", walk["out"])
    assert verdict and quoted.group(2).startswith(verdict.group(1)), walk["out"][-3000:]


def test_reports_md_and_drift_md_and_the_demo_agree(walk):
    reports = doc("docs/reports.md")
    m = re.search(r"\((\S+) vs (\S+) of the bundled sample logs, (\d+) findings, (\d+) of\s+them info\)", reports)
    assert m.group(1) == "2026-W47" and m.group(2) == "W46"
    counts = re.search(r"(\d+) alert, (\d+) warn, (\d+) info", walk["flat"]).groups()
    assert sum(map(int, counts)) == int(m.group(3)) and counts[2] == m.group(4)
    page = (walk["store"].parent / "weekly.html").read_text(encoding="utf-8")
    title = re.search(r"\*\*Title naming the windows\*\* \(`([^`]+)`", " ".join(reports.split())).group(1)
    assert f"<h1>{html.escape(title)}</h1>" in page
    chars, lines = re.search(r"^\| now \|.*\| ([\d,]+) characters, (\d+) lines \|$", reports, flags=re.M).groups()
    # the post names the HTML file as the demo was told it (`make demo`: .demo/weekly.html)
    post = (walk["store"].parent / "weekly.md").read_text(encoding="utf-8").replace(str(walk["store"].parent), ".demo")
    assert (len(post), len(post.splitlines())) == (int(chars.replace(",", "")), int(lines))

    drift = " ".join(doc("docs/drift.md").split())
    example = re.search(r'"(Refusals on topic cluster .*?)"', drift).group(1)
    for part in example.split("…"):
        assert part.strip() in walk["flat"], part
    demo_para = re.search(r"On the bundled demo \(`python -m tracelens\.demo`.*?(?= Real data)", drift).group(0)
    segment = re.search(r"`(cluster=\d+ \([^)]*\))` (\S+ → \S+) \(q = ([\d.]+(?:e-\d+)?)", demo_para)
    assert f"refusal_rate {segment.group(1)}:" in walk["flat"]
    assert re.search(rf"{re.escape(segment.group(2))} \S* ?\+[\d.]+ pp .{{0,40}}q={segment.group(3)}", walk["flat"])
    for change in re.findall(r"(\d+\.\d% → \d+\.\d%) at the same prompt mix|on that topic (\d+\.\d% → \d+\.\d%)", demo_para):
        assert "".join(change) in walk["flat"], change


def test_readme_describes_what_the_demo_does(walk):
    readme = " ".join(doc("README.md").split())
    weeks = NUMBER_WORDS[re.search(r"plus (\w+) weeks of generated production traffic", readme).group(1)]
    ingested = re.findall(r"production/anthropic-(\d{4}-W\d\d)\.jsonl", walk["out"])
    assert len(set(ingested)) == weeks
    for written in re.findall(r"`(\.demo/\w+\.\w+)`", readme):
        assert (walk["store"].parent.parent / written).is_file(), written


def test_evals_md_and_the_demo_agree(walk):
    evals = " ".join(doc("docs/evals.md").split())
    verdict = re.search(r"its upgrade verdict reads `([^`]+)`", evals).group(1)
    assert verdict in walk["flat"]
    cases = re.search(r"Its suite holds (\d+) answered", evals).group(1)
    assert f"{cases} case(s) in the suite" in walk["flat"]
    page = (walk["store"].parent / "evals.html").read_text(encoding="utf-8")
    assert "<h1>Eval report: support</h1>" in page and page.count("<tr>") >= 3


def _weekly_json(store: Path, week: str) -> list[dict]:
    import json

    from click.testing import CliRunner

    from tracelens.cli.main import cli

    res = CliRunner().invoke(cli, ["weekly", "--store", str(store), "--week", week, "--json", "--fail-on", "never"])
    assert res.exit_code == 0, res.output
    doc_ = json.loads(res.stdout)
    return (doc_.get("report") or doc_)["findings"]


def test_each_planted_effect_once_and_nothing_else_new(walk):
    """The sample's variance behind one snapshot id: each plant is one warn/alert finding of its kind, the
    week-over-week findings it moves are folded into it, and everything else at warn/alert is the rollover's."""
    import json

    truth = json.loads((REPO / "sample_logs" / "production" / "truth.json").read_text(encoding="utf-8"))
    plants = {c["id"]: c for c in truth["changes"]}
    loud = [f for f in _weekly_json(walk["store"], "2026-W47") if f["severity"] in ("warn", "alert")]
    new = [f for f in loud if f["kind"] in ("time_of_day", "load", "cohort", "changepoint", "context_length")]
    peak = [f for f in new if f["kind"] in ("time_of_day", "load")]
    assert len(peak) == 1 and "tier=standard metric=latency" in peak[0]["segment"], new
    assert plants["peak_degradation"]["segment"]["model_returned"] in peak[0]["segment"]
    cohort = [f for f in new if f["kind"] == "cohort"]
    assert [f["segment"] for f in cohort] == ["region=apac metric=latency"], new
    step = [f for f in new if f["kind"] == "changepoint"]
    assert len(step) == 1 and step[0]["segment"] == f"snapshot={plants['refusal_step']['segment']['model_returned']} metric=refusal"
    at = plants["refusal_step"]["at"][:10]
    assert step[0]["first_seen"].startswith(at), step[0]["first_seen"]
    assert len(new) == 3
    # the rest at warn/alert is the snapshot rollover and its configuration changes, planted before these
    rollover = {"model_snapshot", "snapshot_behaviour", "refusal_rate", "alias_usage", "system_prompt", "response_length"}
    others = [f for f in loud if f not in new]
    assert {f["kind"] for f in others} <= rollover, [(f["kind"], f["segment"]) for f in others]
    for f in others:
        if f["kind"] in ("refusal_rate", "response_length"):
            assert f["segment"] == "" or "sonnet-4-5" in f["segment"] or "cluster=" in f["segment"], f["segment"]
    # the week before has nothing planted: nothing at warn or alert
    assert not [f for f in _weekly_json(walk["store"], "2026-W46") if f["severity"] in ("warn", "alert")]


def test_explain_md_and_the_demos_dossier_agree(walk):
    explain = " ".join(doc("docs/explain.md").split())
    verdict = re.search(r'ranks first "(your prompts changed \(.*?\))"', explain).group(1)
    assert f"1 {verdict}" in walk["flat"], verdict
    tokens = re.search(r"whole prompt tokens grew ([\d.]+x)", explain).group(1)
    assert re.search(rf"whole prompt tokens \(median\) {re.escape(tokens)}", walk["flat"])
    assert "No snapshot, system-prompt, tool, sampling or service-tier change" in walk["flat"]
