"""Files the benchmark writes: per-case results CSV, per-model summary CSV, strategy JSON."""

from __future__ import annotations

import csv
import json
from pathlib import Path
from typing import Any

from benchmark.logic import CaseResult

CASE_COLUMNS = [
    "case_id",
    "use_case",
    "model",
    "latency_ms",
    "input_tokens",
    "output_tokens",
    "cost_usd",
    "jaccard",
    "recall",
    "quality",
    "error",
]


def write_outputs(out: Path, results: list[CaseResult], rows: list[dict[str, Any]], strategy: dict[str, Any]) -> None:
    out.mkdir(parents=True, exist_ok=True)
    with (out / "results.csv").open("w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=CASE_COLUMNS)
        writer.writeheader()
        for r in results:
            writer.writerow(
                {
                    "case_id": r.case_id,
                    "use_case": r.use_case,
                    "model": r.candidate.key,
                    "latency_ms": r.latency_ms,
                    "input_tokens": r.input_tokens,
                    "output_tokens": r.output_tokens,
                    "cost_usd": f"{r.cost_usd:.8f}",
                    "jaccard": r.jaccard,
                    "recall": r.recall,
                    "quality": round(r.quality, 4),
                    "error": r.error or "",
                }
            )
    with (out / "summary.csv").open("w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    (out / "strategy.json").write_text(json.dumps(strategy, indent=2) + "\n")
