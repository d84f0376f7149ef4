"""Secrets are never kept or shown: the always-on scrubber over the store, the quarantine and every output.

The corpus (``tests/secret_corpus.py``) is generated: 48 secret shapes, each
in the context a log carries it in. Each is checked in the scrubber alone
(plain text, JSON, JSON escaped once and twice), then end to end: hostile
input files of several formats (BOMs, headers as name/value pairs, metadata
keys, quarantined lines) are ingested, and every Parquet file's bytes, every
decoded column, and the output of ``stats``, ``search``, ``show`` and
``quarantine`` (text and JSON) are searched for every secret. A store written
before the scrubber existed is read back too: what it holds is scrubbed on
the way out (CLI and TUI).
"""

from __future__ import annotations

import codecs
import json
from collections import Counter
from pathlib import Path

import pyarrow.parquet as pq
import pytest
from click.testing import CliRunner

from tests.conftest import REPO
from tests.secret_corpus import ordinary, shapes
from tracelens.cli.main import cli
from tracelens.secrets import KINDS, is_secret_name, scrub_text, scrub_value
from tracelens.storeopen import open_store

SHAPES = shapes()
IDS = [s.label for s in SHAPES]


def test_corpus_is_large_and_varied():
    assert len(SHAPES) >= 30
    kinds = Counter()
    for s in SHAPES:
        scrub_text(s.context, kinds)
    assert set(kinds) <= set(KINDS)
    assert len(kinds) >= 20, kinds  # the shapes exercise most of the rules, not one


@pytest.mark.parametrize("shape", SHAPES, ids=IDS)
def test_each_shape_is_removed_in_text_and_in_json(shape):
    forms = {
        "text": shape.context,
        "json": json.dumps({"text": shape.context}),
        "escaped json": json.dumps({"outer": json.dumps({"text": shape.context})}),
        "ascii json": json.dumps({"messages": [{"role": "user", "content": shape.context}]}, ensure_ascii=True),
    }
    for form, text in forms.items():
        counts = Counter()
        out = scrub_text(text, counts)
        assert not shape.leaks(out), (form, out)
        assert "[secret:" in out and sum(counts.values()) >= 1, (form, out)
        if form != "text":
            doc = json.loads(out)  # still valid JSON, and so is the document escaped inside it
            if form == "escaped json":
                json.loads(doc["outer"])
        assert scrub_text(out) == out  # idempotent: markers are never scrubbed again


# shapes recognisable by their format alone, without a field or header name around them
TOKENS = [s for s in SHAPES if not s.leaks(scrub_text(s.value))]


@pytest.mark.parametrize("shape", TOKENS, ids=lambda s: s.label)
def test_a_token_right_after_an_escape_is_removed(shape):
    """Undecodable bytes are kept as ``\\xNN`` and ASCII-only JSON writes ``\\u00e9``; a key glued to either
    had a non-word character before it in the original text (found by benchmarks/fuzz.py on a CSV line)."""
    assert len(TOKENS) >= 20
    for prefix in ("\\xff\\xc3", "caf\\u00e9"):
        out = scrub_text(f"{prefix}{shape.value} and more")
        assert not shape.leaks(out), (prefix, out)


@pytest.mark.parametrize("text", ordinary(), ids=lambda t: t[:30])
def test_ordinary_text_is_left_alone(text):
    for form in (text, json.dumps({"t": text}), json.dumps({"o": json.dumps({"t": text})})):
        assert scrub_text(form) == form


def test_field_names_decide_whatever_the_value_looks_like():
    rec = {
        "metadata": {"api_key": "short1", "user_id": "u-1", "apiKey": 12345678, "password": "hunter2",
                     "x-api-key": ["k1-abcdef", "k2-abcdef"], "token": None, "max_tokens": 100, "Authorization": "x y z"},
        "headers": [{"name": "X-Api-Key", "value": "plain-1"}, {"name": "Accept", "value": "*/*"},
                    ["authorization", "Token abcdef"], ["accept", "json"]],
        "tools": [{"input_schema": {"properties": {"password": {"type": "string"}}}}],
        "logprobs": [{"token": "Hello", "logprob": -0.1}],
    }
    counts = Counter()
    out = scrub_value(rec, counts)
    m = out["metadata"]
    assert m["api_key"] == "[secret:api-key]" and m["apiKey"] == "[secret:api-key]" and m["user_id"] == "u-1"
    assert m["password"] == "[secret:password]" and m["x-api-key"] == ["[secret:api-key]"] * 2
    assert m["token"] is None and m["max_tokens"] == 100 and m["Authorization"] == "[secret:authorization]"
    assert out["headers"][0]["value"] == "[secret:api-key]" and out["headers"][1]["value"] == "*/*"
    assert out["headers"][2] == ["authorization", "[secret:authorization]"] and out["headers"][3] == ["accept", "json"]
    assert out["tools"] == rec["tools"] and out["logprobs"] == rec["logprobs"]
    assert rec["metadata"]["api_key"] == "short1"  # the input is not modified
    assert counts["api-key"] == 5
    for name in ("api_key", "X-Api-Key", "apiKey", "client_secret", "aws_secret_access_key", "access_token", "password",
                 "passwd", "Proxy-Authorization", "set-cookie", "x-amz-security-token", "refresh_token", "credentials"):
        assert is_secret_name(name), name
    for name in ("max_tokens", "input_tokens", "next_token", "time_to_first_token", "key", "cache_key", "user_id",
                 "session_id", "author", "signature", "user_api_key_hash", "user_api_key_user_id", "keyboard"):
        assert not is_secret_name(name), name


# ---------------------------------------------------------------- end to end


def _anthropic_line(i: int, prompt: str, *, metadata: dict | None = None, tool_input: dict | None = None) -> str:
    content = [{"type": "text", "text": f"answer {i}"}]
    if tool_input is not None:
        content.append({"type": "tool_use", "id": f"toolu_{i:04d}", "name": "login", "input": tool_input})
    return json.dumps({
        "timestamp": f"2026-11-18T15:{i % 60:02d}:00Z", "latency_ms": 500, "request_id": f"req_{i:06d}",
        "metadata": {"user_id": "u1", "app": "support", **(metadata or {})},
        "request": {"model": "claude-sonnet-4-5", "max_tokens": 256, "system": "Be helpful.",
                    "messages": [{"role": "user", "content": prompt}]},
        "response": {"id": f"msg_{i:06d}", "type": "message", "role": "assistant", "model": "claude-sonnet-4-5-20250929",
                     "content": content, "stop_reason": "tool_use" if tool_input else "end_turn",
                     "usage": {"input_tokens": 10, "output_tokens": 5}},
    })


def _http_exchange(i: int, key: str, bearer: str, url_key: str, *, pairs: bool = False) -> dict:
    headers = {"host": "api.anthropic.com", "content-type": "application/json", "x-api-key": key,
               "Authorization": f"Bearer {bearer}", "anthropic-version": "2023-06-01"}
    body = {"model": "claude-sonnet-4-5", "max_tokens": 64, "messages": [{"role": "user", "content": f"ping {i}"}]}
    req = {"method": "POST", "url": f"https://api.anthropic.com/v1/messages?key={url_key}&beta=true",
           "headers": [{"name": k, "value": v} for k, v in headers.items()] if pairs else headers, "body": body}
    if pairs:  # malformed: no body either, so it is quarantined with its raw text
        req.pop("body")
    resp = {"status_code": 200, "headers": {"request-id": f"req_h{i}", "date": "Thu, 01 Oct 2026 09:00:00 GMT"},
            "body": {"id": f"msg_http_{i}", "type": "message", "role": "assistant", "model": "claude-sonnet-4-5-20250929",
                     "content": [{"type": "text", "text": "pong"}], "stop_reason": "end_turn",
                     "usage": {"input_tokens": 3, "output_tokens": 1}}}
    return {"request": req, "response": resp}


def _hostile_inputs(root: Path) -> list[Path]:
    """One file per way a secret has reached the store; the values are the corpus's."""
    by = {s.label: s.value for s in SHAPES}
    files = []
    # 1. every shape in a prompt (messages, prompt_text, request_raw), metadata keys (attributes), tool args
    lines = [_anthropic_line(i, f"Debug this for me:\n{s.context}\nThanks.") for i, s in enumerate(SHAPES)]
    lines.append(_anthropic_line(900, "hello", metadata={"api_key": by["x-api-key header"], "session_token": by["jwt"]}))
    lines.append(_anthropic_line(901, "log me in", tool_input={"user": "bob", "password": by["password field"]}))
    # a line that is not JSON, and one whose timestamp is unusable: both quarantined with their raw text
    lines.append('{"oops": "' + SHAPES[0].context + '", "key": "' + by["openai project key"] + '"')
    lines.append(_anthropic_line(902, f"key {by['stripe live secret key']}").replace("2026-11-18T15", "1900-01-01T15"))
    p = root / "anthropic.jsonl"
    p.write_text("\n".join(lines) + "\n", encoding="utf-8")
    files.append(p)
    # 2. HTTP recordings, with a BOM and without; one with headers as name/value pairs (malformed)
    ex = [_http_exchange(1, by["anthropic api key"], by["bearer token header"], by["url key parameter"]),
          _http_exchange(2, by["openai legacy key"], by["github classic token"], by["google api key"], pairs=True)]
    for name, bom in (("http_bom.json", codecs.BOM_UTF8), ("http.json", b"")):
        p = root / name
        p.write_bytes(bom + json.dumps(ex, indent=1).encode())
        files.append(p)
    # 3. LiteLLM payloads with a BOM: Anthropic, OpenAI project and AWS keys where LiteLLM keeps them
    base = json.loads((REPO / "sample_logs" / "litellm_payloads.jsonl").read_text().splitlines()[0])
    base["id"] += "-leak"
    base["metadata"] = {**base["metadata"], "requester_custom_headers": {"x-api-key": by["anthropic admin key"]}}
    base["model_parameters"] = {"api_key": by["openai project key"]}
    base["hidden_params"] = {"litellm_params": {"aws_access_key_id": by["aws access key id"],
                                                "aws_secret_access_key": by["aws secret under its name"]}}
    p = root / "litellm_bom.jsonl"
    p.write_bytes(codecs.BOM_UTF8 + (json.dumps(base) + "\n").encode())
    files.append(p)
    return files


def _all_output(store_path: Path, trace_ids: list[str]) -> str:
    runner = CliRunner()
    s = ["--store", str(store_path)]
    outs = []
    for args in (["stats"], ["stats", "--json"], ["search", "--limit", "0"], ["search", "--limit", "0", "--json"],
                 ["search", "--limit", "0", "--jsonl"], ["quarantine", "--limit", "0"],
                 ["quarantine", "--limit", "0", "--json"]):
        r = runner.invoke(cli, [*args, *s])
        assert r.exit_code == 0, (args, r.output)
        outs.append(r.output)
    for tid in trace_ids:
        for extra in ([], ["--json"]):
            r = runner.invoke(cli, ["show", tid, *extra, *s])
            assert r.exit_code == 0, r.output
            outs.append(r.output)
    return "\n".join(outs)


def _stored_text(store_path: Path) -> tuple[str, bytes]:
    """Every decoded value of every Parquet file, and the files' raw bytes (pages, statistics, footers)."""
    texts, raw = [], b""
    files = sorted(store_path.rglob("*.parquet"))
    assert files
    for f in files:
        raw += f.read_bytes()
        texts.append(json.dumps(pq.read_table(f).to_pylist(), default=str, ensure_ascii=False))
    return "\n".join(texts), raw


def _assert_no_secret(where: str, text: str, raw: bytes = b"") -> None:
    leaks = {s.label: s.leaks(text) for s in SHAPES if s.leaks(text)}
    leaks.update({s.label: ["(bytes)"] for s in SHAPES if s.value.encode() in raw})
    assert not leaks, f"secrets found in {where}: {leaks}"


@pytest.fixture(scope="module")
def hostile_store(tmp_path_factory):
    root = tmp_path_factory.mktemp("secrets")
    files = _hostile_inputs(root)
    store_path = root / "store"
    r = CliRunner().invoke(cli, ["ingest", "--store", str(store_path), "--json", *map(str, files)])
    summary = json.loads(r.output[r.output.index("{"):])
    return store_path, summary


def test_ingest_keeps_no_secret_in_any_stored_byte(hostile_store):
    store_path, summary = hostile_store
    assert summary["reconciles"]
    t = summary["totals"]
    assert t["stored"] >= len(SHAPES) + 2 and t["quarantined"] >= 3, summary
    text, raw = _stored_text(store_path)
    _assert_no_secret("the store", text, raw)
    assert "[secret:" in text


def test_scrubbed_records_say_so_and_stay_usable(hostile_store):

    store = open_store(hostile_store[0])
    t = store.get("msg_000900")
    assert t["attributes"]["api_key"] == "[secret:api-key]" and t["attributes"]["session_token"] == "[secret:token]"
    assert t["attributes"]["scrubbed"] == "api-key:1,token:1" and t["redacted"] is True
    first = store.get("msg_000000")
    json.loads(first["request_raw"])  # still the JSON body, with the key replaced in place
    assert "[secret:anthropic-key]" in first["prompt_text"] and first["prompt_text"].startswith("Debug this")
    args = store.get("msg_000901")["tool_calls"][0]["arguments"]
    assert json.loads(args) == {"user": "bob", "password": "[secret:password]"}


def test_no_command_prints_a_secret(hostile_store):

    store_path, _ = hostile_store
    ids = open_store(store_path).scan().collect()["trace_id"].to_list()
    _assert_no_secret("CLI output", _all_output(store_path, ids))


@pytest.fixture(scope="module")
def legacy_store(tmp_path_factory, monkeypatch_module):
    """A store written before the scrubber existed: secrets stored as they came."""
    import tracelens.ingest.pipeline as pipeline
    import tracelens.ingest.records as records
    import tracelens.store as store_mod

    root = tmp_path_factory.mktemp("legacy")
    lines = [_anthropic_line(i, f"Debug this:\n{s.context}") for i, s in enumerate(SHAPES)]
    lines.append('{"broken": "' + SHAPES[0].context + '"')
    p = root / "old.jsonl"
    p.write_text("\n".join(lines) + "\n")
    with monkeypatch_module.context() as m:
        m.setattr(records, "scrub_record", lambda rec, found, skip: rec)
        m.setattr("tracelens.secrets.scrub_text", lambda text, counts=None: text)
        summary = pipeline.ingest(store_mod.Store(root / "store", create=True), [str(p)], enricher=False)
    assert summary.total("stored") == len(SHAPES)
    text, _ = _stored_text(root / "store")
    assert all(s.leaks(text) for s in SHAPES[:5])  # the old behaviour, reproduced
    return root / "store"


@pytest.fixture(scope="module")
def monkeypatch_module():
    mp = pytest.MonkeyPatch()
    yield mp
    mp.undo()


def test_secrets_already_in_a_store_are_scrubbed_on_output(legacy_store):
    from tracelens.query import trace_json

    store = open_store(legacy_store)
    ids = store.scan().collect()["trace_id"].to_list()
    _assert_no_secret("CLI output over an old store", _all_output(legacy_store, ids))
    # what the TUI's "c" copies and exports
    _assert_no_secret("trace JSON", "\n".join(trace_json(store.get(i)) for i in ids))


@pytest.fixture
def anyio_backend():
    return "asyncio"


@pytest.mark.anyio
async def test_tui_shows_no_secret_from_an_old_store(legacy_store, tmp_path):
    pytest.importorskip("textual")
    from tests.test_tui_data import NOW, settle
    from tests.test_tui_hostile import screen_text
    from tracelens.tui.app import TuiConfig, make_app

    app = make_app(open_store(legacy_store), TuiConfig(now=lambda: NOW, cursor_blink=False, export_dir=tmp_path,
                                                  show_timings=False))
    seen = []
    async with app.run_test(size=(200, 60)) as pilot:
        await settle(pilot)
        seen.append(screen_text(app))
        for _ in range(6):  # open the first traces: the detail view shows prompt, response and metadata
            await pilot.press("enter")
            await settle(pilot)
            seen.append(screen_text(app))
            await pilot.press("escape")
            await settle(pilot)
            await pilot.press("down")
    text = "\n".join(seen)
    assert "Debug this" in text  # the traces were on screen
    _assert_no_secret("the TUI", text)


def test_short_text_shortcut_agrees_with_the_full_scan():
    """scrub_record and scrub_value skip a text under 64 characters that the prefilter would pass unchanged
    (_plain_short); every window of the corpus texts must get the same answer from both."""
    import random

    from tracelens.secrets import _plain_short, _scrub, scrub_record

    rng = random.Random(11)
    texts = [s.context for s in shapes()] + [s.value for s in shapes()] + ordinary()
    windows = set()
    for t in texts:
        for _ in range(40):
            n = rng.randrange(8, 64)
            i = rng.randrange(0, max(1, len(t) - n + 1))
            windows.add(t[i:i + n])
    shortcut = 0
    for w in windows:
        if len(w) >= 8 and _plain_short(w, len(w)):
            shortcut += 1
            assert _scrub(w, len(w)) == (w, ()), w
    assert 0 < shortcut < len(windows)  # both branches were exercised
    found = 0
    for s in shapes():
        if 8 <= len(s.value) < 64:  # a short secret alone in a field: what the full scan of it gives
            want = _scrub(s.value, len(s.value))[0]
            out = scrub_record({"request_id": s.value, "attributes": {"note": s.value}}, Counter())
            assert out["request_id"] == want and out["attributes"]["note"] == want, s.label
            found += want != s.value
    assert found
