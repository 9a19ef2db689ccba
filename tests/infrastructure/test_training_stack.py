"""The training stack: the synthesized CreateTrainingJob request, buckets, least privilege, sourcedir.

cdk-nag does not check training jobs, so the request the pipeline sends is asserted here.
"""

import hashlib
import json
import tarfile
from pathlib import Path

from stacks.training_source import ENTRY_POINTS, build_sourcedir


def training(synthesized):
    return synthesized.templates["FinAi-training"]


def pipeline_definition(synthesized):
    template = training(synthesized)
    machine = next(iter(template.find_resources("AWS::StepFunctions::StateMachine").values()))["Properties"]
    asl = json.loads((synthesized.outdir / f"asset.{machine['DefinitionS3Location']['Key']}").read_text())
    return machine, asl


def test_pipeline_is_standard_and_ships_the_asl_file(synthesized):
    machine, asl = pipeline_definition(synthesized)
    assert machine["StateMachineType"] == "STANDARD"
    assert machine["TracingConfiguration"] == {"Enabled": True}
    assert asl == json.loads(Path("statemachines/training_pipeline.asl.json").read_text())


def test_create_training_job_request_is_isolated_encrypted_and_sized(synthesized):
    machine, asl = pipeline_definition(synthesized)
    train = asl["States"]["TrainAdapters"]["ItemProcessor"]["States"]["Train"]
    request = train["Parameters"]
    assert train["Resource"] == "arn:aws:states:::sagemaker:createTrainingJob.sync"
    assert request["EnableNetworkIsolation"] is True
    assert request["EnableInterContainerTrafficEncryption"] is True
    assert request["ResourceConfig"]["VolumeKmsKeyId"] == "${KmsKeyArn}"
    assert request["OutputDataConfig"]["KmsKeyId"] == "${KmsKeyArn}"
    assert request["ResourceConfig"]["InstanceType"] == "${InstanceType}"
    subs = machine["DefinitionSubstitutions"]
    assert subs["InstanceType"] == synthesized.config.training.instance_type
    key_id = next(iter(training(synthesized).find_resources("AWS::KMS::Key")))
    assert subs["KmsKeyArn"] == {"Fn::GetAtt": [key_id, "Arn"]}
    assert synthesized.config.training.image_uri("us-east-1") is None  # built from training_jobs/image
    assert "container-assets" in json.dumps(subs["TrainingImage"])


def test_code_reaches_the_isolated_job_as_a_channel_the_role_may_read(synthesized):
    """Network isolation: the toolkit cannot download an s3:// submit directory from inside the
    container, so the sourcedir asset is a channel, listed and read by the SageMaker role, and the
    schedule's input carries no s3:// code location (the pipeline sets the channel's path)."""
    machine, asl = pipeline_definition(synthesized)
    train = asl["States"]["TrainAdapters"]["ItemProcessor"]["States"]["Train"]["Parameters"]
    code = next(c for c in train["InputDataConfig"] if c["ChannelName"] == "code")["DataSource"]["S3DataSource"]
    assert code["S3Uri"] == "${SourceDirUri}" and code["S3DataType"] == "S3Prefix"
    selector = asl["States"]["TrainAdapters"]["ItemSelector"]
    assert selector["code"] == {"sagemaker_submit_directory": "${SubmitDirectory}"}
    assert train["HyperParameters.$"] == "States.JsonMerge($.adapter.hyperparameters, $.code, false)"
    subs = machine["DefinitionSubstitutions"]
    source = json.dumps(subs["SourceDirUri"])
    key = subs["SubmitDirectory"].removeprefix("/opt/ml/input/data/code/")  # the asset's object key
    # CDK names the object <hash>.gz; the toolkit opens the submit directory as a gzip tarball by path.
    assert "cdk-hnb659fds-assets" in source and source.endswith(f'/{key}"}}') and key.endswith(".gz")
    template = training(synthesized)
    statements = [
        s
        for lid, p in template.find_resources("AWS::IAM::Policy").items()
        if lid.startswith("PipelineSageMakerRole")
        for s in p["Properties"]["PolicyDocument"]["Statement"]
    ]
    listing = next(s for s in statements if s["Action"] == "s3:ListBucket" and "cdk-hnb659fds-assets" in json.dumps(s))
    assert listing["Condition"] == {"StringLike": {"s3:prefix": [f"{key}*"]}}
    reads = [s for s in statements if s["Action"] == "s3:GetObject" and key in json.dumps(s["Resource"])]
    assert reads, "the role may not read the sourcedir object"
    rule = next(iter(template.find_resources("AWS::Events::Rule").values()))["Properties"]
    assert "sagemaker_submit_directory" not in json.dumps(rule["Targets"][0]["Input"])


def test_job_names_fit_sagemaker_and_the_role_that_creates_them(synthesized):
    _, asl = pipeline_definition(synthesized)
    train = asl["States"]["TrainAdapters"]["ItemProcessor"]["States"]["Train"]["Parameters"]
    # finai- + 32 hex (MD5 of the execution id) + item index + attempt: at most 63 characters,
    # only letters, digits and hyphens, whatever the execution's name; IAM allows finai-*.
    assert train["TrainingJobName.$"] == "States.Format('finai-{}-{}-{}', $.run, $.index, $$.State.RetryCount)"
    assert asl["States"]["TrainAdapters"]["ItemSelector"]["run.$"] == "States.Hash($$.Execution.Id, 'MD5')"
    assert asl["States"]["TrainAdapters"]["MaxConcurrency"] < 10 and len("finai-") + 32 + 2 + 1 + 2 <= 63


def test_buckets_are_kms_encrypted_versioned_tls_only_and_logged(synthesized):
    template = training(synthesized)
    buckets = template.find_resources("AWS::S3::Bucket")
    kms_buckets = [
        b
        for b in buckets.values()
        if b["Properties"]["BucketEncryption"]["ServerSideEncryptionConfiguration"][0]["ServerSideEncryptionByDefault"][
            "SSEAlgorithm"
        ]
        == "aws:kms"
    ]
    assert len(kms_buckets) == 2
    for bucket in buckets.values():
        props = bucket["Properties"]
        assert props["VersioningConfiguration"] == {"Status": "Enabled"}
        assert props["PublicAccessBlockConfiguration"]["BlockPublicPolicy"] is True
        assert "AccessControl" not in props
    for bucket in kms_buckets:
        assert "LoggingConfiguration" in bucket["Properties"]
    policies = template.find_resources("AWS::S3::BucketPolicy")
    for policy in policies.values():
        statements = policy["Properties"]["PolicyDocument"]["Statement"]
        assert any(
            s["Effect"] == "Deny" and s["Condition"] == {"Bool": {"aws:SecureTransport": "false"}} for s in statements
        )


def test_schedule_is_disabled_by_default_and_starts_both_adapters(synthesized):
    rule = next(iter(training(synthesized).find_resources("AWS::Events::Rule").values()))["Properties"]
    assert rule["State"] == "DISABLED"
    assert rule["ScheduleExpression"] == synthesized.config.training.schedule
    target_input = json.dumps(rule["Targets"][0]["Input"])
    assert "train_sentiment.py" in target_input and "train_advisor.py" in target_input


def test_sagemaker_role_is_scoped(synthesized):
    template = training(synthesized)
    roles = template.find_resources("AWS::IAM::Role")
    sagemaker_role = next(
        lid
        for lid, r in roles.items()
        if "sagemaker.amazonaws.com" in json.dumps(r["Properties"]["AssumeRolePolicyDocument"])
    )
    assert "ManagedPolicyArns" not in roles[sagemaker_role]["Properties"]
    policies = [
        p for lid, p in template.find_resources("AWS::IAM::Policy").items() if lid.startswith("PipelineSageMakerRole")
    ]
    statements = [s for p in policies for s in p["Properties"]["PolicyDocument"]["Statement"]]
    for statement in statements:
        if statement["Resource"] == "*":
            assert set(statement["Action"] if isinstance(statement["Action"], list) else [statement["Action"]]) <= {
                "ecr:GetAuthorizationToken",
                "cloudwatch:PutMetricData",
            }
    assert any("container-assets" in json.dumps(s["Resource"]) for s in statements)


def test_pipeline_may_pass_only_the_sagemaker_role(synthesized):
    template = training(synthesized)
    policies = [p for lid, p in template.find_resources("AWS::IAM::Policy").items() if "StateMachineRole" in lid]
    statements = [s for p in policies for s in p["Properties"]["PolicyDocument"]["Statement"]]
    passes = [s for s in statements if s["Action"] == "iam:PassRole"]
    assert len(passes) == 1
    assert "PipelineSageMakerRole" in json.dumps(passes[0]["Resource"])


def test_sourcedir_is_reproducible_and_its_entry_points_are_real(tmp_path):
    first = build_sourcedir(tmp_path / "a")
    second = build_sourcedir(tmp_path / "b")
    assert hashlib.sha256(first.read_bytes()).digest() == hashlib.sha256(second.read_bytes()).digest()
    with tarfile.open(first) as archive:
        names = archive.getnames()
        assert set(ENTRY_POINTS) <= set(names)
        for entry, module in ENTRY_POINTS.items():
            text = archive.extractfile(entry).read().decode()
            assert f"from {module} import main" in text
            assert f"{module.replace('.', '/')}.py" in names
        assert all(member.mtime == 0 and member.uid == 0 for member in archive.getmembers())


def test_every_lambdas_module_the_jobs_import_is_in_the_sourcedir(tmp_path):
    """SageMaker runs the jobs from the sourcedir alone: a module of lambdas/ they import (at the
    top or inside a function, e.g. the advisor's served evaluation) must be in it, or the job
    fails on AWS after training."""
    import ast
    import subprocess
    import sys

    repo = Path(__file__).resolve().parents[2]
    lambdas_packages = {p.name for p in (repo / "lambdas").iterdir() if p.is_dir()}
    wanted = set()
    for source in (repo / "training_jobs").rglob("*.py"):
        for node in ast.walk(ast.parse(source.read_text())):
            if isinstance(node, ast.ImportFrom) and node.module and node.module.split(".")[0] in lambdas_packages:
                wanted.add(node.module)
    assert {"shared.budgeting", "shared.grounding", "serving.plans"} <= wanted
    with tarfile.open(build_sourcedir(tmp_path / "src")) as archive:
        archive.extractall(tmp_path / "tree", filter="data")
    script = "import importlib, sys\nfor m in sys.argv[1:]:\n    importlib.import_module(m)\n"
    done = subprocess.run(
        [sys.executable, "-c", script, *sorted(wanted)],
        cwd=tmp_path / "tree",
        env={"PYTHONPATH": str(tmp_path / "tree"), "PATH": "/usr/bin:/bin"},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-1500:]
