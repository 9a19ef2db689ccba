"""Routing decisions, free of Lambda events and AWS clients so they test in isolation."""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime, timedelta
from typing import Any

from shared.strategy import Strategy, Variant
from shared.use_cases import UseCase

# Step Functions' timestamp comparisons take RFC 3339 with a literal Z; seconds are enough
# precision for a cooldown measured in seconds.
TIMESTAMP_FORMAT = "%Y-%m-%dT%H:%M:%SZ"


def bucket(sticky_key: str, total_weight: int) -> int:
    """A stable bucket in ``[0, total_weight)`` for a key, the same in every process and region."""
    digest = hashlib.sha256(sticky_key.encode()).digest()
    return int.from_bytes(digest[:8], "big") % total_weight


def choose_variant(variants: tuple[Variant, ...], sticky_key: str) -> Variant:
    """Weighted choice, sticky per key: one user always lands in the same A/B arm."""
    live = [v for v in variants if v.weight > 0]
    point = bucket(sticky_key, sum(v.weight for v in live))
    for variant in live:
        if point < variant.weight:
            return variant
        point -= variant.weight
    raise AssertionError("unreachable: point is below the total weight")


def breaker_clock(now: datetime, cooldown_seconds: int) -> dict[str, str]:
    """The times the state machine compares circuit timestamps with.

    The router is the breaker's single clock: it stamps ``opened_at`` (``now``) and says which
    circuits have cooled down (opened at or before ``cooldown_cutoff``).
    """
    now = now.astimezone(UTC).replace(microsecond=0)
    return {
        "now": now.strftime(TIMESTAMP_FORMAT),
        "cooldown_cutoff": (now - timedelta(seconds=cooldown_seconds)).strftime(TIMESTAMP_FORMAT),
    }


def select(
    strategy: Strategy, use_case: UseCase, *, user_id: str | None, request_id: str, now: datetime
) -> dict[str, Any]:
    """The selection the state machine carries through the request."""
    entry = strategy.use_cases[use_case]
    # Without a user the split is per request, which still honours the weights in aggregate.
    variant = choose_variant(entry.variants, f"{use_case}:{user_id or request_id}")
    return {
        "use_case": str(use_case),
        "variant": variant.name,
        "provider": variant.provider,
        "model_id": variant.model_id,
        "target": variant.target,
        "max_tokens": variant.max_tokens,
        "temperature": variant.temperature,
        "top_p": variant.top_p,
        "system_prompt": entry.system_prompt,
        "strategy_version": strategy.version,
        "breaker": strategy.breaker.model_dump(),
        "clock": breaker_clock(now, strategy.breaker.cooldown_seconds),
    }
