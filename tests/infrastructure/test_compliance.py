"""cdk-nag: zero unacknowledged findings, and proof that a bad construct does fail."""

import aws_cdk as cdk
import pytest
from aws_cdk import aws_s3 as s3
from aws_cdk import aws_sqs as sqs
from aws_cdk.assertions import Annotations, Match

from cdk_app.compliance import acknowledge, apply_compliance, rule_ids

ANY = Match.string_like_regexp(".*")


def findings(stack: cdk.Stack) -> list[str]:
    annotations = Annotations.from_stack(stack)
    errors = annotations.find_error("*", ANY)
    warnings = annotations.find_warning("*", ANY)
    return [f"{m.id}: {str(m.entry.data)[:160]}" for m in [*errors, *warnings]]


def test_every_stack_has_zero_unacknowledged_findings(synthesized):
    for name, stack in synthesized.stacks.items():
        assert findings(stack) == [], name


def test_all_three_packs_ran_and_wrote_reports(synthesized):
    reports = sorted(p.name for p in synthesized.outdir.glob("*NagReport.csv"))
    for pack in ("AwsSolutions", "NIST.800.53.R5", "PCI.DSS.321"):
        assert any(r.startswith(pack) for r in reports), (pack, reports)


def test_every_acknowledgment_has_a_reason(synthesized):
    for stack in synthesized.stacks.values():
        for resource in stack.node.find_all():
            metadata = getattr(resource, "cfn_options", None)
            if metadata is None:
                continue
            nag = (metadata.metadata or {}).get("cdk_nag", {})
            for rule in nag.get("rules_to_suppress", []):
                assert len(rule["reason"]) >= 20, rule


def canary_stack(acknowledged: bool) -> cdk.Stack:
    app = cdk.App()
    stack = cdk.Stack(app, "Canary", env=cdk.Environment(region="us-east-1"))
    # No encryption, no TLS-only policy, no access logs, no versioning: every pack objects.
    bucket = s3.CfnBucket(stack, "PlainBucket")
    queue = sqs.Queue(stack, "PlainQueue", encryption=sqs.QueueEncryption.UNENCRYPTED)
    if acknowledged:
        acknowledge(queue, [("SQS3", "The canary's queue is deliberately not a DLQ, for this test only.", None)])
    apply_compliance(app, reports=False)
    app.synth()
    del bucket
    return stack


def test_canary_non_compliant_construct_fails():
    found = findings(canary_stack(acknowledged=False))
    ids = " ".join(found)
    assert "AwsSolutions-S1" in ids  # server access logs
    assert "AwsSolutions-S10" in ids  # TLS only
    assert "NIST.800.53.R5-S3BucketLoggingEnabled" in ids
    assert "PCI.DSS.321-S3DefaultEncryptionKMS" in ids
    assert "AwsSolutions-SQS3" in ids


def test_acknowledgment_removes_only_the_named_rule():
    found = " ".join(findings(canary_stack(acknowledged=True)))
    assert "AwsSolutions-SQS3" not in found
    assert "AwsSolutions-SQS4" in found, "acknowledging one rule must not silence the others"
    assert "AwsSolutions-S1" in found


def test_acknowledgment_without_a_reason_is_refused():
    app = cdk.App()
    stack = cdk.Stack(app, "S")
    with pytest.raises(ValueError, match="real reason"):
        acknowledge(stack, [("IAM5", "ok", None)])


@pytest.mark.parametrize(
    ("rule", "expected"),
    [
        ("IAM5", ["AwsSolutions-IAM5"]),
        ("LambdaInsideVPC", ["NIST.800.53.R5-LambdaInsideVPC", "PCI.DSS.321-LambdaInsideVPC"]),
        ("NIST.800.53.R5-IAMNoInlinePolicy", ["NIST.800.53.R5-IAMNoInlinePolicy"]),
    ],
)
def test_rule_ids_map_to_pack_qualified_ids(rule, expected):
    assert rule_ids(rule) == expected
