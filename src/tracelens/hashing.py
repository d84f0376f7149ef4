"""Stable content hashes.

Hashes group identical prompts across weeks and spot system-prompt and tool
changes, so they must not depend on key order, whitespace in JSON, or the
source format the record came from. All hashes are sha256, hex, truncated to
16 characters (64 bits: collisions are negligible at log scale and the short
form is readable in reports). ``text_hash`` keys the embedding store.

The values are part of stored data (``prompt_hash``, ``content_hash`` decide
re-ingest duplicates; ``text_hash`` keys stored embeddings): speed-ups here
must keep every value byte for byte.
"""

from __future__ import annotations

import hashlib
import json
from functools import lru_cache
from typing import Any

HASH_LEN = 16

_sha256 = hashlib.sha256


def _h(data: str) -> str:
    return _sha256(data.encode("utf-8", "surrogatepass")).hexdigest()[:HASH_LEN]


try:
    import orjson as _orjson
except ImportError:  # pragma: no cover
    _orjson = None

_SORT_KEYS = _orjson.OPT_SORT_KEYS if _orjson is not None else 0


def canonical_json(obj: Any) -> str:
    """JSON with sorted keys and no insignificant whitespace."""
    if _orjson is not None:
        try:
            return _orjson.dumps(obj, option=_SORT_KEYS, default=str).decode()
        except TypeError:
            pass
    return json.dumps(obj, sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=str)


def _canonical_bytes(obj: Any) -> bytes:
    """``canonical_json(obj)`` encoded as UTF-8 (surrogatepass), without the str round trip on the fast path."""
    if _orjson is not None:
        try:
            return _orjson.dumps(obj, option=_SORT_KEYS, default=str)
        except TypeError:  # e.g. a lone surrogate or an integer beyond 64 bits
            pass
    return json.dumps(obj, sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=str).encode(
        "utf-8", "surrogatepass"
    )


def text_hash(text: str | None) -> str | None:
    """Hash of a text (None stays None). Used to key embeddings."""
    if text is None:
        return None
    return _h(text)


# System prompts and tool definitions repeat across nearly every record of an
# application; caching their hashes by text saves a sha256 (and, for tools, a
# JSON parse and re-serialisation) per record. Keys are the texts themselves,
# so a hit is exact.
@lru_cache(maxsize=1024)
def _system_prompt_hash(system_prompt: str) -> str:
    return _h("system\x00" + system_prompt)


def system_prompt_hash(system_prompt: str | None) -> str | None:
    """Hash of a system prompt (16 hex characters); None for None or ""."""
    if not system_prompt:
        return None
    if type(system_prompt) is not str:  # uncached, so odd values fail exactly as they always did
        return _h("system\x00" + system_prompt)
    return _system_prompt_hash(system_prompt)


@lru_cache(maxsize=1024)
def _tools_text_hash(text: str) -> str:
    try:
        parsed = json.loads(text)
    except ValueError:
        return _h("tools\x00" + text)
    return _tools_value_hash(parsed)


def _tools_value_hash(tool_definitions: Any) -> str:
    return _sha256(b"tools\x00" + _canonical_bytes(tool_definitions)).hexdigest()[:HASH_LEN]


def tools_hash(tool_definitions: Any) -> str | None:
    """Hash of tool definitions given as parsed JSON or JSON text."""
    if tool_definitions in (None, "", [], "[]", "null"):
        return None
    if type(tool_definitions) is str:
        return _tools_text_hash(tool_definitions)
    if isinstance(tool_definitions, str):
        return _tools_text_hash.__wrapped__(tool_definitions)
    return _tools_value_hash(tool_definitions)


def prompt_hash(system_prompt: str | None, messages: list[dict] | None, tools: Any = None) -> str:
    """Hash of the full prompt content: system prompt, ordered messages, tools.

    Only role, text and tool calls/results count, so the same conversation
    logged by two different tools hashes the same.
    """
    msgs = [
        [
            m.get("role"),
            m.get("text"),
            [[c.get("name"), c.get("arguments")] for c in calls] if (calls := m.get("tool_calls")) else [],
            m.get("tool_call_id"),
        ]
        for m in messages or ()
    ]
    data = _canonical_bytes(["prompt", system_prompt or "", msgs, tools_hash(tools)])
    return _sha256(data).hexdigest()[:HASH_LEN]


def record_hash(record: dict, exclude: tuple[str, ...] = ()) -> str:
    """Hash of a whole normalised record (minus ``exclude``)."""
    if exclude:
        record = {k: v for k, v in record.items() if k not in exclude}
    return _sha256(_canonical_bytes(record)).hexdigest()
