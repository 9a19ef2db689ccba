"""IAM coverage: what our functions and state machines call is what their roles allow.

The judgement (last test) reads every AWS call recorded during this pytest session; the
canaries before it prove the judge denies what AWS would deny.
"""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any
from unittest import mock

import pytest

from cdk_app.names import budget_table_name
from tests.iam.actions import CallSite, iam_action, known_action, needs_of
from tests.iam.coverage import Judge, StackTemplate, judge, task_needs
from tests.iam.recorder import Recorded, Recorder

REPO = Path(__file__).resolve().parents[2]
REPORT = REPO / "build" / "iam-coverage.json"

pytestmark = pytest.mark.synth
MACHINE = "arn:aws:states:us-east-1:123456789012:stateMachine:circuit-breaker"
EXECUTION = "arn:aws:states:us-east-1:123456789012:execution:circuit-breaker:run-1"


def stacks_of(synthesized: Any) -> list[StackTemplate]:
    return [
        StackTemplate(name, synthesized.stacks[name].region, template.to_json(), synthesized.outdir)
        for name, template in synthesized.templates.items()
    ]


def env_of(stacks: list[StackTemplate], stack: str, service: str, **values: str) -> dict[str, str]:
    """The environment a function would run with: literal values from the template, names given."""
    template = next(s.template for s in stacks if s.name == stack)
    for resource in template["Resources"].values():
        variables = resource.get("Properties", {}).get("Environment", {}).get("Variables", {})
        if resource["Type"] == "AWS::Lambda::Function" and variables.get("POWERTOOLS_SERVICE_NAME") == service:
            return {k: v for k, v in variables.items() if isinstance(v, str)} | values
    raise AssertionError(f"no function {service} in {stack}")


def call(
    principal: str, service: str, operation: str, env: dict[str, str], site: str = "handler", **params: Any
) -> Recorded:
    return Recorded(principal, site, service, operation, "us-east-1", params, env, "canary")


@pytest.fixture(scope="module")
def stacks(synthesized: Any) -> list[StackTemplate]:
    return stacks_of(synthesized)


@pytest.fixture(scope="module")
def endpoint_stacks(tmp_path_factory: pytest.TempPathFactory) -> list[StackTemplate]:
    """The app with the SageMaker endpoint tier on (off by default): its calls are judged here."""
    from tests.infrastructure.conftest import synthesize
    from tests.infrastructure.test_sagemaker_endpoint import ENDPOINT

    return stacks_of(synthesize(Path(tmp_path_factory.mktemp("iam-endpoint")), {"serving": {"endpoint": ENDPOINT}}))


def endpoint_tier(call: Recorded) -> bool:
    """A call only a deployment with the endpoint tier makes (InvokeEndpoint, adapter components,
    the adapter copy): judged against that deployment's templates."""
    return (
        call.service == "sagemaker-runtime"
        or (call.service == "sagemaker" and "InferenceComponent" in call.operation)
        or call.site.startswith("EndpointAdapters.")
    )


def test_the_router_may_invoke_only_its_own_endpoint_and_components(endpoint_stacks, stacks):
    env = env_of(endpoint_stacks, "FinAi-us-east-1", "router")
    own = call("router", "sagemaker-runtime", "InvokeEndpoint", env, EndpointName="finai-advisor-large")
    own.params["InferenceComponentName"] = "finai-0123-2-0"
    assert not judge([own], endpoint_stacks).denied
    other = call("router", "sagemaker-runtime", "InvokeEndpoint", env, EndpointName="someone-elses-endpoint")
    assert judge([other], endpoint_stacks).denied
    # Without the tier (the default deployment) the router may invoke no endpoint at all.
    assert judge([own], stacks).denied


def test_the_router_may_call_its_primary_model_through_the_profile(stacks):
    env = env_of(stacks, "FinAi-us-east-1", "router")
    model = "us.anthropic.claude-haiku-4-5-20251001-v1:0"
    report = judge([call("router", "bedrock-runtime", "Converse", env, modelId=model)], stacks)
    assert not report.denied, [f.describe() for f in report.denied]
    assert report.allowed >= 4  # the profile and the model in each of its destination regions


def test_a_model_the_region_does_not_grant_is_denied(stacks):
    env = env_of(stacks, "FinAi-us-east-1", "router")
    report = judge([call("router", "bedrock-runtime", "Converse", env, modelId="eu.amazon.nova-micro-v1:0")], stacks)
    assert report.denied and all(f.need.action == "bedrock:InvokeModel" for f in report.denied)


def test_removing_a_grant_turns_the_same_call_into_a_denial(stacks):
    env = env_of(
        stacks, "FinAi-us-east-1", "api_front", CIRCUIT_TABLE="circuits", BUDGET_TABLE=budget_table_name("us-east-1")
    )
    # The reservation item of a budget reserve: one Put inside the transaction.
    audit = call(
        "api_front",
        "dynamodb",
        "TransactWriteItems",
        env,
        TransactItems=[{"Put": {"TableName": env["BUDGET_TABLE"]}}],
    )
    assert not judge([audit], stacks).denied
    stripped = copy.deepcopy(stacks)
    template = next(s.template for s in stripped if s.name == "FinAi-us-east-1")
    for resource in template["Resources"].values():
        if resource["Type"] == "AWS::IAM::Policy":
            for statement in resource["Properties"]["PolicyDocument"]["Statement"]:
                actions = statement["Action"] if isinstance(statement["Action"], list) else [statement["Action"]]
                statement["Action"] = [a for a in actions if a != "dynamodb:PutItem"] or ["dynamodb:DescribeTable"]
    denied = judge([audit], stripped).denied
    assert [(f.principal, f.need.action) for f in denied] == [("api_front", "dynamodb:PutItem")]


def test_a_table_the_function_was_not_given_is_denied(stacks):
    env = env_of(stacks, "FinAi-us-east-1", "circuit_monitor", CIRCUIT_TABLE="circuits")
    report = judge([call("circuit_monitor", "dynamodb", "Scan", env, TableName="someone-elses-table")], stacks)
    assert report.denied


def test_a_call_in_a_configuration_not_deployed_warns_instead_of_failing(stacks):
    env = env_of(stacks, "FinAi-us-east-1", "api_front", STATE_MACHINE_ARN=MACHINE)
    env["EXECUTION_MODE"] = "poll"  # the template deploys sync
    polled = call("api_front", "stepfunctions", "DescribeExecution", env, "PollingExecutor.run", executionArn=EXECUTION)
    report = judge([polled], stacks)
    assert not report.denied and report.warnings
    # The health route's probe runs in every mode: the same configuration does not excuse it.
    probe = call("api_front", "stepfunctions", "StartExecution", env, "ProbeStarter.request", stateMachineArn=MACHINE)
    judge_ = Judge(stacks)
    judge_.judge_call(probe)
    assert not judge_.report.warnings and not judge_.report.denied and judge_.report.allowed == 1


def test_every_state_machine_task_is_allowed(stacks):
    judge_ = Judge(stacks)
    judge_.judge_state_machines()
    assert not judge_.report.denied, [f.describe() for f in judge_.report.denied]
    assert judge_.report.allowed >= 12 + 9  # the breaker's tasks and the pipeline's .sync needs


def test_a_pass_role_to_another_service_is_denied():
    from tests.iam.policy import Statement, evaluate

    need = task_needs(
        {
            "Resource": "arn:aws:states:::sagemaker:createTrainingJob.sync",
            "Parameters": {"TrainingJobName.$": "States.Format('finai-{}', $.x)", "RoleArn": "arn:aws:iam::1:role/r"},
        },
        "us-east-1",
    )[3]
    statement = Statement.parse(
        {
            "Effect": "Allow",
            "Action": "iam:PassRole",
            "Resource": "arn:aws:iam::1:role/r",
            "Condition": {"StringEquals": {"iam:PassedToService": "ec2.amazonaws.com"}},
        }
    )
    assert need.action == "iam:PassRole"
    assert not evaluate([statement], need.action, need.resource, need.context_dict).allowed


def test_action_names_and_arn_shapes_come_from_the_iam_database():
    assert iam_action("bedrock-runtime", "Converse") == "bedrock:InvokeModel"
    assert iam_action("s3", "HeadObject") == "s3:GetObject"
    with pytest.raises(ValueError, match="not an IAM action"):
        known_action("bedrock:Converse")  # the API operation, not the action IAM checks
    with pytest.raises(ValueError, match="not an ARN"):
        needs_of(CallSite("lambda", "Invoke", "us-east-1", "1", {"FunctionName": "arn:aws:s3:::bucket"}), {})


def test_the_recorder_names_the_function_and_skips_test_code():
    from unittest import mock

    import boto3
    from circuit_monitor import handler
    from moto import mock_aws

    from local.request_path import CIRCUIT_KEY_SCHEMA, FakeContext, create_table

    local = Recorder()
    with mock.patch.dict("os.environ", {"CIRCUIT_TABLE": "circuits"}), mock_aws():
        client = boto3.client("dynamodb", region_name="us-east-1")
        create_table(client, "circuits", CIRCUIT_KEY_SCHEMA)
        handler.reader.cache_clear()
        local.install()
        try:
            client.describe_table(TableName="circuits")  # the test's own call: no function's
            handler.lambda_handler({}, FakeContext("circuit_monitor", "us-east-1"))
        finally:
            local.uninstall()
            handler.reader.cache_clear()
    assert [(c.principal, c.site, c.service, c.operation, c.params) for c in local.calls] == [
        ("circuit_monitor", "report", "dynamodb", "Scan", {"TableName": "circuits"})
    ]
    assert local.calls[0].env["CIRCUIT_TABLE"] == "circuits"


@pytest.mark.iam_coverage
def test_every_recorded_call_is_allowed(
    recorder: Recorder, stacks: list[StackTemplate], endpoint_stacks: list[StackTemplate]
):
    """Runs last: every call any test made from a function, judged against that function's role."""
    from local.request_path import local_request_path

    # A short end-to-end run of its own, so the judgement has the request path even when run alone.
    with local_request_path() as path:
        ask = json.dumps({"prompt": "How do I build an emergency fund?", "use_case": "general"})
        path.api("POST", "/v1/generate", ask)  # the primary answers
        for model in {c.params.get("modelId") for c in recorder.calls if c.service == "bedrock-runtime"}:
            path.bedrock.fail(str(model))
        path.api("POST", "/v1/generate", ask)  # the fallback, or the static answer
        path.api("GET", "/v1/health")
        # The deployed mode (StartSyncExecution): moto does not implement the call, so the front
        # serves its static answer, but the call is made, recorded and judged like any other.
        with mock.patch.dict("os.environ", {"EXECUTION_MODE": "sync"}):
            from api_front import handler as front

            front.settings.cache_clear()
            front.executor.cache_clear()
            path.api("POST", "/v1/generate", ask)
            front.settings.cache_clear()
            front.executor.cache_clear()
    report = judge([c for c in recorder.calls if not endpoint_tier(c)], stacks)
    tier = judge([c for c in recorder.calls if endpoint_tier(c)], endpoint_stacks)
    REPORT.parent.mkdir(exist_ok=True)
    REPORT.write_text(
        json.dumps({**report.as_json(), "endpoint_tier": tier.as_json()}, indent=2, sort_keys=True) + "\n"
    )
    assert not tier.unknown_principals, tier.unknown_principals
    assert not tier.denied, "\n".join(f.describe() for f in tier.denied)
    principals = {c.principal for c in recorder.calls}
    assert {"router", "api_front"} <= principals, principals
    assert not report.unknown_principals, report.unknown_principals
    assert not report.denied, "\n".join(f.describe() for f in report.denied)
    sync = [c for c in recorder.calls if c.operation == "StartSyncExecution" and c.env.get("EXECUTION_MODE") == "sync"]
    assert sync and not [f for f in report.warnings if "StartSyncExecution" in f.describe()]
