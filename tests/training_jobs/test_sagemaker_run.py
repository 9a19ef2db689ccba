"""A training job run the way SageMaker runs it inside the image, with the pipeline's own request.

- the request is the one the pipeline's ASL renders (training_jobs.launch builds it from the file);
- ``/opt/ml`` is laid out in a temporary directory: one folder per input channel, the model and
  output folders, ``input/config/hyperparameters.json``;
- the code comes from the ``code`` channel only: the sourcedir tarball is unpacked from
  ``sagemaker_submit_directory`` (as the toolkit does) and the repository is not on the path;
- ``sagemaker_program`` runs with every other hyperparameter as ``--key value`` and the ``SM_*``
  environment;
- the process has no network (network isolation), and the packages are the pinned ones
  (tests/infrastructure/test_training_image.py checks that the image carries the same pins).
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import tarfile
from pathlib import Path

from stacks.training_source import build_sourcedir
from training_jobs import launch

NO_NETWORK = """\
import socket


def _isolated(*args, **kwargs):
    raise OSError("network isolation: this training job has no network")


socket.socket.connect = _isolated
socket.socket.connect_ex = _isolated
socket.create_connection = _isolated
socket.getaddrinfo = _isolated
"""


def pipeline_request(source_uri: str, *hyperparameters: str) -> dict:
    args = [
        "--adapter", "sentiment",
        "--role-arn", "arn:aws:iam::123456789012:role/sagemaker",
        "--artifacts-bucket", "finai-artifacts",
        "--kms-key-arn", "arn:aws:kms:us-east-1:123456789012:key/test",
        "--train-uri", "s3://finai-data/sentiment/",
        "--base-model-uri", "s3://finai-data/base-models/sentiment/",
        "--source-uri", source_uri,
        "--image", "123456789012.dkr.ecr.us-east-1.amazonaws.com/finai-training:test",
        "--run-name", "isolated",
    ]  # fmt: skip
    for pair in hyperparameters:
        args += ["--hyperparameter", pair]
    return launch.build_request(launch.parse_args(args))


def test_the_sentiment_job_runs_as_sagemaker_runs_it(tmp_path, tiny_bert, sentiment_csv):
    opt_ml = tmp_path / "opt" / "ml"
    request = pipeline_request(
        "s3://cdk-hnb659fds-assets-123456789012-us-east-1/0123abcd.gz",  # CDK names file assets <hash>.gz
        "epochs=1",
        "batch-size=16",
        "max-length=32",
        "max-train-rows=120",
        "max-eval-rows=60",
        "compare-base=false",
    )
    hyperparameters = request["HyperParameters"]

    def local(path: str) -> Path:  # /opt/ml/... inside the container -> the temporary layout
        return opt_ml / Path(path).relative_to("/opt/ml") if path.startswith("/opt/ml/") else Path(path)

    # SageMaker downloads each channel into /opt/ml/input/data/<name>.
    channels = {c["ChannelName"]: c["DataSource"]["S3DataSource"]["S3Uri"] for c in request["InputDataConfig"]}
    assert set(channels) == {"train", "base", "code"}
    data = opt_ml / "input" / "data"
    shutil.copy(sentiment_csv, (data / "train").mkdir(parents=True) or data / "train" / "labelled.csv")
    shutil.copytree(tiny_bert, data / "base")
    (data / "code").mkdir()
    shutil.copy(build_sourcedir(tmp_path / "asset"), data / "code" / channels["code"].rsplit("/", 1)[1])
    (opt_ml / "input" / "config").mkdir(parents=True)
    (opt_ml / "input" / "config" / "hyperparameters.json").write_text(json.dumps(hyperparameters))

    # The toolkit: unpack sagemaker_submit_directory into /opt/ml/code, run sagemaker_program.
    submit = local(hyperparameters["sagemaker_submit_directory"])
    assert submit.is_file(), f"the submit directory {hyperparameters['sagemaker_submit_directory']} is not in a channel"
    code = opt_ml / "code"
    with tarfile.open(submit) as archive:
        archive.extractall(code, filter="data")
    arguments = []
    for key, value in sorted(hyperparameters.items()):
        if not key.startswith("sagemaker_"):
            arguments += [f"--{key}", str(local(value)) if value.startswith("/opt/ml/") else value]
    isolation = tmp_path / "isolation"
    isolation.mkdir()
    (isolation / "sitecustomize.py").write_text(NO_NETWORK)
    env = {
        "PATH": os.environ["PATH"],
        "HOME": str(tmp_path),
        "PYTHONPATH": str(isolation),  # the repository is not on the path: only the code channel
        "SM_MODEL_DIR": str(opt_ml / "model"),
        "SM_OUTPUT_DATA_DIR": str(opt_ml / "output" / "data"),
        "SM_CHANNEL_TRAIN": str(data / "train"),
        "SM_CHANNEL_BASE": str(data / "base"),
        "SM_CHANNEL_CODE": str(data / "code"),
        "HF_HUB_OFFLINE": "1",
        "TRANSFORMERS_OFFLINE": "1",
        "OMP_NUM_THREADS": "2",
    }
    run = subprocess.run(
        [sys.executable, hyperparameters["sagemaker_program"], *arguments],
        cwd=code,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert run.returncode == 0, run.stderr[-3000:]

    # What SageMaker keeps: the model folder (model.tar.gz), the output, and the gate metric.
    assert (opt_ml / "model" / "adapter_model.safetensors").is_file()
    assert json.loads((opt_ml / "model" / "serve" / "manifest.json").read_text())["task"] == "sentiment"
    metrics = json.loads((opt_ml / "output" / "data" / "metrics.json").read_text())
    regex = request["AlgorithmSpecification"]["MetricDefinitions"][0]["Regex"]
    gate = re.findall(regex, run.stdout)
    assert gate and abs(float(gate[-1]) - metrics["metrics"]["macro_f1"]) < 1e-5


def test_the_isolation_shim_really_blocks_the_network(tmp_path):
    (tmp_path / "sitecustomize.py").write_text(NO_NETWORK)
    probe = "import urllib.request; urllib.request.urlopen('http://127.0.0.1:9', timeout=2)"
    run = subprocess.run(
        [sys.executable, "-c", probe],
        env={"PATH": os.environ["PATH"], "PYTHONPATH": str(tmp_path)},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert run.returncode != 0 and "network isolation" in run.stderr
