"""``make demo``: the regional request path on this machine, with every tier answering.

It runs the same handler code and the same ASL file that ``cdk deploy`` ships, against moto's
Step Functions, DynamoDB and Lambda, with an offline stand-in for Bedrock. Faults are injected
into the stand-in to walk through the circuit breaker's states.
"""

from __future__ import annotations

import contextlib
import json
import os
import sys
import time
import warnings
from typing import Any

os.environ["POWERTOOLS_LOG_LEVEL"] = "ERROR"  # the functions' JSON log lines would drown the narration
# The walkthrough prints its own table; the functions' EMF metric lines would be raw JSON in it.
os.environ["POWERTOOLS_METRICS_DISABLED"] = "true"
warnings.filterwarnings("ignore", message="No application metrics to publish")

from local.request_path import REPO, RequestPath, local_request_path  # noqa: E402 - env first
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
        status, answer = generate(self.path, raw)
        ms = (time.perf_counter() - started) * 1000
        use_case = body.get("use_case", "?") if isinstance(body, dict) else "(malformed)"
        if status == 200:
            self.tiers[answer["tier"]] = self.tiers.get(answer["tier"], 0) + 1
        show(self.count, str(use_case), status, answer, ms, note)
        return status, answer

    def circuit(self) -> str:
        return describe_circuit(self.path.circuit(PRIMARY))


def generate(path: RequestPath, raw: str) -> tuple[int, dict[str, Any]]:
    """``POST /v1/generate``, with whatever the functions print to stdout (EMF metric lines, when
    metrics are on) kept out of the walkthrough's table."""
    with open(os.devnull, "w") as sink, contextlib.redirect_stdout(sink):
        return path.api("POST", "/v1/generate", raw)


def show(number: int, use_case: str, status: int, answer: dict[str, Any], ms: float, note: str = "") -> None:
    """One row per request, then what the client reads: the answer (or the error), in one line."""
    tier = answer.get("tier", answer.get("error", "?"))
    model = str(answer.get("model_used", ""))[:42]
    print(ROW.format(number, use_case[:22], status, tier, model, f"{ms:.0f}ms") + (f"  {note}" if note else ""))
    text = answer.get("response") if status == 200 else answer.get("message")
    line = " ".join(str(text or "").split())
    print(f"       {line[:110]}{'...' if len(line) > 110 else ''}")
    sentiment = answer.get("sentiment")
    if sentiment:
        print(f"       sentiment label: {sentiment['label']}")
    failure = answer.get("primary_failure")
    if failure:
        print(f"       primary {failure['model']} failed: {failure['code']} ({failure['failure_class']})")


def describe_circuit(state: dict[str, Any] | None) -> str:
    if state is None:
        return f"circuit for {PRIMARY}: no item yet (CLOSED)"
    return f"circuit for {PRIMARY}: {state['state']}, failures={state['failures']}, opened_at={state['opened_at']}"


def describe_health(status: int, health: dict[str, Any]) -> str:
    circuits = ", ".join(
        f"{model} {c['state']} ({c['failures']} failures)" for model, c in (health.get("circuits") or {}).items()
    )
    return f"health {status} {health.get('status')} in {health.get('region')}; circuits: {circuits or 'none recorded'}"


def tally(tiers: dict[str, int]) -> str:
    return " · ".join(f"{tier} {count}" for tier, count in tiers.items())


def failover(path: RequestPath, secondary: Any, number: int) -> bool:
    """Every model in this region fails: its circuits open, health says degraded, and Route 53's
    health check (emulated with the template's interval and threshold) moves the record to the
    secondary region, which answers."""
    from local.failover import FailoverFront, HealthCheckSettings, Region
    from stacks.health_check import FAILURE_THRESHOLD, HEALTH_SEARCH_STRING, REQUEST_INTERVAL_SECONDS

    settings = HealthCheckSettings(REQUEST_INTERVAL_SECONDS, FAILURE_THRESHOLD, HEALTH_SEARCH_STRING, "/v1/health")

    def primary_probe() -> tuple[int, str]:
        status, body = path.api("GET", "/v1/health")
        return status, json.dumps(body, separators=(",", ":"))

    front = FailoverFront(
        settings,
        Region(path.region, primary_probe, lambda body: (0, {})),
        Region("us-west-2", secondary.probe, lambda body: (0, {})),
    )
    front.advance(0)
    for model in {v.model_id for uc in STRATEGY.use_cases.values() for v in uc.variants} | {FALLBACK}:
        path.bedrock.fail(model)
    for _ in range(STRATEGY.breaker.failure_threshold):
        generate(path, json.dumps({"prompt": "What is an ISA?", "use_case": "general"}))
    status, health = path.api("GET", "/v1/health")
    print(f"    {describe_health(status, health)}")
    while front.active().name == path.region and front.now < settings.detection_window_s * 3:
        front.advance(settings.request_interval)
    print(
        f"    Route 53 (every {settings.request_interval} s, {settings.failure_threshold} failures): "
        f"record moved to {front.active().name} after {front.now:.0f} s of emulated time"
    )
    started = time.perf_counter()
    body = json.dumps({"prompt": "What is an ISA?", "use_case": "general"}).encode()
    code, content, _ = secondary.forward("POST", "/v1/generate", body)
    answer = json.loads(content)
    show(number, "general", code, answer, (time.perf_counter() - started) * 1000, f"served by {secondary.name}")
    return front.active().name == secondary.name and code == 200


def run() -> int:
    from local.server import RegionProcess

    # The secondary region starts now (its own process, as make demo runs it) and is ready by step 8.
    secondary = RegionProcess(
        "us-west-2", int(os.environ.get("FINAI_WALKTHROUGH_PORT", "8099")), 2, REPO / "build" / "local"
    )
    try:
        with local_request_path() as path:
            code = tour(path, secondary)
    finally:
        secondary.stop()
    return code


def tour(path: RequestPath, secondary: Any) -> int:
    demo = Demo(path)
    print(ROW.format("#", "use case", "status", "tier", "model / message", "latency"))

    say("1. Healthy: every use case answers from its primary model (AppConfig strategy, A/B by user)")
    for use_case in STRATEGY.use_cases:
        demo.request({"prompt": "How can I save more each month?", "use_case": use_case, "user_id": "alice"})
    for user in (f"user-{i}" for i in range(1, 6)):  # the 80/20 split sends user-1 to variant B
        demo.request({"prompt": "What does a CD pay?", "use_case": "product_question", "user_id": user}, f"user={user}")

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
    before = path.bedrock.calls_to(PRIMARY)
    demo.request({"prompt": "Explain APR vs APY", "use_case": "general"})
    print(f"    primary calls while open: {path.bedrock.calls_to(PRIMARY) - before}")

    cooldown = STRATEGY.breaker.cooldown_seconds
    say(f"5. {cooldown}s later, still failing: the HALF_OPEN probe fails and the circuit opens again")
    path.advance(cooldown)
    demo.request({"prompt": "Explain APR vs APY", "use_case": "general"}, "probe")
    print("   ", demo.circuit())

    say(f"6. Healed, {cooldown}s later: one HALF_OPEN probe succeeds and closes the circuit")
    path.bedrock.heal(PRIMARY)
    path.advance(cooldown)
    demo.request({"prompt": "Explain APR vs APY", "use_case": "general"}, "probe")
    print("   ", demo.circuit())

    say("7. Primary and fallback both down: static, compliant degraded answer")
    path.bedrock.fail(PRIMARY)
    path.bedrock.fail(FALLBACK)
    demo.request({"prompt": "Which mortgage should I pick?", "use_case": "product_question", "user_id": "alice"})
    demo.request({"prompt": "Shares fell 12% after the profit warning.", "use_case": "sentiment", "user_id": "alice"})

    say("8. Every model of us-east-1 fails: health turns degraded and DNS fails over to us-west-2")
    secondary.wait_ready()
    failed_over = failover(path, secondary, demo.count + 1)

    say(f"Answers by tier in us-east-1: {tally(demo.tiers)}")
    missing = {"primary", "fallback", "degraded"} - set(demo.tiers)
    if missing or not failed_over:
        print(
            f"walkthrough failed: no {sorted(missing)} answer" if missing else "walkthrough failed: no failover",
            file=sys.stderr,
        )
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(run())
