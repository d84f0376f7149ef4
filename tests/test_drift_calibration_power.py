"""Calibration: planted changes in model behaviour are found (power).

See tests/calibration.py for the set-up shared by the calibration files.
"""

from __future__ import annotations

import numpy as np
import pytest

from tests.calibration import SEMANTIC, SNAP, UNIFORM, Scenario, _report, _shares, _sig
from tracelens.analysis import DriftConfig


def test_behaviour_change_is_detected():
    """Same mix, one topic's refusal rate tripled (8% -> 24%, topic share 12.5%), n = 5,000 per window."""
    ref = tuple(np.linspace(0.02, 0.09, 8))
    cur = list(ref)
    cur[6] *= 3
    sc = Scenario(n_baseline=5000, n_current=5000, shares_b=UNIFORM, refusal_b=ref, refusal_c=tuple(cur))
    shares = _shares(
        30,
        sc,
        {
            "adjusted": lambda r: _sig(r, "refusal_rate_adjusted", ""),
            "topic 6": lambda r: _sig(r, "refusal_rate", "cluster=6 (legal contracts)"),
            "other topics": lambda r: any(
                f.significant and f.segment.startswith("cluster=") and not f.segment.startswith("cluster=6 ")
                for f in r.findings
                if f.kind in ("refusal_rate", "refusal_rate_adjusted")
            ),
        },
    )
    print("behaviour change power:", shares)
    assert shares["adjusted"] >= 0.9
    assert shares["topic 6"] >= 0.9  # the per-topic test names the topic that changed
    assert shares["other topics"] <= 0.1


def test_rate_jump_is_detected():
    """Refusal rate 0.5% -> 2% everywhere at n = 2,000 per window."""
    sc = Scenario(n_baseline=2000, n_current=2000, refusal_b=(0.005,) * 8, refusal_c=(0.02,) * 8)
    shares = _shares(30, sc, {"raw": lambda r: _sig(r, "refusal_rate", "")})
    print("0.5% -> 2% power:", shares)
    assert shares["raw"] >= 0.9


@pytest.mark.parametrize("seed", [0, 1])
def test_semantic_tests_separate_traffic_from_model(seed):
    """A prompt-mix shift moves prompt_semantic but not response_semantic; a planted response shift is found."""
    mix = Scenario(n_baseline=300, n_current=300, shares_b=UNIFORM, shares_c=(0.5 / 7,) * 7 + (0.5,))
    r = _report(mix, seed, SEMANTIC)
    assert _sig(r, "prompt_semantic") and not _sig(r, "response_semantic")
    shifted = Scenario(n_baseline=300, n_current=300, response_shift=0.3)
    r = _report(shifted, seed, SEMANTIC)
    assert _sig(r, "response_semantic")


def test_snapshot_behaviour_change_is_found_on_its_topic():
    """The new snapshot triples one topic's refusal rate (rollover mid-window, n = 2,000): the split names the topic."""
    ref = tuple(np.linspace(0.02, 0.09, 8))
    new = list(ref)
    new[6] *= 3
    sc = Scenario(
        n_baseline=2000, n_current=2000, shares_b=UNIFORM, refusal_b=ref, snapshot_change_at=SNAP, refusal_new_snapshot=tuple(new)
    )
    cfg = DriftConfig(semantic=False, kinds=("snapshot_behaviour",))
    shares = _shares(
        20,
        sc,
        {
            "topic 6": lambda r: _sig(r, "snapshot_behaviour", "snapshot=claude-sonnet-4-5-20251101 cluster=6 (legal contracts)"),
            "other topics": lambda r: any(
                f.significant and " cluster=" in f.segment and "cluster=6 " not in f.segment
                for f in r.by_kind("snapshot_behaviour")
            ),
        },
        cfg,
    )
    print("snapshot behaviour power:", shares)
    assert shares["topic 6"] >= 0.8
    assert shares["other topics"] <= 0.1
