"""Budgeting-advice adapter: LoRA on a seq2seq base (FLAN-T5-small class) or a causal instruct base.

SageMaker script mode: ``SM_CHANNEL_TRAIN`` holds ``train.jsonl`` and ``SM_CHANNEL_EVAL``
``eval.jsonl`` (from ``python -m training_jobs.data.generate``); the adapter goes to
``SM_MODEL_DIR``, reports to ``SM_OUTPUT_DATA_DIR``. Locally, ``--data-dir`` holds both files.

Defaults follow the base: seq2seq r=8, alpha=16, dropout 0.1 on T5's q/v; causal r=16, alpha=32,
dropout 0.05 on the attention projections, loaded in 8 bit when a GPU and bitsandbytes are there.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import re
import sys
import time
from collections import Counter
from pathlib import Path
from typing import Any

import torch

from training_jobs.common import plots
from training_jobs.common.errors import JobSetupError
from training_jobs.common.models import PRODUCTION_ADVISOR_BASE, resolve_base_model
from training_jobs.common.reports import (
    announce_gate_metric,
    log_to_mlflow,
    parameter_analysis,
    version_comparison,
    write_json,
)
from training_jobs.common.sagemaker_env import (
    add_path_arguments,
    add_run_arguments,
    check_optimisation,
    job_paths,
)
from training_jobs.export.onnx_export import export_serving_artifact

# Attention projection names by architecture family; the first family present in the model wins.
TARGET_MODULES = (("q", "v"), ("q_proj", "v_proj"), ("qkv_proj",), ("query", "value"))
STEP = re.compile(r"^\d\.\s.+saves about .+ a month", re.MULTILINE)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description="LoRA budgeting advisor (SageMaker script mode)")
    add_path_arguments(p)
    p.add_argument("--base-model", default=PRODUCTION_ADVISOR_BASE, help="Hub id or local directory")
    p.add_argument("--data-dir", type=Path, default=None, help="holds train.jsonl and eval.jsonl (channels win)")
    p.add_argument("--epochs", type=int, default=1)
    p.add_argument("--batch-size", type=int, default=8)
    p.add_argument("--learning-rate", type=float, default=3e-4)
    p.add_argument("--max-source-length", type=int, default=256)
    p.add_argument("--max-target-length", type=int, default=160)
    p.add_argument("--lora-r", type=int, default=None)
    p.add_argument("--lora-alpha", type=int, default=None)
    p.add_argument("--lora-dropout", type=float, default=None)
    p.add_argument("--max-train-pairs", type=int, default=None)
    p.add_argument("--max-eval-pairs", type=int, default=200)
    p.add_argument("--generate-samples", type=int, default=8, help="eval prompts answered by generation")
    p.add_argument("--max-new-tokens", type=int, default=96)
    p.add_argument(
        "--answer-format",
        choices=("plan", "text"),
        default="plan",
        help="plan: the model writes the steps and code renders their amounts (shared.budgeting)",
    )
    p.add_argument(
        "--served-eval-pairs",
        type=int,
        default=144,
        help="held-out prompts answered by the exported int8 artifact, rendered and checked by the grounding guard",
    )
    add_run_arguments(
        p,
        gate_metrics=[
            "served_grounded_rate",
            "served_well_formed_rate",
            "well_formed_rate",
            "grounded_rate",
            "token_f1",
        ],
    )
    args = p.parse_args(argv)
    check_optimisation(p, args)
    if args.gate_metric.startswith("served_") and (not args.export_onnx or args.served_eval_pairs < 1):
        p.error(f"--gate-metric {args.gate_metric} needs the served evaluation (--export-onnx, --served-eval-pairs)")
    return args


def read_pairs(path: Path, limit: int | None) -> list[dict[str, str]]:
    if not path.is_file():
        raise JobSetupError(f"{path} does not exist")
    pairs = []
    for number, line in enumerate(path.read_text().splitlines(), start=1):
        if not line.strip():
            continue
        try:
            pair = json.loads(line)
        except json.JSONDecodeError as exc:
            raise JobSetupError(f"{path.name} line {number} is not JSON: {exc}") from exc
        if not isinstance(pair.get("prompt"), str) or not isinstance(pair.get("target"), str):
            raise JobSetupError(f"{path.name} line {number} needs string fields 'prompt' and 'target'")
        pairs.append(pair)
        if limit is not None and len(pairs) >= limit:
            break
    if not pairs:
        raise JobSetupError(f"{path.name} holds no pairs")
    return pairs


def data_files(args: argparse.Namespace, channels: dict[str, Path]) -> tuple[Path, Path]:
    # One channel may hold both files (the pipeline sends a single "train" prefix).
    train_dir = channels.get("train") or args.data_dir
    eval_dir = channels.get("eval") or train_dir
    if train_dir is None or eval_dir is None:
        raise JobSetupError("no data: set SM_CHANNEL_TRAIN (and optionally SM_CHANNEL_EVAL), or pass --data-dir")
    return Path(train_dir) / "train.jsonl", Path(eval_dir) / "eval.jsonl"


def load_base(base: str, revision: str | None = None) -> tuple[Any, Any, bool]:
    from transformers import AutoConfig, AutoModelForCausalLM, AutoModelForSeq2SeqLM, AutoTokenizer

    config = AutoConfig.from_pretrained(base, revision=revision)
    seq2seq = bool(getattr(config, "is_encoder_decoder", False))
    kwargs: dict[str, Any] = {"dtype": torch.float32}
    if not seq2seq and torch.cuda.is_available() and importlib.util.find_spec("bitsandbytes"):
        from transformers import BitsAndBytesConfig

        kwargs = {"quantization_config": BitsAndBytesConfig(load_in_8bit=True), "device_map": "auto"}
    loader = AutoModelForSeq2SeqLM if seq2seq else AutoModelForCausalLM
    model = loader.from_pretrained(base, revision=revision, **kwargs)
    tokenizer = AutoTokenizer.from_pretrained(base, revision=revision)
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    return model, tokenizer, seq2seq


def lora_settings(args: argparse.Namespace, seq2seq: bool, model: Any) -> Any:
    from peft import LoraConfig, TaskType

    names = {name.rsplit(".", 1)[-1] for name, _ in model.named_modules()}
    targets = next((list(family) for family in TARGET_MODULES if set(family) <= names), None)
    if targets is None:
        raise JobSetupError("no known attention projections (q/v, q_proj/v_proj, qkv_proj) in this model")
    r = args.lora_r or (8 if seq2seq else 16)
    return LoraConfig(
        task_type=TaskType.SEQ_2_SEQ_LM if seq2seq else TaskType.CAUSAL_LM,
        r=r,
        lora_alpha=args.lora_alpha or 2 * r,
        lora_dropout=args.lora_dropout if args.lora_dropout is not None else (0.1 if seq2seq else 0.05),
        target_modules=targets,
    )


def causal_prompt_ids(tokenizer: Any, prompt: str) -> list[int]:
    """The prompt as the model expects it: its chat template when it has one (instruct models)."""
    if getattr(tokenizer, "chat_template", None):
        ids = tokenizer.apply_chat_template(
            [{"role": "user", "content": prompt}], add_generation_prompt=True, tokenize=True
        )
        ids = ids["input_ids"] if hasattr(ids, "keys") else ids
        return list(ids)
    return list(tokenizer(prompt + "\n", add_special_tokens=False).input_ids)


def encode(pairs: list[dict[str, str]], tokenizer: Any, seq2seq: bool, args: argparse.Namespace) -> dict[str, Any]:
    prompts = [p["prompt"] for p in pairs]
    targets = [p["target"] for p in pairs]
    if seq2seq:
        enc = tokenizer(prompts, max_length=args.max_source_length, truncation=True, padding=True, return_tensors="pt")
        labels = tokenizer(
            text_target=targets, max_length=args.max_target_length, truncation=True, padding=True, return_tensors="pt"
        ).input_ids
        labels[labels == tokenizer.pad_token_id] = -100
        return {**enc, "labels": labels}
    # Causal: the loss covers only the answer, never the prompt (or the padding).
    rows, label_rows = [], []
    for prompt, target in zip(prompts, targets, strict=True):
        source = causal_prompt_ids(tokenizer, prompt)[-args.max_source_length :]
        answer = tokenizer(target, add_special_tokens=False).input_ids[: args.max_target_length]
        answer = [*answer, tokenizer.eos_token_id]
        rows.append(source + answer)
        label_rows.append([-100] * len(source) + answer)
    width = max(len(r) for r in rows)
    input_ids = torch.full((len(rows), width), tokenizer.pad_token_id)
    labels = torch.full((len(rows), width), -100)
    mask = torch.zeros((len(rows), width), dtype=torch.long)
    for i, (row, lab) in enumerate(zip(rows, label_rows, strict=True)):
        input_ids[i, : len(row)] = torch.tensor(row)
        labels[i, : len(lab)] = torch.tensor(lab)
        mask[i, : len(row)] = 1
    return {"input_ids": input_ids, "attention_mask": mask, "labels": labels}


def chunks(pairs: list[dict[str, str]], size: int) -> list[list[dict[str, str]]]:
    return [pairs[i : i + size] for i in range(0, len(pairs), size)]


@torch.no_grad()
def eval_loss(
    model: Any,
    pairs: list[dict[str, str]],
    tokenizer: Any,
    seq2seq: bool,
    args: argparse.Namespace,
    device: torch.device,
) -> float:
    model.eval()
    total, count = 0.0, 0
    for chunk in chunks(pairs, args.batch_size):
        batch = {k: v.to(device) for k, v in encode(chunk, tokenizer, seq2seq, args).items()}
        total += float(model(**batch).loss) * len(chunk)
        count += len(chunk)
    return total / count


def token_f1(prediction: str, reference: str) -> float:
    pred, ref = Counter(prediction.lower().split()), Counter(reference.lower().split())
    overlap = sum((pred & ref).values())
    if overlap == 0:
        return 0.0
    precision, recall = overlap / sum(pred.values()), overlap / sum(ref.values())
    return 2 * precision * recall / (precision + recall)


def well_formed(text: str) -> bool:
    """Two or three numbered steps, each with a monthly saving: the shape the advice has."""
    return 2 <= len(STEP.findall(text)) <= 3


def judged(answer: str, pair: dict[str, str], answer_format: str, seen: str | None = None) -> dict[str, Any]:
    """One answer as the platform would judge it: the advice it gives (a plan rendered with the
    amounts of the profile the model saw, ``seen``, compacted or not), whether that is well-formed,
    and whether it passes the grounding guard against the person's full profile."""
    from shared.budgeting import PlanError, render_plan
    from shared.grounding import check

    if answer_format == "plan":
        try:
            advice = render_plan(seen or pair["prompt"], answer)
        except PlanError:
            return {"well_formed": False, "grounded": False, "exact": False, "overlap": 0.0}
    else:
        advice = answer
    chosen = {i.strip() for i in answer.split(";")}
    wanted = {i.strip() for i in pair["target"].split(";")}
    return {
        "well_formed": well_formed(advice),
        "grounded": well_formed(advice) and check(advice, pair["prompt"]).ok,
        "exact": answer.strip() == pair["target"].strip(),
        # The share of the rules' steps the model chose too: how close its choices are to theirs.
        "overlap": len(chosen & wanted) / len(wanted) if answer_format == "plan" else 0.0,
    }


@torch.no_grad()
def generate(
    model: Any,
    pairs: list[dict[str, str]],
    tokenizer: Any,
    seq2seq: bool,
    args: argparse.Namespace,
    device: torch.device,
) -> list[str]:
    model.eval()
    answers = []
    for pair in pairs:
        if seq2seq:
            inputs = tokenizer(
                pair["prompt"], return_tensors="pt", truncation=True, max_length=args.max_source_length
            ).to(device)
        else:
            ids = torch.tensor([causal_prompt_ids(tokenizer, pair["prompt"])[-args.max_source_length :]], device=device)
            inputs = {"input_ids": ids, "attention_mask": torch.ones_like(ids)}
        output = model.generate(
            **inputs, max_new_tokens=args.max_new_tokens, do_sample=False, pad_token_id=tokenizer.pad_token_id
        )
        new = output[0] if seq2seq else output[0, inputs["input_ids"].shape[1] :]
        answers.append(tokenizer.decode(new, skip_special_tokens=True).strip())
    return answers


def generation_metrics(answers: list[str], pairs: list[dict[str, str]], answer_format: str) -> dict[str, float]:
    verdicts = [judged(a, p, answer_format) for a, p in zip(answers, pairs, strict=True)]
    return {
        "token_f1": sum(token_f1(a, p["target"]) for a, p in zip(answers, pairs, strict=True)) / len(pairs),
        "well_formed_rate": sum(v["well_formed"] for v in verdicts) / len(verdicts),
        "grounded_rate": sum(v["grounded"] for v in verdicts) / len(verdicts),
        "exact_plan_rate": sum(v["exact"] for v in verdicts) / len(verdicts),
    }


def served_evaluation(serve_dir: Path, pairs: list[dict[str, str]], max_new_tokens: int) -> dict[str, Any]:
    """Held-out prompts through the exported int8 artifact and the serving handler's own steps
    (fit the window, generate, render, grounding guard): what the platform would serve."""
    from serving.artifacts import verify
    from serving.generator import Generator
    from serving.plans import decode

    generator = Generator(verify(serve_dir))
    rows = []
    started = time.perf_counter()
    for i, pair in enumerate(pairs, start=1):
        decoded = decode(generator, pair["prompt"], max_new_tokens)  # the serving handler's own decoding
        if decoded is None:
            rows.append({"fits": False, "well_formed": False, "grounded": False, "exact": False, "overlap": 0.0})
            continue
        prompt, answer = decoded
        rows.append({"fits": True, **judged(answer, pair, generator.answer_format, seen=prompt)})
        if i % 24 == 0 or i == len(pairs):
            print(f"[advisor] served evaluation {i}/{len(pairs)} ({time.perf_counter() - started:.0f} s)", flush=True)
    n = len(rows)
    return {
        "pairs": n,
        "fit_rate": sum(r["fits"] for r in rows) / n,
        "well_formed_rate": sum(r["well_formed"] for r in rows) / n,
        "grounded_rate": sum(r["grounded"] for r in rows) / n,
        "exact_plan_rate": sum(r["exact"] for r in rows) / n,
        "rule_step_overlap": sum(r["overlap"] for r in rows) / n,
    }


def served_report(serve_dir: Path, eval_file: Path, out: Path, args: argparse.Namespace) -> dict[str, Any]:
    """The served evaluation on every held-out prompt (not only the loss sample), with its plot."""
    held_out = read_pairs(eval_file, args.served_eval_pairs)
    served = served_evaluation(serve_dir, held_out, args.max_new_tokens)
    print(f"[advisor] served on held-out users: {json.dumps(served)}", flush=True)
    plots.bar_plot(
        {k: v for k, v in served.items() if k.endswith("_rate")},
        out / "served_evaluation.png",
        f"Advisor on {served['pairs']} held-out prompts (int8, rendered, grounding guard)",
    )
    return served


def train_loop(
    model: Any,
    train: list[dict[str, str]],
    tokenizer: Any,
    seq2seq: bool,
    args: argparse.Namespace,
    device: torch.device,
) -> tuple[list[dict[str, float]], float]:
    optimizer = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=args.learning_rate)
    total = len(chunks(train, args.batch_size)) * args.epochs
    history: list[dict[str, float]] = []
    step, seen, started = 0, 0, time.perf_counter()
    dtype = torch.bfloat16 if device.type == "cuda" and torch.cuda.is_bf16_supported() else None
    generator = torch.Generator().manual_seed(args.seed)
    for epoch in range(1, args.epochs + 1):
        model.train()
        order = torch.randperm(len(train), generator=generator).tolist()
        for chunk in chunks([train[i] for i in order], args.batch_size):
            batch = {k: v.to(device) for k, v in encode(chunk, tokenizer, seq2seq, args).items()}
            with torch.autocast(device.type, dtype=dtype, enabled=dtype is not None):
                loss = model(**batch).loss
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            step, seen = step + 1, seen + len(chunk)
            history.append({"step": step, "epoch": epoch, "loss": loss.item()})
            if step % 10 == 0 or step == total:
                rate = seen / (time.perf_counter() - started)
                print(
                    f"[advisor] epoch {epoch}/{args.epochs} step {step}/{total} loss {loss.item():.4f} "
                    f"({rate:.1f} pairs/s)",
                    flush=True,
                )
    return history, seen / (time.perf_counter() - started)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    try:
        paths = job_paths(args)
        train_file, eval_file = data_files(args, paths.channels)
        train = read_pairs(train_file, args.max_train_pairs)
        evaluation = read_pairs(eval_file, args.max_eval_pairs)
        base = resolve_base_model(args.base_model)
    except JobSetupError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    from peft import get_peft_model

    torch.manual_seed(args.seed)
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    model, tokenizer, seq2seq = load_base(base, args.base_model_revision)
    if not hasattr(model, "hf_device_map"):
        model = model.to(device)
    print(
        f"device {device}; {'seq2seq' if seq2seq else 'causal'} base; {len(train)} train / {len(evaluation)} eval",
        flush=True,
    )
    samples = evaluation[: args.generate_samples]
    before = {
        "eval_loss": eval_loss(model, evaluation, tokenizer, seq2seq, args, device),
        **generation_metrics(generate(model, samples, tokenizer, seq2seq, args, device), samples, args.answer_format),
    }
    try:
        model = get_peft_model(model, lora_settings(args, seq2seq, model))
    except JobSetupError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    params = parameter_analysis(model)
    print(f"trainable parameters {params['trainable']:,} of {params['total']:,} ({params['trainable_percent']}%)")
    started = time.perf_counter()
    history, throughput = train_loop(model, train, tokenizer, seq2seq, args, device)
    answers = generate(model, samples, tokenizer, seq2seq, args, device)
    after = {
        "eval_loss": eval_loss(model, evaluation, tokenizer, seq2seq, args, device),
        **generation_metrics(answers, samples, args.answer_format),
    }
    metrics = {
        **after,
        "train_seconds": round(time.perf_counter() - started, 2),
        "train_pairs_per_second": round(throughput, 3),
    }

    model.save_pretrained(paths.model_dir)
    tokenizer.save_pretrained(paths.model_dir)
    export_serving_artifact(args, paths.model_dir, args.max_source_length)
    out = paths.output_dir
    if args.export_onnx and args.served_eval_pairs > 0:
        served = served_report(paths.model_dir / "serve", eval_file, out, args)
        metrics.update({f"served_{k}": v for k, v in served.items()})
    with (out / "eval_samples.jsonl").open("w") as handle:
        for pair, answer in zip(samples, answers, strict=True):
            handle.write(
                json.dumps({"prompt": pair["prompt"], "reference": pair["target"], "generated": answer}) + "\n"
            )
    plots.loss_curve_plot(history, out / "loss_curve.png", "Advisor LoRA training loss")
    hyperparameters = {k: v for k, v in vars(args).items() if k not in ("model_dir", "output_dir")}
    report = {
        "task": "advisor",
        "base_model": args.base_model,
        "architecture": "seq2seq" if seq2seq else "causal",
        "device": str(device),
        "metrics": metrics,
        "baseline_metrics": before,
        "parameters": params,
        "lora": {
            "r": model.peft_config["default"].r,
            "alpha": model.peft_config["default"].lora_alpha,
            "dropout": model.peft_config["default"].lora_dropout,
            "target_modules": sorted(model.peft_config["default"].target_modules),
        },
        "hyperparameters": hyperparameters,
        "history": history[-200:],
    }
    write_json(out / "metrics.json", report)
    write_json(out / "parameters.json", params)
    write_json(
        out / "comparison.json",
        {"tuned": after, "untuned_base": before, "delta": {k: after[k] - before[k] for k in before}},
    )
    write_json(out / "version_comparison.json", version_comparison(metrics, args.previous_metrics))
    log_to_mlflow(args.mlflow_uri, "advisor-lora", hyperparameters, metrics, [out / "loss_curve.png"])
    print(json.dumps({"before": before, "after": after}), flush=True)
    announce_gate_metric(args.gate_metric, metrics)
    return 0


if __name__ == "__main__":
    sys.exit(main())
