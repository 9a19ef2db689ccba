"""The Converse code path, checked against botocore's real service model with a Stubber."""

import random

import boto3
import pytest
from botocore.stub import Stubber

from shared.bedrock import ModelCallError, RetryPolicy, backoff_delay, converse

MODEL = "us.anthropic.claude-haiku-4-5-20251001-v1:0"
ANSWER = {
    "output": {"message": {"role": "assistant", "content": [{"text": "Diversify."}]}},
    "stopReason": "end_turn",
    "usage": {"inputTokens": 12, "outputTokens": 3, "totalTokens": 15},
    "metrics": {"latencyMs": 100},
}
EXPECTED_REQUEST = {
    "modelId": MODEL,
    "messages": [{"role": "user", "content": [{"text": "How should I invest?"}]}],
    "system": [{"text": "Be careful."}],
    "inferenceConfig": {"maxTokens": 300, "temperature": 0.5},
}


@pytest.fixture
def client():
    return boto3.client("bedrock-runtime", region_name="us-east-1")


def call(client, **kwargs):
    defaults = dict(
        model_id=MODEL,
        prompt="How should I invest?",
        system_prompt="Be careful.",
        max_tokens=300,
        temperature=0.5,
        sleep=lambda s: None,
        rng=random.Random(0),
    )
    return converse(client, **{**defaults, **kwargs})


def test_converse_sends_a_valid_request_and_parses_the_answer(client):
    with Stubber(client) as stub:
        stub.add_response("converse", ANSWER, EXPECTED_REQUEST)
        completion = call(client)
    assert completion.text == "Diversify."
    assert (completion.input_tokens, completion.output_tokens) == (12, 3)


def test_throttling_is_retried_then_succeeds(client):
    slept = []
    with Stubber(client) as stub:
        stub.add_client_error("converse", "ThrottlingException", "slow down", 429)
        stub.add_client_error("converse", "ServiceUnavailableException", "busy", 503)
        stub.add_response("converse", ANSWER, EXPECTED_REQUEST)
        completion = call(client, sleep=slept.append)
        stub.assert_no_pending_responses()
    assert completion.text == "Diversify."
    assert len(slept) == 2


def test_non_retryable_errors_fail_at_once(client):
    with Stubber(client) as stub:
        stub.add_client_error("converse", "AccessDeniedException", "no", 403)
        with pytest.raises(ModelCallError) as raised:
            call(client)
    assert raised.value.code == "AccessDeniedException"


def test_retries_stop_at_the_attempt_limit(client):
    with Stubber(client) as stub:
        for _ in range(3):
            stub.add_client_error("converse", "ThrottlingException", "slow down", 429)
        with pytest.raises(ModelCallError, match="ThrottlingException"):
            call(client, policy=RetryPolicy(max_attempts=3))
        stub.assert_no_pending_responses()


def test_no_retry_that_would_overrun_the_deadline(client):
    with Stubber(client) as stub:
        stub.add_client_error("converse", "ThrottlingException", "slow down", 429)
        with pytest.raises(ModelCallError, match="no time left"):
            call(client, deadline=100.0, clock=lambda: 99.99, policy=RetryPolicy(base_delay_s=1.0))


def test_an_empty_answer_is_a_failure(client):
    empty = {**ANSWER, "output": {"message": {"role": "assistant", "content": []}}}
    with Stubber(client) as stub:
        stub.add_response("converse", empty)
        with pytest.raises(ModelCallError, match="EmptyResponse"):
            call(client)


def test_backoff_is_full_jitter_and_capped():
    rng = random.Random(1)
    policy = RetryPolicy(base_delay_s=0.2, max_delay_s=2.0)
    delays = [backoff_delay(attempt, policy, rng) for attempt in range(1, 10) for _ in range(50)]
    assert all(0 <= d <= 2.0 for d in delays)
    assert max(delays) > 1.0


def test_guardrail_is_applied_in_converse(client):
    from shared.bedrock import GuardrailRef

    expected = {**EXPECTED_REQUEST, "guardrailConfig": {"guardrailIdentifier": "gr-123", "guardrailVersion": "1"}}
    with Stubber(client) as stub:
        stub.add_response("converse", ANSWER, expected)
        assert call(client, guardrail=GuardrailRef("gr-123", "1")).text == "Diversify."


@pytest.mark.parametrize(
    ("action", "outputs", "expected"),
    [
        (
            "GUARDRAIL_INTERVENED",
            [{"text": "Your card {CREDIT_DEBIT_CARD_NUMBER} is active."}],
            "Your card {CREDIT_DEBIT_CARD_NUMBER} is active.",
        ),
        ("NONE", [], "Your card 4111 1111 1111 1111 is active."),
    ],
)
def test_adapter_outputs_go_through_apply_guardrail(client, action, outputs, expected):
    from shared.bedrock import GuardrailRef, apply_output_guardrail

    text = "Your card 4111 1111 1111 1111 is active."
    with Stubber(client) as stub:
        stub.add_response(
            "apply_guardrail",
            {
                "usage": {
                    "topicPolicyUnits": 1,
                    "contentPolicyUnits": 1,
                    "wordPolicyUnits": 1,
                    "sensitiveInformationPolicyUnits": 1,
                    "sensitiveInformationPolicyFreeUnits": 0,
                    "contextualGroundingPolicyUnits": 0,
                },
                "action": action,
                "outputs": outputs,
                "assessments": [],
            },
            {
                "guardrailIdentifier": "gr-123",
                "guardrailVersion": "1",
                "source": "OUTPUT",
                "content": [{"text": {"text": text}}],
            },
        )
        assert apply_output_guardrail(client, GuardrailRef("gr-123", "1"), text) == expected


def test_no_guardrail_configured_means_none():
    from shared.bedrock import guardrail_from_env

    assert guardrail_from_env({}) is None
    assert guardrail_from_env({"GUARDRAIL_ID": "gr", "GUARDRAIL_VERSION": "3"}).version == "3"
