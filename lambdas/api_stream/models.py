"""The stream route's event payloads, for the OpenAPI document (each event's ``data`` is one of these)."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, Field

from api_front.models import TierFailure, UsageReport
from shared.sentiment import SentimentResult


class MetaEvent(BaseModel):
    """event: meta. Sent once, when a tier has produced its first text."""

    tier: Literal["primary", "fallback", "degraded"]
    attempt: int = Field(description="1 primary, 2 fallback, 3 the static answer.")
    model: str
    variant: str | None = None
    use_case: str
    request_id: str


class DeltaEvent(BaseModel):
    """event: delta. The next piece of the answer's text."""

    text: str


class DoneEvent(BaseModel):
    """event: done. The answer is complete; nothing follows."""

    tier: Literal["primary", "fallback", "degraded"]
    attempt: int
    model_used: str
    variant: str | None = None
    use_case: str
    request_id: str
    input_tokens: int
    output_tokens: int
    stop_reason: str = Field(description="end_turn, max_tokens (the answer hit its token limit), static, ...")
    sentiment: SentimentResult | None = Field(default=None, description="As in the sync answer.")
    guardrail: str
    degraded_reason: str | None = Field(
        default=None, description="For the static answer: models_unavailable or budget_unavailable."
    )
    primary_failure: TierFailure | None = Field(
        default=None, description="As in the sync answer: why the primary did not answer, when another tier did."
    )
    usage: UsageReport


class ErrorEvent(BaseModel):
    """event: error. The answer stopped after text was sent: that text is incomplete. Nothing follows."""

    code: Literal["truncated", "stalled", "deadline", "model_error", "rejected"] = Field(
        description="rejected: budgeting advice failed the grounding guard after some of it was sent "
        "(the message says which check); the other codes say how the model's stream broke."
    )
    message: str
    failure_class: Literal["model", "request", "task"]
    tier: Literal["primary", "fallback"]
    model: str
    partial: bool = Field(description="True: some text was already sent, and it is not a whole answer.")
    request_id: str
    usage: UsageReport


EVENTS: dict[str, type[BaseModel]] = {"meta": MetaEvent, "delta": DeltaEvent, "done": DoneEvent, "error": ErrorEvent}


def event_schemas() -> dict[str, Any]:
    return {f"Stream{name.capitalize()}Event": model.model_json_schema() for name, model in EVENTS.items()}
