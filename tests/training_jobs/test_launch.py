"""The ad hoc launcher sends, through the real SageMaker API model, what the pipeline would send."""

import copy
import json
from contextlib import contextmanager
from unittest import mock

import boto3
import pytest
from moto import mock_aws

from local.sagemaker_stub import OfflineSageMaker
from local.training_pipeline import SUBSTITUTIONS, adapter_input, local_training_pipeline
from promote.dal import InMemoryStrategyStore
from shared.strategy import DOCUMENT_PATH
from training_jobs import launch

ARGS = [
    "--adapter",
    "sentiment",
    "--role-arn",
    SUBSTITUTIONS["SageMakerRoleArn"],
    "--artifacts-bucket",
    SUBSTITUTIONS["ArtifactsBucket"],
    "--kms-key-arn",
    SUBSTITUTIONS["KmsKeyArn"],
    "--train-uri",
    "s3://finai-data/sentiment/",
    "--base-model-uri",
    "s3://finai-data/base-models/sentiment/",
    "--source-uri",
    "s3://finai-code/sourcedir.tar.gz",
    "--run-name",
    "adhoc1",
    "--image",
    SUBSTITUTIONS["TrainingImage"],
    "--instance-type",
    SUBSTITUTIONS["InstanceType"],
]


@contextmanager
def captured_sagemaker_requests():
    """Every CreateTrainingJob request boto3 sends while moto answers (after botocore validated it)."""
    from botocore.client import BaseClient

    sent: list[dict] = []
    original = BaseClient._make_api_call

    def recording(self, operation, params):
        if operation == "CreateTrainingJob":
            sent.append(copy.deepcopy(params))
        return original(self, operation, params)

    with mock_aws(), mock.patch.object(BaseClient, "_make_api_call", recording):
        yield sent


def test_launch_builds_the_job_with_the_sdk_and_sagemaker_accepts_it(capsys):
    with captured_sagemaker_requests() as sent:
        assert launch.main([*ARGS, "--hyperparameter", "epochs=3"]) == 0
        described = boto3.client("sagemaker", region_name="us-east-1").describe_training_job(
            TrainingJobName="finai-sentiment-adhoc1"
        )
    assert "started finai-sentiment-adhoc1" in capsys.readouterr().out
    assert len(sent) == 1 and sent[0]["TrainingJobName"] == "finai-sentiment-adhoc1"  # the role may create finai-*
    assert sent[0]["HyperParameters"]["epochs"] == "3"
    assert described["EnableNetworkIsolation"] is True


def test_the_sdk_job_and_the_pipeline_job_are_the_same_job():
    """Image, channels, isolation, hyperparameters, output and KMS settings: everything but the name
    (the pipeline names jobs after its execution)."""
    with captured_sagemaker_requests() as sent:
        assert launch.main(ARGS) == 0
    from_sdk = sent[0]
    item = adapter_input("sentiment", "sentiment", 0.7, "train_sentiment.py")
    sagemaker = OfflineSageMaker(gate_values={"sentiment": 0.9})
    with local_training_pipeline(sagemaker, InMemoryStrategyStore(json.loads(DOCUMENT_PATH.read_text()))) as pipeline:
        pipeline.run([item])
    from_pipeline = sagemaker.requests[0]

    def job(request):
        request = {k: v for k, v in request.items() if k != "TrainingJobName"}
        request["InputDataConfig"] = sorted(request["InputDataConfig"], key=lambda c: c["ChannelName"])
        return request

    assert job(from_sdk) == job(from_pipeline)
    assert job(launch.build_request(launch.parse_args(ARGS))) == job(from_pipeline)  # what --dry-run prints


def test_a_run_name_sagemaker_would_refuse_is_a_clear_error(capsys):
    at = ARGS.index("--run-name") + 1
    for bad in ("nightly_1", "x" * 60):
        args = [*ARGS[:at], bad, *ARGS[at + 1 :]]
        assert launch.main(args) == 2
        assert "SageMaker's rule" in capsys.readouterr().err


def test_dry_run_prints_the_request(capsys):
    assert launch.main([*ARGS, "--dry-run"]) == 0
    assert json.loads(capsys.readouterr().out)["ResourceConfig"]["InstanceType"] == SUBSTITUTIONS["InstanceType"]


def test_malformed_hyperparameter_is_a_clear_error(capsys):
    assert launch.main([*ARGS, "--hyperparameter", "epochs"]) == 2
    assert "key=value" in capsys.readouterr().err


def test_unknown_adapter_is_rejected():
    with pytest.raises(SystemExit):
        launch.parse_args([*ARGS[:1], "crypto", *ARGS[2:]])
