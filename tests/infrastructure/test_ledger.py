"""The audit ledger as CloudFormation receives it, with the rules AWS enforces and moto does not."""

from __future__ import annotations

import json
import tempfile
from pathlib import Path
from typing import Any

import pytest

from cdk_app.config import LedgerSettings
from stacks.ledger import LEDGER_TIMEOUT, VISIBILITY_TIMEOUT
from tests.infrastructure.conftest import synthesize

REGIONS = ("us-east-1", "us-west-2")


def resources(template: Any, kind: str, fragment: str) -> dict[str, Any]:
    return {k: v for k, v in template.find_resources(kind).items() if fragment in k}


def one(template: Any, kind: str, fragment: str) -> tuple[str, dict[str, Any]]:
    found = resources(template, kind, fragment)
    assert len(found) == 1, (kind, fragment, list(found))
    return next(iter(found.items()))


def statements_naming(template: Any, logical_id: str) -> list[tuple[str, Any]]:
    found = []
    for policy_id, policy in template.find_resources("AWS::IAM::Policy").items():
        for statement in policy["Properties"]["PolicyDocument"]["Statement"]:
            if logical_id in json.dumps(statement["Resource"]):
                found.append((policy_id, statement["Action"]))
    return found


@pytest.mark.parametrize("region", REGIONS)
def test_the_archive_locks_every_record_in_compliance_mode_for_six_years(synthesized, region):
    template = synthesized.regional(region)
    bucket_id, bucket = one(template, "AWS::S3::Bucket", "LedgerArchive")
    props = bucket["Properties"]
    # Object Lock needs versioning; CloudFormation refuses the bucket otherwise.
    assert props["ObjectLockEnabled"] is True
    assert props["VersioningConfiguration"] == {"Status": "Enabled"}
    retention = props["ObjectLockConfiguration"]["Rule"]["DefaultRetention"]
    assert retention == {"Mode": "COMPLIANCE", "Days": LedgerSettings().retention_days} and retention["Days"] == 2192
    encryption = props["BucketEncryption"]["ServerSideEncryptionConfiguration"][0]["ServerSideEncryptionByDefault"]
    assert encryption["SSEAlgorithm"] == "aws:kms" and "PlatformKey" in json.dumps(encryption["KMSMasterKeyID"])
    assert props["PublicAccessBlockConfiguration"]["BlockPublicPolicy"] is True
    assert "LoggingConfiguration" in props
    assert bucket["DeletionPolicy"] == "Retain"
    # Only the ledger function writes, and only under ledger/; nobody is granted a delete.
    writers = statements_naming(template, bucket_id)
    assert writers and all(policy.startswith("LedgerChainer") for policy, _ in writers)
    assert not any("Delete" in json.dumps(actions) for _, actions in writers)


def test_retention_comes_from_config():
    ledger = {"retention_days": 30, "retention_mode": "GOVERNANCE"}
    synthesized = synthesize(Path(tempfile.mkdtemp()), {"ledger": ledger})
    _, bucket = one(synthesized.regional("us-east-1"), "AWS::S3::Bucket", "LedgerArchive")
    retention = bucket["Properties"]["ObjectLockConfiguration"]["Rule"]["DefaultRetention"]
    assert retention == {"Mode": "GOVERNANCE", "Days": 30}


@pytest.mark.parametrize("region", REGIONS)
def test_the_audit_queue_is_fifo_encrypted_and_dead_lettered(synthesized, region):
    template = synthesized.regional(region)
    queues = resources(template, "AWS::SQS::Queue", "Ledger")
    main = next(v for k, v in queues.items() if "LedgerQueue" in k)["Properties"]
    dead = next(v for k, v in queues.items() if "DeadLetters" in k)["Properties"]
    assert main["FifoQueue"] is True and dead["FifoQueue"] is True  # a FIFO queue's DLQ must be FIFO
    assert main["FifoThroughputLimit"] == "perMessageGroupId" and main["DeduplicationScope"] == "messageGroup"
    assert "PlatformKey" in json.dumps(main["KmsMasterKeyId"])
    assert main["RedrivePolicy"]["maxReceiveCount"] == 10
    # Lambda refuses an SQS event source whose visibility timeout is shorter than the function's timeout.
    assert main["VisibilityTimeout"] == VISIBILITY_TIMEOUT.to_seconds() >= 6 * LEDGER_TIMEOUT.to_seconds()
    _, mapping = one(template, "AWS::Lambda::EventSourceMapping", "Ledger")
    assert mapping["Properties"]["BatchSize"] <= 10  # the most a FIFO event source takes


@pytest.mark.parametrize("region", REGIONS)
def test_the_front_may_only_send_to_the_queue_and_the_ledger_only_consume_it(synthesized, region):
    template = synthesized.regional(region)
    queue_id, _ = next((k, v) for k, v in resources(template, "AWS::SQS::Queue", "LedgerQueue").items())
    grants = dict(statements_naming(template, queue_id))
    front = [a for p, a in grants.items() if p.startswith("ApiFront")]
    assert front and all("sqs:Receive" not in json.dumps(a) for a in front)
    assert "sqs:SendMessage" in json.dumps(front)
    assert {p.split("Role")[0] for p in grants} == {"ApiFront", "ApiStream", "LedgerChainer"}


@pytest.mark.parametrize("region", REGIONS)
def test_the_ledger_table_keeps_chains_in_order_and_is_retained(synthesized, region):
    template = synthesized.regional(region)
    table_id, table = one(template, "AWS::DynamoDB::GlobalTable", "LedgerTable")
    props = table["Properties"]
    assert props["KeySchema"] == [
        {"AttributeName": "chain", "KeyType": "HASH"},
        {"AttributeName": "seq", "KeyType": "RANGE"},
    ]
    assert props["SSESpecification"] == {"SSEEnabled": True, "SSEType": "KMS"}
    assert props["Replicas"][0]["DeletionProtectionEnabled"] is True
    assert props["Replicas"][0]["PointInTimeRecoverySpecification"]["PointInTimeRecoveryEnabled"] is True
    assert table["DeletionPolicy"] == "Retain"
    writers = statements_naming(template, table_id)
    assert [p.split("Role")[0] for p, _ in writers] == ["LedgerChainer"]
    assert set(writers[0][1]) == {"dynamodb:Query", "dynamodb:PutItem"}


@pytest.mark.parametrize("region", REGIONS)
def test_function_environments_fit_lambdas_four_kilobytes(synthesized, region):
    template = synthesized.regional(region)
    for logical_id, function in template.find_resources("AWS::Lambda::Function").items():
        variables = function["Properties"].get("Environment", {}).get("Variables", {})
        # Tokens render longer when deployed; a generous allowance for each keeps the check honest.
        size = sum(len(k) + (len(v) if isinstance(v, str) else 120) for k, v in variables.items())
        assert size < 4096, (logical_id, size)
