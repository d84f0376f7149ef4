"""A trace in its context: what had changed around it, why it is a refusal, which traces are like it.

Headless (no click, no textual): `tracelens show --context`, `tracelens
similar TRACE` and the TUI's trace screen call these same functions.

Contract:

* ``trace_context(store, trace)`` tells whether the system prompt or the
  served snapshot had just changed when a trace was made: the prompt versions
  of the trace's app and the snapshots of its model family (first/last seen,
  trace counts), the trace's position in each, a unified diff to the previous
  prompt, and notes in plain words. ``TraceContext.to_dict()`` is its JSON form.
* ``same_prompt_traces`` lists traces with the identical ``prompt_hash`` in
  any week, with a per-week summary.
* ``similar_traces`` asks ``tracelens.embed`` for the nearest neighbours of
  the trace's prompt (±28 days) using only stored vectors, and raises
  ``NotAvailable`` naming the command to run when there are none.
* ``refusal_explanation`` says why a trace is labelled a refusal and where in
  the response (spans of the visible text).
* ``word_diff`` and ``unified_diff`` are the diffs shown between two texts.
* ``context_report(store, trace)`` gathers the first three for one trace
  (what `tracelens show --context` prints); ``ContextReport.to_dict()`` is
  its JSON form.

All timestamps are UTC.
"""

from __future__ import annotations

import datetime as dt
import difflib
import re
from dataclasses import asdict, dataclass, field
from typing import Any

import polars as pl

from tracelens.extras import NotAvailable
from tracelens.query import embedding_model, empty_frame, hits_frame
from tracelens.store import Store
from tracelens.textsafe import visible

# --------------------------------------------------------------------------- context: prompt and snapshot history


@dataclass(frozen=True)
class Version:
    """One distinct value (a system prompt or a served model) over time."""

    number: int  # 1 = oldest
    key: str | None  # system_prompt_hash or model id
    first_seen: dt.datetime
    last_seen: dt.datetime
    traces: int


@dataclass
class TraceContext:
    """What had changed around a trace: its system prompt version and served snapshot."""

    segment: str  # the app the histories are computed over
    prompt_versions: list[Version]
    prompt_current: int | None  # index into prompt_versions
    prompt_text: str | None
    previous_prompt_text: str | None
    prompt_diff: str  # unified diff previous -> this version ('' when no previous)
    models: list[Version]
    model_current: int | None
    notes: list[str] = field(default_factory=list)
    templated: bool = False  # too many distinct prompts to list: probably templated per request

    @property
    def prompt_version(self) -> Version | None:
        """The system-prompt version the trace used (None when it is not in the history)."""
        return None if self.prompt_current is None else self.prompt_versions[self.prompt_current]

    @property
    def previous_version(self) -> Version | None:
        """The version before the trace's one (None for the first, or when unknown)."""
        i = self.prompt_current
        return None if i is None or i == 0 else self.prompt_versions[i - 1]

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form (datetimes stay datetimes; the CLI's JSON writer renders them ISO 8601)."""
        d = asdict(self)
        d["prompt_version_number"] = None if self.prompt_version is None else self.prompt_version.number
        d["served_snapshot"] = None if self.model_current is None else self.models[self.model_current].key
        return d


MAX_VERSIONS = 40
RECENT_CHANGE = dt.timedelta(days=7)


def _ago(d: dt.timedelta) -> str:
    s = d.total_seconds()
    if s < 3600:
        return f"{max(1, round(s / 60))} min"
    if s < 2 * 86400:
        h, m = divmod(round(s / 60), 60)
        return f"{h} h {m:02d} min" if m else f"{h} h"
    return f"{s / 86400:.1f} days"


def _versions(df: pl.DataFrame, key: str) -> list[Version]:
    df = df.sort("first", key, nulls_last=True)
    return [
        Version(i + 1, k, first, last, n)
        for i, (k, first, last, n) in enumerate(df.select(key, "first", "last", "n").iter_rows())
    ]


def unified_diff(old: str | None, new: str | None, old_name: str, new_name: str, max_lines: int = 400) -> str:
    """A unified diff of two texts ('' when equal), capped at ``max_lines`` lines."""
    a = (old or "").splitlines()
    b = (new or "").splitlines()
    lines = list(difflib.unified_diff(a, b, old_name, new_name, n=2, lineterm=""))
    if len(lines) > max_lines:
        lines = lines[:max_lines] + [f"… {len(lines) - max_lines} more diff lines"]
    return "\n".join(lines)


def trace_context(store: Store, trace: dict) -> TraceContext:
    """System-prompt and snapshot history of the trace's app, positioned at the trace."""
    app = trace.get("app")
    ts: dt.datetime = trace["timestamp"]
    seg = pl.col("app").is_null() if app is None else pl.col("app") == app
    base = store.scan().filter(seg)
    agg = [pl.col("timestamp").min().alias("first"), pl.col("timestamp").max().alias("last"), pl.len().alias("n")]
    prompts_lf = base.group_by("system_prompt_hash").agg(agg)
    family = trace.get("model_family")
    mbase = base.filter(pl.col("model_family") == family) if family else base
    # errors carry no returned model: they are not a "snapshot" in this history
    models_lf = mbase.filter(pl.col("model_returned").is_not_null()).group_by("model_returned").agg(agg)
    prompts, models = pl.collect_all([prompts_lf, models_lf])
    versions = _versions(prompts, "system_prompt_hash")
    mversions = _versions(models, "model_returned")
    h = trace.get("system_prompt_hash")
    cur = next((i for i, v in enumerate(versions) if v.key == h), None)
    mcur = next((i for i, v in enumerate(mversions) if v.key == trace.get("model_returned")), None)
    templated = len(versions) > MAX_VERSIONS
    prev_text = None
    diff = ""
    notes: list[str] = []
    label = f"app {app}" if app else "traces without an app"
    if cur is not None and cur > 0:
        prev = versions[cur - 1]
        row = (
            store.scan(since=prev.first_seen, until=prev.first_seen + dt.timedelta(microseconds=1))
            .filter(seg & ((pl.col("system_prompt_hash") == prev.key) if prev.key else pl.col("system_prompt_hash").is_null()))
            .select("system_prompt").head(1).collect()
        )
        prev_text = row.item(0, 0) if row.height else None
        diff = unified_diff(prev_text, trace.get("system_prompt"), f"v{prev.number}", f"v{cur + 1}")
    if cur is not None:
        v = versions[cur]
        since = ts - v.first_seen
        if cur > 0 and since <= RECENT_CHANGE:
            notes.append(
                f"The system prompt changed {_ago(since)} before this trace: v{v.number} first seen "
                f"{v.first_seen:%Y-%m-%d %H:%M} UTC ({label})."
            )
        later = [x for x in versions if x.first_seen > v.first_seen]
        if later:
            # a banner line is read alone: it names its subject rather than saying "it"
            notes.append(f"The system prompt of {label} (v{v.number} here) was replaced later: v{later[0].number} "
                         f"from {later[0].first_seen:%Y-%m-%d %H:%M} UTC.")
    if templated:
        notes.append(f"{len(versions):,} distinct system prompts in {label}: probably templated per request.")
    if mcur is not None:
        mv = mversions[mcur]
        since = ts - mv.first_seen
        if mcur > 0 and since <= RECENT_CHANGE:
            notes.append(
                f"The served snapshot changed {_ago(since)} before this trace: {mv.key} first seen "
                f"{mv.first_seen:%Y-%m-%d %H:%M} UTC (previously {mversions[mcur - 1].key})."
            )
    if trace.get("model_is_alias"):
        notes.append(
            f"The request named the alias {trace.get('model_requested')!s}: the snapshot behind it can change "
            "without any change on your side."
        )
    if not notes:
        notes.append("No system-prompt or snapshot change in the week before this trace.")
    return TraceContext(
        segment=label,
        prompt_versions=versions,
        prompt_current=cur,
        prompt_text=trace.get("system_prompt"),
        previous_prompt_text=prev_text,
        prompt_diff=diff,
        models=mversions,
        model_current=mcur,
        notes=notes,
        templated=templated,
    )


# --------------------------------------------------------------------------- related traces

RELATED_COLUMNS = ("trace_id", "timestamp", "user_id", "model_returned", "refusal", "prompt_text", "response_text")


@dataclass
class WeekSummary:
    """Traces with the same prompt in one ISO week, and how many were refusals."""

    week: str
    traces: int
    refusals: int


def same_prompt_traces(store: Store, trace: dict, limit: int = 500) -> tuple[pl.DataFrame, list[WeekSummary]]:
    """Other traces with the identical ``prompt_hash`` (any week), newest first, and a per-week summary."""
    h = trace.get("prompt_hash")
    if not h:
        return empty_frame(RELATED_COLUMNS), []
    lf = store.scan().filter((pl.col("prompt_hash") == h) & (pl.col("trace_id") != trace["trace_id"]))
    df = lf.select(list(RELATED_COLUMNS)).sort(["timestamp", "trace_id"], descending=True).collect()
    weeks = (
        df.with_columns(pl.col("timestamp").dt.strftime("%G-W%V").alias("week"))
        .group_by("week")
        .agg(pl.len().alias("n"), pl.col("refusal").is_in(["partial", "full"]).sum().alias("r"))
        .sort("week")
    )
    summary = [WeekSummary(w, n, r) for w, n, r in weeks.iter_rows()]
    return df.head(limit), summary


SIMILAR_WINDOW = dt.timedelta(days=28)


def similar_traces(store: Store, trace: dict, k: int = 20, window: dt.timedelta = SIMILAR_WINDOW,
                   since: dt.datetime | None = None, until: dt.datetime | None = None) -> pl.DataFrame:
    """Nearest neighbours of the trace's prompt by embedding (within ±``window``), with a ``similarity`` column.

    ``since``/``until`` replace either end of the ±``window`` span. Uses only
    vectors already in the store: browsing never loads a model or writes a
    vector. Raises ``NotAvailable`` (naming the command to run) when the
    store, or this trace's prompt, has no embedding.
    """
    embed, model = embedding_model(store, "similar traces")
    from tracelens.hashing import text_hash

    prompt = trace.get("prompt_text")
    if not prompt or not prompt.strip():
        raise NotAvailable("similar traces not available: this trace has no prompt text")
    found, _ = embed.load_vectors(store, model, [text_hash(prompt)])
    if not found:
        raise NotAvailable("similar traces not available: this trace's prompt has no embedding yet "
                           "(run `tracelens embed`)")
    ts = trace["timestamp"]
    try:
        hits = embed.nearest(store, like=trace["trace_id"], k=k, since=since or ts - window,
                             until=until or ts + window, model=model)
    except (ValueError, RuntimeError, OSError) as e:
        raise NotAvailable(f"similar traces not available: {e}") from None
    return hits_frame(store, hits, exclude=trace["trace_id"]).head(k)


# --------------------------------------------------------------------------- refusal explanation


@dataclass(frozen=True)
class RefusalExplanation:
    """Why a trace is labelled a refusal, with the spans of the response that show it."""

    label: str
    score: float | None
    source: str | None
    category: str | None
    evidence: str | None
    spans: tuple[tuple[int, int], ...]  # spans of ``visible(response_text)`` to highlight
    explanation: str


_QUOTED = re.compile(r'"([^"]{2,})"')


def refusal_explanation(trace: dict) -> RefusalExplanation | None:
    """Why a trace is labelled a refusal, and where in the response; None when it is not one."""
    label = trace.get("refusal")
    if label not in ("partial", "full"):
        return None
    evidence = trace.get("refusal_evidence") or ""
    source = trace.get("refusal_source")
    text = visible(trace.get("response_text") or "")
    spans: list[tuple[int, int]] = []
    low = text.lower()
    for snippet in _QUOTED.findall(evidence) or ([evidence] if evidence and source != "structured" else []):
        s = visible(snippet).strip(" .…").lower()
        if not s:
            continue
        i = low.find(s)
        while i >= 0 and len(spans) < 10:
            spans.append((i, i + len(s)))
            i = low.find(s, i + len(s))
    score = trace.get("refusal_score")
    how = {
        "structured": "the provider itself signalled a refusal",
        "text": "the response text matches refusal phrasing",
        "semantic": "the response is semantically close to known refusals",
    }.get(source or "", "the refusal detector fired")
    kind = "a partial refusal (it declines part and answers part)" if label == "partial" else "a full refusal"
    explanation = f"Labelled {kind}: {how}"
    if score is not None:
        explanation += f" (score {score:.2f})"
    if trace.get("refusal_category"):
        explanation += f"; category {trace['refusal_category']}"
    explanation += "."
    if trace.get("refusal_version"):
        explanation += f" Detector {trace['refusal_version']}."
    return RefusalExplanation(label, score, source, trace.get("refusal_category"), evidence or None,
                              tuple(sorted(set(spans))), explanation)


# --------------------------------------------------------------------------- word diff


_TOKEN = re.compile(r"\s+|\w+(?:['’-]\w+)*|[^\w\s]", re.UNICODE)
MAX_DIFF_TOKENS = 6000


def word_diff(a: str | None, b: str | None) -> list[tuple[str, str]]:
    """Word-level diff of ``a`` -> ``b`` as (op, text) runs; op is 'equal', 'delete' or 'insert'.

    Very long texts (over ``MAX_DIFF_TOKENS`` tokens) fall back to a line diff
    to keep the cost bounded.
    """
    a, b = a or "", b or ""
    ta, tb = _TOKEN.findall(a), _TOKEN.findall(b)
    if len(ta) > MAX_DIFF_TOKENS or len(tb) > MAX_DIFF_TOKENS:
        ta, tb = a.splitlines(keepends=True), b.splitlines(keepends=True)
    sm = difflib.SequenceMatcher(None, ta, tb, autojunk=False)
    out: list[tuple[str, str]] = []
    for op, i1, i2, j1, j2 in sm.get_opcodes():
        if op == "equal":
            out.append(("equal", "".join(ta[i1:i2])))
        else:
            if i2 > i1:
                out.append(("delete", "".join(ta[i1:i2])))
            if j2 > j1:
                out.append(("insert", "".join(tb[j1:j2])))
    return out


# --------------------------------------------------------------------------- everything at once


@dataclass
class ContextReport:
    """A trace's context in one piece: prompt and snapshot history, refusal evidence, same prompt elsewhere."""

    context: TraceContext
    refusal: RefusalExplanation | None
    same_prompt: pl.DataFrame  # RELATED_COLUMNS, newest first
    same_prompt_weeks: list[WeekSummary]
    same_prompt_total: int  # before the limit

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form: ``context``, ``refusal`` (or None), ``same_prompt`` {weeks, total, traces}."""
        return {
            "context": self.context.to_dict(),
            "refusal": None if self.refusal is None else asdict(self.refusal),
            "same_prompt": {
                "weeks": [asdict(w) for w in self.same_prompt_weeks],
                "total": self.same_prompt_total,
                "traces": self.same_prompt.to_dicts(),
            },
        }


def context_report(store: Store, trace: dict, same_prompt_limit: int = 20) -> ContextReport:
    """``trace_context``, ``refusal_explanation`` and ``same_prompt_traces`` of one trace (what the TUI's panels show)."""
    same, weeks = same_prompt_traces(store, trace, limit=max(same_prompt_limit, 0))
    return ContextReport(
        context=trace_context(store, trace),
        refusal=refusal_explanation(trace),
        same_prompt=same,
        same_prompt_weeks=weeks,
        same_prompt_total=sum(w.traces for w in weeks),
    )
