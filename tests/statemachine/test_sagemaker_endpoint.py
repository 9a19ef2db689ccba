"""The SageMaker endpoint tier through the real request path: the shipped ASL in moto, the real
front, router and fallback, and ``local.sagemaker_endpoint`` playing the endpoint. The tier has
the same breaker, fallback, failure classes, audit and metrics as Bedrock and the Lambdas."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest

from local.request_path import RequestPath, local_request_path
from shared.budgeting import advise, plan_of, suggest
from shared.strategy import DOCUMENT_PATH, parse_strategy
from shared.strategy.source import StaticStrategySource
from tests.statemachine.conftest import THRESHOLD
from tests.statemachine.test_grounded_advice import PROFILE, PROMPT

MODEL = "advisor-large-lora"
COMPONENT = "finai-0123456789abcdef0123456789abcdef-2-0"
ENDPOINT = "finai-advisor-large"
BASELINE = "rule-based-budgeting-baseline"


def endpoint_strategy() -> Any:
    document = json.loads(DOCUMENT_PATH.read_text())
    document["use_cases"]["budgeting_advice"]["variants"] = [
        {
            "name": "endpoint",
            "provider": "sagemaker",
            "target": "advisor_large",
            "model_id": MODEL,
            "inference_component": COMPONENT,
            "answer_format": "plan",
            "weight": 100,
            "max_tokens": 600,
            "temperature": 0.4,
        }
    ]
    return parse_strategy(document)


class Model:
    """The endpoint's model: a plan the profile supports, unless told to answer otherwise."""

    def __init__(self) -> None:
        self.reply: str | None = None
        self.messages: list[list[dict[str, str]]] = []

    def __call__(self, messages: list[dict[str, str]], max_tokens: int) -> tuple[str, int, int, str]:
        self.messages.append(messages)
        text = self.reply or plan_of(PROFILE, suggest(PROFILE))
        return text, 50, len(text.split()), "stop"


@pytest.fixture
def served() -> Iterator[tuple[RequestPath, Model]]:
    with local_request_path(strategy_source=StaticStrategySource(endpoint_strategy())) as path:
        model = Model()
        path.endpoint.add_component(ENDPOINT, COMPONENT, model)
        yield path, model


def advice(path: RequestPath, user: str = "u-1") -> dict[str, Any]:
    body = json.dumps({"use_case": "budgeting_advice", "prompt": PROMPT, "user_id": user})
    status, answer = path.api("POST", "/v1/generate", body)
    assert status == 200, answer
    return answer


def test_the_endpoint_answers_as_the_primary_tier_with_amounts_computed_from_the_profile(served):
    path, model = served
    answer = advice(path)
    assert (answer["tier"], answer["model_used"]) == ("primary", MODEL), answer
    assert answer["response"] == advise(PROMPT)
    assert path.endpoint.calls == [COMPONENT]
    # The system prompt from the strategy, then the person's profile, as chat messages.
    assert [m["role"] for m in model.messages[0]] == ["system", "user"] and model.messages[0][1]["content"] == PROMPT
    audit = path.audit_records()[-1]
    assert audit["tier"] == "primary" and audit["model_used"] == MODEL


def test_endpoint_failures_open_its_circuit_and_the_fallback_answers(served):
    path, _ = served
    path.endpoint.before_call = lambda component: "ModelErrorException"
    for _ in range(THRESHOLD):
        answer = advice(path)
        assert answer["tier"] == "fallback" and answer["model_used"] == BASELINE
        assert answer["primary_failure"]["code"] == "ModelError"
        assert answer["primary_failure"]["failure_class"] == "model"
    circuit = path.circuit(MODEL)
    assert circuit is not None and circuit["state"] == "OPEN"
    calls = len(path.endpoint.calls)
    assert advice(path)["tier"] == "fallback"
    assert len(path.endpoint.calls) == calls, "an open circuit must not call the endpoint"


def test_a_plan_the_profile_does_not_support_goes_to_the_baseline_and_never_opens_the_circuit(served):
    path, model = served
    model.reply = "trend Casino; cut Casino 15%"
    for _ in range(THRESHOLD + 1):
        answer = advice(path)
        assert answer["tier"] == "fallback" and answer["response"] == advise(PROMPT)
        assert (answer["primary_failure"]["code"], answer["primary_failure"]["failure_class"]) == (
            "MalformedPlan",
            "task",
        )
    circuit = path.circuit(MODEL)
    assert circuit is None or circuit["failures"] == 0


def test_an_unknown_component_is_the_platforms_fault_and_counts(served):
    path, _ = served
    path.endpoint.components.clear()
    answer = advice(path)
    assert answer["tier"] == "fallback"
    assert (answer["primary_failure"]["code"], answer["primary_failure"]["failure_class"]) == (
        "ValidationError",
        "model",
    )


def test_the_stream_route_serves_the_endpoint_variant_whole(served):
    path, _ = served
    body = json.dumps({"use_case": "budgeting_advice", "prompt": PROMPT, "user_id": "u-2"})
    status, _, events, _ = path.stream(body)
    assert status == 200
    assert events[0].name == "meta" and events[0].data["model"] == MODEL and events[-1].name == "done"
    assert "".join(e.data["text"] for e in events if e.name == "delta") == advise(PROMPT)
    assert path.endpoint.calls == [COMPONENT]
