"""The variance the sample hides behind one snapshot id (tracelens.samples.plants): each plant is in the
generated records as truth.json says, the plants leave every other record's draws alone, and the complaint
dossier for the context-growth user names the user's own prompts.
"""

from __future__ import annotations

import datetime as dt
import statistics
from pathlib import Path

import pytest

from tracelens.samples import Config, generate, make_plan, plants
from tracelens.samples.plan import (
    COHORT_LATENCY_FACTOR,
    CONTEXT_USER,
    HAIKU_PINNED,
    PEAK_HOURS,
    PEAK_LATENCY_FACTOR,
    STEP_APP,
)

CFG = Config()  # the bundled sample's options
BUNDLED = Path(__file__).resolve().parents[1] / "sample_logs" / "production"


@pytest.fixture(scope="module")
def gen():
    return generate(CFG)


def _ts(s: str) -> dt.datetime:
    return dt.datetime.fromisoformat(s.replace("Z", "+00:00"))


def _ok(gen, pred):
    return [ln for ln in gen.lines if ln.label is not None and pred(ln)]


def _median_ms_per_output_token(lines) -> float:
    # latency grows with output length; per output token the planted factor shows through the length mix
    return statistics.median(ln.obj["latency_ms"] / max(ln.obj["response"]["usage"]["output_tokens"], 1) for ln in lines)


def test_truth_lists_each_plant(gen):
    ids = [c["id"] for c in gen.truth["changes"]]
    assert ids[-4:] == ["peak_degradation", "cohort_divergence", "refusal_step", "context_growth"]
    c = gen.truth["complaint_context"]
    assert c["user_id"] == CONTEXT_USER and c["model_returned"] == "claude-sonnet-4-20250514"
    line = next(ln for ln in gen.lines if ln.obj.get("response", {}).get("id") == c["message_id"])
    assert line.obj["metadata"]["synthetic_planted"] == "complaint_context"


def test_peak_hours_slow_the_standard_tier_in_the_last_week_only(gen):
    plan = make_plan(CFG)
    summ = _ok(gen, lambda ln: ln.app == "summarizer" and ln.obj["metadata"]["user_id"] != CONTEXT_USER)
    tiers = {ln.obj["response"]["usage"]["service_tier"] for ln in summ}
    assert tiers == {"priority", "standard"}
    others = {ln.obj["response"]["usage"]["service_tier"] for ln in _ok(gen, lambda ln: ln.app != "summarizer")}
    assert others == {"standard"}

    def ratio(tier: str, last: bool) -> float:
        sel = [ln for ln in summ if ln.obj["response"]["usage"]["service_tier"] == tier and (ln.ts >= plan.peak_from) == last
               and ln.ts.isoweekday() <= 5]
        at_peak = [ln for ln in sel if ln.ts.hour in PEAK_HOURS]
        off = [ln for ln in sel if ln not in at_peak]
        return _median_ms_per_output_token(at_peak) / _median_ms_per_output_token(off)

    assert ratio("standard", True) == pytest.approx(PEAK_LATENCY_FACTOR, rel=0.25)
    assert ratio("priority", True) == pytest.approx(1.0, abs=0.25)
    assert ratio("standard", False) == pytest.approx(1.0, abs=0.25)


def test_region_cohort_slows_from_its_start(gen):
    plan = make_plan(CFG)
    sup = _ok(gen, lambda ln: ln.app == "support-bot")
    regions = [ln.obj["metadata"]["region"] for ln in sup]
    share = {r: regions.count(r) / len(regions) for r in set(regions)}
    assert set(share) == {"eu", "us", "apac"} and 0.1 < share["apac"] < 0.3
    # a customer's region never changes
    by_user: dict[str, set] = {}
    for ln in sup:
        by_user.setdefault(ln.obj["metadata"]["user_id"], set()).add(ln.obj["metadata"]["region"])
    assert all(len(v) == 1 for v in by_user.values())

    def ms(region: str, after: bool) -> float:
        week = plan.stop - dt.timedelta(days=14)
        return _median_ms_per_output_token([ln for ln in sup if ln.obj["metadata"]["region"] == region and ln.ts >= week
                                             and (ln.ts >= plan.cohort_from) == after])

    assert ms("apac", True) / ms("apac", False) == pytest.approx(COHORT_LATENCY_FACTOR, rel=0.25)
    assert ms("eu", True) / ms("eu", False) == pytest.approx(1.0, abs=0.2)


def test_refusal_step_inside_one_snapshot(gen):
    obs = {c["id"]: c for c in gen.truth["changes"]}["refusal_step"]["observed"]
    assert obs["before"]["rate"] < 0.03 and obs["after"]["rate"] > 0.06
    plan = make_plan(CFG)
    last = _ok(gen, lambda ln: ln.app == STEP_APP and ln.ts >= plan.stop - dt.timedelta(days=7))
    assert {ln.obj["response"]["model"] for ln in last} == {HAIKU_PINNED}
    assert len({str(ln.obj["request"]["system"]) for ln in last}) == 1
    # the refusals after the step answer ordinary questions, and the detector's labels are the truth's
    after = [ln for ln in last if ln.ts >= plan.step_at and ln.label != "none"]
    assert len(after) >= 6


def test_context_user_grows_and_nothing_else_does(gen):
    mine = _ok(gen, lambda ln: ln.obj["metadata"]["user_id"] == CONTEXT_USER)
    plan = make_plan(CFG)
    first = [ln.obj["response"]["usage"]["input_tokens"] for ln in mine if ln.ts < plan.start + dt.timedelta(weeks=4)]
    last = [ln.obj["response"]["usage"]["input_tokens"] for ln in mine if ln.ts >= plan.stop - dt.timedelta(days=7)]
    assert len(last) >= 10 and len(first) >= 40
    assert statistics.median(last) / statistics.median(first) > 2.5
    assert {ln.obj["response"]["model"] for ln in mine} == {"claude-sonnet-4-20250514"}
    assert {ln.obj["response"]["usage"]["service_tier"] for ln in mine} == {"priority"}


def test_plants_leave_every_other_draw_alone(monkeypatch, gen):
    """With the plants switched off, every other record has the same ids and timestamps (the second stream)."""
    monkeypatch.setattr(plants, "with_region", lambda app, meta: meta)
    monkeypatch.setattr(plants, "tier", lambda app, meta: "standard")
    monkeypatch.setattr(plants, "latency_factor", lambda *a: 1.0)
    monkeypatch.setattr(plants, "silent_step", lambda g, ts, label, text, stop: (label, text, stop))
    monkeypatch.setattr(plants, "context_user", lambda g: None)
    plain = generate(CFG)
    ours = [ln for ln in gen.lines if ln.obj["metadata"].get("user_id") != CONTEXT_USER]
    assert [ln.obj["request_id"] for ln in plain.lines] == [ln.obj["request_id"] for ln in ours]
    assert [ln.obj.get("response", {}).get("id") for ln in plain.lines] == [
        ln.obj.get("response", {}).get("id") for ln in ours
    ]


@pytest.fixture(scope="module")
def bundled_store(tmp_path_factory):
    from tracelens.ingest.pipeline import ingest
    from tracelens.store import Store

    store = Store(tmp_path_factory.mktemp("bundled") / "store", create=True)
    ingest(store, sorted(str(p) for p in BUNDLED.glob("anthropic-*.jsonl.gz")))
    return store


def test_dossier_names_the_users_own_context_growth(bundled_store):
    from tracelens.explain import explain_user

    d = explain_user(bundled_store, CONTEXT_USER, since=dt.datetime(2026, 11, 16, tzinfo=dt.UTC),
                     until=dt.datetime(2026, 11, 23, tzinfo=dt.UTC))
    top = d.verdict[0]
    assert top.key == "prompts" and top.supported, [c.title for c in d.verdict]
    assert top.change.ci_low > 2.0
    assert not [c for c in d.verdict if c.key in ("model_snapshot", "system_prompt") and c.supported]
    assert not [u for u in d.underneath if u.kind in ("model_snapshot", "system_prompt")]
