"""Router logic: weighted, sticky A/B choice; the breaker clock; strategy sources; providers."""

import io
import json
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from router import dal
from router.logic import breaker_clock, bucket, choose_variant, select
from shared.failures import FailureClass, ModelCallError
from shared.strategy import Variant, load_default_strategy
from shared.use_cases import UseCase


def variants(*weights: int) -> tuple[Variant, ...]:
    return tuple(
        Variant(name=chr(65 + i), provider="bedrock", model_id=f"m.model-{i}", weight=w) for i, w in enumerate(weights)
    )


@given(st.text(min_size=1, max_size=64), st.integers(min_value=1, max_value=1000))
def test_bucket_is_in_range_and_stable(key, total):
    assert 0 <= bucket(key, total) < total
    assert bucket(key, total) == bucket(key, total)


@given(st.text(min_size=1, max_size=32))
def test_a_user_always_gets_the_same_variant(user):
    arms = variants(80, 20)
    assert len({choose_variant(arms, user).name for _ in range(5)}) == 1


def test_weights_are_honoured_in_aggregate():
    counts = Counter(choose_variant(variants(80, 20), f"user-{i}").name for i in range(10_000))
    assert 0.77 < counts["A"] / 10_000 < 0.83
    assert 0.17 < counts["B"] / 10_000 < 0.23


def test_zero_weight_variant_is_never_chosen():
    assert {choose_variant(variants(0, 100), f"u{i}").name for i in range(500)} == {"B"}


def test_breaker_clock_uses_step_functions_timestamp_format():
    clock = breaker_clock(datetime(2026, 3, 1, 12, 0, 30, 999_999, tzinfo=UTC), 30)
    # now rounds up, the cutoff down: whole seconds never shorten the cooldown.
    assert clock == {
        "now": "2026-03-01T12:00:31Z",
        "cooldown_cutoff": "2026-03-01T12:00:00Z",
        "probe_after": "2026-03-01T12:01:01Z",
    }
    exact = breaker_clock(datetime(2026, 3, 1, 12, 0, 30, tzinfo=UTC), 30)
    assert exact["now"] == "2026-03-01T12:00:30Z" and exact["cooldown_cutoff"] == "2026-03-01T12:00:00Z"


@given(
    opened=st.datetimes(min_value=datetime(2026, 1, 1), max_value=datetime(2026, 12, 31), timezones=st.just(UTC)),
    elapsed_ms=st.integers(min_value=0, max_value=120_000),
    cooldown=st.integers(min_value=1, max_value=60),
)
def test_a_probe_never_goes_out_before_the_cooldown(opened, elapsed_ms, cooldown):
    """The state machine probes when opened_at (stamped with the opening clock's now) is at or
    before a later clock's cutoff; that must imply the whole cooldown has passed, to the microsecond."""
    from datetime import timedelta

    later = opened + timedelta(milliseconds=elapsed_ms)
    stamped = breaker_clock(opened, cooldown)["now"]
    probe_allowed = stamped <= breaker_clock(later, cooldown)["cooldown_cutoff"]  # same fixed-width format
    if probe_allowed:
        assert later - opened >= timedelta(seconds=cooldown)
    # And it is never more than two seconds late.
    if later - opened >= timedelta(seconds=cooldown + 2):
        assert probe_allowed
    # probe_after, which the health route compares with the current second, agrees with that rule.
    current_second = later.replace(microsecond=0).strftime("%Y-%m-%dT%H:%M:%SZ")
    assert (breaker_clock(opened, cooldown)["probe_after"] <= current_second) == probe_allowed


def test_select_carries_variant_breaker_settings_and_clock():
    strategy = load_default_strategy()
    selection = select(
        strategy, UseCase.PRODUCT_QUESTION, user_id="u-1", request_id="r", now=datetime(2026, 1, 1, tzinfo=UTC)
    )
    assert selection["model_id"] in {v.model_id for v in strategy.use_cases[UseCase.PRODUCT_QUESTION].variants}
    assert selection["breaker"] == {"failure_threshold": 5, "cooldown_seconds": 30}
    assert selection["clock"]["cooldown_cutoff"] == "2025-12-31T23:59:30Z"
    assert selection["strategy_version"] == strategy.version


def test_both_product_question_variants_serve_some_users():
    strategy = load_default_strategy()
    now = datetime(2026, 1, 1, tzinfo=UTC)
    models = Counter(
        select(strategy, UseCase.PRODUCT_QUESTION, user_id=f"user-{i}", request_id="r", now=now)["model_id"]
        for i in range(1000)
    )
    assert len(models) == 2


class FlakySource:
    def __init__(self, results):
        self.results = list(results)

    def get(self):
        result = self.results.pop(0)
        if isinstance(result, Exception):
            raise result
        return result


def test_resilient_source_keeps_the_last_good_strategy():
    good = load_default_strategy()
    source = dal.ResilientStrategySource(FlakySource([good, OSError("appconfig down")]))
    assert source.get() is good
    assert source.get() is good


def test_resilient_source_uses_the_bundled_strategy_when_it_never_had_one():
    source = dal.ResilientStrategySource(FlakySource([ValueError("bad schema")]))
    assert source.get() == load_default_strategy()


def test_strategy_source_is_chosen_by_configuration():
    ids = {"APPCONFIG_APPLICATION": "a", "APPCONFIG_ENVIRONMENT": "e", "APPCONFIG_PROFILE": "p"}
    assert isinstance(dal.strategy_source_from_env({"STRATEGY_SOURCE": "bundled"}), dal.BundledStrategySource)
    assert isinstance(dal.strategy_source_from_env({**ids, "STRATEGY_SOURCE": "agent"}), dal.ResilientStrategySource)
    with pytest.raises(ValueError, match="STRATEGY_SOURCE"):
        dal.strategy_source_from_env({**ids, "STRATEGY_SOURCE": "nope"})


def test_appconfig_source_reads_through_powertools(monkeypatch):
    document = json.loads(Path("lambdas/shared/strategy/model_selection.json").read_text())
    calls = []

    class FakeProvider:
        def __init__(self, environment, application):
            calls.append((application, environment))

        def get(self, name, max_age):
            calls.append((name, max_age))
            return json.dumps(document).encode()

    from aws_lambda_powertools.utilities import parameters

    monkeypatch.setattr(parameters, "AppConfigProvider", FakeProvider)
    source = dal.AppConfigStrategySource("app", "env", "profile", max_age=300)
    assert source.get().version == document["version"]
    assert calls == [("app", "env"), ("profile", 300)]


class FakeLambda:
    def __init__(self, payload, function_error=None):
        self.payload = payload
        self.function_error = function_error
        self.invoked = []

    def invoke(self, FunctionName, Payload):
        self.invoked.append((FunctionName, json.loads(Payload)))
        result = {"StatusCode": 200, "Payload": io.BytesIO(json.dumps(self.payload).encode())}
        if self.function_error:
            result["FunctionError"] = self.function_error
        return result


REQUEST = dal.ModelRequest(
    prompt="Where does my money go?", system_prompt=None, max_tokens=100, temperature=0.2, top_p=None
)


def test_lambda_provider_invokes_the_target_and_reads_its_answer():
    client = FakeLambda(
        {
            "statusCode": 200,
            "body": json.dumps(
                {
                    "response": "Cut dining by 10%",
                    "confidence": 0.8,
                    "model_version": "advisor-v3",
                    "usage": {"input_tokens": 57, "output_tokens": 12},
                }
            ),
        }
    )
    provider = dal.LambdaProvider({"advisor": "arn:aws:lambda:us-east-1:123456789012:function:advisor"}, client)
    completion = provider.complete_target("advisor", "advisor-lora", REQUEST)
    assert completion.text == "Cut dining by 10%"
    assert completion.model_id == "advisor-v3"
    # The function's own token counts are what the client's budget is charged (never zero).
    assert (completion.input_tokens, completion.output_tokens) == (57, 12)
    assert client.invoked == [
        ("arn:aws:lambda:us-east-1:123456789012:function:advisor", {"query": "Where does my money go?"})
    ]


@pytest.mark.parametrize(
    ("payload", "function_error", "code"),
    [
        ({"errorMessage": "boom"}, "Unhandled", "FunctionError"),
        ({"statusCode": 400, "body": json.dumps({"error": "bad_request"})}, None, "InputRejected"),
        ({"statusCode": 400, "body": json.dumps({"error": "prompt_too_long"})}, None, "PromptTooLong"),
        ({"statusCode": 500, "body": json.dumps({"error": "boom"})}, None, "BadResponse"),
        ({"response": ""}, None, "BadResponse"),
        ({"statusCode": 200, "body": json.dumps({"response": "Cut dining"})}, None, "BadResponse"),
        (
            {"statusCode": 200, "body": json.dumps({"response": "x", "usage": {"input_tokens": -1}})},
            None,
            "BadResponse",
        ),
    ],
)
def test_lambda_provider_failures_raise_model_call_errors(payload, function_error, code):
    provider = dal.LambdaProvider({"advisor": "arn"}, FakeLambda(payload, function_error))
    with pytest.raises(ModelCallError) as raised:
        provider.complete_target("advisor", "advisor-lora", REQUEST)
    assert raised.value.code == code
    # A function refusing the input (its 4xx) is the request's fault: never the model's circuit.
    assert (raised.value.failure_class is FailureClass.REQUEST) == (code in ("InputRejected", "PromptTooLong"))


def test_lambda_provider_rejects_unknown_targets():
    with pytest.raises(ModelCallError, match="no function configured"):
        dal.LambdaProvider({}, FakeLambda({})).complete_target("sentiment", "m", REQUEST)


def test_lambda_targets_come_from_the_environment():
    assert dal.lambda_targets_from_env({"LAMBDA_PROVIDERS": '{"advisor": "arn:x"}'}) == {"advisor": "arn:x"}
    with pytest.raises(ValueError, match="JSON object"):
        dal.lambda_targets_from_env({"LAMBDA_PROVIDERS": "[]"})


def test_lambda_provider_output_passes_through_the_guardrail():
    from shared.bedrock import GuardrailRef

    class Guard:
        def __init__(self):
            self.calls = []

        def apply_guardrail(self, **request):
            self.calls.append(request)
            return {"action": "GUARDRAIL_INTERVENED", "outputs": [{"text": "masked answer"}]}

    guard = Guard()
    client = FakeLambda(
        {
            "statusCode": 200,
            "body": json.dumps(
                {"response": "raw answer", "model_version": "v1", "usage": {"input_tokens": 9, "output_tokens": 2}}
            ),
        }
    )
    provider = dal.LambdaProvider({"advisor": "arn"}, client, guardrail=GuardrailRef("gr", "2"), bedrock_client=guard)
    assert provider.complete_target("advisor", "advisor-lora", REQUEST).text == "masked answer"
    assert guard.calls[0]["source"] == "OUTPUT"
    assert guard.calls[0]["content"] == [{"text": {"text": "raw answer"}}]


class ScriptedBedrock:
    """A Bedrock provider that answers with a fixed text and records the request it got."""

    def __init__(self, text):
        self.text = text
        self.requests = []

    def complete(self, model_id, request, deadline):
        from shared.bedrock import Completion

        self.requests.append(request)
        return Completion(self.text, model_id, 12, 2, "end_turn")


def sentiment_invoke(provider="bedrock"):
    from router.handler import InvokeEvent

    selection = {"variant": "A", "provider": provider, "model_id": "us.anthropic.claude-haiku-4-5-20251001-v1:0"}
    selection |= {"max_tokens": 10, "temperature": 0.0, "system_prompt": "You judge financial sentiment."}
    if provider == "lambda":
        selection |= {"target": "sentiment", "model_id": "sentiment-lora"}
    return InvokeEvent(
        action="invoke", request_id="r", use_case="sentiment", prompt="Profit warning issued", selection=selection
    )


def test_a_generative_model_answers_sentiment_with_a_label_the_api_can_read(monkeypatch):
    from router import handler
    from shared.sentiment import LABEL_INSTRUCTION

    bedrock = ScriptedBedrock("Sentiment: Negative.")
    monkeypatch.setattr(handler, "_bedrock", lambda: bedrock)
    result = handler.handle_invoke(sentiment_invoke(), deadline=1e12)
    assert result["sentiment"] == {"label": "negative", "confidence": None, "probabilities": None, "truncated": False}
    assert result["response"] == "Sentiment: negative."
    assert (result["input_tokens"], result["output_tokens"]) == (12, 2)
    # The label format is the code's, appended to whatever system prompt the strategy holds.
    assert bedrock.requests[0].system_prompt == f"You judge financial sentiment.\n\n{LABEL_INSTRUCTION}"


def test_an_answer_without_one_clear_label_is_the_models_failure(monkeypatch):
    from router import handler
    from shared.bedrock import ModelCallError

    monkeypatch.setattr(handler, "_bedrock", lambda: ScriptedBedrock("It could be positive or negative."))
    with pytest.raises(ModelCallError) as raised:
        handler.handle_invoke(sentiment_invoke(), deadline=1e12)
    assert raised.value.code == "UnreadableLabel"


def test_the_classifier_adapter_answers_sentiment_with_probabilities(monkeypatch):
    from router import handler

    answer = {"label": "negative", "confidence": 0.9, "truncated": False}
    answer["probabilities"] = {"negative": 0.9, "neutral": 0.06, "positive": 0.04}
    client = FakeLambda({"statusCode": 200, "body": json.dumps({"results": [answer], "model_version": "cls-v2"})})
    provider = dal.LambdaProvider({"sentiment": "arn:sentiment"}, client)
    monkeypatch.setattr(handler, "_lambda_provider", lambda: provider)
    result = handler.handle_invoke(sentiment_invoke("lambda"), deadline=1e12)
    assert result["sentiment"] == answer
    assert result["model_used"] == "cls-v2"
    assert result["response"] == "Sentiment: negative (confidence 0.90)."
    assert client.invoked == [("arn:sentiment", {"texts": ["Profit warning issued"], "truncate": True})]


@pytest.mark.parametrize(
    "body",
    [
        {"results": []},
        {"results": [{"label": "bullish", "confidence": 0.9, "probabilities": {}}]},
        {"results": [{"label": "negative"}]},
        {"model_version": "v"},
    ],
)
def test_an_unreadable_classifier_answer_is_a_model_call_error(body):
    client = FakeLambda({"statusCode": 200, "body": json.dumps(body)})
    with pytest.raises(ModelCallError) as raised:
        dal.LambdaProvider({"sentiment": "arn"}, client).classify_target("sentiment", "sentiment-lora", "text")
    assert raised.value.code == "BadResponse"


def test_generation_use_cases_answer_with_a_null_sentiment(monkeypatch):
    from router import handler
    from router.handler import InvokeEvent

    monkeypatch.setattr(handler, "_bedrock", lambda: ScriptedBedrock("An ISA is a tax-free savings account."))
    event = sentiment_invoke().model_copy(update={"use_case": UseCase.GENERAL})
    result = handler.handle_invoke(InvokeEvent.model_validate(event.model_dump()), deadline=1e12)
    assert result["sentiment"] is None
    assert result["response"] == "An ISA is a tax-free savings account."


def test_failure_classes_are_one_table_the_dashboard_shows():
    from shared.failures import CLASSIFICATION, FailureClass, classify
    from stacks.monitoring import FAILURE_CLASSES

    assert set(FAILURE_CLASSES) == {c.value for c in FailureClass}
    assert classify("ThrottlingException") is FailureClass.MODEL
    assert classify("ValidationException", "Input is too long for requested model.") is FailureClass.REQUEST
    assert classify("ValidationException", "The provided model identifier is invalid.") is FailureClass.MODEL
    assert classify("UnreadableLabel") is FailureClass.TASK
    assert classify("SomethingNew") is FailureClass.MODEL  # unknown: counted until someone says otherwise
    assert all(why for _, why in CLASSIFICATION.values())
