"""Where the router gets its strategy and how it reaches model providers.

Each source is chosen by configuration (``STRATEGY_SOURCE``); the code path after it is the same.
"""

from __future__ import annotations

import json
import os
import urllib.request
from dataclasses import dataclass
from typing import Any, Protocol

import boto3
from botocore.config import Config

from shared.bedrock import Completion, GuardrailRef, apply_output_guardrail, converse, failure
from shared.observability import logger
from shared.sentiment import SentimentResult, from_classifier
from shared.strategy import Strategy, load_default_strategy, parse_strategy

DEFAULT_CACHE_SECONDS = 300
# A model call must end inside the router's 9 s (the ASL's task timeout), cold start included.
CALL_TIMEOUT_S = 7


class StrategySource(Protocol):
    def get(self) -> Strategy: ...


class BundledStrategySource:
    """The strategy document shipped with the code (tests, demo, and last resort)."""

    def get(self) -> Strategy:
        return load_default_strategy()


class StaticStrategySource:
    """A fixed, already validated strategy (tests and the local platform's overrides)."""

    def __init__(self, strategy: Strategy) -> None:
        self._strategy = strategy

    def get(self) -> Strategy:
        return self._strategy


class AppConfigStrategySource:
    """AppConfig through Powertools' provider, which caches for ``max_age`` seconds."""

    def __init__(self, application: str, environment: str, profile: str, max_age: int) -> None:
        from aws_lambda_powertools.utilities import parameters

        self._provider = parameters.AppConfigProvider(environment=environment, application=application)
        self._profile = profile
        self._max_age = max_age

    def get(self) -> Strategy:
        raw = self._provider.get(self._profile, max_age=self._max_age)
        return parse_strategy(raw if isinstance(raw, (str, bytes)) else json.dumps(raw))


class AgentStrategySource:
    """The AppConfig agent's local HTTP endpoint (the Lambda extension, or the local platform)."""

    def __init__(self, base_url: str, application: str, environment: str, profile: str) -> None:
        self._url = (
            f"{base_url.rstrip('/')}/applications/{application}/environments/{environment}/configurations/{profile}"
        )

    def get(self) -> Strategy:
        # The URL is the AppConfig agent on loopback, built from configuration, never from input.
        with urllib.request.urlopen(self._url, timeout=2) as response:  # noqa: S310  # nosec B310
            return parse_strategy(response.read())


class ResilientStrategySource:
    """Keeps serving the last good strategy (or the bundled one) when the source fails.

    A broken or unreachable configuration must not take the API down; it is logged loudly and
    the previous known-good strategy keeps routing.
    """

    def __init__(self, source: StrategySource, fallback: StrategySource | None = None) -> None:
        self._source = source
        self._fallback = fallback or BundledStrategySource()
        self._last_good: Strategy | None = None

    def get(self) -> Strategy:
        try:
            self._last_good = self._source.get()
        except Exception as exc:  # schema errors, botocore errors, network errors alike
            logger.exception("strategy source failed; using last known good strategy", extra={"error": str(exc)})
            if self._last_good is None:
                self._last_good = self._fallback.get()
        return self._last_good


def strategy_source_from_env(env: dict[str, str] | None = None) -> StrategySource:
    env = dict(os.environ if env is None else env)
    kind = env.get("STRATEGY_SOURCE", "appconfig")
    if kind == "bundled":
        return BundledStrategySource()
    ids = (env["APPCONFIG_APPLICATION"], env["APPCONFIG_ENVIRONMENT"], env["APPCONFIG_PROFILE"])
    if kind == "appconfig":
        max_age = int(env.get("STRATEGY_CACHE_SECONDS", DEFAULT_CACHE_SECONDS))
        return ResilientStrategySource(AppConfigStrategySource(*ids, max_age=max_age))
    if kind == "agent":
        base = env.get("APPCONFIG_AGENT_URL", "http://localhost:2772")
        return ResilientStrategySource(AgentStrategySource(base, *ids))
    raise ValueError(f"STRATEGY_SOURCE must be appconfig, agent or bundled, not {kind!r}")


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

    def complete_target(self, target: str, model_id: str, request: ModelRequest) -> Completion:
        """A generative adapter (the advisor): ``{"query"}`` in, ``{"response", "model_version"}`` out."""
        body = self._invoke(target, model_id, {"query": request.prompt})
        if not body.get("response"):
            raise failure(model_id, "BadResponse", str(body)[:300])
        if self._guardrail is not None and self._bedrock is None:
            self._bedrock = boto3.client("bedrock-runtime")
        return Completion(
            text=apply_output_guardrail(self._bedrock, self._guardrail, str(body["response"])),
            model_id=str(body.get("model_version") or model_id),
            input_tokens=0,
            output_tokens=0,
            stop_reason="end_turn",
        )

    def classify_target(self, target: str, model_id: str, text: str) -> tuple[SentimentResult, str]:
        """A classifier adapter (sentiment): one text in, its result and the model version out.

        The text is sent with ``truncate``: the front already bounds its length in characters,
        and a text over the token window must not count as the model's failure against the
        circuit. The result says when it was cut.
        """
        body = self._invoke(target, model_id, {"texts": [text], "truncate": True})
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
            raise failure(model_id, "BadResponse", str(body)[:300])
        return body


def lambda_targets_from_env(env: dict[str, str] | None = None) -> dict[str, str]:
    raw = (os.environ if env is None else env).get("LAMBDA_PROVIDERS", "{}")
    targets = json.loads(raw)
    if not isinstance(targets, dict):
        raise ValueError("LAMBDA_PROVIDERS must be a JSON object of target name to function ARN")
    return {str(k): str(v) for k, v in targets.items()}
