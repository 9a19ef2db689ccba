"""The regional REST API and its front function.

REST (not HTTP API) because the platform needs request validation, usage plans and WAF.
"""

from __future__ import annotations

from aws_cdk import Duration, RemovalPolicy
from aws_cdk import aws_apigateway as apigw
from aws_cdk import aws_dynamodb as dynamodb
from aws_cdk import aws_kms as kms
from aws_cdk import aws_stepfunctions as sfn
from constructs import Construct

from cdk_app.compliance import acknowledge
from cdk_app.config import use_case_names
from stacks.circuit_breaker import CircuitBreaker
from stacks.common import PythonFunction, encrypted_log_group
from stacks.web_acl import WebAcl

STAGE = "prod"
ROUTES = (("POST", "/v1/generate"), ("GET", "/v1/health"))


class ApiFront(Construct):
    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        key: kms.IKey,
        powertools_layer_version: int,
        breaker: CircuitBreaker,
        max_prompt_chars: int,
        auth: str = "api_key",
        clients: tuple[str, ...] = ("default",),
    ) -> None:
        super().__init__(scope, construct_id)
        state_machine: sfn.StateMachine = breaker.state_machine
        self.handler = PythonFunction(
            self,
            "Front",
            component="api_front",
            description="Validates API requests and runs the circuit-breaker state machine",
            key=key,
            powertools_layer_version=powertools_layer_version,
            timeout=Duration.seconds(29),
            environment={
                "STATE_MACHINE_ARN": state_machine.state_machine_arn,
                "CIRCUIT_TABLE": breaker.table.table_name,
                "MAX_PROMPT_CHARS": str(max_prompt_chars),
                "EXECUTION_MODE": "sync",
            },
        )
        self.function = self.handler.function
        # One record per request (identifiers, outcome, counts; never prompt or answer text).
        self.audit = dynamodb.TableV2(
            self,
            "Audit",
            partition_key=dynamodb.Attribute(name="request_id", type=dynamodb.AttributeType.STRING),
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
            self.audit,
            [
                (
                    "DynamoDBInBackupPlan",
                    "Point-in-time recovery (35 days) and deletion protection "
                    "cover the audit table; an AWS Backup plan is an account-level choice left to the "
                    "deployer's backup policy.",
                    None,
                )
            ],
        )
        self.audit.grant(self.function, "dynamodb:PutItem")
        # Exactly what DynamoDB needs to write through the customer-managed key; no wildcards.
        key.grant(self.function, "kms:Encrypt", "kms:Decrypt", "kms:GenerateDataKey")
        self.function.add_environment("AUDIT_TABLE", self.audit.table_name)
        state_machine.grant_start_sync_execution(self.function)
        breaker.grant_read_circuits(self.function)

        self.access_logs = encrypted_log_group(self, "AccessLogs", key)
        self.api = apigw.RestApi(
            self,
            "Api",
            description="FinAI platform API",
            endpoint_types=[apigw.EndpointType.REGIONAL],
            cloud_watch_role=True,
            deploy_options=apigw.StageOptions(
                stage_name=STAGE,
                tracing_enabled=True,
                logging_level=apigw.MethodLoggingLevel.INFO,
                data_trace_enabled=False,
                metrics_enabled=True,
                throttling_rate_limit=50,
                throttling_burst_limit=100,
                access_log_destination=apigw.LogGroupLogDestination(self.access_logs),
                access_log_format=apigw.AccessLogFormat.json_with_standard_fields(
                    caller=False,
                    http_method=True,
                    ip=True,
                    protocol=True,
                    request_time=True,
                    resource_path=True,
                    response_length=True,
                    status=True,
                    user=False,
                ),
            ),
        )
        self.validator = apigw.RequestValidator(
            self, "Validator", rest_api=self.api, validate_request_body=True, validate_request_parameters=True
        )
        request_model = self.api.add_model(
            "GenerateRequest",
            content_type="application/json",
            model_name="GenerateRequest",
            schema=generate_request_model(),
        )
        # Gateway-level rejections use the same error shape as the function's own 400s.
        self.api.add_gateway_response(
            "BadRequestBody",
            type=apigw.ResponseType.BAD_REQUEST_BODY,
            status_code="400",
            templates={
                "application/json": '{"error": "invalid_request", "message": "$context.error.validationErrorString", '
                '"request_id": "$context.requestId"}'
            },
        )
        # A request without a valid key (or signature) is answered 403 by API Gateway itself and
        # never reaches a Lambda; the body uses the API's error shape.
        for response_type in (
            apigw.ResponseType.INVALID_API_KEY,
            apigw.ResponseType.MISSING_AUTHENTICATION_TOKEN,
            apigw.ResponseType.ACCESS_DENIED,
        ):
            self.api.add_gateway_response(
                f"Forbidden{response_type.response_type}",
                type=response_type,
                status_code="403",
                templates={
                    "application/json": '{"error": "forbidden", "message": "a valid API key or signature is '
                    'required", "request_id": "$context.requestId"}'
                },
            )
        self.web_acl = WebAcl(self, "WebAcl", key=key, stage_arn=self.api.deployment_stage.stage_arn)
        integration = apigw.LambdaIntegration(self.function, timeout=Duration.seconds(29))
        v1 = self.api.root.add_resource("v1")
        self.generate_method = v1.add_resource("generate").add_method(
            "POST",
            integration,
            request_validator=self.validator,
            request_models={"application/json": request_model},
            api_key_required=auth == "api_key",
            authorization_type=apigw.AuthorizationType.IAM if auth == "iam" else apigw.AuthorizationType.NONE,
        )
        # Route 53 health checks cannot sign requests or send keys, so health stays open.
        self.health_method = v1.add_resource("health").add_method("GET", integration)
        if auth == "api_key":
            plan = self.api.add_usage_plan(
                "UsagePlan",
                description="Per-client throttling and monthly quota",
                throttle=apigw.ThrottleSettings(rate_limit=20, burst_limit=40),
                quota=apigw.QuotaSettings(limit=100_000, period=apigw.Period.MONTH),
            )
            plan.add_api_stage(stage=self.api.deployment_stage)
            for client in clients:
                # Key values are generated by API Gateway; they never appear in code or templates.
                plan.add_api_key(self.api.add_api_key(f"Key-{client}", description=f"API key of client {client}"))
        acknowledge(
            self.api,
            [
                (
                    "APIG2",
                    "Request validation is on for the body of POST /v1/generate; GET /v1/health takes no input.",
                    None,
                ),
                (
                    "APIG4",
                    "POST /v1/generate requires an API key with a usage plan (or IAM signatures, from context); "
                    "/v1/health stays open because Route 53 health checks cannot sign requests.",
                    None,
                ),
                (
                    "COG4",
                    "Clients are platform teams' services, not end users: they authenticate with API keys and "
                    "usage plans, or IAM, rather than a Cognito user pool.",
                    None,
                ),
                (
                    "APIGWCacheEnabledAndEncrypted",
                    "Every answer is generated per request and may be personal; "
                    "caching responses would serve one user's answer to another.",
                    None,
                ),
                (
                    "APIGWSSLEnabled",
                    "The backend is a Lambda proxy integration reached over AWS's signed internal "
                    "path; a client certificate applies only to HTTP backends.",
                    None,
                ),
                (
                    "IAM4",
                    "API Gateway's account-level CloudWatch role uses the AWS-managed "
                    "AmazonAPIGatewayPushToCloudWatchLogs policy, the documented way to enable execution logs.",
                    ["Policy::arn:<AWS::Partition>:iam::aws:policy/service-role/AmazonAPIGatewayPushToCloudWatchLogs"],
                ),
            ],
        )

    @property
    def url(self) -> str:
        return self.api.url


def generate_request_model() -> apigw.JsonSchema:
    """Defence in depth for POST /v1/generate; the function validates the same rules again.

    The prompt has no maxLength here on purpose: an over-long prompt must get the function's 413
    with its limit in the message, not a gateway 400.
    """
    return apigw.JsonSchema(
        schema=apigw.JsonSchemaVersion.DRAFT4,
        title="GenerateRequest",
        type=apigw.JsonSchemaType.OBJECT,
        required=["prompt", "use_case"],
        additional_properties=False,
        properties={
            "prompt": apigw.JsonSchema(type=apigw.JsonSchemaType.STRING, min_length=1),
            "use_case": apigw.JsonSchema(type=apigw.JsonSchemaType.STRING, enum=list(use_case_names())),
            "user_id": apigw.JsonSchema(
                type=[apigw.JsonSchemaType.STRING, apigw.JsonSchemaType.NULL], pattern="^[A-Za-z0-9_.@:-]{1,128}$"
            ),
        },
    )
