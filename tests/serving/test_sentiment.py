"""The sentiment container handler: contract and input errors."""

import json

import pytest

from local.request_path import FakeContext
from sentiment import handler

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
