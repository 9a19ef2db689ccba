"""The training pipeline's promotion step: every region's promote function, primary first."""

import json

import pytest

from promote.dal import InMemoryStrategyStore
from promote.handler import Candidate, PromoteEvent, promote
from promotion.handler import PromotionIncomplete, fan_out, targets_from_env
from tests.unit.test_promote import with_lambda_variant

EVENT = PromoteEvent(
    candidates=[
        Candidate(
            adapter="advisor",
            target="advisor",
            job="advisor-run1",
            artifacts="s3://finai-training-pipelineartifacts-x/training/advisor-run1/output/model.tar.gz",
            model_package_arn="arn:aws:sagemaker:us-east-1:123456789012:model-package/g/1",
        )
    ]
)


def test_the_fan_out_promotes_every_region_primary_first_and_names_what_failed():
    calls = []
    stores = {
        "us-east-1": InMemoryStrategyStore(with_lambda_variant()),
        "us-west-2": InMemoryStrategyStore(with_lambda_variant()),
    }

    def invoke(region, function, event):
        calls.append(region)
        return promote(PromoteEvent.model_validate(event), stores[region])

    targets = targets_from_env(
        {"PROMOTE_FUNCTIONS": json.dumps({r: f"arn:aws:lambda:{r}:1:function:p" for r in stores})}
    )
    result = fan_out(EVENT, targets, invoke)
    assert calls == ["us-east-1", "us-west-2"]
    assert result["promoted"] is True and set(result["regions"]) == set(stores)
    assert all(s.deployed == [2] for s in stores.values())

    def unreachable(region, function, event):
        if region == "us-west-2":
            raise TimeoutError("no answer")
        return invoke(region, function, event)

    with pytest.raises(PromotionIncomplete, match=r"failed in us-west-2 .*already promoted: us-east-1"):
        fan_out(EVENT, targets, unreachable)
    with pytest.raises(ValueError, match="non-empty JSON object"):
        targets_from_env({"PROMOTE_FUNCTIONS": "{}"})
