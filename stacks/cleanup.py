"""Scheduled lifecycle cleanup of SageMaker endpoints, configs, models and training artifacts."""

from __future__ import annotations

from aws_cdk import Duration, Stack
from aws_cdk import aws_events as events
from aws_cdk import aws_events_targets as targets
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_s3 as s3
from constructs import Construct

from cdk_app.compliance import acknowledge
from cdk_app.config import TrainingSettings
from cdk_app.names import JOB_NAME_PREFIX, TRAINING_OUTPUT_PREFIX
from stacks.common import SCHEDULED_NO_DLQ, PythonFunction

IN_USE_TAG = "finai:in-use"
NAME_PREFIX = JOB_NAME_PREFIX
PLATFORM_TAG = "finai:platform"
PLATFORM = "finai"
TRAINING_PREFIX = TRAINING_OUTPUT_PREFIX


class Cleanup(Construct):
    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        key: kms.IKey,
        powertools_layer_version: int,
        settings: TrainingSettings,
        artifacts: s3.IBucket,
    ) -> None:
        super().__init__(scope, construct_id)
        stack = Stack.of(self)
        self.handler = PythonFunction(
            self,
            "Cleanup",
            component="cleanup",
            description="Reports (and with DELETE=true removes) stale SageMaker resources and training artifacts",
            key=key,
            powertools_layer_version=powertools_layer_version,
            no_dlq_reason=SCHEDULED_NO_DLQ,
            timeout=Duration.minutes(5),
            environment={
                "MAX_AGE_DAYS": str(settings.cleanup_max_age_days),
                "DELETE": "true" if settings.cleanup_delete else "false",
            },
        )
        self.function = self.handler.function
        arn = f"arn:{stack.partition}:sagemaker:{stack.region}:{stack.account}"
        self.function.add_to_role_policy(
            iam.PolicyStatement(
                # The List* calls accept no resource ARN; the code asks only for finai- names.
                actions=[
                    "sagemaker:ListEndpoints",
                    "sagemaker:ListEndpointConfigs",
                    "sagemaker:ListModels",
                    "sagemaker:ListTrainingJobs",
                ],
                resources=["*"],
            )
        )
        kinds = ("endpoint", "endpoint-config", "model", "training-job")
        owned = [f"{arn}:{kind}/{NAME_PREFIX}*" for kind in kinds]
        self.function.add_to_role_policy(
            iam.PolicyStatement(actions=["sagemaker:ListTags", "sagemaker:DescribeTrainingJob"], resources=owned)
        )
        # Only this platform's resources: a finai- name and the platform tag, checked by IAM as
        # well as by the code.
        self.function.add_to_role_policy(
            iam.PolicyStatement(
                actions=["sagemaker:DeleteEndpoint", "sagemaker:DeleteEndpointConfig", "sagemaker:DeleteModel"],
                resources=owned[:3],
                conditions={"StringEquals": {f"aws:ResourceTag/{PLATFORM_TAG}": PLATFORM}},
            )
        )
        # Belt and braces: even a bug in the code cannot delete what is tagged as in use.
        self.function.add_to_role_policy(
            iam.PolicyStatement(
                effect=iam.Effect.DENY,
                actions=["sagemaker:Delete*"],
                resources=["*"],
                conditions={"StringEqualsIgnoreCase": {f"aws:ResourceTag/{IN_USE_TAG}": "true"}},
            )
        )
        # Training jobs write under training/<job name>/ (statemachines/training_pipeline.asl.json).
        artifacts.grant_delete(self.function, f"{TRAINING_PREFIX}/{NAME_PREFIX}*")
        self.function.add_environment("ARTIFACTS_BUCKET", artifacts.bucket_name)
        self.schedule = events.Rule(
            self,
            "Schedule",
            description="Daily lifecycle cleanup (a dry run unless training.cleanup_delete)",
            schedule=events.Schedule.expression(settings.cleanup_schedule),
            targets=[targets.LambdaFunction(self.function, retry_attempts=2)],
        )
        acknowledge(
            self.handler,
            [
                (
                    "IAM5",
                    "SageMaker's List* actions take no resource ARN; ListTags, Describe and Delete are scoped to "
                    "this platform's finai- endpoints, configs, models and training jobs (Delete also to the "
                    "platform tag), deleting anything tagged finai:in-use is denied, and S3 deletion is limited "
                    "to training output.",
                    [
                        "Resource::*",
                        "Action::sagemaker:Delete*",
                        "Action::s3:DeleteObject*",
                        "regex:^Resource::arn:aws:sagemaker:.*/finai-\\*$",
                        "regex:^Resource::<.*Artifacts.*\\.Arn>/training/finai-\\*$",
                    ],
                )
            ],
        )
