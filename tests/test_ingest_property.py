"""Property: corrupting a valid log never makes ingest raise, and every record is accounted for.

Random corruption (byte flips, truncation, inserted garbage lines, duplicated
lines, records with wrong JSON types) of a valid anthropic_log / openai_log
file must still give ``read == stored + duplicates + quarantined + skipped``,
with the store holding exactly what was reported stored. Deterministic
(``derandomize``) and small enough to run in a few seconds.
"""

from __future__ import annotations

import json
import tempfile
from pathlib import Path
from unittest import mock

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.conftest import anthropic_line
from tracelens.ingest.base import IngestOptions
from tracelens.ingest.pipeline import ingest
from tracelens.store import Store


def _openai_line(i: int) -> str:
    return json.dumps({
        "timestamp": f"2026-10-0{1 + i % 7}T12:00:00Z", "latency_ms": 300 + i, "request_id": f"req_{i}",
        "metadata": {"user_id": f"u{i % 3}", "app": "prop"},
        "request": {"model": "gpt-4o", "messages": [{"role": "system", "content": "Be brief."},
                                                    {"role": "user", "content": f"question {i}"}]},
        "response": {"id": f"chatcmpl-{i}", "object": "chat.completion", "created": 1790812800 + i,
                     "model": "gpt-4o-2024-08-06", "system_fingerprint": "fp_1",
                     "choices": [{"index": 0, "message": {"role": "assistant", "content": f"answer {i}", "refusal": None},
                                  "finish_reason": "stop"}],
                     "usage": {"prompt_tokens": 12, "completion_tokens": 3}},
    })


VALID = {
    "anthropic_log": [anthropic_line(i, ts=f"2026-10-0{1 + i % 7}T09:00:00Z") for i in range(6)],
    "openai_log": [_openai_line(i) for i in range(6)],
}

# Values of the wrong type, and where to put them in a record.
WRONG = [5, -1.5, True, None, "text", [1, "a"], {"k": {"n": 1}}, 2**70, "\ud800"]
PATHS = [
    ("request",), ("response",), ("timestamp",), ("metadata",), ("latency_ms",), ("request", "messages"),
    ("request", "model"), ("request", "max_tokens"), ("request", "messages", 0), ("request", "messages", 0, "role"),
    ("request", "messages", 0, "content"), ("response", "content"), ("response", "usage"), ("response", "id"),
    ("response", "model"), ("response", "choices"), ("response", "choices", 0, "message"),
    ("response", "choices", 0, "message", "content"), ("response", "usage", "prompt_tokens"),
    ("response", "stop_reason"), ("response", "content", 0, "text"),
]
GARBAGE = [b"{", b"}", b"null", b"[1,2]", b'"str"', b"42", b"{}", b'{"request": 5}', b"\xff\xfe\x00", b"\x1b[31m",
           b'{"request": {"messages": []}}']


def _has(cur, k) -> bool:
    return (isinstance(cur, dict) and k in cur) or (isinstance(cur, list) and isinstance(k, int) and k < len(cur))


def _set(obj, path, value) -> None:
    """Put ``value`` at ``path`` in ``obj`` when the path exists down to its parent."""
    cur = obj
    for k in path[:-1]:
        if not _has(cur, k):
            return
        cur = cur[k]
    last = path[-1]
    if isinstance(cur, dict) or _has(cur, last):
        cur[last] = value


ops = st.one_of(
    st.tuples(st.just("flip"), st.floats(0, 1), st.integers(1, 255)),
    st.tuples(st.just("truncate"), st.floats(0, 1)),
    st.tuples(st.just("garbage"), st.integers(0, 10), st.one_of(st.sampled_from(GARBAGE), st.binary(max_size=24))),
    st.tuples(st.just("duplicate"), st.integers(0, 10)),
    st.tuples(st.just("wrong_type"), st.integers(0, 10), st.sampled_from(PATHS), st.sampled_from(WRONG)),
)


def corrupt(lines: list[str], plan: list[tuple]) -> bytes:
    recs: list[bytes] = [ln.encode() for ln in lines]
    for op in plan:
        if op[0] == "wrong_type" and recs:
            i = op[1] % len(recs)
            try:
                obj = json.loads(recs[i])
            except ValueError:
                continue
            _set(obj, op[2], op[3])
            recs[i] = json.dumps(obj).encode("utf-8", "surrogatepass")  # "\ud800" stays an escape in the JSON text
        elif op[0] == "garbage":
            recs.insert(op[1] % (len(recs) + 1), op[2].replace(b"\n", b" "))
        elif op[0] == "duplicate" and recs:
            recs.insert(op[1] % len(recs), recs[op[1] % len(recs)])
    data = bytearray(b"\n".join(recs) + b"\n")
    for op in plan:
        if op[0] == "flip" and data:
            data[int(op[1] * (len(data) - 1))] ^= op[2]
        elif op[0] == "truncate":
            data = data[: int(op[1] * len(data))]
    return bytes(data)


@pytest.mark.parametrize("fmt", sorted(VALID))
@settings(max_examples=25, derandomize=True, deadline=None, database=None,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(plan=st.lists(ops, min_size=1, max_size=4))
def test_corruption_never_raises_and_reconciles(fmt, plan):
    data = corrupt(VALID[fmt], plan)
    # durability is not the property under test; skipping fsync keeps 2 x 25 examples at a few seconds
    with tempfile.TemporaryDirectory() as d, mock.patch("os.fsync"):
        path = Path(d) / "log.jsonl"
        path.write_bytes(data)
        store = Store(Path(d) / "store", create=True)
        for force in (fmt, None):  # the importer itself, and whatever sniffing picks for the damaged file
            summary = ingest(store, [str(path)], IngestOptions(), force_format=force, enricher=False)
            f = summary.files[0]
            assert f.reconciles, (f, data)
            if force is not None:
                assert f.error is None or "decompress" in f.error, f.error
        assert store.count() == len(set(store.scan().select("trace_id").collect()["trace_id"].to_list()))


def test_uncorrupted_files_store_everything():
    for fmt, lines in VALID.items():
        with tempfile.TemporaryDirectory() as d:
            path = Path(d) / "log.jsonl"
            path.write_text("\n".join(lines) + "\n")
            store = Store(Path(d) / "store", create=True)
            f = ingest(store, [str(path)], IngestOptions(), enricher=False).files[0]
            assert (f.format, f.read, f.stored, f.quarantined) == (fmt, 6, 6, 0)


@pytest.mark.parametrize("fmt", ["anthropic_log", "openai_log"])
def test_every_wrong_type_is_accounted_for(fmt, tmp_path):
    """Each (field, wrong value) pair once, one record per line: one ingest covers them all."""
    base = VALID[fmt][0]
    lines = []
    for path in PATHS:
        for value in WRONG:
            obj = json.loads(base)
            _set(obj, path, value)
            lines.append(json.dumps(obj))
    p = tmp_path / "wrong.jsonl"
    p.write_bytes("\n".join(lines).encode("utf-8", "surrogatepass") + b"\n")
    store = Store(tmp_path / "store", create=True)
    f = ingest(store, [str(p)], IngestOptions(), force_format=fmt, enricher=False).files[0]
    assert f.reconciles and f.read == len(lines)
