"""The data of task evals: suites of cases with graders, what a target answered, and how each grader judged it.

Contract (shared by every part of ``tracelens.evals``):

* A ``Suite`` is a named list of ``Case``. A case holds the exact Anthropic
  Messages request to send (``request``: the body as JSON, without ``model``
  decisions: ``model`` is the case's pinned snapshot, the default target),
  the graders that decide whether an answer passes, free-form ``tags``
  (``task``, ``app``, ``risk``, ...) and, when it was built from a trace, the
  trace id and the recorded response (``reference``) with its refusal label.
* A ``GraderSpec`` names a grader ``type`` and its validated ``params``;
  ``weight`` counts in the case score, ``name`` labels it in reports
  (defaults to the type). A case passes when every grader passes; its score
  is the weighted mean of the grader scores (promptfoo's rule, so imported
  suites score as they did there).
* A ``Response`` is what one target returned for one case, provider-neutral:
  text, tool calls, the stop reason in the Messages API's vocabulary
  (``end_turn``, ``max_tokens``, ``stop_sequence``, ``tool_use``,
  ``refusal``), our refusal label, tokens, latency, and ``error`` when the
  target rejected the request or failed (an *error* outcome, counted apart
  from *fail*).
* A ``GradeResult`` is one grader's judgement: ``passed`` (None when the
  grader itself failed: ``error`` says why; a grader that raises is a failed
  grader, never a crashed run), ``score`` in [0, 1] and a short ``reason``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

OUTCOMES = ("pass", "fail", "error")
"""A case repeat's outcome: every grader passed / a grader failed or erred / the target gave no answer."""


@dataclass(frozen=True)
class GraderSpec:
    """One grader of a case: its type, validated parameters, weight and display name."""

    type: str
    params: dict[str, Any] = field(default_factory=dict)
    weight: float = 1.0
    name: str | None = None

    @property
    def label(self) -> str:
        """The name reports use: ``name`` when given, else the type."""
        return self.name or self.type

    def to_dict(self) -> dict[str, Any]:
        """JSON form: ``{"type": ..., **params}`` plus ``weight``/``name`` when not the defaults."""
        d: dict[str, Any] = {"type": self.type, **self.params}
        if self.weight != 1.0:
            d["weight"] = self.weight
        if self.name:
            d["name"] = self.name
        return d


@dataclass
class Case:
    """One task: the request, how to grade the answer, and where it came from."""

    id: str
    request: dict[str, Any]
    graders: list[GraderSpec] = field(default_factory=list)
    tags: dict[str, str] = field(default_factory=dict)
    model: str | None = None
    trace_id: str | None = None
    reference: str | None = None
    reference_refusal: str | None = None
    description: str | None = None

    def to_dict(self) -> dict[str, Any]:
        """JSON form (what suite files hold); empty optional fields are left out."""
        d: dict[str, Any] = {"id": self.id}
        for key in ("description", "trace_id", "model"):
            if getattr(self, key):
                d[key] = getattr(self, key)
        if self.tags:
            d["tags"] = dict(self.tags)
        d["request"] = self.request
        d["graders"] = [g.to_dict() for g in self.graders]
        if self.reference is not None:
            d["reference"] = self.reference
        if self.reference_refusal is not None:
            d["reference_refusal"] = self.reference_refusal
        return d


@dataclass
class Suite:
    """A named set of cases."""

    name: str
    cases: list[Case] = field(default_factory=list)
    description: str | None = None
    created_at: str | None = None
    updated_at: str | None = None
    n: int | None = None
    """Default repeats per case for `eval run` (None: 1)."""
    kind: str | None = None
    """What the suite is for: ``canary`` for a canary set (`tracelens canary`); None for a plain suite."""

    def case(self, case_id: str) -> Case | None:
        """The case with this id, or None."""
        return next((c for c in self.cases if c.id == case_id), None)


@dataclass(frozen=True)
class ToolCall:
    """A tool the model asked to call, with its parsed arguments (the raw string when not JSON)."""

    name: str
    input: Any


@dataclass
class Response:
    """What one target returned for one case, provider-neutral; ``error`` set when there is no answer."""

    text: str | None = None
    tool_calls: list[ToolCall] = field(default_factory=list)
    stop_reason: str | None = None
    refusal: str | None = None
    model_returned: str | None = None
    input_tokens: int | None = None
    output_tokens: int | None = None
    latency_ms: float | None = None
    error: str | None = None
    raw: str | None = None
    system_fingerprint: str | None = None  # OpenAI's backend configuration id, when the target reports one

    @property
    def ok(self) -> bool:
        """True when the target answered (no ``error``)."""
        return self.error is None


@dataclass
class GradeResult:
    """One grader's judgement of one response."""

    grader: str
    type: str
    passed: bool | None
    score: float
    reason: str = ""
    error: str | None = None
    cost_usd: float | None = None
    weight: float = 1.0

    def to_dict(self) -> dict[str, Any]:
        """JSON form."""
        return {"grader": self.grader, "type": self.type, "passed": self.passed, "score": self.score,
                "reason": self.reason, "error": self.error, "cost_usd": self.cost_usd, "weight": self.weight}


def case_outcome(response: Response, grades: list[GradeResult]) -> tuple[str, float]:
    """(outcome, score) of one repeat: ``error`` when the target gave no answer, else ``pass`` when every grader
    passed, else ``fail``; the score is the weighted mean of grader scores (0 for an error).
    """
    if not response.ok:
        return "error", 0.0
    if not grades:
        return "pass", 1.0
    passed = all(g.passed is True for g in grades)
    total = sum(g.weight for g in grades)
    score = sum(g.score * g.weight for g in grades) / total if total > 0 else float(passed)
    return ("pass" if passed else "fail"), score
