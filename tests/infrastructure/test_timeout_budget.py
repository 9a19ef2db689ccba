"""Every request ends in an answer inside API Gateway's integration timeout, computed from the templates.

The worst case is the longest path through the circuit breaker's ASL, each Task costing its
attempts times its TimeoutSeconds plus the retry backoff between them, with the front's own
bounded calls around it. Raising any Lambda timeout, task timeout, retry or the execution's
TimeoutSeconds past what fits makes this fail (the canary below proves it does).
"""

from __future__ import annotations

import copy
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from api_front.audit import AUDIT_CLIENT_CONFIG
from api_front.dal import CONNECT_TIMEOUT_S, worst_call_s
from api_front.handler import BUDGET_CLIENT_CONFIG
from shared.budgets import RESERVE_ATTEMPTS, SETTLE_ATTEMPTS
from tests.infrastructure.cfn import marker_target, state_machine_definition

REGIONS = ("us-east-1", "us-west-2")
# Measured Python 3.13 cold starts of the front (Powertools, pydantic, boto3) are about 1 s;
# API Gateway's 29 s include it, the function's own timeout does not.
FRONT_COLD_START_S = 2.0
# Redaction, validation and serialising the answer (linear in the bounded body).
FRONT_OWN_WORK_S = 0.5
# What must stay free below API Gateway's limit, for network and clock differences.
MARGIN_S = 1.0


@dataclass(frozen=True)
class Budget:
    worst_path_s: float
    worst_path: tuple[str, ...]
    execution_timeout_s: float
    execution_read_timeout_s: float
    front_work_s: float
    front_timeout_s: float
    integration_timeout_s: float


def task_cost(state: dict[str, Any], function_timeouts: dict[str, int]) -> float:
    """Attempts times the task's bound, plus the backoff between attempts (full jitter never exceeds it)."""
    if "TimeoutSeconds" not in state:
        raise AssertionError(f"task {state.get('Resource')} has no TimeoutSeconds: its time is unbounded")
    bound = float(state["TimeoutSeconds"])
    function = marker_target(str(state.get("Parameters", {}).get("FunctionName", "")))
    if function is not None and function in function_timeouts:
        bound = min(bound, float(function_timeouts[function]))
    cost = bound
    for retrier in state.get("Retry", []):
        attempts = int(retrier.get("MaxAttempts", 3))
        interval = float(retrier.get("IntervalSeconds", 1))
        rate = float(retrier.get("BackoffRate", 2.0))
        cap = float(retrier.get("MaxDelaySeconds", 1e9))
        cost += attempts * bound + sum(min(interval * rate**i, cap) for i in range(attempts))
    return cost


def successors(state: dict[str, Any]) -> list[str]:
    found = [state["Next"]] if "Next" in state else []
    found += [choice["Next"] for choice in state.get("Choices", [])]
    found += [state["Default"]] if "Default" in state else []
    found += [catch["Next"] for catch in state.get("Catch", [])]
    return found


def worst_path(asl: dict[str, Any], function_timeouts: dict[str, int]) -> tuple[float, tuple[str, ...]]:
    states = asl["States"]
    memo: dict[str, tuple[float, tuple[str, ...]]] = {}

    def longest(name: str, visiting: frozenset[str]) -> tuple[float, tuple[str, ...]]:
        if name in visiting:
            raise AssertionError(f"the state machine loops through {name}: its time is unbounded")
        if name in memo:
            return memo[name]
        state = states[name]
        own = task_cost(state, function_timeouts) if state["Type"] == "Task" else 0.0
        tails = [longest(n, visiting | {name}) for n in successors(state)] or [(0.0, ())]
        best = max(tails, key=lambda t: t[0])
        memo[name] = (own + best[0], (name, *best[1]))
        return memo[name]

    return longest(asl["StartAt"], frozenset())


def budget(template: dict[str, Any], region: str, outdir: Path) -> Budget:
    resources = template["Resources"]
    functions = {k: v for k, v in resources.items() if v["Type"] == "AWS::Lambda::Function"}
    timeouts = {k: int(v["Properties"].get("Timeout", 3)) for k, v in functions.items()}
    asl = state_machine_definition(template, region, "InvokePrimary", outdir)
    worst_s, path = worst_path(asl, timeouts)
    front_id = next(k for k, v in functions.items() if v["Properties"].get("Handler", "").startswith("api_front."))
    front = functions[front_id]["Properties"]
    read_timeout = float(front["Environment"]["Variables"]["EXECUTION_READ_TIMEOUT_S"])
    # Around the execution: the budget reserve (retried on a transaction conflict), its settle, and
    # the audit send, each at its client's worst.
    budget_calls = RESERVE_ATTEMPTS + SETTLE_ATTEMPTS  # a settle's second call is a retry or the late ADD
    calls_s = budget_calls * worst_call_s(BUDGET_CLIENT_CONFIG) + worst_call_s(AUDIT_CLIENT_CONFIG)
    methods = [v["Properties"] for v in resources.values() if v["Type"] == "AWS::ApiGateway::Method"]
    # The buffered routes (the stream route has its own budget, below).
    integration = {
        m["Integration"].get("TimeoutInMillis", 29_000)
        for m in methods
        if m["HttpMethod"] == "POST" and m["Integration"].get("ResponseTransferMode") != "STREAM"
    }
    assert len(integration) == 1
    return Budget(
        worst_path_s=worst_s,
        worst_path=path,
        execution_timeout_s=float(asl["TimeoutSeconds"]),
        execution_read_timeout_s=read_timeout,
        front_work_s=CONNECT_TIMEOUT_S + read_timeout + calls_s + FRONT_OWN_WORK_S,
        front_timeout_s=float(front["Timeout"]),
        integration_timeout_s=integration.pop() / 1000,
    )


def check(b: Budget) -> None:
    assert b.worst_path_s <= b.execution_timeout_s, (
        f"the slowest way to an answer takes {b.worst_path_s:.0f} s ({' > '.join(b.worst_path)}), "
        f"more than the execution's TimeoutSeconds {b.execution_timeout_s:.0f}"
    )
    assert b.execution_timeout_s < b.execution_read_timeout_s, "the front must see TIMED_OUT, not its own read timeout"
    assert b.front_work_s <= b.front_timeout_s, f"the front's bounded work ({b.front_work_s} s) exceeds its timeout"
    total = FRONT_COLD_START_S + b.front_work_s + MARGIN_S
    assert total <= b.integration_timeout_s, (
        f"cold start + front ({FRONT_COLD_START_S + b.front_work_s:.1f} s) + margin does not fit "
        f"API Gateway's {b.integration_timeout_s:.0f} s"
    )
    assert b.front_timeout_s + FRONT_COLD_START_S <= b.integration_timeout_s


def template_of(synthesized: Any, region: str) -> dict[str, Any]:
    return dict(synthesized.regional(region).to_json())


@pytest.mark.parametrize("region", REGIONS)
def test_the_slowest_failure_still_ends_in_an_answer_inside_api_gateways_limit(synthesized, region):
    b = budget(template_of(synthesized, region), region, synthesized.outdir)
    check(b)
    # The worst case is the failure chain that ends in the static answer.
    assert b.worst_path[-1] in ("DegradedAnswer", "StaticAnswer"), b.worst_path
    assert b.integration_timeout_s == 29


@pytest.mark.parametrize(
    ("what", "change"),
    [
        ("router timeout", lambda t, ids: _set_timeout(t, ids["router"], 15)),
        ("fallback timeout", lambda t, ids: _set_timeout(t, ids["fallback"], 8)),
        (
            "a retry on the primary",
            lambda t, ids: _edit_asl(t, "InvokePrimary", Retry=[{"ErrorEquals": ["States.ALL"]}]),
        ),
        ("a task without a timeout", lambda t, ids: _edit_asl(t, "InvokeFallback", TimeoutSeconds=None)),
        ("the execution timeout", lambda t, ids: _edit_asl(t, None, TimeoutSeconds=120)),
        ("the front's wait", lambda t, ids: _set_env(t, ids["api_front"], "EXECUTION_READ_TIMEOUT_S", "28")),
    ],
)
def test_raising_any_timeout_breaks_the_budget(synthesized, what, change):
    """The canary: the check above is not vacuous. Defect 5 was a 29 s front before 15 + 8 + 3 s tiers."""
    template = copy.deepcopy(template_of(synthesized, "us-east-1"))
    OUTDIR[:] = [synthesized.outdir]
    change(template, _function_ids(template))
    with pytest.raises(AssertionError):
        check(budget(template, "us-east-1", synthesized.outdir))


def _function_ids(template: dict[str, Any]) -> dict[str, str]:
    return {
        v["Properties"]["Handler"].split(".", 1)[0]: k
        for k, v in template["Resources"].items()
        if v["Type"] == "AWS::Lambda::Function" and "Handler" in v["Properties"]
    }


def _set_timeout(template: dict[str, Any], function_id: str, seconds: int) -> None:
    template["Resources"][function_id]["Properties"]["Timeout"] = seconds
    # Keep the ASL's task bound in step, as anyone raising the timeout would.
    for name in ("InvokePrimary", "InvokeProbe", "InvokeFallback"):
        _edit_asl(template, name, TimeoutSeconds=seconds, only_if_function=function_id)


def _set_env(template: dict[str, Any], function_id: str, name: str, value: str) -> None:
    template["Resources"][function_id]["Properties"]["Environment"]["Variables"][name] = value


def _edit_asl(template: dict[str, Any], state: str | None, only_if_function: str | None = None, **fields: Any) -> None:
    for resource in template["Resources"].values():
        if resource["Type"] != "AWS::StepFunctions::StateMachine":
            continue
        try:
            asl = state_machine_definition({"Resources": {"M": resource}}, "us-east-1", "InvokePrimary", OUTDIR[0])
        except AssertionError:
            continue
        target = asl if state is None else asl["States"][state]
        if only_if_function and marker_target(target.get("Parameters", {}).get("FunctionName", "")) != only_if_function:
            return
        for key, value in fields.items():
            if value is None:
                target.pop(key, None)
            else:
                target[key] = value
        # Store the edited ASL inline, as a definition string.
        resource["Properties"] = {k: v for k, v in resource["Properties"].items() if not k.startswith("Definition")}
        resource["Properties"]["DefinitionString"] = json.dumps(asl)


OUTDIR: list[Path] = []


def stream_budget(template: dict[str, Any]) -> tuple[float, float, float]:
    """(what the stream function may need, its timeout, its integration's timeout), in seconds.

    Before the stream's own bound (STREAM_MAX_S): the reserve (RESERVE_ATTEMPTS bounded calls), the
    circuit read and probe claim. After it: the circuit writes of the outcome (at most two), the
    settle (SETTLE_ATTEMPTS) and the audit send. Plus a cold start of the adapter and server.
    """
    from api_front.audit import AUDIT_CLIENT_CONFIG
    from api_front.dal import worst_call_s
    from api_stream.handler import CIRCUIT_CONFIG, STORE_CONFIG
    from shared.budgets import RESERVE_ATTEMPTS, SETTLE_ATTEMPTS

    resources = template["Resources"]
    function = next(
        v
        for v in resources.values()
        if v["Type"] == "AWS::Lambda::Function" and v["Properties"].get("Handler") == "api_stream/run.sh"
    )
    env = function["Properties"]["Environment"]["Variables"]
    method = next(
        v["Properties"]
        for v in resources.values()
        if v["Type"] == "AWS::ApiGateway::Method"
        and v["Properties"]["Integration"].get("ResponseTransferMode") == "STREAM"
    )
    store, circuit = worst_call_s(STORE_CONFIG), worst_call_s(CIRCUIT_CONFIG)
    work = (
        FRONT_COLD_START_S
        + RESERVE_ATTEMPTS * store
        + 2 * circuit
        + float(env["STREAM_MAX_S"])
        + 2 * circuit
        + SETTLE_ATTEMPTS * store
        + worst_call_s(AUDIT_CLIENT_CONFIG)
    )
    return work, float(function["Properties"]["Timeout"]), method["Integration"]["TimeoutInMillis"] / 1000


@pytest.mark.parametrize("region", REGIONS)
def test_the_stream_function_outlives_its_longest_stream_and_the_integration_outlives_the_function(synthesized, region):
    template = template_of(synthesized, region)
    work, function_timeout, integration_timeout = stream_budget(template)
    assert work <= function_timeout, f"the stream may need {work:.1f} s; the function has {function_timeout:.0f} s"
    assert function_timeout <= integration_timeout <= 900  # API Gateway streams for 15 minutes at most
    env = next(
        v["Properties"]["Environment"]["Variables"]
        for v in template["Resources"].values()
        if v["Type"] == "AWS::Lambda::Function" and v["Properties"].get("Handler") == "api_stream/run.sh"
    )
    # Both models' first-token waits fit in the stream's bound, so the static answer always can.
    assert 2 * float(env["STREAM_FIRST_TOKEN_TIMEOUT_S"]) < float(env["STREAM_MAX_S"])


def test_a_longer_stream_bound_without_a_longer_function_breaks_the_stream_budget(synthesized):
    template = copy.deepcopy(template_of(synthesized, "us-east-1"))
    for resource in template["Resources"].values():
        if resource["Type"] == "AWS::Lambda::Function" and resource["Properties"].get("Handler") == "api_stream/run.sh":
            resource["Properties"]["Environment"]["Variables"]["STREAM_MAX_S"] = "120"
    work, function_timeout, _ = stream_budget(template)
    assert work > function_timeout
