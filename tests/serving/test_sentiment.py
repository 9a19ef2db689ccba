"""The sentiment container handler: contract and input errors."""

import json

import pytest

from local.request_path import FakeContext
from sentiment import handler
from tests.serving.conftest import InProcessSentiment

CTX = FakeContext("sentiment", "us-east-1")


@pytest.fixture(autouse=True)
def sentiment(monkeypatch, bert_artifacts):
    monkeypatch.setenv("MODEL_DIR", str(bert_artifacts["int8"]))
    handler.classifier.cache_clear()
    yield
    handler.classifier.cache_clear()


def call(event):
    result = handler.lambda_handler(event, CTX)
    return result["statusCode"], json.loads(result["body"])


def test_each_text_gets_a_label_probabilities_and_confidence():
    texts = ["$TSLA deliveries beat, stock rallies", "Bank cuts dividend after losses", "Markets closed today"]
    status, body = call({"texts": texts})
    assert status == 200
    assert len(body["results"]) == 3
    for result in body["results"]:
        assert result["label"] in ("negative", "neutral", "positive")
        assert sum(result["probabilities"].values()) == pytest.approx(1.0, abs=1e-3)
        assert result["confidence"] == max(result["probabilities"].values())
    assert body["model_version"].startswith("sentiment-classifier-int8-")


def test_batch_order_is_preserved():
    single = [call({"texts": [t]})[1]["results"][0] for t in ("up big", "down bad")]
    status, body = call({"texts": ["up big", "down bad"]})
    assert status == 200
    assert [r["label"] for r in body["results"]] == [r["label"] for r in single]


@pytest.mark.parametrize(
    ("event", "message"),
    [
        ({"texts": []}, "texts: List should have at least 1 item"),
        ({"texts": ["a"] * 33}, "texts: List should have at most 32 items"),
        ({"texts": "just a string"}, "texts: Input should be a valid list"),
        ({"texts": ["ok", 3]}, "texts.1: Input should be a valid string"),
        ({"texts": ["ok", "  "]}, "text 1 is empty"),
        ({"text": ["ok"]}, "texts: Field required"),
        ({"body": '{"texts": ["a"],}'}, "not valid JSON"),
    ],
)
def test_bad_input_is_a_400_that_says_what_is_wrong(event, message):
    status, body = call(event)
    assert status == 400
    assert message in body["message"]


def test_over_the_token_limit_names_the_text_and_truncation_is_opt_in():
    long_text = "quarterly revenue grew while operating margins narrowed " * 12
    status, body = call({"texts": ["fine", long_text]})
    assert status == 400
    assert "text 1 is" in body["message"] and "the limit is 48" in body["message"]
    status, body = call({"texts": ["fine", long_text], "truncate": True})
    assert status == 200 and len(body["results"]) == 2
    assert [r["truncated"] for r in body["results"]] == [False, True]


def test_text_limits_agree_with_the_api_and_labels_with_training():
    from shared import sentiment as contract
    from training_jobs.data.sentiment import LABELS

    assert handler.MAX_TEXT_CHARS == contract.MAX_TEXT_CHARS
    assert contract.LABELS == LABELS


def test_router_lambda_provider_classifies_through_the_sentiment_handler():
    from router.dal import LambdaProvider

    client = InProcessSentiment()
    provider = LambdaProvider({"sentiment": "arn:aws:lambda:us-east-1:123456789012:function:sentiment"}, client)
    text = "Bank cuts dividend after losses"
    result, version = provider.classify_target("sentiment", "sentiment-lora", text)
    direct = call({"texts": [text]})[1]
    assert client.payloads == [{"texts": [text], "truncate": True}]
    assert result.label == direct["results"][0]["label"]
    assert result.probabilities == direct["results"][0]["probabilities"]
    assert result.confidence == direct["results"][0]["confidence"]
    assert version == direct["model_version"]
    assert result.truncated is False
    # Over the token window the provider still gets a label (never a client error counted against
    # the model's circuit), and the result says the text was cut.
    long_result, _ = provider.classify_target("sentiment", "sentiment-lora", "margins narrowed again " * 40)
    assert long_result.truncated is True


def test_labels_and_probabilities_do_not_depend_on_batch_partners(advisor_texts):
    """Each text alone and inside a batch of 32 of various lengths: the same label and the same
    probabilities within 1e-4 (the int8 graph's dynamic quantisation must not see its partners)."""
    from serving.artifacts import locate
    from serving.classifier import Classifier

    model = Classifier(locate())
    pool = [p["prompt"][: 40 + 37 * i % 200] for i, p in enumerate(advisor_texts[:32])]
    pool[:4] = ["I hate this. I hate this. I hate this.", "Great quarter!", "Bank cuts dividend", "ok"]
    batched = model.predict(pool, truncate=True)
    for text, in_batch in zip(pool, batched, strict=True):
        (alone,) = model.predict([text], truncate=True)
        assert alone.label == in_batch.label
        for label, p in alone.probabilities.items():
            assert abs(p - in_batch.probabilities[label]) <= 1e-4
