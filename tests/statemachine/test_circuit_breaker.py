"""Scenarios of the circuit breaker, each one a real execution of statemachines/circuit_breaker.asl.json."""

import threading

from local.request_path import RequestPath
from router.dal import StaticStrategySource
from tests.statemachine.conftest import COOLDOWN, FALLBACK, PRIMARY, THRESHOLD, ask


def hold_first_call(path: RequestPath, model_id: str) -> tuple[threading.Event, threading.Event]:
    """Hold the first call to ``model_id`` inside the model until released: a fixed interleaving."""
    started, release = threading.Event(), threading.Event()

    def hold(called: str) -> None:
        if called == model_id and not started.is_set():
            started.set()
            release.wait(10)

    path.bedrock.before_call = hold
    return started, release


def open_circuit(path: RequestPath) -> None:
    path.bedrock.fail(PRIMARY)
    for _ in range(THRESHOLD):
        assert ask(path)["tier"] == "fallback"


def test_happy_path_answers_from_primary_and_writes_nothing(path):
    answer = ask(path)
    assert answer["tier"] == "primary"
    assert answer["model_used"] == PRIMARY
    assert answer["attempt"] == 1
    assert answer["use_case"] == "general"
    assert answer["request_id"].startswith("req-")
    assert path.circuit(PRIMARY) is None, "the happy path reads the circuit and writes nothing"


def test_default_threshold_and_cooldown_come_from_the_strategy():
    assert (THRESHOLD, COOLDOWN) == (5, 30)


def test_failures_below_threshold_keep_the_circuit_closed_and_success_resets_them(path):
    path.bedrock.fail(PRIMARY)
    for expected in range(1, THRESHOLD):
        answer = ask(path)
        assert answer["tier"] == "fallback"
        assert answer["model_used"] == FALLBACK
        assert answer["attempt"] == 2
        assert path.circuit(PRIMARY)["failures"] == expected
        assert path.circuit(PRIMARY)["state"] == "CLOSED"
    path.bedrock.heal()
    assert ask(path)["tier"] == "primary"
    assert path.circuit(PRIMARY)["failures"] == 0


def test_five_consecutive_failures_open_the_circuit(path):
    open_circuit(path)
    circuit = path.circuit(PRIMARY)
    assert circuit["state"] == "OPEN"
    assert circuit["failures"] == THRESHOLD
    assert circuit["opened_at"] == "2026-01-01T00:00:00Z"


def test_open_circuit_skips_the_primary_and_the_fallback_answers(path):
    open_circuit(path)
    path.bedrock.heal()  # even a healthy primary is not called while the circuit is open
    calls_before = path.bedrock.calls_to(PRIMARY)
    path.advance(COOLDOWN - 1)
    for _ in range(3):
        answer = ask(path)
        assert answer["tier"] == "fallback"
        assert answer["model_used"] == FALLBACK
    assert path.bedrock.calls_to(PRIMARY) == calls_before
    assert path.circuit(PRIMARY)["state"] == "OPEN"


def test_after_cooldown_a_successful_probe_closes_the_circuit(path):
    open_circuit(path)
    path.bedrock.heal()
    path.advance(COOLDOWN)
    calls_before = path.bedrock.calls_to(PRIMARY)
    answer = ask(path)
    assert answer["tier"] == "primary"
    assert path.bedrock.calls_to(PRIMARY) == calls_before + 1
    circuit = path.circuit(PRIMARY)
    assert circuit["state"] == "CLOSED"
    assert circuit["failures"] == 0
    assert ask(path)["tier"] == "primary"


def test_after_cooldown_a_failed_probe_reopens_the_circuit(path):
    open_circuit(path)
    path.advance(COOLDOWN + 5)
    calls_before = path.bedrock.calls_to(PRIMARY)
    assert ask(path)["tier"] == "fallback"
    assert path.bedrock.calls_to(PRIMARY) == calls_before + 1
    circuit = path.circuit(PRIMARY)
    assert circuit["state"] == "OPEN"
    assert circuit["opened_at"] == "2026-01-01T00:00:35Z", "a failed probe restarts the cooldown"
    path.bedrock.heal()
    path.advance(COOLDOWN - 1)
    assert ask(path)["tier"] == "fallback"
    assert path.bedrock.calls_to(PRIMARY) == calls_before + 1


def test_half_open_lets_exactly_one_probe_through(path):
    """Fixed interleaving: the probe is held inside its model call while a second request arrives."""
    open_circuit(path)
    path.bedrock.heal()
    path.advance(COOLDOWN)
    probe_started, release = hold_first_call(path, PRIMARY)
    answers: list[dict] = []
    probe = threading.Thread(target=lambda: answers.append(ask(path, prompt="probe")))
    probe.start()
    assert probe_started.wait(10)
    assert path.circuit(PRIMARY)["state"] == "HALF_OPEN"
    second = ask(path, prompt="second")
    assert second["tier"] == "fallback", "only the probe may reach the primary while half-open"
    assert path.bedrock.calls_to(PRIMARY) == THRESHOLD + 1
    release.set()
    probe.join(10)
    assert answers[0]["tier"] == "primary"
    assert path.circuit(PRIMARY)["state"] == "CLOSED"


def test_a_probe_that_never_reported_back_is_retried_after_another_cooldown(path):
    open_circuit(path)
    key = {"model_id": {"S": PRIMARY}}
    path.dynamodb.update_item(  # a probe claimed the circuit, then its execution died
        TableName=path.table_name,
        Key=key,
        UpdateExpression="SET circuit_state = :h, opened_at = :t ADD version :one",
        ExpressionAttributeValues={":h": {"S": "HALF_OPEN"}, ":t": {"S": "2026-01-01T00:00:10Z"}, ":one": {"N": "1"}},
    )
    path.bedrock.heal()
    path.advance(COOLDOWN)
    assert ask(path)["tier"] == "fallback", "the stuck probe's cooldown has not passed yet"
    path.advance(10)
    assert ask(path)["tier"] == "primary"
    assert path.circuit(PRIMARY)["state"] == "CLOSED"


def test_a_failure_recorded_after_the_circuit_opened_is_not_lost_or_double_opened(path):
    """Fixed interleaving: A holds in its primary call while B's failures open the circuit."""
    path.bedrock.fail(PRIMARY)
    for _ in range(THRESHOLD - 1):
        ask(path)
    held, release = hold_first_call(path, PRIMARY)
    results: list[dict] = []
    first = threading.Thread(target=lambda: results.append(ask(path, prompt="A")))
    first.start()
    assert held.wait(10)
    path.bedrock.before_call = None
    assert ask(path, prompt="B")["tier"] == "fallback"
    opened = path.circuit(PRIMARY)
    assert opened["state"] == "OPEN"
    assert opened["failures"] == THRESHOLD
    release.set()
    first.join(10)
    assert results[0]["tier"] == "fallback"
    after = path.circuit(PRIMARY)
    # A's failure is not counted against an already-open circuit, and nothing reopened it.
    assert after == opened


def test_fallback_failure_produces_a_degraded_answer_with_disclaimers(path):
    path.bedrock.fail(PRIMARY)
    path.bedrock.fail(FALLBACK)
    answer = ask(path, use_case="general")
    assert answer["tier"] == "degraded"
    assert answer["attempt"] == 3
    assert answer["model_used"] == "static-degraded-response"
    assert "not financial, investment, tax or legal advice" in answer["response"]


def test_product_questions_degrade_with_fdic_and_equal_housing_notices(path):
    path.bedrock.fail("us.anthropic.claude-haiku-4-5-20251001-v1:0")
    path.bedrock.fail("us.amazon.nova-2-lite-v1:0")
    path.bedrock.fail(FALLBACK)
    answer = ask(path, use_case="product_question")
    assert answer["tier"] == "degraded"
    assert "FDIC" in answer["response"]
    assert "Equal Housing Lender" in answer["response"]


def test_even_a_failing_degradation_function_leaves_an_answer(path):
    def broken(event, context):
        raise RuntimeError("degradation function crashed")

    path.lambdas.register("degradation", broken)
    path.bedrock.fail(PRIMARY)
    path.bedrock.fail(FALLBACK)
    answer = ask(path)
    assert answer["tier"] == "degraded"
    assert answer["model_used"] == "static-degraded-response"
    assert "not financial advice" in answer["response"]


def test_router_failure_during_selection_falls_back(path, monkeypatch):
    from router import handler as router

    class Broken:
        def get(self):
            raise RuntimeError("strategy unavailable")

    monkeypatch.setattr(router, "_strategy_source", Broken)
    answer = ask(path)
    assert answer["tier"] == "fallback"


def test_threshold_comes_from_appconfig_strategy(path, monkeypatch):
    from router import handler as router
    from shared.strategy import load_default_strategy

    strategy = load_default_strategy()
    stricter = strategy.model_copy(update={"breaker": strategy.breaker.model_copy(update={"failure_threshold": 2})})
    monkeypatch.setattr(router, "_strategy_source", lambda: StaticStrategySource(stricter))
    path.bedrock.fail(PRIMARY)
    ask(path)
    assert path.circuit(PRIMARY)["state"] == "CLOSED"
    ask(path)
    assert path.circuit(PRIMARY)["state"] == "OPEN"


def test_every_request_gets_an_answer_under_random_faults(path):
    path.bedrock.seed = 7
    path.bedrock.__post_init__()
    path.bedrock.fail(PRIMARY, rate=0.5)
    path.bedrock.fail(FALLBACK, rate=0.3)
    tiers = []
    for i in range(24):
        tiers.append(ask(path, prompt=f"question {i}")["tier"])
        path.advance(3)
    assert set(tiers) <= {"primary", "fallback", "degraded"}
    assert len(tiers) == 24
    assert {"primary", "fallback"} <= set(tiers)
