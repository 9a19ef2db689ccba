"""SageMaker and S3 access for the cleanup: list with tags, delete one resource."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any
from urllib.parse import urlparse

import boto3

from cleanup.logic import NAME_PREFIX, Resource


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

    def _tagged(self, name: str, arn: str) -> dict[str, str]:
        # Tags are read only for names with the platform prefix: the role may read no others.
        return self._tags(arn) if name.startswith(NAME_PREFIX) else {}

    def resources(self) -> list[Resource]:
        found: list[Resource] = []
        for kind, method, key, name_key, arn_key in (
            ("endpoint", "list_endpoints", "Endpoints", "EndpointName", "EndpointArn"),
            ("endpoint_config", "list_endpoint_configs", "EndpointConfigs", "EndpointConfigName", "EndpointConfigArn"),
            ("model", "list_models", "Models", "ModelName", "ModelArn"),
        ):
            for item in self._pages(method, key, NameContains=NAME_PREFIX):
                name, arn = item[name_key], item[arn_key]
                found.append(Resource(kind, name, arn, item["CreationTime"], self._tagged(name, arn)))
        for item in self._pages("list_training_jobs", "TrainingJobSummaries", NameContains=NAME_PREFIX):
            if not item["TrainingJobName"].startswith(NAME_PREFIX):
                continue
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
                        {},
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
