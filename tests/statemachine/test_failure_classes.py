"""Issue 14: only the model's own failures count against its circuit; every path ends in an
answer; a region recovers without traffic. Each test runs the shipped ASL in moto."""

from __future__ import annotations

import json
import time

import pytest

from local.request_path import RequestPath
from tests.statemachine.conftest import COOLDOWN, FALLBACK, PRIMARY, THRESHOLD, ask


def failures(path: RequestPath, model: str) -> int:
    circuit = path.circuit(model)
    return 0 if circuit is None else circuit["failures"]


def test_a_prompt_the_model_refuses_never_counts_against_its_circuit(path):
    path.bedrock.fail(PRIMARY, "ValidationException")  # "input is too long": the request's fault
    for _ in range(THRESHOLD + 2):
        assert ask(path)["tier"] == "fallback"
    assert failures(path, PRIMARY) == 0
    assert path.circuit(PRIMARY) is None or path.circuit(PRIMARY)["state"] == "CLOSED"


def test_a_validation_error_about_the_model_itself_does_count(path, monkeypatch):
    from botocore.exceptions import ClientError

    def refuse(**request):
        raise ClientError(
            {"Error": {"Code": "ValidationException", "Message": "The provided model identifier is invalid."}},
            "Converse",
        )

    monkeypatch.setattr(path.bedrock, "converse", refuse)
    for _ in range(THRESHOLD):
        ask(path)
    assert path.circuit(PRIMARY)["state"] == "OPEN"


def test_an_unreadable_label_is_a_task_failure_that_never_opens_the_circuit(path, monkeypatch):
    from local import bedrock_stub

    # The prompt talks the model into naming two labels; neither tier can give one.
    monkeypatch.setattr(bedrock_stub, "stand_in_label", lambda prompt: "positive and negative")
    for _ in range(THRESHOLD + 2):
        answer = ask(path, prompt="Say both positive and negative.", use_case="sentiment")
        assert answer["tier"] == "degraded" and answer["sentiment"] is None
    model = next(m for m in set(path.bedrock.calls) if m != FALLBACK)
    assert failures(path, model) == 0


def test_an_event_the_router_rejects_never_counts(path):
    # Bypassing the front (which answers 400): the router's own validation rejects a lone surrogate.
    for _ in range(THRESHOLD + 1):
        result = path.execute({"request_id": "r", "prompt": "hi \ud800", "use_case": "general", "user_id": None})
        assert result["status"] == "SUCCEEDED"
        assert result["output"]["tier"] == "degraded"  # the fallback validates the same way
    assert failures(path, PRIMARY) == 0
    assert path.bedrock.calls == []


def test_a_probe_refused_for_its_request_gives_the_slot_back(path):
    path.bedrock.fail(PRIMARY)
    for _ in range(THRESHOLD):
        ask(path)
    opened_at = path.circuit(PRIMARY)["opened_at"]
    path.advance(COOLDOWN)
    path.bedrock.fail(PRIMARY, "ValidationException")
    assert ask(path)["tier"] == "fallback"
    circuit = path.circuit(PRIMARY)
    assert (circuit["state"], circuit["opened_at"]) == ("OPEN", opened_at), "the cooldown is not restarted"
    path.bedrock.heal()
    assert ask(path)["tier"] == "primary"  # the next request probes at once, and closes it
    assert path.circuit(PRIMARY)["state"] == "CLOSED"


@pytest.mark.parametrize("odd", [None, {}, {"response": "no model_used"}, "text", [1, 2]])
def test_an_odd_degradation_answer_still_ends_in_the_static_answer(path, odd):
    path.lambdas.register("degradation", lambda event, context: odd)
    path.bedrock.fail(PRIMARY)
    path.bedrock.fail(FALLBACK)
    answer = ask(path)
    assert (answer["tier"], answer["model_used"]) == ("degraded", "static-degraded-response")


def test_a_fallback_answer_without_its_fields_goes_to_the_next_tier(path):
    from fallback import handler as fallback

    def without_sentiment(event, context):
        answer = fallback.lambda_handler(event, context)
        answer.pop("sentiment")
        return answer

    path.lambdas.register("fallback", without_sentiment)
    path.bedrock.fail(PRIMARY)
    answer = ask(path)
    assert answer["tier"] == "degraded"


def test_a_primary_answer_without_its_fields_goes_to_the_fallback(path):
    from router import handler as router

    def without_tokens(event, context):
        answer = router.lambda_handler(event, context)
        if event.get("action") == "invoke":
            answer.pop("input_tokens")
        return answer

    path.lambdas.register("router", without_tokens)
    assert ask(path)["tier"] == "fallback"
    assert failures(path, PRIMARY) == 0


def health(path: RequestPath) -> dict:
    status, body = path.api("GET", "/v1/health")
    assert status == 200
    return body


def wait_for(predicate, timeout_s: float = 20.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not predicate():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.02)


def test_a_region_without_traffic_recovers_through_health_probes(path):
    path.bedrock.fail(PRIMARY)
    for _ in range(THRESHOLD):
        ask(path)
    assert health(path)["status"] == "degraded"
    assert health(path)["circuits"][PRIMARY]["phase"] == "open"
    assert health(path)["probes_started"] == []  # not cooled down: no probe

    path.bedrock.heal()
    user_calls = len(path.bedrock.calls)
    path.advance(COOLDOWN)
    first = health(path)
    assert first["circuits"][PRIMARY]["phase"] == "awaiting_probe"
    assert first["probes_started"] == [PRIMARY]
    assert health(path)["probes_started"] == [], "one probe per interval, however often health is called"
    wait_for(lambda: path.circuit(PRIMARY)["state"] == "CLOSED")
    assert path.bedrock.calls[user_calls:] == [PRIMARY], "exactly one model call: the probe's"
    recovered = health(path)
    assert recovered["status"] == "ok" and recovered["circuits"][PRIMARY]["phase"] == "closed"
    assert not [r for r in path.audit_records() if r.get("route") == "/v1/generate" and r.get("tier") == "primary"]


def test_a_failed_health_probe_reopens_and_waits_another_cooldown(path):
    path.bedrock.fail(PRIMARY)
    for _ in range(THRESHOLD):
        ask(path)
    path.advance(COOLDOWN)
    assert health(path)["probes_started"] == [PRIMARY]
    wait_for(lambda: path.circuit(PRIMARY)["state"] == "OPEN" and path.circuit(PRIMARY)["version"] > THRESHOLD + 2)
    path.advance(11)  # past the probe-request interval, inside the new cooldown
    body = health(path)
    assert body["circuits"][PRIMARY]["phase"] == "open" and body["probes_started"] == []
    assert json.dumps(body)  # the health body stays JSON
