"""Opening inputs and splitting them into physical records, with bounded memory.

Every importer reads its input through this module, so that what can go
wrong with bytes (compression, text encodings, broken lines, nesting) is
handled once, the same way for every format:

* ``open_input(path)`` (from ``tracelens.ingest.streams``, re-exported here)
  returns ``(stream, head)``: decompressed, transcoded to BOM-free UTF-8,
  ``head`` its first ``HEAD_BYTES``; a fault in the input raises
  ``InputError`` after every byte before it was delivered.
* ``LineReader`` splits a stream into raw lines; when the input stops short
  it keeps the incomplete last line and the error for ``cut_short``.
* ``iter_json_values`` yields ``(locator, value | Quarantined)`` for each
  physical record: a non-blank JSONL line, an item of a top-level JSON array,
  or a whole JSON document. A line that is not JSON (invalid UTF-8, a NUL,
  nesting deeper than ``MAX_DEPTH``) is one Quarantined item, its text kept
  (undecodable bytes as ``\\xNN`` escapes), and reading resumes at the next
  line; in a document that does not parse, the items before the damage are
  kept and reading resumes at the next item that starts a line at the same
  indentation.
* ``iter_csv_rows`` does the same for CSV/TSV rows; a row that swallowed
  later lines (an unterminated quote) is quarantined alone and the lines after
  its first are read again as rows.
* ``json_line`` and ``line_is_blank`` are the per-line steps of JSONL, shared
  with the pipeline's parallel path so that both yield the same items.
* ``sniff_sample`` is the head with overlong JSON strings shortened, so that
  a file whose first line is larger than the head is still recognised.

Memory grows with the longest record (a 100 MB line is held once as bytes
while it is parsed), never with the file; a JSON document that is not JSONL
is read whole.
"""


from __future__ import annotations

import codecs
import contextlib
import csv
import json
import re
import sys
from collections import deque
from collections.abc import Iterator
from pathlib import Path, PurePath
from typing import Any

from tracelens.ingest.base import FormatError, Quarantined
from tracelens.ingest.streams import (  # noqa: F401 - open_input and its names are part of this module's contract
    GZIP_MAGIC,
    HEAD_BYTES,
    READ_BYTES,
    ZSTD_MAGIC,
    InputError,
    InputStream,
    detect_encoding,
    local_copy,
    open_input,
)
from tracelens.objstore import is_url

# orjson's nesting limit: a JSON value nested deeper than this is quarantined with this reason.
MAX_DEPTH = 1024


try:  # orjson is much faster; fall back to json where it is absent
    import orjson as _orjson

    def loads(data: str | bytes) -> Any:
        return _orjson.loads(data)

except ImportError:  # pragma: no cover
    _orjson = None

    def loads(data: str | bytes) -> Any:
        return json.loads(data)





class LineReader:
    """The raw lines of a stream (newlines kept). After iteration, ``cut_short`` says if the input stopped early.

    ``lineno`` and ``start`` are the number (1-based) and byte offset of the
    line last yielded. A line longer than the read size is assembled in a
    ``bytearray`` and handed over without a further copy.
    """

    def __init__(self, stream):
        self.stream = stream
        self.lineno = 0
        self.start = 0
        self.offset = 0  # bytes yielded so far
        self.error: InputError | None = None
        self.partial = b""  # the incomplete last line when the input stopped early

    def __iter__(self) -> Iterator[bytes]:
        read = self.stream.read
        carry = None  # bytearray of a line spanning reads
        box: list = []
        while True:
            try:
                data = read(READ_BYTES)
            except InputError as e:
                self.error = e
                self.partial = bytes(carry) if carry else b""
                return
            if not data:
                if carry:
                    box.append(carry)
                    carry = None
                    yield self._emit(box.pop())
                return
            pos = 0
            nl = data.find(b"\n")
            if nl >= 0 and carry is not None:
                carry += data[: nl + 1]
                # handed over through a list: this frame keeps no reference to a long line while it is used
                box.append(carry)
                carry = None
                pos = nl + 1
                yield self._emit(box.pop())
                nl = data.find(b"\n", pos)
            while nl >= 0:
                yield self._emit(data[pos : nl + 1])
                pos = nl + 1
                nl = data.find(b"\n", pos)
            if pos < len(data):
                if carry is None:
                    carry = bytearray(data[pos:])
                else:
                    carry += data[pos:] if pos else data

    def _emit(self, line) -> bytes:
        self.lineno += 1
        self.start = self.offset
        self.offset += len(line)
        return line

    def cut_short(self) -> Quarantined | None:
        """The item that accounts for the rest of an input that stopped early (None when it ended normally)."""
        if self.error is None:
            return None
        return cut_short(self.lineno, self.partial, self.error)


def cut_short(lineno: int, partial: bytes, error: BaseException) -> Quarantined:
    """The one item for an input that stops after line ``lineno`` (``partial``: the start of the next line)."""
    n = lineno + 1
    if partial.strip():
        return Quarantined(
            f"line:{n}", f"input ends unexpectedly inside line {n}: {error}; nothing after it could be read",
            partial.decode("utf-8", "backslashreplace"),
        )
    return Quarantined(f"line:{n}", f"input ends unexpectedly after line {lineno}: {error}; nothing after it could be read",
                       None)


def _decode_line(raw: bytes, lineno: int, start: int) -> str | Quarantined | None:
    """One raw line as text without the newline, Quarantined (invalid UTF-8, text kept), or None when blank."""
    if lineno == 1 and raw.startswith(codecs.BOM_UTF8):
        raw = raw[len(codecs.BOM_UTF8) :]
    try:
        s = raw.decode("utf-8")
    except UnicodeDecodeError as e:
        return Quarantined(
            f"line:{lineno}",
            f"invalid UTF-8 at byte {start + e.start} (line {lineno}, column {e.start + 1}); "
            "re-encode the file as UTF-8",
            raw.decode("utf-8", "backslashreplace").rstrip("\r\n"),
        )
    s = s.rstrip("\r\n")
    return s if s.strip() else None


# ASCII bytes that str.strip() removes; a line whose first other byte is plain
# ASCII is certainly not blank, so most lines are classified without decoding.
_ASCII_SPACE = b" \t\n\r\x0b\x0c"
_ASCII_SPACE_LIKE = range(0x1C, 0x20)  # str.isspace() is also true for these separators


def line_is_blank(raw: bytes, lineno: int) -> bool:
    """Whether a raw line holds no record (exactly what ``json_line`` skips, without decoding common lines)."""
    s = raw.lstrip(_ASCII_SPACE)
    if not s:
        return True
    c = s[0]
    if c < 0x80 and c not in _ASCII_SPACE_LIKE:
        return False
    return _decode_line(raw, lineno, 0) is None


def _json_error(e: Exception, where: str) -> str:
    """The quarantine reason for JSON that does not parse; nesting beyond the limit is named as such."""
    msg = str(e)
    if isinstance(e, RecursionError) or "depth limit" in msg or "recursion" in msg.lower():
        return f"JSON nested deeper than {MAX_DEPTH} levels {where} (the limit)"
    return f"malformed JSON {where}: {msg}"


def json_line(raw: bytes, lineno: int, start: int) -> tuple[str, Any] | None:
    """``(locator, value | Quarantined)`` of one raw JSONL line (``start``: its byte offset); None when blank.

    Common lines are parsed straight from bytes (orjson validates UTF-8
    itself); anything unusual (a failure, a BOM, leading non-ASCII) takes
    the decoding path so that messages and offsets stay exact.
    """
    s = raw.lstrip(_ASCII_SPACE)
    if not s:
        return None
    c = s[0]
    if c < 0x80 and c not in _ASCII_SPACE_LIKE and _orjson is not None:
        try:
            return f"line:{lineno}", _orjson.loads(raw)
        except ValueError:
            pass  # re-parsed below as text, for the exact message
    line = _decode_line(raw, lineno, start)
    if line is None:
        return None
    if isinstance(line, Quarantined):
        return line.locator, line
    try:
        return f"line:{lineno}", loads(line)
    except (ValueError, RecursionError) as e:
        return f"line:{lineno}", Quarantined(f"line:{lineno}", _json_error(e, f"on line {lineno}"), line)


# ---------------------------------------------------------------- JSON: lines or one document

_STRING = re.compile(rb'"(?:[^"\\]|\\.)*"')


def _balanced(line: bytes) -> bool:
    """The line ends a JSON container and its brackets (outside strings) balance: a whole value, however deep."""
    t = line.strip()
    if t[-1:] not in (b"}", b"]"):
        return False
    if _orjson is not None:
        try:
            _orjson.loads(t)
            return True
        except ValueError:
            pass
    t = _STRING.sub(b"", t)
    return t.count(b"{") == t.count(b"}") and t.count(b"[") == t.count(b"]")


def is_json_document(head: bytes) -> bool:
    """True when ``iter_json_values`` reads the input as one document (an array or pretty-printed JSON), not JSONL.

    JSONL when the first line is a whole value (or, when it is broken, a
    later line in the head is); a document when the input starts a value
    that spans lines, or is a single line holding an array.
    """
    s = head[3:] if head.startswith(codecs.BOM_UTF8) else head
    s = s.lstrip()
    if s[:1] not in (b"[", b"{"):
        return False
    nl = s.find(b"\n")
    if nl < 0:
        return s[:1] == b"["
    first = s[:nl]
    if _balanced(first):
        return s[:1] == b"[" and not s[nl + 1 :].strip()
    if s[:1] == b"[":
        return True
    later = s[nl + 1 :].split(b"\n")
    if len(head) >= HEAD_BYTES:
        later = later[:-1]  # the head may end inside its last line
    return not any(ln[:1] in (b"{", b"[") and _balanced(ln) for ln in later[:8])


def is_json_text(head: bytes) -> bool:
    """Whether text holds JSON (lines, an array or a document) rather than CSV, for formats that take both.

    JSON when the first non-blank line opens a JSON value, or, that line
    being damaged, most of the lines after it in the head do.
    """
    s = head[3:] if head.startswith(codecs.BOM_UTF8) else head
    lines = s.lstrip().split(b"\n")
    if lines[0][:1] in (b"{", b"["):
        return True
    later = [ln for ln in lines[1 : -1 if len(head) >= HEAD_BYTES else None] if ln.strip()][:8]
    return bool(later) and 2 * sum(ln.lstrip()[:1] in (b"{", b"[") for ln in later) > len(later)


def iter_json_values(stream, head: bytes = b"", path: str = "") -> Iterator[tuple[str, Any]]:
    """Yield (locator, parsed value or Quarantined) for each physical record: JSONL lines, array items or a document.

    Nothing is dropped: a bad line is one Quarantined item and the next line
    is read; an input that stops early ends with one Quarantined item for
    the rest (``cut_short``).
    """
    if is_json_document(head):
        yield from _document_values(stream)
        return
    reader = LineReader(stream)
    lines = iter(reader)
    box: list = []
    for raw in lines:
        item = json_line(raw, reader.lineno, reader.start)
        del raw
        if item is not None:
            # handed over through a list so that this frame keeps no reference to a (possibly huge) value
            # while the consumer works on it
            box.append(item)
            del item
            yield box.pop()
    tail = reader.cut_short()
    if tail is not None:
        yield tail.locator, tail


def _read_all(stream) -> tuple[bytes, BaseException | None]:
    """Everything ``stream`` holds, and the error that ended it early (the bytes before it are kept)."""
    parts = []
    try:
        while True:
            p = stream.read(READ_BYTES)
            if not p:
                break
            parts.append(p)
    except InputError as e:
        return b"".join(parts), e
    return b"".join(parts), None


def _document_values(stream) -> Iterator[tuple[str, Any]]:
    data, error = _read_all(stream)
    if data.startswith(codecs.BOM_UTF8):
        data = data[len(codecs.BOM_UTF8) :]
    doc = _NOT_PARSED
    if error is None and _orjson is not None:
        with contextlib.suppress(ValueError):
            doc = _orjson.loads(data)
    if doc is _NOT_PARSED:
        yield from _salvage(data, error)
        return
    del data
    if isinstance(doc, list):
        for i in range(len(doc)):
            yield f"index:{i}", _take(doc, i)
    else:
        yield "document", doc


def _take(items: list, i: int) -> Any:
    """``items[i]``, letting go of it in the list (so a handed-over value is not held here)."""
    v, items[i] = items[i], None
    return v


_NOT_PARSED = object()
_WS = " \t\r\n"


def _salvage(data: bytes, error: BaseException | None) -> Iterator[tuple[str, Any]]:
    """Values of a JSON text that does not parse as a whole: the good ones, and one Quarantined per damaged stretch.

    A top-level array is read item by item; anything else as values one
    after another (pretty-printed objects). After a damaged value, reading
    resumes at the next line that starts at the value's indentation with the
    same bracket. Undecodable bytes are carried as lone surrogates; a value
    holding some is quarantined as invalid UTF-8 with its text (``\\xNN``).
    ``error``: why the input ended early, folded into the last item.
    """
    text = data.decode("utf-8", "surrogateescape")
    del data
    dec = json.JSONDecoder()
    n = len(text)
    i = _skip_ws(text, 0)
    array = text[i : i + 1] == "["
    if array:
        i = _skip_ws(text, i + 1)
        single = False
    else:
        end = _value_end(dec, text, i)
        single = end is not None and _skip_ws(text, end) >= n and error is None
    what = "array item" if array else "value"
    k = 0
    complete = False  # reached the end of the array / the text
    while i < n:
        loc = "document" if single else f"index:{k}"
        if array and text[i] == "]":
            complete = True
            i = _skip_ws(text, i + 1)
            if i < n:
                yield loc, Quarantined(loc, "text after the end of the JSON array", _shown(text[i:]))
            break
        try:
            v, j = dec.raw_decode(text, i)
        except (ValueError, RecursionError) as e:
            nxt = _resync(text, i)
            line = text.count("\n", 0, i) + 1
            reason = _json_error(e, f"in {what} {k} (line {line})")
            if nxt is None and error is not None:
                reason += f"; the input ends unexpectedly: {error}"
                error = None
            yield loc, Quarantined(loc, reason, _shown(text[i:nxt]))
            k += 1
            if nxt is None:
                complete = True
                break
            i = nxt
            continue
        if _has_escapes(text[i:j]):
            yield loc, Quarantined(loc, f"invalid UTF-8 in {what} {k}; re-encode the file as UTF-8 "
                                   "(the text is kept with \\xNN escapes)", _shown(text[i:j]))
        else:
            yield loc, v
        del v
        k += 1
        i = _skip_ws(text, j)
        if array and text[i : i + 1] == ",":
            i = _skip_ws(text, i + 1)
    else:
        complete = not array
    if not complete or error is not None:
        loc = f"index:{k}"
        why = f": {error}" if error is not None else " (truncated file)"
        yield loc, Quarantined(loc, f"the input ends unexpectedly after {k} {what}s{why}; nothing after it could be read",
                               None)


def _value_end(dec: json.JSONDecoder, text: str, i: int) -> int | None:
    try:
        return dec.raw_decode(text, i)[1]
    except (ValueError, RecursionError):
        return None


def _skip_ws(text: str, i: int) -> int:
    n = len(text)
    while i < n and text[i] in _WS:
        i += 1
    return i


# What may start a value (or what is left of a damaged one) at the head of a line: not a closing bracket or comma.
_VALUE_START = re.compile(r"[^\s\]},]")


def _resync(text: str, i: int) -> int | None:
    """Start of the next line that opens a value at the indentation of the value at ``i``, if any."""
    line_start = text.rfind("\n", 0, i) + 1
    indent = text[line_start:i]
    if indent.strip():
        return None  # the value does not start its line: no way to tell where the next one starts
    pattern = re.compile("\n" + re.escape(indent) + _VALUE_START.pattern)
    m = pattern.search(text, i + 1)
    return None if m is None else m.start() + 1 + len(indent)


def _has_escapes(s: str) -> bool:
    if s.isascii():
        return False
    try:
        s.encode("utf-8")
        return False
    except UnicodeEncodeError:
        return True


def _shown(s: str) -> str:
    """Quarantine text of a stretch that may hold escaped bytes (shown as \\xNN)."""
    if _has_escapes(s):
        return s.encode("utf-8", "surrogateescape").decode("utf-8", "backslashreplace")
    return s


# ---------------------------------------------------------------- CSV

# Lines of one row kept to re-read them when the row turns out to be broken (beyond this: no resync).
_MAX_ROW_REPLAY = 64 * 1024 * 1024


def _raise_field_limit() -> None:
    limit = sys.maxsize
    while True:  # sys.maxsize overflows a C long on some platforms
        try:
            csv.field_size_limit(limit)
            return
        except OverflowError:
            limit //= 2


def csv_delimiter(line: str, path: str) -> str:
    """The delimiter of a header line: tab for .tsv files, else the commonest of , tab ; | outside quotes."""
    if path.lower().endswith((".tsv", ".tab", ".tsv.gz", ".tsv.zst")):
        return "\t"
    counts = {d: _count_outside_quotes(line, d) for d in (",", "\t", ";", "|")}
    best = max(counts, key=lambda d: counts[d])
    return best if counts[best] else ","


def _count_outside_quotes(line: str, ch: str) -> int:
    n = 0
    quoted = False
    for c in line:
        if c == '"':
            quoted = not quoted
        elif c == ch and not quoted:
            n += 1
    return n


class _CsvFeed:
    """Decoded lines for csv.reader, remembering those of the current row (to re-read a broken row's lines)."""

    def __init__(self, reader: LineReader):
        self.lines = iter(reader)
        self.reader = reader
        self.replay: deque[tuple[int, str, bool]] = deque()
        self.current: list[tuple[int, str, bool]] = []  # (line number, text, invalid UTF-8) of the row being read
        self.kept = 0
        self.overflow = False  # the row's lines exceeded _MAX_ROW_REPLAY: not all of them are in ``current``

    def __iter__(self):
        return self

    def __next__(self) -> str:
        if self.replay:
            entry = self.replay.popleft()
        else:
            raw = next(self.lines)
            lineno = self.reader.lineno
            if lineno == 1 and raw.startswith(codecs.BOM_UTF8):
                raw = raw[len(codecs.BOM_UTF8) :]
            try:
                entry = (lineno, raw.decode("utf-8"), False)
            except UnicodeDecodeError:
                entry = (lineno, raw.decode("utf-8", "surrogateescape"), True)
        if self.kept + len(entry[1]) <= _MAX_ROW_REPLAY or not self.current:
            self.current.append(entry)
            self.kept += len(entry[1])
        else:
            self.overflow = True
        return entry[1]

    def start_row(self) -> None:
        """Forget the lines kept for the previous row: a new data row starts."""
        self.current = []
        self.kept = 0
        self.overflow = False


def iter_csv_rows(stream, head: bytes, path: str, delimiter: str | None = None,
                  ) -> tuple[list[str], Iterator[tuple[str, dict | Quarantined]]]:
    """(header, iterator of (locator, row dict or Quarantined)) for a CSV/TSV stream, one item per data row.

    A row with invalid UTF-8 or the wrong number of fields is quarantined
    with its text. When such a row spans several lines (an unterminated
    quote swallowing what follows), only its first line is quarantined and
    the lines after it are read again as rows. Header names are stripped,
    blank names numbered and repeated names suffixed. Blank lines are not rows.
    """
    _raise_field_limit()
    text = head.decode("utf-8", "replace").lstrip("\ufeff")
    delim = delimiter or csv_delimiter(text.split("\n", 1)[0], path)
    lines = LineReader(stream)
    feed = _CsvFeed(lines)
    reader = csv.reader(feed, delimiter=delim)
    try:
        header = next(reader)
    except StopIteration:
        return [], iter(())
    except csv.Error as e:
        raise FormatError(f"{path}: cannot read the CSV header: {e}") from None
    cols: list[str] = []
    for i, h in enumerate(header):
        name = h.strip() or f"column_{i + 1}"
        base, k = name, 2
        while name in cols:
            name = f"{base}_{k}"
            k += 1
        cols.append(name)

    def rows() -> Iterator[tuple[str, dict | Quarantined]]:
        n = 0
        while True:
            feed.start_row()
            error = None
            try:
                values = next(reader)
            except StopIteration:
                break
            except csv.Error as e:
                values, error = [], e
            span = feed.current
            if error is None and not any(b for _, _, b in span) and not "".join(t for _, t, _ in span).strip():
                continue  # blank line (or only whitespace): no record
            n += 1
            loc = f"row:{n}"
            if error is None and len(values) == len(cols) and not any(b for _, _, b in span):
                yield loc, dict(zip(cols, values, strict=True))
                continue
            first = span[0][0] if span else lines.lineno
            if len(span) > 1 and not feed.overflow and (error is not None or len(values) != len(cols)):
                # the row swallowed the lines after its first (an unterminated quote): they are read again
                feed.replay.extendleft(reversed(span[1:]))
                span = span[:1]
                values = next(csv.reader([span[0][1]], delimiter=delim), [])
            raw = "".join(t for _, t, _ in span).rstrip("\r\n")
            bad = next((ln for ln, _, b in span if b), None)
            if bad is not None:
                reason = f"invalid UTF-8 on line {bad}; re-encode the file as UTF-8"
            elif error is not None:
                reason = f"unreadable CSV row on line {first}: {error}"
            else:
                reason = (f"row on line {first} has {len(values)} fields, the header has {len(cols)} "
                          "(truncated row or unescaped delimiter/quote)")
            yield loc, Quarantined(loc, reason, _shown(raw))
        if lines.error is not None:
            n += 1
            loc = f"row:{n}"
            if lines.partial.strip():
                yield loc, Quarantined(loc, f"input ends unexpectedly inside the row after line {lines.lineno}: {lines.error}; "
                                       "nothing after it could be read", lines.partial.decode("utf-8", "backslashreplace"))
            else:
                yield loc, Quarantined(loc, f"input ends unexpectedly after line {lines.lineno}: {lines.error}; "
                                       "nothing after it could be read", None)

    return cols, rows()


# ---------------------------------------------------------------- sniffing

_SAMPLE_STRING = 256  # bytes kept of each JSON string in a sniff sample
_SAMPLE_SCAN = 512 * 1024 * 1024  # bytes of a long first line scanned at most


def sniff_sample(stream, head: bytes) -> bytes:
    """What sniffers see: ``head``, or, when its first line does not end within it, the input from the start
    with every JSON string cut to its first 256 bytes, up to ``HEAD_BYTES``.

    Keys and structure survive, so a record whose identifying keys come
    after a 100 MB prompt is still recognised. ``stream`` must be at its
    start; at most ``_SAMPLE_SCAN`` bytes are read (the caller closes it).
    """
    if b"\n" in head or len(head) < HEAD_BYTES or head.lstrip()[:1] not in (b"{", b"["):
        return head
    out = bytearray()
    in_string = False
    kept = 0  # bytes of the current string copied so far
    slashes = 0  # backslashes just before the current read (an odd run escapes its first byte)
    scanned = 0
    while len(out) < HEAD_BYTES and scanned < _SAMPLE_SCAN:
        try:
            data = stream.read(READ_BYTES)
        except OSError:
            break
        if not data:
            break
        scanned += len(data)
        pos = 0
        while pos < len(data) and len(out) < HEAD_BYTES:
            q = data.find(b'"', pos)
            if not in_string:
                end = len(data) if q < 0 else q + 1
                out += data[pos:end]
                pos = end
                in_string, kept, slashes = q >= 0, 0, 0
                continue
            # inside a string: the next quote not escaped by an odd run of backslashes ends it
            while q >= 0 and _escaped(data, q, pos, slashes):
                q = data.find(b'"', q + 1)
            end = len(data) if q < 0 else q
            out += _string_part(data[pos:end], kept)
            kept += end - pos
            if q < 0:
                run = len(data) - len(data.rstrip(b"\\"))
                slashes = run if run < len(data) - pos else slashes + run
                pos = len(data)
            else:
                out += b'"'
                in_string, pos = False, q + 1
    return bytes(out[:HEAD_BYTES])


def _escaped(data: bytes, q: int, start: int, carried: int) -> bool:
    """Whether the quote at ``q`` is escaped: preceded by an odd run of backslashes (``carried`` of them from
    the previous read when the run reaches back to ``start``)."""
    j = q
    while j > start and data[j - 1] == 0x5C:
        j -= 1
    run = q - j + (carried if j == start else 0)
    return run % 2 == 1


def _string_part(seg: bytes, kept: int) -> bytes:
    """What a sample keeps of ``seg``, the part of a JSON string after its first ``kept`` bytes."""
    take = _SAMPLE_STRING - kept
    if take <= 0:
        return b""
    if len(seg) <= take:
        return seg
    seg = seg[:take]
    k = seg.rfind(b"\\")  # no escape sequence may be cut in two
    if k >= 0 and len(seg) - k < 6:
        j = k
        while j > 0 and seg[j - 1] == 0x5C:
            j -= 1
        if (k - j) % 2 == 0:
            seg = seg[:k]
    return seg.decode("utf-8", "ignore").encode()  # nor a character


# ---------------------------------------------------------------- paths

_DOC_SUFFIXES = (".md", ".rst", ".txt", ".html", ".pdf", ".png", ".svg")


def _is_documentation(f: PurePath) -> bool:
    """Files found while walking a directory that are documentation, not logs (named files are always read)."""
    return f.suffix.lower() in _DOC_SUFFIXES or f.name.upper().startswith(("README", "LICENSE"))


def expand_paths(paths: list[str], walked: set[str] | None = None) -> list[str]:
    """Files from files, directories (recursive) and globs; '-' kept. In directories, hidden files and documentation are skipped.

    Object-storage URLs (``tracelens.objstore.is_url``) are expanded the same way by
    ``tracelens.ingest.remote.expand`` (each bucket preflighted once); that raises ``ObjectStoreError``
    when a location cannot be used.
    """
    out: list[str] = []
    checked: set = set()  # buckets preflighted in this call
    for p in paths:
        if p == "-":
            out.append(p)
            continue
        if is_url(p):
            from tracelens.ingest.remote import expand

            out.extend(expand(p, walked, checked, skip=_is_documentation))
            continue
        path = Path(p)
        if path.is_dir():
            found = [
                str(f.resolve())
                for f in sorted(path.rglob("*"))
                if f.is_file()
                and not any(part.startswith(".") for part in f.relative_to(path).parts)
                and not _is_documentation(f)
            ]
            out.extend(found)
            if walked is not None:
                walked.update(found)
        elif path.exists():
            out.append(str(path.resolve()))
        elif any(ch in p for ch in "*?["):
            base = Path(".")
            matches = sorted(base.glob(p)) if not Path(p).is_absolute() else sorted(Path("/").glob(p.lstrip("/")))
            out.extend(str(m.resolve()) for m in matches if m.is_file())
        else:
            out.append(str(path))  # reported as missing by the pipeline
    seen = set()
    uniq = []
    for p in out:
        if p not in seen:
            seen.add(p)
            uniq.append(p)
    return uniq
