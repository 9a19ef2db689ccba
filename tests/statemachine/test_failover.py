"""Failover between two emulated regions, following the synthesized health-check settings.

The primary is the real request path (front Lambda, ASL in moto, router, fallback, degradation);
when every model fails, its circuits open, health turns "degraded" and the string match fails.
The secondary is a healthy region. Requests must move to the secondary once the detection
window (RequestInterval x FailureThreshold, read from the template) has passed, not before.
"""

import json
import time

import pytest

from local.failover import EmulatedHealthCheck, FailoverFront, HealthCheckSettings, Region
from local.request_path import FakeContext, api_event, local_request_path

FAILOVER_TEMPLATE_OVERRIDES = {"domain_name": "api.bank.example", "hosted_zone_id": "Z0123456789ABCDEFGHIJ"}


@pytest.fixture(scope="module")
def settings(tmp_path_factory):
    from tests.infrastructure.conftest import synthesize

    synthesized = synthesize(tmp_path_factory.mktemp("failover"), FAILOVER_TEMPLATE_OVERRIDES)
    template = json.loads((synthesized.outdir / "FinAi-us-east-1.template.json").read_text())
    return HealthCheckSettings.from_template(template)


def raw_api(region, method, path, body=None):
    from api_front import handler as front

    result = front.lambda_handler(api_event(method, path, body), FakeContext("api_front", region))
    return int(result["statusCode"]), result["body"]


def test_settings_come_from_the_template(settings):
    assert (settings.request_interval, settings.failure_threshold) == (10, 3)
    assert settings.detection_window_s == 30
    assert settings.search_string == '"status":"ok"'


def test_requests_fail_over_after_the_detection_window_and_not_before(settings):
    served = []

    def secondary_serve(body):
        served.append(body)
        return 200, {"answer": "from the secondary", "tier": "primary", "region": "us-west-2"}

    secondary = Region("us-west-2", probe=lambda: (200, '{"status":"ok","region":"us-west-2"}'), serve=secondary_serve)

    def primary_serve(body):
        status, text = raw_api("us-east-1", "POST", "/v1/generate", json.dumps(body))
        return status, json.loads(text)

    with local_request_path("us-east-1") as path:
        primary = Region(
            "us-east-1",
            probe=lambda: raw_api("us-east-1", "GET", "/v1/health"),
            serve=primary_serve,
        )
        front = FailoverFront(settings, primary, secondary)
        front.advance(0)
        assert front.active().name == "us-east-1"
        request = {"use_case": "general", "prompt": "What is an ISA?"}
        assert front.request(request)[:2] == ("us-east-1", 200)

        # Every model fails: the breaker opens the primary's circuit after its threshold.
        for model in ("us.anthropic.claude-haiku-4-5-20251001-v1:0", "us.amazon.nova-micro-v1:0"):
            path.bedrock.fail(model)
        for _ in range(8):
            region, status, _answer = front.request(request)
            assert (region, status) == ("us-east-1", 200)  # still answered: fallback, then degraded
        status, body = raw_api("us-east-1", "GET", "/v1/health")
        assert status == 200 and '"status":"degraded"' in body
        turned_bad = front.now
        switched = None
        while front.now - turned_bad <= settings.detection_window_s + settings.request_interval:
            front.advance(1)
            if front.active().name == "us-west-2":
                switched = front.now
                break
        assert switched is not None, "never failed over"
        time_to_failover = switched - turned_bad
        print(f"time to failover: {time_to_failover:.0f} s (window {settings.detection_window_s} s)")
        assert settings.detection_window_s - settings.request_interval < time_to_failover <= settings.detection_window_s
        region, status, _ = front.request(request)
        assert (region, status) == ("us-west-2", 200) and served


def test_recovery_needs_the_same_number_of_passing_probes(settings):
    results = iter([False] * 3 + [True] * 3)
    check = EmulatedHealthCheck(settings, probe=lambda: (200, '{"status":"ok"}' if next(results) else "down"))
    for second in range(3):
        check.run(second * 10)
    assert not check.healthy
    check.run(30)
    check.run(40)
    assert not check.healthy
    check.run(50)
    assert check.healthy


def test_search_string_beyond_5120_bytes_does_not_count(settings):
    late = EmulatedHealthCheck(settings, probe=lambda: (200, " " * 5200 + '"status":"ok"'))
    assert not late.passes()
    error = EmulatedHealthCheck(settings, probe=lambda: (503, '{"status":"ok"}'))
    assert not error.passes()


def test_dns_fails_back_without_traffic_within_cooldown_and_three_intervals(settings):
    """Issue 14: a region that lost its traffic recovers on its own. Route 53 keeps calling health
    (from many checkers: here once a second, besides the emulated checker's own 10-s schedule);
    health starts a probe once the circuit has cooled down; the probe closes the circuit; three
    passing checks later DNS sends traffic back. No user request reaches the primary meanwhile."""
    from tests.statemachine.conftest import COOLDOWN

    secondary = Region(
        "us-west-2", probe=lambda: (200, '{"status":"ok"}'), serve=lambda body: (200, {"region": "us-west-2"})
    )
    with local_request_path("us-east-1") as path:

        def primary_probe():
            status, body = raw_api("us-east-1", "GET", "/v1/health")
            if json.loads(body).get("probes_started"):
                # Wait for the probe executions themselves, not for a circuit state: a probe that
                # has not claimed yet leaves the circuit OPEN, and would finish after we looked.
                deadline = time.monotonic() + 30
                while path.sfn.list_executions(stateMachineArn=path.state_machine_arn, statusFilter="RUNNING")[
                    "executions"
                ]:
                    assert time.monotonic() < deadline, "probe never finished"
                    time.sleep(0.02)
            return status, body

        def primary_serve(body):
            status, text = raw_api("us-east-1", "POST", "/v1/generate", json.dumps(body))
            return status, json.loads(text)

        primary = Region("us-east-1", probe=primary_probe, serve=primary_serve)
        front = FailoverFront(settings, primary, secondary)
        front.advance(0)

        def tick():
            front.advance(1)
            path.advance(1)
            primary_probe()  # the other checkers

        for model in ("us.anthropic.claude-haiku-4-5-20251001-v1:0", "us.amazon.nova-micro-v1:0"):
            path.bedrock.fail(model)
        for _ in range(6):
            front.request({"use_case": "general", "prompt": "What is an ISA?"})
        while front.active().name != "us-west-2":
            tick()
            assert front.now < 120, "never failed over"
        audited = len(path.audit_records())
        path.bedrock.heal()
        healed = front.now
        while front.active().name != "us-east-1":
            assert front.request({"use_case": "general", "prompt": "Where am I served?"})[0] == "us-west-2"
            tick()
            # Cooldown plus three intervals, plus the second in which the first health call after
            # the cooldown starts the probe (Route 53's checkers call about once a second in all).
            assert front.now - healed <= COOLDOWN + 3 * settings.request_interval + 1, "no failback in time"
        print(f"failback {front.now - healed:.0f} s after the provider healed")
        assert len(path.audit_records()) == audited, "a user request reached the primary before failback"
        circuits = {m: path.circuit(m) for m in set(path.bedrock.calls)}
        assert path.circuit("us.anthropic.claude-haiku-4-5-20251001-v1:0")["state"] == "CLOSED", circuits
