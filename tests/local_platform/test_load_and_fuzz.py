"""Proof under load and bad input, against the served platform: locust (headless, bounded time,
failure ratio below 1%) and schemathesis (fixed seed, response-time limit, zero server errors and
every response conforming to docs/openapi.json)."""

import csv
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent
LOAD_SECONDS = int(os.environ.get("FINAI_LOAD_SECONDS", "12"))
FUZZ_EXAMPLES = int(os.environ.get("FINAI_FUZZ_EXAMPLES", "200"))


def test_locust_load_has_under_one_percent_failures(served, tmp_path):
    prefix = tmp_path / "load"
    done = subprocess.run(
        [
            str(BIN / "locust"),
            "-f",
            str(ROOT / "local" / "locustfile.py"),
            "--headless",
            "--users",
            "4",
            "--spawn-rate",
            "4",
            "--run-time",
            f"{LOAD_SECONDS}s",
            "--host",
            served.url,
            "--csv",
            str(prefix),
            "--only-summary",
        ],
        capture_output=True,
        text=True,
        timeout=LOAD_SECONDS + 60,
        check=False,
    )
    with Path(f"{prefix}_stats.csv").open() as handle:
        rows = {row["Name"]: row for row in csv.DictReader(handle)}
    total = rows["Aggregated"]
    requests_, failures = int(total["Request Count"]), int(total["Failure Count"])
    print(
        f"locust: {requests_} requests in {LOAD_SECONDS} s, {float(total['Requests/s']):.1f} req/s, "
        f"p95 {total['95%']} ms, {failures} failures"
    )
    assert requests_ > 0, done.stderr[-2000:]
    assert failures / requests_ < 0.01


def test_schemathesis_finds_no_server_errors_and_every_response_conforms(served, tmp_path):
    done = subprocess.run(
        [
            str(BIN / "schemathesis"),
            "run",
            str(ROOT / "docs" / "openapi.json"),
            "--url",
            served.url,
            "-H",
            "x-api-key: local-demo-key",
            "--max-examples",
            str(FUZZ_EXAMPLES),
            "--seed",
            "42",
            "--max-response-time",
            "10",
            "--checks",
            "all",
            "--phases",
            "examples,coverage,fuzzing",
            "--warnings",
            "off",
            "--report",
            "junit",
            "--report-dir",
            str(tmp_path),
        ],
        capture_output=True,
        text=True,
        timeout=900,
        check=False,
    )
    summary = done.stdout[-1500:]
    print(summary)
    assert done.returncode == 0, summary
    assert "No issues found" in done.stdout
