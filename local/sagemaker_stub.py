"""SageMaker answered at the API level inside moto's Step Functions interpreter.

moto executes the optimised ``sagemaker:createTrainingJob.sync`` integration only as far as
refusing it, so this module registers a task service that supports ``.sync`` and sends the calls
to :class:`OfflineSageMaker`, which records each CreateTrainingJob request and completes the job
with scripted metrics. Everything else in the pipeline (Map, Choice, Fail, the aws-sdk
CreateModelPackage call, the Lambda task) is moto's own.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any
from unittest import mock

# CreateTrainingJob's request fields, as the optimised integration accepts them.
SUPPORTED_PARAMETERS = {
    "createtrainingjob": {
        "TrainingJobName",
        "AlgorithmSpecification",
        "RoleArn",
        "HyperParameters",
        "InputDataConfig",
        "OutputDataConfig",
        "ResourceConfig",
        "StoppingCondition",
        "EnableNetworkIsolation",
        "EnableInterContainerTrafficEncryption",
        "EnableManagedSpotTraining",
        "VpcConfig",
        "Tags",
        "CheckpointConfig",
        "Environment",
        "DebugHookConfig",
        "ExperimentConfig",
        "RetryStrategy",
    }
}


@dataclass
class OfflineSageMaker:
    """Scripted outcome per adapter, named by the first folder of its train channel
    (``s3://bucket/<adapter>/``); ``throttle`` refuses that many CreateTrainingJob calls first."""

    gate_values: dict[str, float] = field(default_factory=dict)
    failing: set[str] = field(default_factory=set)
    requests: list[dict[str, Any]] = field(default_factory=list)
    throttle: int = 0
    refused: list[str] = field(default_factory=list)
    # adapter -> the model.tar.gz a completed job leaves at its ModelArtifacts URI (in moto's S3).
    model_tarballs: dict[str, bytes] = field(default_factory=dict)

    def create_training_job(self, **request: Any) -> dict[str, Any]:
        if len(self.refused) < self.throttle:
            self.refused.append(request["TrainingJobName"])
            raise ThrottledError("Rate exceeded")
        if any(r["TrainingJobName"] == request["TrainingJobName"] for r in self.requests):
            raise ValueError(f"ResourceInUse: training job {request['TrainingJobName']} already exists")
        self.requests.append(request)
        return {"TrainingJobArn": f"arn:aws:sagemaker:us-east-1:123456789012:training-job/{request['TrainingJobName']}"}

    def describe_training_job(self, TrainingJobName: str) -> dict[str, Any]:
        request = next(r for r in self.requests if r["TrainingJobName"] == TrainingJobName)
        adapter = adapter_of(request)
        status = "Failed" if adapter in self.failing else "Completed"
        output = request["OutputDataConfig"]["S3OutputPath"]
        metrics = (
            []
            if adapter not in self.gate_values
            else [{"MetricName": "gate", "Value": self.gate_values[adapter], "Timestamp": "2026-01-01T00:00:00Z"}]
        )
        artifacts = f"{output}/{TrainingJobName}/output/model.tar.gz"
        if status == "Completed" and adapter in self.model_tarballs:
            import boto3

            bucket, _, key = artifacts.removeprefix("s3://").partition("/")
            boto3.client("s3", region_name="us-east-1").put_object(
                Bucket=bucket, Key=key, Body=self.model_tarballs[adapter]
            )
        return {
            "TrainingJobName": TrainingJobName,
            "TrainingJobStatus": status,
            "FailureReason": "AlgorithmError: scripted failure" if status == "Failed" else None,
            "ModelArtifacts": {"S3ModelArtifacts": artifacts},
            "FinalMetricDataList": metrics,
            "HyperParameters": request["HyperParameters"],
        }


class ThrottledError(Exception):
    """What SageMaker's throttling looks like to the pipeline's Retry (ThrottlingException)."""


def adapter_of(request: dict[str, Any]) -> str:
    train = next(c for c in request["InputDataConfig"] if c["ChannelName"] == "train")
    return str(train["DataSource"]["S3DataSource"]["S3Uri"]).removeprefix("s3://").split("/")[1]


def _service_class(api: OfflineSageMaker) -> type:
    from moto.stepfunctions.parser.api import HistoryEventType, TaskFailedEventDetails
    from moto.stepfunctions.parser.asl.component.common.error_name.custom_error_name import CustomErrorName
    from moto.stepfunctions.parser.asl.component.common.error_name.failure_event import (
        FailureEvent,
        FailureEventException,
    )
    from moto.stepfunctions.parser.asl.component.common.error_name.states_error_name import StatesErrorName
    from moto.stepfunctions.parser.asl.component.common.error_name.states_error_name_type import (
        StatesErrorNameType,
    )
    from moto.stepfunctions.parser.asl.component.state.exec.state_task.service.resource import ResourceCondition
    from moto.stepfunctions.parser.asl.component.state.exec.state_task.service.state_task_service_callback import (
        StateTaskServiceCallback,
    )
    from moto.stepfunctions.parser.asl.eval.event.event_detail import EventDetails
    from moto.stepfunctions.parser.asl.utils.encoding import to_json_str

    class StateTaskServiceSageMaker(StateTaskServiceCallback):
        def __init__(self) -> None:
            # moto sets up its callback endpoint only for services that also accept waitForTaskToken.
            super().__init__(
                supported_integration_patterns={ResourceCondition.Sync, ResourceCondition.WaitForTaskToken}
            )

        def _from_error(self, env: Any, ex: Exception) -> Any:
            if not isinstance(ex, ThrottledError):
                return super()._from_error(env=env, ex=ex)
            # SageMaker's throttling reaches the state as the error name the pipeline retries on.
            return FailureEvent(
                env=env,
                error_name=CustomErrorName("ThrottlingException"),
                event_type=HistoryEventType.TaskFailed,
                event_details=EventDetails(
                    taskFailedEventDetails=TaskFailedEventDetails(
                        error="ThrottlingException",
                        cause=str(ex),
                        resource=self._get_sfn_resource(),
                        resourceType=self._get_sfn_resource_type(),
                    )
                ),
            )

        def _get_supported_parameters(self) -> set[str] | None:
            return SUPPORTED_PARAMETERS.get(self.resource.api_action.lower())

        def _eval_service_task(
            self, env: Any, resource_runtime_part: Any, normalised_parameters: dict, state_credentials: Any
        ) -> None:
            env.stack.append(getattr(api, self._get_boto_service_action())(**normalised_parameters))

        def _build_sync_resolver(
            self, env: Any, resource_runtime_part: Any, normalised_parameters: dict, state_credentials: Any
        ) -> Callable[[], Any]:
            env.stack.pop()
            name = normalised_parameters["TrainingJobName"]

            def resolve() -> Any:
                described = api.describe_training_job(TrainingJobName=name)
                if described["TrainingJobStatus"] == "Completed":
                    return described
                raise FailureEventException(
                    FailureEvent(
                        env=env,
                        error_name=StatesErrorName(typ=StatesErrorNameType.StatesTaskFailed),
                        event_type=HistoryEventType.TaskFailed,
                        event_details=EventDetails(
                            taskFailedEventDetails=TaskFailedEventDetails(
                                resource=self._get_sfn_resource(),
                                resourceType=self._get_sfn_resource_type(),
                                error=StatesErrorNameType.StatesTaskFailed.to_name(),
                                cause=to_json_str(described),
                            )
                        ),
                    )
                )

            return resolve

    return StateTaskServiceSageMaker


@contextmanager
def sagemaker_in_process(api: OfflineSageMaker) -> Iterator[OfflineSageMaker]:
    """Route optimised SageMaker tasks to ``api`` while moto runs state machines."""
    from moto.stepfunctions.parser.asl.component.state.exec.state_task import state_task_factory

    original = state_task_factory.state_task_service_for
    service = _service_class(api)

    def service_for(service_name: str) -> Any:
        return service() if service_name == "sagemaker" else original(service_name=service_name)

    with mock.patch.object(state_task_factory, "state_task_service_for", service_for):
        yield api
