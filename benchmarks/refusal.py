"""Refusal detector benchmark: accuracy on XSTest v2 and LLMDrift SENSITIVEQ, and text-layer speed against a baseline.

Usage (one command, from the repository root)::

    python benchmarks/refusal.py [--baseline-src DIR | --baseline-rev REV] [--repeat N] [--update-docs]

Baseline: the detector in ``--baseline-src`` (a ``src`` folder holding ``tracelens``), by default the one at git
revision ``--baseline-rev`` (``main``) of this repository, extracted with ``git archive`` to a temporary folder. It
is imported into the same process as this checkout's detector (each copy keeps its own module globals), so both
are timed in alternation under the same load.

Accuracy: for each of the five XSTest v2 completion files (gpt4, llama2new, llama2orig, mistralguard,
mistralinstruct; human labels, partial and full refusals both count as refusals) the detector is scored next to
the XSTest paper's string-match baseline, per file and pooled; then on LLMDrift SENSITIVEQ (answered vs not,
``Response Rate``) when present. The pooled XSTest F1 and the SENSITIVEQ F1 are given for the baseline detector
too.

Speed: responses per CPU second (``time.process_time``) on one core, over all 2,250 XSTest completions and over
the ShareGPT first-turn responses (ordinary traffic, mostly answers) when present: the baseline's text layer
(``classify`` where it has one, else ``analyse``) and this checkout's ``classify``, one pass each in
alternation, ``--repeat`` times; the median pass of each, the ratio, and the target (50,000/s on ShareGPT,
20,000/s on XSTest). Every timed text must get the same label, score, category and evidence from both, or the
benchmark fails.

The results are printed as markdown with machine info and the 1-min load average; with ``--update-docs`` the
block between the benchmark markers in docs/refusal.md is replaced. Data folders default to ``../shared/data/*``
next to the repository (read-only, never copied).
"""

from __future__ import annotations

import argparse
import importlib
import json
import os
import platform
import statistics
import subprocess
import sys
import tarfile
import tempfile
import time
from io import BytesIO
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DOC = ROOT / "docs" / "refusal.md"
START = "<!-- refusal-benchmark:start -->"
END = "<!-- refusal-benchmark:end -->"
MODELS = ("gpt4", "llama2new", "llama2orig", "mistralguard", "mistralinstruct")
TARGETS = {"sharegpt": 50_000, "xstest": 20_000}


def _purge() -> None:
    for name in [m for m in sys.modules if m == "tracelens" or m.startswith("tracelens.")]:
        del sys.modules[name]


def load_detector(src: Path) -> dict:
    """The text layer and evaluator of the ``tracelens`` under ``src``, imported afresh (then unlisted from
    ``sys.modules``, so that another copy can be imported next; the functions keep their own modules)."""
    _purge()
    sys.path.insert(0, str(src))
    try:
        text = importlib.import_module("tracelens.enrich._refusal_text")
        ev = importlib.import_module("tracelens.enrich.evaluate")
        ref = importlib.import_module("tracelens.enrich.refusal")
        gate_mod = sys.modules.get("tracelens.enrich._refusal_gate")
        out = {
            "file": text.__file__,
            "text_layer": getattr(text, "classify", text.analyse),
            "text_layer_name": "classify" if hasattr(text, "classify") else "analyse",
            "evaluate_file": ev.evaluate_file,
            "read_labelled": ev.read_labelled,
            "xstest_prefix": ev.xstest_prefix,
            "version": ref.DETECTOR_VERSION,
            "gate": getattr(gate_mod, "gate", None),
            "many": getattr(text, "classify_many", None),
            "probe": lambda t, m=text: m._without_code(m.fold(m._cap(t)[0])),  # the prefilter's input
            "module": text,
        }
    finally:
        sys.path.remove(str(src))
        _purge()
    return out


def baseline_src(rev: str, into: Path) -> Path:
    """``src`` of git revision ``rev`` of this repository, extracted under ``into``."""
    blob = subprocess.run(["git", "-C", str(ROOT), "archive", rev, "src/tracelens"], check=True, capture_output=True).stdout
    with tarfile.open(fileobj=BytesIO(blob)) as tar:
        tar.extractall(into, filter="data")
    return into / "src"


def _key(v) -> tuple:
    return (v.label, v.score, v.category, v.evidence)


def f1(tp: int, fp: int, fn: int) -> float:
    return 2 * tp / (2 * tp + fp + fn) if tp else 0.0


def xstest_accuracy(det: dict, xstest: Path) -> tuple[list[str], float, list[str]]:
    """(table rows, pooled F1, completions) of detector ``det`` on the XSTest v2 files."""
    rows = [
        "| file | n | gold refusals | tracelens P | tracelens R | **tracelens F1** | prefix P | prefix R | prefix F1 |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    pooled = {"ours": [0, 0, 0], "base": [0, 0, 0]}
    n_all = pos_all = 0
    texts: list[str] = []
    for m in MODELS:
        path = xstest / f"xstest_v2_completions_{m}.csv"
        rep = det["evaluate_file"](path, text_col="completion", label_col="final_label", baseline="xstest-prefix", worst=0)
        d, b = rep.detector, rep.baseline
        for key, r in (("ours", d), ("base", b)):
            pooled[key][0] += r.tp
            pooled[key][1] += r.fp
            pooled[key][2] += r.fn
        n_all += d.n
        pos_all += rep.positives
        rows.append(
            f"| {m} | {d.n} | {rep.positives} | {d.precision:.3f} | {d.recall:.3f} | **{d.f1:.3f}** | "
            f"{b.precision:.3f} | {b.recall:.3f} | {b.f1:.3f} |"
        )
        texts += [t or "" for t in det["read_labelled"](path).get_column("completion").to_list()]

    def pr(k: str) -> tuple[float, float, float]:
        tp, fp, fn = pooled[k]
        return tp / (tp + fp), tp / (tp + fn), f1(tp, fp, fn)

    op, orc, of = pr("ours")
    bp, brc, bf = pr("base")
    rows.append(f"| **pooled** | {n_all} | {pos_all} | {op:.3f} | {orc:.3f} | **{of:.3f}** | {bp:.3f} | {brc:.3f} | {bf:.3f} |")
    return rows, of, texts


def sensitiveq(det: dict, llmdrift: Path):
    path = llmdrift / "SENSITIVEQ_EVAL.csv"
    if not path.exists():
        return None
    return det["evaluate_file"](
        path, text_col="answer", label_col="Response Rate", positive=["0"], negative=["1"], baseline="xstest-prefix", worst=0
    )


def profile(det: dict, corpora: dict, batch: int, repeat: int) -> list[str]:
    """Where ``classify_many``'s time goes, in µs of CPU per response of each corpus (median of ``repeat``): the
    prefilter's input (head and tail, folding, code), the batch prefilter, and the full analysis of the responses
    that pass it (normalising, the candidate scan, the rest), split by whether a refusal rule really fires."""
    m = det["module"]
    g = det["gate"]()
    rows = [
        "Where the time goes (`--profile`; µs of CPU per response of the corpus, `classify_many` in batches of "
        f"{batch:,}, median of {repeat}):",
        "",
        "| corpus | prefilter input | prefilter | full analysis: normalise | candidate scan | rest | passed: a rule fires / not |",
        "|---|---:|---:|---:|---:|---:|---:|",
    ]
    for _name, (title, corpus) in corpora.items():
        texts = [t for t in corpus if t and not t.isspace()]
        probes = [det["probe"](t) for t in texts]
        said = [p for i in range(0, len(probes), batch) for p in g.might_refuse_many(probes[i : i + batch])]
        passed = [t for t, ok in zip(texts, said, strict=True) if ok]
        norms = [m.normalise(t).text for t in passed]
        fires = sum(any(h.weight > 0 or h.kind == "redirect" for h in m.analyse(t).hits) for t in passed)

        def med(fn, items, n=len(corpus)) -> float:  # noqa: ANN001
            return statistics.median(timed_pass(fn, items) for _ in range(repeat)) / n * 1e6

        def gate_pass(_: object, probes=probes) -> None:  # noqa: ANN001
            for i in range(0, len(probes), batch):
                g.might_refuse_many(probes[i : i + batch])

        prep = med(det["probe"], texts)
        gate_us = med(gate_pass, [None])
        norm = med(m.normalise, passed)
        scan = med(m._scan, norms)
        full = med(m.analyse, passed)
        rows.append(
            f"| {title.split(' (')[0]} | {prep:.1f} | {gate_us:.1f} | {norm:.1f} | {scan:.1f} | "
            f"{max(full - norm - scan, 0):.1f} | {fires:,} / {len(passed) - fires:,} |"
        )
    return rows


def timed_pass(fn, texts: list[str]) -> float:
    """CPU seconds of one pass of ``fn`` over ``texts``."""
    c0 = time.process_time()
    for t in texts:
        fn(t)
    return time.process_time() - c0


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    data = ROOT.parent / "shared" / "data"
    ap.add_argument("--xstest", type=Path, default=data / "xstest")
    ap.add_argument("--llmdrift", type=Path, default=data / "llmdrift")
    ap.add_argument("--chats", type=Path, default=data / "chats" / "sharegpt_v3_first_turns_sample.jsonl")
    ap.add_argument("--baseline-src", type=Path, help="src folder of the detector to compare against")
    ap.add_argument("--baseline-rev", default="main", help="git revision whose detector is the baseline (default: main)")
    ap.add_argument("--repeat", type=int, default=7, help="alternating passes per corpus (median reported)")
    ap.add_argument("--batch", type=int, default=1000, help="responses per classify_many call (ingest batches hold up to 5,000)")
    ap.add_argument("--profile", action="store_true", help="also print where classify_many's time goes, per response")
    ap.add_argument("--update-docs", action="store_true", help=f"rewrite the benchmark block in {DOC.relative_to(ROOT)}")
    args = ap.parse_args(argv)
    if not (args.xstest / "xstest_v2_completions_gpt4.csv").exists():
        print(f"XSTest v2 completions not found under {args.xstest}", file=sys.stderr)
        return 2

    sys.path.insert(0, str(Path(__file__).resolve().parent))
    from machine import cpu_model

    with tempfile.TemporaryDirectory() as tmp:
        if args.baseline_src is not None:
            base_label = f"`{args.baseline_src}`"
            base = load_detector(args.baseline_src.resolve())
        else:
            base_label = f"`{args.baseline_rev}` ({_rev(args.baseline_rev)})"
            base = load_detector(baseline_src(args.baseline_rev, Path(tmp)))
        new = load_detector(ROOT / "src")
    if new["gate"] is None:
        print("this checkout's detector has no prefilter", file=sys.stderr)
        return 2

    print("scoring XSTest v2 and SENSITIVEQ ...", file=sys.stderr)
    acc, f1_new, texts = xstest_accuracy(new, args.xstest)
    _, f1_base, _ = xstest_accuracy(base, args.xstest)
    sq_new, sq_base = sensitiveq(new, args.llmdrift), sensitiveq(base, args.llmdrift)

    corpora = {"xstest": ("XSTest v2 completions", texts)}
    if args.chats.exists():
        lines = args.chats.read_text(encoding="utf-8").splitlines()
        corpora["sharegpt"] = ("ShareGPT first-turn responses (ordinary traffic)", [json.loads(x)["response"] for x in lines if x])
    g = new["gate"]()
    t0 = time.perf_counter()
    type(g)(g.backend)  # what the first response of a process pays
    build_s = time.perf_counter() - t0

    print("timing the text layer ...", file=sys.stderr)
    old_fn, new_fn, many = base["text_layer"], new["text_layer"], new["many"]

    def batched(texts: list[str]) -> None:
        for i in range(0, len(texts), args.batch):
            many(texts[i : i + args.batch])

    speed_rows = []
    for name, (title, corpus) in corpora.items():
        differ = sum(_key(old_fn(t)) != _key(new_fn(t)) for t in corpus)  # also warms both up
        got = [v for i in range(0, len(corpus), args.batch) for v in many(corpus[i : i + args.batch])]
        differ += sum(_key(old_fn(t)) != _key(v) for t, v in zip(corpus, got, strict=True))
        if differ:
            print(f"{differ} results on {title} differ between the baseline and this checkout", file=sys.stderr)
            return 1
        old_s: list[float] = []
        new_s: list[float] = []
        many_s: list[float] = []
        for _ in range(args.repeat):  # alternate, so that all see the same load
            old_s.append(timed_pass(old_fn, corpus))
            new_s.append(timed_pass(new_fn, corpus))
            c0 = time.process_time()
            batched(corpus)
            many_s.append(time.process_time() - c0)
        old_rate = len(corpus) / statistics.median(old_s)
        new_rate = len(corpus) / statistics.median(new_s)
        many_rate = len(corpus) / statistics.median(many_s)
        mean_len = sum(map(len, corpus)) / len(corpus)
        flagged = sum(new_fn(t).label != "none" for t in corpus)
        passed = sum(g.might_refuse(new["probe"](t)) for t in corpus if t and t.strip()) / len(corpus)
        target = TARGETS[name]
        met = "met" if many_rate >= target else "not met"
        speed_rows.append(
            f"| {title}: {len(corpus):,} texts, mean {mean_len:,.0f} chars, {flagged:,} labelled refusals, "
            f"{passed:.0%} past the prefilter | {old_rate:,.0f} | {new_rate:,.0f} (**{new_rate / old_rate:.2f}x**) | "
            f"{many_rate:,.0f} (**{many_rate / old_rate:.2f}x**) | {target:,} | {met} |"
        )
    if args.profile:
        out_profile = profile(new, corpora, args.batch, args.repeat)
    prefix_rate = len(texts) / statistics.median(timed_pass(new["xstest_prefix"], texts) for _ in range(3))
    avg_len = sum(map(len, texts)) / len(texts)
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")

    sq_line = "LLMDrift SENSITIVEQ not found."
    if sq_new is not None and sq_base is not None:
        d = sq_new.detector
        sq_line = (
            f"LLMDrift SENSITIVEQ ({d.n} answers, held out): F1 **{d.f1:.3f}** (precision {d.precision:.3f}, recall "
            f"{d.recall:.3f}); baseline detector {sq_base.detector.f1:.3f}; prefix match {sq_new.baseline.f1:.3f}."
        )
    out = [
        f"Detector `{new['version']}`, XSTest v2 human labels (`final_label`; partial and full refusal = refusal).",
        "",
        *acc,
        "",
        f"Pooled XSTest F1 {f1_new:.3f} (baseline detector {f1_base:.3f}). {sq_line}",
        "",
        f"Text-layer speed on one core: responses per CPU second, median of {args.repeat} passes alternating with the "
        f"baseline {base_label}'s `{base['text_layer_name']}` in the same process; prefilter backend `{g.backend}`, "
        f"built in {build_s:.2f} s on first use. Label, score, category and evidence are identical on every timed text.",
        "",
        f"| corpus | baseline, per response | `classify`, per response | `classify_many`, batches of {args.batch:,} "
        "(what ingest runs) | target | |",
        "|---|---:|---:|---:|---:|---|",
        *speed_rows,
        "",
        f"XSTest paper's prefix match on the same XSTest completions (mean {avg_len:.0f} chars): "
        f"{prefix_rate:,.0f} responses/s (CPU).",
        "",
        f"Machine: {cpu_model()}, `nproc` = {os.cpu_count()}, Python {platform.python_version()}, "
        f"1-min load average at the end of the run {load:.1f}.",
    ]
    if args.profile:
        out += ["", *out_profile]
    text = "\n".join(out)
    print(text)
    if args.update_docs:
        doc = DOC.read_text(encoding="utf-8")
        if START in doc and END in doc:
            head, rest = doc.split(START, 1)
            _, tail = rest.split(END, 1)
            DOC.write_text(f"{head}{START}\n{text}\n{END}{tail}", encoding="utf-8")
            print(f"updated {DOC}", file=sys.stderr)
        else:
            print(f"markers not found in {DOC}; not updated", file=sys.stderr)
    return 0


def _rev(rev: str) -> str:
    return subprocess.run(["git", "-C", str(ROOT), "rev-parse", "--short", rev], capture_output=True, text=True).stdout.strip()


if __name__ == "__main__":
    raise SystemExit(main())
