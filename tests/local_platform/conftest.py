"""Start the served local platform (front + two region processes) once for these tests."""

import json
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
import requests

ROOT = Path(__file__).resolve().parents[2]
KEY = "local-demo-key"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1] + 3 if s.getsockname()[1] < 60000 else 18180


class Served:
    def __init__(self, url: str, template: dict, port: int) -> None:
        self.url, self.template, self.port = url, template, port

    def generate(
        self, prompt: str, use_case: str = "general", key: str | None = KEY, user_id: str | None = None
    ) -> requests.Response:
        headers = {"x-api-key": key} if key is not None else {}
        body = {"use_case": use_case, "prompt": prompt} | ({"user_id": user_id} if user_id else {})
        return requests.post(f"{self.url}/v1/generate", json=body, headers=headers, timeout=60)

    def status(self) -> dict:
        return requests.get(f"{self.url}/admin/status", timeout=30).json()

    def admin(self, path: str, body: dict | None = None) -> dict:
        response = requests.post(f"{self.url}{path}", json=body, timeout=30)
        assert response.ok, response.text
        return response.json()

    def reset(self) -> None:
        """Faults healed, circuits forgotten, every region up, and the primary region active again."""
        self.admin("/admin/reset")
        deadline = time.monotonic() + 30
        while self.status()["active_region"] != "us-east-1":
            assert time.monotonic() < deadline, "the primary region did not become active again"
            time.sleep(0.2)

    def audit_total(self) -> int:
        return sum(r["audit_records"] for r in self.status()["regions"].values())


def tiny_advisor(root: Path) -> Path:
    """A tiny T5 advisor trained briefly by the real job (which also exports the int8 artifact)."""
    from training_jobs.advisor import train
    from training_jobs.common.tiny_models import build_t5
    from training_jobs.data.advisor_pairs import write_pairs
    from training_jobs.data.config import load_config
    from training_jobs.data.transactions import generate

    config = load_config(str(ROOT / "training_jobs" / "configs" / "synthetic.yaml"))
    frame, _ = generate(config.model_copy(update={"users": 6, "months": 4}))
    write_pairs(frame, config.advisor, config.seed, root / "pairs")
    texts = [
        json.loads(line)["prompt"] + " " + json.loads(line)["target"]
        for line in (root / "pairs" / "train.jsonl").open()
    ]
    base = build_t5(root / "base", texts)
    args = ["--base-model", str(base), "--data-dir", str(root / "pairs"), "--model-dir", str(root / "model")]
    args += ["--output-dir", str(root / "out"), "--max-train-pairs", "64", "--max-eval-pairs", "4"]
    args += ["--generate-samples", "1", "--max-new-tokens", "8", "--learning-rate", "1e-2", "--epochs", "3"]
    assert train.main(args) == 0
    return root / "model" / "serve"


def tiny_sentiment(root: Path) -> Path:
    """A tiny BERT classifier trained by make demo's own first-run path (the real job and export)."""
    from local.adapters import ensure_sentiment
    from training_jobs.common.tiny_models import build_bert

    return ensure_sentiment(root / "cache", base=str(build_bert(root / "base")), rows=200)


@pytest.fixture(scope="session")
def served(tmp_path_factory):
    from tests.infrastructure.conftest import synthesize

    out = tmp_path_factory.mktemp("cdk.out")
    synthesize(out, {"domain_name": "api.bank.example", "hosted_zone_id": "Z0123456789ABCDEFGHIJ"})
    advisor = tiny_advisor(tmp_path_factory.mktemp("advisor"))
    sentiment = tiny_sentiment(tmp_path_factory.mktemp("sentiment"))
    port = free_port()
    env = {**os.environ, "PYTHONPATH": f"{ROOT}:{ROOT / 'lambdas'}"}
    log = (tmp_path_factory.mktemp("logs") / "server.log").open("w")
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "local.server",
            *("--port", str(port), "--cdk-out", str(out), "--request-interval", "1"),
            *("--strategy", str(ROOT / "local" / "strategy.local.json"), "--advisor-artifact", str(advisor)),
            *("--sentiment-artifact", str(sentiment)),
        ],
        cwd=ROOT,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 180
    while time.monotonic() < deadline:
        try:
            if requests.get(f"{url}/admin/status", timeout=5).ok:
                break
        except requests.RequestException:
            time.sleep(0.5)
        assert process.poll() is None, "the local server exited during start-up"
    else:
        process.kill()
        pytest.fail("the local server did not start")
    template = json.loads((out / "FinAi-us-east-1.template.json").read_text())
    yield Served(url, template, port)
    process.terminate()
    process.wait(timeout=30)
    log.close()
