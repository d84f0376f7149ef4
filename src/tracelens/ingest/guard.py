"""The one place where a record that breaks an importer becomes a quarantine item.

Every importer maps physical records (JSONL lines, JSON array items or
documents, CSV/Parquet/SQLite rows, as the readers yield them) to items
through ``each_record``:

* each record is counted in ``Source.records`` as it is read, so the
  pipeline reports how many records the input held, counted from the input
  and not from what the importer made of them;
* ``to_items(locator, value)`` returns one item or an iterable of items
  (a span export line holds many spans); whatever it raises (``RecordError``,
  a value of a type it did not expect, nesting too deep for Python, a bug)
  becomes one ``Quarantined`` item for that record, with its text, after any
  items it yielded first, and reading goes on with the next record;
* a record that yields no item at all is ``Skipped`` with a reason, unless
  the importer merges records and emits them later (``defer=True``), so a
  record can never vanish between the reader and the store;
* ``Quarantined`` items from the reader (bad lines, a cut-short input) pass
  through, their text through ``text`` (importers that scrub secrets).

``isolate`` is the same protection for one sub-record (one span of a line,
one observation of a trace), so that a bad part does not cost its siblings.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from typing import Any

from tracelens.ingest.base import Quarantined, RecordError, Skipped, Source

Item = dict | Quarantined | Skipped
# Text kept for a quarantined record at most (the rest is cut with a note).
MAX_RAW = 64 * 1024 * 1024


def reason(e: BaseException) -> str:
    """The quarantine reason for an exception raised while mapping one record."""
    if isinstance(e, RecordError):
        return str(e)
    if isinstance(e, RecursionError):
        return "record nested too deeply to read (beyond what the importer can follow)"
    if isinstance(e, MemoryError):
        return "record too large to read (out of memory)"
    return f"invalid record: {type(e).__name__}: {e}"


def describe(value: Any) -> str | None:
    """Quarantine text of a parsed value: compact JSON, or a bounded rendering when JSON cannot show it."""
    if value is None:
        return None
    if isinstance(value, str):
        return value
    from tracelens.ingest.normalize import dumps

    try:
        return dumps(value)
    except (TypeError, ValueError, RecursionError, MemoryError):
        return _bounded(value)


def _bounded(value: Any, max_depth: int = 64, limit: int = 1 << 20) -> str:
    """``value`` as JSON-like text, without recursion: containers below ``max_depth`` elided, about ``limit`` chars."""
    out: list[str] = []
    size = 0
    # each entry: text to emit as it is (str), or (value, depth) to render
    stack: list[str | tuple[Any, int]] = [(value, 0)]
    while stack and size < limit:
        top = stack.pop()
        if isinstance(top, str):
            piece = top
        else:
            v, depth = top
            if isinstance(v, dict | list | tuple) and depth >= max_depth:
                piece = "{...}" if isinstance(v, dict) else "[...]"
            elif isinstance(v, dict):
                piece = "{"
                stack.append("}")
                for n, (k, x) in enumerate(reversed(list(v.items()))):
                    stack.append((x, depth + 1))
                    stack.append(f"{_scalar(str(k))}: ")
                    if n < len(v) - 1:
                        stack.append(", ")
            elif isinstance(v, list | tuple):
                piece = "["
                stack.append("]")
                for n, x in enumerate(reversed(list(v))):
                    stack.append((x, depth + 1))
                    if n < len(v) - 1:
                        stack.append(", ")
            else:
                piece = _scalar(v)
        out.append(piece)
        size += len(piece)
    text = "".join(out)
    return text if not stack else text[:limit] + " [... truncated]"


def _scalar(v: Any) -> str:
    import json

    try:
        return json.dumps(v, ensure_ascii=False)
    except (TypeError, ValueError):
        return json.dumps(repr(v), ensure_ascii=False)


def _raw_of(raw: Callable[[Any], str | None], value: Any) -> str | None:
    """``raw(value)``, never raising (falls back to ``describe``), cut to MAX_RAW."""
    try:
        text = raw(value)
    except Exception:  # noqa: BLE001 - the quarantine text of a record that broke the importer
        text = describe(value)
    if text is not None and len(text) > MAX_RAW:
        text = text[:MAX_RAW] + f"\n[... truncated: record was {len(text)} characters]"
    return text


def isolate(locator: str, value: Any, to_item: Callable[[str, Any], Item],
            raw: Callable[[Any], str | None] = describe) -> Item:
    """``to_item(locator, value)``, or a Quarantined item for ``value`` when it raises."""
    try:
        return to_item(locator, value)
    except Exception as e:  # noqa: BLE001 - one record, never the rest of the input
        return Quarantined(locator, reason(e), _raw_of(raw, value))


def each_record(
    source: Source | None,
    values: Iterable[tuple[str, Any]],
    to_items: Callable[[str, Any], Item | Iterable[Item]],
    *,
    raw: Callable[[Any], str | None] = describe,
    text: Callable[[str | None], str | None] | None = None,
    defer: bool = False,
) -> Iterator[Item]:
    """Items of every physical record in ``values`` ((locator, value | Quarantined) pairs); see the module docstring.

    ``source``: where the records are counted (None: not counted, e.g.
    companion files). ``raw``: quarantine text of a value that broke
    ``to_items``; ``text``: applied to the text of reader-level Quarantined
    items; ``defer``: the importer may emit a record's items later (merging).
    """
    it = iter(values)
    box: list = []
    while True:
        try:
            locator, value = next(it)
        except StopIteration:
            return
        if source is not None:
            source.records += 1
        if isinstance(value, Quarantined):
            if text is not None and value.raw is not None:
                value = Quarantined(value.locator, value.reason, text(value.raw))
            box.append(value)
            del value
            yield box.pop()
            continue
        n = 0
        try:
            out = to_items(locator, value)
            if isinstance(out, dict | Quarantined | Skipped):
                n = 1
                box.append(out)
                del out
                value = None  # the item is what matters now; a huge parsed value is not kept while it is used
                yield box.pop()
            else:
                for item in out:
                    n += 1
                    yield item
        except Exception as e:  # noqa: BLE001 - one record, never the rest of the input
            n += 1
            yield Quarantined(locator, reason(e), _raw_of(raw, value))
        if n == 0 and not defer:
            yield Skipped(locator, "record holds nothing to ingest")
