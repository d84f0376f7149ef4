"""Cost estimates for replays, from a price table kept as data.

The built-in table is ``replay/prices.json``: USD per million tokens, input
and output, keyed by model family (``claude-sonnet-4-5``) or, for a
user-priced snapshot, by full model id. Users extend or override it with a
JSON file of the same shape (``{"models": {"<family or id>": {"input": x,
"output": y}}}``; a bare ``{"<family>": {...}}`` mapping is accepted too)
named by the ``TRACELENS_PRICES`` environment variable or passed as
``path``; later sources win per key (built-in < env < argument).

Lookup order for a model id: the exact id, then its family as parsed by
``tracelens.modelid``, then the longest family key that is a ``-``-bounded
prefix of the id. No match means "unknown price" (``usd is None``), never a
guess.

Token estimate per replay: input = the trace's recorded input tokens
(including cache read/creation tokens) when present, else
``ceil(len(body) / 3.5)`` characters of the request body; output = the
recorded output tokens when present, else ``max_tokens`` (an upper bound).

``trace_cost`` is what a recorded trace cost at list price (its recorded
tokens only; None when a count or the price is unknown): the TUI's metadata
panel shows it.
"""

from __future__ import annotations

import json
import math
import os
from dataclasses import asdict, dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

from tracelens.modelid import parse_model_id

PRICES_ENV = "TRACELENS_PRICES"


class PriceError(ValueError):
    """A price file that cannot be read (message names the file)."""


@dataclass(frozen=True)
class Price:
    """USD per million tokens."""

    input: float
    output: float


@dataclass
class PriceTable:
    """USD per million tokens by model family or id, and the sources it was read from."""

    models: dict[str, Price] = field(default_factory=dict)
    sources: list[str] = field(default_factory=list)
    as_of: str | None = None

    def lookup(self, model: str | None) -> tuple[str, Price] | None:
        """``(key, Price)`` for a model id (exact id, then family, then longest prefix); None if unpriced."""
        if not model:
            return None
        if model in self.models:
            return model, self.models[model]
        parsed = parse_model_id(model)
        if parsed and parsed.family in self.models:
            return parsed.family, self.models[parsed.family]
        best = None
        for key in self.models:
            if model.startswith(key + "-") and (best is None or len(key) > len(best)):
                best = key
        return (best, self.models[best]) if best else None


def _parse_table(obj: Any, source: str) -> tuple[dict[str, Price], str | None]:
    if not isinstance(obj, dict):
        raise PriceError(f"{source}: expected a JSON object")
    models = obj.get("models", obj)
    if not isinstance(models, dict):
        raise PriceError(f"{source}: 'models' must be an object")
    out: dict[str, Price] = {}
    for key, val in models.items():
        if key in ("currency", "unit", "as_of", "note") and "models" not in obj:
            continue
        if not isinstance(val, dict):
            raise PriceError(f"{source}: price of {key!r} must be an object with 'input' and 'output'")
        try:
            p = Price(float(val["input"]), float(val["output"]))
        except (KeyError, TypeError, ValueError) as e:
            raise PriceError(f"{source}: price of {key!r} needs numeric 'input' and 'output' ({e})") from e
        if p.input < 0 or p.output < 0 or math.isnan(p.input) or math.isnan(p.output):
            raise PriceError(f"{source}: price of {key!r} must be non-negative")
        out[key] = p
    return out, obj.get("as_of") if isinstance(obj.get("as_of"), str) else None


def builtin_prices(package: str = "tracelens.replay", name: str = "prices.json") -> PriceTable:
    """A price table shipped with tracelens: ``replay/prices.json`` (Anthropic) unless another resource is named."""
    text = resources.files(package).joinpath(name).read_text(encoding="utf-8")
    models, as_of = _parse_table(json.loads(text), f"built-in {name}")
    return PriceTable(models, [f"built-in {name}"], as_of)


def load_prices(
    path: str | os.PathLike | None = None, env: dict[str, str] | None = None, *, base: PriceTable | None = None
) -> PriceTable:
    """Built-in prices (``base`` when given, e.g. another provider's table), overridden by ``$TRACELENS_PRICES``
    and then by ``path``."""
    table = base if base is not None else builtin_prices()
    env = os.environ if env is None else env
    for src in (env.get(PRICES_ENV), path):
        if not src:
            continue
        p = Path(src)
        try:
            obj = json.loads(p.read_text(encoding="utf-8"))
        except OSError as e:
            raise PriceError(f"cannot read price file {p}: {e.strerror}") from e
        except ValueError as e:
            raise PriceError(f"price file {p} is not valid JSON: {e}") from e
        models, _ = _parse_table(obj, str(p))
        table.models.update(models)
        table.sources.append(str(p))
    return table


@dataclass
class CostEstimate:
    """Estimated cost of replaying one trace ``n`` times."""

    model: str
    n: int
    input_tokens: int  # per replay
    output_tokens: int  # per replay
    input_source: str  # "recorded" or "estimated"
    output_source: str  # "recorded" or "max_tokens"
    price_key: str | None
    price_input: float | None  # USD per million tokens
    price_output: float | None
    usd: float | None  # total for n replays; None = unknown price

    @property
    def known(self) -> bool:
        """True when the model has a price."""
        return self.usd is not None

    def describe(self) -> str:
        """One line: tokens per replay, where they come from, and the total at list price."""
        tokens = (
            f"~{self.input_tokens:,} in ({self.input_source}) + ≤{self.output_tokens:,} out ({self.output_source}) "
            f"tokens × {self.n}"
        )
        if self.usd is None:
            return f"{tokens}: unknown price for {self.model}"
        return (
            f"{tokens} ≈ ${self.usd:,.4f} ({self.price_key} at ${self.price_input:g}/${self.price_output:g} per MTok)"
        )

    def to_dict(self) -> dict[str, Any]:
        """JSON form."""
        return asdict(self)


def _positive_int(v: Any) -> int | None:
    if v is None or (isinstance(v, float) and math.isnan(v)):
        return None
    try:
        iv = int(v)
    except (TypeError, ValueError):
        return None
    return iv if iv >= 0 else None


def estimate_cost(
    model: str,
    *,
    n: int,
    body_chars: int,
    recorded_input_tokens: int | None = None,
    recorded_output_tokens: int | None = None,
    max_tokens: int | None = None,
    prices: PriceTable | None = None,
    chars_per_token: float = 3.5,
) -> CostEstimate:
    """Cost of ``n`` replays of a request to ``model`` (token estimate as in the module docstring)."""
    table = prices if prices is not None else load_prices()
    rin = _positive_int(recorded_input_tokens)
    if rin is not None and rin > 0:
        tin, in_src = rin, "recorded"
    else:
        tin, in_src = math.ceil(body_chars / chars_per_token), "estimated"
    rout = _positive_int(recorded_output_tokens)
    if rout is not None and rout > 0:
        tout, out_src = rout, "recorded"
    else:
        tout, out_src = _positive_int(max_tokens) or 0, "max_tokens"
    hit = table.lookup(model)
    if hit is None:
        return CostEstimate(model, n, tin, tout, in_src, out_src, None, None, None, None)
    key, price = hit
    usd = n * (tin * price.input + tout * price.output) / 1_000_000
    return CostEstimate(model, n, tin, tout, in_src, out_src, key, price.input, price.output, usd)


@dataclass(frozen=True)
class TraceCost:
    """List-price cost of one recorded trace's tokens."""

    usd: float
    price_key: str  # the price table entry used

    def describe(self) -> str:
        """``≈ $0.0123 at list price (claude-sonnet-4-5)``."""
        return f"≈ ${self.usd:.4f} at list price ({self.price_key})"


def trace_cost(trace: dict[str, Any], prices: PriceTable | None = None) -> TraceCost | None:
    """What the trace's recorded input and output tokens cost at list price; None when either or the price is unknown.

    The returned model's price is used (the recorded one when the provider
    reported none).
    """
    tin, tout = _positive_int(trace.get("input_tokens")), _positive_int(trace.get("output_tokens"))
    if tin is None or tout is None:
        return None
    table = prices if prices is not None else load_prices()
    hit = table.lookup(trace.get("model_returned") or trace.get("model_requested"))
    if hit is None:
        return None
    key, price = hit
    return TraceCost((tin * price.input + tout * price.output) / 1_000_000, key)
