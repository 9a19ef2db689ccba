"""Front Lambda behind API Gateway: validates requests and runs the circuit breaker."""

import os
import time
import uuid
from dataclasses import replace
from datetime import UTC, datetime
from functools import cache
from typing import Any

import boto3
from aws_lambda_powertools.event_handler import APIGatewayRestResolver, Response, content_types
from aws_lambda_powertools.event_handler.openapi.exceptions import RequestValidationError
from aws_lambda_powertools.logging import correlation_paths
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.typing import LambdaContext
from botocore.exceptions import BotoCoreError, ClientError

from api_front.audit import AuditRecord, AuditWriter, QueueAuditWriter, now_iso, prompt_digest
from api_front.dal import ClientDirectory, Executor, PollingExecutor, ProbeStarter, SyncExecutor, bounded_config
from api_front.logic import (
    MAX_BODY_BYTES,
    FrontSettings,
    Outcome,
    body_problem,
    budget_refused,
    budget_view,
    check_prompt_size,
    client_of,
    degraded,
    describe_errors,
    error,
    generate,
    health,
    tier_bounds,
    usage_report,
)
from api_front.models import (
    BudgetExceededResponse,
    BudgetResponse,
    ErrorResponse,
    GenerateRequest,
    GenerateResponse,
    HealthResponse,
)
from shared.budgets import BudgetExceeded, BudgetStore, Reservation, Usage
from shared.circuits import HEALTH_CLIENT_CONFIG, CircuitReader
from shared.observability import emit, logger, metrics, tracer
from shared.pii import redact
from shared.strategy import Strategy
from shared.strategy.source import StrategySource, strategy_source_from_env

app = APIGatewayRestResolver(enable_validation=True)
# The budget calls (reserve, at most RESERVE_ATTEMPTS times, and settle), each one bounded attempt:
# a budget table that does not answer in time gets the static answer (no model is called
# unaccounted), never a hung request. tests/infrastructure/test_timeout_budget.py counts them.
BUDGET_CLIENT_CONFIG = bounded_config(0.1, 0.3)


def _error_response(description: str) -> dict[str, Any]:
    return {"description": description, "content": {"application/json": {"schema": ErrorResponse.model_json_schema()}}}


ERROR_RESPONSES: dict[int, Any] = {
    400: _error_response("The request is malformed; the message says what is wrong."),
    403: _error_response("A valid API key (or SigV4 signature) is required; API Gateway answers, no Lambda runs."),
    413: _error_response("The prompt is longer than the configured limit, or the body than 200,000 bytes."),
    415: _error_response("The body must be sent as Content-Type: application/json."),
    429: {
        "description": "The client's token or cost budget cannot cover this request's worst case (error "
        "budget_exhausted, with the remaining budget and a Retry-After header counting down to the period's end; "
        "no model was called), or its usage-plan rate or quota is exhausted (rate_limited, quota_exceeded).",
        "content": {"application/json": {"schema": BudgetExceededResponse.model_json_schema()}},
        "headers": {"Retry-After": {"description": "Seconds until the exhausted budget period resets."}},
    },
    502: _error_response(
        "API Gateway could not get a response from the front function (the function itself never answers 502: "
        "when the request path gives no usable answer it serves the static answer with degraded_reason)."
    ),
    504: _error_response(
        "API Gateway's integration timeout passed; the timeout budget is built so that this does not happen."
    ),
}


# What this invocation's audit record will say; Lambda runs one invocation per process at a time,
# and Powertools clears its own request context inside resolve().
_AUDIT: dict[str, Any] = {}


@cache
def settings() -> FrontSettings:
    return FrontSettings.from_env(dict(os.environ))


@cache
def executor() -> Executor:
    s = settings()
    if s.execution_mode == "poll":
        return PollingExecutor(s.state_machine_arn)
    return SyncExecutor(s.state_machine_arn, read_timeout_s=s.execution_read_timeout_s)


@cache
def audit_writer() -> AuditWriter:
    return QueueAuditWriter(settings().audit_queue_url)


def _decisions(status: int, details: dict[str, Any]) -> dict[str, Any]:
    """The breaker decision and failure class, as far as the front can tell them."""
    tier, reason = details.get("tier"), details.get("degraded_reason")
    if status != 200:
        failure = {429: "budget", 500: "internal"}.get(status, "request")
        return {"breaker": "not_reached", "failure_class": failure}
    if reason:
        return {"breaker": "not_reached", "failure_class": reason}
    if tier == "primary":
        return {"breaker": "allowed"}
    # The state machine does not say whether the circuit was open or the primary failed.
    return {"breaker": "diverted"}


def record_audit(route: str, status: int, started: float, request_id: str) -> None:
    """Write the request's audit record; a failure is logged and counted, never returned to the caller."""
    details = dict(_AUDIT)
    record = AuditRecord(
        request_id=request_id,
        route=route,
        status=status,
        recorded_at=now_iso(),
        region=settings().region,
        latency_ms=int((time.monotonic() - started) * 1000),
        **{**details, **_decisions(status, details)},
    )
    try:
        audit_writer().write(record)
    except Exception:
        logger.exception("audit record could not be written", extra={"request_id": request_id})
        emit("AuditWriteFailures", 1)


@cache
def strategy_source() -> StrategySource:
    return strategy_source_from_env()


@cache
def budget_store() -> BudgetStore:
    return BudgetStore(settings().budget_table, boto3.client("dynamodb", config=BUDGET_CLIENT_CONFIG))


@cache
def circuit_reader() -> CircuitReader:
    return CircuitReader(settings().circuit_table)


@cache
def probe_starter() -> ProbeStarter:
    s = settings()
    return ProbeStarter(s.state_machine_arn, s.circuit_table, config=HEALTH_CLIENT_CONFIG)


def _now() -> datetime:
    return datetime.now(UTC)


def _request_id() -> str:
    # API Gateway's request id ties our logs to its access logs; direct invocations get a uuid.
    request_id = app.current_event.request_context.request_id if app.current_event else None
    return request_id or str(uuid.uuid4())


def _respond(outcome: Outcome) -> Response[Any]:
    return Response(
        status_code=outcome.status_code,
        content_type=content_types.APPLICATION_JSON,
        body=outcome.body,
        headers=outcome.headers or None,
    )


@cache
def client_directory() -> ClientDirectory:
    s = settings()
    return ClientDirectory(static=s.client_keys, parameter=s.client_keys_parameter)


def _client() -> str:
    event = app.current_event
    return client_of(dict(event.request_context.raw_event) if event else {}, settings().auth, client_directory())


@app.exception_handler(RequestValidationError)
def _invalid_request(exc: RequestValidationError) -> Response[Any]:
    errors = list(exc.errors())
    logger.info("invalid request", extra={"errors": [{k: e.get(k) for k in ("loc", "type")} for e in errors]})
    return _respond(error(400, "invalid_request", describe_errors(errors), _request_id()))


@app.post(
    "/v1/generate",
    summary="Answer a financial task",
    description="Routes the prompt to the model configured for the use case, behind a circuit breaker "
    "with a fallback model and static, compliant degradation.",
    responses={
        200: {
            "description": "An answer, from the tier that served it.",
            "content": {"application/json": {"model": GenerateResponse}},
        },
        **ERROR_RESPONSES,
    },
    tags=["generate"],
    security=[{"apiKey": []}],
)
@tracer.capture_method
def post_generate(body: GenerateRequest) -> Response[Any]:
    request_id = _request_id()
    _AUDIT.update(use_case=str(body.use_case))
    # Size first: redaction is linear, but nothing over the limit should cost even that.
    too_large = check_prompt_size(body, settings().max_prompt_chars, request_id)
    if too_large:
        return _respond(too_large)
    redaction = redact(body.prompt)
    client = _client()
    _AUDIT.update(redactions=redaction.counts, client=client, prompt_sha256=prompt_digest(redaction.text))
    request = body.model_copy(update={"prompt": redaction.text})
    started = time.monotonic()
    strategy = strategy_source().get()
    held = _reserve(strategy, request, client, request_id)
    if isinstance(held, Outcome):
        return _respond(held)
    # Personal data stops here: the state machine (and everything after it) sees the redacted prompt.
    if held is False:
        outcome = degraded(request, request_id, "budget_unavailable")
    else:
        outcome = generate(request, request_id, executor())
    usage = _settle(strategy, held, outcome)
    if outcome.status_code == 200:
        outcome = replace(outcome, body={**outcome.body, "usage": usage_report(strategy.budgets, usage)})
    latency_ms = (time.monotonic() - started) * 1000
    tier = outcome.body.get("tier", "error")
    model = outcome.body.get("model_used", "none")
    _AUDIT.update(
        tier=outcome.body.get("tier"),
        attempt=outcome.body.get("attempt"),
        model_used=outcome.body.get("model_used"),
        degraded_reason=outcome.body.get("degraded_reason"),
        variant=outcome.trace.get("variant"),
        guardrail=outcome.trace.get("guardrail"),
        input_tokens=outcome.tokens[0],
        output_tokens=outcome.tokens[1],
    )
    logger.info(
        "request answered",
        extra={
            "status": outcome.status_code,
            "tier": tier,
            "model_used": model,
            "use_case": str(body.use_case),
            "latency_ms": round(latency_ms),
        },
    )
    emit("Requests", 1, use_case=str(body.use_case), tier=tier)
    emit("Requests", 1, model=model, tier=tier)
    emit("Requests", 1, tier=tier)  # tier alone: the degraded-rate alarm and the tier widget sum these
    emit("Latency", latency_ms, MetricUnit.Milliseconds, tier=tier)
    return _respond(outcome)


def _reserve(
    strategy: Strategy, request: GenerateRequest, client: str, request_id: str
) -> Reservation | Outcome | bool:
    """The request's worst case held on the client's budget: a reservation, a 429 (an Outcome),
    True when no budget applies, or False when the budget table cannot be reached."""
    policy = strategy.budgets
    if policy is None:
        return True
    worst = policy.worst_case(request.prompt, tier_bounds(strategy, request.use_case, settings().fallback_model_id))
    try:
        return budget_store().reserve(client, request_id, worst, policy.limits_for(client), _now())
    except BudgetExceeded as exc:
        logger.info("budget refused", extra={"client": client, "period": exc.period.name, "unit": exc.unit})
        emit("BudgetRefusals", 1, client=client)
        return budget_refused(exc, request_id)
    except (BotoCoreError, ClientError) as exc:
        logger.error("budget table unavailable", extra={"error": str(exc)[:300]})
        emit("BudgetErrors", 1, operation="reserve")
        return False


def _settle(strategy: Strategy, reservation: Reservation | bool | None, outcome: Outcome) -> Usage:
    """Charge what the answering model reported; counted in metrics whether or not the settle lands."""
    model = str(outcome.body.get("model_used") or "none")
    policy = strategy.budgets
    tokens_in, tokens_out = outcome.tokens
    answered = policy.usage(model, tokens_in, tokens_out) if policy else Usage(tokens_in, tokens_out, 0)
    usage = answered
    # A primary answer the platform rejected (shared.grounding) was billed all the same: charge it,
    # at its own model's price. The reservation's worst case already covered every tier's tokens.
    failed = outcome.body.get("primary_failure") or {}
    rejected = (int(failed.get("input_tokens") or 0), int(failed.get("output_tokens") or 0))
    if any(rejected):
        rejected_model = str(failed.get("model") or "unknown")
        extra = policy.usage(rejected_model, *rejected) if policy else Usage(*rejected, 0)
        usage = usage + extra
        emit("ModelCost", extra.cost, MetricUnit.NoUnit, model=rejected_model)
        emit("RejectedAnswerTokens", sum(rejected), model=rejected_model)
    if policy is not None and usage.input_tokens + usage.output_tokens and not policy.priced(model):
        logger.warning("model missing from the price table; charged at the dearest price", extra={"model": model})
        emit("UnpricedModelCalls", 1, model=model)
    if isinstance(reservation, Reservation):
        try:
            budget_store().settle(reservation, usage)
        except (BotoCoreError, ClientError) as exc:
            # The reservation (the worst case) stays held until the sweeper releases it.
            logger.error("budget settle failed", extra={"error": str(exc)[:300]})
            emit("BudgetErrors", 1, operation="settle")
    client = str(_AUDIT.get("client") or "unknown")
    emit("ClientTokens", usage.input_tokens + usage.output_tokens, client=client)
    # In the price table's currency: CloudWatch has no currency unit.
    emit("ClientCost", usage.cost, MetricUnit.NoUnit, client=client)
    emit("ModelCost", answered.cost, MetricUnit.NoUnit, model=model)
    _AUDIT.update(cost_micros=usage.cost_micros, currency=policy.currency if policy else None)
    return usage


BUDGET_RESPONSES: dict[int, Any] = {
    200: {"description": "Each limit with what is used, committed and left in its period."},
    403: ERROR_RESPONSES[403],
    429: _error_response("The client's usage-plan rate or quota is exhausted (API Gateway answers)."),
}


@app.get(
    "/v1/budget",
    summary="The calling client's budgets and spend",
    responses=BUDGET_RESPONSES,
    tags=["budget"],
    security=[{"apiKey": []}],
)
def get_budget() -> BudgetResponse:
    client = _client()
    policy = strategy_source().get().budgets
    counters = budget_store().status(client, policy.limits_for(client), _now()) if policy else []
    return BudgetResponse.model_validate(budget_view(client, policy, counters))


@app.get(
    "/v1/health",
    summary="Regional health for Route 53",
    responses={200: {"description": "Health and circuit states."}},
    tags=["health"],
)
def get_health() -> HealthResponse:
    # The circuit metrics come from the circuit monitor, which runs every minute whether or not
    # Route 53 (only present with DNS failover) calls this route.
    return health(circuit_reader(), settings().region, probe_starter(), _now())


@logger.inject_lambda_context(correlation_id_path=correlation_paths.API_GATEWAY_REST)
@tracer.capture_lambda_handler
@metrics.log_metrics
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    started = time.monotonic()
    request_id = (event.get("requestContext") or {}).get("requestId") or str(uuid.uuid4())
    _AUDIT.clear()
    response = _resolve(event, context, request_id)
    route = str(event.get("resource") or event.get("path") or "")
    if route == "/v1/generate":
        record_audit(route, int(response["statusCode"]), started, request_id)
    return response


def _plain(status: int, code: str, message: str, request_id: str) -> dict[str, Any]:
    """An error answered before the resolver runs, in the same shape as every other error."""
    return {
        "statusCode": status,
        "headers": {"Content-Type": "application/json"},
        "body": ErrorResponse(error=code, message=message, request_id=request_id).model_dump_json(),
    }


def _resolve(event: dict[str, Any], context: LambdaContext, request_id: str) -> dict[str, Any]:
    body = event.get("body") or ""
    size = len(body.encode(errors="surrogatepass") if isinstance(body, str) else body)
    if size > MAX_BODY_BYTES:
        return _plain(
            413, "payload_too_large", f"request body has {size} bytes; the limit is {MAX_BODY_BYTES}", request_id
        )
    if str(event.get("httpMethod", "")).upper() == "POST":
        problem = body_problem(event, body)
        if problem is not None:
            return _plain(*problem, request_id)
        # A JSON media type in any spelling (Application/JSON; charset=utf-8) was accepted above;
        # the resolver's own check knows only the lower-case one, and answers 415 in another shape.
        headers = {k: v for k, v in (event.get("headers") or {}).items() if str(k).lower() != "content-type"}
        event = {**event, "headers": {**headers, "Content-Type": "application/json"}, "multiValueHeaders": None}
    try:
        return app.resolve(event, context)
    except Exception:  # a bug, never the client's fault: answered in the error shape, audited, alarmed
        logger.exception("front failed", extra={"request_id": request_id})
        emit("FrontErrors", 1)
        return _plain(500, "internal_error", "the request could not be processed; it has been logged", request_id)
