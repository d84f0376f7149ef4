"""Eval runs: plan a suite against a target (requests, translation notes, cost), send it, grade it, store it.

Contract:

* ``plan_run(suite, target, n)`` decides, before anything is sent, what each
  case will send: for the ``pinned`` target, the case's own snapshot; for
  ``anthropic:MODEL``, that model; for OpenAI and OpenAI-compatible targets,
  the request translated by ``tracelens.evals.translate`` with every loss
  listed. A case that cannot be sent as it is (no pinned snapshot, a loss
  that would change what the model is asked) is planned as an *error*
  outcome with the reason, never sent changed. The plan carries the cost
  estimate (USD, None where a price is unknown) for the confirmation step.
* ``execute(plan)`` sends every case ``n`` times with bounded concurrency:
  Anthropic targets through the replay client (its retries, backoff and
  deadlines), OpenAI targets through ``OpenAITarget``; ``cancel`` stops it
  with the finished results kept (``interrupted``). A missing API key stops
  the run before anything is sent (``EvalError``). Each answer is labelled
  by our refusal detector and graded (``tracelens.evals.graders``); a
  grader that raises is a failed grader, a target error an ``error``
  outcome.
* ``write_results`` stores one row per (case, repeat) in the table
  ``<store>/evals/results``, by UTC day of the run's start, in one atomic
  append (``tracelens.appendtables``: a Delta Lake commit, or in the older
  layout a Parquet file renamed into place; response text scrubbed of
  secrets like every stored text), readable with polars, DuckDB or anything
  that reads Delta Lake; ``load_results`` reads them back and
  ``list_runs`` summarises the runs of a suite.
"""

from __future__ import annotations

import datetime as dt
import json
import math
import queue
import threading
import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import polars as pl
import pyarrow as pa

from tracelens.appendtables import append, read
from tracelens.evals.graders import GradeContext, grade_all
from tracelens.evals.model import Case, GradeResult, Response, Suite, ToolCall, case_outcome
from tracelens.evals.targets import TargetSpec
from tracelens.replay.pricing import PriceTable
from tracelens.secrets import scrub_text

RESULTS_DIR = ("evals", "results")
CHARS_PER_TOKEN = 3.5


class EvalError(Exception):
    """A run that cannot start (no API key, nothing to send); the message says what to do."""


@dataclass
class PlannedCase:
    """What one case will send to the target, or why it cannot be sent."""

    case: Case
    model: str | None
    body: dict[str, Any] | None
    notes: list[str] = field(default_factory=list)
    error: str | None = None
    cost_usd: float | None = None
    wire: dict[str, Any] | None = None
    """The body as it goes on the wire (the Chat Completions translation for OpenAI targets)."""


@dataclass
class RunPlan:
    """A suite planned against one target: per-case requests, notes and the cost estimate."""

    suite: Suite
    target: TargetSpec
    n: int
    cases: list[PlannedCase]

    @property
    def sendable(self) -> list[PlannedCase]:
        """Cases that will be sent."""
        return [p for p in self.cases if p.error is None]

    @property
    def requests(self) -> int:
        """Requests the run will send (before retries)."""
        return len(self.sendable) * self.n

    @property
    def estimated_cost_usd(self) -> float | None:
        """Estimated USD for the priced cases (None when no case could be priced)."""
        priced = [p.cost_usd for p in self.sendable if p.cost_usd is not None]
        return sum(priced) if priced else None

    @property
    def unpriced(self) -> int:
        """Cases whose model has no known price (their cost is not in the estimate)."""
        return sum(1 for p in self.sendable if p.cost_usd is None)

    def to_dict(self) -> dict[str, Any]:
        """JSON form (bodies left out: they are the suite's requests)."""
        return {"suite": self.suite.name, "target": self.target.name, "n": self.n, "requests": self.requests,
                "estimated_cost_usd": self.estimated_cost_usd, "unpriced_cases": self.unpriced,
                "cases": [{"case": p.case.id, "model": p.model, "notes": p.notes, "error": p.error,
                           "cost_usd": p.cost_usd} for p in self.cases]}


@dataclass
class CaseResult:
    """One repeat of one case: the answer, each grader's judgement, the outcome and score."""

    case_id: str
    repeat: int
    outcome: str
    score: float
    response: Response
    grades: list[GradeResult] = field(default_factory=list)
    model: str | None = None
    cost_usd: float | None = None
    notes: list[str] = field(default_factory=list)


@dataclass
class EvalRun:
    """A finished (or interrupted) run of a suite against a target."""

    run_id: str
    suite: str
    target: str
    provider: str
    n: int
    started_at: dt.datetime
    finished_at: dt.datetime | None = None
    results: list[CaseResult] = field(default_factory=list)
    planned: int = 0
    interrupted: bool = False
    label: str | None = None
    saved: Path | None = None

    def count(self, outcome: str) -> int:
        """Repeats with this outcome (pass / fail / error)."""
        return sum(1 for r in self.results if r.outcome == outcome)

    @property
    def cost_usd(self) -> float | None:
        """What the answered requests cost at list price (None when none could be priced)."""
        costs = [r.cost_usd for r in self.results if r.cost_usd is not None]
        return sum(costs) if costs else None


# ---------------------------------------------------------------------------------------------- planning


def price_table(provider: str) -> PriceTable:
    """The list prices a provider's runs are costed with (read once per plan or run, not per answer)."""
    if provider in ("openai", "compatible"):
        from tracelens.evals.openai_target import openai_prices

        return openai_prices()
    from tracelens.replay.pricing import load_prices

    return load_prices()


def _estimate(model: str, body: dict[str, Any], case: Case, n: int, provider: str, prices: PriceTable) -> float | None:
    chars = len(json.dumps(body, ensure_ascii=False))
    tin = math.ceil(chars / CHARS_PER_TOKEN)
    # the recorded answer's length is the best guess of this one's; max_tokens is only an upper bound
    tout = math.ceil(len(case.reference) / CHARS_PER_TOKEN) if case.reference else int(body.get("max_tokens") or 0)
    if provider in ("openai", "compatible"):
        from tracelens.evals.openai_target import estimate_cost

        one = estimate_cost(model, tin, tout, prices=prices)
        return None if one is None else one * n
    from tracelens.replay.pricing import estimate_cost as anthropic_cost

    return anthropic_cost(model, n=n, body_chars=chars, recorded_input_tokens=tin, recorded_output_tokens=tout,
                          max_tokens=body.get("max_tokens"), prices=prices).usd


def plan_run(suite: Suite, target: TargetSpec, n: int = 1, *, env: dict[str, str] | None = None) -> RunPlan:
    """Plan ``suite`` against ``target`` with ``n`` repeats per case (nothing is sent)."""
    if n < 1:
        raise ValueError("n must be >= 1")
    out = []
    sender = _openai_sender(target, env) if target.provider in ("openai", "compatible") else None
    prices = price_table(target.provider)
    for case in suite.cases:
        model = target.model or case.model
        notes: list[str] = []
        if not model:
            out.append(PlannedCase(case, None, None, error="the case names no pinned snapshot: give it a 'model' "
                                                          "or run it with --target anthropic:MODEL"))
            continue
        body: dict[str, Any] = {"model": model, **{k: v for k, v in case.request.items() if k != "model"}}
        body.pop("stream", None)
        wire = body
        if sender is not None:
            tr = sender.plan(body)
            notes.extend(tr.losses)
            if tr.blocking:
                out.append(PlannedCase(case, model, None, notes,
                                       error="not translatable without changing the request: " + "; ".join(tr.losses)))
                continue
            wire = tr.body
        out.append(PlannedCase(case, model, body, notes, cost_usd=_estimate(model, wire, case, n, target.provider, prices),
                               wire=wire))
    return RunPlan(suite, target, n, out)


def _openai_sender(target: TargetSpec, env: dict[str, str] | None):
    from tracelens.evals.openai_target import OpenAITarget

    return OpenAITarget(target.model, base_url=target.base_url, api_key_env=target.api_key_env,
                        flavor="compatible" if target.provider == "compatible" else "openai", env=env)


# ---------------------------------------------------------------------------------------------- sending


def _response_from_replay(r: Any) -> Response:
    calls: list[ToolCall] = []
    if r.response_raw and r.error is None:
        try:
            content = json.loads(r.response_raw).get("content") or []
        except (ValueError, AttributeError):
            content = []
        calls = [ToolCall(b.get("name") or "", b.get("input")) for b in content
                 if isinstance(b, dict) and b.get("type") == "tool_use"]
    return Response(text=r.response_text, tool_calls=calls, stop_reason=r.stop_reason, refusal=r.refusal,
                    model_returned=r.model_returned, input_tokens=r.input_tokens, output_tokens=r.output_tokens,
                    latency_ms=r.latency_ms, error=r.error, raw=r.response_raw)


Done = Callable[[str, int, Response], None]


def _send_anthropic(plan: RunPlan, jobs: list[PlannedCase], env, concurrency: int, cancel: threading.Event,
                    done: Done) -> bool:
    from tracelens.replay.client import ReplayClient
    from tracelens.replay.request import ReplayError, ReplayPlan, dumps_body

    client = ReplayClient(api_key_env=plan.target.api_key_env or "ANTHROPIC_API_KEY",
                          base_url=plan.target.base_url, env=env, concurrency=concurrency)
    plans = [ReplayPlan(trace_id=p.case.id, model=p.model or "", body=dumps_body(p.body), n=plan.n,
                        reconstructed=False) for p in jobs]
    seen: dict[str, int] = {}
    notified: set[str] = set()
    lock = threading.Lock()

    def on_result(r) -> None:
        with lock:
            rep = seen.get(r.trace_id, 0)
            seen[r.trace_id] = rep + 1
            notified.add(r.replay_id)
        done(r.trace_id, rep, _response_from_replay(r))

    try:
        run = client.run(plans, cancel=cancel, on_result=on_result)
    except ReplayError as e:  # no key: nothing was sent
        raise EvalError(str(e)) from None
    for r in run.results:  # answers that finished while a stop was under way: sent (and billed), so kept
        if r.replay_id not in notified:
            on_result(r)
    return run.interrupted


def _send_openai(plan: RunPlan, jobs: list[PlannedCase], env, concurrency: int, cancel: threading.Event,
                 done: Done) -> bool:
    from tracelens.evals.openai_target import MissingKeyError
    from tracelens.replay.transport import Cancelled

    sender = _openai_sender(plan.target, env)
    try:
        sender.check_key()
    except MissingKeyError as e:  # nothing was sent
        raise EvalError(str(e)) from None
    todo: queue.SimpleQueue[tuple[PlannedCase, int]] = queue.SimpleQueue()
    for p in jobs:
        for rep in range(plan.n):
            todo.put((p, rep))

    def worker() -> None:
        while not cancel.is_set():
            try:
                p, rep = todo.get_nowait()
            except queue.Empty:
                return
            try:
                resp = sender.send(p.body, cancel)
            except Cancelled:
                return  # stopped before it finished: not a result
            except Exception as e:  # noqa: BLE001 - reported on the case, the run goes on
                resp = Response(error=f"{type(e).__name__}: {e}")
            done(p.case.id, rep, resp)

    threads = [threading.Thread(target=worker, daemon=True, name=f"tracelens-eval-{i}")
               for i in range(max(1, min(concurrency, len(jobs) * plan.n)))]
    for t in threads:
        t.start()
    try:
        for t in threads:
            while t.is_alive():
                t.join(0.1)
    except KeyboardInterrupt:
        cancel.set()
    return cancel.is_set()


def _context(plan: RunPlan, suite_dir: Path | None, embedder, judge) -> GradeContext:
    needs_vectors = any(g.type in ("similar", "behaves-like") for p in plan.cases for g in p.case.graders)
    if embedder is None and needs_vectors:
        embedder = _default_embedder()
    return GradeContext(suite_dir=suite_dir, embedder=embedder, judge=judge)


def _default_embedder():
    """The default sentence-transformers model when the embed extra is installed (None otherwise: the similarity
    graders then report that they cannot run, rather than judging by another measure)."""
    from tracelens.extras import has_extra

    if not has_extra("embed"):
        return None
    from tracelens.embed.models import get_embedder

    model = get_embedder(None)
    return model.encode


def execute(plan: RunPlan, *, env: dict[str, str] | None = None, concurrency: int = 4,
            cancel: threading.Event | None = None, on_result: Callable[[CaseResult], None] | None = None,
            embedder: Callable[[list[str]], Any] | None = None, judge: Any = None,
            suite_dir: Path | None = None, label: str | None = None) -> EvalRun:
    """Send the plan, grade every answer and return the run (not yet stored: see ``write_results``)."""
    cancel = cancel or threading.Event()
    run = EvalRun(run_id=uuid.uuid4().hex[:12], suite=plan.suite.name, target=plan.target.name,
                  provider=plan.target.provider, n=plan.n, started_at=dt.datetime.now(dt.UTC),
                  planned=len(plan.cases) * plan.n, label=label)
    by_id = {p.case.id: p for p in plan.cases}
    ctx = _context(plan, suite_dir, embedder, judge)
    lock = threading.Lock()

    prices = price_table(plan.target.provider)

    def finish(case_id: str, rep: int, resp: Response) -> None:
        p = by_id[case_id]
        result = grade_answer(p.case, rep, resp, ctx, p.model, plan.target.provider, prices, p.notes)
        with lock:
            run.results.append(result)
        if on_result is not None:
            on_result(result)

    for p in plan.cases:  # cases that cannot be sent are error outcomes, counted apart from fails
        if p.error is not None:
            for rep in range(plan.n):
                finish(p.case.id, rep, Response(error=p.error))
    jobs = plan.sendable
    if jobs:
        send = _send_openai if plan.target.provider in ("openai", "compatible") else _send_anthropic
        try:
            run.interrupted = send(plan, jobs, env, concurrency, cancel, finish)
        except KeyboardInterrupt:
            cancel.set()
            run.interrupted = True
    run.results.sort(key=lambda r: (r.case_id, r.repeat))
    run.finished_at = dt.datetime.now(dt.UTC)
    return run


def grade_answer(case: Case, rep: int, resp: Response, ctx: GradeContext, model: str | None, provider: str,
                 prices: PriceTable, notes: list[str] | None = None) -> CaseResult:
    """One answer as a result: labelled by our refusal detector when the target gave no label, graded (a target
    error is not graded), its outcome and score, and what it cost with any judge calls."""
    if resp.ok and resp.refusal is None:
        from tracelens.replay.labels import refusal_label

        resp.refusal = refusal_label(resp.text, resp.stop_reason)
    grades = grade_all(case.graders, resp, case, ctx) if resp.ok else []
    outcome, score = case_outcome(resp, grades)
    cost = None
    if resp.ok and resp.input_tokens is not None and resp.output_tokens is not None and model:
        cost = _cost(provider, resp.model_returned or model, resp.input_tokens, resp.output_tokens, prices)
    judged = [g.cost_usd for g in grades if g.cost_usd is not None]  # llm-judge calls cost money too
    if judged:
        cost = (cost or 0.0) + sum(judged)
    return CaseResult(case.id, rep, outcome, score, resp, grades, model, cost, list(notes or []))


def _cost(provider: str, model: str, tin: int, tout: int, prices: PriceTable) -> float | None:
    if provider in ("openai", "compatible"):
        from tracelens.evals.openai_target import estimate_cost

        return estimate_cost(model, tin, tout, prices=prices)
    hit = prices.lookup(model)
    return None if hit is None else (tin * hit[1].input + tout * hit[1].output) / 1_000_000


# ---------------------------------------------------------------------------------------------- storage

RESULT_SCHEMA = pa.schema([
    pa.field("suite", pa.string(), nullable=False),
    pa.field("run_id", pa.string(), nullable=False),
    pa.field("run_started_at", pa.timestamp("us", tz="UTC"), nullable=False),
    pa.field("label", pa.string()),
    pa.field("target", pa.string(), nullable=False),
    pa.field("provider", pa.string(), nullable=False),
    pa.field("n", pa.int32(), nullable=False),
    pa.field("case_id", pa.string(), nullable=False),
    pa.field("repeat", pa.int32(), nullable=False),
    pa.field("outcome", pa.string(), nullable=False),
    pa.field("score", pa.float64(), nullable=False),
    pa.field("model", pa.string()),
    pa.field("model_returned", pa.string()),
    pa.field("system_fingerprint", pa.string()),
    pa.field("tags", pa.string()),
    pa.field("trace_id", pa.string()),
    pa.field("response_text", pa.string()),
    pa.field("tool_calls", pa.string()),
    pa.field("stop_reason", pa.string()),
    pa.field("refusal", pa.string()),
    pa.field("latency_ms", pa.float64()),
    pa.field("input_tokens", pa.int64()),
    pa.field("output_tokens", pa.int64()),
    pa.field("cost_usd", pa.float64()),
    pa.field("error", pa.string()),
    pa.field("grades", pa.string()),
    pa.field("notes", pa.string()),
])


def _scrub(text: str | None) -> str | None:
    return None if text is None else scrub_text(text)


def result_rows(run: EvalRun, suite: Suite | None = None) -> list[dict[str, Any]]:
    """The run as rows of ``RESULT_SCHEMA`` (JSON-encoded grades, tags, tool calls and notes)."""
    cases = {c.id: c for c in suite.cases} if suite else {}
    rows = []
    for r in run.results:
        case = cases.get(r.case_id)
        resp = r.response
        rows.append({
            "suite": run.suite, "run_id": run.run_id, "run_started_at": run.started_at, "label": run.label,
            "target": run.target, "provider": run.provider, "n": run.n, "case_id": r.case_id, "repeat": r.repeat,
            "outcome": r.outcome, "score": float(r.score), "model": r.model, "model_returned": resp.model_returned,
            "system_fingerprint": getattr(resp, "system_fingerprint", None),
            "tags": json.dumps(case.tags if case else {}, ensure_ascii=False),
            "trace_id": case.trace_id if case else None, "response_text": _scrub(resp.text),
            "tool_calls": json.dumps([{"name": c.name, "input": c.input} for c in resp.tool_calls],
                                     ensure_ascii=False, default=str),
            "stop_reason": resp.stop_reason, "refusal": resp.refusal, "latency_ms": resp.latency_ms,
            "input_tokens": resp.input_tokens, "output_tokens": resp.output_tokens, "cost_usd": r.cost_usd,
            "error": _scrub(resp.error), "grades": json.dumps([g.to_dict() for g in r.grades], ensure_ascii=False),
            "notes": json.dumps(r.notes, ensure_ascii=False),
        })
    return rows


def write_results(store_root: str | Path, run: EvalRun, suite: Suite | None = None) -> Path | None:
    """Store the run's rows in one atomic append (``tracelens.appendtables``); None when it has no results."""
    rows = result_rows(run, suite)
    if not rows:
        return None
    from tracelens.evals.suite import writer_lock  # held already by a canary migration: taken once per thread

    written = append(store_root, "/".join(RESULTS_DIR), pa.Table.from_pylist(rows, schema=RESULT_SCHEMA),
                     "run_started_at", lock=writer_lock)
    run.saved = written[0] if written else None
    return run.saved


def load_results(store_root: str | Path, suite: str | None = None, run_ids: Iterable[str] | None = None) -> pl.DataFrame:
    """Every stored result row (optionally of one suite / some runs), as a polars frame with ``RESULT_SCHEMA``."""
    t = read(store_root, "/".join(RESULTS_DIR))
    empty = pl.from_arrow(RESULT_SCHEMA.empty_table())
    if t is None or not t.num_rows:
        return empty
    df = pl.concat([empty, pl.from_arrow(t)], how="diagonal_relaxed")
    if suite is not None:
        df = df.filter(pl.col("suite") == suite)
    if run_ids is not None:
        df = df.filter(pl.col("run_id").is_in(list(run_ids)))
    return df.sort(["run_started_at", "case_id", "repeat"])


@dataclass
class RunInfo:
    """One stored run, summarised."""

    run_id: str
    suite: str
    target: str
    provider: str
    started_at: dt.datetime
    label: str | None
    n: int
    cases: int
    passed: int
    failed: int
    errors: int

    def to_dict(self) -> dict[str, Any]:
        """JSON form."""
        return {"run_id": self.run_id, "suite": self.suite, "target": self.target, "provider": self.provider,
                "started_at": self.started_at.isoformat(), "label": self.label, "n": self.n, "cases": self.cases,
                "passed": self.passed, "failed": self.failed, "errors": self.errors}


def list_runs(store_root: str | Path, suite: str | None = None, df: pl.DataFrame | None = None) -> list[RunInfo]:
    """The stored runs (of one suite), oldest first."""
    df = load_results(store_root, suite) if df is None else df
    if df.is_empty():
        return []
    g = (df.group_by("run_id", maintain_order=True)
         .agg(pl.col("suite").first(), pl.col("target").first(), pl.col("provider").first(),
              pl.col("run_started_at").first(), pl.col("label").first(), pl.col("n").first(),
              pl.col("case_id").n_unique().alias("cases"), (pl.col("outcome") == "pass").sum().alias("passed"),
              (pl.col("outcome") == "fail").sum().alias("failed"), (pl.col("outcome") == "error").sum().alias("errors"))
         .sort("run_started_at"))
    return [RunInfo(r["run_id"], r["suite"], r["target"], r["provider"], r["run_started_at"], r["label"], r["n"],
                    r["cases"], r["passed"], r["failed"], r["errors"]) for r in g.iter_rows(named=True)]


def outcomes(df: pl.DataFrame, run_id: str, column: str = "outcome") -> dict[str, list[bool | None]]:
    """Per-case outcomes of one run for the statistics: True pass, False fail, None error."""
    out: dict[str, list[bool | None]] = {}
    for case_id, outcome in df.filter(pl.col("run_id") == run_id).select("case_id", column).iter_rows():
        out.setdefault(case_id, []).append(None if outcome == "error" else outcome == "pass")
    return out
