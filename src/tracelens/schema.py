"""The canonical trace schema, defined once.

Every importer produces rows of this shape; the store writes them with this
exact Arrow schema; `schemas/trace.schema.json` is generated from it (a test
checks that the committed file matches, and `python -m tracelens.schema`
rewrites it). Changing a field here is a schema change: bump
``SCHEMA_VERSION`` and say so in docs/schema.md.

Conventions:

* All timestamps are UTC, microsecond precision.
* ``request_raw`` / ``response_raw`` hold the exact original JSON text of the
  request and response bodies, so a trace can be replayed byte for byte.
* JSON-valued fields whose shape varies by provider (``tool_definitions``,
  ``stop_details``, ``tool_calls[].arguments``) are stored as JSON text.
* Enrichment columns (``refusal*``) are filled by ``tracelens.enrich`` at
  ingest and can be recomputed over a store; the detector version is kept.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import pyarrow as pa

SCHEMA_VERSION = 1

STOP_REASONS = (
    "end_turn",
    "max_tokens",
    "stop_sequence",
    "tool_use",
    "refusal",
    "content_filter",
    "error",
    "other",
)

REFUSAL_LABELS = ("none", "partial", "full")

TOOL_CALL = pa.struct(
    [
        pa.field("id", pa.string()),
        pa.field("name", pa.string()),
        pa.field("arguments", pa.string()),
    ]
)

MESSAGE = pa.struct(
    [
        pa.field("role", pa.string()),
        pa.field("text", pa.string()),
        pa.field("tool_calls", pa.list_(TOOL_CALL)),
        pa.field("tool_call_id", pa.string()),
        pa.field("name", pa.string()),
    ]
)

TS = pa.timestamp("us", tz="UTC")


@dataclass(frozen=True)
class Field:
    """One column of the trace table."""

    name: str
    type: pa.DataType
    doc: str
    required: bool = False


FIELDS: tuple[Field, ...] = (
    Field("trace_id", pa.string(), "Stable id: from the source's own id, else a content hash; re-ingest never duplicates.", True),
    Field("source_format", pa.string(), "Importer that read the record (e.g. anthropic_log, otlp_json).", True),
    Field("source_file", pa.string(), "Absolute path of the input file ('-' for stdin), or its URL for an object-storage input.", True),
    Field("source_locator", pa.string(), "Where in the file: 'line:N', 'index:N', 'span:ID', 'row:N'.", True),
    Field("ingested_at", TS, "When tracelens stored the record (UTC).", True),
    Field("timestamp", TS, "When the call was made (UTC).", True),
    Field("provider", pa.string(), "anthropic, openai, bedrock, vertex, google, ... (lower case)."),
    Field("model_requested", pa.string(), "Model id named in the request (may be an alias)."),
    Field("model_returned", pa.string(), "Model id the provider reported in the response (the resolved snapshot)."),
    Field("model_family", pa.string(), "Model family without date/version suffix, e.g. claude-sonnet-4-6, gpt-4o."),
    Field("model_snapshot", pa.string(), "Dated snapshot (YYYY-MM-DD) when the model id carries one."),
    Field("model_is_alias", pa.bool_(), "True when the request named no dated/pinned snapshot."),
    Field("request_id", pa.string(), "Provider request id (e.g. req_...)."),
    Field("response_id", pa.string(), "Provider response/message id (e.g. msg_..., chatcmpl-...)."),
    Field("session_id", pa.string(), "Session id from metadata or span attributes."),
    Field("conversation_id", pa.string(), "Conversation/thread id."),
    Field("user_id", pa.string(), "End-user id."),
    Field("app", pa.string(), "Application or feature name."),
    Field("service", pa.string(), "Service name (e.g. OTel service.name)."),
    Field("system_prompt", pa.string(), "System prompt text as sent (blocks joined with blank lines)."),
    Field("messages", pa.list_(MESSAGE), "Full ordered conversation sent: role, text, tool calls and results."),
    Field("prompt_text", pa.string(), "Text of the last user turn."),
    Field("response_text", pa.string(), "Text of the model's response (text blocks joined)."),
    Field("tool_calls", pa.list_(TOOL_CALL), "Tool calls made in the response (arguments as JSON text)."),
    Field("tool_definitions", pa.string(), "Tool definitions as sent, JSON text."),
    Field("stop_reason", pa.string(), "Normalised: " + ", ".join(STOP_REASONS) + "."),
    Field("stop_reason_raw", pa.string(), "Stop/finish reason exactly as the provider reported it."),
    Field("stop_details", pa.string(), "Provider stop details as JSON text (e.g. refusal category)."),
    Field("temperature", pa.float64(), "Sampling temperature sent."),
    Field("top_p", pa.float64(), "top_p sent."),
    Field("top_k", pa.int64(), "top_k sent."),
    Field("max_tokens", pa.int64(), "max_tokens sent."),
    Field("seed", pa.int64(), "Sampling seed sent."),
    Field("stop_sequences", pa.list_(pa.string()), "Stop sequences sent."),
    Field("input_tokens", pa.int64(),
          "Input (prompt) tokens neither read from nor written to the prompt cache, whatever the provider; "
          "the whole prompt is input + cache_read + cache_creation."),
    Field("output_tokens", pa.int64(), "Output (completion) tokens billed."),
    Field("cache_read_tokens", pa.int64(), "Prompt tokens read from the prompt cache (not in input_tokens)."),
    Field("cache_creation_tokens", pa.int64(), "Prompt tokens written to the prompt cache (not in input_tokens)."),
    Field("latency_ms", pa.float64(), "End-to-end latency in milliseconds."),
    Field("time_to_first_token_ms", pa.float64(), "Time to first token in milliseconds (streaming)."),
    Field("status", pa.string(), "ok or error."),
    Field("error_type", pa.string(), "Provider error type (e.g. rate_limit_error)."),
    Field("error_message", pa.string(), "Provider error message."),
    Field("http_status", pa.int64(), "HTTP status code of the response."),
    Field("cost", pa.float64(), "Cost in USD when the source reports it."),
    Field("service_tier", pa.string(), "Service tier reported or requested."),
    Field("attributes", pa.map_(pa.string(), pa.string()), "Free-form string attributes (metadata, span attributes)."),
    Field("request_raw", pa.string(), "Exact original request body, JSON text (secrets replaced by [secret:KIND] markers)."),
    Field("response_raw", pa.string(), "Exact original response body (or error body), JSON text (secrets replaced likewise)."),
    Field("request_is_exact", pa.bool_(), "True when request_raw is the body as sent; false when reconstructed from normalised fields."),
    Field("redacted", pa.bool_(), "True when text fields were changed at ingest: secrets removed (attributes.scrubbed) or --redact applied (attributes.redactions)."),
    Field("system_prompt_hash", pa.string(), "sha256 (hex, 16 chars) of the system prompt; null when none."),
    Field("tools_hash", pa.string(), "sha256 (hex, 16 chars) of the canonical tool definitions; null when none."),
    Field("prompt_hash", pa.string(), "sha256 (hex, 16 chars) of the full prompt content (system + messages + tools)."),
    Field("content_hash", pa.string(), "sha256 of the whole normalised record, used to tell true duplicates from id collisions.", True),
    Field("refusal", pa.string(), "Refusal label: none, partial or full."),
    Field("refusal_score", pa.float64(), "Refusal score 0..1."),
    Field("refusal_source", pa.string(), "structured, text or semantic."),
    Field("refusal_category", pa.string(), "Provider category when given, else a coarse reason."),
    Field("refusal_evidence", pa.string(), "The matched span or signal that explains the label."),
    Field("refusal_version", pa.string(), "Version of the refusal detector that produced the label."),
)

FIELD_NAMES = tuple(f.name for f in FIELDS)

TRACE_SCHEMA = pa.schema([pa.field(f.name, f.type, nullable=not f.required) for f in FIELDS])

# Key-value metadata written into every Parquet file of the store.
PARQUET_METADATA_KEYS = ("tracelens.schema_version", "tracelens.writer", "tracelens.table")

QUARANTINE_SCHEMA = pa.schema(
    [
        pa.field("quarantine_id", pa.string(), nullable=False),
        pa.field("quarantined_at", TS, nullable=False),
        pa.field("source_format", pa.string()),
        pa.field("source_file", pa.string(), nullable=False),
        pa.field("source_locator", pa.string(), nullable=False),
        pa.field("reason", pa.string(), nullable=False),
        pa.field("raw", pa.string()),
    ]
)

# GenAI events that arrived as OTLP log records (``otlp_logs``), kept so that they can be merged into their span's
# trace whichever file comes first (tracelens.ingest.logjoin; docs/formats/otlp_logs.md, docs/schema.md).
EVENTS_SCHEMA = pa.schema(
    [
        pa.field("event_id", pa.string(), nullable=False),  # sha256 of span, name, time, content and occurrence
        pa.field("trace_id", pa.string(), nullable=False),  # OTel trace id, hex
        pa.field("span_id", pa.string(), nullable=False),  # OTel span id, hex
        pa.field("name", pa.string(), nullable=False),  # event name, e.g. gen_ai.user.message
        pa.field("time_unix_nano", pa.int64()),  # the record's time (else its observed time)
        pa.field("ordinal", pa.int64(), nullable=False),  # position of the record in its file
        pa.field("attributes", pa.string(), nullable=False),  # JSON object: attributes, body under event.body
        pa.field("scope", pa.string()),  # instrumentation scope that emitted it
        pa.field("source_format", pa.string(), nullable=False),
        pa.field("source_file", pa.string(), nullable=False),
        pa.field("source_locator", pa.string(), nullable=False),
        pa.field("ingested_at", TS, nullable=False),
    ]
)


def _json_type(t: pa.DataType) -> dict:
    if pa.types.is_string(t):
        return {"type": "string"}
    if pa.types.is_boolean(t):
        return {"type": "boolean"}
    if pa.types.is_integer(t):
        return {"type": "integer"}
    if pa.types.is_floating(t):
        return {"type": "number"}
    if pa.types.is_timestamp(t):
        return {"type": "string", "format": "date-time"}
    if pa.types.is_map(t):
        return {"type": "object", "additionalProperties": _nullable(_json_type(t.item_type))}
    if pa.types.is_list(t):
        return {"type": "array", "items": _json_type(t.value_type)}
    if pa.types.is_struct(t):
        return {
            "type": "object",
            "properties": {t.field(i).name: _nullable(_json_type(t.field(i).type)) for i in range(t.num_fields)},
            "additionalProperties": False,
        }
    raise TypeError(f"no JSON Schema mapping for {t}")


def _nullable(js: dict) -> dict:
    out = dict(js)
    out["type"] = [js["type"], "null"]
    return out


def trace_json_schema() -> dict:
    """JSON Schema (2020-12) of one trace as `tracelens show --json` prints it."""
    props = {}
    for f in FIELDS:
        js = _json_type(f.type)
        if not f.required:
            js = _nullable(js)
        js["description"] = f.doc
        props[f.name] = js
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "$id": "https://tracelens.dev/schemas/trace.schema.json",
        "title": "tracelens trace",
        "description": f"One LLM call as stored by tracelens (schema version {SCHEMA_VERSION}).",
        "type": "object",
        "properties": props,
        "required": [f.name for f in FIELDS if f.required],
        "additionalProperties": False,
    }


def _type_name(t: pa.DataType) -> str:
    return str(t).replace("<item: ", "<").replace("timestamp[us, tz=UTC]", "timestamp(us, UTC)")


def fields_markdown() -> str:
    """The column table of docs/schema.md (kept in sync by a test)."""
    lines = ["| column | type | required | meaning |", "|---|---|---|---|"]
    for f in FIELDS:
        t = _type_name(f.type)
        if pa.types.is_list(f.type) and pa.types.is_struct(f.type.value_type):
            t = "list<struct>"
        lines.append(f"| `{f.name}` | {t} | {'yes' if f.required else ''} | {f.doc} |")
    return "\n".join(lines) + "\n"


def schema_files() -> dict[str, dict]:
    """All generated schema files, by file name under schemas/."""
    files = {"trace.schema.json": trace_json_schema()}
    try:  # the drift report schema lives with the analysis code
        from tracelens.analysis.findings import report_json_schema
    except ImportError:
        pass
    else:
        files["drift_report.schema.json"] = report_json_schema()
    return files


def dump_schema(obj: dict) -> str:
    """JSON text of a schema document as committed: indented by 2, key order kept, ending in a newline."""
    return json.dumps(obj, indent=2, sort_keys=False) + "\n"


def write_schema_files(directory: Path) -> list[Path]:
    """Regenerate every file in schemas/; returns the paths written."""
    directory.mkdir(parents=True, exist_ok=True)
    written = []
    for name, obj in schema_files().items():
        p = directory / name
        p.write_text(dump_schema(obj), encoding="utf-8")
        written.append(p)
    return written


if __name__ == "__main__":  # python -m tracelens.schema [DIR]
    import sys

    target = Path(sys.argv[1]) if len(sys.argv) > 1 else Path("schemas")
    for p in write_schema_files(target):
        print(p)
