"""Client budgets: the region's budget table and the sweeper that keeps it honest.

The front reserves and settles on the table (two calls per request); the sweeper runs every
minute to release reservations whose request can no longer be answered, to mirror the other
region's committed spend onto this region's counters, and to publish each client's share of
its limits with the alert flag the spend alarm watches.
"""

from __future__ import annotations

from aws_cdk import Duration, RemovalPolicy, Stack
from aws_cdk import aws_dynamodb as dynamodb
from aws_cdk import aws_events as events
from aws_cdk import aws_events_targets as targets
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from constructs import Construct

from cdk_app.compliance import acknowledge
from cdk_app.names import budget_table_name
from stacks.common import SCHEDULED_NO_DLQ, PythonFunction
from stacks.model_config import ModelConfig

# Every minute: a reservation outlives its deadline (60 s) by at most one more minute, and a
# failover finds the other region's spend at most a minute (plus replication) old.
SCHEDULE = events.Schedule.rate(Duration.minutes(1))


class Budgets(Construct):
    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        key: kms.IKey,
        powertools_layer_version: int,
        model_config: ModelConfig,
        peer_region: str,
        appconfig_agent_layer: str | None = None,
    ) -> None:
        super().__init__(scope, construct_id)
        stack = Stack.of(self)
        self._key = key
        # A fixed name, so the other region's sweeper can find this table; it is per region.
        self.table = dynamodb.TableV2(
            self,
            "Table",
            table_name=budget_table_name(stack.region),
            partition_key=dynamodb.Attribute(name="pk", type=dynamodb.AttributeType.STRING),
            billing=dynamodb.Billing.on_demand(),
            encryption=dynamodb.TableEncryptionV2.customer_managed_key(key),
            point_in_time_recovery_specification=dynamodb.PointInTimeRecoverySpecification(
                point_in_time_recovery_enabled=True
            ),
            time_to_live_attribute="expires_at",
            # The counters are operating state; the audit ledger (Object Lock) is the record of
            # spend. Destroying the table lets `make destroy` and a redeploy with the same name work.
            removal_policy=RemovalPolicy.DESTROY,
        )
        acknowledge(
            self.table,
            [
                (
                    "DynamoDBInBackupPlan",
                    "Budget counters are operating state for the current day and month; the audit ledger in the "
                    "Object Lock bucket is the record of spend, and point-in-time recovery covers accidental writes.",
                    None,
                )
            ],
        )
        self.handler = PythonFunction(
            self,
            "Sweeper",
            component="budgets",
            description="Releases expired budget reservations, mirrors the other region's spend, publishes shares",
            key=key,
            powertools_layer_version=powertools_layer_version,
            no_dlq_reason=SCHEDULED_NO_DLQ,
            timeout=Duration.seconds(50),
            memory_size=256,
            environment={
                "BUDGET_TABLE": self.table.table_name,
                "PEER_BUDGET_TABLE": budget_table_name(peer_region),
                "PEER_REGION": peer_region,
                **model_config.strategy_environment(appconfig_agent_layer),
            },
        )
        self.function = self.handler.function
        model_config.grant_read_strategy(self.handler, appconfig_agent_layer)
        self.table.grant(
            self.function,
            "dynamodb:Scan",
            "dynamodb:UpdateItem",
            "dynamodb:DeleteItem",
        )
        key.grant(self.function, "kms:Encrypt", "kms:Decrypt", "kms:GenerateDataKey")
        # The other region's table, by its fixed name; its key is that region's platform key, whose
        # ARN this stack cannot know, so decryption is allowed only through DynamoDB for that table.
        peer_table = stack.format_arn(
            service="dynamodb", region=peer_region, resource="table", resource_name=budget_table_name(peer_region)
        )
        self.function.add_to_role_policy(iam.PolicyStatement(actions=["dynamodb:Scan"], resources=[peer_table]))
        self.function.add_to_role_policy(
            iam.PolicyStatement(
                actions=["kms:Decrypt"],
                resources=[stack.format_arn(service="kms", region=peer_region, resource="key", resource_name="*")],
                conditions={
                    "StringEquals": {
                        "kms:ViaService": f"dynamodb.{peer_region}.amazonaws.com",
                        "kms:EncryptionContext:aws:dynamodb:tableName": budget_table_name(peer_region),
                    }
                },
            )
        )
        acknowledge(
            self.handler,
            [
                (
                    "IAM5",
                    "kms:Decrypt on the other region's keys is allowed only through DynamoDB in that region and "
                    "only for the budget table (kms:ViaService and the table-name encryption context): the key's "
                    "ARN belongs to the other region's stack.",
                    ["regex:^Resource::arn:(aws|<AWS::Partition>):kms:[a-z0-9-]+:<AWS::AccountId>:key/\\*$"],
                ),
            ],
        )
        self.schedule = events.Rule(
            self,
            "Schedule",
            description="Budget sweep every minute: expired reservations, the other region's spend, alerts",
            schedule=SCHEDULE,
            targets=[targets.LambdaFunction(self.function, retry_attempts=0, max_event_age=Duration.minutes(1))],
        )

    def grant_reserve_and_settle(self, grantee: iam.IGrantable) -> None:
        """The front: TransactWriteItems on counters and reservations (each item's own action),
        and BatchGetItem for the remaining budget and the budget route."""
        self.table.grant(
            grantee,
            "dynamodb:UpdateItem",
            "dynamodb:PutItem",
            "dynamodb:DeleteItem",
            "dynamodb:BatchGetItem",
        )
        self._key.grant(grantee, "kms:Encrypt", "kms:Decrypt", "kms:GenerateDataKey")
