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


def artifacts_bucket_pattern() -> str:
    """The training artifacts bucket's name, as an IAM pattern both regions' serving functions can
    be granted on without a cross-region reference. The bucket is retained on destroy, so it is not
    given a fixed name (a redeploy would collide with the retained one); CloudFormation names it
    ``<stack name>-<logical id>-<random suffix>`` in lower case, and the logical id starts with
    the construct path Pipeline/Artifacts (tests/infrastructure/test_serving.py checks both)."""
    return f"{training_stack_name().lower()}-pipelineartifacts*"


# Training jobs write under training/<job name>/output/model.tar.gz; job names start with finai-.
TRAINING_OUTPUT_PREFIX = "training"
JOB_NAME_PREFIX = "finai-"


def promote_function_name(region: str) -> str:
    """Each region's promote function: fixed, so the primary's pipeline can invoke every region's
    by ARN (Lambda function names are unique per region)."""
    return f"{STACK_PREFIX}-promote-{region}"


def endpoint_name(target: str) -> str:
    """A SageMaker endpoint's name (unique per account and region, so the same name in each region)."""
    return f"finai-{target.replace('_', '-')}"


def base_component_name(target: str) -> str:
    """The inference component that holds the endpoint's base model; adapters are created inside it."""
    return f"{endpoint_name(target)}-base"
