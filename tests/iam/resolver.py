"""Turning a synthesized template's references into the names and ARNs AWS would see.

A resource's physical name is unknown until deployment, so a reference renders as a marker
(``<Ref:CircuitTable>``) unless a binding names it. Bindings come from a function's environment:
the template says ``CIRCUIT_TABLE = Ref(CircuitTable)``, a test ran the handler with
``CIRCUIT_TABLE=finai-circuits``, so CircuitTable is ``finai-circuits`` for that call, and every
ARN built from it (``GetAtt CircuitTable.Arn``) becomes concrete.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

ACCOUNT = "123456789012"
PARTITION = "aws"
MARKER = re.compile(r"<(?:Ref|GetAtt):[A-Za-z0-9]+(?:\.[A-Za-z0-9]+)?>")

# How each resource type's Arn attribute is built from its Ref (name or id), as CloudFormation documents.
ArnOf = Callable[[str, str, str], str]
ARN_FROM_REF: dict[str, ArnOf] = {
    "AWS::DynamoDB::Table": lambda ref, r, a: f"arn:{PARTITION}:dynamodb:{r}:{a}:table/{ref}",
    "AWS::DynamoDB::GlobalTable": lambda ref, r, a: f"arn:{PARTITION}:dynamodb:{r}:{a}:table/{ref}",
    "AWS::Lambda::Function": lambda ref, r, a: f"arn:{PARTITION}:lambda:{r}:{a}:function:{ref}",
    "AWS::S3::Bucket": lambda ref, r, a: f"arn:{PARTITION}:s3:::{ref}",
    "AWS::KMS::Key": lambda ref, r, a: f"arn:{PARTITION}:kms:{r}:{a}:key/{ref}",
    "AWS::IAM::Role": lambda ref, r, a: f"arn:{PARTITION}:iam::{a}:role/{ref}",
    "AWS::Logs::LogGroup": lambda ref, r, a: f"arn:{PARTITION}:logs:{r}:{a}:log-group:{ref}:*",
    "AWS::SQS::Queue": lambda ref, r, a: _queue_arn(ref),  # Ref is the queue's URL
    "AWS::StepFunctions::StateMachine": lambda ref, r, a: ref,  # Ref is already the ARN
    "AWS::SNS::Topic": lambda ref, r, a: ref,
    "AWS::SecretsManager::Secret": lambda ref, r, a: ref,
    "AWS::CloudWatch::Alarm": lambda ref, r, a: f"arn:{PARTITION}:cloudwatch:{r}:{a}:alarm:{ref}",
}


def _queue_arn(url: str) -> str:
    """https://sqs.<region>.amazonaws.com/<account>/<name> -> arn:aws:sqs:<region>:<account>:<name>."""
    if not url.startswith("https://sqs."):
        return url
    region = url.removeprefix("https://sqs.").split(".", 1)[0]
    account, name = url.rstrip("/").split("/")[-2:]
    return f"arn:{PARTITION}:sqs:{region}:{account}:{name}"


@dataclass
class Resolver:
    template: dict[str, Any]
    region: str
    account: str = ACCOUNT
    names: dict[str, str] = field(default_factory=dict)  # logical id -> what Ref returns

    def resource_type(self, logical_id: str) -> str:
        return str(self.template["Resources"].get(logical_id, {}).get("Type", ""))

    def ref(self, logical_id: str) -> str:
        pseudo = {
            "AWS::Region": self.region,
            "AWS::AccountId": self.account,
            "AWS::Partition": PARTITION,
            "AWS::URLSuffix": "amazonaws.com",
            "AWS::StackName": "stack",
        }
        if logical_id in pseudo:
            return pseudo[logical_id]
        return self.names.get(logical_id, f"<Ref:{logical_id}>")

    def get_att(self, logical_id: str, attribute: str) -> str:
        key = f"{logical_id}.{attribute}"
        if key in self.names:
            return self.names[key]
        kind = self.resource_type(logical_id)
        if attribute == "Arn" and kind in ARN_FROM_REF and logical_id in self.names:
            return ARN_FROM_REF[kind](self.names[logical_id], self.region, self.account)
        if (
            attribute == "Arn"
            and kind in ARN_FROM_REF
            and kind
            not in (
                "AWS::StepFunctions::StateMachine",
                "AWS::SNS::Topic",
                "AWS::SecretsManager::Secret",
                "AWS::SQS::Queue",
            )
        ):
            return ARN_FROM_REF[kind](f"<Ref:{logical_id}>", self.region, self.account)
        return f"<GetAtt:{logical_id}.{attribute}>"

    def render(self, value: Any) -> Any:  # noqa: PLR0911  # one branch per intrinsic function
        if isinstance(value, list):
            return [self.render(v) for v in value]
        if not isinstance(value, dict):
            return value
        if "Fn::Join" in value:
            separator, parts = value["Fn::Join"]
            return separator.join(str(self.render(p)) for p in parts)
        if set(value) == {"Ref"}:
            return self.ref(value["Ref"])
        if set(value) == {"Fn::ImportValue"}:  # another stack's export: bound like a Ref
            name = f"Import:{self.render(value['Fn::ImportValue'])}"
            return self.names.get(name, f"<{name}>")
        if set(value) == {"Fn::GetAtt"}:
            target, attribute = value["Fn::GetAtt"]
            return self.get_att(target, attribute)
        if set(value) == {"Fn::Select"}:
            index, items = value["Fn::Select"]
            rendered = self.render(items)
            return rendered[int(index)] if isinstance(rendered, list) else f"<Select:{index}>"
        if set(value) == {"Fn::Split"}:
            separator, text = value["Fn::Split"]
            return str(self.render(text)).split(separator)
        return {k: self.render(v) for k, v in value.items()}

    def bind(self, template_value: Any, actual: str | None) -> bool:
        """Learn the names behind the references in ``template_value`` from its value at run time.

        False when the value has another shape than the template's (a test configured the function
        differently from the deployment), so nothing could be learnt from it.
        """
        if isinstance(template_value, str) or actual is None:
            return True
        placeholders: list[str] = []
        text = self._with_placeholders(template_value, placeholders)
        pattern, position = "", 0
        for match in re.finditer(r"\x00(\d+)\x00", text):
            pattern += re.escape(text[position : match.start()]) + f"(?P<g{match.group(1)}>.+?)"
            position = match.end()
        pattern += re.escape(text[position:])
        found = re.fullmatch(pattern, actual)
        if found:
            for index, reference in enumerate(placeholders):
                self.names.setdefault(reference, found.group(f"g{index}"))
        return found is not None

    def _with_placeholders(self, value: Any, placeholders: list[str]) -> str:
        if isinstance(value, dict) and "Fn::Join" in value:
            separator, parts = value["Fn::Join"]
            return separator.join(self._with_placeholders(p, placeholders) for p in parts)
        reference = None
        if isinstance(value, dict) and set(value) == {"Ref"}:
            if value["Ref"].startswith("AWS::"):
                return self.ref(value["Ref"])
            reference = str(value["Ref"])
        elif isinstance(value, dict) and set(value) == {"Fn::GetAtt"}:
            target, attribute = value["Fn::GetAtt"]
            reference = f"{target}.{attribute}"
        elif isinstance(value, dict) and set(value) == {"Fn::ImportValue"}:
            reference = f"Import:{self.render(value['Fn::ImportValue'])}"
        if reference is None:
            return str(value)
        placeholders.append(reference)
        return f"\x00{len(placeholders) - 1}\x00"


def role_statements(template: dict[str, Any], role_id: str, resolver: Resolver) -> list[dict[str, Any]]:
    """Every identity-policy statement of one role: inline in the role and in AWS::IAM::Policy resources."""
    found: list[dict[str, Any]] = []
    role = template["Resources"][role_id]["Properties"]
    for policy in role.get("Policies", []):
        found += [resolver.render(s) | {"_source": f"{role_id} inline"} for s in policy["PolicyDocument"]["Statement"]]
    for logical_id, resource in template["Resources"].items():
        if resource["Type"] != "AWS::IAM::Policy":
            continue
        roles = resource["Properties"].get("Roles", [])
        if any(r == {"Ref": role_id} for r in roles):
            statements = resource["Properties"]["PolicyDocument"]["Statement"]
            found += [resolver.render(s) | {"_source": logical_id} for s in statements]
    return found
