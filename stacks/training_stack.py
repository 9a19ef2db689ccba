"""The training pipeline, deployed in the primary region beside its AppConfig strategy."""

from __future__ import annotations

from typing import Any

import cdk_monitoring_constructs as mc
from aws_cdk import CfnOutput, Stack
from constructs import Construct

from cdk_app.compliance import acknowledge
from cdk_app.config import PlatformConfig
from stacks.cleanup import Cleanup
from stacks.common import PlatformKey
from stacks.operations import Operations
from stacks.training_pipeline import TrainingPipeline


class TrainingStack(Stack):
    def __init__(self, scope: Construct, construct_id: str, *, config: PlatformConfig, **kwargs: Any) -> None:
        super().__init__(scope, construct_id, **kwargs)
        key = PlatformKey(self, "TrainingKey").key
        self.pipeline = TrainingPipeline(
            self,
            "Pipeline",
            key=key,
            settings=config.training,
            regions=tuple(config.regions),
            powertools_layer_version=config.powertools_layer_version,
            endpoint=config.serving.endpoint,
        )
        self.cleanup = Cleanup(
            self,
            "Cleanup",
            key=key,
            powertools_layer_version=config.powertools_layer_version,
            settings=config.training,
            artifacts=self.pipeline.artifacts,
        )
        operations = Operations(self, "Operations", key=key, alarm_email=config.alarm_email)
        self.monitoring = mc.MonitoringFacade(
            self,
            "Monitoring",
            alarm_factory_defaults=mc.AlarmFactoryDefaults(
                actions_enabled=True,
                alarm_name_prefix="FinAi-training",
                action=mc.SnsAlarmActionStrategy(on_alarm_topic=operations.topic),
            ),
            dashboard_factory=mc.DefaultDashboardFactory(
                self, "Dashboards", dashboard_name_prefix=f"FinAi-training-{self.region}"
            ),
        )
        self.monitoring.add_large_header("Adapter training pipeline")
        self.monitoring.monitor_step_function(
            state_machine=self.pipeline.state_machine,
            alarm_friendly_name="Pipeline",
            human_readable_name="Training pipeline (train, gate, register, promote)",
            add_failed_execution_count_alarm=(
                {"Warning": mc.ErrorCountThreshold(max_error_count=0)} if config.monitoring.alarms_enabled else None
            ),
        )
        acknowledge(
            self,
            [
                (
                    "IAMNoInlinePolicy",
                    "CDK grant_* methods write one inline policy per role, scoped to "
                    "that role's exact resources; managed policies would be attachable elsewhere.",
                    None,
                )
            ],
        )
        CfnOutput(self, "DataBucket", value=self.pipeline.data.bucket_name)
        CfnOutput(self, "PipelineArn", value=self.pipeline.state_machine.state_machine_arn)
        # What python -m training_jobs.launch needs besides the buckets: the image and the code.
        CfnOutput(self, "TrainingImageUri", value=self.pipeline.image)
        CfnOutput(self, "SourceDirUri", value=self.pipeline.sourcedir.s3_object_url)
