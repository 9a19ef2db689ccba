"""Synthesize the real app once per session; every infrastructure test reads these templates."""

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aws_cdk as cdk
from aws_cdk.assertions import Template

from cdk_app.app import build
from cdk_app.config import PlatformConfig, load_config

REPO = Path(__file__).resolve().parents[2]


def cdk_json_context() -> dict[str, Any]:
    context = json.loads((REPO / "cdk.json").read_text())["context"]
    return {k: v for k, v in context.items() if not k.startswith("@")}


def feature_flags() -> dict[str, Any]:
    context = json.loads((REPO / "cdk.json").read_text())["context"]
    return {k: v for k, v in context.items() if k.startswith("@")}


@dataclass
class Synthesized:
    app: cdk.App
    config: PlatformConfig
    stacks: dict[str, cdk.Stack]
    templates: dict[str, Template]
    outdir: Path

    def regional(self, region: str) -> Template:
        return self.templates[f"FinAi-{region}"]


def synthesize(outdir: Path, overrides: dict[str, Any] | None = None) -> Synthesized:
    config = load_config({**cdk_json_context(), **(overrides or {})})
    app = cdk.App(outdir=str(outdir), context=feature_flags())
    stacks = build(app, config)
    app.synth()
    return Synthesized(
        app=app,
        config=config,
        stacks={s.stack_name: s for s in stacks},
        templates={s.stack_name: Template.from_stack(s) for s in stacks},
        outdir=outdir,
    )


DNS_CONTEXT = {"domain_name": "api.bank.example", "hosted_zone_id": "Z0123456789ABCDEFGHIJ"}

# The session's `synthesized` and `synthesized_dns` fixtures live in tests/conftest.py: the IAM
# coverage check (tests/iam) judges recorded calls against the same templates.
