"""DNS failover between the two regions (Route 53 health checks and failover records)."""

from __future__ import annotations

from typing import Any

from aws_cdk import Annotations, Stack
from constructs import Construct

from cdk_app.config import PlatformConfig


class GlobalStack(Stack):
    """Holds what spans regions. Without a domain in context, DNS failover is off and says so."""

    def __init__(self, scope: Construct, construct_id: str, *, config: PlatformConfig, **kwargs: Any) -> None:
        super().__init__(scope, construct_id, **kwargs)
        if not config.dns_failover_enabled:
            Annotations.of(self).add_info(
                "DNS failover is off: set domain_name and hosted_zone_id in context to enable it."
            )
