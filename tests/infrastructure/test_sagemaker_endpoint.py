"""The SageMaker endpoint tier in the templates: off by default; when enabled, an endpoint with
inference components in each region that SageMaker would accept, reachable by the router and the
stream route only, promoted into by each region's promote function, on the dashboards, and clean
under cdk-nag, cfn-lint and checkov."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest
from cfnlint.api import lint
from cfnlint.config import ManualArgs

from cdk_app.config import EndpointSettings, load_config
from cdk_app.names import base_component_name, endpoint_name
from tests.infrastructure.conftest import cdk_json_context, synthesize
from tests.infrastructure.test_checkov import run_checkov
from tests.infrastructure.test_compliance import findings

pytestmark = pytest.mark.synth
REGIONS = ("us-east-1", "us-west-2")
LMI = "763104351884.dkr.ecr.{region}.amazonaws.com/djl-inference:0.33.0-lmi15.0.0-cu128"
ENDPOINT = {
    "enabled": True,
    "image": LMI,
    "base_model_uris": {r: f"s3://bank-models-{r}/phi-3.5-mini-instruct/" for r in REGIONS},
}
# SageMaker's name rule for endpoints and inference components.
NAME = re.compile(r"^[a-zA-Z0-9]([-a-zA-Z0-9]{0,61}[a-zA-Z0-9])?$")


@pytest.fixture(scope="module")
def enabled(tmp_path_factory: pytest.TempPathFactory) -> Any:
    return synthesize(Path(tmp_path_factory.mktemp("endpoint")), {"serving": {"endpoint": ENDPOINT}})


def resources(template: Any, kind: str) -> dict[str, dict[str, Any]]:
    return {k: v for k, v in template.to_json()["Resources"].items() if v["Type"] == kind}


def statements_of(template: Any, service: str) -> list[dict[str, Any]]:
    """Every policy statement attached to the role of the function whose service is ``service``."""
    doc = template.to_json()["Resources"]
    function = next(
        v
        for v in doc.values()
        if v["Type"] == "AWS::Lambda::Function"
        and v["Properties"].get("Environment", {}).get("Variables", {}).get("POWERTOOLS_SERVICE_NAME") == service
    )
    role = function["Properties"]["Role"]["Fn::GetAtt"][0]
    return [
        s
        for v in doc.values()
        if v["Type"] == "AWS::IAM::Policy" and {"Ref": role} in v["Properties"]["Roles"]
        for s in v["Properties"]["PolicyDocument"]["Statement"]
    ]


def actions(statement: dict[str, Any]) -> list[str]:
    found = statement["Action"]
    return [found] if isinstance(found, str) else found


def test_the_tier_is_off_by_default_and_costs_nothing(synthesized):
    for region in REGIONS:
        template = synthesized.regional(region)
        assert not resources(template, "AWS::SageMaker::Endpoint")
        assert not resources(template, "AWS::SageMaker::InferenceComponent")
        router = next(
            v["Properties"]["Environment"]["Variables"]
            for v in resources(template, "AWS::Lambda::Function").values()
            if v["Properties"].get("Handler") == "router.handler.lambda_handler"
        )
        assert router["SAGEMAKER_ENDPOINTS"] == "{}"
        assert not any("sagemaker:InvokeEndpoint" in actions(s) for s in statements_of(template, "router"))


def test_each_region_has_an_endpoint_with_a_base_component_sagemaker_would_accept(enabled):
    for region in REGIONS:
        template = enabled.regional(region)
        (endpoint,) = resources(template, "AWS::SageMaker::Endpoint").values()
        (config,) = resources(template, "AWS::SageMaker::EndpointConfig").values()
        (model,) = resources(template, "AWS::SageMaker::Model").values()
        (component,) = resources(template, "AWS::SageMaker::InferenceComponent").values()
        assert endpoint["Properties"]["EndpointName"] == endpoint_name("advisor_large") == "finai-advisor-large"
        assert NAME.match(base_component_name("advisor_large"))
        assert component["Properties"]["InferenceComponentName"] == base_component_name("advisor_large")
        # Inference components: the config names an execution role and its variant no model.
        props = config["Properties"]
        assert "ExecutionRoleArn" in props
        (variant,) = props["ProductionVariants"]
        assert "ModelName" not in variant
        assert variant["ManagedInstanceScaling"]["Status"] == "ENABLED"
        # ml.g5 has local NVMe storage: CreateEndpointConfig fails if a KmsKeyId is given.
        assert variant["InstanceType"] == "ml.g5.2xlarge" and "KmsKeyId" not in props
        # The base model's weights come from this region's own bucket, read in place.
        source = model["Properties"]["PrimaryContainer"]["ModelDataSource"]["S3DataSource"]
        assert source["S3Uri"] == f"s3://bank-models-{region}/phi-3.5-mini-instruct/"
        assert (source["S3DataType"], source["CompressionType"]) == ("S3Prefix", "None")
        assert model["Properties"]["EnableNetworkIsolation"] is True
        assert model["Properties"]["PrimaryContainer"]["Image"] == LMI.format(region=region)
        assert (
            component["Properties"]["Specification"]["ComputeResourceRequirements"][
                "NumberOfAcceleratorDevicesRequired"
            ]
            == 1
        )


def test_an_instance_type_without_local_storage_encrypts_its_volume_with_the_platform_key(tmp_path):
    settings = {**ENDPOINT, "instance_type": "ml.g4ad.2xlarge"}
    assert not EndpointSettings(**settings).local_storage
    built = synthesize(tmp_path, {"serving": {"endpoint": settings}})
    (config,) = resources(built.regional("us-east-1"), "AWS::SageMaker::EndpointConfig").values()
    assert "Fn::GetAtt" in config["Properties"]["KmsKeyId"]


def test_only_the_router_and_the_stream_route_may_invoke_it_and_only_this_endpoint(enabled):
    for region in REGIONS:
        template = enabled.regional(region)
        arn = f"arn:aws:sagemaker:{region}:"
        for service in ("router", "api_stream"):
            (grant,) = [s for s in statements_of(template, service) if "sagemaker:InvokeEndpoint" in actions(s)]
            resources_ = json.dumps(grant["Resource"])
            assert f":endpoint/{endpoint_name('advisor_large')}" in resources_ and arn in resources_
            assert ":inference-component/finai-*" in resources_
        doc = template.to_json()["Resources"]
        invokers = {
            json.dumps(v["Properties"]["Roles"])
            for v in doc.values()
            if v["Type"] == "AWS::IAM::Policy"
            and any("sagemaker:InvokeEndpoint" in actions(s) for s in v["Properties"]["PolicyDocument"]["Statement"])
        }
        assert len(invokers) == 2, invokers


def test_the_router_and_stream_route_know_the_endpoint_by_its_target(enabled):
    for region in REGIONS:
        for v in resources(enabled.regional(region), "AWS::Lambda::Function").values():
            variables = v["Properties"].get("Environment", {}).get("Variables", {})
            if variables.get("POWERTOOLS_SERVICE_NAME") in ("router", "api_stream"):
                assert json.loads(variables["SAGEMAKER_ENDPOINTS"]) == {"advisor_large": "finai-advisor-large"}


def test_the_strategy_gains_the_endpoint_variant_and_the_pipeline_its_adapter(enabled):
    config = enabled.config
    for region in REGIONS:
        variants = config.strategy_for(region)["use_cases"]["budgeting_advice"]["variants"]
        (endpoint,) = [v for v in variants if v["provider"] == "sagemaker"]
        assert (endpoint["target"], endpoint["weight"], endpoint["answer_format"]) == ("advisor_large", 0, "plan")
    pipeline = enabled.stacks["FinAi-training"].pipeline
    adapters = pipeline.default_input(config.training, config.serving.endpoint)["adapters"]
    large = next(a for a in adapters if a["name"] == "advisor_large")
    assert large["hyperparameters"]["export-onnx"] == "false"
    assert large["hyperparameters"]["gate-metric"] == "grounded_rate"


def test_each_regions_promote_function_may_create_adapter_components_and_copy_adapters(enabled):
    for region in REGIONS:
        template = enabled.regional(region)
        statements = statements_of(template, "promote")
        (create,) = [s for s in statements if "sagemaker:CreateInferenceComponent" in actions(s)]
        assert set(actions(create)) == {"sagemaker:CreateInferenceComponent", "sagemaker:DescribeInferenceComponent"}
        assert any("s3:PutObject" in actions(s) for s in statements)
        # It reads the promoted training output in the primary region's artifacts bucket.
        assert any(
            "s3:GetObject" in actions(s) and "finai-training-pipelineartifacts*" in json.dumps(s["Resource"])
            for s in statements
        )
        (function,) = [
            v
            for v in resources(template, "AWS::Lambda::Function").values()
            if v["Properties"].get("Environment", {}).get("Variables", {}).get("POWERTOOLS_SERVICE_NAME") == "promote"
        ]
        variables = function["Properties"]["Environment"]["Variables"]
        # The names the function reads its tier from (promote.dal) are the names CDK sets.
        from promote.dal import EndpointAdapters

        assert set(EndpointAdapters("t", "e", "b", "k", object(), object()).environment) <= set(variables)
        assert variables["ENDPOINT_NAME"] == "finai-advisor-large"
        assert variables["ENDPOINT_BASE_COMPONENT"] == "finai-advisor-large-base"


def test_the_dashboard_shows_the_endpoint(enabled):
    dashboards = resources(enabled.regional("us-east-1"), "AWS::CloudWatch::Dashboard")
    body = json.dumps([d["Properties"]["DashboardBody"] for d in dashboards.values()])
    assert "finai-advisor-large" in body and "Invocation5XXErrors" in body and "InferenceComponentName" in body


def test_the_pipeline_waits_for_an_adapter_component_on_a_timer(enabled):
    asl = json.loads((Path(__file__).resolve().parents[2] / "statemachines" / "training_pipeline.asl.json").read_text())
    retry = {r["ErrorEquals"][0]: r for r in asl["States"]["Promote"]["Retry"]}
    assert retry["PromotionPending"]["IntervalSeconds"] * retry["PromotionPending"]["MaxAttempts"] >= 15 * 60


def test_enabled_templates_are_clean_under_cdk_nag_cfn_lint_and_checkov(enabled, tmp_path):
    for name, stack in enabled.stacks.items():
        assert "\n".join(findings(stack)) == "", name
    for path in sorted(enabled.outdir.glob("FinAi-us-*.template.json")):
        matches = lint(path.read_text(), config=ManualArgs(ignore_checks=["W3005"], regions=list(REGIONS)))
        assert [f"{m.rule.id} {m.message}" for m in matches] == [], path.name
        (tmp_path / path.name).write_text(path.read_text())
    failed = [(f["check_id"], f["resource"]) for r in run_checkov(tmp_path) for f in r["results"]["failed_checks"]]
    assert failed == []


@pytest.mark.parametrize(
    ("endpoint", "message"),
    [
        ({"enabled": True, "base_model_uris": ENDPOINT["base_model_uris"]}, "needs image"),
        ({"enabled": True, "image": LMI, "base_model_uris": {"us-east-1": "s3://bank-models/m/"}}, "no base model for"),
        ({**ENDPOINT, "min_instances": 3, "max_instances": 2}, "at least min_instances"),
        ({**ENDPOINT, "base_model_uris": {r: "https://example.com/m" for r in REGIONS}}, "not an s3:// prefix"),
    ],
)
def test_a_misconfigured_endpoint_is_refused_at_synth(endpoint, message):
    with pytest.raises(ValueError, match=message):
        load_config({**cdk_json_context(), "serving": {"endpoint": endpoint}})


def test_a_strategy_that_sends_traffic_to_an_absent_endpoint_is_refused(monkeypatch):
    import cdk_app.config as config_module

    strategy = config_module.load_strategy()
    strategy["use_cases"]["budgeting_advice"]["variants"].append(
        {**EndpointSettings().variant(), "weight": 10, "inference_component": "finai-x"}
    )
    monkeypatch.setattr(config_module, "load_strategy", lambda: json.loads(json.dumps(strategy)))
    with pytest.raises(ValueError, match=r"serving\.endpoint\.enabled is false"):
        load_config(cdk_json_context())
