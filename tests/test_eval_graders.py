"""Graders of task evals: parsing (errors name the field), every type's pass/fail/edge cases, python graders,
tool-call tolerances, similarity with a deterministic embedder, and the LLM judge on the local fake API."""

from __future__ import annotations

import importlib.util

import numpy as np
import pytest

from tracelens.embed.models import FakeEmbedder
from tracelens.evals.graders import (
    GRADER_TYPES,
    GradeContext,
    JudgeError,
    JudgeVerdict,
    SuiteError,
    grade,
    grade_all,
    make_anthropic_judge,
    parse_grader,
)
from tracelens.evals.graders_match import extract_json, parse_verdict
from tracelens.evals.model import Case, Response, ToolCall, case_outcome

WHERE = "suite.yaml line 14, case 'refund-1', graders[2]"
CASE = Case(id="c1", request={"max_tokens": 10, "messages": [{"role": "user", "content": "hi"}]})


def g(obj, text="", ctx=None, case=CASE, **resp):
    spec = parse_grader(obj, WHERE)
    return grade(spec, Response(text=text, **resp), case, ctx or GradeContext())


def ok(obj, text="", **kw):
    r = g(obj, text, **kw)
    assert r.error is None, r.error
    return r.passed


# ---------------------------------------------------------------- parsing


def test_every_type_is_named_once_with_a_description():
    assert len(GRADER_TYPES) == 16 and all(isinstance(d, str) and d for d in GRADER_TYPES.values())


@pytest.mark.parametrize("obj, message", [
    ({"type": "similar", "threshold": 1.5}, f"{WHERE}.threshold: must be a number between 0 and 1"),
    ({"type": "nope"}, f"{WHERE}.type: unknown grader type 'nope' (allowed: equals,"),
    ({"value": "x"}, f"{WHERE}.type: missing"),
    ({"type": "contains"}, f"{WHERE}.value: required for 'contains'"),
    ({"type": "contains", "value": "x", "mdoe": "any"}, f"{WHERE}.mdoe: unknown parameter for 'contains' (allowed:"),
    ({"type": "contains", "value": "x", "mode": "some"}, f"{WHERE}.mode: must be 'any' or 'all'"),
    ({"type": "regex", "pattern": "(unclosed"}, f"{WHERE}.pattern: not a valid regular expression"),
    ({"type": "json-schema", "schema": {"type": "nonsense"}}, f"{WHERE}.schema: not a valid JSON schema"),
    ({"type": "length"}, f"{WHERE}: 'length' needs at least one of"),
    ({"type": "length", "min_words": 5, "max_words": 2}, f"{WHERE}.min_words: must not exceed max_words"),
    ({"type": "equals", "value": "x", "weight": 0}, f"{WHERE}.weight: must be a number greater than 0"),
    ({"type": "latency", "max_ms": -1}, f"{WHERE}.max_ms: must be a number greater than 0"),
    ({"type": "python", "value": "output ==="}, f"{WHERE}.value: inline python does not compile"),
    ({"type": "tool-call", "tool": "f", "tolerance": {"amount": {"abs": 0.1}}},
     f"{WHERE}.tolerance.amount: abs needs an expected value at arguments.amount"),
    ({"type": "tool-call", "tool": "f", "arguments": {"a": 1}, "tolerance": {"a": "fuzzy"}},
     f"{WHERE}.tolerance.a: must be \"ignore\""),
    ({"type": "refused", "count_partial": "yes"}, f"{WHERE}.count_partial: must be true or false"),
    (42, f"{WHERE}: a grader must be an object"),
])
def test_parse_errors_name_where_and_the_field(obj, message):
    with pytest.raises(SuiteError) as e:
        parse_grader(obj, WHERE)
    assert str(e.value).startswith(message), str(e.value)


def test_parse_keeps_only_given_params_and_round_trips():
    spec = parse_grader({"type": "contains", "value": ["a", "b"], "weight": 2, "name": "mentions"}, WHERE)
    assert spec.params == {"value": ["a", "b"]} and spec.weight == 2.0 and spec.label == "mentions"
    assert parse_grader(spec.to_dict(), WHERE) == spec
    assert parse_grader("refused", WHERE).type == "refused"  # a bare type name


# ---------------------------------------------------------------- text graders


def test_equals():
    assert ok({"type": "equals", "value": "Paris"}, "  Paris\n")
    assert not ok({"type": "equals", "value": "Paris", "strip": False}, "Paris\n")
    assert not ok({"type": "equals", "value": "paris"}, "Paris")
    assert ok({"type": "equals", "value": "paris", "case_sensitive": False}, "PARIS")
    assert ok({"type": "equals", "value": 4}, "4")
    assert ok({"type": "equals", "value": {"a": [1, 2]}}, '{"a": [1, 2]}')
    r = g({"type": "equals", "value": {"a": 1}}, "not json")
    assert r.passed is False and "not JSON" in r.reason


def test_contains_modes_and_negation():
    assert ok({"type": "contains", "value": "refund"}, "Your refund is on its way")
    assert not ok({"type": "contains", "value": "Refund"}, "your refund")
    assert ok({"type": "contains", "value": "Refund", "case_sensitive": False}, "your refund")
    assert not ok({"type": "contains", "value": ["refund", "days"]}, "refund soon")  # default all
    assert ok({"type": "contains", "value": ["refund", "days"], "mode": "any"}, "refund soon")
    assert ok({"type": "not-contains", "value": ["sorry", "cannot"]}, "Sure, here it is")
    r = g({"type": "not-contains", "value": ["sorry", "cannot"]}, "Sorry, I cannot")
    assert r.passed is False and "'cannot'" in r.reason  # default any: one is enough to fail
    assert ok({"type": "not-contains", "value": ["sorry", "cannot"], "mode": "all"}, "I cannot")


def test_regex_flags_and_negation():
    assert ok({"type": "regex", "pattern": r"\d{4}"}, "in 2024")
    assert not ok({"type": "regex", "pattern": "^total"}, "Sum\nTOTAL 5")
    assert ok({"type": "regex", "pattern": "^total", "ignore_case": True, "multiline": True}, "Sum\nTOTAL 5")
    assert ok({"type": "regex", "pattern": "a.b", "dotall": True}, "a\nb")
    assert ok({"type": "not-regex", "pattern": "(?i)as an ai"}, "Here you go")
    assert not ok({"type": "not-regex", "pattern": "(?i)as an ai"}, "As an AI, I")


def test_json_and_extract():
    assert ok({"type": "json"}, ' {"a": 1} ')
    assert not ok({"type": "json"}, 'Here: {"a": 1}')
    assert ok({"type": "json", "extract": True}, 'Here: {"a": 1} done')
    fenced = 'Sure!\n```json\n{"city": "Paris", "n": [1]}\n```\nAnything else?'
    assert extract_json(fenced) == {"city": "Paris", "n": [1]}
    assert extract_json("first {broken then [1, 2] end") == [1, 2]
    with pytest.raises(ValueError):
        extract_json("no json here {")


def test_json_schema():
    schema = {"type": "object", "required": ["city"], "properties": {"temp": {"type": "number"}}}
    assert ok({"type": "json-schema", "schema": schema}, '{"city": "Oslo", "temp": 3}')
    r = g({"type": "json-schema", "schema": schema}, '{"city": "Oslo", "temp": "cold"}')
    assert r.passed is False and r.reason.startswith("temp:")
    assert ok({"type": "json-schema", "schema": schema, "extract": True}, '```json\n{"city": "Oslo"}\n```')
    assert not ok({"type": "json-schema", "schema": schema}, "nope")


def test_length_and_latency():
    assert ok({"type": "length", "max_words": 3}, "one two three")
    assert not ok({"type": "length", "max_words": 3}, "one two three four")
    assert not ok({"type": "length", "min_chars": 10}, "short")
    assert ok({"type": "latency", "max_ms": 500}, "x", latency_ms=499.0)
    assert not ok({"type": "latency", "max_ms": 500}, "x", latency_ms=501.0)
    r = g({"type": "latency", "max_ms": 500}, "x")
    assert r.passed is None and "latency" in r.error


# ---------------------------------------------------------------- tool calls


def tc(obj, calls):
    return g(obj, "", tool_calls=[ToolCall(n, a) for n, a in calls])


def test_tool_call_exact_values_extra_fields_and_score():
    spec = {"type": "tool-call", "tool": "refund", "arguments": {"order": "A1", "amount": 20}}
    assert tc(spec, [("refund", {"order": "A1", "amount": 20.0, "note": "x"})]).passed  # extra allowed
    r = tc(spec, [("lookup", {"order": "A1"}), ("refund", {"order": "A1", "amount": 25})])
    assert r.passed is False and r.score == 0.5 and "amount=25" in r.reason
    r = tc({**spec, "exact": True}, [("refund", {"order": "A1", "amount": 20, "note": "x"})])
    assert r.passed is False and "unexpected note" in r.reason
    r = tc(spec, [("lookup", {"order": "A1", "amount": 20})])
    assert r.passed is False and r.score == 0.0  # a name mismatch scores 0
    assert tc(spec, []).reason.startswith("no tool call")
    assert tc({"type": "tool-call", "tool": "refund"}, [("refund", {})]).passed  # name only
    assert tc(spec, [("refund", '{"order": "A1", "amount": 20}')]).passed  # JSON string input
    assert not tc(spec, [("refund", "not json")]).passed


def test_tool_call_tolerance_rules_and_nested_paths():
    spec = {
        "type": "tool-call", "tool": "book",
        "arguments": {"amount": 100.0, "city": "Paris", "note": "hi", "trip": {"date": "x", "nights": 3}},
        "tolerance": {"amount": {"abs": 0.01}, "city": "case-insensitive", "note": "ignore",
                      "trip.date": {"regex": r"2026-\d\d-\d\d"}},
    }
    good = {"amount": 100.004, "city": " paris", "note": "whatever", "trip": {"date": "2026-05-01", "nights": 3}}
    assert tc(spec, [("book", good)]).passed
    assert tc(spec, [("book", {k: v for k, v in good.items() if k != "note"})]).passed  # ignored may be absent
    assert not tc(spec, [("book", {**good, "amount": 100.02})]).passed
    r = tc(spec, [("book", {**good, "trip": {"date": "May 1", "nights": 4}})])
    assert r.passed is False and r.score == pytest.approx(2 / 4) and "trip.date" in r.reason
    rel = {"type": "tool-call", "tool": "f", "arguments": {"x": 200}, "tolerance": {"x": {"rel": 0.05}}}
    assert tc(rel, [("f", {"x": 209})]).passed and not tc(rel, [("f", {"x": 211})]).passed
    assert not tc(rel, [("f", {"x": "209"})]).passed  # a string is not a number
    exact = {**spec, "exact": True}
    assert tc(exact, [("book", {**good, "note": "extra is ignored"})]).passed
    assert not tc(exact, [("book", {**good, "trip": {**good["trip"], "pets": 1}})]).passed


# ---------------------------------------------------------------- refusals


def test_refused_uses_the_label_when_set_else_the_detector():
    assert ok({"type": "refused"}, "whatever", refusal="full")
    assert ok({"type": "not-refused"}, "I can't help with that.", refusal="none")  # the set label wins
    assert ok({"type": "refused"}, "I'm sorry, but I can't help with that request.")
    assert ok({"type": "refused"}, "", stop_reason="refusal")
    assert ok({"type": "not-refused"}, "Sure! Here is the recipe.")
    assert ok({"type": "refused"}, "x", refusal="partial")
    assert not ok({"type": "refused", "count_partial": False}, "x", refusal="partial")


# ---------------------------------------------------------------- similarity


@pytest.fixture(scope="module")
def fake_ctx():
    return GradeContext(embedder=FakeEmbedder())


def test_similar_with_a_deterministic_embedder(fake_ctx):
    spec = {"type": "similar", "value": "Your refund will arrive in five business days."}
    close = g(spec, "Your refund will arrive within five business days.", fake_ctx)
    far = g(spec, "Quantum chromodynamics describes the strong force.", fake_ctx)
    assert close.passed and close.score > 0.8 and far.passed is False and far.score < close.score
    assert 0 <= far.score <= 1 and "cosine" in far.reason
    # a list passes when any value is close; the default value is the case's reference
    assert g({**spec, "value": ["unrelated words entirely", spec["value"]]}, spec["value"], fake_ctx).passed
    case = Case(id="r", request={}, reference="The meeting moved to Tuesday at noon.")
    assert g({"type": "similar"}, "The meeting moved to Tuesday at noon!", fake_ctx, case=case).passed
    r = g({"type": "similar"}, "x", fake_ctx)
    assert r.passed is None and "reference" in r.error


def test_similar_without_an_embedder_is_an_error_not_a_fallback():
    r = g({"type": "similar", "value": "x"}, "x")
    assert r.passed is None and r.score == 0 and "embedding model" in r.error


def test_behaves_like(fake_ctx):
    ref = "To reset your password, open Settings, choose Security and click Reset password."
    answered = Case(id="a", request={}, reference=ref)
    spec = {"type": "behaves-like"}
    assert g(spec, ref.replace("click", "press"), fake_ctx, case=answered).passed
    r = g(spec, "I'm sorry, but I can't help with that.", fake_ctx, case=answered)
    assert r.passed is False and "answered, this one refused" in r.reason
    r = g(spec, "Bananas are rich in potassium and grow in bunches.", fake_ctx, case=answered)
    assert r.passed is False and "cosine" in r.reason
    refused = Case(id="b", request={}, reference="I can't help with that.", reference_refusal="full")
    assert g(spec, "I cannot assist with that.", fake_ctx, case=refused).passed  # both refused: no similarity
    assert not g(spec, "Sure, here is how.", fake_ctx, case=refused).passed
    r = g(spec, "anything", fake_ctx)
    assert r.passed is None and "recorded response" in r.error
    r = g(spec, ref, case=answered)
    assert r.passed is None and "embedding model" in r.error


@pytest.mark.skipif(importlib.util.find_spec("sentence_transformers") is None, reason="embed extra not installed")
def test_similar_with_the_real_default_model():
    from tracelens.embed.models import bundled_model_path, get_embedder

    if bundled_model_path() is None:
        pytest.skip("bundled model weights not installed")
    ctx = GradeContext(embedder=get_embedder(None, device="cpu", batch_size=8))
    spec = {"type": "similar", "value": "How do I get a refund for my order?", "threshold": 0.45}
    assert g(spec, "I want my money back for this purchase.", ctx).passed
    assert not g(spec, "Write a haiku about autumn leaves.", ctx).passed


# ---------------------------------------------------------------- python


def test_python_inline_expression_and_body():
    assert ok({"type": "python", "value": "'Paris' in output"}, "It is Paris.")
    assert not ok({"type": "python", "value": "'Paris' in output"}, "Rome")
    body = "if output.startswith('Yes'):\n    return {'pass': True, 'score': 0.5, 'reason': 'starts yes'}\n" \
           "return {'pass_': False, 'score': 0, 'reason': 'no'}"
    r = g({"type": "python", "value": body}, "Yes indeed")
    assert (r.passed, r.score, r.reason) == (True, 0.5, "starts yes")
    assert g({"type": "python", "value": body}, "No").passed is False
    assert ok({"type": "python", "value": "context['vars']['topic'] in output", "vars": {"topic": "bananas"}},
              "I like bananas")
    # a number is a score: passes when > 0, or >= threshold when given
    assert ok({"type": "python", "value": "len(output) / 10"}, "abc")
    assert not ok({"type": "python", "value": "len(output) / 10", "threshold": 0.5}, "abc")
    r = g({"type": "python", "value": body, "threshold": 0.8}, "Yes indeed")
    assert r.passed is False and "threshold" in r.reason


def test_python_file_grader_relative_to_the_suite_and_errors(tmp_path):
    (tmp_path / "graders").mkdir()
    (tmp_path / "graders" / "check.py").write_text(
        "def get_assert(output, context):\n    return len(output) <= context['config']['limit']\n\n"
        "def buggy(output, context):\n    return 1 / 0\n\n"
        "def weird(output, context):\n    return ['not', 'a', 'result']\n"
    )
    ctx = GradeContext(suite_dir=tmp_path)
    spec = {"type": "python", "value": "graders/check.py", "config": {"limit": 5}}
    assert g(spec, "short", ctx).passed and g(spec, "too long", ctx).passed is False
    r = g({"type": "python", "value": "file://graders/check.py:buggy"}, "x", ctx)
    assert r.passed is None and r.score == 0 and r.error.startswith("ZeroDivisionError:")
    r = g({"type": "python", "value": "graders/check.py:weird"}, "x", ctx)
    assert r.passed is None and r.error.startswith("TypeError:")
    r = g({"type": "python", "value": "graders/missing.py"}, "x", ctx)
    assert r.passed is None and "not found" in r.error
    r = g({"type": "python", "value": "json:no_such_function"}, "x", ctx)
    assert r.passed is None and "no_such_function" in r.error
    # a grader error makes the case fail, never crash the run
    spec_b = parse_grader({"type": "python", "value": "graders/check.py:buggy"}, WHERE)
    grades = grade_all([spec_b, parse_grader({"type": "contains", "value": "x"}, WHERE)], Response(text="x"), CASE, ctx)
    assert [x.passed for x in grades] == [None, True]
    assert case_outcome(Response(text="x"), grades) == ("fail", 0.5)


def test_grade_all_skips_an_errored_response():
    assert grade_all([parse_grader("refused", WHERE)], Response(error="HTTP 500"), CASE) == []


# ---------------------------------------------------------------- llm judge


def test_llm_judge_off_is_an_error():
    r = g({"type": "llm-judge", "rubric": "polite"}, "hello")
    assert r.passed is None and r.error == "GraderError: llm-judge is off: pass --judge MODEL"


def test_llm_judge_threshold_and_custom_judge():
    seen = []

    def judge(rubric, output, case):
        seen.append((rubric, output, case.id))
        return JudgeVerdict(True, 0.4, "somewhat polite", 0.001)

    ctx = GradeContext(judge=judge)
    r = g({"type": "llm-judge", "rubric": "is polite"}, "hi", ctx)
    assert r.passed is False and r.score == 0.4 and "threshold 0.5" in r.reason and r.cost_usd == 0.001
    assert g({"type": "llm-judge", "rubric": "is polite", "threshold": 0.3}, "hi", ctx).passed
    assert seen[0] == ("is polite", "hi", "c1")
    per_model = GradeContext(judge=judge, judge_factory=lambda m: lambda r, o, c: JudgeVerdict(False, 0.9, m))
    r = g({"type": "llm-judge", "rubric": "x", "model": "claude-haiku-4-5"}, "hi", per_model)
    assert r.passed is False and r.reason == "claude-haiku-4-5"


def test_parse_verdict_is_defensive():
    assert parse_verdict('{"reason": "ok", "score": 0.9, "pass": true}') == (True, 0.9, "ok")
    assert parse_verdict('Verdict:\n```json\n{"pass": false}\n```') == (False, 0.0, "")
    for bad in ("I think it passes", '{"score": 0.5}', '{"pass": "yes"}', '{"pass": true, "score": 7}', "[1]"):
        with pytest.raises(JudgeError):
            parse_verdict(bad)


def test_anthropic_judge_against_the_fake_server():
    from tracelens.testing.fake_anthropic import FakeAnthropicServer, Reply

    with FakeAnthropicServer() as server:
        server.add_rule(Reply.message('{"reason": "clear and polite", "score": 0.9, "pass": true}',
                                      input_tokens=1000, output_tokens=100), contains="Thanks for waiting")
        server.add_rule(Reply.message("I would say it passes."), contains="broken")
        judge = make_anthropic_judge("claude-haiku-4-5", base_url=server.base_url, env={"ANTHROPIC_API_KEY": "k"})
        ctx = GradeContext(judge=judge)
        r = g({"type": "llm-judge", "rubric": "is polite"}, "Thanks for waiting, here is your answer.", ctx)
        assert (r.passed, r.score, r.reason) == (True, 0.9, "clear and polite")
        assert r.cost_usd == pytest.approx((1000 * 1.0 + 100 * 5.0) / 1e6)  # haiku 4.5 list price
        body = server.requests[-1].json
        assert body["model"] == "claude-haiku-4-5" and body["temperature"] == 0
        assert "<rubric>\nis polite\n</rubric>" in body["messages"][0]["content"] and '"pass"' in body["system"]
        r = g({"type": "llm-judge", "rubric": "is polite"}, "broken output", ctx)
        assert r.passed is None and r.error.startswith("JudgeError:") and "no JSON verdict" in r.error
    with pytest.raises(ValueError, match="ANTHROPIC_API_KEY"):
        make_anthropic_judge("claude-haiku-4-5", env={})


def test_cosine_handles_unnormalised_embeddings():
    ctx = GradeContext(embedder=lambda texts: np.array([[3.0, 0.0], [1.0, 1.0]]))
    r = g({"type": "similar", "value": "y", "threshold": 0.7}, "x", ctx)
    assert r.passed and r.score == pytest.approx(2 ** -0.5)
