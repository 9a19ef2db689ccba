"""Lifecycle cleanup against moto's SageMaker and S3: dry run by default, age limit, in-use tag, and
only this platform's resources (finai- names with the platform tag; artifacts in its own bucket)."""

from datetime import UTC, datetime, timedelta

import boto3
import pytest
from cleanup.dal import SageMakerInventory
from cleanup.handler import run
from cleanup.logic import PLATFORM, PLATFORM_TAG, Resource, plan
from moto import mock_aws

ROLE = "arn:aws:iam::123456789012:role/sagemaker"
IMAGE = "123456789012.dkr.ecr.us-east-1.amazonaws.com/serving:1"
OURS = [{"Key": PLATFORM_TAG, "Value": PLATFORM}]
BUCKET = "finai-artifacts"


def training_job(sm, s3, name: str, bucket: str) -> str:
    sm.create_training_job(
        TrainingJobName=name,
        AlgorithmSpecification={"TrainingImage": IMAGE, "TrainingInputMode": "File"},
        RoleArn=ROLE,
        OutputDataConfig={"S3OutputPath": f"s3://{bucket}/training"},
        ResourceConfig={"InstanceType": "ml.g5.xlarge", "InstanceCount": 1, "VolumeSizeInGB": 30},
        StoppingCondition={"MaxRuntimeInSeconds": 3600},
    )
    artifact = sm.describe_training_job(TrainingJobName=name)["ModelArtifacts"]["S3ModelArtifacts"]
    key = artifact.split(f"{bucket}/", 1)[1]
    s3.put_object(Bucket=bucket, Key=key, Body=b"weights")
    return key


@pytest.fixture
def account():
    with mock_aws():
        sm = boto3.client("sagemaker", region_name="us-east-1")
        s3 = boto3.client("s3", region_name="us-east-1")
        for bucket in (BUCKET, "someone-elses-bucket"):
            s3.create_bucket(Bucket=bucket)
        models = (
            ("finai-old-model", OURS),
            ("finai-kept-model", [*OURS, {"Key": "finai:in-use", "Value": "true"}]),
            # Not ours: another team's model, and a finai- name without the platform tag.
            ("team-b-model", []),
            ("finai-lookalike", []),
        )
        for name, tags in models:
            sm.create_model(ModelName=name, ExecutionRoleArn=ROLE, PrimaryContainer={"Image": IMAGE}, Tags=tags)
        sm.create_endpoint_config(
            EndpointConfigName="finai-old-config",
            ProductionVariants=[
                {
                    "VariantName": "v",
                    "ModelName": "finai-old-model",
                    "InitialInstanceCount": 1,
                    "InstanceType": "ml.m5.large",
                }
            ],
            Tags=OURS,
        )
        sm.create_endpoint(EndpointName="finai-old-endpoint", EndpointConfigName="finai-old-config", Tags=OURS)
        training_job(sm, s3, "finai-advisor-run1", BUCKET)
        training_job(sm, s3, "finai-elsewhere-run1", "someone-elses-bucket")
        training_job(sm, s3, "team-b-run1", BUCKET)
        yield sm, s3


LATER = datetime.now(UTC) + timedelta(days=40)


def keys_in(s3, bucket: str) -> int:
    return s3.list_objects_v2(Bucket=bucket)["KeyCount"]


def test_dry_run_reports_stale_platform_resources_and_deletes_nothing(account):
    sm, s3 = account
    tag_reads: list[str] = []
    sm.meta.events.register(
        "provide-client-params.sagemaker.ListTags", lambda params, **_: tag_reads.append(params["ResourceArn"])
    )
    summary = run(SageMakerInventory(sm, s3), LATER, max_age_days=30, delete=False, artifacts_bucket=BUCKET)
    assert summary["dry_run"] is True and summary["deleted"] == []
    # The role may read tags only of finai- resources: the code never asks for others'.
    assert tag_reads and all("/finai-" in arn for arn in tag_reads)
    assert summary["stale"] == {
        "endpoint": ["finai-old-endpoint"],
        "endpoint_config": ["finai-old-config"],
        "model": ["finai-old-model"],
        "training_artifact": ["finai-advisor-run1"],
    }
    assert summary["kept_in_use"]["model"] == ["finai-kept-model"]
    # finai-lookalike (untagged), finai-elsewhere-run1 (another bucket) and team-b-model (which moto
    # lists despite NameContains) are counted, never judged.
    assert summary["not_ours"] >= 2
    assert len(sm.list_models()["Models"]) == 4
    assert keys_in(s3, BUCKET) == 2


def test_delete_removes_only_stale_platform_resources_in_dependency_order(account):
    sm, s3 = account
    summary = run(SageMakerInventory(sm, s3), LATER, max_age_days=30, delete=True, artifacts_bucket=BUCKET)
    assert summary["deleted"] == [
        "endpoint:finai-old-endpoint",
        "endpoint_config:finai-old-config",
        "model:finai-old-model",
        "training_artifact:finai-advisor-run1",
    ]
    assert summary["failed"] == {}
    assert sorted(m["ModelName"] for m in sm.list_models()["Models"]) == [
        "finai-kept-model",
        "finai-lookalike",
        "team-b-model",
    ]
    assert sm.list_endpoints()["Endpoints"] == [] and sm.list_endpoint_configs()["EndpointConfigs"] == []
    assert keys_in(s3, BUCKET) == 1  # team-b's artifact stays
    assert keys_in(s3, "someone-elses-bucket") == 1


def test_nothing_is_stale_inside_the_age_limit(account):
    sm, s3 = account
    summary = run(SageMakerInventory(sm, s3), datetime.now(UTC), max_age_days=30, delete=True, artifacts_bucket=BUCKET)
    assert summary["deleted"] == [] and all(names == [] for names in summary["stale"].values())
    assert summary["kept_recent"] == 4 and summary["kept_in_use"]["model"] == ["finai-kept-model"]


@pytest.mark.parametrize("value", ["true", "True", "yes", "1"])
def test_in_use_tag_spellings_protect(value):
    old = datetime(2020, 1, 1, tzinfo=UTC)
    resource = Resource("model", "finai-m", "arn", old, {"finai:in-use": value, PLATFORM_TAG: PLATFORM})
    assert plan([resource], datetime(2026, 1, 1, tzinfo=UTC), 30, BUCKET).kept_in_use == [resource]


def test_without_a_configured_bucket_no_artifact_counts_as_ours():
    old = datetime(2020, 1, 1, tzinfo=UTC)
    artifact = Resource("training_artifact", "finai-x", "arn", old, {}, f"s3://{BUCKET}/training/x/model.tar.gz")
    assert plan([artifact], datetime(2026, 1, 1, tzinfo=UTC), 30, None).not_ours == 1
