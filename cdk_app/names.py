"""Stack names, kept free of aws_cdk so the Makefile's deploy plan can read them without starting jsii."""

from __future__ import annotations

STACK_PREFIX = "FinAi"


def regional_stack_name(region: str) -> str:
    return f"{STACK_PREFIX}-{region}"


def keys_stack_name() -> str:
    return f"{STACK_PREFIX}-keys"


def training_stack_name() -> str:
    return f"{STACK_PREFIX}-training"


def budget_table_name(region: str) -> str:
    """Fixed per region, so each region's budget sweeper can read the other's (region-scoped, so no clash)."""
    return f"{STACK_PREFIX}-budgets-{region}"


def artifacts_bucket_name(account: str, primary_region: str) -> str:
    """The training artifacts bucket: fixed, so that both regions' serving functions can be granted
    read on the promoted ``model.tar.gz`` without a cross-region reference (bucket names are
    global: the account and region make it ours)."""
    return f"finai-artifacts-{account}-{primary_region}"


# Training jobs write under training/<job name>/output/model.tar.gz; job names start with finai-.
TRAINING_OUTPUT_PREFIX = "training"
JOB_NAME_PREFIX = "finai-"
