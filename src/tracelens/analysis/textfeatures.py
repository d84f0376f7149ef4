"""What the drift engine needs from the text columns, computed where the text is read.

Contract:

* :func:`feature_exprs` are the per-trace features of the text columns that
  the detectors read (``_resp_len``, ``_resp_hash``, ``_prompt_len``,
  ``_ask``); :func:`text_features` adds the output-corruption flags (``_bad``,
  ``_why``, from :func:`tracelens.analysis.corruption.corruption_flags`). They
  are the same expressions ``analysis.drift.analyze`` evaluates on frames
  that carry the text, so both give the same values.
* :class:`TextSummary` is what the engine keeps of the texts besides those
  features: which text columns hold any value (``present``) and each
  distinct system-prompt and tool-definitions version (``texts``: kind ->
  ``(app, hash) -> text``, first occurrence), merged chunk by chunk with
  :meth:`TextSummary.merge`; and, set with :meth:`TextSummary.with_prompts`,
  the prompts of the traces that were embedded (``prompts``: ``trace_id``,
  ``prompt_text``), which label the engine's own topic clusters when no
  topic-cluster model labels them (``analysis.strata.build_topics``).
* ``analyze(..., text_summary=...)`` accepts frames that carry
  :data:`FEATURE_COLUMNS` in place of the text columns: a week of ten million
  traces is then read a day at a time and its text (gigabytes) is never held
  whole (``tracelens.weekly.load_window_features``).
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace

import polars as pl

TEXT_COLUMNS = ("prompt_text", "response_text", "system_prompt", "tool_definitions")
#: columns a frame carries in place of the text columns (with a ``TextSummary``)
FEATURE_COLUMNS = ("_resp_len", "_resp_hash", "_prompt_len", "_ask", "_bad", "_why")
FEATURE_TYPES: dict[str, pl.DataType] = {
    "_resp_len": pl.UInt32, "_resp_hash": pl.UInt64, "_prompt_len": pl.UInt32, "_ask": pl.UInt64,
    "_bad": pl.Boolean, "_why": pl.String,
}


def feature_exprs() -> list[pl.Expr]:
    """Per-trace text features (needs ``prompt_text``, ``response_text``, ``system_prompt`` and ``app``)."""
    return [
        pl.col("response_text").str.len_chars().alias("_resp_len"),
        pl.col("response_text").hash(seed=0).alias("_resp_hash"),
        # the context size in characters where no token counts were logged (system prompt + last user turn)
        pl.when(pl.col("prompt_text").is_not_null())
        .then(pl.col("prompt_text").str.len_chars() + pl.col("system_prompt").str.len_chars().fill_null(0))
        .alias("_prompt_len"),
        # the ask (app + last user turn): matches the same question across system-prompt versions and histories
        pl.when(pl.col("prompt_text").is_not_null())
        .then(pl.struct(pl.col("app"), pl.col("prompt_text")).hash(seed=0))
        .alias("_ask"),
    ]


def text_features(df: pl.DataFrame) -> pl.DataFrame:
    """:data:`FEATURE_COLUMNS` of ``df`` (a frame with the text columns, ``app`` and ``stop_reason``)."""
    from tracelens.analysis.corruption import corruption_flags

    df = df.with_columns(
        [pl.lit(None, dtype=pl.String).alias(c) for c in (*TEXT_COLUMNS, "app", "stop_reason") if c not in df.columns]
    )
    out = df.select(feature_exprs())
    cf = corruption_flags(df)
    return out.with_columns(cf.get_column("corrupt").alias("_bad"), cf.get_column("corrupt_reason").alias("_why"))


@dataclass
class TextSummary:
    """Which text columns hold a value, and the distinct system-prompt / tool-definitions versions."""

    present: dict[str, bool] = field(default_factory=lambda: dict.fromkeys(TEXT_COLUMNS, False))
    texts: dict[str, dict] = field(default_factory=lambda: {"system_prompt": {}, "tool_definitions": {}})
    #: trace_id, prompt_text of the embedded traces (the embedding sample), or None
    prompts: pl.DataFrame | None = field(default=None, compare=False)

    @classmethod
    def of(cls, df: pl.DataFrame) -> TextSummary:
        """The summary of one frame with the text columns (``app`` and the hash columns too)."""
        from tracelens.analysis.variance import text_lookup

        present = {c: c in df.columns and df.get_column(c).null_count() < df.height for c in TEXT_COLUMNS}
        texts = {
            kind: text_lookup(df, hcol, kind) if present[kind] else {}
            for kind, hcol in (("system_prompt", "system_prompt_hash"), ("tool_definitions", "tools_hash"))
        }
        return cls(present, texts)

    def merge(self, later: TextSummary) -> TextSummary:
        """This summary followed by ``later`` (a version's first occurrence wins)."""
        prompts = [p for p in (self.prompts, later.prompts) if p is not None]
        return TextSummary(
            {c: self.present.get(c, False) or later.present.get(c, False) for c in TEXT_COLUMNS},
            {k: {**later.texts.get(k, {}), **self.texts.get(k, {})} for k in ("system_prompt", "tool_definitions")},
            pl.concat(prompts, how="vertical_relaxed") if prompts else None,
        )

    def with_prompts(self, df: pl.DataFrame) -> TextSummary:
        """This summary with the prompts of ``df`` (``trace_id``, ``prompt_text``: the embedded traces)."""
        return replace(self, prompts=df.select("trace_id", "prompt_text"))
