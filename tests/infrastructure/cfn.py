"""Reading synthesized CloudFormation the way AWS will: intrinsic functions rendered with the
pseudo parameters of the stack's region, and a state machine's definition turned back into ASL."""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

from tests.iam.resolver import Resolver


def render(value: Any, region: str, refs: dict[str, str] | None = None) -> Any:
    """Resolve intrinsic functions far enough to compare names and ARNs (tests/iam/resolver.py).

    Pseudo parameters become the region's values; a Ref or GetAtt of a resource becomes a marker
    ``<Ref:Id>`` / ``<GetAtt:Id.Attr>`` unless ``refs`` names its value.
    """
    return Resolver({"Resources": {}}, region, names=dict(refs or {})).render(value)


def asl_text(props: dict[str, Any], outdir: Path, render_value: Callable[[Any], Any]) -> str:
    """A state machine's ASL as Step Functions runs it: CDK uploads the file as an asset and passes
    ``DefinitionSubstitutions``, applied here with ``render_value`` rendering each reference."""
    if "DefinitionString" in props:
        text = str(render_value(props["DefinitionString"]))
    else:
        key = str(render_value(props["DefinitionS3Location"]["Key"]))
        text = (outdir / f"asset.{key}").read_text()
    for name, value in props.get("DefinitionSubstitutions", {}).items():
        text = text.replace("${" + name + "}", str(render_value(value)))
    return text


def state_machine_definition(template: dict[str, Any], region: str, contains: str, outdir: Path) -> dict[str, Any]:
    """The ASL of the state machine whose definition mentions ``contains`` (a state name), with
    resource references rendered as markers."""
    for resource in template["Resources"].values():
        if resource["Type"] != "AWS::StepFunctions::StateMachine":
            continue
        text = asl_text(resource["Properties"], outdir, lambda value: render(value, region))
        if contains in text:
            return dict(json.loads(text))
    raise AssertionError(f"no state machine mentions {contains!r}")


def marker_target(marker: str) -> str | None:
    """The logical id inside a ``<Ref:Id>`` or ``<GetAtt:Id.Attr>`` marker."""
    match = re.fullmatch(r"<(?:Ref|GetAtt):([A-Za-z0-9]+)(?:\.[A-Za-z]+)?>", marker)
    return match.group(1) if match else None
