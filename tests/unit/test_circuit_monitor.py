"""The circuit monitor publishes what the circuit alarms and Route 53 read, from the real table."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any
from unittest import mock

import boto3
import pytest
from circuit_monitor import handler
from circuit_monitor.logic import report
from moto import mock_aws

from local.request_path import CIRCUIT_KEY_SCHEMA, FakeContext, create_table
from shared.circuits import CircuitReader

TABLE = "finai-circuits"


@pytest.fixture
def table() -> Iterator[Any]:
    with mock.patch.dict("os.environ", {"CIRCUIT_TABLE": TABLE}), mock_aws():
        client = boto3.client("dynamodb", region_name="us-east-1")
        create_table(client, TABLE, CIRCUIT_KEY_SCHEMA)
        handler.reader.cache_clear()
        yield client
        handler.reader.cache_clear()


def put(client: Any, model: str, state: str) -> None:
    client.put_item(
        TableName=TABLE, Item={"model_id": {"S": model}, "circuit_state": {"S": state}, "failures": {"N": "3"}}
    )


def published(capsys: pytest.CaptureFixture[str]) -> dict[tuple[str, str], float]:
    """(metric, model or '') -> value, from the EMF lines the handler printed."""
    found: dict[tuple[str, str], float] = {}
    for line in capsys.readouterr().out.splitlines():
        if not line.startswith("{") or "_aws" not in line:
            continue
        blob = json.loads(line)
        for directive in blob["_aws"]["CloudWatchMetrics"]:
            for metric in directive["Metrics"]:
                value = blob[metric["Name"]]
                found[(metric["Name"], str(blob.get("model", "")))] = float(
                    value[-1] if isinstance(value, list) else value
                )
    return found


def test_publishes_each_circuit_and_the_model_path(table, capsys):
    put(table, "us.amazon.nova-micro-v1:0", "OPEN")
    put(table, "us.anthropic.claude-haiku-4-5-20251001-v1:0", "CLOSED")
    result = handler.lambda_handler({}, FakeContext("circuit_monitor", "us-east-1"))
    assert result == {"healthy": True, "table_reachable": True, "open": ["us.amazon.nova-micro-v1:0"]}
    metrics = published(capsys)
    assert metrics[("CircuitOpen", "us.amazon.nova-micro-v1:0")] == 1
    assert metrics[("CircuitOpen", "us.anthropic.claude-haiku-4-5-20251001-v1:0")] == 0
    assert metrics[("ModelPathHealthy", "")] == 1


def test_every_circuit_open_means_the_region_cannot_serve(table, capsys):
    put(table, "a", "OPEN")
    put(table, "b", "OPEN")
    assert handler.lambda_handler({}, FakeContext("circuit_monitor", "us-east-1"))["healthy"] is False
    assert published(capsys)[("ModelPathHealthy", "")] == 0


def test_an_unreachable_table_is_reported_unhealthy_not_raised():
    broken = mock.Mock()
    broken.scan.side_effect = TimeoutError("read timeout")
    result = report(CircuitReader(TABLE, broken))
    assert result.as_dict() == {"healthy": False, "table_reachable": False, "open": []}


def test_an_empty_table_is_healthy(table):
    assert report(CircuitReader(TABLE, table)).healthy is True
