"""Refusal labels at ingest: the same as the detector's, computed once per distinct text, in the workers too.

``detect_columns`` (what ingest calls per batch) classifies the rows without a
provider signal once per distinct text, and must give exactly what ``detect``
gives row by row: rows that share a text but differ in their provider fields
(a refusal stop, a raw body naming a content filter, a policy error) must still
get their own structured labels, and rows with a text only get the text layer's.
"""

from __future__ import annotations

import json
import random

import pytest

import tracelens.ingest.pipeline as P
from tests.conftest import anthropic_line
from tracelens.enrich.refusal import DETECTOR_VERSION, INPUT_COLUMNS, REFUSAL_COLUMNS, detect, detect_columns
from tracelens.store import Store

REFUSE = "I'm sorry, but I can't help with that."
ANSWER = "The capital of France is Paris."

# (response_text, stop_reason, stop_reason_raw, stop_details, status, http_status, error_type, error_message,
#  provider, response_raw): each provider signal next to an ordinary row with the same text.
ROWS = [
    (ANSWER, "end_turn", "end_turn", None, "ok", 200, None, None, "anthropic", '{"id": "msg_1", "stop_reason": "end_turn"}'),
    (ANSWER, "end_turn", "end_turn", None, "ok", 200, None, None, "anthropic", '{"id": "msg_2", "stop_reason": "end_turn"}'),
    (ANSWER, "refusal", "refusal", json.dumps({"category": "bio"}), "ok", 200, None, None, "anthropic", None),
    (ANSWER, "end_turn", "end_turn", None, "ok", 200, None, None, "anthropic",
     '{"id": "msg_3", "stop_reason": "refusal"}'),
    (ANSWER, "other", "content_filter", None, "ok", 200, None, None, "openai",
     '{"choices": [{"finish_reason": "content_filter", "content_filter_results": {"hate": {"filtered": true}}}]}'),
    (ANSWER, "end_turn", "stop", None, "ok", 200, None, None, "openai",
     '{"choices": [{"message": {"role": "assistant", "refusal": "I cannot do that."}}]}'),
    (ANSWER, "end_turn", "stop", None, "ok", 200, None, None, "openai",
     '{"choices": [{"message": {"role": "assistant", "refusal": null}}]}'),
    (None, "error", None, None, "error", 400, "invalid_request_error", "Your request was flagged by our content policy.",
     "openai", None),
    (None, None, None, None, "error", 400.0, None, None, "openai",
     '{"error": {"message": "blocked due to content policy"}}'),
    ("", "refusal", "refusal", None, "ok", 200, None, None, "anthropic", None),
    ("", "end_turn", "end_turn", None, "ok", 200, None, None, "anthropic", None),
    (REFUSE, "end_turn", "end_turn", None, "ok", 200, None, None, "anthropic", '{"id": "msg_4"}'),
    (REFUSE, "end_turn", "end_turn", None, "ok", 200, None, None, "anthropic", '{"id": "msg_5"}'),
    (REFUSE, "other", "guardrail_intervened", None, "ok", 200, None, None, "bedrock", None),
    (REFUSE, None, None, None, None, None, None, None, None, None),
    (None, None, None, None, None, None, None, None, None, None),
    ("Ich kann Ihnen dabei leider nicht helfen.", "end_turn", "end_turn", None, "ok", 200, None, None, "anthropic",
     "not json at all"),
]


def _columns(rows: list[tuple]) -> dict[str, list]:
    return {c: [r[j] for r in rows] for j, c in enumerate(INPUT_COLUMNS)}


def _row_by_row(cols: dict[str, list], n: int) -> dict[str, list]:
    """``detect`` on each row alone, as the columns ``detect_columns`` returns."""
    out: dict[str, list] = {c: [] for c in REFUSAL_COLUMNS}
    for i in range(n):
        kw = {c: cols[c][i] for c in INPUT_COLUMNS if c in cols and c != "response_text"}
        if kw.get("http_status") is not None:
            kw["http_status"] = int(kw["http_status"])
        r = detect(cols["response_text"][i] if "response_text" in cols else None, **kw)
        for c, v in zip(REFUSAL_COLUMNS, (r.label, float(r.score), r.source, r.category, r.evidence,
                                          DETECTOR_VERSION), strict=True):
            out[c].append(v)
    return out


def test_rows_get_what_the_detector_gives():
    cols = _columns(ROWS)
    assert detect_columns(cols, len(ROWS)) == _row_by_row(cols, len(ROWS))


def test_shuffled_repeats_and_missing_columns_match_the_detector():
    rng = random.Random(7)
    rows = [rng.choice(ROWS) for _ in range(300)]
    cols = _columns(rows)
    assert detect_columns(cols, len(rows)) == _row_by_row(cols, len(rows))
    only_text = {"response_text": cols["response_text"]}
    assert detect_columns(only_text, len(rows)) == _row_by_row(only_text, len(rows))
    assert detect_columns({}, 3) == _row_by_row({}, 3)


def test_labels_are_not_shared_between_rows_of_one_text():
    out = detect_columns(_columns(ROWS[:4]), 4)
    assert out["refusal"] == ["none", "none", "full", "full"]
    assert out["refusal_source"] == [None, None, "structured", "structured"]


@pytest.mark.skipif(not P._WorkerPool(2).size, reason="the parallel path needs fork (Linux)")
@pytest.mark.parametrize("workers", [0, 2])
def test_ingest_labels_every_row_as_the_detector_does(tmp_path, workers):
    lines = []
    for i in range(40):
        if i % 10 == 3:
            lines.append(anthropic_line(i, text=REFUSE))
        elif i % 10 == 7:
            lines.append(anthropic_line(i, text=ANSWER, stop="refusal"))
        else:
            lines.append(anthropic_line(i, text=ANSWER if i % 2 else None))
    src = tmp_path / "log.jsonl"
    src.write_text("\n".join(lines) + "\n")
    store = Store(tmp_path / "store", create=True)
    s = P.ingest(store, [str(src)], batch_size=7, workers=workers)
    assert s.files[0].stored == 40 and s.files[0].reconciles
    df = store.scan().collect().sort("trace_id")
    cols = {c: df.get_column(c).to_list() for c in INPUT_COLUMNS if c in df.columns}
    want = detect_columns(cols, df.height)
    got = {c: df.get_column(c).to_list() for c in REFUSAL_COLUMNS}
    assert got == want
    assert got["refusal"].count("full") == 8  # 4 refusal texts and 4 refusal stops
