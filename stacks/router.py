"""The router function: model selection from AppConfig, then Bedrock or a serving Lambda."""

from __future__ import annotations

import json

from aws_cdk import Duration, Stack
from aws_cdk import aws_appconfig as appconfig
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from constructs import Construct

from cdk_app.compliance import acknowledge
from stacks.common import PythonFunction


def bedrock_model_arns(stack: Stack, model_ids: tuple[str, ...]) -> list[str]:
    """ARNs that Converse needs for each model id: a foundation model, or an inference profile
    plus the foundation models it may route to in any region."""
    arns: list[str] = []
    for model_id in model_ids:
        prefix, _, rest = model_id.partition(".")
        if len(prefix) <= 4 and "." in rest:  # a geography prefix: an inference profile id
            arns.append(f"arn:{stack.partition}:bedrock:{stack.region}:{stack.account}:inference-profile/{model_id}")
            arns.append(f"arn:{stack.partition}:bedrock:*::foundation-model/{rest}")
        else:
            arns.append(f"arn:{stack.partition}:bedrock:{stack.region}::foundation-model/{model_id}")
    return arns


class Router(Construct):
    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        key: kms.IKey,
        powertools_layer_version: int,
        bedrock_model_ids: tuple[str, ...],
        appconfig_environment: appconfig.Environment,
        appconfig_application: appconfig.Application,
        appconfig_profile: appconfig.HostedConfiguration,
        lambda_providers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(scope, construct_id)
        self.handler = PythonFunction(
            self,
            "Router",
            component="router",
            description="Selects the model per use case from AppConfig and calls it through Converse",
            key=key,
            powertools_layer_version=powertools_layer_version,
            timeout=Duration.seconds(15),
            environment={
                "STRATEGY_SOURCE": "appconfig",
                "STRATEGY_CACHE_SECONDS": "300",
                "APPCONFIG_APPLICATION": appconfig_application.application_id,
                "APPCONFIG_ENVIRONMENT": appconfig_environment.environment_id,
                "APPCONFIG_PROFILE": appconfig_profile.configuration_profile_id,
                "LAMBDA_PROVIDERS": json.dumps(lambda_providers or {}, sort_keys=True),
            },
        )
        self.function = self.handler.function
        appconfig_environment.grant_read_config(self.function)
        acknowledge(
            self.handler,
            [
                (
                    "IAM5",
                    "grant_read_config scopes AppConfig reads to this application's environment; the trailing "
                    "configuration/* covers the profile versions published by strategy rollouts.",
                    ["regex:^Resource::arn:aws:appconfig:.*/configuration/\\*$"],
                )
            ],
        )
        self.function.add_to_role_policy(
            iam.PolicyStatement(
                actions=["bedrock:InvokeModel", "bedrock:InvokeModelWithResponseStream"],
                resources=bedrock_model_arns(Stack.of(self), bedrock_model_ids),
            )
        )
