"""The circuit breaker: an EXPRESS state machine from the shipped ASL, and its DynamoDB table."""

from __future__ import annotations

import json
from pathlib import Path

from aws_cdk import RemovalPolicy
from aws_cdk import aws_dynamodb as dynamodb
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_stepfunctions as sfn
from constructs import Construct

from cdk_app.compliance import acknowledge
from stacks.common import asl_state_machine

ASL_FILE = Path(__file__).resolve().parent.parent / "statemachines" / "circuit_breaker.asl.json"
# The circuit's conditional writes, shared with the stream path (lambdas/shared/circuit_transitions.py).
TRANSITIONS_FILE = Path(__file__).resolve().parent.parent / "lambdas" / "shared" / "circuit_transitions.json"
PARTITION_KEY = "model_id"


def transition_placeholders(path: Path = TRANSITIONS_FILE) -> dict[str, str]:
    """``${<Name>Update}`` and ``${<Name>Condition}`` for each transition the ASL performs."""
    raw = json.loads(path.read_text())
    found: dict[str, str] = {}
    for name, transition in raw.items():
        if not name.startswith("_"):
            found[f"{name}Update"] = transition["update"]
            found[f"{name}Condition"] = transition["condition"]
    return found


class CircuitBreaker(Construct):
    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        key: kms.IKey,
        router: lambda_.IFunction,
        fallback: lambda_.IFunction,
        degradation: lambda_.IFunction,
    ) -> None:
        super().__init__(scope, construct_id)
        self._key = key
        self.table = dynamodb.TableV2(
            self,
            "Circuits",
            partition_key=dynamodb.Attribute(name=PARTITION_KEY, type=dynamodb.AttributeType.STRING),
            billing=dynamodb.Billing.on_demand(),
            encryption=dynamodb.TableEncryptionV2.customer_managed_key(key),
            point_in_time_recovery_specification=dynamodb.PointInTimeRecoverySpecification(
                point_in_time_recovery_enabled=True
            ),
            removal_policy=RemovalPolicy.DESTROY,
        )
        acknowledge(
            self.table,
            [
                (
                    "DynamoDBInBackupPlan",
                    "Circuit state is operational and rebuilds itself from traffic in one "
                    "cooldown; point-in-time recovery covers accidental writes, so an AWS Backup plan adds nothing.",
                    None,
                )
            ],
        )
        self.state_machine, self.log_group = asl_state_machine(
            self,
            asl_file=ASL_FILE,
            state_machine_type=sfn.StateMachineType.EXPRESS,
            substitutions={
                "RouterFunctionArn": router.function_arn,
                "FallbackFunctionArn": fallback.function_arn,
                "DegradationFunctionArn": degradation.function_arn,
                "CircuitTableName": self.table.table_name,
                **transition_placeholders(),
            },
            key=key,
        )
        # The ASL file is opaque to CDK, so the grants it needs are spelled out: read and update
        # one item per model, nothing else on the table.
        self.table.grant(self.state_machine, "dynamodb:GetItem", "dynamodb:UpdateItem")
        key.grant_encrypt_decrypt(self.state_machine)
        for function in (router, fallback, degradation):
            function.grant_invoke(self.state_machine)
        acknowledge(
            self.state_machine,
            [
                (
                    "IAM5",
                    "lambda:InvokeFunction is granted on the three functions' ARNs and their versions "
                    "(ARN:*), which Step Functions needs to invoke a qualified function.",
                    ["regex:^Resource::<[A-Za-z0-9]+Function[A-Z0-9]{8}\\.Arn>:\\*$"],
                ),
                ("IAM5", "Vended log delivery and X-Ray actions accept no resource ARN.", ["Resource::*"]),
                (
                    "IAM5",
                    "KMS data-key actions are granted on the platform key only.",
                    ["Action::kms:GenerateDataKey*", "Action::kms:ReEncrypt*"],
                ),
            ],
        )

    def grant_read_circuits(self, grantee: iam.IGrantable) -> None:
        self.table.grant(grantee, "dynamodb:Scan", "dynamodb:GetItem")
        self._key.grant_decrypt(grantee)

    def grant_stream_transitions(self, grantee: iam.IGrantable) -> None:
        """The stream path's breaker (lambdas/shared/breaker.py): the state machine's own reads and
        conditional writes on the circuit items, nothing else on the table."""
        self.table.grant(grantee, "dynamodb:GetItem", "dynamodb:UpdateItem")
        self._key.grant(grantee, "kms:Encrypt", "kms:Decrypt", "kms:GenerateDataKey")

    def grant_request_probes(self, grantee: iam.IGrantable) -> None:
        """The health route asks for a probe of a cooled-down circuit (a conditional write on its
        probe_requested_at) and starts the probe execution asynchronously."""
        self.table.grant(grantee, "dynamodb:UpdateItem")
        self._key.grant(grantee, "kms:Encrypt", "kms:Decrypt", "kms:GenerateDataKey")
        self.state_machine.grant_start_execution(grantee)
