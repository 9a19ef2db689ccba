"""Promotion changes what serves: a serving function loads the artifact the request names.

The training pipeline writes SageMaker's ``model.tar.gz`` (the job's model folder, the exported
artifact under ``serve/``) and promotion points the strategy's variant at it; the router copies
the URI into the request. Here the tarball sits in moto's S3 and the real handler fetches it.
"""

from __future__ import annotations

import io
import json
import tarfile
from pathlib import Path

import boto3
import pytest
from moto import mock_aws

from local.request_path import FakeContext
from sentiment import handler
from tests.serving.conftest import InProcessSentiment

CTX = FakeContext("sentiment", "us-east-1")
# CloudFormation's generated name for the retained artifacts bucket (cdk_app.names.artifacts_bucket_pattern).
BUCKET = "finai-training-pipelineartifactseb21e7e8-1a2b3c4d5e6f"


def model_tarball(serve: Path, extra: dict[str, bytes] | None = None, prefix: str = "serve/") -> bytes:
    """What SageMaker uploads: the job's model folder (adapter files beside serve/), gzipped."""
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w:gz") as archive:
        for name, data in {"adapter_config.json": b"{}", **(extra or {})}.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            archive.addfile(info, io.BytesIO(data))
        for path in sorted(serve.iterdir()):
            archive.add(path, arcname=f"{prefix}{path.name}")
    return raw.getvalue()


@pytest.fixture
def s3(monkeypatch, tmp_path):
    monkeypatch.setenv("MODEL_DIR", str(tmp_path / "empty-image-model"))  # nothing baked in
    monkeypatch.setenv("MODEL_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.delenv("MODEL_S3_URI", raising=False)
    handler.classifier.cache_clear()
    with mock_aws():
        client = boto3.client("s3", region_name="us-east-1")
        client.create_bucket(Bucket=BUCKET)
        yield client
    handler.classifier.cache_clear()


def put(client, key: str, body: bytes) -> str:
    client.put_object(Bucket=BUCKET, Key=key, Body=body)
    return f"s3://{BUCKET}/{key}"


def call(event):
    result = handler.lambda_handler(event, CTX)
    return result["statusCode"], json.loads(result["body"])


def version_of(serve: Path) -> str:
    return json.loads((serve / "manifest.json").read_text())["model_version"]


def test_a_function_without_an_artifact_says_so_in_its_health_and_answers(s3):
    status, body = call({"action": "health"})
    assert (status, body["status"]) == (503, "no_artifact")
    assert "promote one" in body["message"]
    status, body = call({"texts": ["Bank cuts dividend"]})
    assert (status, body["error"]) == (503, "no_artifact")


def test_the_next_request_is_answered_by_exactly_the_promoted_artifact(s3, bert_artifacts, tmp_path):
    first = put(s3, "training/finai-a-0-0/output/model.tar.gz", model_tarball(bert_artifacts["int8"]))
    second = put(s3, "training/finai-b-0-0/output/model.tar.gz", model_tarball(bert_artifacts["fp32"]))
    status, body = call({"texts": ["Bank cuts dividend"], "artifact_uri": first})
    assert status == 200 and body["model_version"] == version_of(bert_artifacts["int8"])
    status, body = call({"action": "health", "artifact_uri": first})
    assert (status, body["status"], body["model_version"]) == (200, "ready", version_of(bert_artifacts["int8"]))
    # Promotion moved the variant: the very next request names the new artifact and gets it.
    status, body = call({"texts": ["Bank cuts dividend"], "artifact_uri": second})
    assert status == 200 and body["model_version"] == version_of(bert_artifacts["fp32"])
    assert version_of(bert_artifacts["fp32"]) != version_of(bert_artifacts["int8"])
    # Each artifact is fetched once; /tmp keeps at most two.
    third = put(s3, "training/finai-c-0-0/output/model.tar.gz", model_tarball(bert_artifacts["int8"]))
    assert call({"texts": ["ok"], "artifact_uri": third})[0] == 200
    assert len(list((tmp_path / "cache" / "promoted").iterdir())) == 2


def test_a_tampered_or_foreign_artifact_is_refused_with_a_reason(s3, bert_artifacts, tmp_path):
    serve = tmp_path / "tampered"
    serve.mkdir()
    for path in bert_artifacts["int8"].iterdir():
        (serve / path.name).write_bytes(path.read_bytes())
    (serve / "tokenizer.json").write_bytes(b"{}")  # no longer what the manifest pins
    tampered = put(s3, "training/finai-t-0-0/output/model.tar.gz", model_tarball(serve))
    status, body = call({"texts": ["ok"], "artifact_uri": tampered})
    assert (status, body["error"]) == (503, "artifact_error") and "checksum mismatch" in body["message"]
    foreign = put(s3, "training/finai-f-0-0/output/model.tar.gz", model_tarball(bert_artifacts["int8"], prefix="x/"))
    status, body = call({"texts": ["ok"], "artifact_uri": foreign})
    assert status == 503 and "has no serve/manifest.json" in body["message"]
    missing = f"s3://{BUCKET}/training/finai-missing-0-0/output/model.tar.gz"
    status, body = call({"texts": ["ok"], "artifact_uri": missing})
    assert status == 503 and "could not download" in body["message"]


@pytest.mark.parametrize(
    ("uri", "status"),
    [
        ("http://example.com/model.tar.gz", 400),  # not S3
        ("s3://B/x", 400),  # not a bucket name
        ("s3://bucket", 400),  # no key
        # Well-formed, so it is fetched, and fails like any missing object.
        (f"s3://{BUCKET}/training/finai-gone-0-0/output/model.tar.gz", 503),
    ],
)
def test_an_artifact_uri_is_checked_before_use(s3, uri, status):
    got, body = call({"texts": ["ok"], "artifact_uri": uri})
    assert got == status
    assert "artifact_uri" in body["message"] if status == 400 else body["error"] == "artifact_error"


def test_the_router_sends_the_variants_artifact_and_classifies_its_absence(s3, bert_artifacts):
    from router.dal import LambdaProvider
    from shared.failures import ModelCallError

    uri = put(s3, "training/finai-r-0-0/output/model.tar.gz", model_tarball(bert_artifacts["int8"]))
    client = InProcessSentiment()
    provider = LambdaProvider({"sentiment": "arn:aws:lambda:us-east-1:123456789012:function:sentiment"}, client)
    _, version = provider.classify_target("sentiment", "finai-r-0-0", "Bank cuts dividend", artifact_uri=uri)
    assert client.payloads[-1]["artifact_uri"] == uri
    assert version == version_of(bert_artifacts["int8"])
    with pytest.raises(ModelCallError) as raised:
        provider.classify_target("sentiment", "finai-r-0-0", "Bank cuts dividend")
    assert raised.value.code == "NoArtifact"
