"""The router function: model selection from AppConfig, then Bedrock, a serving Lambda or an endpoint."""

from __future__ import annotations

import json

from aws_cdk import Duration, Stack
from aws_cdk import aws_kms as kms
from constructs import Construct

from stacks.bedrock_access import grant_invoke
from stacks.common import PythonFunction
from stacks.model_config import ModelConfig


class Router(Construct):
    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        key: kms.IKey,
        powertools_layer_version: int,
        bedrock_model_ids: tuple[str, ...],
        model_config: ModelConfig,
        lambda_providers: dict[str, str] | None = None,
        sagemaker_endpoints: dict[str, str] | None = None,
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
                **model_config.strategy_environment(appconfig_agent_layer),
                "LAMBDA_PROVIDERS": json.dumps(lambda_providers or {}, sort_keys=True),
                "SAGEMAKER_ENDPOINTS": json.dumps(sagemaker_endpoints or {}, sort_keys=True),
            },
        )
        self.function = self.handler.function
        model_config.grant_read_strategy(self.handler, appconfig_agent_layer)
        # Converse needs bedrock:InvokeModel only; streaming is not called here.
        grant_invoke(self.function, Stack.of(self), bedrock_model_ids)
