"""Operator dashboards and alarms for one region, built with cdk-monitoring-constructs.

The facade renders the API, every function and the circuit-breaker state machine; custom groups
add what only this platform emits (tiers, circuit state, tokens and cost per model, A/B variants).
Every alarm notifies the encrypted alarm topic. ``RegionUnhealthy`` (composite) tells operators
that the model path is down; Route 53 cannot watch composite or metric-math alarms, so the DNS
failover construct combines the same single-metric alarms in a calculated health check instead.
"""

from __future__ import annotations

from collections.abc import Sequence

import cdk_monitoring_constructs as mc
from aws_cdk import Duration, Stack
from aws_cdk import aws_apigateway as apigw
from aws_cdk import aws_cloudwatch as cloudwatch
from aws_cdk import aws_cloudwatch_actions as actions
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_sns as sns
from aws_cdk import aws_sqs as sqs
from aws_cdk import aws_stepfunctions as sfn
from constructs import Construct

from cdk_app.config import MonitoringSettings

NAMESPACE = "FinAI"
TIERS = ("primary", "fallback", "degraded")
# The circuit monitor (a schedule) publishes the circuit metrics, so alarms get data without traffic.
MONITOR_SERVICE = "circuit_monitor"


FAILURE_CLASSES = ("model", "request", "task")
# shared.grounding.Check's values (stacks do not import Lambda code; a test keeps the two equal).
GROUNDING_CHECKS = ("ungrounded_amount", "ungrounded_percent", "ungrounded_period", "repeated_phrase", "cut_off")


def _alarmed(
    name: str,
    metric: cloudwatch.Metric | cloudwatch.MathExpression,
    severity: str,
    threshold: float,
    operator: cloudwatch.ComparisonOperator,
    *,
    enabled: bool,
) -> mc.CustomMetricWithAlarm:
    """A custom metric with one alarm (none when alarms are off); no data is not a breach."""
    alarm = mc.CustomThreshold(
        threshold=threshold,
        comparison_operator=operator,
        treat_missing_data_override=cloudwatch.TreatMissingData.NOT_BREACHING,
    )
    return mc.CustomMetricWithAlarm(
        alarm_friendly_name=name, metric=metric, add_alarm={severity: alarm} if enabled else {}
    )  # lambdas/shared/failures.py FailureClass


def platform_metric(name: str, service: str, statistic: str, period: Duration, **dimensions: str) -> cloudwatch.Metric:
    """A metric the Lambdas emit through Powertools (which adds the ``service`` dimension)."""
    return cloudwatch.Metric(
        namespace=NAMESPACE,
        metric_name=name,
        dimensions_map={**dimensions, "service": service},
        statistic=statistic,
        period=period,
    )


class Monitoring(Construct):
    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        settings: MonitoringSettings,
        topic: sns.ITopic,
        api: apigw.RestApi,
        stage: str,
        functions: dict[str, lambda_.IFunction],
        state_machine: sfn.IStateMachine,
        model_ids: Sequence[str],
        model_prices: dict[str, tuple[float, float]],
        variants: Sequence[tuple[str, str]],
        clients: Sequence[str] = (),
        stream_variants: Sequence[tuple[str, str]] = (),  # (model id, variant) the stream route reports
        audit_queue: sqs.IQueue | None = None,
        audit_dead_letters: sqs.IQueue | None = None,
        endpoint_name: str | None = None,
    ) -> None:
        super().__init__(scope, construct_id)
        period = Duration.seconds(settings.period_seconds)
        enabled = settings.alarms_enabled
        self.facade = mc.MonitoringFacade(
            self,
            "Facade",
            alarm_factory_defaults=mc.AlarmFactoryDefaults(
                actions_enabled=True,
                alarm_name_prefix="FinAi",
                action=mc.SnsAlarmActionStrategy(on_alarm_topic=topic, on_ok_topic=topic),
                datapoints_to_alarm=2,
                evaluation_periods=3,
            ),
            metric_factory_defaults=mc.MetricFactoryDefaults(period=period),
            # Dashboard names are unique per account across regions: each region's carry its name.
            dashboard_factory=mc.DefaultDashboardFactory(
                self, "Dashboards", dashboard_name_prefix=f"FinAi-{Stack.of(self).region}", create_alarm_dashboard=True
            ),
        )
        self.facade.add_large_header("FinAI platform: API, request path and models")
        self.facade.monitor_api_gateway(
            api=api,
            api_stage=stage,
            human_readable_name="Public API",
            alarm_friendly_name="Api",
            latency_types_to_render=[mc.LatencyType.P50, mc.LatencyType.P99],
            add_latency_p99_alarm=(
                {"Critical": mc.LatencyThreshold(max_latency=Duration.millis(settings.latency_p99_ms))}
                if enabled
                else None
            ),
        )
        for name, function in functions.items():
            self.facade.monitor_lambda_function(
                lambda_function=function,
                alarm_friendly_name=name,
                human_readable_name=f"{name} function",
                add_throttles_count_alarm=(
                    {"Critical": mc.ErrorCountThreshold(max_error_count=settings.lambda_throttles - 1)}
                    if enabled
                    else None
                ),
            )
        self.facade.monitor_step_function(
            state_machine=state_machine, alarm_friendly_name="CircuitBreaker", human_readable_name="Circuit breaker"
        )

        requests = {tier: platform_metric("Requests", "api_front", "Sum", period, tier=tier) for tier in TIERS}
        degraded_rate = cloudwatch.MathExpression(
            expression="degraded / MAX([primary + fallback + degraded, 1])",
            using_metrics=requests,
            label="Degraded share of answers",
            period=period,
        )
        self.circuit_open = {
            model: platform_metric("CircuitOpen", MONITOR_SERVICE, "Maximum", period, model=model)
            for model in model_ids
        }
        self.model_path_healthy = platform_metric("ModelPathHealthy", MONITOR_SERVICE, "Minimum", period)
        self.facade.monitor_custom(
            alarm_friendly_name="Tiers",
            human_readable_name="Answers by tier",
            metric_groups=[
                mc.CustomMetricGroup(title="Requests by tier", metrics=list(requests.values())),
                mc.CustomMetricGroup(
                    title="Degraded share",
                    metrics=[
                        _alarmed(
                            "DegradedRate",
                            degraded_rate,
                            "Critical",
                            settings.degraded_rate,
                            cloudwatch.ComparisonOperator.GREATER_THAN_THRESHOLD,
                            enabled=enabled,
                        )
                    ],
                ),
            ],
        )
        self.facade.monitor_custom(
            alarm_friendly_name="Circuits",
            human_readable_name="Circuit state per model (1 = open)",
            metric_groups=[
                mc.CustomMetricGroup(
                    title="Circuit open",
                    metrics=[
                        _alarmed(
                            f"CircuitOpen-{_slug(model)}",
                            metric,
                            "Warning",
                            1,
                            cloudwatch.ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
                            enabled=enabled,
                        )
                        for model, metric in self.circuit_open.items()
                    ],
                )
            ],
        )
        # shared/failures.py: only "model" failures count against a circuit; "request" and "task"
        # failures go to the next tier uncounted, and are shown here so a rise is still seen.
        self.facade.monitor_custom(
            alarm_friendly_name="FailureClasses",
            human_readable_name="Failures by class (model counts against the circuit; request and task do not)",
            metric_groups=[
                mc.CustomMetricGroup(
                    title=f"{tier.capitalize()} tier failures by class",
                    metrics=[
                        platform_metric("PathFailures", service, "Sum", period, failure_class=cls, tier=tier)
                        for cls in FAILURE_CLASSES
                    ],
                )
                for tier, service in (("primary", "router"), ("fallback", "fallback"))
            ]
            + [
                mc.CustomMetricGroup(
                    title="Primary failures by model and class",
                    metrics=[
                        platform_metric("PathFailures", "router", "Sum", period, failure_class=cls, model=model)
                        for model in model_ids
                        for cls in FAILURE_CLASSES
                    ],
                ),
                mc.CustomMetricGroup(
                    title="Task failures by model (alarmed: the circuit does not count them)",
                    metrics=[
                        _alarmed(
                            f"TaskFailures-{_slug(model)}",
                            platform_metric("PathFailures", "router", "Sum", period, failure_class="task", model=model),
                            "Warning",
                            settings.task_failures,
                            cloudwatch.ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
                            enabled=enabled,
                        )
                        for model in model_ids
                    ],
                ),
            ],
        )
        # shared/grounding.py: budgeting advice the platform would not stand behind is a task
        # failure (alarmed above, by model); here, which check caught it and on which tier.
        self.facade.monitor_custom(
            alarm_friendly_name="Grounding",
            human_readable_name="Budgeting advice rejected by the grounding guard (the next tier answered)",
            metric_groups=[
                mc.CustomMetricGroup(
                    title=f"{title}: rejections by check",
                    metrics=[
                        platform_metric("GroundingRejections", service, "Sum", period, check=check, tier=tier)
                        for check in GROUNDING_CHECKS
                    ],
                )
                for title, service, tier in (
                    ("Primary (sync)", "router", "primary"),
                    ("Fallback (sync)", "fallback", "fallback"),
                    ("Primary (stream)", "api_stream", "primary"),
                    ("Fallback (stream)", "api_stream", "fallback"),
                )
            ],
        )
        self.facade.monitor_custom(
            alarm_friendly_name="Models",
            human_readable_name="Tokens and estimated cost per model",
            metric_groups=[
                mc.CustomMetricGroup(
                    title="Tokens",
                    metrics=[
                        platform_metric(kind, "router", "Sum", period, model=model)
                        for model in model_ids
                        for kind in ("InputTokens", "OutputTokens")
                    ],
                ),
                mc.CustomMetricGroup(
                    title="Estimated cost (USD)",
                    metrics=[_cost(model, model_prices[model], period) for model in model_ids],
                ),
            ],
        )
        self.facade.monitor_custom(
            alarm_friendly_name="Variants",
            human_readable_name="A/B variants (strategy weights)",
            metric_groups=[
                mc.CustomMetricGroup(
                    title="Invocations per variant",
                    metrics=[
                        platform_metric("VariantInvocations", "router", "Sum", period, use_case=uc, variant=v)
                        for uc, v in variants
                    ],
                ),
                mc.CustomMetricGroup(
                    title="p50 latency per variant (ms)",
                    metrics=[
                        platform_metric("VariantLatency", "router", "p50", period, use_case=uc, variant=v)
                        for uc, v in variants
                    ],
                ),
            ],
        )
        self.facade.monitor_custom(
            alarm_friendly_name="Streaming",
            human_readable_name="Streamed answers (POST /v1/generate/stream)",
            metric_groups=[
                mc.CustomMetricGroup(
                    title="Time to first token p50 / p95 per model and variant (ms)",
                    metrics=[
                        platform_metric("TimeToFirstToken", "api_stream", stat, period, model=model, variant=variant)
                        for model, variant in stream_variants
                        for stat in ("p50", "p95")
                    ],
                ),
                mc.CustomMetricGroup(
                    title="Time to first token p95 per tier (ms)",
                    metrics=[
                        platform_metric("TimeToFirstToken", "api_stream", "p95", period, tier=tier)
                        for tier in ("primary", "fallback", "degraded")
                    ],
                ),
                mc.CustomMetricGroup(
                    title="Stream outcomes (error: ended after text was sent; disconnected: the client left)",
                    metrics=[
                        platform_metric("StreamOutcomes", "api_stream", "Sum", period, outcome=outcome)
                        for outcome in ("done", "error", "disconnected")
                    ],
                ),
            ],
        )
        self._budgets(settings, period, clients, model_ids)
        if endpoint_name is not None:
            self._endpoint(endpoint_name, period, enabled, settings)
        if audit_queue is not None and audit_dead_letters is not None:
            # Every audit record must reach the chain: one in the dead-letter queue is an incident,
            # and records waiting longer than ten minutes mean the ledger function is not keeping up.
            self.facade.monitor_sqs_queue_with_dlq(
                queue=audit_queue,
                dead_letter_queue=audit_dead_letters,
                alarm_friendly_name="AuditQueue",
                human_readable_name="Audit records waiting to be chained",
                add_dead_letter_queue_max_size_alarm=(
                    {"Critical": mc.MaxMessageCountThreshold(max_message_count=0)} if enabled else None
                ),
                add_queue_max_message_age_alarm=(
                    {"Warning": mc.MaxMessageAgeThreshold(max_age_in_seconds=600)} if enabled else None
                ),
            )
        self.five_xx_alarm_name = f"FinAi-Api-5XX-Rate-{scope.node.id}"
        self.model_path_alarm_name = f"FinAi-ModelPathUnhealthy-{scope.node.id}"
        self.five_xx_alarm: cloudwatch.Alarm | None = None
        self.model_path_alarm: cloudwatch.Alarm | None = None
        if enabled:
            # 5XXError's Average is the fault rate: a single metric, which Route 53 can watch.
            self.five_xx_alarm = _single_metric_alarm(
                self,
                "FiveXXRate",
                name=self.five_xx_alarm_name,
                description=f"More than {settings.error_rate_5xx:.0%} of API requests end in 5XX",
                # ApiName and Stage: ApiName alone would merge every API of that name in the region.
                metric=api.deployment_stage.metric_server_error(statistic="Average", period=period),
                threshold=settings.error_rate_5xx,
                comparison=cloudwatch.ComparisonOperator.GREATER_THAN_THRESHOLD,
                topic=topic,
            )
            # Single metric, Minimum: one of the forms Route 53 alarm health checks accept.
            self.model_path_alarm = _single_metric_alarm(
                self,
                "ModelPathUnhealthy",
                name=self.model_path_alarm_name,
                description="Health reports the model path down: every circuit open or circuit table unreachable",
                metric=self.model_path_healthy,
                threshold=1,
                comparison=cloudwatch.ComparisonOperator.LESS_THAN_THRESHOLD,
                topic=topic,
            )
            self.region_unhealthy = cloudwatch.CompositeAlarm(
                self,
                "RegionUnhealthy",
                composite_alarm_name=f"FinAi-RegionUnhealthy-{scope.node.id}",
                alarm_description="The region should not serve: high 5XX rate or the model path down",
                alarm_rule=cloudwatch.AlarmRule.any_of(self.five_xx_alarm, self.model_path_alarm),
            )
            _notify(self.region_unhealthy, topic)

    def _endpoint(self, endpoint_name: str, period: Duration, enabled: bool, settings: MonitoringSettings) -> None:
        """The SageMaker endpoint tier: SageMaker's own invocation metrics for the endpoint, and per
        adapter component by a search (promotion names a new component per training job)."""

        def endpoint_metric(name: str, statistic: str) -> cloudwatch.Metric:
            return cloudwatch.Metric(
                namespace="AWS/SageMaker",
                metric_name=name,
                dimensions_map={"EndpointName": endpoint_name, "VariantName": "AllTraffic"},
                statistic=statistic,
                period=period,
            )

        def per_component(name: str, statistic: str, label: str) -> cloudwatch.MathExpression:
            return cloudwatch.MathExpression(
                expression=(
                    "SEARCH('{AWS/SageMaker,InferenceComponentName} "
                    f'MetricName="{name}" InferenceComponentName="finai-"\', '
                    f"'{statistic}', {int(period.to_seconds())})"
                ),
                label=label,
                period=period,
            )

        self.facade.monitor_custom(
            alarm_friendly_name="Endpoint",
            human_readable_name=f"SageMaker endpoint {endpoint_name} (adapters as inference components)",
            metric_groups=[
                mc.CustomMetricGroup(
                    title="Invocations and errors",
                    metrics=[
                        endpoint_metric("Invocations", "Sum"),
                        endpoint_metric("Invocation4XXErrors", "Sum"),
                        _alarmed(
                            f"Endpoint5XX-{endpoint_name}",
                            endpoint_metric("Invocation5XXErrors", "Sum"),
                            "Warning",
                            settings.task_failures,
                            cloudwatch.ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
                            enabled=enabled,
                        ),
                    ],
                ),
                mc.CustomMetricGroup(
                    title="Model latency p95 (microseconds)",
                    metrics=[endpoint_metric("ModelLatency", "p95")],
                ),
                mc.CustomMetricGroup(
                    title="Invocations per adapter component",
                    metrics=[per_component("Invocations", "Sum", "")],
                ),
            ],
        )

    def _budgets(
        self, settings: MonitoringSettings, period: Duration, clients: Sequence[str], model_ids: Sequence[str]
    ) -> None:
        """Spend per client and per model (from the front's settled usage), each client's share of
        its limits, and an alarm when the sweeper flags a client at the strategy's alert_share."""
        if not clients:
            return
        budget_period = Duration.minutes(1)  # the sweeper publishes once a minute
        self.facade.monitor_custom(
            alarm_friendly_name="Budgets",
            human_readable_name="Budgets: spend per client and model, share of each client's limits",
            metric_groups=[
                mc.CustomMetricGroup(
                    title="Spend per client (price table currency)",
                    metrics=[platform_metric("ClientCost", "api_front", "Sum", period, client=c) for c in clients],
                ),
                mc.CustomMetricGroup(
                    title="Spend per model (price table currency)",
                    metrics=[platform_metric("ModelCost", "api_front", "Sum", period, model=m) for m in model_ids],
                ),
                mc.CustomMetricGroup(
                    title="Tokens per client",
                    metrics=[platform_metric("ClientTokens", "api_front", "Sum", period, client=c) for c in clients],
                ),
                mc.CustomMetricGroup(
                    title="Highest share of a limit per client (%)",
                    metrics=[
                        platform_metric("BudgetUsedPercent", "budgets", "Maximum", budget_period, client=c)
                        for c in clients
                    ],
                ),
                mc.CustomMetricGroup(
                    title="Budget alert (1 = at the strategy's alert_share)",
                    metrics=[
                        _alarmed(
                            f"BudgetAlert-{_slug(c)}",
                            platform_metric("BudgetAlert", "budgets", "Maximum", budget_period, client=c),
                            "Warning",
                            1,
                            cloudwatch.ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
                            enabled=settings.alarms_enabled,
                        )
                        for c in clients
                    ],
                ),
                mc.CustomMetricGroup(
                    title="Requests refused by budget (429)",
                    metrics=[platform_metric("BudgetRefusals", "api_front", "Sum", period, client=c) for c in clients],
                ),
            ],
        )


def _notify(alarm: cloudwatch.AlarmBase, topic: sns.ITopic) -> None:
    """On alarm and on recovery, like the facade's alarms."""
    alarm.add_alarm_action(actions.SnsAction(topic))
    alarm.add_ok_action(actions.SnsAction(topic))


def _single_metric_alarm(
    scope: Construct,
    construct_id: str,
    *,
    name: str,
    description: str,
    metric: cloudwatch.Metric | cloudwatch.MathExpression,
    threshold: float,
    comparison: cloudwatch.ComparisonOperator,
    topic: sns.ITopic,
) -> cloudwatch.Alarm:
    """A plain metric alarm (2 of 3 periods), the only kind Route 53 health checks can watch."""
    alarm = cloudwatch.Alarm(
        scope,
        construct_id,
        alarm_name=name,
        alarm_description=description,
        metric=metric,
        threshold=threshold,
        comparison_operator=comparison,
        evaluation_periods=3,
        datapoints_to_alarm=2,
        treat_missing_data=cloudwatch.TreatMissingData.NOT_BREACHING,
    )
    _notify(alarm, topic)
    return alarm


def _slug(model_id: str) -> str:
    return "".join(ch if ch.isalnum() else "-" for ch in model_id)[:60]


def _cost(model_id: str, price: tuple[float, float], period: Duration) -> cloudwatch.MathExpression:
    # Metric ids are unique per graph, so each model's pair gets its own.
    key = "m" + "".join(ch for ch in model_id.lower() if ch.isalnum())[:40]
    tokens = {
        f"{key}i": platform_metric("InputTokens", "router", "Sum", period, model=model_id),
        f"{key}o": platform_metric("OutputTokens", "router", "Sum", period, model=model_id),
    }
    return cloudwatch.MathExpression(
        # Plain decimals: CloudWatch math does not read exponent notation (3.5e-05).
        expression=f"({key}i * {price[0]:.10f} + {key}o * {price[1]:.10f}) / 1000",
        using_metrics=tokens,
        label=f"{model_id} USD",
        period=period,
    )
