"""Reproduction export (``tracelens.replay.reproduce``): scripts that never inline the key, run against the fake API."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys

import pytest

from tests.test_tui_data import COMPLAINT_PROMPT, build_tui_store
from tracelens.replay.reproduce import export_reproduction, export_trace_json, reproduction, safe_name


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    return build_tui_store(tmp_path_factory.mktemp("reproduce"))


def test_safe_names_for_hostile_ids():
    assert safe_name("msg_01") == "msg_01"
    for bad in ("../../etc/passwd", "a/b", "\x1b[2J", "..", ""):
        n = safe_name(bad)
        assert "/" not in n and not n.startswith(".") and n.isascii() and n


def test_exports_never_inline_the_key_and_are_pure_ascii(store, tmp_path, monkeypatch):
    monkeypatch.setenv("ANTHROPIC_API_KEY", "sk-ant-secret-value")
    trace = store.get("msg_hostile")
    ex = export_reproduction(trace, tmp_path)
    for p in ex.paths:
        text = p.read_bytes().decode("ascii")  # raises on any non-ASCII byte
        assert "sk-ant-secret-value" not in text
        assert all(c in "\n" or 32 <= ord(c) < 127 for c in text)
    sh, py = (p.read_text() for p in ex.paths)
    assert '"x-api-key: $ANTHROPIC_API_KEY"' in sh and "os.environ['ANTHROPIC_API_KEY']" in py
    body = json.loads(reproduction(trace).body)
    assert body["model"] == "claude-sonnet-4-5-20250929"  # pinned, not the alias
    assert body["messages"][0]["content"] == trace["prompt_text"]  # same value, control characters included
    j = export_trace_json(trace, tmp_path)
    assert json.loads(j.paths[0].read_text())["trace_id"] == "msg_hostile" and j.text.startswith("{")


def test_exported_scripts_run_against_the_fake_api(store, tmp_path):
    from tracelens.testing.fake_anthropic import FakeAnthropicServer, Reply

    ex = export_reproduction(store.get("msg_complaint"), tmp_path)
    sh, py = ex.paths
    with FakeAnthropicServer() as server:
        server.add_rule(Reply.message("Refund issued."))
        env = {**os.environ, "ANTHROPIC_API_KEY": "test-key", "ANTHROPIC_BASE_URL": server.base_url}
        out = subprocess.run([sys.executable, str(py)], env=env, capture_output=True, text=True, timeout=60)
        assert out.returncode == 0, out.stderr
        assert json.loads(out.stdout)["content"][0]["text"] == "Refund issued."
        if shutil.which("curl"):
            out = subprocess.run(["sh", str(sh)], env=env, capture_output=True, text=True, timeout=60)
            assert out.returncode == 0 and json.loads(out.stdout)["content"][0]["text"] == "Refund issued."
        sent = [r.json for r in server.message_requests]
    assert all(r["model"] == "claude-sonnet-4-5-20250929" for r in sent)
    assert all(r["messages"][0]["content"] == COMPLAINT_PROMPT for r in sent)
