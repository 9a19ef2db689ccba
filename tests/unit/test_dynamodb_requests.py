"""Rules DynamoDB enforces on a request that moto may not: checked on every request our stores send.

- every name and value placeholder an expression uses is defined, and every one defined is used
  ("Value provided in ExpressionAttributeNames unused in expressions" is a ValidationException);
- a transaction has at most 100 items and names no item twice;
- ReturnValuesOnConditionCheckFailure is ALL_OLD or NONE.
"""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime, timedelta
from typing import Any

import boto3
import pytest
from ledger.dal import LedgerTable
from ledger.logic import append
from moto import mock_aws

from local.request_path import BUDGET_KEY_SCHEMA, LEDGER_TABLE, create_ledger_store, create_table
from shared.budgets import BudgetExceeded, BudgetStore, Limit, Usage

NOW = datetime(2026, 12, 2, 15, 30, tzinfo=UTC)
EXPRESSIONS = (
    "UpdateExpression",
    "ConditionExpression",
    "KeyConditionExpression",
    "FilterExpression",
    "ProjectionExpression",
)


class Checked:
    """Passes every call to moto, after checking it the way DynamoDB would."""

    def __init__(self, client: Any) -> None:
        self._client = client
        self.requests: list[tuple[str, dict[str, Any]]] = []

    def __getattr__(self, name: str) -> Any:
        method = getattr(self._client, name)

        def call(**kwargs: Any) -> Any:
            self.requests.append((name, kwargs))
            check(name, kwargs)
            return method(**kwargs)

        return call


def check_expressions(request: dict[str, Any]) -> None:
    text = " ".join(str(request.get(k, "")) for k in EXPRESSIONS)
    names, values = request.get("ExpressionAttributeNames", {}), request.get("ExpressionAttributeValues", {})
    used_names, used_values = set(re.findall(r"#\w+", text)), set(re.findall(r":\w+", text))
    assert used_names == set(names), f"names used {sorted(used_names)} vs defined {sorted(names)}"
    assert used_values == set(values), f"values used {sorted(used_values)} vs defined {sorted(values)}"
    assert request.get("ReturnValuesOnConditionCheckFailure", "NONE") in ("ALL_OLD", "NONE")


def check(operation: str, request: dict[str, Any]) -> None:
    if operation == "transact_write_items":
        items = request["TransactItems"]
        assert 1 <= len(items) <= 100
        keys = []
        for item in items:
            [(_, body)] = item.items()
            check_expressions(body)
            key = body.get("Key") or {k: v for k, v in body["Item"].items() if k in ("pk", "chain", "seq")}
            keys.append((body["TableName"], json.dumps(key, sort_keys=True)))
        assert len(set(keys)) == len(keys), "a transaction may not name one item twice"
    elif operation in ("update_item", "query", "scan", "put_item", "delete_item"):
        check_expressions(request)


@pytest.fixture
def clients():
    with mock_aws():
        dynamodb = boto3.client("dynamodb", region_name="us-east-1")
        create_table(dynamodb, "budgets", BUDGET_KEY_SCHEMA)
        s3, sqs = (boto3.client(name, region_name="us-east-1") for name in ("s3", "sqs"))
        create_ledger_store(dynamodb, s3, sqs, "us-east-1")
        yield Checked(dynamodb)


def test_every_budget_request_is_one_dynamodb_accepts(clients):
    store = BudgetStore("budgets", clients)
    limits = (Limit("day", "tokens", 5_000), Limit("month", "cost", 10**6), Limit("day", "output_tokens", 900))
    first = store.reserve("bank-a", "r1", Usage(1_000, 500, 2_000), limits, NOW)
    store.settle(first, Usage(300, 100, 500))
    with pytest.raises(BudgetExceeded):
        store.reserve("bank-a", "r2", Usage(4_000, 1_000, 2_000), limits, NOW)
    late = store.reserve("bank-a", "r3", Usage(10, 10, 10), limits, NOW, hold_s=1)
    store.release_expired(NOW + timedelta(seconds=5))
    store.settle(late, Usage(1, 1, 1))  # after the release: the plain ADD path
    counters = store.counters(NOW)
    store.mirror(next(iter(counters)), next(iter(counters.values())), None, 7)
    store.status("bank-a", limits, NOW)
    operations = {name for name, _ in clients.requests}
    assert {"transact_write_items", "update_item", "scan", "batch_get_item"} <= operations


def test_every_ledger_request_is_one_dynamodb_accepts(clients):
    table = LedgerTable(LEDGER_TABLE, clients)
    chain = "us-east-1#2026-12-02"
    records = [{"request_id": f"r{i}", "route": "/v1/generate", "status": 200} for i in range(12)]
    append(table, chain, records[:10])
    append(table, chain, records[5:])
    assert len(list(table.entries(chain))) == 12
