"""The refusal gate (``_refusal_gate``) never changes a label: ``classify`` equals ``analyse`` (label, score,
category, evidence) on a generated corpus labelled by the detector before the gate existed, and, when the shared
data is present, on XSTest, ShareGPT responses and every string in the bundled sample logs."""

from __future__ import annotations

import csv
import gzip
import itertools
import json
import sys
from pathlib import Path

import pytest

from tracelens.enrich import _refusal_gate as G
from tracelens.enrich._refusal_text import _cap, _without_code, analyse, classify, classify_many, fold
from tracelens.enrich.refusal import detect

ROOT = Path(__file__).resolve().parents[1]
FIXTURES = ROOT / "tests" / "fixtures" / "refusal"
SHARED = ROOT.parent / "shared" / "data"
sys.path.insert(0, str(FIXTURES))
from generate_gate_corpus import corpus  # noqa: E402

BACKENDS = ["re"] + (["ahocorasick"] if G.ahocorasick is not None else []) + (["hyperscan"] if G.hyperscan is not None else [])


def key(v) -> tuple:
    return (v.label, v.score, v.category, v.evidence)


def gate_says(g: G.Gate, text: str) -> bool:
    return g.might_refuse(_without_code(fold(_cap(text)[0])).lower())


@pytest.fixture(scope="module", params=BACKENDS)
def gate(request):
    return G.Gate(request.param)


def test_generated_corpus_keeps_the_labels_of_the_detector_before_the_gate():
    texts = corpus()
    expected = [tuple(json.loads(line)) for line in (FIXTURES / "gate_labels.jsonl").read_text().splitlines()]
    assert len(texts) == len(expected)
    for text, exp in zip(texts, expected, strict=True):
        assert key(classify(text)) == exp, text
        assert key(analyse(text)) == exp, text


def test_gate_rejects_only_texts_analyse_gives_nothing(gate):
    rejected = 0
    for text in corpus():
        if not gate_says(gate, text):
            rejected += 1
            v = analyse(text)
            assert v.label == "none" and v.score == 0.0, text
            assert not [h for h in v.hits if h.weight > 0 or h.kind == "redirect"], text
    assert 100 < rejected < 1000  # the corpus mixes answers and refusals: the gate must decide both ways


@pytest.mark.parametrize(
    "text",
    [
        "I'm sorry, but I can't help with that.",
        "(I can't help with that.)",
        "He asked \"why\"I can't help with that.",
        "Use `x`I cannot provide that.",
        "I  **cannot**   provide that.",
        "I\tcannot provide that.",
        "I\u00a0can\u2019t help with that.",
        "NAME: hi\nOTHER: yo\nI can't help with that.",
        "```\ncode\n```\nI can't help with that.",
        "   \n\n  Let me clarify: this is wrong.",
        "Lo siento, pero no puedo ayudarte con eso.",
        "If you are struggling, please reach out to a trusted friend or a crisis hotline.",
        "The request is harmful.",
    ],
)
def test_refusal_signals_pass_the_gate_in_every_shape(gate, text):
    v = analyse(text)
    assert [h for h in v.hits if h.weight > 0 or h.kind == "redirect"], text  # the example is a signal
    assert gate_says(gate, text)
    assert key(classify(text)) == key(v)


def test_ordinary_answers_are_rejected(gate):
    for text in (
        "Here are the main steps to set up the project:\n\n1. Install Python.\n2. Run the tests.",
        "The function returns a list of integers, sorted in ascending order.",
        "You can call the API with a POST request; see the documentation for the fields.",
    ):
        assert not gate_says(gate, text), text


def test_detect_uses_the_gate_and_keeps_its_results():
    for text in corpus()[:300]:
        assert detect(text).label == analyse(text).label


def _shared_texts() -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    xs = SHARED / "xstest"
    files = sorted(xs.glob("xstest_v2_completions_*.csv")) if xs.is_dir() else []
    if files:
        out["xstest"] = [row.get("completion") or "" for f in files for row in csv.DictReader(f.open(encoding="utf-8"))]
    chats = SHARED / "chats" / "sharegpt_v3_first_turns_sample.jsonl"
    if chats.exists():
        out["chats"] = [json.loads(line)["response"] for line in chats.read_text(encoding="utf-8").splitlines() if line]
    return out


def _strings(obj, acc: list[str]) -> None:
    if isinstance(obj, str):
        if len(obj) >= 2:
            acc.append(obj)
    elif isinstance(obj, dict):
        for v in obj.values():
            _strings(v, acc)
    elif isinstance(obj, list):
        for v in obj:
            _strings(v, acc)


def test_sample_logs_keep_their_labels():
    """Every string value in the bundled sample logs (responses among them) gets the same result."""
    texts: list[str] = []
    for path in sorted((ROOT / "sample_logs").rglob("*")):
        if path.suffix == ".jsonl":
            for line in path.read_text(encoding="utf-8").splitlines():
                if line.strip():
                    _strings(json.loads(line), texts)
        elif path.name.endswith(".jsonl.gz"):  # the demo's weeks of production traffic: their first records
            with gzip.open(path, "rt", encoding="utf-8") as f:
                for line in itertools.islice(f, 300):
                    _strings(json.loads(line), texts)
        elif path.suffix == ".json":
            _strings(json.loads(path.read_text(encoding="utf-8")), texts)
        elif path.suffix == ".csv":
            for row in csv.DictReader(path.open(encoding="utf-8", newline="")):
                texts.extend(v for v in row.values() if isinstance(v, str))
    assert len(texts) > 100
    for text in texts:
        assert key(classify(text)) == key(analyse(text)), text[:200]


@pytest.mark.skipif(not _shared_texts(), reason="shared data (XSTest, ShareGPT sample) not present")
def test_shared_data_keeps_its_labels():
    for name, texts in _shared_texts().items():
        for text in texts:
            assert key(classify(text)) == key(analyse(text)), (name, text[:200])


@pytest.mark.skipif(not _shared_texts(), reason="shared data (XSTest, ShareGPT sample) not present")
def test_every_backend_rejects_only_texts_analyse_gives_nothing_on_shared_data(gate):
    for name, texts in _shared_texts().items():
        for text in texts:
            if text.strip() and not gate_says(gate, text):
                v = analyse(text)
                assert v.label == "none" and v.score == 0.0, (name, text[:200])
                assert not [h for h in v.hits if h.weight > 0 or h.kind == "redirect"], (name, text[:200])


def test_the_gate_takes_text_before_or_after_lower_casing(gate):
    for text in corpus()[:400] + ["\u212aILL IT", "I\u0307 CAN'T HELP WITH THAT.", "\u0130 can't help with that."]:
        folded = _without_code(fold(_cap(text)[0]))
        assert gate.might_refuse(folded) == gate.might_refuse(folded.lower()), text


def _batches(texts: list[str], sizes=(1, 2, 7, 64, 500)):
    i = 0
    for k in itertools.cycle(sizes):
        if i >= len(texts):
            return
        yield texts[i : i + k]
        i += k


def test_classify_many_is_classify_on_every_text():
    texts = corpus() + ["", "   \n", None, "a\x00b I can't help with that.", "I can't\x00", "\x00"]  # type: ignore[list-item]
    got = [key(v) for batch in _batches(texts) for v in classify_many(batch)]
    assert got == [key(classify(t)) for t in texts]


def test_batch_gate_rejects_only_texts_analyse_gives_nothing(gate):
    texts = [t for t in corpus() if t.strip()]
    rejected = 0
    for batch in _batches(texts):
        said = gate.might_refuse_many([_without_code(fold(_cap(t)[0])) for t in batch])
        for text, passed in zip(batch, said, strict=True):
            if not passed:
                rejected += 1
                v = analyse(text)
                assert v.label == "none" and v.score == 0.0, text
                assert not [h for h in v.hits if h.weight > 0 or h.kind == "redirect"], text
    assert 100 < rejected < 1000


@pytest.mark.skipif(not _shared_texts(), reason="shared data (XSTest, ShareGPT sample) not present")
def test_classify_many_on_shared_data():
    for texts in _shared_texts().values():
        got = [key(v) for batch in _batches(texts, (300, 1, 1000)) for v in classify_many(batch)]
        assert got == [key(analyse(t)) for t in texts]


def test_the_gate_answers_the_same_from_many_threads():
    """Responses are labelled from several threads (the eval runner): each answer is the one-thread answer."""
    from concurrent.futures import ThreadPoolExecutor

    g = G.gate()
    probes = [_without_code(fold(_cap(t)[0])) for t in corpus() if t.strip()]
    want = [g.might_refuse(p) for p in probes]
    with ThreadPoolExecutor(8) as pool:
        for _ in range(3):
            assert list(pool.map(g.might_refuse, probes)) == want
            assert list(pool.map(lambda b: g.might_refuse_many(b), [probes[i : i + 50] for i in range(0, len(probes), 50)])) == [
                g.might_refuse_many(probes[i : i + 50]) for i in range(0, len(probes), 50)
            ]
