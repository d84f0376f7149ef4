"""Shared fixtures. Tests are offline and deterministic."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
SHARED = REPO.parent / "shared" / "data"


def shared_path(*parts: str) -> Path:
    """A path under ../shared/data; skips the calling test when it is absent."""
    p = SHARED.joinpath(*parts)
    if not p.exists():
        pytest.skip(f"optional check: {p} not present")
    return p


@pytest.fixture
def store(tmp_path):
    from tracelens.store import Store

    return Store(tmp_path / "store", create=True)


def anthropic_line(i: int, *, ts: str = "2026-11-18T15:00:00Z", text: str | None = None, model: str = "claude-sonnet-4-5",
                   returned: str = "claude-sonnet-4-5-20250929", user: str = "u1", system: str = "You are helpful.",
                   prompt: str | None = None, stop: str = "end_turn") -> str:
    """One Anthropic request/response log line (our own fixture shape)."""
    return json.dumps(
        {
            "timestamp": ts,
            "latency_ms": 500 + i,
            "request_id": f"req_{i:06d}",
            "metadata": {"user_id": user, "app": "support"},
            "request": {
                "model": model,
                "max_tokens": 256,
                "system": system,
                "messages": [{"role": "user", "content": prompt or f"question number {i}"}],
            },
            "response": {
                "id": f"msg_{i:06d}",
                "type": "message",
                "role": "assistant",
                "model": returned,
                "content": [{"type": "text", "text": text or f"answer number {i}"}],
                "stop_reason": stop,
                "usage": {"input_tokens": 10, "output_tokens": 5},
            },
        }
    )


@pytest.fixture
def anthropic_file(tmp_path):
    def make(n: int = 10, name: str = "log.jsonl", **kw) -> Path:
        p = tmp_path / name
        p.write_text("\n".join(anthropic_line(i, **kw) for i in range(n)) + "\n")
        return p

    return make
