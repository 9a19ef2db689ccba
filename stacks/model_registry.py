"""The SageMaker model package group that records every approved adapter.

A bank keeps this record: it says which adapter was approved when, on which metrics. So the group
outlives the stack, and a redeploy adopts the group that is already there instead of failing on
its name. CloudFormation can do neither with ``AWS::SageMaker::ModelPackageGroup`` (it cannot
delete a group that holds packages, and a retained group blocks recreating the name), so the group
is created through the SageMaker API: created when missing, left in place on delete.
"""

from __future__ import annotations

from aws_cdk import Stack
from aws_cdk import aws_iam as iam
from aws_cdk import custom_resources as cr
from constructs import Construct

from cdk_app.compliance import acknowledge

# CDK's fixed id for the single provider function every AwsCustomResource in a stack shares.
PROVIDER_ID = "AWS679f53fac002430cb0da5b7982bd2287"


class ModelRegistry(Construct):
    def __init__(self, scope: Construct, construct_id: str, *, group_name: str, description: str) -> None:
        super().__init__(scope, construct_id)
        stack = Stack.of(self)
        self.group_name = group_name
        self.group_arn = (
            f"arn:{stack.partition}:sagemaker:{stack.region}:{stack.account}:model-package-group/{group_name}"
        )
        create = cr.AwsSdkCall(
            service="SageMaker",
            action="createModelPackageGroup",
            parameters={"ModelPackageGroupName": group_name, "ModelPackageGroupDescription": description},
            physical_resource_id=cr.PhysicalResourceId.of(group_name),
            # An existing group is the one a previous deployment left: adopt it. SageMaker answers
            # "already exists" with a ValidationException; the name itself is validated at synth.
            ignore_error_codes_matching="ValidationException",
        )
        self.resource = cr.AwsCustomResource(
            self,
            "Group",
            on_create=create,
            on_update=create,
            # No on_delete: the registry is retained by policy.
            policy=cr.AwsCustomResourcePolicy.from_statements(
                [iam.PolicyStatement(actions=["sagemaker:CreateModelPackageGroup"], resources=[self.group_arn])]
            ),
            install_latest_aws_sdk=False,
        )
        provider = stack.node.try_find_child(PROVIDER_ID)
        if provider is None:
            raise RuntimeError("AwsCustomResource did not create its provider function")
        acknowledge(
            provider,
            [
                (
                    "IAM4",
                    "CDK's AwsCustomResource provider (it creates the model registry once per deployment) runs with "
                    "AWSLambdaBasicExecutionRole for its own logs; it holds no data.",
                    ["Policy::arn:<AWS::Partition>:iam::aws:policy/service-role/AWSLambdaBasicExecutionRole"],
                ),
                ("L1", "The provider's Node.js runtime is chosen and updated by aws-cdk-lib with each release.", None),
                (
                    "LambdaDLQ",
                    "CloudFormation invokes the provider and waits for its answer; a failure fails the deployment.",
                    None,
                ),
                ("LambdaInsideVPC", "The provider calls one SageMaker API during deployments and holds no data.", None),
                (
                    "LambdaConcurrency",
                    "The provider runs once per deployment; reserved concurrency would only take account capacity.",
                    None,
                ),
            ],
        )
