"""``make walkthrough``: the scripted tour reads as a client and an operator would read it."""

import os
import re
import subprocess
import sys
from pathlib import Path

from tests.local_platform.conftest import free_port

ROOT = Path(__file__).resolve().parents[2]


def test_the_walkthrough_shows_answers_a_reopened_circuit_and_a_failover():
    env = {**os.environ, "PYTHONPATH": f"{ROOT}:{ROOT / 'lambdas'}", "FINAI_WALKTHROUGH_PORT": str(free_port())}
    result = subprocess.run(
        [sys.executable, "-m", "local.demo"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    out = result.stdout
    assert result.returncode == 0, out[-3000:] + result.stderr[-3000:]
    assert "Offline answer to: How can I save more each month?" in out  # each answer's text
    assert "sentiment label: " in out
    assert "failed: ModelErrorException (model)" in out  # the primary failure the client is told
    # A failed probe re-opens the circuit with a new opened_at; a later one closes it.
    circuits = re.findall(r"circuit for \S+: (\w+), failures=(\d+), opened_at=(\S+)", out)
    assert [c[0] for c in circuits] == ["OPEN", "OPEN", "CLOSED"], circuits
    assert circuits[1][2] > circuits[0][2], "the failed probe stamps a new opened_at"
    assert "record moved to us-west-2" in out and "served by us-west-2" in out
    assert '{"' not in out, "raw JSON in the walkthrough"
