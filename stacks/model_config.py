"""AppConfig: the model-selection strategy, validated by the same JSON Schema the router uses."""

from __future__ import annotations

import json
from typing import Any

from aws_cdk import Duration, RemovalPolicy
from aws_cdk import aws_appconfig as appconfig
from aws_cdk import aws_cloudwatch as cloudwatch
from aws_cdk import aws_cloudwatch_actions as cw_actions
from aws_cdk import aws_iam as iam
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_sns as sns
from constructs import Construct

from cdk_app.compliance import acknowledge
from cdk_app.config import STRATEGY_SCHEMA
from stacks.common import PythonFunction

# How long a function keeps the strategy it read (Powertools' provider cache, or the agent's).
STRATEGY_CACHE_SECONDS = 300


class ModelConfig(Construct):
    def __init__(
        self, scope: Construct, construct_id: str, *, alarm_topic: sns.ITopic, strategy: dict[str, Any]
    ) -> None:
        super().__init__(scope, construct_id)
        # A new strategy that breaks the primary models shows up as model errors within minutes;
        # the deployment watches this alarm and rolls back. It reads the router's EMF metric by
        # name only, so the alarm does not depend on the router (which depends on this config).
        self.rollback_alarm = cloudwatch.Alarm(
            self,
            "ModelErrorsAlarm",
            alarm_description="Primary model errors spiked: roll back the model-selection strategy",
            metric=cloudwatch.Metric(
                namespace="FinAI",
                metric_name="ModelErrors",
                dimensions_map={"service": "router"},
                statistic="Sum",
                period=Duration.minutes(1),
            ),
            threshold=10,
            evaluation_periods=2,
            comparison_operator=cloudwatch.ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
            treat_missing_data=cloudwatch.TreatMissingData.NOT_BREACHING,
        )
        self.rollback_alarm.add_alarm_action(cw_actions.SnsAction(alarm_topic))
        self.application = appconfig.Application(self, "Application", description="FinAI platform model routing")
        # Our own role, because the default one may describe every alarm in the account.
        monitor_role = iam.Role(
            self,
            "MonitorRole",
            assumed_by=iam.ServicePrincipal("appconfig.amazonaws.com"),
            description="Lets AppConfig watch the model-errors alarm during strategy deployments",
        )
        monitor_role.add_to_policy(
            iam.PolicyStatement(actions=["cloudwatch:DescribeAlarms"], resources=[self.rollback_alarm.alarm_arn])
        )
        self.environment = appconfig.Environment(
            self,
            "Environment",
            application=self.application,
            description="Live model-selection strategy",
            monitors=[appconfig.Monitor.from_cloud_watch_alarm(self.rollback_alarm, monitor_role)],
        )
        self.deployment_strategy = appconfig.DeploymentStrategy(
            self,
            "Rollout",
            description="Linear 20% steps with a bake time, rolled back by the model-errors alarm",
            rollout_strategy=appconfig.RolloutStrategy.linear(
                growth_factor=20,
                deployment_duration=Duration.minutes(5),
                final_bake_time=Duration.minutes(5),
            ),
        )
        self.profile = appconfig.HostedConfiguration(
            self,
            "Strategy",
            application=self.application,
            name="model-selection",
            description="Model per use case, weighted A/B variants and breaker thresholds",
            type=appconfig.ConfigurationType.FREEFORM,
            # The region's copy of the shipped strategy (model ids translated for the region).
            content=appconfig.ConfigurationContent.from_inline_json(json.dumps(strategy, indent=2) + "\n"),
            validators=[appconfig.JsonSchemaValidator.from_file(str(STRATEGY_SCHEMA))],
            deployment_strategy=self.deployment_strategy,
            deploy_to=[self.environment],
        )

        # A destroy must be able to delete the profile: CDK retains hosted versions by default, and
        # AppConfig refuses to delete a profile that still has versions. Deletion protection (an
        # account setting that blocks deleting recently read profiles and environments) is
        # bypassed for this stack's own resources, so `make destroy` completes.
        for child in self.profile.node.find_all():
            if isinstance(child, appconfig.CfnHostedConfigurationVersion):
                child.apply_removal_policy(RemovalPolicy.DESTROY)
            if isinstance(child, appconfig.CfnConfigurationProfile):
                child.deletion_protection_check = "BYPASS"
        environment = self.environment.node.default_child
        if isinstance(environment, appconfig.CfnEnvironment):
            environment.deletion_protection_check = "BYPASS"

    def strategy_environment(self, agent_layer: str | None) -> dict[str, str]:
        """What a function needs to read the strategy (shared/strategy/source.py)."""
        return {
            # Through the AppConfig agent extension where its layer is configured for the region,
            # otherwise straight from AppConfig (Powertools' provider, cached in the function).
            "STRATEGY_SOURCE": "agent" if agent_layer else "appconfig",
            "STRATEGY_CACHE_SECONDS": str(STRATEGY_CACHE_SECONDS),
            "APPCONFIG_APPLICATION": self.application.application_id,
            "APPCONFIG_ENVIRONMENT": self.environment.environment_id,
            "APPCONFIG_PROFILE": self.profile.configuration_profile_id,
        }

    def grant_read_strategy(self, handler: PythonFunction, agent_layer: str | None) -> None:
        """Read access to the strategy, and the agent layer where one is configured."""
        if agent_layer:
            handler.function.add_layers(
                lambda_.LayerVersion.from_layer_version_arn(handler, "AppConfigAgent", agent_layer)
            )
        self.environment.grant_read_config(handler.function)
        acknowledge(
            handler,
            [
                (
                    "IAM5",
                    "grant_read_config scopes AppConfig reads to this application's environment; the trailing "
                    "configuration/* covers the profile versions published by strategy rollouts.",
                    ["regex:^Resource::arn:aws:appconfig:.*/configuration/\\*$"],
                )
            ],
        )
