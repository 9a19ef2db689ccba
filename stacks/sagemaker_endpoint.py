"""The SageMaker endpoint tier: a causal instruct base model with LoRA adapters as inference components.

One real-time endpoint per region (``cdk_app.names.endpoint_name``) hosts the base model in a base
inference component (``base_component_name``); each promoted adapter becomes an adapter inference
component inside it (``promote.dal.EndpointAdapters``), so several adapters share one copy of the
base model and its accelerators. The router invokes an adapter by its component name.

What AWS enforces that the stand-ins do not, and this construct respects (tests check each):
- model data is read only from a bucket in the endpoint's own region, so each region names its own
  base-model prefix, and promoted adapters are copied into this region's adapter bucket;
- an endpoint config on an instance type with local NVMe storage must not name a KmsKeyId;
- an endpoint config for inference components names an execution role and no model;
- names are at most 63 characters of letters, digits and hyphens.
"""

from __future__ import annotations

from aws_cdk import Stack
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_s3 as s3
from aws_cdk import aws_sagemaker as sagemaker
from constructs import Construct

from cdk_app.compliance import acknowledge
from cdk_app.config import EndpointSettings
from cdk_app.names import base_component_name, endpoint_name
from stacks.common import access_log_bucket, encrypted_bucket, grant_image_pull

VARIANT = "AllTraffic"
# The promote function names adapter components after their training job (finai-...).
ADAPTER_COMPONENT_PREFIX = "finai-"
ADAPTER_PREFIX = "adapters"
# A replaced adapter copy stays recoverable this long (rollback reads the previous component's).
ADAPTER_NONCURRENT_DAYS = 90


class SageMakerEndpoint(Construct):
    def __init__(self, scope: Construct, construct_id: str, *, key: kms.IKey, settings: EndpointSettings) -> None:
        super().__init__(scope, construct_id)
        stack = Stack.of(self)
        region, account, partition = stack.region, stack.account, stack.partition
        self.settings = settings
        self.target = settings.target
        self.endpoint_name = endpoint_name(settings.target)
        self.base_component_name = base_component_name(settings.target)
        self.endpoint_arn = f"arn:{partition}:sagemaker:{region}:{account}:endpoint/{self.endpoint_name}"
        self.component_arns = (
            f"arn:{partition}:sagemaker:{region}:{account}:inference-component/{ADAPTER_COMPONENT_PREFIX}*"
        )

        # Promoted adapters, copied here by this region's promote function: SageMaker reads model
        # data only from its own region, and a copy outlives the training run's cleanup.
        self.access_logs = access_log_bucket(self, "AccessLogs")
        self.adapters = encrypted_bucket(
            self, "Adapters", key, self.access_logs, "endpoint-adapters/", ADAPTER_NONCURRENT_DAYS
        )

        self.role = iam.Role(
            self,
            "ExecutionRole",
            assumed_by=iam.ServicePrincipal("sagemaker.amazonaws.com"),
            description="Execution role of the endpoint tier: base model, adapters, image, logs",
        )
        base_bucket, base_prefix = _split(settings.base_model_uris[region])
        base = s3.Bucket.from_bucket_name(self, "BaseModelBucket", base_bucket)
        base.grant_read(self.role, f"{base_prefix}/*")
        self.role.add_to_policy(
            iam.PolicyStatement(
                actions=["s3:ListBucket"],
                resources=[base.bucket_arn],
                conditions={"StringLike": {"s3:prefix": [f"{base_prefix}/*", base_prefix]}},
            )
        )
        self.adapters.grant_read(self.role, f"{ADAPTER_PREFIX}/*")
        key.grant_decrypt(self.role)
        image = settings.image_uri(region)
        repository = settings.image_repository(region)
        if repository is None:  # EndpointSettings validated the pattern; this narrows the type
            raise ValueError(f"serving.endpoint.image is not an ECR image URI: {image!r}")
        grant_image_pull(self.role, partition, repository)
        self.role.add_to_policy(iam.PolicyStatement(actions=["ecr:GetAuthorizationToken"], resources=["*"]))
        self.role.add_to_policy(
            iam.PolicyStatement(
                actions=["logs:CreateLogGroup", "logs:CreateLogStream", "logs:PutLogEvents"],
                resources=[
                    f"arn:{partition}:logs:{region}:{account}:log-group:/aws/sagemaker/Endpoints/{self.endpoint_name}",
                    f"arn:{partition}:logs:{region}:{account}:log-group:/aws/sagemaker/Endpoints/{self.endpoint_name}:*",
                    f"arn:{partition}:logs:{region}:{account}:log-group:/aws/sagemaker/InferenceComponents/*",
                ],
            )
        )
        self.role.add_to_policy(
            iam.PolicyStatement(
                actions=["cloudwatch:PutMetricData"],
                resources=["*"],
                conditions={"StringLike": {"cloudwatch:namespace": ["/aws/sagemaker/*", "AWS/SageMaker"]}},
            )
        )

        self.model = sagemaker.CfnModel(
            self,
            "BaseModel",
            execution_role_arn=self.role.role_arn,
            # The container reads the weights from its model directory; it needs no network.
            enable_network_isolation=True,
            primary_container=sagemaker.CfnModel.ContainerDefinitionProperty(
                image=image,
                model_data_source=sagemaker.CfnModel.ModelDataSourceProperty(
                    s3_data_source=sagemaker.CfnModel.S3DataSourceProperty(
                        s3_uri=f"s3://{base_bucket}/{base_prefix}/",
                        s3_data_type="S3Prefix",
                        compression_type="None",
                    )
                ),
                environment={
                    "OPTION_ROLLING_BATCH": "vllm",
                    "OPTION_ENABLE_LORA": "true",
                    "OPTION_MAX_LORAS": "4",
                    "OPTION_MAX_LORA_RANK": "16",
                    "OPTION_MAX_MODEL_LEN": "4096",
                    "SERVING_FAIL_FAST": "true",
                },
            ),
        )
        self.model.node.add_dependency(self.role)
        variant = sagemaker.CfnEndpointConfig.ProductionVariantProperty(
            variant_name=VARIANT,
            instance_type=settings.instance_type,
            initial_instance_count=settings.min_instances,
            managed_instance_scaling=sagemaker.CfnEndpointConfig.ManagedInstanceScalingProperty(
                status="ENABLED", min_instance_count=settings.min_instances, max_instance_count=settings.max_instances
            ),
            routing_config=sagemaker.CfnEndpointConfig.RoutingConfigProperty(
                routing_strategy="LEAST_OUTSTANDING_REQUESTS"
            ),
        )
        self.endpoint_config = sagemaker.CfnEndpointConfig(
            self,
            "Config",
            # Inference components: the config names an execution role and no model.
            execution_role_arn=self.role.role_arn,
            production_variants=[variant],
            # SageMaker refuses a KmsKeyId on instance types with local NVMe storage (encrypted by
            # the hardware); elsewhere the attached volume is encrypted with the platform key.
            kms_key_id=None if settings.local_storage else key.key_arn,
        )
        self.endpoint_config.node.add_dependency(self.role)
        self.endpoint = sagemaker.CfnEndpoint(
            self,
            "Endpoint",
            endpoint_name=self.endpoint_name,
            endpoint_config_name=self.endpoint_config.attr_endpoint_config_name,
        )
        self.base_component = sagemaker.CfnInferenceComponent(
            self,
            "BaseComponent",
            inference_component_name=self.base_component_name,
            endpoint_name=self.endpoint.attr_endpoint_name,
            variant_name=VARIANT,
            specification=sagemaker.CfnInferenceComponent.InferenceComponentSpecificationProperty(
                model_name=self.model.attr_model_name,
                compute_resource_requirements=sagemaker.CfnInferenceComponent.InferenceComponentComputeResourceRequirementsProperty(
                    number_of_accelerator_devices_required=settings.accelerators or None,
                    min_memory_required_in_mb=settings.min_memory_mb,
                ),
                startup_parameters=sagemaker.CfnInferenceComponent.InferenceComponentStartupParametersProperty(
                    model_data_download_timeout_in_seconds=1200,
                    container_startup_health_check_timeout_in_seconds=1200,
                ),
            ),
            runtime_config=sagemaker.CfnInferenceComponent.InferenceComponentRuntimeConfigProperty(copy_count=1),
        )
        findings: list[tuple[str, str, list[str] | None]] = [
            (
                "IAM5",
                "The execution role reads objects under the base-model and adapter prefixes (object keys "
                "are not known at synth), writes logs to the endpoint's and its components' log groups, "
                "and ecr:GetAuthorizationToken and cloudwatch:PutMetricData (namespace-conditioned) accept "
                "no resource ARN.",
                [
                    "Resource::*",
                    "regex:^Action::s3:.*\\*$",
                    "regex:^Action::kms:.*\\*$",
                    "regex:^Resource::.*/\\*$",
                    "regex:^Resource::.*:\\*$",
                ],
            ),
            (
                "S3BucketReplicationEnabled",
                "Each region keeps its own copy of the adapters it serves (promotion copies them in); "
                "cross-region replication would duplicate what the other region already holds.",
                None,
            ),
        ]
        if settings.local_storage:
            findings.append(
                (
                    "SageMakerEndpointConfigurationKMSKeyConfigured",
                    "The instance type has local NVMe storage, which SageMaker encrypts in hardware and for "
                    "which it refuses a KmsKeyId (CreateEndpointConfig fails).",
                    None,
                )
            )
        acknowledge(self, findings)

    def grant_invoke(self, grantee: iam.IGrantable) -> None:
        """InvokeEndpoint on this endpoint and its adapter components, nothing else."""
        grantee.grant_principal.add_to_principal_policy(
            iam.PolicyStatement(
                actions=["sagemaker:InvokeEndpoint"], resources=[self.endpoint_arn, self.component_arns]
            )
        )
        principal = grantee.grant_principal
        if isinstance(principal, Construct):  # the role, which holds the policy
            acknowledge(
                principal,
                [
                    (
                        "IAM5",
                        "Adapter inference components are created by promotion and named after their training "
                        "job (finai-*); InvokeEndpoint is limited to those on this endpoint.",
                        ["regex:^Resource::arn:.*:inference-component/finai-\\*$"],
                    )
                ],
            )

    def grant_promote(self, grantee: iam.IGrantable) -> None:
        """What the promote function needs: create and read adapter components on this endpoint,
        and copy the adapter into this region's bucket."""
        grantee.grant_principal.add_to_principal_policy(
            iam.PolicyStatement(
                actions=["sagemaker:CreateInferenceComponent", "sagemaker:DescribeInferenceComponent"],
                resources=[self.endpoint_arn, self.component_arns],
            )
        )
        self.adapters.grant_put(grantee, f"{ADAPTER_PREFIX}/*")
        self.adapters.grant_read(grantee, f"{ADAPTER_PREFIX}/*")

    @property
    def environment(self) -> dict[str, str]:
        """The promote function's view of the tier (``promote.dal.EndpointAdapters``)."""
        return {
            "ENDPOINT_TARGET": self.target,
            "ENDPOINT_NAME": self.endpoint_name,
            "ENDPOINT_BASE_COMPONENT": self.base_component_name,
            "ENDPOINT_ADAPTER_BUCKET": self.adapters.bucket_name,
        }


def _split(uri: str) -> tuple[str, str]:
    bucket, _, prefix = uri.removeprefix("s3://").partition("/")
    return bucket, prefix.strip("/")
