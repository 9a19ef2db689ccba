"""The model-selection strategy: its document, its JSON Schema and a typed view of both.

The same schema file is the AppConfig validator (attached in CDK), the router's cold-start check
and the tests' contract, so the three can never disagree.
"""

from __future__ import annotations

import json
from functools import cache
from pathlib import Path
from typing import Any, Literal

import fastjsonschema
from pydantic import BaseModel, ConfigDict

from shared.budgets import BudgetPolicy
from shared.use_cases import UseCase

SCHEMA_PATH = Path(__file__).with_name("model_selection.schema.json")
DOCUMENT_PATH = Path(__file__).with_name("model_selection.json")


class StrategyError(ValueError):
    """The strategy document is not valid; the message says where."""


class Variant(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    name: str
    provider: Literal["bedrock", "lambda", "sagemaker"]
    model_id: str
    weight: int
    target: str | None = None
    artifact_uri: str | None = None
    inference_component: str | None = None
    answer_format: Literal["text", "plan"] = "text"
    max_tokens: int = 800
    temperature: float = 0.3
    top_p: float | None = None


class UseCaseStrategy(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    system_prompt: str
    variants: tuple[Variant, ...]


class BreakerSettings(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    failure_threshold: int
    cooldown_seconds: int


class Strategy(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    version: str
    breaker: BreakerSettings
    use_cases: dict[UseCase, UseCaseStrategy]
    # Absent: no client budgets (the answer still reports usage and cost, priced at zero).
    budgets: BudgetPolicy | None = None


@cache
def _validator() -> Any:
    return fastjsonschema.compile(json.loads(SCHEMA_PATH.read_text()))


def parse_strategy(document: dict[str, Any] | str | bytes) -> Strategy:
    """Validate a strategy document against the schema, then return its typed view."""
    if isinstance(document, (str, bytes)):
        try:
            document = json.loads(document)
        except json.JSONDecodeError as exc:
            raise StrategyError(f"strategy is not JSON: {exc}") from exc
    try:
        _validator()(document)
    except fastjsonschema.JsonSchemaException as exc:
        raise StrategyError(f"strategy violates its schema: {exc}") from exc
    if not isinstance(document, dict):  # the schema already requires an object; this narrows the type
        raise StrategyError("strategy must be a JSON object")
    for name, entry in document["use_cases"].items():
        if sum(v["weight"] for v in entry["variants"]) <= 0:
            raise StrategyError(f"strategy use case {name!r} has no variant with a positive weight")
    return Strategy.model_validate(document)


def load_default_strategy() -> Strategy:
    """The strategy shipped in the repo (the one CDK deploys as the first AppConfig version)."""
    return parse_strategy(DOCUMENT_PATH.read_text())
