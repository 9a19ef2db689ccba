"""DNS failover between the two regions (Route 53 health checks and failover records).

Only synthesized when ``domain_name`` and ``hosted_zone_id`` are in context.
"""

from __future__ import annotations

from typing import Any

from aws_cdk import Stack
from constructs import Construct

from cdk_app.config import PlatformConfig


class GlobalStack(Stack):
    def __init__(self, scope: Construct, construct_id: str, *, config: PlatformConfig, **kwargs: Any) -> None:
        super().__init__(scope, construct_id, **kwargs)
        if not config.dns_failover_enabled:
            raise ValueError("GlobalStack needs domain_name and hosted_zone_id in context")
        self.domain_name = config.domain_name
        self.hosted_zone_id = config.hosted_zone_id
