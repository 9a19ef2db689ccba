"""The router function: model selection from AppConfig, then Bedrock or a serving Lambda."""

from __future__ import annotations

import json

from aws_cdk import Duration, Stack
from aws_cdk import aws_appconfig as appconfig
from aws_cdk import aws_kms as kms
from aws_cdk import aws_lambda as lambda_
from constructs import Construct

from cdk_app.compliance import acknowledge
from stacks.bedrock_access import grant_invoke
from stacks.common import PythonFunction


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
        appconfig_agent_layer: str | None = None,
    ) -> None:
        super().__init__(scope, construct_id)
        self.handler = PythonFunction(
            self,
            "Router",
            component="router",
            description="Selects the model per use case from AppConfig and calls it through Converse",
            key=key,
            powertools_layer_version=powertools_layer_version,
            # The InvokePrimary/InvokeProbe task timeout in the ASL matches this.
            timeout=Duration.seconds(9),
            environment={
                # Through the AppConfig agent extension where its layer is configured for the region,
                # otherwise straight from AppConfig (Powertools' provider, cached in the function).
                "STRATEGY_SOURCE": "agent" if appconfig_agent_layer else "appconfig",
                "STRATEGY_CACHE_SECONDS": "300",
                "APPCONFIG_APPLICATION": appconfig_application.application_id,
                "APPCONFIG_ENVIRONMENT": appconfig_environment.environment_id,
                "APPCONFIG_PROFILE": appconfig_profile.configuration_profile_id,
                "LAMBDA_PROVIDERS": json.dumps(lambda_providers or {}, sort_keys=True),
            },
        )
        self.function = self.handler.function
        if appconfig_agent_layer:
            self.function.add_layers(
                lambda_.LayerVersion.from_layer_version_arn(self, "AppConfigAgent", appconfig_agent_layer)
            )
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
        # Converse needs bedrock:InvokeModel only; streaming is not called here.
        grant_invoke(self.function, Stack.of(self), bedrock_model_ids)
