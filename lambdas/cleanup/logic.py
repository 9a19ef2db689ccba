"""Which SageMaker resources are stale: older than the age limit and not tagged as in use."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

IN_USE_TAG = "finai:in-use"
KINDS = ("endpoint", "endpoint_config", "model", "training_artifact")


@dataclass(frozen=True)
class Resource:
    kind: str
    name: str
    arn: str
    created: datetime
    tags: dict[str, str] = field(default_factory=dict)
    location: str | None = None  # training artifacts: their s3:// URI

    @property
    def in_use(self) -> bool:
        return self.tags.get(IN_USE_TAG, "").lower() in ("true", "yes", "1")


@dataclass
class Plan:
    stale: list[Resource] = field(default_factory=list)
    kept_in_use: list[Resource] = field(default_factory=list)
    kept_recent: list[Resource] = field(default_factory=list)

    def summary(self, dry_run: bool, deleted: list[str], failed: dict[str, str]) -> dict[str, Any]:
        def names(items: list[Resource]) -> dict[str, list[str]]:
            grouped: dict[str, list[str]] = {kind: [] for kind in KINDS}
            for item in items:
                grouped[item.kind].append(item.name)
            return grouped

        return {
            "dry_run": dry_run,
            "stale": names(self.stale),
            "kept_in_use": names(self.kept_in_use),
            "kept_recent": sum(1 for _ in self.kept_recent),
            "deleted": deleted,
            "failed": failed,
        }


def plan(resources: list[Resource], now: datetime, max_age_days: int) -> Plan:
    cutoff = now - timedelta(days=max_age_days)
    result = Plan()
    for resource in resources:
        if resource.in_use:
            result.kept_in_use.append(resource)
        elif resource.created < cutoff:
            result.stale.append(resource)
        else:
            result.kept_recent.append(resource)
    # Delete endpoints before their configs, configs before models: the order SageMaker needs.
    result.stale.sort(key=lambda r: (KINDS.index(r.kind), r.name))
    return result
