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
from cdk_app.names import keys_stack_name, regional_stack_name, training_stack_name
from stacks.api_keys import ApiKeysStack
from stacks.regional_stack import RegionalStack
from stacks.training_stack import TrainingStack

DNS_OFF_NOTICE = "DNS failover is off: set domain_name and hosted_zone_id in context to enable it."


def context_of(app: cdk.App) -> dict[str, Any]:
    """Our keys from CDK context; feature flags (``@aws-cdk/...``) and CDK's own keys are skipped."""
    everything = app.node.get_all_context()
    ours = {k: v for k, v in everything.items() if not k.startswith("@") and ":" not in k}
    return {k: v for k, v in ours.items() if k in CONTEXT_KEYS or not k.startswith("aws-cdk")}


def build(app: cdk.App, config: PlatformConfig, *, compliance: bool = True) -> list[cdk.Stack]:
    stacks: list[cdk.Stack] = []
    keys: ApiKeysStack | None = None
    if config.api_auth == "api_key":
        keys = ApiKeysStack(
            app,
            keys_stack_name(),
            clients=config.api_clients,
            replica_regions=(config.secondary_region,),
            env=cdk.Environment(account=config.account, region=config.primary_region),
            description="FinAI platform client API keys (retained on destroy; replicated to the secondary region)",
        )
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
    if keys is not None:
        for regional in stacks:
            # Deployment order only: the regions read the keys by secret name, not by reference.
            regional.add_stack_dependency(keys)
    primary = stacks[0]
    training = TrainingStack(
        app,
        training_stack_name(),
        config=config,
        env=cdk.Environment(account=config.account, region=config.primary_region),
        description="FinAI platform adapter training pipeline",
    )
    for regional in list(stacks):
        # Deployment order only: promotion invokes each region's promote function by name.
        training.add_stack_dependency(regional)
    stacks.append(training)
    if keys is not None:
        stacks.insert(0, keys)
    if not config.dns_failover_enabled:
        # Each regional stack owns its half of the failover (stacks/dns_failover.py), so without a
        # domain there is nothing to create; the primary stack carries the notice.
        cdk.Annotations.of(primary).add_info(DNS_OFF_NOTICE)
    if compliance:
        apply_compliance(app)
    return stacks


def main() -> None:
    app = cdk.App()
    build(app, load_config(context_of(app)))
    app.synth()


if __name__ == "__main__":
    main()
