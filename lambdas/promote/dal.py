"""Reading and publishing the model-selection strategy in AppConfig."""

from __future__ import annotations

import json
from typing import Any, Protocol

import boto3


class StrategyStore(Protocol):
    def latest(self) -> tuple[int, dict[str, Any]]: ...

    def publish(self, document: dict[str, Any], based_on: int, description: str) -> int: ...

    def deploy(self, version: int, description: str) -> int: ...


class AppConfigStrategyStore:
    def __init__(
        self, application: str, environment: str, profile: str, deployment_strategy: str, client: Any | None = None
    ) -> None:
        self._ids = {"ApplicationId": application, "ConfigurationProfileId": profile}
        self._environment = environment
        self._strategy = deployment_strategy
        self._client = client or boto3.client("appconfig")

    def latest(self) -> tuple[int, dict[str, Any]]:
        items = self._client.list_hosted_configuration_versions(**self._ids, MaxResults=1)["Items"]
        if not items:
            raise LookupError("the model-selection profile has no hosted version yet")
        version = int(items[0]["VersionNumber"])
        content = self._client.get_hosted_configuration_version(**self._ids, VersionNumber=version)["Content"]
        return version, json.loads(content.read())

    def publish(self, document: dict[str, Any], based_on: int, description: str) -> int:
        # LatestVersionNumber makes this a compare-and-swap: a concurrent publish fails instead of
        # being overwritten.
        created = self._client.create_hosted_configuration_version(
            **self._ids,
            Content=json.dumps(document, indent=2).encode(),
            ContentType="application/json",
            LatestVersionNumber=based_on,
            Description=description[:1024],
        )
        return int(created["VersionNumber"])

    def deploy(self, version: int, description: str) -> int:
        started = self._client.start_deployment(
            **self._ids,
            EnvironmentId=self._environment,
            DeploymentStrategyId=self._strategy,
            ConfigurationVersion=str(version),
            Description=description[:1024],
        )
        return int(started["DeploymentNumber"])


class InMemoryStrategyStore:
    """For tests and the local platform: versions kept in a list, deployments counted."""

    def __init__(self, document: dict[str, Any]) -> None:
        self.versions = [document]
        self.deployed: list[int] = []

    def latest(self) -> tuple[int, dict[str, Any]]:
        return len(self.versions), self.versions[-1]

    def publish(self, document: dict[str, Any], based_on: int, description: str) -> int:
        if based_on != len(self.versions):
            raise RuntimeError(f"version {based_on} is not the latest ({len(self.versions)})")
        self.versions.append(document)
        return len(self.versions)

    def deploy(self, version: int, description: str) -> int:
        self.deployed.append(version)
        return len(self.deployed)
