"""Least-privilege Bedrock invoke grants, in the ARN forms AWS documents for each kind of model id.

- A foundation model served in the region: its regional foundation-model ARN.
- A geographic inference profile (``us.``, ``eu.``...): the profile ARN, plus the foundation model
  in every region of the profile's geography. The foundation-model statement carries the
  ``bedrock:InferenceProfileArn`` condition, so those models can be reached only through our
  profiles, never called directly in another region.
- A global profile: the profile, the source-region model and the region-less model ARN.
"""

from __future__ import annotations

from collections.abc import Sequence

from aws_cdk import Stack
from aws_cdk import aws_iam as iam

from cdk_app.model_catalogue import catalogue

INVOKE = "bedrock:InvokeModel"


def invoke_statements(
    stack: Stack, model_ids: Sequence[str], actions: Sequence[str] = (INVOKE,)
) -> list[iam.PolicyStatement]:
    direct: list[str] = []
    profiles: list[str] = []
    routed: list[str] = []
    for model_id in dict.fromkeys(model_ids):
        resources = catalogue().invoke_resources(
            model_id, partition=stack.partition, region=stack.region, account=stack.account
        )
        direct += resources.direct
        profiles += resources.profiles
        routed += resources.routed
    statements: list[iam.PolicyStatement] = []
    if direct or profiles:
        statements.append(iam.PolicyStatement(actions=list(actions), resources=sorted({*direct, *profiles})))
    if routed:
        statements.append(
            iam.PolicyStatement(
                actions=list(actions),
                resources=sorted(set(routed)),
                conditions={"ArnLike": {"bedrock:InferenceProfileArn": sorted(set(profiles))}},
            )
        )
    return statements


def grant_invoke(
    grantee: iam.IGrantable, stack: Stack, model_ids: Sequence[str], actions: Sequence[str] = (INVOKE,)
) -> None:
    for statement in invoke_statements(stack, model_ids, actions):
        if grantee.grant_principal.add_to_principal_policy(statement).statement_added is False:
            raise ValueError("could not add the Bedrock grant to the principal's policy")
