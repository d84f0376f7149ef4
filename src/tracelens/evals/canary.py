"""Canary sets as eval suites: what `tracelens canary` works on, and the migration of the older canary files.

Contract:

* A canary set is a stored eval suite marked ``kind: canary`` (in its YAML,
  and in `tracelens eval list`) whose cases are stored traces graded by
  ``behaves-like`` (the answer refuses or answers as the recorded response
  did, and is similar to it), run ``n`` times per case (default 5). It is
  run, stored, compared and reported by ``tracelens.evals`` like any suite:
  a canary run is an eval run on the ``pinned`` target (or ``anthropic:MODEL``).
* ``add_canary`` creates the suite or adds traces to it (a trace already in
  it is left as it is; a trace that cannot be replayed is reported with the
  reason); adding to a suite that is not a canary set is refused.
* Older versions kept a canary set at ``<store>/canaries/<name>.json``
  (``{"name", "trace_ids", "n", "description", "created_at", "updated_at"}``)
  and its runs as replays tagged ``canary``/``canary_run_id`` in the replays
  table. ``migrate_canaries`` turns each such set into a canary suite (cases
  built from the traces, as `canary add` does) and each stored run into an
  eval run with the same run id: one result row per replay (answer text,
  refusal label, latency and tokens from the replay row), graded now by the
  suite's ``behaves-like`` grader against the case's recorded response, so
  migrated and new runs compare; ``run_started_at`` is the run's first
  replay time and the target ``pinned``. The new files are written first
  (atomically), then the old file is moved to ``<store>/canaries/migrated/``:
  a migration stopped half-way loses nothing and the next one finishes it
  (writing the same run files again), and a migrated set is not migrated
  twice. The replays themselves stay in the replays table. The whole
  migration holds the store's writer lock.
"""

from __future__ import annotations

import datetime as dt
import json
import os
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tracelens.evals.graders import GradeContext, SuiteError
from tracelens.evals.model import GraderSpec, Response, Suite
from tracelens.evals.suite import (
    AddOutcome,
    GetTrace,
    add_traces,
    check_name,
    list_suites,
    parse_expect,
    read_suite_file,
    save_suite,
    suite_path,
)

CANARY_KIND = "canary"
DEFAULT_N = 5
MAX_N = 50  # a suite's n (eval run's --n) is at most 50
OLD_DIR = "canaries"
MIGRATED_DIR = "migrated"
MIGRATED_LABEL = "canary run (migrated)"

Note = Callable[[str], None]


class CanaryError(ValueError):
    """A canary set that cannot be read, created or run; the message says what to do."""


def canary_graders() -> list[GraderSpec]:
    """The grader of every canary case: ``behaves-like`` with its default threshold."""
    return parse_expect(["behaves-like"])


def is_canary(suite: Suite) -> bool:
    """True when ``suite`` is a canary set."""
    return suite.kind == CANARY_KIND


def canary_suites(store_root: str | Path) -> list[Suite]:
    """The store's canary sets, by name."""
    return [s for s in list_suites(store_root) if is_canary(s)]


def load_canary(store_root: str | Path, name: str) -> Suite:
    """Canary set ``name``; ``CanaryError`` when there is none or the suite of that name is not one."""
    try:
        path = suite_path(store_root, name)
    except SuiteError as e:
        raise CanaryError(str(e)) from None
    if not path.is_file():
        raise CanaryError(f"no canary set named {name!r} (create it with `tracelens canary add {name} TRACE_ID...`)")
    try:
        suite = read_suite_file(path)[0]
    except SuiteError as e:
        raise CanaryError(str(e)) from None
    if not is_canary(suite):
        raise CanaryError(f"suite {name!r} is not a canary set: use `tracelens eval run {name}` / `tracelens eval "
                          "report` for it")
    return suite


def add_canary(store_root: str | Path, name: str, trace_ids: Iterable[str], get_trace: GetTrace, *,
               n: int | None = None, description: str | None = None) -> AddOutcome:
    """Create canary set ``name`` or add ``trace_ids`` to it (see the module docstring); the file is rewritten
    atomically under the store's writer lock, so two concurrent adds both land."""
    from tracelens.evals.suite import writer_lock

    try:
        check_name(name)
    except SuiteError as e:
        raise CanaryError(str(e)) from None
    if n is not None and not 1 <= n <= MAX_N:
        raise CanaryError(f"n must be a whole number from 1 to {MAX_N}")
    with writer_lock(store_root):
        path = suite_path(store_root, name)
        if path.is_file() and not is_canary(read_suite_file(path)[0]):
            raise CanaryError(f"suite {name!r} exists and is not a canary set: add traces to it with `tracelens eval "
                              f"add {name} TRACE_ID... --expect behaves-like`, or pick another name")
        out = add_traces(store_root, name, trace_ids, get_trace, canary_graders(), description=description)
        suite = out.suite
        suite.kind = CANARY_KIND
        suite.n = n or suite.n or DEFAULT_N
        out.path = save_suite(store_root, suite)
    return out


# ---------------------------------------------------------------------------------------------- migration


@dataclass
class OldCanary:
    """A canary set as older versions stored it (``<store>/canaries/<name>.json``)."""

    name: str
    trace_ids: list[str]
    n: int = DEFAULT_N
    description: str | None = None
    created_at: str | None = None


@dataclass
class Migrated:
    """What migrating one old canary set did."""

    name: str
    suite: str
    traces: int
    cases: int
    runs: list[str] = field(default_factory=list)
    skipped: dict[str, str] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    moved_to: Path | None = None

    @property
    def message(self) -> str:
        """The line said on stderr."""
        return (f"migrated canary set {self.name} ({self.traces} traces, {len(self.runs)} runs) to eval suite "
                f"{self.suite}")

    def to_dict(self) -> dict[str, Any]:
        """JSON form."""
        return {"name": self.name, "suite": self.suite, "traces": self.traces, "cases": self.cases, "runs": self.runs,
                "skipped": self.skipped, "notes": self.notes, "moved_to": str(self.moved_to) if self.moved_to else None}


def old_canary_files(store_root: str | Path) -> list[Path]:
    """The old canary files still to migrate (cheap: one directory listing)."""
    d = Path(store_root) / OLD_DIR
    return sorted(p for p in d.glob("*.json") if not p.name.startswith(".")) if d.is_dir() else []


def read_old_canary(path: Path) -> OldCanary:
    """An old canary file; ``CanaryError`` naming the file when it is not one."""
    try:
        obj = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as e:
        raise CanaryError(f"{path}: not a readable canary file ({e})") from None
    if not isinstance(obj, dict) or not isinstance(obj.get("trace_ids", []), list):
        raise CanaryError(f"{path}: not a canary file (a mapping with 'name' and 'trace_ids')")
    n = obj.get("n")
    return OldCanary(name=str(obj.get("name") or path.stem), trace_ids=[str(t) for t in obj.get("trace_ids") or []],
                     n=n if isinstance(n, int) and not isinstance(n, bool) and n >= 1 else DEFAULT_N,
                     description=obj.get("description") if isinstance(obj.get("description"), str) else None,
                     created_at=obj.get("created_at") if isinstance(obj.get("created_at"), str) else None)


class _LazyEmbedder:
    """The default embedding model, loaded on first use (a migration with no answer to compare loads nothing)."""

    def __init__(self) -> None:
        self._fn: Callable[[list[str]], Any] | None = None

    def __call__(self, texts: list[str]) -> Any:
        if self._fn is None:
            from tracelens.evals.runner import _default_embedder

            fn = _default_embedder()
            if fn is None:
                raise RuntimeError("behaves-like needs an embedding model and none is available (install "
                                   "tracelens[embed])")
            self._fn = fn
        return self._fn(texts)


def migrate_canaries(store_root: str | Path, get_trace: GetTrace, *, embedder: Callable[[list[str]], Any] | None = None,
                     note: Note | None = None) -> list[Migrated]:
    """Migrate every old canary set of the store (see the module docstring); ``note`` gets one line per set."""
    if not old_canary_files(store_root):
        return []
    from tracelens.evals.suite import writer_lock
    from tracelens.replay.storage import load_replays

    say = note or (lambda s: None)
    out: list[Migrated] = []
    with writer_lock(store_root):
        files = old_canary_files(store_root)  # another process may have migrated them while we waited
        if not files:
            return []
        replays = load_replays(store_root)
        ctx = GradeContext(embedder=embedder or _LazyEmbedder())
        for path in files:
            try:
                m = _migrate_one(Path(store_root), path, get_trace, replays, ctx)
            except (CanaryError, SuiteError) as e:
                say(f"canary set {path.stem} not migrated: {e}")
                continue
            out.append(m)
            say(m.message)
            for why in m.notes:
                say(f"  {m.name}: {why}")
    return out


def _suite_name(store_root: Path, name: str) -> str:
    """``name`` when free (or already a canary suite: a migration stopped half-way), else ``NAME-canary``."""
    for candidate in (name, f"{name}-canary"[:64]):
        p = suite_path(store_root, candidate)
        if not p.is_file() or is_canary(read_suite_file(p)[0]):
            return candidate
    raise CanaryError(f"suites {name!r} and {name + '-canary'!r} exist and are not canary sets; rename one and "
                      "run `tracelens canary migrate`")


def _migrate_one(store_root: Path, path: Path, get_trace: GetTrace, replays, ctx: GradeContext) -> Migrated:
    import polars as pl

    from tracelens.evals.runner import EvalRun, grade_answer, price_table, write_results

    old = read_old_canary(path)
    try:
        check_name(old.name)
    except SuiteError:
        old.name = path.stem
    name = _suite_name(store_root, check_name(old.name))
    fresh = not suite_path(store_root, name).is_file()
    added = add_traces(store_root, name, old.trace_ids, get_trace, canary_graders(), description=old.description)
    suite = added.suite
    suite.kind = CANARY_KIND
    suite.n = min(old.n, MAX_N)
    if fresh and old.created_at:
        suite.created_at = old.created_at  # the set's own creation time, not the migration's
    save_suite(store_root, suite)
    m = Migrated(name=old.name, suite=name, traces=len(old.trace_ids), cases=len(suite.cases),
                 skipped={k: v for k, v in added.skipped.items() if not v.startswith("already in the suite")})
    if name != old.name:
        m.notes.append(f"a suite named {old.name!r} already exists: the canary set is now suite {name!r}")
    if old.n > MAX_N:
        m.notes.append(f"n={old.n} is above a suite's maximum: the suite runs {MAX_N} repeats per case")
    for tid, why in m.skipped.items():
        m.notes.append(f"trace {tid} is not a case: {why}")
    rows = replays.filter(pl.col("canary") == old.name).sort("created_at") if replays.height else replays
    lost = 0
    prices = price_table("pinned")
    for (run_id,), df in (rows.group_by("canary_run_id", maintain_order=True) if rows.height else ()):
        if run_id is None:
            continue
        started = df["created_at"].min()
        repeats: dict[str, int] = {}
        run = EvalRun(run_id=str(run_id), suite=name, target="pinned", provider="pinned", n=1, started_at=started,
                      finished_at=df["created_at"].max(), planned=df.height, label=MIGRATED_LABEL)
        for r in df.iter_rows(named=True):
            case = suite.case(r["trace_id"])
            if case is None:
                lost += 1
                continue
            rep = repeats.get(case.id, 0)
            repeats[case.id] = rep + 1
            resp = Response(text=r["response_text"], stop_reason=r["stop_reason"], refusal=r["refusal"],
                            model_returned=r["model_returned"], input_tokens=r["input_tokens"],
                            output_tokens=r["output_tokens"], latency_ms=r["latency_ms"], error=r["error"],
                            raw=r["response_raw"])
            run.results.append(grade_answer(case, rep, resp, ctx, r["model_requested"] or case.model, "pinned",
                                            prices))
        if run.results:
            run.n = max(repeats.values())
            run.results.sort(key=lambda x: (x.case_id, x.repeat))
            write_results(store_root, run, suite)
            m.runs.append(run.run_id)
    if lost:
        m.notes.append(f"{lost} replay(s) of traces that are not cases were left out (they stay in the replays table)")
    m.moved_to = _move_aside(path)
    return m


def _move_aside(path: Path) -> Path:
    """Move a migrated canary file to ``canaries/migrated/`` (never over an earlier one)."""
    d = path.parent / MIGRATED_DIR
    d.mkdir(parents=True, exist_ok=True)
    dest = d / path.name
    if dest.exists():
        stamp = dt.datetime.now(dt.UTC).strftime("%Y%m%dT%H%M%S%f")
        dest = d / f"{path.stem}.{stamp}{path.suffix}"
    os.replace(path, dest)
    return dest
