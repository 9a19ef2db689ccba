"""Promote Lambda: the training pipeline's last step publishes the new adapter through AppConfig.

The new strategy version goes out with the environment's deployment strategy, which rolls back
on the model-errors alarm.
"""

from __future__ import annotations

import os
from functools import cache
from typing import Any

from aws_lambda_powertools.utilities.typing import LambdaContext
from pydantic import BaseModel, ConfigDict, Field

from promote.dal import AppConfigStrategyStore, StrategyStore
from promote.logic import repoint
from shared.observability import logger, tracer


class PromoteEvent(BaseModel):
    model_config = ConfigDict(extra="ignore")

    adapter: str = Field(pattern=r"^[a-z][a-z0-9_]{0,31}$")
    target: str = Field(pattern=r"^[a-z][a-z0-9_]{0,31}$")
    job: str = Field(min_length=1, max_length=63)
    artifacts: str = Field(pattern=r"^s3://.+")
    model_package_arn: str


@cache
def _store() -> StrategyStore:
    env = os.environ
    return AppConfigStrategyStore(
        env["APPCONFIG_APPLICATION"],
        env["APPCONFIG_ENVIRONMENT"],
        env["APPCONFIG_PROFILE"],
        env["APPCONFIG_DEPLOYMENT_STRATEGY"],
    )


def promote(event: PromoteEvent, store: StrategyStore) -> dict[str, Any]:
    version, document = store.latest()
    updated, changed = repoint(document, target=event.target, model_id=event.job, artifact_uri=event.artifacts)
    if not changed:
        logger.info("no lambda variant serves this target; nothing to promote", extra={"target": event.target})
        return {"promoted": False, "reason": f"no lambda variant targets {event.target!r}", "version": version}
    description = f"{event.adapter} adapter {event.job} ({event.model_package_arn})"
    new_version = store.publish(updated, version, description)
    deployment = store.deploy(new_version, description)
    logger.info("adapter promoted", extra={"version": new_version, "deployment": deployment, "variants": changed})
    return {"promoted": True, "version": new_version, "deployment": deployment, "variants": changed}


@logger.inject_lambda_context
@tracer.capture_lambda_handler
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    return promote(PromoteEvent.model_validate(event), _store())
