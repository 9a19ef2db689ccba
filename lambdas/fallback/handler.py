"""Fallback Lambda: a cheaper, reliable model with conservative parameters.

It answers when the primary model's circuit is open or the primary call failed. Answers are
tagged FALLBACK in logs and counted in the FALLBACK metric so operators see how often the
platform runs on its spare.
"""

from __future__ import annotations

import os
import time
from functools import cache
from typing import Any

import boto3
from aws_lambda_powertools.utilities.typing import LambdaContext
from botocore.config import Config
from pydantic import ValidationError

from shared.bedrock import ModelCallError, converse, failure, guardrail_from_env, guardrail_verdict
from shared.budgeting import advise
from shared.budgets import FALLBACK_MAX_TOKENS, FALLBACK_SENTIMENT_MAX_TOKENS
from shared.failures import describe_error
from shared.guard import guard
from shared.observability import emit, logger, metrics, tracer
from shared.pii import redact
from shared.request import PathRequest
from shared.sentiment import LABEL_INSTRUCTION, SentimentResult, describe, label_from_text
from shared.use_cases import UseCase

# Kept in shared.budgets, because the front reserves each request's worst case with them.
MAX_TOKENS = FALLBACK_MAX_TOKENS
SENTIMENT_MAX_TOKENS = FALLBACK_SENTIMENT_MAX_TOKENS  # one label word, with room for "Sentiment: negative."
TEMPERATURE = 0.5
SAFETY_MARGIN_S = 1.0
SYSTEM_PROMPT = (
    "You are a backup assistant for a regulated financial institution. Give a short, cautious, "
    "factual answer. Do not give individualised financial, tax or legal advice. If unsure, say so "
    "and suggest contacting the institution."
)


class FallbackEvent(PathRequest):
    """The fallback reads the same request the front validated (shared.request), and what the
    primary tier failed with (the state machine's ``$.error``; empty when it was not called)."""

    primary_error: dict[str, Any] | None = None


@cache
def _client() -> Any:
    return boto3.client("bedrock-runtime", config=Config(retries={"max_attempts": 1, "mode": "standard"}))


def fallback_model_id() -> str:
    model_id = os.environ.get("FALLBACK_MODEL_ID", "")
    if not model_id:
        raise RuntimeError("FALLBACK_MODEL_ID is not set")
    return model_id


BASELINE_MODEL = "rule-based-budgeting-baseline"


def answer(event: FallbackEvent, deadline: float, client: Any | None = None) -> dict[str, Any]:
    prompt = redact(event.prompt).text  # no personal or account data reaches a model
    if event.use_case is UseCase.BUDGETING_ADVICE:
        # A spending profile gets the deterministic rule-based advice: no model, no cost, no outage.
        advice = advise(prompt)
        if advice is not None:
            # The rules' advice passes by construction; every tier is checked all the same.
            guard(event.use_case, prompt, advice, BASELINE_MODEL, "fallback")
            logger.warning(
                "FALLBACK answer served",
                extra={
                    "tier": "fallback",
                    "marker": "FALLBACK",
                    "model_id": BASELINE_MODEL,
                    "use_case": event.use_case,
                },
            )
            emit("FALLBACK", 1, use_case=str(event.use_case))
            return {
                "response": advice,
                "model_used": BASELINE_MODEL,
                "input_tokens": 0,
                "output_tokens": 0,
                "sentiment": None,
                "guardrail": "not_applicable",  # rule-based text from our own templates
                "primary_failure": describe_error(event.primary_error),
            }
    sentiment = event.use_case is UseCase.SENTIMENT
    completion = converse(
        client or _client(),
        model_id=fallback_model_id(),
        prompt=prompt,
        system_prompt=LABEL_INSTRUCTION if sentiment else SYSTEM_PROMPT,
        max_tokens=SENTIMENT_MAX_TOKENS if sentiment else MAX_TOKENS,
        temperature=0.0 if sentiment else TEMPERATURE,
        deadline=deadline,
        guardrail=guardrail_from_env(),
    )
    result = None
    text = completion.text
    if sentiment:
        label = label_from_text(completion.text)
        if label is None:
            # Raising hands the request to the degradation tier, which says plainly that no label
            # was produced; a guessed label would be a wrong answer that looks right.
            raise failure(completion.model_id, "UnreadableLabel", f"answered {completion.text[:80]!r}")
        result = SentimentResult(label=label)
        text = describe(result)
    tokens = (completion.input_tokens, completion.output_tokens)
    guard(event.use_case, prompt, text, completion.model_id, "fallback", tokens)
    logger.warning(
        "FALLBACK answer served",
        extra={"tier": "fallback", "marker": "FALLBACK", "model_id": completion.model_id, "use_case": event.use_case},
    )
    emit("FALLBACK", 1, use_case=str(event.use_case))
    return {
        "response": text,
        "model_used": completion.model_id,
        "input_tokens": completion.input_tokens,
        "output_tokens": completion.output_tokens,
        "sentiment": result.model_dump() if result else None,
        "guardrail": guardrail_verdict(completion, guardrail_from_env()),
        "primary_failure": describe_error(event.primary_error),
    }


@logger.inject_lambda_context(correlation_id_path="request_id")
@tracer.capture_lambda_handler
@metrics.log_metrics
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    deadline = time.monotonic() + context.get_remaining_time_in_millis() / 1000 - SAFETY_MARGIN_S
    try:
        return answer(FallbackEvent.model_validate(event), deadline)
    except ValidationError:
        emit("PathFailures", 1, failure_class="request", tier="fallback")
        raise
    except ModelCallError as exc:
        # No circuit guards the fallback; the class still tells operators why it did not answer.
        emit("PathFailures", 1, failure_class=str(exc.failure_class), tier="fallback")
        raise
