"""Opening inputs and splitting them into raw records, with bounded memory.

* ``open_input`` decompresses ``.gz`` and ``.zst`` transparently (by magic
  bytes, not by name) and returns the first bytes for sniffing.
* ``iter_lines`` yields ``(line_number, text | Quarantined)`` one line at a
  time; a line that is not valid UTF-8 becomes a quarantine item naming the
  byte offset, and a truncated compressed stream ends with a quarantine item
  saying where the data stopped. UTF-16 files (BOM) are decoded as such.
* ``iter_json_values`` yields ``(locator, value | Quarantined)`` for JSONL,
  a JSON array, or a single JSON document.
* ``json_line`` and ``line_is_blank`` are its per-line steps for JSONL, so
  that the pipeline's parallel path (lines split in one process, parsed in
  others) yields exactly the same items, locators and messages.

Memory grows with the longest line (a 50 MB line costs ~50 MB), never with
the file.
"""

from __future__ import annotations

import codecs
import gzip
import io
import json
import sys
import zlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from tracelens.ingest.base import FormatError, Quarantined

HEAD_BYTES = 256 * 1024
GZIP_MAGIC = b"\x1f\x8b"
ZSTD_MAGIC = b"\x28\xb5\x2f\xfd"
# A JSON array document larger than this is parsed anyway, but must fit in memory; say so.
MAX_JSON_DOCUMENT = 512 * 1024 * 1024

try:  # orjson is much faster; fall back to json where it is absent
    import orjson as _orjson

    def loads(data: str | bytes) -> Any:
        return _orjson.loads(data)

except ImportError:  # pragma: no cover
    _orjson = None

    def loads(data: str | bytes) -> Any:
        return json.loads(data)


class _PeekStream(io.RawIOBase):
    """A stream with its first bytes pushed back after peeking."""

    def __init__(self, head: bytes, rest: io.BufferedIOBase | None, error: BaseException | None = None):
        self._head = head
        self._rest = rest
        self._error = error  # raised once the head is consumed (data ended in a decompression error)

    def readable(self) -> bool:
        return True

    def readinto(self, b) -> int:
        if self._head:
            n = min(len(b), len(self._head))
            b[:n] = self._head[:n]
            self._head = self._head[n:]
            return n
        if self._error is not None:
            err, self._error = self._error, None
            raise err
        if self._rest is None:
            return 0
        readinto = getattr(self._rest, "readinto", None)
        if readinto is not None:  # straight into the caller's buffer: no intermediate bytes object
            return readinto(b)
        data = self._rest.read(len(b))
        n = len(data)
        b[:n] = data
        return n

    def close(self) -> None:
        with _suppress():
            self._rest.close()
        super().close()


class _suppress:
    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return True


def open_input(path: str) -> tuple[io.BufferedIOBase, bytes]:
    """Open ``path`` ('-' = stdin), decompressing by magic bytes. Returns (stream, head)."""
    raw = sys.stdin.buffer if path == "-" else open(path, "rb")  # noqa: SIM115 - closed by caller
    magic = raw.read(4)
    base = io.BufferedReader(_PeekStream(magic, raw), buffer_size=1 << 20)
    if magic[:2] == GZIP_MAGIC:
        stream: io.BufferedIOBase = gzip.GzipFile(fileobj=base, mode="rb")
    elif magic == ZSTD_MAGIC:
        import zstandard

        stream = zstandard.ZstdDecompressor().stream_reader(base, read_across_frames=True)
    else:
        stream = base
    head, error = _read_head(stream)
    if error is not None and not head:
        raise FormatError(f"cannot decompress: {error}")
    buffered = io.BufferedReader(_PeekStream(head, None if error else stream, error), buffer_size=1 << 20)
    return buffered, head


def _read_head(stream: io.BufferedIOBase) -> tuple[bytes, BaseException | None]:
    """Up to HEAD_BYTES from ``stream``; a decompression error is returned, not raised, with the bytes before it."""
    chunks = []
    n = 0
    try:
        while n < HEAD_BYTES:
            c = stream.read(min(HEAD_BYTES - n, 8192))
            if not c:
                break
            chunks.append(c)
            n += len(c)
    except (EOFError, OSError, zlib.error) as e:
        return b"".join(chunks), e
    return b"".join(chunks), None


def detect_text_encoding(head: bytes) -> str:
    if head.startswith(codecs.BOM_UTF8):
        return "utf-8-sig"
    if head.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        return "utf-16"
    return "utf-8"


def iter_lines(stream: io.BufferedIOBase, head: bytes = b"") -> Iterator[tuple[int, str | Quarantined]]:
    """Yield (1-based line number, decoded line without newline, or Quarantined). Blank lines are skipped."""
    enc = detect_text_encoding(head)
    lineno = 0
    offset = 0
    try:
        if enc == "utf-16":
            text = io.TextIOWrapper(stream, encoding="utf-16", errors="strict", newline=None)
            try:
                for line in text:
                    lineno += 1
                    s = line.rstrip("\r\n")
                    if s.strip():
                        yield lineno, s
            except UnicodeDecodeError as e:
                yield lineno + 1, Quarantined(f"line:{lineno + 1}", f"invalid UTF-16: {e.reason}", None)
            return
        for raw in stream:
            lineno += 1
            line = _decode_line(raw, lineno, offset)
            offset += len(raw)
            if line is not None:
                yield lineno, line
    except READ_ERRORS as e:
        yield lineno + 1, truncated_input(lineno, e)


# What reading a (decompressing) stream raises when the data stops short.
READ_ERRORS = (EOFError, zlib.error, OSError)


def truncated_input(lineno: int, error: BaseException) -> Quarantined:
    """The item that ends a stream whose data stopped after line ``lineno``."""
    return Quarantined(
        f"line:{lineno + 1}",
        f"input ends unexpectedly after line {lineno} (truncated or corrupt compressed data: {error}); "
        "records after this point could not be read",
        None,
    )


def _decode_line(raw: bytes, lineno: int, start: int) -> str | Quarantined | None:
    """One raw line as ``iter_lines`` yields it: text without the newline, Quarantined, or None when blank."""
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
    """Whether ``iter_lines`` would skip this raw line (exactly, without decoding common lines)."""
    s = raw.lstrip(_ASCII_SPACE)
    if not s:
        return True
    c = s[0]
    if c < 0x80 and c not in _ASCII_SPACE_LIKE:
        return False
    return _decode_line(raw, lineno, 0) is None


def json_line(raw: bytes, lineno: int, start: int) -> tuple[str, Any] | None:
    """``(locator, value | Quarantined)`` of one raw JSONL line (``start``: its byte offset); None when blank.

    Exactly what ``iter_json_values`` yields for the line. Common lines are
    parsed straight from bytes (orjson validates UTF-8 itself); anything
    unusual (a failure, a BOM, leading non-ASCII) takes the decoding path so
    that messages and offsets stay identical.
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
    except ValueError as e:
        return f"line:{lineno}", Quarantined(f"line:{lineno}", f"malformed JSON on line {lineno}: {e}", line)


def is_json_document(head: bytes) -> bool:
    """True when ``iter_json_values`` reads the input as one document (an array or pretty-printed JSON), not JSONL."""
    stripped = head[3:] if head.startswith(codecs.BOM_UTF8) else head
    stripped = stripped.lstrip()
    return stripped.startswith(b"[") or (stripped.startswith(b"{") and _first_line_incomplete(stripped))


def iter_json_values(stream: io.BufferedIOBase, head: bytes, path: str) -> Iterator[tuple[str, Any]]:
    """Yield (locator, parsed JSON value or Quarantined) for JSONL, a JSON array or one JSON document.

    A document that starts with ``[`` or is a single pretty-printed object is
    parsed whole (exports of that shape are small); otherwise line by line.
    """
    if is_json_document(head):
        data = stream.read()
        try:
            text = data.decode(detect_text_encoding(data))
        except UnicodeDecodeError as e:
            yield "document", Quarantined("document", f"invalid text encoding at byte {e.start}", None)
            return
        try:
            doc = json.loads(text)
        except ValueError as e:
            # not a single document: maybe pretty-printed JSON objects one after another
            values = list(_raw_decode_all(text))
            if values and all(not isinstance(v, Quarantined) for _, v in values):
                yield from values
                return
            yield "document", Quarantined("document", f"invalid JSON: {e}", text)
            return
        if isinstance(doc, list):
            for i, v in enumerate(doc):
                yield f"index:{i}", v
        else:
            yield "document", doc
        return
    if detect_text_encoding(head) == "utf-16":
        for lineno, line in iter_lines(stream, head):
            if isinstance(line, Quarantined):
                yield line.locator, line
                continue
            try:
                yield f"line:{lineno}", loads(line)
            except ValueError as e:
                yield f"line:{lineno}", Quarantined(f"line:{lineno}", f"malformed JSON on line {lineno}: {e}", line)
        return
    lineno = 0
    offset = 0
    try:
        for raw in stream:
            lineno += 1
            item = json_line(raw, lineno, offset)
            offset += len(raw)
            if item is not None:
                yield item
    except READ_ERRORS as e:
        q = truncated_input(lineno, e)
        yield q.locator, q


def _first_line_incomplete(head: bytes) -> bool:
    """True when the first line of a '{' document is not a complete JSON value (pretty-printed JSON)."""
    first = head.split(b"\n", 1)[0].strip()
    if len(first) == len(head.strip()) and len(head) < HEAD_BYTES:
        return False  # single-line file: JSONL with one record
    try:
        json.loads(first)
        return False
    except ValueError:
        return len(first) < len(head)


def _raw_decode_all(text: str) -> Iterator[tuple[str, Any]]:
    dec = json.JSONDecoder()
    i = 0
    n = 0
    while True:
        while i < len(text) and text[i].isspace():
            i += 1
        if i >= len(text):
            return
        try:
            v, j = dec.raw_decode(text, i)
        except ValueError as e:
            yield f"index:{n}", Quarantined(f"index:{n}", f"invalid JSON: {e}", text[i : i + 10000])
            return
        yield f"index:{n}", v
        n += 1
        i = j


_DOC_SUFFIXES = (".md", ".rst", ".txt", ".html", ".pdf", ".png", ".svg")


def _is_documentation(f: Path) -> bool:
    """Files found while walking a directory that are documentation, not logs (named files are always read)."""
    return f.suffix.lower() in _DOC_SUFFIXES or f.name.upper().startswith(("README", "LICENSE"))


def expand_paths(paths: list[str], walked: set[str] | None = None) -> list[str]:
    """Files from files, directories (recursive) and globs; '-' kept. In directories, hidden files and documentation are skipped."""
    out: list[str] = []
    for p in paths:
        if p == "-":
            out.append(p)
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
