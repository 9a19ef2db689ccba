"""The grounding guard on the request path: a budgeting answer that fails a check of
:mod:`shared.grounding` becomes a task failure, counted by check, that carries what the answer was
billed. (The checks themselves live in ``shared.grounding``, free of Lambda dependencies, so the
training job's evaluation runs the very same ones.)"""

from __future__ import annotations

from shared.failures import ModelCallError, billed, failure
from shared.grounding import Verdict, check
from shared.observability import emit, logger
from shared.use_cases import UseCase


def rejection(verdict: Verdict, model_id: str, tier: str, tokens: tuple[int, int] = (0, 0)) -> ModelCallError:
    """The task failure for a verdict that failed, counted in the metrics."""
    emit("GroundingRejections", 1, check=str(verdict.check), tier=tier)
    emit("GroundingRejections", 1, check=str(verdict.check), model=model_id)
    logger.warning(
        "advice rejected by the grounding guard",
        extra={"tier": tier, "model_id": model_id, "check": str(verdict.check), "detail": verdict.detail},
    )
    return failure(model_id, verdict.code, billed(f"{verdict.check}: {verdict.detail}", *tokens))


def guard(
    use_case: UseCase, prompt: str, text: str, model_id: str, tier: str, tokens: tuple[int, int] = (0, 0)
) -> None:
    """Raise the task failure for advice that fails a check (budgeting advice only), after
    counting it; the failure carries what the answer was billed, so the budget still charges it."""
    if use_case is not UseCase.BUDGETING_ADVICE:
        return
    verdict = check(text, prompt)
    if not verdict.ok:
        raise rejection(verdict, model_id, tier, tokens)
