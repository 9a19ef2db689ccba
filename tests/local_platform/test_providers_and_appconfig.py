"""Which provider serves is configuration: the local strategy (published to moto's AppConfig and
read by the router through the agent endpoint) sends budgeting advice and sentiment to the locally
trained adapters; publishing another strategy moves them, and an invalid one is refused."""

import json
from pathlib import Path

import requests

ROOT = Path(__file__).resolve().parents[2]
LOCAL_STRATEGY = json.loads((ROOT / "local" / "strategy.local.json").read_text())
# A profile as the platform writes it (shared.budgeting.format_prompt): what the advisor answers.
PROFILE_PROMPT = (
    "Give 2-3 actionable budgeting steps with estimated monthly savings.\n"
    "Period: last month (30 days) to 2025-06-30.\n"
    "Monthly income: USD 4,200. Monthly spending: USD 3,100. Savings rate: 26%.\n"
    "Top categories per month: Dining USD 620, Groceries USD 410, Shopping USD 300.\n"
    "Recurring payments: none.\n"
    "Change vs previous period: Dining +30%."
)
# The local strategy splits budgeting advice 80/20 between the advisor Lambda (B) and the endpoint
# (C), sticky per user (router.logic.bucket): these users land in each.
LAMBDA_USER, ENDPOINT_USER = "grace", "ivan"


def test_budgeting_advice_is_served_by_the_local_adapter(served):
    served.reset()
    before = served.status()["regions"]["us-east-1"]["lambda_invocations"].get("advisor", 0)
    response = served.generate(PROFILE_PROMPT, use_case="budgeting_advice", user_id=LAMBDA_USER)
    assert response.status_code == 200
    body = response.json()
    assert body["tier"] == "primary"
    assert body["model_used"].startswith("advisor-seq2seq-int8-")  # the artifact's model_version
    assert served.status()["regions"]["us-east-1"]["lambda_invocations"]["advisor"] == before + 1
    # Charged what the serving function counted: the prompt's tokens and the answer's.
    assert body["usage"]["input_tokens"] > 0 and body["usage"]["output_tokens"] > 0


def test_the_endpoint_tier_serves_its_share_of_budgeting_advice_and_its_faults_count(served):
    """Variant C: the SageMaker endpoint stand-in, through the real router (InvokeEndpoint).
    The tiny test advisor writes free plans, so either the endpoint's plan is rendered (primary)
    or it names an unsupported step and the baseline answers (a task failure, not counted)."""
    served.reset()
    before = served.status()["regions"]["us-east-1"]["endpoint_invocations"].get("finai-advisor-large-local", 0)
    body = served.generate(PROFILE_PROMPT, use_case="budgeting_advice", user_id=ENDPOINT_USER).json()
    assert served.status()["regions"]["us-east-1"]["endpoint_invocations"]["finai-advisor-large-local"] == before + 1
    if body["tier"] == "primary":
        assert body["model_used"] == "advisor-large-lora"
    else:
        assert (body["primary_failure"]["model"], body["primary_failure"]["code"]) == (
            "advisor-large-lora",
            "MalformedPlan",
        )
    # Chaos by model id reaches the endpoint as SageMaker's ModelError, and the circuit counts it.
    served.admin("/admin/chaos", {"model": "advisor-large-lora", "error_rate": 1.0, "region": "us-east-1"})
    body = served.generate(PROFILE_PROMPT, use_case="budgeting_advice", user_id=ENDPOINT_USER).json()
    assert body["tier"] == "fallback" and body["primary_failure"]["code"] == "ModelError"
    circuit = served.status()["regions"]["us-east-1"]["circuits"]["advisor-large-lora"]
    assert (circuit["state"], circuit["failures"]) == ("CLOSED", 1)
    served.reset()


def test_sentiment_is_served_by_the_local_classifier_and_falls_back_under_chaos(served):
    served.reset()
    text = "Shares fell after the bank cut its dividend and issued a profit warning."
    response = served.generate(text, use_case="sentiment")
    assert response.status_code == 200
    body = response.json()
    assert (body["tier"], body["attempt"]) == ("primary", 1)
    assert body["model_used"].startswith("sentiment-classifier-int8-")  # the artifact's model_version
    result = body["sentiment"]
    assert set(result["probabilities"]) == {"negative", "neutral", "positive"}
    assert result["confidence"] == max(result["probabilities"].values())
    assert result["label"] == max(result["probabilities"], key=result["probabilities"].get)
    assert served.status()["regions"]["us-east-1"]["lambda_invocations"]["sentiment"] >= 1

    # The same chaos control that fails a Bedrock model fails the serving Lambda (by its model id):
    # the fallback model labels the text, and the adapter's circuit counts the failure.
    served.admin("/admin/chaos", {"model": "sentiment-lora", "error_rate": 1.0, "region": "us-east-1"})
    body = served.generate(text, use_case="sentiment").json()
    assert (body["tier"], body["model_used"]) == ("fallback", "us.amazon.nova-micro-v1:0")
    assert body["sentiment"]["label"] == "negative" and body["sentiment"]["probabilities"] is None
    circuit = served.status()["regions"]["us-east-1"]["circuits"]["sentiment-lora"]
    assert (circuit["state"], circuit["failures"]) == ("CLOSED", 1)
    served.reset()


def test_the_agent_endpoint_serves_the_published_strategy(served):
    served.admin("/admin/strategy", LOCAL_STRATEGY)
    state = served.status()["regions"]["us-east-1"]
    ids = state["appconfig"]
    region = f"http://127.0.0.1:{served.port + 1}"
    path = f"/applications/{ids['application']}/environments/{ids['environment']}/configurations/{ids['profile']}"
    served_doc = requests.get(region + path, timeout=10).json()
    assert served_doc == LOCAL_STRATEGY  # what the router reads is what was published to AppConfig
    assert requests.get(f"{region}/applications/x/environments/y/configurations/z", timeout=10).status_code == 404


def test_publishing_a_strategy_moves_traffic_and_invalid_ones_are_refused(served):
    served.reset()
    bedrock_only = json.loads(json.dumps(LOCAL_STRATEGY))
    bedrock_only["version"] = "local-bedrock-1"
    variants = bedrock_only["use_cases"]["budgeting_advice"]["variants"]
    variants[0]["weight"], variants[1]["weight"], variants[2]["weight"] = 100, 0, 0
    versions = served.admin("/admin/strategy", bedrock_only)["versions"]
    assert set(versions) == {"us-east-1", "us-west-2"}
    body = served.generate(PROFILE_PROMPT, use_case="budgeting_advice", user_id=ENDPOINT_USER).json()
    assert body["model_used"] == "us.anthropic.claude-haiku-4-5-20251001-v1:0"

    broken = json.loads(json.dumps(LOCAL_STRATEGY))
    broken["use_cases"]["budgeting_advice"]["variants"][0]["weight"] = 1000
    response = requests.post(f"{served.url}/admin/strategy", json=broken, timeout=10)
    assert response.status_code == 400 and "strategy rejected" in response.json()["message"]
    served.admin("/admin/strategy", LOCAL_STRATEGY)
    answer = served.generate(PROFILE_PROMPT, use_case="budgeting_advice", user_id=LAMBDA_USER).json()
    assert answer["model_used"].startswith("advisor-seq2seq-int8-")
