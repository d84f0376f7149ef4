"""Canary sets: persistence, runs tagged and stored, run-to-run comparison."""

from __future__ import annotations

import json

import pytest

from tests.test_replay import SECRET, make_trace
from tracelens.replay import (
    CanaryError,
    ReplayClient,
    add_to_canary,
    compare_runs,
    list_canaries,
    load_canary,
    run_canary,
)
from tracelens.replay.canary import canary_runs
from tracelens.replay.storage import load_replays
from tracelens.testing.fake_anthropic import FakeAnthropicServer, Reply


@pytest.fixture
def key(monkeypatch):
    monkeypatch.setenv("ANTHROPIC_API_KEY", SECRET)
    monkeypatch.delenv("ANTHROPIC_BASE_URL", raising=False)


def test_add_list_load_and_names(tmp_path):
    c = add_to_canary(tmp_path, "support-core", ["a", "b", "a"], n=3, description="top prompts")
    assert c.trace_ids == ["a", "b"] and c.n == 3
    c = add_to_canary(tmp_path, "support-core", ["c", "b"])
    assert load_canary(tmp_path, "support-core").trace_ids == ["a", "b", "c"]
    on_disk = json.loads((tmp_path / "canaries" / "support-core.json").read_text())
    assert on_disk["name"] == "support-core" and on_disk["created_at"]
    assert [c.name for c in list_canaries(tmp_path)] == ["support-core"]
    assert not list((tmp_path / "canaries").glob(".*"))  # atomic write left no temp file
    for bad in ("../escape", "", "a b", ".hidden"):
        with pytest.raises(CanaryError, match="invalid canary name"):
            add_to_canary(tmp_path, bad, ["x"])
    with pytest.raises(CanaryError, match="no canary set named 'nope'"):
        load_canary(tmp_path, "nope")


def test_run_tags_and_stores_results_and_compares_with_previous_run(key, tmp_path):
    traces = {
        "t_ok": make_trace(trace_id="t_ok", response_text="Cancel from the account page within 30 days."),
        "t_alias": make_trace(trace_id="t_alias", model_returned=None),
    }
    add_to_canary(tmp_path, "nightly", ["t_ok", "t_alias", "t_missing"], n=3)
    with FakeAnthropicServer() as server:
        client = ReplayClient(base_url=server.base_url, sleep=lambda s: None)
        server.add_rule(Reply.message("Cancel from the account page within 30 days."))
        first = run_canary(tmp_path, "nightly", traces.get, client)
        assert set(first.skipped) == {"t_alias", "t_missing"}
        assert "alias" in first.skipped["t_alias"] and "not found" in first.skipped["t_missing"]
        assert len(first.results) == 3 and all(r.canary == "nightly" and r.canary_run_id == first.run_id for r in first.results)
        assert [v.verdict for v in first.verdicts] == ["reproduces"]
        server.reset()
        server.add_rule(Reply.refusal("I can't help with cancellations."))
        second = run_canary(tmp_path, "nightly", traces.get, client)
    stored = load_replays(tmp_path)
    assert stored.height == 6 and set(stored["canary_run_id"]) == {first.run_id, second.run_id}
    assert [r[0] for r in canary_runs(tmp_path, "nightly")] == [first.run_id, second.run_id]
    assert second.verdicts[0].verdict == "differs" and second.verdicts[0].refusal_flip == "answered->refused"

    cmp = compare_runs(tmp_path, "nightly")
    assert (cmp.run_id, cmp.previous_run_id) == (second.run_id, first.run_id)
    [p] = cmp.prompts
    assert p.trace_id == "t_ok" and p.changed and p.refusal_flip == "answered->refused"
    assert (p.refusal_rate_previous, p.refusal_rate_current) == (0.0, 1.0)
    assert p.similarity_previous == pytest.approx(1.0) and p.similarity_cross < 0.5
    assert p.length_ratio < 1

    same = compare_runs(tmp_path, "nightly", run_id=first.run_id, previous_run_id=first.run_id)
    assert not same.prompts[0].changed and same.prompts[0].similarity_cross == pytest.approx(1.0)
    with pytest.raises(CanaryError, match="no run"):
        compare_runs(tmp_path, "nightly", run_id="nope")
    with pytest.raises(CanaryError, match="no stored runs"):
        compare_runs(tmp_path, "other")
