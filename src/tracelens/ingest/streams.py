"""Opening an input file as a stream of UTF-8 bytes: decompression and text encodings, with bounded memory.

``open_input(path)`` returns ``(stream, head)``. ``.gz`` and ``.zst`` are
decompressed by magic bytes, incrementally: everything that decodes before
corrupt or truncated compressed data is delivered, then reading raises
``InputError`` naming the byte offset in the file where the data went bad.
Text in UTF-16 or UTF-32 (by BOM, or by the zero-byte pattern of RFC 4627
when there is none) is transcoded to UTF-8 and a UTF-8 BOM is removed, so
sniffers and importers only ever see BOM-free UTF-8. ``head`` is the first
``HEAD_BYTES`` of that stream.

``path`` may also be an object-storage URL (``s3://``, ``gs://``, ``az://``,
``file://``; ``tracelens.objstore.is_url``): the object is then read as a
stream in bounded range requests (``tracelens.ingest.remote``) and goes
through the same decompression and decoding; nothing after ``open_input``
knows where the bytes came from. The stream's ``origin`` is that object
reader (None for a local file), whose ``error`` says whether a request failed
part way. ``local_copy(path)`` gives a local file for the readers that need
random access (SQLite), downloading an object to a temporary file.

Splitting the stream into records is ``tracelens.ingest.readers``.
"""

from __future__ import annotations

import codecs
import contextlib
import io
import os
import sys
import zlib
from collections import deque
from collections.abc import Callable, Iterator

from tracelens.ingest.base import FormatError
from tracelens.objstore import is_url

HEAD_BYTES = 256 * 1024
GZIP_MAGIC = b"\x1f\x8b"
ZSTD_MAGIC = b"\x28\xb5\x2f\xfd"
# orjson's nesting limit: a JSON value nested deeper than this is quarantined with this reason.
MAX_DEPTH = 1024
# Compressed bytes fed to a decompressor at a time (bounds what one call can produce, with the ratio).
_FEED = 64 * 1024
# Decoded bytes read at a time when splitting lines.
READ_BYTES = 1 << 20

class InputError(OSError):
    """The input stops short of its end: corrupt or truncated compressed data, or a read error.

    Raised by the stream of ``open_input`` after every byte that could be
    decoded before the fault has been delivered. ``offset`` is the byte
    offset in the file (compressed bytes for compressed input) where it lies.
    """

    def __init__(self, reason: str, offset: int):
        super().__init__(f"{reason} (at byte {offset:,} of the file)")
        self.reason = reason
        self.offset = offset



# ---------------------------------------------------------------- decompression


def _gunzip(f: io.BufferedIOBase) -> Iterator[bytes]:
    """Decompressed pieces of gzip members one after another (as ``gzip -d``); raises InputError where they stop.

    Everything that decodes before a fault is yielded first: a piece that
    fails is fed again byte by byte from a copy of the state before it.
    Zero bytes after the last member (padding) are ignored, as gzip does.
    """
    offset = 0  # file offset of ``data``
    data = b""
    d = None
    while True:
        if not data:
            data = _read(f, _FEED, offset)
            if not data:
                if d is not None:
                    raise InputError("the gzip data is cut short (truncated file)", offset)
                return
        if d is None:  # a member starts here
            while len(data) < 2:
                more = _read(f, _FEED, offset + len(data))
                if not more:
                    break
                data += more
            if data[:2] != GZIP_MAGIC:
                rest = data.lstrip(b"\0")
                if not rest and _rest_is_zero(f, offset + len(data)):
                    return  # zero padding after the last member, as gzip allows
                raise InputError("data after the gzip stream is not gzip data", offset + len(data) - len(rest))
            d = zlib.decompressobj(31)
        before = d.copy()
        try:
            out = d.decompress(data)
        except zlib.error as e:
            d = before
            for i in range(len(data)):  # keep every byte that decodes before the fault
                try:
                    out = d.decompress(data[i : i + 1])
                except zlib.error:
                    raise InputError(f"corrupt gzip data ({e})", offset + i) from None
                if out:
                    yield out
            raise InputError(f"corrupt gzip data ({e})", offset + len(data)) from None
        if out:
            yield out
        if d.eof:
            rest = d.unused_data
            offset += len(data) - len(rest)
            data = rest
            d = None
        else:
            offset += len(data)
            data = b""


def _rest_is_zero(f: io.BufferedIOBase, offset: int) -> bool:
    while True:
        data = _read(f, _FEED, offset)
        if not data:
            return True
        if data.strip(b"\0"):
            return False
        offset += len(data)


_ZSTD_SKIPPABLE = range(0x184D2A50, 0x184D2A60)
_ZSTD_MAX_BLOCK = 128 * 1024


def _unzstd(f: io.BufferedIOBase) -> Iterator[bytes]:
    """Decompressed pieces of zstd frames one after another; raises InputError where they stop.

    The frame and block headers are walked here and the decompressor is fed
    one block at a time, so everything before a corrupt block is kept.
    """
    import zstandard

    offset = 0

    def take(n: int, what: str) -> bytes:
        nonlocal offset
        b = _read_exact(f, n, offset)
        if len(b) < n:
            raise _Short(f"the zstd data is cut short inside {what} (truncated file)", offset + len(b), b)
        offset += n
        return b

    while True:
        magic = _read_exact(f, 4, offset)
        if not magic:
            return
        start = offset
        offset += len(magic)
        if len(magic) < 4 or int.from_bytes(magic, "little") not in (*_ZSTD_SKIPPABLE, 0xFD2FB528):
            if not magic.strip(b"\0") and _rest_is_zero(f, offset):
                return
            raise InputError("data is not zstd data (garbage, or garbage after the compressed stream)", start)
        if int.from_bytes(magic, "little") in _ZSTD_SKIPPABLE:
            size = int.from_bytes(take(4, "a skippable frame"), "little")
            take(size, "a skippable frame")
            continue
        d = zstandard.ZstdDecompressor().decompressobj()
        fhd = take(1, "a frame header")
        desc = fhd[0]
        if desc & 0x08:
            raise InputError("corrupt zstd frame header (reserved bit set)", start + 4)
        single = bool(desc & 0x20)
        fcs = (1 if single else 0, 2, 4, 8)[desc >> 6]
        header = magic + fhd + take((0 if single else 1) + (0, 1, 2, 4)[desc & 3] + fcs, "a frame header")
        try:
            d.decompress(header)
        except zstandard.ZstdError as e:
            raise InputError(f"corrupt zstd frame header ({e})", start) from None
        while True:
            at = offset
            bh = take(3, "a block header")
            h = int.from_bytes(bh, "little")
            last, btype, size = h & 1, (h >> 1) & 3, h >> 3
            if btype == 3 or size > _ZSTD_MAX_BLOCK:
                raise InputError("corrupt zstd block header", at)
            try:
                body = take(1 if btype == 1 else size, "a block")
            except _Short as short:  # a raw block cut short still decodes as far as it goes
                out = b""
                if btype == 0:
                    with contextlib.suppress(zstandard.ZstdError):
                        out = d.decompress(bh + short.data)
                if out:
                    yield out
                raise InputError(short.reason, short.offset) from None
            try:
                out = d.decompress(bh + body)
            except zstandard.ZstdError as e:
                raise InputError(f"corrupt zstd block ({e})", at) from None
            if out:
                yield out
            if last:
                break
        if desc & 0x04:
            at = offset
            try:
                out = d.decompress(take(4, "the frame checksum"))
            except zstandard.ZstdError as e:
                raise InputError(f"zstd frame checksum does not match ({e})", at) from None
            if out:
                yield out


class _Short(InputError):
    """The data ends inside a zstd structure; ``data`` is what there was of it."""

    def __init__(self, reason: str, offset: int, data: bytes):
        super().__init__(reason, offset)
        self.data = data


def _read(f: io.BufferedIOBase, n: int, offset: int) -> bytes:
    try:
        return f.read(n)
    except OSError as e:
        raise InputError(f"read error ({e})", offset) from None


def _read_exact(f: io.BufferedIOBase, n: int, offset: int) -> bytes:
    parts = []
    got = 0
    while got < n:
        b = _read(f, n - got, offset + got)
        if not b:
            break
        parts.append(b)
        got += len(b)
    return b"".join(parts)


def _plain(f: io.BufferedIOBase) -> Iterator[bytes]:
    offset = 0
    while True:
        data = _read(f, READ_BYTES, offset)
        if not data:
            return
        offset += len(data)
        yield data


# ---------------------------------------------------------------- text encodings

_BOMS = (
    (codecs.BOM_UTF32_LE, "utf-32-le"), (codecs.BOM_UTF32_BE, "utf-32-be"), (codecs.BOM_UTF8, "utf-8"),
    (codecs.BOM_UTF16_LE, "utf-16-le"), (codecs.BOM_UTF16_BE, "utf-16-be"),
)


def detect_encoding(first: bytes) -> tuple[str, int]:
    """(codec, BOM length) of text starting with ``first`` (5 bytes suffice): by BOM, else by the NUL pattern.

    Without a BOM, JSON and CSV start with an ASCII character, so UTF-16 and
    UTF-32 show as zero bytes around it (RFC 4627, section 3). Anything else
    is taken as UTF-8.
    """
    for bom, codec in _BOMS:
        if first.startswith(bom):
            return codec, len(bom)
    if len(first) >= 5 and first[0] == 0 and first[4] == 0x0A:
        # a 4-byte big-endian length and a protobuf message's first field (OTLP protobuf, binary: no text
        # codec); UTF-32-BE has 0 there, UTF-16-BE only for a third character in U+0A00..U+0AFF
        return "utf-8", 0
    if len(first) >= 4:
        a, b, c, d = first[:4]
        if a == b == c == 0 and d:
            return "utf-32-be", 0
        if a and b == c == d == 0:
            return "utf-32-le", 0
        if a == 0 and b and c == 0 and d and b < 0x80 and d < 0x80:
            return "utf-16-be", 0
        if a and b == 0 and c and d == 0 and a < 0x80 and c < 0x80:
            return "utf-16-le", 0
    return "utf-8", 0


def _escape_bytes(e: UnicodeError) -> tuple[str, int]:
    """Decode error handler: each undecodable byte becomes a lone surrogate U+DC00+byte.

    Encoded back to UTF-8 with ``surrogatepass`` these are never valid UTF-8,
    so the line holding them is quarantined (as invalid text) with its text.
    """
    if not isinstance(e, UnicodeDecodeError):
        raise e
    return "".join(chr(0xDC00 + b) for b in e.object[e.start : e.end]), e.end


codecs.register_error("tracelens-escape", _escape_bytes)


def _transcode(pieces: Iterator[bytes], codec: str, skip: int) -> Iterator[bytes]:
    """UTF-16/32 pieces as UTF-8 (BOM dropped); raises InputError if the text ends inside a character."""
    dec = codecs.getincrementaldecoder(codec)("tracelens-escape")
    offset = 0
    for p in pieces:
        if skip:
            p, skip = p[skip:], max(0, skip - len(p))
        offset += len(p)
        out = dec.decode(p)
        if out:
            yield out.encode("utf-8", "surrogatepass")
    try:
        out = dec.decode(b"", final=True)
    except UnicodeDecodeError:
        raise InputError(f"the {codec.upper()} text ends inside a character (truncated file)", offset) from None
    if out:
        yield out.encode("utf-8", "surrogatepass")


def _skip(pieces: Iterator[bytes], n: int) -> Iterator[bytes]:
    for p in pieces:
        if n:
            p, n = p[n:], max(0, n - len(p))
        if p:
            yield p


class InputStream(io.RawIOBase):
    """A binary stream over decoded pieces; raises the InputError that ended them once they are consumed.

    ``read(n)`` returns what is available (at most ``n`` bytes) without
    waiting to fill ``n``, so no decoded byte is held back when the data
    behind it turns out to be corrupt.
    """

    def __init__(self, pieces: Iterator[bytes], closer: Callable[[], None] | None = None):
        self._pieces = pieces
        self._queue: deque[bytes] = deque()
        self._queued = 0
        self._error: InputError | None = None
        self._closer = closer
        self.origin = None  # the object reader of a URL input (see open_input)

    def readable(self) -> bool:
        """Always True: the stream is read-only."""
        return True

    def _pull(self) -> bool:
        """Queue one more piece; False at the end (raising the pending error first, once)."""
        if self._pieces is None:
            if self._error is not None:
                err, self._error = self._error, None
                raise err
            return False
        try:
            piece = next(self._pieces)
        except StopIteration:
            self._pieces = None
            return self._pull()
        except InputError as e:
            self._pieces, self._error = None, e
            return self._pull()
        self._queue.append(piece)
        self._queued += len(piece)
        return True

    def peek_head(self, n: int) -> bytes:
        """Up to ``n`` bytes from the start, left to be read (an error behind them stays pending)."""
        try:
            while self._queued < n and self._pull():
                pass
        except InputError as e:
            self._error = e
        return b"".join(self._queue)[:n]

    @property
    def failed(self) -> InputError | None:
        """The error waiting behind the queued bytes, if any."""
        return self._error

    def read(self, n: int = -1) -> bytes:
        """Up to ``n`` bytes, whatever is decoded next (fewer than ``n`` without waiting); b"" at the end; ``n`` < 0 or
        None reads to the end. Raises the ``InputError`` that ended the data once the bytes before it are consumed.
        """
        if n is None or n < 0:
            return self.readall()
        while not self._queue:
            if not self._pull():
                return b""
        piece = self._queue.popleft()
        if len(piece) > n:
            self._queue.appendleft(piece[n:])
            piece = piece[:n]
        self._queued -= len(piece)
        return piece

    def readinto(self, b) -> int:
        """Fill ``b`` as ``read(len(b))`` would; returns the number of bytes written."""
        data = self.read(len(b))
        b[: len(data)] = data
        return len(data)

    def readall(self) -> bytes:
        """All remaining bytes (raises the pending ``InputError`` instead when the data behind them is corrupt)."""
        parts = []
        while True:
            p = self.read(READ_BYTES)
            if not p:
                return b"".join(parts)
            parts.append(p)

    def close(self) -> None:
        """Close the underlying file (its errors ignored; once only) and the stream."""
        if self._closer is not None:
            closer, self._closer = self._closer, None
            with contextlib.suppress(OSError):
                closer()
        super().close()


def open_input(path: str) -> tuple[InputStream, bytes]:
    """Open ``path`` ('-' = stdin): decompressed, transcoded to UTF-8, BOM-free. Returns (stream, head).

    Raises FormatError when nothing at all can be decoded (e.g. a ``.zst``
    that is garbage from its first bytes).
    """
    origin = None
    if path == "-":
        raw = sys.stdin.buffer
    elif is_url(path):
        from tracelens.ingest.remote import open_object

        raw = origin = open_object(path)
    else:
        raw = open(path, "rb")  # noqa: SIM115 - closed by the stream
    closer = None if path == "-" else raw.close
    try:
        magic = raw.read(4)
    except OSError:
        if closer:
            closer()
        raise
    base = io.BufferedReader(_Prefixed(magic, raw), buffer_size=_FEED)
    if magic[:2] == GZIP_MAGIC:
        pieces = _gunzip(base)
    elif magic == ZSTD_MAGIC:
        pieces = _unzstd(base)
    else:
        pieces = _plain(base)
    probe = InputStream(pieces)
    first = probe.peek_head(5)
    codec, bom = detect_encoding(first)
    if codec == "utf-8":
        decoded: Iterator[bytes] = _skip(_drain(probe), bom)
    else:
        decoded = _transcode(_drain(probe), codec, bom)
    stream = InputStream(decoded, closer)
    stream.origin = origin
    head = stream.peek_head(HEAD_BYTES)
    if not head and stream.failed is not None:
        err = stream.failed
        stream.close()
        raise FormatError(f"cannot decompress: {err}")
    return stream, head


@contextlib.contextmanager
def local_copy(path: str) -> Iterator[str]:
    """A local file with the bytes at ``path``: the path itself, or for a URL a temporary copy (removed after)."""
    if not is_url(path):
        yield path
        return
    import tempfile

    from tracelens.ingest.remote import download

    with tempfile.TemporaryDirectory(prefix="tracelens-") as tmp:
        local = os.path.join(tmp, os.path.basename(path.rstrip("/")) or "object")
        with open(local, "wb") as f:
            download(path, f)
        yield local


def _drain(stream: InputStream) -> Iterator[bytes]:
    """The pieces of ``stream`` (an InputError ends them, raised to the consumer)."""
    while True:
        p = stream.read(READ_BYTES)
        if not p:
            return
        yield p


class _Prefixed(io.RawIOBase):
    """``raw`` with ``prefix`` (bytes already read from it) put back in front."""

    def __init__(self, prefix: bytes, raw):
        self._prefix = prefix
        self._raw = raw

    def readable(self) -> bool:
        """Always True: the stream is read-only."""
        return True

    def readinto(self, b) -> int:
        """Fill ``b`` from the put-back prefix first, then from ``raw``; returns the number of bytes written (0 at the
        end).
        """
        if self._prefix:
            n = min(len(b), len(self._prefix))
            b[:n] = self._prefix[:n]
            self._prefix = self._prefix[n:]
            return n
        data = self._raw.read(len(b))
        b[: len(data)] = data
        return len(data)


# ---------------------------------------------------------------- lines
