"""The API's request and response contract; the OpenAPI document is generated from these."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from shared.request import PROMPT_PATTERN, USER_ID_PATTERN, Prompt
from shared.sentiment import MAX_TEXT_CHARS as SENTIMENT_MAX_CHARS
from shared.sentiment import SentimentResult
from shared.use_cases import Tier, UseCase


class GenerateRequest(BaseModel):
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {"prompt": "What is the difference between a Roth IRA and a traditional IRA?", "use_case": "general"}
            ]
        },
    )

    # The same field type the router and the fallback validate with (shared.request): nothing the
    # front accepts can be rejected further down the path.
    prompt: Prompt = Field(
        description="The question or instruction; for the sentiment use case, the text to classify "
        f"(at most {SENTIMENT_MAX_CHARS} characters). Its length limit is enforced with 413.",
        # The contract states what shared.request.check_prompt enforces (so fuzzers and clients
        # know); the validator keeps its clearer message than pydantic's pattern error.
        json_schema_extra={"minLength": 1, "pattern": PROMPT_PATTERN},
    )
    use_case: UseCase = Field(description="Which kind of task this is; it decides the model.")
    user_id: str | None = Field(
        default=None,
        pattern=USER_ID_PATTERN,
        description="Optional opaque user id; keeps a user in the same A/B variant.",
    )


class UsageReport(BaseModel):
    input_tokens: int = Field(ge=0, description="Input tokens the answering model reported.")
    output_tokens: int = Field(ge=0, description="Output tokens the answering model reported.")
    cost: float = Field(ge=0, description="Cost from the price table, rounded up to a millionth of the currency.")
    currency: str = Field(description="ISO 4217 code of the price table.")


class TierFailure(BaseModel):
    """Why the primary tier did not answer, when another tier did."""

    tier: Literal["primary"] = "primary"
    model: str | None = Field(default=None, description="The model that failed (null when it was never called).")
    code: str = Field(description="The failure code, e.g. UngroundedAmount, ThrottlingException, States.Timeout.")
    failure_class: Literal["model", "request", "task"] = Field(
        description="model: counted against the model's circuit; request: the input's fault; task: the model "
        "answered, but not an answer the platform stands behind (for advice: which grounding check failed)."
    )
    detail: str | None = Field(default=None, description="For task failures: which check failed, and on what.")
    input_tokens: int = Field(default=0, ge=0, description="What the rejected answer was billed (charged too).")
    output_tokens: int = Field(default=0, ge=0)


class GenerateResponse(BaseModel):
    response: str
    model_used: str
    use_case: UseCase
    tier: Tier
    attempt: int = Field(ge=1, le=3, description="1 primary, 2 fallback, 3 degraded: which link of the chain answered.")
    request_id: str
    sentiment: SentimentResult | None = Field(
        default=None,
        description="The label (and, from the fine-tuned classifier, its probabilities) for the sentiment "
        "use case; null for every other use case and for the static degraded answer.",
    )
    degraded_reason: str | None = Field(
        default=None,
        description="Set when the front itself served the static answer because the request path gave none it "
        "could stand behind: timeout, execution_failed, malformed_answer or budget_unavailable. Null otherwise.",
    )
    usage: UsageReport | None = Field(
        default=None,
        description="What this request used and cost, as charged to the client's budget (zero for static answers).",
    )
    primary_failure: TierFailure | None = Field(
        default=None,
        description="Set when the fallback answered after the primary failed: what it failed with. A rejected "
        "answer's tokens are included in usage.",
    )


class ErrorResponse(BaseModel):
    error: str = Field(description="A stable machine-readable code.")
    message: str = Field(description="What is wrong, for a person.")
    request_id: str | None = None


class BudgetRefusal(BaseModel):
    period: Literal["day", "month"]
    unit: Literal["tokens", "input_tokens", "output_tokens", "cost"]
    limit: float
    remaining: float = Field(description="What is left of the limit now (in the limit's unit).")
    requested: float = Field(description="This request's worst case: input on every tier plus each output limit.")
    resets_at: str = Field(description="When the period ends (UTC); the Retry-After header counts down to it.")
    currency: str | None = Field(default=None, description="For cost limits: the price table's currency.")


class BudgetExceededResponse(ErrorResponse):
    budget: BudgetRefusal


class BudgetCounter(BaseModel):
    period: Literal["day", "month"]
    unit: Literal["tokens", "input_tokens", "output_tokens", "cost"]
    limit: float
    used: float = Field(description="Settled usage in this region.")
    committed: float = Field(description="Settled usage plus open reservations, in every region.")
    remaining: float
    share: float = Field(description="committed / limit.")
    resets_at: str


class BudgetResponse(BaseModel):
    client: str
    currency: str | None = None
    alert_share: float | None = None
    counters: list[BudgetCounter] = Field(description="Empty when no budget applies.")


class CircuitStatus(BaseModel):
    state: Literal["CLOSED", "OPEN", "HALF_OPEN"]
    phase: Literal["closed", "open", "awaiting_probe", "probing"] = Field(
        description="open: cooling down; awaiting_probe: cooled down, a probe is due (health starts one, "
        "so a region without traffic still recovers); probing: a probe is in flight."
    )
    failures: int
    opened_at: str | None = None
    probe_after: str | None = None


class HealthResponse(BaseModel):
    status: Literal["ok", "degraded"]
    region: str
    circuits: dict[str, CircuitStatus]
    checks: dict[str, str]
    probes_started: list[str] = Field(
        default_factory=list, description="Models whose probe this call started (at most one per interval each)."
    )
