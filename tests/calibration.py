"""Shared set-up of the drift calibration tests (test_drift_calibration_*.py).

Each calibration test runs many two-window comparisons on seeded synthetic
windows with known truth and checks a false-alarm share or a power. To keep
the suite fast, the refusal/prompt-mix runs use the reduced path
``DriftConfig(semantic=False, kinds=CORE)`` (the BH family then holds only
those tests, which makes false alarms *easier*, not harder), and the semantic
runs use small windows. Figures measured at commit time are in docs/drift.md.
The tests are spread over several files so that ``pytest -n 2 --dist
loadfile`` can run them on both workers.
"""

from __future__ import annotations

from datetime import timedelta

from tracelens.analysis import DriftConfig, analyze
from tracelens.samples.synthetic import T0, WEEK, Scenario, make_pair

CORE = ("refusal_rate", "refusal_rate_adjusted", "matched_prompt_refusal", "prompt_mix")
FAST = DriftConfig(semantic=False, kinds=CORE)
SEMANTIC = DriftConfig(semantic_max_per_window=300, semantic_permutations=100, kinds=("prompt_semantic", "response_semantic"))


def _report(sc: Scenario, seed: int, cfg: DriftConfig = FAST, sp=None):
    sp = sp or make_pair(sc, seed=seed)
    return analyze(
        sp.baseline,
        sp.current,
        baseline_window=sp.baseline_window,
        current_window=sp.current_window,
        prompt_emb=sp.prompt_emb,
        response_emb=sp.response_emb,
        cluster_labels=sp.cluster_labels,
        config=cfg,
    )


def _sig(report, kind: str, segment: str | None = None) -> bool:
    return any(f.significant for f in report.findings if f.kind == kind and (segment is None or f.segment == segment))


def _shares(runs: int, sc: Scenario, checks: dict, cfg: DriftConfig = FAST) -> dict[str, float]:
    hits = dict.fromkeys(checks, 0)
    for seed in range(runs):
        r = _report(sc, seed, cfg)
        for name, fn in checks.items():
            hits[name] += bool(fn(r))
    return {k: v / runs for k, v in hits.items()}


def _topic_sig(report, kinds=("refusal_rate", "refusal_rate_adjusted")) -> bool:
    return any(f.significant and f.kind in kinds and f.segment.startswith("cluster=") for f in report.findings)


def _n_topic_tests(report) -> int:
    return sum(1 for f in report.findings if f.kind in ("refusal_rate", "refusal_rate_adjusted") and f.segment.startswith("cluster="))


UNIFORM = (1 / 8,) * 8

SNAP = T0 + WEEK + timedelta(days=3)
SPLIT = DriftConfig(semantic=False, kinds=("snapshot_behaviour", "response_length"))


def _split_sig(report, topic: bool | None = None) -> bool:
    return any(
        f.significant
        for f in report.findings
        if f.kind == "snapshot_behaviour" and (topic is None or (" " in f.segment) == topic)
    )
