"""Stable content hashes.

Hashes group identical prompts across weeks and spot system-prompt and tool
changes, so they must not depend on key order, whitespace in JSON, or the
source format the record came from. All hashes are sha256, hex, truncated to
16 characters (64 bits: collisions are negligible at log scale and the short
form is readable in reports). ``text_hash`` keys the embedding store.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any

HASH_LEN = 16


def _h(data: str) -> str:
    return hashlib.sha256(data.encode("utf-8", "surrogatepass")).hexdigest()[:HASH_LEN]


try:
    import orjson as _orjson
except ImportError:  # pragma: no cover
    _orjson = None


def canonical_json(obj: Any) -> str:
    """JSON with sorted keys and no insignificant whitespace."""
    if _orjson is not None:
        try:
            return _orjson.dumps(obj, option=_orjson.OPT_SORT_KEYS, default=str).decode()
        except TypeError:
            pass
    return json.dumps(obj, sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=str)


def text_hash(text: str | None) -> str | None:
    """Hash of a text (None stays None). Used to key embeddings."""
    if text is None:
        return None
    return _h(text)


def system_prompt_hash(system_prompt: str | None) -> str | None:
    if not system_prompt:
        return None
    return _h("system\x00" + system_prompt)


def tools_hash(tool_definitions: Any) -> str | None:
    """Hash of tool definitions given as parsed JSON or JSON text."""
    if tool_definitions in (None, "", [], "[]", "null"):
        return None
    if isinstance(tool_definitions, str):
        try:
            tool_definitions = json.loads(tool_definitions)
        except ValueError:
            return _h("tools\x00" + tool_definitions)
    return _h("tools\x00" + canonical_json(tool_definitions))


def prompt_hash(system_prompt: str | None, messages: list[dict] | None, tools: Any = None) -> str:
    """Hash of the full prompt content: system prompt, ordered messages, tools.

    Only role, text and tool calls/results count, so the same conversation
    logged by two different tools hashes the same.
    """
    msgs = []
    for m in messages or []:
        msgs.append(
            [
                m.get("role"),
                m.get("text"),
                [[c.get("name"), c.get("arguments")] for c in (m.get("tool_calls") or [])],
                m.get("tool_call_id"),
            ]
        )
    return _h(canonical_json(["prompt", system_prompt or "", msgs, tools_hash(tools)]))


def record_hash(record: dict, exclude: tuple[str, ...] = ()) -> str:
    """Hash of a whole normalised record (minus ``exclude``)."""
    return hashlib.sha256(
        canonical_json({k: v for k, v in record.items() if k not in exclude}).encode("utf-8", "surrogatepass")
    ).hexdigest()
