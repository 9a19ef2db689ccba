"""What the front does with a valid request, independent of API Gateway's event format."""

from __future__ import annotations

import json
import re
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from api_front.dal import PROBE_REQUEST_INTERVAL_S, ClientDirectory, ExecutionResult, Executor, ProbeStarter
from api_front.models import CircuitStatus, ErrorResponse, GenerateRequest, GenerateResponse, HealthResponse
from shared.budgets import (
    FALLBACK_MAX_TOKENS,
    FALLBACK_SENTIMENT_MAX_TOKENS,
    BudgetExceeded,
    BudgetPolicy,
    CounterStatus,
    TierBound,
    Usage,
    in_unit,
)
from shared.circuits import TIMESTAMP_FORMAT, CircuitReader, model_path_healthy, phase
from shared.observability import emit, logger
from shared.sentiment import MAX_TEXT_CHARS as SENTIMENT_MAX_CHARS
from shared.static_answers import STATIC_MODEL, contact_from_env, static_answer
from shared.strategy import Strategy
from shared.use_cases import Tier, UseCase

# StartSyncExecution accepts at most 256 KB of input; the raw body is checked against a bound
# below that so the envelope (request id, use case) always fits.
MAX_BODY_BYTES = 200_000


class FrontSettings(BaseModel):
    """Environment of the front Lambda, validated at cold start."""

    model_config = ConfigDict(frozen=True, extra="ignore")

    state_machine_arn: str = Field(pattern=r"^arn:aws[a-z-]*:states:[a-z0-9-]+:\d{12}:stateMachine:.+$")
    circuit_table: str = Field(min_length=3)
    audit_queue_url: str = Field(pattern=r"^https://sqs\.[a-z0-9-]+\.amazonaws\.com(\.cn)?/\d{12}/.+\.fifo$")
    max_prompt_chars: int = Field(ge=1, le=60_000)
    execution_mode: Literal["sync", "poll"] = "sync"
    # Longer than the state machine's own TimeoutSeconds, so a slow execution reports TIMED_OUT.
    execution_read_timeout_s: float = Field(default=22.5, gt=0, le=28)
    region: str = "unknown"
    budget_table: str = Field(min_length=3)
    fallback_model_id: str = Field(min_length=1)
    # API Gateway's key id -> client name: an SSM parameter the stack writes (deployed), or the
    # map itself (local platform, tests). With IAM auth every caller is "iam".
    client_keys: dict[str, str] | None = None
    client_keys_parameter: str | None = None
    auth: Literal["api_key", "iam"] = "api_key"

    @classmethod
    def from_env(cls, env: dict[str, str]) -> FrontSettings:
        return cls(
            state_machine_arn=env.get("STATE_MACHINE_ARN", ""),
            circuit_table=env.get("CIRCUIT_TABLE", ""),
            audit_queue_url=env.get("AUDIT_QUEUE_URL", ""),
            max_prompt_chars=int(env.get("MAX_PROMPT_CHARS", "0")),
            execution_mode=env.get("EXECUTION_MODE", "sync"),
            execution_read_timeout_s=float(env.get("EXECUTION_READ_TIMEOUT_S", "22.5")),
            region=env.get("AWS_REGION", "unknown"),
            budget_table=env.get("BUDGET_TABLE", ""),
            fallback_model_id=env.get("FALLBACK_MODEL_ID", ""),
            client_keys=dict(json.loads(env["API_CLIENT_KEYS"])) if env.get("API_CLIENT_KEYS") else None,
            client_keys_parameter=env.get("API_CLIENT_KEYS_PARAMETER") or None,
            auth=env.get("API_AUTH", "api_key"),
        )


def client_of(request_context: dict[str, Any], auth: str, directory: ClientDirectory) -> str:
    """Who is charged: the client whose API key API Gateway accepted, or "iam" for signed calls.

    API Gateway checked the key before the function runs, so an id missing from the map means
    the map is stale (a key added outside CDK); that client is charged under the default limits.
    """
    if auth == "iam":
        return "iam"
    key_id = str((request_context.get("identity") or {}).get("apiKeyId") or "")
    return directory.client(key_id)


def tier_bounds(strategy: Strategy, use_case: UseCase, fallback_model_id: str) -> tuple[TierBound, ...]:
    """What each tier may use for this use case: the dearest variant, then the fallback model.

    The degradation tier calls no model. The fallback's rule-based budgeting answer costs nothing,
    but whether it applies depends on the prompt, so the model call is reserved.
    """
    variants = strategy.use_cases[use_case].variants
    bedrock = tuple(v.model_id for v in variants if v.provider == "bedrock")
    primary = TierBound(max(v.max_tokens for v in variants), bedrock, free=not bedrock)
    limit = FALLBACK_SENTIMENT_MAX_TOKENS if use_case is UseCase.SENTIMENT else FALLBACK_MAX_TOKENS
    return (primary, TierBound(limit, (fallback_model_id,)))


def usage_report(policy: BudgetPolicy | None, usage: Usage) -> dict[str, Any]:
    return {
        "input_tokens": usage.input_tokens,
        "output_tokens": usage.output_tokens,
        "cost": usage.cost,
        "currency": policy.currency if policy else "USD",
    }


def budget_refused(exc: BudgetExceeded, request_id: str) -> Outcome:
    body = ErrorResponse(error="budget_exhausted", message=exc.message(), request_id=request_id).model_dump()
    return Outcome(429, {**body, "budget": exc.details()}, headers={"Retry-After": str(exc.retry_after_s)})


def budget_view(client: str, policy: BudgetPolicy | None, counters: list[CounterStatus]) -> dict[str, Any]:
    return {
        "client": client,
        "currency": policy.currency if policy else None,
        "alert_share": policy.alert_share if policy else None,
        "counters": [
            {
                "period": c.period.name,
                "unit": c.unit,
                "limit": in_unit(c.unit, c.limit),
                "used": in_unit(c.unit, c.used),
                "committed": in_unit(c.unit, c.committed + c.others),
                "remaining": in_unit(c.unit, c.remaining),
                "share": round(c.share, 6),
                "resets_at": c.period.resets_at.strftime("%Y-%m-%dT%H:%M:%SZ"),
            }
            for c in counters
        ],
    }


@dataclass(frozen=True)
class Outcome:
    status_code: int
    body: dict[str, Any]
    tokens: tuple[int, int] = (0, 0)  # input, output: for the audit trail and the budget
    headers: dict[str, str] = field(default_factory=dict)
    trace: dict[str, Any] = field(default_factory=dict)  # variant, guardrail: for the audit record only


def error(status_code: int, code: str, message: str, request_id: str | None) -> Outcome:
    return Outcome(status_code, ErrorResponse(error=code, message=message, request_id=request_id).model_dump())


JSON_CONTENT_TYPE = re.compile(r"^\s*application/(?:[\w.+-]+\+)?json\s*(?:;.*)?$", re.IGNORECASE)


def body_problem(event: dict[str, Any], body: str | bytes) -> tuple[int, str, str] | None:
    """Why a POST body cannot be read as the API's JSON (status, code, message), or None.

    Checked before the resolver, because some JSON that the standard parser rejects raises
    something other than a decode error inside it (integers of thousands of digits raise a
    ValueError, deep nesting a RecursionError), which would surface as a 500.
    """
    headers = {str(k).lower(): str(v) for k, v in (event.get("headers") or {}).items()}
    content_type = headers.get("content-type")
    if content_type is not None and not JSON_CONTENT_TYPE.match(content_type):
        return 415, "unsupported_media_type", f"send Content-Type: application/json (got {content_type[:60]!r})"
    try:
        json.loads(body or "null")
    except RecursionError:
        return 400, "invalid_request", "body is nested too deeply to be a request"
    except ValueError as exc:  # JSONDecodeError, and the parser's integer-size limit
        return 400, "invalid_request", f"body is not valid JSON: {str(exc)[:120]}"
    return None


def describe_errors(errors: list[dict[str, Any]]) -> str:
    """Pydantic's errors as one message that names each field and what is wrong with it."""
    parts = []
    for err in errors:
        loc = ".".join(str(p) for p in err.get("loc", ()) if p != "body") or "body"
        if err.get("type") == "json_invalid":
            parts.append("body is not valid JSON")
            continue
        message = str(err.get("msg", "is invalid")).removeprefix("Value error, ")
        if err.get("type") == "missing":
            message = "is required"
        elif err.get("type") == "enum" or loc == "use_case":
            message = f"must be one of {', '.join(u.value for u in UseCase)}"
        parts.append(f"{loc}: {message}")
    return "; ".join(parts) or "request body is invalid"


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
    """Run the circuit breaker and turn its outcome into the answer.

    Only a SUCCEEDED execution with a well-formed answer passes through. Anything else (a timeout,
    a failed execution, a malformed answer, a model tier without the sentiment label) is answered
    here with the static degraded answer, which says why: the client always gets an answer, and
    never an empty or malformed one presented as a success.
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
            return degraded(request, request_id, "malformed_answer")
        if request.use_case is UseCase.SENTIMENT and answer.tier is not Tier.DEGRADED and answer.sentiment is None:
            # Only the static answer may come without a label; a model tier without one is a fault.
            logger.error("a model tier answered the sentiment use case without a label", extra={"tier": answer.tier})
            return degraded(request, request_id, "malformed_answer")
        tokens = (int(result.output.get("input_tokens") or 0), int(result.output.get("output_tokens") or 0))
        trace = {k: result.output[k] for k in ("variant", "guardrail") if result.output.get(k) is not None}
        return Outcome(200, answer.model_dump(mode="json"), tokens, trace=trace)
    logger.error(
        "execution did not succeed", extra={"status": result.status, "error": result.error, "cause": result.cause}
    )
    return degraded(request, request_id, "timeout" if result.status == "TIMED_OUT" else "execution_failed")


def degraded(request: GenerateRequest, request_id: str, reason: str) -> Outcome:
    """The static answer, served by the front itself when the request path gave none in time."""
    emit("FrontDegraded", 1, reason=reason)
    text, _ = static_answer(request.use_case, contact_from_env())
    answer = GenerateResponse(
        response=text,
        model_used=STATIC_MODEL,
        use_case=request.use_case,
        tier=Tier.DEGRADED,
        attempt=3,
        request_id=request_id,
        sentiment=None,
        degraded_reason=reason,
    )
    return Outcome(200, answer.model_dump(mode="json"))


PROBE_PROMPT = "Reply with the single word OK."


def health(
    reader: CircuitReader, region: str, probes: ProbeStarter | None = None, now: datetime | None = None
) -> HealthResponse:
    """The region's health for Route 53, and a probe for each cooled-down circuit.

    Starting the probes here is what lets a region recover without traffic: once DNS has failed
    over, only Route 53's health checks still arrive, every 10 s.
    """
    current = (now or datetime.now(UTC)).astimezone(UTC).replace(microsecond=0)
    stamp = current.strftime(TIMESTAMP_FORMAT)
    checks: dict[str, str] = {}
    circuits: dict[str, CircuitStatus] = {}
    raw: dict[str, dict[str, Any]] = {}
    try:
        raw = reader.circuits()
        circuits = {
            name: CircuitStatus(
                state=value["state"],
                phase=phase(value["state"], value.get("probe_after"), stamp),
                failures=value["failures"],
                opened_at=value.get("opened_at"),
                probe_after=value.get("probe_after"),
            )
            for name, value in raw.items()
        }
        checks["circuit_table"] = "ok"
    except Exception as exc:  # health must answer even when a dependency does not
        logger.warning("health check could not read circuits", extra={"error": str(exc)})
        checks["circuit_table"] = "unreachable"
    started = _start_probes(probes, raw, circuits, current) if probes is not None else []
    healthy = checks["circuit_table"] == "ok" and model_path_healthy([c.state for c in circuits.values()])
    return HealthResponse(
        status="ok" if healthy else "degraded",
        region=region,
        circuits=circuits,
        checks=checks,
        probes_started=started,
    )


def _start_probes(
    probes: ProbeStarter, raw: dict[str, dict[str, Any]], circuits: dict[str, CircuitStatus], now: datetime
) -> list[str]:
    started: list[str] = []
    recent = (now - timedelta(seconds=PROBE_REQUEST_INTERVAL_S)).strftime(TIMESTAMP_FORMAT)
    for model_id, circuit in sorted(circuits.items()):
        if circuit.phase != "awaiting_probe":
            continue
        payload = {
            "request_id": f"probe-{uuid.uuid4().hex}",
            "prompt": PROBE_PROMPT,
            "use_case": str(UseCase.GENERAL),  # the router picks the use case that calls this model
            "user_id": None,
            "probe_model": model_id,
        }
        try:
            if probes.request(model_id, int(raw[model_id]["version"]), now.strftime(TIMESTAMP_FORMAT), recent, payload):
                started.append(model_id)
                emit("ProbesStarted", 1, model=model_id)
        except Exception as exc:  # a probe that cannot start now is asked for again on the next call
            logger.warning("probe could not be started", extra={"model_id": model_id, "error": str(exc)})
    return started
