"""Data access for the front: starting the circuit-breaker execution and reading circuits."""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from typing import Any, Protocol

import boto3
from botocore.config import Config


@dataclass(frozen=True)
class ExecutionResult:
    status: str  # SUCCEEDED, FAILED, TIMED_OUT or ABORTED
    output: dict[str, Any] | None
    error: str | None = None
    cause: str | None = None


class Executor(Protocol):
    def run(self, name: str, payload: dict[str, Any]) -> ExecutionResult: ...


class SyncExecutor:
    """StartSyncExecution: the EXPRESS state machine answers within the API call."""

    def __init__(self, state_machine_arn: str, client: Any | None = None) -> None:
        self._arn = state_machine_arn
        self._client = client or boto3.client("stepfunctions")

    def run(self, name: str, payload: dict[str, Any]) -> ExecutionResult:
        result = self._client.start_sync_execution(stateMachineArn=self._arn, name=name, input=json.dumps(payload))
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


HEALTH_CLIENT_CONFIG = Config(
    connect_timeout=0.5, read_timeout=1.0, retries={"total_max_attempts": 1, "mode": "standard"}
)


class CircuitReader:
    """Reads every model's circuit item (one small item per model, so a scan is cheap)."""

    def __init__(self, table_name: str, client: Any | None = None) -> None:
        self._table = table_name
        # Route 53 gives the health route 2 s to answer: a slow table must make health say
        # "unreachable" in time rather than make the check time out.
        self._client = client or boto3.client("dynamodb", config=HEALTH_CLIENT_CONFIG)

    def circuits(self) -> dict[str, dict[str, Any]]:
        found: dict[str, dict[str, Any]] = {}
        kwargs: dict[str, Any] = {"TableName": self._table, "ConsistentRead": True}
        while True:
            page = self._client.scan(**kwargs)
            for item in page.get("Items", []):
                found[item["model_id"]["S"]] = {
                    "state": item.get("circuit_state", {}).get("S", "CLOSED"),
                    "failures": int(item.get("failures", {}).get("N", "0")),
                    "opened_at": item.get("opened_at", {}).get("S"),
                }
            if "LastEvaluatedKey" not in page:
                return found
            kwargs["ExclusiveStartKey"] = page["LastEvaluatedKey"]
