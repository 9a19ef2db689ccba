"""The fallback function: one cheaper, reliable model with conservative parameters."""

from __future__ import annotations

from aws_cdk import Duration, Stack
from aws_cdk import aws_kms as kms
from constructs import Construct

from stacks.bedrock_access import grant_invoke
from stacks.common import PythonFunction


class Fallback(Construct):
    def __init__(
        self, scope: Construct, construct_id: str, *, key: kms.IKey, powertools_layer_version: int, model_id: str
    ) -> None:
        super().__init__(scope, construct_id)
        self.handler = PythonFunction(
            self,
            "Fallback",
            component="fallback",
            description="Answers with the fallback model when the primary circuit is open or failed",
            key=key,
            powertools_layer_version=powertools_layer_version,
            # The InvokeFallback task timeout in the ASL matches this.
            timeout=Duration.seconds(5),
            environment={"FALLBACK_MODEL_ID": model_id},
        )
        self.function = self.handler.function
        grant_invoke(self.function, Stack.of(self), (model_id,))
