"""Run statemachines/training_pipeline.asl.json in moto: SageMaker answered by OfflineSageMaker,
CreateModelPackage by moto's SageMaker, the promote step by the real handler."""

from __future__ import annotations

import json
import os
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
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
    # CloudFormation's generated name for the retained artifacts bucket (cdk_app.names.artifacts_bucket_pattern).
    "ArtifactsBucket": "finai-training-pipelineartifactseb21e7e8-1a2b3c4d5e6f",
    "KmsKeyArn": f"arn:aws:kms:us-east-1:{ACCOUNT}:key/test",
    "InstanceType": "ml.g5.xlarge",
    "ModelPackageGroup": GROUP,
    "PromoteFunctionArn": f"arn:aws:lambda:us-east-1:{ACCOUNT}:function:promotion",
}


@dataclass
class TrainingPipeline:
    arn: str
    sagemaker: OfflineSageMaker
    lambdas: InProcessLambdas
    stores: dict[str, Any] = field(default_factory=dict)  # region -> that region's strategy store
    retry_waits: list[float] = field(default_factory=list)  # the Retry intervals the ASL asked for

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


REGIONS = ("us-east-1", "us-west-2")


@contextmanager
def local_training_pipeline(
    sagemaker: OfflineSageMaker,
    promote_store: Any,
    secondary_store: Any | None = None,
    failing_region: str = "",
    endpoints: dict[str, Any] | None = None,
) -> Iterator[TrainingPipeline]:
    """The pipeline in moto. Its promotion step is the real fan-out (promotion.handler), and each
    region's promote function the real handler over that region's store: ``promote_store`` for the
    primary, ``secondary_store`` for the secondary (a copy of the primary's document when None).
    ``failing_region``'s function raises, as a region that cannot be reached would. ``endpoints``:
    region -> that region's endpoint tier (``promote.dal.EndpointAdapters``), when it has one."""
    import copy
    from types import SimpleNamespace

    from moto import mock_aws
    from moto.stepfunctions.parser.asl.component.common.retry import retrier_decl

    from promote import handler as promote
    from promote.dal import InMemoryStrategyStore
    from promotion import handler as promotion

    stores = {
        REGIONS[0]: promote_store,
        REGIONS[1]: secondary_store or InMemoryStrategyStore(copy.deepcopy(promote_store.latest()[1])),
    }

    def regional(region: str) -> Any:
        def handle(event: dict[str, Any], context: Any) -> dict[str, Any]:
            if region == failing_region:
                raise RuntimeError(f"{region} does not answer")
            endpoint = (endpoints or {}).get(region)
            # The function's environment in that region, as Lambda and CDK would set it.
            environment = {"AWS_REGION": region, **(endpoint.environment if endpoint else {})}
            with (
                mock.patch.dict(os.environ, environment),
                mock.patch.object(promote, "_store", lambda: stores[region]),
                mock.patch.object(promote, "_endpoint", lambda: endpoint),
            ):
                return dict(promote.lambda_handler(event, context))

        return handle

    functions = {r: f"arn:aws:lambda:{r}:{ACCOUNT}:function:FinAi-promote-{r}" for r in REGIONS}
    lambdas = InProcessLambdas("us-east-1")
    # The ASL's Retry intervals (30 s to minutes) are recorded, not slept: tests read them.
    retry_waits: list[float] = []
    with (
        mock.patch.object(retrier_decl, "time", SimpleNamespace(sleep=retry_waits.append)),
        mock.patch.dict(
            os.environ,
            {
                **TEST_CREDENTIALS,
                "AWS_DEFAULT_REGION": "us-east-1",
                # Lambda sets AWS_REGION: the fan-out lives in the primary, whichever region it calls.
                "AWS_REGION": "us-east-1",
                "PROMOTE_FUNCTIONS": json.dumps(functions),
            },
        ),
        mock_aws(config=MOTO_CONFIG),
        routed_to(lambdas),
        sagemaker_in_process(sagemaker),
    ):
        boto3.client("sagemaker", region_name="us-east-1").create_model_package_group(ModelPackageGroupName=GROUP)
        boto3.client("s3", region_name="us-east-1").create_bucket(Bucket=SUBSTITUTIONS["ArtifactsBucket"])
        arn = boto3.client("stepfunctions", region_name="us-east-1").create_state_machine(
            name="training-pipeline",
            type="STANDARD",
            roleArn=f"arn:aws:iam::{ACCOUNT}:role/pipeline",
            definition=render_definition(SUBSTITUTIONS, ASL_PATH),
        )["stateMachineArn"]
        lambdas.register("promotion", promotion.lambda_handler)
        for region in REGIONS:  # reached through moto's Lambda API, as the fan-out reaches them on AWS
            lambdas.register(f"FinAi-promote-{region}", regional(region))
        pipeline = TrainingPipeline(arn, sagemaker, lambdas)
        pipeline.stores = stores
        pipeline.retry_waits = retry_waits
        yield pipeline


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
