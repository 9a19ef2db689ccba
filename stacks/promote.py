"""Each region's promote function: publishes promoted adapters into this region's strategy.

The training pipeline runs in the primary region; its promotion step (``promotion.handler``)
invokes this function in every region by its fixed name (``cdk_app.names.promote_function_name``).
The function may write only this region's model-selection profile and start deployments only in
this region's environment, with this region's rollback-on-alarm strategy.
"""

from __future__ import annotations

from aws_cdk import Duration, Stack
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from constructs import Construct

from cdk_app.compliance import acknowledge
from cdk_app.names import promote_function_name
from stacks.common import PythonFunction
from stacks.model_config import ModelConfig


class Promote(Construct):
    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        key: kms.IKey,
        model_config: ModelConfig,
        powertools_layer_version: int,
    ) -> None:
        super().__init__(scope, construct_id)
        stack = Stack.of(self)
        self.function = PythonFunction(
            self,
            "Function",
            component="promote",
            description="Publishes promoted adapters through this region's AppConfig strategy and deployment",
            key=key,
            powertools_layer_version=powertools_layer_version,
            timeout=Duration.seconds(30),
            function_name=promote_function_name(stack.region),
            environment={
                "APPCONFIG_APPLICATION": model_config.application.application_id,
                "APPCONFIG_ENVIRONMENT": model_config.environment.environment_id,
                "APPCONFIG_PROFILE": model_config.profile.configuration_profile_id,
                "APPCONFIG_DEPLOYMENT_STRATEGY": model_config.deployment_strategy.deployment_strategy_id,
            },
        )
        arn = f"arn:{stack.partition}:appconfig:{stack.region}:{stack.account}"
        app = model_config.application.application_id
        profile = f"{arn}:application/{app}/configurationprofile/{model_config.profile.configuration_profile_id}"
        self.function.function.add_to_role_policy(
            iam.PolicyStatement(
                actions=[
                    "appconfig:ListHostedConfigurationVersions",
                    "appconfig:GetHostedConfigurationVersion",
                    "appconfig:CreateHostedConfigurationVersion",
                ],
                resources=[profile, f"{profile}/hostedconfigurationversion/*"],
            )
        )
        self.function.function.add_to_role_policy(
            iam.PolicyStatement(
                actions=["appconfig:StartDeployment"],
                resources=[
                    f"{arn}:application/{app}/environment/{model_config.environment.environment_id}",
                    f"{arn}:deploymentstrategy/{model_config.deployment_strategy.deployment_strategy_id}",
                    profile,
                ],
            )
        )
        acknowledge(
            self.function,
            [
                (
                    "IAM5",
                    "Hosted configuration versions are created by this function "
                    "and numbered by AppConfig, so their ARNs end in a version wildcard.",
                    ["regex:^Resource::arn:aws:appconfig:.*/hostedconfigurationversion/\\*$"],
                )
            ],
        )
