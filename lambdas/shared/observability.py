"""Logger, tracer and metrics, created once per process so every module shares them.

Service name and metrics namespace come from the standard Powertools environment variables that
CDK sets on each function (POWERTOOLS_SERVICE_NAME, POWERTOOLS_METRICS_NAMESPACE).
"""

from typing import Any

from aws_lambda_powertools import Logger, Metrics, Tracer
from aws_lambda_powertools.logging.formatter import LambdaPowertoolsFormatter
from aws_lambda_powertools.metrics import MetricUnit, single_metric

from shared.pii import redact_value


class RedactingFormatter(LambdaPowertoolsFormatter):
    """Every log record passes through PII redaction, whatever a caller puts in it."""

    def serialize(self, log: Any) -> str:
        return super().serialize(redact_value(log))


logger = Logger(logger_formatter=RedactingFormatter())
tracer = Tracer()
metrics = Metrics()


def emit(name: str, value: float, unit: MetricUnit = MetricUnit.Count, **dimensions: str) -> None:
    """One EMF metric with its own dimensions.

    ``single_metric`` keeps per-request dimensions (model, tier, variant) from leaking into the
    function-wide metrics set, whose dimensions persist across warm invocations.
    """
    with single_metric(name=name, unit=unit, value=value, namespace=metrics.namespace) as metric:
        for key, dim_value in dimensions.items():
            metric.add_dimension(name=key, value=dim_value)
