"""Fallback: the configured cheap model, conservative parameters, tagged FALLBACK."""

import boto3
import pytest
from botocore.stub import Stubber

from fallback import handler as fallback
from local.request_path import FakeContext


@pytest.fixture
def client(monkeypatch):
    monkeypatch.setenv("FALLBACK_MODEL_ID", "us.amazon.nova-micro-v1:0")
    client = boto3.client("bedrock-runtime", region_name="us-east-1")
    monkeypatch.setattr(fallback, "_client", lambda: client)
    return client


def test_fallback_uses_its_model_with_300_tokens_at_temperature_half(client, capfd, caplog):
    answer = {
        "output": {"message": {"role": "assistant", "content": [{"text": "Short answer."}]}},
        "stopReason": "end_turn",
        "usage": {"inputTokens": 5, "outputTokens": 2, "totalTokens": 7},
        "metrics": {"latencyMs": 1},
    }
    expected = {
        "modelId": "us.amazon.nova-micro-v1:0",
        "messages": [{"role": "user", "content": [{"text": "hi"}]}],
        "system": [{"text": fallback.SYSTEM_PROMPT}],
        "inferenceConfig": {"maxTokens": 300, "temperature": 0.5},
    }
    with Stubber(client) as stub:
        stub.add_response("converse", answer, expected)
        result = fallback.lambda_handler(
            {"request_id": "r", "use_case": "general", "prompt": "hi"}, FakeContext("fallback", "us-east-1")
        )
    assert result["response"] == "Short answer."
    assert result["model_used"] == "us.amazon.nova-micro-v1:0"
    out = capfd.readouterr().out
    assert '"FALLBACK"' in out  # the EMF metric
    assert any(getattr(record, "marker", None) == "FALLBACK" for record in caplog.records)


def test_fallback_failure_raises_so_the_state_machine_degrades(client):
    with Stubber(client) as stub:
        stub.add_client_error("converse", "AccessDeniedException", "denied", 403)
        with pytest.raises(Exception, match="AccessDeniedException"):
            fallback.lambda_handler(
                {"request_id": "r", "use_case": "general", "prompt": "hi"}, FakeContext("fallback", "us-east-1")
            )


def test_fallback_without_a_model_configured_fails_clearly(monkeypatch):
    monkeypatch.delenv("FALLBACK_MODEL_ID", raising=False)
    with pytest.raises(RuntimeError, match="FALLBACK_MODEL_ID"):
        fallback.fallback_model_id()


def test_budgeting_profiles_get_the_rule_based_baseline_without_a_model_call(client):
    from shared.budgeting import RecurringPayment, SpendingProfile, format_prompt

    profile = SpendingProfile(
        currency="HKD",
        period="month",
        period_days=30,
        as_of="2025-12-31",
        monthly_income=9000,
        monthly_spend=8800,
        top_categories=(("Dining", 1200),),
        recurring=(RecurringPayment("StreamFlix", "Entertainment", 60),),
    )
    with Stubber(client):  # no response queued: any model call would fail the test
        result = fallback.lambda_handler(
            {"request_id": "r", "use_case": "budgeting_advice", "prompt": format_prompt(profile)},
            FakeContext("fallback", "us-east-1"),
        )
    assert result["model_used"] == "rule-based-budgeting-baseline"
    assert result["response"].startswith("1. ")


def test_free_text_budgeting_questions_still_use_the_fallback_model(client):
    answer = {
        "output": {"message": {"role": "assistant", "content": [{"text": "Track your spending."}]}},
        "stopReason": "end_turn",
        "usage": {"inputTokens": 5, "outputTokens": 3, "totalTokens": 8},
        "metrics": {"latencyMs": 1},
    }
    with Stubber(client) as stub:
        stub.add_response("converse", answer)
        result = fallback.lambda_handler(
            {"request_id": "r", "use_case": "budgeting_advice", "prompt": "How do I save?"},
            FakeContext("fallback", "us-east-1"),
        )
    assert result["model_used"] == "us.amazon.nova-micro-v1:0"


def converse_answer(text):
    return {
        "output": {"message": {"role": "assistant", "content": [{"text": text}]}},
        "stopReason": "end_turn",
        "usage": {"inputTokens": 9, "outputTokens": 1, "totalTokens": 10},
        "metrics": {"latencyMs": 1},
    }


def test_sentiment_fallback_asks_the_cheap_model_for_a_label(client):
    from shared.sentiment import LABEL_INSTRUCTION

    expected = {
        "modelId": "us.amazon.nova-micro-v1:0",
        "messages": [{"role": "user", "content": [{"text": "Shares rallied on record profits"}]}],
        "system": [{"text": LABEL_INSTRUCTION}],
        "inferenceConfig": {"maxTokens": 10, "temperature": 0.0},
    }
    with Stubber(client) as stub:
        stub.add_response("converse", converse_answer("Positive"), expected)
        result = fallback.lambda_handler(
            {"request_id": "r", "use_case": "sentiment", "prompt": "Shares rallied on record profits"},
            FakeContext("fallback", "us-east-1"),
        )
    assert result["sentiment"] == {"label": "positive", "confidence": None, "probabilities": None, "truncated": False}
    assert result["response"] == "Sentiment: positive."


def test_sentiment_fallback_without_a_clear_label_raises_so_the_request_degrades(client):
    with Stubber(client) as stub:
        stub.add_response("converse", converse_answer("Hard to say."))
        with pytest.raises(Exception, match="UnreadableLabel"):
            fallback.lambda_handler(
                {"request_id": "r", "use_case": "sentiment", "prompt": "Markets were mixed"},
                FakeContext("fallback", "us-east-1"),
            )


def test_generation_answers_carry_a_null_sentiment(client):
    with Stubber(client) as stub:
        stub.add_response("converse", converse_answer("Short answer."))
        result = fallback.lambda_handler(
            {"request_id": "r", "use_case": "general", "prompt": "hi"}, FakeContext("fallback", "us-east-1")
        )
    assert result["sentiment"] is None
