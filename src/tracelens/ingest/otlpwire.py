"""The OTLP wire, shared by the span and the log importers (``formats.otlp``, ``formats.otlp_logs``).

* OTLP JSON: ``key_of`` (a field in camelCase or snake_case, as the Collector
  and the protobuf JSON mapping spell it), ``any_value`` / ``attributes``
  (``AnyValue`` and key-value lists to plain values), ``nanos_to_datetime``,
  ``first_request_kind`` (spans or logs: which request a JSON head holds).
* OTLP protobuf files (the Collector's file exporter in proto mode): messages
  framed by a 4-byte big-endian length or one bare message, each possibly
  zstd-compressed; ``sniff_proto`` tells the framing from the first leaf
  record's field types without decoding (``is_span`` for spans, a caller's
  test for log records), ``iter_messages`` reads the messages one by one,
  decoded with ``opentelemetry-proto`` (the ``otlp`` extra) into the OTLP
  JSON mapping. A damaged message is one quarantined item; reading goes on.
* ``raw_text`` / ``raw_bytes``: what a quarantined item keeps of its input.
"""

from __future__ import annotations

import base64
import datetime as dt
from collections.abc import Callable, Iterator
from typing import Any

from tracelens.ingest.base import Quarantined, RecordError
from tracelens.ingest.guard import describe
from tracelens.ingest.readers import ZSTD_MAGIC

EPOCH = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)
MAX_RAW = 256 * 1024  # characters of a damaged item kept with it in quarantine


def key_of(d: dict, camel: str, snake: str | None = None) -> Any:
    v = d.get(camel)
    if v is None and snake:
        v = d.get(snake)
    return v


def any_value(v: Any) -> Any:
    """Decode an OTLP ``AnyValue`` (JSON mapping) to a plain Python value."""
    if not isinstance(v, dict):
        return v
    for camel, snake in (("stringValue", "string_value"), ("boolValue", "bool_value"), ("bytesValue", "bytes_value")):
        if camel in v or snake in v:
            return key_of(v, camel, snake)
    if "intValue" in v or "int_value" in v:
        x = key_of(v, "intValue", "int_value")
        try:
            return int(x)
        except (TypeError, ValueError):
            return x
    if "doubleValue" in v or "double_value" in v:
        x = key_of(v, "doubleValue", "double_value")
        try:
            return float(x)
        except (TypeError, ValueError):
            return x
    if "arrayValue" in v or "array_value" in v:
        arr = key_of(v, "arrayValue", "array_value") or {}
        return [any_value(x) for x in (arr.get("values") or [])]
    if "kvlistValue" in v or "kvlist_value" in v:
        kv = key_of(v, "kvlistValue", "kvlist_value") or {}
        return attributes(kv.get("values") or [])
    return None


def attributes(items: Any) -> dict[str, Any]:
    """OTLP ``[{"key", "value": AnyValue}]`` to a dict (a dict is accepted as already decoded)."""
    if isinstance(items, dict):
        return dict(items)
    out: dict[str, Any] = {}
    for kv in items or []:
        if isinstance(kv, dict) and "key" in kv:
            out[str(kv["key"])] = any_value(kv.get("value"))
    return out


def nanos_to_datetime(v: Any, what: str) -> dt.datetime | None:
    """``*TimeUnixNano`` (a decimal string or int) to an aware UTC datetime; 0/absent = None."""
    if v is None or v == "" or v == 0 or v == "0":
        return None
    try:
        ns = int(v)
    except (TypeError, ValueError):
        raise RecordError(f"{what} is not an integer number of nanoseconds: {v!r}") from None
    try:
        return EPOCH + dt.timedelta(microseconds=ns // 1000)
    except OverflowError:
        raise RecordError(f"{what} {v!r} is out of range") from None


def raw_text(v: Any) -> str | None:
    text = describe(v)
    return text[:MAX_RAW] if text else text


_REQUEST_KEYS = {b'"resourceSpans"': "spans", b'"resource_spans"': "spans", b'"resourceLogs"': "logs",
                 b'"resource_logs"': "logs"}


def first_request_kind(head: bytes) -> str | None:
    """``"spans"`` or ``"logs"``: which OTLP request key comes first in ``head`` (JSON), or None.

    The first one is the request's own key; the other may still occur later, inside an attribute's text.
    """
    found = [(i, kind) for key, kind in _REQUEST_KEYS.items() if (i := head.find(key)) >= 0]
    return min(found)[1] if found else None


MAX_MESSAGE = 256 * 1024 * 1024
READ_BYTES = 1024 * 1024
SNIFF_MESSAGES = 8


def varint(data: bytes, i: int) -> tuple[int, int] | None:
    """(value, next index) of the base-128 varint at ``data[i]``, or None when it does not end within ``data``."""
    shift = value = 0
    while i < len(data) and shift < 64:
        b = data[i]
        value |= (b & 0x7F) << shift
        i += 1
        if not b & 0x80:
            return value, i
        shift += 7
    return None


def proto_fields(data: bytes, i: int = 0) -> Iterator[tuple[int, int, int, int]]:
    """(field number, wire type, value start, value end) of each field from ``data[i]``, until the bytes stop
    being protobuf wire format; ``end`` may lie beyond ``data`` (a message longer than the sniffed head)."""
    while i < len(data):
        tag = varint(data, i)
        if tag is None or tag[0] >> 3 == 0:
            return
        (key, i), wire = tag, tag[0] & 7
        if wire in (0, 2):
            n = varint(data, i)
            if n is None:
                return
            start, end = (n[1], n[1]) if wire == 0 else (n[1], n[1] + n[0])
        elif wire in (1, 5):
            start, end = i, i + (8 if wire == 1 else 4)
        else:
            return
        yield key >> 3, wire, start, end
        i = end


def proto_field(data: bytes, i: int, want: int) -> tuple[int, int] | None:
    """(start, end) of the first length-delimited field ``want`` at or after ``data[i]`` (see ``proto_fields``)."""
    for number, wire, start, end in proto_fields(data, i):
        if number == want and wire == 2:
            return start, end
    return None


def first_leaf(msg: bytes) -> bytes | None:
    """The start of the first span (log record) of a serialized ExportTraceServiceRequest (ExportLogsServiceRequest);
    ``msg`` may be cut short.

    request.resource_spans (1) > ResourceSpans.scope_spans (2) > ScopeSpans.spans (2); the logs request has the
    same path (resource_logs > scope_logs > log_records). A Span starts with trace_id (1), 16 bytes; a LogRecord
    with its time (a fixed64) or, when that is unset, a later field, so neither is taken for the other (see
    ``is_span`` for metrics).
    """
    at = 0, len(msg)
    for want in (1, 2, 2):
        at = proto_field(msg[: at[1]], at[0], want)
        if at is None:
            return None
    return msg[at[0] : at[1]]


def sniff_proto(head: bytes, leaf: Callable[[bytes | None], bool] | None = None,
                json_key: bytes = b'"resourceSpans"') -> str | None:
    """``"framed"`` (4-byte big-endian length before each message), ``"bare"`` (one message), or None.

    ``leaf`` tells the first span (``is_span``, the default) or log record of a message from anything else;
    ``json_key`` is the top-level key of the request in OTLP JSON (compressed JSON frames).
    Like the text sniffers, a damaged first message does not hide the file:
    the messages after it (up to ``SNIFF_MESSAGES`` within ``head``) are asked too.
    """
    leaf = leaf or is_span
    at = 0
    for _ in range(SNIFF_MESSAGES):
        size = int.from_bytes(head[at : at + 4], "big")
        if len(head) < at + 5 or not 0 < size <= MAX_MESSAGE:
            break
        body = head[at + 4 : at + 4 + size]
        if body[:4] == ZSTD_MAGIC:  # the file exporter's `compression: zstd` compresses each message
            try:
                body = unzstd(body, partial=True)
            except RecordError:
                body = b""
            if body.lstrip()[:1] == b"{" and json_key in body:
                return "framed"  # OTLP JSON, compressed: length-prefixed all the same
        if leaf(first_leaf(body)):
            return "framed"
        at += 4 + size
    return "bare" if leaf(first_leaf(head)) else None


def is_span(data: bytes | None) -> bool:
    """Whether ``data`` starts like a serialized Span: trace_id (1), 16 bytes, span_id (2), 8 bytes, and a
    start time (7) that is a fixed64.

    A Metric, found on the same path of an ExportMetricsServiceRequest, starts with its name (1) and
    description (2), which may be 16 and 8 bytes long, but its field 7 (``sum``) is a message.
    """
    if data is None or data[:2] != b"\x0a\x10" or data[18:20] != b"\x12\x08":
        return False
    for number, wire, _, _ in proto_fields(data, 28):
        if number == 7:
            return wire == 1
        if number > 7:
            return False
    return False


def unzstd(data: bytes, partial: bool = False) -> bytes:
    """One zstd-compressed message (``partial``: what decodes of a message cut short by the sniffing window)."""
    import zstandard

    d = zstandard.ZstdDecompressor().decompressobj()
    try:
        out = d.decompress(data)
    except zstandard.ZstdError as e:
        raise RecordError(f"zstd-compressed message does not decompress: {e}") from None
    if not partial and not d.eof:
        raise RecordError("zstd-compressed message ends inside its frame")
    if len(out) > MAX_MESSAGE:
        raise RecordError(f"message decompresses to more than {MAX_MESSAGE} bytes")
    return out


def iter_messages(stream, kind: str) -> Iterator[tuple[str, Any]]:
    """(locator, message bytes | Quarantined) for each message of a protobuf file."""
    if kind == "bare":
        yield "message:1", stream.read()
        return
    n = 0
    while True:
        n += 1
        prefix = stream.read(4)
        if not prefix:
            return
        if len(prefix) < 4:
            yield f"message:{n}", Quarantined(f"message:{n}", "input ends inside a message's 4-byte length prefix; "
                                              "nothing after it could be read", None)
            return
        size = int.from_bytes(prefix, "big")
        if size > MAX_MESSAGE:
            yield f"message:{n}", Quarantined(
                f"message:{n}", f"length prefix {size} is beyond {MAX_MESSAGE} bytes (not a message boundary); "
                "nothing after it could be read", None)
            return
        parts, got = [], 0
        while got < size:
            p = stream.read(min(READ_BYTES, size - got))
            if not p:
                break
            parts.append(p)
            got += len(p)
        data = b"".join(parts)
        if got < size:
            yield f"message:{n}", Quarantined(
                f"message:{n}", f"input ends inside message {n} ({got} of {size} bytes); nothing after it could be read",
                raw_bytes(data))
            return
        yield f"message:{n}", data


def raw_bytes(data: Any) -> str | None:
    """Quarantine text of a protobuf message: its bytes as base64 (cut to what a span's raw keeps)."""
    if not isinstance(data, bytes | bytearray):
        return describe(data)
    return "base64:" + base64.b64encode(bytes(data[: MAX_RAW])).decode("ascii")
