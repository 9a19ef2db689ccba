"""The regional REST API and its front function.

REST (not HTTP API) because the platform needs request validation, usage plans and WAF.
"""

from __future__ import annotations

from aws_cdk import Duration, Stack
from aws_cdk import aws_apigateway as apigw
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_ssm as ssm
from aws_cdk import aws_stepfunctions as sfn
from constructs import Construct

from cdk_app.compliance import acknowledge
from cdk_app.config import UsagePlanSettings, use_case_names
from stacks.api_keys import api_key_value_reference
from stacks.budgets import Budgets
from stacks.circuit_breaker import CircuitBreaker
from stacks.common import PythonFunction, encrypted_log_group
from stacks.ledger import Ledger
from stacks.model_config import ModelConfig
from stacks.web_acl import WebAcl, waf_limits

STAGE = "prod"
# API Gateway's default (and, without a quota increase, maximum) integration timeout.
INTEGRATION_TIMEOUT_S = 29
FRONT_TIMEOUT_S = 26
# How long the front waits for StartSyncExecution: longer than the state machine's TimeoutSeconds.
EXECUTION_READ_TIMEOUT_S = 22.5
ROUTES = (
    ("POST", "/v1/generate"),
    ("POST", "/v1/generate/stream"),
    ("GET", "/v1/budget"),
    ("GET", "/v1/health"),
)
# Variables a gateway response template may substitute: AWS-generated, of a fixed format, so they
# can never carry a quote or a client's text into the JSON.
SAFE_TEMPLATE_VARIABLES = ("$context.requestId",)
_SCHEMA_HINT = "see docs/openapi.json"
GATEWAY_RESPONSES: tuple[tuple[apigw.ResponseType, str | None, str, str], ...] = (
    (
        apigw.ResponseType.BAD_REQUEST_BODY,
        "400",
        "invalid_request",
        "the body must be a JSON object with a non-empty prompt and a known use_case, and no other fields "
        f"than user_id ({_SCHEMA_HINT})",
    ),
    (apigw.ResponseType.INVALID_API_KEY, "403", "forbidden", "a valid API key or signature is required"),
    (apigw.ResponseType.MISSING_AUTHENTICATION_TOKEN, "403", "forbidden", "a valid API key or signature is required"),
    (apigw.ResponseType.ACCESS_DENIED, "403", "forbidden", "a valid API key or signature is required"),
    (apigw.ResponseType.WAF_FILTERED, "403", "forbidden", "the request was blocked by the web application firewall"),
    (apigw.ResponseType.THROTTLED, "429", "rate_limited", "the client's request rate is over its plan; retry later"),
    (apigw.ResponseType.QUOTA_EXCEEDED, "429", "quota_exceeded", "the client's monthly request quota is used up"),
    (apigw.ResponseType.REQUEST_TOO_LARGE, "413", "payload_too_large", "the request body is too large"),
    (apigw.ResponseType.UNSUPPORTED_MEDIA_TYPE, "415", "unsupported_media_type", "send Content-Type: application/json"),
    (apigw.ResponseType.INTEGRATION_TIMEOUT, "504", "timeout", "the request path did not answer in time; please retry"),
    (apigw.ResponseType.DEFAULT_4_XX, None, "client_error", "the request was rejected by the API gateway"),
    (apigw.ResponseType.DEFAULT_5_XX, None, "gateway_error", "the API gateway could not complete the request"),
)


def gateway_response_body(code: str, message: str) -> str:
    """The API's error shape, as a gateway response template (static text plus the request id)."""
    if '"' in code + message or "\\" in code + message or "$" in code + message:
        raise ValueError("gateway response text must not need escaping")
    return f'{{"error": "{code}", "message": "{message}", "request_id": "$context.requestId"}}'


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
        usage_plan: UsagePlanSettings,
        model_config: ModelConfig,
        budgets: Budgets,
        ledger: Ledger,
        fallback_model_id: str,
        appconfig_agent_layer: str | None = None,
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
            # Its own work is bounded by client timeouts (Step Functions, audit) that fit API
            # Gateway's 29 s with its cold start; this timeout only backstops them.
            timeout=Duration.seconds(FRONT_TIMEOUT_S),
            environment={
                "EXECUTION_READ_TIMEOUT_S": str(EXECUTION_READ_TIMEOUT_S),
                "STATE_MACHINE_ARN": state_machine.state_machine_arn,
                "CIRCUIT_TABLE": breaker.table.table_name,
                "MAX_PROMPT_CHARS": str(max_prompt_chars),
                "EXECUTION_MODE": "sync",
                # Budgets: the table, the strategy's limits and prices, and what the fallback may cost.
                "BUDGET_TABLE": budgets.table.table_name,
                "FALLBACK_MODEL_ID": fallback_model_id,
                "API_AUTH": auth,
                "AUDIT_QUEUE_URL": ledger.queue.queue_url,
                **model_config.strategy_environment(appconfig_agent_layer),
            },
        )
        self.function = self.handler.function
        model_config.grant_read_strategy(self.handler, appconfig_agent_layer)
        budgets.grant_reserve_and_settle(self.function)
        # One record per request (identifiers, decisions, counts, a prompt hash; never text), to
        # the FIFO queue the ledger function chains and archives (stacks/ledger.py).
        ledger.grant_send(self.function)
        acknowledge(
            self.handler,
            [
                (
                    "IAM5",
                    "SendMessage to the encrypted audit queue needs the platform key's data-key actions "
                    "(granted by grant_send_messages on that key only).",
                    ["Action::kms:GenerateDataKey*", "Action::kms:ReEncrypt*"],
                )
            ],
        )
        state_machine.grant_start_sync_execution(self.function)
        breaker.grant_read_circuits(self.function)
        breaker.grant_request_probes(self.function)

        self.access_logs = encrypted_log_group(self, "AccessLogs", key)
        self.api = apigw.RestApi(
            self,
            "Api",
            # API Gateway metrics are selected by ApiName: a name of our own keeps other APIs out.
            rest_api_name=f"{Stack.of(self).stack_name}-api",
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
        # Gateway-level rejections use the API's error shape. Gateway response templates are not VTL:
        # only plain $context substitution, with no escaping, so a client-influenced value (the
        # validator's message echoes the body) could break the JSON. Messages are therefore static,
        # and only the request id (an AWS-generated UUID) is substituted.
        for response_type, status, code, message in GATEWAY_RESPONSES:
            self.api.add_gateway_response(
                f"Gateway{response_type.response_type}",
                type=response_type,
                status_code=status,
                templates={"application/json": gateway_response_body(code, message)},
            )
        self.web_acl = WebAcl(
            self,
            "WebAcl",
            key=key,
            stage_arn=self.api.deployment_stage.stage_arn,
            limits=waf_limits(usage_plan, len(clients)),
        )
        integration = apigw.LambdaIntegration(self.function, timeout=Duration.seconds(INTEGRATION_TIMEOUT_S))
        self.auth = auth
        self.request_model = request_model
        self.v1 = v1 = self.api.root.add_resource("v1")
        self.generate_resource = v1.add_resource("generate")
        self.generate_method = self.generate_resource.add_method(
            "POST",
            integration,
            request_validator=self.validator,
            request_models={"application/json": request_model},
            api_key_required=auth == "api_key",
            authorization_type=apigw.AuthorizationType.IAM if auth == "iam" else apigw.AuthorizationType.NONE,
        )
        self.budget_method = v1.add_resource("budget").add_method(
            "GET",
            integration,
            api_key_required=auth == "api_key",
            authorization_type=apigw.AuthorizationType.IAM if auth == "iam" else apigw.AuthorizationType.NONE,
        )
        # Route 53 health checks cannot sign requests or send keys, so health stays open.
        self.health_method = v1.add_resource("health").add_method("GET", integration)
        if auth == "api_key":
            plan = self.api.add_usage_plan(
                "UsagePlan",
                description="Per-client throttling and monthly quota",
                throttle=apigw.ThrottleSettings(rate_limit=usage_plan.rate_limit, burst_limit=usage_plan.burst_limit),
                quota=apigw.QuotaSettings(limit=usage_plan.monthly_quota, period=apigw.Period.MONTH),
            )
            plan.add_api_stage(stage=self.api.deployment_stage)
            key_ids: list[list[str]] = []
            for client in clients:
                # One value per client for both regions, from the replicated secret (stacks/api_keys.py);
                # the template holds only the reference, never the value.
                api_key = self.api.add_api_key(
                    f"Key-{client}",
                    description=f"API key of client {client}",
                    value=api_key_value_reference(client),
                )
                plan.add_api_key(api_key)
                key_ids.append([api_key.key_id, client])
            # API Gateway tells the function which key it accepted (its id); budgets are per client.
            # The ids go to a parameter the function reads by name: naming them in its environment
            # would make the function depend on the keys, which depend on the stage it serves.
            stack = Stack.of(self)
            parameter_name = f"/finai/{stack.region}/api-client-keys"
            ssm.StringParameter(
                self,
                "ClientKeys",
                parameter_name=parameter_name,
                description="API Gateway key id to client name, for budgets and the audit trail",
                string_value=stack.to_json_string(key_ids),
            )
            self.client_keys_parameter = parameter_name
            self.grant_client_keys(self.function)
        acknowledge(
            self.api,
            [
                (
                    "APIG2",
                    "Request validation is on for the body of POST /v1/generate; GET /v1/budget and "
                    "GET /v1/health take no input.",
                    None,
                ),
                (
                    "APIG4",
                    "POST /v1/generate and GET /v1/budget require an API key with a usage plan (or IAM "
                    "signatures, from context); "
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

    client_keys_parameter: str | None = None

    def grant_client_keys(self, function: lambda_.Function) -> None:
        """Name the key-id-to-client parameter to a function that charges budgets, and let it read it."""
        name = self.client_keys_parameter
        if name is None:
            return
        function.add_environment("API_CLIENT_KEYS_PARAMETER", name)
        stack = Stack.of(self)
        function.add_to_role_policy(
            iam.PolicyStatement(
                actions=["ssm:GetParameter"],
                resources=[stack.format_arn(service="ssm", resource="parameter", resource_name=name[1:])],
            )
        )

    def add_method(self, resource: apigw.Resource, integration: apigw.Integration) -> apigw.Method:
        """A POST method with the API's request validation, model and authorisation."""
        return resource.add_method(
            "POST",
            integration,
            request_validator=self.validator,
            request_models={"application/json": self.request_model},
            api_key_required=self.auth == "api_key",
            authorization_type=apigw.AuthorizationType.IAM if self.auth == "iam" else apigw.AuthorizationType.NONE,
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
