"""Contracts shared by every importer.

An importer (``tracelens.ingest.formats.<name>``) is a ``Format`` object with
``sniff`` (how sure it is that the first bytes of a file are its format) and
``parse`` (yield one item per input record). Each item is exactly one of:

* a ``dict`` holding trace fields (any subset of ``tracelens.schema.FIELDS``
  plus ``source_locator``); the pipeline fills derived columns (hashes, model
  identity, prompt_text, trace_id when missing) in ``finalize``;
* ``Quarantined(locator, reason, raw)``: the record could not be read;
* ``Skipped(locator, reason)``: a valid record that is not an LLM call (a
  tool or agent span); counted, not stored;
* ``LogEvent``: a GenAI event sent as an OTLP log record, which belongs to
  a span (``otlp_logs``): kept in the store's ``otlp_events`` table and
  merged into that span's trace (``tracelens.ingest.logjoin``).

Importers read their input with ``tracelens.ingest.readers`` and map each
physical record (a line, an array item, a row) through
``tracelens.ingest.guard.each_record``, which counts it in
``Source.records`` and turns anything a record makes the importer raise into
``Quarantined`` with a precise reason, so one bad record never takes valid
records down with it. They raise ``FormatError`` only when the whole file is
unusable (then the pipeline quarantines nothing and reports a clear per-file
error).
"""

from __future__ import annotations

import io
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    from tracelens.modelcatalog import ModelCatalog


class FormatError(Exception):
    """The whole file cannot be read as this format (user-facing message)."""


class RecordError(Exception):
    """One record is invalid; the message becomes its quarantine reason."""


@dataclass(frozen=True)
class Quarantined:
    locator: str
    reason: str
    raw: str | None


@dataclass(frozen=True)
class Skipped:
    locator: str
    reason: str


@dataclass(frozen=True)
class LogEvent:
    """One GenAI event from an OTLP log record, to be joined to the span it names.

    ``attributes`` is what a span event of that name carries (the record's
    attributes, its body under ``event.body``), so the span mapping reads it
    like a span event. ``ordinal`` is the record's position in its file (the
    order of events that share a time).
    """

    locator: str
    trace_id: str  # hex
    span_id: str  # hex
    name: str
    time_ns: int | None
    attributes: dict
    ordinal: int
    scope: str | None = None
    occurrence: int = 0  # how many identical events (span, name, time, content) came before it in its input


@dataclass
class IngestOptions:
    """Options an importer may consult."""

    column_map: dict[str, str] = field(default_factory=dict)  # canonical field -> source column (generic formats)
    naive_tz: str = "UTC"  # zone for timestamps without one; "reject" quarantines them
    default_time: str | None = None  # timestamp for records that carry none (ISO 8601)
    companions: dict[str, list[str]] = field(default_factory=dict)  # role -> paths, e.g. {"batch_requests": [...]}
    provider: str | None = None  # provider hint for generic formats
    redact_kinds: tuple[str, ...] = ()  # tracelens.redact.KINDS to mask in stored text
    redact_patterns: tuple[str, ...] = ()  # extra regexes to mask
    redact_fields: tuple[str, ...] = ()  # tracelens.redact.REDACTABLE_FIELDS replaced by keyed tokens
    phone_regions: tuple[str, ...] = ("US",)  # regions whose national phone numbers "phones" recognises
    # decides model_is_alias; None: ingest() uses the store's catalog (its override, else the shipped data)
    model_catalog: ModelCatalog | None = None


@dataclass
class Source:
    """One input to parse: a decompressed binary stream plus where it came from."""

    path: str  # absolute path, or "-" for stdin
    stream: io.BufferedIOBase
    options: IngestOptions
    head: bytes = b""  # the first bytes, for importers that need to re-check
    records: int = 0  # physical records read so far (lines, array items, rows), counted by guard.each_record


class Format(Protocol):
    name: str
    description: str

    def sniff(self, head: bytes, path: str) -> float:
        """0 = not this format, 1 = certainly this format."""
        ...

    def parse(self, source: Source) -> Iterator[dict | Quarantined | Skipped | LogEvent]: ...
