"""The degradation function: static, compliant answers that need no model at all."""

from __future__ import annotations

from aws_cdk import Duration
from aws_cdk import aws_kms as kms
from constructs import Construct

from stacks.common import PythonFunction


class Degradation(Construct):
    def __init__(self, scope: Construct, construct_id: str, *, key: kms.IKey, powertools_layer_version: int) -> None:
        super().__init__(scope, construct_id)
        self.handler = PythonFunction(
            self,
            "Degradation",
            component="degradation",
            description="Returns static regulation-compliant answers when no model can answer",
            key=key,
            powertools_layer_version=powertools_layer_version,
            # The InvokeDegradation task timeout in the ASL matches this.
            timeout=Duration.seconds(2),
            memory_size=256,
        )
        self.function = self.handler.function
