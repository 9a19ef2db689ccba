"""The stream route under faults: failover before the first token, an honest error after it.

Each test runs the real stream handler against moto's tables and the offline Bedrock stand-in's
ConverseStream, whose faults (fail, cut after N words, stall, error event) are set per model.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from unittest import mock

import pytest

from api_stream import handler as stream
from api_stream.logic import StreamTimeouts, parse_events
from local.request_path import RequestPath, local_request_path
from tests.statemachine.conftest import FALLBACK, PRIMARY

QUESTION = json.dumps({"use_case": "general", "prompt": "What is an ISA?", "user_id": "u-1"})
FAST = StreamTimeouts(first_token_s=0.5, idle_s=0.5)


@pytest.fixture
def path() -> Iterator[RequestPath]:
    with local_request_path() as request_path:
        settings = stream.settings().model_copy(update={"timeouts": FAST})
        with mock.patch.object(stream, "settings", lambda: settings):
            yield request_path


def names(events) -> list[str]:
    return [e.name for e in events]


def text(events) -> str:
    return "".join(e.data["text"] for e in events if e.name == "delta")


def test_a_clean_stream_is_meta_deltas_and_one_done(path):
    status, headers, events, raw = path.stream(QUESTION)
    assert status == 200 and headers["Content-Type"] == "text/event-stream"
    assert names(events)[0] == "meta" and names(events)[-1] == "done"
    assert set(names(events)[1:-1]) == {"delta"} and len(events) > 4  # word by word
    assert events[0].data["tier"] == "primary" and events[0].data["model"] == PRIMARY
    done = events[-1].data
    assert done["tier"] == "primary" and done["stop_reason"] == "end_turn" and done["output_tokens"] > 0
    assert text(events).startswith(f"[{PRIMARY}] Offline answer to: What is an ISA?")
    assert parse_events(raw.decode()) == events  # what went over the wire is what was recorded


@pytest.mark.parametrize(
    ("fault", "expected_failures"),
    [("fail", 1), ("stall_before_first", 1), ("throttle", 1), ("invalid", 0)],
)
def test_a_primary_that_fails_before_the_first_token_hands_over_to_the_fallback(path, fault, expected_failures):
    if fault == "fail":
        path.bedrock.fail(PRIMARY)
    elif fault == "throttle":
        path.bedrock.fail(PRIMARY, "ThrottlingException")
    elif fault == "invalid":
        path.bedrock.fail(PRIMARY, "ValidationException")  # the request's fault: never counted
    else:
        path.bedrock.stream_fault(PRIMARY, "stall", after_words=0, stall_s=2)
    _, _, events, _ = path.stream(QUESTION)
    assert names(events)[0] == "meta" and events[0].data["tier"] == "fallback"
    assert events[-1].name == "done" and events[-1].data["tier"] == "fallback"
    assert events[-1].data["model_used"] == FALLBACK
    assert PRIMARY not in text(events)  # nothing of the failed primary reached the client
    circuit = path.circuit(PRIMARY)
    assert (circuit["failures"] if circuit else 0) == expected_failures


@pytest.mark.parametrize(("kind", "code"), [("cut", "truncated"), ("stall", "stalled"), ("error", "model_error")])
def test_a_failure_after_the_first_token_ends_with_an_error_event_and_no_stitching(path, kind, code):
    path.bedrock.stream_fault(PRIMARY, kind, after_words=3, stall_s=2)
    _, _, events, _ = path.stream(QUESTION)
    assert names(events) == ["meta", "delta", "delta", "delta", "error"]
    error = events[-1].data
    assert error["code"] == code and error["partial"] is True and error["tier"] == "primary"
    assert error["failure_class"] == "model"
    assert FALLBACK not in text(events)  # the fallback's text is never appended to the primary's
    assert path.circuit(PRIMARY)["failures"] == 1  # counted toward the circuit
    # A cut stream reports no usage: the tier's whole bound is charged, never nothing.
    assert error["usage"]["output_tokens"] >= 800


def test_when_both_models_fail_the_static_answer_streams_with_its_tier(path):
    path.bedrock.fail(PRIMARY)
    path.bedrock.fail(FALLBACK)
    _, _, events, _ = path.stream(QUESTION)
    assert events[0].data["tier"] == "degraded" and events[-1].name == "done"
    done = events[-1].data
    assert done["tier"] == "degraded" and done["degraded_reason"] == "models_unavailable"
    assert "financial" in text(events).lower() or "contact" in text(events).lower()


def test_a_fallback_that_fails_after_its_first_token_ends_with_its_error(path):
    path.bedrock.fail(PRIMARY)
    path.bedrock.stream_fault(FALLBACK, "cut", after_words=2)
    _, _, events, _ = path.stream(QUESTION)
    assert names(events) == ["meta", "delta", "delta", "error"]
    assert events[-1].data["tier"] == "fallback" and events[-1].data["partial"] is True


def test_an_open_circuit_sends_the_stream_to_the_fallback_without_calling_the_primary(path):
    path.bedrock.fail(PRIMARY)
    for _ in range(5):
        path.stream(QUESTION)
    assert path.circuit(PRIMARY)["state"] == "OPEN"
    calls = path.bedrock.calls_to(PRIMARY)
    _, _, events, _ = path.stream(QUESTION)
    assert events[0].data["tier"] == "fallback" and path.bedrock.calls_to(PRIMARY) == calls


@pytest.mark.parametrize(
    ("body", "content_type", "status", "code"),
    [
        ('{"use_case": "general"}', "application/json", 400, "invalid_request"),
        ('{"use_case": "general", "prompt": "x"', "application/json", 400, "invalid_request"),
        ('{"use_case": "general", "prompt": "x"}', "text/plain", 415, "unsupported_media_type"),
        (json.dumps({"use_case": "sentiment", "prompt": "x" * 5000}), "application/json", 413, "prompt_too_large"),
        ("x" * 200_001, "application/json", 413, "payload_too_large"),
    ],
)
def test_bad_input_is_a_json_4xx_before_any_stream_and_is_audited(path, body, content_type, status, code):
    from local.request_path import stream_request

    response = stream_request(body, content_type=content_type)
    assert response.status == status and response.headers["Content-Type"] == "application/json"
    assert json.loads(b"".join(response.body))["error"] == code
    assert path.bedrock.calls == []  # no model was called, no circuit touched
    assert path.circuit(PRIMARY) is None
    assert path.audit_records()[-1]["status"] == status


def test_the_prompt_is_redacted_before_any_model_and_each_stream_is_audited(path):
    body = json.dumps({"use_case": "general", "prompt": "My card 4111 1111 1111 1111 was declined, why?"})
    _, _, events, _ = path.stream(body)
    assert "4111" not in text(events)  # the stand-in echoes what it was sent
    record = path.audit_records()[-1]
    assert record["route"] == "/v1/generate/stream" and record["stream_end"] == "done"
    assert record["tier"] == "primary" and record["first_token_ms"] >= 0 and record["output_tokens"] > 0
    assert sum(record["redactions"].values()) >= 1


def test_a_cut_stream_is_audited_as_error(path):
    path.bedrock.stream_fault(PRIMARY, "cut", after_words=1)
    path.stream(QUESTION)
    record = path.audit_records()[-1]
    assert record["stream_end"] == "error" and record["failure_class"] == "model" and record["tier"] == "primary"


def test_a_client_that_hangs_up_is_audited_as_disconnected(path):
    from local.request_path import stream_request

    response = stream_request(QUESTION)
    next(response.body)  # the meta event, then the client goes away
    response.body.close()
    assert path.audit_records()[-1]["stream_end"] == "disconnected"


def test_the_sentiment_use_case_streams_the_label_and_done_carries_it(path):
    body = json.dumps({"use_case": "sentiment", "prompt": "Profits beat forecasts and shares rallied"})
    _, _, events, _ = path.stream(body)
    done = events[-1].data
    assert events[-1].name == "done" and done["sentiment"]["label"] == "positive"


def test_a_budget_that_cannot_cover_the_stream_is_a_429_before_any_event(path, monkeypatch):
    from shared.budgets import BudgetPolicy
    from shared.strategy import load_default_strategy
    from shared.strategy.source import StaticStrategySource

    strategy = load_default_strategy()
    assert strategy.budgets is not None
    tight = BudgetPolicy.model_validate(
        {**strategy.budgets.model_dump(), "default": [{"period": "day", "unit": "tokens", "limit": 2_500}]}
    )
    monkeypatch.setattr(
        stream, "strategy_source", lambda: StaticStrategySource(strategy.model_copy(update={"budgets": tight}))
    )
    from local.request_path import stream_request

    response = stream_request(QUESTION)
    body = json.loads(b"".join(response.body))
    assert response.status == 429 and int(response.headers["Retry-After"]) > 0
    assert body["error"] == "budget_exhausted" and body["budget"]["remaining"] == 2_500
    assert path.bedrock.calls == []
    record = path.audit_records()[-1]
    assert (record["status"], record["failure_class"], record["client"]) == (429, "budget", "default")


def test_a_strategy_that_cannot_be_read_is_a_json_500_before_any_event(path, monkeypatch):
    class Broken:
        def get(self):
            raise RuntimeError("AppConfig unreachable")

    monkeypatch.setattr(stream, "strategy_source", Broken)
    from local.request_path import stream_request

    response = stream_request(QUESTION)
    assert response.status == 500 and json.loads(b"".join(response.body))["error"] == "internal_error"
    assert path.audit_records()[-1]["status"] == 500
