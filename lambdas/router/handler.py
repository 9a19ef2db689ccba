"""Router Lambda: picks the model for a use case, then calls it.

The circuit-breaker state machine invokes it twice per request:
``{"action": "select", ...}`` returns the variant, breaker settings and clock;
``{"action": "invoke", ...}`` calls the chosen provider and raises on failure, so the state
machine's Catch records the failure against the model's circuit.
"""

from __future__ import annotations

import time
from dataclasses import replace
from datetime import UTC, datetime
from functools import cache
from typing import Any, Literal

from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.typing import LambdaContext
from pydantic import BaseModel, ConfigDict, Field

from router.dal import (
    BedrockProvider,
    LambdaProvider,
    ModelRequest,
    StrategySource,
    lambda_targets_from_env,
    strategy_source_from_env,
)
from router.logic import select
from shared.bedrock import Completion, ModelCallError, guardrail_from_env
from shared.observability import emit, logger, metrics, tracer
from shared.pii import redact
from shared.sentiment import LABEL_INSTRUCTION, SentimentResult, describe, label_from_text
from shared.use_cases import UseCase

# Leave this much of the invocation for serialising the answer after the last retry.
SAFETY_MARGIN_S = 1.0


class SelectEvent(BaseModel):
    model_config = ConfigDict(extra="ignore")

    action: Literal["select"]
    request_id: str
    use_case: UseCase
    user_id: str | None = None


class Selection(BaseModel):
    model_config = ConfigDict(extra="ignore")

    variant: str
    provider: Literal["bedrock", "lambda"]
    model_id: str
    target: str | None = None
    max_tokens: int
    temperature: float
    top_p: float | None = None
    system_prompt: str | None = None


class InvokeEvent(BaseModel):
    model_config = ConfigDict(extra="ignore")

    action: Literal["invoke"]
    request_id: str
    use_case: UseCase
    prompt: str = Field(min_length=1)
    selection: Selection


def _now() -> datetime:
    return datetime.now(UTC)


@cache
def _strategy_source() -> StrategySource:
    return strategy_source_from_env()


@cache
def _bedrock() -> BedrockProvider:
    return BedrockProvider(guardrail=guardrail_from_env())


@cache
def _lambda_provider() -> LambdaProvider:
    return LambdaProvider(lambda_targets_from_env(), guardrail=guardrail_from_env())


def handle_select(event: SelectEvent) -> dict[str, Any]:
    strategy = _strategy_source().get()
    selection = select(strategy, event.use_case, user_id=event.user_id, request_id=event.request_id, now=_now())
    logger.info("model selected", extra={k: selection[k] for k in ("use_case", "variant", "model_id", "provider")})
    return selection


def handle_invoke(event: InvokeEvent, deadline: float) -> dict[str, Any]:
    selection = event.selection
    # The front already redacted; this second pass keeps the router safe whoever invokes it.
    request = ModelRequest(
        prompt=redact(event.prompt).text,
        system_prompt=selection.system_prompt,
        max_tokens=selection.max_tokens,
        temperature=selection.temperature,
        top_p=selection.top_p,
    )
    started = time.monotonic()
    try:
        if event.use_case is UseCase.SENTIMENT:
            completion, sentiment = _classify(selection, request, deadline)
        else:
            completion, sentiment = _complete(selection, request, deadline), None
    except ModelCallError as exc:
        logger.warning("primary model failed", extra={"model_id": selection.model_id, "code": exc.code})
        emit("PrimaryModelErrors", 1, model=selection.model_id)
        emit("ModelErrors", 1)  # undimensioned total: the AppConfig rollback alarm watches it
        raise
    latency_ms = int((time.monotonic() - started) * 1000)
    # Per-variant metrics are what the A/B comparison on the dashboard reads.
    emit("VariantInvocations", 1, use_case=str(event.use_case), variant=selection.variant)
    emit("VariantLatency", latency_ms, MetricUnit.Milliseconds, use_case=str(event.use_case), variant=selection.variant)
    emit("ModelLatency", latency_ms, MetricUnit.Milliseconds, model=selection.model_id)
    emit("InputTokens", completion.input_tokens, model=selection.model_id)
    emit("OutputTokens", completion.output_tokens, model=selection.model_id)
    return {
        "response": completion.text,
        "model_used": completion.model_id,
        "variant": selection.variant,
        "input_tokens": completion.input_tokens,
        "output_tokens": completion.output_tokens,
        "latency_ms": latency_ms,
        # Always present (null outside the sentiment use case): the state machine copies it by path.
        "sentiment": sentiment.model_dump() if sentiment else None,
    }


def _complete(selection: Selection, request: ModelRequest, deadline: float) -> Completion:
    if selection.provider == "bedrock":
        return _bedrock().complete(selection.model_id, request, deadline)
    return _lambda_provider().complete_target(selection.target or "", selection.model_id, request)


def _classify(selection: Selection, request: ModelRequest, deadline: float) -> tuple[Completion, SentimentResult]:
    """A sentiment label from the classifier adapter, or from a generative model told to give one."""
    if selection.provider == "lambda":
        result, version = _lambda_provider().classify_target(selection.target or "", selection.model_id, request.prompt)
        return Completion(describe(result), version, 0, 0, "end_turn"), result
    system_prompt = "\n\n".join(filter(None, (request.system_prompt, LABEL_INSTRUCTION)))
    completion = _bedrock().complete(selection.model_id, replace(request, system_prompt=system_prompt), deadline)
    label = label_from_text(completion.text)
    if label is None:
        # An answer the API cannot turn into a label is the model failing this task: the breaker
        # counts it and the fallback tier answers.
        raise ModelCallError(selection.model_id, "UnreadableLabel", f"answered {completion.text[:80]!r}")
    result = SentimentResult(label=label)
    return replace(completion, text=describe(result)), result


@logger.inject_lambda_context(correlation_id_path="request_id")
@tracer.capture_lambda_handler
@metrics.log_metrics
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    action = event.get("action")
    if action == "select":
        return handle_select(SelectEvent.model_validate(event))
    if action == "invoke":
        deadline = time.monotonic() + context.get_remaining_time_in_millis() / 1000 - SAFETY_MARGIN_S
        return handle_invoke(InvokeEvent.model_validate(event), deadline)
    raise ValueError(f"unknown router action {action!r}; expected 'select' or 'invoke'")
