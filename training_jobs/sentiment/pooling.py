"""How the classifier turns an encoder's token states into one vector: ``cls`` or ``mean``.

- ``cls`` (the default) is what ``AutoModelForSequenceClassification`` does: the first token
  through the checkpoint's pooler. Right for FinBERT, whose pooler and sentiment head were trained.
- ``mean`` averages the token states under the attention mask, then applies the same linear head.
  Right for sentence-embedding checkpoints such as all-MiniLM-L6-v2, which were trained with mean
  pooling and whose pooler was never trained: on the offline corpus a frozen MiniLM reads 0.70
  macro-F1 through a mean-pooled linear probe, and the CLS path trained with LoRA 0.64.

The choice is saved beside the adapter (``pooling.json``) so that export and serving rebuild
exactly the model that was trained; the ONNX graph carries the pooling, so serving code is the
same for both.
"""

from __future__ import annotations

import json
import types
from pathlib import Path
from typing import Any

import torch
from transformers.modeling_outputs import SequenceClassifierOutput

from training_jobs.common.errors import JobSetupError

POOLINGS = ("cls", "mean")
POOLING_FILE = "pooling.json"


def _mean_pooled_forward(
    self: Any,
    input_ids: torch.Tensor | None = None,
    attention_mask: torch.Tensor | None = None,
    token_type_ids: torch.Tensor | None = None,
    labels: torch.Tensor | None = None,
    **kwargs: Any,
) -> SequenceClassifierOutput:
    encoder = getattr(self, self.base_model_prefix)
    hidden = encoder(
        input_ids=input_ids, attention_mask=attention_mask, token_type_ids=token_type_ids
    ).last_hidden_state
    if attention_mask is None:
        attention_mask = torch.ones(hidden.shape[:2], dtype=hidden.dtype, device=hidden.device)
    mask = attention_mask.unsqueeze(-1).to(hidden.dtype)
    pooled = (hidden * mask).sum(dim=1) / mask.sum(dim=1).clamp(min=1e-9)
    return SequenceClassifierOutput(logits=self.classifier(self.dropout(pooled)))


def apply(model: Any, pooling: str) -> Any:
    """Set ``model``'s pooling in place (before LoRA wraps it) and return it."""
    if pooling not in POOLINGS:
        raise JobSetupError(f"pooling {pooling!r} is not one of {list(POOLINGS)}")
    if pooling == "mean":
        head = getattr(model, "classifier", None)
        if not isinstance(head, torch.nn.Linear) or not hasattr(model, "dropout"):
            raise JobSetupError(
                f"mean pooling needs a BERT-style classifier (a dropout and one linear head); "
                f"{type(model).__name__} has {type(head).__name__}: use --pooling cls"
            )
        # An instance attribute, not a subclass: PEFT, save_pretrained and the ONNX tracer all
        # keep working with the stock class, and only this model object pools differently.
        model.forward = types.MethodType(_mean_pooled_forward, model)
    model.config.finai_pooling = pooling
    return model


def save(model_dir: Path, pooling: str) -> None:
    (model_dir / POOLING_FILE).write_text(json.dumps({"pooling": pooling}) + "\n")


def load(model_dir: Path) -> str:
    """The pooling an adapter was trained with; ``cls`` for adapters that predate the choice."""
    path = model_dir / POOLING_FILE
    if not path.is_file():
        return "cls"
    pooling = str(json.loads(path.read_text()).get("pooling", "cls"))
    if pooling not in POOLINGS:
        raise JobSetupError(f"{path} names pooling {pooling!r}; expected one of {list(POOLINGS)}")
    return pooling
