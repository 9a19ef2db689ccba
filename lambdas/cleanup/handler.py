"""Scheduled lifecycle cleanup of SageMaker endpoints, endpoint configs, models and training
artifacts older than MAX_AGE_DAYS. A dry run (the default) only reports; DELETE=true deletes.
Only this platform's resources are considered (``finai-`` names, tagged ``finai:platform=finai``;
training artifacts in the platform's bucket), and anything tagged ``finai:in-use=true`` is never
touched; the role's policy enforces both."""

from __future__ import annotations

import os
from datetime import UTC, datetime
from typing import Any

from aws_lambda_powertools.utilities.typing import LambdaContext

from cleanup.dal import SageMakerInventory
from cleanup.logic import plan
from shared.observability import emit, logger


def run(
    inventory: SageMakerInventory, now: datetime, max_age_days: int, delete: bool, artifacts_bucket: str | None
) -> dict[str, Any]:
    found = plan(inventory.resources(), now, max_age_days, artifacts_bucket)
    deleted: list[str] = []
    failed: dict[str, str] = {}
    if delete:
        for resource in found.stale:
            try:
                inventory.delete(resource)
                deleted.append(f"{resource.kind}:{resource.name}")
            except Exception as exc:  # one failure must not stop the rest; it is reported
                failed[f"{resource.kind}:{resource.name}"] = str(exc)[:300]
    return found.summary(dry_run=not delete, deleted=deleted, failed=failed)


@logger.inject_lambda_context
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    max_age_days = int(os.environ.get("MAX_AGE_DAYS", "30"))
    delete = os.environ.get("DELETE", "false").lower() == "true"
    summary = run(SageMakerInventory(), datetime.now(UTC), max_age_days, delete, os.environ.get("ARTIFACTS_BUCKET"))
    stale = sum(len(names) for names in summary["stale"].values())
    emit("StaleResources", stale)
    emit("DeletedResources", len(summary["deleted"]))
    logger.info("cleanup summary", extra={"summary": summary, "max_age_days": max_age_days})
    return summary
