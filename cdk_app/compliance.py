"""Compliance gates: cdk-nag's AwsSolutions, NIST 800-53 R5 and PCI DSS 3.2.1 packs.

cdk-nag 2.38.2 is pinned on purpose: 3.x replaced Aspects with validation plugins whose
acknowledgments were reported to leak app-wide, and we want suppressions bound to one construct.
Findings become error annotations, so ``cdk synth`` (and the tests) fail on any that is not
acknowledged here with a reason.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence

from aws_cdk import Aspects, CfnResource, IAspect
from cdk_nag import (
    AwsSolutionsChecks,
    NagPackSuppression,
    NagSuppressions,
    NIST80053R5Checks,
    PCIDSS321Checks,
    RegexAppliesTo,
)
from constructs import Construct, IConstruct

PACK_PREFIXES = ("AwsSolutions", "NIST.800.53.R5", "PCI.DSS.321")
# AwsSolutions rules have short codes (IAM5, APIG2); NIST and PCI share descriptive names.
_AWS_SOLUTIONS_CODE = re.compile(r"^[A-Z]+\d+$")

Acknowledgment = tuple[str, str, Sequence[str] | None]
# The checkov checks that test the same thing as a cdk-nag rule: one acknowledgment, one reason,
# both tools satisfied.
CHECKOV_EQUIVALENTS: dict[str, tuple[str, ...]] = {
    "LambdaDLQ": ("CKV_AWS_116",),
    "LambdaInsideVPC": ("CKV_AWS_117",),
    "LambdaConcurrency": ("CKV_AWS_115",),
    "APIGWCacheEnabledAndEncrypted": ("CKV_AWS_120",),
    "APIG4": ("CKV_AWS_59",),
    "S1": ("CKV_AWS_18",),
}
REGEX_PREFIX = "regex:"


def packs(*, reports: bool = True) -> list[IAspect]:
    return [
        AwsSolutionsChecks(verbose=True, reports=reports),
        NIST80053R5Checks(verbose=True, reports=reports),
        PCIDSS321Checks(verbose=True, reports=reports),
    ]


def apply_compliance(scope: IConstruct, *, reports: bool = True) -> None:
    for pack in packs(reports=reports):
        Aspects.of(scope).add(pack)


def rule_ids(rule: str) -> list[str]:
    """The pack-qualified ids of a rule: ``IAM5`` is AwsSolutions', ``LambdaInsideVPC`` NIST's and PCI's."""
    if rule.startswith(PACK_PREFIXES):
        return [rule]
    if _AWS_SOLUTIONS_CODE.match(rule):
        return [f"AwsSolutions-{rule}"]
    return [f"NIST.800.53.R5-{rule}", f"PCI.DSS.321-{rule}"]


def _applies_to(items: Sequence[str] | None) -> list[str | RegexAppliesTo] | None:
    """Finding qualifiers, literal or (with a ``regex:`` prefix) a pattern for generated ids."""
    if not items:
        return None
    return [
        RegexAppliesTo(regex=f"/{item.removeprefix(REGEX_PREFIX)}/") if item.startswith(REGEX_PREFIX) else item
        for item in items
    ]


def acknowledge(construct: Construct, items: Iterable[Acknowledgment], *, apply_to_children: bool = True) -> None:
    """Acknowledge findings on one construct (and its children), each with a written reason."""
    suppressions: list[NagPackSuppression] = []
    for rule, reason, applies_to in items:
        if len(reason.strip()) < 20:
            raise ValueError(f"acknowledgment of {rule} needs a real reason, got {reason!r}")
        for rule_id in rule_ids(rule):
            suppressions.append(NagPackSuppression(id=rule_id, reason=reason, applies_to=_applies_to(applies_to)))
    NagSuppressions.add_resource_suppressions(construct, suppressions, apply_to_children=apply_to_children)
    skips = [
        {"id": check, "comment": reason} for rule, reason, _ in items for check in CHECKOV_EQUIVALENTS.get(rule, ())
    ]
    if skips:
        _add_checkov_skips(construct, skips, apply_to_children)


def _add_checkov_skips(construct: IConstruct, skips: list[dict[str, str]], apply_to_children: bool) -> None:
    """checkov reads ``Metadata.checkov.skip`` on each CloudFormation resource."""
    targets = construct.node.find_all() if apply_to_children else [construct]
    for target in targets:
        if isinstance(target, CfnResource):
            existing = target.get_metadata("checkov") or {"skip": []}
            known = {entry["id"] for entry in existing["skip"]}
            existing["skip"].extend(skip for skip in skips if skip["id"] not in known)
            target.add_metadata("checkov", existing)
