"""The serving runtime's boundaries: no torch, S3 loading with checksums, the image recipe, and
the router's ``lambda`` provider round-tripping through the advisor handler."""

import hashlib
import io
import json
import re
import subprocess
import sys
from pathlib import Path

import boto3
import pytest
from moto import mock_aws

from advisor import handler as advisor_handler
from local.request_path import FakeContext
from serving.artifacts import ArtifactError, locate

ROOT = Path(__file__).resolve().parents[2]
LAMBDAS = ROOT / "lambdas"

BLOCK_TORCH = """
import importlib.abc, sys
class Block(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in ("torch", "transformers", "peft"):
            raise ImportError(f"{name} is blocked: the serving image has no torch")
sys.meta_path.insert(0, Block())
import json
from advisor import handler
from local.request_path import FakeContext
result = handler.lambda_handler({"query": "Dining 420, groceries 300", "max_new_tokens": 6}, FakeContext("a", "r"))
assert not any(m.split(".")[0] in ("torch", "transformers") for m in sys.modules), "torch was imported"
from serving import genai
print("GENAI " + str(genai.loaded_bases() > 0))  # a base model loaded: onnxruntime-genai answered
print("RESULT " + result["body"])
"""


@pytest.mark.parametrize(("artifacts", "version", "genai"), [
    ("t5_artifacts", "advisor-seq2seq-int8-", False),
    ("llama_artifacts", "advisor-causal-int8-", True),  # the causal advisor runs on onnxruntime-genai
])  # fmt: skip
def test_int8_artifact_answers_with_torch_blocked(artifacts, version, genai, request):
    model_dir = request.getfixturevalue(artifacts)["int8"]
    env = {"MODEL_DIR": str(model_dir), "PYTHONPATH": f"{ROOT}:{LAMBDAS}", "PATH": "/usr/bin:/bin"}
    done = subprocess.run(
        [sys.executable, "-c", BLOCK_TORCH], capture_output=True, text=True, env=env, timeout=120, check=False
    )
    assert done.returncode == 0, done.stderr[-2000:]
    assert f"GENAI {genai}" in done.stdout
    body = json.loads(done.stdout.split("RESULT ", 1)[1])
    assert body["model_version"].startswith(version)


def test_blocking_really_blocks(t5_artifacts):
    """The guard above would catch an import: prove it by importing torch under it."""
    script = BLOCK_TORCH.split("import json", maxsplit=1)[0] + "import torch\n"
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=60, check=False)
    assert done.returncode != 0 and "blocked" in done.stderr


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.fixture
def bucket_with_artifact(t5_artifacts):
    with mock_aws():
        s3 = boto3.client("s3", region_name="us-east-1")
        s3.create_bucket(Bucket="models")
        for path in t5_artifacts["int8"].iterdir():
            s3.upload_file(str(path), "models", f"advisor/v1/{path.name}")
        yield s3


def test_s3_artifact_downloads_to_tmp_and_is_verified(bucket_with_artifact, t5_artifacts, tmp_path):
    expected = sha256(t5_artifacts["int8"] / "manifest.json")
    env = {
        "MODEL_S3_URI": "s3://models/advisor/v1",
        "MODEL_MANIFEST_SHA256": expected,
        "MODEL_CACHE_DIR": str(tmp_path),
    }
    artifact = locate(env, bucket_with_artifact)
    assert artifact.path == tmp_path / expected[:16]
    assert artifact.version == json.loads((t5_artifacts["int8"] / "manifest.json").read_text())["model_version"]


def test_s3_artifact_with_the_wrong_pin_or_a_swapped_file_fails(bucket_with_artifact, t5_artifacts, tmp_path):
    env = {
        "MODEL_S3_URI": "s3://models/advisor/v1",
        "MODEL_MANIFEST_SHA256": "0" * 64,
        "MODEL_CACHE_DIR": str(tmp_path),
    }
    with pytest.raises(ArtifactError, match="does not match MODEL_MANIFEST_SHA256"):
        locate(env, bucket_with_artifact)
    bucket_with_artifact.put_object(Bucket="models", Key="advisor/v1/decoder.onnx", Body=b"not a model")
    pinned = {**env, "MODEL_MANIFEST_SHA256": sha256(t5_artifacts["int8"] / "manifest.json")}
    pinned["MODEL_CACHE_DIR"] = str(tmp_path / "second")
    with pytest.raises(ArtifactError, match=r"checksum mismatch for decoder\.onnx"):
        locate(pinned, bucket_with_artifact)


def test_s3_without_a_pin_or_with_a_bad_uri_is_refused(tmp_path):
    with pytest.raises(ArtifactError, match="version must be pinned"):
        locate({"MODEL_S3_URI": "s3://models/advisor"})
    with pytest.raises(ArtifactError, match="must look like s3://"):
        locate(
            {
                "MODEL_S3_URI": "https://example.com/x",
                "MODEL_MANIFEST_SHA256": "a" * 64,
                "MODEL_CACHE_DIR": str(tmp_path),
            }
        )


@pytest.mark.parametrize("component", ["advisor", "sentiment"])
def test_dockerfile_copies_real_files_and_names_a_real_handler(component):
    dockerfile = (LAMBDAS / component / "Dockerfile").read_text()
    assert dockerfile.startswith("#") and "FROM public.ecr.aws/lambda/python:3.12" in dockerfile
    copies = re.findall(r"^COPY (.+)$", dockerfile, re.MULTILINE)
    assert copies
    for line in copies:
        *sources, _target = line.split()
        for source in sources:
            assert (LAMBDAS / source).exists(), f"{component}/Dockerfile copies {source}, which does not exist"
    (command,) = re.findall(r'^CMD \["([\w.]+)"\]$', dockerfile, re.MULTILINE)
    module_name, function = command.rsplit(".", 1)
    module = __import__(module_name, fromlist=[function])
    assert callable(getattr(module, function))
    lines = [line for line in (LAMBDAS / "serving" / "requirements.txt").read_text().splitlines() if line[:1].isalpha()]
    packages = {line.split("==")[0] for line in lines}
    assert "onnxruntime" in packages and not packages & {"torch", "transformers", "peft"}
    assert all("==" in line for line in lines)


class InProcessLambda:
    """A Lambda client whose invoke runs the advisor handler in this process."""

    def __init__(self):
        self.calls = []

    def invoke(self, FunctionName, Payload):  # boto3's parameter names
        self.calls.append(FunctionName)
        result = advisor_handler.lambda_handler(json.loads(Payload), FakeContext("advisor", "us-east-1"))
        return {"StatusCode": 200, "Payload": io.BytesIO(json.dumps(result).encode())}


def test_router_lambda_provider_round_trips_through_the_advisor(monkeypatch, t5_artifacts):
    from router.dal import LambdaProvider, ModelRequest
    from shared.bedrock import ModelCallError

    monkeypatch.setenv("MODEL_DIR", str(t5_artifacts["int8"]))
    advisor_handler.generator.cache_clear()
    client = InProcessLambda()
    provider = LambdaProvider({"advisor": "arn:aws:lambda:us-east-1:123456789012:function:advisor"}, client=client)
    request = ModelRequest(
        prompt="Dining 420, groceries 300, subscriptions 45",
        system_prompt=None,
        max_tokens=64,
        temperature=0,
        top_p=None,
    )
    completion = provider.complete_target("advisor", "advisor-lora", request)
    direct = json.loads(
        advisor_handler.lambda_handler({"query": request.prompt}, FakeContext("advisor", "us-east-1"))["body"]
    )
    assert client.calls == ["arn:aws:lambda:us-east-1:123456789012:function:advisor"]
    assert completion.text == direct["response"]
    assert completion.model_id == direct["model_version"]
    with pytest.raises(ModelCallError, match="UnknownTarget"):
        provider.complete_target("sentiment", "x", request)
    advisor_handler.generator.cache_clear()


@pytest.mark.parametrize("component", ["advisor", "sentiment"])
def test_every_module_the_handler_imports_from_lambdas_is_copied_into_the_image(component):
    """The image holds only what the Dockerfile copies: an import of another lambdas/ module
    (shared.budgeting, for one) would pass here and fail on AWS at cold start."""
    script = (
        f"import sys, json\nfrom {component} import handler\n"
        f"print(json.dumps(sorted(m.__file__ for m in list(sys.modules.values()) "
        f"if getattr(m, '__file__', None) and m.__file__.startswith({str(LAMBDAS)!r}))))"
    )
    env = {"PYTHONPATH": f"{ROOT}:{LAMBDAS}", "PATH": "/usr/bin:/bin", "POWERTOOLS_SERVICE_NAME": component}
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, env=env, timeout=120, check=False
    )
    assert done.returncode == 0, done.stderr[-2000:]
    loaded = {str(Path(f).relative_to(LAMBDAS)) for f in json.loads(done.stdout.strip().splitlines()[-1])}
    dockerfile = (LAMBDAS / component / "Dockerfile").read_text()
    copied = [s for line in re.findall(r"^COPY (.+)$", dockerfile, re.MULTILINE) for s in line.split()[:-1]]
    missing = {f for f in loaded if not any(f == c or f.startswith(c.rstrip("/") + "/") for c in copied)}
    assert not missing, f"{component}'s image lacks {sorted(missing)}"
