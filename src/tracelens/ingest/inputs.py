"""Ingest of in-memory inputs (request bodies a receiver took), through the same importers and commits as files.

``ingest_inputs(store, [(name, data), ...], format_name, label)`` reads each
input with the format's importer exactly as a file holding it would be read,
and commits the records of all inputs together in shared batches (see its
docstring); ``tracelens collect`` commits its spool with it.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Iterator

from tracelens.ingest.base import FormatError, IngestOptions, Quarantined, Skipped, Source
from tracelens.ingest.pipeline import BATCH_SIZE, Enricher, _ingest_one, _prepare
from tracelens.ingest.records import MAX_RAW_QUARANTINE
from tracelens.ingest.registry import get_format
from tracelens.ingest.summary import FileResult
from tracelens.store import Store


def ingest_inputs(
    store: Store,
    inputs: list[tuple[str, bytes]],
    format_name: str,
    label: str,
    options: IngestOptions | None = None,
    batch_size: int = BATCH_SIZE,
    enricher: Enricher | None | bool = True,
) -> FileResult:
    """Ingest in-memory inputs of one format (e.g. request bodies) as one source, in shared batches.

    Each ``(name, data)`` is parsed by the format's importer exactly as a
    file holding ``data`` would be, and every item's locator is prefixed with
    ``name/``, so a quarantine row says which input it came from and keeps
    the same id when the same input is ingested again. Stored rows name
    ``label`` as their source_file. Records of all inputs are finalized,
    enriched and committed together, ``batch_size`` records (or
    ``BATCH_BYTES``) per commit, as ``ingest`` does for one file: many small
    inputs make few commits. An input the importer cannot read at all (a
    ``FormatError``, or a failure outside its per-record guard) becomes one
    quarantine row for that input, its bytes kept as base64; the others go on.
    Store errors propagate (what was committed before stays committed).
    """
    if batch_size < 1:
        raise ValueError(f"batch_size must be at least 1, got {batch_size}")
    options, enrich, redactor = _prepare(store, options, enricher)
    fmt = get_format(format_name)
    res = FileResult(path=label, format=fmt.name)
    source = Source(label, None, options, b"")  # type: ignore[arg-type] - each input brings its own stream
    t0 = time.perf_counter()
    try:
        _ingest_one(store, _Inputs(fmt, inputs), source, res, options, batch_size, enrich, progress=None,
                    redactor=redactor)
    finally:
        res.records += source.records
        res.seconds = time.perf_counter() - t0
        res.bytes = sum(len(d) for _, d in inputs)
    return res


class _Inputs:
    """A format that reads a list of named in-memory inputs through the real importer (see ``ingest_inputs``)."""

    def __init__(self, fmt, inputs: list[tuple[str, bytes]]) -> None:
        self.fmt, self.inputs = fmt, inputs
        self.name = fmt.name

    def parse(self, source: Source) -> Iterator[dict | Quarantined | Skipped]:
        """The importer's items for every input in turn, locators prefixed with the input's name; an input it cannot read is one quarantine row."""
        import base64
        import io

        for name, data in self.inputs:
            one = Source(source.path, io.BytesIO(data), source.options, b"")
            try:
                for item in self.fmt.parse(one):
                    if isinstance(item, dict):
                        item["source_locator"] = f"{name}/{item.get('source_locator') or 'record'}"
                        yield item
                    else:
                        yield dataclasses.replace(item, locator=f"{name}/{item.locator}")
            except Exception as e:  # noqa: BLE001 - this input is quarantined whole; the others go on
                raw = "base64:" + base64.b64encode(data[:MAX_RAW_QUARANTINE // 2]).decode("ascii")
                why = str(e) if isinstance(e, FormatError) else f"importer {self.name} failed: {type(e).__name__}: {e}"
                yield Quarantined(name, f"{why}; the rest of this input could not be read", raw)
                one.records += 1
            finally:
                source.records += one.records
