"""Verdict rules on scripted replays with known answers (pure functions; no server)."""

from __future__ import annotations

import datetime as dt

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tracelens.replay.client import ReplayResult
from tracelens.replay.verdict import MIN_CONFORMAL_N, compute_verdict, conformal_p, judge, similarity_matrix

ANSWER = "To reset your password, open Settings, choose Security, then click 'Reset password' and follow the email link."
PARAPHRASES = [
    "To reset your password, open Settings, choose Security and click 'Reset password', then follow the emailed link.",
    "Open Settings, choose Security, then click 'Reset password' and follow the link in the email.",
    "Go to Settings > Security and click 'Reset password'; then follow the link we email you.",
    "To reset the password, open Settings, pick Security, click 'Reset password' and use the email link.",
    "In Settings, open Security and click 'Reset password'. Follow the email link to finish.",
]
REFUSAL = "I'm sorry, but I can't help with that request."


def result(text, stop_reason="end_turn", error=None, refusal=None):
    return ReplayResult(
        replay_id="r",
        trace_id="t",
        created_at=dt.datetime.now(dt.UTC),
        model_requested="claude-sonnet-4-5-20250929",
        response_text=None if error else text,
        stop_reason=None if error else stop_reason,
        refusal=refusal,
        error=error,
    )


def trace(text, stop_reason="end_turn"):
    return {"trace_id": "t", "response_text": text, "stop_reason": stop_reason}


def test_all_identical_reproduces():
    v = compute_verdict(trace(ANSWER), [result(ANSWER) for _ in range(5)])
    assert v.verdict == "reproduces"
    assert v.exact_match_rate == 1.0 and v.length_ratio == 1.0
    assert v.original_similarity == pytest.approx(1.0) and v.refusal_flip is None
    assert v.descriptive and v.p_value is None


def test_original_refused_but_replays_answer_differs_with_flip():
    v = compute_verdict(trace(REFUSAL), [result(p) for p in PARAPHRASES])
    assert v.verdict == "differs"
    # partial or full: both count as refused (the shared detector decides which)
    assert v.original_refusal in ("partial", "full") and v.replay_refusals == {"none": 5}
    assert v.refusal_flip == "refused->answered" and v.refusal_flip_share == 1.0
    assert any("refusal flip" in r for r in v.reasons)


def test_structured_refusal_in_replays_is_the_reverse_flip():
    replays = [result("", stop_reason="refusal") for _ in range(4)] + [result(ANSWER)]
    v = compute_verdict(trace(ANSWER), replays)
    assert v.verdict == "differs" and v.refusal_flip == "answered->refused"
    assert v.refusal_flip_share == pytest.approx(0.8)


def test_below_19_replays_is_descriptive_and_19_gives_a_p_value():
    few = compute_verdict(trace(ANSWER), [result(p) for p in PARAPHRASES])
    assert few.descriptive and few.p_value is None
    assert any("descriptive" in r for r in few.reasons)
    many = compute_verdict(trace(ANSWER), [result(PARAPHRASES[i % 5]) for i in range(MIN_CONFORMAL_N)])
    assert not many.descriptive and many.p_value is not None and 0 < many.p_value <= 1


def test_paraphrase_original_among_paraphrases_reproduces():
    v = compute_verdict(trace(PARAPHRASES[0]), [result(p) for p in PARAPHRASES[1:]] + [result(ANSWER)])
    assert v.verdict == "reproduces"
    assert v.exact_match_rate == 0.0
    assert v.original_similarity >= v.replay_similarity - 0.05


def test_outlier_original_with_19_identical_replays_differs_at_p_005():
    v = compute_verdict(trace("Bananas are yellow and grow in bunches."), [result(ANSWER) for _ in range(19)])
    assert v.verdict == "differs" and v.p_value == pytest.approx(1 / 20)


def test_outlier_original_with_few_replays_differs_descriptively():
    v = compute_verdict(trace("Bananas are yellow and grow in bunches."), [result(p) for p in PARAPHRASES])
    assert v.verdict == "differs" and v.descriptive
    assert any("outside the replays' spread" in r for r in v.reasons)


def test_within_variance_when_original_is_less_typical_but_inside_the_spread():
    replays = [
        ANSWER,
        PARAPHRASES[0],
        PARAPHRASES[3],
        "Unrelated: our office hours are 9 to 5 on weekdays, and support replies within a day.",
    ]
    original = "Settings > Security > Reset password. You'll get an email."
    v = compute_verdict(trace(original), [result(t) for t in replays])
    assert v.verdict == "within_variance", v
    assert v.replay_similarity_min - 0.10 <= v.original_similarity < v.replay_similarity - 0.05


def test_errors_are_excluded_and_all_errors_is_inconclusive():
    v = compute_verdict(trace(ANSWER), [result(ANSWER), result(None, error="HTTP 529"), result(ANSWER)])
    assert v.n_replays == 2 and v.n_errors == 1 and v.verdict == "reproduces"
    v = compute_verdict(trace(ANSWER), [result(None, error="timed out")])
    assert v.verdict == "inconclusive" and v.n_errors == 1


def test_single_non_matching_replay_is_within_variance():
    v = compute_verdict(trace(ANSWER), [result(PARAPHRASES[0])])
    assert v.verdict == "within_variance" and v.replay_similarity is None


def test_embedder_is_used_when_given():
    calls = []

    def embed(texts):
        calls.append(list(texts))
        return np.array([[1.0, 0.0] if "Settings" in t else [0.0, 1.0] for t in texts])

    v = compute_verdict(trace(ANSWER), [result(p) for p in PARAPHRASES], embedder=embed)
    assert calls and v.similarity_method == "embedder" and v.verdict == "reproduces"
    assert v.original_similarity == pytest.approx(1.0)


def test_tfidf_similarity_is_deterministic_and_handles_empty_texts():
    texts = ["", "", "ab", ANSWER]
    a, method = similarity_matrix(texts)
    b, _ = similarity_matrix(texts)
    assert method == "char3-tfidf" and np.array_equal(a, b)
    assert a[0, 1] == 1.0 and a[2, 2] == 1.0 and a[0, 3] == 0.0
    assert similarity_matrix(["", ""])[0].tolist() == [[1.0, 1.0], [1.0, 1.0]]


def test_verdict_is_json_ready():
    d = compute_verdict(trace(ANSWER), [result(ANSWER)]).to_dict()
    assert d["verdict"] == "reproduces" and isinstance(d["reasons"], list)


def test_judge_uses_given_labels():
    v = judge("t", "answer", "none", ["answer", "answer"], ["partial", "full"])
    assert v.verdict == "differs" and v.refusal_flip == "answered->refused"


@settings(max_examples=40, deadline=None)
@given(st.integers(min_value=1, max_value=30), st.integers(min_value=0, max_value=10_000))
def test_conformal_p_is_a_rank_share(n, seed):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n + 1, 4))
    x /= np.linalg.norm(x, axis=1, keepdims=True)
    p = conformal_p(x @ x.T)
    assert 1 / (n + 1) - 1e-9 <= p <= 1.0
    assert round(p * (n + 1), 6) == int(round(p * (n + 1)))
