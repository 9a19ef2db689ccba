"""POST /v1/generate/stream: API Gateway response streaming in front of a Python function that streams.

Python has no native Lambda streaming runtime, so the function runs ``lambdas/api_stream/run.sh``
behind the AWS Lambda Web Adapter layer in ``response_stream`` mode. API Gateway invokes it with
InvokeWithResponseStream (``responseTransferMode: STREAM``). The function holds the same grants
as the sync path's links together: the circuit items (the breaker's writes), budgets, the audit
queue, the strategy, the models by ConverseStream and Converse, the serving functions and the
guardrail.
"""

from __future__ import annotations

import json
import math

from aws_cdk import Duration, Stack
from aws_cdk import aws_apigateway as apigw
from aws_cdk import aws_kms as kms
from constructs import Construct

from cdk_app.compliance import acknowledge
from cdk_app.config import StreamingSettings
from stacks.api_front import ApiFront
from stacks.bedrock_access import INVOKE, grant_invoke
from stacks.budgets import Budgets
from stacks.circuit_breaker import CircuitBreaker
from stacks.common import PythonFunction
from stacks.guardrail import Guardrail
from stacks.ledger import Ledger
from stacks.model_config import ModelConfig
from stacks.serving import Serving

INVOKE_STREAM = "bedrock:InvokeModelWithResponseStream"
ADAPTER_PORT = 8080
READINESS_PATH = "/healthz"  # lambdas/api_stream/server.py
# After the stream's own bound: the budget settle, the audit send (one bounded call each) and a
# cold start of the adapter and server. tests/infrastructure/test_timeout_budget.py checks it.
AFTER_STREAM_S = 10


def function_timeout_s(settings: StreamingSettings) -> int:
    return math.ceil(settings.max_stream_s + AFTER_STREAM_S)


class ApiStream(Construct):
    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        key: kms.IKey,
        powertools_layer_version: int,
        settings: StreamingSettings,
        front: ApiFront,
        breaker: CircuitBreaker,
        budgets: Budgets,
        ledger: Ledger,
        model_config: ModelConfig,
        serving: Serving,
        guardrail: Guardrail,
        bedrock_model_ids: tuple[str, ...],
        fallback_model_id: str,
        max_prompt_chars: int,
        appconfig_agent_layer: str | None = None,
    ) -> None:
        super().__init__(scope, construct_id)
        stack = Stack.of(self)
        timeout = function_timeout_s(settings)
        self.handler = PythonFunction(
            self,
            "Stream",
            component="api_stream",
            description="Streams answers as server-sent events behind the circuit breaker (Lambda Web Adapter)",
            key=key,
            powertools_layer_version=powertools_layer_version,
            handler="api_stream/run.sh",
            extra_layers=(settings.web_adapter_layer(stack.region, stack.partition),),
            timeout=Duration.seconds(timeout),
            environment={
                "AWS_LAMBDA_EXEC_WRAPPER": "/opt/bootstrap",
                "AWS_LWA_INVOKE_MODE": "response_stream",
                "AWS_LWA_PORT": str(ADAPTER_PORT),
                "AWS_LWA_READINESS_CHECK_PATH": READINESS_PATH,
                "CIRCUIT_TABLE": breaker.table.table_name,
                "BUDGET_TABLE": budgets.table.table_name,
                "AUDIT_QUEUE_URL": ledger.queue.queue_url,
                "FALLBACK_MODEL_ID": fallback_model_id,
                "MAX_PROMPT_CHARS": str(max_prompt_chars),
                "API_AUTH": front.auth,
                "STREAM_FIRST_TOKEN_TIMEOUT_S": str(settings.first_token_timeout_s),
                "STREAM_IDLE_TIMEOUT_S": str(settings.idle_timeout_s),
                "STREAM_MAX_S": str(settings.max_stream_s),
                "LAMBDA_PROVIDERS": json.dumps(serving.targets, sort_keys=True),
                "SAGEMAKER_ENDPOINTS": json.dumps(serving.endpoints, sort_keys=True),
                **guardrail.environment,
                **model_config.strategy_environment(appconfig_agent_layer),
            },
        )
        self.function = function = self.handler.function
        model_config.grant_read_strategy(self.handler, appconfig_agent_layer)
        breaker.grant_stream_transitions(function)
        budgets.grant_reserve_and_settle(function)
        ledger.grant_send(function)
        front.grant_client_keys(function)
        serving.grant_invoke(function)
        guardrail.grant_apply(function)
        # ConverseStream for free text; Converse for the labels and the fallback's sentiment answer.
        grant_invoke(function, stack, (*bedrock_model_ids, fallback_model_id), (INVOKE, INVOKE_STREAM))
        integration = apigw.LambdaIntegration(
            function,
            response_transfer_mode=apigw.ResponseTransferMode.STREAM,
            # A streamed integration may run past the 29 s buffered limit (up to 15 minutes).
            timeout=Duration.seconds(timeout),
        )
        self.method = front.add_method(front.generate_resource.add_resource("stream"), integration)
        acknowledge(
            self.method,
            [
                (
                    "APIG4",
                    "POST /v1/generate/stream requires an API key with a usage plan (or IAM signatures, from "
                    "context), exactly as POST /v1/generate.",
                    None,
                ),
                (
                    "COG4",
                    "Clients are platform teams' services, not end users: they authenticate with API keys and "
                    "usage plans, or IAM, rather than a Cognito user pool.",
                    None,
                ),
            ],
        )
        acknowledge(
            self.handler,
            [
                (
                    "IAM5",
                    "SendMessage to the encrypted audit queue needs the platform key's data-key actions "
                    "(granted by grant_send_messages on that key only).",
                    ["Action::kms:GenerateDataKey*", "Action::kms:ReEncrypt*"],
                ),
                (
                    "IAM5",
                    "grant_invoke adds '<function arn>:*' so the stream may call published versions and aliases "
                    "of the two serving functions, as the router does; it names no other function.",
                    [
                        "regex:^Resource::<ServingSentimentFunction[0-9A-F]+\\.Arn>:\\*$",
                        "regex:^Resource::<ServingAdvisorFunction[0-9A-F]+\\.Arn>:\\*$",
                    ],
                ),
            ],
        )
