"""Which model a suite runs on: the target spec syntax.

A target is named by one string (``parse_target``):

* ``pinned``: each case's own pinned Anthropic snapshot (the default);
* ``anthropic:MODEL`` or ``anthropic:MODEL@BASE_URL``: one Anthropic model;
* ``openai:MODEL`` or ``openai:MODEL@BASE_URL``: an OpenAI model through
  the ``openai`` SDK (a base URL for a proxy or Azure-style gateway that
  speaks OpenAI's API, e.g. Gemini's OpenAI-compatible endpoint);
* ``compatible:MODEL@BASE_URL``: any OpenAI-compatible Chat Completions
  server (vLLM, Ollama, ...); the base URL is required.

An optional ``#KEY_ENV`` suffix names the environment variable holding the
API key (``openai:gemini-2.5-flash@https://generativelanguage.googleapis.com/v1beta/openai#GEMINI_API_KEY``).
Defaults: ``ANTHROPIC_API_KEY`` (``pinned``, ``anthropic``),
``OPENAI_API_KEY`` (``openai``), ``OPENAI_COMPATIBLE_API_KEY``
(``compatible``). The base URL is split off at the ``@`` that starts
``http://`` or ``https://``, so model ids holding an ``@`` (Vertex
snapshots) stay whole.

Without a base URL, ``anthropic`` and ``openai`` targets take the SDK's own
variable from ``env`` (``ANTHROPIC_BASE_URL`` / ``OPENAI_BASE_URL``) when it
is set, so that the spec records where requests really go. A spec that does
not parse is a ``ValueError`` listing the accepted forms.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from dataclasses import dataclass

PROVIDERS = ("anthropic", "openai", "compatible", "pinned")

DEFAULT_KEY_ENV = {
    "pinned": "ANTHROPIC_API_KEY",
    "anthropic": "ANTHROPIC_API_KEY",
    "openai": "OPENAI_API_KEY",
    "compatible": "OPENAI_COMPATIBLE_API_KEY",
}
_BASE_ENV = {"anthropic": "ANTHROPIC_BASE_URL", "openai": "OPENAI_BASE_URL", "pinned": "ANTHROPIC_BASE_URL"}

FORMS = (
    "pinned",
    "anthropic:MODEL[@BASE_URL]",
    "openai:MODEL[@BASE_URL]",
    "compatible:MODEL@BASE_URL",
)

_ENV_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_BASE_SPLIT = re.compile(r"@(?=https?://)")


@dataclass(frozen=True)
class TargetSpec:
    """A parsed target: provider, model (None for ``pinned``), base URL (None: the provider's API) and key variable."""

    provider: str
    model: str | None
    base_url: str | None
    api_key_env: str

    @property
    def name(self) -> str:
        """How reports name the target: ``openai:gpt-4o-mini``, ``compatible:llama3@http://127.0.0.1:11434/v1``."""
        if self.provider == "pinned":
            return "pinned"
        return f"{self.provider}:{self.model}" + (f"@{self.base_url}" if self.base_url else "")

    @property
    def flavor(self) -> str | None:
        """The Chat Completions flavor (``openai`` or ``compatible``); None for Anthropic targets."""
        return self.provider if self.provider in ("openai", "compatible") else None


def _bad(spec: str, why: str) -> ValueError:
    forms = ", ".join(FORMS)
    return ValueError(f"bad target {spec!r}: {why}. Accepted forms: {forms}, each with an optional #KEY_ENV suffix")


def parse_target(spec: str, *, env: Mapping[str, str] | None = None) -> TargetSpec:
    """Parse a target spec (module docstring); ``env`` (default ``os.environ``) supplies an SDK's base URL variable."""
    env = os.environ if env is None else env
    text = (spec or "").strip()
    key_env = None
    if "#" in text:
        text, key_env = text.rsplit("#", 1)
        if not _ENV_NAME.match(key_env):
            raise _bad(spec, f"{key_env!r} after # is not an environment variable name")
    provider, sep, rest = text.partition(":")
    if provider == "pinned" and not sep:
        return TargetSpec("pinned", None, env.get(_BASE_ENV["pinned"]) or None, key_env or DEFAULT_KEY_ENV["pinned"])
    if provider not in PROVIDERS or provider == "pinned" or not sep:
        raise _bad(spec, "unknown provider" if sep else "no provider")
    parts = _BASE_SPLIT.split(rest, maxsplit=1)
    model = parts[0]
    base_url = parts[1] if len(parts) > 1 else None
    if not model or any(c.isspace() for c in model):
        raise _bad(spec, "the model is missing or holds white space")
    if base_url is not None and (len(base_url) <= len("https://") or any(c.isspace() for c in base_url)):
        raise _bad(spec, f"{base_url!r} is not a base URL")
    if provider == "compatible" and base_url is None:
        raise _bad(spec, "a compatible target needs @BASE_URL (e.g. compatible:llama3@http://127.0.0.1:11434/v1)")
    if base_url is None and provider in _BASE_ENV:
        base_url = env.get(_BASE_ENV[provider]) or None
    return TargetSpec(provider, model, base_url, key_env or DEFAULT_KEY_ENV[provider])
