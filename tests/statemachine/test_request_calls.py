"""How many AWS calls one request makes, by function: budgets add exactly two DynamoDB calls.

Measured on the real handlers and ASL in moto; written to build/request-calls.json, which the
README's table quotes. The local front polls executions (moto has no StartSyncExecution); the
deployed front makes one StartSyncExecution instead, which the table reports.
"""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

from local.request_path import local_request_path
from tests.iam.recorder import Recorder

OUT = Path(__file__).resolve().parents[2] / "build" / "request-calls.json"


def test_a_request_makes_two_budget_calls_one_audit_send_and_one_model_call():
    with local_request_path() as path:
        path.api("POST", "/v1/generate", json.dumps({"prompt": "What is APR?", "use_case": "general"}))  # warm caches
        recorder = Recorder()
        recorder.install()
        try:
            body = json.dumps({"prompt": "What is APY?", "use_case": "general"})
            status, answer = path.api("POST", "/v1/generate", body)
            front_calls = list(recorder.calls)
            path.drain_ledger()
        finally:
            recorder.uninstall()
    assert status == 200 and answer["tier"] == "primary"
    by_function: dict[str, Counter[str]] = {}
    for call in recorder.calls:
        by_function.setdefault(call.principal, Counter())[f"{call.service}:{call.operation}"] += 1
    front = by_function["api_front"]
    # Reserve and settle: one TransactWriteItems each, and nothing else on DynamoDB.
    assert {k: v for k, v in front.items() if k.startswith("dynamodb:")} == {"dynamodb:TransactWriteItems": 2}
    assert front["sqs:SendMessage"] == 1
    assert by_function["router"] == Counter({"bedrock-runtime:Converse": 1})
    assert by_function["ledger"] == Counter({"dynamodb:Query": 1, "dynamodb:TransactWriteItems": 1, "s3:PutObject": 1})
    assert {c.principal for c in front_calls} == {"api_front", "router"}, "the ledger runs after the answer"
    deployed_front = {k: v for k, v in front.items() if not k.startswith("stepfunctions:")}
    deployed_front["stepfunctions:StartSyncExecution"] = 1
    OUT.parent.mkdir(exist_ok=True)
    OUT.write_text(
        json.dumps(
            {
                "api_front": dict(sorted(deployed_front.items())),
                "api_front_local_polling": {k: v for k, v in front.items() if k.startswith("stepfunctions:")},
                "state_machine": {"dynamodb:GetItem": 1},  # ReadCircuit; ResetFailures only after a failure
                "router": dict(by_function["router"]),
                "ledger_per_batch": dict(sorted(by_function["ledger"].items())),
            },
            indent=2,
        )
        + "\n"
    )
