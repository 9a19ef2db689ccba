"""Route 53 failover for one region: certificate, custom domain, health checks, failover record.

Each regional stack owns its half (PRIMARY in the primary region, SECONDARY in the other), so the
two stacks never reference each other across regions. Health has three parts, combined in a
calculated health check that is healthy only when all are:

- an HTTPS check of this region's own execute-api endpoint (not the custom domain, which would
  follow the failover) on ``GET /v1/health``, every 10 s, unhealthy after 3 failures (about
  30 s; the default 30 s x 3 takes about 90 s). It matches ``"status":"ok"``, which the health
  body puts first, well inside the 5,120 bytes Route 53 searches;
- one CloudWatch-alarm check per single-metric alarm it is given (the API's 5XX rate), because
  Route 53 cannot watch composite or metric-math alarms. The model path's own health is the
  HTTPS check's: once the health route's probes close the circuits, the record turns healthy
  after three passing checks, with no alarm period to wait out.
"""

from __future__ import annotations

from collections.abc import Sequence

from aws_cdk import Stack
from aws_cdk import aws_apigateway as apigw
from aws_cdk import aws_certificatemanager as acm
from aws_cdk import aws_cloudwatch as cloudwatch
from aws_cdk import aws_route53 as route53
from aws_cdk import aws_route53_targets as targets
from constructs import Construct

from stacks.health_check import FAILURE_THRESHOLD, HEALTH_SEARCH_STRING, REQUEST_INTERVAL_SECONDS


def zone_name_for(domain_name: str) -> str:
    """The hosted zone's name when not given: the parent of a sub-domain (api.example.com)."""
    labels = domain_name.rstrip(".").split(".")
    return ".".join(labels[1:]) if len(labels) > 2 else ".".join(labels)


class DnsFailover(Construct):
    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        domain_name: str,
        hosted_zone_id: str,
        zone_name: str,
        failover: str,
        api: apigw.RestApi,
        stage: str,
        alarms: Sequence[tuple[str, cloudwatch.Alarm]],
    ) -> None:
        super().__init__(scope, construct_id)
        if failover not in ("PRIMARY", "SECONDARY"):
            raise ValueError("failover must be PRIMARY or SECONDARY")
        stack = Stack.of(self)
        zone = route53.HostedZone.from_hosted_zone_attributes(
            self, "Zone", hosted_zone_id=hosted_zone_id, zone_name=zone_name
        )
        self.certificate = acm.Certificate(
            self,
            "Certificate",
            domain_name=domain_name,
            validation=acm.CertificateValidation.from_dns(zone),
        )
        self.domain = apigw.DomainName(
            self,
            "Domain",
            domain_name=domain_name,
            certificate=self.certificate,
            endpoint_type=apigw.EndpointType.REGIONAL,
            security_policy=apigw.SecurityPolicy.TLS_1_2,
            mapping=api,
        )
        self.endpoint_check = route53.CfnHealthCheck(
            self,
            "EndpointHealth",
            health_check_config=route53.CfnHealthCheck.HealthCheckConfigProperty(
                type="HTTPS_STR_MATCH",
                fully_qualified_domain_name=f"{api.rest_api_id}.execute-api.{stack.region}.{stack.url_suffix}",
                resource_path=f"/{stage}/v1/health",
                port=443,
                search_string=HEALTH_SEARCH_STRING,
                request_interval=REQUEST_INTERVAL_SECONDS,
                failure_threshold=FAILURE_THRESHOLD,
                enable_sni=True,
                measure_latency=False,
            ),
            health_check_tags=[
                route53.CfnHealthCheck.HealthCheckTagProperty(key="Name", value=f"{stack.region} /v1/health")
            ],
        )
        self.alarm_checks = [
            route53.CfnHealthCheck(
                self,
                f"AlarmHealth{index}",
                health_check_config=route53.CfnHealthCheck.HealthCheckConfigProperty(
                    type="CLOUDWATCH_METRIC",
                    # The literal name: Route 53 needs it, and a Ref would give the same string.
                    alarm_identifier=route53.CfnHealthCheck.AlarmIdentifierProperty(name=name, region=stack.region),
                    insufficient_data_health_status="LastKnownStatus",
                ),
                health_check_tags=[
                    route53.CfnHealthCheck.HealthCheckTagProperty(key="Name", value=f"{stack.region} alarm {index}")
                ],
            )
            for index, (name, _alarm) in enumerate(alarms)
        ]
        for check, (_name, alarm) in zip(self.alarm_checks, alarms, strict=True):
            check.node.add_dependency(alarm)
        children = [self.endpoint_check, *self.alarm_checks]
        self.region_check = route53.CfnHealthCheck(
            self,
            "RegionHealth",
            health_check_config=route53.CfnHealthCheck.HealthCheckConfigProperty(
                type="CALCULATED",
                child_health_checks=[check.attr_health_check_id for check in children],
                health_threshold=len(children),
            ),
            health_check_tags=[
                route53.CfnHealthCheck.HealthCheckTagProperty(key="Name", value=f"{stack.region} region")
            ],
        )
        self.record = route53.ARecord(
            self,
            "Record",
            zone=zone,
            record_name=domain_name,
            target=route53.RecordTarget.from_alias(targets.ApiGatewayDomain(self.domain)),
        )
        record = self.record.node.default_child
        if not isinstance(record, route53.CfnRecordSet):
            raise TypeError("ARecord's default child is not a CfnRecordSet")
        record.add_property_override("Failover", failover)
        record.add_property_override("SetIdentifier", f"{stack.region}-{failover.lower()}")
        record.add_property_override("HealthCheckId", self.region_check.attr_health_check_id)
