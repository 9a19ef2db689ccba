"""The training pipeline, deployed in the primary region beside its AppConfig strategy."""

from __future__ import annotations

from typing import Any

from aws_cdk import CfnOutput, Stack
from constructs import Construct

from cdk_app.compliance import acknowledge
from cdk_app.config import PlatformConfig
from stacks.common import PlatformKey
from stacks.model_config import ModelConfig
from stacks.training_pipeline import TrainingPipeline


class TrainingStack(Stack):
    def __init__(
        self, scope: Construct, construct_id: str, *, config: PlatformConfig, model_config: ModelConfig, **kwargs: Any
    ) -> None:
        super().__init__(scope, construct_id, **kwargs)
        key = PlatformKey(self, "TrainingKey").key
        self.pipeline = TrainingPipeline(
            self,
            "Pipeline",
            key=key,
            settings=config.training,
            model_config=model_config,
            powertools_layer_version=config.powertools_layer_version,
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
