"""`tracelens explain --user ID`: a user's complaint dossier with a ranked verdict (``tracelens.explain``).

Stores are built through the real ingest pipeline from Anthropic log lines with a planted story:

* ``grown``: user U's prompts (and conversations) grow about 3x in the last week; model and system prompt stay.
* ``snapshot``: the served snapshot behind the alias changes in the last week and the new one refuses more and
  answers shorter; U's prompts stay the same.
"""

from __future__ import annotations

import datetime as dt
import json
import math

import pytest
from click.testing import CliRunner

from tests.conftest import anthropic_line
from tracelens.explain import MIN_TRACES, explain_user, render_markdown

START = dt.datetime(2026, 10, 5, 9, 0, tzinfo=dt.UTC)  # a Monday; five weeks of traffic follow
OLD_SNAP = "claude-sonnet-4-5-20250929"
NEW_SNAP = "claude-sonnet-4-5-20251201"
REFUSAL = "I'm sorry, but I can't help with that request."


def _line(i: int, when: dt.datetime, *, user: str, words: int, turns: int = 1, returned: str = OLD_SNAP,
          refuse: bool = False, reply_words: int = 40, topic: str = "") -> str:
    rec = json.loads(anthropic_line(i, ts=when.strftime("%Y-%m-%dT%H:%M:%SZ"), user=user, returned=returned,
                                    text=REFUSAL if refuse else " ".join(["answer"] * reply_words)))
    prompt = f"{topic}question {i} " + " ".join(f"w{j % 50}" for j in range(words))
    history = []
    for t in range(turns - 1):
        history += [{"role": "user", "content": f"earlier {i}-{t}"}, {"role": "assistant", "content": f"reply {t}"}]
    rec["request"]["messages"] = [*history, {"role": "user", "content": prompt}]
    rec["response"]["usage"] = {"input_tokens": 20 + words * 2 + turns * 15, "output_tokens": 5 + (0 if refuse else reply_words)}
    return json.dumps(rec)


def _story(kind: str) -> list[str]:
    lines = []
    i = 0
    for day in range(35):
        when = START + dt.timedelta(days=day)
        last_week = day >= 28
        for k in range(4):  # user U: 4 calls a day
            t = when + dt.timedelta(hours=k * 2)
            if kind == "grown":
                words, turns = (90, 6) if last_week else (30, 2)
                lines.append(_line(i, t, user="U", words=words + k, turns=turns))
            elif kind == "topics":  # same lengths, another subject
                lines.append(_line(i, t, user="U", words=30 + k, turns=2, topic="shipping " if last_week else "billing "))
            else:
                snap = NEW_SNAP if last_week else OLD_SNAP
                lines.append(_line(i, t, user="U", words=30 + k, turns=2, returned=snap,
                                   refuse=last_week and k % 2 == 0, reply_words=15 if last_week else 40))
            i += 1
        for k in range(3):  # other users, same app and model
            t = when + dt.timedelta(hours=1 + k * 3)
            snap = NEW_SNAP if (kind == "snapshot" and last_week) else OLD_SNAP
            subject = ("shipping " if last_week else "billing ") if kind == "topics" else ""
            lines.append(_line(i, t, user=f"other{k}", words=30 + k, turns=2, returned=snap, topic=subject))
            i += 1
    # a user with a handful of traces, one with a hostile id
    for k in range(3):
        lines.append(_line(i, START + dt.timedelta(days=33, hours=k), user="few", words=10))
        i += 1
    lines.append(_line(i, START + dt.timedelta(days=34), user="ev\x1b[31mil\u202e|`x", words=10))
    return lines


def build(root, kind: str):
    from tracelens.ingest.pipeline import ingest
    from tracelens.store import Store

    root.mkdir(parents=True, exist_ok=True)
    src = root / "app.jsonl"
    src.write_text("\n".join(_story(kind)) + "\n", encoding="utf-8")
    store = Store(root / "store", create=True)
    summary = ingest(store, [str(src)])
    assert not summary.errors and summary.total("quarantined") == 0, summary.to_dict()
    return store


@pytest.fixture(scope="module")
def grown(tmp_path_factory):
    return build(tmp_path_factory.mktemp("grown"), "grown")


@pytest.fixture(scope="module")
def snapshot(tmp_path_factory):
    return build(tmp_path_factory.mktemp("snapshot"), "snapshot")


def _store_topic_clusters(store) -> None:
    """Save a cluster model with two topics and its assignments, as `tracelens cluster` stores them."""
    import numpy as np

    from tracelens.cluster import ClusterInfo, ClusterModel, save_model, store_assignments
    from tracelens.embed.models import resolve_model
    from tracelens.hashing import text_hash

    spec = resolve_model(None)
    cm = ClusterModel(
        id="test-topics", algorithm="kmeans", k=2, embedding_model_id=spec.model_id, embedding_slug=spec.slug,
        created_at="2026-11-09T00:00:00Z", window_since=None, window_until=None, seed=0, n_traces=0, n_distinct=0,
        n_fit=0, noise=0, k_selection={},
        clusters=[ClusterInfo(0, "billing", ["billing"], 1, 1, []), ClusterInfo(1, "shipping", ["shipping"], 1, 1, [])],
        centroids=np.eye(2, dtype=np.float32),
    )
    save_model(store, cm)
    prompts = store.scan().select("prompt_text").unique().collect().get_column("prompt_text").drop_nulls().to_list()
    hashes = [text_hash(p) for p in prompts]
    ids = np.array([1 if p.startswith("shipping") else 0 for p in prompts], dtype=np.int32)
    store_assignments(store, cm, hashes, ids, np.zeros(len(prompts), dtype=np.float32))


@pytest.fixture(scope="module")
def topics(tmp_path_factory):
    store = build(tmp_path_factory.mktemp("topics"), "topics")
    _store_topic_clusters(store)
    return store


def test_moved_topics_rank_first(topics):
    d = explain_user(topics, "U")
    assert d.topics_available
    top = d.verdict[0]
    assert top.key == "topics" and top.supported, [c.title for c in d.verdict]
    assert "'shipping' now 100.0% of your calls, was 0.0%" in top.title and top.change.effect == pytest.approx(1.0)
    assert [w.top_topic for w in d.weeks if w.calls][-2:] == ["billing", "shipping"]
    assert not next(c for c in d.verdict if c.key == "prompts").supported
    # others on the same snapshot and topic are compared too
    assert [c.scope.split(" (")[0] for c in d.comparable] == ["same snapshot", "same snapshot and topic"]


def _no_nan(o) -> None:
    if isinstance(o, float):
        assert math.isfinite(o)
    elif isinstance(o, dict):
        for v in o.values():
            _no_nan(v)
    elif isinstance(o, list):
        for v in o:
            _no_nan(v)


def test_grown_prompts_rank_first(grown):
    d = explain_user(grown, "U")
    assert d.n_current == 28 and d.n_baseline == 112
    top = d.verdict[0]
    assert top.key == "prompts" and top.supported, [c.title for c in d.verdict]
    assert top.change.scale == "ratio" and 2.5 < top.change.effect < 4.0
    assert top.change.ci_low > 1.0
    assert "your prompts changed" in top.title and "since 2026-W" in top.title
    assert set(top.evidence) <= set(grown.scan().collect().get_column("trace_id").to_list())
    # nothing changed underneath: no snapshot or system-prompt candidate, no deterministic change listed
    assert not [c for c in d.verdict if c.key in ("model_snapshot", "system_prompt")]
    assert not [u for u in d.underneath if u.kind in ("model_snapshot", "system_prompt")]
    weeks = [w for w in d.weeks if w.calls]
    assert weeks[-1].current and weeks[-1].tokens_median > 2.5 * weeks[0].tokens_median
    turns = next(c for c in d.changes if c.metric.startswith("messages per request"))
    assert turns.supported and turns.effect == pytest.approx(11 / 3)  # 2 turns = 3 messages, 6 turns = 11
    assert d.replay_command == f"tracelens replay {d.replay_trace} --n 5"


def test_snapshot_change_ranks_first(snapshot):
    d = explain_user(snapshot, "U")
    top = d.verdict[0]
    assert top.key == "model_snapshot" and top.supported, [c.title for c in d.verdict]
    assert NEW_SNAP in top.title and OLD_SNAP in top.title
    # the user's outcome moved on the new snapshot: more refusals or shorter answers, beyond the interval
    assert top.change.supported and top.change.metric.startswith("your ")
    snap = next(u for u in d.underneath if u.kind == "model_snapshot" and u.after == NEW_SNAP)
    assert snap.user_share == 1.0 and snap.first_seen >= START + dt.timedelta(days=28)
    prompts = next(c for c in d.verdict if c.key == "prompts")
    assert not prompts.supported
    assert [a.returned for a in d.aliases] == [OLD_SNAP, NEW_SNAP]
    # the replay suggestion is the user's most recent refused trace
    refused = snapshot.get(d.replay_trace)
    assert refused["refusal"] in ("partial", "full") and refused["user_id"] == "U"
    assert d.replay_reason == "most recent refused trace"
    # others on the same snapshot are not refused: the user is refused more than comparable traffic
    comp = d.comparable[0]
    assert comp.refusal.supported and comp.refusal.effect > 0


def test_same_prompt_in_other_weeks_is_paired(snapshot, tmp_path):
    # U sends a prompt in the baseline weeks and again now; it is answered then and refused now
    d = explain_user(snapshot, "U")
    assert d.same_prompt is not None and d.same_prompt.prompts == 0  # every current prompt is new
    from tracelens.ingest.pipeline import ingest

    when_then = START + dt.timedelta(days=10)
    when_now = START + dt.timedelta(days=33, hours=23)
    extra = tmp_path / "again.jsonl"
    extra.write_text("\n".join([
        _line(900_001, when_then, user="U", words=7, turns=2),
        _line(900_002, when_now, user="U", words=7, turns=2, returned=NEW_SNAP, refuse=True),
    ]) + "\n")
    # the same text under different ids: rename the second prompt's number so the prompt is identical
    lines = extra.read_text().splitlines()
    lines[1] = lines[1].replace("question 900002", "question 900001").replace("earlier 900002", "earlier 900001")
    extra.write_text("\n".join(lines) + "\n")
    ingest(snapshot, [str(extra)])
    d = explain_user(snapshot, "U")
    sp = d.same_prompt
    assert sp.prompts == 1 and sp.newly_refused == 1 and sp.no_longer_refused == 0
    assert sp.pairs[0].refused_now and not sp.pairs[0].refused_before
    assert sp.pairs[0].earlier_trace == "msg_900001" and sp.pairs[0].current_trace == "msg_900002"


def test_a_handful_of_traces_is_too_little_data(grown):
    d = explain_user(grown, "few")
    assert d.traces == 3 and d.n_current == 3
    assert d.verdict[0].key == "too_little_data" and str(MIN_TRACES) in d.verdict[0].title


def test_unknown_user_has_no_traces(grown):
    d = explain_user(grown, "nobody")
    assert d.traces == 0 and d.verdict == [] and d.headline == "no traces for this user"


def test_json_form_is_stable_and_has_no_nan(grown):
    d = explain_user(grown, "U").to_dict()
    assert set(d) >= {"user_id", "session_id", "current_start", "current_end", "baseline_start", "traces",
                      "n_baseline", "n_current", "weeks", "changes", "underneath", "aliases", "comparable",
                      "same_prompt", "replay_trace", "replay_command", "verdict", "notes", "headline"}
    assert set(d["verdict"][0]) == {"key", "title", "change", "supported", "strength", "evidence"}
    assert set(d["changes"][0]) == {"metric", "scale", "baseline", "current", "effect", "ci_low", "ci_high",
                                    "n_baseline", "n_current", "supported", "strength"}
    _no_nan(d)
    # the few-traces user has undefined intervals: they are None, not NaN
    _no_nan(explain_user(grown, "few").to_dict())


def test_explicit_window_and_session(grown):
    since = START + dt.timedelta(days=21)
    until = START + dt.timedelta(days=28)
    d = explain_user(grown, "U", since=since, until=until)
    assert d.current_start == since and d.current_end == until and d.n_current == 28
    assert d.verdict[0].key == "no_change"  # the week before the growth looks like the weeks before it
    assert explain_user(grown, "U", session_id="nope").traces == 0


# --------------------------------------------------------------------------- CLI


def _cli(store, *args):
    from tracelens.cli.main import cli

    return CliRunner().invoke(cli, ["explain", "--store", str(store.root), *args], catch_exceptions=False)


def test_cli_json_terminal_markdown(grown):
    r = _cli(grown, "--user", "U", "--json")
    assert r.exit_code == 0, r.output
    doc = json.loads(r.stdout)
    assert doc["verdict"][0]["key"] == "prompts" and doc["user_id"] == "U"
    r = _cli(grown, "--user", "U", "--format", "markdown")
    assert r.exit_code == 0 and r.stdout.startswith("# Explain user U")
    assert "## Verdict" in r.stdout and "tracelens replay " in r.stdout
    r = _cli(grown, "--user", "U")
    assert r.exit_code == 0 and "your prompts changed" in r.stdout


def test_cli_no_traces_exits_4_and_usage_exits_2(grown):
    r = _cli(grown, "--user", "nobody")
    assert r.exit_code == 4 and r.stdout == "" and "no traces" in r.stderr.lower()
    r = _cli(grown, "--user", "U", "--until", "2020-01-01")  # nothing of U's that early
    assert r.exit_code == 4 and r.stdout == "" and "no traces" in r.stderr.lower()
    assert _cli(grown).exit_code == 2
    assert _cli(grown, "--user", "U", "--since", "2026-11-05", "--until", "2026-11-01").exit_code == 2
    assert _cli(grown, "--user", "U", "--since", "not a time").exit_code == 2


def test_hostile_user_id_is_rendered_safely(grown):
    uid = "ev\x1b[31mil\u202e|`x"
    d = explain_user(grown, uid)
    assert d.traces == 1
    md = render_markdown(d)
    assert "\x1b" not in md and "\u202e" not in md and "␛" in md and "\\|" in md
    for fmt_args in (["--format", "markdown"], [], ["--json"]):
        r = _cli(grown, "--user", uid, *fmt_args)
        assert r.exit_code == 0, r.output
        assert "\x1b" not in r.stdout and "\u202e" not in r.stdout
    assert json.loads(_cli(grown, "--user", uid, "--json").stdout)["user_id"] == uid

def test_user_id_cannot_inject_markdown(grown):
    from tracelens.explain import Dossier

    d = Dossier("[click](http://evil.example)|x", None, None, None, None, 0, 0, 0, notes=["none"])
    head = render_markdown(d).splitlines()[0]
    assert head == "# Explain user \\[click\\](http://evil.example)\\|x"


# --------------------------------------------------------------------------- TUI


@pytest.mark.anyio
@pytest.mark.parametrize("anyio_backend", ["asyncio"])
async def test_tui_u_on_a_trace_explains_its_user(tmp_path, anyio_backend):
    from tests.test_tui_data import NOW, build_tui_store, settle
    from tracelens.tui.app import TuiConfig, make_app

    store = build_tui_store(tmp_path / "tui")
    app = make_app(store, TuiConfig(now=lambda: NOW, cursor_blink=False, export_dir=tmp_path / "exports"))
    async with app.run_test(size=(120, 40)) as pilot:
        await settle(pilot)
        app.open_trace("msg_complaint")
        await settle(pilot)
        await pilot.press("u")
        await settle(pilot)
        screen = app.screen
        assert type(screen).__name__ == "ExplainScreen" and screen.user_id == "4411"
        assert screen.dossier is not None and screen.dossier.traces > 0
        assert screen.markdown.startswith("# Explain user 4411") and "## Verdict" in screen.markdown
        status = screen.query_one("#explain-status").content.plain
        assert status.startswith("verdict: ") and screen.dossier.headline in status
        await pilot.press("escape")
        await settle(pilot)
        assert type(app.screen).__name__ == "TraceScreen"


def test_median_ratio_interval():
    import numpy as np

    from tracelens.analysis.stats import median_ratio_ci

    rng = np.random.default_rng(1)
    b = rng.lognormal(4.0, 0.3, 300)
    c = 3.0 * rng.lognormal(4.0, 0.3, 300)
    r, lo, hi = median_ratio_ci(b, c, rng=np.random.default_rng(0))
    assert lo < r < hi and lo < 3.0 < hi and lo > 2.5 and hi < 3.5
    assert median_ratio_ci(b, c, rng=np.random.default_rng(0)) == (r, lo, hi)  # seeded: deterministic
    same = median_ratio_ci(b, b[::-1].copy(), rng=np.random.default_rng(0))
    assert same[1] < 1.0 < same[2]
    assert all(math.isnan(x) for x in median_ratio_ci([], c))
    assert all(math.isnan(x) for x in median_ratio_ci([0.0, 0.0], c))


def test_topic_mix_on_a_url_store_matches_the_local_store(topics, tmp_path):
    """Cluster models and assignments kept in a Delta Lake store give the same topic verdict."""
    from tracelens.deltastore import DeltaStore
    from tracelens.storemigrate import migrate

    url = f"file://{tmp_path}/delta"
    assert migrate(str(topics.root), url).reconciles  # the cluster model and its assignments come along
    delta = DeltaStore(url, write=True)
    d, want = explain_user(delta, "U"), explain_user(topics, "U")
    assert d.topics_available and d.verdict[0].key == "topics"
    assert [c.title for c in d.verdict] == [c.title for c in want.verdict]
    assert [w.top_topic for w in d.weeks] == [w.top_topic for w in want.weeks]
