"""End to end on the local platform: API event -> front Lambda -> shipped ASL in moto -> handlers."""

import json

from tests.statemachine.conftest import FALLBACK, PRIMARY, THRESHOLD


def generate(path, **body):
    return path.api("POST", "/v1/generate", json.dumps(body))


def test_three_tiers_answer_through_the_api(path):
    status, body = generate(path, prompt="What is a 401(k)?", use_case="general")
    assert (status, body["tier"], body["model_used"]) == (200, "primary", PRIMARY)

    path.bedrock.fail(PRIMARY)
    status, body = generate(path, prompt="What is a 401(k)?", use_case="general")
    assert (status, body["tier"], body["model_used"]) == (200, "fallback", FALLBACK)

    path.bedrock.fail(FALLBACK)
    status, body = generate(path, prompt="What is a 401(k)?", use_case="general")
    assert (status, body["tier"]) == (200, "degraded")
    assert "not financial, investment, tax or legal advice" in body["response"]


def test_bad_input_is_rejected_before_any_execution(path):
    status, body = path.api("POST", "/v1/generate", '{"prompt": "hi", "use_case": "stocks"}')
    assert status == 400
    assert "must be one of" in body["message"]
    status, body = generate(path, prompt="x" * 16_001, use_case="general")
    assert status == 413
    executions = path.sfn.list_executions(stateMachineArn=path.state_machine_arn)["executions"]
    assert executions == []


def test_health_shows_an_open_circuit(path):
    path.bedrock.fail(PRIMARY)
    for _ in range(THRESHOLD):
        generate(path, prompt="q", use_case="general")
    status, body = path.api("GET", "/v1/health")
    assert status == 200
    assert body["circuits"][PRIMARY]["state"] == "OPEN"
    assert body["status"] == "degraded"
