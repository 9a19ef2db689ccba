"""Entry point: ``cdk synth`` runs ``python -m cdk_app.app``.

One RegionalStack per region (primary, secondary), each with its half of the DNS failover, and
the training stack in the primary region. Synth reads only CDK
context and repository files: no AWS calls, clock, git or user name, so it is deterministic.
"""

from __future__ import annotations

from typing import Any

import aws_cdk as cdk

from cdk_app.compliance import apply_compliance
from cdk_app.config import CONTEXT_KEYS, PlatformConfig, load_config
from stacks.regional_stack import RegionalStack
from stacks.training_stack import TrainingStack

STACK_PREFIX = "FinAi"
DNS_OFF_NOTICE = "DNS failover is off: set domain_name and hosted_zone_id in context to enable it."


def context_of(app: cdk.App) -> dict[str, Any]:
    """Our keys from CDK context; feature flags (``@aws-cdk/...``) and CDK's own keys are skipped."""
    everything = app.node.get_all_context()
    ours = {k: v for k, v in everything.items() if not k.startswith("@") and ":" not in k}
    return {k: v for k, v in ours.items() if k in CONTEXT_KEYS or not k.startswith("aws-cdk")}


def regional_stack_name(region: str) -> str:
    return f"{STACK_PREFIX}-{region}"


def build(app: cdk.App, config: PlatformConfig, *, compliance: bool = True) -> list[cdk.Stack]:
    stacks: list[cdk.Stack] = []
    for region in config.regions:
        stacks.append(
            RegionalStack(
                app,
                regional_stack_name(region),
                config=config,
                env=cdk.Environment(account=config.account, region=region),
                description=f"FinAI platform request path in {region}",
            )
        )
    primary = stacks[0]
    if not isinstance(primary, RegionalStack):  # narrows the type; build() appends regions first
        raise TypeError("the first stack must be the primary region's")
    stacks.append(
        TrainingStack(
            app,
            f"{STACK_PREFIX}-training",
            config=config,
            model_config=primary.model_config,
            env=cdk.Environment(account=config.account, region=config.primary_region),
            description="FinAI platform adapter training pipeline",
        )
    )
    if not config.dns_failover_enabled:
        # Each regional stack owns its half of the failover (stacks/dns_failover.py), so without a
        # domain there is nothing to create; the primary stack carries the notice.
        cdk.Annotations.of(stacks[0]).add_info(DNS_OFF_NOTICE)
    if compliance:
        apply_compliance(app)
    return stacks


def main() -> None:
    app = cdk.App()
    build(app, load_config(context_of(app)))
    app.synth()


if __name__ == "__main__":
    main()
