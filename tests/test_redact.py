"""Redaction masks personal data and secrets in every stored text, keeps grouping hashes, and says it happened."""

import json
from collections import Counter

from click.testing import CliRunner

from tests.conftest import anthropic_line
from tracelens.cli.main import cli
from tracelens.redact import Redactor
from tracelens.storeopen import open_store


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

    a = open_store(plain).get("msg_000001")
    b = open_store(red).get("msg_000001")
    assert b["redacted"] is True and a["redacted"] is False
    for k in ("prompt_text", "request_raw"):
        assert "bob@example.com" not in b[k] and "[EMAIL:" in b[k]
    assert b["messages"][0]["text"] == b["prompt_text"]
    assert a["prompt_hash"] == b["prompt_hash"]
    assert dict(b["attributes"])["redactions"] == "email:3"  # prompt_text, messages[0].text, request_raw


def test_unknown_kind_is_a_usage_error(tmp_path):
    r = CliRunner().invoke(cli, ["ingest", "--store", str(tmp_path / "s"), "--redact", "ssn", str(tmp_path)])
    assert r.exit_code == 2 and "unknown redaction kind" in r.output


# ---------------------------------------------------------------- recall on a labelled corpus

REGIONS = ("US", "GB", "DE", "FR", "IT", "ES", "NL", "BE", "CH", "AT", "SE", "NO", "DK", "FI", "PL", "IE", "PT", "JP",
           "AU", "IN", "BR", "MX", "CA", "SG", "ZA", "NZ", "KR", "IL", "AR", "CZ")
AREA = (212, 415, 646, 312, 617, 206, 303, 512, 702, 919, 305, 404, 713, 213, 503)
SENTENCES = ("Please call me at {} tomorrow.", "My number: {}", "reach {} (mobile) after 6", "{}",
             "Contact: {}, thanks!", "text {} if the order is late")


def _luhn_number(rng, prefix: str, length: int) -> str:
    from tracelens.redact import _luhn

    while True:
        body = prefix + "".join(rng.choice("0123456789") for _ in range(length - len(prefix) - 1))
        for d in "0123456789":
            if _luhn(body + d):
                return body + d


def labelled_corpus(seed: int = 3):
    """(kind, value, sentence) positives and sentences that must come out unchanged."""
    import random

    import phonenumbers

    from tests.secret_corpus import shapes

    rng = random.Random(seed)
    pos = []
    fmt = phonenumbers.PhoneNumberFormat
    for region in REGIONS:
        for t in (phonenumbers.PhoneNumberType.FIXED_LINE, phonenumbers.PhoneNumberType.MOBILE):
            n = phonenumbers.example_number_for_type(region, t)
            if n is not None:
                pos.append(("phone", phonenumbers.format_number(n, fmt.INTERNATIONAL)))
                pos.append(("phone", phonenumbers.format_number(n, fmt.E164)))
    pos += [("phone", "+49 30 901820"), ("phone", "0049 30 901820"), ("phone", "+44 20 7946 0958")]
    for _ in range(40):
        a, x, y = rng.choice(AREA), rng.randrange(200, 1000), rng.randrange(10000)
        pos.append(("phone", rng.choice([f"({a}) {x}-{y:04d}", f"{a}-{x}-{y:04d}", f"{a}.{x}.{y:04d}", f"{a}{x}{y:04d}",
                                         f"1-{a}-{x}-{y:04d}", f"+1 {a} {x} {y:04d}", f"+1 ({a}) {x}-{y:04d}"])))
    pos += [("phone", f"{rng.randrange(200, 1000)}-{rng.randrange(10000):04d}") for _ in range(10)]
    pos += [("phone", "4155550123"), ("phone", "555-0100")]
    for _ in range(30):
        user = "".join(rng.choice("abcdefghij.") for _ in range(8)).strip(".") or "x"
        pos.append(("email", f"{user}{rng.randrange(99)}@{rng.choice(['example.com', 'mail.co.uk', 'corp.io'])}"))
    for _ in range(30):
        kind = rng.choice([("4", 16), ("51", 16), ("55", 16), ("34", 15), ("37", 15)])
        n = _luhn_number(rng, *kind)
        sep = rng.choice(["", " ", "-"])
        pos.append(("card", sep.join(n[i:i + 4] for i in range(0, len(n), 4)) if sep else n))
    for s in shapes():
        pos.append(("key", s.value, s.context))
    for _ in range(10):  # bare AWS secret keys, with no key id or name near them
        while True:
            v = "".join(rng.choice("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789/+") for _ in range(40))
            if any(c.isupper() for c in v) and any(c.islower() for c in v) and any(c.isdigit() for c in v):
                break
        pos.append(("key", v))
    pos += [("key", "ASIA" + "".join(rng.choice("ABCDEFGHIJKLMNOPQRSTUVWXYZ234567") for _ in range(16))),
            ("key", "sk_live_" + "".join(rng.choice("abcdefghijklmnopqrstuvwxyzABCDEFGHIJ0123456789") for _ in range(24)))]
    labelled = [(p[0], p[1], p[2] if len(p) > 2 else rng.choice(SENTENCES).format(p[1])) for p in pos]
    negatives = [n for _ in range(5) for n in _ordinary_numbers(rng)]
    return labelled, negatives


def _ordinary_numbers(rng) -> list[str]:
    """Order ids, amounts, dates, times, versions, addresses and ids: never personal data."""
    return [
        f"Order #{rng.randrange(10**5, 10**8)} shipped", f"order {rng.randrange(10**5, 10**9)} is late",
        f"ref ORD-2026-{rng.randrange(10**6):06d}", f"invoice INV-{rng.randrange(10**8):08d} paid",
        f"total ${rng.randrange(1, 9999):,}.{rng.randrange(100):02d}", f"€{rng.randrange(1, 99)}.{rng.randrange(1000):03d},00",
        "1 234,56 EUR", f"on {2020 + rng.randrange(7)}-{rng.randrange(1, 13):02d}-{rng.randrange(1, 29):02d}",
        f"{rng.randrange(1, 29):02d}/{rng.randrange(1, 13):02d}/2026", f"{rng.randrange(1, 13):02d}/{rng.randrange(1, 29):02d}/2026",
        f"{rng.randrange(1, 29):02d}.{rng.randrange(1, 13):02d}.2026", "March 15, 2026 at 10:30-11:45",
        "2026-11-18T15:00:00Z", "v1.2.3 and 10.0.19045", f"IP 192.168.{rng.randrange(256)}.{rng.randrange(256)}",
        f"zip {rng.randrange(10000, 99999)}", "qty 12 x 3.50 = 42.00", "12.5% off", "from 2019-2024", "3-5 business days",
        "tracking 1Z999AA10123456784", "room 101, ext. 42", "sha 9f86d081884c7d659a2feaa0c55ad015a3bf4f1b",
        "id 123e4567-e89b-12d3-a456-426614174000", "ISBN 978-3-16-148410-0", "latency 1234 ms, 56 tokens",
    ]


def test_redaction_recall_on_a_labelled_corpus_and_no_false_positive():
    labelled, negatives = labelled_corpus()
    r = Redactor(("emails", "phones", "cards", "keys"), (), b"salt")
    missed = []
    per_kind = Counter()
    for kind, value, sentence in labelled:
        per_kind[kind] += 1
        out = r.text(sentence, Counter())
        if value in out:
            missed.append((kind, value, out))
    recall = 1 - len(missed) / len(labelled)
    assert len(labelled) >= 250 and min(per_kind.values()) >= 30, per_kind
    assert recall >= 0.99, (f"recall {recall:.3f}", missed)
    assert len(negatives) >= 120
    false_positives = [(n, r.text(n, Counter())) for n in negatives if r.text(n, Counter()) != n]
    assert not false_positives


def test_issue_examples_are_all_masked():
    r = Redactor(("emails", "phones", "cards", "keys"), (), b"salt")
    aws_secret = "wJalrXUtnFEMI/K7MDENG/" + "bPxRfiCYEXAMPLEKEY"
    for v in ("+49 30 901820", "4155550123", "555-0100", "ASIA" + "IOSFODNN7EXAMPLE", aws_secret,
              "sk_live_" + "4eC39HqLyjWDarjtT1zdp7dc"):
        out = r.text(f"note: {v} end", Counter())
        assert v not in out, out


def test_id_fields_are_tokenised_consistently_and_emails_as_ids_are_masked(tmp_path):

    lines = [json.loads(anthropic_line(i, user="ann@example.com" if i % 2 else "bob-4411")) for i in range(4)]
    for d in lines:
        d["request"]["metadata"] = {"user_id": d["metadata"]["user_id"]}
        d["metadata"]["session_id"] = f"sess-{d['metadata']['user_id']}"
    p = tmp_path / "a.jsonl"
    p.write_text("\n".join(json.dumps(d) for d in lines) + "\n")
    runner = CliRunner()
    emails = tmp_path / "emails"
    assert runner.invoke(cli, ["ingest", "--store", str(emails), "--redact", "emails", str(p)]).exit_code == 0
    users = open_store(emails).scan().collect()["user_id"].to_list()
    assert "ann@example.com" not in users and "bob-4411" in users and len(set(users)) == 2
    ids = tmp_path / "ids"
    r = runner.invoke(cli, ["ingest", "--store", str(ids), "--redact-fields", "user_id,session_id", str(p)])
    assert r.exit_code == 0, r.output
    df = open_store(ids).scan().collect()
    assert df["user_id"].n_unique() == 2 and df["session_id"].n_unique() == 2  # grouping survives
    assert all(u.startswith("[USER_ID:") for u in df["user_id"]) and all(s.startswith("[SESSION_ID:") for s in df["session_id"])
    blob = json.dumps(df.drop("timestamp", "ingested_at").to_dicts(), default=str)
    assert "ann@example.com" not in blob and "bob-4411" not in blob  # also inside request_raw's metadata
    token = df["user_id"][0]
    r = runner.invoke(cli, ["search", "--user", token, "--json", "--store", str(ids)])
    assert r.exit_code == 0 and len(json.loads(r.output)) == 2
    bad = runner.invoke(cli, ["ingest", "--store", str(ids), "--redact-fields", "prompt_text", str(p)])
    assert bad.exit_code == 2 and "unknown field" in bad.output


def test_quarantine_raw_is_redacted_like_stored_text(tmp_path):
    import pyarrow.parquet as pq

    p = tmp_path / "a.jsonl"
    p.write_text(anthropic_line(1) + "\n" + '{"broken": "mail carol@example.com or call +44 20 7946 0958"\n')
    store = tmp_path / "s"
    r = CliRunner().invoke(cli, ["ingest", "--store", str(store), "--redact", "emails,phones", str(p)])
    assert r.exit_code == 0, r.output
    rows = [row for f in store.rglob("quarantine/**/*.parquet") for row in pq.read_table(f).to_pylist()]
    assert len(rows) == 1
    assert "carol@example.com" not in rows[0]["raw"] and "7946" not in rows[0]["raw"] and "[EMAIL:" in rows[0]["raw"]
    out = CliRunner().invoke(cli, ["quarantine", "--json", "--store", str(store)]).output
    assert "carol@example.com" not in out
