"""The audit ledger: FIFO queue, chaining function, ledger table and the Object Lock archive.

The front sends each request's audit record to the FIFO queue, grouped by chain (region and UTC
day), so the ledger function receives each chain's records in order, one batch at a time. It
appends them to the chain in the ledger table (conditional on each position being free) and writes
each batch as one object to the archive bucket, whose default Object Lock retention (COMPLIANCE
mode by default) keeps every version for the configured period: broker-dealer record keeping such
as SEC rule 17a-4 is why this exists.
"""

from __future__ import annotations

from aws_cdk import Duration, RemovalPolicy
from aws_cdk import aws_dynamodb as dynamodb
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_lambda_event_sources as sources
from aws_cdk import aws_s3 as s3
from aws_cdk import aws_sqs as sqs
from constructs import Construct

from cdk_app.compliance import acknowledge
from cdk_app.config import LedgerSettings
from stacks.common import PythonFunction, access_log_bucket

LEDGER_TIMEOUT = Duration.seconds(30)
# AWS's guidance for SQS event sources: at least six times the function's timeout.
VISIBILITY_TIMEOUT = Duration.seconds(6 * 30)
# A record that fails this often is not going to chain; it waits in the DLQ (alarmed) for a person.
MAX_RECEIVE_COUNT = 10


class Ledger(Construct):
    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        key: kms.IKey,
        powertools_layer_version: int,
        settings: LedgerSettings,
    ) -> None:
        super().__init__(scope, construct_id)
        self.dead_letters = sqs.Queue(
            self,
            "DeadLetters",
            fifo=True,
            encryption=sqs.QueueEncryption.KMS,
            encryption_master_key=key,
            enforce_ssl=True,
            retention_period=Duration.days(14),
        )
        self.queue = sqs.Queue(
            self,
            "Queue",
            fifo=True,
            # High-throughput FIFO: ordering (and the throughput limit) per message group, i.e. per chain.
            deduplication_scope=sqs.DeduplicationScope.MESSAGE_GROUP,
            fifo_throughput_limit=sqs.FifoThroughputLimit.PER_MESSAGE_GROUP_ID,
            encryption=sqs.QueueEncryption.KMS,
            encryption_master_key=key,
            enforce_ssl=True,
            visibility_timeout=VISIBILITY_TIMEOUT,
            retention_period=Duration.days(14),
            dead_letter_queue=sqs.DeadLetterQueue(queue=self.dead_letters, max_receive_count=MAX_RECEIVE_COUNT),
        )
        self.table = dynamodb.TableV2(
            self,
            "Table",
            partition_key=dynamodb.Attribute(name="chain", type=dynamodb.AttributeType.STRING),
            sort_key=dynamodb.Attribute(name="seq", type=dynamodb.AttributeType.NUMBER),
            billing=dynamodb.Billing.on_demand(),
            encryption=dynamodb.TableEncryptionV2.customer_managed_key(key),
            point_in_time_recovery_specification=dynamodb.PointInTimeRecoverySpecification(
                point_in_time_recovery_enabled=True
            ),
            time_to_live_attribute="expires_at",
            deletion_protection=True,
            removal_policy=RemovalPolicy.RETAIN,
        )
        acknowledge(
            self.table,
            [
                (
                    "DynamoDBInBackupPlan",
                    "The ledger table is the queryable copy; the Object Lock archive is the record, and "
                    "point-in-time recovery and deletion protection cover the table.",
                    None,
                )
            ],
        )
        self.access_logs = access_log_bucket(self, "AccessLogs")
        self.bucket = s3.Bucket(
            self,
            "Archive",
            encryption=s3.BucketEncryption.KMS,
            encryption_key=key,
            bucket_key_enabled=True,
            versioned=True,
            enforce_ssl=True,
            block_public_access=s3.BlockPublicAccess.BLOCK_ALL,
            object_ownership=s3.ObjectOwnership.BUCKET_OWNER_ENFORCED,
            server_access_logs_bucket=self.access_logs,
            server_access_logs_prefix="ledger-archive/",
            object_lock_enabled=True,
            object_lock_default_retention=(
                s3.ObjectLockRetention.compliance(Duration.days(settings.retention_days))
                if settings.retention_mode == "COMPLIANCE"
                else s3.ObjectLockRetention.governance(Duration.days(settings.retention_days))
            ),
            # Locked versions cannot be deleted before their retention ends, by anyone.
            removal_policy=RemovalPolicy.RETAIN,
        )
        acknowledge(
            self.bucket,
            [
                (
                    "S3BucketReplicationEnabled",
                    "Each region archives its own chains; the other region's archive holds its own. Replicating "
                    "a locked archive across regions is a deployer's choice (S3 replication keeps lock settings).",
                    None,
                )
            ],
        )
        self.handler = PythonFunction(
            self,
            "Chainer",
            component="ledger",
            description="Chains audit records per region and day and archives them under Object Lock",
            key=key,
            powertools_layer_version=powertools_layer_version,
            no_dlq_reason="Fed by an SQS event source: a failing batch returns to the queue and, after "
            f"{MAX_RECEIVE_COUNT} receives, to the queue's own (alarmed) dead-letter queue.",
            timeout=LEDGER_TIMEOUT,
            memory_size=256,
            environment={"LEDGER_TABLE": self.table.table_name, "LEDGER_BUCKET": self.bucket.bucket_name},
        )
        self.function = self.handler.function
        self.function.add_event_source(sources.SqsEventSource(self.queue, batch_size=10))
        self.table.grant(self.function, "dynamodb:Query", "dynamodb:PutItem")
        self.bucket.grant_put(self.function, "ledger/*")
        key.grant(self.function, "kms:Encrypt", "kms:Decrypt", "kms:GenerateDataKey")
        acknowledge(
            self.handler,
            [
                (
                    "IAM5",
                    "The ledger function writes only under the archive's ledger/ prefix; SQS and KMS "
                    "data-key actions are on this queue and the platform key only.",
                    [
                        "regex:^Resource::<.*Archive[0-9A-F]+\\.Arn>/ledger/\\*$",
                        "Action::s3:Abort*",
                        "Action::kms:GenerateDataKey*",
                        "Action::kms:ReEncrypt*",
                    ],
                )
            ],
        )

    def grant_send(self, grantee: iam.IGrantable) -> None:
        self.queue.grant_send_messages(grantee)
