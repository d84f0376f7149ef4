"""Atomic file writes: the one helper every writer of a store file uses.

Contract: after ``write_bytes``/``write_text``/``write_json`` returns, ``path``
holds the new content durably (file fsynced, renamed over the old one, the
directory fsynced); if the process dies at any point before, ``path`` holds
the old content (or does not exist) and at most a hidden temp file beside it
is left behind, which readers never look at (names start with ``.`` and end
with ``.tmp``). ``atomic_path`` is the same guarantee for writers that produce
the file themselves (Parquet, NumPy): they write to the yielded temp path.

Callers that write into a store take the store's writer lock around the
write (``store.lock_root``) so two writers never interleave their
read-modify-write of the same file; this module knows nothing of stores.
"""

from __future__ import annotations

import contextlib
import json
import os
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

__all__ = ["atomic_path", "fsync_dir", "is_temp", "write_bytes", "write_json", "write_text"]

TEMP_SUFFIX = ".tmp"


def fsync_dir(path: str | os.PathLike) -> None:
    """Make a rename or create inside ``path`` durable (best effort: some filesystems refuse a directory fsync)."""
    with contextlib.suppress(OSError):
        fd = os.open(path, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def is_temp(path: str | os.PathLike) -> bool:
    """True for a temp file this module leaves behind when a writer dies mid-write."""
    name = Path(path).name
    return name.startswith(".") and name.endswith(TEMP_SUFFIX)


def _fsync_file(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike, mode: int | None = None) -> Iterator[Path]:
    """Yield a temp path beside ``path``; on a clean exit fsync it, rename it over ``path``, fsync the directory.

    On an exception the temp file is removed and ``path`` is untouched.
    ``mode`` sets the permission bits of the new file (e.g. 0o600 for secrets).
    """
    path = Path(path)
    tmp = path.with_name(f".{path.name}.{uuid.uuid4().hex[:12]}{TEMP_SUFFIX}")
    try:
        yield tmp
        if mode is not None:
            os.chmod(tmp, mode)
        _fsync_file(tmp)
        os.replace(tmp, path)
        fsync_dir(path.parent)
    finally:
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()


def write_bytes(path: str | os.PathLike, data: bytes, mode: int | None = None) -> Path:
    """Replace ``path``'s content with ``data`` atomically and durably; returns ``path``."""
    path = Path(path)
    with atomic_path(path, mode) as tmp:
        # O_EXCL: the temp name is ours alone; never follow a link planted at it
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o644 if mode is None else mode)
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
    return path


def write_text(path: str | os.PathLike, text: str, encoding: str = "utf-8") -> Path:
    """Replace ``path``'s content with ``text`` atomically and durably; returns ``path``."""
    return write_bytes(path, text.encode(encoding))


def write_json(path: str | os.PathLike, obj: Any, indent: int | None = 2) -> Path:
    """Write ``obj`` as JSON (UTF-8, trailing newline) atomically and durably; returns ``path``."""
    return write_text(path, json.dumps(obj, indent=indent, ensure_ascii=False) + "\n")
