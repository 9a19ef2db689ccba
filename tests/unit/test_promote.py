"""Promotion: repoint serving variants, publish with compare-and-swap, deploy; real API shapes."""

import copy
import io
import json

import boto3
import pytest
from botocore.stub import ANY, Stubber

from promote.dal import AppConfigStrategyStore, InMemoryStrategyStore
from promote.handler import Candidate, PromoteEvent, promote
from promote.logic import repoint
from shared.strategy import DOCUMENT_PATH, StrategyError

DOCUMENT = json.loads(DOCUMENT_PATH.read_text())
ADVISOR = Candidate(
    adapter="advisor",
    target="advisor",
    job="advisor-run1",
    artifacts="s3://finai-artifacts/a/model.tar.gz",
    model_package_arn="arn:aws:sagemaker:us-east-1:123456789012:model-package/g/1",
)
SENTIMENT = Candidate(
    adapter="sentiment",
    target="sentiment",
    job="sentiment-run1",
    artifacts="s3://finai-artifacts/s/model.tar.gz",
    model_package_arn="arn:aws:sagemaker:us-east-1:123456789012:model-package/g/2",
)
EVENT = PromoteEvent(candidates=[ADVISOR])


def with_lambda_variant():
    document = copy.deepcopy(DOCUMENT)
    document["use_cases"]["budgeting_advice"]["variants"] = [
        {"name": "A", "provider": "lambda", "target": "advisor", "model_id": "advisor-v0", "weight": 100}
    ]
    return document


def test_repoint_changes_only_the_target_variants():
    updated, changed = repoint(
        with_lambda_variant(), target="advisor", model_id="advisor-run1", artifact_uri="s3://bucket/model.tar.gz"
    )
    assert changed == ["budgeting_advice:A"]
    assert updated["use_cases"]["budgeting_advice"]["variants"][0]["artifact_uri"] == "s3://bucket/model.tar.gz"
    assert updated["use_cases"]["general"] == DOCUMENT["use_cases"]["general"]


def test_repoint_refuses_to_produce_an_invalid_strategy():
    with pytest.raises(StrategyError):
        repoint(with_lambda_variant(), target="advisor", model_id="bad id with spaces", artifact_uri="s3://bucket/k")


def test_promote_publishes_then_deploys():
    store = InMemoryStrategyStore(with_lambda_variant())
    result = promote(EVENT, store)
    assert result == {
        "promoted": True,
        "version": 2,
        "deployment": 1,
        "variants": ["budgeting_advice:A"],
        "skipped": [],
    }
    assert store.deployed == [2]


def without_lambda_variants():
    document = copy.deepcopy(DOCUMENT)
    for entry in document["use_cases"].values():
        entry["variants"] = [v for v in entry["variants"] if v["provider"] != "lambda"]
    return document


def test_shipped_strategy_promotes_into_its_dormant_advisor_variant():
    store = InMemoryStrategyStore(copy.deepcopy(DOCUMENT))
    result = promote(EVENT, store)
    assert result["promoted"] is True and result["variants"] == ["budgeting_advice:B"]
    variant = store.versions[-1]["use_cases"]["budgeting_advice"]["variants"][1]
    assert (variant["model_id"], variant["weight"]) == ("advisor-run1", 0)  # traffic stays an operator decision


def test_promote_without_a_serving_variant_changes_nothing():
    store = InMemoryStrategyStore(without_lambda_variants())
    result = promote(EVENT, store)
    assert result["promoted"] is False
    assert result["skipped"] == [{"adapter": "advisor", "reason": "no lambda variant targets 'advisor'"}]
    assert len(store.versions) == 1
    assert store.deployed == []


def test_one_run_promotes_every_adapter_in_one_version_and_one_deployment():
    """An AppConfig environment runs one deployment at a time, so two would collide."""
    store = InMemoryStrategyStore(copy.deepcopy(DOCUMENT))
    result = promote(PromoteEvent(candidates=[ADVISOR, SENTIMENT]), store)
    assert result["variants"] == ["budgeting_advice:B", "sentiment:B"]
    assert (len(store.versions), store.deployed) == (2, [2])
    latest = store.versions[-1]
    assert latest["version"] == "advisor-run1+sentiment-run1"
    assert latest["use_cases"]["sentiment"]["variants"][1]["model_id"] == "sentiment-run1"
    assert latest["use_cases"]["budgeting_advice"]["variants"][1]["model_id"] == "advisor-run1"


def test_a_candidate_without_a_serving_variant_is_skipped_and_the_rest_promoted():
    document = copy.deepcopy(DOCUMENT)
    document["use_cases"]["sentiment"]["variants"] = document["use_cases"]["sentiment"]["variants"][:1]
    store = InMemoryStrategyStore(document)
    result = promote(PromoteEvent(candidates=[ADVISOR, SENTIMENT]), store)
    assert result["promoted"] is True and result["variants"] == ["budgeting_advice:B"]
    assert result["skipped"] == [{"adapter": "sentiment", "reason": "no lambda variant targets 'sentiment'"}]
    assert store.versions[-1]["version"] == "advisor-run1"


def test_an_empty_promotion_is_rejected():
    with pytest.raises(ValueError, match="at least 1"):
        PromoteEvent.model_validate({"candidates": []})


def test_appconfig_store_sends_valid_requests_with_compare_and_swap():
    client = boto3.client("appconfig", region_name="us-east-1")
    ids = {"ApplicationId": "app1234", "ConfigurationProfileId": "prof123"}
    store = AppConfigStrategyStore("app1234", "env1234", "prof123", "strat12", client)
    content = json.dumps(with_lambda_variant()).encode()
    with Stubber(client) as stub:
        stub.add_response(
            "list_hosted_configuration_versions", {"Items": [{"VersionNumber": 7, **ids}]}, {**ids, "MaxResults": 1}
        )
        stub.add_response(
            "get_hosted_configuration_version",
            {"Content": io.BytesIO(content), "VersionNumber": 7, **ids},
            {**ids, "VersionNumber": 7},
        )
        stub.add_response(
            "create_hosted_configuration_version",
            {"VersionNumber": 8, **ids},
            {**ids, "Content": ANY, "ContentType": "application/json", "LatestVersionNumber": 7, "Description": ANY},
        )
        stub.add_response(
            "start_deployment",
            {"DeploymentNumber": 3, **ids},
            {
                **ids,
                "EnvironmentId": "env1234",
                "DeploymentStrategyId": "strat12",
                "ConfigurationVersion": "8",
                "Description": ANY,
            },
        )
        result = promote(EVENT, store)
        stub.assert_no_pending_responses()
    assert (result["version"], result["deployment"]) == (8, 3)


def test_a_repeated_promotion_publishes_and_deploys_nothing():
    """The fan-out's retry runs every region again: one that already has it must not publish twice."""
    store = InMemoryStrategyStore(with_lambda_variant())
    first = promote(EVENT, store)
    again = promote(EVENT, store)
    assert len(store.versions) == 2 and store.deployed == [2]
    assert again["version"] == first["version"] and again["deployment"] is None
    assert again["variants"] == first["variants"]
