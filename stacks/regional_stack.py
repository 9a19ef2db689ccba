"""One region of the platform: the API, the circuit breaker and its three tiers, and AppConfig."""

from __future__ import annotations

from typing import Any

from aws_cdk import CfnOutput, Stack
from constructs import Construct

from cdk_app.compliance import acknowledge
from cdk_app.config import PlatformConfig
from stacks.api_front import ApiFront
from stacks.circuit_breaker import CircuitBreaker
from stacks.common import PlatformKey
from stacks.degradation import Degradation
from stacks.fallback import Fallback
from stacks.guardrail import Guardrail
from stacks.model_config import ModelConfig
from stacks.operations import Operations
from stacks.router import Router
from stacks.serving import Serving


class RegionalStack(Stack):
    def __init__(self, scope: Construct, construct_id: str, *, config: PlatformConfig, **kwargs: Any) -> None:
        super().__init__(scope, construct_id, **kwargs)
        layer = config.powertools_layer_version
        key = PlatformKey(self, "PlatformKey").key
        operations = Operations(self, "Operations", key=key, alarm_email=config.alarm_email)
        self.model_config = model_config = ModelConfig(self, "ModelConfig", alarm_topic=operations.topic)
        serving = Serving(self, "Serving", key=key, settings=config.serving)
        router = Router(
            self,
            "Router",
            key=key,
            powertools_layer_version=layer,
            bedrock_model_ids=config.bedrock_models.primary,
            appconfig_application=model_config.application,
            appconfig_environment=model_config.environment,
            appconfig_profile=model_config.profile,
            lambda_providers=serving.targets,
        )
        serving.grant_invoke(router.function)
        fallback = Fallback(
            self, "Fallback", key=key, powertools_layer_version=layer, model_id=config.bedrock_models.fallback
        )
        degradation = Degradation(self, "Degradation", key=key, powertools_layer_version=layer)
        guardrail = Guardrail(self, "Guardrail")
        for function in (router.function, fallback.function):
            guardrail.grant_apply(function)
            for name, value in guardrail.environment.items():
                function.add_environment(name, value)
        self.breaker = CircuitBreaker(
            self,
            "CircuitBreaker",
            key=key,
            router=router.function,
            fallback=fallback.function,
            degradation=degradation.function,
        )
        self.api_front = ApiFront(
            self,
            "ApiFront",
            key=key,
            powertools_layer_version=layer,
            breaker=self.breaker,
            max_prompt_chars=config.max_prompt_chars,
            auth=config.api_auth,
            clients=config.api_clients,
        )
        acknowledge(
            self,
            [
                (
                    "IAMNoInlinePolicy",
                    "CDK grant_* methods write one inline policy per role, scoped to that role's "
                    "exact resources; customer-managed policies would be attachable to other roles and so broader.",
                    None,
                )
            ],
        )
        CfnOutput(self, "ApiUrl", value=self.api_front.url, description="Regional API base URL")
        CfnOutput(self, "StateMachineArn", value=self.breaker.state_machine.state_machine_arn)
