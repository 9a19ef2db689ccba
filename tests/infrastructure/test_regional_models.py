"""Regional models: every Bedrock id a region can call is in its catalogue entry and granted right.

The ids come from what each region deploys (its AppConfig strategy, the fallback's
FALLBACK_MODEL_ID, the benchmark's strategy); the grants are judged by the IAM evaluator with
the ARNs AWS checks for that id (a profile, and every model it may route to, with the
profile in the condition context).
"""

from __future__ import annotations

import json
from typing import Any

import pytest

from cdk_app.config import load_config
from cdk_app.model_catalogue import catalogue
from tests.iam.actions import _model_needs
from tests.iam.coverage import StackTemplate, _functions, _role_of, _statements
from tests.iam.policy import evaluate
from tests.iam.resolver import ACCOUNT, Resolver
from tests.infrastructure.conftest import cdk_json_context

pytestmark = pytest.mark.synth


def deployed_strategy(template: dict[str, Any]) -> dict[str, Any]:
    versions = [r for r in template["Resources"].values() if r["Type"] == "AWS::AppConfig::HostedConfigurationVersion"]
    assert len(versions) == 1
    return dict(json.loads(versions[0]["Properties"]["Content"]))


def bedrock_ids(strategy: dict[str, Any]) -> set[str]:
    return {
        v["model_id"] for use in strategy["use_cases"].values() for v in use["variants"] if v["provider"] == "bedrock"
    }


def statements_of(stack: StackTemplate, service: str) -> list[Any]:
    _, props = _functions(stack.template)[service]
    return _statements(stack, _role_of(props), Resolver(stack.template, stack.region))


def assert_granted(stack: StackTemplate, service: str, model_id: str) -> None:
    statements = statements_of(stack, service)
    for need in _model_needs("bedrock:InvokeModel", model_id, stack.region, ACCOUNT):
        decision = evaluate(statements, need.action, need.resource, need.context_dict)
        assert decision.allowed, f"{service} in {stack.name} cannot call {model_id}: {need}"


@pytest.mark.parametrize("region", ["us-east-1", "us-west-2"])
def test_every_model_a_region_calls_is_in_its_catalogue_and_granted(synthesized, region):
    stack = StackTemplate(f"FinAi-{region}", region, synthesized.regional(region).to_json(), synthesized.outdir)
    strategy = deployed_strategy(stack.template)
    ids = bedrock_ids(strategy)
    fallback = _functions(stack.template)["fallback"][1]["Environment"]["Variables"]["FALLBACK_MODEL_ID"]
    assert ids and fallback
    for model_id in ids | {fallback}:
        assert catalogue().problem(model_id, region, allow_global=False) is None, model_id
        assert model_id.split(".")[0] in ("us",), f"{model_id}: the defaults use the US geographic profile"
    for model_id in ids:
        assert_granted(stack, "router", model_id)
    assert_granted(stack, "fallback", fallback)
    # The benchmark, where deployed, may call every id of the strategy.
    if "benchmark" in _functions(stack.template):
        for model_id in ids:
            assert_granted(stack, "benchmark", model_id)


def test_a_model_outside_the_grant_is_refused_by_the_same_check(synthesized):
    stack = StackTemplate(
        "FinAi-us-west-2", "us-west-2", synthesized.regional("us-west-2").to_json(), synthesized.outdir
    )
    with pytest.raises(AssertionError, match="cannot call"):
        assert_granted(stack, "fallback", "amazon.nova-micro-v1:0")  # plain id: not what us-west-2 is granted


def test_only_the_stream_function_is_granted_the_streaming_action(synthesized):
    for region in synthesized.config.regions:
        policies = synthesized.regional(region).find_resources("AWS::IAM::Policy")
        streaming = {k for k, p in policies.items() if "bedrock:InvokeModelWithResponseStream" in json.dumps(p)}
        assert len(streaming) == 1 and next(iter(streaming)).startswith("ApiStreamRole"), streaming


def test_catalogue_reads_every_prefix():
    parse = catalogue().parse
    assert parse("global.anthropic.claude-haiku-4-5-20251001-v1:0").profile == "global"
    assert parse("us-gov.anthropic.claude-haiku-4-5-20251001-v1:0").profile == "us-gov"
    assert parse("us.amazon.nova-micro-v1:0").foundation_model == "amazon.nova-micro-v1:0"
    assert parse("amazon.nova-micro-v1:0").profile is None
    assert parse("anthropic.claude-sonnet-4-6").foundation_model == "anthropic.claude-sonnet-4-6"


def test_catalogue_refuses_what_aws_would_refuse():
    problem = catalogue().problem
    assert "not served on demand in us-west-2" in str(
        problem("amazon.nova-micro-v1:0", "us-west-2", allow_global=False)
    )
    assert "us.amazon.nova-micro-v1:0" in str(problem("amazon.nova-micro-v1:0", "us-west-2", allow_global=False))
    assert "LEGACY" in str(problem("anthropic.claude-3-haiku-20240307-v1:0", "us-east-1", allow_global=False))
    assert "data residency" in str(problem("global.amazon.nova-2-lite-v1:0", "us-east-1", allow_global=False))
    assert problem("global.amazon.nova-2-lite-v1:0", "us-east-1", allow_global=True) is None
    assert "cannot be called from eu-west-1" in str(
        problem("us.amazon.nova-micro-v1:0", "eu-west-1", allow_global=False)
    )
    assert "not in the Bedrock catalogue" in str(problem("us.example.model-v9", "us-east-1", allow_global=False))


def test_global_profile_grants_name_the_region_less_model():
    resources = catalogue().invoke_resources(
        "global.amazon.nova-2-lite-v1:0", partition="aws", region="us-east-1", account=ACCOUNT
    )
    assert "arn:aws:bedrock:::foundation-model/amazon.nova-2-lite-v1:0" in resources.routed
    assert resources.profiles == (
        f"arn:aws:bedrock:us-east-1:{ACCOUNT}:inference-profile/global.amazon.nova-2-lite-v1:0",
    )


def test_synth_refuses_a_region_its_models_cannot_reach_and_accepts_a_translation():
    eu = {**cdk_json_context(), "primary_region": "eu-west-1", "secondary_region": "eu-central-1"}
    with pytest.raises(ValueError, match="cannot be called from eu-west-1"):
        load_config(eu)
    translated = {
        region: {m: m.replace("us.", "eu.", 1) for m in load_config(cdk_json_context()).models_in("us-east-1").all_ids}
        for region in ("eu-west-1", "eu-central-1")
    }
    prices = load_config(cdk_json_context()).model_prices
    eu_prices = {m.replace("us.", "eu.", 1): p for m, p in prices.items()}
    config = load_config({**eu, "regional_model_ids": translated, "model_prices": {**prices, **eu_prices}})
    assert all(m.startswith("eu.") for m in config.models_in("eu-central-1").all_ids)
    strategy = config.strategy_for("eu-west-1")
    assert all(m.startswith("eu.") for m in bedrock_ids(strategy))
