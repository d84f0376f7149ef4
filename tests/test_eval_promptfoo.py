"""Reading promptfoo configs (fixtures modelled on promptfoo's own examples) into task-eval cases."""

from __future__ import annotations

from pathlib import Path

import pytest

from tracelens.evals.graders import GradeContext, SuiteError, grade
from tracelens.evals.model import Response
from tracelens.evals.promptfoo import PROVIDERS_NOTE, line_of, load_promptfoo, render, yaml_lines

FIX = Path(__file__).parent / "fixtures" / "promptfoo"


def by_id(cases):
    return {c.id: c for c in cases}


def test_prompts_tests_default_test_and_providers_note():
    cases, notes = load_promptfoo(FIX / "translate.yaml")
    assert notes == [PROVIDERS_NOTE]
    # 3 tests x 2 prompts; ids: description or 1-based position, then the prompt number
    assert [c.id for c in cases] == ["french greeting/1", "french greeting/2", "2/1", "2/2", "no defaults here/1",
                                     "no defaults here/2"]
    c = by_id(cases)
    assert c["french greeting/1"].request == {
        "max_tokens": 1024, "messages": [{"role": "user", "content": "Convert this English to French: Hello world"}]}
    assert c["french greeting/2"].request["messages"][0]["content"] == "Translate to French: Hello world"
    assert "model" not in c["2/1"].request
    # defaultTest vars sit under the test's own, and its asserts come first
    assert c["2/1"].request["messages"][0]["content"] == "Convert this English to Spanish: Where is the library?"
    fr = c["french greeting/1"]
    assert fr.description == "french greeting"
    assert [g.type for g in fr.graders] == ["not-contains", "contains", "contains"]
    assert fr.graders[0].params == {"value": "as an ai", "case_sensitive": False}
    world = fr.graders[2]
    assert world.params == {"value": ["monde", "world"], "mode": "any", "case_sensitive": False}
    assert (world.weight, world.name) == (2.0, "mentions-world")
    assert c["2/1"].tags == {"difficulty": "easy", "priority": "2"}
    # options.disableDefaultAsserts drops only the default asserts
    german = c["no defaults here/1"]
    assert [(g.type, g.params) for g in german.graders] == [("equals", {"value": "Hallo Welt", "strip": False})]


def test_each_assert_type_maps_onto_a_grader():
    cases, notes = load_promptfoo(FIX / "assertions.yaml")
    assert notes == [] and len(cases) == 1
    got = [(g.type, g.params) for g in cases[0].graders]
    check = str((FIX / "check_order.py").resolve())
    question_vars = {"question": "Where is my order?", "expected": "Your order ships tomorrow."}
    assert got == [
        ("equals", {"value": "Your order ships tomorrow.", "strip": False}),
        ("contains", {"value": "order"}),
        ("contains", {"value": "ORDER", "case_sensitive": False}),
        ("not-contains", {"value": "sorry"}),
        ("not-contains", {"value": "SORRY", "case_sensitive": False}),
        ("contains", {"value": ["ships", "shipped"], "mode": "any"}),
        ("contains", {"value": ["order", "tomorrow"], "mode": "all"}),
        ("contains", {"value": ["ORDER", "TOMORROW"], "mode": "all", "case_sensitive": False}),
        ("not-contains", {"value": ["refund", "cancel"], "mode": "any"}),
        ("regex", {"pattern": r"\AYour\ \(order\)"}),
        ("regex", {"pattern": r"\d+ days?|tomorrow"}),
        ("not-regex", {"pattern": "(?i)as an ai"}),
        ("json", {}),
        ("json-schema", {"schema": {"type": "object", "required": ["status"]}}),
        ("json", {"extract": True}),
        ("similar", {"threshold": 0.75, "value": "Your order ships tomorrow."}),  # vars rendered in values
        ("similar", {"threshold": 0.6, "value": "Your parcel leaves tomorrow"}),
        ("llm-judge", {"rubric": 'Answers "Where is my order?" politely', "threshold": 0}),
        ("llm-judge", {"rubric": "Is concise", "threshold": 0.8, "model": "claude-haiku-4-5"}),
        ("python", {"value": "context['vars']['question'] != '' and 'order' in output", "vars": question_vars}),
        ("python", {"value": f"{check}:check", "config": {"max_len": 200}, "vars": question_vars}),
        ("refused", {}),
        ("not-refused", {}),
        ("latency", {"max_ms": 5000}),
    ]


def test_mapped_graders_grade_as_promptfoo_would():
    cases, _ = load_promptfoo(FIX / "assertions.yaml")
    graders = cases[0].graders
    answer = Response(text="Your order ships tomorrow.", latency_ms=1200.0)
    results = [grade(g, answer, cases[0], GradeContext()) for g in graders]
    passed = {i: r.passed for i, r in enumerate(results)}
    assert passed[0] and passed[1] and passed[2] and passed[9] is False  # starts-with is literal, not a regex
    assert passed[19] and passed[20] and results[20].reason == "short enough"  # both python forms run
    assert passed[22] and passed[23] and passed[21] is False
    assert results[17].passed is None and "llm-judge is off" in results[17].error


def test_unsupported_assert_type_names_type_line_and_suggestion():
    with pytest.raises(SuiteError) as e:
        load_promptfoo(FIX / "unsupported.yaml")
    msg = str(e.value)
    assert msg.startswith("unsupported.yaml line 11, tests[0].assert[1].type: promptfoo assertion type 'javascript'")
    assert "python grader" in msg


@pytest.mark.parametrize("assertion, line, expect", [
    ("- type: webhook\n        value: https://example.com", 7, "'webhook' is not supported: call your service"),
    ("- type: cost\n        threshold: 0.01", 7, "'cost' is not supported"),
    ("- type: perplexity\n        threshold: 2", 7, "no log-probabilities"),
    ("- type: contains\n        value: x\n        transform: output.trim()", 9,
     "assert[0].transform: assertion transforms"),
    ("- type: similar\n        value: x\n        threshold: 2", 7,
     "assert[0].threshold: must be a number between 0 and 1"),
    ("- type: contains\n        value: x\n        weight: 0", 7, "weight 0"),
])
def test_other_unsupported_or_invalid_asserts(tmp_path, assertion, line, expect):
    cfg = tmp_path / "promptfooconfig.yaml"
    cfg.write_text(f"prompts:\n  - 'Say {{{{x}}}}'\ntests:\n  - vars:\n      x: hi\n    assert:\n      {assertion}\n")
    with pytest.raises(SuiteError) as e:
        load_promptfoo(cfg)
    assert expect in str(e.value) and str(e.value).startswith(f"promptfooconfig.yaml line {line}"), str(e.value)


def test_file_prompts_chat_json_and_tests_file_with_var_lists():
    cases, notes = load_promptfoo(FIX / "chat.yaml")
    assert notes == [PROVIDERS_NOTE]
    # 3 prompts (a chat JSON file and a .txt holding two prompts split by ---) x (1 + 2 var combinations)
    assert [c.id for c in cases] == ["fizzbuzz/1", "fizzbuzz/2", "fizzbuzz/3", "reverse#1/1", "reverse#1/2",
                                     "reverse#1/3", "reverse#2/1", "reverse#2/2", "reverse#2/3"]
    c = by_id(cases)
    assert c["fizzbuzz/1"].request == {
        "max_tokens": 1024,
        "system": "You are a helpful coding assistant for Acme.",
        "messages": [
            {"role": "user", "content": "What is recursion?"},
            {"role": "assistant", "content": "Recursion is when a function calls itself."},
            {"role": "user", "content": "Write a function to print fizzbuzz in PYTHON."},
        ],
    }
    assert c["fizzbuzz/2"].request["messages"] == [
        {"role": "user", "content": "Write a function to print fizzbuzz in python."}]
    assert c["fizzbuzz/3"].request["messages"][0]["content"].startswith("Explain how to print fizzbuzz in python")
    assert c["reverse#2/2"].request["messages"][0]["content"] == "Write a function to reverse a string in go."
    assert c["reverse#2/1"].graders[0].params == {"value": "go", "case_sensitive": False}  # rendered per combination


def test_csv_tests_with_expected_columns():
    cases, _ = load_promptfoo(FIX / "csv_suite.yaml")
    c = by_id(cases)
    assert list(c) == ["basic math", "capital", "colors"]
    math = c["basic math"]
    assert math.request["messages"][0]["content"] == "Q: What is 2+2?"
    assert [(g.type, g.params) for g in math.graders] == [("equals", {"value": "4", "strip": False}),
                                                          ("contains", {"value": "four"})]
    assert math.tags == {"category": "math", "tags": "easy,arith"}
    assert [(g.type, g.params) for g in c["capital"].graders] == [
        ("equals", {"value": "Paris", "strip": False}),
        ("similar", {"threshold": 0.7, "value": "The capital of France is Paris"})]
    assert c["colors"].graders[0].params == {"value": ["red", "blue", "yellow"], "mode": "any",
                                             "case_sensitive": False}


def test_unsupported_filter_names_the_template():
    with pytest.raises(SuiteError) as e:
        load_promptfoo(FIX / "bad_filter.yaml")
    assert str(e.value).startswith("bad_filter.yaml line 2, prompts[0]: unsupported filter 'capitalize'")
    assert "'Hello {{ name | capitalize }}'" in str(e.value)


def test_render_placeholders_filters_and_tags():
    v = {"name": "Ada", "user": {"langs": ["py", "go"]}, "n": 3, "flag": True, "obj": {"a": 1}}
    assert render("Hi {{name}} / {{ name | upper }} / {{user.langs | join(', ')}} / {{n}} {{flag}}", v, "w") == \
        "Hi Ada / ADA / py, go / 3 true"
    assert render("{{ obj | dump }} {{ missing }}!", v, "w") == '{"a": 1} !'  # undefined renders empty
    with pytest.raises(SuiteError, match="Nunjucks tags"):
        render("{% if name %}x{% endif %}", v, "where")
    with pytest.raises(SuiteError, match="unsupported template expression"):
        render("{{ name + 1 }}", v, "where")


def test_vars_compose_and_default_prompt(tmp_path):
    (tmp_path / "ctx.txt").write_text("Bananas are yellow.")
    cfg = tmp_path / "promptfooconfig.yaml"
    cfg.write_text(
        "tests:\n"
        "  - vars:\n"
        "      prompt: 'Write a {{item}}. Context: {{context}}'\n"
        "      item: 'tweet about {{topic}}'\n"
        "      topic: bananas\n"
        "      context: file://ctx.txt\n"
    )
    cases, _ = load_promptfoo(cfg)
    assert cases[0].id == "1"
    # no prompts: promptfoo's {{prompt}} passthrough; vars reference other vars
    assert cases[0].request["messages"][0]["content"] == "Write a tweet about {{topic}}. Context: Bananas are yellow."


def test_scripted_prompts_and_tests_are_refused(tmp_path):
    cfg = tmp_path / "c.yaml"
    (tmp_path / "gen.js").write_text("module.exports = () => []")
    cfg.write_text("prompts:\n  - 'x'\ntests: file://gen.js\n")
    with pytest.raises(SuiteError, match=r"c.yaml line 3, tests: \.js test files are not supported"):
        load_promptfoo(cfg)
    cfg.write_text("prompts:\n  - exec:./make_prompt.sh\n")
    with pytest.raises(SuiteError, match="exec: prompts are not supported"):
        load_promptfoo(cfg)
    cfg.write_text("prompts: ['x']\nscenarios:\n  - config: []\n")
    with pytest.raises(SuiteError, match="c.yaml line 2, scenarios: scenarios is not supported"):
        load_promptfoo(cfg)


def test_yaml_lines_maps_paths_to_lines():
    text = "a: 1\nlist:\n  - x: 1\n    y:\n      - p\n      - q\n  - z\n"
    lines = yaml_lines(text)
    assert lines[("a",)] == 1 and lines[("list",)] == 2 and lines[("list", 0)] == 3
    assert lines[("list", 0, "y", 1)] == 6 and lines[("list", 1)] == 7
    assert line_of(lines, ("list", 0, "y", 1, "deeper")) == 6 and line_of({}, ("a",)) is None
    assert yaml_lines("a: [unclosed") == {}



def test_list_of_objects_is_one_var_and_odd_var_templates_stay_raw(tmp_path):
    cfg = tmp_path / "promptfooconfig.yaml"
    cfg.write_text(
        "prompts:\n  - '{{ history | dump }} -- {{ code }}'\n"
        "tests:\n"
        "  - vars:\n"
        "      history:\n        - role: user\n          content: hello\n"
        "      code: 'use {% raw %} here'\n"
    )
    cases, _ = load_promptfoo(cfg)
    assert len(cases) == 1
    assert cases[0].request["messages"][0]["content"] == '[{"role": "user", "content": "hello"}] -- use {% raw %} here'


def test_skip_unsupported_leaves_out_what_cannot_run_and_says_so(tmp_path):
    cases, notes = load_promptfoo(FIX / "unsupported.yaml", skip_unsupported=True)
    assert [g.type for g in cases[0].graders] == ["json"]
    assert any(n.startswith("skipped: unsupported.yaml line 11") and "'javascript'" in n for n in notes)
    p = tmp_path / "transformed.yaml"
    p.write_text("prompts: ['Describe {{item}}']\ntests:\n  - vars: {item: a}\n    options: {transform: JSON.parse(output)}\n"
                 "    assert: [{type: is-json}]\n  - vars: {item: b}\n    assert: [{type: contains, value: b}]\n",
                 encoding="utf-8")
    with pytest.raises(SuiteError, match="transforms are JavaScript"):
        load_promptfoo(p)
    cases, notes = load_promptfoo(p, skip_unsupported=True)
    assert [c.request["messages"][0]["content"] for c in cases] == ["Describe b"]
    assert any(n.startswith("skipped the test: transformed.yaml line 3, tests[0].options.transform") for n in notes)
