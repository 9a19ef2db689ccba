"""What AWS authorises for an API call: the IAM action, the resource ARNs and the condition context.

Action names and ARN formats are checked against policy_sentry's IAM database (AWS's Service
Authorization Reference, shipped in the package), so a misspelt action or an ARN of the wrong
shape fails here instead of in the account. What the database cannot say is written down below,
each with its source: operations whose IAM action has another name, and permissions a call needs
besides its own action (a profile's destination models, an SSE-KMS object's key).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from functools import cache
from typing import Any

from policy_sentry.querying.actions import get_action_data

from cdk_app.model_catalogue import catalogue

PARTITION = "aws"
# botocore service name -> IAM service prefix.
IAM_PREFIX = {
    "bedrock-runtime": "bedrock",
    "appconfigdata": "appconfig",
    "stepfunctions": "states",
    "sagemaker-runtime": "sagemaker",
}
# Operations authorised by an action of another name (Service Authorization Reference).
ACTION_OF = {
    ("bedrock-runtime", "Converse"): "bedrock:InvokeModel",
    ("bedrock-runtime", "ConverseStream"): "bedrock:InvokeModelWithResponseStream",
    ("lambda", "Invoke"): "lambda:InvokeFunction",
    ("lambda", "InvokeWithResponseStream"): "lambda:InvokeFunction",
    ("s3", "ListObjectsV2"): "s3:ListBucket",
    ("s3", "HeadObject"): "s3:GetObject",
    ("s3", "HeadBucket"): "s3:ListBucket",
    ("s3", "DeleteObjects"): "s3:DeleteObject",
    ("s3", "CopyObject"): "s3:PutObject",
}


TRANSACT_ACTIONS = {
    "Put": "PutItem",
    "Update": "UpdateItem",
    "Delete": "DeleteItem",
    "ConditionCheck": "ConditionCheckItem",
}


@dataclass(frozen=True)
class Need:
    """One authorisation AWS performs: an action on a resource, with the context it evaluates."""

    action: str
    resource: str
    context: tuple[tuple[str, str], ...] = ()
    why: str = ""

    @property
    def context_dict(self) -> dict[str, str]:
        return dict(self.context)


@dataclass
class CallSite:
    service: str
    operation: str
    region: str
    account: str
    params: dict[str, Any] = field(default_factory=dict)


@cache
def known_action(action: str) -> tuple[str, ...]:
    """The ARN formats policy_sentry documents for an action; raises if IAM has no such action."""
    service, _, name = action.partition(":")
    data = get_action_data(service, name)
    entries = data.get(service, []) if isinstance(data, dict) else []
    if not entries:
        raise ValueError(f"{action} is not an IAM action (policy_sentry's database)")
    return tuple(str(e["resource_arn_format"]) for e in entries)


def arn_matches_format(action: str, arn: str) -> bool:
    if arn == "*":
        return True
    for fmt in known_action(action):
        if fmt == "*":
            continue
        regex = re.escape(fmt)
        regex = re.sub(r"\\\$\\\{[A-Za-z]+\\\}", ".+", regex)
        regex = regex.replace(re.escape("${Partition}"), ".+").replace(re.escape("${Region}"), ".*")
        regex = re.sub(r"\\\$\\\{[^}]*\\\}", ".*", regex)
        if re.fullmatch(regex, arn):
            return True
    return False


def iam_action(service: str, operation: str) -> str:
    action = ACTION_OF.get((service, operation)) or f"{IAM_PREFIX.get(service, service)}:{operation}"
    known_action(action)
    return action


def _arn(service: str, region: str, account: str, resource: str) -> str:
    return f"arn:{PARTITION}:{service}:{region}:{account}:{resource}"


def needs_of(call: CallSite, sessions: dict[str, str]) -> list[Need]:  # noqa: C901, PLR0912  # a table of services
    """The authorisations one recorded call needs. ``sessions`` carries AppConfig session resources."""
    p, r, a = call.params, call.region, call.account
    if call.service == "dynamodb" and call.operation == "TransactWriteItems":
        # Authorised item by item, each with the action of its kind (DynamoDB developer guide,
        # "Using IAM with DynamoDB transactions"); TransactWriteItems itself is not an IAM action.
        return [
            Need(f"dynamodb:{TRANSACT_ACTIONS[kind]}", _arn("dynamodb", r, a, f"table/{body['TableName']}"))
            for item in p["TransactItems"]
            for kind, body in item.items()
        ]
    action = iam_action(call.service, call.operation)
    resources: list[str] = []
    extra: list[Need] = []
    if call.service == "dynamodb" and "RequestItems" in p:
        resources = [_arn("dynamodb", r, a, f"table/{table}") for table in p["RequestItems"]]
    elif call.service == "dynamodb":
        resources = [_arn("dynamodb", r, a, f"table/{p['TableName']}")]
    elif call.service == "sqs":
        # https://sqs.<region>.amazonaws.com/<account>/<name>
        account, name = str(p["QueueUrl"]).rstrip("/").split("/")[-2:]
        resources = [_arn("sqs", r, account, name)]
    elif call.service == "ssm" and "Name" in p:
        resources = [_arn("ssm", r, a, f"parameter/{str(p['Name']).lstrip('/')}")]
    elif call.service == "lambda":
        name = str(p["FunctionName"])
        resources = [name if name.startswith("arn:") else _arn("lambda", r, a, f"function:{name}")]
    elif call.service == "stepfunctions":
        arn = p.get("stateMachineArn") or p.get("executionArn") or "*"
        resources = [str(arn)]
    elif call.service == "s3":
        bucket = p.get("Bucket")
        resources = [f"arn:{PARTITION}:s3:::{bucket}/{p['Key']}" if "Key" in p else f"arn:{PARTITION}:s3:::{bucket}"]
        if call.operation == "CopyObject":  # reads the source as well (S3 User Guide, CopyObject)
            source = p["CopySource"]
            extra.append(Need("s3:GetObject", f"arn:{PARTITION}:s3:::{source['Bucket']}/{source['Key']}"))
    elif call.service == "sagemaker-runtime":
        # InvokeEndpoint authorises the endpoint, and the inference component it names.
        resources = [_arn("sagemaker", r, a, f"endpoint/{p['EndpointName']}")]
        if "InferenceComponentName" in p:
            resources.append(_arn("sagemaker", r, a, f"inference-component/{p['InferenceComponentName']}"))
    elif call.service == "bedrock-runtime" and "modelId" in p:
        return _model_needs(action, str(p["modelId"]), r, a)
    elif call.service == "bedrock-runtime" and "guardrailIdentifier" in p:
        ident = str(p["guardrailIdentifier"])
        resources = [ident if ident.startswith("arn:") else _arn("bedrock", r, a, f"guardrail/{ident}")]
    elif call.service == "appconfigdata" and call.operation == "StartConfigurationSession":
        resource = _arn(
            "appconfig",
            r,
            a,
            f"application/{p['ApplicationIdentifier']}/environment/{p['EnvironmentIdentifier']}"
            f"/configuration/{p['ConfigurationProfileIdentifier']}",
        )
        sessions["last"] = resource
        resources = [resource]
    elif call.service == "appconfigdata":
        resources = [sessions.get("last", "*")]
    elif call.service == "appconfig":
        resources = _appconfig_resources(call.operation, p, r, a)
    elif call.service == "sagemaker":
        resources = _sagemaker_resources(p, r, a)
    else:
        resources = ["*"]
    for resource in resources:
        if not arn_matches_format(action, resource):
            raise ValueError(f"{action} on {resource}: not an ARN of a resource type IAM documents for it")
    return [Need(action, resource) for resource in resources] + extra


def _model_needs(action: str, model_id: str, region: str, account: str) -> list[Need]:
    """A foundation model, or an inference profile plus every model it may route to (AWS documents
    the profile and the destination models; the latter are evaluated with the profile in context)."""
    invoked = catalogue().invoke_resources(model_id, partition=PARTITION, region=region, account=account)
    needs = [Need(action, arn) for arn in (*invoked.direct, *invoked.profiles)]
    for profile in invoked.profiles:
        needs += [
            Need(action, arn, (("bedrock:InferenceProfileArn", profile),), f"routed by {profile}")
            for arn in invoked.routed
        ]
    return needs


def _appconfig_resources(operation: str, p: dict[str, Any], region: str, account: str) -> list[str]:
    app = p.get("ApplicationId")
    profile = f"application/{app}/configurationprofile/{p.get('ConfigurationProfileId')}"
    if operation == "GetHostedConfigurationVersion":
        return [_arn("appconfig", region, account, f"{profile}/hostedconfigurationversion/{p['VersionNumber']}")]
    if operation == "StartDeployment":
        return [
            _arn("appconfig", region, account, f"application/{app}/environment/{p['EnvironmentId']}"),
            _arn("appconfig", region, account, profile),
            _arn("appconfig", region, account, f"deploymentstrategy/{p['DeploymentStrategyId']}"),
        ]
    return [_arn("appconfig", region, account, profile)]


SAGEMAKER_NAMES = {
    "InferenceComponentName": "inference-component",
    "TrainingJobName": "training-job",
    "ModelName": "model",
    "EndpointName": "endpoint",
    "EndpointConfigName": "endpoint-config",
    "ModelPackageGroupName": "model-package-group",
}


def _sagemaker_resources(p: dict[str, Any], region: str, account: str) -> list[str]:
    if "ResourceArn" in p:
        return [str(p["ResourceArn"])]
    for key, kind in SAGEMAKER_NAMES.items():
        if key in p:
            return [_arn("sagemaker", region, account, f"{kind}/{p[key]}")]
    return ["*"]  # the List* calls accept no resource
