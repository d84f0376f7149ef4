"""Sample data generators (not used by the runtime): ``python -m tracelens.samples`` and seeded synthetic windows.

Two generators live here, apart from the code that ingests and analyses real
logs (nothing under ``tracelens`` outside this package imports it):

* the sample production-log generator (:mod:`.generator`, with its options
  and planted changes in :mod:`.plan` and its text corpus as package data in
  ``data/corpus.json``, read by :mod:`.corpus`), described below;
* :mod:`tracelens.samples.synthetic`: seeded synthetic trace windows (polars
  frames and embeddings) with known truth, for the drift calibration tests,
  the report goldens and the benchmarks.

The sample generator writes a realistic multi-week production log of a
fictional in-house Claude-powered product (Fernbrook Outfitters: a customer
``support-bot``, a ticket ``summarizer`` for agents and an internal
``code-helper``) in the Anthropic request/response log JSONL format
(``anthropic_log``), one file per ISO week (``anthropic-2026-W47.jsonl.gz``),
plus ``truth.json`` describing the variance sources planted in it.

Contract:

* Deterministic: the same options give byte-identical files (one seeded
  ``random.Random`` stream, no wall clock, gzip mtime 0).
* ``--end`` is the Sunday ending the last complete ISO week; the data covers
  ``--weeks`` whole weeks ending there. Planted changes are placed relative to
  the last week (Monday = ``end - 6 days``):

  1. ``snapshot_rollover``: support-bot's alias ``claude-sonnet-4-5`` resolves
     to ``claude-sonnet-4-5-20250929`` until Wednesday 14:00 UTC, then to
     ``claude-sonnet-4-5-20261112``.
  2. ``alias_adoption``: code-helper moves from the pinned
     ``claude-haiku-4-5-20251001`` to the alias ``claude-haiku-4-5`` on Tuesday
     10:00 UTC (the resolved model does not change). support-bot names its
     alias all along; summarizer always pins ``claude-sonnet-4-20250514``.
  3. ``system_prompt_change``: support-bot's system prompt gains a paragraph on
     Thursday 09:00 UTC.
  4. ``refusal_rate``: from the rollover on, support-bot's ``account_access``
     topic refuses ~25% of calls instead of ~4%; every other topic's refusal
     rate and the topic mix are unchanged.
  5. ``complaint``: customer ``4411`` asks support-bot about a refund on
     Saturday around 15:00 UTC and is refused (message id in truth.json).
  6. Variance behind one snapshot id (:mod:`.plants`, drawn from a second
     random stream): summarizer's standard tier slows at weekday peak hours
     (``peak_degradation``), support-bot's ``apac`` region cohort slows all
     day (``cohort_divergence``), code-helper's refusal rate steps up on
     Wednesday 11:00 within one snapshot (``refusal_step``), and summarizer
     user ``agent-052``'s pasted context grows about threefold
     (``context_growth``, with a complaint on Friday).

  Everything else (daily volume with noise and a weekly cycle, topic mix,
  latency, lengths, temperature, max_tokens, tools, error rate) is stationary.
* Ground truth travels with each record in ``metadata`` (stored by ingest as
  ``attributes``): ``synthetic_topic`` always, ``synthetic_refusal``
  (``none``/``partial``/``full``) on successful responses, and
  ``synthetic_planted`` on the complaint. They are labels for tests, not
  something a real logger would write.

All text is templated (``data/corpus.json``); nothing is copied from real data sets.
"""

from tracelens.samples.corpus import Intent, Topic
from tracelens.samples.generator import Generated, Record, WriteResult, generate, main, week_files, write_sample
from tracelens.samples.plan import (
    APP,
    APPS,
    COMPLAINT_USER,
    DEFAULT_END,
    GENERATOR_VERSION,
    HAIKU_ALIAS,
    HAIKU_PINNED,
    PLANTED_TOPIC,
    REFUSAL_AFTER,
    REFUSAL_BEFORE,
    REFUSAL_RATES,
    SNAPSHOT_NEW,
    SNAPSHOT_OLD,
    SONNET_ALIAS,
    SUMMARIZER_PINNED,
    AppSpec,
    Config,
    Plan,
    make_plan,
)

__all__ = [
    "APP",
    "APPS",
    "COMPLAINT_USER",
    "DEFAULT_END",
    "GENERATOR_VERSION",
    "HAIKU_ALIAS",
    "HAIKU_PINNED",
    "PLANTED_TOPIC",
    "REFUSAL_AFTER",
    "REFUSAL_BEFORE",
    "REFUSAL_RATES",
    "SNAPSHOT_NEW",
    "SNAPSHOT_OLD",
    "SONNET_ALIAS",
    "SUMMARIZER_PINNED",
    "AppSpec",
    "Config",
    "Generated",
    "Intent",
    "Plan",
    "Record",
    "Topic",
    "WriteResult",
    "generate",
    "main",
    "make_plan",
    "week_files",
    "write_sample",
]
