"""The training pipeline's promotion step: the new adapters reach every region's strategy.

Step Functions cannot call AWS in another region, so this function (in the primary region, next
to the pipeline) invokes each region's promote function (``promote.handler``), primary first. Each
region's function writes only its own AppConfig, with grants on exactly its own application.
A region that fails stops the step with an error naming the regions already promoted; the step's
retry runs every region again, and a region that already has the promotion publishes nothing.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from typing import Any

from aws_lambda_powertools.utilities.typing import LambdaContext

from promote.handler import PromoteEvent
from shared.observability import logger, tracer

Invoke = Callable[[str, str, dict[str, Any]], dict[str, Any]]


class PromotionIncomplete(RuntimeError):
    """A region could not be promoted; the message names the regions that were."""


class PromotionPending(PromotionIncomplete):
    """A region's endpoint adapter is still being created; the pipeline retries this on a timer
    (minutes), and every region already promoted publishes nothing the second time."""


class RegionFailed(RuntimeError):
    """A region's promote function raised; ``error_type`` is its exception's name."""

    def __init__(self, error_type: str, message: str) -> None:
        super().__init__(f"{error_type}: {message}")
        self.error_type = error_type


def targets_from_env(env: dict[str, str] | None = None) -> dict[str, str]:
    """``PROMOTE_FUNCTIONS``: region -> that region's promote function ARN, primary first."""
    raw = json.loads((os.environ if env is None else env)["PROMOTE_FUNCTIONS"])
    if not isinstance(raw, dict) or not raw:
        raise ValueError("PROMOTE_FUNCTIONS must be a non-empty JSON object of region to function ARN")
    return {str(region): str(arn) for region, arn in raw.items()}


def invoke_region(region: str, function: str, event: dict[str, Any]) -> dict[str, Any]:
    import boto3

    result = boto3.client("lambda", region_name=region).invoke(
        FunctionName=function, Payload=json.dumps(event).encode()
    )
    payload = json.loads(result["Payload"].read() or b"{}")
    if result.get("FunctionError"):
        raise RegionFailed(str(payload.get("errorType", "Error")), str(payload.get("errorMessage")))
    return dict(payload)


def fan_out(event: PromoteEvent, targets: dict[str, str], invoke: Invoke = invoke_region) -> dict[str, Any]:
    """Every region's outcome; the primary's (the first) at the top level, as one region reports."""
    payload = event.model_dump()
    regions: dict[str, dict[str, Any]] = {}
    for region, function in targets.items():
        try:
            regions[region] = invoke(region, function, payload)
        except Exception as exc:
            done = ", ".join(regions) or "none"
            logger.exception("region not promoted", extra={"region": region})
            pending = isinstance(exc, RegionFailed) and exc.error_type == "AdapterNotReady"
            raise (PromotionPending if pending else PromotionIncomplete)(
                f"promotion failed in {region} ({type(exc).__name__}: {exc}); already promoted: {done}"
            ) from exc
        logger.info("region promoted", extra={"region": region, "version": regions[region].get("version")})
    primary = next(iter(regions.values()))
    return {**primary, "regions": regions}


@logger.inject_lambda_context
@tracer.capture_lambda_handler
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    # Validated here first: a malformed event must not reach any region.
    return fan_out(PromoteEvent.model_validate(event), targets_from_env())
