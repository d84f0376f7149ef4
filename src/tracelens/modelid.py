"""Model identity: provider, family, snapshot and alias status from a model id.

One model name can hide several models: ``claude-3-5-sonnet-latest`` resolves
to whatever snapshot the provider points it at this week. Drift analysis and
replay need to know which ids are pinned and which are aliases, so this module
parses the id shapes seen in production logs:

* Anthropic first party: ``claude-sonnet-4-6-20260217``, ``claude-3-5-sonnet-latest``,
  ``claude-sonnet-4-5`` (alias).
* Bedrock: ``anthropic.claude-3-5-sonnet-20240620-v1:0``, inference profiles
  ``us.anthropic.claude-...``, full ARNs.
* Vertex: ``claude-sonnet-4-5@20250929``.
* OpenAI: ``gpt-4o-2024-08-06``, ``gpt-4-0613`` (MMDD snapshot), ``gpt-4o`` (alias).

Parsing is pure string work with no network and no model list, so unknown
future ids still parse. ``ModelId.is_alias`` is the *shape* answer alone (a
date-like suffix means a snapshot, its absence an alias); whether an id is an
alias is decided by :mod:`tracelens.modelcatalog`, which checks the shipped
model data (and a store's override) before falling back to that shape.
:func:`is_alias` and :func:`is_pinned` here ask the catalog. Users can extend
what counts as an alias with extra regexes.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache

# Snapshot dates appear as YYYYMMDD, YYYY-MM-DD, or OpenAI's old MMDD (gpt-4-0613).
_DATE8 = re.compile(r"^(?P<base>.+?)[-@](?P<date>20\d{2}(0[1-9]|1[0-2])([0-2]\d|3[01]))(?P<rest>(-v\d+(:\d+)?)?)$")
_DATE_DASHED = re.compile(r"^(?P<base>.+?)-(?P<date>20\d{2}-(0[1-9]|1[0-2])-([0-2]\d|3[01]))(?P<rest>.*)$")
_MMDD = re.compile(r"^(?P<base>(gpt|text|code|davinci|o\d)[\w.\-]*?)-(?P<date>(0[1-9]|1[0-2])([0-2]\d|3[01]))$")
_BEDROCK_PREFIX = re.compile(r"^(arn:aws[\w-]*:bedrock:[^/]*/)?((us|eu|apac|global|us-gov|ca|jp|au)\.)?(?P<vendor>[a-z0-9-]+)\.(?P<id>.+)$")
_LATEST = re.compile(r"-latest$")
_VERTEX_PATH = re.compile(r"^projects/[^/]+/locations/[^/]+/publishers/[^/]+/models/(?P<id>.+)$")
_VERSION_SUFFIX = re.compile(r"-v\d+(:\d+)?$")

_VENDOR_TO_PROVIDER = {
    "anthropic": "anthropic",
    "amazon": "amazon",
    "meta": "meta",
    "mistral": "mistral",
    "cohere": "cohere",
    "ai21": "ai21",
    "openai": "openai",
    "deepseek": "deepseek",
    "qwen": "qwen",
}


@dataclass(frozen=True)
class ModelId:
    """Parsed model id."""

    raw: str
    provider: str | None
    family: str
    snapshot: str | None  # ISO date 'YYYY-MM-DD' or 'MMDD' for OpenAI's old ids
    is_alias: bool  # by shape alone; tracelens.modelcatalog makes the decision
    platform: str | None  # bedrock / vertex / None for first party


def _provider_from_family(family: str) -> str | None:
    f = family.lower()
    if f.startswith("claude"):
        return "anthropic"
    if f.startswith(("gpt", "o1", "o3", "o4", "chatgpt", "text-", "davinci", "babbage")):
        return "openai"
    if f.startswith("gemini") or f.startswith("gemma"):
        return "google"
    if f.startswith(("mistral", "mixtral", "codestral", "ministral")):
        return "mistral"
    if f.startswith("llama"):
        return "meta"
    if f.startswith("command"):
        return "cohere"
    return None


@lru_cache(maxsize=4096)
def parse_model_id(model: str | None, extra_alias_patterns: tuple[str, ...] = ()) -> ModelId | None:
    """Parse ``model`` into provider, family, snapshot and alias status.

    Returns None for an empty id. ``extra_alias_patterns`` are regexes; an id
    matching any of them is an alias even if it carries a date.
    """
    if not model or not model.strip():
        return None
    raw = model.strip()
    s = raw
    platform = None
    provider = None
    if "@" in s and not s.startswith("arn:"):
        platform = "vertex"
    m = _BEDROCK_PREFIX.match(s)
    if m and m.group("vendor") in _VENDOR_TO_PROVIDER and ("." in s):
        platform = "bedrock"
        provider = _VENDOR_TO_PROVIDER[m.group("vendor")]
        s = m.group("id")
    if s.startswith("models/"):  # Gemini API style
        s = s[len("models/") :]
    m = _VERTEX_PATH.match(s)
    if m:  # full Vertex resource path: projects/P/locations/L/publishers/X/models/ID
        platform = "vertex"
        s = m.group("id")
    snapshot = None
    family = s
    d = _DATE8.match(s)
    if d:
        date = d.group("date")
        snapshot = f"{date[:4]}-{date[4:6]}-{date[6:8]}"
        family = d.group("base")
    else:
        d2 = _DATE_DASHED.match(s)
        if d2:
            snapshot = d2.group("date")
            family = d2.group("base")
        else:
            d3 = _MMDD.match(s)
            if d3:
                snapshot = d3.group("date")
                family = d3.group("base")
    versioned = bool(_VERSION_SUFFIX.search(family)) and ":" in family
    if snapshot is None:
        stripped = _VERSION_SUFFIX.sub("", family)
        # 'claude-v2:1' keeps its 'v2' (a bare 'claude' names no model); 'nova-pro-v1:0' becomes 'nova-pro'
        family = stripped if "-" in stripped else re.sub(r":\d+$", "", family)
    family = _LATEST.sub("", family)
    # a dated id is a snapshot; so is a Bedrock id with an explicit version ('amazon.nova-pro-v1:0')
    is_alias = snapshot is None and not (platform == "bedrock" and versioned)
    for pat in extra_alias_patterns:
        if re.search(pat, raw):
            is_alias = True
    if provider is None:
        provider = _provider_from_family(family)
    return ModelId(raw=raw, provider=provider, family=family, snapshot=snapshot, is_alias=is_alias, platform=platform)


def platform_id(model: str | None) -> str | None:
    """The id as a platform's model list spells it: no ARN, inference-profile region, ``models/`` or resource path.

    ``us.anthropic.claude-sonnet-4-20250514-v1:0`` -> ``anthropic.claude-sonnet-4-20250514-v1:0``;
    ``arn:aws:bedrock:us-east-1::foundation-model/anthropic.claude-3-haiku-20240307-v1:0`` ->
    ``anthropic.claude-3-haiku-20240307-v1:0``; ``projects/p/locations/l/publishers/anthropic/models/claude-sonnet-4-5@20250929``
    -> ``claude-sonnet-4-5@20250929``; ``models/gemini-2.5-pro`` -> ``gemini-2.5-pro``.
    """
    if not model or not model.strip():
        return None
    s = model.strip()
    m = _BEDROCK_PREFIX.match(s)
    if m and m.group("vendor") in _VENDOR_TO_PROVIDER:
        s = f"{m.group('vendor')}.{m.group('id')}"
    m = _VERTEX_PATH.match(s)
    if m:
        s = m.group("id")
    if s.startswith("models/"):
        s = s[len("models/") :]
    return s


def first_party_id(model: str | None) -> str | None:
    """Map Bedrock/Vertex Claude ids to first-party ids; first-party ids pass through.

    ``anthropic.claude-3-5-sonnet-20240620-v1:0`` -> ``claude-3-5-sonnet-20240620``;
    ``us.anthropic.claude-sonnet-4-20250514-v1:0`` -> ``claude-sonnet-4-20250514``;
    ``claude-3-5-sonnet-v2@20241022`` -> ``claude-3-5-sonnet-20241022``;
    ``claude-sonnet-4-5@20250929`` -> ``claude-sonnet-4-5-20250929``.
    Returns None for non-Claude ids.
    """
    p = parse_model_id(model)
    if p is None or not p.family.lower().startswith("claude"):
        return None
    if p.platform is None:
        return p.raw
    family = p.family
    if p.platform == "vertex" and family.endswith(("-v2", "-v3")):
        # Vertex spells the second 3.5 Sonnet "claude-3-5-sonnet-v2@20241022".
        family = family.rsplit("-", 1)[0]
    if p.snapshot is None:
        return family
    return f"{family}-{p.snapshot.replace('-', '')}"


def is_alias(model: str | None) -> bool:
    """True when ``model`` names an alias (or an id of unknown shape), per the shipped model catalog."""
    from tracelens.modelcatalog import default_catalog

    return default_catalog().classify(model).is_alias


def is_pinned(model: str | None) -> bool:
    """True when ``model`` names a fixed model (a dated snapshot, or an undated id the catalog knows is fixed)."""
    from tracelens.modelcatalog import default_catalog

    return bool(model) and default_catalog().classify(model).pinned
