"""Folding (analysis.draft): a week-over-week finding explained by a within-window finding is shown once."""

from __future__ import annotations

from tracelens.analysis.draft import Draft, finalise

SEV = {"model_snapshot": "alert"}


def _explainer(kind="cohort", metric="latency", scope=("c1", "c2", "c3"), p=1e-6) -> Draft:
    return Draft(kind=kind, segment="region=apac", baseline_value=0.0, current_value=1.0, effect=0.5, summary="E.",
                 p_value=p, practical=True, metric=metric, scope=frozenset(scope), evidence=tuple(scope))


def _wow(kind="latency", evidence=("c1", "c2", "x9"), retest=None, p=1e-4) -> Draft:
    return Draft(kind=kind, segment="model=m", baseline_value=1.0, current_value=1.1, effect=0.1, summary="W.",
                 p_value=p, practical=False, evidence=tuple(evidence), retest=retest)


def _by_kind(findings):
    return {f.kind: f for f in findings}


def test_evidence_inside_the_scope_folds_and_names_the_explainer():
    f = _by_kind(finalise([_explainer(), _wow()], 0.05, SEV))
    assert f["cohort"].severity == "alert"
    assert f["latency"].severity == "info" and f["latency"].significant
    assert "Part of the cohort finding on region=apac (the same traces)" in f["latency"].summary


def test_retest_without_the_scope_decides_when_evidence_is_elsewhere():
    seen = []

    def gone(ids):
        seen.append(ids)
        return 0.4

    f = _by_kind(finalise([_explainer(), _wow(evidence=("x1", "x2", "x3"), retest=gone)], 0.05, SEV))
    assert f["latency"].severity == "info" and "not significant, p=0.4" in f["latency"].summary
    assert seen == [frozenset({"c1", "c2", "c3"})]
    # still significant without the cohort: a change of its own, kept at warn
    f = _by_kind(finalise([_explainer(), _wow(evidence=("x1", "x2", "x3"), retest=lambda ids: 1e-3)], 0.05, SEV))
    assert f["latency"].severity == "warn" and "Part of" not in f["latency"].summary


def test_two_explainers_together_explain_what_neither_does_alone():
    a = _explainer(kind="time_of_day", scope=("a1",))
    b = _explainer(kind="cohort", scope=("b1",))
    w = _wow(evidence=("x1",), retest=lambda ids: 0.3 if ids == {"a1", "b1"} else 1e-3)
    f = _by_kind(finalise([a, b, w], 0.05, SEV))
    assert f["latency"].severity == "info"
    assert "the time_of_day finding on region=apac and the cohort finding on region=apac" in f["latency"].summary


def test_no_fold_across_metrics_or_from_an_insignificant_explainer():
    f = _by_kind(finalise([_explainer(metric="refusal"), _wow()], 0.05, SEV))
    assert f["latency"].severity == "warn"
    f = _by_kind(finalise([_explainer(p=0.5), _wow()], 0.05, SEV))
    assert f["latency"].severity == "warn"


def test_a_cohort_folds_into_a_more_specific_step_not_the_other_way():
    step = _explainer(kind="changepoint", scope=("c1", "c2", "c3"))
    cohort = _explainer(kind="cohort", scope=("c1", "c2", "c3"))
    f = _by_kind(finalise([cohort, step], 0.05, SEV))
    assert f["changepoint"].severity == "alert"
    assert f["cohort"].severity == "info" and "Part of the changepoint finding" in f["cohort"].summary


def test_the_new_snapshot_explains_nothing():
    snap = _explainer(kind="snapshot_behaviour", metric="refusal", scope=("c1", "c2", "c3"))
    f = _by_kind(finalise([snap, _wow(kind="refusal_rate", evidence=("c1", "c2", "c3"), retest=lambda ids: 0.6)], 0.05, SEV))
    assert f["refusal_rate"].severity == "warn"


def test_a_semantic_shift_made_of_stepped_refusals_folds_by_evidence():
    step = _explainer(kind="changepoint", metric="refusal", scope=("c1", "c2", "c3"))
    sem = _wow(kind="response_semantic", evidence=("c1", "c2", "x1"))
    f = _by_kind(finalise([step, sem], 0.05, SEV))
    assert f["response_semantic"].severity == "info" and "changepoint" in f["response_semantic"].summary
    other = _wow(kind="response_semantic", evidence=("x1", "x2", "c1"))
    f = _by_kind(finalise([step, other], 0.05, SEV))
    assert f["response_semantic"].severity == "warn"


def test_the_headline_reads_back_the_step_a_finding_is_part_of():
    from tracelens.analysis.draft import part_of_step

    step = _explainer(kind="changepoint", metric="refusal", scope=("c1", "c2"))
    step.segment = "snapshot=haiku-x metric=refusal"
    f = _by_kind(finalise([step, _wow(kind="refusal_rate", evidence=("c1", "c2"))], 0.05, SEV))
    assert part_of_step(f["refusal_rate"].summary) == "haiku-x"
    assert part_of_step(f["changepoint"].summary) is None
