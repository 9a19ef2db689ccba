"""Issue 14's property: random mixtures of valid, invalid and hostile requests, through the real
front, state machine and handlers. Whatever arrives: no 5xx, exactly one audit record per request,
and no circuit opens unless the stand-in model itself failed at least `threshold` times."""

from __future__ import annotations

import json
from collections import Counter
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from local.request_path import FakeContext, RequestPath, api_event
from shared.use_cases import UseCase
from tests.statemachine.conftest import THRESHOLD

USE_CASES = [u.value for u in UseCase]

valid = st.builds(
    lambda prompt, use_case: ("application/json", json.dumps({"prompt": prompt, "use_case": use_case})),
    st.text(min_size=1, max_size=80).filter(str.strip),
    st.sampled_from(USE_CASES),
)
invalid = st.sampled_from(
    [
        ("application/json", json.dumps({"prompt": "hi"})),
        ("application/json", json.dumps({"prompt": "hi", "use_case": "astrology"})),
        ("application/json", json.dumps({"prompt": 42, "use_case": "general"})),
        ("application/json", json.dumps({"prompt": "   ", "use_case": "general"})),
        ("application/json", json.dumps({"prompt": "hi", "use_case": "general", "extra": 1})),
        ("application/json", json.dumps({"prompt": "x" * 20_000, "use_case": "general"})),
        ("application/json", "{not json"),
        ("application/json", ""),
    ]
)
hostile = st.sampled_from(
    [
        ("application/json", '{"prompt": "hi \\ud800", "use_case": "general"}'),
        ("application/json", '{"prompt": "\\udfff", "use_case": "sentiment"}'),
        ("application/json", '{"prompt": "nul\\u0000byte", "use_case": "general"}'),
        ("application/json", '{"prompt": "hi", "use_case": "general", "n": ' + "7" * 6000 + "}"),
        ("application/json", "[" * 20_000 + "]" * 20_000),
        ("application/json", json.dumps({"prompt": "a@" * 7000, "use_case": "general"})),
        ("text/plain", json.dumps({"prompt": "hi", "use_case": "general"})),
        ("application/json", json.dumps({"prompt": "Say positive and negative at once.", "use_case": "sentiment"})),
    ]
)
requests_ = st.lists(st.one_of(valid, invalid, hostile), min_size=1, max_size=10)
faults = st.sampled_from([None, "ValidationException", "ModelErrorException", "ThrottlingException"])


def send(path: RequestPath, content_type: str, body: str) -> int:
    from api_front import handler as front

    event: dict[str, Any] = api_event("POST", "/v1/generate", body)
    event["headers"] = {"Content-Type": content_type}
    result = front.lambda_handler(event, FakeContext("api_front", path.region))
    json.loads(result["body"])  # every answer is JSON
    return int(result["statusCode"])


def reset(path: RequestPath) -> None:
    path.bedrock.heal()
    path.bedrock.calls.clear()
    for item in path.dynamodb.scan(TableName=path.table_name)["Items"]:
        path.dynamodb.delete_item(TableName=path.table_name, Key={"model_id": item["model_id"]})


@settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(batch=requests_, fault=faults, rate=st.sampled_from([0.5, 1.0]))
def test_no_mixture_of_requests_gets_a_5xx_loses_an_audit_record_or_opens_a_circuit_on_its_own(
    path, batch, fault, rate
):
    reset(path)
    path.drain_ledger()  # the ledger is append-only: count what this batch adds
    model_failures: Counter[str] = Counter()
    converse = type(path.bedrock).converse

    def counting(**request: Any) -> dict[str, Any]:
        try:
            return converse(path.bedrock, **request)
        except Exception as exc:
            code = getattr(exc, "response", {}).get("Error", {}).get("Code")
            if code in ("ModelErrorException", "ThrottlingException"):  # the model's own failures
                model_failures[request["modelId"]] += 1
            raise

    path.bedrock.converse = counting  # type: ignore[method-assign]
    try:
        if fault is not None:
            for model in (
                "us.anthropic.claude-haiku-4-5-20251001-v1:0",
                "us.anthropic.claude-sonnet-4-6",
                "us.amazon.nova-2-lite-v1:0",
            ):
                path.bedrock.fail(model, fault, rate)
        statuses = [send(path, content_type, body) for content_type, body in batch]
    finally:
        del path.bedrock.converse
    assert all(s < 500 for s in statuses), statuses
    assert path.drain_ledger() == len(batch)
    for item in path.dynamodb.scan(TableName=path.table_name)["Items"]:
        if item.get("circuit_state", {}).get("S") != "CLOSED":
            model = item["model_id"]["S"]
            assert model_failures[model] >= THRESHOLD, (model, dict(model_failures), fault)
