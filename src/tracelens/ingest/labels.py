"""Refusal labels for one batch of trace rows, as ingest computes them.

``label_table(tbl)`` returns ``tbl`` with the ``refusal*`` columns set to what
``tracelens.enrich.refusal.detect_columns`` gives for its rows (no embeddings:
ingest has none). That function puts each row to the detector's structured
layer (provider signals: stop reasons, raw bodies, errors) and labels the rows
without a signal from their text once per distinct text in the batch, so the
repeats logs are full of (canned answers, refusals, evals at temperature 0)
cost one classification however their raw bodies differ.

Input columns are read straight from the Arrow table and the outputs set on
it: no dataframe copy of the batch, and no polars, so this runs in the
ingest worker processes (forked, where polars' thread pool is unusable).
"""

from __future__ import annotations

import pyarrow as pa

from tracelens.enrich.refusal import INPUT_COLUMNS, REFUSAL_COLUMNS, detect_columns
from tracelens.schema import TRACE_SCHEMA

_FIELDS = [TRACE_SCHEMA.field(c) for c in REFUSAL_COLUMNS]


def label_table(tbl: pa.Table) -> pa.Table:
    """``tbl`` with its ``refusal*`` columns set by the refusal detector (see the module docstring)."""
    n = tbl.num_rows
    cols = {c: tbl.column(c).to_pylist() for c in INPUT_COLUMNS if c in tbl.column_names}
    out = detect_columns(cols, n)
    del cols
    for f in _FIELDS:
        tbl = tbl.set_column(tbl.schema.get_field_index(f.name), f, pa.array(out[f.name], type=f.type))
    return tbl
