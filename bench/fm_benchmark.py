"""``python -m bench.fm_benchmark``: benchmark every provider the strategy names and write the results.

    python -m bench.fm_benchmark --offline --out build/benchmark          # local providers, no AWS
    python -m bench.fm_benchmark --out build/benchmark --publish \\
        --application-id <id> --profile-id <id>                      # Bedrock + serving Lambdas

Offline, Bedrock answers come from the local stand-in and the ``lambda`` providers run the real
serving handlers in process on the artifact in ``--advisor-artifact`` (a ``serve/`` directory).
Writes results.csv (per case), summary.csv (per use case and model) and strategy.json.
"""

from __future__ import annotations

import argparse
import io
import json
import os
import sys
from pathlib import Path
from typing import Any

from benchmark.dal import load_suite, publish, run_suite
from benchmark.logic import DEFAULT_WEIGHTS, candidates_from, strategy_with_winners, summarise, winners
from benchmark.report import write_outputs

from router.dal import BedrockProvider, LambdaProvider
from shared.strategy import parse_strategy

ROOT = Path(__file__).resolve().parents[1]  # the repository
STRATEGY = ROOT / "lambdas" / "shared" / "strategy" / "model_selection.json"


def prices_from_cdk_json() -> dict[str, tuple[float, float]]:
    """The price table deployments use: cdk.json's model_prices, else the built-in defaults."""
    from cdk_app.config import DEFAULT_MODEL_PRICES

    context = json.loads((ROOT / "cdk.json").read_text())["context"]
    custom = context.get("model_prices") or {}
    return {**DEFAULT_MODEL_PRICES, **{k: (float(v[0]), float(v[1])) for k, v in custom.items()}}


class InProcessServing:
    """A Lambda client for the offline run: invokes the serving handlers in this process."""

    def invoke(self, FunctionName: str, Payload: bytes) -> dict[str, Any]:  # boto3's parameter names
        from advisor import handler as advisor
        from local.request_path import FakeContext

        try:
            result = advisor.lambda_handler(json.loads(Payload), FakeContext(FunctionName, "local"))
        except Exception as exc:  # as Lambda reports an unhandled error (e.g. no artifact)
            error = {"errorType": type(exc).__name__, "errorMessage": str(exc)}
            return {"StatusCode": 200, "FunctionError": "Unhandled", "Payload": io.BytesIO(json.dumps(error).encode())}
        return {"StatusCode": 200, "Payload": io.BytesIO(json.dumps(result).encode())}


def parse_weights(text: str) -> dict[str, float]:
    values = [float(part) for part in text.split(",")]
    if len(values) != 3:
        raise argparse.ArgumentTypeError("weights are three numbers: quality,latency,cost")
    return dict(zip(DEFAULT_WEIGHTS, values, strict=True))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Benchmark the strategy's providers and choose a model per use case")
    parser.add_argument("--offline", action="store_true", help="local providers instead of AWS")
    parser.add_argument("--advisor-artifact", type=Path, default=None, help="serve/ directory for lambda:advisor")
    parser.add_argument("--strategy", type=Path, default=STRATEGY)
    parser.add_argument("--out", type=Path, default=ROOT / "build" / "benchmark")
    parser.add_argument("--weights", type=parse_weights, default=DEFAULT_WEIGHTS, help="quality,latency,cost")
    parser.add_argument("--version", default="benchmark-local")
    parser.add_argument("--publish", action="store_true", help="create a new AppConfig configuration version")
    parser.add_argument("--application-id")
    parser.add_argument("--profile-id")
    args = parser.parse_args(argv)
    if args.publish and not (args.application_id and args.profile_id):
        parser.error("--publish needs --application-id and --profile-id")
    if abs(sum(args.weights.values()) - 1) > 1e-6:
        parser.error("weights must sum to 1")
    strategy = json.loads(args.strategy.read_text())
    parse_strategy(strategy)
    candidates = candidates_from(strategy)
    if args.offline:
        from local.bedrock_stub import OfflineBedrock

        bedrock = BedrockProvider(client=OfflineBedrock())
        if args.advisor_artifact:
            os.environ["MODEL_DIR"] = str(args.advisor_artifact)
        lambdas = LambdaProvider({"advisor": "advisor", "sentiment": "sentiment"}, client=InProcessServing())
    else:
        from router.dal import lambda_targets_from_env

        bedrock, lambdas = BedrockProvider(), LambdaProvider(lambda_targets_from_env())
    results = run_suite(load_suite(), candidates, strategy, bedrock, lambdas, prices_from_cdk_json())
    rows = summarise(results, args.weights)
    chosen = winners(rows)
    document = strategy_with_winners(strategy, chosen, candidates, args.version)
    write_outputs(args.out, results, rows, document)
    for use_case, row in sorted(chosen.items()):
        print(f"{use_case:18} -> {row['model']} (score {row['score']:.3f}, quality {row['quality']:.3f})")
    print(f"wrote {args.out}/results.csv, summary.csv and strategy.json")
    if args.publish:
        version = publish(document, args.application_id, args.profile_id)
        print(f"published AppConfig configuration version {version}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
