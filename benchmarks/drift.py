"""Benchmark of the drift engine at production scale, with an optional comparison against Evidently.

One command (defaults: 1,000,000 traces per window, 384-dim embeddings stored as float16)::

    PYTHONPATH=src .venv/bin/python benchmarks/drift.py [--n 1000000] [--dim 384] [--dtype float16]

What it does:

1. builds a seeded synthetic baseline/current pair (tracelens.samples.synthetic) with
   planted changes: a snapshot rollover, a system-prompt change, a prompt-mix shift, a
   tripled refusal rate in one topic, shorter outputs and a small shift of the responses;
   prompt and response embeddings are "random but structured" (topic centres + per-prompt
   noise), L2-normalised, stored as float16 (2 x 2 x 1M x 384 x 2 B = 3 GB; float32 would
   need 6 GB on its own);
2. runs ``analyze`` with the default config and reports wall time and peak RSS during the
   call (sampled from /proc every 20 ms; inputs included) and which planted changes it found;
3. if ``evidently`` is importable, compares its default embedding-drift method (the
   model-based "domain classifier": SGD logistic regression, ROC AUC > 0.55 = drift) with
   tracelens' prompt_semantic / response_semantic on three planted scenarios (no change,
   prompt-mix shift only, response shift only) on the same embeddings, over several seeded
   runs each: time per run and how often each method reports drift.

Results are printed as Markdown tables (stdout); progress goes to stderr.
"""

from __future__ import annotations

import argparse
import os
import sys
import threading
import time
from datetime import timedelta

import numpy as np

from tracelens.analysis import DriftConfig, analyze
from tracelens.samples.synthetic import T0, WEEK, Scenario, make_pair


def say(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


class PeakRSS:
    """Samples this process's resident set size in a background thread."""

    def __init__(self, every: float = 0.02):
        self.every = every
        self.peak = 0
        self._stop = threading.Event()
        self._page = os.sysconf("SC_PAGE_SIZE")

    def _rss(self) -> int:
        with open("/proc/self/statm") as f:
            return int(f.read().split()[1]) * self._page

    def __enter__(self):
        self.peak = self._rss()
        self._t = threading.Thread(target=self._run, daemon=True)
        self._t.start()
        return self

    def _run(self):
        while not self._stop.is_set():
            self.peak = max(self.peak, self._rss())
            time.sleep(self.every)

    def __exit__(self, *exc):
        self._stop.set()
        self._t.join()
        self.peak = max(self.peak, self._rss())


def scale_run(args) -> dict:
    topics = 20
    shares_b = np.full(topics, 1 / topics)
    shares_c = shares_b.copy()
    shares_c[0] *= 1.5
    shares_c /= shares_c.sum()
    ref = np.linspace(0.01, 0.12, topics)
    cur = ref.copy()
    cur[5] *= 3
    sc = Scenario(
        n_baseline=args.n,
        n_current=args.n,
        topics=topics,
        dim=args.dim,
        emb_dtype=args.dtype,
        shares_b=tuple(shares_b),
        shares_c=tuple(shares_c),
        refusal_b=tuple(ref),
        refusal_c=tuple(cur),
        length_factor_c=0.9,
        response_shift=0.05,
        snapshot_change_at=T0 + WEEK + timedelta(days=3, hours=4),
        system_prompt_change_at=T0 + WEEK + timedelta(days=1, hours=13),
        seed=args.seed,
    )
    say(f"generating {args.n:,} traces per window, {args.dim}-dim {args.dtype} embeddings ...")
    t = time.perf_counter()
    sp = make_pair(sc)
    gen_s = time.perf_counter() - t
    emb_bytes = sum(a.nbytes for a in (*sp.prompt_emb, *sp.response_emb))
    say(f"generated in {gen_s:.1f} s; embeddings {emb_bytes / 2**30:.2f} GiB; running analyze ...")
    with PeakRSS() as mem:
        before = mem.peak
        t = time.perf_counter()
        report = analyze(
            sp.baseline,
            sp.current,
            baseline_window=sp.baseline_window,
            current_window=sp.current_window,
            prompt_emb=sp.prompt_emb,
            response_emb=sp.response_emb,
            cluster_labels=sp.cluster_labels,
            config=DriftConfig(seed=args.seed),
        )
        wall = time.perf_counter() - t
    sig = {(f.kind, f.segment) for f in report.findings if f.significant}
    planted = {
        "snapshot rollover": ("model_snapshot", "family=claude-sonnet-4-5") in sig,
        "system prompt change": ("system_prompt", "app=support") in sig,
        "prompt-mix shift": ("prompt_mix", "") in sig,
        "refusal behaviour change (adjusted)": ("refusal_rate_adjusted", "") in sig,
        "shorter outputs": ("response_length", "") in sig,
        "response shift": ("response_semantic", "") in sig,
    }
    snap = [f for f in report.findings if f.kind == "model_snapshot" and f.significant]
    return {
        "n": args.n,
        "dim": args.dim,
        "dtype": args.dtype,
        "gen_s": gen_s,
        "analyze_s": wall,
        "rss_before_gib": before / 2**30,
        "rss_peak_gib": mem.peak / 2**30,
        "findings": len(report.findings),
        "significant": len(sig),
        "planted": planted,
        "snapshot_first_seen_error_min": (
            abs((snap[0].first_seen - sc.snapshot_change_at).total_seconds()) / 60 if snap else None
        ),
    }


def _evidently_model(cur: np.ndarray, ref: np.ndarray):
    """Evidently's default embedding drift method (model-based) on two float arrays -> (auc, drift)."""
    import pandas as pd
    from evidently.legacy.metrics.data_drift.embedding_drift_methods import model

    cols = [f"e{i}" for i in range(ref.shape[1])]
    score, drift, _ = model()(pd.DataFrame(cur.astype(np.float32), columns=cols), pd.DataFrame(ref.astype(np.float32), columns=cols))
    return float(score), bool(drift)


def compare_evidently(args) -> list[dict] | str:
    os.environ.setdefault("DO_NOT_TRACK", "1")  # evidently's usage telemetry
    t = time.perf_counter()
    try:
        import evidently  # noqa: F401
        from evidently.legacy.metrics.data_drift.embedding_drift_methods import model  # noqa: F401
    except Exception as e:  # not installed, or incompatible with the installed pandas
        return f"evidently not available: {type(e).__name__}: {e}"
    import_s = time.perf_counter() - t
    n = args.compare_n
    topics = 20
    mix_c = np.full(topics, 1 / topics)
    mix_c[0] *= 8
    mix_c /= mix_c.sum()
    scenarios = {
        "no change": {},
        "prompt-mix shift only": {"shares_b": tuple(np.full(topics, 1 / topics)), "shares_c": tuple(mix_c)},
        "response shift only (model change)": {"response_shift": 0.1},
    }
    rows = []
    cfg = DriftConfig(seed=args.seed, kinds=("prompt_semantic", "response_semantic"))
    for name, kw in scenarios.items():
        tally = dict.fromkeys(("tl_prompt", "tl_response", "ev_prompt", "ev_response"), 0)
        auc = dict.fromkeys(tally, 0.0)
        tl_s = ev_s = 0.0
        for rep in range(args.compare_reps):
            sc = Scenario(n_baseline=n, n_current=n, topics=topics, dim=args.dim, emb_dtype=args.dtype, seed=args.seed + 1 + rep, **kw)
            sp = make_pair(sc)
            t = time.perf_counter()
            r = analyze(sp.baseline, sp.current, prompt_emb=sp.prompt_emb, response_emb=sp.response_emb, config=cfg)
            tl_s += time.perf_counter() - t
            ours = {f.kind: f for f in r.findings}
            t = time.perf_counter()
            ev = {"ev_prompt": _evidently_model(sp.prompt_emb[1], sp.prompt_emb[0]),
                  "ev_response": _evidently_model(sp.response_emb[1], sp.response_emb[0])}
            ev_s += time.perf_counter() - t
            for key, kind in (("tl_prompt", "prompt_semantic"), ("tl_response", "response_semantic")):
                tally[key] += ours[kind].significant
                auc[key] += ours[kind].current_value / args.compare_reps
            for key, (score, drift) in ev.items():
                tally[key] += drift
                auc[key] += score / args.compare_reps
        rows.append({"scenario": name, "tally": tally, "auc": auc, "tl_s": tl_s / args.compare_reps,
                     "ev_s": ev_s / args.compare_reps, "ev_import_s": import_s})
        say(f"compared: {name}")
    return rows


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=1_000_000, help="traces per window (default 1,000,000)")
    ap.add_argument("--dim", type=int, default=384, help="embedding dimension (default 384)")
    ap.add_argument("--dtype", choices=("float16", "float32"), default="float16", help="embedding storage")
    ap.add_argument("--compare-n", type=int, default=5000, help="traces per window in the Evidently comparison")
    ap.add_argument("--compare-reps", type=int, default=5, help="seeded runs per scenario in the comparison")
    ap.add_argument("--no-evidently", action="store_true", help="skip the Evidently comparison")
    ap.add_argument("--no-scale", action="store_true", help="skip the scale run")
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args(argv)
    print(f"# tracelens drift benchmark ({os.cpu_count()} CPUs)\n")
    if not args.no_scale:
        r = scale_run(args)
        print("| traces/window | embeddings | generate (s) | analyze (s) | RSS before (GiB) | peak RSS in analyze (GiB) | findings (significant) |")
        print("|---|---|---|---|---|---|---|")
        print(
            f"| {r['n']:,} | {r['dim']}-dim {r['dtype']} | {r['gen_s']:.1f} | {r['analyze_s']:.1f} | "
            f"{r['rss_before_gib']:.2f} | {r['rss_peak_gib']:.2f} | {r['findings']} ({r['significant']}) |"
        )
        print("\n| planted change | found |\n|---|---|")
        for k, v in r["planted"].items():
            print(f"| {k} | {'yes' if v else 'NO'} |")
        if r["snapshot_first_seen_error_min"] is not None:
            print(f"\nsnapshot first_seen error: {r['snapshot_first_seen_error_min']:.2f} min")
    if not args.no_evidently:
        rows = compare_evidently(args)
        print()
        if isinstance(rows, str):
            print(rows)
        else:
            print(f"Evidently comparison, {args.compare_n:,} traces per window, {args.dim}-dim {args.dtype} "
                  f"(evidently import {rows[0]['ev_import_s']:.1f} s, not counted):\n")
            print(f"drift detected in k of {args.compare_reps} seeded runs (mean AUC); time per run (s)\n")
            print("| scenario | tracelens prompt | tracelens response | tracelens (s) | Evidently prompt | Evidently response | Evidently (s) |")
            print("|---|---|---|---|---|---|---|")
            for x in rows:
                def v(key, x=x):
                    return f"{x['tally'][key]}/{args.compare_reps} ({x['auc'][key]:.3f})"

                print(
                    f"| {x['scenario']} | {v('tl_prompt')} | {v('tl_response')} | {x['tl_s']:.1f} | "
                    f"{v('ev_prompt')} | {v('ev_response')} | {x['ev_s']:.1f} |"
                )
    return 0


if __name__ == "__main__":
    sys.exit(main())
