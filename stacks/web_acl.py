"""The regional web ACL in front of the API stage."""

from __future__ import annotations

from dataclasses import dataclass

from aws_cdk import ArnFormat, Stack
from aws_cdk import aws_kms as kms
from aws_cdk import aws_wafv2 as wafv2
from constructs import Construct

from cdk_app.config import UsagePlanSettings
from stacks.common import encrypted_log_group

WINDOW_SECONDS = 300
# WAF must never block a client the usage plan would admit: its limits have this much headroom
# over the most a usage plan lets through in one window (usage-plan throttling is best-effort).
HEADROOM = 2


@dataclass(frozen=True)
class WafLimits:
    per_api_key: int  # requests per window for one x-api-key value
    per_ip: int  # requests per window from one IP, whatever the key (clients may share an egress IP)


def waf_limits(plan: UsagePlanSettings, clients: int, window_seconds: int = WINDOW_SECONDS) -> WafLimits:
    """Rate limits sized from the usage plan: a client at its plan's steady rate plus a full burst
    stays under the per-key limit, and every client behind one egress IP stays under the per-IP one."""
    plan_max = plan.rate_limit * window_seconds + plan.burst_limit
    per_key = HEADROOM * plan_max
    return WafLimits(per_api_key=per_key, per_ip=per_key * max(clients, 1))


def _visibility(name: str) -> wafv2.CfnWebACL.VisibilityConfigProperty:
    return wafv2.CfnWebACL.VisibilityConfigProperty(
        cloud_watch_metrics_enabled=True, metric_name=name, sampled_requests_enabled=True
    )


def _managed(name: str, priority: int, overrides: list[str] | None = None) -> wafv2.CfnWebACL.RuleProperty:
    return wafv2.CfnWebACL.RuleProperty(
        name=name,
        priority=priority,
        override_action=wafv2.CfnWebACL.OverrideActionProperty(none={}),
        statement=wafv2.CfnWebACL.StatementProperty(
            managed_rule_group_statement=wafv2.CfnWebACL.ManagedRuleGroupStatementProperty(
                vendor_name="AWS",
                name=name,
                rule_action_overrides=[
                    wafv2.CfnWebACL.RuleActionOverrideProperty(
                        name=rule, action_to_use=wafv2.CfnWebACL.RuleActionProperty(count={})
                    )
                    for rule in overrides or []
                ]
                or None,
            )
        ),
        visibility_config=_visibility(name),
    )


def _rate_rule(name: str, priority: int, limit: int, *, api_key: bool) -> wafv2.CfnWebACL.RuleProperty:
    # Keyed on the x-api-key header, requests without one are not counted by this rule; they get
    # API Gateway's 403 anyway, and the per-IP rule still bounds them.
    statement = wafv2.CfnWebACL.RateBasedStatementProperty(
        limit=limit,
        evaluation_window_sec=WINDOW_SECONDS,
        aggregate_key_type="CUSTOM_KEYS" if api_key else "IP",
        custom_keys=[
            wafv2.CfnWebACL.RateBasedStatementCustomKeyProperty(
                header=wafv2.CfnWebACL.RateLimitHeaderProperty(
                    name="x-api-key",
                    text_transformations=[wafv2.CfnWebACL.TextTransformationProperty(priority=0, type="NONE")],
                )
            )
        ]
        if api_key
        else None,
    )
    return wafv2.CfnWebACL.RuleProperty(
        name=name,
        priority=priority,
        action=wafv2.CfnWebACL.RuleActionProperty(block={}),
        statement=wafv2.CfnWebACL.StatementProperty(rate_based_statement=statement),
        visibility_config=_visibility(name),
    )


class WebAcl(Construct):
    def __init__(
        self, scope: Construct, construct_id: str, *, key: kms.IKey, stage_arn: str, limits: WafLimits
    ) -> None:
        super().__init__(scope, construct_id)
        stack = Stack.of(self)
        self.acl = wafv2.CfnWebACL(
            self,
            "Acl",
            scope="REGIONAL",
            default_action=wafv2.CfnWebACL.DefaultActionProperty(allow={}),
            visibility_config=_visibility("finai-api"),
            rules=[
                # The common group's 8 KB body limit would block prompts the API accepts; the API
                # enforces its own limit with a 413, so that one rule only counts.
                _managed("AWSManagedRulesCommonRuleSet", 0, overrides=["SizeRestrictions_BODY"]),
                _managed("AWSManagedRulesKnownBadInputsRuleSet", 1),
                _rate_rule("RateLimitPerApiKey", 2, limits.per_api_key, api_key=True),
                _rate_rule("RateLimitPerIp", 3, limits.per_ip, api_key=False),
            ],
        )
        wafv2.CfnWebACLAssociation(self, "Association", resource_arn=stage_arn, web_acl_arn=self.acl.attr_arn)
        # WAF only delivers to log groups whose names start with aws-waf-logs-.
        self.log_group = encrypted_log_group(self, "Logs", key, name=f"aws-waf-logs-finai-{stack.region}")
        wafv2.CfnLoggingConfiguration(
            self,
            "Logging",
            resource_arn=self.acl.attr_arn,
            log_destination_configs=[
                stack.format_arn(
                    service="logs",
                    resource="log-group",
                    resource_name=self.log_group.log_group_name,
                    arn_format=ArnFormat.COLON_RESOURCE_NAME,
                )
            ],
            # API keys must never land in logs.
            redacted_fields=[wafv2.CfnLoggingConfiguration.FieldToMatchProperty(single_header={"Name": "x-api-key"})],
        )
