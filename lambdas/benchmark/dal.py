"""Running the suite against providers, and publishing the chosen strategy to AppConfig."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from benchmark.logic import Candidate, CaseResult, estimate_cost, jaccard, recall
from router.dal import BedrockProvider, LambdaProvider, ModelRequest
from shared.bedrock import ModelCallError, failure

SUITE = Path(__file__).with_name("suite.json")


def load_suite(path: Path = SUITE) -> list[dict[str, str]]:
    cases = json.loads(path.read_text())["cases"]
    for case in cases:
        missing = {"id", "use_case", "prompt", "reference"} - set(case)
        if missing:
            raise ValueError(f"suite case {case.get('id', '?')} lacks {sorted(missing)}")
    return list(cases)


def run_suite(
    cases: list[dict[str, str]],
    candidates: list[Candidate],
    strategy: dict[str, Any],
    bedrock: BedrockProvider,
    lambdas: LambdaProvider | None,
    prices: dict[str, tuple[float, float]],
    progress: Callable[[str], None] = print,
    clock: Callable[[], float] = time.perf_counter,
) -> list[CaseResult]:
    results = []
    for number, candidate in enumerate(candidates, start=1):
        progress(f"[benchmark] {number}/{len(candidates)} {candidate.key}: {len(cases)} cases")
        for case in cases:
            entry = strategy["use_cases"][case["use_case"]]
            request = ModelRequest(
                prompt=case["prompt"],
                system_prompt=entry.get("system_prompt"),
                max_tokens=int(entry["variants"][0].get("max_tokens", 600)),
                temperature=0.0,  # comparable answers: no sampling noise between models
                top_p=None,
            )
            started = clock()
            try:
                if candidate.provider == "lambda":
                    if lambdas is None or candidate.target is None:
                        raise failure(candidate.model_id, "NoLambdaProvider", "no serving Lambda configured")
                    completion = lambdas.complete_target(candidate.target, candidate.model_id, request)
                else:
                    completion = bedrock.complete(candidate.model_id, request, None)
                error = None
                answer = completion.text
                tokens_in, tokens_out = completion.input_tokens, completion.output_tokens
            except ModelCallError as exc:
                error, answer, tokens_in, tokens_out = f"{exc.code}: {exc}", "", 0, 0
            latency_ms = (clock() - started) * 1000
            results.append(
                CaseResult(
                    case_id=case["id"],
                    use_case=case["use_case"],
                    candidate=candidate,
                    answer=answer,
                    latency_ms=round(latency_ms, 2),
                    input_tokens=tokens_in,
                    output_tokens=tokens_out,
                    cost_usd=estimate_cost(candidate, tokens_in, tokens_out, latency_ms, prices),
                    jaccard=round(jaccard(answer, case["reference"]), 4),
                    recall=round(recall(answer, case["reference"]), 4),
                    error=error,
                )
            )
    return results


def publish(document: dict[str, Any], application_id: str, profile_id: str, client: Any | None = None) -> int:
    """A new hosted configuration version (AppConfig validates it against the profile's schema).
    Deployment stays a separate, deliberate step with the rollback-on-alarm strategy."""
    if client is None:
        import boto3

        client = boto3.client("appconfig")
    response = client.create_hosted_configuration_version(
        ApplicationId=application_id,
        ConfigurationProfileId=profile_id,
        Content=json.dumps(document, indent=2).encode(),
        ContentType="application/json",
        Description=f"benchmark {document['version']}",
    )
    return int(response["VersionNumber"])
