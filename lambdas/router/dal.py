"""Where the router gets its strategy and how it reaches model providers.

Each source is chosen by configuration (``STRATEGY_SOURCE``); the code path after it is the same.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from typing import Any, Protocol

import boto3
from botocore.config import Config
from botocore.exceptions import ClientError

from shared.bedrock import GUARDRAIL_INTERVENED, Completion, GuardrailRef, apply_output_guardrail, converse, failure
from shared.budgeting import PlanError, render_plan
from shared.failures import ModelCallError
from shared.sentiment import SentimentResult, from_classifier
from shared.strategy.source import (  # noqa: F401  # re-exported: the router's tests and handler import them here
    DEFAULT_CACHE_SECONDS,
    AgentStrategySource,
    AppConfigStrategySource,
    BundledStrategySource,
    ResilientStrategySource,
    StaticStrategySource,
    StrategySource,
    strategy_source_from_env,
)

# A model call must end inside the router's 9 s (the ASL's task timeout), cold start included.
CALL_TIMEOUT_S = 7


@dataclass(frozen=True)
class ModelRequest:
    prompt: str
    system_prompt: str | None
    max_tokens: int
    temperature: float
    top_p: float | None


class Provider(Protocol):
    def complete(self, model_id: str, request: ModelRequest, deadline: float | None) -> Completion: ...


class BedrockProvider:
    def __init__(self, client: Any | None = None, guardrail: GuardrailRef | None = None) -> None:
        self._guardrail = guardrail
        # Retries are ours (bounded by the Lambda's remaining time), so botocore's are off.
        self._client = client or boto3.client(
            "bedrock-runtime",
            config=Config(retries={"max_attempts": 1, "mode": "standard"}, read_timeout=CALL_TIMEOUT_S),
        )

    def complete(self, model_id: str, request: ModelRequest, deadline: float | None) -> Completion:
        return converse(
            self._client,
            model_id=model_id,
            prompt=request.prompt,
            system_prompt=request.system_prompt,
            max_tokens=request.max_tokens,
            temperature=request.temperature,
            top_p=request.top_p,
            deadline=deadline,
            guardrail=self._guardrail,
        )


def _served_usage(model_id: str, body: dict[str, Any]) -> tuple[int, int]:
    """The tokens a serving function reports (its ``usage``): what the client's token budget is
    charged, as on the streamed path. An answer without them cannot be settled exactly, so it is
    the function's bad response, not a free one."""
    usage = body.get("usage")
    counts = [usage.get(key) for key in ("input_tokens", "output_tokens")] if isinstance(usage, dict) else []
    tokens = [count for count in counts if type(count) is int and count >= 0]  # bool is not a count
    if len(tokens) != 2:
        raise failure(model_id, "BadResponse", f"the serving function reported no token usage: {str(usage)[:200]}")
    return tokens[0], tokens[1]


class LambdaProvider:
    """Invokes a serving Lambda (the fine-tuned adapters) by logical target name."""

    def __init__(
        self,
        targets: dict[str, str],
        client: Any | None = None,
        guardrail: GuardrailRef | None = None,
        bedrock_client: Any | None = None,
    ) -> None:
        self._targets = targets
        # One bounded attempt: the router's own timeout (the ASL task's) would cut a slower call anyway.
        self._client = client or boto3.client(
            "lambda",
            config=Config(connect_timeout=1, read_timeout=CALL_TIMEOUT_S, retries={"total_max_attempts": 1}),
        )
        self._guardrail = guardrail
        self._bedrock = bedrock_client

    def complete_target(
        self, target: str, model_id: str, request: ModelRequest, artifact_uri: str | None = None
    ) -> Completion:
        """A generative adapter (the advisor): ``{"query"}`` in, ``{"response", "model_version"}`` out."""
        body = self._invoke(target, model_id, with_artifact({"query": request.prompt}, artifact_uri))
        if not body.get("response"):
            raise failure(model_id, "BadResponse", str(body)[:300])
        if self._guardrail is not None and self._bedrock is None:
            self._bedrock = boto3.client("bedrock-runtime")
        input_tokens, output_tokens = _served_usage(model_id, body)
        original = str(body["response"])
        text = apply_output_guardrail(self._bedrock, self._guardrail, original)
        return Completion(
            text=text,
            model_id=str(body.get("model_version") or model_id),
            input_tokens=input_tokens,
            output_tokens=output_tokens,
            stop_reason="end_turn" if text == original else GUARDRAIL_INTERVENED,
        )

    def classify_target(
        self, target: str, model_id: str, text: str, artifact_uri: str | None = None
    ) -> tuple[SentimentResult, str]:
        """A classifier adapter (sentiment): one text in, its result and the model version out.

        The text is sent with ``truncate``: the front already bounds its length in characters,
        and a text over the token window must not count as the model's failure against the
        circuit. The result says when it was cut.
        """
        body = self._invoke(target, model_id, with_artifact({"texts": [text], "truncate": True}, artifact_uri))
        results = body.get("results")
        if not isinstance(results, list) or len(results) != 1:
            raise failure(model_id, "BadResponse", str(body)[:300])
        try:
            result = from_classifier(results[0])
        except (KeyError, TypeError, ValueError) as exc:  # pydantic's ValidationError is a ValueError
            raise failure(model_id, "BadResponse", f"unreadable classifier result: {exc}") from exc
        return result, str(body.get("model_version") or model_id)

    def _invoke(self, target: str, model_id: str, payload: dict[str, Any]) -> dict[str, Any]:
        function = self._targets.get(target)
        if function is None:
            raise failure(model_id, "UnknownTarget", f"no function configured for target {target!r}")
        result = self._client.invoke(FunctionName=function, Payload=json.dumps(payload).encode())
        response = json.loads(result["Payload"].read() or b"{}")
        if result.get("FunctionError"):
            raise failure(model_id, "FunctionError", str(response.get("errorMessage", response)))
        body = json.loads(response["body"]) if isinstance(response.get("body"), str) else response
        if int(response.get("statusCode", 200)) >= 400 or not isinstance(body, dict):
            raise refused(model_id, int(response.get("statusCode", 200)), body)
        return body


def with_artifact(payload: dict[str, Any], artifact_uri: str | None) -> dict[str, Any]:
    """The serving function's request, naming the artifact the strategy's variant points at."""
    return {**payload, "artifact_uri": artifact_uri} if artifact_uri else payload


def refused(model_id: str, status: int, body: Any) -> ModelCallError:
    """A serving function's error answer as a classified failure. A plan the profile does not
    support is the model failing the task (its 422). Another 4xx is the function refusing this
    input (a prompt over its window even compacted, among others): the request's fault, never
    counted against the model's circuit. Anything else breaks the function's contract."""
    if isinstance(body, dict) and body.get("error") == "malformed_plan":
        return failure(model_id, "MalformedPlan", str(body.get("message"))[:300])  # the model's answer: a task failure
    if isinstance(body, dict) and body.get("error") in ("no_artifact", "artifact_error"):
        # The function cannot load what it should serve: the platform's fault, counted, and said.
        code = "NoArtifact" if body["error"] == "no_artifact" else "ArtifactError"
        return failure(model_id, code, str(body.get("message"))[:300])
    if 400 <= status < 500 and isinstance(body, dict):
        code = "PromptTooLong" if body.get("error") == "prompt_too_long" else "InputRejected"
        return failure(model_id, code, str(body.get("message") or body)[:300])
    return failure(model_id, "BadResponse", str(body)[:300])


class SageMakerProvider:
    """A SageMaker real-time endpoint: ``InvokeEndpoint`` on an adapter inference component.

    The request and the answer follow the OpenAI chat-completions schema that SageMaker's
    Large Model Inference containers serve (``messages`` in; ``choices`` and ``usage`` out), so
    the answer carries its token counts and its finish reason.
    """

    def __init__(self, endpoints: dict[str, str], client: Any | None = None) -> None:
        self._endpoints = endpoints
        # One bounded attempt, as for the other providers: the router's 9 s bounds the call.
        self._client = client or boto3.client(
            "sagemaker-runtime",
            config=Config(connect_timeout=1, read_timeout=CALL_TIMEOUT_S, retries={"total_max_attempts": 1}),
        )

    def complete_target(
        self,
        target: str,
        model_id: str,
        request: ModelRequest,
        inference_component: str | None,
        answer_format: str = "text",
    ) -> Completion:
        endpoint = self._endpoints.get(target)
        if endpoint is None:
            raise failure(model_id, "UnknownTarget", f"no SageMaker endpoint configured for target {target!r}")
        if not inference_component:
            # The variant names no adapter yet: the platform's fault (nothing promoted), counted and said.
            raise failure(model_id, "NoArtifact", f"no adapter inference component promoted for target {target!r}")
        body = self._invoke(endpoint, inference_component, model_id, chat_request(request))
        text, input_tokens, output_tokens, stop_reason = read_chat_answer(model_id, body)
        if answer_format == "plan":
            try:
                # The adapter chose the steps; every amount is computed from the person's figures.
                text = render_plan(request.prompt, text)
            except PlanError as exc:
                raise failure(model_id, "MalformedPlan", str(exc)[:300]) from exc
        return Completion(text, model_id, input_tokens, output_tokens, stop_reason)

    def _invoke(self, endpoint: str, component: str, model_id: str, payload: dict[str, Any]) -> Any:
        try:
            result = self._client.invoke_endpoint(
                EndpointName=endpoint,
                InferenceComponentName=component,
                ContentType="application/json",
                Accept="application/json",
                Body=json.dumps(payload).encode(),
            )
            raw = result["Body"].read()
        except ClientError as exc:
            raise endpoint_failure(model_id, exc) from exc
        try:
            return json.loads(raw or b"{}")
        except json.JSONDecodeError as exc:
            raise failure(model_id, "BadResponse", f"the endpoint answered with no JSON: {raw[:200]!r}") from exc


def chat_request(request: ModelRequest) -> dict[str, Any]:
    messages = [{"role": "system", "content": request.system_prompt}] if request.system_prompt else []
    payload: dict[str, Any] = {
        "messages": [*messages, {"role": "user", "content": request.prompt}],
        "max_tokens": request.max_tokens,
        "temperature": request.temperature,
    }
    if request.top_p is not None:
        payload["top_p"] = request.top_p
    return payload


# The container's finish reasons in Converse's words, which the guard and the audit already read.
FINISH_REASONS = {"stop": "end_turn", "length": "max_tokens", "eos_token": "end_turn"}  # nosec B105 - not secrets


def read_chat_answer(model_id: str, body: Any) -> tuple[str, int, int, str]:
    """Text, input and output tokens and stop reason from a chat-completions answer."""
    try:
        choice = body["choices"][0]
        text = choice["message"]["content"]
        usage = body.get("usage") or {}
        input_tokens, output_tokens = int(usage.get("prompt_tokens", 0)), int(usage.get("completion_tokens", 0))
    except (KeyError, IndexError, TypeError, ValueError) as exc:
        raise failure(model_id, "BadResponse", f"not a chat completion: {str(body)[:200]}") from exc
    if not isinstance(text, str) or not text.strip():
        raise failure(model_id, "EmptyResponse", "the endpoint returned no text")
    reason = str(choice.get("finish_reason") or "stop")
    return text, input_tokens, output_tokens, FINISH_REASONS.get(reason, reason)


def endpoint_failure(model_id: str, exc: ClientError) -> ModelCallError:
    """``InvokeEndpoint``'s error as a classified failure.

    ``ModelError`` means the container answered with an error status (``OriginalStatusCode``): a
    400, 413 or 422 is the container refusing this input (a prompt over its window), not counted
    against the circuit; any other status is the model's. Other codes (``ValidationError`` for an
    endpoint or component that does not exist, throttling, ``ModelNotReadyException``) go through
    the shared table.
    """
    error = exc.response.get("Error", {})
    code, message = str(error.get("Code", "ClientError")), str(error.get("Message", exc))[:300]
    if code == "ModelError":
        status = int(exc.response.get("OriginalStatusCode") or 0)
        code = "EndpointRejectedInput" if status in (400, 413, 422) else "ModelError"
    return failure(model_id, code, message)


def sagemaker_endpoints_from_env(env: dict[str, str] | None = None) -> dict[str, str]:
    """``SAGEMAKER_ENDPOINTS``: logical target -> endpoint name (``{}`` when the tier is off)."""
    return _targets_from_env(env, "SAGEMAKER_ENDPOINTS", "endpoint name")


def lambda_targets_from_env(env: dict[str, str] | None = None) -> dict[str, str]:
    """``LAMBDA_PROVIDERS``: logical target -> serving function ARN."""
    return _targets_from_env(env, "LAMBDA_PROVIDERS", "function ARN")


def _targets_from_env(env: dict[str, str] | None, name: str, value: str) -> dict[str, str]:
    targets = json.loads((os.environ if env is None else env).get(name, "{}"))
    if not isinstance(targets, dict):
        raise ValueError(f"{name} must be a JSON object of target name to {value}")
    return {str(k): str(v) for k, v in targets.items()}
