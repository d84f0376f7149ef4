"""Hostile input: every record of every input is accounted for, counted from the input itself.

The corpus (``tracelens.testing.hostile``) holds, for every format ``tracelens
formats`` lists and each of its layouts, valid records damaged one way per
file: NULs and invalid UTF-8 in the first or a middle record, garbage lines,
wrong JSON types, nesting 100,000 deep, cut-short files, BOMs, UTF-16/32,
CRLF, blank lines, multi-megabyte lines, and gzip/zstd streams truncated,
followed by garbage, damaged in one member/frame or garbage altogether. For
each file ingest must report exactly the physical records written (lines,
array items, rows), reconcile read = stored + duplicate + quarantined +
skipped, store at least the records left intact, and recognise the format
without ``--format``. The explicit cases below are the reproductions of
issue 12 (items 1 and 2); a property test damages valid files at random.
"""

from __future__ import annotations

import gzip
import json
import subprocess
import sys
import tempfile
from pathlib import Path
from unittest import mock

import pyarrow.parquet as pq
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.conftest import REPO, anthropic_line
from tracelens.ingest.base import IngestOptions, Source
from tracelens.ingest.pipeline import ingest
from tracelens.ingest.readers import open_input, sniff_sample
from tracelens.ingest.registry import FORMATS, get_format, sniff_format
from tracelens.store import Store
from tracelens.testing import hostile as H

zstandard = pytest.importorskip("zstandard")


def _ingest(store: Store, path: Path, fmt: str | None = None):
    with mock.patch("os.fsync"):  # durability is not under test here; it keeps the corpus fast
        return ingest(store, [str(path)], IngestOptions(), force_format=fmt, enricher=False, workers=0).files[0]


def _sniffed(path: Path) -> str | None:
    """The format the pipeline's sniffing step picks for ``path``."""
    stream, head = open_input(str(path))
    try:
        fmt = sniff_format(sniff_sample(stream, head), str(path))
    finally:
        stream.close()
    return fmt.name if fmt else None


# ---------------------------------------------------------------- the corpus


def _corpus_formats() -> set[str]:
    """Every format, less the protobuf ones without the otlp extra (their files are built with opentelemetry-proto)."""
    from tracelens.extras import has_extra

    return set(FORMATS) - (set() if has_extra("otlp") else {"otlp_proto", "otlp_logs_proto"})


def test_corpus_covers_every_format():
    assert {s.fmt for s in H.ALL_SPECS.values()} == _corpus_formats()


@pytest.mark.parametrize("key", sorted(H.ALL_SPECS))
def test_every_record_of_every_hostile_file_is_accounted_for(key, tmp_path):
    spec = H.ALL_SPECS[key]
    store = Store(tmp_path / "store", create=True)
    stored = quarantined = events = 0
    for i, kind in enumerate(H.kinds_for(spec)):
        hf = H.write_hostile(tmp_path / "in", key, kind, seed=7, index=i)
        f = _ingest(store, hf.path, hf.fmt)
        where = f"{hf.path.name}: {f}"
        assert f.records == hf.records, where
        assert f.reconciles, where
        assert f.stored >= hf.min_stored, where
        assert (f.error is not None) == (hf.records == 0), where
        if (spec.stores or spec.events) and kind not in H.UNSNIFFABLE and hf.records:
            assert _sniffed(hf.path) == hf.fmt, hf.path.name
        stored += f.stored
        quarantined += f.quarantined
        events += f.events
    # what the summary says is what the store holds
    assert store.count() == stored
    assert store.count("otlp_events") == events and (events > 0) == spec.events
    assert store.scan("quarantine").collect().height == quarantined


def test_generate_hostile_files_is_deterministic_and_covers_the_kinds(tmp_path):
    from importlib.util import module_from_spec, spec_from_file_location

    spec = spec_from_file_location("fuzz_inputs", REPO / "benchmarks" / "fuzz_inputs.py")
    mod = module_from_spec(spec)
    spec.loader.exec_module(mod)
    n = len(H.ALL_SPECS) * 3
    a = mod.generate_hostile_files(tmp_path / "a", n, seed=3)
    b = mod.generate_hostile_files(tmp_path / "b", n, seed=3)
    assert len(a) == n and all(isinstance(r, int) for _, _, r in a)
    assert [(p.name, f, r) for p, f, r in a] == [(p.name, f, r) for p, f, r in b]
    assert all(p.read_bytes() == q.read_bytes() for (p, _, _), (q, _, _) in zip(a, b, strict=True))
    assert {f for _, f, _ in a} == _corpus_formats()  # the first files already cover every format


# ---------------------------------------------------------------- issue 12, item 1: the reproductions


def _lines(n: int = 20) -> list[bytes]:
    return [anthropic_line(i, ts=f"2026-11-{1 + i % 20:02d}T10:00:00Z").encode() for i in range(n)]


@pytest.mark.parametrize("bad", [b"\x00", b"\xff\xfe", b"\xc3("])
def test_a_bad_first_line_costs_only_itself(bad, tmp_path):
    lines = _lines()
    lines[0] = lines[0][:40] + bad + lines[0][40:]
    p = tmp_path / "log.jsonl"
    p.write_bytes(b"\n".join(lines) + b"\n")
    store = Store(tmp_path / "s", create=True)
    f = _ingest(store, p)  # sniffed: the broken first line does not hide the format
    assert (f.format, f.records, f.read, f.stored, f.quarantined) == ("anthropic_log", 20, 20, 19, 1)
    q = store.scan("quarantine").collect().to_dicts()[0]
    assert q["source_locator"] == "line:1"
    # the raw text is kept, undecodable bytes as escapes
    assert q["raw"].startswith(lines[0][:40].decode()) and len(q["raw"]) >= len(lines[0]) - 2


def test_otlp_wrong_typed_resource_costs_only_its_own_spans(tmp_path):
    reqs = [H._otlp(H.random.Random(i), i, "o") for i in range(6)]
    reqs[1]["resourceSpans"][0]["resource"] = -1
    reqs[3]["resourceSpans"].insert(0, {"resource": {}, "scopeSpans": 5})
    p = tmp_path / "spans.jsonl"
    p.write_text("\n".join(json.dumps(r) for r in reqs) + "\n")
    f = _ingest(Store(tmp_path / "s", create=True), p)
    assert (f.format, f.records, f.reconciles) == ("otlp_json", 6, True)
    assert (f.stored, f.skipped, f.quarantined) == (5, 5, 2)  # one chat span stored per good request


@pytest.mark.parametrize("compress", ["gzip", "zstd"])
def test_valid_records_then_garbage_keep_every_record(compress, tmp_path):
    body = b"\n".join(_lines(2000)) + b"\n"
    z = H._gzip(body) if compress == "gzip" else H._zstd(body)
    p = tmp_path / ("log.jsonl.gz" if compress == "gzip" else "log.jsonl.zst")
    p.write_bytes(z + b"GARBAGE" * 40)
    store = Store(tmp_path / "s", create=True)
    f = _ingest(store, p)
    assert (f.format, f.records, f.stored, f.quarantined) == ("anthropic_log", 2001, 2000, 1)
    reason = store.scan("quarantine").collect()["reason"][0]
    assert f"at byte {len(z):,} of the file" in reason and "ends unexpectedly after line 2000" in reason


def test_truncated_zstd_keeps_every_block_before_the_cut(tmp_path):
    body = b"\n".join(_lines(3000)) + b"\n"
    z = H._zstd(body)
    cut = z[: len(z) * 2 // 3]
    decoded = zstandard.ZstdDecompressor().decompressobj().decompress(cut)  # what zstd itself can decode
    p = tmp_path / "log.jsonl.zst"
    p.write_bytes(cut)
    store = Store(tmp_path / "s", create=True)
    f = _ingest(store, p)
    complete = decoded.count(b"\n")
    assert f.format == "anthropic_log" and complete > 1000
    assert (f.records, f.stored, f.quarantined) == (complete + 1, complete, 1)
    assert "cut short" in store.scan("quarantine").collect()["reason"][0]


def test_a_garbage_zst_is_reported_and_the_file_beside_it_is_ingested(tmp_path):
    junk = tmp_path / "junk.jsonl.zst"
    junk.write_bytes(b"\x28\xb5\x2f\xfd" + bytes(range(256)) * 2)
    good = tmp_path / "good.jsonl"
    good.write_bytes(b"\n".join(_lines(5)) + b"\n")
    res = subprocess.run(
        [sys.executable, "-m", "tracelens.cli.main", "ingest", "--store", str(tmp_path / "s"), "--json",
         "--no-progress", str(junk), str(good)],
        capture_output=True, text=True, env={"PYTHONPATH": str(REPO / "src"), "PATH": "/usr/bin:/bin"},
    )
    assert res.returncode == 1  # something failed, and it says so
    assert "Traceback" not in res.stderr
    files = {Path(f["path"]).name: f for f in json.loads(res.stdout)["files"]}
    assert "cannot decompress" in files["junk.jsonl.zst"]["error"]
    assert (files["good.jsonl"]["stored"], files["good.jsonl"]["error"]) == (5, None)


def test_deeply_nested_first_line_is_detected_past_and_bounded(tmp_path):
    lines = [b"[" * 100_000 + b"]" * 100_000] + _lines(19)
    p = tmp_path / "log.jsonl"
    p.write_bytes(b"\n".join(lines) + b"\n")
    for fmt in (None, "anthropic_log"):
        store = Store(tmp_path / f"s{fmt}", create=True)
        f = _ingest(store, p, fmt)
        assert (f.format, f.records, f.stored, f.quarantined) == ("anthropic_log", 20, 19, 1)
        assert "nested deeper than 1024 levels" in store.scan("quarantine").collect()["reason"][0]


def test_an_importer_failure_part_way_loses_nothing_silently(tmp_path, monkeypatch):
    """A failure outside the per-record guard is reported for its file; the next file is still ingested."""
    import tracelens.ingest.formats.openai as openai_mod

    def boom(*a, **k):
        raise RuntimeError("importer bug")

    p1 = tmp_path / "a.jsonl"
    p1.write_text("\n".join(json.dumps(H._openai_log(H.random.Random(1), i, "x")) for i in range(5)) + "\n")
    p2 = tmp_path / "b.jsonl"
    p2.write_bytes(b"\n".join(_lines(5)) + b"\n")
    monkeypatch.setattr(openai_mod, "openai_batch_context", boom)
    monkeypatch.setattr(openai_mod, "openai_log_record", boom)
    store = Store(tmp_path / "s", create=True)
    s = ingest(store, [str(p1), str(p2)], enricher=False, workers=0)
    a, b = s.files
    assert (a.records, a.read, a.quarantined, a.reconciles) == (5, 5, 5, True)  # each record quarantined, none lost
    assert (b.format, b.stored) == ("anthropic_log", 5)


def test_a_damaged_json_array_keeps_the_items_around_the_damage(tmp_path):
    items = [json.dumps(H._anthropic_http(H.random.Random(i), i, "h")) for i in range(8)]
    items[3] = items[3][:40] + "\x00#" + items[3][40:]
    p = tmp_path / "rec.json"
    p.write_text("[\n" + ",\n".join("  " + x for x in items) + "\n]\n")
    f = _ingest(Store(tmp_path / "s", create=True), p)
    assert (f.format, f.records, f.stored, f.quarantined) == ("anthropic_http", 8, 7, 1)
    p.write_text("[\n" + ",\n".join("  " + x for x in items[:5]) + ",\n  " + items[5][:30])  # cut short
    f = _ingest(Store(tmp_path / "s2", create=True), p)
    assert (f.records, f.stored, f.quarantined) == (6, 4, 2)


def test_an_unterminated_csv_quote_does_not_swallow_the_rows_after_it(tmp_path):
    t = H._build(H.ALL_SPECS["generic_csv"], H.random.Random(0), 10, "c")
    t.records[2] = b'"unterminated,' + t.records[2]
    p = tmp_path / "rows.csv"
    p.write_bytes(t.render())
    f = _ingest(Store(tmp_path / "s", create=True), p)
    assert (f.format, f.records, f.stored, f.quarantined) == ("generic_csv", 10, 9, 1)


def test_a_damaged_parquet_row_group_costs_its_own_rows(tmp_path):
    hf = H.write_hostile(tmp_path, "generic_parquet", "garbage_lines", seed=1)
    groups = pq.ParquetFile(hf.path).metadata
    f = _ingest(Store(tmp_path / "s", create=True), hf.path)
    assert f.records == groups.num_rows == hf.records and f.reconciles
    assert f.stored >= groups.num_rows - groups.row_group(1).num_rows


# ---------------------------------------------------------------- issue 12, item 2: encodings


@pytest.mark.parametrize("kind", H.ENCODING_KINDS)
@pytest.mark.parametrize("key", ["anthropic_log", "otlp_json", "langsmith_runs", "generic_csv", "anthropic_http",
                                 "litellm_payload"])
def test_boms_and_utf16_32_are_read_as_text(key, kind, tmp_path):
    hf = H.write_hostile(tmp_path, key, kind, seed=2)
    store = Store(tmp_path / "s", create=True)
    f = _ingest(store, hf.path)
    assert (f.format, f.records, f.stored, f.quarantined) == (hf.fmt, hf.records, hf.min_stored, 0)
    # the same records as the plain file: a re-ingest of the plain UTF-8 file adds nothing
    plain = H.write_hostile(tmp_path / "plain", key, "valid", seed=2)
    assert _ingest(store, plain.path).duplicates == hf.min_stored


def test_a_bom_does_not_turn_anthropic_logs_into_generic_rows(tmp_path):
    p = tmp_path / "bom.jsonl"
    p.write_bytes(b"\xef\xbb\xbf" + b"\n".join(_lines()) + b"\n")
    store = Store(tmp_path / "s", create=True)
    f = _ingest(store, p)
    assert (f.format, f.stored) == ("anthropic_log", 20)
    p2 = tmp_path / "plain.jsonl"
    p2.write_bytes(b"\n".join(_lines()) + b"\n")
    assert _ingest(store, p2).duplicates == 20  # the same calls, not twice in the store
    assert store.count() == 20


# ---------------------------------------------------------------- random damage


JSONL_KEYS = sorted(k for k, s in H.ALL_SPECS.items() if s.layout == "jsonl")
damage = st.one_of(
    st.tuples(st.just("flip"), st.floats(0, 1), st.integers(1, 255)),
    st.tuples(st.just("truncate"), st.floats(0.05, 1)),
    st.tuples(st.just("insert"), st.floats(0, 1), st.binary(min_size=1, max_size=16)),
    st.tuples(st.just("deep"), st.floats(0, 1), st.integers(500, 3000)),
)


def _damaged(data: bytes, plan: list[tuple]) -> bytes:
    b = bytearray(data)
    for op in plan:
        at = int(op[1] * max(0, len(b) - 1))
        if op[0] == "flip" and b:
            b[at] ^= op[2]
        elif op[0] == "truncate":
            del b[int(op[1] * len(b)):]
        elif op[0] == "insert":
            b[at:at] = op[2]
        elif op[0] == "deep":
            b[at:at] = b"[" * op[2]
    return bytes(b)


def _physical_lines(data: bytes) -> int:
    """Non-blank lines, decided independently of tracelens (str.strip after a lenient decode)."""
    return sum(1 for ln in data.split(b"\n") if ln.decode("utf-8", "replace").strip())


@pytest.mark.parametrize("compress", [None, "gzip", "zstd"])
@settings(max_examples=30, derandomize=True, deadline=None, database=None,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large,
                                 HealthCheck.function_scoped_fixture])
@given(key=st.sampled_from(JSONL_KEYS), plan=st.lists(damage, min_size=1, max_size=4), cut=st.floats(0.1, 1))
def test_random_damage_never_loses_a_record(compress, key, plan, cut):
    text = H._build(H.ALL_SPECS[key], H.random.Random(key), 8, "p").render()
    data = _damaged(text, plan)
    if data.startswith(b"\xef\xbb\xbf"):
        data = b" " + data
    if compress is None:
        expected = _physical_lines(data)
    else:
        z = H._gzip(data) if compress == "gzip" else H._zstd(data)
        data = z[: max(1, int(len(z) * cut))]
        decoded = H._gunzip_prefix(data) if compress == "gzip" else H._unzstd_prefix(data)
        whole = len(data) == len(z)
        expected = _physical_lines(decoded) if whole else (
            _physical_lines(decoded.rsplit(b"\n", 1)[0] if b"\n" in decoded else b"") + (1 if decoded else 0))
    with tempfile.TemporaryDirectory() as d:
        p = Path(d) / f"in.jsonl{'.gz' if compress == 'gzip' else '.zst' if compress else ''}"
        p.write_bytes(data)
        store = Store(Path(d) / "s", create=True)
        f = _ingest(store, p, H.ALL_SPECS[key].fmt)
        assert f.reconciles, f
        assert f.records == expected, (f, plan)
        assert store.count() == f.stored


def test_guard_quarantines_what_an_importer_raises_and_counts_records():
    from tracelens.ingest.guard import each_record

    src = Source("mem", None, IngestOptions())

    def to_items(loc, v):
        if v == "boom":
            raise KeyError("x")
        if v == "none":
            return iter(())
        if v == "deep":
            raise RecursionError
        return {"v": v}

    items = list(each_record(src, [("a", 1), ("b", "boom"), ("c", "none"), ("d", "deep"), ("e", 2)], to_items))
    assert src.records == 5
    assert [type(i).__name__ for i in items] == ["dict", "Quarantined", "Skipped", "Quarantined", "dict"]
    assert items[1].reason == "invalid record: KeyError: 'x'" and items[1].raw == "boom"
    assert "nested too deeply" in items[3].reason


def test_every_importer_counts_its_records(tmp_path):
    """A format whose parse bypassed the guard would report 0 records for a valid file."""
    for key, spec in H.ALL_SPECS.items():
        hf = H.write_hostile(tmp_path / key.replace("#", "-"), key, "valid", seed=4)
        if spec.layout in ("sqlite", "parquet"):
            f = _ingest(Store(tmp_path / f"s-{key}", create=True), hf.path, hf.fmt)
            assert f.records == hf.records > 0, key
            continue
        stream, head = open_input(str(hf.path))
        source = Source(str(hf.path), stream, IngestOptions(), head)
        items = list(get_format(hf.fmt).parse(source))
        stream.close()
        assert source.records == hf.records > 0 and len(items) >= hf.records, key


def test_gzip_members_and_zero_padding_are_read_like_gzip(tmp_path):
    a, b = _lines(3), _lines(6)[3:]
    p = tmp_path / "multi.jsonl.gz"
    p.write_bytes(gzip.compress(b"\n".join(a) + b"\n", mtime=0) + gzip.compress(b"\n".join(b) + b"\n", mtime=0)
                  + b"\0" * 512)
    f = _ingest(Store(tmp_path / "s", create=True), p)
    assert (f.records, f.stored, f.quarantined) == (6, 6, 0)


def test_worker_processes_account_for_hostile_lines_as_this_process_does(tmp_path):
    """The chunked path's workers see the same damaged lines (small batches: many chunks) with the same results."""
    import tracelens.ingest.pipeline as P

    if not P._WorkerPool(2).size:
        pytest.skip("the parallel path needs fork (Linux)")
    kinds = ("nul_first", "badutf8_mid", "garbage_lines", "deep_first", "wrong_types", "huge_line", "truncated",
             "utf16le_bom", "gzip_truncated", "zstd_garbage_tail", "zstd_bad_frame")
    for kind in kinds:
        hf = H.write_hostile(tmp_path / "in", "anthropic_log", kind, seed=5, n=30)
        seen = []
        for workers in (0, 2):
            store = Store(tmp_path / f"s-{kind}-{workers}", create=True)
            with mock.patch("os.fsync"):
                f = ingest(store, [str(hf.path)], enricher=False, batch_size=4, workers=workers).files[0]
            rows = sorted(store.scan().collect()["trace_id"].to_list())
            q = sorted(store.scan("quarantine").collect().select("source_locator", "reason").rows())
            seen.append((f.records, f.read, f.stored, f.quarantined, f.skipped, rows, q))
        assert seen[0] == seen[1], kind
        assert seen[0][0] == hf.records and seen[0][2] >= hf.min_stored, kind
