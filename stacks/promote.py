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
from stacks.sagemaker_endpoint import SageMakerEndpoint
from stacks.serving import grant_read_promoted


class Promote(Construct):
    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        key: kms.IKey,
        model_config: ModelConfig,
        powertools_layer_version: int,
        endpoint: SageMakerEndpoint | None = None,
        primary_region: str | None = None,
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
            # An endpoint adapter is copied (tens of MB) before its component is created.
            timeout=Duration.seconds(120 if endpoint else 30),
            function_name=promote_function_name(stack.region),
            environment={
                "APPCONFIG_APPLICATION": model_config.application.application_id,
                "APPCONFIG_ENVIRONMENT": model_config.environment.environment_id,
                "APPCONFIG_PROFILE": model_config.profile.configuration_profile_id,
                "APPCONFIG_DEPLOYMENT_STRATEGY": model_config.deployment_strategy.deployment_strategy_id,
                **(endpoint.environment if endpoint else {}),
            },
        )
        if endpoint is not None:
            # Adapters for the endpoint: read from the training output, copied into this region.
            endpoint.grant_promote(self.function.function)
            role = self.function.function.role
            if role is None:  # PythonFunction always makes one; this narrows the type
                raise ValueError("the promote function has no role to grant")
            grant_read_promoted(role, stack, primary_region or stack.region)
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
                ),
                (
                    "IAM5",
                    "Adapter inference components are named after their training job (finai-*), adapters are "
                    "copied under the adapter bucket's adapters/ prefix, and promoted artifacts are read by "
                    "job prefix with Decrypt only through S3 for the artifacts bucket.",
                    [
                        "regex:^Resource::arn:.*:inference-component/finai-\\*$",
                        "regex:^Resource::<.*Adapters.*Arn>/adapters/\\*$",
                        "regex:^Action::s3:.*\\*$",
                        "regex:^Action::kms:.*\\*$",
                        "regex:^Resource::arn:[^:]+:s3:::finai-training-pipelineartifacts\\*/training/finai-\\*/output/model\\.tar\\.gz$",
                        "regex:^Resource::arn:[^:]+:kms:.*:key/\\*$",
                    ],
                ),
            ],
        )
