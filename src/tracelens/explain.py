"""One user's complaint ("the model I get now is worse") turned into a dossier with a ranked verdict.

Headless (no click, no textual): `tracelens explain --user ID` and the TUI's
"Explain this user" screen call ``explain_user`` and render its result.

Contract:

* ``explain_user(store, user_id, *, session_id=None, since=None, until=None,
  now=None, baseline_weeks=4) -> Dossier``. The **current window** is the
  complaint window: ``[since, until)`` when given, else the last 7 days of the
  user's traffic (ending just after their latest trace, or at ``until``). The
  **baseline** is the user's own traffic in the ``baseline_weeks`` weeks
  before it. ``session_id`` narrows the user's traffic to one session.
  ``Dossier.to_dict()`` is JSON-ready (no NaN: missing numbers are None);
  ``Dossier.traces == 0`` when the user has no trace at all.
* Sections: ``weeks`` (the user's own traffic per ISO week), ``changes``
  (current vs baseline of the same metrics, each with an effect and an
  interval), ``underneath`` (what changed in the user's apps and models in the
  same period: the drift engine's deterministic variance checks, run on all
  traffic of those apps, plus the user's alias resolutions), ``comparable``
  (the user against other users on the same snapshots, and the same topic
  clusters when clusters exist, in the current window), ``same_prompt``
  (exact ``prompt_hash`` matches of the user's current prompts in earlier
  weeks, paired by prompt) and ``replay`` (the command to replay the user's
  most recent refused, else failed, else truncated, else latest trace).
* ``verdict``: candidate explanations, ranked. **Scoring rule**: every
  candidate carries an effect on a scale where "no change" is 1 (ratios of
  medians, bootstrap interval) or 0 (differences of proportions, Newcombe or
  paired interval) and a 95 % interval. A candidate is *supported* when its
  interval excludes no-change and the effect is at least practical (beyond
  ``PRACTICAL_RATIO`` either way, or ``PRACTICAL_DIFFERENCE``); supported
  candidates come first, ranked by the strength ``|log(ratio)| / se`` or
  ``|difference| / se``, with ``se`` read off the interval (half-width / 1.96
  on the log or raw scale: a z-score, capped at ``MAX_STRENGTH``). The
  candidates: "your prompts changed" (the characters of the user's
  conversation, every message but not the app's system prompt or tools; else
  of the last user turn; else messages per request: the first of these that
  is supported), "you moved to other topics" (the cluster whose share grew
  most; only when clusters are stored), "you use tools differently", and one
  per change underneath (a new snapshot, system prompt, tool definitions,
  sampling value or service tier): its effect is the change in the user's
  own outcome (refusal rate or median response length, the stronger) between
  their current traces on the new value and their baseline traces. An alias
  that now resolves to a new snapshot is that snapshot change, counted once.
  When nothing is supported the verdict is "no measurable change"; when
  either window holds fewer than ``MIN_TRACES`` of the user's traces it says
  "too little data" first, whatever else it lists.

All timestamps are UTC.
"""

from __future__ import annotations

import datetime as dt
import math
import re
import shlex
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
import polars as pl

from tracelens.analysis import fmt
from tracelens.analysis.stats import median_ratio_ci, newcombe_diff, paired_diff_ci, z_crit
from tracelens.store import Store
from tracelens.storefiles import as_utc

#: fewer of the user's traces than this in either window: the verdict says "too little data"
MIN_TRACES = 10
CURRENT_DAYS = 7
#: smallest effects that count: a ratio beyond 1.2x (or below 1/1.2), a difference of 2 percentage points
PRACTICAL_RATIO = 1.2
PRACTICAL_DIFFERENCE = 0.02
#: strengths (z-scores) are capped here, so a degenerate interval does not read as infinitely strong
MAX_STRENGTH = 100.0
ALPHA = 0.05

_COLUMNS = (
    "trace_id", "timestamp", "user_id", "session_id", "conversation_id", "app", "model_requested", "model_returned",
    "model_family", "model_is_alias", "system_prompt_hash", "tools_hash", "prompt_hash", "prompt_text",
    "response_text", "input_tokens", "cache_read_tokens", "cache_creation_tokens", "output_tokens", "latency_ms",
    "stop_reason", "status", "error_type", "refusal", "temperature", "top_p", "max_tokens", "service_tier",
    "messages", "tool_calls",
)
#: read for the derived metrics, then dropped (the prompt text stays: topics are looked up by its hash)
_DROP = ("response_text", "messages", "tool_calls")


# --------------------------------------------------------------------------- result types


@dataclass
class Change:
    """One metric, current window against baseline: an effect with its interval (see the module docstring)."""

    metric: str
    scale: str  # "ratio" (no change = 1) or "difference" (no change = 0)
    baseline: float | None
    current: float | None
    effect: float | None
    ci_low: float | None
    ci_high: float | None
    n_baseline: int
    n_current: int
    supported: bool = False  # the interval excludes no-change
    strength: float = 0.0  # |effect| / se on the log (ratio) or raw (difference) scale

    def describe(self) -> str:
        """The change in words, e.g. 'whole prompt tokens (median) 3.10x (interval 2.80 to 3.40)'."""
        if self.effect is None:
            return f"{self.metric}: not measurable"
        if self.scale == "ratio":
            return f"{self.metric} {self.effect:.2f}x (interval {_n(self.ci_low)} to {_n(self.ci_high)})"
        return f"{self.metric} {fmt.pp(self.effect)} (interval {fmt.pp(self.ci_low)} to {fmt.pp(self.ci_high)})"


@dataclass
class WeekRow:
    """The user's own traffic in one ISO week."""

    week: str
    current: bool  # the week overlaps the complaint window
    calls: int
    tokens_median: float | None  # whole prompt tokens (input + cache read + cache write)
    tokens_p90: float | None
    turns_median: float | None  # messages per request
    prompt_chars_median: float | None
    error_rate: float | None
    refusal_rate: float | None
    tool_use_rate: float | None  # share of calls whose response called a tool
    tools: list[str]
    top_topic: str | None


@dataclass
class Underneath:
    """A change in the user's apps/models in the same period, and how much of the user's traffic it touched."""

    kind: str  # model_snapshot, alias_usage, system_prompt, tool_definitions, sampling_params, service_tier
    segment: str
    summary: str
    first_seen: dt.datetime | None
    before: str | None
    after: str | None
    user_share: float | None  # share of the user's current traces on the new value
    evidence: list[str]


@dataclass
class AliasResolution:
    """An alias the user requested and the snapshot it resolved to (first/last seen, calls)."""

    requested: str
    returned: str
    first_seen: dt.datetime
    last_seen: dt.datetime
    calls: int


@dataclass
class Comparable:
    """The user against other users' traffic in the current window on the same snapshots (and topics)."""

    scope: str
    others: int
    user: int
    refusal: Change | None
    response_chars: Change | None
    latency_ms: Change | None


@dataclass
class PromptPair:
    """One of the user's current prompts seen before: its earlier and current outcome."""

    prompt_hash: str
    earlier_week: str
    earlier_trace: str
    current_trace: str
    refused_before: bool
    refused_now: bool


@dataclass
class SamePrompt:
    """Exact prompt matches of the user's current prompts in earlier weeks, paired by prompt."""

    prompts: int  # distinct current prompts with an earlier match
    newly_refused: int
    no_longer_refused: int
    change: Change | None  # paired difference of refusal rates (now - before)
    pairs: list[PromptPair]


@dataclass
class Candidate:
    """One candidate explanation of the complaint, with its effect, interval and evidence traces."""

    key: str  # prompts, topics, tools, model_snapshot, system_prompt, ..., no_change, too_little_data
    title: str
    change: Change | None
    supported: bool
    strength: float
    evidence: list[str]


@dataclass
class Dossier:
    """Everything ``explain_user`` found about one user's complaint (see the module docstring)."""

    user_id: str
    session_id: str | None
    current_start: dt.datetime | None
    current_end: dt.datetime | None
    baseline_start: dt.datetime | None
    traces: int  # the user's traces in baseline + current
    n_baseline: int
    n_current: int
    weeks: list[WeekRow] = field(default_factory=list)
    changes: list[Change] = field(default_factory=list)
    underneath: list[Underneath] = field(default_factory=list)
    aliases: list[AliasResolution] = field(default_factory=list)
    comparable: list[Comparable] = field(default_factory=list)
    same_prompt: SamePrompt | None = None
    replay_trace: str | None = None
    replay_reason: str | None = None
    replay_command: str | None = None
    verdict: list[Candidate] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    topics_available: bool = False

    @property
    def headline(self) -> str:
        """The first line of the verdict."""
        return self.verdict[0].title if self.verdict else "no traces for this user"

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form: NaN and infinities become None; datetimes stay datetimes (the CLI writes ISO 8601)."""
        d = _clean(asdict(self))
        d["headline"] = self.headline
        return d


def _clean(o: Any) -> Any:
    if isinstance(o, float):
        return o if math.isfinite(o) else None
    if isinstance(o, dict):
        return {k: _clean(v) for k, v in o.items()}
    if isinstance(o, list | tuple):
        return [_clean(v) for v in o]
    return o


def _n(x: float | None, digits: int = 2) -> str:
    return "n/a" if x is None or not math.isfinite(x) else f"{x:.{digits}f}"


def _f(x) -> float | None:
    if x is None:
        return None
    x = float(x)
    return x if math.isfinite(x) else None


# --------------------------------------------------------------------------- effects with intervals


def _score(c: Change) -> Change:
    """Set ``supported`` and ``strength`` from the interval (see the module docstring)."""
    if c.effect is None or c.ci_low is None or c.ci_high is None:
        return c
    z = z_crit(ALPHA)
    if c.scale == "ratio":
        if c.effect <= 0 or c.ci_low <= 0:
            return c
        c.supported = (c.ci_low > 1 or c.ci_high < 1) and abs(math.log(c.effect)) >= math.log(PRACTICAL_RATIO)
        se = (math.log(c.ci_high) - math.log(c.ci_low)) / (2 * z)
        d = abs(math.log(c.effect))
    else:
        c.supported = (c.ci_low > 0 or c.ci_high < 0) and abs(c.effect) >= PRACTICAL_DIFFERENCE
        se = (c.ci_high - c.ci_low) / (2 * z)
        d = abs(c.effect)
    # a zero-width interval (every value identical in both windows) is as strong as the scale allows
    c.strength = min(MAX_STRENGTH, d / se) if se > 0 else (MAX_STRENGTH if d > 0 else 0.0)
    return c


def ratio_change(metric: str, b: np.ndarray, c: np.ndarray, seed: int = 0) -> Change:
    """Ratio of medians (current / baseline) with a bootstrap interval."""
    b = b[np.isfinite(b)]
    c = c[np.isfinite(c)]
    r, lo, hi = median_ratio_ci(b, c, ALPHA, rng=np.random.default_rng(seed))
    mb = float(np.median(b)) if b.size else None
    mc = float(np.median(c)) if c.size else None
    return _score(Change(metric, "ratio", mb, mc, _f(r), _f(lo), _f(hi), int(b.size), int(c.size)))


def rate_change(metric: str, xb: int, nb: int, xc: int, nc: int) -> Change:
    """Difference of proportions (current - baseline) with Newcombe's interval."""
    if nb <= 0 or nc <= 0:
        return Change(metric, "difference", xb / nb if nb else None, xc / nc if nc else None, None, None, None, nb, nc)
    d, lo, hi = newcombe_diff(xb, nb, xc, nc, ALPHA)
    return _score(Change(metric, "difference", xb / nb, xc / nc, _f(d), _f(lo), _f(hi), nb, nc))


# --------------------------------------------------------------------------- loading


def _frame(lf: pl.LazyFrame) -> pl.DataFrame:
    """Select what the dossier reads and derive per-trace metrics (the response and message columns are dropped)."""
    have = set(lf.collect_schema().names())
    lf = lf.select([c for c in _COLUMNS if c in have])
    for c in _COLUMNS:
        if c not in have:
            lf = lf.with_columns(pl.lit(None).alias(c))
    ok = pl.col("status").fill_null("ok") != "error"
    prompt_tokens = (
        pl.col("input_tokens").cast(pl.Float64)
        + pl.col("cache_read_tokens").cast(pl.Float64).fill_null(0)
        + pl.col("cache_creation_tokens").cast(pl.Float64).fill_null(0)
    )
    df = lf.with_columns(
        prompt_tokens.alias("_tokens"),
        pl.col("messages").list.len().cast(pl.Float64).alias("_turns"),
        pl.col("messages").list.eval(pl.element().struct.field("text").str.len_chars()).list.sum()
        .cast(pl.Float64).alias("_conv"),
        pl.col("prompt_text").str.len_chars().cast(pl.Float64).alias("_pchars"),
        pl.col("response_text").str.len_chars().cast(pl.Float64).alias("_rchars"),
        (pl.col("tool_calls").list.len().fill_null(0) > 0).alias("_tool"),
        pl.col("tool_calls").list.eval(pl.element().struct.field("name")).alias("_tool_names"),
        (~ok | pl.col("error_type").is_not_null()).alias("_err"),
        pl.when(ok & pl.col("refusal").is_not_null()).then(pl.col("refusal") != "none").otherwise(None).alias("_ref"),
        pl.col("timestamp").dt.strftime("%G-W%V").alias("_week"),
    ).drop(_DROP).sort(["timestamp", "trace_id"]).collect()
    return df


def _topics(store: Store, *frames: pl.DataFrame) -> tuple[list[pl.DataFrame], bool]:
    """Attach ``_topic`` (the cluster label) from stored assignments when a cluster model exists; never embeds."""
    try:
        from tracelens.cluster import current_model, stored_assignments
        from tracelens.hashing import text_hash

        cm = current_model(store)
        assigned = stored_assignments(store, cm) if cm is not None else None
    except Exception:  # no cluster model, or the embedding extra is missing: topics are optional
        cm, assigned = None, None
    if cm is None or assigned is None or assigned.height == 0:
        return [f.with_columns(pl.lit(None, dtype=pl.String).alias("_topic")) for f in frames], False
    labels = {int(k): v for k, v in cm.labels.items()}
    lut = assigned.select("text_hash", pl.col("cluster_id").cast(pl.Int64))
    out = []
    for f in frames:
        h = f.select(pl.col("prompt_text").map_elements(text_hash, return_dtype=pl.String).alias("text_hash"))
        ids = h.join(lut, on="text_hash", how="left", maintain_order="left").get_column("cluster_id")
        names = [None if i is None else labels.get(int(i), f"cluster {i}") for i in ids.to_list()]
        out.append(f.with_columns(pl.Series("_topic", names, dtype=pl.String)))
    return out, True


# --------------------------------------------------------------------------- sections


def _weeks(df: pl.DataFrame, cur_start: dt.datetime) -> list[WeekRow]:
    rows = []
    for (week,), g in df.group_by("_week", maintain_order=True):
        tok = g.get_column("_tokens").drop_nulls()
        ref = g.get_column("_ref").drop_nulls()
        topic = g.get_column("_topic").drop_nulls()
        names = sorted({n for lst in g.get_column("_tool_names").to_list() if lst for n in lst if n})
        rows.append(WeekRow(
            week=str(week),
            current=bool(g.get_column("timestamp").max() >= cur_start),
            calls=g.height,
            tokens_median=_f(tok.median()) if tok.len() else None,
            tokens_p90=_f(tok.quantile(0.9, "nearest")) if tok.len() else None,
            turns_median=_f(g.get_column("_turns").median()),
            prompt_chars_median=_f(g.get_column("_pchars").median()),
            error_rate=_f(g.get_column("_err").mean()),
            refusal_rate=_f(ref.mean()) if ref.len() else None,
            tool_use_rate=_f(g.get_column("_tool").mean()),
            tools=names[:10],
            top_topic=str(topic.mode().sort()[0]) if topic.len() else None,
        ))
    return rows


def _arr(df: pl.DataFrame, col: str) -> np.ndarray:
    return df.get_column(col).drop_nulls().cast(pl.Float64).to_numpy()


def _rate(df: pl.DataFrame, col: str) -> tuple[int, int]:
    s = df.get_column(col).drop_nulls()
    return int(s.sum()), s.len()


def _changes(base: pl.DataFrame, cur: pl.DataFrame) -> list[Change]:
    out = [
        ratio_change("whole prompt tokens (median)", _arr(base, "_tokens"), _arr(cur, "_tokens")),
        ratio_change("conversation characters (median)", _arr(base, "_conv"), _arr(cur, "_conv")),
        ratio_change("prompt characters (median)", _arr(base, "_pchars"), _arr(cur, "_pchars")),
        ratio_change("messages per request (median)", _arr(base, "_turns"), _arr(cur, "_turns")),
        ratio_change("response characters (median)", _arr(base, "_rchars"), _arr(cur, "_rchars")),
        ratio_change("output tokens (median)", _arr(base, "output_tokens"), _arr(cur, "output_tokens")),
        ratio_change("latency ms (median)", _arr(base, "latency_ms"), _arr(cur, "latency_ms")),
    ]
    for metric, col in (("refusal rate", "_ref"), ("error rate", "_err"), ("tool-use rate", "_tool")):
        xb, nb = _rate(base, col)
        xc, nc = _rate(cur, col)
        out.append(rate_change(metric, xb, nb, xc, nc))
    return out


def _topic_change(base: pl.DataFrame, cur: pl.DataFrame) -> tuple[Change | None, str | None]:
    """The topic whose share of the user's traffic grew most (where they moved to), as a difference of proportions."""
    b, c = base.get_column("_topic").drop_nulls(), cur.get_column("_topic").drop_nulls()
    if not b.len() or not c.len():
        return None, None
    best: Change | None = None
    name = None
    # the topic the user moved to: the largest gain in share (a move away from one topic is a gain elsewhere)
    for t in sorted(set(b.to_list()) | set(c.to_list())):
        ch = rate_change(f"share of topic '{t}'", int((b == t).sum()), b.len(), int((c == t).sum()), c.len())
        if ch.effect is not None and (best is None or ch.effect > (best.effect or 0)):
            best, name = ch, t
    return best, name


def _underneath(store: Store, udf: pl.DataFrame, base_start, cur_start, cur_end) -> list[Underneath]:
    """The drift engine's deterministic variance checks on all traffic of the user's apps, baseline vs current."""
    from tracelens.analysis.drift import DriftConfig, analyze
    from tracelens.analysis.findings import DETERMINISTIC_KINDS
    apps = udf.get_column("app").unique().to_list()
    seg = pl.col("app").is_in([a for a in apps if a is not None])
    if None in apps:
        seg = seg | pl.col("app").is_null()

    def load(a, b):
        lf = store.scan(since=a, until=b).filter(seg)
        have = set(lf.collect_schema().names())
        return lf.select([c for c in _DET_COLUMNS if c in have]).sort("timestamp").collect()

    base, cur = load(base_start, cur_start), load(cur_start, cur_end)
    history = load(base_start - HISTORY, base_start)
    if not cur.height or not (base.height or history.height):
        return []
    report = analyze(base, cur, baseline_window=(base_start, cur_start), current_window=(cur_start, cur_end),
                     history=history, config=DriftConfig(kinds=tuple(sorted(DETERMINISTIC_KINDS))))
    ucur = udf.filter(pl.col("timestamp") >= cur_start)
    out = []
    for f in report.findings:
        if not f.significant or f.kind not in DETERMINISTIC_KINDS:
            continue
        out.append(Underneath(
            kind=f.kind, segment=f.segment, summary=f.summary, first_seen=f.first_seen,
            before=None if f.baseline_value is None else str(f.baseline_value),
            after=None if f.current_value is None else str(f.current_value),
            user_share=_user_share(ucur, f.kind, f.segment, f.current_value, f.first_seen),
            evidence=list(f.evidence)[:10],
        ))
    return out


#: what the deterministic variance checks read (no prompt or response text: a month of an app's traffic is big)
_DET_COLUMNS = (
    "trace_id", "timestamp", "provider", "model_requested", "model_returned", "model_family", "model_is_alias", "app",
    "system_prompt", "system_prompt_hash", "tools_hash", "tool_definitions", "temperature", "top_p", "max_tokens",
    "status", "error_type", "service_tier",
)
#: how far before the baseline a value counts as "seen before" (not new)
HISTORY = dt.timedelta(weeks=26)

_VALUE_COLUMN = {"model_snapshot": "model_returned", "system_prompt": "system_prompt_hash",
                 "tool_definitions": "tools_hash", "service_tier": "service_tier"}


def _affected(df: pl.DataFrame, kind: str, segment: str, value, first_seen) -> pl.Series:
    """Which of ``df``'s traces carry a change's new value (or, for other kinds, came after it in its app)."""
    col = _VALUE_COLUMN.get(kind)
    if col and isinstance(value, str) and value in set(df.get_column(col).drop_nulls().to_list()):
        return df.get_column(col) == value
    mask = pl.Series([True] * df.height)
    if segment.startswith("app="):
        app = segment[4:].split(" ", 1)[0]
        mask = df.get_column("app").fill_null("(none)") == app
    if first_seen is not None:
        mask = mask & (df.get_column("timestamp") >= first_seen)
    return mask


def _user_share(ucur: pl.DataFrame, kind, segment, value, first_seen) -> float | None:
    if not ucur.height:
        return None
    return float(_affected(ucur, kind, segment, value, first_seen).fill_null(False).mean())


def _aliases(udf: pl.DataFrame) -> list[AliasResolution]:
    a = (
        udf.filter(pl.col("model_is_alias").fill_null(False) & pl.col("model_returned").is_not_null())
        .group_by("model_requested", "model_returned")
        .agg(pl.col("timestamp").min().alias("t0"), pl.col("timestamp").max().alias("t1"), pl.len().alias("n"))
        .sort("t0", "model_returned")
    )
    return [AliasResolution(r, s, t0, t1, n) for r, s, t0, t1, n in a.iter_rows()]


def _underneath_candidate(u: Underneath, ubase: pl.DataFrame, ucur: pl.DataFrame) -> Candidate:
    """The user's outcome on the new value against their baseline traffic: refusal rate, else response length."""
    on_new = ucur.filter(_affected(ucur, u.kind, u.segment, u.after, u.first_seen).fill_null(False))
    best: Change | None = None
    for ch in (
        rate_change("your refusal rate on it", *_rate(ubase, "_ref"), *_rate(on_new, "_ref")),
        ratio_change("your response characters on it (median)", _arr(ubase, "_rchars"), _arr(on_new, "_rchars")),
    ):
        if ch.effect is not None and (best is None or (ch.supported, ch.strength) > (best.supported, best.strength)):
            best = ch
    what = {
        "model_snapshot": "model snapshot changed",
        "alias_usage": "the alias resolved differently",
        "system_prompt": "system prompt changed",
        "tool_definitions": "tool definitions changed",
        "sampling_params": "sampling parameters changed",
        "service_tier": "service tier changed",
    }[u.kind]
    detail = f"{u.before} → {u.after}" if u.kind != "service_tier" or u.before else str(u.after)
    when = f" on {u.first_seen:%Y-%m-%d}" if u.first_seen else ""
    title = f"{what} ({detail}{when}; {fmt.pct(u.user_share)} of your calls)"
    if best is not None:
        title += f": {best.describe()}"
    ev = on_new.sort("timestamp", descending=True).get_column("trace_id").head(5).to_list() or u.evidence[:5]
    return Candidate(u.kind, title, best, bool(best and best.supported), best.strength if best else 0.0, ev)


def _comparable(store: Store, user_id: str, cur: pl.DataFrame, cur_start, cur_end,
                topics: bool) -> list[Comparable]:
    snaps = cur.get_column("model_returned").drop_nulls().unique().to_list()
    if not snaps:
        return []
    lf = store.scan(since=cur_start, until=cur_end).filter(
        pl.col("model_returned").is_in(snaps) & (pl.col("user_id").is_null() | (pl.col("user_id") != user_id))
    )
    others = _frame(lf)
    out = []
    scopes = [(f"same snapshot ({', '.join(sorted(snaps))})", cur, others)]
    if topics:
        (others_t,), _ = _topics(store, others)
        mine = cur.get_column("_topic").drop_nulls().unique().to_list()
        if mine:
            scopes.append((f"same snapshot and topic ({', '.join(sorted(mine)[:3])})",
                           cur.filter(pl.col("_topic").is_in(mine)), others_t.filter(pl.col("_topic").is_in(mine))))
    for scope, u, o in scopes:
        if not o.height:
            continue
        out.append(Comparable(
            scope=scope, others=o.height, user=u.height,
            # "baseline" here is the others' traffic, "current" the user's
            refusal=rate_change("your refusal rate vs others", *_rate(o, "_ref"), *_rate(u, "_ref")),
            response_chars=ratio_change("your response characters vs others", _arr(o, "_rchars"), _arr(u, "_rchars")),
            latency_ms=ratio_change("your latency vs others", _arr(o, "latency_ms"), _arr(u, "latency_ms")),
        ))
    return out


def _same_prompt(store: Store, cur: pl.DataFrame, cur_start) -> SamePrompt | None:
    hashes = cur.get_column("prompt_hash").drop_nulls().unique().to_list()
    if not hashes:
        return None
    earlier = (
        store.scan(until=cur_start).filter(pl.col("prompt_hash").is_in(hashes))
        .select("trace_id", "timestamp", "prompt_hash", "status", "refusal").collect()
    )
    if not earlier.height:
        return SamePrompt(0, 0, 0, None, [])
    ok = pl.col("status").fill_null("ok") != "error"
    refused = (ok & pl.col("refusal").is_in(["partial", "full"])).alias("_r")
    e = earlier.with_columns(refused).sort("timestamp", "trace_id").group_by("prompt_hash").agg(
        pl.col("trace_id").last(), pl.col("timestamp").last(), (pl.col("_r").mean() > 0.5).alias("before"))
    c = cur.with_columns(refused).sort("timestamp", "trace_id").group_by("prompt_hash").agg(
        pl.col("trace_id").last().alias("cur_trace"), (pl.col("_r").mean() > 0.5).alias("now"))
    j = e.join(c, on="prompt_hash").sort("prompt_hash")
    pairs = [
        PromptPair(h, ts.strftime("%G-W%V"), t, ct, bool(b), bool(n))
        for h, t, ts, b, ct, n in j.select("prompt_hash", "trace_id", "timestamp", "before", "cur_trace", "now").iter_rows()
    ]
    newly = sum(1 for p in pairs if p.refused_now and not p.refused_before)
    gone = sum(1 for p in pairs if p.refused_before and not p.refused_now)
    n = len(pairs)
    change = None
    if n:
        d, lo, hi = paired_diff_ci(gone, newly, n, ALPHA)
        change = _score(Change("refusal rate on the same prompts (paired)", "difference",
                               sum(p.refused_before for p in pairs) / n, sum(p.refused_now for p in pairs) / n,
                               _f(d), _f(lo), _f(hi), n, n))
    pairs.sort(key=lambda p: (p.refused_now == p.refused_before, p.prompt_hash))
    return SamePrompt(n, newly, gone, change, pairs[:20])


def _replay(cur: pl.DataFrame) -> tuple[str | None, str | None]:
    for reason, cond in (
        ("most recent refused trace", pl.col("_ref").fill_null(False)),
        ("most recent failed trace", pl.col("_err")),
        ("most recent truncated trace (max_tokens)", pl.col("stop_reason") == "max_tokens"),
        ("most recent trace", pl.lit(True)),
    ):
        hit = cur.filter(cond.fill_null(False))
        if hit.height:
            return str(hit.get_column("trace_id")[-1]), reason
    return None, None


# --------------------------------------------------------------------------- the dossier


def _windows(last: dt.datetime, since, until, baseline_weeks: int):
    if until is not None:
        end = as_utc(until)
    else:  # midnight after the user's last trace: the current window is whole days
        end = last.replace(hour=0, minute=0, second=0, microsecond=0) + dt.timedelta(days=1)
    start = as_utc(since) if since is not None else end - dt.timedelta(days=CURRENT_DAYS)
    return start - dt.timedelta(weeks=baseline_weeks), start, end


def explain_user(store: Store, user_id: str, *, session_id: str | None = None, since: dt.datetime | None = None,
                 until: dt.datetime | None = None, now: dt.datetime | None = None, baseline_weeks: int = 4) -> Dossier:
    """The complaint dossier of one user (see the module docstring); ``now`` bounds the default window's end."""
    cond = pl.col("user_id") == user_id
    if session_id is not None:
        cond = cond & (pl.col("session_id") == session_id)
    who = "this user" + (" and session" if session_id else "")
    bound = until if until is not None else (as_utc(now) if now is not None else None)
    # the latest trace first (one column), then only the weeks the dossier reads
    last = store.scan(until=bound).filter(cond).select(pl.col("timestamp").max()).collect().item()
    if last is None:
        return Dossier(user_id, session_id, None, None, None, 0, 0, 0, notes=[f"No traces for {who} in the store."])
    base_start, cur_start, cur_end = _windows(last, since, until, baseline_weeks)
    udf = _frame(store.scan(since=base_start, until=cur_end).filter(cond))
    if not udf.height:
        return Dossier(user_id, session_id, cur_start, cur_end, base_start, 0, 0, 0,
                       notes=[f"No traces for {who} from {fmt.ts(base_start)} to {fmt.ts(cur_end)}."])
    (udf,), topics = _topics(store, udf)
    base = udf.filter(pl.col("timestamp") < cur_start)
    cur = udf.filter(pl.col("timestamp") >= cur_start)
    d = Dossier(user_id, session_id, cur_start, cur_end, base_start, udf.height, base.height, cur.height,
                topics_available=topics)
    d.weeks = _weeks(udf, cur_start)
    d.changes = _changes(base, cur)
    d.aliases = _aliases(udf)
    if not topics:
        d.notes.append("No topic clusters stored: topic mix not shown (run `tracelens cluster`).")
    if cur.height:
        d.underneath = _underneath(store, udf, base_start, cur_start, cur_end)
        d.comparable = _comparable(store, user_id, cur, cur_start, cur_end, topics)
        d.same_prompt = _same_prompt(store, cur, cur_start)
        d.replay_trace, d.replay_reason = _replay(cur)
        if d.replay_trace:
            d.replay_command = f"tracelens replay {shlex.quote(d.replay_trace)} --n 5"
    else:
        d.notes.append("The user has no traces in the complaint window.")
    d.verdict = _verdict(d, base, cur)
    return d


def _verdict(d: Dossier, base: pl.DataFrame, cur: pl.DataFrame) -> list[Candidate]:
    cands: list[Candidate] = []
    recent = cur.sort("timestamp", descending=True).get_column("trace_id").head(5).to_list()
    since_week = base.get_column("_week").min() if base.height else None
    # what the user sends: their conversation (every message, no system prompt or tools: those are the app's),
    # then their last turn, then the number of messages
    order = ("conversation characters", "prompt characters", "messages per request")
    lengths = sorted((c for c in d.changes if c.metric.split(" (")[0] in order and c.effect is not None),
                     key=lambda c: order.index(c.metric.split(" (")[0]))
    if lengths:
        best = next((c for c in lengths if c.supported), lengths[0])
        word = "grew" if (best.effect or 1) >= 1 else "shrank"
        what = best.metric.split(" (")[0]
        head = "your prompts changed" if best.supported else "your prompts did not measurably change"
        title = (f"{head} ({what} {word if best.supported else 'moved'} {best.effect:.1f}x since {since_week}, "
                 f"95% interval {_n(best.ci_low)}-{_n(best.ci_high)}x)")
        cands.append(Candidate("prompts", title, best, best.supported, best.strength, recent))
    topic, name = _topic_change(base, cur) if d.topics_available else (None, None)
    if topic is not None:
        head = "you moved to other topics" if topic.supported else "your topics did not measurably change"
        title = (f"{head} ('{name}' now {fmt.pct(topic.current)} of your calls, was {fmt.pct(topic.baseline)}; "
                 f"interval {fmt.pp(topic.ci_low)} to {fmt.pp(topic.ci_high)})")
        cands.append(Candidate("topics", title, topic, topic.supported, topic.strength, recent))
    tools = next((c for c in d.changes if c.metric == "tool-use rate"), None)
    if tools is not None and tools.effect is not None and tools.effect != 0:
        cands.append(Candidate("tools", f"you use tools differently ({tools.describe()})", tools, tools.supported,
                               tools.strength, recent))
    snapshots = {u.after for u in d.underneath if u.kind == "model_snapshot"}
    for u in d.underneath:
        if u.kind == "alias_usage" and (u.after in snapshots or not u.segment):
            # the alias now resolving to a new snapshot is that snapshot change, counted once; a shift in the
            # share of alias requests is listed underneath but explains nothing by itself
            continue  # the alias now resolving to a new snapshot is that snapshot change, counted once
        cands.append(_underneath_candidate(u, base, cur))
    cands.sort(key=lambda c: (not c.supported, -c.strength, c.key))
    if not any(c.supported for c in cands):
        cands.insert(0, Candidate("no_change", "no measurable change: nothing moved beyond its 95% interval",
                                  None, False, 0.0, recent))
    if d.n_current < MIN_TRACES or d.n_baseline < MIN_TRACES:
        cands.insert(0, Candidate(
            "too_little_data",
            f"too little data: {d.n_current} of your calls in the complaint window and {d.n_baseline} before "
            f"(at least {MIN_TRACES} each are needed to tell a change from noise)", None, False, 0.0, recent))
    return cands


# --------------------------------------------------------------------------- rendering (plain text / Markdown)


def _safe(text: Any) -> str:
    from tracelens.textsafe import visible

    return visible("" if text is None else str(text))


_MD_SPECIAL = re.compile(r"([\\`*_\[\]<>|])")


def _md(text: Any) -> str:
    """Log text for Markdown prose or a table cell: made visible, on one line, Markdown punctuation escaped (a
    user id such as ``[x](http://…)`` must not become a link, ``|`` must not end a cell)."""
    return _MD_SPECIAL.sub(r"\\\1", _safe(text).replace("\n", " "))


def _code(text: Any) -> str:
    """Log text as an inline code span (made visible, on one line; a backtick inside gets a double fence)."""
    t = _safe(text).replace("\n", " ")
    return f"`` {t} ``" if "`" in t else f"`{t}`"


def _rate_s(x: float | None) -> str:
    return fmt.pct(x) if x is not None else "n/a"


def render_markdown(d: Dossier) -> str:
    """The dossier as Markdown (every log-derived string made visible and escaped)."""
    L: list[str] = [f"# Explain user {_md(d.user_id)}" + (f" (session {_md(d.session_id)})" if d.session_id else ""), ""]
    if not d.traces:
        return "\n".join([*L, *(f"- {_safe(n)}" for n in d.notes), ""])
    L += [f"Complaint window {fmt.ts(d.current_start)} to {fmt.ts(d.current_end)} ({d.n_current} calls); "
          f"baseline from {fmt.ts(d.baseline_start)} ({d.n_baseline} calls).", "", "## Verdict", ""]
    for i, c in enumerate(d.verdict, 1):
        mark = "supported" if c.supported else ("not supported" if c.change is not None else "")
        ev = ", ".join(_code(t) for t in c.evidence[:3])
        L.append(f"{i}. **{_md(c.title)}**" + (f" ({mark}, strength {c.strength:.1f})" if mark else "")
                 + (f"; evidence {ev}" if ev else ""))
    L += ["", "## Your traffic over time", "",
          "| week | calls | whole prompt tokens median | p90 | messages | prompt chars | errors | refusals | tool use | top topic |",
          "|---|---:|---:|---:|---:|---:|---:|---:|---:|---|"]
    for w in d.weeks:
        L.append(f"| {w.week}{' (current)' if w.current else ''} | {w.calls} | {_n(w.tokens_median, 0)} | "
                 f"{_n(w.tokens_p90, 0)} | {_n(w.turns_median, 1)} | {_n(w.prompt_chars_median, 0)} | "
                 f"{_rate_s(w.error_rate)} | {_rate_s(w.refusal_rate)} | {_rate_s(w.tool_use_rate)}"
                 f"{' (' + _md(', '.join(w.tools[:3])) + ')' if w.tools else ''} | {_md(w.top_topic or '')} |")
    L += ["", "Current window against baseline (95% intervals; ratio: no change = 1, difference: no change = 0):", ""]
    L += [f"- {_md(c.describe())}{' (supported)' if c.supported else ''}" for c in d.changes]
    L += ["", "## What changed underneath", ""]
    if d.underneath:
        L += [f"- {_md(u.summary)} Your calls on it: {fmt.pct(u.user_share)}." for u in d.underneath]
    else:
        L.append("- No snapshot, system-prompt, tool, sampling or service-tier change in your apps in this period.")
    for a in d.aliases:
        L.append(f"- Alias {_md(a.requested)} resolved to {_md(a.returned)} ({a.calls} calls, "
                 f"{fmt.ts(a.first_seen)} to {fmt.ts(a.last_seen)}).")
    L += ["", "## You against comparable traffic", ""]
    if not d.comparable:
        L.append("- No other users' traffic on the same snapshot in the complaint window.")
    for c in d.comparable:
        L.append(f"- {_md(c.scope)}: you {c.user} calls, others {c.others}.")
        L += [f"  - {_md(x.describe())}" for x in (c.refusal, c.response_chars, c.latency_ms) if x is not None]
    L += ["", "## The same prompt in other weeks", ""]
    sp = d.same_prompt
    if sp is None or not sp.prompts:
        L.append("- None of your current prompts was sent before.")
    else:
        L.append(f"- {sp.prompts} of your current prompts were sent before: {sp.newly_refused} refused now but "
                 f"answered then, {sp.no_longer_refused} the other way round."
                 + (f" {_md(sp.change.describe())}." if sp.change else ""))
        L += [f"  - {_code(p.current_trace)} (now {'refused' if p.refused_now else 'answered'}) vs "
              f"{_code(p.earlier_trace)} ({p.earlier_week}, {'refused' if p.refused_before else 'answered'})"
              for p in sp.pairs[:5]]
    if d.replay_command:
        L += ["", "## Replay", "", f"Your {d.replay_reason}: {_code(d.replay_trace)}", "", "```",
              _safe(d.replay_command).replace("\n", " "), "```"]
    if d.notes:
        L += ["", "## Notes", "", *(f"- {_safe(n)}" for n in d.notes)]
    return "\n".join(L) + "\n"
