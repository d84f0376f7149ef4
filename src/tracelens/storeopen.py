"""Opening a store, whatever its layout: the one place that decides which class serves a path or URL.

Contract: ``open_store(path_or_url, create=False, write=False, note=None)`` returns

- a ``tracelens.deltastore.DeltaStore`` for a URL (``s3://``, ``gs://``, ``az://``, ``file://``);
- for a local directory, by its ``STORE.json`` marker: a ``DeltaStore`` when the marker says
  ``"format": "delta"`` (every store tracelens creates), the older file-layout ``tracelens.store.Store``
  when the marker has no format (stores made before Delta Lake became the layout). The older layout is still
  read and written; ``note`` (e.g. a function printing to stderr) receives one line saying how to move it,
  each time such a store is opened;
- for a directory without a marker: a new Delta Lake store when ``create``, else ``StoreError``.

``store_format(root)`` tells the layout of a local directory without opening it ("delta", "files", or None
when it holds no store). Errors are ``StoreError`` with one line.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from pathlib import Path

from tracelens import objstore
from tracelens.storefiles import MARKER, StoreError
from tracelens.storenames import STORE_ENV

DELTA = "delta"
FILES = "files"


def store_format(root: str | os.PathLike) -> str | None:
    """The layout of the local store at ``root``: ``"delta"``, ``"files"`` (the older layout), None for none."""
    marker = Path(root) / MARKER
    try:
        info = json.loads(marker.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return None
    except (OSError, ValueError):
        return FILES  # a damaged marker: the file-layout store reports it in its own words (doctor can repair it)
    return DELTA if isinstance(info, dict) and info.get("format") == DELTA else FILES


def old_layout_hint(root: str | os.PathLike) -> str:
    """The one line shown when a store in the older file layout is opened."""
    return (f"note: {root} is a store in the older file layout, still read and written; "
            f"`tracelens store migrate {root} NEW_DIR` copies it into the Delta Lake layout")


def open_store(path_or_url: str | os.PathLike, create: bool = False, write: bool = False,
               note: Callable[[str], None] | None = None):
    """The store at ``path_or_url`` (see the module docstring); ``write``: the caller will commit."""
    from tracelens.deltastore import DeltaStore

    if objstore.is_url(path_or_url):
        return DeltaStore(str(path_or_url), create=create, write=write or create)
    fmt = store_format(path_or_url)
    if fmt == DELTA:
        return DeltaStore(path_or_url, write=write or create)
    if fmt == FILES:
        from tracelens.store import Store

        store = Store(path_or_url)
        if note is not None:
            note(old_layout_hint(path_or_url))
        return store
    if not create:
        raise StoreError(f"no tracelens store at {path_or_url} (run `tracelens ingest` first, or pass --store / "
                         f"set {STORE_ENV})")
    return DeltaStore(path_or_url, create=True, write=True)
