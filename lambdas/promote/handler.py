"""Promote Lambda (one per region): publishes the new adapters in this region's AppConfig.

The training pipeline's promotion step (``promotion.handler``, in the primary region) invokes this
function in every region, primary first. An adapter for the SageMaker endpoint tier is first
created as an inference component on this region's endpoint. The new strategy version goes out with the
environment's deployment strategy, which rolls back on the model-errors alarm. A promotion that
this region already has (a retried step) publishes nothing.
"""

from __future__ import annotations

import os
from functools import cache
from typing import Any

from aws_lambda_powertools.utilities.typing import LambdaContext
from pydantic import BaseModel, ConfigDict, Field

from promote.dal import AppConfigStrategyStore, EndpointAdapters, StrategyStore
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


@cache
def _endpoint() -> EndpointAdapters | None:
    """This region's endpoint tier, when the deployment has one (``ENDPOINT_*`` set by CDK)."""
    return EndpointAdapters.from_environment(os.environ)


def promote(event: PromoteEvent, store: StrategyStore, endpoint: EndpointAdapters | None = None) -> dict[str, Any]:
    """Repoint every candidate's serving variants in one new strategy version, deployed once.

    A candidate for the endpoint tier is first made an inference component in this region
    (``EndpointAdapters.ensure``); until it is InService this raises ``AdapterNotReady`` before
    anything is published, and the pipeline's retry promotes the whole run again.
    """
    version, latest = store.latest()
    document = latest
    variants: list[str] = []
    skipped: list[dict[str, str]] = []
    for candidate in event.candidates:
        component, artifact_uri = None, candidate.artifacts
        if endpoint is not None and candidate.target == endpoint.target:
            component, artifact_uri = endpoint.ensure(candidate.job, candidate.artifacts)
        document, changed = repoint(
            document,
            target=candidate.target,
            model_id=candidate.job,
            artifact_uri=artifact_uri,
            inference_component=component,
        )
        if changed:
            variants += changed
        else:
            kind = "lambda" if component is None else "sagemaker"
            logger.info(f"no {kind} variant serves this target", extra={"target": candidate.target})
            skipped.append({"adapter": candidate.adapter, "reason": f"no {kind} variant targets {candidate.target!r}"})
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
    return promote(PromoteEvent.model_validate(event), _store(), _endpoint())
