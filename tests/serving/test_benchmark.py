"""The foundation-model benchmark: scoring, selection, the strategy it writes, the CLI end to end
on local providers (with the advisor adapter served in process), and publishing to AppConfig."""

import csv
import json

import boto3
import pytest
from benchmark.dal import load_suite, publish
from benchmark.logic import (
    Candidate,
    CaseResult,
    candidates_from,
    estimate_cost,
    jaccard,
    recall,
    strategy_with_winners,
    summarise,
    winners,
)
from moto import mock_aws

from bench import fm_benchmark as cli
from shared.strategy import DOCUMENT_PATH, parse_strategy

STRATEGY = json.loads(DOCUMENT_PATH.read_text())
HAIKU = Candidate("bedrock", "us.anthropic.claude-haiku-4-5-20251001-v1:0")
SONNET = Candidate("bedrock", "us.anthropic.claude-sonnet-4-6")


def result(candidate, quality, latency, cost, use_case="compliance", error=None):
    return CaseResult("c1", use_case, candidate, "x", latency, 10, 10, cost, quality, quality, error)


def test_text_measures():
    assert jaccard("interest on interest", "interest on savings") == pytest.approx(2 / 3)
    assert recall("KYC verifies identity", "KYC rules verify identity") == pytest.approx(2 / 4)
    assert jaccard("", "") == 0.0 and recall("anything", "") == 0.0


def test_suite_covers_every_benchmarked_use_case_with_references():
    cases = load_suite()
    assert {c["use_case"] for c in cases} == {
        "product_question",
        "compliance",
        "account_inquiry",
        "budgeting_advice",
        "general",
    }
    assert all(len(c["reference"].split()) >= 15 for c in cases)


def test_weights_trade_quality_against_latency_and_cost():
    results = [result(SONNET, 0.9, 2000, 0.01), result(HAIKU, 0.6, 500, 0.001)]
    default = {r["model"]: r for r in summarise(results)}
    assert default[HAIKU.key]["latency_score"] == 1.0 and default[SONNET.key]["latency_score"] == 0.25
    assert winners(summarise(results))["compliance"]["model"] == HAIKU.key  # 0.3+0.3+0.2 > 0.45+0.075+0.02
    quality_only = summarise(results, {"quality": 1.0, "latency": 0.0, "cost": 0.0})
    assert winners(quality_only)["compliance"]["model"] == SONNET.key
    with pytest.raises(ValueError, match="summing to 1"):
        summarise(results, {"quality": 0.5, "latency": 0.5, "cost": 0.5})


def test_a_model_that_only_errors_never_wins():
    results = [result(SONNET, 0.0, 10, 0.0, error="Throttling"), result(HAIKU, 0.2, 900, 0.01)]
    assert winners(summarise(results))["compliance"]["model"] == HAIKU.key


def test_cost_comes_from_tokens_and_the_price_table_or_lambda_duration():
    prices = {HAIKU.model_id: (0.00025, 0.00125)}
    assert estimate_cost(HAIKU, 1000, 1000, 50, prices) == pytest.approx(0.0015)
    advisor = Candidate("lambda", "advisor-lora", "advisor")
    assert estimate_cost(advisor, 0, 0, 1000, prices) == pytest.approx(3.008 * 0.0000166667)


def test_strategy_keeps_prompts_and_validates():
    chosen = {"compliance": {"model": HAIKU.key}}
    document = strategy_with_winners(STRATEGY, chosen, candidates_from(STRATEGY), "bench-1")
    parse_strategy(document)
    entry = document["use_cases"]["compliance"]
    assert entry["variants"] == [
        {**STRATEGY["use_cases"]["compliance"]["variants"][0], "model_id": HAIKU.model_id, "weight": 100}
    ]
    assert entry["system_prompt"] == STRATEGY["use_cases"]["compliance"]["system_prompt"]
    assert document["use_cases"]["general"] == STRATEGY["use_cases"]["general"]


def test_cli_offline_end_to_end_including_the_served_adapter(tmp_path, t5_artifacts, capsys, monkeypatch):
    from advisor import handler as advisor

    monkeypatch.setenv("MODEL_DIR", str(t5_artifacts["int8"]))  # restored after the test
    advisor.generator.cache_clear()
    out = tmp_path / "bench"
    assert cli.main(["--offline", "--advisor-artifact", str(t5_artifacts["int8"]), "--out", str(out)]) == 0
    rows = list(csv.DictReader((out / "results.csv").open()))
    cases, models = len(load_suite()), len(candidates_from(STRATEGY))
    assert len(rows) == cases * models
    advisor_rows = [r for r in rows if r["model"] == "lambda:advisor"]
    # The real handler answered every case; the tiny random model's text may decode to nothing,
    # which the router's provider rightly counts as a bad response (quality 0), never a crash.
    assert len(advisor_rows) == cases
    assert all(not r["error"] or r["error"].startswith("BadResponse") for r in advisor_rows)
    assert all("advisor-seq2seq-int8-" in r["error"] for r in advisor_rows if r["error"])
    advisor.generator.cache_clear()
    summary = list(csv.DictReader((out / "summary.csv").open()))
    assert {r["use_case"] for r in summary} == {c["use_case"] for c in load_suite()}
    strategy = json.loads((out / "strategy.json").read_text())
    parse_strategy(strategy)
    assert strategy["version"] == "benchmark-local"
    assert "budgeting_advice" in capsys.readouterr().out


def test_cli_rejects_bad_arguments(capsys):
    with pytest.raises(SystemExit):
        cli.main(["--offline", "--weights", "1,1"])
    with pytest.raises(SystemExit):
        cli.main(["--offline", "--publish"])
    assert "--application-id" in capsys.readouterr().err


def test_publish_creates_a_new_appconfig_version():
    with mock_aws():
        client = boto3.client("appconfig", region_name="us-east-1")
        app = client.create_application(Name="finai")["Id"]
        profile = client.create_configuration_profile(ApplicationId=app, Name="strategy", LocationUri="hosted")["Id"]
        assert publish(STRATEGY, app, profile, client) == 1
        stored = client.get_hosted_configuration_version(
            ApplicationId=app, ConfigurationProfileId=profile, VersionNumber=1
        )
        assert json.loads(stored["Content"].read()) == STRATEGY
