"""Rebuild the request of a stored trace for replay against its pinned snapshot.

Input is one trace as a plain dict (one row of ``tracelens.schema``); output is
a ``ReplayPlan`` holding the exact body bytes that will be POSTed to
``/v1/messages``.

The transformation from ``request_raw`` to the replay body is exactly:

1. parse ``request_raw`` as JSON, keeping key order (duplicate keys: last wins,
   as every JSON parser the SDKs use does);
2. remove the top-level ``stream`` key (replays are non-streaming; a warning
   records that the original was streamed);
3. for Bedrock/Vertex bodies, remove the platform-only ``anthropic_version``
   key (the first-party API rejects it);
4. set ``model`` to the target snapshot, in place if the key exists, else
   appended at the end;
5. serialise as compact JSON (``separators=(",", ":")``, ``ensure_ascii=False``),
   the same encoding the ``anthropic`` SDK uses.

Every other field (messages, system, tools, tool_choice, temperature, top_p,
top_k, max_tokens, stop_sequences, metadata, thinking, ...) is carried over
value for value. A body recorded as compact JSON (what the SDK sends) comes
out byte-for-byte identical apart from steps 2-4; a pretty-printed one differs
only in insignificant whitespace and in number spelling (``0.70`` becomes
``0.7``, ``1e2`` becomes ``100.0``), never in value.

Target model: the snapshot the provider reported (``model_returned``), never a
bare alias. When that is missing, a pinned ``model_requested`` is used (the
request itself was pinned); when only an alias was recorded, planning fails
with ``AliasOnlyError`` unless ``model=`` names a pinned model. "Pinned" and
"alias" are decided by the model catalog (``tracelens.modelcatalog``: the
shipped model data, a store's override, then the id's shape), never by the
installed SDK; callers with a store pass ``catalog=load_catalog(store)``.
An undated ``model_returned`` the catalog does not know is replayed as the
most specific identity the API gave, with a warning. Ids the user knows to be
fixed can also be declared pinned with ``$TRACELENS_PINNED_MODELS`` (or
``pinned_models=``). Bedrock and Vertex Claude ids are mapped to first-party
ids.

Traces without ``request_raw`` (OTel spans, many observability exports) are
rebuilt from the normalised fields and marked ``reconstructed=True``.
"""

from __future__ import annotations

import json
import math
import os
import re
from dataclasses import dataclass, field
from typing import Any

from tracelens.modelcatalog import ModelCatalog, default_catalog
from tracelens.modelid import first_party_id
from tracelens.replay.pricing import CostEstimate, PriceTable, estimate_cost

# Where a replay goes unless told otherwise (the client imports these; the CLI shows them without loading it).
DEFAULT_KEY_ENV = "ANTHROPIC_API_KEY"
DEFAULT_BASE_URL = "https://api.anthropic.com"

CHARS_PER_TOKEN = 3.5
# Model ids without a date that the user knows to be fixed snapshots (some providers publish
# pinned ids with no date suffix); listed here they are replayable like dated snapshots.
PINNED_ENV = "TRACELENS_PINNED_MODELS"

# Platform envelope keys that are not part of the first-party Messages API.
_PLATFORM_KEYS = ("anthropic_version",)


class ReplayError(Exception):
    """A trace that cannot be replayed; the message is user-facing."""


class AliasOnlyError(ReplayError):
    """Only an alias was recorded; replaying it would hit whatever the alias points at today."""


class NotReplayableError(ReplayError):
    """Not an Anthropic trace, or not enough recorded to rebuild the request."""


@dataclass
class ReplayPlan:
    """What will be sent for one trace: the exact body and the numbers around it."""

    trace_id: str
    model: str
    body: bytes
    n: int
    reconstructed: bool
    warnings: list[str] = field(default_factory=list)
    estimate: CostEstimate | None = None
    original_model_requested: str | None = None
    original_model_returned: str | None = None
    dropped_stream: bool = False

    @property
    def body_json(self) -> dict[str, Any]:
        """The replay body parsed back into JSON (key order kept)."""
        return json.loads(self.body)

    @property
    def estimated_cost_usd(self) -> float | None:
        """Estimated cost of the replay in USD; None when it cannot be estimated."""
        return self.estimate.usd if self.estimate else None

    def to_dict(self) -> dict[str, Any]:
        """The plan as JSON-ready data, the body parsed and the estimate included."""
        return {
            "trace_id": self.trace_id,
            "model": self.model,
            "n": self.n,
            "reconstructed": self.reconstructed,
            "dropped_stream": self.dropped_stream,
            "warnings": list(self.warnings),
            "original_model_requested": self.original_model_requested,
            "original_model_returned": self.original_model_returned,
            "estimate": self.estimate.to_dict() if self.estimate else None,
            "body": self.body_json,
        }


def dumps_body(obj: Any) -> bytes:
    """Compact JSON, matching the anthropic SDK's own request encoding."""
    return json.dumps(obj, ensure_ascii=False, separators=(",", ":"), allow_nan=False).encode("utf-8")


def first_party_model_id(model: str | None) -> str | None:
    """Map Bedrock/Vertex Claude ids to first-party ids (see :func:`tracelens.modelid.first_party_id`)."""
    return first_party_id(model)


def pinned_models_from_env(env: dict[str, str] | None = None) -> frozenset[str]:
    """Model ids named in ``$TRACELENS_PINNED_MODELS`` (comma or space separated)."""
    env = os.environ if env is None else env
    return frozenset(m for m in re.split(r"[,\s]+", env.get(PINNED_ENV, "")) if m)


def is_snapshot(
    model: str | None, pinned: frozenset[str] | set[str] = frozenset(), catalog: ModelCatalog | None = None
) -> bool:
    """True for an id the model catalog says is pinned (dated snapshot or fixed), or one the user declared pinned."""
    if model and model in pinned:
        return True
    return bool(model) and (catalog or default_catalog()).classify(model).pinned


def is_anthropic_trace(trace: dict[str, Any]) -> bool:
    """True for a Claude call (first party, or on Bedrock/Vertex): its request is a Messages API request."""
    provider = (trace.get("provider") or "").lower()
    models = [trace.get("model_returned"), trace.get("model_requested")]
    claude = any(first_party_model_id(m) for m in models if m)
    if provider == "anthropic":
        return True
    if provider in ("bedrock", "vertex", "aws", "google", "gcp", "") or not provider:
        return claude
    return False


def _undated_but_fixed(model: str, catalog: ModelCatalog | None = None) -> bool:
    """An undated id the provider reported back that names a fixed model, not an alias of a dated snapshot.

    Newer Claude models are served under ids without a date (the API reports
    them back unchanged). The catalog decides: an id it lists as an alias, or
    one with a dated sibling it knows (``claude-sonnet-4-5`` ->
    ``claude-sonnet-4-5-20250929``) or ending in ``-latest``, is an alias;
    otherwise an id the provider reported is the most specific identity
    available.
    """
    return (catalog or default_catalog()).classify(model, reported=True).kind == "fixed"


def resolve_target_model(
    trace: dict[str, Any],
    model: str | None = None,
    pinned: frozenset[str] | set[str] | None = None,
    catalog: ModelCatalog | None = None,
) -> tuple[str, list[str]]:
    """Pick the snapshot to replay against; raises AliasOnlyError when none is pinned."""
    pinned = pinned_models_from_env() if pinned is None else pinned
    catalog = catalog or default_catalog()
    warnings: list[str] = []
    returned = trace.get("model_returned")
    requested = trace.get("model_requested")
    if model:
        target = first_party_model_id(model) or model
        if not is_snapshot(target, pinned, catalog):
            raise AliasOnlyError(
                f"--model {model!r} is an alias, not a dated snapshot; name a pinned snapshot "
                f"(e.g. claude-sonnet-4-5-20250929) so the replay hits a fixed model, or list the id in ${PINNED_ENV} "
                "if it is a fixed model without a date suffix"
            )
        recorded = first_party_model_id(returned) or returned
        if recorded and recorded != target:
            warnings.append(f"model overridden: trace ran on {recorded}, replaying on {target}")
        return target, warnings
    for candidate, what in ((returned, "model_returned"), (requested, "model_requested")):
        if not candidate:
            continue
        mapped = first_party_model_id(candidate) or candidate
        if is_snapshot(mapped, pinned, catalog):
            if what == "model_requested":
                warnings.append("no model_returned recorded; using the pinned snapshot named in the request")
            if mapped != candidate:
                warnings.append(f"mapped {candidate} to first-party id {mapped}")
            return mapped, warnings
    if returned and _undated_but_fixed(first_party_model_id(returned) or returned, catalog):
        # The provider reported an id without a date (newer models are named that way): it is the most
        # specific identity the API gives, so it is what served the call; replay against it, and say so.
        mapped = first_party_model_id(returned) or returned
        warnings.append(
            f"the provider reported {returned!r} without a dated snapshot; replaying against that id, the most "
            "specific one the API returned (set --model to choose another)"
        )
        return mapped, warnings
    recorded = returned or requested
    if not recorded:
        raise AliasOnlyError("the trace records no model id; pass model= / --model with a dated snapshot to replay it")
    raise AliasOnlyError(
        f"the trace only records the alias {recorded!r}, not the snapshot that served it; the alias may point at a "
        "different model today, so replaying it would not answer 'does the model still do that'. Pass model= / "
        "--model with the dated snapshot you mean (e.g. claude-sonnet-4-5-20250929); if this id is itself a fixed "
        f"model without a date suffix, list it in ${PINNED_ENV}"
    )


def _tool_defs(text: str | None, warnings: list[str]) -> list[dict[str, Any]] | None:
    if not text:
        return None
    try:
        tools = json.loads(text)
    except ValueError:
        warnings.append("tool_definitions is not valid JSON; tools dropped")
        return None
    if isinstance(tools, dict):
        tools = tools.get("tools") or [tools]
    out = []
    for t in tools if isinstance(tools, list) else []:
        if not isinstance(t, dict):
            continue
        if t.get("type") == "function" and isinstance(t.get("function"), dict):
            # OpenAI-style tool definitions, as OTel/OpenInference exporters often record them.
            fn = t["function"]
            tool = {"name": fn.get("name"), "input_schema": fn.get("parameters") or {"type": "object"}}
            if fn.get("description"):
                tool["description"] = fn["description"]
            out.append(tool)
        else:
            out.append(t)
    return out or None


def _arguments(text: str | None) -> Any:
    if not text:
        return {}
    try:
        return json.loads(text)
    except ValueError:
        return {"_raw": text}


def reconstruct_body(trace: dict[str, Any], model: str) -> tuple[dict[str, Any], list[str]]:
    """Build a Messages API body from normalised fields (no request_raw)."""
    warnings = [
        "request rebuilt from normalised fields (no request_raw): images, documents, cache_control, "
        "thinking settings and other block-level detail are not recorded and were not sent"
    ]
    messages: list[dict[str, Any]] = []
    system_parts: list[str] = []

    def push(role: str, blocks: list[dict[str, Any]]) -> None:
        if not blocks:
            return
        if messages and messages[-1]["role"] == role:
            # Tool results and consecutive user turns merge into one message, as the API expects.
            messages[-1]["content"].extend(blocks)
        else:
            messages.append({"role": role, "content": list(blocks)})

    for m in trace.get("messages") or []:
        role = (m.get("role") or "").lower()
        text = m.get("text")
        if role in ("system", "developer"):
            if text:
                system_parts.append(text)
        elif role == "user":
            push("user", [{"type": "text", "text": text}] if text else [])
        elif role == "assistant":
            blocks: list[dict[str, Any]] = [{"type": "text", "text": text}] if text else []
            for tc in m.get("tool_calls") or []:
                blocks.append(
                    {
                        "type": "tool_use",
                        "id": tc.get("id"),
                        "name": tc.get("name"),
                        "input": _arguments(tc.get("arguments")),
                    }
                )
            push("assistant", blocks)
        elif role in ("tool", "function", "tool_result"):
            push("user", [{"type": "tool_result", "tool_use_id": m.get("tool_call_id"), "content": text or ""}])
        else:
            warnings.append(f"message with unknown role {role!r} skipped")
    if not messages and trace.get("prompt_text"):
        messages = [{"role": "user", "content": [{"type": "text", "text": trace["prompt_text"]}]}]
        warnings.append("no messages recorded; sent the last user turn (prompt_text) alone")
    if not messages:
        raise NotReplayableError("the trace has neither request_raw nor messages/prompt_text; nothing to replay")
    for msg in messages:
        # A single text block is sent as a plain string, the common client spelling.
        c = msg["content"]
        if len(c) == 1 and c[0].get("type") == "text":
            msg["content"] = c[0]["text"]

    body: dict[str, Any] = {"model": model}
    max_tokens = trace.get("max_tokens")
    if not max_tokens:
        out = trace.get("output_tokens") or 0
        max_tokens = max(1024, int(out) * 2)
        warnings.append(f"max_tokens not recorded; using {max_tokens}")
    body["max_tokens"] = int(max_tokens)
    system = trace.get("system_prompt")
    if not system and system_parts:
        system = "\n\n".join(system_parts)
    if system:
        body["system"] = system
    body["messages"] = messages
    tools = _tool_defs(trace.get("tool_definitions"), warnings)
    if tools:
        body["tools"] = tools
    for name in ("temperature", "top_p"):
        if trace.get(name) is not None and not _isnan(trace[name]):
            body[name] = float(trace[name])
    if trace.get("top_k") is not None:
        body["top_k"] = int(trace["top_k"])
    if trace.get("stop_sequences"):
        body["stop_sequences"] = list(trace["stop_sequences"])
    if trace.get("seed") is not None:
        warnings.append("the original sent a seed; the Messages API has no seed parameter, so it was not sent")
    return body, warnings


def _isnan(v: Any) -> bool:
    return isinstance(v, float) and math.isnan(v)


def _recorded_input(trace: dict[str, Any]) -> int | None:
    # Anthropic reports cached prompt tokens separately; a replay may not hit the cache, so count them all.
    if trace.get("input_tokens") is None:
        return None
    return sum(int(trace.get(k) or 0) for k in ("input_tokens", "cache_read_tokens", "cache_creation_tokens"))


def body_from_raw(request_raw: str, model: str) -> tuple[dict[str, Any], list[str], bool]:
    """Apply the documented transformation to ``request_raw``; returns (body, warnings, dropped_stream)."""
    try:
        body = json.loads(request_raw)
    except ValueError as e:
        raise NotReplayableError(f"request_raw is not valid JSON ({e}); cannot replay it byte-faithfully") from e
    if not isinstance(body, dict):
        raise NotReplayableError("request_raw is not a JSON object")
    warnings: list[str] = []
    dropped_stream = False
    if "stream" in body:
        dropped_stream = bool(body.pop("stream"))
        if dropped_stream:
            warnings.append("the original request was streamed; the replay is sent non-streaming (stream removed)")
    for key in _PLATFORM_KEYS:
        if key in body:
            body.pop(key)
            warnings.append(f"removed platform-only field {key!r} (not part of the first-party Messages API)")
    if "messages" not in body:
        raise NotReplayableError("request_raw has no 'messages'; it is not a Messages API request body")
    body["model"] = model  # dict assignment keeps the key's original position
    return body, warnings, dropped_stream


def build_plan(
    trace: dict[str, Any],
    *,
    n: int = 5,
    model: str | None = None,
    prices: PriceTable | None = None,
    pinned_models: frozenset[str] | set[str] | None = None,
    catalog: ModelCatalog | None = None,
) -> ReplayPlan:
    """Plan the replay of one trace ``n`` times; raises ``ReplayError`` subclasses with user-facing messages.

    ``catalog``: the model catalog that decides alias vs pinned (default: the shipped data).
    """
    if n < 1:
        raise ValueError("n must be >= 1")
    trace_id = trace.get("trace_id") or "?"
    if not is_anthropic_trace(trace):
        raise NotReplayableError(
            f"trace {trace_id} is from provider {trace.get('provider') or 'unknown'!r} "
            f"(model {trace.get('model_returned') or trace.get('model_requested')!r}); only Anthropic Claude traces "
            "(first party, or Claude on Bedrock/Vertex) can be replayed"
        )
    target, warnings = resolve_target_model(trace, model, pinned_models, catalog)
    raw = trace.get("request_raw")
    dropped_stream = False
    attrs = trace.get("attributes") or {}
    if isinstance(attrs, list):  # a Parquet map column read back as key/value pairs
        attrs = dict(attrs) if attrs and isinstance(attrs[0], tuple) else {a["key"]: a["value"] for a in attrs}
    if raw and attrs.get("bedrock_body_shape") == "converse":
        # a Bedrock Converse body is not a Messages API body: rebuild the request from the normalised fields
        raw = None
        warnings.append("the recorded request is a Bedrock Converse body; rebuilt as a Messages API request")
    if raw:
        body, w, dropped_stream = body_from_raw(raw, target)
        reconstructed = False
        if trace.get("redacted"):
            w.append("this trace was redacted at ingest: the replayed request is not the exact one that was sent")
        if trace.get("request_is_exact") is False:
            w.append("request_raw was itself reconstructed at ingest (request_is_exact=false)")
            reconstructed = True
    else:
        body, w = reconstruct_body(trace, target)
        reconstructed = True
    warnings.extend(w)
    data = dumps_body(body)
    estimate = estimate_cost(
        target,
        n=n,
        body_chars=len(data.decode("utf-8")),
        recorded_input_tokens=_recorded_input(trace),
        recorded_output_tokens=trace.get("output_tokens"),
        max_tokens=body.get("max_tokens"),
        prices=prices,
        chars_per_token=CHARS_PER_TOKEN,
    )
    return ReplayPlan(
        trace_id=trace_id,
        model=target,
        body=data,
        n=n,
        reconstructed=reconstructed,
        warnings=warnings,
        estimate=estimate,
        original_model_requested=trace.get("model_requested"),
        original_model_returned=trace.get("model_returned"),
        dropped_stream=dropped_stream,
    )
