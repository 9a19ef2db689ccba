"""The circuit monitor: a scheduled function that publishes circuit state for the alarms."""

from __future__ import annotations

from aws_cdk import Duration
from aws_cdk import aws_events as events
from aws_cdk import aws_events_targets as targets
from aws_cdk import aws_kms as kms
from constructs import Construct

from stacks.circuit_breaker import CircuitBreaker
from stacks.common import SCHEDULED_NO_DLQ, PythonFunction

# EventBridge's finest schedule; the alarms evaluate one-minute periods.
SCHEDULE = events.Schedule.rate(Duration.minutes(1))


class CircuitMonitor(Construct):
    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        key: kms.IKey,
        powertools_layer_version: int,
        breaker: CircuitBreaker,
    ) -> None:
        super().__init__(scope, construct_id)
        self.handler = PythonFunction(
            self,
            "CircuitMonitor",
            component="circuit_monitor",
            description="Publishes each model's circuit state and the model path's health every minute",
            key=key,
            powertools_layer_version=powertools_layer_version,
            no_dlq_reason=SCHEDULED_NO_DLQ,
            timeout=Duration.seconds(20),
            memory_size=256,
            environment={"CIRCUIT_TABLE": breaker.table.table_name},
        )
        self.function = self.handler.function
        breaker.grant_read_circuits(self.function)
        self.schedule = events.Rule(
            self,
            "Schedule",
            description="Circuit metrics every minute, whether or not Route 53 calls the health route",
            schedule=SCHEDULE,
            # A missed minute is better skipped than replayed late.
            targets=[targets.LambdaFunction(self.function, retry_attempts=0, max_event_age=Duration.minutes(1))],
        )
