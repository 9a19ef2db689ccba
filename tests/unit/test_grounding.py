"""The numeric grounding guard: grounded advice passes, invented figures, loops and cut-off
answers fail with the check that caught them, and no input costs more than linear time."""

from __future__ import annotations

import time

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from shared.budgeting import RecurringPayment, SpendingProfile, advise, format_prompt
from shared.failures import FailureClass, TaskFailure, describe_error
from shared.grounding import Check, check, figures_for, repeated_phrase
from shared.guard import guard
from shared.use_cases import UseCase
from tests.unit.test_budgeting import profiles

PROFILE = SpendingProfile(
    currency="HKD",
    period="month",
    period_days=30,
    as_of="2025-06-30",
    monthly_income=8_070,
    monthly_spend=1_667,
    top_categories=(("Entertainment", 831), ("Health", 457), ("Dining", 154), ("Shopping", 150)),
    recurring=(
        RecurringPayment("GameVault", "Entertainment", 18),
        RecurringPayment("TuneBox", "Entertainment", 18),
        RecurringPayment("FitLife Gym", "Entertainment", 57),
    ),
    trends=(("Entertainment", 349), ("Shopping", -79)),
)
PROMPT = format_prompt(PROFILE)


@pytest.mark.parametrize(
    "answer",
    [
        advise(PROMPT),
        # A model's own wording, with figures derived as the rules derive them.
        "1. Cut dining by 20%, from HKD 154 to HKD 123 a month (saves about HKD 31 a month).\n"
        "2. Entertainment rose 349%; bring it back to about HKD 185 a month (saves HKD 646).\n"
        "Together that is about HKD 677 a month, or HKD 8,124 a year.",
        "You spend HKD 1,667 a month against an income of HKD 8,070, a savings rate of 79%. Keep it up.",
        "Keep three months of spending (HKD 5,001) in an emergency fund.",
        "Review your 3 subscriptions and cancel the two cheapest, GameVault and TuneBox (HKD 36 a month).",
    ],
)
def test_grounded_advice_passes(answer):
    assert check(answer, PROMPT).ok, check(answer, PROMPT)


@pytest.mark.parametrize(
    ("answer", "failed", "mentions"),
    [
        ("1. Cut dining by 20% to save about HKD 999 a month.", Check.UNGROUNDED_AMOUNT, "HKD 999"),
        ("1. Cut dining by 20% to save about USD 31 a month.", Check.UNGROUNDED_AMOUNT, "not in HKD"),
        ("Your savings rate is 64%, well above target.", Check.UNGROUNDED_PERCENT, "64%"),
        (
            "Cut shopping spending by 25%, from about a month to two months (saves about a month).",
            Check.UNGROUNDED_PERIOD,
            "two months",
        ),
        ("Cut shopping shopping shopping shopping and save.", Check.REPEATED_PHRASE, "shopping"),
        ("I hate this. I hate this. I hate this.", Check.REPEATED_PHRASE, "i hate this"),
        ("1. Cut dining by 20% (saves about HKD 31 a month).\n2. Move HKD 4", Check.CUT_OFF, "mid-sentence"),
        ("", Check.CUT_OFF, "empty"),
        ("Together these could save about HKD 2,400 a month.", Check.UNGROUNDED_AMOUNT, "HKD 2,400"),
        ("You could set aside 1,234 each month.", Check.UNGROUNDED_AMOUNT, "1,234"),
    ],
)
def test_ungrounded_advice_fails_with_the_check_that_caught_it(answer, failed, mentions):
    verdict = check(answer, PROMPT)
    assert verdict.check is failed, verdict
    assert mentions in verdict.detail


def test_a_total_must_add_up_from_the_amounts_the_answer_gave():
    steps = "1. Cut dining by 15% (saves about HKD 23 a month).\n2. Cut shopping by 15% (saves about HKD 23 a month).\n"
    assert check(steps + "Together about HKD 46 a month.", PROMPT).ok
    assert check(steps + "Together about HKD 60 a month.", PROMPT).check is Check.UNGROUNDED_AMOUNT


def test_without_a_profile_the_numbers_must_come_from_the_question():
    question = "I earn $4,000 a month and spend $3,800. How can I save more?"
    assert check("You have $200 left each month; saving 10% of income, $400, needs cuts.", question).ok
    verdict = check("Put $650 a month into a high-yield account.", question)
    assert verdict.check is Check.UNGROUNDED_AMOUNT
    assert check("Save more by cutting dining out.", "How do I save more?").ok  # no numbers, nothing to trace


@settings(max_examples=200, deadline=None)
@given(profiles.filter(lambda p: p.monthly_income > 0 or p.monthly_spend > 0))
def test_the_rule_based_baseline_always_passes(profile):
    prompt = format_prompt(profile)
    assert check(advise(prompt) or "", prompt).ok, (prompt, advise(prompt), check(advise(prompt) or "", prompt))


@given(st.text(max_size=400))
def test_any_text_gets_a_verdict_and_never_raises(text):
    check(text, PROMPT)
    check(text, text)


def test_the_guard_is_linear_in_the_answer():
    """Doubling an adversarial answer (many numbers, near-loops) about doubles the time."""

    def timed(n: int) -> float:
        answer = " ".join(f"HKD {i}, save {i}% over {i % 12 + 1} months, word{i % 7} word{i % 5}" for i in range(n))
        started = time.perf_counter()
        for _ in range(3):
            check(answer + ".", PROMPT)
            repeated_phrase(answer)
        return time.perf_counter() - started

    timed(200)  # warm
    small, large = timed(1_000), timed(4_000)
    assert large < small * 4 * 3, (small, large)  # 4x the input: well under 12x the time


def test_the_guard_raises_a_task_failure_that_carries_the_check_and_the_billed_tokens():
    with pytest.raises(TaskFailure) as caught:
        guard(UseCase.BUDGETING_ADVICE, PROMPT, "Save HKD 999 a month.", "model-a", "primary", (41, 96))
    assert caught.value.code == "UngroundedAmount" and caught.value.failure_class is FailureClass.TASK
    # What the fallback tells the client, read from the state machine's $.error.
    cause = {"errorType": "TaskFailure", "errorMessage": str(caught.value)}
    told = describe_error({"Error": "TaskFailure", "Cause": __import__("json").dumps(cause)})
    assert told == {
        "tier": "primary",
        "model": "model-a",
        "code": "UngroundedAmount",
        "failure_class": "task",
        "detail": "ungrounded_amount: HKD 999 cannot be traced to the person's figures",
        "input_tokens": 41,
        "output_tokens": 96,
    }
    guard(UseCase.GENERAL, PROMPT, "Save HKD 999 a month.", "model-a", "primary")  # other use cases: not checked


def test_a_timeout_is_described_without_detail():
    told = describe_error({"Error": "States.Timeout", "Cause": "Task timed out"})
    assert told is not None and told["code"] == "States.Timeout" and told["detail"] is None
    assert describe_error({}) is None and describe_error(None) is None


def test_figures_come_from_the_profile_in_the_prompt():
    figures = figures_for(PROMPT)
    assert figures.currency == "HKD" and figures.has_amount(8_070) and figures.has_amount(154 * 0.85)
    assert figures.has_percent(349) and not figures.has_percent(64)


def test_the_dashboard_shows_every_check_and_every_check_is_a_task_failure():
    from shared.failures import FailureClass, classify
    from shared.grounding import CODES
    from stacks.monitoring import GROUNDING_CHECKS

    assert set(GROUNDING_CHECKS) == {c.value for c in Check}
    assert all(classify(code) is FailureClass.TASK for code in CODES.values())
