"""The front Lambda: bad input gets a clear 4xx, outcomes map to honest statuses, docs stay current."""

import hashlib
import json
from pathlib import Path

import boto3
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from moto import mock_aws

from api_front import handler as front
from api_front.dal import ExecutionResult
from api_front.logic import MAX_BODY_BYTES
from local.request_path import (
    BUDGET_KEY_SCHEMA,
    BUDGET_TABLE,
    LOCAL_API_KEY_ID,
    TEST_CREDENTIALS,
    FakeContext,
    api_event,
    create_table,
    response_headers,
)
from shared.use_cases import UseCase

GOOD = {"prompt": "What is APR?", "use_case": "general"}


class MemoryAudit:
    def __init__(self):
        self.records = []

    def write(self, record):
        self.records.append(record)


AUDIT = MemoryAudit()


class FakeExecutor:
    def __init__(self, result: ExecutionResult | None = None):
        self.result = result
        self.calls: list[dict] = []

    def run(self, name, payload):
        self.calls.append(payload)
        if self.result is not None:
            return self.result
        return ExecutionResult(
            "SUCCEEDED",
            {
                "response": "APR is the yearly cost.",
                "model_used": "m",
                "tier": "primary",
                "attempt": 1,
                "use_case": payload["use_case"],
                "request_id": name,
            },
        )


FRONT_ENV = {
    "STATE_MACHINE_ARN": "arn:aws:states:us-east-1:123456789012:stateMachine:cb",
    "CIRCUIT_TABLE": "circuits",
    "MAX_PROMPT_CHARS": "100",
    "AUDIT_QUEUE_URL": "https://sqs.us-east-1.amazonaws.com/123456789012/finai-audit.fifo",
    "BUDGET_TABLE": BUDGET_TABLE,
    "FALLBACK_MODEL_ID": "us.amazon.nova-micro-v1:0",
    "API_CLIENT_KEYS": json.dumps([[LOCAL_API_KEY_ID, "default"]]),
    "STRATEGY_SOURCE": "bundled",
    "AWS_DEFAULT_REGION": "us-east-1",
    "AWS_REGION": "us-east-1",
    **TEST_CREDENTIALS,
}


@pytest.fixture
def executor(monkeypatch):
    for name, value in FRONT_ENV.items():
        monkeypatch.setenv(name, value)
    # Taken before a test patches one of them.
    caches = (front.settings, front.strategy_source, front.budget_store, front.client_directory)
    for cached in caches:
        cached.cache_clear()
    fake = FakeExecutor()
    monkeypatch.setattr(front, "executor", lambda: fake)
    monkeypatch.setattr(front, "audit_writer", lambda: AUDIT)
    AUDIT.records.clear()
    with mock_aws():
        create_table(boto3.client("dynamodb"), BUDGET_TABLE, BUDGET_KEY_SCHEMA)
        yield fake
    for cached in caches:
        cached.cache_clear()


def call(body, method="POST", path="/v1/generate"):
    event = api_event(method, path, body, request_id="req-1")
    result = front.lambda_handler(event, FakeContext("api_front", "us-east-1"))
    return result["statusCode"], json.loads(result["body"])


def test_valid_request_runs_the_state_machine_once(executor):
    status, body = call(json.dumps({**GOOD, "user_id": "u-42"}))
    assert status == 200
    assert body["tier"] == "primary"
    assert body["request_id"] == "req-1"
    assert executor.calls == [
        {"request_id": "req-1", "prompt": "What is APR?", "use_case": "general", "user_id": "u-42"}
    ]


@pytest.mark.parametrize(
    ("body", "fragment"),
    [
        ("{not json", "not valid JSON"),
        ("", "body: is required"),
        ("[]", "body:"),
        (json.dumps({"prompt": "hi"}), "use_case: is required"),
        (
            json.dumps({"prompt": "hi", "use_case": "crypto_tips"}),
            "use_case: must be one of " + ", ".join(u.value for u in UseCase),
        ),
        (json.dumps({"prompt": 42, "use_case": "general"}), "prompt: Input should be a valid string"),
        (json.dumps({"prompt": ["a"], "use_case": "general"}), "prompt: Input should be a valid string"),
        (json.dumps({"prompt": "", "use_case": "general"}), "prompt: prompt must not be empty"),
        (json.dumps({"prompt": "   \n", "use_case": "general"}), "prompt: prompt must not be empty"),
        (json.dumps({"use_case": "general"}), "prompt: is required"),
        (json.dumps({**GOOD, "user_id": "has spaces"}), "user_id"),
        (json.dumps({**GOOD, "temperature": 2}), "temperature: Extra inputs are not permitted"),
    ],
)
def test_bad_input_gets_400_with_a_clear_message_and_starts_nothing(executor, body, fragment):
    status, answer = call(body)
    assert status == 400
    assert answer["error"] == "invalid_request"
    assert fragment in answer["message"]
    assert executor.calls == []


def test_prompt_over_the_limit_gets_413_before_the_state_machine(executor):
    status, answer = call(json.dumps({"prompt": "x" * 101, "use_case": "general"}))
    assert status == 413
    assert answer["message"] == "prompt has 101 characters; the limit is 100"
    assert executor.calls == []
    assert call(json.dumps({"prompt": "x" * 100, "use_case": "general"}))[0] == 200


def test_body_over_the_step_functions_input_bound_gets_413(executor):
    status, answer = call(json.dumps({"prompt": "x" * (MAX_BODY_BYTES + 1), "use_case": "general"}))
    assert status == 413
    assert answer["error"] == "payload_too_large"
    assert executor.calls == []


@pytest.mark.parametrize(
    ("result", "reason"),
    [
        (ExecutionResult("FAILED", None, "States.TaskFailed", "x"), "execution_failed"),
        (ExecutionResult("TIMED_OUT", None, "States.Timeout", "x"), "timeout"),
        (ExecutionResult("ABORTED", None), "execution_failed"),
        (ExecutionResult("SUCCEEDED", {"response": "no tier"}), "malformed_answer"),
        (ExecutionResult("SUCCEEDED", None), "execution_failed"),
    ],
)
def test_an_execution_without_a_usable_answer_ends_in_the_static_answer_that_says_why(
    executor, monkeypatch, result, reason
):
    monkeypatch.setattr(front, "executor", lambda: FakeExecutor(result))
    code, body = call(json.dumps(GOOD))
    assert (code, body["tier"], body["model_used"], body["degraded_reason"]) == (
        200,
        "degraded",
        "static-degraded-response",
        reason,
    )
    assert "temporarily unavailable" in body["response"] and body["sentiment"] is None


def test_a_step_functions_read_timeout_is_answered_with_the_static_answer(executor, monkeypatch):
    from botocore.exceptions import ReadTimeoutError

    from api_front.dal import SyncExecutor

    class SlowClient:
        def start_sync_execution(self, **_kwargs):
            raise ReadTimeoutError(endpoint_url="https://states.us-east-1.amazonaws.com")

    monkeypatch.setattr(front, "executor", lambda: SyncExecutor("arn", client=SlowClient()))
    code, body = call(json.dumps(GOOD))
    assert (code, body["tier"], body["degraded_reason"]) == (200, "degraded", "timeout")


def test_the_step_functions_client_makes_one_bounded_attempt():
    from api_front.dal import CONNECT_TIMEOUT_S, sync_client_config

    config = sync_client_config(23)
    assert (config.read_timeout, config.connect_timeout) == (23, CONNECT_TIMEOUT_S)
    assert config.retries["total_max_attempts"] == 1


@settings(max_examples=150, suppress_health_check=[HealthCheck.function_scoped_fixture], deadline=None)
@given(
    st.one_of(
        st.text(max_size=300),
        st.dictionaries(
            st.sampled_from(["prompt", "use_case", "user_id", "x"]),
            st.one_of(st.none(), st.integers(), st.text(max_size=120), st.lists(st.integers(), max_size=3)),
            max_size=4,
        ).map(json.dumps),
    )
)
def test_arbitrary_bodies_never_get_a_5xx(executor, body):
    status, answer = call(body)
    assert status in (200, 400, 413)
    if status != 200:
        assert answer["message"]


def test_health_reports_circuits_and_dependency_checks(executor, monkeypatch):
    class Reader:
        def circuits(self):
            return {"m1": {"state": "OPEN", "failures": 5, "opened_at": "2026-01-01T00:00:00Z"}}

    monkeypatch.setattr(front, "circuit_reader", Reader)
    status, body = call(None, method="GET", path="/v1/health")
    assert status == 200
    assert body["status"] == "degraded", "every known circuit is open"
    assert body["circuits"]["m1"]["state"] == "OPEN"
    assert body["checks"] == {"circuit_table": "ok"}


def test_health_still_answers_when_the_table_is_unreachable(executor, monkeypatch):
    class Broken:
        def circuits(self):
            raise ConnectionError("dynamodb unreachable")

    monkeypatch.setattr(front, "circuit_reader", Broken)
    status, body = call(None, method="GET", path="/v1/health")
    assert status == 200
    assert body["status"] == "degraded"
    assert body["checks"] == {"circuit_table": "unreachable"}


def test_settings_are_validated_at_cold_start(monkeypatch):
    monkeypatch.setenv("STATE_MACHINE_ARN", "not-an-arn")
    front.settings.cache_clear()
    with pytest.raises(ValueError, match="state_machine_arn"):
        front.settings()
    front.settings.cache_clear()


def test_shipped_openapi_document_is_current():
    from api_front.openapi import document

    assert Path("docs/openapi.json").read_text() == document(), "run `make openapi`"


def test_openapi_documents_every_status_the_api_returns():
    spec = json.loads(Path("docs/openapi.json").read_text())
    assert set(spec["paths"]["/v1/generate"]["post"]["responses"]) == {
        "200",
        "400",
        "403",
        "413",
        "415",
        "429",
        "502",
        "504",
    }
    use_cases = spec["components"]["schemas"]["UseCase"]["enum"]
    schema = json.loads(Path("lambdas/shared/strategy/model_selection.schema.json").read_text())
    assert use_cases == schema["properties"]["use_cases"]["required"]


def test_openapi_declares_the_api_key_on_generate_only():
    spec = json.loads(Path("docs/openapi.json").read_text())
    assert spec["components"]["securitySchemes"]["apiKey"] == {
        "type": "apiKey",
        "description": "Per-client API key",
        "in": "header",
        "name": "x-api-key",
    }
    assert spec["paths"]["/v1/generate"]["post"]["security"] == [{"apiKey": []}]
    assert "security" not in spec["paths"]["/v1/health"]["get"]


def test_every_generate_request_is_audited_with_counts_and_no_text(executor):
    call(json.dumps({"prompt": "card 4111 1111 1111 1111 was declined", "use_case": "general"}))
    call("{not json")
    call(json.dumps({"prompt": "x" * 101, "use_case": "general"}))
    call(None, method="GET", path="/v1/health")
    assert [r.status for r in AUDIT.records] == [200, 400, 413], "health checks are not audited"
    assert executor.calls[0]["prompt"] == "card [CARD] was declined", "PII never enters the state machine"
    first = AUDIT.records[0]
    assert (first.use_case, first.tier, first.model_used, first.redactions) == ("general", "primary", "m", {"CARD": 1})
    document = json.dumps(first.document())
    assert "4111" not in document and "declined" not in document, "no prompt text, only its hash"
    assert first.prompt_sha256 == hashlib.sha256(b"card [CARD] was declined").hexdigest()
    assert (first.client, first.breaker, first.region, first.currency) == ("default", "allowed", "us-east-1", "USD")
    assert [(r.breaker, r.failure_class) for r in AUDIT.records[1:]] == [("not_reached", "request")] * 2


def test_an_answer_carries_its_usage_and_cost_and_the_budget_is_settled_to_it(executor):
    executor.result = ExecutionResult(
        "SUCCEEDED",
        {
            "response": "APR is the yearly cost.",
            "model_used": "us.anthropic.claude-haiku-4-5-20251001-v1:0",
            "tier": "primary",
            "attempt": 1,
            "use_case": "general",
            "request_id": "req-1",
            "input_tokens": 1_000,
            "output_tokens": 100,
            "variant": "A",
            "guardrail": "passed",
        },
    )
    status, body = call(json.dumps(GOOD))
    assert status == 200
    # 1,000 x 0.0011 / 1,000 + 100 x 0.0055 / 1,000 = 0.0011 + 0.00055 USD
    assert body["usage"] == {"input_tokens": 1_000, "output_tokens": 100, "cost": 0.00165, "currency": "USD"}
    status, budget = call(None, method="GET", path="/v1/budget")
    assert status == 200 and budget["client"] == "default"
    counters = {(c["period"], c["unit"]): c for c in budget["counters"]}
    assert counters["day", "tokens"]["used"] == counters["day", "tokens"]["committed"] == 1_100
    assert counters["month", "cost"]["used"] == pytest.approx(0.00165)
    record = AUDIT.records[0]
    assert (record.variant, record.guardrail, record.cost_micros) == ("A", "passed", 1_650)


def test_a_request_the_budget_cannot_cover_gets_429_with_what_is_left_and_calls_no_model(executor, monkeypatch):
    from shared.budgets import BudgetPolicy
    from shared.strategy import load_default_strategy
    from shared.strategy.source import StaticStrategySource

    strategy = load_default_strategy()
    assert strategy.budgets is not None
    tight = strategy.budgets.model_copy(
        update={
            "default": BudgetPolicy.model_validate(
                {**strategy.budgets.model_dump(), "default": [{"period": "day", "unit": "tokens", "limit": 2_500}]}
            ).default
        }
    )
    monkeypatch.setattr(
        front, "strategy_source", lambda: StaticStrategySource(strategy.model_copy(update={"budgets": tight}))
    )
    # The worst case of a general question: (prompt + 1,024) on two tiers, plus 800 + 300 output tokens.
    event = api_event("POST", "/v1/generate", json.dumps(GOOD), request_id="req-429")
    result = front.lambda_handler(event, FakeContext("api_front", "us-east-1"))
    body = json.loads(result["body"])
    assert result["statusCode"] == 429 and executor.calls == []
    assert body["error"] == "budget_exhausted" and "2500 tokens" in body["message"]
    assert body["budget"]["remaining"] == 2_500 and body["budget"]["requested"] == 2 * (12 + 1_024) + 1_100
    assert 0 < int(response_headers(result)["Retry-After"]) <= 86_400
    assert (AUDIT.records[0].status, AUDIT.records[0].failure_class) == (429, "budget")


def test_an_unreachable_budget_table_gets_the_static_answer_and_no_model_call(executor, monkeypatch):
    monkeypatch.setenv("BUDGET_TABLE", "no-such-table")
    front.settings.cache_clear()
    front.budget_store.cache_clear()
    status, body = call(json.dumps(GOOD))
    assert status == 200 and executor.calls == []
    assert (body["tier"], body["degraded_reason"]) == ("degraded", "budget_unavailable")
    assert body["usage"]["cost"] == 0


def test_an_audit_failure_never_fails_the_request(executor, monkeypatch):
    class Broken:
        def write(self, record):
            raise ConnectionError("dynamodb unreachable")

    monkeypatch.setattr(front, "audit_writer", Broken)
    assert call(json.dumps(GOOD))[0] == 200


def test_health_reads_the_circuit_table_within_route_53s_two_seconds():
    from shared.circuits import HEALTH_CLIENT_CONFIG, CircuitReader

    reader = CircuitReader("finai-circuits")
    config = reader._client.meta.config
    assert config.connect_timeout + config.read_timeout <= 1.5  # leaves margin inside 2 s
    assert config.retries["total_max_attempts"] == 1  # botocore normalises max_attempts
    assert HEALTH_CLIENT_CONFIG.read_timeout == config.read_timeout


def test_sentiment_prompts_have_the_classifiers_limit(executor, monkeypatch):
    monkeypatch.setenv("MAX_PROMPT_CHARS", "16000")
    front.settings.cache_clear()
    status, answer = call(json.dumps({"prompt": "x" * 2001, "use_case": "sentiment"}))
    assert status == 413
    assert answer["message"] == "prompt has 2001 characters; the limit for the sentiment use case is 2000"
    assert executor.calls == []
    # The general limit still applies to every other use case.
    assert call(json.dumps({"prompt": "x" * 2001, "use_case": "general"}))[0] == 200


def sentiment_output(tier: str, sentiment: dict | None) -> ExecutionResult:
    return ExecutionResult(
        "SUCCEEDED",
        {
            "response": "Sentiment: negative.",
            "model_used": "m",
            "tier": tier,
            "attempt": {"primary": 1, "fallback": 2, "degraded": 3}[tier],
            "use_case": "sentiment",
            "request_id": "req-1",
            "sentiment": sentiment,
        },
    )


def test_a_sentiment_answer_carries_its_label_and_a_model_tier_without_one_is_not_passed_on(executor, monkeypatch):
    probabilities = {"negative": 0.91, "neutral": 0.05, "positive": 0.04}
    label = {"label": "negative", "confidence": 0.91, "probabilities": probabilities, "truncated": False}
    request = json.dumps({"prompt": "Profit warning issued", "use_case": "sentiment"})
    monkeypatch.setattr(front, "executor", lambda: FakeExecutor(sentiment_output("primary", label)))
    status, body = call(request)
    assert (status, body["sentiment"]) == (200, label)
    monkeypatch.setattr(front, "executor", lambda: FakeExecutor(sentiment_output("fallback", None)))
    status, body = call(request)
    assert (status, body["tier"], body["sentiment"], body["degraded_reason"]) == (
        200,
        "degraded",
        None,
        "malformed_answer",
    )
    # The static answer is the one tier allowed to come without a label: it says so in words.
    monkeypatch.setattr(front, "executor", lambda: FakeExecutor(sentiment_output("degraded", None)))
    status, body = call(request)
    assert (status, body["tier"], body["sentiment"]) == (200, "degraded", None)
    # A label outside the contract is a malformed answer, not something to pass on.
    bad = {**label, "label": "bullish"}
    monkeypatch.setattr(front, "executor", lambda: FakeExecutor(sentiment_output("primary", bad)))
    assert call(request)[1]["degraded_reason"] == "malformed_answer"


def test_other_use_cases_answer_with_a_null_sentiment(executor):
    status, body = call(json.dumps(GOOD))
    assert status == 200 and body["sentiment"] is None


# Issue 14: inputs that used to crash the front, or to pass it and fail later.
HOSTILE = [
    ('{"prompt": "' + "\\ud800" + ' hi", "use_case": "general"}', 400, "lone surrogate"),
    ('{"prompt": "hi\\u0000there", "use_case": "general"}', 400, "control character"),
    ('{"prompt": "hi", "use_case": "general", "n": ' + "9" * 5000 + "}", 400, "not valid JSON"),
    ("[" * 50_000 + "]" * 50_000, 400, "nested too deeply"),
    ('{"prompt": ' + "[" * 5000 + "]" * 5000 + ', "use_case": "general"}', 400, "too deeply"),
]


@pytest.mark.parametrize(("body", "status", "message"), HOSTILE)
def test_hostile_json_gets_a_documented_4xx_and_one_audit_record(executor, body, status, message):
    code, answer = call(body)
    assert (code, answer["error"]) == (status, "invalid_request"), answer
    assert message in answer["message"]
    assert answer["request_id"] == "req-1"
    assert executor.calls == []
    assert [r.status for r in AUDIT.records] == [status]


def test_text_plain_gets_415_in_the_error_shape(executor):
    event = api_event("POST", "/v1/generate", json.dumps(GOOD), request_id="req-1")
    event["headers"] = {"content-type": "text/plain"}
    result = front.lambda_handler(event, FakeContext("api_front", "us-east-1"))
    body = json.loads(result["body"])
    assert result["statusCode"] == 415
    assert set(body) == {"error", "message", "request_id"} and body["error"] == "unsupported_media_type"
    assert [r.status for r in AUDIT.records] == [415]
    for accepted in ("application/json", "application/json; charset=utf-8", "Application/JSON"):
        event["headers"] = {"Content-Type": accepted}
        again = front.lambda_handler(event, FakeContext("api_front", "us-east-1"))
        assert again["statusCode"] == 200, (accepted, again["body"])


def test_an_oversized_prompt_is_refused_before_it_is_redacted(executor, monkeypatch):
    redacted: list[int] = []
    real = front.redact
    monkeypatch.setattr(front, "redact", lambda text: redacted.append(len(text)) or real(text))
    code, answer = call(json.dumps({"prompt": "a@" * 60_000, "use_case": "general"}))
    assert code == 413 and answer["error"] == "prompt_too_large"
    assert redacted == []


def test_an_unexpected_failure_is_answered_in_the_error_shape_and_audited(executor, monkeypatch):
    def broken(*args, **kwargs):
        raise RuntimeError("bug")

    monkeypatch.setattr(front, "generate", broken)
    code, answer = call(json.dumps(GOOD))
    assert code == 500 and answer["error"] == "internal_error"
    assert [r.status for r in AUDIT.records] == [500]
