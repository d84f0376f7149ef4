"""Refusal detector benchmark: accuracy on XSTest v2 and text-layer speed.

Usage (one command, from the repository root)::

    python benchmarks/refusal.py [--xstest DIR] [--repeat N] [--update-docs]

For each of the five XSTest v2 completion files (gpt4, llama2new, llama2orig,
mistralguard, mistralinstruct; human labels, partial and full refusals both
count as refusals) it scores the tracelens detector and the XSTest paper's
string-match baseline side by side, per file and pooled. It then measures the
text layer's throughput on one core (a single process, CPU time via
``time.process_time`` and wall time, best of ``--repeat`` passes over all
2,250 completions, and over the ShareGPT first-turn responses when present as
ordinary traffic): the full analysis (``analyse``, what every response cost
before the prefilter) and the gated one the detector runs (``classify``), in
alternation so that both see the same load, with the new/old ratio and the
prefilter's backend; the prefix matcher runs in the same process. It also
checks that both give the same label, score, category and evidence on every
text it times.

The results are printed as a markdown table with machine info; with
``--update-docs`` the table also replaces the block between the benchmark
markers in docs/refusal.md. The XSTest folder defaults to
``../shared/data/xstest`` next to the repository (read-only, never copied).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
try:
    import tracelens  # noqa: F401
except ImportError:  # running from a checkout without an installed package
    sys.path.insert(0, str(ROOT / "src"))

from machine import cpu_model  # noqa: E402  (benchmarks/, the script's own folder)

from tracelens.enrich._refusal_gate import Gate, gate  # noqa: E402
from tracelens.enrich._refusal_text import _cap, _without_code, analyse, classify, fold  # noqa: E402
from tracelens.enrich.evaluate import evaluate_file, read_labelled, xstest_prefix  # noqa: E402
from tracelens.enrich.refusal import DETECTOR_VERSION  # noqa: E402

MODELS = ("gpt4", "llama2new", "llama2orig", "mistralguard", "mistralinstruct")
DOC = ROOT / "docs" / "refusal.md"
START = "<!-- refusal-benchmark:start -->"
END = "<!-- refusal-benchmark:end -->"



def _key(v) -> tuple:
    return (v.label, v.score, v.category, v.evidence)


def _probe(text: str) -> str:
    return _without_code(fold(_cap(text)[0])).lower()


def f1(tp: int, fp: int, fn: int) -> float:
    return 2 * tp / (2 * tp + fp + fn) if tp else 0.0


def accuracy_table(xstest: Path) -> tuple[list[str], list[str]]:
    rows = [
        "| file | n | gold refusals | tracelens P | tracelens R | **tracelens F1** | prefix P | prefix R | prefix F1 |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    pooled = {"ours": [0, 0, 0], "base": [0, 0, 0]}
    n_all = pos_all = 0
    texts: list[str] = []
    for m in MODELS:
        path = xstest / f"xstest_v2_completions_{m}.csv"
        rep = evaluate_file(path, text_col="completion", label_col="final_label", baseline="xstest-prefix", worst=0)
        d, b = rep.detector, rep.baseline
        assert b is not None
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
        texts += [t or "" for t in read_labelled(path).get_column("completion").to_list()]

    def pr(k: str) -> tuple[float, float, float]:
        tp, fp, fn = pooled[k]
        return tp / (tp + fp), tp / (tp + fn), f1(tp, fp, fn)

    op, orc, of = pr("ours")
    bp, brc, bf = pr("base")
    rows.append(f"| **pooled** | {n_all} | {pos_all} | {op:.3f} | {orc:.3f} | **{of:.3f}** | {bp:.3f} | {brc:.3f} | {bf:.3f} |")
    return rows, texts


def throughput(texts: list[str], fn, repeat: int) -> tuple[float, float]:
    """(responses per CPU second, responses per wall second), best of ``repeat`` passes."""
    best_cpu = best_wall = float("inf")
    for _ in range(repeat):
        w0, c0 = time.perf_counter(), time.process_time()
        for t in texts:
            fn(t)
        best_cpu = min(best_cpu, time.process_time() - c0)
        best_wall = min(best_wall, time.perf_counter() - w0)
    return len(texts) / best_cpu, len(texts) / best_wall


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--xstest", type=Path, default=ROOT.parent / "shared" / "data" / "xstest")
    ap.add_argument("--repeat", type=int, default=5)
    ap.add_argument("--update-docs", action="store_true", help=f"rewrite the benchmark block in {DOC.relative_to(ROOT)}")
    args = ap.parse_args(argv)
    if not (args.xstest / "xstest_v2_completions_gpt4.csv").exists():
        print(f"XSTest v2 completions not found under {args.xstest}", file=sys.stderr)
        return 2

    print("scoring XSTest v2 ...", file=sys.stderr)
    acc, texts = accuracy_table(args.xstest)
    for t in texts[:200]:  # warm up (regex caches, allocator)
        analyse(t)
    print("timing the text layer ...", file=sys.stderr)
    corpora = {"XSTest v2 completions": texts}
    # production-like traffic, when the ShareGPT sample is there: mostly answers
    chats_file = args.xstest.parent / "chats" / "sharegpt_v3_first_turns_sample.jsonl"
    if chats_file.exists():
        lines = chats_file.read_text(encoding="utf-8").splitlines()
        corpora["ShareGPT first-turn responses (ordinary traffic)"] = [json.loads(line)["response"] for line in lines if line]
    g = gate()
    t0 = time.perf_counter()
    Gate(g.backend)  # what the first response of a process pays
    build_s = time.perf_counter() - t0
    speed_rows = []
    for name, corpus in corpora.items():
        same = sum(_key(analyse(t)) == _key(classify(t)) for t in corpus)
        if same != len(corpus):
            print(f"{len(corpus) - same} texts of {name} differ between analyse and classify", file=sys.stderr)
            return 1
        old = [float("inf"), float("inf")]
        new = [float("inf"), float("inf")]
        for _ in range(args.repeat):  # alternate, so that both see the same load
            o = throughput(corpus, analyse, 1)
            n = throughput(corpus, classify, 1)
            old = [min(old[0], 1 / o[0]), min(old[1], 1 / o[1])]
            new = [min(new[0], 1 / n[0]), min(new[1], 1 / n[1])]
        mean_len = sum(map(len, corpus)) / len(corpus)
        passed = sum(g.might_refuse(_probe(t)) for t in corpus if t and t.strip())
        flagged = sum(classify(t).label != "none" for t in corpus)
        speed_rows.append(
            f"| {name}: {len(corpus):,} texts, mean {mean_len:,.0f} chars, {flagged:,} labelled refusals, "
            f"{passed / len(corpus):.0%} past the prefilter | {1 / old[0]:,.0f} | {1 / new[0]:,.0f} | "
            f"**{old[0] / new[0]:.2f}x** | {1 / new[1]:,.0f} |"
        )
    base_cpu, base_wall = throughput(texts, xstest_prefix, args.repeat)
    avg_len = sum(map(len, texts)) / len(texts)
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")

    out = [
        f"Detector `{DETECTOR_VERSION}`, XSTest v2 human labels (`final_label`; partial and full refusal = refusal).",
        "",
        *acc,
        "",
        f"Text-layer speed on one core (responses per CPU second, best of {args.repeat} alternating passes; "
        f"prefilter backend `{g.backend}`, built in {build_s:.2f} s on first use):",
        "",
        "| corpus | before: `analyse` on every text | now: gated `classify` | ratio | now, per wall second |",
        "|---|---:|---:|---:|---:|",
        *speed_rows,
        "",
        f"XSTest paper's prefix match on the same XSTest completions (mean {avg_len:.0f} chars): "
        f"{base_cpu:,.0f} responses/s (CPU), {base_wall:,.0f}/s (wall).",
        "",
        f"Machine: {cpu_model()}, `nproc` = {os.cpu_count()}, Python {platform.python_version()}, "
        f"1-min load average during the run {load:.1f}.",
    ]
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


if __name__ == "__main__":
    raise SystemExit(main())
