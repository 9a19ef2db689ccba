"""Run the regional request path in one process: the shipped ASL in moto, the real handlers.

moto's Step Functions interpreter executes ``statemachines/circuit_breaker.asl.json`` with the
same substitutions CDK applies; its DynamoDB tasks hit moto's DynamoDB, and its Lambda tasks are
routed here to the real handler functions. Only the model endpoint is replaced, by
:class:`local.bedrock_stub.OfflineBedrock`.
"""

from __future__ import annotations

import json
import logging
import os
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from unittest import mock

import boto3

from cdk_app.names import endpoint_name
from local.bedrock_stub import OfflineBedrock
from local.sagemaker_endpoint import LocalEndpoint

REPO = Path(__file__).resolve().parent.parent
ASL_PATH = REPO / "statemachines" / "circuit_breaker.asl.json"
ACCOUNT = "123456789012"
CIRCUIT_KEY_SCHEMA = [{"AttributeName": "model_id", "KeyType": "HASH"}]
BUDGET_TABLE = "finai-budgets"
BUDGET_KEY_SCHEMA = [{"AttributeName": "pk", "KeyType": "HASH"}]
LEDGER_TABLE = "finai-ledger"
LEDGER_BUCKET = "finai-ledger-archive"
AUDIT_QUEUE = "finai-audit.fifo"
# The one local API key's id, as API Gateway would put it in requestContext.identity.apiKeyId.
LOCAL_API_KEY_ID = "localkeydefault0"
LOCAL_CLIENT = "default"
# The strategy targets served by a SageMaker endpoint (the seeds' larger advisor).
ENDPOINT_TARGETS = ("advisor_large",)


def audit_queue_url(region: str) -> str:
    return f"https://sqs.{region}.amazonaws.com/{ACCOUNT}/{AUDIT_QUEUE}"


def create_table(client: Any, name: str, key_schema: list[dict[str, str]]) -> None:
    """An on-demand table with a string hash key, as the stacks deploy them (moto's DynamoDB)."""
    client.create_table(
        TableName=name,
        KeySchema=key_schema,
        AttributeDefinitions=[{"AttributeName": k["AttributeName"], "AttributeType": "S"} for k in key_schema],
        BillingMode="PAY_PER_REQUEST",
    )


FUNCTIONS = ("router", "fallback", "degradation", "api_front")

Handler = Callable[[dict[str, Any], Any], Any]
Streamer = Callable[[dict[str, Any], Any], Iterator[bytes]]

# moto's ASL interpreter logs an ERROR each time a Choice evaluates ``IsPresent`` on a missing
# path, which is how the breaker reads "no circuit item yet". Those are not errors.
logging.getLogger("moto.stepfunctions.parser").setLevel(logging.CRITICAL)


@dataclass
class FakeContext:
    """Enough of Lambda's context object for Powertools and our deadline arithmetic."""

    function_name: str
    region: str
    timeout_ms: int = 30_000
    aws_request_id: str = field(default_factory=lambda: str(uuid.uuid4()))

    @property
    def invoked_function_arn(self) -> str:
        return f"arn:aws:lambda:{self.region}:{ACCOUNT}:function:{self.function_name}"

    memory_limit_in_mb: int = 512

    def get_remaining_time_in_millis(self) -> int:
        return self.timeout_ms


def response_headers(result: dict[str, Any]) -> dict[str, str]:
    """A proxy response's headers: Powertools answers REST events with multiValueHeaders."""
    found = {str(k): str(v) for k, v in (result.get("headers") or {}).items()}
    for name, values in (result.get("multiValueHeaders") or {}).items():
        found[str(name)] = ", ".join(str(v) for v in values)
    return found


def create_ledger_store(dynamodb: Any, s3: Any, sqs: Any, region: str) -> None:
    """The ledger table (chain, seq), the Object Lock archive and the FIFO audit queue, as the stacks make them."""
    dynamodb.create_table(
        TableName=LEDGER_TABLE,
        KeySchema=[{"AttributeName": "chain", "KeyType": "HASH"}, {"AttributeName": "seq", "KeyType": "RANGE"}],
        AttributeDefinitions=[
            {"AttributeName": "chain", "AttributeType": "S"},
            {"AttributeName": "seq", "AttributeType": "N"},
        ],
        BillingMode="PAY_PER_REQUEST",
    )
    location = {} if region == "us-east-1" else {"CreateBucketConfiguration": {"LocationConstraint": region}}
    s3.create_bucket(Bucket=LEDGER_BUCKET, ObjectLockEnabledForBucket=True, **location)
    s3.put_object_lock_configuration(
        Bucket=LEDGER_BUCKET,
        ObjectLockConfiguration={
            "ObjectLockEnabled": "Enabled",
            "Rule": {"DefaultRetention": {"Mode": "COMPLIANCE", "Days": 1}},
        },
    )
    sqs.create_queue(QueueName=AUDIT_QUEUE, Attributes={"FifoQueue": "true", "VisibilityTimeout": "180"})


def api_event(
    method: str, path: str, body: str | None, request_id: str | None = None, api_key_id: str | None = LOCAL_API_KEY_ID
) -> dict[str, Any]:
    """An API Gateway REST proxy event, as the regional API sends it to the front Lambda."""
    return {
        "httpMethod": method,
        "path": path,
        "resource": path,
        "body": body,
        "headers": {"Content-Type": "application/json"},
        "requestContext": {
            "requestId": request_id or str(uuid.uuid4()),
            "stage": "prod",
            "identity": {"apiKeyId": api_key_id},
        },
        "queryStringParameters": None,
        "isBase64Encoded": False,
    }


def render_definition(substitutions: dict[str, str], path: Path = ASL_PATH) -> str:
    """Apply ``definition_substitutions`` the way CDK's ``DefinitionBody.from_file`` does."""
    text = path.read_text()
    for key, value in substitutions.items():
        text = text.replace("${" + key + "}", value)
    if "${" in text:
        raise ValueError(f"unsubstituted placeholder left in {path.name}")
    return _scaled_timeouts(text, float(os.environ.get("FINAI_LOCAL_TIMEOUT_SCALE", "1")))


def _scaled_timeouts(text: str, scale: float) -> str:
    """The emulator's time dilation: moto runs every task in this one process, and on a loaded
    two-core machine a 1-s DynamoDB task can miss its TimeoutSeconds that AWS would meet in
    milliseconds. The test suite sets FINAI_LOCAL_TIMEOUT_SCALE (tests/conftest.py); the
    shipped ASL and the timeout-budget check, which read the real values, are untouched."""
    if scale == 1:
        return text
    definition = json.loads(text)

    def scale_states(states: dict[str, Any]) -> None:
        for state in states.values():
            if "TimeoutSeconds" in state:
                state["TimeoutSeconds"] = max(1, round(state["TimeoutSeconds"] * scale))
            for branch in state.get("Branches", []):
                scale_states(branch["States"])

    scale_states(definition["States"])
    if "TimeoutSeconds" in definition:
        definition["TimeoutSeconds"] = round(definition["TimeoutSeconds"] * scale)
    return json.dumps(definition)


def function_env(region: str, table: str, state_machine_arn: str, max_prompt_chars: int) -> dict[str, str]:
    return {
        "AWS_REGION": region,
        "AWS_DEFAULT_REGION": region,
        "POWERTOOLS_METRICS_NAMESPACE": "FinAI",
        "POWERTOOLS_TRACE_DISABLED": "true",
        "STRATEGY_SOURCE": "bundled",
        "FALLBACK_MODEL_ID": "us.amazon.nova-micro-v1:0",
        "CIRCUIT_TABLE": table,
        "BUDGET_TABLE": BUDGET_TABLE,
        "AUDIT_QUEUE_URL": audit_queue_url(region),
        "LEDGER_TABLE": LEDGER_TABLE,
        "LEDGER_BUCKET": LEDGER_BUCKET,
        "API_CLIENT_KEYS": json.dumps([[LOCAL_API_KEY_ID, LOCAL_CLIENT]]),
        "API_AUTH": "api_key",
        "STATE_MACHINE_ARN": state_machine_arn,
        "MAX_PROMPT_CHARS": str(max_prompt_chars),
        "EXECUTION_MODE": "poll",
        # The endpoint tier's targets, named as CDK names them (local.sagemaker_endpoint plays the endpoint).
        "SAGEMAKER_ENDPOINTS": json.dumps({t: endpoint_name(t) for t in ENDPOINT_TARGETS}),
    }


class InProcessLambdas:
    """Routes moto's Lambda invocations to handler functions in this process."""

    def __init__(self, region: str) -> None:
        self.region = region
        self.handlers: dict[str, Handler] = {}
        # Functions whose runtime streams (a handler yielding the response's bytes).
        self.streamers: dict[str, Streamer] = {}
        self.invocations: list[str] = []

    def register(self, name: str, handler: Handler, streamer: Streamer | None = None) -> None:
        self.handlers[name] = handler
        if streamer is not None:
            self.streamers[name] = streamer

    @staticmethod
    def short_name(function_name: str) -> str:
        # Step Functions passes the full ARN, possibly with a qualifier.
        if ":function:" in function_name:
            function_name = function_name.split(":function:", 1)[1]
        return function_name.split(":", 1)[0]

    def invoke(self, function_name: str, body: Any, response_headers: dict[str, Any]) -> bytes:
        name = self.short_name(function_name)
        self.invocations.append(name)
        handler = self.handlers[name]
        event = json.loads(body) if body else {}
        try:
            result = handler(event, FakeContext(name, self.region))
        except Exception as exc:  # surfaces in the state machine like an unhandled Lambda error
            response_headers["x-amz-function-error"] = "Unhandled"
            return json.dumps({"errorType": type(exc).__name__, "errorMessage": str(exc)}).encode()
        return json.dumps(result).encode()

    def invoke_stream(self, function_name: str, payload: bytes) -> Iterator[dict[str, Any]]:
        """``InvokeWithResponseStream``'s events: a chunk per write of a streaming function, or
        one chunk with a buffered function's whole response; then ``InvokeComplete``."""
        name = self.short_name(function_name)
        self.invocations.append(name)
        event = json.loads(payload) if payload else {}
        context = FakeContext(name, self.region)
        try:
            if name in self.streamers:
                for chunk in self.streamers[name](event, context):
                    yield {"PayloadChunk": {"Payload": chunk}}
            else:
                yield {"PayloadChunk": {"Payload": json.dumps(self.handlers[name](event, context)).encode()}}
        except Exception as exc:  # Lambda ends the stream with the error in InvokeComplete
            yield {"InvokeComplete": {"ErrorCode": "Unhandled", "ErrorDetails": f"{type(exc).__name__}: {exc}"}}
            return
        yield {"InvokeComplete": {}}


class LocalLambdaStreams:
    """The Lambda client's ``invoke_with_response_stream`` over :class:`InProcessLambdas`
    (moto does not implement that operation)."""

    def __init__(self, lambdas: InProcessLambdas) -> None:
        self.lambdas = lambdas

    def invoke_with_response_stream(self, FunctionName: str, Payload: bytes, **_: Any) -> dict[str, Any]:
        return {"StatusCode": 200, "EventStream": self.lambdas.invoke_stream(FunctionName, Payload)}


@contextmanager
def routed_to(lambdas: InProcessLambdas) -> Iterator[InProcessLambdas]:
    """While moto runs, send its Lambda invocations to ``lambdas`` instead of its echo backend."""
    from moto.awslambda_simple.models import LambdaSimpleBackend

    def routed_invoke(
        backend: Any, function_name: str, qualifier: Any, body: Any, headers: Any, response_headers: Any
    ) -> bytes:
        return lambdas.invoke(function_name, body, response_headers)

    with mock.patch.object(LambdaSimpleBackend, "invoke", routed_invoke):
        yield lambdas


MOTO_CONFIG: Any = {"stepfunctions": {"execute_state_machine": True}, "lambda": {"use_docker": False}}
# moto's conventional fake credentials: they authorise nothing anywhere.
TEST_CREDENTIALS = dict.fromkeys(("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN"), "testing")


@dataclass
class RequestPath:
    """One emulated region: table, state machine and the handlers wired to them."""

    region: str
    table_name: str
    state_machine_arn: str
    lambdas: InProcessLambdas
    bedrock: OfflineBedrock
    clock: dict[str, datetime]
    endpoint: LocalEndpoint

    @property
    def sfn(self) -> Any:
        return boto3.client("stepfunctions", region_name=self.region)

    @property
    def dynamodb(self) -> Any:
        return boto3.client("dynamodb", region_name=self.region)

    def advance(self, seconds: float) -> None:
        """Move the breaker's clock (the router's) forward."""
        from datetime import timedelta

        self.clock["now"] = self.clock["now"] + timedelta(seconds=seconds)

    def drain_ledger(self) -> int:
        """Deliver the audit queue to the ledger function, as the SQS event source would; returns how many."""
        from ledger import handler as ledger

        sqs = boto3.client("sqs", region_name=self.region)
        url = audit_queue_url(self.region)
        delivered = 0
        while True:
            answer = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10, MessageSystemAttributeNames=["All"])
            messages = answer.get("Messages", [])
            if not messages:
                return delivered
            event = {
                "Records": [
                    {"body": m["Body"], "attributes": m.get("Attributes", {}), "receiptHandle": m["ReceiptHandle"]}
                    for m in messages
                ]
            }
            ledger.lambda_handler(event, FakeContext("ledger", self.region))
            sqs.delete_message_batch(
                QueueUrl=url,
                Entries=[{"Id": str(i), "ReceiptHandle": m["ReceiptHandle"]} for i, m in enumerate(messages)],
            )
            delivered += len(messages)

    def audit_records(self) -> list[dict[str, Any]]:
        """Every chained audit record in this region (after delivering what is queued), in chain order."""
        from ledger.dal import LedgerTable

        self.drain_ledger()
        chains = {item["chain"]["S"] for item in self.dynamodb.scan(TableName=LEDGER_TABLE)["Items"]}
        table = LedgerTable(LEDGER_TABLE, self.dynamodb)
        return [entry for chain in sorted(chains) for entry in table.entries(chain)]

    def circuit(self, model_id: str) -> dict[str, Any] | None:
        item = self.dynamodb.get_item(TableName=self.table_name, Key={"model_id": {"S": model_id}}, ConsistentRead=True)
        if "Item" not in item:
            return None
        raw = item["Item"]
        return {
            "state": raw.get("circuit_state", {}).get("S"),
            "failures": int(raw.get("failures", {}).get("N", "0")),
            "version": int(raw.get("version", {}).get("N", "0")),
            "opened_at": raw.get("opened_at", {}).get("S"),
        }

    def execute(self, payload: dict[str, Any], timeout_s: float = 30.0) -> dict[str, Any]:
        """Run one execution to completion; returns DescribeExecution's answer with parsed output."""
        from api_front.dal import PollingExecutor

        result = PollingExecutor(self.state_machine_arn, self.sfn, timeout_s).run(str(uuid.uuid4()), payload)
        return {"status": result.status, "output": result.output, "error": result.error, "cause": result.cause}

    def api(
        self, method: str, path: str, body: str | None = None, api_key_id: str | None = LOCAL_API_KEY_ID
    ) -> tuple[int, dict[str, Any]]:
        """Call the front Lambda with an API Gateway REST proxy event."""
        status, answer, _ = self.api_response(method, path, body, api_key_id)
        return status, answer

    def stream(
        self, body: str | bytes, api_key_id: str | None = LOCAL_API_KEY_ID
    ) -> tuple[int, dict[str, str], list[Any], bytes]:
        """Call the stream route and read it to the end: status, headers, events and the raw bytes."""
        response = stream_request(body, api_key_id)
        raw = b"".join(response.body)
        self.drain_ledger()
        return response.status, response.headers, list(response.events), raw

    def api_response(
        self, method: str, path: str, body: str | None = None, api_key_id: str | None = LOCAL_API_KEY_ID
    ) -> tuple[int, dict[str, Any], dict[str, str]]:
        """As :meth:`api`, with the response headers."""
        from api_front import handler as front

        event = api_event(method, path, body, api_key_id=api_key_id)
        result = front.lambda_handler(event, FakeContext("api_front", self.region))
        return int(result["statusCode"]), json.loads(result["body"]), response_headers(result)


def stream_request(
    body: str | bytes,
    api_key_id: str | None = LOCAL_API_KEY_ID,
    request_id: str | None = None,
    content_type: str | None = "application/json",
) -> Any:
    """Call the stream route as API Gateway (through the Lambda Web Adapter) hands it a request."""
    from api_stream import handler as stream

    raw = body.encode() if isinstance(body, str) else body
    headers = {"content-type": content_type} if content_type else {}
    context = {"requestId": request_id or str(uuid.uuid4()), "identity": {"apiKeyId": api_key_id}}
    return stream.handle("POST", headers, raw, context)


def _reset_handler_caches() -> None:
    from ledger import handler as ledger

    from api_front import handler as front
    from api_stream import handler as stream
    from fallback import handler as fallback
    from router import handler as router

    for fn in (
        front.settings,
        front.executor,
        front.strategy_source,
        front.budget_store,
        front.audit_writer,
        front.client_directory,
        ledger.table,
        ledger.archive,
        front.circuit_reader,
        front.probe_starter,
        router._strategy_source,
        router._bedrock,
        router._lambda_provider,
        router._sagemaker_provider,
        fallback._client,
        stream.settings,
        stream.strategy_source,
        stream.budget_store,
        stream.circuit_store,
        stream.audit_writer,
        stream.bedrock,
        stream.serving,
        stream.client_directory,
    ):
        fn.cache_clear()


@contextmanager
def local_request_path(
    region: str = "us-east-1",
    *,
    max_prompt_chars: int = 16_000,
    bedrock: OfflineBedrock | None = None,
    strategy_source: Any | None = None,
    start: datetime | None = None,
    live_clock: bool = False,
) -> Iterator[RequestPath]:
    """Start moto, build the region's table and state machine, and wire the real handlers."""
    from moto import mock_aws

    from api_front import handler as front
    from api_stream import handler as stream
    from degradation import handler as degradation
    from fallback import handler as fallback
    from router import handler as router
    from router.dal import BedrockProvider, SageMakerProvider, sagemaker_endpoints_from_env
    from stacks.circuit_breaker import transition_placeholders

    bedrock = bedrock or OfflineBedrock()
    clock = {"now": start or datetime(2026, 1, 1, tzinfo=UTC)}
    table = "finai-circuits"
    lambdas = InProcessLambdas(region)
    endpoint = LocalEndpoint(region)
    arns = {name: f"arn:aws:lambda:{region}:{ACCOUNT}:function:{name}" for name in FUNCTIONS}
    sm_arn = f"arn:aws:states:{region}:{ACCOUNT}:stateMachine:circuit-breaker"
    env = function_env(region, table, sm_arn, max_prompt_chars)

    with (
        mock.patch.dict(os.environ, {**TEST_CREDENTIALS, **env}),
        mock_aws(config=MOTO_CONFIG),
        routed_to(lambdas),
    ):
        _reset_handler_caches()
        dynamodb = boto3.client("dynamodb", region_name=region)
        create_table(dynamodb, table, CIRCUIT_KEY_SCHEMA)
        create_table(dynamodb, BUDGET_TABLE, BUDGET_KEY_SCHEMA)
        create_ledger_store(
            dynamodb, boto3.client("s3", region_name=region), boto3.client("sqs", region_name=region), region
        )
        definition = render_definition(
            {
                "RouterFunctionArn": arns["router"],
                "FallbackFunctionArn": arns["fallback"],
                "DegradationFunctionArn": arns["degradation"],
                "CircuitTableName": table,
                **transition_placeholders(),
            }
        )
        boto3.client("stepfunctions", region_name=region).create_state_machine(
            name="circuit-breaker",
            definition=definition,
            type="EXPRESS",
            roleArn=f"arn:aws:iam::{ACCOUNT}:role/circuit-breaker",
        )
        lambdas.register("router", router.lambda_handler)
        lambdas.register("fallback", fallback.lambda_handler)
        lambdas.register("degradation", degradation.lambda_handler)
        patches: list[Any] = [
            mock.patch.object(router, "_bedrock", lambda: BedrockProvider(client=bedrock)),
            mock.patch.object(
                router,
                "_sagemaker_provider",
                lambda: SageMakerProvider(sagemaker_endpoints_from_env(), client=endpoint),
            ),
            mock.patch.object(fallback, "_client", lambda: bedrock),
            # Tests step a fixed clock; the served platform runs on real time (cooldowns elapse).
            mock.patch.object(router, "_now", (lambda: datetime.now(UTC)) if live_clock else (lambda: clock["now"])),
            # The health route reads the same clock: it decides when a cooled-down circuit is due a probe;
            # budgets too: the period a request is charged to.
            mock.patch.object(front, "_now", (lambda: datetime.now(UTC)) if live_clock else (lambda: clock["now"])),
            # The stream route: the same stand-in streams, the same clock stamps its circuits.
            mock.patch.object(stream, "bedrock", lambda: bedrock),
            mock.patch.object(stream, "serving", lambda: LocalLambdaStreams(lambdas)),
            mock.patch.object(stream, "_now", (lambda: datetime.now(UTC)) if live_clock else (lambda: clock["now"])),
        ]
        if strategy_source is not None:
            patches.append(mock.patch.object(router, "_strategy_source", lambda: strategy_source))
            patches.append(mock.patch.object(front, "strategy_source", lambda: strategy_source))
            patches.append(mock.patch.object(stream, "strategy_source", lambda: strategy_source))
        for p in patches:
            p.start()
        try:
            yield RequestPath(region, table, sm_arn, lambdas, bedrock, clock, endpoint)
        finally:
            for p in reversed(patches):
                p.stop()
            _reset_handler_caches()
            front.executor.cache_clear()
