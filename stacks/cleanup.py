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
from stacks.common import PythonFunction

IN_USE_TAG = "finai:in-use"


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
                # The List* calls accept no resource ARN.
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
        self.function.add_to_role_policy(
            iam.PolicyStatement(
                actions=["sagemaker:ListTags", "sagemaker:DescribeTrainingJob"],
                resources=[f"{arn}:{kind}/*" for kind in kinds],
            )
        )
        self.function.add_to_role_policy(
            iam.PolicyStatement(
                actions=["sagemaker:DeleteEndpoint", "sagemaker:DeleteEndpointConfig", "sagemaker:DeleteModel"],
                resources=[f"{arn}:{kind}/*" for kind in kinds[:3]],
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
        artifacts.grant_delete(self.function, "artifacts/*")
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
                    "SageMaker's List* actions take no resource ARN; ListTags, Describe and Delete are scoped to this "
                    "account's endpoints, configs, models and training jobs, and deletion of anything tagged "
                    "finai:in-use is denied; S3 deletion is limited to the artifacts prefix.",
                    [
                        "Resource::*",
                        "Action::sagemaker:Delete*",
                        "Action::s3:DeleteObject*",
                        "regex:^Resource::arn:aws:sagemaker:.*/\\*$",
                        "regex:^Resource::<.*Artifacts.*\\.Arn>/artifacts/\\*$",
                    ],
                )
            ],
        )
