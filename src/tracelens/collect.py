"""An OTLP/HTTP receiver: what instrumented applications export lands in the store.

``Collector(store, config)`` serves ``POST /v1/traces`` and ``POST /v1/logs``
(OTLP/HTTP, protobuf ``application/x-protobuf`` or JSON ``application/json``,
``Content-Encoding: gzip`` or identity) on a threaded stdlib HTTP server. The
CLI (``tracelens collect``) is a thin front end; this module never imports
click.

Durability. A request is acknowledged (200) only once its body is durable:
written to a spool file under ``STORE/spool/collect/`` (temporary name,
``fsync``, atomic rename, ``fsync`` of the directory; the directory is
locked, so one collector per store). A committer thread
takes every spool file present, at most ``commit_interval`` seconds after the
first one arrived (sooner when ``commit_bytes`` are waiting or the spool is
full), ingests them
through the ingest pipeline (``tracelens.ingest.inputs.ingest_inputs``: the importers
``otlp_proto``/``otlp_json`` for traces, ``otlp_logs_proto``/``otlp_logs``
for logs, the same finalize, enrichment and atomic store commits as
``tracelens ingest``), many requests per store commit, and deletes a spool
file only after the commit that holds it. Files left by a process that died
(even by SIGKILL) are committed as soon as the collector starts again, while
it already serves. A crash
between a commit and the deletion makes the next start ingest those bodies
again; the store's content hash makes that a duplicate for every record,
and a quarantine row keeps its id (its locator names the spool file), so
nothing is stored twice. Temporary files (never acknowledged) are deleted.

Signals without an importer. A request of a signal (and encoding) whose
importer this tracelens lacks (none today: ``otlp_logs``/``otlp_logs_proto``
read logs; a build without them, or a signal added later) is
checked, spooled and acknowledged like any other, then *held*: the
committer leaves it in the spool, and the first start of a tracelens that
has the importer commits it. It is never deleted uncommitted. Held files
have their own bucket under the same limits, so they never hold up traces.
A held body is handed to its importer as a trace body is to its own: a
protobuf body framed by its 4-byte length (the Collector file exporter's
framing), a JSON body as one line.

Nothing is lost silently. A body that cannot be decoded (not protobuf of the
path's request type, not a JSON object, broken gzip) gets 400 with the reason
and is spooled all the same, as a ``.rejected`` file that becomes one
quarantine row (reason, and the body as base64) in the store. Within a
decodable body every record is stored, a duplicate, skipped (a non-LLM span)
or quarantined with a reason, as with ``ingest``; the response does not say
which (that is decided by the committer, after the acknowledgement), so it is
always an empty ``Export*ServiceResponse`` without ``partial_success``.

Limits. Bodies are read with a limit (``max_body``, compressed and after
decompression: 413), never unbounded; a request without a length (and not
chunked) gets 411. Spooled but uncommitted bodies are bounded by
``max_pending_bytes`` and ``max_pending_files``: beyond them a request gets
429 with ``Retry-After`` (the OTel exporters wait that long and retry), except
that an empty spool always takes one body. At most ``max_in_flight``
requests are read at once; one more gets 503 with ``Retry-After`` before its
body is read, so memory stays within about ``max_in_flight`` bodies (twice
that for gzip). Idle or slow connections time out after ``socket_timeout``
seconds.

Other answers: 404 for other paths, 405 for other methods, 415 for other
content types or encodings (and for protobuf when the ``otlp`` extra is not
installed: JSON still works), 401 when a bearer token is configured and the
request does not carry it (compared in constant time), 503 while shutting
down or when the spool cannot be written. Error bodies are a
``google.rpc.Status`` in the request's content type, as OTLP/HTTP asks.

Shutdown (``stop``): stop accepting, let requests in flight finish, commit
everything spooled, and report. A spool file that cannot be committed then
(the store fails) stays on disk for the next start and is counted as pending.
"""

from __future__ import annotations

import base64
import contextlib
import dataclasses
import fcntl
import hashlib
import hmac
import ipaddress
import itertools
import json
import logging
import os
import re
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler
from pathlib import Path

from tracelens.atomic import fsync_dir as _fsync_dir
from tracelens.collecthttp import (  # noqa: F401 - the receiver's public names, as before
    JSON_TYPE,
    PROTO_TYPES,
    SIGNALS,
    BodyError,
    OtlpServer,
    Signal,
    gunzip,
    read_chunked,
    status_body,
)
from tracelens.ingest.base import IngestOptions
from tracelens.store import Store

log = logging.getLogger(__name__)

SPOOL_DIR = ("spool", "collect")


MiB = 1024 * 1024


@dataclass
class CollectConfig:
    """Settings of one receiver: where it listens, the token, and the limits on bodies, the spool and commits."""

    host: str = "127.0.0.1"
    port: int = 4318  # 0: any free port (``Collector.address`` says which)
    token: str | None = None  # bearer token every request must carry
    max_body: int = 32 * MiB  # per request, compressed and decompressed
    max_pending_bytes: int = 256 * MiB  # spooled, not yet committed
    max_pending_files: int = 10_000
    commit_interval: float = 1.0  # seconds from the first spooled body to the commit that takes it
    commit_bytes: int = 32 * MiB  # commit sooner when this much is spooled; also the most one ingest call reads
    batch_size: int = 5_000  # records per store commit, as in ``ingest``
    max_in_flight: int = 16  # requests read and spooled at once (memory: up to about this many bodies); beyond: 503
    retry_after: int = 1  # seconds, in the Retry-After of 429 and 503 answers
    socket_timeout: float = 30.0
    options: IngestOptions = field(default_factory=IngestOptions)
    enrich: bool = True  # run the refusal detector on committed rows, as ``ingest`` does


@dataclass
class CollectStats:
    """What the collector did; ``pending_*`` is what is spooled and not yet committed."""

    accepted: int = 0  # requests answered 200
    rejected: int = 0  # 400: undecodable bodies, quarantined
    refused: int = 0  # 429/503: not taken, the client retries
    unauthorized: int = 0
    other_errors: int = 0  # 404/405/411/413/415
    bytes_accepted: int = 0
    records: int = 0  # items the committed bodies held (spans or log records)
    stored: int = 0
    duplicates: int = 0
    quarantined: int = 0  # records, and rejected bodies
    skipped: int = 0
    commits: int = 0  # ingest rounds that committed spool files
    commit_errors: int = 0
    recovered_files: int = 0  # spool files found at start (left by an earlier process)
    pending_files: int = 0
    pending_bytes: int = 0
    held_files: int = 0  # acknowledged requests kept in the spool until a tracelens that can read them starts
    held_bytes: int = 0

    def to_dict(self) -> dict:
        """The counters as a dict (``collect --json`` and the final summary)."""
        return dataclasses.asdict(self)

    def line(self) -> str:
        """The counters as one line for stderr."""
        return (f"{self.accepted:,} requests accepted, {self.rejected:,} rejected, {self.refused:,} refused; "
                f"{self.records:,} records committed: {self.stored:,} stored, {self.duplicates:,} duplicates, "
                f"{self.quarantined:,} quarantined, {self.skipped:,} skipped; "
                f"{self.pending_files:,} requests spooled pending"
                + (f", {self.held_files:,} held (no importer for them yet)" if self.held_files else ""))


def is_loopback(host: str) -> bool:
    """Whether ``host`` is a loopback name or address (listening anywhere else without a token is warned about)."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


# ---------------------------------------------------------------- spool

_SPOOL_NAME = re.compile(r"\d{20}-\d{8}\.(traces|logs)\.(binpb|json|rejected)")


class SpoolBusy(Exception):
    """Another process (a second ``tracelens collect`` on the same store) holds the spool."""


class Spool:
    """Durable files of accepted bodies, with the accounting the backpressure limits use.

    Two buckets, each with the limits: files the committer can ingest
    (``pending_*``), and ``held_*`` files of a signal this tracelens has no
    importer for (see the module docstring). Held files are
    acknowledged and kept, never deleted, and become pending at a start where
    their importer exists. The directory is locked (``flock`` on ``.lock``) for
    the collector's lifetime: two collectors must not commit, or clean up,
    each other's files.
    """

    def __init__(self, directory: Path, max_bytes: int, max_files: int,
                 held: frozenset[tuple[str, str]] = frozenset()):
        self.dir = directory
        self.max_bytes, self.max_files = max_bytes, max_files
        self.held = frozenset(held)  # (signal, kind) pairs without an importer
        directory.mkdir(parents=True, exist_ok=True, mode=0o700)  # bodies hold prompts: not for other users
        self._lock_fd = os.open(directory / ".lock", os.O_RDWR | os.O_CREAT | getattr(os, "O_NOFOLLOW", 0), 0o600)
        try:
            fcntl.flock(self._lock_fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(self._lock_fd)
            raise SpoolBusy(f"another tracelens collect is running on this store (its spool {directory} is locked)")\
                from None
        for p in directory.iterdir():
            if p.name.startswith(".tmp-"):  # written by a process that died before acknowledging it
                with contextlib.suppress(OSError):
                    p.unlink()
        self._lock = threading.Lock()
        self._seq = itertools.count()
        self._files = {False: 0, True: 0}  # held? -> files, bytes
        self._bytes = {False: 0, True: 0}
        for p in self._all():
            held = self.is_held(p)
            self._files[held] += 1
            self._bytes[held] += _size(p)

    def close(self) -> None:
        """Release the spool lock (another collector may take the store from here on)."""
        if self._lock_fd is not None:
            os.close(self._lock_fd)  # releases the flock
            self._lock_fd = None

    @property
    def pending_files(self) -> int:
        """Spooled bodies not yet committed (held ones aside)."""
        return self._files[False]

    @property
    def pending_bytes(self) -> int:
        """Bytes of the spooled bodies not yet committed (held ones aside)."""
        return self._bytes[False]

    @property
    def held_files(self) -> int:
        """Acknowledged bodies kept until a tracelens that can read them starts."""
        return self._files[True]

    @property
    def held_bytes(self) -> int:
        """Bytes of the held bodies."""
        return self._bytes[True]

    def holds(self, signal: str, kind: str) -> bool:
        """Whether a body of ``signal`` spooled as ``kind`` is held (its importer is missing)."""
        return (signal, kind) in self.held

    def is_held(self, path: Path) -> bool:
        """Whether the spool file ``path`` is held (its signal and kind have no importer here)."""
        _, signal, kind = path.name.split(".")
        return self.holds(signal, kind)

    def _all(self) -> list[Path]:
        return sorted((p for p in self.dir.iterdir() if _SPOOL_NAME.fullmatch(p.name)), key=lambda p: p.name)

    def files(self) -> list[Path]:
        """Spool files the committer can take, in arrival order."""
        return [p for p in self._all() if not self.is_held(p)]

    def full(self, held: bool = False) -> bool:
        """Whether the pending (or held) bucket has reached its file or byte limit: time to commit at once."""
        with self._lock:
            n = self._files[held]
            return n > 0 and (n >= self.max_files or self._bytes[held] >= self.max_bytes)

    def admit(self, nbytes: int, held: bool = False) -> bool:
        """Reserve room for one body; False when the limits are reached (an empty bucket takes any body)."""
        with self._lock:
            if self._files[held] and (self._files[held] + 1 > self.max_files
                                      or self._bytes[held] + nbytes > self.max_bytes):
                return False
            self._files[held] += 1
            self._bytes[held] += nbytes
            return True

    def release(self, nbytes: int, nfiles: int = 1, held: bool = False) -> None:
        """Give back the room of ``nfiles`` bodies of ``nbytes`` (committed, or refused after ``admit``)."""
        with self._lock:
            self._files[held] -= nfiles
            self._bytes[held] -= nbytes

    def write(self, signal: str, kind: str, data: bytes) -> Path:
        """Write one body durably (fsync, rename, fsync of the directory); returns its path."""
        name = f"{time.time_ns():020d}-{next(self._seq) % 10**8:08d}.{signal}.{kind}"
        tmp = self.dir / f".tmp-{name}"
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0), 0o600)
        try:
            with os.fdopen(fd, "wb") as f:
                f.write(data)
                f.flush()
                os.fsync(f.fileno())
            final = self.dir / name
            os.replace(tmp, final)
            _fsync_dir(self.dir)
        except BaseException:
            with contextlib.suppress(OSError):
                tmp.unlink()
            raise
        return final

    def remove(self, paths: list[Path]) -> None:
        """Delete committed (pending, never held) files, then fsync the directory so a restart does not see them."""
        nbytes = 0
        for p in paths:
            nbytes += _size(p)
            with contextlib.suppress(FileNotFoundError):
                p.unlink()
        _fsync_dir(self.dir)
        self.release(nbytes, len(paths))


def _size(p: Path) -> int:
    try:
        return p.stat().st_size
    except OSError:
        return 0


def _spool_input(path: Path, kind: str) -> bytes:
    """A spool file as its importer reads it: a 4-byte length before a protobuf body (the framing
    ``otlp_proto`` reads, whatever the body's first bytes look like); a JSON body on one line (JSON has no
    newline inside a string, so replacing the others by spaces changes nothing but the layout)."""
    data = path.read_bytes()
    if kind == "binpb":
        return len(data).to_bytes(4, "big") + data
    if data.startswith(b"\xef\xbb\xbf"):
        data = data[3:]
    return data.replace(b"\r", b" ").replace(b"\n", b" ") + b"\n"


# ---------------------------------------------------------------- committer


class Committer:
    """The thread that moves spool files into the store (see the module docstring)."""

    def __init__(self, store: Store, spool: Spool, config: CollectConfig, stats: CollectStats,
                 stats_lock: threading.Lock):
        self.store, self.spool, self.config = store, spool, config
        self.stats, self._stats_lock = stats, stats_lock
        self._cond = threading.Condition()
        self._stopping = False
        self._flush = False
        self._thread = threading.Thread(target=self._run, name="tracelens-collect-committer", daemon=True)

    def start(self, flush: bool = False) -> None:
        """Start the thread; ``flush``: commit what is spooled at once (files an earlier process left)."""
        self._flush = flush
        self._thread.start()

    @property
    def started(self) -> bool:
        """Whether the committer thread has been started."""
        return self._thread.ident is not None

    def notify(self) -> None:
        """Wake the committer (a body was spooled, or the spool is full)."""
        with self._cond:
            self._cond.notify()

    def stop(self, timeout: float | None = None) -> None:
        """Commit what is spooled, then end the thread."""
        with self._cond:
            self._stopping = True
            self._cond.notify()
        self._thread.join(timeout)

    def warm(self) -> None:
        """Load the refusal detector now: its import takes seconds of CPU (and the GIL), which would
        otherwise stall request handling during the first commit."""
        if self.config.enrich:
            from tracelens.ingest.pipeline import default_enricher

            try:
                default_enricher()
            except Exception:  # noqa: BLE001 - the commit that needs it reports the failure
                log.debug("loading the enricher failed", exc_info=True)

    def _run(self) -> None:
        failures = 0
        while True:
            with self._cond:
                while not self._stopping and self.spool.pending_files == 0:
                    self._cond.wait()
                # gather: many requests, one commit
                wait = min(30.0, 2.0 ** failures) if failures else 0.0 if self._flush else self.config.commit_interval
                self._flush = False
                deadline = time.monotonic() + wait
                # a full spool (clients get 429) is committed at once: waiting would only refuse more
                while (not self._stopping and self.spool.pending_bytes < self.config.commit_bytes
                       and not self.spool.full()):
                    left = deadline - time.monotonic()
                    if left <= 0:
                        break
                    self._cond.wait(left)
                stopping = self._stopping
            try:
                ok = self.commit_all()
            except Exception:  # noqa: BLE001 - the thread must live on: what it could not commit stays spooled
                log.exception("committing spooled requests failed; they stay in %s and are retried", self.spool.dir)
                ok = False
            if ok:
                failures = 0
            else:
                failures += 1
                if stopping:
                    return  # what could not be committed stays spooled for the next start
            if stopping and not self.spool.files():
                return

    def commit_all(self) -> bool:
        """Commit every spool file present; False when the store failed (those files stay spooled)."""
        files = self.spool.files()
        groups: dict[tuple[str, str], list[Path]] = {}
        for p in files:
            _, signal, kind = p.name.split(".")
            groups.setdefault((signal, kind), []).append(p)
        ok = True
        for (signal, kind), paths in groups.items():
            start = 0
            while start < len(paths):
                chunk, nbytes = [], 0
                while start < len(paths) and (not chunk or nbytes < self.config.commit_bytes):
                    chunk.append(paths[start])
                    nbytes += _size(paths[start])
                    start += 1
                try:
                    if kind == "rejected":
                        self._commit_rejected(SIGNALS[signal], chunk)
                    else:
                        self._commit_bodies(SIGNALS[signal], kind, chunk)
                except Exception as e:  # noqa: BLE001 - the store failed (disk full, a lock, ...): retried later
                    ok = False
                    with self._stats_lock:
                        self.stats.commit_errors += 1
                    log.warning("could not commit %d spooled requests (%s: %s); they stay in %s and are retried",
                                len(chunk), type(e).__name__, e, self.spool.dir)
                    break
                self.spool.remove(chunk)
        return ok

    def _commit_bodies(self, signal: Signal, kind: str, paths: list[Path]) -> None:
        from tracelens.ingest.inputs import ingest_inputs

        fmt = signal.proto_format if kind == "binpb" else signal.json_format
        inputs = [(p.name, _spool_input(p, kind)) for p in paths]
        res = ingest_inputs(self.store, inputs, fmt, f"otlp-http:{signal.path}", self.config.options,
                            batch_size=self.config.batch_size, enricher=self.config.enrich)
        with self._stats_lock:
            s = self.stats
            s.records += res.read
            s.stored += res.stored
            s.duplicates += res.duplicates
            s.quarantined += res.quarantined
            s.skipped += res.skipped
            s.commits += 1

    def _commit_rejected(self, signal: Signal, paths: list[Path]) -> None:
        import pyarrow as pa

        from tracelens.schema import QUARANTINE_SCHEMA, TRACE_SCHEMA
        from tracelens.store import make_quarantine_row

        rows = []
        for p in paths:
            try:
                doc = json.loads(p.read_bytes())
                reason, fmt, body = doc["reason"], doc.get("format"), doc.get("body_base64") or ""
            except (ValueError, KeyError, TypeError) as e:  # not written by us: kept as it is, said so
                reason, fmt = f"unreadable rejected-request file ({type(e).__name__}: {e})", None
                body = base64.b64encode(p.read_bytes()).decode("ascii")
            rows.append(make_quarantine_row(fmt, f"otlp-http:{signal.path}", p.name,
                                            f"request rejected (400): {reason}", "base64:" + body))
        out = self.store.commit_batch(TRACE_SCHEMA.empty_table(), pa.Table.from_pylist(rows, schema=QUARANTINE_SCHEMA))
        with self._stats_lock:
            self.stats.quarantined += out.quarantined
            self.stats.commits += 1


class Collector:
    """The receiver: ``start()``, then ``stop()`` returns the final stats (see the module docstring)."""

    def __init__(self, store: Store, config: CollectConfig | None = None):
        from tracelens.extras import has_extra
        from tracelens.ingest.registry import FORMATS

        self.store = store
        self.config = config = config or CollectConfig()
        self.stats = CollectStats()
        self._stats_lock = threading.Lock()
        self.proto_ok = has_extra("otlp")
        self.signals = {s.path: s for s in SIGNALS.values()}
        # a signal whose importer is not in this tracelens (yet) is still acknowledged once durable, and held
        held = frozenset((s.name, kind) for s in SIGNALS.values()
                         for kind, fmt in (("json", s.json_format), ("binpb", s.proto_format)) if fmt not in FORMATS)
        self.spool = Spool(store.root.joinpath(*SPOOL_DIR), config.max_pending_bytes, config.max_pending_files, held)
        self.committer = Committer(store, self.spool, config, self.stats, self._stats_lock)
        self._token = config.token.encode("utf-8") if config.token else None
        self._token_digest = hashlib.sha256(self._token).digest() if self._token else b""
        self._flight_lock = threading.Condition()
        self._in_flight = 0
        self._closing = False
        self._server: OtlpServer | None = None
        self._serve_thread: threading.Thread | None = None

    # -- lifecycle

    def start(self) -> tuple[str, int]:
        """Bind and serve (what an earlier process left spooled is committed at once). Returns (host, port)."""
        try:
            self._server = OtlpServer((self.config.host, self.config.port), self)
        except BaseException:
            self.spool.close()
            raise
        # connections queue on the bound socket meanwhile
        self.committer.warm()
        # what an earlier process left is committed by the committer at once, while this one already serves
        self.stats.recovered_files = self.spool.pending_files
        self.committer.start(flush=self.spool.pending_files > 0)
        self._serve_thread = threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.2},
                                              name="tracelens-collect-http", daemon=True)
        self._serve_thread.start()
        return self.address

    @property
    def address(self) -> tuple[str, int]:
        """``(host, port)`` the receiver listens on (the port chosen when the config said 0)."""
        assert self._server is not None
        host, port = self._server.server_address[:2]
        return str(host), int(port)

    def stop(self, grace: float = 30.0) -> CollectStats:
        """Stop accepting, wait (up to ``grace`` s) for requests in flight, commit everything spooled."""
        with self._flight_lock:
            self._closing = True
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
        deadline = time.monotonic() + grace
        with self._flight_lock:
            while self._in_flight and (left := deadline - time.monotonic()) > 0:
                self._flight_lock.wait(left)
        if self.committer.started:
            self.committer.stop()
        self.spool.close()
        return self.snapshot()

    def snapshot(self) -> CollectStats:
        """A copy of the counters, with the spool's current pending and held sizes."""
        with self._stats_lock:
            s = dataclasses.replace(self.stats)
        s.pending_files, s.pending_bytes = self.spool.pending_files, self.spool.pending_bytes
        s.held_files, s.held_bytes = self.spool.held_files, self.spool.held_bytes
        return s

    # -- requests

    def signal_for(self, path: str) -> Signal | None:
        """The signal a request path names (``/v1/traces``, ``/v1/logs``), or None."""
        return self.signals.get(path.split("?", 1)[0])

    def reply(self, h: BaseHTTPRequestHandler, status: int, proto: bool, message: str = "",
              headers: dict[str, str] | None = None) -> None:
        """Answer ``status`` in the encoding the client used: an empty export response for 200, else a Status body."""
        if status == 200:
            body = b"" if proto else b"{}"  # an empty Export*ServiceResponse
        else:
            body = status_body(status, message, proto)
        try:
            h.send_response(status)
            h.send_header("Content-Type", PROTO_TYPES[0] if proto else JSON_TYPE)
            h.send_header("Content-Length", str(len(body)))
            for k, v in (headers or {}).items():
                h.send_header(k, v)
            if h.close_connection:
                h.send_header("Connection", "close")
            h.end_headers()
            h.wfile.write(body)
        except OSError:  # the client went away; what was spooled stays spooled
            h.close_connection = True

    def _count(self, attr: str, n: int = 1) -> None:
        with self._stats_lock:
            setattr(self.stats, attr, getattr(self.stats, attr) + n)

    def _refuse(self, h, proto: bool, status: int, message: str, attr: str = "other_errors",
                headers: dict[str, str] | None = None) -> None:
        self._count(attr)
        h.close_connection = True  # the body was not (all) read: the connection cannot carry another request
        self.reply(h, status, proto, message, headers)

    def handle_post(self, h: BaseHTTPRequestHandler) -> None:
        """One export request: check, read, decode and spool the body durably, then acknowledge (or refuse with why)."""
        with self._flight_lock:
            closing, busy = self._closing, self._in_flight >= self.config.max_in_flight
            if not (closing or busy):
                self._in_flight += 1
        if closing or busy:
            # refused before the body is read: memory stays bounded by max_in_flight bodies
            proto = (h.headers.get("Content-Type") or "").split(";", 1)[0].strip().lower() in PROTO_TYPES
            self._refuse(h, proto, 503, "shutting down" if closing else
                         f"{self.config.max_in_flight} requests are being received already; retry later",
                         "refused", {"Retry-After": str(self.config.retry_after)})
            return
        try:
            self._handle_post(h)
        finally:
            with self._flight_lock:
                self._in_flight -= 1
                self._flight_lock.notify_all()

    def _handle_post(self, h: BaseHTTPRequestHandler) -> None:
        cfg = self.config
        ctype = (h.headers.get("Content-Type") or "").split(";", 1)[0].strip().lower()
        proto = ctype in PROTO_TYPES
        signal = self.signal_for(h.path)
        if signal is None:
            self._refuse(h, proto, 404, f"no such path: {h.path.split('?', 1)[0]} (OTLP/HTTP paths: "
                         f"{', '.join(sorted(self.signals))})")
            return
        if self._token is not None and not self._authorized(h.headers.get("Authorization")):
            self._refuse(h, proto, 401, "missing or wrong bearer token", "unauthorized",
                         {"WWW-Authenticate": 'Bearer realm="tracelens"'})
            return
        if not proto and ctype != JSON_TYPE:
            self._refuse(h, False, 415, f"unsupported content type {ctype or '(none)'!r}; "
                         f"send {PROTO_TYPES[0]} or {JSON_TYPE}")
            return
        if proto and not self.proto_ok:  # without it a protobuf body cannot even be checked
            from tracelens.extras import install_command

            self._refuse(h, proto, 415, f"protobuf bodies need the 'otlp' extra ({install_command('otlp')}); "
                         f"send {JSON_TYPE} instead")
            return
        encoding = (h.headers.get("Content-Encoding") or "identity").strip().lower()
        if encoding not in ("identity", "gzip"):
            self._refuse(h, proto, 415, f"unsupported Content-Encoding {encoding!r}; send gzip or identity")
            return
        kind = "binpb" if proto else "json"
        if self.spool.full(self.spool.holds(signal.name, kind)):
            self._refuse(h, proto, 429, self._full_message(signal, kind), "refused",
                         {"Retry-After": str(cfg.retry_after)})
            return
        try:
            body = self._read_body(h)
            if encoding == "gzip":
                try:
                    body = gunzip(body, cfg.max_body)
                except BodyError as e:
                    if e.status != 400:
                        raise
                    self._reject(h, signal, proto, body, str(e))  # the undecodable gzip is kept as it came
                    return
        except BodyError as e:
            self._refuse(h, proto, e.status, str(e))
            return
        except OSError as e:  # timeout or reset while reading: nothing acknowledged, nothing to keep
            h.close_connection = True
            log.warning("request from %s ended while its body was read: %s", h.client_address[0], e)
            return
        reason = self._check(signal, proto, body)
        if reason is not None:
            self._reject(h, signal, proto, body, reason)
            return
        if self._spool(h, signal, kind, body, proto):
            self._count("accepted")
            self._count("bytes_accepted", len(body))
            self.reply(h, 200, proto)

    def _authorized(self, header: str | None) -> bool:
        scheme, _, given = (header or "").strip().partition(" ")
        # compared as digests in constant time: neither how much of the token matched nor its length shows
        given_digest = hashlib.sha256(given.strip().encode("utf-8", "surrogateescape")).digest()
        return hmac.compare_digest(given_digest, self._token_digest) and scheme.lower() == "bearer"

    def _read_body(self, h: BaseHTTPRequestHandler) -> bytes:
        limit = self.config.max_body
        if "chunked" in (h.headers.get("Transfer-Encoding") or "").lower():
            return read_chunked(h.rfile, limit)
        length = h.headers.get("Content-Length")
        if length is None:
            raise BodyError(411, "a Content-Length (or chunked transfer encoding) is required")
        try:
            n = int(length)
        except ValueError:
            raise BodyError(400, f"bad Content-Length {length!r}") from None
        if n < 0:
            raise BodyError(400, f"bad Content-Length {length!r}")
        if n > limit:
            raise BodyError(413, f"body of {n:,} bytes is larger than {limit:,} bytes (--max-body)")
        body = h.rfile.read(n)
        if len(body) < n:
            raise OSError(f"connection closed after {len(body):,} of {n:,} bytes")
        return body

    def _check(self, signal: Signal, proto: bool, body: bytes) -> str | None:
        """Why ``body`` is not a request of ``signal`` (None when it decodes)."""
        if proto:
            from google.protobuf.message import DecodeError

            try:
                signal.request_class().FromString(body)
            except DecodeError as e:
                return f"not a protobuf {signal.proto_class}: {e}"
            return None
        try:
            doc = json.loads(body)
        except (ValueError, UnicodeDecodeError, RecursionError) as e:
            return f"body is not JSON: {e}"
        if not isinstance(doc, dict):
            return f"body is JSON but not an object ({type(doc).__name__}); OTLP JSON sends a {signal.proto_class}"
        if doc and not any(k in doc for k in signal.json_keys):
            return f"JSON object has no {signal.json_keys[0]!r}: not a {signal.proto_class} (wrong path?)"
        return None

    def _reject(self, h, signal: Signal, proto: bool, body: bytes, reason: str) -> None:
        """400, after keeping the body (it becomes a quarantine row)."""
        log.warning("rejected a request to %s from %s: %s", signal.path, h.client_address[0], reason)
        doc = {"reason": reason, "format": signal.proto_format if proto else signal.json_format,
               "content_type": h.headers.get("Content-Type"), "content_encoding": h.headers.get("Content-Encoding"),
               "body_base64": base64.b64encode(body).decode("ascii")}
        if self._spool(h, signal, "rejected", json.dumps(doc).encode(), proto):
            self._count("rejected")
            self.reply(h, 400, proto, reason)

    def _spool(self, h, signal: Signal, kind: str, data: bytes, proto: bool) -> bool:
        """Write ``data`` durably; on False the request was answered (429 or 503) and nothing was kept."""
        held = self.spool.holds(signal.name, kind)
        if not self.spool.admit(len(data), held):
            self._refuse(h, proto, 429, self._full_message(signal, kind), "refused",
                         {"Retry-After": str(self.config.retry_after)})
            return False
        try:
            self.spool.write(signal.name, kind, data)
        except OSError as e:  # disk full, permissions: not acknowledged, so the client keeps it and retries
            self.spool.release(len(data), held=held)
            log.warning("could not spool a request to %s: %s", self.spool.dir, e)
            self._refuse(h, proto, 503, f"the receiver cannot write its spool: {e}", "refused",
                         {"Retry-After": str(self.config.retry_after)})
            return False
        if not held:
            self.committer.notify()
        return True

    def _full_message(self, signal: Signal, kind: str) -> str:
        if self.spool.holds(signal.name, kind):
            return (f"the spool holds as many OTLP {signal.name} requests as it may until this tracelens can read "
                    "them; retry later")
        return "too much received and not yet committed; retry later"


def serve(store: Store, config: CollectConfig, stop: threading.Event,
          ready: Callable[[tuple[str, int]], None] | None = None,
          progress: Callable[[CollectStats], None] | None = None, progress_every: float = 10.0) -> CollectStats:
    """Run a collector until ``stop`` is set; ``progress`` gets the stats when they changed (every few seconds)."""
    c = Collector(store, config)
    addr = c.start()
    try:
        if ready is not None:
            ready(addr)
        last = None
        while not stop.wait(progress_every):
            s = c.snapshot()
            key = (s.accepted, s.rejected, s.refused, s.records, s.pending_files, s.held_files)
            if progress is not None and key != last:
                progress(s)
            last = key
    except BaseException:
        c.stop()  # what was acknowledged is committed (or stays spooled) whatever went wrong here
        raise
    return c.stop()
