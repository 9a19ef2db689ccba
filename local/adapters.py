"""The locally fine-tuned advisor adapter for ``make demo``: trained on first use, then cached.

    python -m local.adapters            # prints the serve/ directory, training it if needed

It runs the real pipeline on this machine: synthetic transactions, advisor pairs, the advisor
training job with LoRA on the offline causal base (SmolLM2-135M-Instruct, real weights), and the
export step that writes the int8 ONNX artifact. Progress is printed as it goes; later runs reuse
the cache (``$FINAI_MODEL_CACHE``, default ``~/.cache/finai-models``).
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

CACHE = Path(os.environ.get("FINAI_MODEL_CACHE", Path.home() / ".cache" / "finai-models")) / "advisor-demo"
BASE = "offline:smollm2-135m"


def ensure_advisor(cache: Path = CACHE, base: str = BASE, pairs: int = 96) -> Path:
    serve = cache / "model" / "serve"
    if (serve / "manifest.json").is_file():
        return serve
    from training_jobs.advisor import train
    from training_jobs.data.advisor_pairs import write_pairs
    from training_jobs.data.config import load_config
    from training_jobs.data.transactions import generate

    started = time.perf_counter()
    print(f"[adapters] first run: training the advisor adapter on {base} (a few minutes on 2 cores)", flush=True)
    config = load_config(str(Path(__file__).resolve().parent.parent / "training_jobs" / "configs" / "synthetic.yaml"))
    frame, _ = generate(config.model_copy(update={"users": 40, "months": 6}))
    counts = write_pairs(frame, config.advisor, config.seed, cache / "data", progress=True)
    print(f"[adapters] {counts['train']} training and {counts['eval']} evaluation pairs", flush=True)
    args = ["--base-model", base, "--data-dir", str(cache / "data"), "--model-dir", str(cache / "model")]
    args += ["--output-dir", str(cache / "output"), "--max-train-pairs", str(pairs), "--max-eval-pairs", "4"]
    args += ["--generate-samples", "1", "--max-new-tokens", "48", "--batch-size", "4", "--learning-rate", "1e-3"]
    if train.main(args) != 0 or not (serve / "manifest.json").is_file():
        raise SystemExit("advisor training failed; see the output above")
    print(f"[adapters] advisor ready in {time.perf_counter() - started:.0f} s: {serve}", flush=True)
    return serve


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Train (once) and locate the local advisor adapter")
    parser.add_argument("--cache", type=Path, default=CACHE)
    parser.add_argument("--base-model", default=BASE)
    args = parser.parse_args(argv)
    print(ensure_advisor(args.cache, args.base_model))
    return 0


if __name__ == "__main__":
    sys.exit(main())
