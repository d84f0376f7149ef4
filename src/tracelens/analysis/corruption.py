"""Output-corruption flags for responses (vectorised over a polars frame).

Contract: :func:`corruption_flags` takes a frame with ``prompt_text``,
``system_prompt``, ``response_text`` and ``stop_reason`` and returns a frame of
the same height with ``corrupt`` (bool, null when there is no response text)
and ``corrupt_reason`` (the first reason that applies, else null):

* ``replacement_char``: U+FFFD in the response (bytes lost in decoding);
* ``script``: at least 3 characters of a non-Latin script (Han, Kana, Hangul,
  Cyrillic, Greek, Arabic, Hebrew, Devanagari, Thai) that neither the prompt
  nor the system prompt uses -- the "answers in Chinese out of nowhere" bug;
* ``json``: a response that is, or fences, JSON (opens like a JSON object
  or array -- ``{"`` or ``[`` followed by a JSON value -- or holds a ```json
  block) and does not parse;
* ``code_fence``: an odd number of ``` fence lines.

The last two are not checked when ``stop_reason`` is ``max_tokens``: a
truncated response is expected to be cut mid-structure and is reported by the
stop_reason finding instead.
"""

from __future__ import annotations

import json
import re

import polars as pl

SCRIPTS: dict[str, str] = {
    "Han": r"\p{Han}",
    "Kana": r"[\p{Hiragana}\p{Katakana}]",
    "Hangul": r"\p{Hangul}",
    "Cyrillic": r"\p{Cyrillic}",
    "Greek": r"\p{Greek}",
    "Arabic": r"\p{Arabic}",
    "Hebrew": r"\p{Hebrew}",
    "Devanagari": r"\p{Devanagari}",
    "Thai": r"\p{Thai}",
}

_FENCE_JSON = re.compile(r"```json\s*\n(.*?)```", re.S)
# Looks like a JSON document: an object opening with a key (or empty), or an array opening with a JSON value.
# "[Yes]" or "{name}" are prose/templates, not JSON, and must not count as broken JSON.
_JSON_START = r'^\s*(?:\{\s*(?:"|\})|\[\s*(?:[\[\{"\]\d-]|true|false|null))'



def _json_broken(text: str) -> bool:
    t = text.strip()
    blocks = _FENCE_JSON.findall(t) if "```json" in t else []
    if not blocks and t[:1] in "{[":
        blocks = [t]
    for b in blocks:
        try:
            json.loads(b)
        except ValueError:
            return True
    return False


def corruption_flags(df: pl.DataFrame) -> pl.DataFrame:
    """Per-row ``corrupt`` / ``corrupt_reason`` columns (see the module docstring)."""
    resp = pl.col("response_text")
    work = df.select(
        resp.alias("r"),
        (pl.col("stop_reason").fill_null("") == "max_tokens").alias("trunc"),
    ).with_row_index("_row")
    has_text = work.get_column("r").is_not_null()
    out = work.select(
        "_row",
        pl.col("r").str.contains("\ufffd", literal=True).alias("replacement_char"),
        pl.col("r").str.contains(r"[^\x00-\x7F]").alias("non_ascii"),
        (~pl.col("trunc") & (pl.col("r").str.count_matches(r"(?m)^\s*```") % 2 == 1)).alias("code_fence"),
        (
            ~pl.col("trunc")
            & (pl.col("r").str.contains(_JSON_START) | pl.col("r").str.contains("```json", literal=True))
        ).alias("json_candidate"),
    )
    # Script checks only on rows with non-ASCII output: most traffic is skipped cheaply.
    script = pl.Series("script", [False] * df.height)
    nonascii = out.get_column("non_ascii").fill_null(False)
    sub = work.filter(nonascii)
    if sub.height:
        # the prompt context is only materialised for the (few) rows with non-ASCII output
        ctx = df.filter(nonascii).select(
            pl.concat_str([pl.col("prompt_text").fill_null(""), pl.col("system_prompt").fill_null("")], separator="\n")
        )
        sub = sub.with_columns(ctx.to_series().alias("ctx"))
        conds = [
            (pl.col("r").str.count_matches(pat) >= 3) & ~pl.col("ctx").str.contains(pat) for pat in SCRIPTS.values()
        ]
        hit = sub.select(pl.col("_row"), pl.any_horizontal(conds).fill_null(False).alias("hit")).filter("hit")
        if hit.height:
            s = script.to_numpy().copy()
            s[hit.get_column("_row").to_numpy()] = True
            script = pl.Series("script", s)
    jb = [False] * df.height
    cand = out.filter(pl.col("json_candidate").fill_null(False)).get_column("_row").to_list()
    if cand:
        texts = work.get_column("r").gather(cand).to_list()
        for row, t in zip(cand, texts, strict=True):
            jb[row] = _json_broken(t)
    flags = pl.DataFrame(
        {
            "replacement_char": out.get_column("replacement_char").fill_null(False),
            "script": script,
            "json": pl.Series(jb),
            "code_fence": out.get_column("code_fence").fill_null(False),
        }
    )
    reason = pl.when(pl.col("replacement_char")).then(pl.lit("replacement_char"))
    for name in ("script", "json", "code_fence"):
        reason = reason.when(pl.col(name)).then(pl.lit(name))
    res = flags.select(
        pl.any_horizontal("replacement_char", "script", "json", "code_fence").alias("corrupt"),
        reason.otherwise(None).alias("corrupt_reason"),
    )
    return res.with_columns(pl.when(has_text).then(pl.col("corrupt")).otherwise(None).alias("corrupt"))
