"""Start one adapter's training job ad hoc: the same job the pipeline runs, built with the SDK.

The job is built with the SageMaker Python SDK (v3's resource layer, ``sagemaker-core``:
``TrainingJob.create`` with typed shapes). ``--dry-run`` prints the request the pipeline's ASL
(``statemachines/training_pipeline.asl.json``) would send for the same arguments, and the tests
check that the SDK's request and the ASL's are the same job (image, channels, isolation,
hyperparameters, output and KMS settings), so an ad hoc run and a pipeline run cannot drift apart:

    python -m training_jobs.launch --adapter sentiment --role-arn arn:aws:iam::123456789012:role/x \\
        --artifacts-bucket my-artifacts --kms-key-arn arn:aws:kms:...:key/... \\
        --train-uri s3://my-data/sentiment/ --base-model-uri s3://my-data/base-models/sentiment/ \\
        --source-uri s3://my-code/sourcedir.tar.gz --dry-run

(The FinAi-training stack's outputs hold these values: TrainingImageUri for ``--image``,
SourceDirUri for ``--source-uri``, and the buckets.)
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from pathlib import Path
from typing import Any

ASL = Path(__file__).resolve().parent.parent / "statemachines" / "training_pipeline.asl.json"
PROGRAMS = {"sentiment": "train_sentiment.py", "advisor": "train_advisor.py"}
_FORMAT = re.compile(r"^States\.Format\('([^']*)'((?:,\s*\$\$?[\w.]+)*)\)$")
_MERGE = re.compile(r"^States\.JsonMerge\((\$[\w.]+),\s*(\$[\w.]+),\s*false\)$")
# SageMaker's rule for training job names.
JOB_NAME = re.compile(r"^[a-zA-Z0-9](-*[a-zA-Z0-9]){0,62}$")


def train_parameters() -> dict[str, Any]:
    asl = json.loads(ASL.read_text())
    return asl["States"]["TrainAdapters"]["ItemProcessor"]["States"]["Train"]["Parameters"]


def _path(document: dict[str, Any], path: str) -> Any:
    value: Any = document["$$"] if path.startswith("$$.") else document
    for part in path.removeprefix("$$.").removeprefix("$.").split("."):
        value = value[part]
    return value


def _resolve(expression: str, document: dict[str, Any]) -> Any:
    match = _FORMAT.match(expression)
    if match:
        template, args = match.group(1), [a.strip() for a in match.group(2).split(",") if a.strip()]
        for arg in args:
            template = template.replace("{}", str(_path(document, arg)), 1)
        return template
    merge = _MERGE.match(expression)
    if merge:  # States.JsonMerge(a, b, false): a shallow merge, b's keys win
        return {**_path(document, merge.group(1)), **_path(document, merge.group(2))}
    if expression.startswith("$."):
        return _path(document, expression)
    raise ValueError(f"unsupported expression {expression!r} in the pipeline's Train parameters")


def render(template: Any, substitutions: dict[str, str], document: dict[str, Any]) -> Any:
    """Apply definition substitutions and ``.$`` paths the way Step Functions would."""
    if isinstance(template, dict):
        out = {}
        for key, value in template.items():
            if key.endswith(".$"):
                out[key[:-2]] = _resolve(value, document)
            else:
                out[key] = render(value, substitutions, document)
        return out
    if isinstance(template, list):
        return [render(v, substitutions, document) for v in template]
    if isinstance(template, str):
        for name, value in substitutions.items():
            template = template.replace("${" + name + "}", value)
        if "${" in template:
            raise ValueError(f"unsubstituted placeholder in {template!r}")
    return template


def item_selector() -> dict[str, Any]:
    return dict(json.loads(ASL.read_text())["States"]["TrainAdapters"]["ItemSelector"])


def submit_directory(source_uri: str) -> str:
    """Where SageMaker puts the code channel's one object: the channel folder, under its own name."""
    if not source_uri.startswith("s3://") or source_uri.endswith("/"):
        raise ValueError(f"--source-uri must name one s3:// object (the sourcedir tarball), got {source_uri!r}")
    return f"/opt/ml/input/data/code/{source_uri.rsplit('/', 1)[-1]}"


def job_name(args: argparse.Namespace) -> str:
    name = f"finai-{args.adapter}-{args.run_name}"
    if not JOB_NAME.match(name):
        raise ValueError(
            f"training job name {name!r} breaks SageMaker's rule (at most 63 letters, digits and hyphens): "
            "choose a shorter --run-name without underscores or dots"
        )
    return name


def hyperparameters_of(args: argparse.Namespace) -> dict[str, str]:
    """What the caller passes; the pipeline (and :func:`sdk_job`) add the submit directory."""
    hyperparameters = {"sagemaker_program": PROGRAMS[args.adapter], "base-model": "/opt/ml/input/data/base"}
    for pair in args.hyperparameter:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            raise ValueError(f"--hyperparameter takes key=value, got {pair!r}")
        hyperparameters[key] = value
    return hyperparameters


def build_request(args: argparse.Namespace) -> dict[str, Any]:
    """The CreateTrainingJob request the pipeline's ASL sends for these arguments."""
    name = job_name(args)
    hyperparameters = hyperparameters_of(args)
    document = {
        "adapter": {
            "name": args.adapter,
            "train_uri": args.train_uri,
            "base_model_uri": args.base_model_uri,
            "hyperparameters": hyperparameters,
        },
        # What the pipeline's Map item carries besides the adapter (the code channel's path).
        "code": render(item_selector()["code"], {"SubmitDirectory": submit_directory(args.source_uri)}, {}),
        "run": "adhoc",
        "index": 0,
        "$$": {"State": {"RetryCount": 0}},
    }
    substitutions = {
        "TrainingImage": args.image.replace("{region}", args.region),
        "SourceDirUri": args.source_uri,
        "SageMakerRoleArn": args.role_arn,
        "ArtifactsBucket": args.artifacts_bucket,
        "KmsKeyArn": args.kms_key_arn,
        "InstanceType": args.instance_type,
    }
    # The pipeline names jobs after its execution; an ad hoc job is named after its run.
    return {**render(train_parameters(), substitutions, document), "TrainingJobName": name}


# The job's fixed settings, as the pipeline sets them (tests/training_jobs/test_launch.py compares).
GATE_METRIC_REGEX = "GATE_METRIC=([0-9.]+)"
VOLUME_GB = 50
MAX_RUNTIME_S = 4 * 3600


def sdk_job(args: argparse.Namespace) -> dict[str, Any]:
    """``TrainingJob.create``'s arguments, as SageMaker SDK shapes."""
    from sagemaker.core import shapes

    def channel(name: str, uri: str) -> Any:
        source = shapes.S3DataSource(s3_uri=uri, s3_data_type="S3Prefix", s3_data_distribution_type="FullyReplicated")
        return shapes.Channel(channel_name=name, data_source=shapes.DataSource(s3_data_source=source))

    return {
        "training_job_name": job_name(args),
        "role_arn": args.role_arn,
        "algorithm_specification": shapes.AlgorithmSpecification(
            training_image=args.image.replace("{region}", args.region),
            training_input_mode="File",
            metric_definitions=[shapes.MetricDefinition(name="gate", regex=GATE_METRIC_REGEX)],
        ),
        # Network isolation: the code is a channel, and the toolkit reads it from the channel's path.
        "hyper_parameters": {
            **hyperparameters_of(args),
            "sagemaker_submit_directory": submit_directory(args.source_uri),
        },
        "input_data_config": [
            channel("train", args.train_uri),
            channel("base", args.base_model_uri),
            channel("code", args.source_uri),
        ],
        "output_data_config": shapes.OutputDataConfig(
            s3_output_path=f"s3://{args.artifacts_bucket}/training", kms_key_id=args.kms_key_arn
        ),
        "resource_config": shapes.ResourceConfig(
            instance_type=args.instance_type,
            instance_count=1,
            volume_size_in_gb=VOLUME_GB,
            volume_kms_key_id=args.kms_key_arn,
        ),
        "stopping_condition": shapes.StoppingCondition(max_runtime_in_seconds=MAX_RUNTIME_S),
        "enable_network_isolation": True,
        "enable_inter_container_traffic_encryption": True,
    }


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--adapter", choices=sorted(PROGRAMS), required=True)
    p.add_argument("--role-arn", required=True)
    p.add_argument("--artifacts-bucket", required=True)
    p.add_argument("--kms-key-arn", required=True)
    p.add_argument("--train-uri", required=True)
    p.add_argument("--base-model-uri", required=True)
    p.add_argument("--source-uri", required=True)
    p.add_argument(
        "--run-name", required=True, help="suffix of the job name (letters, digits, hyphens), e.g. adhoc-20261122"
    )
    p.add_argument("--instance-type", default="ml.g5.xlarge")
    p.add_argument(
        "--image",
        required=True,
        help="training image URI: the FinAi-training stack's TrainingImageUri output ({region} is filled in)",
    )
    p.add_argument("--region", default="us-east-1")
    p.add_argument("--hyperparameter", action="append", default=[], metavar="KEY=VALUE")
    p.add_argument("--dry-run", action="store_true", help="print the request instead of sending it")
    return p.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    try:
        if args.dry_run:
            print(json.dumps(build_request(args), indent=2, sort_keys=True))
            return 0
        job = sdk_job(args)
    except ValueError as exc:  # pydantic's ValidationError (the SDK's shapes) is a ValueError too
        print(f"error: {exc}", file=sys.stderr)
        return 2
    import boto3
    from sagemaker.core.resources import TrainingJob

    started = TrainingJob.create(**job, session=boto3.Session(region_name=args.region), region=args.region)
    print(f"started {started.training_job_name}: {started.training_job_arn}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
