"""The drift-report JSON Schema is generated from the report dataclasses and describes what to_dict() writes."""

from __future__ import annotations

import json
from dataclasses import dataclass, field, fields
from datetime import UTC, datetime

import jsonschema
import pytest

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


def test_report_eval_result_validates_and_keeps_its_field_order():
    """The Evals section's rows: their JSON form is what the schema's eval_result describes."""
    from tracelens.analysis.findings import EvalResult

    row = EvalResult("support", "canary", "pinned", "r2", datetime(2026, 11, 20, tzinfo=UTC), "r1", 12, 0.5, 0.3, 0.7,
                     1.0, -0.5, -0.75, -0.25, 0.03125, "exact McNemar", "regression", True, (), 6,
                     ("a", "b"), 0, 0.0, 450.0)
    doc = row.to_dict()
    assert list(doc)[:4] == ["suite", "kind", "target", "run_id"] and doc["started_at"].startswith("2026-11-20T00:00:00")
    schema = report_json_schema()
    jsonschema.validate(doc, {**schema["$defs"]["eval_result"], "$defs": schema["$defs"]})
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate({**doc, "verdict": "worse"}, {**schema["$defs"]["eval_result"], "$defs": schema["$defs"]})
