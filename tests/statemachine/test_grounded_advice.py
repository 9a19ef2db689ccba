"""Budgeting advice a bank can stand behind, end to end: the shipped ASL in moto, the real front,
router and fallback. An ungrounded primary answer is replaced by the rule-based baseline, the
client is told which check failed, the rejected answer's tokens are charged, and the circuit is
not touched (a task failure)."""

from __future__ import annotations

import json

import pytest

from shared.budgeting import RecurringPayment, SpendingProfile, advise, format_prompt
from tests.statemachine.conftest import PRIMARY, THRESHOLD

PROFILE = SpendingProfile(
    currency="USD",
    period="month",
    period_days=30,
    as_of="2026-06-30",
    monthly_income=4_200,
    monthly_spend=3_950,
    top_categories=(("Rent", 1_600), ("Dining", 420), ("Shopping", 380), ("Groceries", 360)),
    recurring=(RecurringPayment("StreamFlix", "Entertainment", 16), RecurringPayment("TuneBox", "Entertainment", 11)),
    trends=(("Dining", 35),),
)
PROMPT = format_prompt(PROFILE)
BASELINE = "rule-based-budgeting-baseline"


def advice(path, prompt: str = PROMPT) -> dict:
    body = json.dumps({"use_case": "budgeting_advice", "prompt": prompt, "user_id": "u-1"})
    status, answer = path.api("POST", "/v1/generate", body)
    assert status == 200, answer
    return answer


def test_grounded_primary_advice_is_served_as_primary(path):
    answer = advice(path)
    assert answer["tier"] == "primary" and answer["model_used"] == PRIMARY
    assert answer["primary_failure"] is None


@pytest.mark.parametrize(
    ("reply", "code", "check"),
    [
        ("1. Cut dining by 20% to save about USD 950 a month.", "UngroundedAmount", "ungrounded_amount"),
        ("1. Cut shopping shopping shopping shopping spending.", "RepeatedPhrase", "repeated_phrase"),
        ("1. Cut dining by 15%, from about USD 420 to USD 357 a month (saves about", "CutOffAnswer", "cut_off"),
    ],
)
def test_ungrounded_primary_advice_is_replaced_by_the_baseline_and_the_client_is_told(path, reply, code, check):
    path.bedrock.replies[PRIMARY] = reply
    answer = advice(path)
    assert answer["tier"] == "fallback" and answer["model_used"] == BASELINE
    assert answer["response"] == advise(PROMPT)  # the rules' own, grounded advice
    failure = answer["primary_failure"]
    assert failure["model"] == PRIMARY and failure["code"] == code and failure["failure_class"] == "task"
    assert failure["detail"].startswith(check)
    # The rejected answer was billed: its tokens are charged, though the baseline itself is free.
    assert (
        failure["output_tokens"] == len(reply.split()) and answer["usage"]["output_tokens"] == failure["output_tokens"]
    )
    assert answer["usage"]["cost"] > 0
    audit = path.audit_records()[-1]
    assert audit["tier"] == "fallback" and audit["cost_micros"] > 0


def test_rejected_advice_never_opens_the_primary_circuit(path):
    path.bedrock.replies[PRIMARY] = "Save USD 12,345 a month."
    for _ in range(THRESHOLD + 2):
        assert advice(path)["tier"] == "fallback"
    circuit = path.circuit(PRIMARY)
    assert circuit is None or (circuit["state"] == "CLOSED" and circuit["failures"] == 0)


def test_a_free_text_question_is_checked_against_its_own_numbers(path):
    question = "I earn $3,000 a month and spend $2,900. How can I save more?"
    path.bedrock.replies[PRIMARY] = "Cut dining to save $750 a month."
    answer = advice(path, question)
    # No profile, so no baseline: the fallback model answers (and is checked the same way).
    assert answer["tier"] == "fallback" and answer["model_used"] != BASELINE
    assert answer["primary_failure"]["code"] == "UngroundedAmount"


def test_a_fallback_that_invents_numbers_hands_over_to_the_static_answer(path):
    question = "I earn $3,000 a month and spend $2,900. How can I save more?"
    for model in set(path.bedrock.calls) | {PRIMARY, "us.amazon.nova-micro-v1:0"}:
        path.bedrock.replies[model] = "Put $777 a month into savings."
    answer = advice(path, question)
    assert answer["tier"] == "degraded"
