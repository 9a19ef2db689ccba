"""The sentiment contract every tier shares: reading a label from a generative model's answer."""

import pytest
from hypothesis import given
from hypothesis import strategies as st

from shared.sentiment import LABELS, SentimentResult, describe, from_classifier, label_from_text


@pytest.mark.parametrize(
    ("answer", "label"),
    [
        ("negative", "negative"),
        ("Positive.", "positive"),
        ("Sentiment: NEUTRAL", "neutral"),
        ("The sentiment is negative because of the profit warning.", "negative"),
        ("negative - clearly negative", "negative"),
        ("not positive, rather negative", None),  # two labels: ambiguous, never guessed
        ("I cannot classify this text.", None),
        ("_Negative_", "negative"),  # Markdown italics
        ("positively", None),  # a label must be a whole word
        ("negative2", None),
        ("", None),
    ],
)
def test_a_label_is_read_only_when_the_answer_names_exactly_one(answer, label):
    assert label_from_text(answer) == label


@given(st.sampled_from(LABELS), st.text(alphabet=st.characters(categories=["Zs", "P"]), max_size=5))
def test_a_bare_label_with_any_punctuation_or_spacing_reads_back(label, noise):
    assert label_from_text(f"{noise}{label.upper()}{noise}") == label


def test_classifier_results_keep_probabilities_and_say_when_truncated():
    result = from_classifier(
        {
            "label": "positive",
            "confidence": 0.8,
            "probabilities": {"negative": 0.1, "neutral": 0.1, "positive": 0.8},
            "truncated": True,
        }
    )
    assert result.confidence == 0.8 and result.truncated
    assert (
        describe(result) == "Sentiment: positive (confidence 0.80); only the start of the text fitted the classifier."
    )
    assert describe(SentimentResult(label="neutral")) == "Sentiment: neutral."
    with pytest.raises(ValueError):
        from_classifier({"label": "bullish", "confidence": 0.9, "probabilities": {}})
