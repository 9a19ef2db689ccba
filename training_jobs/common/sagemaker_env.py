"""The SageMaker script-mode contract, so one script runs in a training job and on a laptop.

Channels arrive as ``SM_CHANNEL_<NAME>`` directories, the model goes to ``SM_MODEL_DIR`` and
reports to ``SM_OUTPUT_DATA_DIR``; hyperparameters arrive as ``--key value`` arguments. Locally,
point the same variables at folders (or pass ``--model-dir`` / ``--output-dir``).
"""

from __future__ import annotations

import argparse
import os
from dataclasses import dataclass
from pathlib import Path

from training_jobs.common.errors import JobSetupError


@dataclass(frozen=True)
class JobPaths:
    model_dir: Path
    output_dir: Path
    channels: dict[str, Path]

    def channel(self, name: str, *, required: bool = True) -> Path | None:
        path = self.channels.get(name)
        if path is None and required:
            known = ", ".join(sorted(self.channels)) or "none"
            raise JobSetupError(f"channel {name!r} is missing (set SM_CHANNEL_{name.upper()}); channels given: {known}")
        if path is not None and not path.exists():
            raise JobSetupError(f"channel {name!r} points at {path}, which does not exist")
        return path


def add_path_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--model-dir", type=Path, default=os.environ.get("SM_MODEL_DIR"))
    parser.add_argument("--output-dir", type=Path, default=os.environ.get("SM_OUTPUT_DATA_DIR"))


def add_run_arguments(parser: argparse.ArgumentParser, *, gate_metrics: list[str]) -> None:
    """Arguments every training job takes: reporting, tracking, the gate metric and the seed."""
    parser.add_argument("--previous-metrics", type=Path, default=None, help="metrics.json of the run to compare with")
    parser.add_argument("--mlflow-uri", default=os.environ.get("MLFLOW_TRACKING_URI"))
    parser.add_argument(
        "--gate-metric",
        default=gate_metrics[0],
        choices=gate_metrics,
        help="metric the pipeline's evaluation gate reads",
    )
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument(
        "--base-model-revision",
        default=None,
        help="Hub commit to pin when --base-model is a Hub id (ignored for local directories)",
    )
    # SageMaker passes hyperparameters as "--name value", so a pipeline can only say
    # "--export-onnx false"; the flag forms (--export-onnx, --no-export-onnx) work as well.
    parser.add_argument(
        "--export-onnx",
        nargs="?",
        const=True,
        default=True,
        type=_flag,
        help="after training, merge the adapter and write the int8 ONNX serving artifact to <model-dir>/serve "
        "(false for a model served from a SageMaker endpoint, too large for a Lambda)",
    )
    parser.add_argument(
        "--no-export-onnx", dest="export_onnx", action="store_false", help="same as --export-onnx false"
    )


def _flag(value: str) -> bool:
    lowered = value.strip().lower()
    if lowered in ("true", "1", "yes"):
        return True
    if lowered in ("false", "0", "no"):
        return False
    raise argparse.ArgumentTypeError(f"expected true or false, not {value!r}")


def check_optimisation(parser: argparse.ArgumentParser, args: argparse.Namespace) -> None:
    if args.epochs < 1 or args.batch_size < 1 or not 0 < args.learning_rate < 1:
        parser.error("epochs and batch-size must be positive and learning-rate in (0, 1)")


def job_paths(args: argparse.Namespace, environ: dict[str, str] | None = None) -> JobPaths:
    env = dict(os.environ if environ is None else environ)
    if args.model_dir is None or args.output_dir is None:
        raise JobSetupError("set SM_MODEL_DIR and SM_OUTPUT_DATA_DIR (or pass --model-dir and --output-dir)")
    channels = {
        key.removeprefix("SM_CHANNEL_").lower(): Path(value)
        for key, value in env.items()
        if key.startswith("SM_CHANNEL_")
    }
    args.model_dir.mkdir(parents=True, exist_ok=True)
    args.output_dir.mkdir(parents=True, exist_ok=True)
    return JobPaths(args.model_dir, args.output_dir, channels)


def str2bool(value: str | bool) -> bool:
    """SageMaker passes every hyperparameter as a string."""
    if isinstance(value, bool):
        return value
    if value.lower() in ("true", "1", "yes"):
        return True
    if value.lower() in ("false", "0", "no"):
        return False
    raise argparse.ArgumentTypeError(f"expected true or false, got {value!r}")
