"""``make demo``: the regional request path on this machine, with every tier answering.

It runs the same handler code and the same ASL file that ``cdk deploy`` ships, against moto's
Step Functions, DynamoDB and Lambda, with an offline stand-in for Bedrock. Faults are injected
into the stand-in to walk through the circuit breaker's states.
"""

from __future__ import annotations

import json
import os
import sys
import time
import warnings
from typing import Any

os.environ.setdefault("POWERTOOLS_LOG_LEVEL", "ERROR")
os.environ.setdefault("POWERTOOLS_METRICS_DISABLED", "true")
warnings.filterwarnings("ignore", message="No application metrics to publish")

from local.request_path import RequestPath, local_request_path  # noqa: E402 - env first
from shared.strategy import load_default_strategy  # noqa: E402
from shared.use_cases import UseCase  # noqa: E402

STRATEGY = load_default_strategy()
PRIMARY = STRATEGY.use_cases[UseCase.GENERAL].variants[0].model_id
FALLBACK = "us.amazon.nova-micro-v1:0"
ROW = "{:>3}  {:<22} {:>6}  {:<9} {:<42} {:>7}"


def say(text: str) -> None:
    print(f"\n== {text}", flush=True)


class Demo:
    def __init__(self, path: RequestPath) -> None:
        self.path = path
        self.count = 0
        self.tiers: dict[str, int] = {}

    def request(self, body: dict[str, Any] | str, note: str = "") -> tuple[int, dict[str, Any]]:
        self.count += 1
        raw = body if isinstance(body, str) else json.dumps(body)
        started = time.perf_counter()
        # The front Lambda prints its EMF metrics to stdout; the demo shows its own table instead.
        with open(os.devnull, "w") as sink:
            stdout, sys.stdout = sys.stdout, sink
            try:
                status, answer = self.path.api("POST", "/v1/generate", raw)
            finally:
                sys.stdout = stdout
        ms = (time.perf_counter() - started) * 1000
        use_case = body.get("use_case", "?") if isinstance(body, dict) else "(malformed)"
        tier = answer.get("tier", answer.get("error", "?"))
        model = answer.get("model_used", answer.get("message", ""))[:42]
        if status == 200:
            self.tiers[tier] = self.tiers.get(tier, 0) + 1
        print(
            ROW.format(self.count, str(use_case)[:22], status, tier, model, f"{ms:.0f}ms")
            + (f"  {note}" if note else "")
        )
        return status, answer

    def circuit(self) -> str:
        state = self.path.circuit(PRIMARY)
        if state is None:
            return f"circuit for {PRIMARY}: no item yet (CLOSED)"
        return f"circuit for {PRIMARY}: {state['state']}, failures={state['failures']}, opened_at={state['opened_at']}"


def run() -> int:
    with local_request_path() as path:
        demo = Demo(path)
        print(ROW.format("#", "use case", "status", "tier", "model / message", "latency"))

        say("1. Healthy: every use case answers from its primary model (AppConfig strategy, A/B by user)")
        for use_case in STRATEGY.use_cases:
            demo.request({"prompt": "How can I save more each month?", "use_case": use_case, "user_id": "alice"})
        for user in (f"user-{i}" for i in range(1, 6)):  # the 80/20 split sends user-1 to variant B
            demo.request(
                {"prompt": "What does a CD pay?", "use_case": "product_question", "user_id": user}, f"user={user}"
            )

        say("2. Bad input: clear 4xx, the state machine never starts")
        demo.request("{not json")
        demo.request({"prompt": "hi", "use_case": "crypto_tips"})
        demo.request({"prompt": "   ", "use_case": "general"})
        demo.request({"prompt": "x" * 16_001, "use_case": "general"})

        say(f"3. Primary {PRIMARY} starts failing: fallback answers, failures count up")
        path.bedrock.fail(PRIMARY)
        for _ in range(STRATEGY.breaker.failure_threshold):
            demo.request({"prompt": "Explain APR vs APY", "use_case": "general"})
        print("   ", demo.circuit())

        say("4. Circuit OPEN: the primary is not called at all")
        path.bedrock.heal(PRIMARY)
        before = path.bedrock.calls_to(PRIMARY)
        demo.request({"prompt": "Explain APR vs APY", "use_case": "general"})
        print(f"    primary calls while open: {path.bedrock.calls_to(PRIMARY) - before}")

        say(f"5. {STRATEGY.breaker.cooldown_seconds}s later: one HALF_OPEN probe succeeds and closes the circuit")
        path.advance(STRATEGY.breaker.cooldown_seconds)
        demo.request({"prompt": "Explain APR vs APY", "use_case": "general"}, "probe")
        print("   ", demo.circuit())

        say("6. Primary and fallback both down: static, compliant degraded answer")
        path.bedrock.fail(PRIMARY)
        path.bedrock.fail(FALLBACK)
        _, answer = demo.request(
            {"prompt": "Which mortgage should I pick?", "use_case": "product_question", "user_id": "alice"}
        )
        print("    " + answer["response"][:400] + "...")

        status, health = path.api("GET", "/v1/health")
        say(f"GET /v1/health -> {status}: {json.dumps(health)[:300]}")
        say(f"Answers by tier: {json.dumps(demo.tiers)}")
        missing = {"primary", "fallback", "degraded"} - set(demo.tiers)
        if missing:
            print(f"demo failed: no {sorted(missing)} answer", file=sys.stderr)
            return 1
    return 0


if __name__ == "__main__":
    sys.exit(run())
