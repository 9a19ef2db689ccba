"""Every stack the Makefile's deploy and destroy targets name exists in the synthesized manifest.

Defect 2 was ``make deploy`` deploying ``FinAi-global``, which the app no longer synthesized. The
Makefile asks ``cdk_app.deploy_plan`` for the names; this runs ``make -n`` (commands printed, not
run) for every variant and checks each name against the manifest of the same context.
"""

from __future__ import annotations

import json
import shlex
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest

from cdk_app.deploy_plan import deploy_order, destroy_order

REPO = Path(__file__).resolve().parents[2]
MAKE = shutil.which("make") or "make"


def manifest_stacks(outdir: Path) -> set[str]:
    manifest = json.loads((outdir / "manifest.json").read_text())
    return {
        artifact.get("displayName", name)
        for name, artifact in manifest["artifacts"].items()
        if artifact["type"] == "aws:cloudformation:stack"
    }


def named_stacks(target: str, variables: dict[str, str]) -> list[str]:
    arguments = [f"{k}={v}" for k, v in variables.items()]
    result = subprocess.run(
        [MAKE, "-n", "--no-print-directory", target, *arguments],
        cwd=REPO,
        capture_output=True,
        text=True,
        check=True,
        timeout=120,
    )
    lines = [line for line in result.stdout.splitlines() if f"cdk {target}" in line]
    assert len(lines) == 1, result.stdout[-2000:]
    words = shlex.split(lines[0])
    after = words[words.index(target) + 1 :]
    names, skip = [], False
    for word in after:
        if skip:
            skip = False
        elif word == "-c":
            skip = True
        elif not word.startswith("-") and word != "broadening":
            names.append(word)
    return names


def context_arguments(context: dict[str, Any]) -> str:
    return " ".join(f"-c {k}={v}" for k, v in context.items())


VARIANTS = [
    ("deploy", {}),
    ("deploy", {"REGION": "us-east-1"}),
    ("deploy", {"REGION": "us-west-2"}),
    ("destroy", {}),
    ("destroy", {"WITH_KEYS": "1"}),
]


@pytest.mark.parametrize(("target", "variables"), VARIANTS)
def test_make_names_only_stacks_the_app_synthesizes(synthesized, target, variables):
    names = named_stacks(target, variables)
    assert names, "the target names no stack"
    assert set(names) <= manifest_stacks(synthesized.outdir)


@pytest.mark.parametrize(("target", "variables"), VARIANTS)
def test_with_dns_failover_too(synthesized_dns, target, variables):
    from tests.infrastructure.conftest import DNS_CONTEXT

    names = named_stacks(target, {**variables, "CONTEXT": context_arguments(DNS_CONTEXT)})
    assert set(names) <= manifest_stacks(synthesized_dns.outdir)


def test_deploy_covers_every_stack_keys_first_and_destroy_keeps_the_keys(synthesized):
    everything = manifest_stacks(synthesized.outdir)
    order = deploy_order(synthesized.config)
    assert set(order) == everything and order[0] == "FinAi-keys" and order[-1] == "FinAi-training"
    assert set(deploy_order(synthesized.config, "us-east-1")) | set(deploy_order(synthesized.config, "us-west-2")) == (
        everything
    )
    assert "FinAi-keys" not in destroy_order(synthesized.config)
    assert destroy_order(synthesized.config, with_keys=True)[-1] == "FinAi-keys"


def test_an_unknown_region_is_refused(synthesized):
    with pytest.raises(ValueError, match="neither the primary"):
        deploy_order(synthesized.config, "eu-west-1")
