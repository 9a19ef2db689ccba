"""Scoring and model selection for the foundation-model benchmark (no I/O here).

Per case: quality = mean of token Jaccard similarity and recall of the reference's tokens.
Per (use case, model): mean quality, median latency and mean estimated cost, each normalised to
0..1 across the candidates of that use case (quality as is, latency and cost as best / value),
then weighted (default 50% quality, 30% latency, 20% cost). The best model per use case becomes
that use case's single variant in the strategy written for AppConfig.
"""

from __future__ import annotations

import copy
import re
import statistics
from dataclasses import dataclass
from typing import Any

from shared.strategy import parse_strategy

TOKEN = re.compile(r"[a-z0-9]+(?:[.,][0-9]+)*")
DEFAULT_WEIGHTS = {"quality": 0.5, "latency": 0.3, "cost": 0.2}
LAMBDA_USD_PER_GB_SECOND = 0.0000166667  # x86 on-demand duration price


@dataclass(frozen=True)
class Candidate:
    provider: str  # "bedrock" or "lambda"
    model_id: str
    target: str | None = None

    @property
    def key(self) -> str:
        return f"lambda:{self.target}" if self.provider == "lambda" else self.model_id


@dataclass(frozen=True)
class CaseResult:
    case_id: str
    use_case: str
    candidate: Candidate
    answer: str
    latency_ms: float
    input_tokens: int
    output_tokens: int
    cost_usd: float
    jaccard: float
    recall: float
    error: str | None = None

    @property
    def quality(self) -> float:
        return 0.0 if self.error else (self.jaccard + self.recall) / 2


def tokens(text: str) -> set[str]:
    return set(TOKEN.findall(text.lower()))


def jaccard(answer: str, reference: str) -> float:
    a, b = tokens(answer), tokens(reference)
    return len(a & b) / len(a | b) if a | b else 0.0


def recall(answer: str, reference: str) -> float:
    ref = tokens(reference)
    return len(tokens(answer) & ref) / len(ref) if ref else 0.0


def estimate_cost(
    candidate: Candidate,
    input_tokens: int,
    output_tokens: int,
    latency_ms: float,
    prices: dict[str, tuple[float, float]],
    lambda_memory_gb: float = 3.008,
) -> float:
    if candidate.provider == "lambda":
        return latency_ms / 1000 * lambda_memory_gb * LAMBDA_USD_PER_GB_SECOND
    price_in, price_out = prices.get(candidate.model_id, (0.0, 0.0))
    return (input_tokens * price_in + output_tokens * price_out) / 1000


def candidates_from(strategy: dict[str, Any]) -> list[Candidate]:
    """Every provider the strategy names, once. Endpoint variants are left out: their cost is
    instance-hours, not calls, so they are compared by their A/B metrics on the dashboard."""
    found: dict[str, Candidate] = {}
    for entry in strategy["use_cases"].values():
        for variant in entry["variants"]:
            if variant["provider"] == "sagemaker":
                continue
            candidate = Candidate(variant["provider"], variant["model_id"], variant.get("target"))
            found.setdefault(candidate.key, candidate)
    return list(found.values())


def summarise(results: list[CaseResult], weights: dict[str, float] | None = None) -> list[dict[str, Any]]:
    """One row per (use case, model) with raw and normalised measures and the weighted score."""
    weights = weights or DEFAULT_WEIGHTS
    if abs(sum(weights.values()) - 1.0) > 1e-6 or set(weights) != set(DEFAULT_WEIGHTS):
        raise ValueError(f"weights must be quality, latency and cost summing to 1, not {weights}")
    groups: dict[tuple[str, str], list[CaseResult]] = {}
    for result in results:
        groups.setdefault((result.use_case, result.candidate.key), []).append(result)
    rows: list[dict[str, Any]] = []
    for (use_case, key), items in sorted(groups.items()):
        ok = [r for r in items if not r.error]
        rows.append(
            {
                "use_case": use_case,
                "model": key,
                "cases": len(items),
                "errors": len(items) - len(ok),
                "quality": statistics.fmean(r.quality for r in items),
                "latency_ms": statistics.median(r.latency_ms for r in ok) if ok else float("inf"),
                "cost_usd": statistics.fmean(r.cost_usd for r in ok) if ok else float("inf"),
            }
        )
    for use_case in {row["use_case"] for row in rows}:
        peers = [row for row in rows if row["use_case"] == use_case]
        best_latency = min(row["latency_ms"] for row in peers)
        best_cost = min(row["cost_usd"] for row in peers)
        for row in peers:
            row["latency_score"] = _ratio(best_latency, row["latency_ms"])
            row["cost_score"] = _ratio(best_cost, row["cost_usd"])
            row["score"] = round(
                weights["quality"] * row["quality"]
                + weights["latency"] * row["latency_score"]
                + weights["cost"] * row["cost_score"],
                6,
            )
    return rows


def _ratio(best: float, value: float) -> float:
    if value == float("inf"):
        return 0.0
    if value <= 0:
        return 1.0
    return best / value if best > 0 else 0.0


def winners(rows: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """The best row per use case (ties: higher quality, then the model key, for determinism)."""
    best: dict[str, dict[str, Any]] = {}
    for row in rows:
        if row["errors"] == row["cases"]:
            continue
        current = best.get(row["use_case"])
        if current is None or (row["score"], row["quality"], row["model"]) > (
            current["score"],
            current["quality"],
            current["model"],
        ):
            best[row["use_case"]] = row
    return best


def strategy_with_winners(
    strategy: dict[str, Any], chosen: dict[str, dict[str, Any]], candidates: list[Candidate], version: str
) -> dict[str, Any]:
    """The strategy with each benchmarked use case served by its winner (one variant, weight 100).

    System prompts, token limits and temperatures are kept from the variant the use case had.
    """
    by_key = {c.key: c for c in candidates}
    updated = copy.deepcopy(strategy)
    updated["version"] = version[:64]
    for use_case, row in chosen.items():
        entry = updated["use_cases"][use_case]
        template = dict(entry["variants"][0])
        candidate = by_key[row["model"]]
        provider_keys = ("provider", "model_id", "target", "artifact_uri", "inference_component", "answer_format")
        variant = {k: v for k, v in template.items() if k not in provider_keys}
        variant.update({"name": "A", "provider": candidate.provider, "model_id": candidate.model_id, "weight": 100})
        if candidate.target:
            variant["target"] = candidate.target
        entry["variants"] = [variant]
    parse_strategy(updated)  # the schema AppConfig validates with: never write an invalid document
    return updated
