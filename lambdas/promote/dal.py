"""Reading and publishing the model-selection strategy in AppConfig."""

from __future__ import annotations

import json
from collections.abc import Mapping
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


class AdapterNotReady(RuntimeError):
    """The adapter's inference component is still being created: promote again later (the
    pipeline's promotion step retries on this)."""


class AdapterFailed(RuntimeError):
    """SageMaker could not create the adapter's inference component; the reason says why."""


class EndpointAdapters:
    """This region's SageMaker endpoint tier, as promotion sees it: an adapter is copied into the
    region's adapter bucket (SageMaker reads model data only from its own region, and the copy
    outlives the training run's cleanup), then created as an adapter inference component inside
    the base component. Every step is idempotent, so a retried promotion resumes where it stopped."""

    def __init__(
        self,
        target: str,
        endpoint: str,
        base_component: str,
        bucket: str,
        sagemaker: Any | None = None,
        s3: Any | None = None,
    ) -> None:
        self.target = target
        self._endpoint = endpoint
        self._base = base_component
        self._bucket = bucket
        self._sagemaker = sagemaker or boto3.client("sagemaker")
        self._s3 = s3 or boto3.client("s3")

    @property
    def environment(self) -> dict[str, str]:
        """The function environment that configures this tier (read back by :meth:`from_environment`)."""
        return {
            "ENDPOINT_TARGET": self.target,
            "ENDPOINT_NAME": self._endpoint,
            "ENDPOINT_BASE_COMPONENT": self._base,
            "ENDPOINT_ADAPTER_BUCKET": self._bucket,
        }

    @classmethod
    def from_environment(cls, env: Mapping[str, str]) -> EndpointAdapters | None:
        """This region's tier from the function's environment; None when the deployment has none."""
        if not env.get("ENDPOINT_NAME"):
            return None
        return cls(
            env["ENDPOINT_TARGET"], env["ENDPOINT_NAME"], env["ENDPOINT_BASE_COMPONENT"], env["ENDPOINT_ADAPTER_BUCKET"]
        )

    def ensure(self, job: str, artifacts: str) -> tuple[str, str]:
        """(component name, adapter URI in this region) once the component is InService.

        Raises :class:`AdapterNotReady` while it is being created, :class:`AdapterFailed` if it failed.
        """
        from botocore.exceptions import ClientError

        component = job  # training-job names are unique and valid component names (finai-...)
        key = f"adapters/{job}/model.tar.gz"
        uri = f"s3://{self._bucket}/{key}"
        try:
            status = self._describe(component)
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") not in ("ValidationException", "ResourceNotFound"):
                raise
            self._copy(artifacts, key)
            self._sagemaker.create_inference_component(
                InferenceComponentName=component,
                EndpointName=self._endpoint,
                VariantName="AllTraffic",
                Specification={"BaseInferenceComponentName": self._base, "Container": {"ArtifactUrl": uri}},
                Tags=[{"Key": "finai:platform", "Value": "true"}, {"Key": "finai:training-job", "Value": job}],
            )
            status = {"InferenceComponentStatus": "Creating"}
        state = status.get("InferenceComponentStatus")
        if state == "InService":
            return component, uri
        if state == "Failed":
            raise AdapterFailed(f"inference component {component}: {status.get('FailureReason', 'no reason given')}")
        raise AdapterNotReady(f"inference component {component} is {state}; promotion resumes when it is InService")

    def _describe(self, component: str) -> dict[str, Any]:
        return dict(self._sagemaker.describe_inference_component(InferenceComponentName=component))

    def _copy(self, artifacts: str, key: str) -> None:
        bucket, _, source_key = artifacts.removeprefix("s3://").partition("/")
        self._s3.copy_object(
            Bucket=self._bucket,
            Key=key,
            CopySource={"Bucket": bucket, "Key": source_key},
            ServerSideEncryption="aws:kms",
        )
