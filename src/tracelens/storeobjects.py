"""Small objects beside a Delta Lake store's tables: the marker, secrets, cluster models, caches.

Contract: ``objects_for(loc, opts)`` gives an ``Objects`` for a store location with four operations, each
whole-object and safe against concurrent writers:

- ``get(key)``: the bytes, or None when absent;
- ``put(key, data)``: create or replace; a reader sees the old bytes or the new ones, never a mix;
- ``put_if_absent(key, data)``: create unless it exists; True when this call created it (first writer wins);
- ``list_dirs(prefix)``: the names of the "directories" directly below ``prefix``, sorted;
- ``move(key, dest)``: rename (``tracelens doctor --repair`` sets damaged files aside, never deleting one).

Keys are ``/``-separated and relative to the store. A local directory (``file://`` or a plain path) is served
with the standard library: a temporary file renamed into place for ``put`` and hard-linked into place for
``put_if_absent`` (``link`` fails when the name exists, on every local file system), so a local store needs
neither obstore nor the ``cloud`` extra. Object storage goes through obstore (``tracelens.objstore``), whose
``mode="create"`` is the service's own precondition (S3 ``If-None-Match``, GCS generation 0, Azure
``If-None-Match: *``). Failures are ``StoreError`` with one line.
"""

from __future__ import annotations

import contextlib
import os
import uuid
from pathlib import Path

from tracelens import objstore
from tracelens.storefiles import StoreError


class Objects:
    """Whole-object access below a store location (see the module docstring)."""

    def get(self, key: str) -> bytes | None:  # pragma: no cover - interface
        """The bytes of ``key``, None when absent."""
        raise NotImplementedError

    def put(self, key: str, data: bytes) -> None:  # pragma: no cover - interface
        """Create or replace ``key`` (a reader sees the old bytes or the new ones)."""
        raise NotImplementedError

    def put_if_absent(self, key: str, data: bytes) -> bool:  # pragma: no cover - interface
        """Create ``key`` unless it exists; True when this call created it."""
        raise NotImplementedError

    def list_dirs(self, prefix: str) -> list[str]:  # pragma: no cover - interface
        """The names of the directories directly below ``prefix``, sorted."""
        raise NotImplementedError

    def move(self, key: str, dest: str) -> None:  # pragma: no cover - interface
        """Rename ``key`` to ``dest``."""
        raise NotImplementedError


class LocalObjects(Objects):
    """Objects as files below a local directory."""

    def __init__(self, root: str | os.PathLike):
        self.root = Path(root)

    def _path(self, key: str) -> Path:
        parts = [p for p in key.split("/") if p]
        if not parts or any(p in (".", "..") for p in parts):
            raise StoreError(f"bad object key {key!r}")
        return self.root.joinpath(*parts)

    def get(self, key: str) -> bytes | None:
        """The bytes of ``key``, None when absent."""
        try:
            return self._path(key).read_bytes()
        except (FileNotFoundError, NotADirectoryError):
            return None
        except OSError as e:
            raise StoreError(f"{self.root}: reading {key}: {e}") from None

    def _staged(self, path: Path, data: bytes) -> Path:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".{path.name}.{uuid.uuid4().hex}.tmp")
        with open(tmp, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        return tmp

    def _place(self, key: str, data: bytes, place) -> bool:
        """Write ``data`` to a temporary file beside ``key``, then ``place(tmp, path)`` it; False when ``place``
        finds the name taken (``os.link``), True once placed."""
        path = self._path(key)
        tmp = None
        try:
            tmp = self._staged(path, data)
            place(tmp, path)
            return True
        except FileExistsError:
            return False
        except OSError as e:
            raise StoreError(f"{self.root}: writing {key}: {e}") from None
        finally:
            if tmp is not None:
                with contextlib.suppress(FileNotFoundError):
                    tmp.unlink()

    def put(self, key: str, data: bytes) -> None:
        """Create or replace ``key`` (a reader sees the old bytes or the new ones)."""
        self._place(key, data, os.replace)

    def put_if_absent(self, key: str, data: bytes) -> bool:
        """Create ``key`` unless it exists; True when this call created it."""
        return self._place(key, data, os.link)

    def list_dirs(self, prefix: str) -> list[str]:
        """The names of the directories directly below ``prefix``, sorted."""
        d = self.root.joinpath(*[p for p in prefix.split("/") if p])
        if not d.is_dir():
            return []
        return sorted(p.name for p in d.iterdir() if p.is_dir() and not p.name.startswith("."))

    def move(self, key: str, dest: str) -> None:
        """Rename ``key`` to ``dest``."""
        src, to = self._path(key), self._path(dest)
        try:
            to.parent.mkdir(parents=True, exist_ok=True)
            os.rename(src, to)
        except OSError as e:
            raise StoreError(f"{self.root}: moving {key} to {dest}: {e}") from None


class RemoteObjects(Objects):
    """Objects in a bucket through obstore (the ``cloud`` extra)."""

    def __init__(self, loc: objstore.Location, opts: dict[str, str]):
        self.loc, self.opts = loc, opts
        self._client = None

    def client(self):
        """The obstore client of the location (normal timeouts and retries)."""
        if self._client is None:
            try:
                self._client = objstore.connect(self.loc, self.opts, preflight_limits=False)
            except objstore.ObjectStoreError as e:
                raise StoreError(str(e)) from None
        return self._client

    def _fail(self, e: BaseException) -> StoreError:
        return StoreError(objstore.explain(self.loc, e))

    def get(self, key: str) -> bytes | None:
        """The bytes of ``key``, None when absent."""
        import obstore

        try:
            return bytes(obstore.get(self.client(), key).bytes())
        except FileNotFoundError:
            return None
        except Exception as e:
            if type(e).__name__ == "NotFoundError":
                return None
            raise self._fail(e) from None

    def put(self, key: str, data: bytes) -> None:
        """Create or replace ``key`` (a reader sees the old bytes or the new ones)."""
        import obstore

        try:
            obstore.put(self.client(), key, data)
        except Exception as e:
            raise self._fail(e) from None

    def put_if_absent(self, key: str, data: bytes) -> bool:
        """Create ``key`` unless it exists; True when this call created it."""
        import obstore

        try:
            obstore.put(self.client(), key, data, mode="create")
            return True
        except FileExistsError:
            return False
        except Exception as e:
            if type(e).__name__ in ("AlreadyExistsError", "PreconditionError"):
                return False
            raise self._fail(e) from None

    def list_dirs(self, prefix: str) -> list[str]:
        """The names of the directories directly below ``prefix``, sorted."""
        import obstore

        try:
            res = obstore.list_with_delimiter(self.client(), prefix.strip("/") + "/")
        except FileNotFoundError:
            return []
        except Exception as e:
            if type(e).__name__ == "NotFoundError":
                return []
            raise self._fail(e) from None
        return sorted(str(p).rstrip("/").rsplit("/", 1)[-1] for p in res["common_prefixes"])

    def move(self, key: str, dest: str) -> None:
        """Rename ``key`` to ``dest``."""
        import obstore

        try:
            obstore.rename(self.client(), key, dest)
        except Exception as e:
            raise self._fail(e) from None


def objects_for(loc: objstore.Location, opts: dict[str, str]) -> Objects:
    """The ``Objects`` of a store location: files for a local directory, obstore for a bucket."""
    if loc.family == "file":
        return LocalObjects(loc.local_path or "/")
    return RemoteObjects(loc, opts)
