"""One call from a freshly ingested store to a drift report.

``run_drift(store, baseline, current)`` and ``run_weekly(store, week)`` load
the two windows, bring whatever is missing up to date, and call
``tracelens.analysis.drift.analyze``:

1. refusal labels of partitions in the windows that are missing or from an
   older detector are recomputed (persisted, see ``enrich.apply``);
2. prompt and response embeddings are computed for at most
   ``sample_cap`` traces per window (default 20,000, stratified by day so a
   busy day does not crowd out a quiet one) and persisted, so a second run
   embeds nothing; rows outside the sample carry no vector and the semantic
   tests use the sampled rows only (their vectors are passed as
   ``analysis.strata.RowVectors``, not as NaN-padded arrays);
3. topic clusters: the current cluster model is reused (ids stay stable
   week to week); when the store has none, one is fitted on the four weeks
   ending with the current window and saved; every trace of both windows gets
   its ``cluster_id``. When a window was sampled, nothing more is embedded for
   the clusters: a model is fitted on the two windows' samples, and a trace gets a
   ``cluster_id`` when its prompt is one of the sample's (the sample, and
   repeats of its prompts); the others stay null and out of the topic tests
   (embedding every prompt of a million-trace week takes hours on a CPU);
4. the refusal trend covers the eight ISO weeks ending with the current one;
5. the Evals section (``report.evals``): for every stored eval suite with
   runs (canary sets included), each target's latest run against its
   previous run on that target, from ``tracelens.evals.report.run_summaries``
   (not limited to the windows: it is the state of the evals when the report
   is made). Canary sets stored by an older version are migrated to suites
   first (``tracelens.evals.canary``), with a note. A regression there counts
   toward the exit code as an alert finding does
   (``analysis.findings.exit_code``).

``drift_run``/``weekly_run`` do the same and also return the daily series the
HTML report's time charts draw (``tracelens.report.timeline``), computed from
the frames already loaded; the report itself, and its JSON, are the same.

Windows are read by ``tracelens.timeexpr.parse_window`` (``START..END`` with
dates, inclusive, or ISO datetimes, end exclusive; ISO weeks ``2026-W47``;
days; spans such as ``7d``). ``run_weekly`` defaults to the last complete ISO
week before now against the week before it; when that week holds no traces it
falls back to the latest complete week that does, and says so.

``weekly_findings`` is what the TUI's This-week screen shows: the findings of
a saved drift report JSON, or of ``run_weekly`` itself (the function behind
`tracelens weekly`), computed without new embeddings so it answers quickly.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import polars as pl

from tracelens.extras import NotAvailable
from tracelens.store import Store
from tracelens.timeexpr import TimeWindow, iso_week, parse_window

if TYPE_CHECKING:
    from tracelens.analysis.findings import EvalResult
    from tracelens.analysis.strata import RowVectors

ANALYSIS_COLUMNS = (
    "trace_id", "timestamp", "provider", "model_requested", "model_returned", "model_family", "model_snapshot",
    "model_is_alias", "app", "service", "user_id", "session_id", "system_prompt", "system_prompt_hash", "tools_hash",
    "tool_definitions", "prompt_hash", "prompt_text", "response_text", "stop_reason", "stop_reason_raw", "temperature",
    "top_p", "top_k", "max_tokens", "output_tokens", "input_tokens", "cache_read_tokens", "cache_creation_tokens",
    "latency_ms", "time_to_first_token_ms", "status", "error_type", "http_status", "tool_calls", "service_tier",
    "refusal", "refusal_score", "attributes",
)

_WEEK = re.compile(r"^(\d{4})-?W(\d{1,2})$", re.I)

Progress = Callable[[str], None]


def last_complete_week(now: dt.datetime | None = None) -> TimeWindow:
    """The last ISO week (UTC) that ended before ``now``."""
    now = now or dt.datetime.now(dt.UTC)
    this_monday = dt.datetime.combine(now.date() - dt.timedelta(days=now.weekday()), dt.time(), tzinfo=dt.UTC)
    start = this_monday - dt.timedelta(days=7)
    y, w, _ = start.isocalendar()
    return iso_week(y, w)


def weekly_windows(store: Store, week: str | TimeWindow | None = None, now: dt.datetime | None = None,
                   notes: list[str] | None = None) -> tuple[TimeWindow, TimeWindow]:
    """(baseline, current) for ``tracelens weekly``; see the module docstring for the fallback.

    ``week`` is a window already read, or an expression for ``timeexpr.parse_window``
    (a bare instant is refused: a report needs a span).
    """
    if isinstance(week, TimeWindow):
        cur = week
    elif week:
        cur = parse_window(week, now=now, point_width=None)
    else:
        cur = last_complete_week(now)
        if _count(store, cur) == 0:
            days = store.dates()
            if days:
                last = days[-1]
                # the latest ISO week that is complete in the data (ends on or before the last day seen + 1)
                monday = last - dt.timedelta(days=last.weekday())
                if last.weekday() != 6:
                    monday -= dt.timedelta(days=7)
                y, w, _ = monday.isocalendar()
                fallback = iso_week(y, w)
                if notes is not None:
                    notes.append(f"no traces in {cur.label}; reporting the latest complete week in the data, {fallback.label}")
                cur = fallback
    base = TimeWindow(cur.start - (cur.end - cur.start), cur.start, "")
    if _WEEK.match(cur.label):
        y, w, _ = base.start.isocalendar()
        base = iso_week(y, w)
    else:
        base = TimeWindow(base.start, base.end, f"{base.start:%Y-%m-%d}..{(base.end - dt.timedelta(seconds=1)):%Y-%m-%d}")
    return base, cur


def _count(store: Store, w: TimeWindow) -> int:
    return store.scan(since=w.start, until=w.end).select(pl.len()).collect().item()


def load_window(store: Store, w: TimeWindow, columns: tuple[str, ...] = ANALYSIS_COLUMNS) -> pl.DataFrame:
    """The analysis columns the store has, of every trace in ``w``, oldest first."""
    lf = store.scan(since=w.start, until=w.end)
    have = set(lf.collect_schema().names())
    return lf.select([c for c in columns if c in have]).sort("timestamp").collect()


#: the columns kept of every trace of a window: the analysis columns less the text (read for its features only)
#: and less those no test reads
FEATURE_FRAME_COLUMNS = tuple(
    c for c in ANALYSIS_COLUMNS
    if c not in ("prompt_text", "response_text", "system_prompt", "tool_definitions", "tool_calls", "service",
                 "session_id", "stop_reason_raw", "http_status")
)


#: string columns with few distinct values (models, apps, versions, labels), rebuilt compactly as they are read
_REPEATED = ("provider", "model_requested", "model_returned", "model_family", "model_snapshot", "app",
             "system_prompt_hash", "tools_hash", "stop_reason", "status", "error_type", "service_tier", "refusal")


def _compact(s: pl.Series) -> pl.Series:
    """``s`` (strings with few distinct values) with the same values in new, compact buffers.

    A string column as the Parquet reader returns it, sorted, can hold several times its values' size in
    buffers (measured: ~250 bytes a row for a 26-character model id): a ten-million-trace window would keep
    gigabytes for a handful of distinct ids. Rebuilt through a categorical, each row is a 16-byte view into
    one copy of the distinct values.
    """
    if s.dtype != pl.String:
        return s
    return s.cast(pl.Categorical).cast(pl.String)


@dataclass
class WindowFeatures:
    """One window read a day at a time: every trace without its text, and the texts the sample can need."""

    frame: pl.DataFrame  #: FEATURE_FRAME_COLUMNS + the text features + ``_ntools`` + ``_ptext`` (prompt hash), oldest first
    summary: object  #: analysis.textfeatures.TextSummary
    candidates: pl.DataFrame  #: trace_id, timestamp, prompt_text, response_text, ``_r``: rows ranked <= cap in their day


def load_window_features(store: Store, w: TimeWindow, sample_cap: int) -> WindowFeatures:
    """``w`` read one UTC day at a time: the text is turned into its features and dropped as it is read.

    A week of ten million traces holds gigabytes of prompt and response text,
    of which the analysis needs per-trace features (lengths, hashes,
    corruption flags: ``analysis.textfeatures``), the distinct system-prompt and
    tool versions, and the texts of the embedding sample. Each day's rows
    ranked within the sample cap (by ``_sample_mask``'s hash) keep their
    texts as sample candidates; the others keep none. A missing
    ``system_prompt_hash`` / ``tools_hash`` is filled from its text row by row.
    """
    from tracelens.analysis.textfeatures import TEXT_COLUMNS, TextSummary, text_features

    have = set(store.scan(since=w.start, until=w.end).collect_schema().names())
    cols = [c for c in ANALYSIS_COLUMNS if c in have]
    frames, cands, summary = [], [], TextSummary()
    day = w.start
    while day < w.end:
        nxt = min(w.end, dt.datetime.combine(day.date() + dt.timedelta(days=1), dt.time(), tzinfo=day.tzinfo))
        part = store.scan(since=day, until=nxt).select(cols).sort("timestamp").collect()
        day = nxt
        if not part.height:
            continue
        part = part.with_columns(
            [pl.lit(None, dtype=pl.String).alias(c) for c in (*TEXT_COLUMNS, "app", "stop_reason", "system_prompt_hash",
                                                              "tools_hash") if c not in part.columns]
        )
        part = part.with_columns(
            pl.coalesce(pl.col(h), pl.when(pl.col(t).is_not_null()).then(pl.col(t).hash(seed=0).cast(pl.String)))
            .alias(h)
            for h, t in (("system_prompt_hash", "system_prompt"), ("tools_hash", "tool_definitions"))
        )
        summary = summary.merge(TextSummary.of(part))
        feats = text_features(part)
        extra = [pl.col("prompt_text").hash(seed=0).alias("_ptext")]
        if "tool_calls" in part.columns and isinstance(part.schema["tool_calls"], pl.List):
            extra.append(pl.col("tool_calls").list.len().cast(pl.Int64).alias("_ntools"))
        lean = part.select(*[c for c in FEATURE_FRAME_COLUMNS if c in part.columns], *extra).hstack(feats)
        rank = part.select(pl.col("trace_id").hash(0).rank("ordinal").alias("_r")).to_series()
        # copied out (Arrow's contiguous strings): a filtered string column would keep the whole day's text alive
        cands.append(pl.from_arrow(part.select("trace_id", "timestamp", "prompt_text", "response_text")
                                   .with_columns(rank).filter(pl.col("_r") <= sample_cap)
                                   .to_arrow(compat_level=pl.CompatLevel.oldest())))
        frames.append(lean)
        del part
    if not frames:
        empty = pl.DataFrame(schema={"trace_id": pl.String, "timestamp": pl.Datetime("us", "UTC")})
        return WindowFeatures(empty, summary, empty.with_columns(
            pl.lit(None, dtype=pl.String).alias("prompt_text"), pl.lit(None, dtype=pl.String).alias("response_text"),
            pl.lit(None, dtype=pl.UInt32).alias("_r")))
    frame = pl.concat(frames, how="diagonal_relaxed").rechunk()
    del frames
    frame = frame.with_columns(_compact(frame.get_column(x)) for x in _REPEATED if x in frame.columns)
    return WindowFeatures(frame, summary,
                          pl.concat(cands, how="vertical_relaxed"))


#: columns kept even when empty: the report's time charts read them from the frames when both windows have them
_ALWAYS_KEPT = frozenset({"trace_id", "timestamp", "status", "refusal", "model_returned", "model_requested"})


def _drop_empty(b: pl.DataFrame, c: pl.DataFrame) -> tuple[pl.DataFrame, pl.DataFrame]:
    """Both frames without the columns that are null in every trace of both windows.

    ``analyze`` reads a missing column as null, so the findings are the same; a column of a ten-million-trace
    window costs 80 MB and more (e.g. ``top_k``, cache token counts, ``attributes`` where the logs have none).
    """
    empty = [x for x in b.columns if x in c.columns and x not in _ALWAYS_KEPT
             and b.get_column(x).null_count() == b.height and c.get_column(x).null_count() == c.height]
    return (b.drop(empty), c.drop(empty)) if b.height and c.height else (b, c)


@dataclass
class Prepared:
    """Everything ``analyze`` needs for two windows, plus what preparing them cost."""

    baseline: pl.DataFrame
    current: pl.DataFrame
    baseline_window: TimeWindow
    current_window: TimeWindow
    # full arrays, or RowVectors (the sample's rows only) when a window was sampled
    prompt_emb: tuple[np.ndarray | RowVectors, np.ndarray | RowVectors] | None = None
    response_emb: tuple[np.ndarray | RowVectors, np.ndarray | RowVectors] | None = None
    cluster_labels: dict[int, str] = field(default_factory=dict)
    history: pl.DataFrame | None = None
    notes: list[str] = field(default_factory=list)
    text_summary: object | None = None  #: analysis.textfeatures.TextSummary: the frames carry text features, no text


def _sample_mask(df: pl.DataFrame, cap: int, seed: int = 0) -> np.ndarray:
    """Rows to embed: all when few, else ``cap`` spread evenly over days (deterministic by trace id hash)."""
    n = df.height
    if n <= cap:
        return np.ones(n, dtype=bool)
    days = df["timestamp"].dt.date()
    per_day = max(1, cap // max(1, days.n_unique()))
    ranked = df.select(
        pl.col("trace_id").hash(seed).rank("ordinal").over(days).alias("r")
    )["r"].to_numpy()
    return ranked <= per_day


def prepare(
    store: Store,
    baseline: TimeWindow,
    current: TimeWindow,
    *,
    embed: bool | str = True,
    sample_cap: int = 20_000,
    model: str | None = None,
    embedder=None,
    progress: Progress | None = None,
) -> Prepared:
    """Load both windows and bring labels, embeddings and clusters up to date (persisted).

    ``embed``: True embeds what has no vector yet (and fits clusters when
    none exist); ``"stored"`` uses the vectors and clusters already stored and
    computes none (texts without a vector stay out of the semantic tests; the
    TUI's quick path); False skips embeddings altogether (``--no-embed``).
    """
    if embed not in (True, False, "stored"):
        raise ValueError(f"embed must be True, False or 'stored', not {embed!r}")
    compute = embed is True
    say = progress or (lambda s: None)
    notes: list[str] = []
    try:
        from tracelens.enrich.apply import refresh_refusals

        lo = min(baseline.start, current.start).date()
        hi = (max(baseline.end, current.end) - dt.timedelta(microseconds=1)).date()
        r = refresh_refusals(store, since=lo, until=hi)
        if r.partitions_rewritten:
            say(f"labelled refusals in {r.partitions_rewritten} day partition(s) ({r.rows_rewritten:,} traces)")
    except ImportError:
        notes.append("refusal detector not available: refusal findings use stored labels only")
    wb = load_window_features(store, baseline, sample_cap)
    wc = load_window_features(store, current, sample_cap)
    b, c = _drop_empty(wb.frame, wc.frame)
    wb.frame = wc.frame = None  # the frames live on in ``prep`` only
    say(f"loaded {b.height:,} baseline and {c.height:,} current traces")
    prep = Prepared(b, c, baseline, current, notes=notes, text_summary=wb.summary.merge(wc.summary))
    hist_start = current.end - dt.timedelta(weeks=8)
    hist_cols = ("trace_id", "timestamp", "refusal", "model_returned", "model_requested", "system_prompt_hash",
                 "tools_hash", "app", "service_tier", "temperature", "top_p", "max_tokens", "attributes")
    # the weeks before the two windows are read; the windows' own rows are the frames already loaded (shared
    # columns, not a second copy of twenty million rows)
    lo = min(baseline.start, current.start)
    earlier = store.scan(since=hist_start, until=lo) if hist_start < lo else None
    have_h = set(earlier.collect_schema().names()) if earlier is not None else set()
    parts = [earlier.select([x for x in hist_cols if x in have_h]).collect()] if earlier is not None else []
    parts += [f.select([x for x in hist_cols if x in f.columns]) for f in (b, c) if f.height]
    prep.history = pl.concat(parts, how="diagonal_relaxed") if parts else None
    if not embed or b.height == 0 or c.height == 0:
        if not embed:
            notes.append("embeddings skipped (--no-embed): semantic and prompt-mix findings need them")
        return prep
    from tracelens.analysis.strata import RowVectors
    from tracelens.embed.models import get_embedder, resolve_model
    from tracelens.embed.vectors import trace_embeddings
    from tracelens.extras import install_command, missing_modules

    spec = resolve_model(model)
    # stored vectors are read without the model: only computing new ones needs the extra
    missing = missing_modules("embed") if compute and embedder is None and spec.kind != "fake" else []
    if missing:
        # A lean install still gets every non-semantic finding; say exactly what was left out and how to get it.
        note = (f"semantic findings skipped (prompt/response semantic shift, prompt_mix, topic refusal and "
                f"matched-prompt similarity need embeddings): the 'embed' extra is not installed "
                f"({', '.join(missing)} missing): {install_command('embed')}")
        notes.append(note)
        say(note)
        return prep
    mb, mc = _sample_mask(b, sample_cap), _sample_mask(c, sample_cap)
    sampled = not mb.all() or not mc.all()
    # the sample's texts, in the frames' row order (the frames hold no text: load_window_features)
    tb, tc = _sample_texts(wb, b, mb, sample_cap), _sample_texts(wc, c, mc, sample_cap)
    # their prompts label the topics analyze clusters itself when no topic-cluster model is fitted
    prep.text_summary = prep.text_summary.with_prompts(pl.concat([tb, tc]))
    # the traces embedded for the semantic tests: also what the clusters are fitted and assigned from
    sample = pl.concat([tb, tc]) if sampled else None
    if sampled:
        notes.append(
            f"semantic tests use a day-stratified sample of {int(mb.sum()):,} baseline and {int(mc.sum()):,} current "
            f"traces (cap {sample_cap:,} per window); topic clusters go to the traces whose prompt has a vector"
        )
    emb = embedder
    out = {}
    for col in ("prompt_text", "response_text"):
        pair = []
        for df, mask, sub in ((b, mb, tb), (c, mc, tc)):
            if emb is None and compute:
                emb_needed = _missing_vectors(store, spec, sub, col)
                if emb_needed:
                    say(f"embedding {emb_needed:,} new {col.split('_')[0]} texts with {spec.model_id} ...")
                    emb = embedder or get_embedder(spec.name)
            vec = trace_embeddings(store, sub, col, spec, compute_missing=emb if emb is not None else False)
            dim = vec.shape[1] if vec.ndim == 2 and vec.shape[1] else 0
            if not dim:
                pair.append(np.zeros((df.height, 0), dtype=np.float32))
            elif mask.all():
                pair.append(vec)
            else:
                # only the sample's rows: a full NaN-padded float32 array would be 1.5 GB per column and
                # window at a million traces, for 20,000 vectors
                pair.append(RowVectors(df.height, np.flatnonzero(mask), vec))
        out[col] = tuple(pair)
    if all(p.shape[1] for p in out["prompt_text"]):
        prep.prompt_emb = out["prompt_text"]
    if all(p.shape[1] for p in out["response_text"]):
        prep.response_emb = out["response_text"]
    try:
        from tracelens import cluster as cl
    except ImportError:
        return prep
    cm = cl.current_model(store, spec.name)
    if cm is None and not compute:
        notes.append("no topic clusters stored yet: run `tracelens weekly` (or `tracelens cluster`) once to fit them")
    elif cm is None:
        ref_start = current.end - dt.timedelta(weeks=4)
        say("fitting topic clusters on the embedding sample of both windows ..." if sampled
            else "fitting topic clusters on the last four weeks ...")
        try:
            # a sampled window embeds its sample only: the clusters are fitted on the sample of the two
            # windows, not on every prompt of four weeks (hours of embedding at a million traces a week)
            fit_on = None
            if sampled:
                fit_on = sample.select("trace_id", "timestamp", "prompt_text")
                ref_start = min(baseline.start, current.start)
            cm = cl.fit_clusters(store, since=ref_start, until=current.end, model=spec.name, embedder=emb,
                                 embed_missing=not sampled, traces=fit_on)
        except Exception as e:  # too little data to cluster is not fatal for a report
            notes.append(f"topic clusters not fitted: {e}")
            cm = None
    if cm is not None:
        if sampled:
            # the sample's traces and the repeats of their prompts get a cluster (their prompts have a
            # vector); the others stay null, as they stay out of the semantic tests. The sample's prompts are
            # assigned, and every trace whose prompt hash (``_ptext``) is one of theirs takes that cluster.
            ids = cl.assign_clusters(store, sample, model=spec.name, cluster_model=cm, embed_missing=False)
            keyed = (pl.DataFrame({"_ptext": sample.get_column("prompt_text").hash(seed=0), "cluster_id": ids})
                     .filter(pl.col("_ptext").is_not_null() & pl.col("cluster_id").is_not_null())
                     .unique("_ptext", keep="first"))
        for name, texts in (("baseline", tb), ("current", tc)):
            df = getattr(prep, name)
            if not sampled:
                ids = cl.assign_clusters(store, texts, model=spec.name, cluster_model=cm, embed_missing=emb or False)
            else:
                ids = (df.select("_ptext").join(keyed, on="_ptext", how="left", maintain_order="left")
                       .get_column("cluster_id"))
            setattr(prep, name, df.with_columns(ids.cast(pl.Int32).alias("cluster_id")))
        prep.cluster_labels = dict(cm.labels)
    return prep


def _sample_texts(wf: WindowFeatures, df: pl.DataFrame, mask: np.ndarray, cap: int) -> pl.DataFrame:
    """trace_id, timestamp, prompt_text and response_text of the rows of ``mask``, in ``df``'s order."""
    n_days = df.get_column("timestamp").dt.date().n_unique() if df.height else 1
    per_day = cap if mask.all() else max(1, cap // max(1, n_days))
    out = wf.candidates.filter(pl.col("_r") <= per_day).drop("_r")
    if out.height != int(mask.sum()):  # the same ranks as _sample_mask: a mismatch is a bug, not data
        raise AssertionError(f"sample texts: {out.height} rows for a sample of {int(mask.sum())}")
    return out


def _missing_vectors(store: Store, spec, df: pl.DataFrame, col: str) -> int:
    from tracelens.embed.vectors import VectorStore, embeddable
    from tracelens.hashing import text_hash

    known = VectorStore(store, spec).known_hashes()
    texts = {t for t in df.get_column(col).to_list() if embeddable(t)}
    return sum(1 for t in texts if text_hash(t) not in known)


@dataclass(frozen=True)
class DriftRun:
    """A drift report plus the daily per-snapshot and per-topic series its HTML time charts draw."""

    report: object  # tracelens.analysis.findings.DriftReport (imported lazily)
    timeline: object | None = None  # tracelens.report.timeline.Timeline


def run_drift(store: Store, baseline: TimeWindow, current: TimeWindow, *, config=None, embed: bool = True,
              sample_cap: int = 20_000, model: str | None = None, embedder=None, progress: Progress | None = None,
              notes: list[str] | None = None):
    """Prepare both windows and analyse them; returns the DriftReport (notes appended to ``report.notes`` if any)."""
    return drift_run(store, baseline, current, config=config, embed=embed, sample_cap=sample_cap, model=model,
                     embedder=embedder, progress=progress, notes=notes, timeline=False).report


def drift_run(store: Store, baseline: TimeWindow, current: TimeWindow, *, config=None, embed: bool = True,
              sample_cap: int = 20_000, model: str | None = None, embedder=None, progress: Progress | None = None,
              notes: list[str] | None = None, timeline: bool = True, engine=None) -> DriftRun:
    """:func:`run_drift`, also returning the HTML report's daily series (from the frames already loaded).

    ``engine`` (``tracelens.engines``; None: this process) embeds the missing
    vectors (``engine.embedder``) and counts the refusals of the daily series
    and trend (``engine.series_counts``); the report is the same.
    """
    from tracelens.analysis.drift import analyze
    from tracelens.modelcatalog import load_catalog

    if engine is not None and embedder is None and embed is True:
        embedder = engine.embedder(model)  # connects to the cluster only when a text needs a vector
    prep = prepare(store, baseline, current, embed=embed, sample_cap=sample_cap, model=model, embedder=embedder,
                   progress=progress)
    series = None
    if engine is not None:
        series = engine.series_counts(store, baseline, current, prep)
    report = analyze(
        prep.baseline,
        prep.current,
        baseline_window=(baseline.start, baseline.end),
        current_window=(current.start, current.end),
        prompt_emb=prep.prompt_emb,
        response_emb=prep.response_emb,
        cluster_labels=prep.cluster_labels or None,
        history=prep.history,
        config=config,
        catalog=load_catalog(store.local_root),
        series=series,
        text_summary=prep.text_summary,
    )
    all_notes = list(notes or []) + prep.notes
    import dataclasses

    evals = evals_section(store, all_notes)
    if evals is not None:
        report = dataclasses.replace(report, evals=evals)
    if all_notes:
        report = dataclasses.replace(report, notes=tuple(all_notes) + tuple(report.notes))
    tl = None
    if timeline:
        from tracelens.report.timeline import build_timeline

        tl = build_timeline(prep.baseline, prep.current, report)
    return DriftRun(report, tl)


def evals_section(store: Store, notes: list[str] | None = None) -> tuple[EvalResult, ...] | None:
    """Each stored suite's latest run per target against its previous run on that target (None: no suite has a run).

    Canary sets stored by an older version are migrated first; a suite file
    that cannot be read is left out with a note (so is the section, when the
    evals package cannot load).
    """
    try:
        from tracelens.evals.canary import migrate_canaries, old_canary_files
        from tracelens.evals.graders import SuiteError
        from tracelens.evals.report import run_summaries
        from tracelens.evals.runner import list_runs
        from tracelens.evals.suite import read_suite_file, suites_dir
    except ImportError:
        return None
    say = notes.append if notes is not None else (lambda s: None)
    if store.local_root is None:
        return None  # eval suites and runs live in a local store directory; none can exist for this store
    if old_canary_files(store.root):
        try:
            migrate_canaries(store.root, store.get, note=say)
        except OSError as e:
            say(f"canary sets not migrated to eval suites ({e}): run `tracelens canary migrate`")
    runs = list_runs(store.root)
    if not runs:
        return None
    out = []
    for path in sorted(suites_dir(store.root).glob("*.yaml")):
        try:
            suite = read_suite_file(path)[0]
        except SuiteError as e:
            say(f"evals: suite file left out of the report: {e}")
            continue
        latest = {r.target: r.run_id for r in runs if r.suite == suite.name}  # oldest first: the last one stays
        if latest:
            out += [_eval_result(suite, s) for s in run_summaries(store.root, suite, list(latest.values()))]
    return tuple(sorted(out, key=lambda e: (e.suite, e.target))) or None


def _eval_result(suite, s) -> EvalResult:
    """The report's row for one ``tracelens.evals.report.RunSummary``."""
    from tracelens.analysis.findings import EvalResult

    c = s.vs_previous.overall if s.vs_previous is not None else None
    verdict = "first run" if c is None else c.verdict
    return EvalResult(
        suite=suite.name, kind=suite.kind, target=s.run.target, run_id=s.run.run_id, started_at=s.run.started_at,
        previous_run_id=s.previous_run_id, cases=s.run.cases, pass_rate=s.rate.rate, pass_rate_low=s.rate.lo,
        pass_rate_high=s.rate.hi, previous_pass_rate=c.baseline_rate if c else None, delta=c.delta if c else None,
        delta_low=c.delta_lo if c else None, delta_high=c.delta_hi if c else None,
        p_value=c.p_value if c else None, method=c.method if c else None, verdict=verdict, regressed=s.regressed,
        regressed_groups=tuple(s.regressed_groups), n_pass_to_fail=c.n_pass_to_fail if c else 0,
        pass_to_fail=tuple(c.pass_to_fail[:10]) if c else (), errors=s.rate.n_errors, refusal_rate=s.refusal_rate,
        latency_p50_ms=s.latency_p50_ms,
    )


def run_weekly(store: Store, week: str | TimeWindow | None = None, now: dt.datetime | None = None, **kw):
    """The weekly report: ``week`` (default the last complete ISO week) against the window before it."""
    return weekly_run(store, week, now, timeline=False, **kw).report


def weekly_run(store: Store, week: str | TimeWindow | None = None, now: dt.datetime | None = None,
               **kw) -> DriftRun:
    """:func:`run_weekly`, also returning the HTML report's daily series."""
    notes: list[str] = []
    base, cur = weekly_windows(store, week, now, notes)
    return drift_run(store, base, cur, notes=notes, **kw)


# --------------------------------------------------------------------------- findings for the TUI


@dataclass
class WeeklyFindings:
    """Findings of the latest week, with where they came from."""

    findings: list  # tracelens.analysis.findings.Finding
    source: str
    window: str = ""
    notes: list[str] = field(default_factory=list)


def weekly_findings(store: Store, report_path: str | Path | None = None, now: dt.datetime | None = None,
                    progress: Progress | None = None, embed: bool | str = "stored",
                    week: str | TimeWindow | None = None, model: str | None = None) -> WeeklyFindings:
    """Findings from a saved drift report JSON, else computed by ``run_weekly`` (what `tracelens weekly` runs).

    Computing runs the weekly analysis on ``week`` (default the last complete
    ISO week) against the week before (it may refresh stored refusal labels,
    as `tracelens weekly` does). ``embed="stored"`` (the default here) uses
    the embeddings and topic clusters already stored and computes none, so
    the screen answers in seconds and, once `tracelens weekly` has run, shows
    the same findings it does; what has no vector yet is left out, and the
    report's notes say so. ``model`` is the embedding model (None: the default,
    as for `tracelens weekly`). Raises ``NotAvailable`` when the drift analysis
    is not installed.
    """
    if report_path:
        return load_findings_report(report_path)
    import importlib.util

    if importlib.util.find_spec("tracelens.analysis.drift") is None:
        raise NotAvailable(
            "drift findings not available in this build: run `tracelens weekly --json > report.json` and start "
            "`tracelens tui --report report.json`"
        )
    report = run_weekly(store, week, now=now, embed=embed, progress=progress, model=model)
    return WeeklyFindings(list(report.findings), "tracelens weekly (computed now)", _window_label(report),
                          list(report.notes))


def _window_label(report) -> str:
    try:
        c, b = report.current, report.baseline
        return f"{c.start:%Y-%m-%d} → {c.end:%Y-%m-%d} ({c.n:,} traces) vs the week before ({b.n:,})"
    except (AttributeError, TypeError):
        return ""


def load_findings_report(path: str | Path) -> WeeklyFindings:
    """Findings from a drift report JSON file (``DriftReport.to_dict()`` form); ``NotAvailable`` if unreadable."""
    import json

    from tracelens.analysis.findings import Finding

    p = Path(path)
    try:
        obj = json.loads(p.read_text(encoding="utf-8"))
    except (OSError, ValueError) as e:
        raise NotAvailable(f"cannot read drift report {p}: {e}") from None
    out = []
    for d in obj.get("findings") or []:
        fs = d.get("first_seen")
        out.append(Finding(
            kind=d.get("kind", "?"), segment=d.get("segment", ""), direction=d.get("direction", "changed"),
            baseline_value=d.get("baseline_value"), current_value=d.get("current_value"), effect=d.get("effect"),
            ci_low=d.get("ci_low"), ci_high=d.get("ci_high"), p_value=d.get("p_value"), q_value=d.get("q_value"),
            significant=bool(d.get("significant")), severity=d.get("severity", "info"),
            first_seen=dt.datetime.fromisoformat(fs.replace("Z", "+00:00")) if fs else None,
            summary=d.get("summary", ""), evidence=tuple(d.get("evidence") or ()),
        ))
    w = (obj.get("windows") or {}).get("current") or {}
    return WeeklyFindings(out, str(p), f"{w.get('start', '?')} → {w.get('end', '?')}" if w else "",
                          [str(n) for n in obj.get("notes") or []])
