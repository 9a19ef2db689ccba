"""The serving container Lambdas in the synthesized templates: image assets, sizing, wiring."""

import fnmatch
import json

import pytest
from aws_cdk.assertions import Match

from tests.infrastructure.conftest import synthesize
from tests.infrastructure.test_regional_stack import REGIONS, actions_of, statements_of


def image_functions(template):
    return {
        logical_id: resource
        for logical_id, resource in template.find_resources("AWS::Lambda::Function").items()
        if resource["Properties"].get("PackageType") == "Image"
    }


@pytest.mark.parametrize("region", REGIONS)
def test_two_image_functions_with_two_vcpus_tracing_and_encrypted_environment(synthesized, region):
    functions = image_functions(synthesized.regional(region))
    assert sorted(k[: -len("Function") - 8] for k in functions) == ["ServingAdvisor", "ServingSentiment"]
    for resource in functions.values():
        props = resource["Properties"]
        assert props["MemorySize"] == 3008
        assert props["TracingConfig"] == {"Mode": "Active"}
        assert "KmsKeyArn" in props
        assert props["Environment"]["Variables"]["ORT_THREADS"] == "2"
        assert "MODEL_S3_URI" not in props["Environment"]["Variables"]  # baked into the image by default


def test_image_assets_are_synthesized_from_each_dockerfile(synthesized):
    manifest = json.loads(next(synthesized.outdir.glob("FinAi-us-east-1.assets.json")).read_text())
    images = manifest["dockerImages"].values()
    files = sorted(image["source"]["dockerFile"] for image in images)
    assert files == ["advisor/Dockerfile", "sentiment/Dockerfile"]
    for image in images:
        assert image["source"]["platform"] == "linux/amd64"
        assert (synthesized.outdir / image["source"]["directory"] / image["source"]["dockerFile"]).is_file()


def test_router_maps_targets_to_the_functions_and_may_invoke_only_them(synthesized):
    template = synthesized.regional("us-east-1")
    router = next(
        r for k, r in template.find_resources("AWS::Lambda::Function").items() if k.startswith("RouterFunction")
    )
    providers = router["Properties"]["Environment"]["Variables"]["LAMBDA_PROVIDERS"]
    rendered = json.dumps(providers)
    assert "ServingAdvisor" in rendered and "ServingSentiment" in rendered
    invokes = [s for s in statements_of(template, "RouterRole") if "lambda:InvokeFunction" in actions_of(s)]
    targets = json.dumps([s["Resource"] for s in invokes])
    assert "ServingAdvisor" in targets and "ServingSentiment" in targets
    assert '"*"' not in targets


@pytest.mark.parametrize("region", REGIONS)
def test_both_regions_may_read_exactly_what_promotion_points_at(synthesized, region):
    """Promotion writes a training job's model.tar.gz URI into the strategy of both regions; each
    region's serving functions must be able to fetch it from the primary's artifacts bucket, and
    decrypt it with the training key (in the primary region) through S3 only. /tmp must hold it."""
    from cdk_app.names import artifacts_bucket_pattern, training_stack_name
    from tests.infrastructure.cfn import render

    primary = synthesized.config.primary_region
    training = synthesized.templates["FinAi-training"].to_json()["Resources"]
    artifacts = [
        lid for lid, r in training.items() if r["Type"] == "AWS::S3::Bucket" and lid.startswith("PipelineArtifacts")
    ]
    assert len(artifacts) == 1 and "BucketName" not in training[artifacts[0]]["Properties"]  # retained: not named
    # CloudFormation names it <stack name>-<logical id>-<suffix>, lower case: the pattern must match that.
    generated = f"{training_stack_name()}-{artifacts[0]}-1a2b3c4d5e6f".lower()
    bucket = artifacts_bucket_pattern()
    assert fnmatch.fnmatchcase(generated, bucket) and len(generated) <= 63
    template = synthesized.regional(region)
    for component in ("Advisor", "Sentiment"):
        statements = [render(s, region) for s in statements_of(template, f"Serving{component}Role")]
        reads = [s for s in statements if "s3:GetObject" in actions_of(s)]
        assert [s["Resource"] for s in reads] == [f"arn:aws:s3:::{bucket}/training/finai-*/output/model.tar.gz"]
        decrypts = [s for s in statements if "kms:Decrypt" in actions_of(s) and "Condition" in s]
        assert len(decrypts) == 1
        assert decrypts[0]["Resource"].startswith(f"arn:aws:kms:{primary}:")
        assert decrypts[0]["Condition"] == {
            "StringEquals": {"kms:ViaService": f"s3.{primary}.amazonaws.com"},
            "StringLike": {"kms:EncryptionContext:aws:s3:arn": f"arn:aws:s3:::{bucket}"},
        }
    for function in image_functions(template).values():
        assert function["Properties"]["EphemeralStorage"] == {"Size": 4096}


def test_s3_artifact_config_sets_the_pin_and_grants_only_that_prefix(tmp_path):
    sha = "ab" * 32
    synthesized = synthesize(
        tmp_path,
        {"serving": {"advisor": {"artifact_s3_uri": "s3://finai-models/advisor/v7", "manifest_sha256": sha}}},
    )
    template = synthesized.regional("us-east-1")
    template.has_resource_properties(
        "AWS::Lambda::Function",
        {
            "PackageType": "Image",
            "Environment": {
                "Variables": Match.object_like(
                    {"MODEL_S3_URI": "s3://finai-models/advisor/v7", "MODEL_MANIFEST_SHA256": sha}
                )
            },
        },
    )
    statements = statements_of(template, "ServingAdvisorRole")
    s3_resources = json.dumps([s["Resource"] for s in statements if any(a.startswith("s3:") for a in actions_of(s))])
    assert "finai-models/advisor/v7/*" in s3_resources
    assert "s3:PutObject" not in json.dumps(statements)


@pytest.mark.parametrize(
    ("serving", "message"),
    [
        ({"advisor": {"artifact_s3_uri": "s3://bucket/prefix"}}, "go together"),
        ({"advisor": {"artifact_s3_uri": "http://x/y", "manifest_sha256": "ab" * 32}}, "artifact_s3_uri"),
        ({"memory_mb": 512}, "memory_mb"),
    ],
)
def test_bad_serving_config_fails_synth(serving, message):
    from cdk_app.config import load_config
    from tests.infrastructure.conftest import cdk_json_context

    with pytest.raises(ValueError, match=message):
        load_config({**cdk_json_context(), "serving": serving})
