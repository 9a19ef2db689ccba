"""The ad hoc launcher sends, through the real SageMaker API model, what the pipeline would send."""

import json

import boto3
import pytest
from botocore.stub import Stubber

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


def test_launch_sends_a_valid_create_training_job_request():
    client = boto3.client("sagemaker", region_name="us-east-1")
    expected = launch.build_request(launch.parse_args([*ARGS, "--hyperparameter", "epochs=3"]))
    with Stubber(client) as stub:  # validates every field against SageMaker's API model
        stub.add_response(
            "create_training_job", {"TrainingJobArn": "arn:aws:sagemaker:us-east-1:1:training-job/x"}, expected
        )
        assert launch.main([*ARGS, "--hyperparameter", "epochs=3"], client=client) == 0
        stub.assert_no_pending_responses()
    assert expected["TrainingJobName"] == "finai-sentiment-adhoc1"  # the role may create only finai-* jobs
    assert expected["HyperParameters"]["epochs"] == "3"
    assert expected["EnableNetworkIsolation"] is True


def test_launch_request_equals_the_pipeline_request():
    ad_hoc = launch.build_request(launch.parse_args(ARGS))
    item = adapter_input("sentiment", "sentiment", 0.7, "train_sentiment.py")
    sagemaker = OfflineSageMaker(gate_values={"sentiment": 0.9})
    with local_training_pipeline(sagemaker, InMemoryStrategyStore(json.loads(DOCUMENT_PATH.read_text()))) as pipeline:
        pipeline.run([item])
    from_pipeline = sagemaker.requests[0]
    assert {k: v for k, v in ad_hoc.items() if k != "TrainingJobName"} == {
        k: v for k, v in from_pipeline.items() if k != "TrainingJobName"
    }


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
