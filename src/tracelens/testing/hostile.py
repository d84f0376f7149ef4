"""Generated hostile inputs for every ingest format, each with the number of records it holds.

Used by the test suite (``tests/test_ingest_hostile.py``) and the fuzz
benchmark (``benchmarks/fuzz_inputs.py``). Contract:

* Everything is generated here from a seed: valid records of every format
  ``tracelens formats`` lists, then damaged in one way per file (a ``kind``,
  see ``KINDS``): NULs and invalid UTF-8 in the first or a middle record,
  garbage lines, wrong JSON types, JSON nested 100,000 deep, a cut-short
  file, BOMs, UTF-16/32 with and without BOM, CRLF and blank lines, a
  multi-megabyte line, and gzip/zstd streams that are truncated, followed by
  garbage, garbage altogether or damaged in one frame. The same
  ``(kind, fmt, seed)`` always gives the same bytes (gzip mtime 0).
* ``records`` is the number of physical records the file holds, counted from
  the bytes written: non-blank lines for JSONL, items of a top-level JSON
  array, the document itself otherwise, data rows for CSV, rows of the
  Parquet footer or of the SQLite tables. A stream that stops early (damaged
  compression, a cut-short document) adds exactly one record for its rest;
  what a damaged compressed stream still holds is decided by ``zlib`` and
  ``zstandard`` themselves. ``tracelens ingest`` must report exactly this as
  ``FileResult.records``, with read = stored + duplicates + quarantined +
  skipped. A file of which nothing can be decoded holds 0 (and is a file
  error).
* ``min_stored`` is how many records were left intact: at least that many
  must be stored (companion formats store nothing: their records are
  skipped unless joined with a results file).

Read each file on its own with ``force_format=fmt``; files whose kind is not
in ``UNSNIFFABLE`` are also recognised without it (companion formats are then
set aside for joining, not read).
"""

from __future__ import annotations

import copy
import csv
import gzip
import io
import json
import random
import sqlite3
import zlib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tracelens.testing.hostile_records import (  # noqa: F401 - the builders are also used from here by tests
    GENERIC_COLUMNS,
    HELICONE_COLUMNS,
    LANGFUSE_COLUMNS,
    _anthropic_batch,
    _anthropic_batch_object,
    _anthropic_batch_requests,
    _anthropic_http,
    _anthropic_log,
    _bedrock,
    _generic,
    _helicone,
    _helicone_row,
    _langfuse_blob,
    _langfuse_trace,
    _langsmith,
    _litellm,
    _openai_batch,
    _openai_batch_input,
    _openai_log,
    _openinference,
    _otlp,
    _otlp_logs,
    _text,
    _ts,
)

# Values of the wrong type put into records.
WRONG = (-1, 1.5, True, None, "text", [1, "a"], {"k": {"n": 1}}, 2**70, "\ud800", "", [], {})


@dataclass(frozen=True)
class HostileFile:
    """One generated hostile file: its format, the kind of damage, the physical records it holds and how many are intact."""

    path: Path
    fmt: str
    kind: str
    records: int
    min_stored: int


@dataclass(frozen=True)
class Spec:
    """How a format's valid file is built: its records, layout and file name."""

    fmt: str
    make: Callable[[random.Random, int, str], dict]
    layout: str  # jsonl | array | document | csv | parquet | sqlite | protobuf
    suffix: str
    columns: tuple[str, ...] = ()  # csv/parquet header
    stores: bool = True  # each intact record is stored (False: companion formats, records are skipped)
    events: bool = False  # records hold GenAI log events (kept in the otlp_events table, not stored as traces)


SPECS: dict[str, Spec] = {s.fmt: s for s in (
    Spec("anthropic_log", _anthropic_log, "jsonl", ".jsonl"),
    Spec("openai_log", _openai_log, "jsonl", ".jsonl"),
    Spec("openai_batch", _openai_batch, "jsonl", ".jsonl"),
    Spec("openai_batch_input", _openai_batch_input, "jsonl", ".jsonl", stores=False),
    Spec("anthropic_batch", _anthropic_batch, "jsonl", ".jsonl"),
    Spec("anthropic_batch_requests", _anthropic_batch_requests, "jsonl", ".jsonl", stores=False),
    Spec("anthropic_batch_object", _anthropic_batch_object, "document", ".json", stores=False),
    Spec("anthropic_http", _anthropic_http, "array", ".json"),
    Spec("bedrock_invocation", _bedrock, "jsonl", ".jsonl"),
    Spec("helicone_export", _helicone, "jsonl", ".jsonl"),
    Spec("langfuse_blob", _langfuse_blob, "jsonl", ".jsonl"),
    Spec("langfuse_trace", _langfuse_trace, "array", ".json"),
    Spec("langsmith_runs", _langsmith, "jsonl", ".jsonl"),
    Spec("litellm_payload", _litellm, "jsonl", ".jsonl"),
    Spec("otlp_json", _otlp, "jsonl", ".jsonl"),
    Spec("openinference", _openinference, "array", ".json"),
    Spec("generic_jsonl", _generic, "jsonl", ".jsonl"),
    Spec("generic_csv", _generic, "csv", ".csv", GENERIC_COLUMNS),
    Spec("generic_parquet", _generic, "parquet", ".parquet", GENERIC_COLUMNS),
    Spec("simonw_llm", lambda rng, i, tag: {}, "sqlite", ".db"),
    Spec("otlp_proto", _otlp, "protobuf", ".binpb"),
    Spec("otlp_logs", _otlp_logs, "jsonl", ".jsonl", stores=False, events=True),
    Spec("otlp_logs_proto", _otlp_logs, "protobuf", ".binpb", stores=False, events=True),
)}
# The same formats in their other layouts (one importer, two shapes of file).
VARIANTS: dict[str, Spec] = {
    "helicone_export#csv": Spec("helicone_export", _helicone_row, "csv", ".csv", HELICONE_COLUMNS),
    "langfuse_blob#csv": Spec("langfuse_blob", _langfuse_blob, "csv", ".csv", LANGFUSE_COLUMNS),
    "openinference#jsonl": Spec("openinference", _openinference, "jsonl", ".jsonl"),
}
ALL_SPECS: dict[str, Spec] = {**SPECS, **VARIANTS}


def _needs_otlp_extra() -> bool:
    from tracelens.extras import has_extra

    return not has_extra("otlp")


if _needs_otlp_extra():  # protobuf files are built with opentelemetry-proto (the otlp extra)
    del SPECS["otlp_proto"], ALL_SPECS["otlp_proto"], SPECS["otlp_logs_proto"], ALL_SPECS["otlp_logs_proto"]

# ---------------------------------------------------------------- layouts


def _csv_value(v: Any) -> str:
    if v is None:
        return ""
    return json.dumps(v, ensure_ascii=False) if isinstance(v, dict | list) else str(v)


def _csv_line(values: list[str]) -> bytes:
    buf = io.StringIO()
    csv.writer(buf, lineterminator="\n").writerow(values)
    return buf.getvalue().encode()


@dataclass
class Text:
    """A text file being built: its lines (records and others) and where each record lies."""

    layout: str
    header: list[bytes]  # lines before the records (CSV header, "[")
    records: list[bytes]  # one per record, without newline
    footer: list[bytes]  # lines after ("]")

    def render(self, sep: bytes = b"\n") -> bytes:
        """The file's bytes: header, records and footer joined by ``sep`` (array items indented, commas between)."""
        if self.layout == "array":  # one item a line, indented; blank "records" are blank lines between items
            last = max((k for k, r in enumerate(self.records) if r.strip()), default=-1)
            body = [b"  " + r + (b"," if k < last else b"") if r.strip() else r for k, r in enumerate(self.records)]
            return sep.join([*self.header, *body, *self.footer]) + sep
        return sep.join([*self.header, *self.records, *self.footer]) + sep

    def count(self) -> int:
        """Physical records: non-blank record lines (array items and a document count once each)."""
        return sum(1 for r in self.records if r.strip())


def _build(spec: Spec, rng: random.Random, n: int, tag: str) -> Text:
    recs = [spec.make(rng, i, tag) for i in range(n)]
    if spec.layout == "jsonl":
        return Text("jsonl", [], [json.dumps(r, ensure_ascii=False).encode() for r in recs], [])
    if spec.layout == "array":
        return Text("array", [b"["], [json.dumps(r, ensure_ascii=False).encode() for r in recs], [b"]"])
    if spec.layout == "document":
        return Text("document", [], [json.dumps(recs[0], ensure_ascii=False, indent=2).encode()], [])
    if spec.layout == "csv":
        rows = [_csv_line([_csv_value(r.get(c)) for c in spec.columns]).rstrip(b"\n") for r in recs]
        return Text("csv", [_csv_line(list(spec.columns)).rstrip(b"\n")], rows, [])
    raise ValueError(spec.layout)


# ---------------------------------------------------------------- damage


def _wrong_types(rng: random.Random, rec: Any, k: int = 3) -> Any:
    """``rec`` with up to ``k`` values (at random places, any depth) replaced by values of the wrong type."""
    rec = copy.deepcopy(rec)
    for _ in range(k):
        cur, parent, key = rec, None, None
        for _depth in range(rng.randint(1, 4)):
            if isinstance(cur, dict) and cur:
                key = rng.choice(sorted(cur))
            elif isinstance(cur, list) and cur:
                key = rng.randrange(len(cur))
            else:
                break
            parent, cur = cur, cur[key]
        if parent is not None:
            parent[key] = copy.deepcopy(rng.choice(WRONG))
    return rec


def _deep(n: int = 100_000) -> bytes:
    return b"[" * n + b"]" * n


def _nested_json(n: int) -> bytes:
    """JSON text of objects and arrays nested ``2 * n`` deep (beyond the 1,024 levels ingest reads)."""
    return b'{"a": [' * n + b'"bottom"' + b"]}" * n


def _insert(b: bytes, at: int, what: bytes) -> bytes:
    return b[:at] + what + b[at:]


def _damage_text(kind: str, spec: Spec, t: Text, rng: random.Random) -> tuple[Text, int]:
    """Apply a record-level ``kind`` to ``t`` in place; returns (t, records left intact)."""
    n = len(t.records)
    intact = n
    first = 0
    mid = n // 2
    if kind in ("nul_first", "nul_mid"):
        j = first if kind == "nul_first" else mid
        t.records[j] = _insert(t.records[j], max(1, len(t.records[j]) // 3), b"\x00")
        intact -= 1
    elif kind in ("badutf8_first", "badutf8_mid"):
        j = first if kind == "badutf8_first" else mid
        t.records[j] = _insert(t.records[j], max(1, len(t.records[j]) // 2), b"\xff\xfe\xc3")
        intact -= 1
    elif kind == "garbage_lines":
        junk = [b"{not json", b"\x1b[2J\x1b]8;;http://x\x07", b"null", b"[1, 2]", b'"str"', b"42", b"{}",
                bytes(rng.randrange(1, 256) for _ in range(24)).replace(b"\n", b" ").replace(b"\r", b" ")]
        if t.layout == "csv":
            junk = [b"only,two", b'"unterminated,quote', b"\x00\x01\x02"]
        for g in rng.sample(junk, k=min(3, len(junk))):
            t.records.insert(rng.randrange(len(t.records) + 1), g if g.strip() else b"x" + g)
    elif kind == "wrong_types":
        if t.layout == "csv":
            cols = t.header[0].count(b",") + 1
            t.records[mid] = _csv_line([rng.choice(["-1", "true", "[1]", "{}", "\ud800".encode("utf-8", "surrogatepass")
                                                    .decode("utf-8", "replace"), "9" * 30]) for _ in range(cols)]).rstrip()
        else:
            for j in sorted(rng.sample(range(n), k=min(3, n))):
                t.records[j] = json.dumps(_wrong_types(rng, json.loads(t.records[j]))).encode()
        intact -= min(3, n) if t.layout != "csv" else 1
    elif kind == "deep_first":
        if t.layout == "csv":
            t.records[first] = t.records[first] + b"," + _deep(20_000)
        else:
            t.records.insert(0, _deep())
            intact = n
        if t.layout == "csv":
            intact -= 1
    elif kind == "deep_value":
        j = mid
        if t.layout == "csv":
            t.records[j] = t.records[j].replace(b",", b',"' + _nested_json(600).replace(b'"', b'""') + b'",', 1)
        else:
            rec = json.loads(t.records[j])
            rec[sorted(rec)[0]] = "@DEEP@"
            t.records[j] = json.dumps(rec).encode().replace(b'"@DEEP@"', _nested_json(600))
        intact -= 1
    elif kind == "huge_line":
        j = mid
        big = "lorem ipsum dolor sit amet " * (rng.randint(40_000, 120_000))
        if t.layout == "csv":
            t.records[j] = t.records[j] + b"," + big.encode()  # an extra field: quarantined, kept whole
            intact -= 1
        else:
            rec = json.loads(t.records[j])
            _grow(rec, big)
            t.records[j] = json.dumps(rec, ensure_ascii=False).encode()
    elif kind == "blank_lines":
        for _ in range(4):
            t.records.insert(rng.randrange(len(t.records) + 1), rng.choice([b"", b"   ", b"\t", b" \r"]))
    elif kind == "truncated":
        j = n - 1
        t.records[j] = t.records[j][: max(1, len(t.records[j]) // 2)]
        t.footer = []
        intact -= 1
    return t, intact


def _grow(rec: Any, big: str) -> None:
    """Make the longest string in ``rec`` ``big`` (the record stays valid, only much larger)."""
    best: tuple[int, Any, Any] | None = None
    stack = [rec]
    while stack:
        cur = stack.pop()
        items = cur.items() if isinstance(cur, dict) else enumerate(cur) if isinstance(cur, list) else ()
        for k, v in items:
            if isinstance(v, str) and (best is None or len(v) > best[0]) and not v.startswith("{"):
                best = (len(v), cur, k)
            elif isinstance(v, dict | list):
                stack.append(v)
    if best is not None:
        best[1][best[2]] = best[1][best[2]] + " " + big


# ---------------------------------------------------------------- encodings and compression

TEXT_KINDS = ("valid", "nul_first", "nul_mid", "badutf8_first", "badutf8_mid", "garbage_lines", "wrong_types",
              "deep_first", "deep_value", "huge_line", "blank_lines", "truncated")
ENCODING_KINDS = ("bom_utf8", "utf16le_bom", "utf16be_bom", "utf16le", "utf32le_bom", "utf32be_bom", "crlf")
STREAM_KINDS = ("gzip", "gzip_truncated", "gzip_garbage_tail", "gzip_bad_member", "zstd", "zstd_truncated",
                "zstd_garbage_tail", "zstd_bad_frame", "zstd_garbage")
KINDS = TEXT_KINDS + ENCODING_KINDS + STREAM_KINDS
# Kinds after which the format cannot be recognised from the bytes (nothing decodes).
UNSNIFFABLE = frozenset({"zstd_garbage"})


def _encode(kind: str, data: bytes) -> bytes:
    if kind == "bom_utf8":
        return b"\xef\xbb\xbf" + data
    if kind == "crlf":
        return data.replace(b"\n", b"\r\n")
    text = data.decode("utf-8", "surrogateescape")
    codec = {"utf16le_bom": "utf-16-le", "utf16be_bom": "utf-16-be", "utf16le": "utf-16-le", "utf32le_bom": "utf-32-le",
             "utf32be_bom": "utf-32-be"}[kind]
    bom = {"utf-16-le": b"\xff\xfe", "utf-16-be": b"\xfe\xff", "utf-32-le": b"\xff\xfe\x00\x00",
           "utf-32-be": b"\x00\x00\xfe\xff"}[codec]
    return (bom if kind.endswith("_bom") else b"") + text.encode(codec, "surrogateescape")


def _gzip(data: bytes) -> bytes:
    return gzip.compress(data, mtime=0)


def _zstd(data: bytes) -> bytes:
    import zstandard

    return zstandard.ZstdCompressor(level=3, write_checksum=True).compress(data)


def _gunzip_prefix(data: bytes) -> bytes:
    """What zlib itself decodes of (possibly damaged) gzip members, one after another."""
    out = []
    while data[:2] == b"\x1f\x8b":
        d = zlib.decompressobj(31)
        try:
            out.append(d.decompress(data))
        except zlib.error:
            break
        if not d.eof:
            break
        data = d.unused_data
    return b"".join(out)


def _unzstd_prefix(data: bytes) -> bytes:
    """What zstandard itself decodes of (possibly damaged) frames, one after another."""
    import zstandard

    out = []
    while data[:4] == b"\x28\xb5\x2f\xfd":
        d = zstandard.ZstdDecompressor().decompressobj()
        try:
            out.append(d.decompress(data))
        except zstandard.ZstdError:
            break
        if not d.eof:
            break
        data = d.unused_data
    return b"".join(out)


def _records_in(layout: str, text: bytes, full: Text, cut: bool) -> int:
    """Physical records in the decoded ``text`` (a prefix of ``full.render()``), plus one when the stream was cut."""
    if layout == "jsonl":
        lines = text.split(b"\n")
        done = sum(1 for ln in lines[:-1] if ln.strip())
        return done + (1 if cut else (1 if lines[-1].strip() else 0))
    if layout == "csv":
        lines = text.split(b"\n")
        done = sum(1 for ln in lines[1:-1] if ln.strip()) if len(lines) > 1 else 0
        return done + (1 if cut else (1 if len(lines) > 1 and lines[-1].strip() else 0))
    if layout == "array":
        rendered = full.render()
        ends = []
        pos = 0
        for r in full.records:
            pos = rendered.index(r, pos) + len(r)
            ends.append(pos)
        done = sum(1 for e in ends if e <= len(text))
        return done + (1 if cut or done < len(ends) or not text.rstrip().endswith(b"]") else 0)
    # a document: itself when it was decoded whole, and the rest of the stream
    return (1 if len(text) >= len(full.render().rstrip()) else 0) + (1 if cut else 0)


def _stream(kind: str, data: bytes, t: Text, rng: random.Random) -> tuple[bytes, int]:
    """(bytes written, physical records) for the compression kinds."""
    n = t.count() if kind in ("gzip", "zstd") else None
    if kind == "gzip":
        return _gzip(data), n
    if kind == "zstd":
        return _zstd(data), n
    if kind == "zstd_garbage":  # the magic, then a frame header with its reserved bit set, then noise
        return b"\x28\xb5\x2f\xfd\x08" + bytes(rng.randrange(256) for _ in range(300)), 0
    if kind in ("gzip_garbage_tail", "zstd_garbage_tail"):
        z = _gzip(data) if kind.startswith("gzip") else _zstd(data)
        junk = b"GARBAGE" + bytes(rng.randrange(1, 256) for _ in range(200))
        return z + junk, _records_in(t.layout, data, t, cut=True)
    if kind in ("gzip_truncated", "zstd_truncated"):
        z = _gzip(data) if kind.startswith("gzip") else _zstd(data)
        z = z[: max(20, int(len(z) * rng.uniform(0.4, 0.9)))]
        decoded = _gunzip_prefix(z) if kind.startswith("gzip") else _unzstd_prefix(z)
        if not decoded:
            return z, 0
        return z, _records_in(t.layout, decoded, t, cut=True)
    if kind in ("gzip_bad_member", "zstd_bad_frame"):
        # one member/frame per line: the third is replaced by garbage of the same length
        lines = data.split(b"\n")
        pieces = [ln + b"\n" for ln in lines[:-1]] + ([lines[-1]] if lines[-1] else [])
        comp = [(_gzip(p) if kind.startswith("gzip") else _zstd(p)) for p in pieces]
        k = min(2, len(comp) - 1)
        comp[k] = bytes(rng.randrange(1, 256) for _ in range(len(comp[k])))
        z = b"".join(comp)
        decoded = b"".join(pieces[:k])
        if not decoded:
            return z, 0
        return z, _records_in(t.layout, decoded, t, cut=True)
    raise ValueError(kind)


# ---------------------------------------------------------------- binary layouts


def _parquet(kind: str, spec: Spec, rng: random.Random, damage: random.Random, n: int, tag: str
             ) -> tuple[bytes, int, int]:
    import pyarrow as pa
    import pyarrow.parquet as pq

    rows = [spec.make(rng, i, tag) for i in range(n)]
    rng = damage
    intact = n
    if kind == "wrong_types":
        for r in rows[:3]:
            r["ts"] = rng.choice(["not a time", "", "2026-13-45T99:00:00Z", "\x00"])
        intact -= 3
    if kind == "huge_line":
        rows[n // 2]["answer"] = "lorem ipsum " * 300_000
    if kind in ("nul_mid", "nul_first"):
        rows[0 if kind == "nul_first" else n // 2]["question"] += "\x00\x00"
    table = pa.Table.from_pylist(rows)
    if kind in ("badutf8_first", "badutf8_mid"):
        # a binary column where text is expected, holding invalid UTF-8 in one row
        vals = [r["answer"].encode() for r in rows]
        vals[0 if kind == "badutf8_first" else n // 2] = b"\xff\xfe bad"
        table = table.set_column(table.schema.get_field_index("answer"), "answer", pa.array(vals, pa.binary()))
    buf = io.BytesIO()
    pq.write_table(table, buf, row_group_size=max(1, n // 4), compression="none")
    data = buf.getvalue()
    if kind == "garbage_lines":  # damage the data of one row group (the footer stays readable)
        md = pq.ParquetFile(io.BytesIO(data)).metadata
        col = md.row_group(1).column(3)
        start = col.data_page_offset
        data = data[:start] + bytes(rng.randrange(256) for _ in range(64)) + data[start + 64:]
        intact -= md.row_group(1).num_rows
    if kind == "truncated":
        return data[: len(data) // 2], 0, 0
    if kind == "gzip":
        return _gzip(data), n, intact
    return data, n, intact


SQLITE_SCHEMA = """
CREATE TABLE "conversations" ("id" TEXT PRIMARY KEY, "name" TEXT, "model" TEXT);
CREATE TABLE "responses" ("id" TEXT PRIMARY KEY, "model" TEXT, "prompt" TEXT, "system" TEXT, "prompt_json" TEXT,
  "options_json" TEXT, "response" TEXT, "response_json" TEXT, "conversation_id" TEXT REFERENCES "conversations"("id"),
  "duration_ms" INTEGER, "datetime_utc" TEXT, "input_tokens" INTEGER, "output_tokens" INTEGER, "token_details" TEXT,
  "schema_id" TEXT, "resolved_model" TEXT, "reasoning" TEXT);
"""


def _sqlite(kind: str, path: Path, rng: random.Random, damage: random.Random, n: int, tag: str) -> tuple[int, int]:
    conn = sqlite3.connect(path)
    conn.executescript(SQLITE_SCHEMA)
    conn.execute("insert into conversations values (?, ?, ?)", (f"conv-{tag}", "hostile", "gpt-4o-mini"))
    intact = n
    for i in range(n):
        prompt: Any = _text(rng)
        response: Any = _text(rng)
        duration: Any = 500 + i
        pj: Any = None
        if kind in ("nul_first", "nul_mid") and i == (0 if kind == "nul_first" else n // 2):
            prompt += "\x00\x00"
        if kind in ("badutf8_first", "badutf8_mid") and i == (0 if kind == "badutf8_first" else n // 2):
            response = b"\xff\xfe invalid"  # a BLOB where text belongs
        if kind == "wrong_types" and i < 3:
            duration, pj = damage.choice([("slow", "{not json"), (2**62, "[1, 2]"), (None, '{"messages": 5}')])
            intact -= 1
        if kind == "huge_line" and i == n // 2:
            response = "lorem ipsum " * 300_000
        if kind == "deep_value" and i == n // 2:
            pj = _nested_json(600).decode()
        conn.execute("insert into responses (id, model, prompt, system, prompt_json, response, conversation_id, "
                     "duration_ms, datetime_utc, input_tokens, output_tokens, resolved_model) values "
                     "(?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                     (f"{tag}r{i:05d}", "gpt-4o-mini", prompt, "Be brief.", pj, response, f"conv-{tag}", duration,
                      _ts(i).isoformat(), 12, 5, "gpt-4o-mini-2024-07-18"))
    conn.commit()
    conn.close()
    if kind == "truncated":
        data = path.read_bytes()
        path.write_bytes(data[: len(data) // 2])
        return _sqlite_readable(path), 0
    return n, intact


def _sqlite_readable(path: Path) -> int:
    """Rows sqlite itself reads from a damaged database (plus one for the failure), 0 if it cannot open it."""
    try:
        conn = sqlite3.connect(f"file:{path}?mode=ro&immutable=1", uri=True)
        names = {r[0] for r in conn.execute("select name from sqlite_master")}
        if "responses" not in names:
            return 0
    except sqlite3.DatabaseError:
        return 0
    n = 0
    try:
        for _ in conn.execute("select * from responses r left join conversations c on c.id = r.conversation_id"):
            n += 1
    except sqlite3.DatabaseError:
        return n + 1
    finally:
        conn.close()
    return n


def _protobuf(kind: str, spec: Spec, rng: random.Random, damage: random.Random, n: int, tag: str
              ) -> tuple[bytes, int, int]:
    """Length-prefixed ExportTraceServiceRequest (ExportLogsServiceRequest) messages (the Collector file
    exporter's proto mode)."""
    import base64

    from google.protobuf.json_format import ParseDict
    from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import ExportLogsServiceRequest
    from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest

    request = ExportLogsServiceRequest if spec.events else ExportTraceServiceRequest
    msgs = []
    for i in range(n):
        req = spec.make(rng, i, tag)
        leaves = (req["resourceLogs"][0]["scopeLogs"][0]["logRecords"] if spec.events
                  else req["resourceSpans"][0]["scopeSpans"][0]["spans"])
        for sp in leaves:
            for key in ("traceId", "spanId"):  # protobuf's JSON mapping has base64 bytes where OTLP JSON has hex
                if key in sp:
                    sp[key] = base64.b64encode(bytes.fromhex(sp[key])).decode()
        msgs.append(ParseDict(req, request()).SerializeToString())
    if kind == "bare":
        merged = request()
        for m in msgs:
            merged.MergeFromString(m)  # one message holding every resourceSpans entry
        return merged.SerializeToString(), 1, 1
    intact = n
    if kind == "garbage_lines":  # one message's bytes replaced by garbage of the same length
        j = damage.randrange(1, n)
        msgs[j] = bytes(damage.randrange(256) for _ in range(len(msgs[j])))
        intact -= 1
    data = b"".join(len(m).to_bytes(4, "big") + m for m in msgs)
    if kind == "truncated":  # the writer stopped inside the last message
        return data[: len(data) - len(msgs[-1]) // 2], n, n - 1
    if kind == "gzip":
        return _gzip(data), n, intact
    if kind == "zstd":
        return _zstd(data), n, intact
    return data, n, intact


# ---------------------------------------------------------------- files


def kinds_for(spec: Spec) -> tuple[str, ...]:
    """The damage kinds that apply to a format's layout."""
    if spec.layout == "parquet":
        return ("valid", "wrong_types", "huge_line", "nul_first", "nul_mid", "badutf8_first", "badutf8_mid",
                "garbage_lines", "truncated", "gzip")
    if spec.layout == "sqlite":
        return ("valid", "wrong_types", "huge_line", "nul_first", "nul_mid", "badutf8_first", "badutf8_mid",
                "deep_value", "truncated")
    if spec.layout == "protobuf":
        return ("valid", "bare", "garbage_lines", "truncated", "gzip", "zstd")
    if spec.layout == "document":
        return ("valid", "nul_mid", "badutf8_mid", "truncated", "deep_value", "huge_line") + ENCODING_KINDS + (
            "gzip", "gzip_truncated", "gzip_garbage_tail", "zstd", "zstd_truncated", "zstd_garbage_tail", "zstd_garbage")
    kinds = KINDS
    if spec.layout == "array":
        kinds = tuple(k for k in kinds if k not in ("gzip_bad_member", "zstd_bad_frame"))
    return kinds


def write_hostile(out_dir: Path, key: str, kind: str, seed: int, n: int = 12, index: int = 0) -> HostileFile:
    """Write one hostile file of format ``key`` (a name in ``ALL_SPECS``) damaged by ``kind``."""
    spec = ALL_SPECS[key]
    # the records depend on (seed, format, index) only, the damage also on the kind: files that differ only
    # in their kind hold the same records (the same ids)
    rng = random.Random(f"{seed}:{key}:{index}")
    damage_rng = random.Random(f"{seed}:{key}:{index}:{kind}")
    tag = f"s{seed}k{index}"
    out_dir.mkdir(parents=True, exist_ok=True)
    stem = f"{index:04d}-{key.replace('#', '-')}-{kind}"
    if spec.layout == "parquet":
        data, records, intact = _parquet(kind, spec, rng, damage_rng, n, tag)
        path = out_dir / (stem + (".parquet.gz" if kind == "gzip" else ".parquet"))
        path.write_bytes(data)
        return HostileFile(path, spec.fmt, kind, records, intact)
    if spec.layout == "protobuf":
        data, records, intact = _protobuf(kind, spec, rng, damage_rng, n, tag)
        path = out_dir / (stem + spec.suffix + {"gzip": ".gz", "zstd": ".zst"}.get(kind, ""))
        path.write_bytes(data)
        return HostileFile(path, spec.fmt, kind, records, intact if spec.stores else 0)
    if spec.layout == "sqlite":
        path = out_dir / (stem + ".db")
        records, intact = _sqlite(kind, path, rng, damage_rng, n, tag)
        return HostileFile(path, spec.fmt, kind, records, intact)
    n_records = 1 if spec.layout == "document" else n
    t = _build(spec, rng, n_records, tag)
    intact = t.count()
    if kind in TEXT_KINDS and kind != "valid":
        t, intact = _damage_text(kind, spec, t, damage_rng)
    if spec.layout == "document" and kind != "valid" and kind not in ENCODING_KINDS and kind not in STREAM_KINDS:
        intact = 0 if kind in ("nul_mid", "badutf8_mid", "truncated", "deep_value") else intact
    data = t.render()
    records = t.count() if t.layout != "document" else 1
    suffix = spec.suffix
    if kind in ENCODING_KINDS:
        data = _encode(kind, data)
    elif kind in STREAM_KINDS:
        data, records = _stream(kind, data, t, damage_rng)
        suffix += ".gz" if kind.startswith("gzip") else ".zst"
        if kind not in ("gzip", "zstd"):
            intact = min(intact, max(0, records - 2))
    if spec.layout == "document" and kind in ("nul_mid", "badutf8_mid", "truncated", "deep_value"):
        intact = 0
    path = out_dir / (stem + suffix)
    path.write_bytes(data)
    return HostileFile(path, spec.fmt, kind, records, intact if spec.stores else 0)


def hostile_files(out_dir: str | Path, n: int, seed: int) -> list[HostileFile]:
    """``n`` hostile files over every (format layout, kind) pair, deterministically for ``seed``.

    Pairs are taken round-robin over the formats (each format's kinds in a
    seeded order), so any ``n`` of at least ``len(ALL_SPECS)`` covers every
    format; beyond all pairs they repeat with other seeds.
    """
    out = Path(out_dir)
    rng = random.Random(seed)
    per_key = []
    for key, spec in ALL_SPECS.items():
        kinds = list(kinds_for(spec))
        rng.shuffle(kinds)
        per_key.append([(key, k) for k in kinds])
    order = [p for round_ in range(max(len(k) for k in per_key)) for ks in per_key if round_ < len(ks)
             for p in [ks[round_]]]
    files = []
    for i in range(n):
        key, kind = order[i % len(order)]
        files.append(write_hostile(out, key, kind, seed + i // len(order), index=i))
    return files


def generate_hostile_files(out_dir: str | Path, n: int = 600, seed: int = 0) -> list[tuple[Path, str, int]]:
    """Write ``n`` hostile files under ``out_dir``; returns ``(path, format, expected physical records)`` each."""
    return [(f.path, f.fmt, f.records) for f in hostile_files(out_dir, n, seed)]
