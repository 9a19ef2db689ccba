"""Client budgets as CloudFormation receives them: the table, the sweeper, the front's grants."""

from __future__ import annotations

import json
import tempfile
from pathlib import Path
from typing import Any

import pytest

from cdk_app.config import load_config
from cdk_app.names import budget_table_name
from tests.infrastructure.conftest import cdk_json_context
from tests.infrastructure.test_ledger import one, statements_naming

REGIONS = ("us-east-1", "us-west-2")


@pytest.mark.parametrize(("region", "peer"), [("us-east-1", "us-west-2"), ("us-west-2", "us-east-1")])
def test_each_region_has_a_named_budget_table_and_a_sweeper_that_reads_the_other(synthesized, region, peer):
    template = synthesized.regional(region)
    _, table = one(template, "AWS::DynamoDB::GlobalTable", "BudgetsTable")
    props = table["Properties"]
    assert props["TableName"] == budget_table_name(region)
    assert props["TimeToLiveSpecification"] == {"AttributeName": "expires_at", "Enabled": True}
    assert props["SSESpecification"] == {"SSEEnabled": True, "SSEType": "KMS"}
    _, sweeper = one(template, "AWS::Lambda::Function", "BudgetsSweeper")
    env = sweeper["Properties"]["Environment"]["Variables"]
    assert (env["PEER_REGION"], env["PEER_BUDGET_TABLE"]) == (peer, budget_table_name(peer))
    statements = [
        s
        for policy_id, policy in template.find_resources("AWS::IAM::Policy").items()
        if policy_id.startswith("BudgetsSweeper")
        for s in policy["Properties"]["PolicyDocument"]["Statement"]
    ]
    peer_reads = [s for s in statements if f":{peer}:" in json.dumps(s["Resource"])]
    assert {json.dumps(s["Action"]) for s in peer_reads} == {'"dynamodb:Scan"', '"kms:Decrypt"'}
    decrypt = next(s for s in peer_reads if s["Action"] == "kms:Decrypt")
    # The other region's key only through DynamoDB, and only for its budget table.
    assert decrypt["Condition"]["StringEquals"] == {
        "kms:ViaService": f"dynamodb.{peer}.amazonaws.com",
        "kms:EncryptionContext:aws:dynamodb:tableName": budget_table_name(peer),
    }
    _, rule = one(template, "AWS::Events::Rule", "BudgetsSchedule")
    assert rule["Properties"]["ScheduleExpression"] == "rate(1 minute)"


@pytest.mark.parametrize("region", REGIONS)
def test_the_front_reserves_and_settles_with_item_actions_and_reads_its_key_map(synthesized, region):
    template = synthesized.regional(region)
    table_id, _ = one(template, "AWS::DynamoDB::GlobalTable", "BudgetsTable")
    front = [a for p, a in statements_naming(template, table_id) if p.startswith("ApiFront")]
    # TransactWriteItems is authorised per item: UpdateItem (counters), PutItem and DeleteItem (reservations).
    assert set(front[0]) == {"dynamodb:UpdateItem", "dynamodb:PutItem", "dynamodb:DeleteItem", "dynamodb:BatchGetItem"}
    _, function = one(template, "AWS::Lambda::Function", "ApiFrontFunction")
    env = function["Properties"]["Environment"]["Variables"]
    parameter = env["API_CLIENT_KEYS_PARAMETER"]
    _, stored = one(template, "AWS::SSM::Parameter", "ClientKeys")
    assert stored["Properties"]["Name"] == parameter == f"/finai/{region}/api-client-keys"
    reads = [
        s
        for policy_id, policy in template.find_resources("AWS::IAM::Policy").items()
        if policy_id.startswith("ApiFront")
        for s in policy["Properties"]["PolicyDocument"]["Statement"]
        if s["Action"] == "ssm:GetParameter"
    ]
    assert len(reads) == 1 and f':parameter{parameter}"' in json.dumps(reads[0]["Resource"])


@pytest.mark.parametrize("region", REGIONS)
def test_a_budget_alarm_per_client(synthesized, region):
    alarms = synthesized.regional(region).find_resources("AWS::CloudWatch::Alarm")
    names = [json.dumps(a["Properties"].get("AlarmName", "")) for a in alarms.values()]
    assert sum("BudgetAlert-default" in n for n in names) == 1


def context(**overrides: Any) -> dict[str, Any]:
    return {**cdk_json_context(), **overrides}


def test_budgets_from_context_are_validated_and_priced_from_model_prices():
    budgets = {
        "currency": "EUR",
        "alert_share": 0.9,
        "prices": {},
        "default": [{"period": "month", "unit": "cost", "limit": 50}],
        "clients": {"default": [{"period": "day", "unit": "output_tokens", "limit": 1000}]},
    }
    config = load_config(context(budgets=budgets))
    strategy = config.strategy_for("us-east-1")
    assert strategy["budgets"]["currency"] == "EUR"
    assert strategy["budgets"]["prices"]["us.amazon.nova-micro-v1:0"] == [0.000035, 0.00014]
    with pytest.raises(ValueError, match="no API key"):
        load_config(context(budgets={**budgets, "clients": {"nobody": []}}))
    with pytest.raises(ValueError, match="budgets setting"):
        load_config(context(budgets={**budgets, "alert_share": 7}))
    with pytest.raises(ValueError, match="twice"):
        twice = [{"period": "day", "unit": "tokens", "limit": 1}, {"period": "day", "unit": "tokens", "limit": 2}]
        load_config(context(budgets={**budgets, "default": twice}))


def test_synth_with_custom_budgets_keeps_an_alarm_per_client():
    from tests.infrastructure.conftest import synthesize

    synthesized = synthesize(Path(tempfile.mkdtemp()), {"api_clients": ["retail", "wealth"]})
    alarms = synthesized.regional("us-east-1").find_resources("AWS::CloudWatch::Alarm")
    names = " ".join(json.dumps(a["Properties"].get("AlarmName", "")) for a in alarms.values())
    assert "BudgetAlert-retail" in names and "BudgetAlert-wealth" in names
