"""One region of the platform: the API, the circuit breaker and its three tiers, and AppConfig."""

from __future__ import annotations

from typing import Any

from aws_cdk import CfnOutput, Stack
from constructs import Construct

from cdk_app.compliance import acknowledge
from cdk_app.config import PlatformConfig
from stacks.api_front import STAGE, ApiFront
from stacks.api_stream import ApiStream
from stacks.benchmark import Benchmark
from stacks.budgets import Budgets
from stacks.circuit_breaker import CircuitBreaker
from stacks.circuit_monitor import CircuitMonitor
from stacks.common import PlatformKey
from stacks.degradation import Degradation
from stacks.dns_failover import DnsFailover, zone_name_for
from stacks.fallback import Fallback
from stacks.guardrail import Guardrail
from stacks.ledger import Ledger
from stacks.model_config import ModelConfig
from stacks.monitoring import Monitoring
from stacks.operations import Operations
from stacks.promote import Promote
from stacks.router import Router
from stacks.serving import Serving


class RegionalStack(Stack):
    def __init__(self, scope: Construct, construct_id: str, *, config: PlatformConfig, **kwargs: Any) -> None:
        super().__init__(scope, construct_id, **kwargs)
        layer = config.powertools_layer_version
        region = Stack.of(self).region
        models = config.models_in(region)
        key = PlatformKey(self, "PlatformKey").key
        operations = Operations(self, "Operations", key=key, alarm_email=config.alarm_email)
        self.model_config = model_config = ModelConfig(
            self, "ModelConfig", alarm_topic=operations.topic, strategy=config.strategy_for(region)
        )
        serving = Serving(self, "Serving", key=key, settings=config.serving, primary_region=config.primary_region)
        # The training pipeline (primary region) promotes into every region through this function.
        self.promote = Promote(
            self,
            "Promote",
            key=key,
            model_config=model_config,
            powertools_layer_version=layer,
            endpoint=serving.endpoint,
            primary_region=config.primary_region,
        )
        router = Router(
            self,
            "Router",
            key=key,
            powertools_layer_version=layer,
            bedrock_model_ids=models.primary,
            model_config=model_config,
            lambda_providers=serving.targets,
            sagemaker_endpoints=serving.endpoints,
            appconfig_agent_layer=config.appconfig_agent_layers.get(region),
        )
        serving.grant_invoke(router.function)
        acknowledge(
            router.handler,
            [
                (
                    "IAM5",
                    "grant_invoke adds '<function arn>:*' so the router may call published versions and aliases "
                    "of the two serving functions; it names no other function.",
                    [
                        "regex:^Resource::<ServingSentimentFunction[0-9A-F]+\\.Arn>:\\*$",
                        "regex:^Resource::<ServingAdvisorFunction[0-9A-F]+\\.Arn>:\\*$",
                    ],
                )
            ],
        )
        fallback = Fallback(self, "Fallback", key=key, powertools_layer_version=layer, model_id=models.fallback)
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
        self.circuit_monitor = CircuitMonitor(
            self, "CircuitMonitor", key=key, powertools_layer_version=layer, breaker=self.breaker
        )
        peer = config.secondary_region if region == config.primary_region else config.primary_region
        self.budgets = Budgets(
            self,
            "Budgets",
            key=key,
            powertools_layer_version=layer,
            model_config=model_config,
            peer_region=peer,
            appconfig_agent_layer=config.appconfig_agent_layers.get(region),
        )
        self.ledger = Ledger(self, "Ledger", key=key, powertools_layer_version=layer, settings=config.ledger)
        self.api_front = ApiFront(
            self,
            "ApiFront",
            key=key,
            powertools_layer_version=layer,
            breaker=self.breaker,
            max_prompt_chars=config.max_prompt_chars,
            auth=config.api_auth,
            clients=config.api_clients,
            usage_plan=config.usage_plan,
            model_config=model_config,
            budgets=self.budgets,
            ledger=self.ledger,
            fallback_model_id=models.fallback,
            appconfig_agent_layer=config.appconfig_agent_layers.get(region),
        )
        self.api_stream = ApiStream(
            self,
            "ApiStream",
            key=key,
            powertools_layer_version=layer,
            settings=config.streaming,
            front=self.api_front,
            breaker=self.breaker,
            budgets=self.budgets,
            ledger=self.ledger,
            model_config=model_config,
            serving=serving,
            guardrail=guardrail,
            bedrock_model_ids=models.primary,
            fallback_model_id=models.fallback,
            max_prompt_chars=config.max_prompt_chars,
            appconfig_agent_layer=config.appconfig_agent_layers.get(region),
        )
        self.benchmark = Benchmark(
            self,
            "Benchmark",
            key=key,
            powertools_layer_version=layer,
            settings=config.benchmark,
            model_config=model_config,
            serving=serving,
            model_ids=models.primary,
            model_prices=config.model_prices,
        )
        strategy = config.strategy_for(region)
        self.monitoring = Monitoring(
            self,
            "Monitoring",
            settings=config.monitoring,
            topic=operations.topic,
            api=self.api_front.api,
            stage=STAGE,
            functions={
                "ApiFront": self.api_front.function,
                "ApiStream": self.api_stream.function,
                "Router": router.function,
                "Fallback": fallback.function,
                "Degradation": degradation.function,
                "CircuitMonitor": self.circuit_monitor.function,
                "Budgets": self.budgets.function,
                "Ledger": self.ledger.function,
                "Advisor": serving.advisor.function,
                "Sentiment": serving.sentiment.function,
            },
            state_machine=self.breaker.state_machine,
            model_ids=models.all_ids,
            model_prices=config.model_prices,
            variants=[(uc, v["name"]) for uc, entry in strategy["use_cases"].items() for v in entry["variants"]],
            clients=config.budget_clients,
            stream_variants=sorted(
                {(v["model_id"], v["name"]) for entry in strategy["use_cases"].values() for v in entry["variants"]}
                | {(models.fallback, "fallback")}
            ),
            audit_queue=self.ledger.queue,
            audit_dead_letters=self.ledger.dead_letters,
            endpoint_name=serving.endpoint.endpoint_name if serving.endpoint else None,
        )
        if config.dns_failover_enabled and config.domain_name and config.hosted_zone_id:
            if not (self.monitoring.five_xx_alarm and self.monitoring.model_path_alarm):
                raise ValueError("DNS failover needs the model-path alarms (monitoring.alarms_enabled)")
            self.dns = DnsFailover(
                self,
                "DnsFailover",
                domain_name=config.domain_name,
                hosted_zone_id=config.hosted_zone_id,
                zone_name=config.hosted_zone_name or zone_name_for(config.domain_name),
                failover="PRIMARY" if self.region == config.primary_region else "SECONDARY",
                api=self.api_front.api,
                stage=STAGE,
                # The model path's health is the HTTPS check's to judge (health says "degraded"
                # when every circuit is open), at 10-s resolution both ways. The ModelPathUnhealthy
                # alarm, fed once a minute, would hold the record unhealthy for minutes after the
                # health probes closed the circuits; it stays an operator alarm (RegionUnhealthy).
                alarms=[(self.monitoring.five_xx_alarm_name, self.monitoring.five_xx_alarm)],
            )
            CfnOutput(self, "FailoverRecord", value=self.dns.record.domain_name, description="Route 53 failover name")
        # Last, so it covers every role above.
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
