"""Model identity parsing over the id shapes seen in production logs."""

import pytest

from tracelens.modelid import is_pinned, parse_model_id


@pytest.mark.parametrize(
    "raw, provider, family, snapshot, alias, platform",
    [
        ("claude-sonnet-4-6-20260217", "anthropic", "claude-sonnet-4-6", "2026-02-17", False, None),
        ("claude-3-5-sonnet-latest", "anthropic", "claude-3-5-sonnet", None, True, None),
        ("claude-sonnet-4-5", "anthropic", "claude-sonnet-4-5", None, True, None),
        ("gpt-4o-2024-08-06", "openai", "gpt-4o", "2024-08-06", False, None),
        ("gpt-4-0613", "openai", "gpt-4", "0613", False, None),
        ("gpt-4o", "openai", "gpt-4o", None, True, None),
        ("anthropic.claude-3-5-sonnet-20240620-v1:0", "anthropic", "claude-3-5-sonnet", "2024-06-20", False, "bedrock"),
        ("us.anthropic.claude-sonnet-4-20250514-v1:0", "anthropic", "claude-sonnet-4", "2025-05-14", False, "bedrock"),
        ("claude-sonnet-4-5@20250929", "anthropic", "claude-sonnet-4-5", "2025-09-29", False, "vertex"),
        ("projects/p/locations/us-central1/publishers/google/models/gemini-2.5-flash", "google", "gemini-2.5-flash",
         None, True, "vertex"),
        ("amazon.nova-pro-v1:0", "amazon", "nova-pro", None, False, "bedrock"),
        ("anthropic.claude-v2:1", "anthropic", "claude-v2", None, False, "bedrock"),
        ("models/gemini-1.5-pro-002", "google", "gemini-1.5-pro-002", None, True, None),
    ],
)
def test_parse(raw, provider, family, snapshot, alias, platform):
    m = parse_model_id(raw)
    assert (m.provider, m.family, m.snapshot, m.is_alias, m.platform) == (provider, family, snapshot, alias, platform)


def test_user_alias_rules_and_empty():
    assert parse_model_id("") is None and parse_model_id(None) is None
    assert parse_model_id("claude-x-20250101", extra_alias_patterns=(r"-2025\d{4}$",)).is_alias
    assert is_pinned("claude-sonnet-4-5-20250929") and not is_pinned("claude-sonnet-4-5")
