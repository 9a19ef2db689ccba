"""What every training job writes besides the adapter: metrics, parameter counts, comparisons."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import numpy as np

METRICS_SCHEMA: dict[str, Any] = {
    "type": "object",
    "required": ["task", "base_model", "metrics", "parameters", "hyperparameters"],
    "properties": {
        "task": {"enum": ["sentiment", "advisor"]},
        "base_model": {"type": "string"},
        "metrics": {"type": "object", "additionalProperties": {"type": ["number", "null"]}},
        "baseline_metrics": {"type": "object", "additionalProperties": {"type": ["number", "null"]}},
        "parameters": {
            "type": "object",
            "required": ["total", "trainable", "trainable_percent"],
            "properties": {
                "total": {"type": "integer", "minimum": 1},
                "trainable": {"type": "integer", "minimum": 1},
                "trainable_percent": {"type": "number", "exclusiveMinimum": 0, "maximum": 100},
            },
        },
        "hyperparameters": {"type": "object"},
        "history": {"type": "array"},
    },
}


def to_jsonable(value: Any) -> Any:  # noqa: PLR0911 - one return per kind of value reads best
    """NumPy and torch scalars, arrays and non-finite floats made safe for strict JSON."""
    if isinstance(value, dict):
        return {str(k): to_jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [to_jsonable(v) for v in value]
    if isinstance(value, np.ndarray):
        return to_jsonable(value.tolist())
    if isinstance(value, np.generic):
        return to_jsonable(value.item())
    if hasattr(value, "item") and callable(value.item) and getattr(value, "ndim", 1) == 0:
        return to_jsonable(value.item())
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, Path):
        return str(value)
    return value


def write_json(path: Path, value: Any) -> None:
    path.write_text(json.dumps(to_jsonable(value), indent=2, sort_keys=True, allow_nan=False) + "\n")


def parameter_analysis(model: Any) -> dict[str, Any]:
    total = sum(p.numel() for p in model.parameters())
    trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
    return {"total": int(total), "trainable": int(trainable), "trainable_percent": round(100 * trainable / total, 4)}


def version_comparison(current: dict[str, float], previous_path: Path | None) -> dict[str, Any]:
    """Each metric against the previous run's ``metrics.json`` (if one is given)."""
    if previous_path is None or not previous_path.exists():
        return {"previous": None, "note": "no previous run to compare with"}
    previous = json.loads(previous_path.read_text()).get("metrics", {})
    return {
        "previous": previous,
        "delta": {
            k: round(v - previous[k], 6) for k, v in current.items() if isinstance(previous.get(k), (int, float))
        },
    }


def announce_gate_metric(name: str, metrics: dict[str, Any]) -> float:
    """Print the evaluation-gate value where SageMaker's metric regex (``GATE_METRIC=...``) finds it."""
    if name not in metrics or not isinstance(metrics[name], (int, float)):
        raise KeyError(f"gate metric {name!r} is not among {sorted(metrics)}")
    value = float(metrics[name])
    print(f"GATE_METRIC={value:.6f} ({name})", flush=True)
    return value


def log_to_mlflow(
    tracking_uri: str | None, run_name: str, params: dict[str, Any], metrics: dict[str, float], artifacts: list[Path]
) -> str | None:
    """Log to MLflow when a tracking URI is configured; MLflow is an optional extra."""
    if not tracking_uri:
        return None
    import mlflow  # optional dependency: only needed when tracking is on

    mlflow.set_tracking_uri(tracking_uri)
    with mlflow.start_run(run_name=run_name) as run:
        mlflow.log_params({k: str(v) for k, v in params.items()})
        mlflow.log_metrics({k: float(v) for k, v in metrics.items() if isinstance(v, (int, float))})
        for artifact in artifacts:
            mlflow.log_artifact(str(artifact))
        return str(run.info.run_id)
