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
