"""DNS failover with a domain in context: per-region certificate, custom domain, health checks
and the PRIMARY/SECONDARY alias records."""

import json

import pytest

from stacks.dns_failover import FAILURE_THRESHOLD, HEALTH_SEARCH_STRING, REQUEST_INTERVAL_SECONDS, zone_name_for
from tests.infrastructure.conftest import DNS_CONTEXT as DOMAIN


@pytest.fixture
def with_domain(synthesized_dns):
    return synthesized_dns


def health_checks(template, kind):
    return [
        r["Properties"]["HealthCheckConfig"]
        for r in template.find_resources("AWS::Route53::HealthCheck").values()
        if r["Properties"]["HealthCheckConfig"]["Type"] == kind
    ]


@pytest.mark.parametrize(("region", "role"), [("us-east-1", "PRIMARY"), ("us-west-2", "SECONDARY")])
def test_each_region_has_its_failover_record_behind_a_calculated_health_check(with_domain, region, role):
    template = with_domain.regional(region)
    (record,) = template.find_resources("AWS::Route53::RecordSet").values()
    props = record["Properties"]
    assert props["Failover"] == role
    assert props["Name"] == "api.bank.example."
    assert props["HostedZoneId"] == DOMAIN["hosted_zone_id"]
    assert "HealthCheckId" in props and "AliasTarget" in props
    (calculated,) = health_checks(template, "CALCULATED")
    assert calculated["HealthThreshold"] == len(calculated["ChildHealthChecks"]) == 2
    template.has_resource_properties(
        "AWS::CertificateManager::Certificate", {"DomainName": "api.bank.example", "ValidationMethod": "DNS"}
    )
    template.has_resource_properties(
        "AWS::ApiGateway::DomainName",
        {
            "DomainName": "api.bank.example",
            "EndpointConfiguration": {"Types": ["REGIONAL"]},
            "SecurityPolicy": "TLS_1_2",
        },
    )


def test_endpoint_check_polls_the_regions_own_health_route_fast(with_domain):
    template = with_domain.regional("us-west-2")
    (https,) = health_checks(template, "HTTPS_STR_MATCH")
    assert (
        (https["RequestInterval"], https["FailureThreshold"])
        == (10, 3)
        == (REQUEST_INTERVAL_SECONDS, FAILURE_THRESHOLD)
    )
    assert https["ResourcePath"] == "/prod/v1/health"
    assert https["SearchString"] == HEALTH_SEARCH_STRING
    assert "execute-api.us-west-2" in json.dumps(https["FullyQualifiedDomainName"])  # not the failover name


def test_alarm_checks_watch_single_metric_alarms_in_their_region(with_domain):
    template = with_domain.regional("us-east-1")
    alarm_checks = health_checks(template, "CLOUDWATCH_METRIC")
    names = sorted(c["AlarmIdentifier"]["Name"] for c in alarm_checks)
    # The model path is judged by the HTTPS check (10-s resolution, so failback is not held back by
    # a once-a-minute alarm); the 5XX rate by its alarm.
    assert names == ["FinAi-Api-5XX-Rate-FinAi-us-east-1"]
    assert {c["AlarmIdentifier"]["Region"] for c in alarm_checks} == {"us-east-1"}
    alarms = {
        r["Properties"]["AlarmName"]: r["Properties"]
        for r in template.find_resources("AWS::CloudWatch::Alarm").values()
        if "AlarmName" in r["Properties"]
    }
    for name in names:  # Route 53 accepts only plain metric alarms with a basic statistic
        assert "Metrics" not in alarms[name] and alarms[name]["Statistic"] in ("Average", "Minimum", "Maximum", "Sum")


def test_zone_name_defaults_to_the_parent_domain():
    assert zone_name_for("api.bank.example") == "bank.example"
    assert zone_name_for("bank.example") == "bank.example"


def test_dns_failover_without_alarms_is_refused():
    from cdk_app.config import load_config
    from tests.infrastructure.conftest import cdk_json_context

    with pytest.raises(ValueError, match=r"needs monitoring\.alarms_enabled"):
        load_config({**cdk_json_context(), **DOMAIN, "monitoring": {"alarms_enabled": False}})
