"""Scheduled benchmark: runs the suite against the strategy's providers in this region, logs the
summary, emits a score metric per use case and model, and (PUBLISH=true) writes the winning
strategy as a new AppConfig version for an operator to deploy."""

from __future__ import annotations

import json
import os
from typing import Any

from aws_lambda_powertools.utilities.typing import LambdaContext

from benchmark.dal import load_suite, publish, run_suite
from benchmark.logic import candidates_from, strategy_with_winners, summarise, winners
from router.dal import BedrockProvider, LambdaProvider, lambda_targets_from_env
from shared.observability import emit, logger


def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    from router.handler import _strategy_source

    strategy = _strategy_source().get().model_dump(mode="json", exclude_none=True)
    prices = {k: (float(v[0]), float(v[1])) for k, v in json.loads(os.environ["MODEL_PRICES"]).items()}
    candidates = candidates_from(strategy)
    results = run_suite(
        load_suite(),
        candidates,
        strategy,
        BedrockProvider(),
        LambdaProvider(lambda_targets_from_env()),
        prices,
        progress=logger.info,
    )
    rows = summarise(results)
    for row in rows:
        emit("BenchmarkScore", row["score"], use_case=row["use_case"], model=row["model"])
    chosen = winners(rows)
    document = strategy_with_winners(strategy, chosen, candidates, f"benchmark-{context.aws_request_id[:8]}")
    logger.info("benchmark finished", extra={"summary": rows, "winners": {k: v["model"] for k, v in chosen.items()}})
    version = None
    if os.environ.get("PUBLISH") == "true":
        version = publish(document, os.environ["APPCONFIG_APPLICATION"], os.environ["APPCONFIG_PROFILE"])
    return {"winners": {k: v["model"] for k, v in chosen.items()}, "published_version": version}
