"""CloudFormation custom resource: the SageMaker model package group, created when missing and kept.

The registry is evidence (which adapter was approved, when, on which metrics), so it outlives the
stack, and a redeploy adopts the group a previous deployment left instead of failing on its name.
Delete therefore removes nothing.
"""

from __future__ import annotations

import json
import urllib.request
from typing import Any

import boto3
from aws_lambda_powertools.utilities.typing import LambdaContext
from botocore.exceptions import ClientError

from shared.observability import logger


def ensure_group(client: Any, name: str, description: str) -> str:
    """The group's ARN, creating the group only if it does not exist yet."""
    try:
        return str(client.describe_model_package_group(ModelPackageGroupName=name)["ModelPackageGroupArn"])
    except ClientError as exc:
        message = exc.response.get("Error", {}).get("Message", "")
        if "does not exist" not in message:
            raise
    created = client.create_model_package_group(ModelPackageGroupName=name, ModelPackageGroupDescription=description)
    return str(created["ModelPackageGroupArn"])


def handle(event: dict[str, Any], client: Any) -> dict[str, Any]:
    properties = event["ResourceProperties"]
    name = str(properties["GroupName"])
    if event["RequestType"] == "Delete":
        logger.info("model registry retained by policy", extra={"group": name})
        return {"PhysicalResourceId": event.get("PhysicalResourceId", name), "Data": {}}
    arn = ensure_group(client, name, str(properties.get("Description", "")))
    return {"PhysicalResourceId": name, "Data": {"Arn": arn}}


def respond(event: dict[str, Any], status: str, result: dict[str, Any], reason: str = "") -> None:
    url = str(event["ResponseURL"])
    if not url.startswith("https://"):
        raise ValueError("CloudFormation's response URL must be https")
    body = json.dumps(
        {
            "Status": status,
            "Reason": reason[:500] or "see the function's log",
            "PhysicalResourceId": result.get("PhysicalResourceId") or event.get("PhysicalResourceId") or "none",
            "StackId": event["StackId"],
            "RequestId": event["RequestId"],
            "LogicalResourceId": event["LogicalResourceId"],
            "Data": result.get("Data", {}),
        }
    ).encode()
    request = urllib.request.Request(url, data=body, method="PUT", headers={"Content-Type": ""})  # noqa: S310
    with urllib.request.urlopen(request, timeout=10) as answer:  # noqa: S310  # nosec B310 - https checked above
        answer.read()


@logger.inject_lambda_context
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> None:
    try:
        result = handle(event, boto3.client("sagemaker"))
    except Exception as exc:  # CloudFormation must always get an answer, or it waits an hour
        logger.exception("model registry request failed")
        respond(event, "FAILED", {}, str(exc))
        return
    respond(event, "SUCCESS", result)
