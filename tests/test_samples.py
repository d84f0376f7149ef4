"""The sample production-log generator (tracelens.samples) and the bundled sample.

Checks that output is byte-identical for a seed, ingests cleanly, and that
every planted change is visible in the raw records exactly where truth.json
says it is, while the things meant to stay put do. Ground-truth refusal labels
come from the records' own ``synthetic_refusal`` metadata, not the detector.
"""

from __future__ import annotations

import datetime as dt
import gzip
import hashlib
import json
from collections import Counter
from pathlib import Path

import pytest

from tracelens import samples
from tracelens.hashing import system_prompt_hash
from tracelens.modelid import parse_model_id
from tracelens.samples import Config, generate, make_plan, write_sample

REPO = Path(__file__).resolve().parents[1]
BUNDLED = REPO / "sample_logs" / "production"
SMALL = Config(weeks=1, per_day=50)
MEDIUM = Config(weeks=2, per_day=150)


def _read_lines(path: Path) -> list[dict]:
    data = gzip.decompress(path.read_bytes()) if path.suffix == ".gz" else path.read_bytes()
    return [json.loads(line) for line in data.decode("utf-8").splitlines()]


def _ts(s: str) -> dt.datetime:
    return dt.datetime.fromisoformat(s.replace("Z", "+00:00"))


def _system_text(req: dict) -> str:
    sys_ = req["system"]
    return sys_ if isinstance(sys_, str) else "\n\n".join(b["text"] for b in sys_)


@pytest.fixture(scope="module")
def small_dir(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("small")
    write_sample(out, SMALL)
    return out


@pytest.fixture(scope="module")
def medium():
    return generate(MEDIUM)


# ---------------------------------------------------------------- determinism and files


def test_same_seed_gives_identical_bytes(small_dir, tmp_path):
    again = tmp_path / "again"
    write_sample(again, SMALL)
    names = sorted(p.name for p in small_dir.iterdir())
    assert names == sorted(p.name for p in again.iterdir())
    assert names == ["anthropic-2026-W47.jsonl.gz", "truth.json"]
    for n in names:
        assert (small_dir / n).read_bytes() == (again / n).read_bytes(), n
    gz = (small_dir / "anthropic-2026-W47.jsonl.gz").read_bytes()
    assert gz[4:8] == b"\0\0\0\0"  # gzip mtime fixed to 0


def test_other_seed_differs(small_dir, tmp_path):
    write_sample(tmp_path, Config(weeks=1, per_day=50, seed=8))
    a = (small_dir / "anthropic-2026-W47.jsonl.gz").read_bytes()
    assert (tmp_path / "anthropic-2026-W47.jsonl.gz").read_bytes() != a


def test_files_per_iso_week_sorted_and_uncompressed_option(tmp_path):
    res = write_sample(tmp_path / "o", Config(weeks=2, per_day=30, compress="none"))
    assert [p.name for p in res.files] == ["anthropic-2026-W46.jsonl", "anthropic-2026-W47.jsonl"]
    truth = json.loads(res.truth_path.read_text())
    for p, info in zip(res.files, truth["files"], strict=True):
        lines = _read_lines(p)
        stamps = [_ts(o["timestamp"]) for o in lines]
        assert stamps == sorted(stamps)
        assert {f"{t.isocalendar()[0]}-W{t.isocalendar()[1]:02d}" for t in stamps} == {info["week"]}
        assert info["traces"] == len(lines)
        assert info["sha256_uncompressed"] == hashlib.sha256(p.read_bytes()).hexdigest()
    # a rerun with fewer weeks leaves no stale week files behind
    write_sample(tmp_path / "o", Config(weeks=1, per_day=30, compress="none"))
    assert sorted(p.name for p in (tmp_path / "o").iterdir()) == ["anthropic-2026-W47.jsonl", "truth.json"]


def test_end_must_be_sunday_and_cli_reports_it(tmp_path, capsys):
    with pytest.raises(ValueError, match="Sunday"):
        Config(end=dt.date(2026, 11, 21))
    with pytest.raises(SystemExit) as e:
        samples.main(["--out", str(tmp_path), "--end", "2026-11-21"])
    assert e.value.code == 2
    assert "Sunday" in capsys.readouterr().err
    assert samples.main(["--out", str(tmp_path), "--weeks", "1", "--per-day", "10", "--end", "2026-10-04"]) == 0
    out = capsys.readouterr().out.split()
    assert out[0].endswith("anthropic-2026-W40.jsonl.gz") and out[-1].endswith("truth.json")


# ---------------------------------------------------------------- ingest


def test_every_line_ingests_without_quarantine(small_dir, store):
    from tracelens.ingest.pipeline import ingest

    files = sorted(str(p) for p in small_dir.glob("anthropic-*.jsonl.gz"))
    n_lines = sum(len(_read_lines(Path(f))) for f in files)
    res = ingest(store, files, enricher=False)
    tot = res.to_dict()["totals"]
    assert res.to_dict()["reconciles"] and not res.errors
    assert [f.format for f in res.files] == ["anthropic_log"]
    assert tot["quarantined"] == 0 and tot["duplicates"] == 0 and tot["skipped"] == 0
    assert tot["stored"] == n_lines
    df = store.scan("traces").collect()
    assert df.height == n_lines and df["trace_id"].n_unique() == n_lines
    ok = df.filter(df["status"] == "ok")
    assert ok["response_id"].str.starts_with("msg_").all()
    assert df["request_id"].str.starts_with("req_").all()
    # ground-truth labels survive ingest as attributes
    attrs = [dict(a) for a in ok["attributes"].to_list()]
    assert all(a["synthetic_refusal"] in ("none", "partial", "full") for a in attrs)
    assert {a["synthetic_topic"] for a in attrs} >= {"account_access", "ticket_summary", "code_question"}
    # tool calls and tool results come through
    assert ok.filter(ok["stop_reason"] == "tool_use")["tool_calls"].list.len().min() >= 1
    assert (df["tools_hash"].is_not_null() == (df["app"] == "support-bot")).all()


# ---------------------------------------------------------------- realism


def test_ids_unique_and_shapes_realistic(medium):
    objs = [ln.obj for ln in medium.lines]
    msg_ids = [o["response"]["id"] for o in objs if "response" in o]
    req_ids = [o["request_id"] for o in objs]
    assert len(set(msg_ids)) == len(msg_ids) and len(set(req_ids)) == len(req_ids)
    errors = Counter(o["error"]["error"]["type"] for o in objs if "error" in o)
    assert set(errors) <= {"rate_limit_error", "overloaded_error"}
    assert 0 < sum(errors.values()) / len(objs) < 0.02
    stops = Counter(o["response"]["stop_reason"] for o in objs if "response" in o)
    assert stops["tool_use"] > 0 and stops["max_tokens"] > 0 and stops["refusal"] > 0
    multi = [o for o in objs if sum(m["role"] == "assistant" for m in o["request"]["messages"]) >= 1]
    assert any(isinstance(m["content"], str) for o in multi for m in o["request"]["messages"][1:])  # plain follow-ups
    assert any(isinstance(m["content"], list) and m["content"][0]["type"] == "tool_result"
               for o in multi for m in o["request"]["messages"])
    # latency grows with output tokens (same app, same model)
    sb = [o for o in objs if "response" in o and o["metadata"]["app"] == "support-bot"]
    short = [o["latency_ms"] for o in sb if o["response"]["usage"]["output_tokens"] < 30]
    long_ = [o["latency_ms"] for o in sb if o["response"]["usage"]["output_tokens"] > 60]
    assert sorted(long_)[len(long_) // 2] > sorted(short)[len(short) // 2]
    # recurring exact prompts: the same first user turn appears on many different days
    days: dict[str, set] = {}
    for o in objs:
        first = o["request"]["messages"][0]["content"]
        if isinstance(first, str):
            days.setdefault(first, set()).add(o["timestamp"][:10])
    assert sum(1 for d in days.values() if len(d) >= 7) >= 5
    # traffic peaks in the UTC working day
    hours = Counter(_ts(o["timestamp"]).hour for o in objs)
    assert hours[14] > 3 * hours[3]


def test_refusals_and_sympathy_traps_are_labelled(medium):
    texts = Counter()
    for ln in medium.lines:
        if ln.label is None:
            continue
        text = "".join(b.get("text", "") for b in ln.obj["response"]["content"])
        texts[(ln.label, text.startswith("I'm sorry to hear that your order is late"))] += 1
    assert texts[("none", True)] > 0  # sympathy that is not a refusal
    assert texts[("partial", False)] > 0 and texts[("full", False)] > 0
    structured = [ln for ln in medium.lines if ln.label and ln.obj["response"]["stop_reason"] == "refusal"]
    assert structured and all(ln.label == "full" for ln in structured)


# ---------------------------------------------------------------- planted truth


def test_snapshot_rollover_and_aliases(medium):
    plan = make_plan(MEDIUM)
    ok = [ln for ln in medium.lines if ln.label is not None]
    for ln in ok:
        req, ret = ln.obj["request"]["model"], ln.obj["response"]["model"]
        alias = parse_model_id(req).is_alias
        if ln.app == "support-bot":
            assert req == samples.SONNET_ALIAS and alias
            assert ret == (samples.SNAPSHOT_NEW if ln.ts >= plan.rollover_at else samples.SNAPSHOT_OLD)
        elif ln.app == "summarizer":
            assert not alias and req == ret == samples.SUMMARIZER_PINNED
        else:
            assert alias == (ln.ts >= plan.alias_adoption_at)
            assert ret == samples.HAIKU_PINNED
    # both sides of each change are populated
    assert any(ln.app == "support-bot" and ln.ts < plan.rollover_at for ln in ok)
    assert any(ln.app == "support-bot" and ln.ts >= plan.rollover_at for ln in ok)
    change = {c["kind"]: c for c in medium.truth["changes"]}
    assert change["snapshot_rollover"]["at"] == "2026-11-18T14:00:00.000Z"
    assert change["alias_adoption"]["at"] == "2026-11-17T10:00:00.000Z"


def test_system_prompt_hash_changes_at_planted_time(medium):
    plan = make_plan(MEDIUM)
    change = {c["kind"]: c for c in medium.truth["changes"]}["system_prompt_change"]
    assert change["at"] == "2026-11-19T09:00:00.000Z" and _ts(change["at"]) == plan.system_prompt_at
    seen = Counter()
    for ln in medium.lines:
        if ln.app != "support-bot":
            continue
        h = system_prompt_hash(_system_text(ln.obj["request"]))
        side = "after" if ln.ts >= plan.system_prompt_at else "before"
        assert h == change[side]
        seen[side] += 1
    assert seen["before"] > 100 and seen["after"] > 30
    assert change["before"] != change["after"]


def _rates(lines, pred, plan):
    out = {}
    for side, keep in (("before", lambda t: t < plan.rollover_at), ("after", lambda t: t >= plan.rollover_at)):
        sel = [ln for ln in lines if ln.label is not None and pred(ln) and keep(ln.ts)]
        out[side] = sum(ln.label != "none" for ln in sel) / len(sel)
    return out


def test_refusal_rate_rises_only_on_planted_topic(medium):
    plan = make_plan(MEDIUM)
    sb = [ln for ln in medium.lines if ln.app == "support-bot" and "synthetic_planted" not in ln.obj["metadata"]]
    planted = _rates(sb, lambda ln: ln.topic == samples.PLANTED_TOPIC, plan)
    assert planted["before"] <= 0.08 and samples.REFUSAL_AFTER - 0.1 <= planted["after"] <= samples.REFUSAL_AFTER + 0.1
    others = _rates(sb, lambda ln: ln.topic not in (samples.PLANTED_TOPIC, "policy_sensitive"), plan)
    assert abs(others["after"] - others["before"]) < 0.02
    policy = _rates(sb, lambda ln: ln.topic == "policy_sensitive", plan)
    assert abs(policy["after"] - policy["before"]) < 0.15
    # topic mix unchanged
    mix = {side: Counter(ln.topic for ln in sb if (ln.ts >= plan.rollover_at) == (side == "after"))
           for side in ("before", "after")}
    for topic, _ in samples.APP["support-bot"].topics:
        b = mix["before"][topic] / sum(mix["before"].values())
        a = mix["after"][topic] / sum(mix["after"].values())
        assert abs(a - b) < 0.05, topic
    obs = {c["kind"]: c for c in medium.truth["changes"]}["refusal_rate"]["observed"]
    assert obs["after"]["rate"] > obs["before"]["rate"] + 0.1


def test_complaint_is_planted_and_recorded(medium):
    c = medium.truth["complaint"]
    line = next(ln for ln in medium.lines if ln.obj.get("response", {}).get("id") == c["message_id"])
    assert line.obj["metadata"]["user_id"] == "4411" == c["user_id"]
    assert line.obj["metadata"]["app"] == "support-bot" and line.label == "full"
    assert line.obj["metadata"]["synthetic_planted"] == "complaint"
    assert "refund" in line.obj["request"]["messages"][0]["content"]
    at = _ts(c["at"])
    assert at.date() == dt.date(2026, 11, 21) and at.hour == 15 and at.minute < 10
    assert line.obj["response"]["model"] == samples.SNAPSHOT_NEW
    # 4411 is also an ordinary customer with earlier history
    assert sum(ln.obj["metadata"]["user_id"] == "4411" for ln in medium.lines) > 1


# ---------------------------------------------------------------- the bundled sample


def test_bundled_sample_matches_generator():
    truth_path = BUNDLED / "truth.json"
    if not truth_path.exists():
        pytest.skip("sample_logs/production not generated")
    truth = json.loads(truth_path.read_text())
    o = truth["options"]
    cfg = Config(weeks=o["weeks"], per_day=o["per_day"], end=dt.date.fromisoformat(o["end"]), seed=o["seed"],
                 compress=o["compress"])
    assert cfg == Config()  # the bundled sample uses the defaults
    gen = generate(cfg)
    assert gen.truth["complaint"] == truth["complaint"]
    assert gen.truth["changes"] == truth["changes"]
    expected = samples.week_files(gen)
    on_disk = sorted(p.name for p in BUNDLED.glob("anthropic-*.jsonl*"))
    assert on_disk == [f["name"] for f in truth["files"]] == [n + ".gz" for n in expected]
    total = 0
    for f in truth["files"]:
        blob = (BUNDLED / f["name"]).read_bytes()
        total += len(blob)
        data = gzip.decompress(blob)
        # regenerate with `python -m tracelens.samples` when the generator changes on purpose
        assert data == expected[f["name"][:-3]], f"{f['name']} is out of date with the generator"
        assert hashlib.sha256(data).hexdigest() == f["sha256_uncompressed"]
    assert total < 3_200_000
    assert truth["observed"]["traces"] == len(gen.lines)


def test_corpus_is_package_data_and_covers_every_planned_topic():
    """The text corpus ships as data (src/tracelens/samples/data/corpus.json, matched by pyproject's package-data)."""
    import fnmatch
    import tomllib
    from importlib import resources

    from tracelens.samples import corpus

    data = resources.files("tracelens.samples").joinpath("data", "corpus.json")
    assert data.is_file() and corpus.load_corpus()["support_topics"].keys() == corpus.SUPPORT.keys()
    patterns = tomllib.loads((REPO / "pyproject.toml").read_text())["tool"]["setuptools"]["package-data"]["tracelens"]
    assert any(fnmatch.fnmatch("samples/data/corpus.json", p) for p in patterns)
    support_topics = {t for t, _ in samples.APP["support-bot"].topics}
    assert support_topics <= corpus.SUPPORT.keys()
    assert all(t.intents and all(i.prompts and i.bodies for i in t.intents) for t in corpus.SUPPORT.values())
    # the Python modules hold code, not text: no string constant in them (docstrings aside) is corpus-sized
    import ast

    for path in (REPO / "src" / "tracelens" / "samples").glob("*.py"):
        tree = ast.parse(path.read_text())
        docs = {id(n.value) for n in ast.walk(tree) if isinstance(n, ast.Expr) and isinstance(n.value, ast.Constant)}
        longest = max((len(n.value) for n in ast.walk(tree)
                       if isinstance(n, ast.Constant) and isinstance(n.value, str) and id(n) not in docs), default=0)
        assert longest < 500, f"{path.name} has a {longest}-character string literal"
