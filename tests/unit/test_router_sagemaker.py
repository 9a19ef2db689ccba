"""The router's ``sagemaker`` provider: InvokeEndpoint on an adapter inference component.

Requests are checked by botocore's Stubber against SageMaker runtime's own API model, so a
request AWS would refuse fails here; answers and errors are the shapes SageMaker returns.
"""

from __future__ import annotations

import io
import json
from typing import Any

import boto3
import pytest
from botocore.stub import Stubber

from router import dal
from router import handler as router
from shared.budgeting import SpendingProfile, advise, format_prompt, parse_prompt, plan_of, suggest
from shared.failures import FailureClass, ModelCallError

ENDPOINTS = {"advisor_large": "finai-advisor-large"}
COMPONENT = "finai-0123456789abcdef0123456789abcdef-2-0"
REQUEST = dal.ModelRequest(
    prompt="How do I budget?", system_prompt="Be careful.", max_tokens=64, temperature=0.2, top_p=0.9
)


def chat_answer(text: str, reason: str = "stop", usage: tuple[int, int] = (40, 12)) -> dict[str, Any]:
    return {
        "choices": [{"index": 0, "message": {"role": "assistant", "content": text}, "finish_reason": reason}],
        "usage": {"prompt_tokens": usage[0], "completion_tokens": usage[1], "total_tokens": sum(usage)},
    }


def stubbed(*answers: dict[str, Any] | tuple[str, str, dict[str, Any]]) -> tuple[Any, Stubber]:
    client = boto3.client("sagemaker-runtime", region_name="us-east-1")
    stubber = Stubber(client)
    for answer in answers:
        if isinstance(answer, tuple):
            code, message, extra = answer
            stubber.add_client_error(
                "invoke_endpoint",
                service_error_code=code,
                service_message=message,
                http_status_code=424,
                response_meta=None,
                modeled_fields=extra,
            )
        else:
            stubber.add_response(
                "invoke_endpoint",
                {"Body": io.BytesIO(json.dumps(answer).encode()), "ContentType": "application/json"},
                {
                    "EndpointName": "finai-advisor-large",
                    "InferenceComponentName": COMPONENT,
                    "ContentType": "application/json",
                    "Accept": "application/json",
                    "Body": ChatBody(),
                },
            )
    stubber.activate()
    return client, stubber


class ChatBody:
    """Matches any request body that is a chat request (the stubber compares expected params by ==)."""

    __hash__ = None  # type: ignore[assignment]

    def __eq__(self, other: object) -> bool:
        return isinstance(other, bytes) and bool(json.loads(other)["messages"])


def test_the_endpoint_is_called_with_the_chat_request_an_lmi_container_reads():
    client, stubber = stubbed(chat_answer("Keep a buffer of three months."))
    calls: list[dict[str, Any]] = []
    client.meta.events.register(
        "before-parameter-build.sagemaker-runtime.InvokeEndpoint", lambda params, **_: calls.append(params)
    )
    completion = dal.SageMakerProvider(ENDPOINTS, client).complete_target("advisor_large", "adv", REQUEST, COMPONENT)
    stubber.assert_no_pending_responses()
    assert completion.text == "Keep a buffer of three months."
    assert (completion.input_tokens, completion.output_tokens, completion.stop_reason) == (40, 12, "end_turn")
    body = json.loads(calls[0]["Body"])
    assert body == {
        "messages": [{"role": "system", "content": "Be careful."}, {"role": "user", "content": "How do I budget?"}],
        "max_tokens": 64,
        "temperature": 0.2,
        "top_p": 0.9,
    }


def test_a_plan_answer_is_rendered_with_amounts_computed_from_the_profile():
    profile = SpendingProfile(
        currency="USD",
        period="month",
        period_days=30,
        as_of="2026-11-30",
        monthly_income=5000,
        monthly_spend=4200,
        top_categories=(("Dining", 600), ("Shopping", 500)),
        recurring=(),
        trends=(),
    )
    prompt = format_prompt(profile)
    plan = plan_of(profile, suggest(profile))
    client, _ = stubbed(chat_answer(plan))
    request = dal.ModelRequest(prompt=prompt, system_prompt=None, max_tokens=64, temperature=0.0, top_p=None)
    completion = dal.SageMakerProvider(ENDPOINTS, client).complete_target(
        "advisor_large", "adv", request, COMPONENT, "plan"
    )
    assert completion.text == advise(prompt)  # the same rendering the baseline and the Lambda use
    assert parse_prompt(prompt) == profile


def test_a_plan_the_profile_does_not_support_is_the_models_task_failure():
    prompt = format_prompt(SpendingProfile("USD", "month", 30, "2026-11-30", 5000, 4200, (("Dining", 600),), (), ()))
    client, _ = stubbed(chat_answer("trend Rent; cut Casino 15%"))
    request = dal.ModelRequest(prompt=prompt, system_prompt=None, max_tokens=64, temperature=0.0, top_p=None)
    with pytest.raises(ModelCallError) as raised:
        dal.SageMakerProvider(ENDPOINTS, client).complete_target("advisor_large", "adv", request, COMPONENT, "plan")
    assert (raised.value.code, raised.value.failure_class) == ("MalformedPlan", FailureClass.TASK)


@pytest.mark.parametrize(
    ("error", "code", "failure_class"),
    [
        (
            ("ModelError", "Received server error (500) from primary", {"OriginalStatusCode": 500}),
            "ModelError",
            "model",
        ),
        (
            ("ModelError", "Received client error (400): input too long", {"OriginalStatusCode": 400}),
            "EndpointRejectedInput",
            "request",
        ),
        (("ValidationError", "Inference Component finai-x not found", {}), "ValidationError", "model"),
        (("ThrottlingException", "Rate exceeded", {}), "ThrottlingException", "model"),
        (("ModelNotReadyException", "not ready", {}), "ModelNotReadyException", "model"),
        (("ServiceUnavailable", "unavailable", {}), "ServiceUnavailable", "model"),
    ],
)
def test_endpoint_errors_are_classified(error, code, failure_class):
    client, _ = stubbed(error)
    with pytest.raises(ModelCallError) as raised:
        dal.SageMakerProvider(ENDPOINTS, client).complete_target("advisor_large", "adv", REQUEST, COMPONENT)
    assert (raised.value.code, str(raised.value.failure_class)) == (code, failure_class)


@pytest.mark.parametrize(
    ("answer", "code"),
    [
        ({"generated_text": "an answer in another schema"}, "BadResponse"),
        (chat_answer("   "), "EmptyResponse"),
        ({"choices": []}, "BadResponse"),
    ],
)
def test_an_answer_outside_the_chat_schema_is_the_models_failure(answer, code):
    client, _ = stubbed(answer)
    with pytest.raises(ModelCallError) as raised:
        dal.SageMakerProvider(ENDPOINTS, client).complete_target("advisor_large", "adv", REQUEST, COMPONENT)
    assert (raised.value.code, raised.value.failure_class) == (code, FailureClass.MODEL)


def test_a_cut_off_answer_says_so_in_its_stop_reason():
    client, _ = stubbed(chat_answer("First, list your", reason="length"))
    completion = dal.SageMakerProvider(ENDPOINTS, client).complete_target("advisor_large", "adv", REQUEST, COMPONENT)
    assert completion.stop_reason == "max_tokens"


def test_no_promoted_component_or_no_endpoint_is_said_without_calling_anything():
    client, stubber = stubbed()
    provider = dal.SageMakerProvider(ENDPOINTS, client)
    with pytest.raises(ModelCallError) as raised:
        provider.complete_target("advisor_large", "adv", REQUEST, None)
    assert (raised.value.code, raised.value.failure_class) == ("NoArtifact", FailureClass.MODEL)
    with pytest.raises(ModelCallError) as raised:
        provider.complete_target("other", "adv", REQUEST, COMPONENT)
    assert raised.value.code == "UnknownTarget"
    stubber.assert_no_pending_responses()


def test_endpoints_come_from_the_environment():
    assert dal.sagemaker_endpoints_from_env({"SAGEMAKER_ENDPOINTS": json.dumps(ENDPOINTS)}) == ENDPOINTS
    assert dal.sagemaker_endpoints_from_env({}) == {}
    with pytest.raises(ValueError, match="JSON object"):
        dal.sagemaker_endpoints_from_env({"SAGEMAKER_ENDPOINTS": "[]"})


def endpoint_invoke(use_case: str, prompt: str) -> router.InvokeEvent:
    selection = {
        "variant": "endpoint",
        "provider": "sagemaker",
        "model_id": "advisor-large-lora",
        "target": "advisor_large",
        "inference_component": COMPONENT,
        "max_tokens": 16,
        "temperature": 0.0,
        "system_prompt": "You judge financial sentiment.",
    }
    return router.InvokeEvent(action="invoke", request_id="r", use_case=use_case, prompt=prompt, selection=selection)


def test_the_endpoint_answers_sentiment_with_a_label_as_bedrock_does(monkeypatch):
    from shared.sentiment import LABEL_INSTRUCTION

    client, _ = stubbed(chat_answer("Sentiment: Negative."))
    calls: list[dict[str, Any]] = []
    client.meta.events.register(
        "before-parameter-build.sagemaker-runtime.InvokeEndpoint", lambda params, **_: calls.append(params)
    )
    monkeypatch.setattr(router, "_sagemaker_provider", lambda: dal.SageMakerProvider(ENDPOINTS, client))
    result = router.handle_invoke(endpoint_invoke("sentiment", "Profit warning issued"), deadline=1e12)
    assert result["sentiment"]["label"] == "negative"
    assert result["model_used"] == "advisor-large-lora"
    system = json.loads(calls[0]["Body"])["messages"][0]["content"]
    assert system == f"You judge financial sentiment.\n\n{LABEL_INSTRUCTION}"


def test_a_failed_endpoint_call_counts_against_the_variants_model(monkeypatch):
    client, _ = stubbed(("ModelError", "Received server error (503)", {"OriginalStatusCode": 503}))
    monkeypatch.setattr(router, "_sagemaker_provider", lambda: dal.SageMakerProvider(ENDPOINTS, client))
    emitted: list[tuple[str, dict[str, str]]] = []
    monkeypatch.setattr(router, "emit", lambda name, value, *a, **dims: emitted.append((name, dims)))
    with pytest.raises(ModelCallError) as raised:
        router.handle_invoke(endpoint_invoke("general", "What is an ISA?"), deadline=1e12)
    assert raised.value.model_id == "advisor-large-lora" and raised.value.code == "ModelError"
    assert ("PrimaryModelErrors", {"model": "advisor-large-lora"}) in emitted
