"""The shipped circuit-breaker ASL, executed by moto with the real handlers in process."""

from collections.abc import Iterator

import pytest

from local.request_path import RequestPath, local_request_path
from shared.strategy import load_default_strategy

STRATEGY = load_default_strategy()
PRIMARY = STRATEGY.use_cases["general"].variants[0].model_id  # general has a single variant
FALLBACK = "us.amazon.nova-micro-v1:0"
THRESHOLD = STRATEGY.breaker.failure_threshold
COOLDOWN = STRATEGY.breaker.cooldown_seconds


@pytest.fixture
def path() -> Iterator[RequestPath]:
    with local_request_path() as request_path:
        yield request_path


def ask(path: RequestPath, prompt: str = "How do I raise my credit score?", use_case: str = "general") -> dict:
    result = path.execute(
        {
            "request_id": f"req-{len(path.lambdas.invocations)}",
            "prompt": prompt,
            "use_case": use_case,
            "user_id": "user-1",
        }
    )
    assert result["status"] == "SUCCEEDED", result
    return result["output"]
