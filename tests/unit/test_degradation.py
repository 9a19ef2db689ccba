"""Degradation: static, compliant answers for every use case, whatever the input."""

import pytest

from degradation import handler as degradation
from local.request_path import FakeContext
from shared.static_answers import EQUAL_HOUSING, FDIC, NOT_ADVICE, OPT_OUT
from shared.use_cases import UseCase

CTX = FakeContext("degradation", "us-east-1")


@pytest.mark.parametrize(
    ("use_case", "required"),
    [
        (UseCase.GENERAL, [NOT_ADVICE]),
        (UseCase.PRODUCT_QUESTION, [FDIC, EQUAL_HOUSING, NOT_ADVICE]),
        (UseCase.ACCOUNT_INQUIRY, [FDIC]),
        (UseCase.COMPLIANCE, [NOT_ADVICE]),
        (UseCase.PERSONALIZED_OUTREACH, [OPT_OUT]),
        (UseCase.BUDGETING_ADVICE, [NOT_ADVICE]),
        (UseCase.SENTIMENT, [NOT_ADVICE]),
    ],
)
def test_each_use_case_has_its_disclaimers_and_contact(use_case, required, capsys):
    answer = degradation.lambda_handler({"use_case": use_case.value, "request_id": "r"}, CTX)
    for disclaimer in required:
        assert disclaimer in answer["response"]
        assert disclaimer in answer["disclaimers"]
    assert "For help, contact" in answer["response"]
    assert answer["model_used"] == "static-degraded-response"
    assert answer["sentiment"] is None  # a static answer never invents a label
    assert '"DEGRADED_SERVICE"' in capsys.readouterr().out


def test_degraded_sentiment_says_no_label_was_produced():
    answer = degradation.lambda_handler({"use_case": "sentiment", "request_id": "r"}, CTX)
    assert "no sentiment label was produced" in answer["response"]


def test_no_equal_housing_notice_where_no_lending_is_discussed():
    answer = degradation.lambda_handler({"use_case": "compliance", "request_id": "r"}, CTX)
    assert EQUAL_HOUSING not in answer["response"]


@pytest.mark.parametrize("event", [{}, {"use_case": "nonsense"}, {"use_case": None}, {"use_case": 7}])
def test_any_input_still_gets_the_general_answer(event):
    answer = degradation.lambda_handler(event, CTX)
    assert NOT_ADVICE in answer["response"]
    assert answer["use_case"] == "general"


def test_contact_details_come_from_the_environment(monkeypatch):
    monkeypatch.setenv("CONTACT_NAME", "Acme Bank")
    monkeypatch.setenv("CONTACT_PHONE", "1-800-555-0100")
    answer = degradation.lambda_handler({"use_case": "general"}, CTX)
    assert "contact Acme Bank at 1-800-555-0100" in answer["response"]
