"""Tiny, randomly initialised models: the real transformers/peft code paths in seconds."""

import os
from pathlib import Path

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")


@pytest.fixture(scope="session")
def tiny_bert(tmp_path_factory) -> Path:
    """A 2-layer BERT with the real MiniLM WordPiece tokenizer and random weights."""
    from training_jobs.common.tiny_models import build_bert

    return build_bert(tmp_path_factory.mktemp("tiny-bert"))


@pytest.fixture(scope="session")
def sentiment_csv(tmp_path_factory) -> Path:
    """A small labelled CSV drawn (stratified) from the offline corpus."""
    from training_jobs.data.sentiment import OFFLINE_CORPUS, cap_rows, load_labelled

    frame = cap_rows(load_labelled(OFFLINE_CORPUS), 300, seed=0)
    path = tmp_path_factory.mktemp("data") / "labelled.csv"
    frame.rename(columns={"label": "sentiment"}).to_csv(path, index=False)
    return path
