"""analysis.draft.Scope: a finding's trace ids as a polars Series that behaves as the frozenset it replaces."""

from __future__ import annotations

import polars as pl

from tracelens.analysis.draft import Draft, Scope, finalise, scope_ids

SEV = {"model_snapshot": "alert"}


def _explainer(kind: str, ids: list[str]) -> Draft:
    return Draft(kind=kind, segment="region=apac", baseline_value=0.0, current_value=1.0, effect=0.5, summary="E.",
                 p_value=1e-6, practical=True, metric="latency", scope=Scope(pl.Series(ids)), evidence=tuple(ids))


def _wow(evidence, retest=None) -> Draft:
    return Draft(kind="latency", segment="model=m", baseline_value=1.0, current_value=1.1, effect=0.1, summary="W.",
                 p_value=1e-4, practical=False, evidence=tuple(evidence), retest=retest)


def test_a_scope_is_a_set_of_its_ids():
    s = Scope(pl.Series(["a", "b", "b", "c"]))
    assert len(s) == 3 and s == frozenset("abc") and "b" in s and "z" not in s
    assert {"a", "c"} <= s and s <= frozenset("abcd") and not s <= {"a"}
    assert scope_ids(s).to_list() == ["a", "b", "c"] and sorted(scope_ids(frozenset("xy")).to_list()) == ["x", "y"]


def test_folding_with_scopes_as_with_frozensets():
    # evidence mostly inside the explainer's scope: folded at info, named
    f = {x.kind: x for x in finalise([_explainer("cohort", ["c1", "c2", "c3"]), _wow(["c1", "c2", "x9"])], 0.05, SEV)}
    assert f["latency"].severity == "info" and "Part of the cohort finding" in f["latency"].summary
    # evidence elsewhere: the retest gets the union of the scopes that are not inside another one
    seen = []

    def retest(ids):
        seen.append(set(scope_ids(ids).to_list()))
        return 0.3 if seen[-1] == {"a1", "a2", "b1"} else 1e-3

    a, b = _explainer("time_of_day", ["a1", "a2"]), _explainer("cohort", ["b1"])
    inner = _explainer("load", ["a1"])  # inside time_of_day's scope: adds nothing to the union
    f = {x.kind: x for x in finalise([a, b, inner, _wow(["x1"], retest)], 0.05, SEV)}
    assert f["latency"].severity == "info" and seen[-1] == {"a1", "a2", "b1"}
