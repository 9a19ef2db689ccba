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
from botocore.exceptions import BotoCoreError
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from router.dal import (
    BedrockProvider,
    LambdaProvider,
    ModelRequest,
    SageMakerProvider,
    StrategySource,
    lambda_targets_from_env,
    sagemaker_endpoints_from_env,
    strategy_source_from_env,
)
from router.logic import select, select_probe
from shared.bedrock import CLASSIFIED, Completion, ModelCallError, failure, guardrail_from_env, guardrail_verdict
from shared.failures import FailureClass, RequestRejected
from shared.guard import guard
from shared.observability import emit, logger, metrics, tracer
from shared.pii import redact
from shared.request import PathRequest, RequestId, UserId
from shared.sentiment import LABEL_INSTRUCTION, SentimentResult, describe, label_from_text
from shared.use_cases import UseCase

# Leave this much of the invocation for serialising the answer after the last retry.
SAFETY_MARGIN_S = 1.0


class SelectEvent(BaseModel):
    model_config = ConfigDict(extra="ignore")

    action: Literal["select"]
    request_id: RequestId
    use_case: UseCase
    user_id: UserId | None = None
    # Set by a probe execution (started by the health route): select the variant calling this model.
    probe_model: str | None = Field(default=None, max_length=256)


class Selection(BaseModel):
    model_config = ConfigDict(extra="ignore")

    variant: str
    provider: Literal["bedrock", "lambda", "sagemaker"]
    model_id: str
    target: str | None = None
    artifact_uri: str | None = None
    inference_component: str | None = None
    answer_format: Literal["text", "plan"] = "text"
    max_tokens: int
    temperature: float
    top_p: float | None = None
    system_prompt: str | None = None


class InvokeEvent(PathRequest):
    action: Literal["invoke"]
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


@cache
def _sagemaker_provider() -> SageMakerProvider:
    return SageMakerProvider(sagemaker_endpoints_from_env())


def handle_select(event: SelectEvent) -> dict[str, Any]:
    strategy = _strategy_source().get()
    if event.probe_model is not None:
        probe = select_probe(strategy, event.probe_model, now=_now())
        if probe is None:
            raise RequestRejected(event.probe_model, "InvalidRequest", "no variant of the strategy calls this model")
        logger.info("probe selected", extra={"model_id": probe["model_id"], "use_case": probe["use_case"]})
        return probe
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
    except BotoCoreError as exc:  # a timeout or connection error outside the Converse retry loop
        raise _counted(failure(selection.model_id, type(exc).__name__, str(exc)), selection.model_id) from exc
    except ModelCallError as exc:
        raise _counted(exc, selection.model_id) from None
    latency_ms = int((time.monotonic() - started) * 1000)
    # Per-variant metrics are what the A/B comparison on the dashboard reads.
    emit("VariantInvocations", 1, use_case=str(event.use_case), variant=selection.variant)
    emit("VariantLatency", latency_ms, MetricUnit.Milliseconds, use_case=str(event.use_case), variant=selection.variant)
    emit("ModelLatency", latency_ms, MetricUnit.Milliseconds, model=selection.model_id)
    emit("InputTokens", completion.input_tokens, model=selection.model_id)
    emit("OutputTokens", completion.output_tokens, model=selection.model_id)
    try:
        # Advice a bank would not stand behind is a task failure: the fallback answers instead.
        tokens = (completion.input_tokens, completion.output_tokens)
        guard(event.use_case, request.prompt, completion.text, selection.model_id, "primary", tokens)
    except ModelCallError as exc:
        raise _counted(exc, selection.model_id) from None
    return {
        "response": completion.text,
        "model_used": completion.model_id,
        "variant": selection.variant,
        "input_tokens": completion.input_tokens,
        "output_tokens": completion.output_tokens,
        "latency_ms": latency_ms,
        # Always present (null outside the sentiment use case): the state machine copies it by path.
        "sentiment": sentiment.model_dump() if sentiment else None,
        "guardrail": guardrail_verdict(completion, guardrail_from_env()),
    }


def _counted(exc: ModelCallError, model_id: str) -> ModelCallError:
    """Log and count a failed primary call by its class (shared.failures); return it to raise."""
    logger.warning(
        "primary model failed",
        extra={"model_id": model_id, "code": exc.code, "failure_class": str(exc.failure_class)},
    )
    emit("PathFailures", 1, failure_class=str(exc.failure_class), tier="primary")
    emit("PathFailures", 1, failure_class=str(exc.failure_class), model=model_id)
    if exc.failure_class is FailureClass.MODEL:
        # Only failures that count against the circuit count as model errors: the AppConfig
        # rollback alarm watches this total, and one client's prompts must not roll back a strategy.
        emit("PrimaryModelErrors", 1, model=model_id)
        emit("ModelErrors", 1)
    return exc


def _complete(selection: Selection, request: ModelRequest, deadline: float) -> Completion:
    if selection.provider == "bedrock":
        return _bedrock().complete(selection.model_id, request, deadline)
    if selection.provider == "sagemaker":
        return _sagemaker_provider().complete_target(
            selection.target or "",
            selection.model_id,
            request,
            selection.inference_component,
            selection.answer_format,
        )
    return _lambda_provider().complete_target(
        selection.target or "", selection.model_id, request, artifact_uri=selection.artifact_uri
    )


def _classify(selection: Selection, request: ModelRequest, deadline: float) -> tuple[Completion, SentimentResult]:
    """A sentiment label from the classifier adapter, or from a generative model (Bedrock or an
    endpoint) told to give one."""
    if selection.provider == "lambda":
        result, version = _lambda_provider().classify_target(
            selection.target or "", selection.model_id, request.prompt, artifact_uri=selection.artifact_uri
        )
        return Completion(describe(result), version, 0, 0, CLASSIFIED), result
    system_prompt = "\n\n".join(filter(None, (request.system_prompt, LABEL_INSTRUCTION)))
    # Bedrock or an endpoint's generative model, told to answer with a label.
    labelled = selection.model_copy(update={"answer_format": "text"})
    completion = _complete(labelled, replace(request, system_prompt=system_prompt), deadline)
    label = label_from_text(completion.text)
    if label is None:
        # An answer the API cannot turn into a label is the model failing this task: the breaker
        # counts it and the fallback tier answers.
        raise failure(selection.model_id, "UnreadableLabel", f"answered {completion.text[:80]!r}")
    result = SentimentResult(label=label)
    return replace(completion, text=describe(result)), result


@logger.inject_lambda_context(correlation_id_path="request_id")
@tracer.capture_lambda_handler
@metrics.log_metrics
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    action = event.get("action")
    try:
        if action == "select":
            return handle_select(SelectEvent.model_validate(event))
        if action == "invoke":
            deadline = time.monotonic() + context.get_remaining_time_in_millis() / 1000 - SAFETY_MARGIN_S
            return handle_invoke(InvokeEvent.model_validate(event), deadline)
    except ValidationError as exc:
        # The front validates with the same model, so this means someone else invoked us, or a
        # bug: either way it is not the model's failure, and the breaker must not count it.
        model_id = str((event.get("selection") or {}).get("model_id", "")) if isinstance(event, dict) else ""
        emit("PathFailures", 1, failure_class="request", tier="primary")
        raise RequestRejected(model_id, "InvalidRequest", _describe(exc)) from None
    raise ValueError(f"unknown router action {action!r}; expected 'select' or 'invoke'")


def _describe(exc: ValidationError) -> str:
    # Locations and messages only: the input may hold personal data and must not reach the logs.
    return "; ".join(f"{'.'.join(str(p) for p in e['loc'])}: {e['msg']}" for e in exc.errors(include_input=False))
