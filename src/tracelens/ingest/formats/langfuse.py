"""Langfuse exports: the trace "Download JSON" (``langfuse_trace``) and the
blob-storage observation export (``langfuse_blob``).

``langfuse_trace`` reads what the Langfuse UI/API gives for one trace::

    {"trace": {"id", "name", "userId", "sessionId", "tags", ...},
     "observations": [{"id", "traceId", "type", "startTime", "endTime",
                       "completionStartTime", "model", "modelParameters",
                       "input", "output", "usageDetails", "costDetails",
                       "metadata", "level", "statusMessage", ...}, ...]}

as well as a ``TraceWithFullDetails`` object (observations inside the trace),
an array of either, an observations page ``{"data": [...]}`` and a single
observation. ``langfuse_blob`` reads the scheduled blob-storage export as JSONL
(or a JSON array) or CSV with the snake_case observation columns (``id``,
``trace_id``, ``type``, ``start_time``, ``provided_model_name``,
``model_parameters``, ``usage_details``, ...; timestamps are UTC).

Each ``GENERATION`` observation becomes one trace with ``trace_id``
``langfuse:<observation id>``; SPAN/EVENT/TOOL/AGENT/CHAIN/... observations
are ``Skipped``. ``input``/``output`` come in whatever shape the SDK or
framework logged (OpenAI, Anthropic, Gemini, LangChain, OTel GenAI parts,
Vercel AI SDK, plain strings, JSON text of any of these) and are read by the
liberal content readers in ``tracelens.ingest.content``. When Langfuse received the
observation over OTLP, ``metadata.attributes`` holds the original span
attributes; they fill whatever the observation's own fields leave empty.
``request_raw`` is set only when the input is a complete provider request
body (``model`` plus role/content ``messages``), never marked exact. Field
mapping: docs/formats/langfuse.md.
"""

from __future__ import annotations

import codecs
import csv
import re
from collections.abc import Iterator
from typing import Any

from tracelens.ingest.base import FormatError, Quarantined, RecordError, Skipped, Source
from tracelens.ingest.content import (
    as_dict,
    conversation,
    fill,
    first,
    maybe_json,
    ms_between,
    nullish,
    params_fields,
    request_body,
    response_fields,
    string_list,
    time_field,
)
from tracelens.ingest.guard import describe, each_record, isolate
from tracelens.ingest.normalize import as_float, as_int, as_str, dumps, tool_call
from tracelens.ingest.readers import is_json_text, iter_csv_rows, iter_json_values
from tracelens.ingest.spans import attribute_fields

_MAX_ATTR_LEN = 512
_MAX_RAW = 1024 * 1024

# blob-export column -> API (camelCase) field
_BLOB_COLUMNS = {
    "id": "id", "trace_id": "traceId", "project_id": "projectId", "environment": "environment", "type": "type",
    "parent_observation_id": "parentObservationId", "start_time": "startTime", "end_time": "endTime",
    "name": "name", "metadata": "metadata", "level": "level", "status_message": "statusMessage",
    "version": "version", "input": "input", "output": "output", "provided_model_name": "model",
    "model_parameters": "modelParameters", "usage_details": "usageDetails", "cost_details": "costDetails",
    "completion_start_time": "completionStartTime", "prompt_name": "promptName", "prompt_version": "promptVersion",
    "total_cost": "totalCost", "tool_calls": "toolCalls", "tool_call_names": "toolCallNames",
    "tool_definitions": "toolDefinitions",
}
_BLOB_REQUIRED = {"id", "trace_id", "type", "start_time"}
_META_FIELDS = {"user_id": "user_id", "userId": "user_id", "session_id": "session_id", "sessionId": "session_id",
                "thread_id": "conversation_id", "conversation_id": "conversation_id"}
_CACHE_READ = re.compile(r"cache_read|cached|cache_hit")
_CACHE_WRITE = re.compile(r"cache_creation|cache_write")


def _usage(obs: dict) -> dict:
    u = as_dict(obs.get("usageDetails"))
    if not u and obs.get("usageDetails") is None:
        u = as_dict(obs.get("usage"))  # deprecated {input, output, total, unit}
    if not u:
        return {}

    def pick(pattern: re.Pattern) -> int | None:
        for k in sorted(u):
            if pattern.search(k) and as_int(u[k]) is not None:
                return as_int(u[k])
        return None

    return {
        "input_tokens": as_int(first(u.get("input"), u.get("prompt_tokens"), u.get("input_tokens"),
                                     u.get("promptTokens"))),
        "output_tokens": as_int(first(u.get("output"), u.get("completion_tokens"), u.get("output_tokens"),
                                      u.get("completionTokens"))),
        "cache_read_tokens": pick(_CACHE_READ),
        "cache_creation_tokens": pick(_CACHE_WRITE),
    }


def _cost(obs: dict) -> float | None:
    cd = obs.get("costDetails")
    details = as_dict(cd)
    if details:
        return as_float(details.get("total"))
    if cd is None:  # with an empty costDetails, totalCost is a sum over nothing, not a known zero
        return as_float(first(obs.get("totalCost"), obs.get("calculatedTotalCost")))
    return None


def _tools(obs: dict, inp: Any, meta: dict) -> str | None:
    defs = maybe_json(obs.get("toolDefinitions"))
    if isinstance(defs, dict) and defs:
        return dumps([maybe_json(v) for v in defs.values()])
    if isinstance(defs, list) and defs:
        return dumps([maybe_json(v) for v in defs])
    body = maybe_json(inp)
    if isinstance(body, dict):
        cfg = body.get("config") if isinstance(body.get("config"), dict) else {}
        tools = body.get("tools") or cfg.get("tools")
        if isinstance(tools, list) and tools:
            return dumps(tools)
    if isinstance(meta.get("tools"), list) and meta["tools"]:
        return dumps([maybe_json(t) for t in meta["tools"]])
    return None


def _tool_calls(obs: dict) -> list[dict]:
    calls = maybe_json(obs.get("toolCalls"))
    names = string_list(obs.get("toolCallNames")) or []
    out = []
    for i, c in enumerate(calls if isinstance(calls, list) else []):
        c = maybe_json(c)
        if not isinstance(c, dict):
            continue
        fn = c.get("function") if isinstance(c.get("function"), dict) else {}
        name = first(c.get("name"), fn.get("name"), names[i] if i < len(names) else None)
        out.append(tool_call(c.get("id"), name, first(c.get("arguments"), fn.get("arguments"), c.get("input"))))
    return out


def observation_record(obs: dict, trace: dict | None, locator: str, naive_tz: str = "UTC",
                       from_blob: bool = False) -> dict | Skipped:
    """One Langfuse observation (API camelCase fields) to a trace dict, or Skipped. Raises RecordError."""
    otype = str(obs.get("type") or "").upper()
    name = as_str(obs.get("name"))
    if otype != "GENERATION" and (otype or not (obs.get("model") or obs.get("usageDetails"))):
        return Skipped(locator, f"Langfuse {otype or 'untyped'} observation {name!r} is not an LLM call")
    if nullish(obs.get("id")):
        raise RecordError("observation has no id")
    start = time_field(obs.get("startTime"), "startTime", naive_tz)
    if start is None:
        raise RecordError("observation has no startTime")
    end = time_field(obs.get("endTime"), "endTime", naive_tz)
    first_token = time_field(obs.get("completionStartTime"), "completionStartTime", naive_tz)
    meta = as_dict(obs.get("metadata"))
    span_attrs = meta.get("attributes") if isinstance(meta.get("attributes"), dict) else {}
    fb, fb_extra = attribute_fields(span_attrs)
    inp, outp = obs.get("input"), obs.get("output")
    system, msgs = conversation(inp)
    resp = response_fields(outp)
    body = maybe_json(inp)
    params = fill(params_fields(as_dict(obs.get("modelParameters"))),
                  params_fields(body) if isinstance(body, dict) else {})
    latency = ms_between(start, end)
    ttft = ms_between(start, first_token)
    if not from_blob:  # the API reports these in seconds; the blob export's units are not documented
        if latency is None and as_float(obs.get("latency")) is not None:
            latency = as_float(obs.get("latency")) * 1000.0
        if ttft is None and as_float(obs.get("timeToFirstToken")) is not None:
            ttft = as_float(obs.get("timeToFirstToken")) * 1000.0
    level = str(obs.get("level") or "").upper()
    trace = trace or {}
    fields = {
        "model_requested": as_str(first(obs.get("model"))),
        "system_prompt": system,
        "messages": msgs,
        "tool_definitions": _tools(obs, inp, meta),
        **params,
        **_usage(obs),
        "cost": _cost(obs),
        "latency_ms": latency,
        "time_to_first_token_ms": ttft,
        "user_id": as_str(first(trace.get("userId"))),
        "session_id": as_str(first(trace.get("sessionId"))),
        "app": as_str(first(trace.get("name"))),
        "request_raw": request_body(inp),
    }
    fields = fill(fields, resp)
    if not fields.get("tool_calls"):
        fields["tool_calls"] = _tool_calls(obs)
    for k, col in _META_FIELDS.items():
        if fields.get(col) is None and not nullish(meta.get(k)) and isinstance(meta.get(k), str | int):
            fields[col] = str(meta[k])
    used_fb_tokens = fields.get("input_tokens") is None and fb.get("input_tokens") is not None
    fields = fill(fields, fb)
    if not used_fb_tokens:
        fb_extra.pop("input_tokens_reported", None)
    res = meta.get("resourceAttributes") if isinstance(meta.get("resourceAttributes"), dict) else {}
    service = as_str(res.get("service.name"))
    attrs: dict[str, str] = {}
    for k, v in (("langfuse.trace_id", first(obs.get("traceId"), trace.get("id"))),
                 ("langfuse.observation_name", name),
                 ("langfuse.parent_observation_id", obs.get("parentObservationId")),
                 ("langfuse.environment", first(obs.get("environment"), trace.get("environment"))),
                 ("langfuse.prompt_name", obs.get("promptName")),
                 ("langfuse.prompt_version", obs.get("promptVersion")),
                 ("langfuse.release", trace.get("release")),
                 ("langfuse.version", first(obs.get("version"), trace.get("version"))),
                 ("langfuse.level", level if level not in ("", "DEFAULT") else None)):
        if not nullish(v):
            attrs[k] = str(v)
    tags = string_list(trace.get("tags"))
    if tags:
        attrs["tags"] = dumps(tags)
    for k, v in meta.items():
        if k in ("attributes", "resourceAttributes", "scope", "tools") or k in _META_FIELDS or v is None:
            continue
        s = v if isinstance(v, str) else dumps(v)
        if len(s) <= _MAX_ATTR_LEN:
            attrs[f"metadata.{k}"] = s
    attrs.update(fb_extra)
    if level == "ERROR":
        status = "error"
        fields["error_message"] = as_str(first(obs.get("statusMessage"))) or fields.get("error_message")
        if fields.get("stop_reason") is None:
            fields["stop_reason"] = "error"
    else:
        status = "error" if fields.get("error_type") else "ok"
    fields.update(
        {
            "timestamp": start,
            "service": service if service and not service.startswith("unknown_service") else fields.get("service"),
            "status": status,
            "attributes": attrs or None,
            "request_is_exact": False,
            "source_locator": locator,
            "trace_id": f"langfuse:{obs['id']}",
        }
    )
    return fields


def _item(obs: Any, trace: dict | None, locator: str, naive_tz: str, from_blob: bool = False):
    """One observation to an item; ``locator`` gains ``/observation:<id>`` when the observation has an id.

    An observation that breaks the mapping costs only itself (``guard.isolate``).
    """
    if not isinstance(obs, dict):
        reason = ("observation is an id, not an object (export the trace with full details)" if isinstance(obs, str)
                  else f"observation is a {type(obs).__name__}, not an object")
        return Quarantined(locator, reason, describe(obs))
    if obs.get("id") is not None:
        locator = f"{locator}/observation:{as_str(obs['id'])}"
    return isolate(locator, obs, lambda loc, o: observation_record(o, trace, loc, naive_tz, from_blob), raw=_raw)


def _raw(v: Any) -> str | None:
    text = describe(v)
    return text[:_MAX_RAW] if text else text


def _iter_doc(doc: Any, locator: str, naive_tz: str) -> Iterator[dict | Quarantined | Skipped]:
    if isinstance(doc, list):
        for i, d in enumerate(doc):
            yield from _iter_doc(d, f"{locator}/{i}", naive_tz)
        return
    if not isinstance(doc, dict):
        yield Quarantined(locator, f"expected a Langfuse trace or observation object, got {type(doc).__name__}",
                          _raw(doc))
        return
    trace = doc.get("trace") if isinstance(doc.get("trace"), dict) else None
    if isinstance(doc.get("observations"), list):  # {"trace", "observations"} or TraceWithFullDetails
        obs_list, trace = doc["observations"], trace or doc
    elif trace is not None and isinstance(trace.get("observations"), list):
        obs_list = trace["observations"]
    elif isinstance(doc.get("data"), list):  # an API page of traces or observations
        yield from _iter_doc(doc["data"], locator, naive_tz)
        return
    elif "type" in doc and ("startTime" in doc or "traceId" in doc):  # one observation
        yield _item(doc, None, locator, naive_tz)
        return
    else:
        yield Quarantined(locator, "not a Langfuse trace export (no observations)", _raw(doc))
        return
    for i, obs in enumerate(obs_list):
        has_id = isinstance(obs, dict) and obs.get("id") is not None
        yield _item(obs, trace, locator if has_id else f"{locator}/{i}", naive_tz)


class LangfuseTrace:
    """The ``langfuse_trace`` format: a Langfuse trace download, its GENERATION observations becoming traces."""

    name = "langfuse_trace"
    description = "Langfuse trace download JSON: {trace, observations[]} (GENERATION observations become traces)"

    def sniff(self, head: bytes, path: str) -> float:
        """Confidence 0..1 that ``head`` is a Langfuse trace download: 0.9 for JSON with ``observations`` and a
        Langfuse key (``traceId``, ``startTime``, ``projectId``), 0.8 for bare observations (``traceId``,
        ``startTime`` and a GENERATION or SPAN type), else 0.
        """
        if head.lstrip()[:1] not in (b"{", b"["):
            return 0.0
        if b'"observations"' in head and (b'"traceId"' in head or b'"startTime"' in head or b'"projectId"' in head):
            return 0.9
        if b'"traceId"' in head and b'"startTime"' in head and (b'"GENERATION"' in head or b'"SPAN"' in head):
            return 0.8
        return 0.0

    def parse(self, source: Source) -> Iterator[dict | Quarantined | Skipped]:
        """Yield one item per observation of each document: a trace dict, ``Skipped`` or ``Quarantined`` with the
        reason.
        """
        tz = source.options.naive_tz
        return each_record(source, iter_json_values(source.stream, source.head, source.path),
                           lambda locator, doc: _iter_doc(doc, locator, tz), raw=_raw)


# ---------------------------------------------------------------- blob-storage export


def _blob_to_api(row: dict) -> dict:
    out = {}
    for k, v in row.items():
        out[_BLOB_COLUMNS.get(k, k)] = v
    return out


def _csv_header(head: bytes) -> list[str] | None:
    line = head.decode("utf-8", "ignore").lstrip("\ufeff").split("\n", 1)[0].strip("\r")
    try:
        return next(csv.reader([line]))
    except (csv.Error, StopIteration):
        return None


def _iter_csv(source: Source) -> Iterator[dict | Quarantined | Skipped]:
    header, rows = iter_csv_rows(source.stream, source.head, source.path, delimiter=",")
    if not header:
        return iter(())
    missing = _BLOB_REQUIRED - set(header)
    if missing:
        raise FormatError(f"{source.path}: CSV header lacks Langfuse observation columns: {', '.join(sorted(missing))}")

    def item(locator: str, row: dict) -> dict | Quarantined | Skipped:
        rec = {h: (v if v != "" else None) for h, v in row.items()}
        return _item(_blob_to_api(rec), None, locator, "UTC", from_blob=True)

    return each_record(source, rows, item, raw=_raw)


class LangfuseBlob:
    """The ``langfuse_blob`` format: the blob-storage observation export, JSONL or CSV with snake_case columns."""

    name = "langfuse_blob"
    description = "Langfuse blob-storage observation export (JSONL or CSV, snake_case columns)"

    def sniff(self, head: bytes, path: str) -> float:
        """Confidence 0..1 that ``head`` is a blob export: 0.9 for JSON whose first row has ``trace_id``,
        ``start_time`` and an observation column (``provided_model_name``, ``usage_details``,
        ``parent_observation_id``), or for a CSV header with the required columns and one of
        ``provided_model_name``/``usage_details``; else 0.
        """
        s = head[3:].lstrip() if head.startswith(codecs.BOM_UTF8) else head.lstrip()
        if s[:1] in (b"{", b"["):
            line = s.split(b"\n", 1)[0] if s[:1] == b"{" else s[:65536]
            if b'"trace_id"' in line and b'"start_time"' in line and (
                b'"provided_model_name"' in line or b'"usage_details"' in line or b'"parent_observation_id"' in line
            ):
                return 0.9
            return 0.0
        cols = set(_csv_header(head) or [])
        if cols >= _BLOB_REQUIRED and ({"provided_model_name", "usage_details"} & cols):
            return 0.9
        return 0.0

    def parse(self, source: Source) -> Iterator[dict | Quarantined | Skipped]:
        """Yield one item per observation row (JSON or CSV): a trace dict, ``Skipped``, or ``Quarantined`` with the
        reason (a row that is not an object included).
        """
        if not is_json_text(source.head):
            return _iter_csv(source)

        def items(locator: str, doc: Any) -> Iterator[dict | Quarantined | Skipped]:
            for i, row in enumerate(doc if isinstance(doc, list) else [doc]):
                loc = f"{locator}/{i}" if isinstance(doc, list) else locator
                if not isinstance(row, dict):
                    yield Quarantined(loc, f"expected an observation object, got {type(row).__name__}", _raw(row))
                    continue
                yield _item(_blob_to_api(row), None, loc, "UTC", from_blob=True)

        return each_record(source, iter_json_values(source.stream, source.head, source.path), items, raw=_raw)


FORMATS = [LangfuseTrace(), LangfuseBlob()]
