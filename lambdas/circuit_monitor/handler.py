"""Circuit monitor: every minute, publish each model's circuit state and whether the model path can serve.

The circuit alarms and the Route 53 alarm health checks read these metrics. They come from a
schedule rather than from the health route, because health is called only by Route 53 and only
when DNS failover is configured: without the schedule the alarms would never see data.
"""

from __future__ import annotations

import os
from functools import cache
from typing import Any

from aws_lambda_powertools.utilities.typing import LambdaContext

from circuit_monitor.logic import CircuitReport, report
from shared.circuits import CircuitReader
from shared.observability import emit, logger, metrics, tracer


@cache
def reader() -> CircuitReader:
    return CircuitReader(os.environ["CIRCUIT_TABLE"])


def publish(result: CircuitReport) -> None:
    for model, is_open in sorted(result.open_by_model.items()):
        emit("CircuitOpen", 1 if is_open else 0, model=model)
    emit("ModelPathHealthy", 1 if result.healthy else 0)


@logger.inject_lambda_context
@tracer.capture_lambda_handler
@metrics.log_metrics
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    result = report(reader())
    publish(result)
    logger.info("circuits reported", extra={"healthy": result.healthy, "open": sorted(result.open_models)})
    return result.as_dict()
