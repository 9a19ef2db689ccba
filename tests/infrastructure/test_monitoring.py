"""Dashboards and alarms: snapshots of the no-alarm and all-alarm cases, and each alarm's
threshold and action asserted on the synthesized template."""

import json
import os
from pathlib import Path

import pytest

from tests.infrastructure.conftest import synthesize

SNAPSHOTS = Path(__file__).parent / "snapshots"
ALARM_TYPES = ("AWS::CloudWatch::Alarm", "AWS::CloudWatch::CompositeAlarm")


def monitoring_resources(template) -> dict:
    """Alarms, composite alarms and dashboards: what operators see. Function code hashes and
    other unrelated resources stay out, so the snapshot changes only when monitoring does."""
    resources = template.to_json()["Resources"]
    kept = {k: v for k, v in resources.items() if v["Type"].startswith("AWS::CloudWatch::")}
    return json.loads(json.dumps(kept, sort_keys=True))


def check_snapshot(name: str, actual: dict) -> None:
    path = SNAPSHOTS / f"{name}.json"
    if os.environ.get("UPDATE_SNAPSHOTS") == "1" or not path.exists():
        path.write_text(json.dumps(actual, indent=1, sort_keys=True) + "\n")
    assert actual == json.loads(path.read_text()), f"{name} changed: review, then UPDATE_SNAPSHOTS=1 pytest"


@pytest.fixture(scope="module")
def without_alarms(tmp_path_factory):
    return synthesize(tmp_path_factory.mktemp("no-alarms"), {"monitoring": {"alarms_enabled": False}})


def test_snapshot_no_alarms(without_alarms):
    template = without_alarms.regional("us-east-1")
    resources = monitoring_resources(template)
    # Only AppConfig's rollback alarm (a deployment guard, not an operator alarm) remains.
    alarms = [k for k, v in resources.items() if v["Type"] in ALARM_TYPES]
    assert alarms == [k for k in alarms if k.startswith("ModelConfig")]
    assert sum(v["Type"] == "AWS::CloudWatch::Dashboard" for v in resources.values()) >= 2
    check_snapshot("monitoring-no-alarms", resources)


def test_snapshot_all_alarms(synthesized):
    check_snapshot("monitoring-all-alarms", monitoring_resources(synthesized.regional("us-east-1")))


def alarms_by_name(template) -> dict:
    found = {}
    for logical_id, resource in template.find_resources("AWS::CloudWatch::Alarm").items():
        found[resource["Properties"].get("AlarmName", logical_id)] = resource["Properties"]
    for resource in template.find_resources("AWS::CloudWatch::CompositeAlarm").values():
        found[resource["Properties"]["AlarmName"]] = resource["Properties"]
    return found


def expected_thresholds(config) -> dict:
    m = config.monitoring
    expected = {
        "FinAi-Api-Latency-P99-Critical": m.latency_p99_ms,
        "FinAi-Api-5XX-Rate-FinAi-us-east-1": m.error_rate_5xx,
        "FinAi-Tiers-DegradedRate-Critical": m.degraded_rate,
        "FinAi-ModelPathUnhealthy-FinAi-us-east-1": 1,
    }
    for name in ("ApiFront", "Router", "Fallback", "Degradation", "Advisor", "Sentiment"):
        expected[f"FinAi-{name}-Throttled-Count-Critical"] = m.lambda_throttles - 1  # alarms above the threshold
    for model in config.bedrock_models.all_ids:
        slug = "".join(ch if ch.isalnum() else "-" for ch in model)
        expected[f"FinAi-Circuits-CircuitOpen-{slug}-Warning"] = 1
        expected[f"FinAi-FailureClasses-TaskFailures-{slug}-Warning"] = m.task_failures
    return expected


def test_each_alarm_has_its_configured_threshold(synthesized):
    alarms = alarms_by_name(synthesized.regional("us-east-1"))
    for name, threshold in expected_thresholds(synthesized.config).items():
        assert name in alarms, f"missing alarm {name}"
        assert alarms[name]["Threshold"] == threshold, name


def test_thresholds_follow_context(tmp_path):
    custom = synthesize(
        tmp_path, {"monitoring": {"latency_p99_ms": 5000, "error_rate_5xx": 0.02, "degraded_rate": 0.5}}
    )
    alarms = alarms_by_name(custom.regional("us-east-1"))
    assert alarms["FinAi-Api-Latency-P99-Critical"]["Threshold"] == 5000
    assert alarms["FinAi-Api-5XX-Rate-FinAi-us-east-1"]["Threshold"] == 0.02
    assert alarms["FinAi-Tiers-DegradedRate-Critical"]["Threshold"] == 0.5


@pytest.mark.parametrize("region", ["us-east-1", "us-west-2"])
def test_every_alarm_notifies_the_alarm_topic(synthesized, region):
    template = synthesized.regional(region)
    (topic,) = template.find_resources("AWS::SNS::Topic")
    alarms = alarms_by_name(template)
    assert len(alarms) >= 15
    for name, props in alarms.items():
        assert props.get("AlarmActions"), f"{name} has no action"
        if name.startswith("FinAi-"):
            assert {"Ref": topic} in props["AlarmActions"], name


def test_composite_alarm_combines_5xx_and_model_path(synthesized):
    template = synthesized.regional("us-east-1")
    (composite,) = template.find_resources("AWS::CloudWatch::CompositeAlarm").values()
    rule = json.dumps(composite["Properties"]["AlarmRule"])
    assert "FiveXXRate" in rule and "ModelPathUnhealthy" in rule and " OR " in rule


def test_dashboard_shows_every_view_operators_need(synthesized):
    template = synthesized.regional("us-east-1")
    body = json.dumps(
        [d["Properties"]["DashboardBody"] for d in template.find_resources("AWS::CloudWatch::Dashboard").values()]
    )
    for needle in (
        "Latency",
        "5XX",
        "Throttle",
        "ExecutionsFailed",
        "ExecutionsTimedOut",
        "Requests by tier",
        "Circuit open",
        "Estimated cost (USD)",
        "Invocations per variant",
        "InputTokens",
        "Duration",
    ):
        assert needle in body, needle


def test_training_dashboard_shows_the_pipeline(synthesized):
    template = synthesized.templates["FinAi-training"]
    body = json.dumps(
        [d["Properties"]["DashboardBody"] for d in template.find_resources("AWS::CloudWatch::Dashboard").values()]
    )
    assert "ExecutionsFailed" in body and "ExecutionsSucceeded" in body
