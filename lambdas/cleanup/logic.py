"""Which SageMaker resources are stale: older than the age limit and not tagged as in use."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

IN_USE_TAG = "finai:in-use"
# What makes a resource this platform's: its name starts with NAME_PREFIX and (for SageMaker
# resources that carry tags) it is tagged PLATFORM_TAG=PLATFORM. Anything else in the account is
# not ours to judge, let alone delete; the role's policy enforces the same rule.
NAME_PREFIX = "finai-"
PLATFORM_TAG = "finai:platform"
PLATFORM = "finai"
KINDS = ("endpoint", "endpoint_config", "model", "training_artifact")


@dataclass(frozen=True)
class Resource:
    kind: str
    name: str
    arn: str
    created: datetime
    tags: dict[str, str] = field(default_factory=dict)
    location: str | None = None  # training artifacts: their s3:// URI

    def belongs_to_platform(self, artifacts_bucket: str | None) -> bool:
        if not self.name.startswith(NAME_PREFIX):
            return False
        if self.kind == "training_artifact":
            # Jobs carry no tags (tagging would need sagemaker:AddTags); their artifacts must sit in
            # the platform's artifacts bucket.
            return bool(artifacts_bucket) and (self.location or "").startswith(f"s3://{artifacts_bucket}/")
        return self.tags.get(PLATFORM_TAG) == PLATFORM

    @property
    def in_use(self) -> bool:
        return self.tags.get(IN_USE_TAG, "").lower() in ("true", "yes", "1")


@dataclass
class Plan:
    stale: list[Resource] = field(default_factory=list)
    kept_in_use: list[Resource] = field(default_factory=list)
    kept_recent: list[Resource] = field(default_factory=list)
    not_ours: int = 0

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
            "not_ours": self.not_ours,
            "deleted": deleted,
            "failed": failed,
        }


def plan(resources: list[Resource], now: datetime, max_age_days: int, artifacts_bucket: str | None) -> Plan:
    cutoff = now - timedelta(days=max_age_days)
    result = Plan()
    for resource in resources:
        if not resource.belongs_to_platform(artifacts_bucket):
            result.not_ours += 1
        elif resource.in_use:
            result.kept_in_use.append(resource)
        elif resource.created < cutoff:
            result.stale.append(resource)
        else:
            result.kept_recent.append(resource)
    # Delete endpoints before their configs, configs before models: the order SageMaker needs.
    result.stale.sort(key=lambda r: (KINDS.index(r.kind), r.name))
    return result
