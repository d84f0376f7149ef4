"""Make one importer record safe to write: every schema field holds a value of its Arrow type.

Importers build records from untrusted JSON, where any value can have any
type. ``coerce_fields`` is the last step of a record before the store (the
importers call it, and the pipeline calls it again on a batch that Arrow
refuses): wrong JSON types become strings or nulls, integers out of int64
range become null, lone surrogates become U+FFFD, so one odd value degrades
that value and never fails the batch. ``safe_text``, ``attr_text`` and
``json_text`` are the same rules for one value (an attribute, a quarantine
text).
"""

from __future__ import annotations

import datetime as dt
import decimal
import json
from typing import Any

import pyarrow as pa

from tracelens.ingest.normalize import as_float, as_int
from tracelens.schema import FIELDS

FIELD_TYPES = {f.name: f.type for f in FIELDS}
_INT64 = (-(2**63), 2**63 - 1)


def _safe_str(v: Any) -> str | None:
    """``v`` as text that Arrow can encode (JSON for non-strings, lone surrogates replaced)."""
    if v is None:
        return None
    if not isinstance(v, str):
        v = json.dumps(v, ensure_ascii=False, separators=(",", ":"), default=str)
    if v.isascii():
        return v
    try:
        v.encode("utf-8")
    except UnicodeEncodeError:
        # through UTF-16: a paired surrogate becomes its character, a lone one a single U+FFFD
        v = v.encode("utf-16-le", "surrogatepass").decode("utf-16-le", "replace")
    return v


safe_text = _safe_str


def _safe_int(v: Any) -> int | None:
    i = as_int(v) if not isinstance(v, int) or isinstance(v, bool) else v
    if i is None or not (_INT64[0] <= i <= _INT64[1]):
        return None
    return i


def _safe_call(c: Any) -> dict | None:
    if not isinstance(c, dict):
        return None
    return {"id": _safe_str(c.get("id")), "name": _safe_str(c.get("name")), "arguments": _safe_str(c.get("arguments"))}


def _safe_calls(v: Any) -> list[dict]:
    if not isinstance(v, list):
        return []
    return [c for c in (_safe_call(x) for x in v) if c is not None]


def _safe_message(m: Any) -> dict | None:
    if not isinstance(m, dict):
        return None
    return {
        "role": _safe_str(m.get("role")) or "user",
        "text": _safe_str(m.get("text")),
        "tool_calls": _safe_calls(m.get("tool_calls")),
        "tool_call_id": _safe_str(m.get("tool_call_id")),
        "name": _safe_str(m.get("name")),
    }


def coerce_fields(rec: dict) -> dict:
    """Coerce the schema fields of an importer record to their Arrow types, in place; returns ``rec``.

    Importers build records from untrusted JSON, where any value can have
    any type; a wrong type must degrade one value, never fail the batch.
    Keys that are not schema fields (``_raw``) and
    ``timestamp`` (parsed by the pipeline) are left alone.
    """
    for k, v in rec.items():
        t = FIELD_TYPES.get(k)
        if t is None or v is None or k == "timestamp":
            continue
        if pa.types.is_string(t):
            rec[k] = _safe_str(v)
        elif pa.types.is_integer(t):
            rec[k] = _safe_int(v)
        elif pa.types.is_floating(t):
            rec[k] = as_float(v)
        elif pa.types.is_boolean(t):
            rec[k] = v if isinstance(v, bool) else None
        elif pa.types.is_map(t):
            rec[k] = {_safe_str(a): _safe_str(b) for a, b in v.items() if b is not None} if isinstance(v, dict) else None
        elif k == "messages":
            rec[k] = [m for m in (_safe_message(x) for x in v) if m is not None] if isinstance(v, list) else []
        elif k == "tool_calls":
            rec[k] = _safe_calls(v)
        elif k == "stop_sequences":
            rec[k] = [_safe_str(s) for s in v if s is not None] if isinstance(v, list) else [_safe_str(v)]
    return rec


def json_text(v: Any) -> str:
    """Compact JSON of any value (datetimes, decimals and bytes as text)."""
    return json.dumps(v, ensure_ascii=False, separators=(",", ":"), default=_json_default)


def attr_text(v: Any) -> str:
    """An attribute value as text: strings as they are, scalars in their plain form, containers as JSON."""
    if isinstance(v, str):
        return v
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, dict | list | tuple):
        return json_text(v)
    if isinstance(v, dt.datetime | dt.date | dt.time):
        return v.isoformat()
    if isinstance(v, bytes):
        return v.decode("utf-8", "replace")
    return str(v)


def _json_default(o: Any) -> Any:
    if isinstance(o, dt.datetime | dt.date | dt.time):
        return o.isoformat()
    if isinstance(o, decimal.Decimal):
        return str(o)
    if isinstance(o, bytes):
        return o.decode("utf-8", "replace")
    return str(o)
