"""Lifecycle cleanup against moto's SageMaker and S3: dry run by default, age limit, in-use tag."""

from datetime import UTC, datetime, timedelta

import boto3
import pytest
from cleanup.dal import SageMakerInventory
from cleanup.handler import run
from cleanup.logic import Resource, plan
from moto import mock_aws

ROLE = "arn:aws:iam::123456789012:role/sagemaker"
IMAGE = "123456789012.dkr.ecr.us-east-1.amazonaws.com/serving:1"


@pytest.fixture
def account():
    with mock_aws():
        sm = boto3.client("sagemaker", region_name="us-east-1")
        s3 = boto3.client("s3", region_name="us-east-1")
        s3.create_bucket(Bucket="finai-artifacts")
        for name, tags in (("old-model", []), ("kept-model", [{"Key": "finai:in-use", "Value": "true"}])):
            sm.create_model(ModelName=name, ExecutionRoleArn=ROLE, PrimaryContainer={"Image": IMAGE}, Tags=tags)
        sm.create_endpoint_config(
            EndpointConfigName="old-config",
            ProductionVariants=[
                {"VariantName": "v", "ModelName": "old-model", "InitialInstanceCount": 1, "InstanceType": "ml.m5.large"}
            ],
        )
        sm.create_endpoint(EndpointName="old-endpoint", EndpointConfigName="old-config")
        sm.create_training_job(
            TrainingJobName="advisor-run1",
            AlgorithmSpecification={"TrainingImage": IMAGE, "TrainingInputMode": "File"},
            RoleArn=ROLE,
            OutputDataConfig={"S3OutputPath": "s3://finai-artifacts/jobs"},
            ResourceConfig={"InstanceType": "ml.g5.xlarge", "InstanceCount": 1, "VolumeSizeInGB": 30},
            StoppingCondition={"MaxRuntimeInSeconds": 3600},
        )
        artifact = sm.describe_training_job(TrainingJobName="advisor-run1")["ModelArtifacts"]["S3ModelArtifacts"]
        key = artifact.split("finai-artifacts/", 1)[1]
        s3.put_object(Bucket="finai-artifacts", Key=key, Body=b"weights")
        yield sm, s3, key


LATER = datetime.now(UTC) + timedelta(days=40)


def test_dry_run_reports_stale_resources_and_deletes_nothing(account):
    sm, s3, _key = account
    summary = run(SageMakerInventory(sm, s3), LATER, max_age_days=30, delete=False)
    assert summary["dry_run"] is True and summary["deleted"] == []
    assert summary["stale"] == {
        "endpoint": ["old-endpoint"],
        "endpoint_config": ["old-config"],
        "model": ["old-model"],
        "training_artifact": ["advisor-run1"],
    }
    assert summary["kept_in_use"]["model"] == ["kept-model"]
    assert len(sm.list_models()["Models"]) == 2
    assert s3.list_objects_v2(Bucket="finai-artifacts")["KeyCount"] == 1


def test_delete_removes_only_stale_untagged_resources_in_dependency_order(account):
    sm, s3, _key = account
    summary = run(SageMakerInventory(sm, s3), LATER, max_age_days=30, delete=True)
    assert summary["deleted"] == [
        "endpoint:old-endpoint",
        "endpoint_config:old-config",
        "model:old-model",
        "training_artifact:advisor-run1",
    ]
    assert summary["failed"] == {}
    assert [m["ModelName"] for m in sm.list_models()["Models"]] == ["kept-model"]
    assert sm.list_endpoints()["Endpoints"] == [] and sm.list_endpoint_configs()["EndpointConfigs"] == []
    assert s3.list_objects_v2(Bucket="finai-artifacts")["KeyCount"] == 0


def test_nothing_is_stale_inside_the_age_limit(account):
    sm, s3, _ = account
    summary = run(SageMakerInventory(sm, s3), datetime.now(UTC), max_age_days=30, delete=True)
    assert summary["deleted"] == [] and all(names == [] for names in summary["stale"].values())
    assert summary["kept_recent"] == 4 and summary["kept_in_use"]["model"] == ["kept-model"]


@pytest.mark.parametrize("value", ["true", "True", "yes", "1"])
def test_in_use_tag_spellings_protect(value):
    old = datetime(2020, 1, 1, tzinfo=UTC)
    resource = Resource("model", "m", "arn", old, {"finai:in-use": value})
    assert plan([resource], datetime(2026, 1, 1, tzinfo=UTC), 30).kept_in_use == [resource]
