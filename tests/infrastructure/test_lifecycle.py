"""The scheduled jobs: lifecycle cleanup (training stack) and the benchmark (each region)."""

import json

from tests.infrastructure.conftest import synthesize
from tests.infrastructure.test_regional_stack import actions_of, statements_of


def function_with_handler(template, handler):
    return next(
        f
        for f in template.find_resources("AWS::Lambda::Function").values()
        if f["Properties"].get("Handler") == handler
    )


def test_cleanup_is_a_daily_dry_run_that_may_never_delete_in_use_resources(synthesized):
    template = synthesized.templates["FinAi-training"]
    cleanup = function_with_handler(template, "cleanup.handler.lambda_handler")
    assert cleanup["Properties"]["Environment"]["Variables"] == {
        **cleanup["Properties"]["Environment"]["Variables"],
        "MAX_AGE_DAYS": "30",
        "DELETE": "false",
    }
    template.has_resource_properties("AWS::Events::Rule", {"ScheduleExpression": "rate(1 day)", "State": "ENABLED"})
    statements = statements_of(template, "CleanupRole")
    deny = [s for s in statements if s["Effect"] == "Deny"]
    assert deny and deny[0]["Condition"] == {"StringEqualsIgnoreCase": {"aws:ResourceTag/finai:in-use": "true"}}
    deletes = [s for s in statements if s["Effect"] == "Allow" and "sagemaker:DeleteModel" in actions_of(s)]
    assert len(deletes) == 1 and '"*"' not in json.dumps(deletes[0]["Resource"])
    # Defect: it could delete any untagged endpoint, config or model in the account. Now only the
    # platform's: a finai- name and the platform tag, in IAM as in the code.
    assert all("/finai-*" in json.dumps(arn) for arn in deletes[0]["Resource"])
    assert deletes[0]["Condition"] == {"StringEquals": {"aws:ResourceTag/finai:platform": "finai"}}
    s3_deletes = [s for s in statements if "s3:DeleteObject*" in actions_of(s)]
    assert "/training/finai-*" in json.dumps(s3_deletes[0]["Resource"])


def test_cleanup_deletes_only_when_configured(tmp_path):
    custom = synthesize(tmp_path, {"training": {"cleanup_delete": True, "cleanup_max_age_days": 7}})
    cleanup = function_with_handler(custom.templates["FinAi-training"], "cleanup.handler.lambda_handler")
    variables = cleanup["Properties"]["Environment"]["Variables"]
    assert (variables["DELETE"], variables["MAX_AGE_DAYS"]) == ("true", "7")


def test_benchmark_schedule_is_off_and_it_cannot_publish_by_default(synthesized):
    template = synthesized.regional("us-east-1")
    benchmark = function_with_handler(template, "benchmark.handler.lambda_handler")
    variables = benchmark["Properties"]["Environment"]["Variables"]
    assert variables["PUBLISH"] == "false" and "MODEL_PRICES" in variables
    rules = [
        r
        for r in template.find_resources("AWS::Events::Rule").values()
        if "benchmark" in r["Properties"].get("Description", "").lower()
    ]
    assert rules and rules[0]["Properties"]["State"] == "DISABLED"
