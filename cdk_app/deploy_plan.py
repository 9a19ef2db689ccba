"""Which stacks ``make deploy`` and ``make destroy`` name, in order, for the current context.

The Makefile asks this module rather than spelling stack names itself, and a test checks every
name it prints against the synthesized manifest (default context and DNS-failover context), so a
deploy command can never name a stack the app does not synthesize.

    python -m cdk_app.deploy_plan deploy [--region R] [-c key=value ...]
    python -m cdk_app.deploy_plan destroy [--with-keys] [-c key=value ...]
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from cdk_app.config import PlatformConfig, load_config
from cdk_app.names import keys_stack_name, regional_stack_name, training_stack_name

CDK_JSON = Path(__file__).resolve().parent.parent / "cdk.json"


def deploy_order(config: PlatformConfig, region: str | None = None) -> list[str]:
    """Keys first (both regions read them), the primary, the secondary, then training."""
    if region is not None and region not in config.regions:
        raise ValueError(f"{region!r} is neither the primary ({config.primary_region}) nor the secondary region")
    by_region: dict[str, list[str]] = {config.primary_region: [], config.secondary_region: []}
    if config.api_auth == "api_key":
        by_region[config.primary_region].append(keys_stack_name())
    by_region[config.primary_region].append(regional_stack_name(config.primary_region))
    by_region[config.secondary_region].append(regional_stack_name(config.secondary_region))
    by_region[config.primary_region].append(training_stack_name())
    if region is not None:
        return by_region[region]
    primary = by_region[config.primary_region]
    # The training stack goes last: it is the least needed to serve traffic.
    return [*primary[:-1], *by_region[config.secondary_region], primary[-1]]


def destroy_order(config: PlatformConfig, *, with_keys: bool = False) -> list[str]:
    """The reverse of deploying. The keys stack is kept unless asked: its secrets are clients' credentials."""
    stacks = list(reversed(deploy_order(config)))
    if not with_keys and config.api_auth == "api_key":
        stacks.remove(keys_stack_name())
    return stacks


def context_with(overrides: list[str]) -> dict[str, Any]:
    context = {k: v for k, v in json.loads(CDK_JSON.read_text())["context"].items() if not k.startswith("@")}
    for item in overrides:
        key, sep, value = item.partition("=")
        if not sep:
            raise ValueError(f"context override {item!r} must look like key=value")
        context[key] = value
    return context


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("action", choices=("deploy", "destroy"))
    parser.add_argument("--region")
    parser.add_argument("--with-keys", action="store_true")
    parser.add_argument("-c", "--context", action="append", default=[], help="key=value, as for cdk")
    args = parser.parse_args(argv)
    config = load_config(context_with(args.context))
    if args.action == "deploy":
        names = deploy_order(config, args.region or None)
    else:
        names = destroy_order(config, with_keys=args.with_keys)
    sys.stdout.write(" ".join(names) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
