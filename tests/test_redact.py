"""Redaction masks personal data and secrets in every stored text, keeps grouping hashes, and says it happened."""

import json
from collections import Counter

from click.testing import CliRunner

from tests.conftest import anthropic_line
from tracelens.cli.main import cli
from tracelens.redact import Redactor


def test_patterns_mask_general_shapes_and_spare_lookalikes():
    r = Redactor(("emails", "phones", "cards", "keys"), (), b"salt")
    c = Counter()
    s = r.text(
        "mail jane.doe+x@example.co.uk or call +1 (415) 555-0133; card 4111 1111 1111 1111; "
        "key sk-ant-api03-abcdefghijklmnop; order #1234567890123 stays; password=hunter22",
        c,
    )
    assert "jane.doe" not in s and "555-0133" not in s and "4111 1111" not in s and "sk-ant" not in s
    assert "hunter22" not in s
    assert "#1234567890123" in s  # fails the Luhn check and has no separators: not a card, not a phone
    assert c == Counter({"email": 1, "phone": 1, "card": 1, "key": 2})
    # the same value always maps to the same token (grouping survives redaction)
    assert r.text("jane.doe+x@example.co.uk", Counter()) in s


def test_ingest_redacts_everywhere_but_keeps_prompt_hash(tmp_path):
    line = json.loads(anthropic_line(1, prompt="My email is bob@example.com, refund please"))
    p = tmp_path / "a.jsonl"
    p.write_text(json.dumps(line) + "\n")
    plain, red = tmp_path / "plain", tmp_path / "red"
    runner = CliRunner()
    assert runner.invoke(cli, ["ingest", "--store", str(plain), str(p)]).exit_code == 0
    r = runner.invoke(cli, ["ingest", "--store", str(red), "--redact", "emails", str(p)])
    assert r.exit_code == 0, r.output
    from tracelens.store import Store

    a = Store(plain).get("msg_000001")
    b = Store(red).get("msg_000001")
    assert b["redacted"] is True and a["redacted"] is False
    for k in ("prompt_text", "request_raw"):
        assert "bob@example.com" not in b[k] and "[EMAIL:" in b[k]
    assert b["messages"][0]["text"] == b["prompt_text"]
    assert a["prompt_hash"] == b["prompt_hash"]
    assert dict(b["attributes"])["redactions"] == "email:3"  # prompt_text, messages[0].text, request_raw


def test_unknown_kind_is_a_usage_error(tmp_path):
    r = CliRunner().invoke(cli, ["ingest", "--store", str(tmp_path / "s"), "--redact", "ssn", str(tmp_path)])
    assert r.exit_code == 2 and "unknown redaction kind" in r.output
