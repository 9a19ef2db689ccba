"""The training image matches the tests: same pins, every module the jobs import, built by CDK.

A job on AWS runs in this image with network isolation, so nothing can be installed at start:
a package the sourcedir imports and the image lacks is a job that fails on its first line.
"""

from __future__ import annotations

import ast
import io
import json
import re
import sys
import tarfile
from importlib.metadata import packages_distributions
from pathlib import Path

import pytest

from cdk_app.config import TrainingSettings
from stacks.training_source import build_sourcedir

ROOT = Path(__file__).resolve().parents[2]
IMAGE = ROOT / "training_jobs" / "image"
TEST_PINS = [
    ROOT / "requirements.txt",
    ROOT / "requirements-dev.txt",
    ROOT / "requirements-offline-models.txt",
    ROOT / "lambdas" / "serving" / "requirements.txt",
]
# In the image, never imported by the tests' environment: the toolkit that starts the job.
IMAGE_ONLY = {"sagemaker-training": "SageMaker's toolkit: the image's train command; the jobs never import it"}
# Imported only behind an option that the pipeline does not set.
OPTIONAL_IMPORTS = {"mlflow": "--mlflow-uri only; the pipeline runs isolated, with no tracking server"}
LOCAL_PACKAGES = {"training_jobs", "shared", "serving"}


def normalise(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def pins(path: Path) -> dict[str, str]:
    found = {}
    for raw in path.read_text().splitlines():
        line = raw.split("#", 1)[0].strip()
        if "==" in line:
            name, version = line.split("==", 1)
            found[normalise(name.split("[", 1)[0])] = version.strip()
    return found


def test_every_pin_in_the_image_is_the_pin_the_tests_run_with():
    image = pins(IMAGE / "requirements.txt")
    tested: dict[str, str] = {}
    for path in TEST_PINS:
        for name, version in pins(path).items():
            assert tested.setdefault(name, version) == version, f"{name} is pinned twice differently"
    assert set(image) - set(tested) == set(IMAGE_ONLY)
    for name, version in image.items():
        if name not in IMAGE_ONLY:
            assert tested[name] == version, f"image has {name}=={version}, the tests run {tested[name]}"


def imported_modules(tmp_path: Path) -> set[str]:
    """Top-level modules imported anywhere in the sourcedir, module level or inside functions."""
    modules: set[str] = set()
    with tarfile.open(build_sourcedir(tmp_path)) as archive:
        for member in archive.getmembers():
            if member.name.endswith(".py"):
                source = archive.extractfile(member)
                assert source is not None
                tree = ast.parse(io.TextIOWrapper(source, encoding="utf-8").read())
                for node in ast.walk(tree):
                    if isinstance(node, ast.Import):
                        modules.update(alias.name.split(".")[0] for alias in node.names)
                    elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                        modules.add(node.module.split(".")[0])
    return modules - set(sys.stdlib_module_names) - LOCAL_PACKAGES - {"__future__"}


def test_every_module_the_sourcedir_imports_is_in_the_image(tmp_path):
    image = set(pins(IMAGE / "requirements.txt"))
    providers = packages_distributions()
    missing = {}
    for module in sorted(imported_modules(tmp_path) - set(OPTIONAL_IMPORTS)):
        dists = {normalise(d) for d in providers.get(module, [])}
        assert dists, f"{module} is imported by the sourcedir but installed by no distribution here"
        if not dists & image:
            missing[module] = sorted(dists)
    assert not missing, f"the training image lacks {missing}"


def test_the_dockerfile_installs_the_pins_and_chooses_torch_wheels_by_variant():
    dockerfile = (IMAGE / "Dockerfile").read_text()
    assert "COPY requirements.txt" in dockerfile and "pip install -r /opt/finai/requirements.txt" in dockerfile
    assert "python:3.11" in dockerfile  # the interpreter the tests run
    assert f"{sys.version_info.major}.{sys.version_info.minor}" == "3.11"
    for variant in ("gpu)", "cpu)"):
        assert variant in dockerfile
    # Nothing from the repository beyond the pins: code arrives as the job's code channel.
    assert [line for line in dockerfile.splitlines() if line.startswith("COPY")] == [
        "COPY requirements.txt /opt/finai/requirements.txt"
    ]


@pytest.mark.parametrize(
    ("instance", "variant", "expected"),
    [
        ("ml.g5.xlarge", None, "gpu"),
        ("ml.p4d.24xlarge", None, "gpu"),
        ("ml.m5.xlarge", None, "cpu"),
        ("ml.g5.xlarge", "cpu", "cpu"),
    ],
)
def test_the_variant_follows_the_instance_family_unless_set(instance, variant, expected):
    assert TrainingSettings(instance_type=instance, image_variant=variant).variant() == expected


def test_a_configured_image_names_the_repository_to_grant_pull_on():
    settings = TrainingSettings(image="123456789012.dkr.ecr.{region}.amazonaws.com/team/trainer:v3")
    assert settings.image_repository("eu-west-1") == ("123456789012", "eu-west-1", "team/trainer")
    assert TrainingSettings().image_repository("eu-west-1") is None  # built from training_jobs/image


def test_cdk_builds_the_image_from_training_jobs_and_the_role_may_pull_it(synthesized):
    manifest = json.loads((synthesized.outdir / "FinAi-training.assets.json").read_text())
    images = list(manifest["dockerImages"].values())
    assert len(images) == 1
    source = images[0]["source"]
    staged = synthesized.outdir / source["directory"]
    assert (staged / "Dockerfile").read_bytes() == (IMAGE / "Dockerfile").read_bytes()
    assert (staged / "requirements.txt").read_bytes() == (IMAGE / "requirements.txt").read_bytes()
    assert source["dockerBuildArgs"] == {"VARIANT": synthesized.config.training.variant()}
    assert source["platform"] == "linux/amd64"
    template = synthesized.templates["FinAi-training"]
    machine = next(iter(template.find_resources("AWS::StepFunctions::StateMachine").values()))["Properties"]
    image_uri = json.dumps(machine["DefinitionSubstitutions"]["TrainingImage"])
    assert "cdk-hnb659fds-container-assets" in image_uri
    statements = [
        s
        for lid, p in template.find_resources("AWS::IAM::Policy").items()
        if lid.startswith("PipelineSageMakerRole")
        for s in p["Properties"]["PolicyDocument"]["Statement"]
    ]
    pulls = [s for s in statements if "ecr:BatchGetImage" in s["Action"]]
    assert len(pulls) == 1 and "cdk-hnb659fds-container-assets" in json.dumps(pulls[0]["Resource"])
    assert "huggingface-pytorch-training" not in json.dumps(template.to_json())
