"""What the front does with a valid request, independent of API Gateway's event format."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from api_front.dal import CircuitReader, ExecutionResult, Executor
from api_front.models import CircuitStatus, ErrorResponse, GenerateRequest, GenerateResponse, HealthResponse
from shared.observability import logger
from shared.sentiment import MAX_TEXT_CHARS as SENTIMENT_MAX_CHARS
from shared.use_cases import Tier, UseCase

# StartSyncExecution accepts at most 256 KB of input; the raw body is checked against a bound
# below that so the envelope (request id, use case) always fits.
MAX_BODY_BYTES = 200_000


class FrontSettings(BaseModel):
    """Environment of the front Lambda, validated at cold start."""

    model_config = ConfigDict(frozen=True, extra="ignore")

    state_machine_arn: str = Field(pattern=r"^arn:aws[a-z-]*:states:[a-z0-9-]+:\d{12}:stateMachine:.+$")
    circuit_table: str = Field(min_length=3)
    audit_table: str = Field(min_length=3)
    max_prompt_chars: int = Field(ge=1, le=60_000)
    execution_mode: Literal["sync", "poll"] = "sync"
    region: str = "unknown"

    @classmethod
    def from_env(cls, env: dict[str, str]) -> FrontSettings:
        return cls(
            state_machine_arn=env.get("STATE_MACHINE_ARN", ""),
            circuit_table=env.get("CIRCUIT_TABLE", ""),
            audit_table=env.get("AUDIT_TABLE", ""),
            max_prompt_chars=int(env.get("MAX_PROMPT_CHARS", "0")),
            execution_mode=env.get("EXECUTION_MODE", "sync"),
            region=env.get("AWS_REGION", "unknown"),
        )


@dataclass(frozen=True)
class Outcome:
    status_code: int
    body: dict[str, Any]
    tokens: tuple[int, int] = (0, 0)  # input, output: for the audit trail, not the response


def error(status_code: int, code: str, message: str, request_id: str | None) -> Outcome:
    return Outcome(status_code, ErrorResponse(error=code, message=message, request_id=request_id).model_dump())


def prompt_limit(use_case: UseCase, max_chars: int) -> int:
    """The longest prompt a use case takes: the sentiment classifier reads at most a short passage."""
    return min(max_chars, SENTIMENT_MAX_CHARS) if use_case is UseCase.SENTIMENT else max_chars


def check_prompt_size(request: GenerateRequest, max_chars: int, request_id: str) -> Outcome | None:
    limit = prompt_limit(request.use_case, max_chars)
    if len(request.prompt) > limit:
        scope = f"for the {request.use_case} use case " if limit < max_chars else ""
        return error(
            413,
            "prompt_too_large",
            f"prompt has {len(request.prompt)} characters; the limit {scope}is {limit}",
            request_id,
        )
    return None


def generate(request: GenerateRequest, request_id: str, executor: Executor) -> Outcome:
    """Run the circuit breaker and map its outcome to an HTTP status.

    Only a SUCCEEDED execution with a well-formed answer is a 200; anything else is a 5xx that
    says what happened, never a 200 with an empty answer.
    """
    payload = {
        "request_id": request_id,
        "prompt": request.prompt,
        "use_case": str(request.use_case),
        "user_id": request.user_id,
    }
    result: ExecutionResult = executor.run(request_id, payload)
    if result.status == "SUCCEEDED" and result.output is not None:
        try:
            answer = GenerateResponse.model_validate(result.output)
        except ValidationError as exc:
            logger.error("state machine answered with a malformed output", extra={"errors": exc.errors()})
            return error(502, "bad_model_output", "the request path returned a malformed answer", request_id)
        if request.use_case is UseCase.SENTIMENT and answer.tier is not Tier.DEGRADED and answer.sentiment is None:
            # Only the static answer may come without a label; a model tier without one is a fault.
            logger.error("a model tier answered the sentiment use case without a label", extra={"tier": answer.tier})
            return error(502, "bad_model_output", "the request path returned no sentiment label", request_id)
        tokens = (int(result.output.get("input_tokens") or 0), int(result.output.get("output_tokens") or 0))
        return Outcome(200, answer.model_dump(mode="json"), tokens)
    logger.error(
        "execution did not succeed", extra={"status": result.status, "error": result.error, "cause": result.cause}
    )
    if result.status == "TIMED_OUT":
        return error(504, "timeout", "the request path did not answer in time; please retry", request_id)
    return error(502, "execution_failed", f"the request path ended with status {result.status}", request_id)


def health(reader: CircuitReader, region: str) -> HealthResponse:
    checks: dict[str, str] = {}
    circuits: dict[str, CircuitStatus] = {}
    try:
        circuits = {name: CircuitStatus(**value) for name, value in reader.circuits().items()}
        checks["circuit_table"] = "ok"
    except Exception as exc:  # health must answer even when a dependency does not
        logger.warning("health check could not read circuits", extra={"error": str(exc)})
        checks["circuit_table"] = "unreachable"
    healthy = checks["circuit_table"] == "ok" and (not circuits or any(c.state != "OPEN" for c in circuits.values()))
    return HealthResponse(status="ok" if healthy else "degraded", region=region, circuits=circuits, checks=checks)
