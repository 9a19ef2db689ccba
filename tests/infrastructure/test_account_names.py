"""Names AWS keeps unique per account (or globally) are unique across every stack of both regions.

Defect 1 was two regional stacks naming their dashboards ``FinAi`` and ``FinAi-Alarms``: CloudWatch
dashboard names are unique per account across regions, so the second deploy would have failed.
Names unique per region must differ between the stacks that share a region (regional, keys and
training in the primary). Replicated secrets hold their name in every replica region.
"""

from __future__ import annotations

from collections import Counter
from typing import Any

from tests.infrastructure.cfn import render

# Resource type -> the property that holds its physical name.
ACCOUNT_WIDE = {
    "AWS::CloudWatch::Dashboard": "DashboardName",
    "AWS::IAM::Role": "RoleName",
    "AWS::IAM::ManagedPolicy": "ManagedPolicyName",
    "AWS::IAM::User": "UserName",
    "AWS::IAM::Group": "GroupName",
    "AWS::IAM::InstanceProfile": "InstanceProfileName",
    "AWS::S3::Bucket": "BucketName",  # globally unique, across all accounts
}
PER_REGION = {
    "AWS::CloudWatch::Alarm": "AlarmName",
    "AWS::CloudWatch::CompositeAlarm": "AlarmName",
    "AWS::Logs::LogGroup": "LogGroupName",
    "AWS::Lambda::Function": "FunctionName",
    "AWS::DynamoDB::Table": "TableName",
    "AWS::DynamoDB::GlobalTable": "TableName",
    "AWS::SecretsManager::Secret": "Name",
    "AWS::Bedrock::Guardrail": "Name",
    "AWS::StepFunctions::StateMachine": "StateMachineName",
    "AWS::SNS::Topic": "TopicName",
    "AWS::SQS::Queue": "QueueName",
    "AWS::Events::Rule": "Name",
    "AWS::KMS::Alias": "AliasName",
    "AWS::WAFv2::WebACL": "Name",
    "AWS::ApiGateway::RestApi": "Name",  # not enforced by AWS, but its metrics are selected by name
    "Custom::ModelPackageGroup": "GroupName",
}


def physical_names(synthesized: Any) -> tuple[list[tuple[str, str, str]], list[tuple[str, str, str, str]]]:
    account: list[tuple[str, str, str]] = []
    regional: list[tuple[str, str, str, str]] = []
    for stack_name, stack in synthesized.stacks.items():
        region = stack.region
        for resource in synthesized.templates[stack_name].to_json()["Resources"].values():
            kind, props = resource["Type"], resource.get("Properties", {})
            if kind in ACCOUNT_WIDE and ACCOUNT_WIDE[kind] in props:
                account.append((kind, str(render(props[ACCOUNT_WIDE[kind]], region)), stack_name))
            if kind in PER_REGION and PER_REGION[kind] in props:
                name = str(render(props[PER_REGION[kind]], region))
                replicas = [r["Region"] for r in props.get("ReplicaRegions", [])]
                for where in (region, *replicas):
                    regional.append((kind, where, name, stack_name))
    return account, regional


def duplicates(names: list[tuple[Any, ...]]) -> list[tuple[Any, ...]]:
    counts = Counter(n[:-1] for n in names)
    return sorted(key for key, count in counts.items() if count > 1)


def test_account_wide_and_regional_names_are_unique_across_both_regions(synthesized):
    account, regional = physical_names(synthesized)
    assert any(kind == "AWS::CloudWatch::Dashboard" for kind, _, _ in account), "dashboards are named"
    assert duplicates(account) == []
    assert duplicates(regional) == []


def test_with_dns_failover_the_names_stay_unique(synthesized_dns):
    account, regional = physical_names(synthesized_dns)
    assert duplicates(account) == [] and duplicates(regional) == []


def test_dashboards_carry_their_region():
    """Canary on the defect as shipped: the same dashboard name in two regions is a duplicate."""
    shipped = [
        ("AWS::CloudWatch::Dashboard", "FinAi", "FinAi-us-east-1"),
        ("AWS::CloudWatch::Dashboard", "FinAi", "FinAi-us-west-2"),
    ]
    assert duplicates(shipped) == [("AWS::CloudWatch::Dashboard", "FinAi")]
