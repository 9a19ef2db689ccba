"""SageMaker and S3 access for the cleanup: list with tags, delete one resource."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any
from urllib.parse import urlparse

import boto3

from cleanup.logic import Resource


class SageMakerInventory:
    def __init__(self, sagemaker: Any | None = None, s3: Any | None = None) -> None:
        self._sm = sagemaker or boto3.client("sagemaker")
        self._s3 = s3 or boto3.client("s3")

    def _pages(self, method: str, key: str, **kwargs: Any) -> Iterator[dict[str, Any]]:
        paginator = self._sm.get_paginator(method)
        for page in paginator.paginate(**kwargs):
            yield from page[key]

    def _tags(self, arn: str) -> dict[str, str]:
        return {t["Key"]: t["Value"] for t in self._sm.list_tags(ResourceArn=arn).get("Tags", [])}

    def resources(self) -> list[Resource]:
        found: list[Resource] = []
        for item in self._pages("list_endpoints", "Endpoints"):
            arn = item["EndpointArn"]
            found.append(Resource("endpoint", item["EndpointName"], arn, item["CreationTime"], self._tags(arn)))
        for item in self._pages("list_endpoint_configs", "EndpointConfigs"):
            arn = item["EndpointConfigArn"]
            found.append(
                Resource("endpoint_config", item["EndpointConfigName"], arn, item["CreationTime"], self._tags(arn))
            )
        for item in self._pages("list_models", "Models"):
            arn = item["ModelArn"]
            found.append(Resource("model", item["ModelName"], arn, item["CreationTime"], self._tags(arn)))
        for item in self._pages("list_training_jobs", "TrainingJobSummaries"):
            arn = item["TrainingJobArn"]
            job = self._sm.describe_training_job(TrainingJobName=item["TrainingJobName"])
            location = job.get("ModelArtifacts", {}).get("S3ModelArtifacts")
            if location:
                found.append(
                    Resource(
                        "training_artifact",
                        item["TrainingJobName"],
                        arn,
                        item["CreationTime"],
                        self._tags(arn),
                        location,
                    )
                )
        return found

    def delete(self, resource: Resource) -> None:
        if resource.kind == "endpoint":
            self._sm.delete_endpoint(EndpointName=resource.name)
        elif resource.kind == "endpoint_config":
            self._sm.delete_endpoint_config(EndpointConfigName=resource.name)
        elif resource.kind == "model":
            self._sm.delete_model(ModelName=resource.name)
        elif resource.kind == "training_artifact" and resource.location:
            # The job record stays (SageMaker keeps it); only its stored artifact goes.
            parsed = urlparse(resource.location)
            self._s3.delete_object(Bucket=parsed.netloc, Key=parsed.path.lstrip("/"))
        else:
            raise ValueError(f"cannot delete {resource.kind} {resource.name}")
