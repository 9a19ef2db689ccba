"""Properties of each regional template, asserted on what CloudFormation will receive."""

import json
import re
from pathlib import Path
from typing import Any

import pytest
from aws_cdk.assertions import Match, Template

from local.request_path import ASL_PATH, CIRCUIT_KEY_SCHEMA
from stacks.api_front import ROUTES, STAGE

REGIONS = ("us-east-1", "us-west-2")


def only(template: Template, resource_type: str, props: dict[str, Any] | None = None) -> dict[str, Any]:
    found = template.find_resources(resource_type, {"Properties": props} if props else None)
    assert len(found) == 1, f"expected one {resource_type}, found {len(found)}"
    return next(iter(found.values()))


def statements_of(template: Template, role_fragment: str) -> list[dict[str, Any]]:
    policies = template.find_resources("AWS::IAM::Policy")
    found = []
    for logical_id, policy in policies.items():
        if role_fragment in logical_id:
            found.extend(policy["Properties"]["PolicyDocument"]["Statement"])
    assert found, f"no policy for {role_fragment}"
    return found


def actions_of(statement: dict[str, Any]) -> list[str]:
    actions = statement["Action"]
    return [actions] if isinstance(actions, str) else actions


@pytest.mark.parametrize("region", REGIONS)
def test_state_machine_is_express_with_full_logging_and_tracing(synthesized, region):
    template = synthesized.regional(region)
    machine = only(template, "AWS::StepFunctions::StateMachine")["Properties"]
    assert machine["StateMachineType"] == "EXPRESS"
    assert machine["LoggingConfiguration"]["Level"] == "ALL"
    assert machine["LoggingConfiguration"]["IncludeExecutionData"] is False
    assert machine["TracingConfiguration"] == {"Enabled": True}


@pytest.mark.parametrize("region", REGIONS)
def test_state_machine_definition_is_the_shipped_asl_file(synthesized, region):
    """CDK uploads statemachines/circuit_breaker.asl.json unchanged and substitutes only its placeholders."""
    machine = only(synthesized.regional(region), "AWS::StepFunctions::StateMachine")["Properties"]
    asset = synthesized.outdir / f"asset.{machine['DefinitionS3Location']['Key']}"
    shipped = ASL_PATH.read_bytes()
    assert asset.read_bytes() == shipped
    placeholders = set(re.findall(r"\$\{(\w+)\}", shipped.decode()))
    assert set(machine["DefinitionSubstitutions"]) == placeholders


@pytest.mark.parametrize("region", REGIONS)
def test_circuit_table_has_pitr_kms_and_the_key_schema_the_asl_uses(synthesized, region):
    tables = synthesized.regional(region).find_resources("AWS::DynamoDB::GlobalTable")
    table = next(v for k, v in tables.items() if k.startswith("CircuitBreakerCircuits"))["Properties"]
    assert table["KeySchema"] == CIRCUIT_KEY_SCHEMA
    assert table["BillingMode"] == "PAY_PER_REQUEST"
    replica = table["Replicas"][0]
    assert replica["PointInTimeRecoverySpecification"]["PointInTimeRecoveryEnabled"] is True
    assert table["SSESpecification"] == {"SSEEnabled": True, "SSEType": "KMS"}
    assert "Fn::GetAtt" in json.dumps(replica["SSESpecification"]["KMSMasterKeyId"])


@pytest.mark.parametrize("region", REGIONS)
def test_platform_key_rotates(synthesized, region):
    key = only(synthesized.regional(region), "AWS::KMS::Key")["Properties"]
    assert key["EnableKeyRotation"] is True


@pytest.mark.parametrize("region", REGIONS)
def test_api_is_regional_rest_with_body_validation_on_generate(synthesized, region):
    template = synthesized.regional(region)
    api = only(template, "AWS::ApiGateway::RestApi")["Properties"]
    assert api["EndpointConfiguration"]["Types"] == ["REGIONAL"]
    validator = only(template, "AWS::ApiGateway::RequestValidator")["Properties"]
    assert validator["ValidateRequestBody"] is True
    posts = template.find_resources("AWS::ApiGateway::Method", {"Properties": {"HttpMethod": "POST"}})
    assert len(posts) == 2  # /v1/generate and /v1/generate/stream: the same validation and model
    for post in posts.values():
        assert "RequestValidatorId" in post["Properties"] and "RequestModels" in post["Properties"]
        assert post["Properties"]["Integration"]["Type"] == "AWS_PROXY"
    modes = sorted(p["Properties"]["Integration"].get("ResponseTransferMode", "BUFFERED") for p in posts.values())
    assert modes == ["BUFFERED", "STREAM"]
    model = only(template, "AWS::ApiGateway::Model")["Properties"]["Schema"]
    assert model["required"] == ["prompt", "use_case"]
    assert model["additionalProperties"] is False
    assert "maxLength" not in model["properties"]["prompt"], "over-long prompts must reach the function's 413"


@pytest.mark.parametrize("region", REGIONS)
def test_api_routes_are_exactly_the_documented_ones(synthesized, region):
    template = synthesized.regional(region)
    resources = template.find_resources("AWS::ApiGateway::Resource")
    path_of = {lid: r["Properties"]["PathPart"] for lid, r in resources.items()}
    parent_of = {lid: r["Properties"]["ParentId"] for lid, r in resources.items()}

    def full_path(lid: str) -> str:
        parent = parent_of[lid]
        prefix = full_path(parent["Ref"]) if isinstance(parent, dict) and "Ref" in parent else ""
        return f"{prefix}/{path_of[lid]}"

    methods = template.find_resources("AWS::ApiGateway::Method")
    routes = {
        (m["Properties"]["HttpMethod"], full_path(m["Properties"]["ResourceId"]["Ref"])) for m in methods.values()
    }
    assert routes == set(ROUTES)
    openapi = json.loads(Path("docs/openapi.json").read_text())
    documented = {(method.upper(), path) for path, ops in openapi["paths"].items() for method in ops}
    assert documented == set(ROUTES)


@pytest.mark.parametrize("region", REGIONS)
def test_stage_has_access_logs_tracing_and_throttling(synthesized, region):
    stage = only(synthesized.regional(region), "AWS::ApiGateway::Stage")["Properties"]
    assert stage["StageName"] == STAGE
    assert stage["TracingEnabled"] is True
    assert "DestinationArn" in stage["AccessLogSetting"]
    settings = stage["MethodSettings"][0]
    assert settings["LoggingLevel"] == "INFO"
    assert settings["DataTraceEnabled"] is False
    assert settings["ThrottlingRateLimit"] > 0


@pytest.mark.parametrize("region", REGIONS)
def test_functions_trace_and_log_to_their_own_encrypted_groups(synthesized, region):
    template = synthesized.regional(region)
    every_function = template.find_resources("AWS::Lambda::Function")
    functions = {k: f for k, f in every_function.items() if f["Properties"].get("PackageType") != "Image"}
    assert {f["Properties"]["Handler"] for f in functions.values()} == {
        "router.handler.lambda_handler",
        "fallback.handler.lambda_handler",
        "degradation.handler.lambda_handler",
        "api_front.handler.lambda_handler",
        "benchmark.handler.lambda_handler",
        "circuit_monitor.handler.lambda_handler",
        "budgets.handler.lambda_handler",
        "ledger.handler.lambda_handler",
        "promote.handler.lambda_handler",  # promotion from the primary's training pipeline (stacks/promote.py)
        "api_stream/run.sh",  # the Lambda Web Adapter starts the stream server (lambdas/api_stream/server.py)
    }
    for function in functions.values():
        props = function["Properties"]
        assert props["TracingConfig"] == {"Mode": "Active"}
        assert "LogGroup" in props["LoggingConfig"]
        assert any(
            ":layer:AWSLambdaPowertoolsPythonV3-python313-x86_64:" in json.dumps(layer) for layer in props["Layers"]
        )
        assert props["Runtime"] == "python3.13"
    for function in every_function.values():  # the container functions too (tests/infrastructure/test_serving.py)
        assert function["Properties"]["TracingConfig"] == {"Mode": "Active"}
        assert "LogGroup" in function["Properties"]["LoggingConfig"]
    for group in template.find_resources("AWS::Logs::LogGroup").values():
        assert "KmsKeyId" in group["Properties"]
        assert group["Properties"]["RetentionInDays"] == 365


@pytest.mark.parametrize("region", REGIONS)
def test_no_function_role_uses_a_managed_policy(synthesized, region):
    template = synthesized.regional(region)
    roles = template.find_resources("AWS::IAM::Role")
    functions = template.find_resources("AWS::Lambda::Function")
    role_ids = {f["Properties"]["Role"]["Fn::GetAtt"][0] for f in functions.values()}
    assert len(role_ids) == len(functions) == 12, "each function has its own role"
    for role_id in role_ids:
        assert "ManagedPolicyArns" not in roles[role_id]["Properties"], role_id


def rendered(value: Any) -> Any:
    """A template value with CloudFormation's pseudo parameters written out (Fn::Join, Ref)."""
    if isinstance(value, list):
        return [rendered(v) for v in value]
    if isinstance(value, dict) and "Fn::Join" in value:
        separator, parts = value["Fn::Join"]
        return separator.join(str(rendered(p)) for p in parts)
    if isinstance(value, dict) and set(value) == {"Ref"} and value["Ref"].startswith("AWS::"):
        return "${" + value["Ref"] + "}"
    if isinstance(value, dict):
        return {k: rendered(v) for k, v in value.items()}
    return value


def bedrock_grants(template: Template, role: str) -> list[dict[str, Any]]:
    return [
        rendered(s) for s in statements_of(template, role) if any(a.startswith("bedrock:Invoke") for a in actions_of(s))
    ]


@pytest.mark.parametrize("region", REGIONS)
def test_bedrock_access_is_scoped_to_the_profiles_and_their_geography(synthesized, region):
    """Defect: models were granted by plain ids that us-west-2 serves only through profiles."""
    template = synthesized.regional(region)
    models = synthesized.config.models_in(region)
    profile = "arn:aws:bedrock:" + region + ":${AWS::AccountId}:inference-profile/%s"
    us_regions = ("us-east-1", "us-east-2", "us-west-1", "us-west-2")
    router = bedrock_grants(template, "RouterRole")
    assert all(actions_of(s) == ["bedrock:InvokeModel"] for s in router), "Converse needs InvokeModel only"
    direct, routed = router
    assert sorted(direct["Resource"]) == sorted(profile % m for m in models.primary)
    assert "Condition" not in direct
    # Foundation models only in the profiles' own geography, and only through our profiles.
    assert sorted(routed["Resource"]) == sorted(
        f"arn:aws:bedrock:{r}::foundation-model/{m.split('.', 1)[1]}" for m in models.primary for r in us_regions
    )
    assert routed["Condition"] == {"ArnLike": {"bedrock:InferenceProfileArn": sorted(direct["Resource"])}}
    fallback = bedrock_grants(template, "FallbackRole")
    assert fallback[0]["Resource"] == profile % models.fallback
    # The benchmark calls the same primary models, no others; nobody else may call Bedrock.
    assert bedrock_grants(template, "BenchmarkRole") == router
    # The stream calls the primary models and the fallback, by ConverseStream and Converse, scoped the same way.
    stream = bedrock_grants(template, "ApiStreamRole")
    assert all(
        sorted(actions_of(s)) == ["bedrock:InvokeModel", "bedrock:InvokeModelWithResponseStream"] for s in stream
    )
    assert sorted(stream[0]["Resource"]) == sorted(profile % m for m in (*models.primary, models.fallback))
    assert stream[1]["Condition"] == {"ArnLike": {"bedrock:InferenceProfileArn": sorted(stream[0]["Resource"])}}
    for logical_id, policy in template.find_resources("AWS::IAM::Policy").items():
        if not logical_id.startswith(("RouterRole", "FallbackRole", "BenchmarkRole", "ApiStreamRole")):
            assert "bedrock:Invoke" not in json.dumps(policy), logical_id


@pytest.mark.parametrize("region", REGIONS)
def test_the_strategy_is_read_only_through_grant_read_config_by_the_functions_that_need_it(synthesized, region):
    """The router (models), the fronts (budgets; the stream, models too) and the budget sweeper read it."""
    template = synthesized.regional(region)
    readers = ("RouterRole", "ApiFrontRole", "ApiStreamRole", "BudgetsSweeperRole")
    for reader in readers:
        reads = [s for s in statements_of(template, reader) if "appconfig:GetLatestConfiguration" in actions_of(s)]
        assert len(reads) == 1, reader
        assert set(actions_of(reads[0])) == {"appconfig:GetLatestConfiguration", "appconfig:StartConfigurationSession"}
        assert "environment/" in json.dumps(reads[0]["Resource"])
    for logical_id, policy in template.find_resources("AWS::IAM::Policy").items():
        if logical_id.startswith("BenchmarkRole"):  # reads the strategy it benchmarks; publishing is off
            assert "CreateHostedConfigurationVersion" not in json.dumps(policy)
        elif logical_id.startswith("PromoteFunctionRole"):  # publishes promoted adapters: this region's profile only
            rendered = json.dumps(policy)
            assert "GetLatestConfiguration" not in rendered and "ModelConfig" in rendered
        elif not logical_id.startswith(readers):
            assert "appconfig:" not in json.dumps(policy), logical_id


@pytest.mark.parametrize("region", REGIONS)
def test_state_machine_may_only_get_and_update_circuits(synthesized, region):
    template = synthesized.regional(region)
    dynamo = [
        s for s in statements_of(template, "StateMachineRole") if any(a.startswith("dynamodb:") for a in actions_of(s))
    ]
    assert {a for s in dynamo for a in actions_of(s)} == {"dynamodb:GetItem", "dynamodb:UpdateItem"}
    front = [s for s in statements_of(template, "ApiFrontRole") if any(a.startswith("states:") for a in actions_of(s))]
    # Sync for requests; async StartExecution only for the health route's probes (issue 14).
    assert {a for s in front for a in actions_of(s)} == {"states:StartSyncExecution", "states:StartExecution"}


@pytest.mark.parametrize("region", REGIONS)
def test_appconfig_profile_is_validated_by_the_repo_schema_and_rolls_back_on_alarm(synthesized, region):
    template = synthesized.regional(region)
    profile = only(template, "AWS::AppConfig::ConfigurationProfile")["Properties"]
    schema = Path("lambdas/shared/strategy/model_selection.schema.json").read_text()
    assert profile["Validators"] == [{"Type": "JSON_SCHEMA", "Content": schema}]
    version = only(template, "AWS::AppConfig::HostedConfigurationVersion")["Properties"]
    assert json.loads(version["Content"]) == json.loads(
        Path("lambdas/shared/strategy/model_selection.json").read_text()
    )
    env = only(template, "AWS::AppConfig::Environment")["Properties"]
    assert len(env["Monitors"]) == 1
    alarm = only(template, "AWS::CloudWatch::Alarm", {"MetricName": "ModelErrors"})["Properties"]
    assert alarm["AlarmActions"], "every alarm needs an action"
    template.has_resource_properties("AWS::AppConfig::Deployment", Match.object_like({}))


def test_regions_get_their_own_stack_and_values(synthesized):
    for region in REGIONS:
        stack = synthesized.stacks[f"FinAi-{region}"]
        assert stack.region == region


@pytest.mark.parametrize("region", REGIONS)
def test_the_stream_function_runs_behind_the_web_adapter_with_an_executable_handler(synthesized, region):
    """Python has no native streaming runtime: the adapter layer runs run.sh, which must be executable
    in the asset CDK zips, and starts the server on the port the adapter is told."""
    import os

    template = synthesized.regional(region)
    function = only(template, "AWS::Lambda::Function", {"Handler": "api_stream/run.sh"})["Properties"]
    env = function["Environment"]["Variables"]
    assert env["AWS_LAMBDA_EXEC_WRAPPER"] == "/opt/bootstrap" and env["AWS_LWA_INVOKE_MODE"] == "response_stream"
    assert env["AWS_LWA_READINESS_CHECK_PATH"] == "/healthz"
    layers = json.dumps(function["Layers"])
    assert f"arn:aws:lambda:{region}:753240598075:layer:LambdaAdapterLayerX86:" in layers
    asset = synthesized.outdir / f"asset.{function['Code']['S3Key'].removesuffix('.zip')}"
    assert os.access(asset / "api_stream" / "run.sh", os.X_OK)
    method = only(template, "AWS::ApiGateway::Method", {"Integration": {"ResponseTransferMode": "STREAM"}})
    uri = json.dumps(method["Properties"]["Integration"]["Uri"])
    assert "2021-11-15/functions/" in uri and "/response-streaming-invocations" in uri
