"""The SageMaker model package group that records every approved adapter.

A bank keeps this record: which adapter was approved when, on which metrics. So the group outlives
the stack, and a redeploy adopts the group that is already there instead of failing on its name.
``AWS::SageMaker::ModelPackageGroup`` can do neither (CloudFormation cannot delete a group that
holds packages, and a retained group blocks recreating the name), so a small custom resource
(``lambdas/model_registry``) creates the group when it is missing and leaves it on delete.
"""

from __future__ import annotations

from aws_cdk import CustomResource, Duration, Stack
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from constructs import Construct

from stacks.common import PythonFunction

NO_DLQ = "CloudFormation invokes it and waits for its answer; a failure fails the deployment, so nothing is lost."


class ModelRegistry(Construct):
    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        group_name: str,
        description: str,
        key: kms.IKey,
        powertools_layer_version: int,
    ) -> None:
        super().__init__(scope, construct_id)
        stack = Stack.of(self)
        self.group_name = group_name
        arn = f"arn:{stack.partition}:sagemaker:{stack.region}:{stack.account}"
        self.group_arn = f"{arn}:model-package-group/{group_name}"
        self.handler = PythonFunction(
            self,
            "ModelRegistry",
            component="model_registry",
            description="Creates the model package group when missing; keeps it when the stack is deleted",
            key=key,
            powertools_layer_version=powertools_layer_version,
            timeout=Duration.seconds(60),
            memory_size=256,
            no_dlq_reason=NO_DLQ,
        )
        self.handler.function.add_to_role_policy(
            iam.PolicyStatement(
                actions=["sagemaker:DescribeModelPackageGroup", "sagemaker:CreateModelPackageGroup"],
                resources=[self.group_arn],
            )
        )
        self.resource = CustomResource(
            self,
            "Group",
            service_token=self.handler.function.function_arn,
            resource_type="Custom::ModelPackageGroup",
            properties={"GroupName": group_name, "Description": description},
        )
