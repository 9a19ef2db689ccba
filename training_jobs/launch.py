"""Start one adapter's training job ad hoc, with exactly the request the pipeline sends.

The CreateTrainingJob parameters are read from ``statemachines/training_pipeline.asl.json`` and
rendered here, so an ad hoc run and a pipeline run cannot drift apart:

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


def build_request(args: argparse.Namespace) -> dict[str, Any]:
    name = f"finai-{args.adapter}-{args.run_name}"
    if not JOB_NAME.match(name):
        raise ValueError(
            f"training job name {name!r} breaks SageMaker's rule (at most 63 letters, digits and hyphens): "
            "choose a shorter --run-name without underscores or dots"
        )
    hyperparameters = {"sagemaker_program": PROGRAMS[args.adapter], "base-model": "/opt/ml/input/data/base"}
    for pair in args.hyperparameter:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            raise ValueError(f"--hyperparameter takes key=value, got {pair!r}")
        hyperparameters[key] = value
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


def main(argv: list[str] | None = None, client: Any | None = None) -> int:
    args = parse_args(argv)
    try:
        request = build_request(args)
    except ValueError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    if args.dry_run:
        print(json.dumps(request, indent=2, sort_keys=True))
        return 0
    import boto3

    sagemaker = client or boto3.client("sagemaker", region_name=args.region)
    arn = sagemaker.create_training_job(**request)["TrainingJobArn"]
    print(f"started {request['TrainingJobName']}: {arn}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
