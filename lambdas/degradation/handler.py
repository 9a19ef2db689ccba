"""Graceful-degradation Lambda: a static, compliant answer that never fails.

It is the last tier of the circuit breaker. Whatever the input, it returns an answer; an unknown
use case gets the general answer. Every call counts in the DEGRADED_SERVICE metric.
"""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools.utilities.typing import LambdaContext

from shared.observability import emit, logger, metrics, tracer
from shared.static_answers import STATIC_MODEL, Contact, contact_from_env, static_answer
from shared.use_cases import UseCase

MODEL_USED = STATIC_MODEL


def degrade(event: dict[str, Any]) -> dict[str, Any]:
    raw = event.get("use_case") if isinstance(event, dict) else None
    try:
        use_case = UseCase(str(raw))
    except ValueError:
        use_case = UseCase.GENERAL
    text, disclaimers = static_answer(use_case, contact_from_env())
    # A static answer never carries a label: the sentiment use case says so in words instead.
    return {
        "response": text,
        "model_used": MODEL_USED,
        "use_case": str(use_case),
        "disclaimers": list(disclaimers),
        "sentiment": None,
    }


@logger.inject_lambda_context(correlation_id_path="request_id")
@tracer.capture_lambda_handler
@metrics.log_metrics
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    try:
        answer = degrade(event)
    except Exception:  # this tier must answer whatever happens
        logger.exception("degradation failed; returning the general answer")
        text, disclaimers = static_answer(UseCase.GENERAL, Contact("us", "our help line", "our website"))
        answer = {
            "response": text,
            "model_used": MODEL_USED,
            "use_case": "general",
            "disclaimers": list(disclaimers),
            "sentiment": None,
        }
    logger.warning("DEGRADED_SERVICE answer served", extra={"tier": "degraded", "use_case": answer["use_case"]})
    emit("DEGRADED_SERVICE", 1, use_case=answer["use_case"])
    return answer
