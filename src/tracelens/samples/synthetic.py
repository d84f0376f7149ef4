"""Seeded synthetic trace windows with known truth, for calibration tests, goldens and benchmarks.

Contract: :func:`make_pair` returns a :class:`SyntheticPair` -- baseline and
current polars frames with the trace columns the drift engine reads (schema
names and types), a ``cluster_id`` topic column, optional L2-normalised
prompt/response embeddings (float32, or float16 when asked), topic labels and
the planted truth. Everything is vectorised (no Python loop over rows), so a
million traces per window take seconds. Same seed -> same frames.

The world: ``topics`` prompt topics, each with a share per window and a
refusal rate per window. A share ``repeat_share`` of traffic re-sends prompts
from a small per-topic pool (so the same prompt occurs in both windows); the
rest are unique prompts. Optionally a set of "risky" recurring prompts inside
topic 0 that are refused with probability ``risky_refusal`` in both windows
(their share can surge without any model change). Embeddings: prompts sit
around per-topic centres; responses are the prompt plus a per-topic offset plus
noise, plus ``response_shift`` in the current window (a planted model change).
``refusal_new_snapshot`` plants a refusal change that starts with the snapshot
rollover (``snapshot_change_at``) instead of at the window boundary.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

import numpy as np
import polars as pl

T0 = datetime(2025, 1, 6, tzinfo=UTC)  # a Monday
WEEK = timedelta(days=7)

TOPIC_NAMES = (
    "billing and refunds",
    "password reset",
    "python debugging",
    "sql queries",
    "travel planning",
    "medical symptoms",
    "legal contracts",
    "recipe ideas",
    "chemistry homework",
    "security testing",
    "poetry writing",
    "stock advice",
)

SYSTEM_PROMPTS = {
    "support": "You are a helpful support agent for Acme.\nBe concise.\nNever share internal URLs.",
    "coding": "You are a senior engineer.\nAnswer with code first.",
    "general": "You are a friendly assistant.",
}
NEW_SUPPORT_PROMPT = (
    "You are a helpful support agent for Acme.\nBe concise and polite.\nNever share internal URLs.\n"
    "Escalate legal questions to a human."
)
TOOLS = '[{"name": "lookup_order", "input_schema": {"type": "object", "properties": {"id": {"type": "string"}}}}]'

_TOOL_CALL = pl.Struct({"id": pl.String, "name": pl.String, "arguments": pl.String})


@dataclass
class Scenario:
    """Knobs of the synthetic world (defaults: no change between windows)."""

    n_baseline: int = 2000
    n_current: int = 2000
    topics: int = 8
    dim: int = 16
    shares_b: tuple[float, ...] | None = None  # topic shares; None -> fixed uneven default
    shares_c: tuple[float, ...] | None = None  # None -> same as baseline
    refusal_b: tuple[float, ...] | None = None  # per-topic refusal rate; None -> default
    refusal_c: tuple[float, ...] | None = None  # None -> same as baseline
    repeat_share: float = 0.3
    pool_per_topic: int = 40
    risky_prompts: int = 0
    risky_share_b: float = 0.0
    risky_share_c: float = 0.0
    risky_refusal: float = 0.9
    length_factor_c: float = 1.0  # multiplies current output tokens
    latency_factor_c: float = 1.0
    response_shift: float = 0.0  # size of the planted shift of current response embeddings
    snapshot_change_at: datetime | None = None
    refusal_new_snapshot: tuple[float, ...] | None = None  # per-topic refusal rate of traces on the new snapshot
    system_prompt_change_at: datetime | None = None
    temperature_change_at: datetime | None = None
    error_rate: float = 0.005
    corrupt_rate_c: float = 0.0
    embeddings: bool = True
    emb_dtype: str = "float32"
    start_b: datetime = T0
    start_c: datetime = T0 + WEEK
    duration: timedelta = WEEK
    seed: int = 0


@dataclass
class SyntheticPair:
    """Frames, embeddings and truth of one synthetic comparison."""

    baseline: pl.DataFrame
    current: pl.DataFrame
    prompt_emb: tuple[np.ndarray, np.ndarray] | None
    response_emb: tuple[np.ndarray, np.ndarray] | None
    cluster_labels: dict[int, str]
    baseline_window: tuple[datetime, datetime]
    current_window: tuple[datetime, datetime]
    truth: dict = field(default_factory=dict)


def default_shares(k: int) -> np.ndarray:
    """Uneven but fixed topic shares."""
    w = 1.0 / np.arange(1, k + 1) ** 0.5
    return w / w.sum()


def default_refusal(k: int) -> np.ndarray:
    """Per-topic refusal rates from 1% to 12%."""
    return np.linspace(0.01, 0.12, k)


def _unit(x: np.ndarray) -> np.ndarray:
    x = np.asarray(x, dtype=np.float32)
    return x / np.sqrt(np.einsum("ij,ij->i", x, x))[:, None]


class _World:
    """Topic centres, prompt pools and the prompt->response map, shared by both windows."""

    def __init__(self, sc: Scenario):
        rng = np.random.default_rng(10_000 + sc.seed)
        k, d = sc.topics, sc.dim
        self.centres = (_unit(rng.standard_normal((k, d))) * 3.0).astype(np.float32)
        # Noise is scaled by 1/sqrt(d) so that topic structure survives in high dimensions: a prompt's
        # own offset has norm ~1.5 against topic centres at distance 3, whatever d is.
        self.sp = np.float32(1.5 / np.sqrt(d))
        self.sr = np.float32(1.0 / np.sqrt(d))
        self.pool = (rng.standard_normal((k, sc.pool_per_topic, d)) * self.sp).astype(np.float32)
        self.risky = (rng.standard_normal((max(sc.risky_prompts, 1), d)) * self.sp).astype(np.float32)
        self.resp_topic = _unit(rng.standard_normal((k, d))).astype(np.float32)
        self.shift_dir = _unit(rng.standard_normal((1, d)))[0].astype(np.float32)
        self.len_mu = rng.uniform(4.0, 6.0, k)


def _window(sc: Scenario, world: _World, w: int, rng) -> tuple[pl.DataFrame, np.ndarray | None, np.ndarray | None]:
    n = sc.n_baseline if w == 0 else sc.n_current
    k = sc.topics
    start = sc.start_b if w == 0 else sc.start_c
    shares = np.asarray(sc.shares_b if sc.shares_b is not None else default_shares(k), float)
    if w == 1 and sc.shares_c is not None:
        shares = np.asarray(sc.shares_c, float)
    shares = shares / shares.sum()
    ref = np.asarray(sc.refusal_b if sc.refusal_b is not None else default_refusal(k), float)
    if w == 1 and sc.refusal_c is not None:
        ref = np.asarray(sc.refusal_c, float)
    risky_share = sc.risky_share_b if w == 0 else sc.risky_share_c

    topic = rng.choice(k, size=n, p=shares)
    is_risky = (rng.random(n) < risky_share) if sc.risky_prompts else np.zeros(n, bool)
    topic[is_risky] = 0
    pooled = rng.random(n) < sc.repeat_share
    slot = rng.integers(0, sc.pool_per_topic, n)
    risky_id = rng.integers(0, max(sc.risky_prompts, 1), n)
    uniq = np.arange(n) + (w + 1) * 10_000_000 + sc.seed * 100_000_000
    # prompt id: pooled prompts are shared across windows, unique ones are not
    pid = np.where(pooled, topic * 1_000 + slot, uniq)
    pid = np.where(is_risky, 900_000 + risky_id, pid)
    p_ref = np.where(is_risky, sc.risky_refusal, ref[topic])
    refused = rng.random(n) < p_ref

    secs = np.sort(rng.random(n)) * sc.duration.total_seconds()
    ts = np.datetime64(start.replace(tzinfo=None), "us") + (secs * 1e6).astype("timedelta64[us]")
    ok = rng.random(n) >= sc.error_rate
    if sc.refusal_new_snapshot is not None and sc.snapshot_change_at is not None:
        # a behaviour change that ships with the snapshot; drawn from its own stream so that every other
        # scenario (and the goldens) keep their exact draws
        on_new = np.datetime64(sc.snapshot_change_at.replace(tzinfo=None), "us") <= ts
        p_new = np.where(is_risky, sc.risky_refusal, np.asarray(sc.refusal_new_snapshot, float)[topic])
        redraw = np.random.default_rng([sc.seed, w, 7]).random(n) < p_new
        refused = np.where(on_new, redraw, refused)

    apps = np.array(["support", "coding", "general"])
    app = apps[np.minimum(topic % 3, 2)]
    tokens = np.exp(world.len_mu[topic] + 0.5 * rng.standard_normal(n))
    tokens = np.where(refused, 20 + rng.integers(0, 15, n), tokens)
    if w == 1:
        tokens = tokens * sc.length_factor_c
    tokens = np.maximum(1, np.round(tokens)).astype(np.int64)
    latency = (300 + 15.0 * tokens) * np.exp(0.2 * rng.standard_normal(n))
    if w == 1:
        latency = latency * sc.latency_factor_c
    use_tool = (app == "support") & (rng.random(n) < 0.3) & ~refused
    stop = np.where(use_tool, "tool_use", np.where(tokens >= 1024, "max_tokens", "end_turn"))

    new_snap = np.zeros(n, bool)
    if sc.snapshot_change_at is not None:
        new_snap = np.datetime64(sc.snapshot_change_at.replace(tzinfo=None), "us") <= ts
    new_sys = np.zeros(n, bool)
    if sc.system_prompt_change_at is not None:
        new_sys = (np.datetime64(sc.system_prompt_change_at.replace(tzinfo=None), "us") <= ts) & (app == "support")
    temp = np.full(n, 0.7)
    if sc.temperature_change_at is not None:
        cut = (np.datetime64(sc.temperature_change_at.replace(tzinfo=None), "us") <= ts) & (app == "coding")
        temp[cut] = 1.0
    corrupt = (rng.random(n) < sc.corrupt_rate_c) if w == 1 else np.zeros(n, bool)

    df = pl.DataFrame(
        {
            "_i": np.arange(n),
            "timestamp": ts,
            "topic": topic,
            "pid": pid,
            "refused": refused,
            "ok": ok,
            "app": app,
            "tokens": tokens,
            "latency": latency,
            "use_tool": use_tool,
            "stop": stop,
            "new_snap": new_snap,
            "new_sys": new_sys,
            "temperature": temp,
            "corrupt": corrupt,
            "score": rng.random(n),
        }
    )
    names = pl.Series("names", list(TOPIC_NAMES[:k]) + [f"topic {i}" for i in range(len(TOPIC_NAMES), k)])
    # strings are built by polars expressions: numpy unicode arrays of a million prompts would cost gigabytes
    sys_prompt = pl.col("app").replace_strict(SYSTEM_PROMPTS, return_dtype=pl.String)
    df = df.with_columns(
        pl.col("timestamp").dt.replace_time_zone("UTC"),
        pl.when(pl.col("new_snap"))
        .then(pl.lit("claude-sonnet-4-5-20251101"))
        .otherwise(pl.lit("claude-sonnet-4-5-20250929"))
        .alias("model_returned"),
        pl.when(pl.col("new_snap")).then(pl.lit("2025-11-01")).otherwise(pl.lit("2025-09-29")).alias("model_snapshot"),
        pl.when(pl.col("new_sys")).then(pl.lit(NEW_SUPPORT_PROMPT)).otherwise(sys_prompt).alias("system_prompt"),
        pl.col("topic").replace_strict(dict(enumerate(names.to_list())), return_dtype=pl.String).alias("tname"),
    )
    ptext = pl.format("About {}: question #{}?", pl.col("tname"), pl.col("pid"))
    resp_ok = pl.format("Here is an answer about {} ({} tokens).", pl.col("tname"), pl.col("tokens"))
    resp = (
        pl.when(~pl.col("ok"))
        .then(None)
        .when(pl.col("refused"))
        .then(pl.lit("I'm sorry, but I can't help with that request."))
        .when(pl.col("corrupt"))
        .then(pl.format("Here is an answer about {} \ufffd\ufffd.", pl.col("tname")))
        .otherwise(resp_ok)
    )
    tool_call = pl.struct(
        pl.format("toolu_{}_{}", pl.lit(w), pl.col("_i")).alias("id"),
        pl.lit("lookup_order").alias("name"),
        pl.lit('{"id": "A1"}').alias("arguments"),
    )
    out = df.select(
        pl.format("{}-{}-{}", pl.lit("bc"[w]), pl.lit(sc.seed), pl.col("_i")).alias("trace_id"),
        pl.col("timestamp"),
        pl.lit("anthropic").alias("provider"),
        pl.lit("claude-sonnet-4-5").alias("model_requested"),
        pl.col("model_returned"),
        pl.lit("claude-sonnet-4-5").alias("model_family"),
        pl.col("model_snapshot"),
        pl.lit(True).alias("model_is_alias"),
        pl.col("app"),
        pl.format("user{}", pl.col("pid") % 97).alias("user_id"),
        pl.col("system_prompt"),
        pl.col("system_prompt").hash(seed=1).cast(pl.String).str.slice(0, 16).alias("system_prompt_hash"),
        pl.when(pl.col("app") == "support").then(pl.lit("a1b2c3d4e5f60718")).otherwise(None).alias("tools_hash"),
        pl.when(pl.col("app") == "support").then(pl.lit(TOOLS)).otherwise(None).alias("tool_definitions"),
        pl.col("pid").hash(seed=2).cast(pl.String).str.slice(0, 16).alias("prompt_hash"),
        ptext.alias("prompt_text"),
        resp.alias("response_text"),
        pl.when(pl.col("ok")).then(pl.col("stop")).otherwise(pl.lit("error")).alias("stop_reason"),
        pl.col("temperature"),
        pl.lit(None, dtype=pl.Float64).alias("top_p"),
        pl.lit(1024, dtype=pl.Int64).alias("max_tokens"),
        pl.when(pl.col("ok")).then(pl.col("tokens")).otherwise(None).alias("output_tokens"),
        (pl.col("pid") % 200 + 50).cast(pl.Int64).alias("input_tokens"),
        pl.col("latency").alias("latency_ms"),
        (pl.col("latency") * 0.1).alias("time_to_first_token_ms"),
        pl.when(pl.col("ok")).then(pl.lit("ok")).otherwise(pl.lit("error")).alias("status"),
        pl.when(pl.col("ok")).then(None).otherwise(pl.lit("overloaded_error")).alias("error_type"),
        pl.when(pl.col("use_tool") & pl.col("ok"))
        .then(pl.concat_list(tool_call))
        .otherwise(pl.lit([], dtype=pl.List(_TOOL_CALL)))
        .alias("tool_calls"),
        pl.lit("standard").alias("service_tier"),
        pl.when(~pl.col("ok"))
        .then(None)
        .when(pl.col("refused"))
        .then(pl.lit("full"))
        .otherwise(pl.lit("none"))
        .alias("refusal"),
        pl.when(pl.col("refused")).then(0.8 + 0.2 * pl.col("score")).otherwise(0.2 * pl.col("score")).alias("refusal_score"),
        pl.col("topic").cast(pl.Int64).alias("cluster_id"),
    )
    if not sc.embeddings:
        return out, None, None
    d = sc.dim
    dt = np.float16 if sc.emb_dtype == "float16" else np.float32
    pe_out = np.empty((n, d), dtype=dt)
    re_out = np.empty((n, d), dtype=dt)
    chunk = 200_000  # bounded temporaries: a million rows x 384 dims in float32 would be 1.5 GB each
    for a in range(0, n, chunk):
        sl = slice(a, min(n, a + chunk))
        m = sl.stop - sl.start
        t_, s_, p_, r_ = topic[sl], slot[sl], pooled[sl], is_risky[sl]
        # in-place steps only: this loop is the generator's whole cost at a million rows
        pe = rng.standard_normal((m, d), dtype=np.float32)
        pe *= world.sp
        i = np.flatnonzero(p_)
        pe[i] = world.pool[t_[i], s_[i]]
        i = np.flatnonzero(r_)
        pe[i] = world.risky[risky_id[sl][i]]
        pe += world.centres[t_]
        pe /= np.sqrt(np.einsum("ij,ij->i", pe, pe))[:, None]
        re_ = rng.standard_normal((m, d), dtype=np.float32)
        re_ *= world.sr
        re_ += pe
        re_ += 0.8 * world.resp_topic[t_]
        i = np.flatnonzero(refused[sl])
        re_[i] += 1.5 * world.resp_topic[(t_[i] + 1) % k]
        if w == 1 and sc.response_shift:
            re_ += np.float32(sc.response_shift) * world.shift_dir
        re_ /= np.sqrt(np.einsum("ij,ij->i", re_, re_))[:, None]
        pe_out[sl] = pe
        re_out[sl] = re_
    return out, pe_out, re_out


def make_pair(sc: Scenario | None = None, **kw) -> SyntheticPair:
    """Build one seeded baseline/current pair (keyword arguments override Scenario fields)."""
    sc = sc or Scenario()
    if kw:
        sc = Scenario(**{**sc.__dict__, **kw})
    world = _World(sc)
    rng = np.random.default_rng(sc.seed)
    b, pb, rb = _window(sc, world, 0, rng)
    c, pc, rc = _window(sc, world, 1, rng)
    labels = {i: (TOPIC_NAMES[i] if i < len(TOPIC_NAMES) else f"topic {i}") for i in range(sc.topics)}
    truth = {
        "snapshot_change_at": sc.snapshot_change_at,
        "system_prompt_change_at": sc.system_prompt_change_at,
        "temperature_change_at": sc.temperature_change_at,
    }
    return SyntheticPair(
        baseline=b,
        current=c,
        prompt_emb=(pb, pc) if sc.embeddings else None,
        response_emb=(rb, rc) if sc.embeddings else None,
        cluster_labels=labels,
        baseline_window=(sc.start_b, sc.start_b + sc.duration),
        current_window=(sc.start_c, sc.start_c + sc.duration),
        truth=truth,
    )


def make_history(sc: Scenario | None = None, weeks: int = 8, n_per_week: int = 500) -> pl.DataFrame:
    """``weeks`` weekly windows of baseline-like traffic ending where ``sc.start_c`` begins."""
    sc = sc or Scenario()
    world = _World(sc)
    frames = []
    for i in range(weeks):
        start = sc.start_c - (weeks - i) * WEEK
        s = Scenario(**{**sc.__dict__, "n_baseline": n_per_week, "start_b": start, "duration": WEEK, "seed": sc.seed + 1000 + i})
        f, _, _ = _window(s, world, 0, np.random.default_rng(s.seed))
        frames.append(f.with_columns(pl.format("h{}-{}", pl.lit(i), pl.col("trace_id")).alias("trace_id")))
    return pl.concat(frames)
