"""Refusal labels for one batch of trace rows, as ingest computes them.

``label_table(tbl)`` returns ``tbl`` with the ``refusal*`` columns set, the
same values ``tracelens.enrich.refusal.detect_columns`` gives for its rows
(no embeddings: ingest has none), for less work:

* The detector's layers are tried in order and the first decisive one wins;
  only the structured layer (provider signals: stop reasons, raw bodies,
  errors) reads anything but the response text. So each row is put to the
  structured layer alone (a few microseconds: substring tests on the raw
  body), and a row without a structured signal is labelled from its text
  alone, by the whole detector, once per distinct text in the batch. Logs
  repeat themselves (canned answers, refusals, evals at temperature 0) while
  their raw bodies never do (each holds its own message id), which is why
  the detector's own memo, keyed by every input, does not catch them.
* Rows with a structured signal (rare) get the detector with every input.

Input columns are read straight from the Arrow table and the outputs set on
it: no dataframe copy of the batch, and no polars, so this runs in the
ingest worker processes (forked, where polars' thread pool is unusable).
"""

from __future__ import annotations

import pyarrow as pa

from tracelens.enrich._refusal_structured import structured
from tracelens.enrich.refusal import INPUT_COLUMNS, REFUSAL_COLUMNS, detect_columns
from tracelens.schema import TRACE_SCHEMA

_FIELDS = [TRACE_SCHEMA.field(c) for c in REFUSAL_COLUMNS]
# The structured layer's keyword arguments, in INPUT_COLUMNS order after the text.
_SIGNALS = tuple(c for c in INPUT_COLUMNS if c != "response_text")


def label_columns(cols: dict[str, list], n: int) -> dict[str, list]:
    """``detect_columns(cols, n)`` (no embeddings), computing the text layer once per distinct text."""
    none_col = [None] * n
    texts = cols.get("response_text", none_col)
    signals = [cols.get(c, none_col) for c in _SIGNALS]
    flagged: list[int] = []  # rows whose provider fields may decide: the detector with every input
    by_text: dict = {}  # distinct text -> its rows
    for i, (text, *sig) in enumerate(zip(texts, *signals, strict=True)):
        if any(v is not None for v in sig):
            hs = sig[4]  # http_status (a float from some Arrow reads): as detect_columns passes it
            kw = dict(zip(_SIGNALS, sig, strict=True))
            kw["http_status"] = int(hs) if hs is not None else None
            if structured(text, **kw) is not None:
                flagged.append(i)
                continue
        rows = by_text.get(text)
        if rows is None:
            by_text[text] = [i]
        else:
            rows.append(i)
    out: dict[str, list] = {c: [None] * n for c in REFUSAL_COLUMNS}
    if by_text:
        uniq = list(by_text)
        got = detect_columns({"response_text": uniq}, len(uniq))
        for c in REFUSAL_COLUMNS:
            col, src = out[c], got[c]
            for j, rows in enumerate(by_text.values()):
                v = src[j]
                for i in rows:
                    col[i] = v
    if flagged:
        sub = {c: [v[i] for i in flagged] for c, v in cols.items()}
        got = detect_columns(sub, len(flagged))
        for c in REFUSAL_COLUMNS:
            col, src = out[c], got[c]
            for j, i in enumerate(flagged):
                col[i] = src[j]
    return out


def label_table(tbl: pa.Table) -> pa.Table:
    """``tbl`` with its ``refusal*`` columns set by the refusal detector (see the module docstring)."""
    n = tbl.num_rows
    cols = {c: tbl.column(c).to_pylist() for c in INPUT_COLUMNS if c in tbl.column_names}
    out = label_columns(cols, n)
    del cols
    for f in _FIELDS:
        tbl = tbl.set_column(tbl.schema.get_field_index(f.name), f, pa.array(out[f.name], type=f.type))
    return tbl
