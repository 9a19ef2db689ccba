"""Start one adapter's training job ad hoc, with exactly the request the pipeline sends.

The CreateTrainingJob parameters are read from ``statemachines/training_pipeline.asl.json`` and
rendered here, so an ad hoc run and a pipeline run cannot drift apart:

    python -m training_jobs.launch --adapter sentiment --role-arn arn:aws:iam::123456789012:role/x \\
        --artifacts-bucket my-artifacts --kms-key-arn arn:aws:kms:...:key/... \\
        --train-uri s3://my-data/sentiment/ --base-model-uri s3://my-data/base-models/sentiment/ \\
        --source-uri s3://my-code/sourcedir.tar.gz --dry-run

(``make synth`` prints the stack outputs these values come from.)
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
DEFAULT_IMAGE = (
    "763104351884.dkr.ecr.{region}.amazonaws.com/"
    "huggingface-pytorch-training:2.1.0-transformers4.36.0-gpu-py310-cu121-ubuntu20.04"
)
_FORMAT = re.compile(r"^States\.Format\('([^']*)'((?:,\s*\$[\w.]+)*)\)$")


def train_parameters() -> dict[str, Any]:
    asl = json.loads(ASL.read_text())
    return asl["States"]["TrainAdapters"]["ItemProcessor"]["States"]["Train"]["Parameters"]


def _path(document: dict[str, Any], path: str) -> Any:
    value: Any = document
    for part in path.removeprefix("$.").split("."):
        value = value[part]
    return value


def _resolve(expression: str, document: dict[str, Any]) -> Any:
    match = _FORMAT.match(expression)
    if match:
        template, args = match.group(1), [a.strip() for a in match.group(2).split(",") if a.strip()]
        for arg in args:
            template = template.replace("{}", str(_path(document, arg)), 1)
        return template
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


def build_request(args: argparse.Namespace) -> dict[str, Any]:
    hyperparameters = {
        "sagemaker_program": PROGRAMS[args.adapter],
        "sagemaker_submit_directory": args.source_uri,
        "base-model": "/opt/ml/input/data/base",
    }
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
        "execution": args.run_name,
    }
    substitutions = {
        "TrainingImage": (args.image or DEFAULT_IMAGE).replace("{region}", args.region),
        "SageMakerRoleArn": args.role_arn,
        "ArtifactsBucket": args.artifacts_bucket,
        "KmsKeyArn": args.kms_key_arn,
        "InstanceType": args.instance_type,
    }
    return render(train_parameters(), substitutions, document)


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--adapter", choices=sorted(PROGRAMS), required=True)
    p.add_argument("--role-arn", required=True)
    p.add_argument("--artifacts-bucket", required=True)
    p.add_argument("--kms-key-arn", required=True)
    p.add_argument("--train-uri", required=True)
    p.add_argument("--base-model-uri", required=True)
    p.add_argument("--source-uri", required=True)
    p.add_argument("--run-name", required=True, help="suffix of the job name, e.g. adhoc-20261122")
    p.add_argument("--instance-type", default="ml.g5.xlarge")
    p.add_argument("--image", default=None, help="training image URI ({region} is filled in)")
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
