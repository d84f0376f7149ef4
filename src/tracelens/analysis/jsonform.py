"""JSON form of the report dataclasses, and the JSON Schema generated from the same declarations.

Contract:

* :func:`json_value` turns a (frozen) dataclass into its JSON document: one
  key per field, in field order, named by the field unless its metadata says
  ``json="other_name"``; fields with ``group="name"`` are nested under that
  key (placed where the group's first field is). Values are made JSON-safe:
  datetimes become ISO-8601 UTC strings with ``Z``, floats are rounded to 7
  significant digits (NaN/inf become null), tuples become lists, nested
  dataclasses recurse, dict keys become strings.
* :func:`document_schema` generates the JSON Schema (2020-12) of
  ``json_value(cls instance)`` from the field type hints: ``str``, ``int``,
  ``float``, ``bool``, ``datetime``, ``X | None``, ``tuple[X, ...]``,
  ``tuple[X, X, X]`` (fixed length), ``list[X]``, ``dict`` / ``Mapping`` and nested
  dataclasses (each under ``$defs`` by its snake_case name, in first-use
  order). A field's ``schema=`` metadata is merged into what its type gives
  (``description``, ``enum``, bounds; nested dicts merge key by key), so
  constraints that types cannot say live next to the field that has them.
  Every property is required and no others are allowed. A field whose
  value is a plain dict built from another dataclass can name that class with
  ``shape=`` (a function returning it, so the import can wait until a schema
  is generated); the schema then describes the class's fields.
* The committed file ``schemas/drift_report.schema.json`` is this output for
  :class:`~tracelens.analysis.findings.DriftReport` (``python -m
  tracelens.schema schemas`` rewrites it; ``tests/test_schema.py`` checks it).
* No I/O; standard library only.
"""

from __future__ import annotations

import dataclasses
import math
import numbers
import re
import types
import typing
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

_SCALARS: dict[type, dict] = {
    str: {"type": "string"},
    bool: {"type": "boolean"},
    int: {"type": "integer"},
    float: {"type": "number"},
    datetime: {"type": "string", "format": "date-time"},
}


def iso(ts: datetime | None) -> str | None:
    """ISO-8601 in UTC with a ``Z`` suffix (naive datetimes are taken as UTC); None stays None."""
    if ts is None:
        return None
    if ts.tzinfo is None:
        ts = ts.replace(tzinfo=UTC)
    return ts.astimezone(UTC).isoformat().replace("+00:00", "Z")


def num(x: Any) -> Any:
    """JSON-safe scalar: floats rounded to 7 significant digits, NaN/inf -> None; other values unchanged."""
    if isinstance(x, bool) or x is None:
        return x
    if isinstance(x, numbers.Integral):
        return int(x)
    if isinstance(x, numbers.Real):
        f = float(x)
        if not math.isfinite(f):
            return None
        if f == 0.0:
            return 0.0
        return float(f"{f:.7g}")
    return x


def json_value(x: Any) -> Any:
    """The JSON-safe form of ``x`` (see the module docstring); dataclasses by their field declarations."""
    if isinstance(x, datetime):
        return iso(x)
    if dataclasses.is_dataclass(x) and not isinstance(x, type):
        out: dict[str, Any] = {}
        for f in dataclasses.fields(x):
            if f.metadata.get("json") is False:
                continue
            key = f.metadata.get("json", f.name)
            group = f.metadata.get("group")
            target = out.setdefault(group, {}) if group else out
            target[key] = json_value(getattr(x, f.name))
        return out
    if isinstance(x, dict):
        return {str(k): json_value(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [json_value(v) for v in x]
    if hasattr(x, "to_dict"):
        return x.to_dict()
    return num(x)


class JsonRecord:
    """Mixin: ``to_dict()`` is :func:`json_value` of the dataclass."""

    def to_dict(self) -> dict:
        """The JSON-safe dict of this record (the shape :func:`document_schema` describes)."""
        return json_value(self)


def def_name(cls: type) -> str:
    """``$defs`` key of a dataclass: its name in snake_case (``SeriesPoint`` -> ``series_point``)."""
    return re.sub(r"(?<!^)(?=[A-Z])", "_", cls.__name__).lower()


def _merge(base: dict, extra: dict) -> dict:
    out = dict(base)
    for k, v in extra.items():
        out[k] = _merge(out[k], v) if isinstance(v, dict) and isinstance(out.get(k), dict) else v
    return out


def _nullable(s: dict) -> dict:
    t = s.get("type")
    if isinstance(t, str):
        return {**s, "type": [t, "null"]}
    if isinstance(t, list):
        return {**s, "type": t if "null" in t else [*t, "null"]}
    return {"anyOf": [s, {"type": "null"}]}


class _Gen:
    def __init__(self) -> None:
        self.defs: dict[str, dict] = {}

    def type_schema(self, tp: Any) -> dict:
        origin = typing.get_origin(tp)
        if tp is Any or tp is object:
            return {}
        if tp in _SCALARS:
            return dict(_SCALARS[tp])
        if origin in (types.UnionType, typing.Union):
            args = typing.get_args(tp)
            rest = [a for a in args if a is not type(None)]
            if len(rest) == 1:
                s = self.type_schema(rest[0])
            elif all(a in _SCALARS and "format" not in _SCALARS[a] for a in rest):
                s = {"type": [_SCALARS[a]["type"] for a in rest]}
            else:
                s = {"anyOf": [self.type_schema(a) for a in rest]}
            return _nullable(s) if len(rest) < len(args) else s
        if origin in (tuple, list) or tp in (tuple, list):
            args = typing.get_args(tp)
            if not args:
                return {"type": "array"}
            if origin is tuple and not (len(args) == 2 and args[1] is Ellipsis):
                items = {repr(a): self.type_schema(a) for a in args}
                if len(items) != 1:
                    raise TypeError(f"mixed fixed-length tuple {tp!r} has no schema here")
                return {"type": "array", "items": next(iter(items.values())), "minItems": len(args), "maxItems": len(args)}
            return {"type": "array", "items": self.type_schema(args[0])}
        if origin in (dict, Mapping) or tp in (dict, Mapping):
            args = typing.get_args(tp)
            s: dict = {"type": "object"}
            if args and args[1] is not Any:
                s["additionalProperties"] = self.type_schema(args[1])
            return s
        if isinstance(tp, type) and dataclasses.is_dataclass(tp):
            name = def_name(tp)
            if name not in self.defs:
                self.defs[name] = {}  # placeholder: recursion and first-use order
                self.defs[name] = self.object_schema(tp)
            return {"$ref": f"#/$defs/{name}"}
        raise TypeError(f"no JSON Schema for field type {tp!r}")

    def object_schema(self, cls: type) -> dict:
        hints = typing.get_type_hints(cls)
        props: dict[str, dict] = {}
        groups: set[str] = set()
        for f in dataclasses.fields(cls):
            if f.metadata.get("json") is False:
                continue
            tp = f.metadata["shape"]() if "shape" in f.metadata else hints[f.name]
            s = _merge(self.type_schema(tp), f.metadata.get("schema", {}))
            key = f.metadata.get("json", f.name)
            group = f.metadata.get("group")
            if group:
                groups.add(group)
                props.setdefault(group, {"type": "object", "properties": {}})["properties"][key] = s
            else:
                props[key] = s
        for name in groups:
            g = props[name]
            props[name] = {**g, "required": list(g["properties"]), "additionalProperties": False}
        return {"type": "object", "properties": props, "required": list(props), "additionalProperties": False}


def document_schema(cls: type, **header: Any) -> dict:
    """JSON Schema (2020-12) of ``json_value(instance of cls)``; ``header`` keys (``$id``, ``title``, ...) go first."""
    gen = _Gen()
    body = gen.object_schema(cls)
    return {"$schema": "https://json-schema.org/draft/2020-12/schema", **header, **body, "$defs": gen.defs}
