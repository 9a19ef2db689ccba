"""Budget sweeper: runs every minute in each region.

It releases reservations whose request can no longer be answered (so a crashed or timed-out
request never holds budget), mirrors the other region's committed spend onto this region's
counters (so a failover does not start anyone from zero), and publishes each client's highest
share of a limit, with an alert flag at the strategy's ``alert_share`` for the spend alarm.
"""

from __future__ import annotations

import os
from datetime import UTC, datetime
from functools import cache
from typing import Any

import boto3
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.typing import LambdaContext
from botocore.config import Config

from budgets.logic import sweep
from shared.budgets import BudgetStore
from shared.observability import emit, logger, metrics, tracer
from shared.strategy.source import StrategySource, strategy_source_from_env

# The other region may be the one that is down: fail fast, and try again next minute.
PEER_CLIENT_CONFIG = Config(connect_timeout=2, read_timeout=5, retries={"total_max_attempts": 1, "mode": "standard"})


@cache
def store() -> BudgetStore:
    return BudgetStore(os.environ["BUDGET_TABLE"], boto3.client("dynamodb"))


@cache
def peer() -> BudgetStore | None:
    table, region = os.environ.get("PEER_BUDGET_TABLE"), os.environ.get("PEER_REGION")
    if not table or not region:
        return None
    return BudgetStore(table, boto3.client("dynamodb", region_name=region, config=PEER_CLIENT_CONFIG))


@cache
def strategy_source() -> StrategySource:
    return strategy_source_from_env()


def _now() -> datetime:
    return datetime.now(UTC)


@logger.inject_lambda_context
@tracer.capture_lambda_handler
@metrics.log_metrics
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    policy = strategy_source().get().budgets
    result = sweep(store(), peer(), policy, _now())
    emit("ReservationsReleased", result.released)
    if result.peer_reachable is not None:
        emit("PeerBudgetSync", 1 if result.peer_reachable else 0)
    for client, share in result.shares.items():
        emit("BudgetUsedPercent", share * 100, MetricUnit.Percent, client=client)
        emit("BudgetAlert", 1 if client in result.alerts else 0, client=client)
    summary = {"released": result.released, "mirrored": result.mirrored, "alerts": result.alerts}
    logger.info("budgets swept", extra={**summary, "peer": result.peer_reachable})
    return summary
