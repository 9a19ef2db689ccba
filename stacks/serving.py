"""The container Lambdas that serve the fine-tuned adapters: advisor (generation) and sentiment.

Each image is built from its Dockerfile under ``lambdas/<component>/`` with ``lambdas/`` as the
context, and runs onnxruntime on the int8 artifact from ``training_jobs.export.onnx_export``:
baked into the image, or fetched from a pinned S3 prefix at cold start.
"""

from __future__ import annotations

from aws_cdk import Duration, Size, Stack
from aws_cdk import aws_ecr_assets as ecr_assets
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_s3 as s3
from constructs import Construct

from cdk_app.compliance import acknowledge
from cdk_app.config import ServingArtifact, ServingSettings
from cdk_app.names import JOB_NAME_PREFIX, TRAINING_OUTPUT_PREFIX, artifacts_bucket_pattern
from stacks.common import LAMBDAS_DIR, function_logs_and_role
from stacks.sagemaker_endpoint import SageMakerEndpoint

COMPONENTS = ("advisor", "sentiment")
# Only what the Dockerfiles COPY: the zip functions, tests and caches stay out of the build
# context (and out of the asset hash, which keeps synth identical between machines).
IMAGE_CONTEXT_EXCLUDES = ["*", "!serving/**", "!advisor/**", "!sentiment/**", "**/__pycache__", "**/*.pyc"]
# /tmp holds a promoted model.tar.gz while its serve/ folder is unpacked, for up to two artifacts
# (serving.artifacts.PROMOTED_KEEP): a causal advisor (onnxruntime-genai int8 base plus adapter)
# is about 275 MB unpacked and its model.tar.gz about as much again, so Lambda's default 512 MB of
# ephemeral storage would not hold even one while it unpacks.
EPHEMERAL_STORAGE_MB = 4096


class ServingFunction(Construct):
    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        component: str,
        description: str,
        key: kms.IKey,
        memory_mb: int,
        artifact: ServingArtifact,
        primary_region: str,
    ) -> None:
        super().__init__(scope, construct_id)
        stack = Stack.of(self)
        self.log_group, self.role = function_logs_and_role(
            self, key, f"Execution role of the {component} serving function"
        )
        environment = {"POWERTOOLS_SERVICE_NAME": component, "POWERTOOLS_LOG_LEVEL": "INFO", "ORT_THREADS": "2"}
        if artifact.artifact_s3_uri and artifact.manifest_sha256:
            environment |= {"MODEL_S3_URI": artifact.artifact_s3_uri, "MODEL_MANIFEST_SHA256": artifact.manifest_sha256}
        self.function = lambda_.DockerImageFunction(
            self,
            "Function",
            description=description,
            code=lambda_.DockerImageCode.from_image_asset(
                str(LAMBDAS_DIR),
                file=f"{component}/Dockerfile",
                exclude=IMAGE_CONTEXT_EXCLUDES,
                platform=ecr_assets.Platform.LINUX_AMD64,
            ),
            architecture=lambda_.Architecture.X86_64,
            role=self.role,
            memory_size=memory_mb,
            ephemeral_storage_size=Size.mebibytes(EPHEMERAL_STORAGE_MB),
            # Cold start includes loading (and, from S3, downloading and verifying) the artifact.
            timeout=Duration.seconds(30),
            tracing=lambda_.Tracing.ACTIVE,
            log_group=self.log_group,
            logging_format=lambda_.LoggingFormat.JSON,
            environment_encryption=key,
            environment=environment,
        )
        if artifact.bucket:
            bucket = s3.Bucket.from_bucket_name(self, "ArtifactBucket", artifact.bucket)
            bucket.grant_read(self.function, f"{artifact.prefix}/*" if artifact.prefix else "*")
        grant_read_promoted(self.role, stack, primary_region)
        acknowledge(
            self,
            [
                (
                    "IAM5",
                    "X-Ray's PutTraceSegments/PutTelemetryRecords accept no resource ARN; the S3 grant is "
                    "limited to the artifact prefix named in context (object keys under it).",
                    ["Resource::*", "regex:^Action::s3:.*\\*$", "regex:^Resource::arn:.*:s3:::.*/\\*$"],
                ),
                (
                    "IAM5",
                    "Promoted artifacts are named by training job (finai-*), so the read is scoped by "
                    "prefix to their model.tar.gz; Decrypt is on the primary region's keys, but only "
                    "through S3 and only for the artifacts bucket (kms:ViaService and encryption context).",
                    [
                        "regex:^Resource::arn:[^:]+:s3:::finai-training-pipelineartifacts\\*/training/finai-\\*/output/model\\.tar\\.gz$",
                        "regex:^Resource::arn:[^:]+:kms:.*:key/\\*$",
                    ],
                ),
                (
                    "LambdaInsideVPC",
                    "The function serves a model from its own image (or one pinned S3 prefix) and holds no "
                    "network-reachable data; a VPC would add NAT or endpoint cost without reducing exposure.",
                    None,
                ),
                (
                    "LambdaDLQ",
                    "Invoked synchronously by the router; failures return to it and the circuit breaker "
                    "falls back, so there is no asynchronous event to dead-letter.",
                    None,
                ),
                (
                    "LambdaConcurrency",
                    "Reserved concurrency would take capacity from the account pool and fails to deploy in new "
                    "accounts; the API's usage plans bound the load instead.",
                    None,
                ),
            ],
        )


def grant_read_promoted(role: iam.IRole, stack: Stack, primary_region: str) -> None:
    """Read what promotion points at: a training job's model.tar.gz in the primary region's
    artifacts bucket, from either region. The bucket is KMS-encrypted with the training
    stack's key, which lives in the primary region: Decrypt is allowed only through S3 there
    and only for that bucket (S3 Bucket Keys make the bucket ARN the encryption context)."""
    bucket_arn = f"arn:{stack.partition}:s3:::{artifacts_bucket_pattern()}"
    role.add_to_principal_policy(
        iam.PolicyStatement(
            actions=["s3:GetObject"],
            resources=[f"{bucket_arn}/{TRAINING_OUTPUT_PREFIX}/{JOB_NAME_PREFIX}*/output/model.tar.gz"],
        )
    )
    role.add_to_principal_policy(
        iam.PolicyStatement(
            actions=["kms:Decrypt"],
            resources=[f"arn:{stack.partition}:kms:{primary_region}:{stack.account}:key/*"],
            conditions={
                "StringEquals": {"kms:ViaService": f"s3.{primary_region}.amazonaws.com"},
                "StringLike": {"kms:EncryptionContext:aws:s3:arn": bucket_arn},
            },
        )
    )


class Serving(Construct):
    """Both serving functions, and the SageMaker endpoint tier when enabled; ``targets`` is the
    router's LAMBDA_PROVIDERS mapping, ``endpoints`` its SAGEMAKER_ENDPOINTS."""

    def __init__(
        self, scope: Construct, construct_id: str, *, key: kms.IKey, settings: ServingSettings, primary_region: str
    ) -> None:
        super().__init__(scope, construct_id)
        self.advisor = ServingFunction(
            self,
            "Advisor",
            component="advisor",
            description="Budgeting advice from the merged int8 LoRA adapter (ONNX Runtime)",
            key=key,
            memory_mb=settings.memory_mb,
            artifact=settings.advisor,
            primary_region=primary_region,
        )
        self.sentiment = ServingFunction(
            self,
            "Sentiment",
            component="sentiment",
            description="Financial sentiment from the merged int8 LoRA classifier (ONNX Runtime)",
            key=key,
            memory_mb=settings.memory_mb,
            artifact=settings.sentiment,
            primary_region=primary_region,
        )
        self.endpoint = (
            SageMakerEndpoint(self, "Endpoint", key=key, settings=settings.endpoint)
            if settings.endpoint.enabled
            else None
        )

    @property
    def targets(self) -> dict[str, str]:
        return {"advisor": self.advisor.function.function_arn, "sentiment": self.sentiment.function.function_arn}

    @property
    def endpoints(self) -> dict[str, str]:
        """Strategy target -> SageMaker endpoint name (empty when the tier is off)."""
        return {self.endpoint.target: self.endpoint.endpoint_name} if self.endpoint else {}

    def grant_invoke(self, grantee: iam.IGrantable, *, endpoint: bool = True) -> None:
        """Invoke both serving functions, and (``endpoint``) the endpoint tier when there is one."""
        for serving in (self.advisor, self.sentiment):
            serving.function.grant_invoke(grantee)
        if endpoint and self.endpoint is not None:
            self.endpoint.grant_invoke(grantee)
