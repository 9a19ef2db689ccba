"""The sentiment use case through the API, the shipped ASL (moto) and the real handlers.

Every tier answers it: the primary (a Bedrock model asked for a label, or the classifier adapter
with probabilities), the fallback model, and the static answer that says no label was produced.
"""

import json
import os

import pytest

from local.request_path import local_request_path
from router.dal import StaticStrategySource
from shared.strategy import load_default_strategy, parse_strategy

STRATEGY = load_default_strategy()
PRIMARY = STRATEGY.use_cases["sentiment"].variants[0].model_id
FALLBACK = "us.amazon.nova-micro-v1:0"
TEXT = "Shares rallied after record profits and a dividend upgrade."


def classify(path, text=TEXT):
    return path.api("POST", "/v1/generate", json.dumps({"use_case": "sentiment", "prompt": text}))


@pytest.fixture
def path():
    with local_request_path() as request_path:
        yield request_path


def test_the_shipped_strategy_answers_sentiment_from_bedrock_with_a_label(path):
    status, body = classify(path)
    assert status == 200
    assert (body["tier"], body["model_used"]) == ("primary", PRIMARY)
    assert body["sentiment"] == {"label": "positive", "confidence": None, "probabilities": None, "truncated": False}
    assert body["response"] == "Sentiment: positive."


def test_the_fallback_model_labels_when_the_primary_fails(path):
    path.bedrock.fail(PRIMARY)
    status, body = classify(path, "Losses widened and the outlook was cut.")
    assert (status, body["tier"], body["model_used"]) == (200, "fallback", FALLBACK)
    assert body["sentiment"]["label"] == "negative"
    assert path.circuit(PRIMARY)["failures"] == 1


def test_with_every_model_down_the_answer_says_no_label_was_produced(path):
    path.bedrock.fail(PRIMARY)
    path.bedrock.fail(FALLBACK)
    status, body = classify(path)
    assert (status, body["tier"], body["sentiment"]) == (200, "degraded", None)
    assert "no sentiment label was produced" in body["response"]


def test_other_use_cases_carry_a_null_sentiment_through_the_state_machine(path):
    status, body = path.api("POST", "/v1/generate", json.dumps({"use_case": "general", "prompt": "What is APR?"}))
    assert (status, body["tier"], body["sentiment"]) == (200, "primary", None)


def test_the_classifier_adapter_serves_when_the_strategy_says_so():
    """Variant B (the sentiment Lambda) at weight 100: probabilities reach the caller."""
    document = json.loads(STRATEGY.model_dump_json(exclude_none=True))
    for variant in document["use_cases"]["sentiment"]["variants"]:
        variant["weight"] = 100 if variant["provider"] == "lambda" else 0
    result = {"label": "negative", "confidence": 0.88, "truncated": False}
    result["probabilities"] = {"negative": 0.88, "neutral": 0.08, "positive": 0.04}
    received = []

    def sentiment_function(event, context):
        received.append(event)
        return {"statusCode": 200, "body": json.dumps({"results": [result], "model_version": "sentiment-int8-abc"})}

    with local_request_path(strategy_source=StaticStrategySource(parse_strategy(document))) as path:
        os.environ["LAMBDA_PROVIDERS"] = json.dumps(
            {"sentiment": "arn:aws:lambda:us-east-1:123456789012:function:sentiment"}
        )
        path.lambdas.register("sentiment", sentiment_function)
        status, body = classify(path, "Profit warning issued")
    assert (status, body["tier"], body["model_used"]) == (200, "primary", "sentiment-int8-abc")
    assert body["sentiment"] == result
    assert received == [{"texts": ["Profit warning issued"], "truncate": True}]
    assert path.bedrock.calls == []
