"""Ingest inputs on object storage (``s3://``, ``gs://``, ``az://``, ``file://``): listing, preflight, streamed reads.

Contract:

- ``expand(url, walked, checked, skip)`` turns one input URL into object URLs, as ``expand_paths`` does
  for a local path: a URL with glob characters in its key (``*``, ``?``, ``[...]``, ``**``) lists the
  longest literal directory prefix and keeps the keys that match, with the semantics of
  ``pathlib.Path.glob`` (``glob_match``); a URL ending in ``/``, naming a bucket, or naming a prefix that
  has objects below it is a directory, walked recursively with the same skips as a local one (hidden
  names, and documentation through ``skip``, which ``expand_paths`` passes); any other URL names one
  object and is kept as given (a missing one is reported when it is opened).
- The first time a run meets a bucket (``checked``), it is preflighted: credentials, endpoint, bucket and
  listing (``objstore.preflight``), then one HEAD of the first object found, since a listing may be allowed
  where reading is not. Any failure, and a listing that fails, raise ``ObjectStoreError`` (one line) before
  anything is ingested.
- ``open_object(url)`` is a read-only raw stream over the object: ``obstore.open_reader`` fetches it in
  range requests of ``OBJECT_BUFFER`` bytes, and a background thread keeps at most ``PREFETCH`` such
  pieces ready, so about ``(PREFETCH + 3) * OBJECT_BUFFER`` bytes at most of an object are held at once,
  whatever its size, and network waits overlap parsing. A request that fails (the object deleted or
  replaced, the connection lost) raises ``OSError`` naming the URL; the reader remembers it in ``error``
  so the pipeline reports the file, and the stream code turns it into the usual "input ends unexpectedly"
  item for the records it could not read.
- ``modified(url)`` and ``download(url, dest)`` serve the few readers that need a file's time or random
  access (SQLite).

Clients are made once per bucket and credential environment in a process (the preflight's own client
fails fast; the reading one keeps the library's retries for transient errors). obstore is imported only
here and only for URLs: reading local files never loads it.
"""

from __future__ import annotations

import contextlib
import fnmatch
import functools
import os
import queue
import re
import threading
from collections.abc import Callable
from pathlib import PurePosixPath
from typing import Any

from tracelens.objstore import Location, ObjectStoreError, connect, explain, parse, preflight, storage_options

# Bytes per range request. Large enough that first-byte latency (tens of milliseconds on S3) is a small
# part of each request, small enough that a few of them are nothing next to a batch of records.
OBJECT_BUFFER = 4 * 1024 * 1024
# Pieces fetched ahead of the reader by the background thread.
PREFETCH = 2
_GLOB = re.compile(r"[*?\[]")


def has_glob(text: str) -> bool:
    """Whether ``text`` holds glob characters (``*``, ``?``, ``[``), as local paths are told apart."""
    return bool(_GLOB.search(text))


def literal_prefix(pattern: str) -> str:
    """The directories of ``pattern`` (a key, no leading slash) before its first segment with a glob character."""
    parts = pattern.split("/")
    out = []
    for p in parts[:-1]:
        if has_glob(p):
            break
        out.append(p)
    return "/".join(out)


@functools.lru_cache(maxsize=256)
def _segment(pattern: str) -> re.Pattern:
    return re.compile(fnmatch.translate(pattern))


def glob_match(pattern: str, key: str) -> bool:
    """Whether ``key`` matches ``pattern`` as ``pathlib.Path.glob`` matches a file path (case-sensitive).

    Matching is by ``/``-separated segment: ``*`` is any run of characters and ``?`` one character within
    a segment, ``[...]`` a character class (``[!...]`` its complement), and a segment ``**`` is zero or
    more whole directories. Names starting with a dot are matched like any other, as ``Path.glob`` does.
    """
    return _match(tuple(pattern.split("/")), tuple(key.split("/")))


def _match(pat: tuple[str, ...], parts: tuple[str, ...]) -> bool:
    if not pat:
        return not parts
    head = pat[0]
    if head == "**":
        # zero directories, or one more directory (never the file name itself: ** matches directories)
        return _match(pat[1:], parts) or (len(parts) > 1 and _match(pat, parts[1:]))
    if not parts:
        return False
    if has_glob(head):
        if not _segment(head).match(parts[0]):
            return False
    elif head != parts[0]:
        return False
    return _match(pat[1:], parts[1:])


# ---------------------------------------------------------------- clients


def _root(loc: Location) -> tuple[Location, str]:
    """The bucket (or file system root) of ``loc`` as a Location, and ``loc``'s key in it."""
    if loc.family == "file":
        return parse("file:///"), loc.prefix
    scheme = loc.url.split("://", 1)[0]
    return parse(f"{scheme}://{loc.bucket}"), loc.prefix


def _env_key() -> tuple:
    return tuple(sorted((k, v) for k, v in os.environ.items() if k.startswith(("AWS_", "GOOGLE_", "AZURE_"))))


_clients: dict[tuple, Any] = {}
_lock = threading.Lock()


def _client(root: Location, fast: bool = False) -> Any:
    """The obstore client of a bucket; ``fast``: the preflight's (short timeouts, no retries)."""
    key = (root.url, fast, _env_key())
    with _lock:
        client = _clients.get(key)
        if client is None:
            client = _clients[key] = connect(root, storage_options(root), preflight_limits=fast)
        return client


# ---------------------------------------------------------------- listing


def _bucket_id(loc: Location) -> tuple[str, str]:
    return (loc.family, loc.bucket)


def _list(root: Location, prefix: str, where: Location) -> list[dict]:
    import obstore

    try:
        out = []
        for page in obstore.list(_client(root), prefix or None, chunk_size=1000):
            out.extend(page)
        return out
    except Exception as e:
        raise ObjectStoreError(explain(where, e)) from None


def _url(root: Location, key: str) -> str:
    if root.family == "file":
        return "file:///" + key
    return f"{root.url}/{key}"


def expand(url: str, walked: set[str] | None = None, checked: set | None = None,
           skip: Callable[[PurePosixPath], bool] | None = None) -> list[str]:
    """The object URLs ``url`` stands for (see the module docstring); ``walked`` gets those found in a
    directory, ``checked`` the buckets preflighted so far; ``skip(key)`` (the local walk's rule) leaves an
    object found in a directory out. Raises ``ObjectStoreError`` (one line)."""
    loc = parse(url)
    root, key = _root(loc)
    checked = set() if checked is None else checked
    first = _bucket_id(loc) not in checked
    if first:
        lit = literal_prefix(key) if has_glob(key) else key
        preflight(parse(_url(root, lit)) if lit else root, write=False)
    if has_glob(key):
        metas = _list(root, literal_prefix(key), loc)
        found = sorted((m["path"] for m in metas if glob_match(key, m["path"]) and not m["path"].endswith("/")),
                       key=_path_order)
        walk = False
    else:
        found, walk = [], False
        if not url.endswith("/") and key:
            found = [key]  # one object, unless it turns out to be a prefix
            if _missing(root, key):
                walk = True
        else:
            walk = True
        if walk:
            metas = _list(root, key, loc)
            found = sorted(
                (m["path"] for m in metas
                 if not m["path"].endswith("/")  # "folder" markers some consoles create
                 and not any(part.startswith(".") for part in _below(key, m["path"]).split("/"))
                 and not (skip and skip(PurePosixPath(m["path"])))),
                key=_path_order,
            )
            if not found and not url.endswith("/") and key:
                found, walk = [key], False  # neither an object nor a prefix: reported as missing when opened
    if first:
        if found:
            _check_read(root, found[0], loc)
        checked.add(_bucket_id(loc))
    urls = [_url(root, k) for k in found]
    if walk and walked is not None:
        walked.update(urls)
    return urls


def _path_order(key: str) -> list[str]:
    """Sort key giving the order of ``sorted()`` over local ``Path``s (by segment: ``a/b`` before ``a-b``)."""
    return key.split("/")


def _below(prefix: str, key: str) -> str:
    return key[len(prefix):].lstrip("/") if prefix else key


def _missing(root: Location, key: str) -> bool:
    """Whether there is no object at ``key`` (other failures are left to opening it)."""
    import obstore

    try:
        obstore.head(_client(root), key)
    except FileNotFoundError:
        return True
    except Exception:  # noqa: BLE001 - denied, unreachable: reported where the object is opened, in one line
        return False
    return False


def _check_read(root: Location, key: str, where: Location) -> None:
    """The preflight's read check: one HEAD (which needs read permission) of the first object found."""
    import obstore

    try:
        obstore.head(_client(root, fast=True), key)
    except FileNotFoundError:
        return  # gone since the listing: that object is reported when opened
    except Exception as e:
        raise ObjectStoreError(explain(where, e)) from None


# ---------------------------------------------------------------- reading


def _os_error(url: str, e: BaseException) -> OSError:
    """One-line OSError for a failed request on the object at ``url``."""
    if isinstance(e, FileNotFoundError):
        return FileNotFoundError(f"{url}: no such object")
    msg = explain(parse(url), e)
    return PermissionError(msg) if "access denied" in msg else OSError(msg)


class ObjectReader:
    """A read-only raw stream over one object, fetched ahead in ``OBJECT_BUFFER`` pieces (see the module docstring)."""

    def __init__(self, url: str):
        import obstore

        self.url = url
        self.error: OSError | None = None
        self.fetched = 0  # bytes received so far
        loc = parse(url)
        root, key = _root(loc)
        try:
            self._file = obstore.open_reader(_client(root), key, buffer_size=OBJECT_BUFFER)
        except Exception as e:
            raise _os_error(url, e) from None
        self.size = self._file.size
        self._pieces: queue.Queue = queue.Queue(maxsize=PREFETCH)
        self._stop = threading.Event()
        self._piece = memoryview(b"")
        self._done = False
        self._first = True
        # started once the first piece is used up: a reader that only looks at the head (format sniffing)
        # costs one request, not a prefetch of pieces it never reads
        self._thread: threading.Thread | None = None

    def _fetch(self) -> None:
        """Background thread: read the object piece by piece into the queue; an exception goes in last."""
        try:
            while not self._stop.is_set():
                data = self._file.read(OBJECT_BUFFER)
                if not len(data):
                    break
                self.fetched += len(data)
                self._put(memoryview(data))
        except Exception as e:  # noqa: BLE001 - handed to the reader, which raises it in its thread
            self._put(e)
            return
        self._put(None)

    def _put(self, item) -> None:
        while not self._stop.is_set():
            with contextlib.suppress(queue.Full):
                self._pieces.put(item, timeout=0.1)
                return

    def read(self, n: int = -1) -> bytes:
        """Up to ``n`` bytes (all the rest for ``n`` < 0); b"" at the end. Raises OSError when a request failed."""
        if n is None or n < 0:
            parts = []
            while True:
                p = self.read(OBJECT_BUFFER)
                if not p:
                    return b"".join(parts)
                parts.append(p)
        if self.error is not None:
            raise self.error
        if not len(self._piece):
            if self._done:
                return b""
            item = self._next()
            if item is None:
                self._done = True
                return b""
            if isinstance(item, BaseException):
                self._done = True
                self.error = _os_error(self.url, item)
                raise self.error
            self._piece = item
        out, self._piece = self._piece[:n], self._piece[n:]
        return bytes(out)

    def _next(self) -> memoryview | BaseException | None:
        """The next piece (None at the end, or the exception of the request that failed)."""
        if self._first:
            self._first = False
            try:
                data = self._file.read(OBJECT_BUFFER)
            except Exception as e:  # noqa: BLE001 - raised by read() as an OSError naming the URL
                return e
            self.fetched += len(data)
            return memoryview(data) if len(data) else None
        if self._thread is None:
            self._thread = threading.Thread(target=self._fetch, name="tracelens-object-reader", daemon=True)
            self._thread.start()
        return self._pieces.get()

    def close(self) -> None:
        """Stop the fetching thread (it ends after its current request)."""
        self._stop.set()
        self._done = True
        with contextlib.suppress(queue.Empty):
            while True:
                self._pieces.get_nowait()


def open_object(url: str) -> ObjectReader:
    """The object at ``url`` as a raw stream; OSError (FileNotFoundError, PermissionError) naming the URL."""
    return ObjectReader(url)


def modified(url: str) -> str | None:
    """ISO 8601 last-modified time of the object at ``url`` (None when it cannot be had)."""
    import obstore

    loc = parse(url)
    root, key = _root(loc)
    try:
        return obstore.head(_client(root), key)["last_modified"].isoformat()
    except Exception:  # noqa: BLE001 - as for a local file whose time cannot be read
        return None


def download(url: str, dest) -> None:
    """Copy the object at ``url`` into the open binary file ``dest``, piece by piece."""
    reader = open_object(url)
    try:
        while True:
            data = reader.read(OBJECT_BUFFER)
            if not data:
                return
            dest.write(data)
    finally:
        reader.close()
