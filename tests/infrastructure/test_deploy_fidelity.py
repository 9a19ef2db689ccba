"""Issue 13's defects, each asserted on the synthesized templates (each failed on the code before it).

Dashboards, deploy commands, timeouts, gateway responses and Bedrock ids have files of their own
(test_account_names, test_deploy_commands, test_timeout_budget, test_gateway_responses,
test_regional_models); the rest is here.
"""

from __future__ import annotations

import json
from typing import Any
from unittest import mock

import pytest
from botocore.exceptions import ClientError

from cdk_app.config import load_config
from stacks import guardrail
from tests.infrastructure.conftest import cdk_json_context, synthesize

pytestmark = pytest.mark.synth
REGIONS = ("us-east-1", "us-west-2")
WINDOW_S = 300  # WAF counts requests over five minutes


def resources(template: Any, kind: str) -> dict[str, Any]:
    return dict(template.find_resources(kind))


# 7. WAF must not block what the usage plan allows.
@pytest.mark.parametrize("region", REGIONS)
def test_waf_allows_at_least_what_the_usage_plan_allows(synthesized, region):
    template = synthesized.regional(region)
    plan = next(iter(resources(template, "AWS::ApiGateway::UsagePlan").values()))["Properties"]["Throttle"]
    one_client = plan["RateLimit"] * WINDOW_S + plan["BurstLimit"]
    acl = next(iter(resources(template, "AWS::WAFv2::WebACL").values()))["Properties"]
    limits = {
        r["Name"]: r["Statement"]["RateBasedStatement"]["Limit"]
        for r in acl["Rules"]
        if "RateBasedStatement" in r["Statement"]
    }
    assert limits["RateLimitPerApiKey"] >= one_client
    # Every client may sit behind one egress IP.
    assert limits["RateLimitPerIp"] >= one_client * len(synthesized.config.api_clients)


# 8. The circuit alarms get data whether or not anything calls health.
@pytest.mark.parametrize("region", REGIONS)
def test_circuit_metrics_come_from_a_schedule_not_from_the_health_route(synthesized, region):
    template = synthesized.regional(region).to_json()
    assert synthesized.config.dns_failover_enabled is False  # the default: Route 53 never calls health
    functions = {k: r for k, r in template["Resources"].items() if r["Type"] == "AWS::Lambda::Function"}
    monitor = next(
        k for k, r in functions.items() if r["Properties"].get("Handler") == "circuit_monitor.handler.lambda_handler"
    )
    rules = [r["Properties"] for r in template["Resources"].values() if r["Type"] == "AWS::Events::Rule"]
    scheduled = [r for r in rules if any(t["Arn"] == {"Fn::GetAtt": [monitor, "Arn"]} for t in r.get("Targets", []))]
    assert [r["ScheduleExpression"] for r in scheduled] == ["rate(1 minute)"]
    assert scheduled[0]["State"] == "ENABLED"
    alarms = [r["Properties"] for r in template["Resources"].values() if r["Type"] == "AWS::CloudWatch::Alarm"]
    circuit_alarms = [a for a in alarms if "CircuitOpen" in json.dumps(a) or "ModelPathHealthy" in json.dumps(a)]
    assert circuit_alarms
    for alarm in circuit_alarms:
        assert '{"Name": "service", "Value": "circuit_monitor"}' in json.dumps(alarm), alarm


# 9. Destroy, then deploy again.
@pytest.mark.parametrize("region", REGIONS)
def test_appconfig_can_be_deleted_by_a_destroy(synthesized, region):
    template = synthesized.regional(region).to_json()["Resources"]
    versions = [r for r in template.values() if r["Type"] == "AWS::AppConfig::HostedConfigurationVersion"]
    assert versions and all(v.get("DeletionPolicy") == "Delete" for v in versions)
    for kind in ("AWS::AppConfig::ConfigurationProfile", "AWS::AppConfig::Environment"):
        found = [r for r in template.values() if r["Type"] == kind]
        assert found and all(r["Properties"]["DeletionProtectionCheck"] == "BYPASS" for r in found), kind


def test_the_model_registry_is_adopted_and_kept(synthesized):
    template = synthesized.templates["FinAi-training"].to_json()["Resources"]
    assert not [r for r in template.values() if r["Type"] == "AWS::SageMaker::ModelPackageGroup"]
    custom = [r for r in template.values() if r["Type"] == "Custom::ModelPackageGroup"]
    assert len(custom) == 1 and custom[0]["Properties"]["GroupName"] == "finai-adapters-us-east-1"


def registry_event(kind: str) -> dict[str, Any]:
    return {
        "RequestType": kind,
        "ResourceProperties": {"GroupName": "finai-adapters-us-east-1", "Description": "adapters"},
        "PhysicalResourceId": "finai-adapters-us-east-1",
    }


def test_registry_handler_adopts_an_existing_group_creates_a_missing_one_and_deletes_nothing():
    from model_registry.handler import handle

    arn = "arn:aws:sagemaker:us-east-1:123456789012:model-package-group/finai-adapters-us-east-1"
    existing = mock.Mock()
    existing.describe_model_package_group.return_value = {"ModelPackageGroupArn": arn}
    assert handle(registry_event("Create"), existing)["Data"] == {"Arn": arn}
    existing.create_model_package_group.assert_not_called()

    missing = mock.Mock()
    missing.describe_model_package_group.side_effect = ClientError(
        {"Error": {"Code": "ValidationException", "Message": "Model Package Group finai-adapters does not exist."}},
        "DescribeModelPackageGroup",
    )
    missing.create_model_package_group.return_value = {"ModelPackageGroupArn": arn}
    assert handle(registry_event("Update"), missing)["Data"] == {"Arn": arn}
    missing.create_model_package_group.assert_called_once()

    deleting = mock.Mock()
    assert handle(registry_event("Delete"), deleting)["PhysicalResourceId"] == "finai-adapters-us-east-1"
    assert deleting.method_calls == []

    throttled = mock.Mock()
    throttled.describe_model_package_group.side_effect = ClientError(
        {"Error": {"Code": "ThrottlingException", "Message": "Rate exceeded"}}, "DescribeModelPackageGroup"
    )
    with pytest.raises(ClientError):
        handle(registry_event("Create"), throttled)  # answered FAILED by the handler, never adopted blindly


def test_registry_handler_always_answers_cloudformation():
    from model_registry import handler

    event = registry_event("Create") | {
        "ResponseURL": "https://cloudformation-custom-resource-response.example/x",
        "StackId": "stack",
        "RequestId": "req",
        "LogicalResourceId": "Registry",
    }
    sent: list[dict[str, Any]] = []
    with (
        mock.patch.object(handler, "handle", side_effect=RuntimeError("boom")),
        mock.patch.object(
            handler, "respond", lambda e, status, result, reason="": sent.append({"status": status, "reason": reason})
        ),
        mock.patch.object(handler.boto3, "client"),
    ):
        handler.lambda_handler(event, mock.Mock(function_name="registry", aws_request_id="1"))
    assert sent == [{"status": "FAILED", "reason": "boom"}]


def test_a_guardrail_policy_edit_publishes_a_new_version(synthesized):
    template = synthesized.regional("us-east-1").to_json()["Resources"]
    version = next(r for r in template.values() if r["Type"] == "AWS::Bedrock::GuardrailVersion")
    before = guardrail.policy_digest()
    assert before in version["Properties"]["Description"]
    with mock.patch.object(guardrail, "BLOCKED_MESSAGE", guardrail.BLOCKED_MESSAGE + " (edited)"):
        assert guardrail.policy_digest() != before
    topics = (*guardrail.DENIED_TOPICS, ("NewTopic", "A new denied topic.", ["example"]))
    with mock.patch.object(guardrail, "DENIED_TOPICS", topics):
        assert guardrail.policy_digest() != before


# 10. Grants no wider and no narrower than the code.
def statements_of(template: dict[str, Any]) -> list[dict[str, Any]]:
    return [
        s
        for r in template["Resources"].values()
        if r["Type"] == "AWS::IAM::Policy"
        for s in r["Properties"]["PolicyDocument"]["Statement"]
    ]


def actions_of(statement: dict[str, Any]) -> list[str]:
    action = statement["Action"]
    return action if isinstance(action, list) else [action]


def test_every_pass_role_names_the_service_it_passes_to(synthesized):
    for name, template in synthesized.templates.items():
        for statement in statements_of(template.to_json()):
            if "iam:PassRole" in actions_of(statement):
                assert statement["Condition"]["StringEquals"]["iam:PassedToService"], (name, statement)


def test_the_training_role_reads_only_its_sourcedir_object_and_never_tags(synthesized):
    template = synthesized.templates["FinAi-training"].to_json()
    statements = statements_of(template)
    assert not [s for s in statements if "sagemaker:AddTags" in actions_of(s)]
    for statement in statements:
        resources = statement["Resource"] if isinstance(statement["Resource"], list) else [statement["Resource"]]
        for resource in resources:
            text = json.dumps(resource)
            if "cdk-hnb659fds-assets" in text or "AssetsBucket" in text:
                assert not text.endswith('/*"]}') and "/*" not in text, f"whole assets bucket granted: {text}"
    jobs = [s for s in statements if "sagemaker:CreateTrainingJob" in actions_of(s)]
    assert jobs and all(":training-job/finai-*" in json.dumps(s["Resource"]) for s in jobs)


@pytest.mark.parametrize("region", REGIONS)
def test_the_failover_alarm_selects_the_api_and_its_stage(synthesized, region):
    template = synthesized.regional(region).to_json()["Resources"]
    alarms = [r["Properties"] for r in template.values() if r["Type"] == "AWS::CloudWatch::Alarm"]
    five_xx = [a for a in alarms if a.get("MetricName") == "5XXError"]
    assert five_xx
    for alarm in five_xx:
        assert {d["Name"] for d in alarm["Dimensions"]} == {"ApiName", "Stage"}


def test_the_appconfig_agent_is_used_only_where_its_layer_is_attached(synthesized, tmp_path):
    def router(template: Any) -> dict[str, Any]:
        functions = template.to_json()["Resources"].values()
        return next(
            f["Properties"] for f in functions if f["Properties"].get("Handler") == "router.handler.lambda_handler"
        )

    default = router(synthesized.regional("us-east-1"))
    assert default["Environment"]["Variables"]["STRATEGY_SOURCE"] == "appconfig"
    assert not any("AWS-AppConfig-Extension" in json.dumps(layer) for layer in default["Layers"])

    layer = "arn:aws:lambda:us-east-1:027255383542:layer:AWS-AppConfig-Extension:207"
    with_agent = synthesize(tmp_path, {"appconfig_agent_layers": {"us-east-1": layer}})
    east, west = router(with_agent.regional("us-east-1")), router(with_agent.regional("us-west-2"))
    assert east["Environment"]["Variables"]["STRATEGY_SOURCE"] == "agent" and layer in east["Layers"]
    assert west["Environment"]["Variables"]["STRATEGY_SOURCE"] == "appconfig"


def test_config_refuses_settings_that_would_break_after_deploy():
    base = cdk_json_context()
    with pytest.raises(ValueError, match="must be a layer version ARN in us-east-1"):
        load_config(
            {**base, "appconfig_agent_layers": {"us-east-1": "arn:aws:lambda:us-west-2:027255383542:layer:X:1"}}
        )
    with pytest.raises(ValueError, match="burst_limit"):
        load_config({**base, "usage_plan": {"rate_limit": 50, "burst_limit": 10, "monthly_quota": 1000}})
    with pytest.raises(ValueError, match="api_auth=iam cannot be combined with DNS failover"):
        load_config({**base, "api_auth": "iam", "domain_name": "api.bank.example", "hosted_zone_id": "Z123"})
    with pytest.raises(ValueError, match="not a configured region"):
        load_config({**base, "regional_model_ids": {"eu-west-1": {}}})


NAME_PROPERTIES = (
    "TableName",
    "BucketName",
    "Name",
    "RoleName",
    "AliasName",
    "FunctionName",
    "LogGroupName",
    "TopicName",
)


def test_what_a_destroy_retains_never_blocks_the_next_deploy(synthesized):
    """A retained resource with a fixed name would make the next deploy fail with 'already exists'.

    The client keys (FinAi-keys) are the one exception: `make destroy` keeps that stack, and the
    README says how to retire the secrets before deploying it again after WITH_KEYS=1.
    """
    for name, template in synthesized.templates.items():
        for logical_id, resource in template.to_json()["Resources"].items():
            if resource.get("DeletionPolicy") not in ("Retain", "RetainExceptOnCreate"):
                continue
            fixed = [p for p in NAME_PROPERTIES if p in resource.get("Properties", {})]
            if name == "FinAi-keys" and resource["Type"] == "AWS::SecretsManager::Secret":
                continue
            assert not fixed, f"{name}/{logical_id} is retained and named {fixed}: a redeploy would collide"
