"""statemachines/training_pipeline.asl.json executed by moto; SageMaker answered at the API level."""

import copy
import json
import re
from unittest import mock

import pytest

from local.sagemaker_stub import OfflineSageMaker
from local.training_pipeline import GROUP, SUBSTITUTIONS, adapter_input, local_training_pipeline
from promote.dal import InMemoryStrategyStore
from shared.strategy import DOCUMENT_PATH
from tests.serving.conftest import InProcessSentiment

ADVISOR_VARIANT = {"name": "L", "provider": "lambda", "target": "advisor", "model_id": "advisor-v0", "weight": 0}
ADAPTERS = [
    adapter_input("sentiment", "sentiment", 0.70, "train_sentiment.py"),
    adapter_input("advisor", "advisor", 0.80, "train_advisor.py"),
]


@pytest.fixture
def strategy():
    document = json.loads(DOCUMENT_PATH.read_text())
    document["use_cases"]["budgeting_advice"]["variants"].append(copy.deepcopy(ADVISOR_VARIANT))
    return InMemoryStrategyStore(document)


def test_passing_gates_register_each_adapter_and_promote_them_together(strategy):
    sagemaker = OfflineSageMaker(gate_values={"sentiment": 0.77, "advisor": 0.90})
    with local_training_pipeline(sagemaker, strategy) as pipeline:
        result = pipeline.run(ADAPTERS)
        packages = pipeline.model_packages()
    assert result["status"] == "SUCCEEDED", result
    outcomes = {r["adapter"]["name"]: r for r in result["output"]["results"]}
    assert outcomes["sentiment"]["training"]["metrics"][0]["Value"] == 0.77
    assert len(packages) == 2
    assert all(p["ModelPackageGroupName"] == GROUP for p in packages)
    promoted = result["output"]["promoted"]["value"]
    assert promoted["promoted"] is True and promoted["skipped"] == []
    # One strategy version and one deployment for the run: the shipped dormant sentiment variant B
    # and both advisor variants (B and the test's L) now serve the new jobs.
    assert sorted(promoted["variants"]) == ["budgeting_advice:B", "budgeting_advice:L", "sentiment:B"]
    assert len(strategy.versions) == 2 and strategy.deployed == [2]
    latest = strategy.versions[-1]["use_cases"]
    for use_case, adapter in (("budgeting_advice", "advisor"), ("sentiment", "sentiment")):
        job = outcomes[adapter]["training"]["job"]
        variant = latest[use_case]["variants"][-1]
        assert variant["model_id"] == job
        assert variant["artifact_uri"] == f"s3://{SUBSTITUTIONS['ArtifactsBucket']}/training/{job}/output/model.tar.gz"


def test_a_gate_below_threshold_fails_the_pipeline_and_promotes_nothing(strategy):
    sagemaker = OfflineSageMaker(gate_values={"sentiment": 0.77, "advisor": 0.42})
    with local_training_pipeline(sagemaker, strategy) as pipeline:
        result = pipeline.run(ADAPTERS)
    assert result["status"] == "FAILED"
    assert result["error"] == "EvaluationGateFailed"
    assert strategy.deployed == []
    assert all(
        v["use_cases"]["budgeting_advice"]["variants"][-1]["model_id"] == "advisor-v0" for v in strategy.versions
    )


def test_a_missing_gate_metric_fails_the_gate(strategy):
    sagemaker = OfflineSageMaker(gate_values={"sentiment": 0.9})  # the advisor job reported nothing
    with local_training_pipeline(sagemaker, strategy) as pipeline:
        result = pipeline.run(ADAPTERS)
    assert (result["status"], result["error"]) == ("FAILED", "EvaluationGateFailed")


def test_a_failed_training_job_fails_the_pipeline(strategy):
    sagemaker = OfflineSageMaker(gate_values={"sentiment": 0.9, "advisor": 0.9}, failing={"advisor"})
    with local_training_pipeline(sagemaker, strategy) as pipeline:
        result = pipeline.run(ADAPTERS)
        failures = pipeline.task_failures()
    assert result["status"] == "FAILED"
    # moto re-raises a States.* error out of a Map as States.Runtime; the task's own event is exact.
    scripted = [f for f in failures if "AlgorithmError: scripted failure" in f.get("cause", "")]
    assert [f["error"] for f in scripted] == ["States.TaskFailed"]
    # On a loaded machine the sibling iteration, cancelled when the Map fails, may add moto's
    # States.Runtime event (seen once in a full run); nothing else may fail.
    assert {f["error"] for f in failures} <= {"States.TaskFailed", "States.Runtime"}
    assert strategy.deployed == []
    assert len(strategy.versions) == 1


def test_training_request_is_isolated_encrypted_and_sized_from_config(strategy):
    sagemaker = OfflineSageMaker(gate_values={"sentiment": 0.9})
    with local_training_pipeline(sagemaker, strategy) as pipeline:
        pipeline.run([ADAPTERS[0]])
    request = sagemaker.requests[0]
    assert request["EnableNetworkIsolation"] is True
    assert request["EnableInterContainerTrafficEncryption"] is True
    assert request["ResourceConfig"]["InstanceType"] == SUBSTITUTIONS["InstanceType"]
    assert request["ResourceConfig"]["VolumeKmsKeyId"] == SUBSTITUTIONS["KmsKeyArn"]
    assert request["OutputDataConfig"]["KmsKeyId"] == SUBSTITUTIONS["KmsKeyArn"]
    assert request["HyperParameters"]["sagemaker_program"] == "train_sentiment.py"
    channels = {c["ChannelName"]: c["DataSource"]["S3DataSource"] for c in request["InputDataConfig"]}
    assert set(channels) == {"train", "base", "code"}
    # Under network isolation the container cannot download an s3:// submit directory: the code
    # arrives as a channel and the toolkit reads the tarball from the channel's path.
    assert channels["code"]["S3Uri"] == SUBSTITUTIONS["SourceDirUri"]
    assert request["HyperParameters"]["sagemaker_submit_directory"] == "/opt/ml/input/data/code/sourcedir.tar.gz"
    assert not any(str(v).startswith("s3://") for v in request["HyperParameters"].values())
    # SageMaker writes the channel's one object into the channel folder under its own name.
    code_object = channels["code"]["S3Uri"].rsplit("/", 1)[1]
    assert request["HyperParameters"]["sagemaker_submit_directory"] == f"/opt/ml/input/data/code/{code_object}"
    assert request["AlgorithmSpecification"]["MetricDefinitions"] == [
        {"Name": "gate", "Regex": "GATE_METRIC=([0-9.]+)"}
    ]


JOB_NAME = re.compile(r"^[a-zA-Z0-9](-*[a-zA-Z0-9]){0,62}$")  # SageMaker's rule


def test_job_names_are_valid_for_any_execution_name_and_new_on_every_retry(strategy):
    """Execution names may be 80 characters with underscores; SageMaker allows 63 without. A
    throttled CreateTrainingJob is retried under a new name (a reused one would be refused)."""
    sagemaker = OfflineSageMaker(gate_values={"sentiment": 0.9, "advisor": 0.9}, throttle=1)
    with local_training_pipeline(sagemaker, strategy) as pipeline:
        result = pipeline.run(ADAPTERS, name="nightly_retrain_" + "x" * 64)
    assert result["status"] == "SUCCEEDED", result
    names = [r["TrainingJobName"] for r in sagemaker.requests]
    assert len(sagemaker.refused) == 1 and len(set(names)) == 2
    assert sagemaker.refused[0] not in names
    assert all(JOB_NAME.match(name) for name in [*names, *sagemaker.refused]), names
    assert {n.rsplit("-", 2)[0] for n in names} == {sagemaker.refused[0].rsplit("-", 2)[0]}  # one run, one prefix


@pytest.fixture(scope="module")
def trained_sentiment_tarball(tmp_path_factory):
    """What a sentiment job leaves in S3: its model folder, with the exported artifact in serve/."""
    import io
    import tarfile

    from training_jobs.common.tiny_models import build_bert, random_adapter
    from training_jobs.data.sentiment import LABELS
    from training_jobs.export.onnx_export import export

    root = tmp_path_factory.mktemp("promoted-sentiment")
    adapter = random_adapter(build_bert(root / "base"), root / "model", labels=list(LABELS))
    export(adapter, adapter / "serve", "int8", max_input_tokens=48)
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w:gz") as archive:
        for path in sorted(adapter.rglob("*")):
            if path.is_file():
                archive.add(path, arcname=str(path.relative_to(adapter)))
    version = json.loads((adapter / "serve" / "manifest.json").read_text())["model_version"]
    return raw.getvalue(), version


def test_promotion_reaches_both_regions_and_the_next_request_is_answered_by_the_artifact(
    strategy, trained_sentiment_tarball, monkeypatch, tmp_path
):
    """train (offline) -> gate -> register -> promote -> both regions' strategies point at the new
    model.tar.gz -> a request through the router in each region is answered by exactly it."""
    from datetime import UTC, datetime
    from unittest import mock

    from router import handler as router
    from router.dal import LambdaProvider
    from router.logic import select_probe
    from sentiment import handler as sentiment
    from shared.strategy import parse_strategy

    tarball, version = trained_sentiment_tarball
    sagemaker = OfflineSageMaker(gate_values={"sentiment": 0.9}, model_tarballs={"sentiment": tarball})
    # The serving function has nothing baked in: only the promoted artifact can answer.
    monkeypatch.setenv("MODEL_DIR", str(tmp_path / "no-model"))
    monkeypatch.setenv("MODEL_CACHE_DIR", str(tmp_path / "cache"))
    sentiment.classifier.cache_clear()
    with local_training_pipeline(sagemaker, strategy) as pipeline:
        result = pipeline.run([ADAPTERS[0]])
        assert result["status"] == "SUCCEEDED", result
        job = sagemaker.requests[0]["TrainingJobName"]
        artifact = f"s3://{SUBSTITUTIONS['ArtifactsBucket']}/training/{job}/output/model.tar.gz"
        assert set(result["output"]["promoted"]["value"]["regions"]) == {"us-east-1", "us-west-2"}
        for region, store in pipeline.stores.items():
            document = store.latest()[1]
            variant = next(v for v in document["use_cases"]["sentiment"]["variants"] if v["provider"] == "lambda")
            assert (variant["model_id"], variant["artifact_uri"]) == (job, artifact), region
            assert store.deployed, f"{region} published but did not deploy"
            selection = select_probe(parse_strategy(document), job, now=datetime.now(UTC))
            assert selection is not None and selection["artifact_uri"] == artifact
            provider = LambdaProvider(
                {"sentiment": "arn:aws:lambda:us-east-1:1:function:sentiment"}, InProcessSentiment()
            )
            event = router.InvokeEvent.model_validate(
                {
                    "action": "invoke",
                    "request_id": "c0ffee00c0ffee00",
                    "use_case": "sentiment",
                    "prompt": "Bank cuts dividend after losses",
                    "selection": selection,
                }
            )
            with mock.patch.object(router, "_lambda_provider", lambda p=provider: p):
                answer = router.handle_invoke(event, deadline=float("inf"))
            # The artifact's own version (its manifest hash) is what the answer and the audit record carry.
            assert answer["model_used"] == version, region
    sentiment.classifier.cache_clear()


def test_a_region_that_cannot_be_promoted_fails_the_step_and_says_which_were(strategy):
    sagemaker = OfflineSageMaker(gate_values={"sentiment": 0.9})
    with local_training_pipeline(sagemaker, strategy, failing_region="us-west-2") as pipeline:
        result = pipeline.run([ADAPTERS[0]])
        secondary = pipeline.stores["us-west-2"]
    assert (result["status"], result["error"]) == ("FAILED", "PromotionIncomplete")
    assert "promotion failed in us-west-2" in result["cause"] and "already promoted: us-east-1" in result["cause"]
    assert strategy.deployed == [2] and len(secondary.versions) == 1 and secondary.deployed == []


ENDPOINT_VARIANT = {
    "name": "endpoint",
    "provider": "sagemaker",
    "target": "advisor_large",
    "model_id": "advisor-large-lora",
    "answer_format": "plan",
    "weight": 0,
}


def test_an_endpoint_adapter_is_created_in_each_region_before_its_variant_is_repointed(strategy):
    """train (offline) -> gate -> register -> promote: in each region the adapter is copied into the
    region's adapter bucket and created as an inference component on the base; promotion waits
    (PromotionPending, on the ASL's timer) until it is InService, then the variant invokes it and
    a request through the router is answered by exactly that component."""
    import boto3

    from local.sagemaker_endpoint import LocalEndpoint, LocalInferenceComponents
    from promote.dal import EndpointAdapters
    from router import handler as router
    from router.dal import SageMakerProvider
    from shared.budgeting import advise, plan_of, suggest
    from tests.statemachine.test_grounded_advice import PROFILE, PROMPT

    strategy.versions[-1]["use_cases"]["budgeting_advice"]["variants"].append(copy.deepcopy(ENDPOINT_VARIANT))
    secondary = InMemoryStrategyStore(copy.deepcopy(strategy.latest()[1]))
    sagemaker = OfflineSageMaker(gate_values={"advisor_large": 0.97}, model_tarballs={"advisor_large": b"adapter"})
    plan = plan_of(PROFILE, suggest(PROFILE))
    served: dict[str, list[str]] = {}
    endpoints, planes = {}, {}
    for region in ("us-east-1", "us-west-2"):
        endpoint = LocalEndpoint(region)
        endpoint.add_component("finai-advisor-large", "finai-advisor-large-base", lambda m, n: ("base", 1, 1, "stop"))
        # The adapter's model is named by the URL it was created from: the test sees which one answers.
        planes[region] = LocalInferenceComponents(
            endpoint,
            lambda url, r=region: lambda m, n: (served.setdefault(r, []).append(url) or plan, 40, 9, "stop"),
            creating_polls=2,
            base_components={"finai-advisor-large-base"},
        )
    large = adapter_input("advisor_large", "advisor_large", 0.95, "train_advisor.py")
    with local_training_pipeline(sagemaker, strategy, secondary, endpoints=endpoints) as pipeline:
        for region, plane in planes.items():
            s3 = boto3.client("s3", region_name=region)
            bucket = f"finai-endpoint-adapters-{region}"
            s3.create_bucket(
                Bucket=bucket,
                **({"CreateBucketConfiguration": {"LocationConstraint": region}} if region != "us-east-1" else {}),
            )
            endpoints[region] = EndpointAdapters(
                "advisor_large", "finai-advisor-large", "finai-advisor-large-base", bucket, plane, s3
            )
        result = pipeline.run([large])
        assert result["status"] == "SUCCEEDED", result
        job = sagemaker.requests[0]["TrainingJobName"]
        # Created once per region, and the pipeline waited on its timer rather than failing.
        assert 60 in pipeline.retry_waits
        for region, store in pipeline.stores.items():
            (created,) = planes[region].created.values()
            assert created["InferenceComponentName"] == job
            assert created["Specification"]["BaseInferenceComponentName"] == "finai-advisor-large-base"
            url = created["Specification"]["Container"]["ArtifactUrl"]
            assert url == f"s3://finai-endpoint-adapters-{region}/adapters/{job}/model.tar.gz"
            copied = boto3.client("s3", region_name=region).get_object(
                Bucket=url[5:].split("/", 1)[0], Key=url.split("/", 3)[3]
            )
            assert copied["Body"].read() == b"adapter"
            variant = next(
                v
                for v in store.latest()[1]["use_cases"]["budgeting_advice"]["variants"]
                if v["provider"] == "sagemaker"
            )
            assert (variant["model_id"], variant["inference_component"], variant["artifact_uri"]) == (job, job, url)
            # A request in this region is answered by the promoted component.
            event = router.InvokeEvent.model_validate(
                {
                    "action": "invoke",
                    "request_id": "c0ffee00c0ffee00",
                    "use_case": "budgeting_advice",
                    "prompt": PROMPT,
                    "selection": {**variant, "variant": variant["name"], "max_tokens": 600, "temperature": 0.4},
                }
            )
            provider = SageMakerProvider({"advisor_large": "finai-advisor-large"}, planes[region].endpoint)
            with mock.patch.object(router, "_sagemaker_provider", lambda p=provider: p):
                answer = router.handle_invoke(event, deadline=float("inf"))
            assert answer["model_used"] == job and answer["response"] == advise(PROMPT)
            assert served[region] == [url]


def test_a_failed_adapter_component_fails_the_promotion_and_publishes_nothing(strategy):
    from promote.dal import AdapterFailed, EndpointAdapters
    from promote.handler import PromoteEvent, promote

    class Failing:
        def describe_inference_component(self, **_):
            return {
                "InferenceComponentStatus": "Failed",
                "FailureReason": "adapter rank 64 exceeds OPTION_MAX_LORA_RANK",
            }

    strategy.versions[-1]["use_cases"]["budgeting_advice"]["variants"].append(copy.deepcopy(ENDPOINT_VARIANT))
    event = PromoteEvent.model_validate(
        {
            "candidates": [
                {
                    "adapter": "advisor_large",
                    "target": "advisor_large",
                    "job": "finai-0-2-0",
                    "artifacts": "s3://artifacts/training/finai-0-2-0/output/model.tar.gz",
                    "model_package_arn": "arn:aws:sagemaker:us-east-1:1:model-package/g/1",
                }
            ]
        }
    )
    endpoint = EndpointAdapters(
        "advisor_large", "finai-advisor-large", "finai-advisor-large-base", "b", Failing(), object()
    )
    with pytest.raises(AdapterFailed, match="OPTION_MAX_LORA_RANK"):
        promote(event, strategy, endpoint)
    assert len(strategy.versions) == 1 and strategy.deployed == []
