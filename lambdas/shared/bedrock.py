"""One Converse API code path for every Bedrock model, with bounded retries on throttling."""

from __future__ import annotations

import os
import random
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

from botocore.exceptions import ClientError

from shared.failures import ModelCallError, failure

__all__ = ["Completion", "GuardrailRef", "ModelCallError", "StreamEnd", "converse", "converse_stream", "failure"]

# Errors worth retrying: the request was fine, the service was busy. Anything else (access
# denied, validation, model not found) fails fast so the circuit breaker sees it at once.
RETRYABLE_CODES = frozenset(
    {
        "ThrottlingException",
        "TooManyRequestsException",
        "ServiceUnavailableException",
        "ModelNotReadyException",
        "InternalServerException",
    }
)


@dataclass(frozen=True)
class Completion:
    text: str
    model_id: str
    input_tokens: int
    output_tokens: int
    stop_reason: str


@dataclass(frozen=True)
class GuardrailRef:
    identifier: str
    version: str


def guardrail_from_env(env: dict[str, str] | None = None) -> GuardrailRef | None:
    """The guardrail CDK configured for this function, or None where none is (tests, local)."""
    env = dict(os.environ if env is None else env)
    if not env.get("GUARDRAIL_ID"):
        return None
    return GuardrailRef(env["GUARDRAIL_ID"], env.get("GUARDRAIL_VERSION", "DRAFT"))


GUARDRAIL_INTERVENED = "guardrail_intervened"  # Converse's stopReason when the guardrail acted
CLASSIFIED = "classified"  # our stop reason for a classifier adapter's label


def guardrail_verdict(completion: Completion, guardrail: GuardrailRef | None) -> str:
    """For the audit record: did the guardrail act on this answer?"""
    if completion.stop_reason == GUARDRAIL_INTERVENED:
        return "intervened"
    if completion.stop_reason == CLASSIFIED:
        return "not_applicable"  # a label from the classifier adapter, not generated text
    return "passed" if guardrail is not None else "not_configured"


def apply_output_guardrail(client: Any, guardrail: GuardrailRef | None, text: str) -> str:
    """Run a non-Bedrock answer (a serving Lambda's) through the guardrail, as Converse does for its own."""
    if guardrail is None:
        return text
    result = client.apply_guardrail(
        guardrailIdentifier=guardrail.identifier,
        guardrailVersion=guardrail.version,
        source="OUTPUT",
        content=[{"text": {"text": text}}],
    )
    if result.get("action") == "GUARDRAIL_INTERVENED":
        return "".join(output.get("text", "") for output in result.get("outputs", [])) or text
    return text


@dataclass(frozen=True)
class RetryPolicy:
    max_attempts: int = 4
    base_delay_s: float = 0.2
    max_delay_s: float = 2.0


def backoff_delay(attempt: int, policy: RetryPolicy, rng: random.Random) -> float:
    """Full-jitter exponential backoff (the AWS Architecture Blog's recommended variant)."""
    cap = min(policy.max_delay_s, policy.base_delay_s * (2**attempt))
    return rng.uniform(0, cap)


def converse(
    client: Any,
    *,
    model_id: str,
    prompt: str,
    system_prompt: str | None,
    max_tokens: int,
    temperature: float,
    top_p: float | None = None,
    deadline: float | None = None,
    policy: RetryPolicy = RetryPolicy(),
    clock: Callable[[], float] = time.monotonic,
    sleep: Callable[[float], None] = time.sleep,
    rng: random.Random | None = None,
    guardrail: GuardrailRef | None = None,
) -> Completion:
    """Call Bedrock's Converse API and return the first text block of the answer.

    ``deadline`` is a ``clock()`` value: a retry that would sleep past it is not attempted, so the
    caller's Lambda never times out while backing off.
    """
    # Backoff jitter needs no cryptographic randomness.
    rng = rng or random.Random()  # noqa: S311  # nosec B311
    request = _converse_request(model_id, prompt, system_prompt, max_tokens, temperature, top_p)
    if guardrail is not None:
        request["guardrailConfig"] = {
            "guardrailIdentifier": guardrail.identifier,
            "guardrailVersion": guardrail.version,
        }

    attempt = 0
    while True:
        try:
            response = client.converse(**request)
            break
        except ClientError as exc:
            code = exc.response.get("Error", {}).get("Code", "Unknown")
            message = exc.response.get("Error", {}).get("Message", str(exc))
            attempt += 1
            if code not in RETRYABLE_CODES or attempt >= policy.max_attempts:
                raise failure(model_id, code, message) from exc
            delay = backoff_delay(attempt, policy, rng)
            if deadline is not None and clock() + delay >= deadline:
                raise failure(model_id, code, f"{message} (no time left to retry)") from exc
            sleep(delay)

    blocks = response.get("output", {}).get("message", {}).get("content", [])
    text = "".join(block.get("text", "") for block in blocks).strip()
    if not text:
        raise failure(model_id, "EmptyResponse", "the model returned no text")
    usage = response.get("usage", {})
    return Completion(
        text=text,
        model_id=model_id,
        input_tokens=int(usage.get("inputTokens", 0)),
        output_tokens=int(usage.get("outputTokens", 0)),
        stop_reason=str(response.get("stopReason", "")),
    )


@dataclass(frozen=True)
class StreamEnd:
    """The last item of :func:`converse_stream`: what Converse's ``metadata`` and ``messageStop`` said."""

    model_id: str
    input_tokens: int
    output_tokens: int
    stop_reason: str


def converse_stream(
    client: Any,
    *,
    model_id: str,
    prompt: str,
    system_prompt: str | None,
    max_tokens: int,
    temperature: float,
    top_p: float | None = None,
    guardrail: GuardrailRef | None = None,
) -> Iterator[str | StreamEnd]:
    """Call ConverseStream and yield each text delta, then one :class:`StreamEnd`.

    There are no retries: on the stream path the next tier is the retry (a throttled primary
    before its first token hands over to the fallback at once). An error event inside the stream,
    and a stream that ends without ``messageStop`` and ``metadata``, raise the classified
    :class:`ModelCallError`: a cut stream is never ended as if it were whole.
    """
    request = _converse_request(model_id, prompt, system_prompt, max_tokens, temperature, top_p)
    if guardrail is not None:
        # sync: every chunk is scanned before it is released (async could release what it blocks
        # later, and cannot mask); the README says what this mode does and does not catch.
        request["guardrailConfig"] = {
            "guardrailIdentifier": guardrail.identifier,
            "guardrailVersion": guardrail.version,
            "streamProcessingMode": "sync",
        }
    ending: dict[str, Any] = {}
    try:
        response = client.converse_stream(**request)
        for event in response.get("stream", []):
            text = _stream_event(model_id, event, ending)
            if text:
                yield text
    except ClientError as exc:  # botocore raises an error event as EventStreamError, a ClientError
        code = exc.response.get("Error", {}).get("Code", "Unknown")
        raise failure(model_id, code, exc.response.get("Error", {}).get("Message", str(exc))) from exc
    stop_reason, usage = ending.get("stop_reason"), ending.get("usage")
    if stop_reason is None or usage is None:
        raise failure(model_id, "TruncatedStream", "the stream ended without messageStop and metadata")
    yield StreamEnd(model_id, int(usage.get("inputTokens", 0)), int(usage.get("outputTokens", 0)), stop_reason)


def _stream_event(model_id: str, event: dict[str, Any], ending: dict[str, Any]) -> str | None:
    """One ConverseStream event: its text, or what it says about the end (kept in ``ending``)."""
    if "contentBlockDelta" in event:
        return str(event["contentBlockDelta"].get("delta", {}).get("text") or "") or None
    if "messageStop" in event:
        ending["stop_reason"] = str(event["messageStop"].get("stopReason", ""))
    elif "metadata" in event:
        ending["usage"] = event["metadata"].get("usage", {})
    else:
        for key, value in event.items():
            if key.endswith("Exception"):  # an error event, where botocore passes it through as data
                raise failure(model_id, key[0].upper() + key[1:], str((value or {}).get("message", ""))[:500])
    return None


def _converse_request(
    model_id: str, prompt: str, system_prompt: str | None, max_tokens: int, temperature: float, top_p: float | None
) -> dict[str, Any]:
    inference: dict[str, Any] = {"maxTokens": max_tokens, "temperature": temperature}
    if top_p is not None:
        inference["topP"] = top_p
    request: dict[str, Any] = {
        "modelId": model_id,
        "messages": [{"role": "user", "content": [{"text": prompt}]}],
        "inferenceConfig": inference,
    }
    if system_prompt:
        request["system"] = [{"text": system_prompt}]
    return request
