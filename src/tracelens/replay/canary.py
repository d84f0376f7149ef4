"""Canary sets: named lists of traces re-run against their pinned snapshots.

Contract:

* A canary set is JSON at ``<store>/canaries/<name>.json``:
  ``{"name", "trace_ids": [...], "n", "description", "created_at",
  "updated_at"}``, written atomically (temp file + ``os.replace``). Names are
  1-64 characters of ``[A-Za-z0-9._-]`` starting with a letter or digit.
* ``run_canary`` plans every trace (traces that cannot be planned are
  reported in ``skipped`` with the reason, never silently dropped), replays
  each ``n`` times, tags every result with the canary name and a fresh
  ``run_id``, writes them to the replays table, and returns a ``CanaryRun``
  with per-trace verdicts against the originals. Planning, sending, saving
  and judging are ``replay.session``'s, the same as `tracelens replay` and
  the TUI, so a canary's verdicts are those the other front ends would give.
* ``compare_runs`` matches each prompt (trace id) of one run against the
  previous run of the same canary (or two named runs) and returns a
  ``CanaryComparison`` of ``PromptComparison`` rows: refusal rates and flip,
  cross-run similarity versus within-run similarity, and length ratio.
  A prompt is ``changed`` when its majority refused/answered state flipped,
  or when the mean similarity between the two runs' replays is more than
  0.10 below the lower of the two within-run similarities.

Traces are fetched through a ``get_trace(trace_id) -> dict | None`` callable
(the CLI passes ``Store(path).get``), so this module does not depend on the
store implementation.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import re
import statistics
import threading
import uuid
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl

from tracelens import atomic
from tracelens.modelcatalog import load_catalog
from tracelens.replay.client import ReplayClient, ReplayResult
from tracelens.replay.labels import is_refused
from tracelens.replay.pricing import PriceTable
from tracelens.replay.request import ReplayError, ReplayPlan
from tracelens.replay.session import ReplaySession, plan_session, run_session
from tracelens.replay.storage import load_replays
from tracelens.replay.verdict import OUTSIDE_MARGIN, Embedder, Verdict, similarity_matrix
from tracelens.store import store_lock

CANARIES_DIR = "canaries"
NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")

GetTrace = Callable[[str], "dict[str, Any] | None"]


class CanaryError(ReplayError):
    """A canary set that cannot be read, written or run (message is user-facing)."""


@dataclass
class CanarySet:
    """A named set of traces replayed together, ``n`` times each, run after run."""

    name: str
    trace_ids: list[str] = field(default_factory=list)
    n: int = 5
    description: str | None = None
    created_at: str = ""
    updated_at: str = ""

    def to_dict(self) -> dict[str, Any]:
        """JSON form, as stored in ``<store>/canaries/<name>.json``."""
        return asdict(self)


def _now() -> str:
    return dt.datetime.now(dt.UTC).isoformat(timespec="seconds")


def canary_path(store_path: str | os.PathLike, name: str) -> Path:
    """Where canary ``name`` is stored; ``CanaryError`` for a name that is not a safe file name."""
    if not NAME_RE.match(name or ""):
        raise CanaryError(
            f"invalid canary name {name!r}: use 1-64 letters, digits, '.', '_' or '-', starting with a letter or digit"
        )
    return Path(store_path) / CANARIES_DIR / f"{name}.json"


def save_canary(store_path: str | os.PathLike, canary: CanarySet) -> Path:
    """Write the canary set atomically (temporary file, then rename); returns its path."""
    path = canary_path(store_path, canary.name)
    path.parent.mkdir(parents=True, exist_ok=True)
    return atomic.write_json(path, canary.to_dict())


def load_canary(store_path: str | os.PathLike, name: str) -> CanarySet:
    """The stored canary set ``name``; ``CanaryError`` naming the command to create it when missing."""
    path = canary_path(store_path, name)
    try:
        obj = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise CanaryError(
            f"no canary set named {name!r} (create it with `tracelens canary add {name} TRACE_ID...`)"
        ) from None
    except ValueError as e:
        raise CanaryError(f"{path} is not valid JSON: {e}") from e
    known = {k: obj[k] for k in CanarySet.__dataclass_fields__ if k in obj}
    return CanarySet(**known)


def add_to_canary(
    store_path: str | os.PathLike,
    name: str,
    trace_ids: Iterable[str],
    *,
    n: int | None = None,
    description: str | None = None,
) -> CanarySet:
    """Create canary ``name`` or append ``trace_ids`` to it (duplicates ignored, order kept)."""
    # read-modify-write under the store lock: two concurrent adds both land
    with store_lock(store_path):
        return _add_to_canary(store_path, name, trace_ids, n=n, description=description)


def _add_to_canary(store_path, name, trace_ids, *, n, description) -> CanarySet:
    try:
        canary = load_canary(store_path, name)
    except CanaryError:
        if not canary_path(store_path, name).exists():
            canary = CanarySet(name=name, created_at=_now())
        else:
            raise
    for tid in trace_ids:
        if tid not in canary.trace_ids:
            canary.trace_ids.append(tid)
    if n is not None:
        if n < 1:
            raise CanaryError("n must be >= 1")
        canary.n = n
    if description is not None:
        canary.description = description
    canary.updated_at = _now()
    save_canary(store_path, canary)
    return canary


def list_canaries(store_path: str | os.PathLike) -> list[CanarySet]:
    """Every valid canary set of the store, by name (unreadable files are skipped)."""
    d = Path(store_path) / CANARIES_DIR
    if not d.is_dir():
        return []
    out = []
    for p in sorted(d.glob("*.json")):
        if p.name.startswith("."):
            continue
        try:
            out.append(load_canary(store_path, p.stem))
        except CanaryError:
            continue  # not a valid canary file name or body; `canary run` on it reports why
    return out


@dataclass
class CanaryRun:
    """One run of a canary set: its plans, results, skipped traces, verdicts and the files written."""

    name: str
    run_id: str
    started_at: dt.datetime
    plans: list[ReplayPlan] = field(default_factory=list)
    results: list[ReplayResult] = field(default_factory=list)
    skipped: dict[str, str] = field(default_factory=dict)
    verdicts: list[Verdict] = field(default_factory=list)
    interrupted: bool = False
    files: list[Path] = field(default_factory=list)


def plan_canary(
    store_path: str | os.PathLike,
    name: str,
    get_trace: GetTrace,
    *,
    n: int | None = None,
    model: str | None = None,
    prices: PriceTable | None = None,
) -> tuple[CanarySet, ReplaySession]:
    """The canary set and a planned ``ReplaySession`` of its traces (missing or unreplayable ones in ``skipped``)."""
    canary = load_canary(store_path, name)
    found: list[dict[str, Any] | tuple[str, None]] = []
    for tid in canary.trace_ids:
        trace = get_trace(tid)
        found.append((tid, None) if trace is None else trace)
    session = plan_session(found, n=n or canary.n, model=model, prices=prices, catalog=load_catalog(store_path))
    return canary, session


def run_canary(
    store_path: str | os.PathLike,
    name: str,
    get_trace: GetTrace,
    client: ReplayClient,
    *,
    n: int | None = None,
    model: str | None = None,
    prices: PriceTable | None = None,
    cancel: threading.Event | None = None,
    embedder: Embedder | None = None,
    on_result: Callable[[ReplayResult], None] | None = None,
    planned: tuple[CanarySet, ReplaySession] | None = None,
) -> CanaryRun:
    """Replay every trace of canary ``name`` and store the tagged results (also when interrupted)."""
    _, session = planned or plan_canary(store_path, name, get_trace, n=n, model=model, prices=prices)
    run_id = uuid.uuid4().hex[:12]
    started = dt.datetime.now(dt.UTC)
    run_session(session, client, cancel=cancel, on_result=on_result, save_to=store_path, canary=name,
                canary_run_id=run_id, embedder=embedder)
    if session.save_error:  # the comparison reads the stored results: a run that was not stored is a failed run
        raise CanaryError(f"canary {name!r} run {run_id}: results {session.save_error}")
    return CanaryRun(name=name, run_id=run_id, started_at=started, plans=session.plans, results=session.results,
                     skipped=session.skipped, verdicts=session.verdicts, interrupted=session.interrupted,
                     files=session.saved)


@dataclass
class PromptComparison:
    """One prompt (trace) of a canary run against the previous run: refusals, similarity, length."""

    trace_id: str
    n_current: int
    n_previous: int
    refusal_rate_current: float | None
    refusal_rate_previous: float | None
    refusal_flip: str | None  # "refused->answered" | "answered->refused" | None
    similarity_cross: float | None
    similarity_current: float | None
    similarity_previous: float | None
    length_ratio: float | None  # median current length / median previous length
    changed: bool
    reasons: list[str] = field(default_factory=list)


@dataclass
class CanaryComparison:
    """A canary run compared with the previous one (or a named run), prompt by prompt."""

    name: str
    run_id: str
    previous_run_id: str | None
    prompts: list[PromptComparison] = field(default_factory=list)

    @property
    def changed(self) -> list[PromptComparison]:
        """The prompts whose behaviour changed between the two runs."""
        return [p for p in self.prompts if p.changed]

    def to_dict(self) -> dict[str, Any]:
        """JSON form (`tracelens canary compare --json`)."""
        return asdict(self)


def canary_runs(store_path: str | os.PathLike, name: str) -> list[tuple[str, dt.datetime, int]]:
    """(run_id, first created_at, replay count) for each stored run of ``name``, oldest first."""
    df = load_replays(store_path).filter(pl.col("canary") == name)
    if df.height == 0:
        return []
    g = (
        df.group_by("canary_run_id")
        .agg(pl.col("created_at").min().alias("started"), pl.len().alias("n"))
        .sort("started")
    )
    return [(r["canary_run_id"], r["started"], r["n"]) for r in g.iter_rows(named=True)]


def _mean_offdiag(sim: np.ndarray) -> float | None:
    m = sim.shape[0]
    if m < 2:
        return None
    return float((sim.sum() - np.trace(sim)) / (m * (m - 1)))


def _refusal_rate(rows: list[dict[str, Any]]) -> float | None:
    return sum(is_refused(r.get("refusal")) for r in rows) / len(rows) if rows else None


def compare_prompt(
    trace_id: str,
    current: list[dict[str, Any]],
    previous: list[dict[str, Any]],
    embedder: Embedder | None = None,
) -> PromptComparison:
    """Compare one prompt's replays of two runs (failed replays left out); ``changed`` says if it moved."""
    cur = [r for r in current if not r.get("error")]
    prev = [r for r in previous if not r.get("error")]
    rc, rp = _refusal_rate(cur), _refusal_rate(prev)
    pc = PromptComparison(trace_id, len(cur), len(prev), rc, rp, None, None, None, None, None, False)
    if not cur or not prev:
        pc.reasons.append("no successful replays in " + ("this run" if not cur else "the previous run"))
        return pc
    if (rc > 0.5) != (rp > 0.5):
        pc.refusal_flip = "refused->answered" if rp > 0.5 else "answered->refused"
        pc.changed = True
        pc.reasons.append(f"refusal rate {rp:.0%} -> {rc:.0%}")
    ct = [r.get("response_text") or "" for r in cur]
    pt = [r.get("response_text") or "" for r in prev]
    sim, _ = similarity_matrix(ct + pt, embedder)
    k = len(ct)
    pc.similarity_cross = float(sim[:k, k:].mean())
    pc.similarity_current = _mean_offdiag(sim[:k, :k])
    pc.similarity_previous = _mean_offdiag(sim[k:, k:])
    med_prev = statistics.median(len(t) for t in pt)
    if med_prev:
        pc.length_ratio = statistics.median(len(t) for t in ct) / med_prev
    within = [s for s in (pc.similarity_current, pc.similarity_previous) if s is not None]
    if within and pc.similarity_cross < min(within) - OUTSIDE_MARGIN:
        pc.changed = True
        pc.reasons.append(
            f"answers moved: similarity across runs {pc.similarity_cross:.3f} < within-run {min(within):.3f} "
            f"− {OUTSIDE_MARGIN}"
        )
    return pc


def compare_runs(
    store_path: str | os.PathLike,
    name: str,
    *,
    run_id: str | None = None,
    previous_run_id: str | None = None,
    embedder: Embedder | None = None,
) -> CanaryComparison:
    """Compare a canary run (default: the latest) with an earlier one (default: the one before it)."""
    runs = [r[0] for r in canary_runs(store_path, name)]
    if not runs:
        raise CanaryError(f"canary {name!r} has no stored runs (run `tracelens canary run {name}`)")
    run_id = run_id or runs[-1]
    if run_id not in runs:
        raise CanaryError(f"canary {name!r} has no run {run_id!r}")
    if previous_run_id is None:
        idx = runs.index(run_id)
        previous_run_id = runs[idx - 1] if idx > 0 else None
    elif previous_run_id not in runs:
        raise CanaryError(f"canary {name!r} has no run {previous_run_id!r}")
    df = load_replays(store_path).filter(pl.col("canary") == name)
    cur = df.filter(pl.col("canary_run_id") == run_id)
    out = CanaryComparison(name=name, run_id=run_id, previous_run_id=previous_run_id)
    prev = df.filter(pl.col("canary_run_id") == previous_run_id) if previous_run_id else df.clear()
    trace_ids = list(dict.fromkeys(cur["trace_id"].to_list() + prev["trace_id"].to_list()))
    for tid in trace_ids:
        c = cur.filter(pl.col("trace_id") == tid).to_dicts()
        p = prev.filter(pl.col("trace_id") == tid).to_dicts()
        out.prompts.append(compare_prompt(tid, c, p, embedder))
    return out
