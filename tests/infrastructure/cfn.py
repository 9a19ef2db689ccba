"""Reading synthesized CloudFormation the way AWS will: intrinsic functions rendered with the
pseudo parameters of the stack's region, and a state machine's definition turned back into ASL."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

ACCOUNT = "123456789012"
PARTITION = "aws"


def render(value: Any, region: str, refs: dict[str, str] | None = None) -> Any:
    """Resolve Ref/Fn::Join/Fn::GetAtt far enough to compare names and ARNs.

    Pseudo parameters become the region's values; a Ref or GetAtt of a resource becomes a marker
    ``<Ref:Id>`` / ``<GetAtt:Id.Attr>`` unless ``refs`` names its value.
    """
    refs = refs or {}
    if isinstance(value, list):
        return [render(v, region, refs) for v in value]
    if not isinstance(value, dict):
        return value
    if "Fn::Join" in value:
        separator, parts = value["Fn::Join"]
        return separator.join(str(render(p, region, refs)) for p in parts)
    if set(value) == {"Ref"}:
        name = value["Ref"]
        pseudo = {
            "AWS::Region": region,
            "AWS::AccountId": ACCOUNT,
            "AWS::Partition": PARTITION,
            "AWS::URLSuffix": "amazonaws.com",
        }
        return pseudo.get(name) or refs.get(name) or f"<Ref:{name}>"
    if set(value) == {"Fn::GetAtt"}:
        target, attribute = value["Fn::GetAtt"]
        return refs.get(f"{target}.{attribute}") or f"<GetAtt:{target}.{attribute}>"
    return {k: render(v, region, refs) for k, v in value.items()}


def state_machine_definition(template: dict[str, Any], region: str, contains: str, outdir: Path) -> dict[str, Any]:
    """The ASL of the state machine whose definition mentions ``contains`` (a state name).

    CDK uploads the ASL file as an asset and passes ``DefinitionSubstitutions``; this applies them
    the way Step Functions does, with resource references rendered as markers.
    """
    for resource in template["Resources"].values():
        if resource["Type"] != "AWS::StepFunctions::StateMachine":
            continue
        props = resource["Properties"]
        if "DefinitionString" in props:
            text = str(render(props["DefinitionString"], region))
        else:
            key = str(render(props["DefinitionS3Location"]["Key"], region))
            text = (outdir / f"asset.{key}").read_text()
            for name, value in props.get("DefinitionSubstitutions", {}).items():
                text = text.replace("${" + name + "}", str(render(value, region)))
        if contains in text:
            return dict(json.loads(text))
    raise AssertionError(f"no state machine mentions {contains!r}")


def marker_target(marker: str) -> str | None:
    """The logical id inside a ``<Ref:Id>`` or ``<GetAtt:Id.Attr>`` marker."""
    match = re.fullmatch(r"<(?:Ref|GetAtt):([A-Za-z0-9]+)(?:\.[A-Za-z]+)?>", marker)
    return match.group(1) if match else None
