"""One breaker, two paths: the same scenario table through the sync route (the shipped ASL in
moto) and the stream route (shared.breaker), with identical circuit items after every step.

Both paths read the threshold and cooldown from the same strategy and stamp times from the same
clock, so every attribute (state, failure count, version, opened_at, probe_after) must match.
"""

from __future__ import annotations

import json
from typing import Any

import pytest

from local.request_path import RequestPath, local_request_path
from tests.statemachine.conftest import COOLDOWN, PRIMARY, THRESHOLD

# What the primary model does on a step, as the error code its call fails with (None: it answers).
OUTCOMES = {
    "ok": None,
    "model": "ModelErrorException",  # counted
    "throttled": "ThrottlingException",  # counted
    "request": "ValidationException",  # the request's fault: not counted, a probe is released
    "task": "UnreadableLabel",  # the task's: not counted, a probe is released
}

# (what the primary does, seconds the clock moves before the request)
SCENARIO: list[tuple[str, int]] = [
    ("ok", 0),
    ("model", 1),
    ("ok", 1),  # a success resets the count
    *[("model", 1)] * (THRESHOLD - 1),
    ("throttled", 1),  # the threshold-th counted failure opens the circuit
    ("ok", 1),  # open and cooling down: the primary is not called
    ("request", COOLDOWN),  # cooled down: this request is the probe; its own fault releases the slot
    ("task", 0),  # the slot was released at once: claimed again, released again
    ("model", 0),  # claimed again; a model failure reopens the circuit
    ("ok", 1),  # reopened and cooling down
    ("ok", COOLDOWN),  # cooled down: the probe succeeds and closes the circuit
    ("request", 1),
    ("task", 1),  # neither is counted on a closed circuit
    ("model", 1),
    ("ok", 1),
]


def circuit_item(path: RequestPath) -> dict[str, Any] | None:
    answer = path.dynamodb.get_item(TableName=path.table_name, Key={"model_id": {"S": PRIMARY}}, ConsistentRead=True)
    if "Item" not in answer:
        return None
    return {name: next(iter(value.values())) for name, value in answer["Item"].items()}


def run(route: str) -> list[tuple[str, dict[str, Any] | None]]:
    """The scenario through one route: (answering tier, circuit item) after each step."""
    seen = []
    with local_request_path() as path:
        for step, (outcome, advance) in enumerate(SCENARIO):
            path.advance(advance)
            path.bedrock.heal()
            if OUTCOMES[outcome] is not None:
                path.bedrock.fail(PRIMARY, OUTCOMES[outcome])
            body = json.dumps({"use_case": "general", "prompt": f"Step {step}: what is an ISA?", "user_id": "u-1"})
            if route == "sync":
                status, answer = path.api("POST", "/v1/generate", body)
                assert status == 200, answer
                tier = answer["tier"]
            else:
                status, _, events, _ = path.stream(body)
                assert status == 200
                assert events[-1].name == "done", events[-1]
                tier = events[-1].data["tier"]
            seen.append((tier, circuit_item(path)))
    return seen


@pytest.fixture(scope="module")
def sync_run() -> list[tuple[str, dict[str, Any] | None]]:
    return run("sync")


def test_the_scenario_exercises_every_transition(sync_run):
    states = [item["circuit_state"] if item else None for _, item in sync_run]
    assert "OPEN" in states and "CLOSED" in states
    tiers = [tier for tier, _ in sync_run]
    assert tiers.count("primary") >= 4 and tiers.count("fallback") >= 4
    # The probe that failed for the request's own reason gave its slot back: open again, with the
    # opened_at from before the claim and probe_after moved to now, so the next request probes.
    index = SCENARIO.index(("request", COOLDOWN))
    before, released = sync_run[index - 1][1], sync_run[index][1]
    assert before is not None and released is not None
    assert released["circuit_state"] == "OPEN" and released["opened_at"] == before["opened_at"]
    assert released["probe_after"] > before["probe_after"]


def test_stream_path_leaves_identical_circuits_after_every_step(sync_run):
    stream_run = run("stream")
    for step, ((sync_tier, sync_item), (stream_tier, stream_item)) in enumerate(zip(sync_run, stream_run, strict=True)):
        assert stream_item == sync_item, f"step {step} {SCENARIO[step]}: sync {sync_item} != stream {stream_item}"
        assert stream_tier == sync_tier, f"step {step} {SCENARIO[step]}: sync {sync_tier} != stream {stream_tier}"
