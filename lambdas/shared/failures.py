"""Which failures count against a model's circuit: one table, read by code, metrics and the README.

The circuit breaker exists to stop sending traffic to a model that cannot serve anyone. A failure
counts toward opening a circuit only when it says something about the model (or our access to
it), never when it says something about one request: otherwise any client could open the circuit
that every other client shares, with a handful of crafted prompts (resilience4j calls these
recorded versus ignored exceptions).

- ``model``: throttling, 5xx, timeouts, access and availability errors, empty or broken answers.
  Counted; the next tier answers.
- ``request``: the request itself is invalid for this model (Bedrock's ValidationException about
  the input, an event our own validation rejects). Not counted; the next tier answers, and a
  probe that fails this way proves nothing, so the probe slot is released.
- ``task``: the model answered, but not in the form the task needs (a sentiment answer with no
  single label). The prompt decides this as much as the model does, so it is not counted in the
  circuit either; it is counted in the ``PathFailures`` metric by model, where an operator sees a
  model that keeps failing a task for everyone.

An error code this table does not know counts as ``model``: an unexplained failure is treated as
the model's until someone reads it and says otherwise.
"""

from __future__ import annotations

import json
import re
from enum import StrEnum
from typing import Any


class FailureClass(StrEnum):
    MODEL = "model"
    REQUEST = "request"
    TASK = "task"


# Error code -> (class, why). Codes are Bedrock's and botocore's, and our own for what we detect.
CLASSIFICATION: dict[str, tuple[FailureClass, str]] = {
    "ThrottlingException": (FailureClass.MODEL, "the model's capacity or our quota, not the request"),
    "TooManyRequestsException": (FailureClass.MODEL, "capacity"),
    "ServiceQuotaExceededException": (FailureClass.MODEL, "our account's quota: no client can be served"),
    "ServiceUnavailableException": (FailureClass.MODEL, "the service is down"),
    "InternalServerException": (FailureClass.MODEL, "a 5xx inside Bedrock"),
    "ModelNotReadyException": (FailureClass.MODEL, "the model is not serving"),
    "ModelTimeoutException": (FailureClass.MODEL, "the model did not answer in time"),
    "ModelErrorException": (FailureClass.MODEL, "the model failed while answering"),
    "ModelStreamErrorException": (FailureClass.MODEL, "the model failed mid-stream"),
    "AccessDeniedException": (FailureClass.MODEL, "our access to the model: nobody can be served"),
    "ResourceNotFoundException": (FailureClass.MODEL, "the model or profile does not exist for us"),
    "ReadTimeoutError": (FailureClass.MODEL, "no answer within the client's read timeout"),
    "ConnectTimeoutError": (FailureClass.MODEL, "the endpoint could not be reached"),
    "EndpointConnectionError": (FailureClass.MODEL, "the endpoint could not be reached"),
    "EmptyResponse": (FailureClass.MODEL, "the model returned no text"),
    "TruncatedStream": (FailureClass.MODEL, "the stream ended without its end marker (messageStop, metadata)"),
    "FirstTokenTimeout": (FailureClass.MODEL, "no text within the stream's first-token timeout"),
    "StreamStalled": (FailureClass.MODEL, "the stream sent nothing within its idle timeout"),
    "StreamDeadline": (FailureClass.MODEL, "the answer did not finish within the stream's overall bound"),
    "BadResponse": (FailureClass.MODEL, "a serving function answered outside its contract"),
    "FunctionError": (FailureClass.MODEL, "a serving function raised"),
    "UnknownTarget": (FailureClass.MODEL, "the strategy names a serving function we do not have"),
    "NoLambdaProvider": (FailureClass.MODEL, "no serving function is configured"),
    "NoArtifact": (
        FailureClass.MODEL,
        "the serving function has no artifact to serve (none promoted, configured or baked)",
    ),
    "ArtifactError": (FailureClass.MODEL, "the promoted artifact fails its checksums or cannot be fetched"),
    # SageMaker's InvokeEndpoint (router.dal.SageMakerProvider).
    "ModelError": (FailureClass.MODEL, "the endpoint's container failed while answering (a 5xx of its own)"),
    "ValidationError": (FailureClass.MODEL, "the endpoint or inference component does not exist for us"),
    "ServiceUnavailable": (FailureClass.MODEL, "SageMaker runtime is down"),
    "InternalFailure": (FailureClass.MODEL, "a 5xx inside SageMaker"),
    "EndpointRejectedInput": (FailureClass.REQUEST, "the endpoint's container refused this input (400, 413, 422)"),
    "ValidationException": (FailureClass.REQUEST, "Bedrock refused this input (too long, malformed content)"),
    "InvalidRequest": (FailureClass.REQUEST, "the event failed the shared request model"),
    "UnreadableLabel": (FailureClass.TASK, "the answer names no single sentiment label"),
    # shared.grounding: budgeting advice a bank would not stand behind.
    "UngroundedAmount": (FailureClass.TASK, "an amount in the advice cannot be traced to the person's figures"),
    "UngroundedPercent": (FailureClass.TASK, "a percentage in the advice is not among the person's figures"),
    "UngroundedPeriod": (FailureClass.TASK, "a period in the advice is not one the figures speak of"),
    "RepeatedPhrase": (FailureClass.TASK, "the advice loops on a phrase"),
    "CutOffAnswer": (FailureClass.TASK, "the advice stops mid-sentence"),
    "MalformedPlan": (FailureClass.TASK, "the advisor's plan names a step the profile does not support"),
    # A serving function refused the input (its 400): the input, not the model, decides that.
    "InputRejected": (FailureClass.REQUEST, "the serving function refused this input"),
    "PromptTooLong": (FailureClass.REQUEST, "the prompt does not fit the model's window, even compacted"),
}

# A ValidationException that is about the model id or our configuration says nothing about the
# request: every request would fail the same way, so it counts against the model.
CONFIGURATION_PROBLEM = re.compile(
    r"model identifier|on-demand throughput|inference profile|model is not supported|not authorized|"
    r"access to the model|end of its life|Operation not allowed",
    re.IGNORECASE,
)


def classify(code: str, message: str = "") -> FailureClass:
    failure_class = CLASSIFICATION.get(code, (FailureClass.MODEL, ""))[0]
    if failure_class is FailureClass.REQUEST and CONFIGURATION_PROBLEM.search(message[:2_000]):
        return FailureClass.MODEL
    return failure_class


class ModelCallError(RuntimeError):
    """A model call failed; ``code`` is the service's error code (or ours), ``failure_class`` its class.

    Raise :func:`failure` rather than this class: the subclass's name is the error type Step
    Functions sees from a Lambda task, and the state machine's Catch rules select on it.
    """

    failure_class = FailureClass.MODEL

    def __init__(self, model_id: str, code: str, message: str) -> None:
        super().__init__(f"{model_id}: {code}: {message}")
        self.model_id = model_id
        self.code = code
        self.detail = message


class ModelFailure(ModelCallError):
    failure_class = FailureClass.MODEL


class RequestRejected(ModelCallError):
    failure_class = FailureClass.REQUEST


class TaskFailure(ModelCallError):
    failure_class = FailureClass.TASK


ERROR_TYPES: dict[FailureClass, type[ModelCallError]] = {
    FailureClass.MODEL: ModelFailure,
    FailureClass.REQUEST: RequestRejected,
    FailureClass.TASK: TaskFailure,
}
BILLED = re.compile(r"\[billed (\d+)\+(\d+) tokens\]")


def billed(message: str, input_tokens: int, output_tokens: int) -> str:
    """A failure message that carries what the rejected answer was billed, for the budget to charge."""
    return f"{message} [billed {input_tokens}+{output_tokens} tokens]"


def describe_error(error: dict[str, Any] | None, tier: str = "primary") -> dict[str, Any] | None:
    """What the client is told about a tier that failed, from the state machine's ``$.error``
    (``{"Error", "Cause"}``): code, class, a short detail, and the tokens its answer was billed."""
    if not error or not error.get("Error"):
        return None
    name, cause = str(error["Error"]), str(error.get("Cause") or "")
    message = cause
    if cause.startswith("{"):
        try:
            message = str(json.loads(cause).get("errorMessage") or "")
        except (ValueError, AttributeError):
            message = cause
    parts = message.split(": ", 2)  # ModelCallError: "<model_id>: <code>: <detail>"
    if name in {t.__name__ for t in ERROR_TYPES.values()} and len(parts) == 3:
        return _described(tier, parts[0], parts[1], parts[2], classify(parts[1], parts[2]))
    return _described(tier, None, name, "", FailureClass.MODEL)


def describe_failure(exc: ModelCallError, tier: str = "primary") -> dict[str, Any]:
    """:func:`describe_error` for a failure raised in this process (the stream path)."""
    return _described(tier, exc.model_id, exc.code, exc.detail, exc.failure_class)


def _described(tier: str, model: str | None, code: str, detail: str, failure_class: FailureClass) -> dict[str, Any]:
    tokens = BILLED.search(detail)
    detail = BILLED.sub("", detail).strip()
    return {
        "tier": tier,
        "model": model,
        "code": code,
        "failure_class": str(failure_class),
        # Only a task failure's detail (which check failed) is the client's business.
        "detail": detail[:200] if failure_class is FailureClass.TASK else None,
        "input_tokens": int(tokens.group(1)) if tokens else 0,
        "output_tokens": int(tokens.group(2)) if tokens else 0,
    }


# The Step Functions error names the breaker does not count (statemachines/circuit_breaker.asl.json).
NOT_COUNTED = tuple(ERROR_TYPES[c].__name__ for c in (FailureClass.REQUEST, FailureClass.TASK))


def failure(model_id: str, code: str, message: str) -> ModelCallError:
    """The exception for a failed call, of the class the table gives its code."""
    return ERROR_TYPES[classify(code, message)](model_id, code, message)
