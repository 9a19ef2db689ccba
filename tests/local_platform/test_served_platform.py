"""The served platform: routes match the synthesized API, the API key is enforced before any
region runs, chaos phases are always answered with the tiers the breaker's rules give, a region
going down fails over after the template's detection window, and every request is audited."""

import json
import os
import time

import pytest
import requests

from tests.local_platform.conftest import KEY

PRIMARY = "us.anthropic.claude-haiku-4-5-20251001-v1:0"
PHASE_REQUESTS = int(os.environ.get("FINAI_CHAOS_REQUESTS", "16"))  # make chaos runs 200


def template_routes(template: dict) -> set[tuple[str, str]]:
    resources = {k: r for k, r in template["Resources"].items() if r["Type"] == "AWS::ApiGateway::Resource"}

    def path_of(ref) -> str:
        if not isinstance(ref, dict) or "Ref" not in ref:
            return ""  # the API's root resource
        resource = resources[ref["Ref"]]["Properties"]
        return f"{path_of(resource['ParentId'])}/{resource['PathPart']}"

    return {
        (r["Properties"]["HttpMethod"], path_of(r["Properties"]["ResourceId"]))
        for r in template["Resources"].values()
        if r["Type"] == "AWS::ApiGateway::Method" and r["Properties"]["HttpMethod"] != "OPTIONS"
    }


def test_routes_match_the_synthesized_api_gateway(served):
    local = {(r["method"], r["path"]) for r in requests.get(f"{served.url}/admin/routes", timeout=10).json()}
    assert (
        local
        == template_routes(served.template)
        == {
            ("POST", "/v1/generate"),
            ("POST", "/v1/generate/stream"),
            ("GET", "/v1/budget"),
            ("GET", "/v1/health"),
        }
    )
    assert requests.get(f"{served.url}/v1/unknown", timeout=10).status_code == 404


def test_missing_or_wrong_key_is_403_and_reaches_no_region(served):
    before = served.status()
    for key in (None, "wrong-key"):
        response = served.generate("What is an ISA?", key=key)
        assert response.status_code == 403
        assert response.json()["error"] == "forbidden"
    after = served.status()
    assert after["rejected_by_api_key"] == before["rejected_by_api_key"] + 2
    assert after["requests_by_region"] == before["requests_by_region"]
    assert served.audit_total() == sum(r["audit_records"] for r in before["regions"].values())
    assert requests.get(f"{served.url}/v1/health", timeout=10).status_code == 200  # open, as for Route 53


def test_region_down_fails_over_after_the_detection_window(served):
    served.reset()
    status = served.status()
    window = status["health_check"]["detection_window_s"]
    assert status["health_check"]["source"].endswith("(interval overridden to 1 s)")
    assert status["active_region"] == "us-east-1"
    served.admin("/admin/region/us-east-1/down")
    went_down = time.monotonic()
    while served.status()["active_region"] != "us-west-2":
        assert time.monotonic() - went_down < window + 5, "no failover"
        time.sleep(0.2)
    elapsed = time.monotonic() - went_down
    print(f"failover after {elapsed:.1f} s (window {window} s)")
    assert elapsed >= window - 1.5  # not before the health checks could have seen it
    response = served.generate("After failover: what is an ISA?")
    assert response.status_code == 200 and response.headers["x-finai-region"] == "us-west-2"
    served.admin("/admin/region/us-east-1/up")
    served.admin("/admin/heal")
    while served.status()["active_region"] != "us-east-1":  # fails back once its checks pass again
        assert time.monotonic() - went_down < 4 * window + 10, "no failback"
        time.sleep(0.2)


COOLDOWN_S = 30  # local/strategy.local.json
THRESHOLD_FOR_FAILBACK = 5


def run_phase(served, error_rate: float) -> dict:
    # Always the primary region: at full size an earlier phase may already have moved traffic away.
    served.admin("/admin/chaos", {"model": PRIMARY, "error_rate": error_rate, "latency_ms": 0, "region": "us-east-1"})
    calls_before = served.status()["regions"]["us-east-1"]["model_calls"].get(PRIMARY, 0)
    tiers: dict[str, int] = {}  # answers from the primary region, where the fault is
    statuses, regions = [], []
    for i in range(PHASE_REQUESTS):
        response = served.generate(f"Phase {error_rate} question {i}: how does compound interest work?")
        statuses.append(response.status_code)
        regions.append(response.headers.get("x-finai-region"))
        if regions[-1] == "us-east-1":
            tier = response.json().get("tier", "none")
            tiers[tier] = tiers.get(tier, 0) + 1
    state = served.status()["regions"]["us-east-1"]
    return {
        "statuses": statuses,
        "regions": regions,
        "tiers": tiers,
        "primary_calls": state["model_calls"].get(PRIMARY, 0) - calls_before,
        "circuit": state["circuits"].get(PRIMARY, {}),
    }


def test_chaos_phases_are_always_answered_with_the_tiers_the_rules_predict(served):
    served.reset()
    sent_before = served.audit_total()
    results = {rate: run_phase(served, rate) for rate in (0.0, 0.2, 0.5, 1.0)}
    for rate, result in results.items():
        assert all(s == 200 for s in result["statuses"]), f"{rate}: {result['statuses']}"  # zero 5xx
        assert set(result["tiers"]) <= {"primary", "fallback"}, result["tiers"]  # fallback is healthy
        # An answer is primary only when a primary call succeeded; every other answer is fallback.
        assert result["tiers"].get("primary", 0) <= result["primary_calls"]
    assert results[0.0]["tiers"] == {"primary": PHASE_REQUESTS}
    assert results[1.0]["tiers"].get("primary", 0) == 0
    assert results[1.0]["circuit"]["state"] == "OPEN"
    # Every circuit open makes health say "degraded": Route 53's rule then moves traffic to the
    # other region, which answers from its own (healthy) primary.
    moved = [r for r in results[1.0]["regions"] if r == "us-west-2"]
    window = served.status()["health_check"]["detection_window_s"]
    if window < PHASE_REQUESTS * 0.3:  # each request takes at least 0.3 s (the executor's polling)
        assert moved, "the model path was down in us-east-1 for longer than the window, yet no failover"
    # While open (cooldown 30 s), the primary is not called at all: fewer calls than requests.
    assert results[1.0]["primary_calls"] < PHASE_REQUESTS
    # Issue 7: one audit record per request, whatever its outcome.
    assert served.audit_total() - sent_before == 4 * PHASE_REQUESTS
    fail_back_without_traffic(served, window)


def fail_back_without_traffic(served, window: float) -> None:
    """Issue 14: after the provider heals, the health route's probes close the primary's circuit
    and DNS fails back within cooldown + three health-check intervals, with no user request sent
    to the primary region (its audit trail does not grow)."""
    status = served.status()
    if status["active_region"] != "us-west-2":
        # A short run may end before the window: make the primary's model path unhealthy for certain.
        served.admin("/admin/chaos", {"model": PRIMARY, "error_rate": 1, "latency_ms": 0, "region": "us-east-1"})
        for _ in range(THRESHOLD_FOR_FAILBACK):
            served.generate("Open the circuit: what is an ISA?")
        deadline = time.monotonic() + window + 10
        while served.status()["active_region"] != "us-west-2":
            assert time.monotonic() < deadline, "no failover"
            time.sleep(0.2)
    east = served.status()["regions"]["us-east-1"]
    audited_before = east["audit_records"]
    interval = window / 3  # the detection window is three health-check intervals
    served.admin("/admin/heal")
    healed = time.monotonic()
    while served.status()["active_region"] != "us-east-1":
        elapsed = time.monotonic() - healed
        assert elapsed < COOLDOWN_S + 3 * interval + 5, f"no failback after {elapsed:.1f} s"
        time.sleep(0.2)
    elapsed = time.monotonic() - healed
    print(
        f"failback {elapsed:.1f} s after the provider healed "
        f"(cooldown {COOLDOWN_S} s, 3 intervals {3 * interval:.0f} s)"
    )
    east = served.status()["regions"]["us-east-1"]
    assert east["circuits"][PRIMARY]["state"] == "CLOSED"
    assert east["audit_records"] == audited_before, "a user request reached the primary before failback"


@pytest.mark.parametrize(
    "body", [{"model": PRIMARY, "error_rate": 2}, {"error_rate": 0.1}, {"model": PRIMARY, "region": "mars-1"}]
)
def test_bad_chaos_requests_are_rejected(served, body):
    assert requests.post(f"{served.url}/admin/chaos", json=body, timeout=10).status_code == 400


def test_a_body_that_is_not_json_gets_415_in_the_error_shape(served):
    body = json.dumps({"prompt": "What is an ISA?", "use_case": "general"})
    headers = {"x-api-key": "local-demo-key", "Content-Type": "text/plain"}
    response = requests.post(f"{served.url}/v1/generate", data=body, headers=headers, timeout=30)
    assert response.status_code == 415
    assert set(response.json()) == {"error", "message", "request_id"}
    assert response.json()["error"] == "unsupported_media_type"


def test_the_advisor_streams_the_tokens_it_generates_and_they_are_the_sync_answer(served):
    """The strategy sends budgeting advice to the (tiny, really trained) advisor: the stream route
    gets its pieces through InvokeWithResponseStream as they are decoded, the grounding guard
    releases them a checked sentence at a time, and the answer is the sync route's: the same tier,
    the same text (greedy decoding), and, where the guard rejected the advisor, the same reason."""
    from api_stream.logic import parse_events

    served.reset()
    prompt = "Groceries 410, dining 260, transport 95. How can I save?"
    # A user the local strategy sends to the advisor Lambda (its 80% of budgeting advice).
    body = {"use_case": "budgeting_advice", "prompt": prompt, "user_id": "grace"}
    sync = served.generate(prompt, use_case="budgeting_advice", user_id="grace").json()
    response = requests.post(f"{served.url}/v1/generate/stream", json=body, headers={"x-api-key": KEY}, timeout=60)
    events = parse_events(response.text)
    assert events[0].name == "meta" and events[-1].name == "done", events
    done = events[-1].data
    assert done["tier"] == sync["tier"] and done["model_used"] == sync["model_used"], (done, sync)
    assert "".join(e.data["text"] for e in events if e.name == "delta") == sync["response"]
    if sync["tier"] == "primary":
        assert done["model_used"] != "rule-based-budgeting-baseline"
    else:  # the advisor's answer failed a check on both routes, for the same reason
        assert done["primary_failure"]["model"] == sync["primary_failure"]["model"] == "advisor-lora"
        assert done["primary_failure"]["code"] == sync["primary_failure"]["code"]
