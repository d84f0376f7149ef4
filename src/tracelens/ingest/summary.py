"""What an ingest run reports: per input file, where every physical record and the items it held went.

``FileResult.reconciles`` says every item read is accounted for (stored,
duplicate, quarantined, skipped, or kept as a log event); ``IngestSummary``
holds one per file, its ``to_dict`` is what ``tracelens ingest --json``
prints.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field

# FileResult.format of a file that holds no bytes (or only white space): nothing to read, not an error
EMPTY = "(empty file)"


@dataclass
class FileResult:
    """What ingest did with one input file: its physical records, what they held, and where each item went."""

    path: str
    format: str | None
    records: int = 0  # physical records of the input (lines, array items, rows), counted as they are read
    read: int = 0  # items those records held (one per record, or one per span/run for span exports)
    stored: int = 0
    duplicates: int = 0
    quarantined: int = 0
    skipped: int = 0
    naive_timestamps: int = 0
    error: str | None = None
    seconds: float = 0.0
    bytes: int = 0
    events: int = 0  # GenAI log events kept in the store's otlp_events table (new ones; re-read ones are duplicates)
    joined: int = 0  # traces stored before this file, completed with its log events
    waiting: int = 0  # of this file's log events, those whose span is not in the store after the run
    event_keys: Counter = field(default_factory=Counter, repr=False)  # span key -> this file's log events

    @property
    def reconciles(self) -> bool:
        """Whether every item read is accounted for: stored, duplicate, quarantined, skipped or kept as a log event."""
        return self.read == self.stored + self.duplicates + self.quarantined + self.skipped + self.events


@dataclass
class IngestSummary:
    """The result of one ``ingest`` call: one ``FileResult`` per input file, in the order they were read."""

    files: list[FileResult] = field(default_factory=list)

    def total(self, attr: str) -> int:
        """The sum of the ``FileResult`` counter ``attr`` over every file."""
        return sum(getattr(f, attr) for f in self.files)

    @property
    def errors(self) -> list[FileResult]:
        """The files that could not be read at all (missing, unknown format, undecodable), each with its error."""
        return [f for f in self.files if f.error]

    def to_dict(self) -> dict:
        """The summary as ``ingest --json`` prints it: totals, then one entry per file, and whether all reconcile."""
        keys = ("records", "read", "stored", "duplicates", "quarantined", "skipped", "naive_timestamps", "events",
                "joined", "waiting")
        return {
            "totals": {k: self.total(k) for k in keys},
            "files": [
                {
                    "path": f.path,
                    "format": f.format,
                    **{k: getattr(f, k) for k in keys},
                    "error": f.error,
                    "seconds": round(f.seconds, 3),
                }
                for f in self.files
            ],
            "reconciles": all(f.reconciles for f in self.files),
        }
