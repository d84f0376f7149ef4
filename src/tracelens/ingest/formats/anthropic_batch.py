"""Anthropic Message Batches results (``anthropic_batch``) and the files joined to them.

A results file is JSONL of ``{custom_id, result: {type, message | error}}``
with ``type`` one of succeeded, errored, canceled, expired. It holds no
prompt and no time; two companion formats supply them when passed in the
same ``ingest`` call (the pipeline hands them over in
``options.companions``; they are never stored on their own):

* ``anthropic_batch_requests``: the batch create request, ``{"requests":
  [{custom_id, params}]}`` or JSONL of ``{custom_id, params}``. Results are
  joined to it by ``custom_id``.
* ``anthropic_batch_object``: the MessageBatch object (``type:
  message_batch``, as ``batches.retrieve`` returns it); its ``ended_at``
  (else ``created_at``) is the timestamp of every result.

Contract:

* Without the requests file a trace has no prompt (allowed);
  ``attributes.batch_request`` says ``joined``, ``missing`` or
  ``ambiguous``. Custom ids repeat across batches (``request-1`` in every
  batch), so when several request files hold the same id the one whose
  file name best matches the results file (same directory, longest common
  name) wins; a tie joins nothing rather than the wrong prompt.
* succeeded -> the message (``status=ok``); errored -> ``status=error``
  with the error type and message; canceled / expired -> ``status=error``,
  ``error_type`` canceled / expired.
* ``trace_id`` = the message id when there is one, else
  ``batch:<file fingerprint>:<custom_id>``. The fingerprint hashes the
  first 256 KiB of the decompressed results (not the path), so re-ingesting
  the same file from anywhere dedupes, a truncated and a complete download
  of one batch share ids, and ``request-1`` of two different batches does
  not collide.
* Timestamp: ``options.default_time``, else the batch object's time
  (``timestamp_source=batch_ended_at|batch_created_at``), else the results
  file's modification time (``timestamp_source=file_mtime``). A file
  mtime changes when the file is copied; ingest with ``--default-time`` or
  the batch object for timestamps that survive a copy.

Field mappings and quarantine reasons: docs/formats/anthropic_batch.md.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from tracelens.ingest.base import IngestOptions, Quarantined, RecordError, Skipped, Source
from tracelens.ingest.batchjoin import CompanionIndex, file_fingerprint, file_time, load_companions
from tracelens.ingest.coerce import coerce_fields
from tracelens.ingest.guard import each_record
from tracelens.ingest.normalize import (
    anthropic_request_fields,
    anthropic_response_fields,
    as_str,
    dumps,
    merge,
)
from tracelens.ingest.readers import iter_json_values, loads, open_input
from tracelens.ingest.validate import check_anthropic_request, check_anthropic_response

REQUESTS_ROLE = "anthropic_batch_requests"
OBJECT_ROLE = "anthropic_batch_object"

def _load_file_value(path: str) -> Any:
    stream, head = open_input(path)
    try:
        for _, v in iter_json_values(stream, head, path):
            return v
    finally:
        stream.close()
    return None


# ---------------------------------------------------------------- request file and batch object


def _request_rows(value: Any) -> Iterator[tuple[Any, Any]]:
    if isinstance(value, dict) and isinstance(value.get("requests"), list):
        for r in value["requests"]:
            if isinstance(r, dict):
                yield r.get("custom_id"), r.get("params")
    elif isinstance(value, dict):
        yield value.get("custom_id"), value.get("params")


def batch_object_time(paths: list[str], results_path: str) -> tuple[str | None, str | None, str | None]:
    """(timestamp, source, batch id) from the MessageBatch object matching ``results_path``, if one can be chosen."""
    objects = []
    for p in paths:
        try:
            v = _load_file_value(p)
        except Exception:  # noqa: BLE001
            continue
        if isinstance(v, dict) and v.get("type") == "message_batch":
            objects.append(v)
    if len(objects) > 1:  # several batches: the one whose id the results file name carries
        name = os.path.basename(results_path)
        objects = [o for o in objects if isinstance(o.get("id"), str) and o["id"] in name]
    if len(objects) != 1:
        return None, None, None
    o = objects[0]
    for key in ("ended_at", "created_at"):
        if o.get(key):
            return as_str(o[key]), f"batch_{key}", as_str(o.get("id"))
    return None, None, None


class AnthropicBatchRequests:
    name = "anthropic_batch_requests"
    description = "Anthropic Message Batches request file ({custom_id, params}); joined with its results file"
    companion_role = REQUESTS_ROLE

    def sniff(self, head: bytes, path: str) -> float:
        w = head[:65536]
        if w.lstrip()[:1] not in (b"{", b"["):
            return 0.0
        if re.search(rb'"custom_id"\s*:', w) and re.search(rb'"params"\s*:', w) and not re.search(rb'"result"\s*:', w):
            return 0.95
        return 0.0

    def parse(self, source: Source) -> Iterator[dict | Quarantined | Skipped]:
        # Only reached with --format: a request file on its own has no results to store.
        def items(locator: str, value: Any) -> Iterator[Skipped]:
            for i, _ in enumerate(_request_rows(value)):
                loc = locator if not (isinstance(value, dict) and "requests" in value) else f"index:{i}"
                yield Skipped(loc, "batch request without its result: pass the results file in the same ingest")

        return each_record(source, iter_json_values(source.stream, source.head, source.path), items)


class AnthropicBatchObject:
    name = "anthropic_batch_object"
    description = "Anthropic MessageBatch object (type message_batch); gives batch results their timestamp"
    companion_role = OBJECT_ROLE

    def sniff(self, head: bytes, path: str) -> float:
        w = head[:8192]
        if w.lstrip()[:1] != b"{":
            return 0.0
        if re.search(rb'"type"\s*:\s*"message_batch"', w) and re.search(rb'"processing_status"\s*:', w):
            return 0.95
        return 0.0

    def parse(self, source: Source) -> Iterator[dict | Quarantined | Skipped]:
        return each_record(source, iter_json_values(source.stream, source.head, source.path),
                           lambda locator, _: Skipped(locator, "batch object: metadata for a results file, not an LLM call"))


# ---------------------------------------------------------------- results

_RESULT_MESSAGES = {
    "canceled": "batch request was canceled before it was processed",
    "expired": "batch request expired before it was processed",
}


@dataclass
class BatchContext:
    """What every record of one results file shares."""

    path: str
    fingerprint: str
    requests: CompanionIndex
    timestamp: str | None
    timestamp_source: str | None
    batch_id: str | None = None


def batch_context(source: Source) -> BatchContext:
    opts: IngestOptions = source.options
    index = load_companions(list(opts.companions.get(REQUESTS_ROLE, [])), _request_rows)
    ts, ts_src, batch_id = None, None, None
    if not opts.default_time:
        ts, ts_src, batch_id = batch_object_time(list(opts.companions.get(OBJECT_ROLE, [])), source.path)
        if ts is None:
            ts, ts_src = file_time(source.path), "file_mtime"
    return BatchContext(source.path, file_fingerprint(source.head), index, ts, ts_src, batch_id)


def batch_result_record(obj: Any, locator: str, ctx: BatchContext) -> dict:
    """Trace fields from one results line (raises RecordError)."""
    if not isinstance(obj, dict):
        raise RecordError(f"expected a JSON object, got {type(obj).__name__}")
    cid = obj.get("custom_id")
    result = obj.get("result")
    if cid is None or not isinstance(result, dict):
        raise RecordError("line has no 'custom_id' and 'result' object (not a batch results line)")
    cid = as_str(cid)
    rtype = result.get("type")
    attrs = {"batch_custom_id": cid, "batch_result_type": as_str(rtype), "batch_file": ctx.fingerprint}
    body_text, join = ctx.requests.lookup(cid, ctx.path)
    attrs["batch_request"] = join
    fields: dict = {}
    request_raw = None
    if body_text is not None:
        params = loads(body_text)
        check_anthropic_request(params)
        fields = anthropic_request_fields(params)
        request_raw = body_text
    if rtype == "succeeded":
        msg = result.get("message")
        if not isinstance(msg, dict):
            raise RecordError("succeeded result has no 'message' object")
        check_anthropic_response(msg)
        fields = merge(fields, anthropic_response_fields(msg))
        response_raw = dumps(msg)
    elif rtype == "errored":
        err = result.get("error")
        if isinstance(err, dict) and "error" not in err and "type" in err:
            err = {"type": "error", "error": err}  # the inner error object on its own
        elif not isinstance(err, dict):
            err = {"type": "error", "error": {"type": "unknown_error", "message": as_str(err)}}
        fields = merge(fields, anthropic_response_fields(err))
        fields["status"] = "error"
        fields["stop_reason"] = "error"
        fields["error_type"] = fields.get("error_type") or "unknown_error"
        response_raw = dumps(result.get("error"))
    elif rtype in _RESULT_MESSAGES:
        fields.update({"status": "error", "error_type": rtype, "error_message": _RESULT_MESSAGES[rtype],
                       "stop_reason": "error"})
        response_raw = dumps(result)
    else:
        raise RecordError(f"unknown batch result type {rtype!r} (expected succeeded, errored, canceled or expired)")
    if ctx.timestamp is None and ctx.timestamp_source == "file_mtime":
        raise RecordError("batch results carry no timestamp and the input has no file time "
                          "(pass --default-time ISO8601)")
    if ctx.timestamp_source and ctx.timestamp is not None:
        attrs["timestamp_source"] = ctx.timestamp_source
    if ctx.batch_id:
        attrs["batch_id"] = ctx.batch_id
    fields.pop("_created", None)
    fields.update(
        {
            "provider": "anthropic",
            "timestamp": ctx.timestamp,
            "request_raw": request_raw,
            "response_raw": response_raw,
            "attributes": attrs,
            "source_locator": locator,
            "trace_id": fields.get("response_id") or f"batch:{ctx.fingerprint}:{cid}",
        }
    )
    return coerce_fields(fields)


class AnthropicBatch:
    name = "anthropic_batch"
    description = "Anthropic Message Batches results JSONL ({custom_id, result}); joined with the requests file by custom_id"

    def sniff(self, head: bytes, path: str) -> float:
        w = head[:65536]
        if w.lstrip()[:1] != b"{":
            return 0.0
        if (re.search(rb'"custom_id"\s*:', w) and re.search(rb'"result"\s*:\s*\{', w)
                and re.search(rb'"(succeeded|errored|canceled|expired)"', w)):
            return 0.95
        return 0.0

    def parse(self, source: Source) -> Iterator[dict | Quarantined | Skipped]:
        ctx = batch_context(source)

        def item(locator: str, obj: Any) -> dict:
            rec = batch_result_record(obj, locator, ctx)
            rec["_raw"] = None
            return rec

        return each_record(source, iter_json_values(source.stream, source.head, source.path), item)


FORMATS = [AnthropicBatch(), AnthropicBatchRequests(), AnthropicBatchObject()]
