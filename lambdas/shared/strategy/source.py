"""Where a function gets the strategy document: AppConfig, the AppConfig agent, or the bundled copy.

The router (model choice) and the front (client budgets) read the same document the same way.
Each source is chosen by configuration (``STRATEGY_SOURCE``); the code path after it is the same.
"""

from __future__ import annotations

import json
import os
import urllib.request
from typing import Protocol

from shared.observability import logger
from shared.strategy import Strategy, load_default_strategy, parse_strategy

DEFAULT_CACHE_SECONDS = 300


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
