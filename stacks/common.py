"""Building blocks every regional component uses: the platform key and Python functions."""

from __future__ import annotations

from pathlib import Path

from aws_cdk import Duration, RemovalPolicy, Stack
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_logs as logs
from aws_cdk import aws_s3 as s3
from aws_cdk import aws_stepfunctions as sfn
from constructs import Construct

from cdk_app.compliance import acknowledge

LAMBDAS_DIR = Path(__file__).resolve().parent.parent / "lambdas"
# The container functions' sources (stacks/serving.py) and caches never belong in the zip asset; leaving caches out
# also keeps the asset hash, and so the template, identical between machines.
ASSET_EXCLUDES = [
    "**/__pycache__",
    "**/*.pyc",
    "**/.pytest_cache",
    "advisor",
    "sentiment",
    "serving",
]
# Python 3.13 matches the Powertools layer build named below; the code is also tested on 3.11.
RUNTIME = lambda_.Runtime.PYTHON_3_13
DEFAULT_TIMEOUT = Duration.seconds(10)
SYNC_NO_DLQ = (
    "Invoked synchronously (API Gateway and Step Functions); failures return to the caller, which "
    "retries or degrades, so there is no asynchronous event to dead-letter."
)
SCHEDULED_NO_DLQ = (
    "Started by a schedule; a failed run is logged and alarmed, and the next scheduled run does the same "
    "work again, so a dead-lettered event would have nothing to replay."
)
POWERTOOLS_LAYER = "arn:aws:lambda:{region}:017000801446:layer:AWSLambdaPowertoolsPythonV3-python313-x86_64:{version}"


class PlatformKey(Construct):
    """The regional customer-managed key for tables, logs and topics, with rotation on."""

    def __init__(self, scope: Construct, construct_id: str) -> None:
        super().__init__(scope, construct_id)
        stack = Stack.of(self)
        self.key = kms.Key(
            self,
            "Key",
            description="FinAI platform data at rest (circuit state, logs, alarm topic)",
            enable_key_rotation=True,
            removal_policy=RemovalPolicy.RETAIN,
        )
        # CloudWatch Logs encrypts with the key only when the key policy names the service and
        # the encryption context pins it to this account's log groups.
        self.key.add_to_resource_policy(
            iam.PolicyStatement(
                principals=[iam.ServicePrincipal(f"logs.{stack.region}.amazonaws.com")],
                actions=["kms:Encrypt*", "kms:Decrypt*", "kms:ReEncrypt*", "kms:GenerateDataKey*", "kms:Describe*"],
                resources=["*"],
                conditions={
                    "ArnLike": {
                        "kms:EncryptionContext:aws:logs:arn": (
                            f"arn:{stack.partition}:logs:{stack.region}:{stack.account}:*"
                        )
                    }
                },
            )
        )


def access_log_bucket(scope: Construct, construct_id: str) -> s3.Bucket:
    """A bucket for S3 server access logs (of the training data, artifacts and ledger archive)."""
    bucket = s3.Bucket(
        scope,
        construct_id,
        # S3 server access logging can deliver only to SSE-S3 buckets.
        encryption=s3.BucketEncryption.S3_MANAGED,
        versioned=True,
        enforce_ssl=True,
        block_public_access=s3.BlockPublicAccess.BLOCK_ALL,
        object_ownership=s3.ObjectOwnership.BUCKET_OWNER_ENFORCED,
        removal_policy=RemovalPolicy.RETAIN,
    )
    itself = "This is the access-log bucket itself; logging it into itself would recurse."
    acknowledge(
        bucket,
        [
            ("S1", itself, None),
            ("S3BucketLoggingEnabled", itself, None),
            ("S3DefaultEncryptionKMS", "S3 server access logging delivers only to SSE-S3 (AES-256) buckets.", None),
            (
                "S3BucketReplicationEnabled",
                "Access logs are regional audit records; replication is not required.",
                None,
            ),
        ],
    )
    return bucket


def grant_image_pull(role: iam.IRole, partition: str, repository: tuple[str, str, str]) -> None:
    """Pull one ECR repository's images: ``repository`` is (account, region, name)."""
    account, region, name = repository
    role.add_to_principal_policy(
        iam.PolicyStatement(
            actions=["ecr:BatchGetImage", "ecr:GetDownloadUrlForLayer", "ecr:BatchCheckLayerAvailability"],
            resources=[f"arn:{partition}:ecr:{region}:{account}:repository/{name}"],
        )
    )


def encrypted_bucket(
    scope: Construct, construct_id: str, key: kms.IKey, logs: s3.IBucket, prefix: str, noncurrent_days: int
) -> s3.Bucket:
    """A KMS-encrypted, versioned, SSL-only, private bucket with server access logs, retained on
    destroy. Versioning makes a delete add a marker: old versions expire after ``noncurrent_days``,
    or deleting frees nothing."""
    return s3.Bucket(
        scope,
        construct_id,
        encryption=s3.BucketEncryption.KMS,
        encryption_key=key,
        bucket_key_enabled=True,
        versioned=True,
        enforce_ssl=True,
        block_public_access=s3.BlockPublicAccess.BLOCK_ALL,
        server_access_logs_bucket=logs,
        server_access_logs_prefix=prefix,
        object_ownership=s3.ObjectOwnership.BUCKET_OWNER_ENFORCED,
        removal_policy=RemovalPolicy.RETAIN,
        lifecycle_rules=[
            s3.LifecycleRule(
                noncurrent_version_expiration=Duration.days(noncurrent_days),
                abort_incomplete_multipart_upload_after=Duration.days(7),
            )
        ],
    )


def encrypted_log_group(scope: Construct, construct_id: str, key: kms.IKey, name: str | None = None) -> logs.LogGroup:
    return logs.LogGroup(
        scope,
        construct_id,
        log_group_name=name,
        encryption_key=key,
        retention=logs.RetentionDays.ONE_YEAR,
        removal_policy=RemovalPolicy.DESTROY,
    )


def asl_state_machine(
    scope: Construct,
    *,
    asl_file: Path,
    state_machine_type: sfn.StateMachineType,
    substitutions: dict[str, str],
    key: kms.IKey,
) -> tuple[sfn.StateMachine, logs.LogGroup]:
    """A state machine from a shipped ASL file, with the platform's logging and tracing policy:
    every event logged (execution data off, so no prompt or answer text) to an encrypted group,
    and X-Ray on. Tests execute the same file."""
    log_group = encrypted_log_group(scope, "ExecutionLogs", key)
    state_machine = sfn.StateMachine(
        scope,
        "StateMachine",
        state_machine_type=state_machine_type,
        definition_body=sfn.DefinitionBody.from_file(str(asl_file)),
        definition_substitutions=substitutions,
        logs=sfn.LogOptions(destination=log_group, level=sfn.LogLevel.ALL, include_execution_data=False),
        tracing_enabled=True,
    )
    return state_machine, log_group


def function_logs_and_role(scope: Construct, key: kms.IKey, description: str) -> tuple[logs.LogGroup, iam.Role]:
    """A function's own encrypted log group and a role that may write only to it (no
    AWSLambdaBasicExecutionRole, whose grant covers every log group)."""
    log_group = encrypted_log_group(scope, "Logs", key)
    role = iam.Role(scope, "Role", assumed_by=iam.ServicePrincipal("lambda.amazonaws.com"), description=description)
    log_group.grant_write(role)
    return log_group, role


class PythonFunction(Construct):
    """A zip Lambda from ``lambdas/`` with Powertools, X-Ray and its own encrypted log group.

    The role is built here instead of using AWSLambdaBasicExecutionRole, so the function may write
    only to its own log group.
    """

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        component: str,
        description: str,
        key: kms.IKey,
        powertools_layer_version: int,
        environment: dict[str, str] | None = None,
        timeout: Duration = DEFAULT_TIMEOUT,
        memory_size: int = 512,
        no_dlq_reason: str = SYNC_NO_DLQ,
        handler: str | None = None,
        extra_layers: tuple[str, ...] = (),
        function_name: str | None = None,
    ) -> None:
        super().__init__(scope, construct_id)
        stack = Stack.of(self)
        self.log_group, self.role = function_logs_and_role(self, key, f"Execution role of the {component} function")
        layer = lambda_.LayerVersion.from_layer_version_arn(
            self,
            "Powertools",
            POWERTOOLS_LAYER.format(region=stack.region, version=powertools_layer_version),
        )
        self.function = lambda_.Function(
            self,
            "Function",
            description=description,
            runtime=RUNTIME,
            architecture=lambda_.Architecture.X86_64,
            code=lambda_.Code.from_asset(str(LAMBDAS_DIR), exclude=ASSET_EXCLUDES),
            handler=handler or f"{component}.handler.lambda_handler",
            function_name=function_name,
            role=self.role,
            layers=[
                layer,
                *(
                    lambda_.LayerVersion.from_layer_version_arn(self, f"Layer{i}", arn)
                    for i, arn in enumerate(extra_layers)
                ),
            ],
            timeout=timeout,
            memory_size=memory_size,
            tracing=lambda_.Tracing.ACTIVE,
            log_group=self.log_group,
            logging_format=lambda_.LoggingFormat.JSON,
            # Environment values (table names, ARNs) are encrypted at rest with the platform key.
            environment_encryption=key,
            environment={
                "POWERTOOLS_SERVICE_NAME": component,
                "POWERTOOLS_METRICS_NAMESPACE": "FinAI",
                "POWERTOOLS_LOG_LEVEL": "INFO",
                **(environment or {}),
            },
        )
        acknowledge(
            self,
            [
                (
                    "IAM5",
                    "X-Ray's PutTraceSegments/PutTelemetryRecords accept no resource ARN, so they need '*'.",
                    ["Resource::*"],
                ),
                (
                    "LambdaInsideVPC",
                    "The function calls only AWS service APIs (Bedrock, Step Functions, DynamoDB, "
                    "AppConfig) over TLS with SigV4; it holds no network-reachable data, and a VPC would add NAT or "
                    "endpoint cost without reducing exposure.",
                    None,
                ),
                ("LambdaDLQ", no_dlq_reason, None),
                (
                    "L1",
                    "Pinned to Python 3.13, the newest runtime with a published Powertools layer build we "
                    "have verified; moving to a newer runtime means moving the layer with it.",
                    None,
                ),
                (
                    "LambdaConcurrency",
                    "Reserved concurrency would take capacity from the account pool and fails "
                    "to deploy in new accounts (limit 10); API Gateway throttling bounds the load instead.",
                    None,
                ),
            ],
        )
