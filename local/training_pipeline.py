"""Run statemachines/training_pipeline.asl.json in moto: SageMaker answered by OfflineSageMaker,
CreateModelPackage by moto's SageMaker, the promote step by the real handler."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from unittest import mock

import boto3

from local.request_path import (
    ACCOUNT,
    MOTO_CONFIG,
    TEST_CREDENTIALS,
    InProcessLambdas,
    render_definition,
    routed_to,
)
from local.sagemaker_stub import OfflineSageMaker, sagemaker_in_process

ASL_PATH = Path(__file__).resolve().parent.parent / "statemachines" / "training_pipeline.asl.json"
GROUP = "finai-adapters"
SUBSTITUTIONS = {
    # The image CDK builds from training_jobs/image lives in the bootstrap's container-assets repository.
    "TrainingImage": f"{ACCOUNT}.dkr.ecr.us-east-1.amazonaws.com/cdk-hnb659fds-container-assets-{ACCOUNT}-us-east-1:t",
    "SourceDirUri": "s3://finai-code/sourcedir.tar.gz",
    "SubmitDirectory": "/opt/ml/input/data/code/sourcedir.tar.gz",
    "SageMakerRoleArn": f"arn:aws:iam::{ACCOUNT}:role/sagemaker",
    "ArtifactsBucket": "finai-artifacts",
    "KmsKeyArn": f"arn:aws:kms:us-east-1:{ACCOUNT}:key/test",
    "InstanceType": "ml.g5.xlarge",
    "ModelPackageGroup": GROUP,
    "PromoteFunctionArn": f"arn:aws:lambda:us-east-1:{ACCOUNT}:function:promote",
}


@dataclass
class TrainingPipeline:
    arn: str
    sagemaker: OfflineSageMaker
    lambdas: InProcessLambdas

    def run(self, adapters: list[dict[str, Any]], timeout_s: float = 60.0, name: str | None = None) -> dict[str, Any]:
        from api_front.dal import PollingExecutor

        client = boto3.client("stepfunctions", region_name="us-east-1")
        name = name or f"run{uuid.uuid4().hex[:8]}"
        result = PollingExecutor(self.arn, client, timeout_s).run(name, {"adapters": adapters})
        return {"status": result.status, "output": result.output, "error": result.error, "cause": result.cause}

    def task_failures(self) -> list[dict[str, Any]]:
        """TaskFailed details of the latest execution."""
        client = boto3.client("stepfunctions", region_name="us-east-1")
        latest = client.list_executions(stateMachineArn=self.arn)["executions"][0]["executionArn"]
        events = client.get_execution_history(executionArn=latest)["events"]
        return [e["taskFailedEventDetails"] for e in events if e["type"] == "TaskFailed"]

    def model_packages(self) -> list[dict[str, Any]]:
        client = boto3.client("sagemaker", region_name="us-east-1")
        return client.list_model_packages(ModelPackageGroupName=GROUP)["ModelPackageSummaryList"]


@contextmanager
def local_training_pipeline(sagemaker: OfflineSageMaker, promote_store: Any) -> Iterator[TrainingPipeline]:
    from moto import mock_aws

    from promote import handler as promote

    lambdas = InProcessLambdas("us-east-1")
    with (
        mock.patch.dict(os.environ, {**TEST_CREDENTIALS, "AWS_DEFAULT_REGION": "us-east-1"}),
        mock_aws(config=MOTO_CONFIG),
        routed_to(lambdas),
        sagemaker_in_process(sagemaker),
        mock.patch.object(promote, "_store", lambda: promote_store),
    ):
        boto3.client("sagemaker", region_name="us-east-1").create_model_package_group(ModelPackageGroupName=GROUP)
        arn = boto3.client("stepfunctions", region_name="us-east-1").create_state_machine(
            name="training-pipeline",
            type="STANDARD",
            roleArn=f"arn:aws:iam::{ACCOUNT}:role/pipeline",
            definition=render_definition(SUBSTITUTIONS, ASL_PATH),
        )["stateMachineArn"]
        lambdas.register("promote", promote.lambda_handler)
        yield TrainingPipeline(arn, sagemaker, lambdas)


def adapter_input(name: str, target: str, threshold: float, program: str) -> dict[str, Any]:
    """One Map item of the pipeline input (the EventBridge schedule and the launch CLI send these)."""
    return {
        "name": name,
        "target": target,
        "threshold": threshold,
        "train_uri": f"s3://finai-data/{name}/",
        "base_model_uri": f"s3://finai-data/base-models/{name}/",
        "hyperparameters": {
            "sagemaker_program": program,
            "base-model": "/opt/ml/input/data/base",
        },
    }
