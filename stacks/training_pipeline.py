"""The training pipeline: buckets, the SageMaker role, the STANDARD state machine from
``statemachines/training_pipeline.asl.json``, the model registry, the promote function and the
(disabled by default) retraining schedule."""

from __future__ import annotations

import json
import tempfile
from pathlib import Path
from typing import Any

from aws_cdk import Duration, Stack
from aws_cdk import aws_ecr_assets as ecr_assets
from aws_cdk import aws_events as events
from aws_cdk import aws_events_targets as targets
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_s3_assets as s3_assets
from aws_cdk import aws_stepfunctions as sfn
from constructs import Construct

from cdk_app.compliance import acknowledge
from cdk_app.config import EndpointSettings, TrainingSettings
from cdk_app.names import promote_function_name
from stacks.common import PythonFunction, access_log_bucket, asl_state_machine, encrypted_bucket, grant_image_pull
from stacks.model_registry import ModelRegistry
from stacks.training_source import build_sourcedir

ASL_FILE = Path(__file__).resolve().parent.parent / "statemachines" / "training_pipeline.asl.json"
IMAGE_DIR = Path(__file__).resolve().parent.parent / "training_jobs" / "image"
# How long a deleted or replaced object stays recoverable in the data and artifacts buckets.
NONCURRENT_VERSION_DAYS = 30


class TrainingPipeline(Construct):
    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        key: kms.IKey,
        settings: TrainingSettings,
        regions: tuple[str, ...],
        powertools_layer_version: int,
        endpoint: EndpointSettings | None = None,
    ) -> None:
        super().__init__(scope, construct_id)
        stack = Stack.of(self)
        self.access_logs = access_log_bucket(self, "AccessLogs")
        self.data = encrypted_bucket(self, "Data", key, self.access_logs, "data/", NONCURRENT_VERSION_DAYS)
        # Not named: it is retained on destroy. Serving functions are granted on its generated
        # name's pattern (cdk_app.names.artifacts_bucket_pattern).
        self.artifacts = encrypted_bucket(
            self, "Artifacts", key, self.access_logs, "artifacts/", NONCURRENT_VERSION_DAYS
        )
        for bucket in (self.data, self.artifacts):
            acknowledge(
                bucket,
                [
                    (
                        "S3BucketReplicationEnabled",
                        "Training data and adapters are reproducible from "
                        "source and versioned in place; cross-region replication is a cost choice left "
                        "to the deployer.",
                        None,
                    )
                ],
            )
        self.sourcedir = s3_assets.Asset(self, "SourceDir", path=str(build_sourcedir(Path(tempfile.mkdtemp()))))

        self.role = iam.Role(
            self,
            "SageMakerRole",
            assumed_by=iam.ServicePrincipal("sagemaker.amazonaws.com"),
            description="Execution role of the adapter training jobs",
        )
        self.data.grant_read(self.role)
        self.artifacts.grant_read_write(self.role)
        # The one object, not the whole CDK assets bucket that every stack in the account shares.
        # It reaches the job as the "code" channel (network isolation), an S3Prefix channel, which
        # SageMaker lists before it downloads: ListBucket, limited to that key.
        self.role.add_to_policy(
            iam.PolicyStatement(
                actions=["s3:GetObject"],
                resources=[self.sourcedir.bucket.arn_for_objects(self.sourcedir.s3_object_key)],
            )
        )
        self.role.add_to_policy(
            iam.PolicyStatement(
                actions=["s3:ListBucket"],
                resources=[self.sourcedir.bucket.bucket_arn],
                conditions={"StringLike": {"s3:prefix": [f"{self.sourcedir.s3_object_key}*"]}},
            )
        )
        key.grant_encrypt_decrypt(self.role)
        self.role.add_to_policy(
            iam.PolicyStatement(
                actions=["logs:CreateLogGroup", "logs:CreateLogStream", "logs:PutLogEvents", "logs:DescribeLogStreams"],
                resources=[
                    f"arn:{stack.partition}:logs:{stack.region}:{stack.account}:log-group:/aws/sagemaker/TrainingJobs*"
                ],
            )
        )
        self.image = self._training_image(stack, settings)
        self.role.add_to_policy(iam.PolicyStatement(actions=["ecr:GetAuthorizationToken"], resources=["*"]))
        self.role.add_to_policy(
            iam.PolicyStatement(
                actions=["cloudwatch:PutMetricData"],
                resources=["*"],
                conditions={"StringLike": {"cloudwatch:namespace": "/aws/sagemaker/*"}},
            )
        )

        self.registry = ModelRegistry(
            self,
            "Registry",
            group_name=f"finai-adapters-{stack.region}",
            description="Approved LoRA adapters (sentiment, advisor)",
            key=key,
            powertools_layer_version=powertools_layer_version,
        )
        # Every region's strategy, primary first: each region's own promote function (stacks/promote.py)
        # writes its AppConfig; Step Functions cannot call another region, so this one invokes them.
        region_functions = {
            region: f"arn:{stack.partition}:lambda:{region}:{stack.account}:function:{promote_function_name(region)}"
            for region in regions
        }
        self.promote = PythonFunction(
            self,
            "Promote",
            component="promotion",
            description="Promotes trained adapters into every region's strategy (primary first)",
            key=key,
            powertools_layer_version=powertools_layer_version,
            # Each region's publish and deployment start takes about a second; a cold region, more.
            timeout=Duration.seconds(60),
            environment={"PROMOTE_FUNCTIONS": json.dumps(region_functions)},
        )
        self.promote.function.add_to_role_policy(
            iam.PolicyStatement(actions=["lambda:InvokeFunction"], resources=list(region_functions.values()))
        )

        self.state_machine, self.log_group = asl_state_machine(
            self,
            asl_file=ASL_FILE,
            state_machine_type=sfn.StateMachineType.STANDARD,
            substitutions={
                "TrainingImage": self.image,
                "SourceDirUri": self.sourcedir.s3_object_url,
                # SageMaker puts the channel's object under its own name in the channel's folder.
                "SubmitDirectory": f"/opt/ml/input/data/code/{self.sourcedir.s3_object_key}",
                "SageMakerRoleArn": self.role.role_arn,
                "ArtifactsBucket": self.artifacts.bucket_name,
                "KmsKeyArn": key.key_arn,
                "InstanceType": settings.instance_type,
                "ModelPackageGroup": self.registry.group_name,
                "PromoteFunctionArn": self.promote.function.function_arn,
            },
            key=key,
        )
        self._grant_pipeline(stack, key)
        self.schedule = events.Rule(
            self,
            "Retraining",
            schedule=events.Schedule.expression(settings.schedule),
            enabled=settings.schedule_enabled,
            description="Periodic retraining of the adapters (disabled unless training.schedule_enabled)",
            targets=[
                targets.SfnStateMachine(
                    self.state_machine, input=events.RuleTargetInput.from_object(self.default_input(settings, endpoint))
                )
            ],
        )

    def _training_image(self, stack: Stack, settings: TrainingSettings) -> str:
        """The image URI the jobs run, pullable by the SageMaker role."""
        configured = settings.image_uri(stack.region)
        repository = settings.image_repository(stack.region)
        if configured is None or repository is None:
            # Built from the project's own pins (training_jobs/image): what the tests ran is what trains.
            asset = ecr_assets.DockerImageAsset(
                self,
                "TrainingImage",
                directory=str(IMAGE_DIR),
                build_args={"VARIANT": settings.variant()},
                platform=ecr_assets.Platform.LINUX_AMD64,
            )
            asset.repository.grant_pull(self.role)
            return asset.image_uri
        grant_image_pull(self.role, stack.partition, repository)
        return configured

    def default_input(self, settings: TrainingSettings, endpoint: EndpointSettings | None = None) -> dict[str, Any]:
        """What the schedule starts: both adapters (and the endpoint tier's, when it is enabled),
        reading data and base models from the data bucket."""

        def adapter(
            name: str, program: str, threshold: float, extra: dict[str, str], data: str | None = None
        ) -> dict[str, Any]:
            return {
                "name": name,
                "target": name,
                "threshold": threshold,
                "train_uri": self.data.s3_url_for_object(f"{data or name}/"),
                "base_model_uri": self.data.s3_url_for_object(f"base-models/{name}/"),
                # sagemaker_submit_directory is set by the pipeline: the code channel's path.
                "hyperparameters": {
                    "sagemaker_program": program,
                    "base-model": "/opt/ml/input/data/base",
                    **extra,
                },
            }

        return {
            "adapters": [
                adapter("sentiment", "train_sentiment.py", settings.sentiment_gate_macro_f1, {"epochs": "3"}),
                adapter(
                    "advisor",
                    "train_advisor.py",
                    settings.advisor_gate_grounded,
                    # The share of held-out advice the platform would serve: well-formed and grounded.
                    {"epochs": "3", "gate-metric": "served_grounded_rate"},
                ),
                *(
                    [
                        # The endpoint's advisor: the same task on its larger base (Phi-3.5-mini class),
                        # served by the endpoint with the adapter at run time, so no ONNX export; gated
                        # on the grounded share of its own generated advice.
                        adapter(
                            endpoint.target,
                            "train_advisor.py",
                            settings.advisor_gate_grounded,
                            {
                                "epochs": "2",
                                "lora-r": "16",
                                "export-onnx": "false",
                                "gate-metric": "grounded_rate",
                            },
                            data="advisor",  # the same synthetic pairs as the Lambda's advisor
                        )
                    ]
                    if endpoint is not None and endpoint.enabled
                    else []
                ),
            ]
        }

    def _grant_pipeline(self, stack: Stack, key: kms.IKey) -> None:
        role = self.state_machine
        prefix = f"arn:{stack.partition}:sagemaker:{stack.region}:{stack.account}"
        role.add_to_role_policy(
            iam.PolicyStatement(
                # What createTrainingJob.sync calls (aws-cdk-lib's SageMakerCreateTrainingJob grants the
                # same); no AddTags, because the ASL passes no Tags.
                actions=[
                    "sagemaker:CreateTrainingJob",
                    "sagemaker:DescribeTrainingJob",
                    "sagemaker:StopTrainingJob",
                    "sagemaker:ListTags",
                ],
                resources=[f"{prefix}:training-job/finai-*"],
            )
        )
        role.add_to_role_policy(
            iam.PolicyStatement(
                actions=["sagemaker:CreateModelPackage"],
                resources=[
                    f"{prefix}:model-package-group/{self.registry.group_name}",
                    f"{prefix}:model-package/{self.registry.group_name}/*",
                ],
            )
        )
        # .sync integrations watch the job through this managed EventBridge rule.
        role.add_to_role_policy(
            iam.PolicyStatement(
                actions=["events:PutTargets", "events:PutRule", "events:DescribeRule"],
                resources=[
                    f"arn:{stack.partition}:events:{stack.region}:{stack.account}:rule/"
                    "StepFunctionsGetEventsForSageMakerTrainingJobsRule"
                ],
            )
        )
        # PassRole only to SageMaker: without the condition the pipeline could hand the role to any service.
        role.add_to_role_policy(
            iam.PolicyStatement(
                actions=["iam:PassRole"],
                resources=[self.role.role_arn],
                conditions={"StringEquals": {"iam:PassedToService": "sagemaker.amazonaws.com"}},
            )
        )
        key.grant(role, "kms:CreateGrant", "kms:DescribeKey")
        self.promote.function.grant_invoke(role)
        acknowledge(
            self.state_machine,
            [
                (
                    "IAM5",
                    "Training-job names carry the execution name and model packages are numbered by SageMaker, "
                    "so both are scoped by prefix.",
                    ["regex:^Resource::arn:aws:sagemaker:.*:(training-job/finai-|model-package/.*/)\\*$"],
                ),
                ("IAM5", "Vended log delivery and X-Ray actions accept no resource ARN.", ["Resource::*"]),
                (
                    "IAM5",
                    "Step Functions invokes qualified versions of the promote function (ARN:*).",
                    ["regex:^Resource::<[A-Za-z0-9]+Function[A-Z0-9]{8}\\.Arn>:\\*$"],
                ),
            ],
        )
        acknowledge(
            self.role,
            [
                (
                    "IAM5",
                    "SageMaker writes logs under the /aws/sagemaker/TrainingJobs prefix, one stream per job.",
                    ["regex:^Resource::arn:aws:logs:.*:log-group:/aws/sagemaker/TrainingJobs\\*$"],
                ),
                (
                    "IAM5",
                    "ecr:GetAuthorizationToken and cloudwatch:PutMetricData (limited by namespace condition) "
                    "accept no resource ARN.",
                    ["Resource::*"],
                ),
                (
                    "IAM5",
                    "Bucket grants cover objects under the data, artifacts and asset buckets.",
                    [
                        "regex:^Action::s3:.*\\*$",
                        "regex:^Resource::<.*Arn>/\\*$",
                    ],
                ),
                (
                    "IAM5",
                    "KMS data-key actions are granted on the platform key only.",
                    ["Action::kms:GenerateDataKey*", "Action::kms:ReEncrypt*"],
                ),
            ],
        )
