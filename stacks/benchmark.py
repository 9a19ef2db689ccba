"""The optional scheduled foundation-model benchmark (``lambdas/benchmark``)."""

from __future__ import annotations

import json

from aws_cdk import Duration, Stack
from aws_cdk import aws_events as events
from aws_cdk import aws_events_targets as targets
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from constructs import Construct

from cdk_app.compliance import acknowledge
from cdk_app.config import BenchmarkSettings
from stacks.bedrock_access import grant_invoke
from stacks.common import SCHEDULED_NO_DLQ, PythonFunction
from stacks.model_config import ModelConfig
from stacks.serving import Serving


class Benchmark(Construct):
    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        key: kms.IKey,
        powertools_layer_version: int,
        settings: BenchmarkSettings,
        model_config: ModelConfig,
        serving: Serving,
        model_ids: tuple[str, ...],
        model_prices: dict[str, tuple[float, float]],
    ) -> None:
        super().__init__(scope, construct_id)
        stack = Stack.of(self)
        self.handler = PythonFunction(
            self,
            "Benchmark",
            component="benchmark",
            description="Benchmarks every provider the strategy names and proposes the best model per use case",
            key=key,
            powertools_layer_version=powertools_layer_version,
            no_dlq_reason=SCHEDULED_NO_DLQ,
            timeout=Duration.minutes(10),
            memory_size=1024,
            environment={
                "STRATEGY_SOURCE": "appconfig",
                "STRATEGY_CACHE_SECONDS": "0",
                "APPCONFIG_APPLICATION": model_config.application.application_id,
                "APPCONFIG_ENVIRONMENT": model_config.environment.environment_id,
                "APPCONFIG_PROFILE": model_config.profile.configuration_profile_id,
                "LAMBDA_PROVIDERS": json.dumps(serving.targets, sort_keys=True),
                "MODEL_PRICES": json.dumps(model_prices, sort_keys=True),
                "PUBLISH": "true" if settings.publish else "false",
            },
        )
        self.function = self.handler.function
        model_config.environment.grant_read_config(self.function)
        serving.grant_invoke(self.function, endpoint=False)  # endpoint variants are not benchmarked
        grant_invoke(self.function, stack, model_ids)
        if settings.publish:
            self.function.add_to_role_policy(
                iam.PolicyStatement(
                    actions=["appconfig:CreateHostedConfigurationVersion"],
                    resources=[
                        f"arn:{stack.partition}:appconfig:{stack.region}:{stack.account}:application/"
                        f"{model_config.application.application_id}/configurationprofile/"
                        f"{model_config.profile.configuration_profile_id}"
                    ],
                )
            )
        self.schedule = events.Rule(
            self,
            "Schedule",
            description="Foundation-model benchmark (enable with benchmark.schedule_enabled)",
            schedule=events.Schedule.expression(settings.schedule),
            enabled=settings.schedule_enabled,
            targets=[targets.LambdaFunction(self.function, retry_attempts=0)],
        )
        acknowledge(
            self.handler,
            [
                (
                    "IAM5",
                    "grant_read_config covers this application's configuration versions; grant_invoke adds "
                    "'<function arn>:*' for versions and aliases of the two serving functions only.",
                    [
                        "regex:^Resource::arn:aws:appconfig:.*/configuration/\\*$",
                        "regex:^Resource::<ServingSentimentFunction[0-9A-F]+\\.Arn>:\\*$",
                        "regex:^Resource::<ServingAdvisorFunction[0-9A-F]+\\.Arn>:\\*$",
                    ],
                )
            ],
        )
