"""Options of the drift engine: :class:`DriftConfig` and its per-kind defaults.

Contract: a frozen, JSON-serialisable configuration (``to_dict``) that
:func:`tracelens.analysis.analyze` and every detector read; no computation.
Lives apart from ``drift.py`` so that detector modules can read thresholds
without importing the engine that imports them.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass, field

from tracelens.analysis.variance import DEFAULT_ALIAS_PATTERNS

#: Practical thresholds on |effect| per kind: significant and beyond -> alert, significant but smaller -> warn.
DEFAULT_THRESHOLDS: dict[str, float] = {
    "refusal_rate": 0.01,
    "refusal_rate_adjusted": 0.01,
    "snapshot_behaviour": 0.01,
    "matched_prompt_refusal": 0.01,
    "matched_prompt_similarity": 0.02,
    "prompt_mix": 0.10,
    "prompt_mix_cluster": 0.05,
    "prompt_semantic": 0.05,
    "response_semantic": 0.05,
    "response_length": 0.2,
    "latency": 0.2,
    "latency_per_token": 0.2,
    "time_to_first_token": 0.2,
    "stop_reason": 0.05,
    "stop_reason_share": 0.02,
    "tool_call_rate": 0.02,
    "error_rate": 0.01,
    "output_corruption": 0.005,
    "backend_fingerprint": 0.01,  # refusal rate on the new fingerprint, at the same prompt mix (proportion)
    "backend_fingerprint_length": 0.2,  # Cliff's delta of output length on the new fingerprint
    "changepoint": 0.2,  # Cliff's delta of a length / latency step
    "changepoint_refusal": 0.01,  # refusal-rate step
    "cohort": 0.2,  # change of a cohort's Cliff's delta against the rest (output length / latency)
    "cohort_rate": 0.01,  # change of a cohort's refusal / error rate gap against the rest (proportion)
    "time_of_day": 0.2,  # Cliff's delta of length / latency, peak hours vs off-peak
    "time_of_day_rate": 0.01,  # refusal / error / max_tokens-stop rate, peak hours vs off-peak
    "load": 0.2,  # Cliff's delta of length / latency, high load vs the rest
    "load_rate": 0.01,  # refusal / error / max_tokens-stop rate, high load vs the rest
    "context_length": 0.02,  # long-minus-short change of a truncation / refusal / error rate (proportion)
    "context_length_length": 0.2,  # long-minus-short change of Cliff's delta of output length
}

#: attribute keys (``attributes.<key>``) that commonly name a cohort, tested with the columns ``service_tier`` and
#: ``app`` when ``--cohort-by`` is not given
DEFAULT_COHORT_ATTRIBUTES: tuple[str, ...] = (
    "region",
    "cohort",
    "experiment",
    "variant",
    "api_key_id",
    "api_key_name",
    "account_id",
    "workspace_id",
    "organization",
    "project",
    "deployment",
    "tenant",
)
#: trace columns tested as cohort dimensions when ``--cohort-by`` is not given
DEFAULT_COHORT_COLUMNS: tuple[str, ...] = ("service_tier", "app")

DEFAULT_DETERMINISTIC_SEVERITY: dict[str, str] = {
    "model_snapshot": "alert",
    "alias_usage": "warn",
    "system_prompt": "warn",
    "tool_definitions": "warn",
    "sampling_params": "warn",
    "service_tier": "warn",
    # a new fingerprint alone is routine (OpenAI rotates them); a behaviour difference on its traffic raises it
    "backend_fingerprint": "info",
}


@dataclass(frozen=True)
class DriftConfig:
    """Knobs of :func:`analyze`. Defaults are what ``tracelens drift`` uses."""

    alpha: float = 0.05  #: BH level for "significant"
    seed: int = 0  #: seeds every random step (subsamples, KMeans, permutations)
    kinds: tuple[str, ...] | None = None  #: compute only these kinds (None = all); a reduced path for speed
    semantic: bool = True  #: run the embedding two-sample tests (the expensive part)
    semantic_max_per_window: int = 1000  #: subsample size per window for C2ST / MMD
    semantic_permutations: int = 200  #: MMD permutations
    topic_clusters: int = 20  #: KMeans topics when frames carry no cluster_id
    strata_max_clusters: int = 200  #: cap on fine clusters for the adjusted refusal test (k ~ sqrt(n))
    strata_fit_sample: int = 10000  #: rows used to fit KMeans (all rows are assigned)
    neighbour_similarity: float = 0.85  #: cosine for "a close neighbour was seen in the baseline"
    coverage_sample: int = 2000  #: current prompts used to estimate neighbour coverage
    coverage_reference: int = 20000  #: baseline prompts searched for neighbours
    min_segment_n: int = 30  #: per-window minimum for a per-model segment test (and per snapshot for the split)
    min_topic_n: int = 30  #: per-window minimum of refusal-labelled traces for a per-topic refusal test
    matched_max_triples: int = 20000  #: cap on prompt triples for the response-similarity test
    templated_limit: int = 5  #: more new system-prompt versions than this per app -> one "templated" finding
    alias_patterns: tuple[str, ...] = DEFAULT_ALIAS_PATTERNS  #: extra regexes (re.search) on model_requested meaning "alias"; the model catalog decides the rest
    alias_share_threshold: float = 0.05  #: alias share change that counts as a change
    tier_tvd_threshold: float = 0.10  #: service-tier mix shift that counts as a change
    cohort_by: tuple[str, ...] | None = None  #: cohort dimensions (trace columns or attribute keys); None = the defaults
    cohort_min_n: int = 30  #: per-window minimum of a cohort's (and its rest's) traces on comparable prompts
    cohort_max_values: int = 20  #: a dimension with more cohorts than this (an id, not a cohort) is not tested
    thresholds: Mapping[str, float] = field(default_factory=lambda: dict(DEFAULT_THRESHOLDS))
    deterministic_severity: Mapping[str, str] = field(default_factory=lambda: dict(DEFAULT_DETERMINISTIC_SEVERITY))

    def to_dict(self) -> dict:
        """Plain dict (JSON-safe) of the configuration."""
        d = dataclasses.asdict(self)
        d["kinds"] = None if self.kinds is None else list(self.kinds)
        d["cohort_by"] = None if self.cohort_by is None else list(self.cohort_by)
        d["alias_patterns"] = list(self.alias_patterns)
        d["thresholds"] = dict(sorted(self.thresholds.items()))
        d["deterministic_severity"] = dict(sorted(self.deterministic_severity.items()))
        return d
