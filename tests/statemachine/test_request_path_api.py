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


def test_audit_records_match_requests_across_tiers_and_hold_no_pii(path):
    prompts = ["My card 4111 1111 1111 1111 was charged twice", "What is a 401(k)?", "email me at a@b.co"]
    generate(path, prompt=prompts[0], use_case="general")
    path.bedrock.fail(PRIMARY)
    generate(path, prompt=prompts[1], use_case="general")
    path.bedrock.fail(FALLBACK)
    generate(path, prompt=prompts[2], use_case="general")
    path.api("POST", "/v1/generate", "{bad")
    records = path.audit_records()
    assert len(records) == 4
    assert sorted(r.get("tier", "-") for r in records) == ["-", "degraded", "fallback", "primary"]
    primary = next(r for r in records if r.get("tier") == "primary")
    assert primary["redactions"] == {"CARD": 1}
    assert primary["input_tokens"] > 0
    dump = json.dumps(records, default=str)
    for secret in ("4111", "a@b.co", "charged twice"):
        assert secret not in dump
