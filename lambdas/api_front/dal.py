"""Data access for the front: starting the circuit-breaker execution and reading circuits."""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from typing import Any, Protocol

import boto3
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError, ReadTimeoutError


@dataclass(frozen=True)
class ExecutionResult:
    status: str  # SUCCEEDED, FAILED, TIMED_OUT or ABORTED
    output: dict[str, Any] | None
    error: str | None = None
    cause: str | None = None


class Executor(Protocol):
    def run(self, name: str, payload: dict[str, Any]) -> ExecutionResult: ...


# Connecting to Step Functions takes well under a second; anything slower will not make it.
CONNECT_TIMEOUT_S = 1.0


def bounded_config(connect_s: float, read_s: float) -> Config:
    """One attempt, each phase bounded: every call the front makes must fit API Gateway's 29 s,
    so a slow or failed call is not retried by botocore (the timeout budget counts each)."""
    return Config(connect_timeout=connect_s, read_timeout=read_s, retries={"total_max_attempts": 1, "mode": "standard"})


def worst_call_s(config: Config) -> float:
    """The longest one call made with ``config`` can take: every attempt's connect and read timeouts."""
    attempts = int((config.retries or {}).get("total_max_attempts", 1))
    return attempts * (float(config.connect_timeout) + float(config.read_timeout))


def sync_client_config(read_timeout_s: float) -> Config:
    """One attempt, bounded: the front must answer inside API Gateway's 29 s, so a slow or failed
    call is not retried; the front serves the static answer instead."""
    return bounded_config(CONNECT_TIMEOUT_S, read_timeout_s)


class SyncExecutor:
    """StartSyncExecution: the EXPRESS state machine answers within the API call."""

    def __init__(self, state_machine_arn: str, client: Any | None = None, read_timeout_s: float = 22.5) -> None:
        self._arn = state_machine_arn
        self._client = client or boto3.client("stepfunctions", config=sync_client_config(read_timeout_s))

    def run(self, name: str, payload: dict[str, Any]) -> ExecutionResult:
        try:
            result = self._client.start_sync_execution(stateMachineArn=self._arn, name=name, input=json.dumps(payload))
        except (BotoCoreError, ClientError) as exc:
            # A read timeout, a throttle or a service error: the request still gets an answer.
            timed_out = isinstance(exc, ReadTimeoutError)
            return ExecutionResult("TIMED_OUT" if timed_out else "FAILED", None, type(exc).__name__, str(exc)[:300])
        output = json.loads(result["output"]) if result.get("output") else None
        return ExecutionResult(result["status"], output, result.get("error"), result.get("cause"))


class PollingExecutor:
    """StartExecution, then DescribeExecution until done.

    For engines without StartSyncExecution (moto's interpreter, the local platform). Same
    contract as :class:`SyncExecutor`, with its own deadline.
    """

    def __init__(self, state_machine_arn: str, client: Any | None = None, timeout_s: float = 60.0) -> None:
        self._arn = state_machine_arn
        self._client = client or boto3.client("stepfunctions")
        self._timeout_s = timeout_s

    def run(self, name: str, payload: dict[str, Any]) -> ExecutionResult:
        arn = self._client.start_execution(stateMachineArn=self._arn, name=name, input=json.dumps(payload))[
            "executionArn"
        ]
        deadline = time.monotonic() + self._timeout_s
        delay = 0.005
        while True:
            described = self._client.describe_execution(executionArn=arn)
            if described["status"] != "RUNNING":
                output = json.loads(described["output"]) if described.get("output") else None
                return ExecutionResult(described["status"], output, described.get("error"), described.get("cause"))
            if time.monotonic() > deadline:
                return ExecutionResult("TIMED_OUT", None, "States.Timeout", "polling deadline passed")
            time.sleep(delay)
            delay = min(delay * 2, 0.1)


# Route 53 checks health from many places every 10 s; a cooled-down circuit gets at most one
# probe request per interval, however many of those calls see it.
PROBE_REQUEST_INTERVAL_S = 10


class ProbeStarter:
    """Starts a probe execution for a cooled-down circuit, at most once per interval per circuit.

    A region that Route 53 stopped sending traffic to gets no requests, so no request would ever
    probe its open circuits and DNS would never fail back. Health (which Route 53 keeps calling)
    asks for the probe instead. A conditional write on the circuit item elects one caller; the
    state machine's own conditional claim (ClaimProbe) still guarantees one probe in flight.
    """

    def __init__(
        self,
        state_machine_arn: str,
        table_name: str,
        dynamodb: Any | None = None,
        stepfunctions: Any | None = None,
        config: Config | None = None,
    ) -> None:
        self._arn = state_machine_arn
        self._table = table_name
        self._dynamodb = dynamodb or boto3.client("dynamodb", config=config)
        self._sfn = stepfunctions or boto3.client("stepfunctions", config=config)

    def request(self, model_id: str, version: int, now: str, recent: str, payload: dict[str, Any]) -> bool:
        """True when this caller won the interval's slot and started the probe execution."""
        try:
            self._dynamodb.update_item(
                TableName=self._table,
                Key={"model_id": {"S": model_id}},
                UpdateExpression="SET probe_requested_at = :now",
                ConditionExpression="version = :seen AND "
                "(attribute_not_exists(probe_requested_at) OR probe_requested_at <= :recent)",
                ExpressionAttributeValues={":now": {"S": now}, ":recent": {"S": recent}, ":seen": {"N": str(version)}},
            )
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") == "ConditionalCheckFailedException":
                return False  # another health call asked within the interval, or the circuit moved on
            raise
        self._sfn.start_execution(stateMachineArn=self._arn, name=str(payload["request_id"]), input=json.dumps(payload))
        return True


UNKNOWN_CLIENT = "unknown"


class ClientDirectory:
    """Which client an API key id belongs to.

    API Gateway names the accepted key's id in the request; the ids exist only once the keys are
    deployed, so the stack writes the id-to-client map to an SSM parameter (a function environment
    naming the keys would make the API's deployment depend on itself). Read at cold start, and
    again, at most once a minute, when an id is not in it (a client added since).
    """

    def __init__(
        self,
        static: dict[str, str] | None = None,
        parameter: str | None = None,
        fetch: Any | None = None,
        refresh_s: float = 60.0,
    ) -> None:
        self._static = static
        self._parameter = parameter
        self._fetch = fetch or _ssm_parameter
        self._refresh_s = refresh_s
        self._known: dict[str, str] | None = None
        self._read_at = 0.0

    def client(self, key_id: str) -> str:
        if self._static is not None:
            return self._static.get(key_id, UNKNOWN_CLIENT)
        if self._parameter is None:
            return UNKNOWN_CLIENT
        if self._known is None or (key_id not in self._known and time.monotonic() - self._read_at > self._refresh_s):
            self._read_at = time.monotonic()
            self._known = {str(k): str(v) for k, v in json.loads(self._fetch(self._parameter))}
        return self._known.get(key_id, UNKNOWN_CLIENT)


def _ssm_parameter(name: str) -> str:
    from aws_lambda_powertools.utilities import parameters

    return str(parameters.get_parameter(name, force_fetch=True))
