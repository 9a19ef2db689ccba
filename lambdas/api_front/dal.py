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


def sync_client_config(read_timeout_s: float) -> Config:
    """One attempt, bounded: the front must answer inside API Gateway's 29 s, so a slow or failed
    call is not retried; the front serves the static answer instead."""
    return Config(
        connect_timeout=CONNECT_TIMEOUT_S,
        read_timeout=read_timeout_s,
        retries={"total_max_attempts": 1, "mode": "standard"},
    )


class SyncExecutor:
    """StartSyncExecution: the EXPRESS state machine answers within the API call."""

    def __init__(self, state_machine_arn: str, client: Any | None = None, read_timeout_s: float = 23.0) -> None:
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
