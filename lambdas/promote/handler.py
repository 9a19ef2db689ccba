"""Promote Lambda (one per region): publishes the new adapters in this region's AppConfig.

The training pipeline's promotion step (``promotion.handler``, in the primary region) invokes this
function in every region, primary first. The new strategy version goes out with the
environment's deployment strategy, which rolls back on the model-errors alarm. A promotion that
this region already has (a retried step) publishes nothing.
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


class Candidate(BaseModel):
    """One adapter that passed its gate and was registered in this pipeline run."""

    model_config = ConfigDict(extra="ignore")

    adapter: str = Field(pattern=r"^[a-z][a-z0-9_]{0,31}$")
    target: str = Field(pattern=r"^[a-z][a-z0-9_]{0,31}$")
    job: str = Field(min_length=1, max_length=63)
    artifacts: str = Field(pattern=r"^s3://.+")
    model_package_arn: str


class PromoteEvent(BaseModel):
    model_config = ConfigDict(extra="ignore")

    candidates: list[Candidate] = Field(min_length=1)


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
    """Repoint every candidate's serving variants in one new strategy version, deployed once."""
    version, latest = store.latest()
    document = latest
    variants: list[str] = []
    skipped: list[dict[str, str]] = []
    for candidate in event.candidates:
        document, changed = repoint(
            document, target=candidate.target, model_id=candidate.job, artifact_uri=candidate.artifacts
        )
        if changed:
            variants += changed
        else:
            logger.info("no lambda variant serves this target", extra={"target": candidate.target})
            skipped.append({"adapter": candidate.adapter, "reason": f"no lambda variant targets {candidate.target!r}"})
    if not variants:
        return {"promoted": False, "version": version, "variants": [], "skipped": skipped}
    promoted = [c for c in event.candidates if c.adapter not in {s["adapter"] for s in skipped}]
    # The version names the run's adapters; repoint gave it the last job's name, which says less.
    document["version"] = "+".join(c.job for c in promoted)[:64]
    if document == latest:
        # Idempotent: a retried promotion step (another region failed) must not publish twice.
        logger.info("already promoted", extra={"version": version, "variants": variants})
        return {"promoted": True, "version": version, "deployment": None, "variants": variants, "skipped": skipped}
    description = "; ".join(f"{c.adapter} adapter {c.job} ({c.model_package_arn})" for c in promoted)
    new_version = store.publish(document, version, description)
    deployment = store.deploy(new_version, description)
    logger.info("adapters promoted", extra={"version": new_version, "deployment": deployment, "variants": variants})
    return {
        "promoted": True,
        "version": new_version,
        "deployment": deployment,
        "variants": variants,
        "skipped": skipped,
    }


@logger.inject_lambda_context
@tracer.capture_lambda_handler
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    return promote(PromoteEvent.model_validate(event), _store())
