"""Joining a batch results file to the files that complete it (request bodies, file time, stable ids).

Batch APIs (Anthropic Message Batches, OpenAI Batch) write results that hold
no prompt: each result names its request by ``custom_id``, and the request
bodies are in another file passed in the same ingest (a companion). Both
batch importers join the same way:

* ``load_companions`` indexes the request files; an unreadable file or line
  only leaves its results unjoined, it never fails the ingest.
* ``CompanionIndex.lookup`` returns the body and ``joined``, ``missing`` or
  ``ambiguous``. Custom ids repeat across batches (``request-1`` in every
  batch), so when several request files hold the same id the one whose file
  name best matches the results file (same directory, longest common name
  once words like ``results``/``requests``/``batch`` are dropped) wins; a tie
  joins nothing rather than the wrong prompt.
* ``file_fingerprint`` names a results file by its first decompressed bytes,
  not its path, so re-ingesting it from anywhere gives the same trace ids.
* ``file_time`` is the last-resort timestamp (the file's modification time).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import os
import re
from dataclasses import dataclass, field

from tracelens.ingest.base import Quarantined
from tracelens.ingest.normalize import dumps
from tracelens.ingest.readers import iter_json_values, open_input
from tracelens.objstore import is_url


def file_fingerprint(head: bytes) -> str:
    """12 hex chars identifying a batch file by its first bytes (decompressed), independent of its path."""
    return hashlib.sha256(head).hexdigest()[:12]


_NAME_NOISE = re.compile(r"(results?|requests?|outputs?|inputs?|responses?|batch(es)?|jsonl?|gz|zst)", re.I)


def _stem_key(path: str) -> str:
    base = os.path.basename(path).lower()
    return _NAME_NOISE.sub("", base)


def _common_prefix(a: str, b: str) -> int:
    n = 0
    for x, y in zip(a, b, strict=False):
        if x != y:
            break
        n += 1
    return n


@dataclass
class CompanionIndex:
    """Request bodies of batch request files, by custom_id, remembering which file each came from."""

    by_id: dict[str, list[tuple[str, str]]] = field(default_factory=dict)  # custom_id -> [(path, body JSON text)]

    def add(self, custom_id: str, path: str, body_text: str) -> None:
        """Record ``body_text`` as the request of ``custom_id`` from ``path`` (the same body from the same file only
        once).
        """
        entries = self.by_id.setdefault(custom_id, [])
        if not any(p == path and b == body_text for p, b in entries):
            entries.append((path, body_text))

    def lookup(self, custom_id: str | None, results_path: str) -> tuple[str | None, str]:
        """(request body JSON text or None, 'joined' | 'missing' | 'ambiguous')."""
        if custom_id is None:
            return None, "missing"
        entries = self.by_id.get(custom_id)
        if not entries:
            return None, "missing"
        if len(entries) == 1:
            return entries[0][1], "joined"
        rdir, rkey = os.path.dirname(results_path), _stem_key(results_path)
        scored = [((os.path.dirname(p) == rdir, _common_prefix(_stem_key(p), rkey)), b) for p, b in entries]
        best = max(score for score, _ in scored)
        bodies = {b for score, b in scored if score == best}
        if len(bodies) == 1:  # one best-matching file, or the same request in several files
            return bodies.pop(), "joined"
        return None, "ambiguous"


def load_companions(paths: list[str], rows) -> CompanionIndex:
    """Index the request files ``paths``; ``rows(value)`` yields (custom_id, body) pairs of one JSON value."""
    index = CompanionIndex()
    for path in paths:
        # An unreadable companion (or line) only means those results stay unjoined (batch_request=missing).
        try:
            stream, head = open_input(path)
        except Exception:  # noqa: BLE001
            continue
        try:
            for _, value in iter_json_values(stream, head, path):
                if isinstance(value, Quarantined):
                    continue
                try:  # one odd line costs only its own join
                    for cid, body in rows(value):
                        if cid is not None and isinstance(body, dict):
                            index.add(str(cid), path, dumps(body))
                except Exception:  # noqa: BLE001, S112
                    continue
        except Exception:  # noqa: BLE001, S110
            pass
        finally:
            stream.close()
    return index


def file_time(path: str) -> str | None:
    """ISO 8601 modification time of ``path``, a file or an object URL (None for stdin or a missing file)."""
    if path == "-":
        return None
    if is_url(path):
        from tracelens.ingest.remote import modified

        return modified(path)
    try:
        return dt.datetime.fromtimestamp(os.path.getmtime(path), tz=dt.UTC).isoformat()
    except OSError:
        return None
