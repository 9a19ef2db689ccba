"""End to end: requests through the real front and state machine are chained, archived and verifiable."""

from __future__ import annotations

import json
import os
from typing import Any
from unittest import mock

import boto3
from ledger.verify import main as verify_main

from api_front import handler as front
from local.request_path import LEDGER_BUCKET, LEDGER_TABLE, local_request_path
from shared.ledger import canonical
from shared.strategy import load_default_strategy
from shared.strategy.source import StaticStrategySource

PROMPT = "My card 4111 1111 1111 1111 was charged twice: what should I do?"


def tight_strategy() -> StaticStrategySource:
    strategy = load_default_strategy()
    assert strategy.budgets is not None
    limits = {"bank-tight": [{"period": "day", "unit": "tokens", "limit": 100}]}
    budgets = strategy.budgets.model_validate({**strategy.budgets.model_dump(), "clients": limits})
    return StaticStrategySource(strategy.model_copy(update={"budgets": budgets}))


def verifier(args: list[str], capsys: Any) -> tuple[int, dict[str, Any]]:
    capsys.readouterr()  # the handlers' metrics went to stdout before
    code = verify_main(args)
    return code, json.loads(capsys.readouterr().out)


def test_every_request_is_chained_archived_and_verifiable_and_tampering_is_found(capsys):
    keys = {"API_CLIENT_KEYS": json.dumps([["key-a", "default"], ["key-t", "bank-tight"]])}
    with local_request_path(strategy_source=tight_strategy()) as path, mock.patch.dict(os.environ, keys):
        front.settings.cache_clear()
        front.client_directory.cache_clear()
        answers = [
            path.api("POST", "/v1/generate", json.dumps({"prompt": PROMPT, "use_case": "general"}), "key-a"),
            path.api(
                "POST", "/v1/generate", json.dumps({"prompt": "Bad news on margins", "use_case": "sentiment"}), "key-a"
            ),
            path.api("POST", "/v1/generate", "{not json", "key-a"),
            path.api("POST", "/v1/generate", json.dumps({"prompt": "What is APR?", "use_case": "general"}), "key-t"),
        ]
        assert [status for status, _ in answers] == [200, 200, 400, 429]
        records = path.audit_records()
        assert [r["status"] for r in records] == [200, 200, 400, 429]
        assert [r["seq"] for r in records] == [1, 2, 3, 4]
        assert [r.get("client") for r in records] == ["default", "default", None, "bank-tight"]
        first = records[0]
        assert "4111" not in canonical(first) and "charged" not in canonical(first)
        assert first["input_tokens"] == answers[0][1]["usage"]["input_tokens"] > 0
        assert first["tier"] == "primary" and first["breaker"] == "allowed" and first["variant"]
        assert records[3]["failure_class"] == "budget"

        day = records[0]["chain"].split("#")[1]
        args = ["--region", path.region, "--day", day, "--bucket", LEDGER_BUCKET, "--table", LEDGER_TABLE]
        code, report = verifier(args, capsys)
        assert code == 0, report
        assert report["archive"]["entries"] == report["table"]["entries"] == 4

        s3 = boto3.client("s3", region_name=path.region)
        key = s3.list_objects_v2(Bucket=LEDGER_BUCKET)["Contents"][0]["Key"]
        body = s3.get_object(Bucket=LEDGER_BUCKET, Key=key)["Body"].read().decode().splitlines()
        entry = json.loads(body[0])
        entry["input_tokens"] = 1  # a chargeback dispute's favourite edit
        body[0] = canonical(entry)
        s3.put_object(Bucket=LEDGER_BUCKET, Key=key, Body="\n".join(body).encode(), ChecksumAlgorithm="SHA256")
        code, report = verifier(args, capsys)
        assert code == 1 and report["archive"]["first_break"]["seq"] == entry["seq"]
