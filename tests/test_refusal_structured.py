"""Structured refusal signals, one provider format at a time.

The response bodies below are written for these tests in the shape each
provider documents (they are not copied from any dataset).
"""

from __future__ import annotations

import json

import pytest

from tracelens.enrich.refusal import detect

ANTHROPIC_REFUSAL = {
    "id": "msg_01TEST",
    "type": "message",
    "role": "assistant",
    "model": "claude-sonnet-4-5",
    "content": [{"type": "text", "text": "Here is the first part of"}],
    "stop_reason": "refusal",
    "stop_details": {"type": "refusal", "category": "cyber", "explanation": "Declined: could enable intrusion."},
    "usage": {"input_tokens": 20, "output_tokens": 6},
}

OPENAI_MESSAGE_REFUSAL = {
    "id": "chatcmpl-test",
    "object": "chat.completion",
    "model": "gpt-4o-2024-08-06",
    "choices": [
        {
            "index": 0,
            "message": {"role": "assistant", "content": None, "refusal": "I'm sorry, I can't assist with that."},
            "finish_reason": "stop",
        }
    ],
}

OPENAI_NORMAL = {
    "id": "chatcmpl-ok",
    "object": "chat.completion",
    "choices": [
        {"index": 0, "message": {"role": "assistant", "content": "Paris.", "refusal": None}, "finish_reason": "stop"}
    ],
}

AZURE_CONTENT_FILTER = {
    "id": "chatcmpl-filtered",
    "choices": [
        {
            "index": 0,
            "finish_reason": "content_filter",
            "message": {"role": "assistant", "content": None},
            "content_filter_results": {
                "hate": {"filtered": False, "severity": "safe"},
                "violence": {"filtered": True, "severity": "high"},
            },
        }
    ],
}

OPENAI_RESPONSES_REFUSAL = {
    "id": "resp_test",
    "object": "response",
    "output": [
        {
            "type": "message",
            "role": "assistant",
            "content": [{"type": "refusal", "refusal": "I can't help with that request."}],
        }
    ],
}

BEDROCK_CONVERSE_GUARDRAIL = {
    "output": {"message": {"role": "assistant", "content": [{"text": "Sorry, the model cannot answer this question."}]}},
    "stopReason": "guardrail_intervened",
    "trace": {
        "guardrail": {
            "inputAssessment": {
                "gr1": {
                    "topicPolicy": {"topics": [{"name": "Bank Robbery", "type": "DENY", "action": "BLOCKED"}]},
                    "contentPolicy": {"filters": [{"type": "VIOLENCE", "confidence": "HIGH", "action": "BLOCKED"}]},
                }
            }
        }
    },
}

BEDROCK_INVOKE_GUARDRAIL = {
    "type": "message",
    "content": [{"type": "text", "text": "I can't share that."}],
    "stop_reason": "end_turn",
    "amazon-bedrock-guardrailAction": "INTERVENED",
}

GEMINI_SAFETY = {
    "candidates": [
        {
            "finishReason": "SAFETY",
            "safetyRatings": [{"category": "HARM_CATEGORY_DANGEROUS_CONTENT", "probability": "HIGH", "blocked": True}],
        }
    ]
}


def test_anthropic_stop_reason_refusal_with_stop_details():
    r = detect(
        "Here is the first part of",
        stop_reason="refusal",
        stop_reason_raw="refusal",
        stop_details=json.dumps(ANTHROPIC_REFUSAL["stop_details"]),
        provider="anthropic",
    )
    assert (r.label, r.source, r.category) == ("full", "structured", "cyber")
    assert r.score == 1.0
    assert "stop_reason=refusal" in r.evidence and "could enable intrusion" in r.evidence


def test_anthropic_refusal_found_in_raw_body_alone():
    r = detect("Here is the first part of", response_raw=json.dumps(ANTHROPIC_REFUSAL))
    assert (r.label, r.source, r.category) == ("full", "structured", "cyber")


def test_empty_stream_ending_in_refusal():
    r = detect("", stop_reason="refusal", provider="anthropic")
    assert r.label == "full" and r.source == "structured"
    assert "empty content" in r.evidence


def test_empty_stream_ending_in_content_filter():
    r = detect(None, stop_reason="content_filter", stop_reason_raw="content_filter", provider="openai")
    assert r.label == "full" and "empty content" in r.evidence


def test_openai_message_refusal():
    r = detect(None, response_raw=json.dumps(OPENAI_MESSAGE_REFUSAL), provider="openai")
    assert (r.label, r.source, r.category) == ("full", "structured", "model_refusal")
    assert "can't assist" in r.evidence


def test_openai_null_refusal_is_not_a_signal():
    r = detect("Paris.", response_raw=json.dumps(OPENAI_NORMAL), stop_reason="end_turn", provider="openai")
    assert r.label == "none" and r.source is None


def test_openai_responses_api_refusal_part():
    r = detect(None, response_raw=json.dumps(OPENAI_RESPONSES_REFUSAL))
    assert r.label == "full" and r.category == "model_refusal"


def test_openai_finish_reason_content_filter_with_azure_categories():
    r = detect(None, response_raw=json.dumps(AZURE_CONTENT_FILTER), provider="azure")
    assert (r.label, r.source) == ("full", "structured")
    assert r.category == "content_filter:violence"


def test_bedrock_converse_guardrail_intervened():
    text = BEDROCK_CONVERSE_GUARDRAIL["output"]["message"]["content"][0]["text"]
    r = detect(text, response_raw=json.dumps(BEDROCK_CONVERSE_GUARDRAIL), provider="bedrock")
    assert (r.label, r.source) == ("full", "structured")
    assert r.category.startswith("guardrail:") and "bank_robbery" in r.category and "violence" in r.category


def test_bedrock_invoke_model_guardrail_action():
    r = detect("I can't share that.", response_raw=json.dumps(BEDROCK_INVOKE_GUARDRAIL), provider="bedrock")
    assert (r.label, r.source, r.category) == ("full", "structured", "guardrail")


def test_bedrock_stop_reason_raw_only():
    r = detect("", stop_reason="other", stop_reason_raw="guardrail_intervened", provider="bedrock")
    assert r.label == "full" and r.category == "guardrail"


def test_gemini_safety_finish_reason():
    r = detect(None, response_raw=json.dumps(GEMINI_SAFETY), provider="google")
    assert r.label == "full" and r.category.startswith("safety")


@pytest.mark.parametrize(
    "error_type,message",
    [
        ("invalid_request_error", "Your request was rejected as a result of our safety system."),
        ("content_policy_violation", "This request has been flagged by our content policy."),
        ("invalid_prompt", "Invalid prompt: your prompt was flagged as potentially violating our usage policy."),
        (None, "The response was filtered due to the prompt triggering Azure OpenAI's content management policy."),
    ],
)
def test_http_400_content_policy_error(error_type, message):
    r = detect(None, status="error", http_status=400, error_type=error_type, error_message=message)
    assert (r.label, r.source) == ("full", "structured")
    assert r.category.startswith("content_policy_error")
    assert "HTTP 400" in r.evidence


@pytest.mark.parametrize(
    "http_status,error_type,message",
    [
        (429, "rate_limit_error", "Number of request tokens has exceeded your per-minute rate limit"),
        (400, "invalid_request_error", "max_tokens: 100000 > 8192, which is the maximum allowed"),
        (500, "api_error", "Internal server error"),
        (529, "overloaded_error", "Overloaded"),
    ],
)
def test_other_errors_are_not_refusals(http_status, error_type, message):
    r = detect(None, status="error", http_status=http_status, error_type=error_type, error_message=message)
    assert r.label == "none" and r.source is None


def test_structured_signal_wins_over_text():
    r = detect("Sure, here is the answer: 42.", stop_reason="content_filter")
    assert r.source == "structured"


def test_normal_stops_fall_through_to_text():
    for stop in ("end_turn", "max_tokens", "stop_sequence", "tool_use"):
        assert detect("The capital of France is Paris.", stop_reason=stop).label == "none"
        assert detect("I'm sorry, but I can't help with that.", stop_reason=stop).source == "text"


def test_non_json_raw_body_is_tolerated():
    r = detect("Paris is the capital.", response_raw="data: {not json\n\n", provider="openai")
    assert r.label == "none"


def test_huge_raw_body_is_bounded():
    raw = json.dumps({"choices": [{"message": {"content": "x" * 3_000_000, "refusal": None}}]})
    r = detect("ok", response_raw=raw)
    assert r.label == "none"
