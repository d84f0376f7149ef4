"""Graders: how a task eval decides whether a target's answer to a case passes.

Contract:

* ``parse_grader(obj, where)`` validates one grader object of a suite file (``{"type": ..., params...,
  "weight": w, "name": n}``; a bare string is a type without parameters) into a ``GraderSpec`` whose
  ``params`` hold only what was given; defaults apply at grade time. Any problem is a ``SuiteError`` whose
  message starts with ``where`` (given by the caller: file, line, case, ``graders[i]``) and names the field
  and what is allowed, e.g. ``suite.yaml line 14, case 'refund-1', graders[2].threshold: must be a number
  between 0 and 1``. Regexes, JSON schemas and inline python are checked here, not at run time.
* ``grade(spec, response, case, ctx)`` returns one ``GradeResult``; it never raises: a grader that fails
  (a buggy python grader, no embedder for ``similar``, the judge off) gives ``passed=None``, ``score=0`` and
  ``error="<Type>: <message>"``. ``grade_all`` grades every spec, and returns ``[]`` for a response with
  ``error`` set (no answer: the caller counts it as an error outcome).
* ``GRADER_TYPES`` names every type with a one-line description (CLI help and docs list them from it).

Types and parameters (docs/evals-graders.md has the long form):

========================  ===========================================================================
``equals``                ``value`` (required; a non-string value is compared as JSON), ``case_sensitive``
                          (true), ``strip`` (true: surrounding whitespace ignored)
``contains``              ``value`` (string or list of strings), ``mode`` (``all``/``any``, default
                          ``all``), ``case_sensitive`` (true)
``not-contains``          the negation of ``contains`` with the same ``mode`` (default ``any``: fails when
                          any of the strings occurs)
``regex`` / ``not-regex`` ``pattern`` (Python ``re``, searched anywhere), ``ignore_case``, ``multiline``,
                          ``dotall`` (false)
``json``                  ``extract`` (false: the whole text must be JSON; true: a fenced block or the
                          first ``{...}``/``[...]`` inside the text)
``json-schema``           ``schema`` (an object, checked with jsonschema's ``check_schema``), ``extract``
``tool-call``             ``tool`` (the tool's name, required; ``name`` is the grader's display name as for
                          every type), ``arguments`` (expected object), ``tolerance`` (per dotted
                          field: ``{"abs": x}``, ``{"rel": x}``, ``"ignore"``, ``"case-insensitive"``,
                          ``{"regex": p}``), ``exact`` (false: extra argument fields allowed)
``refused``/``not-refused`` ``count_partial`` (true: a partial refusal counts as refused)
``similar``               ``value`` (string or list; default the case's ``reference``), ``threshold`` (0.8)
``behaves-like``          ``threshold`` (0.6), ``count_partial`` (true)
``length``                ``min_chars``, ``max_chars``, ``min_words``, ``max_words`` (at least one)
``latency``               ``max_ms`` (required)
``python``                ``value`` (``path/file.py[:function]``, ``package.module:function`` or inline
                          code), ``threshold`` (optional), ``config`` and ``vars`` (objects handed to the
                          function in ``context``)
``llm-judge``             ``rubric`` (required), ``threshold`` (0.5), ``model`` (optional)
========================  ===========================================================================
"""

from __future__ import annotations

import functools
import json
import math
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from tracelens.evals.graders_match import (
    TOLERANCE_KEYS,
    TOLERANCE_WORDS,
    JudgeError,
    JudgeVerdict,
    compile_inline,
    extract_json,
    load_python,
    make_anthropic_judge,
    match_tool_call,
    python_ref_kind,
)
from tracelens.evals.model import Case, GradeResult, GraderSpec, Response

__all__ = [
    "GRADER_TYPES", "GradeContext", "JudgeError", "JudgeVerdict", "SuiteError", "grade", "grade_all",
    "make_anthropic_judge", "parse_grader",
]


class SuiteError(ValueError):
    """A bad suite: the message names where (file, line, case, field) and what is allowed."""


GRADER_TYPES: dict[str, str] = {
    "equals": "the answer equals a value (text, or JSON when the value is not a string)",
    "contains": "the answer contains a string (or all/any of a list)",
    "not-contains": "the answer contains none of the strings (or not all, with mode: all)",
    "regex": "the answer matches a regular expression",
    "not-regex": "the answer does not match a regular expression",
    "json": "the answer is valid JSON (or holds one JSON value, with extract: true)",
    "json-schema": "the answer's JSON validates against a JSON schema",
    "tool-call": "the answer calls a tool with the expected arguments (tolerances per field)",
    "refused": "the answer is a refusal (tracelens's refusal detector)",
    "not-refused": "the answer is not a refusal",
    "similar": "the answer's embedding is close to a reference text (cosine >= threshold)",
    "behaves-like": "the answer refuses or answers as the recorded response did, and is similar to it",
    "length": "the answer's length in characters and/or words is within bounds",
    "latency": "the target answered within max_ms milliseconds",
    "python": "a Python function or expression decides (promptfoo-compatible)",
    "llm-judge": "a judge model grades the answer against a rubric (off unless --judge MODEL)",
}

# ---------------------------------------------------------------- parameter checking


def _is_num(v: Any) -> bool:
    return isinstance(v, int | float) and not isinstance(v, bool) and math.isfinite(v)


def _bool(v: Any) -> str | None:
    return None if isinstance(v, bool) else "must be true or false"


def _unit(v: Any) -> str | None:
    return None if _is_num(v) and 0 <= v <= 1 else "must be a number between 0 and 1"


def _positive(v: Any) -> str | None:
    return None if _is_num(v) and v > 0 else "must be a number greater than 0"


def _count(v: Any) -> str | None:
    return None if isinstance(v, int) and not isinstance(v, bool) and v >= 0 else "must be a whole number >= 0"


def _text(v: Any) -> str | None:
    return None if isinstance(v, str) and v != "" else "must be a non-empty string"


def _text_or_list(v: Any) -> str | None:
    if isinstance(v, str | int | float) and not isinstance(v, bool) and str(v) != "":
        return None
    if isinstance(v, list) and v and all(isinstance(x, str | int | float) and not isinstance(x, bool) for x in v):
        return None
    return "must be a non-empty string or a non-empty list of strings"


def _mode(v: Any) -> str | None:
    return None if v in ("any", "all") else "must be 'any' or 'all'"


def _obj(v: Any) -> str | None:
    return None if isinstance(v, dict) else "must be an object"


def _any(v: Any) -> str | None:
    return None if v is not None else "must be given"


# type -> {param: (check, default, required)}
_P = tuple[Callable[[Any], "str | None"], Any, bool]
PARAMS: dict[str, dict[str, _P]] = {
    "equals": {"value": (_any, None, True), "case_sensitive": (_bool, True, False), "strip": (_bool, True, False)},
    "contains": {"value": (_text_or_list, None, True), "mode": (_mode, "all", False),
                 "case_sensitive": (_bool, True, False)},
    "not-contains": {"value": (_text_or_list, None, True), "mode": (_mode, "any", False),
                     "case_sensitive": (_bool, True, False)},
    "regex": {"pattern": (_text, None, True), "ignore_case": (_bool, False, False),
              "multiline": (_bool, False, False), "dotall": (_bool, False, False)},
    "json": {"extract": (_bool, False, False)},
    "json-schema": {"schema": (_obj, None, True), "extract": (_bool, False, False)},
    "tool-call": {"tool": (_text, None, True), "arguments": (_obj, None, False), "tolerance": (_obj, {}, False),
                  "exact": (_bool, False, False)},
    "refused": {"count_partial": (_bool, True, False)},
    "similar": {"value": (_text_or_list, None, False), "threshold": (_unit, 0.8, False)},
    "behaves-like": {"threshold": (_unit, 0.6, False), "count_partial": (_bool, True, False)},
    "length": {"min_chars": (_count, None, False), "max_chars": (_count, None, False),
               "min_words": (_count, None, False), "max_words": (_count, None, False)},
    "latency": {"max_ms": (_positive, None, True)},
    "python": {"value": (_text, None, True), "threshold": (_unit, None, False), "config": (_obj, None, False),
               "vars": (_obj, None, False)},
    "llm-judge": {"rubric": (_text, None, True), "threshold": (_unit, 0.5, False), "model": (_text, None, False)},
}
PARAMS["not-regex"] = PARAMS["regex"]
PARAMS["not-refused"] = PARAMS["refused"]


def param(spec: GraderSpec, name: str) -> Any:
    """A parameter of ``spec``: the given value, else the type's default."""
    if name in spec.params:
        return spec.params[name]
    return PARAMS[spec.type][name][1]


def parse_grader(obj: Any, where: str) -> GraderSpec:
    """Validate one grader object of a suite (see the module docstring); ``SuiteError`` names the field."""
    if isinstance(obj, str):
        obj = {"type": obj}
    if not isinstance(obj, dict):
        raise SuiteError(f"{where}: a grader must be an object with a 'type' (or a type name), got {obj!r}")
    gtype = obj.get("type")
    if gtype not in GRADER_TYPES:
        what = "missing" if gtype is None else f"unknown grader type {gtype!r}"
        raise SuiteError(f"{where}.type: {what} (allowed: {', '.join(GRADER_TYPES)})")
    table = PARAMS[gtype]
    weight = obj.get("weight", 1.0)
    if not _is_num(weight) or weight <= 0:
        raise SuiteError(f"{where}.weight: must be a number greater than 0")
    name = obj.get("name")
    if name is not None and not (isinstance(name, str) and name.strip()):
        raise SuiteError(f"{where}.name: must be a non-empty string")
    params: dict[str, Any] = {}
    for key, val in obj.items():
        if key in ("type", "weight", "name"):
            continue
        if key not in table:
            allowed = ", ".join(list(table) + ["weight", "name"])
            raise SuiteError(f"{where}.{key}: unknown parameter for {gtype!r} (allowed: {allowed})")
        problem = table[key][0](val)
        if problem:
            raise SuiteError(f"{where}.{key}: {problem}")
        params[key] = val
    for key, (_, _, required) in table.items():
        if required and key not in params:
            raise SuiteError(f"{where}.{key}: required for {gtype!r}")
    _check_type(gtype, params, where)
    return GraderSpec(gtype, params, float(weight), name)


def _check_type(gtype: str, params: dict[str, Any], where: str) -> None:
    """Checks across parameters, and those that compile something (regex, schema, inline python)."""
    if gtype in ("regex", "not-regex"):
        try:
            _regex(params["pattern"], params.get("ignore_case", False), params.get("multiline", False),
                   params.get("dotall", False))
        except re.error as e:
            raise SuiteError(f"{where}.pattern: not a valid regular expression ({e})") from e
    elif gtype == "json-schema":
        import jsonschema

        try:
            jsonschema.validators.validator_for(params["schema"]).check_schema(params["schema"])
        except jsonschema.SchemaError as e:
            raise SuiteError(f"{where}.schema: not a valid JSON schema ({e.message})") from e
    elif gtype == "length":
        if not params:
            raise SuiteError(f"{where}: 'length' needs at least one of min_chars, max_chars, min_words, max_words")
        for unit in ("chars", "words"):
            lo, hi = params.get(f"min_{unit}"), params.get(f"max_{unit}")
            if lo is not None and hi is not None and lo > hi:
                raise SuiteError(f"{where}.min_{unit}: must not exceed max_{unit}")
    elif gtype == "tool-call":
        _check_tolerance(params.get("tolerance", {}), params.get("arguments") or {}, where)
    elif gtype == "python" and python_ref_kind(params["value"]) == "inline":
        try:
            compile_inline(params["value"])
        except SyntaxError as e:
            raise SuiteError(f"{where}.value: inline python does not compile ({e.msg}, line {e.lineno})") from e


def _check_tolerance(tolerance: dict[str, Any], arguments: dict[str, Any], where: str) -> None:
    from tracelens.evals.graders_match import MISSING, get_path

    for path, rule in tolerance.items():
        at = f"{where}.tolerance.{path}"
        if rule in TOLERANCE_WORDS:
            continue
        if not (isinstance(rule, dict) and len(rule) == 1 and next(iter(rule)) in TOLERANCE_KEYS):
            raise SuiteError(f"{at}: must be \"ignore\", \"case-insensitive\", {{\"abs\": x}}, {{\"rel\": x}} "
                             "or {\"regex\": pattern}")
        (key, val), = rule.items()
        if key == "regex":
            try:
                re.compile(val)
            except (re.error, TypeError) as e:
                raise SuiteError(f"{at}.regex: not a valid regular expression ({e})") from e
            continue
        if not _is_num(val) or val < 0:
            raise SuiteError(f"{at}.{key}: must be a number >= 0")
        if get_path(arguments, path) is MISSING:
            raise SuiteError(f"{at}: {key} needs an expected value at arguments.{path}")


@functools.lru_cache(maxsize=512)
def _regex(pattern: str, ignore_case: bool, multiline: bool, dotall: bool) -> re.Pattern[str]:
    flags = (re.IGNORECASE if ignore_case else 0) | (re.MULTILINE if multiline else 0) | (re.DOTALL if dotall else 0)
    return re.compile(pattern, flags)


# ---------------------------------------------------------------- grading

Embedder = Callable[[list[str]], np.ndarray]
Judge = Callable[[str, str, Case], JudgeVerdict]


@dataclass
class GradeContext:
    """What graders may need beyond the response and the case.

    ``suite_dir``: the suite file's folder (python grader files are relative to it). ``embedder``: texts ->
    L2-normalisable rows (``similar``, ``behaves-like``); None when no embedding model is available.
    ``judge``: the ``llm-judge`` callable (None: the judge is off). ``judge_factory``: builds a judge for a
    grader that names its own ``model`` (None: such graders use ``judge``).
    """

    suite_dir: Path | None = None
    embedder: Embedder | None = None
    judge: Judge | None = None
    judge_factory: Callable[[str], Judge] | None = None
    _judges: dict[str, Judge] = field(default_factory=dict, repr=False)

    def judge_for(self, model: str | None) -> Judge | None:
        """The judge for a grader (its own ``model`` when a factory is configured)."""
        if model and self.judge_factory is not None:
            if model not in self._judges:
                self._judges[model] = self.judge_factory(model)
            return self._judges[model]
        return self.judge


class GraderFailure(RuntimeError):
    """A grader that cannot judge (missing embedder, judge off, no reference): an error outcome, not a fail."""


def _result(spec: GraderSpec, passed: bool, score: float, reason: str, cost: float | None = None) -> GradeResult:
    return GradeResult(spec.label, spec.type, passed, float(min(1.0, max(0.0, score))), reason, None, cost,
                       spec.weight)


def _binary(spec: GraderSpec, ok: bool, why_fail: str, why_pass: str = "") -> GradeResult:
    return _result(spec, ok, 1.0 if ok else 0.0, why_pass if ok else why_fail)


def _clip(s: str, n: int = 60) -> str:
    s = s.replace("\n", " ")
    return s if len(s) <= n else s[: n - 1] + "…"


def _as_text(v: Any) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    return str(v)


def _refused(label: str | None, count_partial: bool) -> bool:
    return label == "full" or (count_partial and label == "partial")


def response_label(response: Response) -> str:
    """The response's refusal label: the one already set, else the detector's."""
    if response.refusal in ("none", "partial", "full"):
        return response.refusal
    from tracelens.replay.labels import refusal_label

    return refusal_label(response.text, response.stop_reason)


def _cosines(ctx: GradeContext, text: str, refs: list[str], what: str) -> list[float]:
    if ctx.embedder is None:
        raise GraderFailure(f"{what} needs an embedding model and none is available "
                            "(install it with: pip install 'tracelens[embed]')")
    m = np.asarray(ctx.embedder([text, *refs]), dtype=np.float64)
    norms = np.linalg.norm(m, axis=1)
    norms[norms == 0] = 1.0
    m = m / norms[:, None]
    return [float(x) for x in m[1:] @ m[0]]


def _g_equals(spec: GraderSpec, text: str, response: Response, case: Case, ctx: GradeContext) -> GradeResult:
    value = param(spec, "value")
    if isinstance(value, dict | list):
        try:
            ok = json.loads(text) == value
        except ValueError:
            return _result(spec, False, 0.0, "the answer is not JSON")
        return _binary(spec, ok, "the answer's JSON differs from the expected value")
    want, got = _as_text(value), text
    if param(spec, "strip"):
        want, got = want.strip(), got.strip()
    if not param(spec, "case_sensitive"):
        want, got = want.casefold(), got.casefold()
    return _binary(spec, got == want, f"expected {_clip(want)!r}, got {_clip(got)!r}")


def _g_contains(spec: GraderSpec, text: str, response: Response, case: Case, ctx: GradeContext) -> GradeResult:
    value = param(spec, "value")
    needles = [_as_text(v) for v in (value if isinstance(value, list) else [value])]
    hay = text
    if not param(spec, "case_sensitive"):
        hay, needles = hay.casefold(), [n.casefold() for n in needles]
    found = [n for n in needles if n in hay]
    mode = param(spec, "mode")
    hit = bool(found) if mode == "any" else len(found) == len(needles)
    if spec.type == "contains":
        missing = [n for n in needles if n not in found]
        return _binary(spec, hit, f"missing {', '.join(repr(_clip(m, 30)) for m in missing[:3])}")
    return _binary(spec, not hit, f"contains {', '.join(repr(_clip(f, 30)) for f in found[:3])}")


def _g_regex(spec: GraderSpec, text: str, response: Response, case: Case, ctx: GradeContext) -> GradeResult:
    rx = _regex(param(spec, "pattern"), param(spec, "ignore_case"), param(spec, "multiline"), param(spec, "dotall"))
    m = rx.search(text)
    if spec.type == "regex":
        return _binary(spec, m is not None, f"no match for /{_clip(rx.pattern, 40)}/")
    return _binary(spec, m is None, f"matches /{_clip(rx.pattern, 40)}/ at {_clip(m.group(0), 30)!r}" if m else "")


def _parse_json(text: str, extract: bool) -> Any:
    if extract:
        return extract_json(text)
    return json.loads(text.strip())


def _g_json(spec: GraderSpec, text: str, response: Response, case: Case, ctx: GradeContext) -> GradeResult:
    try:
        _parse_json(text, param(spec, "extract"))
    except ValueError as e:
        return _result(spec, False, 0.0, f"not JSON: {_clip(str(e), 80)}")
    return _result(spec, True, 1.0, "")


def _g_json_schema(spec: GraderSpec, text: str, response: Response, case: Case, ctx: GradeContext) -> GradeResult:
    import jsonschema

    try:
        doc = _parse_json(text, param(spec, "extract"))
    except ValueError as e:
        return _result(spec, False, 0.0, f"not JSON: {_clip(str(e), 80)}")
    schema = param(spec, "schema")
    validator = jsonschema.validators.validator_for(schema)(schema)
    errors = sorted(validator.iter_errors(doc), key=lambda e: list(e.absolute_path))
    if not errors:
        return _result(spec, True, 1.0, "")
    first = errors[0]
    at = "/".join(str(p) for p in first.absolute_path) or "(root)"
    more = f" (+{len(errors) - 1} more)" if len(errors) > 1 else ""
    return _result(spec, False, 0.0, f"{at}: {_clip(first.message, 100)}{more}")


def _g_tool_call(spec: GraderSpec, text: str, response: Response, case: Case, ctx: GradeContext) -> GradeResult:
    name = param(spec, "tool")
    if not response.tool_calls:
        return _result(spec, False, 0.0, f"no tool call (expected {name})")
    best, best_problems = 0.0, [f"no call to {name} (called {', '.join(c.name for c in response.tool_calls)})"]
    for call in response.tool_calls:
        if call.name != name:
            continue
        matched, total, problems = match_tool_call(call.input, param(spec, "arguments"), param(spec, "tolerance"),
                                                   param(spec, "exact"))
        if not problems:
            return _result(spec, True, 1.0, "")
        score = matched / total if total else 0.0
        if score >= best:
            best, best_problems = score, problems
    return _result(spec, False, best, f"{name}: " + "; ".join(best_problems[:4]))


def _g_refused(spec: GraderSpec, text: str, response: Response, case: Case, ctx: GradeContext) -> GradeResult:
    label = response_label(response)
    refused = _refused(label, param(spec, "count_partial"))
    if spec.type == "refused":
        return _binary(spec, refused, f"not a refusal (label {label})", f"refusal ({label})")
    return _binary(spec, not refused, f"refusal (label {label})")


def _g_similar(spec: GraderSpec, text: str, response: Response, case: Case, ctx: GradeContext) -> GradeResult:
    value = spec.params.get("value", case.reference)
    if value is None:
        raise GraderFailure("similar needs a 'value' or a case with a recorded reference")
    refs = [_as_text(v) for v in (value if isinstance(value, list) else [value])]
    sims = _cosines(ctx, text, refs, "similar")
    best = max(sims)
    threshold = param(spec, "threshold")
    return _result(spec, best >= threshold, best, f"cosine {best:.3f} {'>=' if best >= threshold else '<'} {threshold}")


def _g_behaves_like(spec: GraderSpec, text: str, response: Response, case: Case, ctx: GradeContext) -> GradeResult:
    if case.reference is None and case.reference_refusal is None:
        raise GraderFailure("behaves-like needs a case with a recorded response (reference)")
    from tracelens.replay.labels import refusal_label

    count_partial = param(spec, "count_partial")
    ref_label = case.reference_refusal or refusal_label(case.reference, None)
    ref_refused = _refused(ref_label, count_partial)
    label = response_label(response)
    now_refused = _refused(label, count_partial)
    if ref_refused != now_refused:
        was, now = ("refused", "answered") if ref_refused else ("answered", "refused")
        return _result(spec, False, 0.0, f"the recorded response {was}, this one {now} (label {label})")
    if now_refused:
        return _result(spec, True, 1.0, "refused, as recorded")
    if case.reference is None:
        raise GraderFailure("behaves-like has no recorded response text to compare with")
    sim = _cosines(ctx, text, [case.reference], "behaves-like")[0]
    threshold = param(spec, "threshold")
    ok = sim >= threshold
    return _result(spec, ok, sim, f"answered as recorded; cosine {sim:.3f} {'>=' if ok else '<'} {threshold}")


def _g_length(spec: GraderSpec, text: str, response: Response, case: Case, ctx: GradeContext) -> GradeResult:
    sizes = {"chars": len(text), "words": len(text.split())}
    for unit, n in sizes.items():
        lo, hi = spec.params.get(f"min_{unit}"), spec.params.get(f"max_{unit}")
        if lo is not None and n < lo:
            return _result(spec, False, 0.0, f"{n} {unit} < min {lo}")
        if hi is not None and n > hi:
            return _result(spec, False, 0.0, f"{n} {unit} > max {hi}")
    return _result(spec, True, 1.0, f"{sizes['chars']} chars, {sizes['words']} words")


def _g_latency(spec: GraderSpec, text: str, response: Response, case: Case, ctx: GradeContext) -> GradeResult:
    if response.latency_ms is None:
        raise GraderFailure("latency needs the response's latency and the target did not report one")
    limit = param(spec, "max_ms")
    ok = response.latency_ms <= limit
    return _result(spec, ok, float(ok), f"{response.latency_ms:.0f} ms {'<=' if ok else '>'} {limit:g} ms")


def python_context(spec: GraderSpec, response: Response, case: Case) -> dict[str, Any]:
    """The ``context`` a python grader receives (promptfoo's names where they exist)."""
    return {
        "vars": dict(spec.params.get("vars") or {}),
        "config": dict(spec.params.get("config") or {}),
        "case_id": case.id,
        "tags": dict(case.tags),
        "description": case.description,
        "reference": case.reference,
        "test": {"vars": dict(spec.params.get("vars") or {}), "description": case.description},
        "response": {"text": response.text, "stop_reason": response.stop_reason, "refusal": response.refusal,
                     "tool_calls": [{"name": c.name, "input": c.input} for c in response.tool_calls],
                     "model": response.model_returned, "input_tokens": response.input_tokens,
                     "output_tokens": response.output_tokens, "latency_ms": response.latency_ms},
    }


def _g_python(spec: GraderSpec, text: str, response: Response, case: Case, ctx: GradeContext) -> GradeResult:
    fn = load_python(param(spec, "value"), ctx.suite_dir)
    out = fn(text, python_context(spec, response, case))
    threshold = spec.params.get("threshold")
    if isinstance(out, str) and out.strip().lower() in ("true", "false"):
        out = out.strip().lower() == "true"
    if isinstance(out, bool):
        return _binary(spec, out, "the python grader returned false")
    if _is_num(out):
        ok = out >= threshold if threshold is not None else out > 0
        return _result(spec, ok, float(out), f"score {out:g}" + (f" (threshold {threshold})" if threshold else ""))
    if isinstance(out, dict):
        passed = out.get("pass", out.get("pass_"))
        if not isinstance(passed, bool):
            raise TypeError(f"the python grader's result has no boolean 'pass': {out!r}"[:200])
        score = out.get("score", 1.0 if passed else 0.0)
        if not _is_num(score):
            raise TypeError(f"the python grader's score must be a number, got {score!r}")
        reason = str(out.get("reason") or "")
        if threshold is not None and score < threshold:
            passed, reason = False, f"score {score:g} < threshold {threshold}" + (f": {reason}" if reason else "")
        return _result(spec, passed, float(score), reason)
    raise TypeError(f"a python grader must return a bool, a number or a {{pass, score, reason}} dict, got "
                    f"{type(out).__name__}")


def _g_llm_judge(spec: GraderSpec, text: str, response: Response, case: Case, ctx: GradeContext) -> GradeResult:
    judge = ctx.judge_for(spec.params.get("model"))
    if judge is None:
        raise GraderFailure("llm-judge is off: pass --judge MODEL")
    verdict = judge(param(spec, "rubric"), text, case)
    threshold = param(spec, "threshold")
    ok = verdict.passed and verdict.score >= threshold
    reason = verdict.reason
    if verdict.passed and not ok:
        reason = f"score {verdict.score:g} < threshold {threshold}: {reason}"
    return _result(spec, ok, verdict.score, _clip(reason, 300), verdict.cost_usd)


_GRADERS: dict[str, Callable[[GraderSpec, str, Response, Case, GradeContext], GradeResult]] = {
    "equals": _g_equals, "contains": _g_contains, "not-contains": _g_contains, "regex": _g_regex,
    "not-regex": _g_regex, "json": _g_json, "json-schema": _g_json_schema, "tool-call": _g_tool_call,
    "refused": _g_refused, "not-refused": _g_refused, "similar": _g_similar, "behaves-like": _g_behaves_like,
    "length": _g_length, "latency": _g_latency, "python": _g_python, "llm-judge": _g_llm_judge,
}
assert set(_GRADERS) == set(GRADER_TYPES) == set(PARAMS)


def grade(spec: GraderSpec, response: Response, case: Case, ctx: GradeContext | None = None) -> GradeResult:
    """One grader's judgement of one answer; a grader that fails is an error result, never an exception."""
    ctx = ctx or GradeContext()
    try:
        fn = _GRADERS.get(spec.type)
        if fn is None:
            raise GraderFailure(f"unknown grader type {spec.type!r}")
        return fn(spec, response.text or "", response, case, ctx)
    except Exception as e:  # a grader never crashes a run
        kind = "GraderError" if isinstance(e, GraderFailure) else type(e).__name__
        return GradeResult(spec.label, spec.type, None, 0.0, "", f"{kind}: {e}", None, spec.weight)


def grade_all(specs: list[GraderSpec], response: Response, case: Case,
              ctx: GradeContext | None = None) -> list[GradeResult]:
    """Every grader's judgement, in order; ``[]`` for a response with ``error`` set (not graded)."""
    if not response.ok:
        return []
    ctx = ctx or GradeContext()
    return [grade(s, response, case, ctx) for s in specs]
