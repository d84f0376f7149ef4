"""The drift-report JSON Schema is generated from the report dataclasses and describes what to_dict() writes."""

from __future__ import annotations

import json
from dataclasses import dataclass, field, fields
from datetime import UTC, datetime

import jsonschema

from tests.conftest import REPO
from tracelens.analysis.findings import FINDING_FIELDS, DriftReport, Finding, report_json_schema
from tracelens.analysis.jsonform import JsonRecord, document_schema, json_value


def test_schema_is_valid_and_the_golden_report_conforms_to_the_committed_file():
    committed = json.loads((REPO / "schemas" / "drift_report.schema.json").read_text())
    jsonschema.Draft202012Validator.check_schema(committed)
    golden = json.loads((REPO / "tests" / "golden" / "drift_report.json").read_text())
    jsonschema.validate(golden, committed)


def test_schema_properties_follow_the_dataclass_fields():
    schema = report_json_schema()
    assert list(schema["$defs"]["finding"]["properties"]) == [f.name for f in fields(Finding)] == list(FINDING_FIELDS)
    top = [f.metadata.get("json", f.name) for f in fields(DriftReport) if "group" not in f.metadata]
    assert list(schema["properties"]) == ["windows", *top]
    assert schema["required"] == list(schema["properties"])
    assert schema["properties"]["windows"]["required"] == ["baseline", "current"]
    # config is DriftConfig.to_dict(); its schema comes from DriftConfig's fields
    from tracelens.analysis import DriftConfig

    assert list(schema["$defs"]["drift_config"]["properties"]) == list(DriftConfig().to_dict())
    jsonschema.validate(DriftConfig(kinds=("latency",)).to_dict(), {**schema["$defs"]["drift_config"], "$defs": {}})


@dataclass(frozen=True)
class _Inner(JsonRecord):
    at: datetime | None
    tags: tuple[str, ...] = ()


@dataclass(frozen=True)
class _Outer(JsonRecord):
    a: _Inner = field(metadata={"group": "pair"})
    b: _Inner = field(metadata={"group": "pair"})
    score: float | None = field(default=None, metadata={"schema": {"minimum": 0}})
    renamed: int = field(default=0, metadata={"json": "count"})
    triple: tuple[float, float, float] = (0.0, 0.0, 0.0)
    either: float | str | None = None
    items: tuple[_Inner, ...] | None = None
    hidden: str = field(default="", metadata={"json": False})


def test_generator_reads_types_and_metadata():
    s = document_schema(_Outer, title="t")
    assert list(s)[:3] == ["$schema", "title", "type"]
    assert s["properties"]["pair"]["properties"]["a"] == {"$ref": "#/$defs/__inner"}  # snake_case of the class name
    inner = s["$defs"]["__inner"]
    assert inner["properties"]["at"] == {"type": ["string", "null"], "format": "date-time"}
    assert inner["properties"]["tags"] == {"type": "array", "items": {"type": "string"}}
    p = s["properties"]
    assert p["score"] == {"type": ["number", "null"], "minimum": 0}
    assert "count" in p and "renamed" not in p and "hidden" not in p
    assert p["triple"] == {"type": "array", "items": {"type": "number"}, "minItems": 3, "maxItems": 3}
    assert p["either"] == {"type": ["number", "string", "null"]}
    assert p["items"] == {"type": ["array", "null"], "items": {"$ref": "#/$defs/__inner"}}
    assert s["required"] == list(p) and s["additionalProperties"] is False


def test_json_value_matches_the_generated_schema():
    t = datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)
    obj = _Outer(_Inner(t, ("x",)), _Inner(None), score=1 / 3, renamed=4, items=(_Inner(t),))
    doc = obj.to_dict()
    assert doc == {
        "pair": {"a": {"at": "2026-01-02T03:04:05Z", "tags": ["x"]}, "b": {"at": None, "tags": []}},
        "score": 0.3333333,
        "count": 4,
        "triple": [0.0, 0.0, 0.0],
        "either": None,
        "items": [{"at": "2026-01-02T03:04:05Z", "tags": []}],
    }
    jsonschema.validate(doc, document_schema(_Outer))
    assert json_value(float("nan")) is None


def test_report_canary_prompt_keeps_the_fields_of_the_replay_comparison():
    """The report's frozen canary rows carry exactly what tracelens.replay.canary compares, in the same order."""
    from tracelens.analysis.findings import CanaryPrompt, CanaryResult
    from tracelens.replay.canary import CanaryComparison, PromptComparison

    assert [f.name for f in fields(CanaryPrompt)] == [f.name for f in fields(PromptComparison)]
    pc = PromptComparison("t1", 3, 3, 1.0, 0.0, "answered->refused", 0.1, 1.0, 0.9, 0.5, True, ["refusal rate 0% -> 100%"])
    res = CanaryResult.from_comparison(CanaryComparison("nightly", "r2", "r1", [pc, PromptComparison(
        "t2", 3, 0, 0.0, None, None, None, None, None, None, False, ["no successful replays in the previous run"])]))
    assert res.n_changed == 1 and [p.trace_id for p in res.changed] == ["t1"] and res.prompts[0].reasons == (pc.reasons[0],)
    doc = res.to_dict()
    assert list(doc) == ["name", "run_id", "previous_run_id", "prompts", "changed"] and doc["changed"] == 1
    schema = report_json_schema()
    jsonschema.validate(doc, {**schema["$defs"]["canary_result"], "$defs": schema["$defs"]})
