"""``POST /v1/generate/stream``: the sync route's request, answered as server-sent events.

The request is checked exactly as on the sync path (body size, media type, the shared request
model, the prompt limit), redacted, and held against the client's budget before anything is
streamed; each of those refusals is the sync route's JSON error with its status. Then the
breaker (``shared.breaker``, the state machine's writes and decisions) picks the first tier,
and ``api_stream.logic`` streams. Each stream writes one audit record.

:func:`handle` takes plain HTTP (method, headers, body, API Gateway's request context), so the
Lambda Web Adapter server (``api_stream.server``) and the local platform serve the same code.
"""

from __future__ import annotations

import json
import os
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from functools import cache
from typing import Any, Literal

import boto3
from aws_lambda_powertools.metrics import MetricUnit
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from api_front.audit import AuditRecord, AuditWriter, QueueAuditWriter, now_iso, prompt_digest
from api_front.dal import ClientDirectory, bounded_config
from api_front.logic import (
    MAX_BODY_BYTES,
    Outcome,
    body_problem,
    budget_refused,
    check_prompt_size,
    client_of,
    describe_errors,
    error,
    tier_bounds,
    usage_report,
)
from api_front.models import GenerateRequest
from api_stream.dal import fallback_source, primary_source
from api_stream.logic import (
    MEDIA_TYPE,
    Event,
    Piece,
    StreamTimeouts,
    Summary,
    Tier,
    static_tier,
    stream_answer,
    verified,
)
from router.logic import select
from shared.bedrock import guardrail_from_env
from shared.breaker import Breaker, CircuitStore
from shared.budgets import BudgetExceeded, BudgetStore, Reservation, Usage
from shared.failures import FailureClass
from shared.observability import emit, logger
from shared.pii import redact
from shared.static_answers import contact_from_env, static_answer
from shared.strategy import Strategy
from shared.strategy.source import StrategySource, strategy_source_from_env
from shared.use_cases import UseCase

ROUTE = "/v1/generate/stream"
# Budget, circuit and audit calls: one bounded attempt each, as on the sync path.
STORE_CONFIG = bounded_config(0.1, 0.3)
CIRCUIT_CONFIG = bounded_config(0.2, 0.5)
# ConverseStream: a first byte must come inside the first-token timeout, which timed() enforces;
# botocore's read timeout is only the backstop for a connection that hangs outright.
BEDROCK_STREAM_CONFIG = Config(
    connect_timeout=1, read_timeout=30, retries={"total_max_attempts": 1, "mode": "standard"}
)


class StreamSettings(BaseModel):
    """Environment of the stream function, validated at cold start."""

    model_config = ConfigDict(frozen=True, extra="ignore")

    circuit_table: str = Field(min_length=3)
    audit_queue_url: str = Field(pattern=r"^https://sqs\.[a-z0-9-]+\.amazonaws\.com(\.cn)?/\d{12}/.+\.fifo$")
    max_prompt_chars: int = Field(ge=1, le=60_000)
    region: str = "unknown"
    budget_table: str = Field(min_length=3)
    fallback_model_id: str = Field(min_length=1)
    client_keys: dict[str, str] | None = None
    client_keys_parameter: str | None = None
    auth: Literal["api_key", "iam"] = "api_key"
    timeouts: StreamTimeouts = StreamTimeouts()

    @classmethod
    def from_env(cls, env: dict[str, str]) -> StreamSettings:
        return cls(
            circuit_table=env.get("CIRCUIT_TABLE", ""),
            audit_queue_url=env.get("AUDIT_QUEUE_URL", ""),
            max_prompt_chars=int(env.get("MAX_PROMPT_CHARS", "0")),
            region=env.get("AWS_REGION", "unknown"),
            budget_table=env.get("BUDGET_TABLE", ""),
            fallback_model_id=env.get("FALLBACK_MODEL_ID", ""),
            client_keys=dict(json.loads(env["API_CLIENT_KEYS"])) if env.get("API_CLIENT_KEYS") else None,
            client_keys_parameter=env.get("API_CLIENT_KEYS_PARAMETER") or None,
            auth=env.get("API_AUTH", "api_key"),
            timeouts=StreamTimeouts(
                first_token_s=float(env.get("STREAM_FIRST_TOKEN_TIMEOUT_S", "5")),
                idle_s=float(env.get("STREAM_IDLE_TIMEOUT_S", "10")),
                total_s=float(env.get("STREAM_MAX_S", "60")),
            ),
        )


@cache
def settings() -> StreamSettings:
    return StreamSettings.from_env(dict(os.environ))


@cache
def strategy_source() -> StrategySource:
    return strategy_source_from_env()


@cache
def budget_store() -> BudgetStore:
    return BudgetStore(settings().budget_table, boto3.client("dynamodb", config=STORE_CONFIG))


@cache
def circuit_store() -> CircuitStore:
    return CircuitStore(settings().circuit_table, boto3.client("dynamodb", config=CIRCUIT_CONFIG))


@cache
def audit_writer() -> AuditWriter:
    return QueueAuditWriter(settings().audit_queue_url)


@cache
def bedrock() -> Any:
    return boto3.client("bedrock-runtime", config=BEDROCK_STREAM_CONFIG)


@cache
def serving() -> Any:
    # InvokeWithResponseStream to the serving Lambdas; the same backstop as ConverseStream's.
    return boto3.client("lambda", config=BEDROCK_STREAM_CONFIG)


@cache
def client_directory() -> ClientDirectory:
    s = settings()
    return ClientDirectory(static=s.client_keys, parameter=s.client_keys_parameter)


def _now() -> datetime:
    return datetime.now(UTC)


@dataclass
class StreamResponse:
    status: int
    headers: dict[str, str]
    body: Iterator[bytes]
    events: list[Event] = field(default_factory=list)  # what was sent, for tests and the bench


def _json(outcome: Outcome) -> StreamResponse:
    headers = {"Content-Type": "application/json", **outcome.headers}
    return StreamResponse(outcome.status_code, headers, iter([json.dumps(outcome.body).encode()]))


def handle(
    method: str, headers: dict[str, str], body: bytes, request_context: dict[str, Any] | None = None
) -> StreamResponse:
    """Answer one request to the stream route. Nothing here raises: a bug is a JSON 500 before the
    stream starts, or an ``error`` event after it did."""
    context = request_context or {}
    request_id = str(context.get("requestId") or uuid.uuid4())
    started = time.monotonic()
    client: str | None = None
    try:
        prepared = _prepare(method, headers, body, context, request_id)
    except Exception:  # a bug, or the strategy unreadable: a JSON 500 before any event, audited
        logger.exception("stream front failed", extra={"request_id": request_id})
        emit("FrontErrors", 1)
        prepared = error(500, "internal_error", "the request could not be processed; it has been logged", request_id)
    if isinstance(prepared, Outcome):
        failure_class = {429: "budget", 500: "internal"}.get(prepared.status_code, "request")
        client = prepared.trace.get("client")
        record = AuditRecord(
            request_id=request_id,
            route=ROUTE,
            status=prepared.status_code,
            region=settings().region,
            client=client,
            breaker="not_reached",
            failure_class=failure_class,
        )
        _audit(record, started)
        return _json(prepared)
    headers_out = {"Content-Type": MEDIA_TYPE, "Cache-Control": "no-cache", "X-Request-Id": request_id}
    response = StreamResponse(200, headers_out, iter(()))
    response.body = _run(prepared, request_id, started, response.events)
    return response


@dataclass
class Prepared:
    """A request that may stream: redacted, its client known, its worst case held."""

    strategy: Strategy
    request: GenerateRequest
    held: Reservation | bool
    record: AuditRecord


def _prepare(
    method: str, headers: dict[str, str], body: bytes, context: dict[str, Any], request_id: str
) -> Prepared | Outcome:
    refused, request, client = _admit(method, headers, body, context, request_id)
    if refused is not None or request is None or client is None:
        return refused or error(400, "invalid_request", "request body is invalid", request_id)
    redaction = redact(request.prompt)
    # Personal data stops here: the models, the audit record and the logs see the redacted prompt.
    request = request.model_copy(update={"prompt": redaction.text})
    record = AuditRecord(
        request_id=request_id,
        route=ROUTE,
        status=200,
        region=settings().region,
        client=client,
        use_case=str(request.use_case),
        redactions=redaction.counts,
        prompt_sha256=prompt_digest(redaction.text),
    )
    strategy = strategy_source().get()
    held = _reserve(strategy, request, client, request_id)
    if isinstance(held, Outcome):
        return replace(held, trace={"client": client})
    return Prepared(strategy, request, held, record)


def _admit(
    method: str, headers: dict[str, str], body: bytes, context: dict[str, Any], request_id: str
) -> tuple[Outcome | None, GenerateRequest | None, str | None]:
    if method.upper() != "POST":
        return error(405, "method_not_allowed", "use POST", request_id), None, None
    if len(body) > MAX_BODY_BYTES:
        return (
            error(
                413,
                "payload_too_large",
                f"request body has {len(body)} bytes; the limit is {MAX_BODY_BYTES}",
                request_id,
            ),
            None,
            None,
        )
    text = body.decode("utf-8", errors="replace")
    problem = body_problem({"headers": headers}, text)
    if problem is not None:
        return error(*problem, request_id), None, None
    try:
        request = GenerateRequest.model_validate_json(text or "null")
    except ValidationError as exc:
        return error(400, "invalid_request", describe_errors([dict(e) for e in exc.errors()]), request_id), None, None
    too_large = check_prompt_size(request, settings().max_prompt_chars, request_id)
    if too_large is not None:
        return too_large, None, None
    client = client_of(context, settings().auth, client_directory())
    return None, request, client


def _reserve(
    strategy: Strategy, request: GenerateRequest, client: str, request_id: str
) -> Reservation | Outcome | bool:
    policy = strategy.budgets
    if policy is None:
        return True
    worst = policy.worst_case(request.prompt, tier_bounds(strategy, request.use_case, settings().fallback_model_id))
    try:
        return budget_store().reserve(client, request_id, worst, policy.limits_for(client), _now())
    except BudgetExceeded as exc:
        emit("BudgetRefusals", 1, client=client)
        return budget_refused(exc, request_id)
    except (BotoCoreError, ClientError) as exc:
        logger.error("budget table unavailable", extra={"error": str(exc)[:300]})
        emit("BudgetErrors", 1, operation="reserve")
        return False


def _run(prepared: Prepared, request_id: str, started: float, sent: list[Event]) -> Iterator[bytes]:
    """The stream itself; the audit record is written however it ends (a client that hangs up included)."""
    summary = Summary()
    try:
        for event in _events(prepared.strategy, prepared.request, request_id, prepared.held, summary):
            sent.append(event)
            yield event.encode()
    finally:
        _finish_record(prepared.record, summary)
        _audit(prepared.record, started)
        _metrics(prepared.request, summary)


def _events(
    strategy: Strategy, request: GenerateRequest, request_id: str, held: Reservation | bool, summary: Summary
) -> Iterator[Event]:
    s = settings()
    guardrail = guardrail_from_env()
    contact = contact_from_env()
    text, _ = static_answer(request.use_case, contact)
    tiers: list[Tier] = []
    breaker: Breaker | None = None
    if held is False:
        reason = "budget_unavailable"  # no model is called unaccounted
    else:
        reason = "models_unavailable"
        try:
            selection = select(strategy, request.use_case, user_id=request.user_id, request_id=request_id, now=_now())
        except Exception as exc:  # SelectModel's Catch: the fallback answers
            logger.error("model selection failed", extra={"error": str(exc)[:300]})
            selection = None
        if selection is not None:
            breaker = Breaker(circuit_store(), selection)
            admission = breaker.admit()
            if admission != "open":
                open_primary = checked(
                    request,
                    selection["model_id"],
                    "primary",
                    primary_source(
                        selection, request_id, request.prompt, request.use_case, bedrock(), guardrail, serving()
                    ),
                )
                tiers.append(Tier("primary", 1, selection["model_id"], selection["variant"], open_primary))
            else:
                emit("CircuitDiversions", 1, model=str(selection["model_id"]))
        model_id, open_fallback = fallback_source(
            request_id, request.prompt, request.use_case, bedrock(), s.fallback_model_id, guardrail
        )
        open_fallback = checked(request, model_id, "fallback", open_fallback)
        tiers.append(Tier("fallback", 2, model_id, "fallback", open_fallback))

    def on_result(tier: str, failure_class: FailureClass | None) -> None:
        if tier != "primary" or breaker is None:
            return
        if failure_class is None:
            breaker.succeeded()
        else:
            breaker.failed(failure_class)

    def finish(done: Summary) -> dict[str, Any]:
        usage = _settle(strategy, request, held, done)
        return {"usage": usage_report(strategy.budgets, usage)}

    yield from stream_answer(
        tiers,
        static_tier(text, reason, summary),
        request_id,
        str(request.use_case),
        s.timeouts,
        summary,
        on_result=on_result,
        finish=finish,
        guardrail="passed" if guardrail is not None else "not_configured",
    )


def checked(
    request: GenerateRequest, model_id: str, tier: str, open_tier: Callable[[], Iterator[Piece]]
) -> Callable[[], Iterator[Piece]]:
    """Budgeting advice goes through the grounding guard as it streams (logic.verified)."""
    if request.use_case is not UseCase.BUDGETING_ADVICE:
        return open_tier
    return lambda: verified(open_tier(), request.prompt, model_id, tier)


def _settle(strategy: Strategy, request: GenerateRequest, held: Reservation | bool, summary: Summary) -> Usage:
    """Charge what the answering tier used. A cut stream reports no usage: its tier's whole bound
    (input and output limit, at the dearest price) is charged, never less than it may have cost."""
    policy = strategy.budgets
    model = summary.model_used or "none"
    if policy is None:
        return Usage(summary.input_tokens, summary.output_tokens, 0)
    bounds = tier_bounds(strategy, request.use_case, settings().fallback_model_id)
    if summary.usage_known:
        usage = policy.usage(model, summary.input_tokens, summary.output_tokens)
    else:
        bound = bounds[0] if summary.tier == "primary" else bounds[-1]
        usage = policy.worst_case(request.prompt, (bound,))
    # Rejected answers were billed too: their reported tokens, or their tier's bound when the
    # stream was stopped before Bedrock reported any.
    for tier, rejected_model, tokens in summary.rejected:
        if tier == summary.tier and summary.outcome == "error":
            continue  # the answering tier's own rejection mid-stream: charged above, by its bound
        if tokens is not None:
            usage = usage + policy.usage(rejected_model, *tokens)
        else:
            usage = usage + policy.worst_case(request.prompt, (bounds[0] if tier == "primary" else bounds[-1],))
    summary.cost_micros, summary.currency = usage.cost_micros, policy.currency
    if isinstance(held, Reservation):
        try:
            budget_store().settle(held, usage)
        except (BotoCoreError, ClientError) as exc:
            logger.error("budget settle failed", extra={"error": str(exc)[:300]})
            emit("BudgetErrors", 1, operation="settle")
    return usage


def _finish_record(record: AuditRecord, summary: Summary) -> None:
    record.tier, record.model_used, record.variant = summary.tier, summary.model_used, summary.variant
    record.attempt = {"primary": 1, "fallback": 2, "degraded": 3}.get(summary.tier or "")
    record.input_tokens, record.output_tokens = summary.input_tokens, summary.output_tokens
    record.guardrail = summary.guardrail
    record.cost_micros, record.currency = summary.cost_micros, summary.currency
    record.degraded_reason = summary.degraded_reason
    record.first_token_ms = summary.first_token_ms
    record.stream_end = summary.outcome or "disconnected"
    record.failure_class = summary.failure_class
    if summary.tier == "primary":
        record.breaker = "allowed"
    elif summary.tier is not None:
        record.breaker = "diverted"
    else:
        record.breaker = "not_reached"


def _audit(record: AuditRecord, started: float) -> None:
    record.recorded_at = now_iso()
    record.latency_ms = int((time.monotonic() - started) * 1000)
    try:
        audit_writer().write(record)
    except Exception:
        logger.exception("audit record could not be written", extra={"request_id": record.request_id})
        emit("AuditWriteFailures", 1)


def _metrics(request: GenerateRequest, summary: Summary) -> None:
    tier = summary.tier or "none"
    emit("StreamOutcomes", 1, outcome=summary.outcome or "disconnected", tier=tier)
    emit("StreamOutcomes", 1, outcome=summary.outcome or "disconnected")
    if summary.first_token_ms is not None and summary.model_used:
        emit(
            "TimeToFirstToken",
            summary.first_token_ms,
            MetricUnit.Milliseconds,
            model=summary.model_used,
            variant=summary.variant or "none",
        )
        emit("TimeToFirstToken", summary.first_token_ms, MetricUnit.Milliseconds, tier=tier)
    emit("Requests", 1, tier=tier)
    emit("Requests", 1, use_case=str(request.use_case), tier=tier)
